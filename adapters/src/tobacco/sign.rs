//! The SM2 envelope of spec 09: the four `X-YC-*` headers, the request and response signing
//! strings, and the receiver's checks in the spec's order (AppId 1002, timestamp 1003, nonce form
//! 1001, nonce reuse 1004, signature 1001). Pure except for the nonce memory, which is a bounded
//! in-memory map driven by the caller's clock.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use chrono::NaiveDateTime;
use codecs::crypto::sm2::{self, PrivateKey, PublicKey, Signature};

/// The SM2 user ID both sides sign with (spec 09, "SM2 with SM3, user ID ...").
pub const SIGNER_ID: &[u8] = b"1234567812345678";
/// |timestamp − receiver clock| must not exceed this.
pub const MAX_SKEW_S: i64 = 300;
/// A nonce seen from one AppId within this window is a replay.
pub const NONCE_WINDOW_S: i64 = 15 * 60;
/// Hard cap on remembered nonces: beyond it the oldest half is dropped first (a flood of valid
/// signed messages is the only way to get here, and every one of them was already verified).
pub const MAX_REMEMBERED_NONCES: usize = 200_000;

pub const HEADER_APP_ID: &str = "X-YC-AppId";
pub const HEADER_TIMESTAMP: &str = "X-YC-Timestamp";
pub const HEADER_NONCE: &str = "X-YC-Nonce";
pub const HEADER_SIGNATURE: &str = "X-YC-Signature";

/// Beijing time is UTC+8 with no daylight saving: the Unix time of a Beijing local time.
pub fn unix_seconds(beijing: NaiveDateTime) -> i64 {
    beijing.and_utc().timestamp() - 8 * 3600
}

/// A fresh nonce: 32 lower-case hex digits from the OS random source.
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// `POST` LF path LF timestamp LF nonce LF body LF, over the exact body bytes.
pub fn request_signing_string(path: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + path.len() + timestamp.len() + nonce.len() + body.len());
    for part in [
        b"POST".as_slice(),
        path.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
    ] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out.extend_from_slice(body);
    out.push(b'\n');
    out
}

/// request nonce LF response timestamp LF response nonce LF response body LF.
pub fn response_signing_string(
    request_nonce: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(8 + request_nonce.len() + timestamp.len() + nonce.len() + body.len());
    for part in [request_nonce, timestamp, nonce] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(body);
    out.push(b'\n');
    out
}

/// Standard padded Base64 of the strict DER form.
pub fn encode_signature(signature: &Signature) -> String {
    base64::engine::general_purpose::STANDARD.encode(signature.to_der())
}

/// Standard padded Base64 (no whitespace, canonical trailing bits) of strict DER; raw r‖s fails.
pub fn decode_signature(header: &str) -> Result<Signature, AuthError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(header.as_bytes())
        .map_err(|_| AuthError::BadSignature)?;
    Signature::from_der(&der).map_err(|_| AuthError::BadSignature)
}

/// The four headers of one signed message, as sent or as received.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SignedHeaders {
    pub app_id: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

impl SignedHeaders {
    /// Reads the headers from an HTTP header map; a missing or non-ASCII header is empty (and
    /// fails the check that looks at it).
    pub fn from_http(headers: &reqwest::header::HeaderMap) -> SignedHeaders {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        SignedHeaders {
            app_id: get(HEADER_APP_ID),
            timestamp: get(HEADER_TIMESTAMP),
            nonce: get(HEADER_NONCE),
            signature: get(HEADER_SIGNATURE),
        }
    }

    /// (name, value) pairs in a fixed order, to add to a request or a response.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_APP_ID, self.app_id.as_str()),
            (HEADER_TIMESTAMP, self.timestamp.as_str()),
            (HEADER_NONCE, self.nonce.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
    }
}

/// Signs a request with a fresh nonce and the caller's clock.
pub fn sign_request(
    key: &PrivateKey,
    app_id: &str,
    path: &str,
    body: &[u8],
    now: NaiveDateTime,
) -> Result<SignedHeaders, AuthError> {
    let timestamp = unix_seconds(now).to_string();
    let nonce = new_nonce();
    let message = request_signing_string(path, &timestamp, &nonce, body);
    let signature = sm2::sign(key, SIGNER_ID, &message).map_err(|_| AuthError::Signing)?;
    Ok(SignedHeaders {
        app_id: app_id.to_string(),
        timestamp,
        nonce,
        signature: encode_signature(&signature),
    })
}

