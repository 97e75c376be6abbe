//! The client against a tiny in-test fake insurer (axum on loopback): timeouts, garbled or
//! unsigned answers, HTTP errors, and each answer code mapped to its outcome. The fake signs with
//! the spec's bank key, so the client is configured to expect that key as the insurer's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::NaiveDate;
use codecs::clock::{ManualClock, SharedClock};
use codecs::Money;
use serde_json::Value;

use super::client::*;
use super::envelope::tests::{self_keys, signed_response, BANK_PRIVATE, BANK_PUBLIC, DATA_KEY};
use super::messages::PayChannel;

enum Fake {
    Signed {
        ret_code: &'static str,
        payload: Option<String>,
    },
    Raw(StatusCode, &'static str),
    Sleep(u64),
    WrongSerial,
}

type Script = Arc<dyn Fn(&str) -> Fake + Send + Sync>;

async fn fake(script: Script) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/cxjm/bank/api",
        post(move |body: Bytes| {
            let script = script.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let request: Value = serde_json::from_slice(&body).expect("request json");
                let field = |n: &str| {
                    request
                        .get(n)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let tx_code = field("txCode");
                let members = |serial: String| {
                    vec![
                        ("version".to_string(), "1.0".to_string()),
                        ("bankCode".to_string(), field("bankCode")),
                        ("txCode".to_string(), tx_code.clone()),
                        ("reqSerial".to_string(), serial),
                        ("rspTime".to_string(), "20261202103016".to_string()),
                        ("retMsg".to_string(), "应答".to_string()),
                    ]
                };
                let sign = |extra: Vec<(String, String)>, payload: Option<&str>| {
                    let pairs: Vec<(&str, &str)> = extra
                        .iter()
                        .map(|(a, b)| (a.as_str(), b.as_str()))
                        .collect();
                    signed_response(&self_keys(), &pairs, payload)
                };
                match script(&tx_code) {
                    Fake::Signed { ret_code, payload } => {
                        let mut m = members(field("reqSerial"));
                        m.push(("retCode".into(), ret_code.into()));
                        (StatusCode::OK, sign(m, payload.as_deref()))
                    }
                    Fake::WrongSerial => {
                        let mut m = members("OTHER".into());
                        m.push(("retCode".into(), "0000".into()));
                        (StatusCode::OK, sign(m, Some("{}")))
                    }
                    Fake::Raw(status, text) => (status, text.to_string()),
                    Fake::Sleep(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        (StatusCode::OK, String::new())
                    }
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/cxjm/bank/api"), hits)
}

fn clock() -> SharedClock {
    ManualClock::new(
        NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(10, 30, 15))
            .expect("time"),
    )
}

fn client(url: &str) -> MedicalClient {
    let config = MedicalConfig {
        instance: "medins-xinhuang".into(),
        url: url.into(),
        bank_code: "HHXH0001".into(),
        data_key_hex: DATA_KEY.into(),
        bank_private_key_hex: BANK_PRIVATE.into(),
        insurer_public_key_hex: BANK_PUBLIC.into(),
        money_timeout_ms: 300,
        query_timeout_ms: 300,
        allow_plain_http: true,
    };
    MedicalClient::new(config, reqwest::Client::new(), clock()).expect("client")
}

fn order() -> ContributionOrder {
    ContributionOrder {
        id_no: "431227199003150016".into(),
        name: " 张三 ".into(),
        year: "2027".into(),
        amount: Money::from_fen(40_000),
        payer_name: "李四".into(),
        payer_acct: "6230901234567890456".into(),
        channel: PayChannel::Mobile,
    }
}

fn key(serial: &str) -> RequestKey {
    RequestKey {
        req_serial: serial.into(),
        req_time: NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(10, 30, 15))
            .expect("t"),
    }
}

async fn pay_with(fake_reply: impl Fn() -> Fake + Send + Sync + 'static) -> PayOutcome {
    let (url, _) = fake(Arc::new(move |_| fake_reply())).await;
    client(&url).pay(&key("XH1"), &order()).await.expect("sent")
}

const RECEIPT: &str = r#"{"payNo":"CXJM2026120200000001","idNo":"431227199003150016","year":"2027","amount":"400.00","payTime":"20261202103016","acctDate":"20261202"}"#;

#[tokio::test]
async fn a_signed_success_is_paid_with_the_insurer_acct_date() {
    let outcome = pay_with(|| Fake::Signed {
        ret_code: "0000",
        payload: Some(RECEIPT.into()),
    })
    .await;
    let PayOutcome::Paid(receipt) = outcome else {
        panic!("expected Paid, got {outcome:?}")
    };
    assert_eq!(receipt.pay_no, "CXJM2026120200000001");
    assert_eq!(
        receipt.acct_date,
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("d")
    );
}

#[tokio::test]
async fn everything_without_a_valid_answer_is_unknown_for_a_payment() {
    type Reply = Box<dyn Fn() -> Fake + Send + Sync>;
    let cases: Vec<(&str, Reply)> = vec![
        ("timeout", Box::new(|| Fake::Sleep(2_000))),
        (
            "garbled",
            Box::new(|| Fake::Raw(StatusCode::OK, "<html>busy</html>")),
        ),
        (
            "http 502",
            Box::new(|| Fake::Raw(StatusCode::BAD_GATEWAY, "")),
        ),
        ("wrong serial", Box::new(|| Fake::WrongSerial)),
        (
            "9999",
            Box::new(|| Fake::Signed {
                ret_code: "9999",
                payload: None,
            }),
        ),
        (
            "0000 for another amount",
            Box::new(|| Fake::Signed {
                ret_code: "0000",
                payload: Some(RECEIPT.replace("400.00", "401.00")),
            }),
        ),
    ];
    for (name, reply) in cases {
        let outcome = pay_with(reply).await;
        assert!(
            matches!(outcome, PayOutcome::Unknown { .. }),
            "{name}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_signature_is_unknown() {
    let (url, _) = fake(Arc::new(|_| Fake::Raw(
        StatusCode::OK,
        r#"{"version":"1.0","bankCode":"HHXH0001","txCode":"2001","reqSerial":"XH1","rspTime":"20261202103016","retCode":"0000","retMsg":"成功","iv":"","encData":"","sign":"5b62b8489f7f5047938f599fe84fcf383eb28bc21bab2eab3d43316daa41def2d945eca6e47543860c6db0887bf2a9b860e328422b43b7ddb17437ec6077c7e9"}"#,
    )))
    .await;
    let outcome = client(&url).pay(&key("XH1"), &order()).await.expect("sent");
    assert!(
        matches!(outcome, PayOutcome::Unknown { ref reason } if reason.contains("验签")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn business_refusals_are_refused() {
    for code in ["1002", "1003", "1004", "1005", "9005"] {
        let outcome = pay_with(move || Fake::Signed {
            ret_code: code,
            payload: None,
        })
        .await;
        assert!(
            matches!(outcome, PayOutcome::Refused(ref r) if r.ret_code == code),
            "{code}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn an_invalid_id_number_never_leaves_the_hub() {
    let (url, hits) = fake(Arc::new(|_| Fake::Raw(StatusCode::OK, ""))).await;
    let client = client(&url);
    let mut bad = order();
    bad.id_no = "431227199003150017".into();
    let error = client.pay(&key("XH1"), &bad).await.expect_err("refused");
    assert_eq!(error.code(), "MED_ID_CHECK_DIGIT");
    let error = client
        .query_insured(&key("XH2"), "431227900315001")
        .await
        .expect_err("15 digits");
    assert_eq!(error.code(), "MED_ID_LENGTH");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_refused_connection_is_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = client(&format!("http://{addr}/cxjm/bank/api"));
    let error = client
        .pay(&key("XH1"), &order())
        .await
        .expect_err("not sent");
    assert_eq!(error.code(), "CONNECT");
}

#[tokio::test]
async fn plain_http_needs_the_test_flag() {
    let mut config = MedicalConfig {
        instance: "medins-xinhuang".into(),
        url: "http://127.0.0.1:1/cxjm/bank/api".into(),
        bank_code: "HHXH0001".into(),
        data_key_hex: DATA_KEY.into(),
        bank_private_key_hex: BANK_PRIVATE.into(),
        insurer_public_key_hex: BANK_PUBLIC.into(),
        money_timeout_ms: 300,
        query_timeout_ms: 300,
        allow_plain_http: false,
    };
    let error = MedicalClient::new(config.clone(), reqwest::Client::new(), clock())
        .expect_err("http refused");
    assert_eq!(error.code(), "MED_CONFIG");
    config.allow_plain_http = true;
    assert!(MedicalClient::new(config, reqwest::Client::new(), clock()).is_ok());
}

#[tokio::test]
async fn cancel_and_status_map_their_codes() {
    let (url, _) = fake(Arc::new(|tx| match tx {
        "2002" => Fake::Signed {
            ret_code: "2002",
            payload: None,
        },
        _ => Fake::Signed {
            ret_code: "0000",
            payload: Some(r#"{"status":"0","payNo":"","amount":"","acctDate":""}"#.into()),
        },
    }))
    .await;
    let client = client(&url);
    let original = OriginalPayment {
        req_serial: "XH1".into(),
        req_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("d"),
    };
    let cancel = client
        .cancel(
            &key("XH2"),
            &original,
            "431227199003150016",
            Money::from_fen(40_000),
        )
        .await
        .expect("sent");
    assert!(
        matches!(cancel, CancelOutcome::AlreadyCancelled),
        "{cancel:?}"
    );
    let status = client.status(&key("XH3"), &original).await.expect("sent");
    assert_eq!(status, StatusOutcome::InProcess);

    let (url, _) = fake(Arc::new(|_| Fake::Sleep(2_000))).await;
    let cancel = client_for(&url)
        .cancel(
            &key("XH4"),
            &original,
            "431227199003150016",
            Money::from_fen(40_000),
        )
        .await
        .expect("sent");
    assert!(
        matches!(cancel, CancelOutcome::Unknown { .. }),
        "{cancel:?}"
    );
}

fn client_for(url: &str) -> MedicalClient {
    client(url)
}

#[test]
fn not_found_is_final_only_330_seconds_after_the_original() {
    let t0 = NaiveDate::from_ymd_opt(2026, 12, 2)
        .and_then(|d| d.and_hms_opt(10, 30, 15))
        .expect("t");
    assert!(!not_found_is_final(t0, t0 + chrono::Duration::seconds(329)));
    assert!(not_found_is_final(t0, t0 + chrono::Duration::seconds(330)));
}
