//! Hostile input at every door of the hub: the channel API (numbers JSON should not carry,
//! unicode the fields cannot hold, duplicate keys, wrong content types, racing requests on one
//! key, a payer that is the suspense account) and the hub's own connectors, talking to fake
//! servers this file runs (lying length headers, frames over the maximum, undecodable GBK, a
//! valid answer of another request, a bad MAC on a 0000, XML with a DOCTYPE, an answer that never
//! ends). The hub must not panic, must answer the channel with a typed error or IN_DOUBT where
//! money may have moved, and its journal must end consistent: an unknown outcome is resolved by
//! reversal, never assumed failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codecs::text::{encode, Charset};
use e2e_tests::*;
use fixtures::power_sim::PowerPaymentState;
use hub::state::PaymentState;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---- the channel API ----

async fn journal_rows(env: &Env) -> i64 {
    env.payment_count().await
}

/// A typed refusal: a 4xx status, a code, a Chinese message.
fn assert_typed_refusal(status: StatusCode, body: &Value, case: &str) {
    assert!(status.is_client_error(), "{case}: status {status} {body}");
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{case}: no code: {body}"
    );
    assert!(
        is_chinese(body["message"].as_str().unwrap_or_default()),
        "{case}: message must be Chinese: {body}"
    );
}

fn good_pay(env: &Env, serial: &str) -> Value {
    env.pay_body(&PayArgs::mobile(
        serial,
        ZHANG_SAN,
        PAYER_A,
        ZHANG_SAN_DUE_FEN,
    ))
}