/// Signs a response to the request that carried `request_nonce`.
pub fn sign_response(
    key: &PrivateKey,
    app_id: &str,
    request_nonce: &str,
    body: &[u8],
    now: NaiveDateTime,
) -> Result<SignedHeaders, AuthError> {
    let timestamp = unix_seconds(now).to_string();
    let nonce = new_nonce();
    let message = response_signing_string(request_nonce, &timestamp, &nonce, body);
    let signature = sm2::sign(key, SIGNER_ID, &message).map_err(|_| AuthError::Signing)?;
    Ok(SignedHeaders {
        app_id: app_id.to_string(),
        timestamp,
        nonce,
        signature: encode_signature(&signature),
    })
}

/// Why a signed message was refused; `code` is the spec's answer code (HTTP 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("验签失败")]
    BadSignature,
    #[error("AppId未知")]
    UnknownAppId,
    #[error("时间戳超限")]
    TimestampOutOfRange,
    #[error("nonce重复")]
    NonceReused,
    /// Our own signing failed (the OS random source): nothing was sent.
    #[error("签名失败")]
    Signing,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::BadSignature => "1001",
            AuthError::UnknownAppId => "1002",
            AuthError::TimestampOutOfRange => "1003",
            AuthError::NonceReused => "1004",
            AuthError::Signing => "9999",
        }
    }

    /// The unsigned 401 body the spec prescribes.
    pub fn body(&self) -> String {
        serde_json::json!({"code": self.code(), "msg": self.to_string()}).to_string()
    }
}

fn timestamp_in_range(timestamp: &str, now: NaiveDateTime) -> bool {
    if timestamp.len() != 10 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match timestamp.parse::<i64>() {
        Ok(seconds) => (seconds - unix_seconds(now)).abs() <= MAX_SKEW_S,
        Err(_) => false,
    }
}

