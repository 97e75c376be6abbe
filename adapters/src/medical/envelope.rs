//! The signed and encrypted JSON envelope of spec 03: SM4-CBC over the payload with a fresh IV per
//! message (PKCS#7, standard Base64), then an SM2 signature (ID `1234567812345678`, r‖s as 128
//! lower-case hex) over `name=value` of every member but `sign`, sorted by name, joined by `&`.
//!
//! Pure: no I/O. The client sends what [`seal_request`] builds and trusts only what
//! [`open_response`] returns.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::NaiveDateTime;
use codecs::crypto::secret::SecretBytes;
use codecs::crypto::sm2::{self, PrivateKey, PublicKey, Signature};
use codecs::crypto::sm4::{self, Padding};
use codecs::crypto::CryptoError;
use serde::Serialize;
use serde_json::{Map, Value};

pub const VERSION: &str = "1.0";
/// A body larger than this is not an answer of this protocol (the daily file is the largest).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a request could not be built or an answer must be treated as "no answer".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("医保密钥配置错误：{0}")]
    Key(String),
    #[error("医保报文组装失败：{0}")]
    Encode(String),
    #[error("医保应答不是有效报文：{0}")]
    Malformed(String),
    #[error("医保应答验签失败")]
    BadSignature,
    #[error("医保应答与请求不符：{0}")]
    EchoMismatch(&'static str),
    #[error("医保应答解密失败：{0}")]
    Decrypt(String),
}

impl EnvelopeError {
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::Key(_) => "MED_KEY",
            EnvelopeError::Encode(_) => "MED_ENCODE",
            EnvelopeError::Malformed(_) => "MED_MALFORMED",
            EnvelopeError::BadSignature => "MED_BAD_SIGNATURE",
            EnvelopeError::EchoMismatch(_) => "MED_ECHO_MISMATCH",
            EnvelopeError::Decrypt(_) => "MED_DECRYPT",
        }
    }
}

/// The keys of one instance. Debug never prints key material.
#[derive(Clone)]
pub struct EnvelopeKeys {
    data_key: SecretBytes,
    bank_key: PrivateKey,
    insurer_public: PublicKey,
}

impl std::fmt::Debug for EnvelopeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeKeys")
            .field("data_key", &self.data_key)
            .field("bank_key", &self.bank_key)
            .field("insurer_public", &self.insurer_public)
            .finish()
    }
}

impl EnvelopeKeys {
    /// `data_key_hex`: 32 hex digits; `bank_private_hex`: 64 hex digits; `insurer_public_hex`:
    /// the uncompressed point `04‖x‖y` in hex.
    pub fn from_hex(
        data_key_hex: &str,
        bank_private_hex: &str,
        insurer_public_hex: &str,
    ) -> Result<EnvelopeKeys, EnvelopeError> {
        let key_error = |what: &str, e: CryptoError| EnvelopeError::Key(format!("{what}: {e}"));
        let data_key =
            SecretBytes::from_hex(data_key_hex).map_err(|e| key_error("SM4数据密钥", e))?;
        if data_key.len() != sm4::BLOCK_BYTES {
            return Err(EnvelopeError::Key(format!(
                "SM4数据密钥须为16字节，实为{}字节",
                data_key.len()
            )));
        }
        let bank_key =
            PrivateKey::from_hex(bank_private_hex).map_err(|e| key_error("银行SM2私钥", e))?;
        let insurer_public =
            PublicKey::from_hex(insurer_public_hex).map_err(|e| key_error("医保SM2公钥", e))?;
        Ok(EnvelopeKeys {
            data_key,
            bank_key,
            insurer_public,
        })
    }

    pub fn bank_public(&self) -> PublicKey {
        self.bank_key.public_key()
    }
}

/// What identifies one request; the answer must echo the first three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub bank_code: String,
    pub tx_code: String,
    pub req_serial: String,
    pub req_time: NaiveDateTime,
}

/// The request envelope in the member order of the spec's example body.
#[derive(Serialize)]
struct RequestEnvelope<'a> {
    version: &'a str,
    #[serde(rename = "bankCode")]
    bank_code: &'a str,
    #[serde(rename = "txCode")]
    tx_code: &'a str,
    #[serde(rename = "reqSerial")]
    req_serial: &'a str,
    #[serde(rename = "reqTime")]
    req_time: &'a str,
    iv: &'a str,
    #[serde(rename = "encData")]
    enc_data: &'a str,
    sign: &'a str,
}