/// The good payment's JSON with one field's raw JSON text replaced (the value is spliced in as
/// text, so that numbers serde_json would never write can be sent).
fn raw_with(env: &Env, field: &str, raw_value: &str) -> Vec<u8> {
    let body = good_pay(env, "MBHOSTILE1");
    let Value::Object(map) = body else {
        panic!("pay body is an object")
    };
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            let value = if k == field {
                raw_value.to_string()
            } else {
                v.to_string()
            };
            format!("{}:{value}", Value::String(k.clone()))
        })
        .collect();
    format!("{{{}}}", parts.join(",")).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_refuses_hostile_numbers() {
    let env = Env::start().await;
    let cases: &[(&str, &str)] = &[
        ("amount_fen", "9223372036854775807"),
        ("amount_fen", "9223372036854775808"),
        ("amount_fen", "-9223372036854775808"),
        ("amount_fen", "99999999999999999999999999999999"),
        ("amount_fen", "-0"),
        ("amount_fen", "0"),
        ("amount_fen", "-1"),
        ("amount_fen", "1.5"),
        ("amount_fen", "22335.0"),
        ("amount_fen", "2.2335e4"),
        ("amount_fen", "1e400"),
        ("amount_fen", "\"22335\""),
        ("amount_fen", "\"100\""),
        ("amount_fen", "null"),
        ("amount_fen", "true"),
        ("amount_fen", "[22335]"),
        ("amount_fen", "{\"fen\":22335}"),
        ("total_due_fen", "9223372036854775807"),
        ("total_due_fen", "-1"),
        ("total_due_fen", "-0.0"),
        ("total_due_fen", "\"22335\""),
        ("channel", "2"),
        ("channel_date", "20261203"),
        ("customer_no", "4310020000000001"),
        ("payer_account", "6230901000000000011"),
    ];
    for (field, raw) in cases {
        let case = format!("{field} = {raw}");
        let (status, body) = env
            .post_raw("/api/v1/payments", raw_with(&env, field, raw))
            .await;
        assert_typed_refusal(status, &body, &case);
        assert_eq!(journal_rows(&env).await, 0, "{case}: journaled");
    }
    // The hub is still up and pays a good request, exactly once.
    let (status, answer) = env
        .post("/api/v1/payments", &good_pay(&env, "MBHOSTILE2"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );
}

/// Values no field of the payment can hold.
fn hostile_texts(valid: &str) -> Vec<(String, String)> {
    let full_width: String = valid
        .chars()
        .map(|c| match c {
            '0'..='9' | 'A'..='Z' | 'a'..='z' => {
                char::from_u32(c as u32 - 0x20 + 0xFF00).unwrap_or(c)
            }
            other => other,
        })
        .collect();
    vec![
        ("GBK-unencodable 𠀀".into(), format!("{valid}𠀀")),
        ("only 𠀀".into(), "𠀀".into()),
        ("full-width digits".into(), full_width),
        ("RTL override".into(), format!("\u{202E}{valid}")),
        ("RTL mark inside".into(), {
            let mut t = valid.to_string();
            t.insert(1.min(t.len()), '\u{200F}');
            t
        }),
        ("NUL byte".into(), format!("{valid}\u{0}")),
        ("NUL only".into(), "\u{0}".into()),
        ("zero-width space".into(), format!("{valid}\u{200B}")),
        ("emoji".into(), format!("{valid}💡")),
        ("very long".into(), "9".repeat(10_000)),
        ("empty".into(), String::new()),
        ("spaces".into(), format!(" {valid} ")),
        ("newline".into(), format!("{valid}\r\n")),
        ("combining accent".into(), format!("{valid}\u{0301}")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_refuses_hostile_unicode_in_every_field() {
    let env = Env::start().await;
    let good = good_pay(&env, "MBHOSTILE3");
    let fields = [
        "channel",
        "channel_date",
        "channel_serial",
        "payee",
        "instance",
        "customer_no",
        "payer_account",
        "branch_no",
        "teller_no",
    ];
    for field in fields {
        let valid = good[field].as_str().unwrap_or_default().to_string();
        for (label, text) in hostile_texts(&valid) {
            let case = format!("{field}: {label}");
            let mut body = good.clone();
            body[field] = Value::String(text);
            let (status, answer) = env.post("/api/v1/payments", &body).await;
            assert_typed_refusal(status, &answer, &case);
            assert_eq!(journal_rows(&env).await, 0, "{case}: journaled");
        }
    }
    // The query's customer number too.
    for (label, text) in hostile_texts(ZHANG_SAN) {
        let body = json!({
            "payee": PAYEE, "instance": BANK_CODE, "customer_no": text, "channel": "02",
            "branch_no": BRANCH, "teller_no": "T00001",
        });
        let (status, answer) = env.post("/api/v1/bills/query", &body).await;
        assert_typed_refusal(status, &answer, &format!("query customer_no: {label}"));
    }
    // Status and reversal paths with hostile segments: typed, never a panic.
    for segment in [
        "%F0%A0%80%80",
        "%00",
        "%EF%BC%90%EF%BC%92",
        &"9".repeat(4_000),
    ] {
        let url = format!("{}/api/v1/payments/02/{segment}/MBX", env.base_url());
        let response = env.http.get(url).send().await.expect("hub answers");
        assert!(
            response.status().is_client_error(),
            "status path {segment}: {}",
            response.status()
        );
    }
    let (status, answer) = env
        .post("/api/v1/payments", &good_pay(&env, "MBHOSTILE4"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_refuses_duplicate_keys_bad_encodings_and_content_types() {
    let env = Env::start().await;
    let good = serde_json::to_string(&good_pay(&env, "MBHOSTILE5")).expect("json");
    let inner = good.trim_start_matches('{');
    let raw_cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "amount_fen twice, different values",
            format!("{{\"amount_fen\":1,{inner}").into_bytes(),
        ),
        (
            "channel_serial twice",
            format!("{{\"channel_serial\":\"OTHER1\",{inner}").into_bytes(),
        ),
        (
            "payer_account twice",
            format!("{{\"payer_account\":\"{PAYER_B}\",{inner}").into_bytes(),
        ),
        ("GBK bytes instead of UTF-8", {
            let mut body = good.clone().into_bytes();
            body.extend_from_slice(&encode("张三", Charset::Gbk).expect("gbk"));
            body
        }),
        ("lone surrogate escape", {
            good.replacen("MBHOSTILE5", "MB\\ud800", 1).into_bytes()
        }),
        ("trailing garbage", format!("{good}xyz").into_bytes()),
        ("two documents", format!("{good}{good}").into_bytes()),
        ("array", format!("[{good}]").into_bytes()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("NUL bytes", vec![0u8; 64]),
        ("empty", vec![]),
        ("deeply nested", {
            let mut t = "[".repeat(5_000);
            t.push_str(&"]".repeat(5_000));
            t.into_bytes()
        }),
    ];
    for (case, body) in raw_cases {
        let (status, answer) = env.post_raw("/api/v1/payments", body).await;
        assert_typed_refusal(status, &answer, case);
        assert_eq!(journal_rows(&env).await, 0, "{case}: journaled");
    }
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = env
            .http
            .post(format!("{}/api/v1/payments", env.base_url()))
            .body(good.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("hub answers");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_typed_refusal(status, &answer, &format!("content-type {content_type:?}"));
        assert_eq!(journal_rows(&env).await, 0, "{content_type:?}: journaled");
    }
}

/// Different payments racing on one channel key: exactly one moves money, the others are refused
/// as a mismatched repeat (or, if they come after it, told the same); identical ones racing get
/// one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_payments_on_one_channel_key_move_money_once() {
    let env = Env::start().await;
    let mut tasks = Vec::new();
    for i in 0..12i64 {
        let http = env.http.clone();
        let url = format!("{}/api/v1/payments", env.base_url());
        let mut body = good_pay(&env, "MBRACE01");
        // Overpaying is allowed (the excess is prepaid): every racer is a valid, different payment.
        body["amount_fen"] = json!(ZHANG_SAN_DUE_FEN + i);
        tasks.push(tokio::spawn(async move {
            let response = http.post(url).json(&body).send().await.expect("answer");
            let status = response.status();
            let value: Value = response.json().await.unwrap_or(Value::Null);
            (i, status, value)
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        let (i, status, answer) = task.await.expect("racer");
        if status == StatusCode::OK {
            accepted.push((i, answer));
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "racer {i}: {answer}");
            assert_eq!(answer["code"], "DUPLICATE_MISMATCH", "racer {i}: {answer}");
        }
    }
    assert_eq!(
        accepted.len(),
        1,
        "exactly one racer accepted: {accepted:?}"
    );
    let (winner, answer) = accepted.first().cloned().expect("one");
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(env.payment_count().await, 1);
    assert_eq!(env.core.posting_count(), 1, "one debit");
    let paid = ZHANG_SAN_DUE_FEN + winner;
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN - paid, paid);
    let writes: Vec<_> = env
        .power
        .payments()
        .into_iter()
        .filter(|p| p.customer_no == ZHANG_SAN)
        .collect();
    assert_eq!(writes.len(), 1, "one write-off");

    // Identical racers on a fresh key: one payment, one answer for all.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = env.http.clone();
        let url = format!("{}/api/v1/payments", env.base_url());
        let body = env.pay_body(&PayArgs::mobile("MBRACE02", LI_SI, PAYER_B, LI_SI_DUE_FEN));
        tasks.push(tokio::spawn(async move {
            let response = http.post(url).json(&body).send().await.expect("answer");
            (
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("racer"));
    }
    let first = answers.first().cloned().expect("answers");
    assert_eq!(first.0, StatusCode::OK, "{first:?}");
    for other in &answers {
        assert_eq!(other, &first, "identical racers get one answer");
    }
    assert_eq!(env.core.posting_count(), 2, "one more debit");
    assert_eq!(
        env.balance_fen(PAYER_B),
        PAYER_B_OPENING_FEN - LI_SI_DUE_FEN
    );
}

/// The payer is the collection suspense account itself: the 8002 would move nothing, yet the bill
/// would be written off with money nobody paid. The hub must refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payer_equal_to_the_suspense_account_is_refused() {
    let env = Env::start().await;
    let (status, answer) = env
        .pay(&PayArgs::mobile(
            "MBSUSP01",
            ZHANG_SAN,
            SUSPENSE,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_ne!(answer["status"], "SUCCEEDED", "{status} {answer}");
    if status == StatusCode::OK {
        assert_eq!(answer["status"], "FAILED", "{answer}");
    } else {
        assert_typed_refusal(status, &answer, "payer = suspense");
    }
    assert!(
        env.power.payments().is_empty(),
        "nothing written off with the bank's own money"
    );
    assert_eq!(env.core.posting_count(), 0, "no posting");
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// The payer is the power company's settlement account (an internal account the hub itself
/// configures for this partner): the core lets an internal account run a debit balance, so an
/// unguarded hub would write a bill off with the bank's money. The hub must refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payer_equal_to_the_settlement_account_is_refused() {
    let env = Env::start().await;
    let (status, answer) = env
        .pay(&PayArgs::mobile(
            "MBSETT01",
            ZHANG_SAN,
            SETTLEMENT,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "PAYER_NOT_ALLOWED", "{answer}");
    assert_typed_refusal(status, &answer, "payer = settlement");
    let (status, answer) = env
        .pay(&PayArgs::mobile(
            "MBSUSP01",
            ZHANG_SAN,
            SUSPENSE,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "PAYER_NOT_ALLOWED", "{answer}");
    assert!(
        env.power.payments().is_empty(),
        "nothing written off with the bank's own money"
    );
    assert_eq!(env.core.posting_count(), 0, "no posting");
    assert_eq!(env.balance_fen(SETTLEMENT), 0);
}

// ---- fake partners: the hub's connectors against hostile answers ----

/// What a fake does with the first request of the targeted TxCode (every other request goes to
/// the real simulator untouched).
enum Act {
    /// Not forwarded; these raw bytes are the answer, then the connection is held open.
    Answer(Vec<u8>),
    /// Forwarded (the simulator processes it); the real answer is thrown away and these raw bytes
    /// are sent instead, then the connection is held open.
    ForwardThenAnswer(Vec<u8>),
    /// Forwarded; a length header of `len` and then one byte every 30 ms, for ever.
    Trickle { len: usize },
}

struct Fake {
    port: u16,
    fired: Arc<AtomicBool>,
    /// The TxCode (power) or TranCode (core) of every request the hub sent.
    requests: Arc<Mutex<Vec<String>>>,
}

fn tx_of(body: &[u8], digits: usize) -> String {
    if digits == 6 {
        return String::from_utf8_lossy(body.get(0..4).unwrap_or_default()).into_owned();
    }
    xml_field(body, "TranCode")
}

fn xml_field(body: &[u8], tag: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    text.find(&open)
        .and_then(|start| {
            let from = start + open.len();
            text[from..]
                .find(&close)
                .map(|end| text[from..from + end].to_string())
        })
        .unwrap_or_default()
}

async fn read_frame(stream: &mut TcpStream, digits: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut header = vec![0u8; digits];
    stream.read_exact(&mut header).await.ok()?;
    let len: usize = std::str::from_utf8(&header).ok()?.parse().ok()?;
    let mut body = vec![0u8; len.min(2 << 20)];
    stream.read_exact(&mut body).await.ok()?;
    Some((header, body))
}

/// Holds the connection until the hub closes it (bounded).
async fn hold(stream: &mut TcpStream) {
    let mut sink = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn forward(
    target: std::net::SocketAddr,
    header: &[u8],
    body: &[u8],
    digits: usize,
) -> Option<Vec<u8>> {
    let mut real = TcpStream::connect(target).await.ok()?;
    real.write_all(header).await.ok()?;
    real.write_all(body).await.ok()?;
    let (h, b) = read_frame(&mut real, digits).await?;
    let mut frame = h;
    frame.extend_from_slice(&b);
    Some(frame)
}

async fn start_fake(
    target: std::net::SocketAddr,
    digits: usize,
    hostile_tx: &'static str,
    act: impl Fn(&[u8]) -> Act + Send + Sync + 'static,
) -> Fake {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("fake binds");
    let port = listener.local_addr().expect("addr").port();
    let fired = Arc::new(AtomicBool::new(false));
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let act = Arc::new(act);
    let (fired2, requests2) = (fired.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (fired, requests, act) = (fired2.clone(), requests2.clone(), act.clone());
            tokio::spawn(async move {
                let Some((header, body)) = read_frame(&mut stream, digits).await else {
                    return;
                };
                let tx = tx_of(&body, digits);
                if let Ok(mut log) = requests.lock() {
                    log.push(tx.clone());
                }
                let hostile = tx == hostile_tx && !fired.swap(true, Ordering::SeqCst);
                if !hostile {
                    if let Some(answer) = forward(target, &header, &body, digits).await {
                        let _ = stream.write_all(&answer).await;
                    }
                    return;
                }
                match act(&body) {
                    Act::Answer(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                        hold(&mut stream).await;
                    }
                    Act::ForwardThenAnswer(bytes) => {
                        let _ = forward(target, &header, &body, digits).await;
                        let _ = stream.write_all(&bytes).await;
                        hold(&mut stream).await;
                    }
                    Act::Trickle { len } => {
                        let _ = forward(target, &header, &body, digits).await;
                        let head = format!("{len:0digits$}");
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        // At most a minute of dribble; the hub must have given up long before.
                        for _ in 0..2_000 {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            if stream.write_all(b"0").await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Fake {
        port,
        fired,
        requests,
    }
}

fn mac_key() -> [u8; 16] {
    codecs::mac::parse_key_hex(MAC_KEY_HEX).expect("key")
}

/// A 1002 answer built by hand from the request: the header echoed (BankSerial replaced when
/// `serial` is given), RspCode 0000, `rsp_msg` (40 bytes), PartnerSerial, AcctDate, Prepaid, MAC
/// (spoiled when `good_mac` is false). Framed with its 6-digit length.
fn forged_1002_answer(
    request: &[u8],
    serial: Option<&str>,
    rsp_msg: &[u8],
    good_mac: bool,
) -> Vec<u8> {
    let mut body = request.get(0..60).unwrap_or_default().to_vec();
    if let Some(serial) = serial {
        let mut field = serial.as_bytes().to_vec();
        field.resize(20, b' ');
        body.splice(40..60, field);
    }
    body.extend_from_slice(b"0000");
    let mut msg = rsp_msg.to_vec();
    msg.resize(40, b' ');
    body.extend_from_slice(&msg);
    body.extend_from_slice(b"CD202612030000099999");
    body.extend_from_slice(b"20261203");
    body.extend_from_slice(b"000000000000");
    let mut mac = codecs::mac::cdgj_mac_hex(&mac_key(), &body).into_bytes();
    if !good_mac {
        if let Some(first) = mac.first_mut() {
            *first = if *first == b'0' { b'1' } else { b'0' };
        }
    }
    body.extend_from_slice(&mac);
    let mut frame = format!("{:06}", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    frame
}

fn success_msg() -> Vec<u8> {
    encode("成功", Charset::Gbk).expect("gbk")
}

/// Runs one payment against a fake power company: the channel must hear IN_DOUBT (the debit is
/// made, the write-off unknown), and the payment must end REVERSED with the payer whole, the
/// power company holding no write-off, and the 1002 sent once.
async fn power_case(case: &str, act: impl Fn(&[u8]) -> Act + Send + Sync + 'static) {
    let mut env = Env::start().await;
    let fake = start_fake(env.power.addr, 6, "1002", act).await;
    let mut config = env.hub_config();
    for link in &mut config.chendian {
        link.port = fake.port;
    }
    env.stop_hub().await;
    env.start_hub_with_config(config).await;
    let (status, answer) = env
        .pay(&PayArgs::mobile(
            "MBFAKE01",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert!(
        fake.fired.load(Ordering::SeqCst),
        "{case}: the fake never answered a 1002"
    );
    assert_eq!(status, StatusCode::OK, "{case}: {answer}");
    assert_eq!(
        answer["status"], "IN_DOUBT",
        "{case}: money moved, outcome unknown: {answer}"
    );
    let serial = answer["hub_serial"]
        .as_str()
        .expect("hub_serial")
        .to_string();
    let row = env.wait_final(&serial).await;
    assert_eq!(
        row.state,
        PaymentState::Reversed,
        "{case}: events {:?}",
        env.event_notes(&serial).await
    );
    assert!(
        matches!(
            env.power_payment(&serial).map(|p| p.state),
            None | Some(PowerPaymentState::Reversed)
        ),
        "{case}: the power company still holds a write-off"
    );
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
    let pays = fake
        .requests
        .lock()
        .map(|r| r.iter().filter(|t| t.as_str() == "1002").count())
        .unwrap_or(0);
    assert_eq!(pays, 1, "{case}: the 1002 is never re-sent");
    // The hub still works: the next payment goes through (the fake is transparent now).
    let (status, answer) = env
        .pay(&PayArgs::mobile("MBFAKE02", LI_SI, PAYER_B, LI_SI_DUE_FEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{case}: {answer}");
    assert_eq!(answer["status"], "SUCCEEDED", "{case}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_whose_length_header_claims_more_than_it_sends() {
    power_case("length too long", |_| {
        let mut bytes = b"000160".to_vec();
        bytes.extend_from_slice(&[b'0'; 100]);
        Act::ForwardThenAnswer(bytes)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_whose_length_header_claims_less_than_it_sends() {
    power_case("length too short", |request| {
        let mut frame = forged_1002_answer(request, None, &success_msg(), true);
        frame.splice(0..6, b"000050".iter().copied());
        Act::ForwardThenAnswer(frame)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_with_non_digit_length() {
    for header in [&b"00A160"[..], b"+00160", b"  0160", b"-00160"] {
        let header = header.to_vec();
        power_case(
            &format!("length {:?}", String::from_utf8_lossy(&header)),
            move |request| {
                let mut frame = forged_1002_answer(request, None, &success_msg(), true);
                frame.splice(0..6, header.iter().copied());
                Act::ForwardThenAnswer(frame)
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_over_the_maximum_frame() {
    power_case("frame over 1024", |_| {
        let mut bytes = b"999999".to_vec();
        bytes.extend_from_slice(&[b'0'; 2_000]);
        Act::ForwardThenAnswer(bytes)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_with_undecodable_gbk_and_a_good_mac() {
    // 0xFF is no GBK lead byte; 0x81 0x20 is a lead byte cut off by a space.
    power_case("garbage GBK", |request| {
        Act::Answer(forged_1002_answer(
            request,
            None,
            &[0xFF, 0xFE, 0x81, 0x20, 0x80, 0xFF],
            true,
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_of_another_request_with_a_good_mac() {
    // A late answer of some other 1002: valid frame, valid MAC, wrong BankSerial.
    power_case("wrong serial", |request| {
        Act::Answer(forged_1002_answer(
            request,
            Some("B2026120300000000999"),
            &success_msg(),
            true,
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_0000_with_a_wrong_mac() {
    power_case("0000 with a wrong MAC", |request| {
        Act::Answer(forged_1002_answer(request, None, &success_msg(), false))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_answer_that_never_ends() {
    power_case("never ends", |_| Act::Trickle { len: 160 }).await;
}

// ---- a fake core ----

/// A hand-made 8002 answer: RetCode 000000 and a posting, echoing the request's Head (or another
/// SeqNo), with `doctype` and `ret_msg` spliced in as raw text, framed with 8 digits.
fn forged_core_answer(
    request: &[u8],
    seq_no: Option<&str>,
    doctype: &str,
    ret_msg: &[u8],
) -> Vec<u8> {
    let seq = seq_no
        .map(str::to_string)
        .unwrap_or_else(|| xml_field(request, "SeqNo"));
    let date = xml_field(request, "TranDate");
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"GBK\"?>{doctype}<Service><Head><TranCode>8002</TranCode>\
         <ChannelId>MBP</ChannelId><SeqNo>{seq}</SeqNo><TranDate>{date}</TranDate>\
         <TranTime>{}</TranTime><BranchId>{}</BranchId><TellerId>{}</TellerId>\
         <RetCode>000000</RetCode><RetMsg>",
        xml_field(request, "TranTime"),
        xml_field(request, "BranchId"),
        xml_field(request, "TellerId"),
    )
    .into_bytes();
    body.extend_from_slice(ret_msg);
    body.extend_from_slice(
        format!(
            "</RetMsg><CoreSeqNo>C{date}0000009999</CoreSeqNo><CoreDate>{date}</CoreDate></Head><Body></Body></Service>"
        )
        .as_bytes(),
    );
    let mut frame = format!("{:08}", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    frame
}

/// Runs one payment against a fake core. `posted` says whether the fake let the real core post
/// the 8002. The channel hears IN_DOUBT; the payment ends REVERSED (posted) or CORE_FAILED (not),
/// the payer whole, nothing written off.
async fn core_case(case: &str, posted: bool, act: impl Fn(&[u8]) -> Act + Send + Sync + 'static) {
    let mut env = Env::start().await;
    let fake = start_fake(env.core.addr, 8, "8002", act).await;
    let mut config = env.hub_config();
    config.core.port = fake.port;
    env.stop_hub().await;
    env.start_hub_with_config(config).await;
    let (status, answer) = env
        .pay(&PayArgs::mobile(
            "MBCORE01",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert!(
        fake.fired.load(Ordering::SeqCst),
        "{case}: the fake never answered an 8002"
    );
    assert_eq!(status, StatusCode::OK, "{case}: {answer}");
    assert_eq!(
        answer["status"], "IN_DOUBT",
        "{case}: outcome unknown: {answer}"
    );
    let serial = answer["hub_serial"]
        .as_str()
        .expect("hub_serial")
        .to_string();
    let row = env.wait_final(&serial).await;
    let want = if posted {
        PaymentState::Reversed
    } else {
        PaymentState::CoreFailed
    };
    let events = env.event_notes(&serial).await;
    assert_eq!(row.state, want, "{case}: events {events:?}");
    assert!(
        env.power.payments().is_empty(),
        "{case}: nothing written off"
    );
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
    let leaked = format!("{:?} {events:?}", row.last_error);
    assert!(
        !leaked.contains("root:"),
        "{case}: a local file leaked: {leaked}"
    );
    let (status, answer) = env
        .pay(&PayArgs::mobile("MBCORE02", LI_SI, PAYER_B, LI_SI_DUE_FEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{case}: {answer}");
    assert_eq!(answer["status"], "SUCCEEDED", "{case}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_answer_with_an_external_entity() {
    core_case("XXE", true, |request| {
        Act::ForwardThenAnswer(forged_core_answer(
            request,
            None,
            "<!DOCTYPE Service [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
            b"&xxe;",
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_answer_with_entity_expansion() {
    core_case("billion laughs", true, |request| {
        let mut doctype = String::from("<!DOCTYPE Service [<!ENTITY l0 \"lol\">");
        for i in 1..10 {
            let prev = i - 1;
            doctype.push_str(&format!(
                "<!ENTITY l{i} \"&l{prev};&l{prev};&l{prev};&l{prev};&l{prev};&l{prev};&l{prev};&l{prev};&l{prev};&l{prev};\">"
            ));
        }
        doctype.push_str("]>");
        Act::ForwardThenAnswer(forged_core_answer(request, None, &doctype, b"&l9;"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_answer_of_another_request() {
    // Not forwarded: the core never posted. A hub that believed the foreign 000000 would write
    // the bill off with money it never took.
    core_case("wrong SeqNo", false, |request| {
        Act::Answer(forged_core_answer(
            request,
            Some("H2026120399999999"),
            "",
            "成功".as_bytes(),
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_answer_with_undecodable_gbk() {
    core_case("garbage GBK", true, |request| {
        Act::ForwardThenAnswer(forged_core_answer(
            request,
            None,
            "",
            &[0xFF, 0x81, 0x20, 0xFE],
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_answer_with_lying_lengths() {
    core_case("length too long", true, |request| {
        let mut frame = forged_core_answer(request, None, "", "成功".as_bytes());
        frame.splice(0..8, b"00009000".iter().copied());
        Act::ForwardThenAnswer(frame)
    })
    .await;
    core_case("non-digit length", true, |request| {
        let mut frame = forged_core_answer(request, None, "", "成功".as_bytes());
        frame.splice(0..8, b"0000x300".iter().copied());
        Act::ForwardThenAnswer(frame)
    })
    .await;
    core_case("over 1 MiB", true, |_| {
        let mut bytes = b"99999999".to_vec();
        bytes.extend_from_slice(&[b'<'; 4_096]);
        Act::ForwardThenAnswer(bytes)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_answer_that_never_ends() {
    core_case("never ends", true, |_| Act::Trickle { len: 400 }).await;
}