fn nonce_well_formed(nonce: &str) -> bool {
    nonce.len() == 32
        && nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a signed response: from `expected_app_id`, timestamp in range, nonce well formed, and
/// signed over our request's nonce. Any failure means "no answer".
pub fn verify_response(
    peer: &PublicKey,
    expected_app_id: &str,
    request_nonce: &str,
    headers: &SignedHeaders,
    body: &[u8],
    now: NaiveDateTime,
) -> Result<(), AuthError> {
    if headers.app_id != expected_app_id {
        return Err(AuthError::UnknownAppId);
    }
    if !timestamp_in_range(&headers.timestamp, now) {
        return Err(AuthError::TimestampOutOfRange);
    }
    if !nonce_well_formed(&headers.nonce) {
        return Err(AuthError::BadSignature);
    }
    let signature = decode_signature(&headers.signature)?;
    let message = response_signing_string(request_nonce, &headers.timestamp, &headers.nonce, body);
    sm2::verify(peer, SIGNER_ID, &message, &signature).map_err(|_| AuthError::BadSignature)
}

/// The receiver side: known peers and the nonces they used in the last 15 minutes.
#[derive(Debug)]
pub struct RequestVerifier {
    peers: HashMap<String, PublicKey>,
    /// (AppId, nonce) -> Unix seconds when it was accepted.
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl RequestVerifier {
    pub fn new(peers: impl IntoIterator<Item = (String, PublicKey)>) -> RequestVerifier {
        RequestVerifier {
            peers: peers.into_iter().collect(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The checks of spec 09 in its order; on success the nonce is remembered and the AppId
    /// returned. A failed check remembers nothing.
    pub fn verify_request(
        &self,
        headers: &SignedHeaders,
        path: &str,
        body: &[u8],
        now: NaiveDateTime,
    ) -> Result<String, AuthError> {
        let peer = self
            .peers
            .get(&headers.app_id)
            .ok_or(AuthError::UnknownAppId)?;
        if !timestamp_in_range(&headers.timestamp, now) {
            return Err(AuthError::TimestampOutOfRange);
        }
        if !nonce_well_formed(&headers.nonce) {
            return Err(AuthError::BadSignature);
        }
        let now_s = unix_seconds(now);
        let key = (headers.app_id.clone(), headers.nonce.clone());
        {
            let seen = self.seen.lock().map_err(|_| AuthError::NonceReused)?;
            if let Some(at) = seen.get(&key) {
                if now_s - at <= NONCE_WINDOW_S {
                    return Err(AuthError::NonceReused);
                }
            }
        }
        let signature = decode_signature(&headers.signature)?;
        let message = request_signing_string(path, &headers.timestamp, &headers.nonce, body);
        sm2::verify(peer, SIGNER_ID, &message, &signature).map_err(|_| AuthError::BadSignature)?;
        let mut seen = self.seen.lock().map_err(|_| AuthError::NonceReused)?;
        // Two identical messages racing: only the first to get here wins.
        if let Some(at) = seen.get(&key) {
            if now_s - at <= NONCE_WINDOW_S {
                return Err(AuthError::NonceReused);
            }
        }
        if seen.len() >= MAX_REMEMBERED_NONCES {
            seen.retain(|_, at| now_s - *at <= NONCE_WINDOW_S);
        }
        if seen.len() >= MAX_REMEMBERED_NONCES {
            let mut ages: Vec<i64> = seen.values().copied().collect();
            ages.sort_unstable();
            let cut = ages.get(ages.len() / 2).copied().unwrap_or(now_s);
            seen.retain(|_, at| *at > cut);
        }
        seen.insert(key, now_s);
        Ok(headers.app_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const BUREAU_PRIVATE: &str = "437ecacb8de064675b05b33bd8c5cd9232a92f1c7d06f977d1f9cf1874f2b4e5";
    const BUREAU_PUBLIC: &str = "048f6a3511895bd10fc9b106d29383039c0fc8300f96012109a7b052be784af5cb04716e176dd7434523547c9c98ea63c8bb4d364848190a8ae3cd2fd4577c87cb";
    const BUREAU_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEj2o1EYlb0Q/JsQbSk4MDnA/IMA+W\nASEJp7BSvnhK9csEcW4XbddDRSNUfJyY6mPIu002SEgZCorjzS/UV3yHyw==\n-----END PUBLIC KEY-----\n";
    const BODY: &str = "{\"bureauCode\":\"430600\",\"pushId\":\"P202612020001\",\"pushTime\":\"20261202083000\",\"orders\":[{\"orderNo\":\"YC20261202000123\",\"licenceNo\":\"430602100123\",\"retailerName\":\"岳阳楼区张三便利店\",\"amount\":1256800,\"orderDate\":\"20261202\",\"dueDate\":\"20261205\",\"itemCount\":7,\"itemsSummary\":\"卷烟7个品规，共25条\"}]}";
    const SIGNATURE_B64: &str = "MEUCIBZdnW6XIfQuLOjsb2FC3O7yhLCyGYzgK1N9D3el33MQAiEAnIRSwE+O2dsVKWmKcweMo9q8TYu++fT5MplUag42lxk=";
    const SIGNATURE_DER: &str = "30450220165d9d6e9721f42e2ce8ec6f6142dceef284b0b2198ce02b537d0f77a5df73100221009c8452c04f8ed9db1529698a73078ca3dabc4d8bbef9f4f93299546a0e369719";
    const NONCE: &str = "5f2b9c0e8a7d4e3f9b1c2d3e4f5a6b7c";

    fn example_time() -> NaiveDateTime {
        // 1796171400 is 2026-12-02 08:30:00 Beijing (the pushTime of the example).
        NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(8, 30, 0))
            .expect("date")
    }

    fn example_headers() -> SignedHeaders {
        SignedHeaders {
            app_id: "430600".into(),
            timestamp: "1796171400".into(),
            nonce: NONCE.into(),
            signature: SIGNATURE_B64.into(),
        }
    }

    #[test]
    fn worked_example_signing_string_digest_and_der_signature() {
        assert_eq!(BODY.len(), 310);
        let message =
            request_signing_string("/tobacco/v1/orders", "1796171400", NONCE, BODY.as_bytes());
        assert_eq!(message.len(), 379);
        assert_eq!(
            hex::encode(codecs::crypto::sm3::digest(&message)),
            "780a540ffb650d50b71e08d55a762df36d8947c27e4318d9f076be00acab6ab9"
        );
        let key = PrivateKey::from_hex(BUREAU_PRIVATE).expect("key");
        let k: [u8; 32] =
            hex::decode("EC138E2091110B24A4DAF573F1CA9E594B8838B6BEFD914030921A3249E707F1")
                .expect("hex")
                .try_into()
                .expect("32");
        let signature = sm2::sign_with_k(&key, SIGNER_ID, &message, &k).expect("sign");
        assert_eq!(hex::encode(signature.to_der()), SIGNATURE_DER);
        assert_eq!(encode_signature(&signature), SIGNATURE_B64);
    }

    #[test]
    fn worked_example_verifies_with_the_pem_and_hex_keys() {
        let from_pem = PublicKey::from_spki_pem(BUREAU_PEM).expect("pem");
        let from_hex = PublicKey::from_hex(BUREAU_PUBLIC).expect("hex");
        assert_eq!(from_pem.to_uncompressed(), from_hex.to_uncompressed());
        let verifier = RequestVerifier::new([("430600".to_string(), from_pem)]);
        let app = verifier.verify_request(
            &example_headers(),
            "/tobacco/v1/orders",
            BODY.as_bytes(),
            example_time(),
        );
        assert_eq!(app, Ok("430600".to_string()));
        // The same message again within 15 minutes is a replay.
        assert_eq!(
            verifier.verify_request(
                &example_headers(),
                "/tobacco/v1/orders",
                BODY.as_bytes(),
                example_time()
            ),
            Err(AuthError::NonceReused)
        );
    }

    #[test]
    fn checks_come_in_the_spec_order() {
        let key = PublicKey::from_hex(BUREAU_PUBLIC).expect("hex");
        let verifier = RequestVerifier::new([("430600".to_string(), key)]);
        let path = "/tobacco/v1/orders";
        let body = BODY.as_bytes();
        let t = example_time();
        // Unknown AppId wins over everything else that is wrong.
        let mut h = example_headers();
        h.app_id = "430601".into();
        h.timestamp = "1".into();
        assert_eq!(
            verifier.verify_request(&h, path, body, t),
            Err(AuthError::UnknownAppId)
        );
        // 301 s off is out of range; 300 s is in.
        let mut h = example_headers();
        h.timestamp = "1796171701".into();
        assert_eq!(
            verifier.verify_request(&h, path, body, t),
            Err(AuthError::TimestampOutOfRange)
        );
        h.timestamp = "1796171700".into();
        // In range but the signature is over the other timestamp.
        assert_eq!(
            verifier.verify_request(&h, path, body, t),
            Err(AuthError::BadSignature)
        );
        let mut h = example_headers();
        h.nonce = NONCE.to_uppercase();
        assert_eq!(
            verifier.verify_request(&h, path, body, t),
            Err(AuthError::BadSignature)
        );
        // A changed body byte fails, and the failure did not burn the nonce.
        let tampered = BODY.replace("1256800", "1256801");
        assert_eq!(
            verifier.verify_request(&example_headers(), path, tampered.as_bytes(), t),
            Err(AuthError::BadSignature)
        );
        assert!(verifier
            .verify_request(&example_headers(), path, body, t)
            .is_ok());
        // A base-URL prefix in the path is part of what is signed.
        let verifier = RequestVerifier::new([(
            "430600".to_string(),
            PublicKey::from_hex(BUREAU_PUBLIC).expect("hex"),
        )]);
        assert_eq!(
            verifier.verify_request(&example_headers(), "/hub/tobacco/v1/orders", body, t),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn raw_signature_and_loose_base64_fail() {
        let der = hex::decode(SIGNATURE_DER).expect("hex");
        let signature = Signature::from_der(&der).expect("der");
        let raw = base64::engine::general_purpose::STANDARD.encode(signature.to_raw());
        assert_eq!(decode_signature(&raw), Err(AuthError::BadSignature));
        let unpadded = SIGNATURE_B64.trim_end_matches('=');
        assert_eq!(decode_signature(unpadded), Err(AuthError::BadSignature));
        let wrapped = format!("{}\n{}", &SIGNATURE_B64[..40], &SIGNATURE_B64[40..]);
        assert_eq!(decode_signature(&wrapped), Err(AuthError::BadSignature));
    }

    #[test]
    fn response_signature_binds_the_request_nonce() {
        let key = PrivateKey::from_hex(BUREAU_PRIVATE).expect("key");
        let public = key.public_key();
        let t = example_time();
        let body = r#"{"code":"0000","msg":"成功"}"#.as_bytes();
        let headers = sign_response(&key, "430600", NONCE, body, t).expect("sign");
        assert_eq!(headers.timestamp, "1796171400");
        assert!(nonce_well_formed(&headers.nonce));
        assert_eq!(
            verify_response(&public, "430600", NONCE, &headers, body, t),
            Ok(())
        );
        let other_request = "0".repeat(32);
        assert_eq!(
            verify_response(&public, "430600", &other_request, &headers, body, t),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_response(&public, "YYNS0001", NONCE, &headers, body, t),
            Err(AuthError::UnknownAppId)
        );
    }
}