/// The signing string: every member but `sign`, sorted by name (byte order), `name=value`
/// joined by `&`. Empty values stay in.
pub fn signing_string<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let sorted: BTreeMap<&str, &str> = members
        .into_iter()
        .filter(|(name, _)| *name != "sign")
        .collect();
    sorted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A fresh random IV from the OS source.
pub fn fresh_iv() -> Result<[u8; 16], EnvelopeError> {
    use rand::RngCore as _;
    let mut iv = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|e| EnvelopeError::Encode(format!("随机数源故障: {e}")))?;
    Ok(iv)
}

/// Encrypts `payload` (UTF-8 JSON) with a fresh IV, signs, and returns the HTTP body.
pub fn seal_request(
    keys: &EnvelopeKeys,
    header: &RequestHeader,
    payload: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let iv = fresh_iv()?;
    seal_request_with(keys, header, payload, &iv, |message| {
        sm2::sign(&keys.bank_key, sm2::DEFAULT_ID, message)
    })
}

/// [`seal_request`] with a given IV and signer: lets tests reproduce the spec's example.
pub(crate) fn seal_request_with(
    keys: &EnvelopeKeys,
    header: &RequestHeader,
    payload: &[u8],
    iv: &[u8; 16],
    sign: impl FnOnce(&[u8]) -> Result<Signature, CryptoError>,
) -> Result<Vec<u8>, EnvelopeError> {
    let ciphertext = sm4::cbc_encrypt(keys.data_key.expose(), iv, payload, Padding::Pkcs7)
        .map_err(|e| EnvelopeError::Encode(e.to_string()))?;
    let enc_data = base64::engine::general_purpose::STANDARD.encode(ciphertext);
    let iv_hex = hex::encode(iv);
    let req_time = header.req_time.format("%Y%m%d%H%M%S").to_string();
    let text = signing_string([
        ("version", VERSION),
        ("bankCode", header.bank_code.as_str()),
        ("txCode", header.tx_code.as_str()),
        ("reqSerial", header.req_serial.as_str()),
        ("reqTime", req_time.as_str()),
        ("iv", iv_hex.as_str()),
        ("encData", enc_data.as_str()),
    ]);
    let signature = sign(text.as_bytes()).map_err(|e| EnvelopeError::Encode(e.to_string()))?;
    let sign_hex = hex::encode(signature.to_raw());
    let envelope = RequestEnvelope {
        version: VERSION,
        bank_code: &header.bank_code,
        tx_code: &header.tx_code,
        req_serial: &header.req_serial,
        req_time: &req_time,
        iv: &iv_hex,
        enc_data: &enc_data,
        sign: &sign_hex,
    };
    serde_json::to_vec(&envelope).map_err(|e| EnvelopeError::Encode(e.to_string()))
}

/// A verified answer. `payload` is present only for retCode `0000`.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenedResponse {
    pub ret_code: String,
    pub ret_msg: String,
    pub rsp_time: String,
    pub payload: Option<Map<String, Value>>,
}

const RESPONSE_MEMBERS: [&str; 10] = [
    "version",
    "bankCode",
    "txCode",
    "reqSerial",
    "rspTime",
    "retCode",
    "retMsg",
    "iv",
    "encData",
    "sign",
];

