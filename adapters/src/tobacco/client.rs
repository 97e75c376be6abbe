//! The hub's only call to the bureau: the signed payment notification. One call, one attempt: the
//! outbox in the hub decides when to try again (this client never re-sends).

use std::time::Duration;

use codecs::clock::SharedClock;
use codecs::crypto::sm2::{PrivateKey, PublicKey};
use serde::Deserialize;

use super::message::PATH_NOTIFY;
use super::sign::{self, SignedHeaders};

/// What the bureau's answer means for the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// HTTP 200, valid signature, code 0000 (recorded) or 0001 (already recorded): done.
    Acknowledged { code: String },
    /// 2005: the bureau will never accept this notification; stop retrying and alert.
    Rejected { code: String, msg: String },
    /// Anything else (timeout, transport error, bad or missing signature, 1007, 9999, ...):
    /// not acknowledged, retry on the schedule. The request may well have been recorded.
    NotAcknowledged { reason: String },
}

/// Where and how the notification goes.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// The bureau's base URL, e.g. `https://yc.example:8443` or with a path prefix.
    pub base_url: String,
    /// Our AppId, `YYNS0001`.
    pub bank_code: String,
    /// The bureau's AppId, `430600`: its answers must carry it.
    pub bureau_code: String,
    /// The whole exchange (spec: 10 s). Connect (5 s) is the reqwest client's setting.
    pub exchange_timeout_ms: u64,
}

#[derive(Clone, Debug)]
pub struct NotifyClient {
    http: reqwest::Client,
    config: NotifyConfig,
    bank_key: PrivateKey,
    bureau_key: PublicKey,
    clock: SharedClock,
}

#[derive(Deserialize)]
struct Answer {
    code: String,
    #[serde(default)]
    msg: String,
}

impl NotifyClient {
    /// `http` comes from the hub (`hub::tls::https_client`), already trusting only the bureau's CA.
    pub fn new(
        http: reqwest::Client,
        config: NotifyConfig,
        bank_key: PrivateKey,
        bureau_key: PublicKey,
        clock: SharedClock,
    ) -> NotifyClient {
        NotifyClient {
            http,
            config,
            bank_key,
            bureau_key,
            clock,
        }
    }

    /// The URL and the path exactly as in the request line (base-URL prefix included).
    fn target(&self) -> Result<(reqwest::Url, String), String> {
        let mut url = reqwest::Url::parse(&self.config.base_url)
            .map_err(|e| format!("bad bureau base URL: {e}"))?;
        let path = format!("{}{}", url.path().trim_end_matches('/'), PATH_NOTIFY);
        url.set_path(&path);
        url.set_query(None);
        Ok((url, path))
    }