/// Checks an answer body: a JSON object of strings with every response member, a valid insurer
/// signature, the request's bankCode/txCode/reqSerial echoed, and (for 0000) a payload that
/// decrypts to a JSON object. Any failure means "no answer" to the caller.
pub fn open_response(
    keys: &EnvelopeKeys,
    expected: &RequestHeader,
    body: &[u8],
) -> Result<OpenedResponse, EnvelopeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(EnvelopeError::Malformed(format!(
            "应答{}字节，超过上限",
            body.len()
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| EnvelopeError::Malformed(format!("不是JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(EnvelopeError::Malformed("不是JSON对象".into()));
    };
    let mut members: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in &object {
        let Value::String(text) = value else {
            return Err(EnvelopeError::Malformed(format!("成员{name}不是字符串")));
        };
        members.insert(name.as_str(), text.as_str());
    }
    let member = |name: &'static str| -> Result<&str, EnvelopeError> {
        members
            .get(name)
            .copied()
            .ok_or_else(|| EnvelopeError::Malformed(format!("缺少成员{name}")))
    };
    for name in RESPONSE_MEMBERS {
        member(name)?;
    }
    let sign_hex = member("sign")?;
    if sign_hex.len() != 128 {
        return Err(EnvelopeError::BadSignature);
    }
    let raw = hex::decode(sign_hex).map_err(|_| EnvelopeError::BadSignature)?;
    let signature = Signature::from_raw(&raw).map_err(|_| EnvelopeError::BadSignature)?;
    // Every member received (an unexpected one too) is covered by the signature.
    let text = signing_string(members.iter().map(|(n, v)| (*n, *v)));
    sm2::verify(
        &keys.insurer_public,
        sm2::DEFAULT_ID,
        text.as_bytes(),
        &signature,
    )
    .map_err(|_| EnvelopeError::BadSignature)?;

    if member("bankCode")? != expected.bank_code {
        return Err(EnvelopeError::EchoMismatch("bankCode"));
    }
    if member("txCode")? != expected.tx_code {
        return Err(EnvelopeError::EchoMismatch("txCode"));
    }
    if member("reqSerial")? != expected.req_serial {
        return Err(EnvelopeError::EchoMismatch("reqSerial"));
    }
    if member("version")? != VERSION {
        return Err(EnvelopeError::Malformed("version不是1.0".into()));
    }
    let ret_code = member("retCode")?.to_string();
    let payload = if ret_code == "0000" {
        Some(decrypt_payload(keys, member("iv")?, member("encData")?)?)
    } else {
        None
    };
    Ok(OpenedResponse {
        ret_code,
        ret_msg: member("retMsg")?.to_string(),
        rsp_time: member("rspTime")?.to_string(),
        payload,
    })
}

fn decrypt_payload(
    keys: &EnvelopeKeys,
    iv_hex: &str,
    enc_data: &str,
) -> Result<Map<String, Value>, EnvelopeError> {
    if iv_hex.len() != 32 {
        return Err(EnvelopeError::Decrypt("iv须为32位十六进制".into()));
    }
    let iv = hex::decode(iv_hex).map_err(|_| EnvelopeError::Decrypt("iv不是十六进制".into()))?;
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(enc_data)
        .map_err(|e| EnvelopeError::Decrypt(format!("Base64: {e}")))?;
    let plaintext = sm4::cbc_decrypt(keys.data_key.expose(), &iv, &ciphertext, Padding::Pkcs7)
        .map_err(|e| EnvelopeError::Decrypt(e.to_string()))?;
    match serde_json::from_slice::<Value>(&plaintext) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(EnvelopeError::Malformed(
            "业务数据不是UTF-8 JSON对象".into(),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::NaiveDate;

    pub(crate) const DATA_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
    pub(crate) const BANK_PRIVATE: &str =
        "f8e04a199a4cd697add020760c8a7f2e21496aa6c0ec3e201e98dafc0a96e520";
    pub(crate) const BANK_PUBLIC: &str = "04d7c3f5e0e23d49aa96f71465a32c644f7565985a934c2e98c88bc6817592221bf354eef58f12280b7f41d5732c795a3c35eb806f10210ae560d6a1f2a6db6a58";
    const K: &str = "ACA23B1A6E91CBA5CA98A85F91618D66EF4D1C84B01A5EB8BFA77A8E6588B790";
    const PAYLOAD: &str = r#"{"idNo":"431227199003150016","name":"张三","year":"2027","amount":"400.00","payerName":"李四","payerAcct":"6230901234567890456","channel":"04"}"#;
    const ENC_DATA: &str = "Pq4r21+LbzABbXpK7hVxyzsirUzLHnzrD38Wzz6qDCfN2ic84RgkpsDHgtuMa28vV/rOfsm/qamcqIWeOiY1hu3SMVe2jFUys5Y9FOOo4ZBbe/HbJB+jU33C2GW4mLEI4OSaV26KgRNzEf16rcOGO3dRw7AjjHSWuGCZA9g+ae+yLmOyZkAYIrG9qUR0SVqNSwbFvjXdpHjX10Af5Yi++Q==";
    const SIGNING_STRING: &str = "bankCode=HHXH0001&encData=Pq4r21+LbzABbXpK7hVxyzsirUzLHnzrD38Wzz6qDCfN2ic84RgkpsDHgtuMa28vV/rOfsm/qamcqIWeOiY1hu3SMVe2jFUys5Y9FOOo4ZBbe/HbJB+jU33C2GW4mLEI4OSaV26KgRNzEf16rcOGO3dRw7AjjHSWuGCZA9g+ae+yLmOyZkAYIrG9qUR0SVqNSwbFvjXdpHjX10Af5Yi++Q==&iv=000102030405060708090a0b0c0d0e0f&reqSerial=XH202612021030150001&reqTime=20261202103015&txCode=2001&version=1.0";
    const BODY: &str = r#"{"version":"1.0","bankCode":"HHXH0001","txCode":"2001","reqSerial":"XH202612021030150001","reqTime":"20261202103015","iv":"000102030405060708090a0b0c0d0e0f","encData":"Pq4r21+LbzABbXpK7hVxyzsirUzLHnzrD38Wzz6qDCfN2ic84RgkpsDHgtuMa28vV/rOfsm/qamcqIWeOiY1hu3SMVe2jFUys5Y9FOOo4ZBbe/HbJB+jU33C2GW4mLEI4OSaV26KgRNzEf16rcOGO3dRw7AjjHSWuGCZA9g+ae+yLmOyZkAYIrG9qUR0SVqNSwbFvjXdpHjX10Af5Yi++Q==","sign":"5b62b8489f7f5047938f599fe84fcf383eb28bc21bab2eab3d43316daa41def2d945eca6e47543860c6db0887bf2a9b860e328422b43b7ddb17437ec6077c7e9"}"#;

    fn example_header() -> RequestHeader {
        RequestHeader {
            bank_code: "HHXH0001".into(),
            tx_code: "2001".into(),
            req_serial: "XH202612021030150001".into(),
            req_time: NaiveDate::from_ymd_opt(2026, 12, 2)
                .and_then(|d| d.and_hms_opt(10, 30, 15))
                .expect("example time"),
        }
    }

    /// Keys where the "insurer" is the bank itself, so an answer can be signed in the test with
    /// the only private key the spec publishes.
    pub(crate) fn self_keys() -> EnvelopeKeys {
        EnvelopeKeys::from_hex(DATA_KEY, BANK_PRIVATE, BANK_PUBLIC).expect("keys")
    }

    #[test]
    fn worked_example_2001_request_byte_for_byte() {
        assert_eq!(PAYLOAD.len(), 147);
        assert_eq!(SIGNING_STRING.len(), 356);
        assert_eq!(BODY.len(), 524);
        let keys = self_keys();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .expect("iv")
            .try_into()
            .expect("16");
        let k: [u8; 32] = hex::decode(K).expect("k").try_into().expect("32");
        let mut seen_signing_string = Vec::new();
        let body = seal_request_with(
            &keys,
            &example_header(),
            PAYLOAD.as_bytes(),
            &iv,
            |message| {
                seen_signing_string = message.to_vec();
                sm2::sign_with_k(&keys.bank_key, sm2::DEFAULT_ID, message, &k)
            },
        )
        .expect("sealed");
        assert_eq!(
            String::from_utf8_lossy(&seen_signing_string),
            SIGNING_STRING
        );
        assert_eq!(String::from_utf8(body).expect("utf8"), BODY);
    }

    #[test]
    fn worked_example_payload_is_serialized_in_the_spec_member_order() {
        let order = crate::medical::messages::PayRequest {
            id_no: "431227199003150016".into(),
            name: "张三".into(),
            year: "2027".into(),
            amount: "400.00".into(),
            payer_name: "李四".into(),
            payer_acct: "6230901234567890456".into(),
            channel: "04".into(),
        };
        assert_eq!(serde_json::to_string(&order).expect("json"), PAYLOAD);
    }

    #[test]
    fn worked_example_signature_verifies_and_decrypts() {
        let public = PublicKey::from_hex(BANK_PUBLIC).expect("public");
        let raw = hex::decode("5b62b8489f7f5047938f599fe84fcf383eb28bc21bab2eab3d43316daa41def2d945eca6e47543860c6db0887bf2a9b860e328422b43b7ddb17437ec6077c7e9").expect("hex");
        let signature = Signature::from_raw(&raw).expect("sig");
        assert_eq!(
            sm2::verify(
                &public,
                sm2::DEFAULT_ID,
                SIGNING_STRING.as_bytes(),
                &signature
            ),
            Ok(())
        );
        let mut changed = SIGNING_STRING.as_bytes().to_vec();
        changed[9] = b'X';
        assert!(sm2::verify(&public, sm2::DEFAULT_ID, &changed, &signature).is_err());
        let keys = self_keys();
        let map =
            decrypt_payload(&keys, "000102030405060708090a0b0c0d0e0f", ENC_DATA).expect("plain");
        assert_eq!(map.get("name"), Some(&Value::String("张三".into())));
        assert_eq!(
            map.get("payerAcct"),
            Some(&Value::String("6230901234567890456".into()))
        );
    }

    /// Builds a response as an insurer would, signed with `keys`' bank key (see `self_keys`).
    pub(crate) fn signed_response(
        keys: &EnvelopeKeys,
        members: &[(&str, &str)],
        payload: Option<&str>,
    ) -> String {
        let mut map: BTreeMap<String, String> = members
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        if let Some(payload) = payload {
            let iv = [7u8; 16];
            let c = sm4::cbc_encrypt(
                keys.data_key.expose(),
                &iv,
                payload.as_bytes(),
                Padding::Pkcs7,
            )
            .expect("enc");
            map.insert("iv".into(), hex::encode(iv));
            map.insert(
                "encData".into(),
                base64::engine::general_purpose::STANDARD.encode(c),
            );
        } else {
            map.entry("iv".into()).or_default();
            map.entry("encData".into()).or_default();
        }
        let text = signing_string(map.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let sig = sm2::sign(&keys.bank_key, sm2::DEFAULT_ID, text.as_bytes()).expect("sign");
        map.insert("sign".into(), hex::encode(sig.to_raw()));
        serde_json::to_string(&map).expect("json")
    }

    fn ok_members() -> Vec<(&'static str, &'static str)> {
        vec![
            ("version", "1.0"),
            ("bankCode", "HHXH0001"),
            ("txCode", "2001"),
            ("reqSerial", "XH202612021030150001"),
            ("rspTime", "20261202103016"),
            ("retCode", "0000"),
            ("retMsg", "成功"),
        ]
    }

    #[test]
    fn a_signed_answer_opens_and_any_tampering_is_refused() {
        let keys = self_keys();
        let body = signed_response(&keys, &ok_members(), Some(r#"{"payNo":"P1","x":"y"}"#));
        let opened = open_response(&keys, &example_header(), body.as_bytes()).expect("open");
        assert_eq!(opened.ret_code, "0000");
        assert_eq!(
            opened.payload.and_then(|p| p.get("payNo").cloned()),
            Some(Value::String("P1".into()))
        );

        let tampered = body.replace("成功", "失败");
        assert_eq!(
            open_response(&keys, &example_header(), tampered.as_bytes()),
            Err(EnvelopeError::BadSignature)
        );
        let mut wrong_serial = ok_members();
        wrong_serial[3] = ("reqSerial", "XH202612021030150002");
        let body = signed_response(&keys, &wrong_serial, None);
        assert_eq!(
            open_response(&keys, &example_header(), body.as_bytes()),
            Err(EnvelopeError::EchoMismatch("reqSerial"))
        );
        let mut missing = ok_members();
        missing.remove(4);
        let body = signed_response(&keys, &missing, None);
        assert!(matches!(
            open_response(&keys, &example_header(), body.as_bytes()),
            Err(EnvelopeError::Malformed(_))
        ));
        for garbage in ["", "[]", "{\"version\":1}", "<html>"] {
            assert!(open_response(&keys, &example_header(), garbage.as_bytes()).is_err());
        }
    }

    #[test]
    fn an_upper_case_signature_is_accepted() {
        let keys = self_keys();
        let body = signed_response(&keys, &ok_members(), Some("{}"));
        let value: Value = serde_json::from_str(&body).expect("json");
        let sign = value
            .get("sign")
            .and_then(Value::as_str)
            .expect("sign")
            .to_string();
        let upper = body.replace(&sign, &sign.to_uppercase());
        assert!(open_response(&keys, &example_header(), upper.as_bytes()).is_ok());
    }

    #[test]
    fn signing_string_sorts_by_byte_order_and_keeps_empty_values() {
        assert_eq!(
            signing_string([
                ("txCode", "1"),
                ("encData", ""),
                ("bankCode", "B"),
                ("sign", "s")
            ]),
            "bankCode=B&encData=&txCode=1"
        );
    }
}