    /// Sends `body` (byte-identical on every attempt) with a fresh timestamp, nonce and signature.
    pub async fn notify(&self, body: &[u8]) -> NotifyOutcome {
        let not_ack = |reason: String| NotifyOutcome::NotAcknowledged { reason };
        let (url, path) = match self.target() {
            Ok(target) => target,
            Err(reason) => return not_ack(reason),
        };
        let headers = match sign::sign_request(
            &self.bank_key,
            &self.config.bank_code,
            &path,
            body,
            self.clock.now(),
        ) {
            Ok(headers) => headers,
            Err(e) => return not_ack(format!("signing failed: {e}")),
        };
        let mut request = self
            .http
            .post(url)
            .timeout(Duration::from_millis(self.config.exchange_timeout_ms))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=UTF-8",
            )
            .body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return not_ack("timeout".into()),
            Err(e) => return not_ack(format!("transport: {e}")),
        };
        let status = response.status();
        let answer_headers = SignedHeaders::from_http(response.headers());
        let answer_body = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if e.is_timeout() => return not_ack("timeout reading the answer".into()),
            Err(e) => return not_ack(format!("transport: {e}")),
        };
        if status != reqwest::StatusCode::OK {
            return not_ack(format!("HTTP {}", status.as_u16()));
        }
        if let Err(e) = sign::verify_response(
            &self.bureau_key,
            &self.config.bureau_code,
            &headers.nonce,
            &answer_headers,
            &answer_body,
            self.clock.now(),
        ) {
            return not_ack(format!("answer signature: {} {e}", e.code()));
        }
        match serde_json::from_slice::<Answer>(&answer_body) {
            Ok(answer) if answer.code == "0000" || answer.code == "0001" => {
                NotifyOutcome::Acknowledged { code: answer.code }
            }
            Ok(answer) if answer.code == "2005" => NotifyOutcome::Rejected {
                code: answer.code,
                msg: answer.msg,
            },
            Ok(answer) => not_ack(format!("code {} {}", answer.code, answer.msg)),
            Err(e) => not_ack(format!("garbled answer: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use chrono::NaiveDate;
    use codecs::clock::ManualClock;

    const BUREAU_PRIVATE: &str = "437ecacb8de064675b05b33bd8c5cd9232a92f1c7d06f977d1f9cf1874f2b4e5";

    /// How the in-test fake answers.
    #[derive(Clone, Copy)]
    enum Mode {
        Sign(&'static str),
        Unsigned,
        WrongRequestNonce,
        Hang,
        Garbled,
    }

    async fn fake_bureau(mode: Mode) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let key = PrivateKey::from_hex(BUREAU_PRIVATE).expect("key");
        let app = axum::Router::new().route(
            "/prefix/bank/v1/payment-notify",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let key = key.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let nonce = headers
                        .get("X-YC-Nonce")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    assert!(!body.is_empty());
                    let now = NaiveDate::from_ymd_opt(2026, 12, 2)
                        .and_then(|d| d.and_hms_opt(9, 0, 0))
                        .expect("time");
                    let (answer, request_nonce) = match mode {
                        Mode::Sign(code) => {
                            (format!("{{\"code\":\"{code}\",\"msg\":\"x\"}}"), nonce)
                        }
                        Mode::Unsigned => {
                            return (StatusCode::OK, "{\"code\":\"0000\",\"msg\":\"成功\"}")
                                .into_response()
                        }
                        Mode::WrongRequestNonce => (
                            "{\"code\":\"0000\",\"msg\":\"成功\"}".to_string(),
                            "0".repeat(32),
                        ),
                        Mode::Hang => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            return StatusCode::OK.into_response();
                        }
                        Mode::Garbled => ("{\"code\":".to_string(), nonce),
                    };
                    let signed =
                        sign::sign_response(&key, "430600", &request_nonce, answer.as_bytes(), now)
                            .expect("sign");
                    let mut response = (StatusCode::OK, answer).into_response();
                    for (name, value) in signed.pairs() {
                        response
                            .headers_mut()
                            .insert(name, value.parse().expect("header"));
                    }
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/prefix"), hits)
    }

    fn client(base_url: String) -> NotifyClient {
        let clock = ManualClock::new(
            NaiveDate::from_ymd_opt(2026, 12, 2)
                .and_then(|d| d.and_hms_opt(9, 0, 0))
                .expect("time"),
        );
        NotifyClient::new(
            reqwest::Client::new(),
            NotifyConfig {
                base_url,
                bank_code: "YYNS0001".into(),
                bureau_code: "430600".into(),
                exchange_timeout_ms: 300,
            },
            PrivateKey::generate().expect("key"),
            PrivateKey::from_hex(BUREAU_PRIVATE)
                .expect("key")
                .public_key(),
            clock,
        )
    }

    #[tokio::test]
    async fn answer_codes_map_to_outcomes() {
        for (code, expected) in [
            ("0000", Some(true)),
            ("0001", Some(true)),
            ("2005", Some(false)),
            ("1007", None),
            ("9999", None),
        ] {
            let (url, hits) = fake_bureau(Mode::Sign(code)).await;
            let outcome = client(url).notify(b"{\"bankCode\":\"YYNS0001\"}").await;
            let got = match outcome {
                NotifyOutcome::Acknowledged { .. } => Some(true),
                NotifyOutcome::Rejected { .. } => Some(false),
                NotifyOutcome::NotAcknowledged { .. } => None,
            };
            assert_eq!(got, expected, "{code}");
            assert_eq!(hits.load(Ordering::SeqCst), 1, "never re-sent");
        }
    }

    #[tokio::test]
    async fn unsigned_replayed_garbled_and_late_answers_are_not_acknowledgements() {
        for mode in [
            Mode::Unsigned,
            Mode::WrongRequestNonce,
            Mode::Garbled,
            Mode::Hang,
        ] {
            let (url, hits) = fake_bureau(mode).await;
            let outcome = client(url).notify(b"{}").await;
            assert!(
                matches!(outcome, NotifyOutcome::NotAcknowledged { .. }),
                "{outcome:?}"
            );
            assert_eq!(hits.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn refused_connection_is_not_acknowledged() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let outcome = client(format!("http://{addr}")).notify(b"{}").await;
        assert!(matches!(outcome, NotifyOutcome::NotAcknowledged { .. }));
    }
}
