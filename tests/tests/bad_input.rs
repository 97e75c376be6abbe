//! Bad input at every door: the channel API answers a clear JSON refusal and journals nothing;
//! the simulators' listeners close or answer 9001/E90001 and stay up for the next good request.

use std::time::Duration;

use codecs::text::{encode, Charset};
use e2e_tests::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IO_LIMIT: Duration = Duration::from_secs(5);

async fn journal_rows(env: &Env) -> (i64, i64) {
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payment_events")
        .fetch_one(env.journal.pool())
        .await
        .expect("count events");
    (env.payment_count().await, events)
}

fn assert_refusal(
    status: StatusCode,
    body: &Value,
    want_status: StatusCode,
    want_code: &str,
    case: &str,
) {
    assert_eq!(status, want_status, "{case}: {body}");
    assert_eq!(body["code"], want_code, "{case}: {body}");
    assert!(
        is_chinese(body["message"].as_str().unwrap_or_default()),
        "{case}: message must be Chinese: {body}"
    );
    assert!(
        !body["detail"].as_str().unwrap_or_default().is_empty(),
        "{case}: detail must say what was wrong: {body}"
    );
}

fn good_pay(env: &Env) -> Value {
    env.pay_body(&PayArgs::mobile(
        "MBBAD01",
        ZHANG_SAN,
        PAYER_A,
        ZHANG_SAN_DUE_FEN,
    ))
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_refuses_bad_payments_and_journals_nothing() {
    let env = Env::start().await;
    let before = journal_rows(&env).await;
    let bad = StatusCode::BAD_REQUEST;

    let (s, b) = env
        .post_raw(
            "/api/v1/payments",
            b"{\"channel\": \"02\", garbage".to_vec(),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "garbage JSON");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "amount_fen", json!("abc")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "amount as a string");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "channel", json!(2)),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "channel as a number");

    let mut missing = good_pay(&env);
    if let Some(map) = missing.as_object_mut() {
        map.remove("payer_account");
    }
    let (s, b) = env.post("/api/v1/payments", &missing).await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "missing payer_account");

    let (s, b) = env.post("/api/v1/payments", &json!({})).await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "empty object");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "amount_fen", json!(223.35)),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "amount in yuan with decimals");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "amount_fen", json!("22335")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "amount as digits in a string");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "amount_fen", json!(-100)),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "negative amount");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "amount_fen", json!(0)),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "zero amount");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(
                good_pay(&env),
                "payer_account",
                json!("62309010000000000１1"),
            ),
        )
        .await;
    assert_refusal(
        s,
        &b,
        bad,
        "BAD_REQUEST",
        "full-width digit in the payer account",
    );

    // U+20000 has no GBK code.
    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "customer_no", json!("4310020000𠀀01")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "customer number outside GBK");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "teller_no", json!("柜员•1")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "teller outside GBK");

    // Spec 01: TellerNo is AN 6; seven characters would be debited, then refused by the encoder.
    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "teller_no", json!("T000001")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "a seven-character power teller");

    // AN 16 in spec 01.
    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "customer_no", json!("43100200000000011")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "customer number of 17");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "channel_date", json!("20261332")),
        )
        .await;
    assert_refusal(s, &b, bad, "BAD_REQUEST", "no such date");

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "payee", json!("XXGS")),
        )
        .await;
    assert_refusal(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNKNOWN_PAYEE",
        "unknown payee",
    );

    let (s, b) = env
        .post(
            "/api/v1/payments",
            &with(good_pay(&env), "instance", json!("NSH99999")),
        )
        .await;
    assert_refusal(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNKNOWN_PAYEE",
        "unknown instance",
    );

    assert_eq!(
        journal_rows(&env).await,
        before,
        "no refused request is journaled"
    );
    assert_eq!(env.core.posting_count(), 0);
    assert!(env.power.payments().is_empty());

    // The hub is still serving: the good request goes through.
    let (s, b) = env.post("/api/v1/payments", &good_pay(&env)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
}

/// A body over the API's limit (16 KiB) is refused before it is parsed; 413 is the HTTP status
/// for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_refuses_a_body_over_the_limit() {
    let env = Env::start().await;
    let before = journal_rows(&env).await;
    let big = with(good_pay(&env), "padding", json!("x".repeat(20 * 1024)));
    let (s, b) = env.post("/api/v1/payments", &big).await;
    assert_refusal(
        s,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
        "body over the limit",
    );
    assert_eq!(journal_rows(&env).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_refuses_bad_queries() {
    let env = Env::start().await;
    let query = json!({
        "payee": PAYEE, "instance": BANK_CODE, "customer_no": ZHANG_SAN, "channel": "02",
        "branch_no": BRANCH, "teller_no": "T00001",
    });
    let (s, b) = env.post_raw("/api/v1/bills/query", b"[1, 2".to_vec()).await;
    assert_refusal(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        "garbage query",
    );
    let (s, b) = env
        .post(
            "/api/v1/bills/query",
            &with(query.clone(), "customer_no", json!("43100200000000011")),
        )
        .await;
    assert_refusal(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        "customer number of 17",
    );
    let (s, b) = env
        .post(
            "/api/v1/bills/query",
            &with(query.clone(), "customer_no", json!("张三")),
        )
        .await;
    assert_refusal(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        "a name for a number",
    );
    let (s, b) = env
        .post(
            "/api/v1/bills/query",
            &with(query.clone(), "payee", json!("XXGS")),
        )
        .await;
    assert_refusal(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNKNOWN_PAYEE",
        "unknown payee",
    );
    let (s, b) = env
        .post(
            "/api/v1/bills/query",
            &with(query.clone(), "channel", json!("09")),
        )
        .await;
    assert_refusal(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        "unknown channel",
    );
    let (s, b) = env.status("02", "20261203", "NOSUCH01").await;
    assert_refusal(
        s,
        &b,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "status of an unknown payment",
    );
    assert_eq!(env.payment_count().await, 0);
    let (s, b) = env.post("/api/v1/bills/query", &query).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total_due_fen"], ZHANG_SAN_DUE_FEN);
}

// ---- raw sockets ----

/// Sends `bytes` (then closes the write side when `half_close`) and reads one frame of
/// `digits`-digit length: `None` when the peer closed without answering.
async fn exchange(
    addr: std::net::SocketAddr,
    bytes: &[u8],
    half_close: bool,
    digits: usize,
) -> Option<Vec<u8>> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // The peer may close before taking all of it; that is an answer too.
        let _ = stream.write_all(bytes).await;
        if half_close {
            let _ = stream.shutdown().await;
        }
        let mut header = vec![0u8; digits];
        if stream.read_exact(&mut header).await.is_err() {
            return None;
        }
        let len: usize = std::str::from_utf8(&header).ok()?.parse().ok()?;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.ok()?;
        Some(body)
    };
    tokio::time::timeout(IO_LIMIT, work)
        .await
        .expect("the peer neither answered nor closed")
}

fn key() -> [u8; 16] {
    codecs::mac::parse_key_hex(MAC_KEY_HEX).expect("key")
}

/// The spec's 1001 header (worked example), RspCode and RspMsg blank.
const SPEC_1001_HEADER: &str = "1001NSH43102000101MB00010220261203101010B2026120300000000001";

fn power_request(customer_field: &[u8]) -> Vec<u8> {
    let mut body = SPEC_1001_HEADER.as_bytes().to_vec();
    body.extend_from_slice(&[b' '; 44]);
    body.extend_from_slice(customer_field);
    let mac = codecs::mac::cdgj_mac_hex(&key(), &body);
    body.extend_from_slice(mac.as_bytes());
    body
}

fn framed6(body: &[u8]) -> Vec<u8> {
    let mut frame = format!("{:06}", body.len()).into_bytes();
    frame.extend_from_slice(body);
    frame
}

fn padded(text: &str, width: usize) -> Vec<u8> {
    let mut bytes = encode(text, Charset::Gbk).expect("GBK");
    bytes.resize(width, b' ');
    bytes
}

/// The 1001 answer of the spec's worked example, typed from the spec: 346 bytes, then the MAC the
/// spec gives.
fn spec_1001_answer() -> Vec<u8> {
    let mut body = SPEC_1001_HEADER.as_bytes().to_vec();
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&[0xB3, 0xC9, 0xB9, 0xA6]); // 成功
    body.extend_from_slice(&[b' '; 36]);
    body.extend_from_slice(b"4310020000000001");
    body.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]); // 张三
    body.extend_from_slice(&[b' '; 56]);
    body.extend_from_slice(&padded("郴州市北湖区人民路1号", 80));
    body.extend_from_slice(b"000000022335000000000000");
    body.extend_from_slice(b"02");
    body.extend_from_slice(b"202610000000012345000000000000");
    body.extend_from_slice(b"202611000000009870000000000120");
    assert_eq!(body.len(), 346);
    body.extend_from_slice(b"2320B0CE729FFA80");
    body
}

fn rsp_code(body: &[u8]) -> &str {
    body.get(60..64)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

async fn power_good_request_still_served(env: &Env, case: &str) {
    let answer = exchange(
        env.power.addr,
        &framed6(&power_request(ZHANG_SAN.as_bytes())),
        false,
        6,
    )
    .await;
    assert_eq!(
        answer,
        Some(spec_1001_answer()),
        "after {case}: the spec's 1001 answer, byte for byte"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_simulator_survives_bad_frames() {
    let env = Env::start().await;
    power_good_request_still_served(&env, "start").await;

    // A body too short for its TxCode: 9001, header echoed as far as it goes.
    let answer = exchange(env.power.addr, b"0000101001NSH431", false, 6)
        .await
        .expect("answered");
    assert_eq!(answer.get(..4), Some(&b"1001"[..]));
    assert_eq!(rsp_code(&answer), "9001");
    power_good_request_still_served(&env, "a short body").await;

    // A length header smaller than the body: the body read does not fit 1001.
    let mut lying = b"000100".to_vec();
    lying.extend_from_slice(&power_request(ZHANG_SAN.as_bytes()));
    let answer = exchange(env.power.addr, &lying, false, 6)
        .await
        .expect("answered");
    assert_eq!(rsp_code(&answer), "9001");
    power_good_request_still_served(&env, "a length that lies low").await;

    // A length header larger than what comes: the frame never completes; closed, no answer.
    let mut lying = b"000200".to_vec();
    lying.extend_from_slice(&power_request(ZHANG_SAN.as_bytes()));
    assert_eq!(exchange(env.power.addr, &lying, true, 6).await, None);
    power_good_request_still_served(&env, "a length that lies high").await;

    // Non-digit length.
    let mut bad = b"00A136".to_vec();
    bad.extend_from_slice(&power_request(ZHANG_SAN.as_bytes()));
    assert_eq!(exchange(env.power.addr, &bad, true, 6).await, None);
    power_good_request_still_served(&env, "a non-digit length").await;

    // Over the 1024 maximum: closed without answering.
    let mut big = b"001025".to_vec();
    big.extend_from_slice(&[b'0'; 1025]);
    assert_eq!(exchange(env.power.addr, &big, true, 6).await, None);
    power_good_request_still_served(&env, "a frame over 1024").await;

    // Bytes that are no GBK in the CustomerNo, under a good MAC: 9001.
    let answer = exchange(
        env.power.addr,
        &framed6(&power_request(&[0xFF; 16])),
        false,
        6,
    )
    .await
    .expect("answered");
    assert_eq!(rsp_code(&answer), "9001");
    power_good_request_still_served(&env, "garbage GBK").await;

    // A bad MAC: 9002.
    let mut spoiled = power_request(ZHANG_SAN.as_bytes());
    if let Some(last) = spoiled.last_mut() {
        *last = if *last == b'0' { b'1' } else { b'0' };
    }
    let answer = exchange(env.power.addr, &framed6(&spoiled), false, 6)
        .await
        .expect("answered");
    assert_eq!(rsp_code(&answer), "9002");
    power_good_request_still_served(&env, "a bad MAC").await;
}

fn core_inquiry(seq_no: &str, acct_no: &[u8]) -> Vec<u8> {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"GBK\"?><Service><Head><TranCode>8001</TranCode><ChannelId>MBP</ChannelId>\
         <SeqNo>{seq_no}</SeqNo><TranDate>20261203</TranDate><TranTime>100000</TranTime><BranchId>000101</BranchId>\
         <TellerId>MBP001</TellerId></Head><Body><AcctNo>"
    )
    .into_bytes();
    xml.extend_from_slice(acct_no);
    xml.extend_from_slice(b"</AcctNo></Body></Service>");
    xml
}

fn framed8(body: &[u8]) -> Vec<u8> {
    let mut frame = format!("{:08}", body.len()).into_bytes();
    frame.extend_from_slice(body);
    frame
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn core_good_request_still_served(env: &Env, case: &str) {
    let answer = exchange(
        env.core.addr,
        &framed8(&core_inquiry("GOOD1", PAYER_A.as_bytes())),
        false,
        8,
    )
    .await
    .unwrap_or_else(|| panic!("after {case}: the core closed on a good 8001"));
    assert!(
        contains(&answer, "<RetCode>000000</RetCode>"),
        "after {case}"
    );
    // 1 000 000 fen.
    assert!(
        contains(&answer, "<Balance>10000.00</Balance>"),
        "after {case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_simulator_survives_bad_frames() {
    let env = Env::start().await;
    core_good_request_still_served(&env, "start").await;

    // A frame cut short by the peer: closed without answering.
    assert_eq!(
        exchange(env.core.addr, b"00000100<?xml", true, 8).await,
        None
    );
    core_good_request_still_served(&env, "a short frame").await;

    // A length smaller than the document: the part read is no XML, E90001.
    let mut lying = b"00000050".to_vec();
    lying.extend_from_slice(&core_inquiry("LIE1", PAYER_A.as_bytes()));
    let answer = exchange(env.core.addr, &lying, false, 8)
        .await
        .expect("answered");
    assert!(contains(&answer, "<RetCode>E90001</RetCode>"));
    core_good_request_still_served(&env, "a length that lies").await;

    // Non-digit length.
    assert_eq!(
        exchange(env.core.addr, b"0000x100<Service/>", true, 8).await,
        None
    );
    core_good_request_still_served(&env, "a non-digit length").await;

    // Over 1 MiB: closed without answering (and without waiting for the body).
    assert_eq!(exchange(env.core.addr, b"01048577", false, 8).await, None);
    core_good_request_still_served(&env, "a frame over 1 MiB").await;

    // Bytes that are no GBK.
    let answer = exchange(
        env.core.addr,
        &framed8(&core_inquiry("GBK1", &[0xFF, 0xFE, 0x81])),
        false,
        8,
    )
    .await
    .expect("answered");
    assert!(contains(&answer, "<RetCode>E90001</RetCode>"));
    core_good_request_still_served(&env, "garbage GBK").await;
}

/// axum's own rejections become the typed JSON refusal: a path segment that is not UTF-8, a
/// 冲正 body that is not JSON (that route reads its body optionally), text/plain, over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_before_any_handler_answer_typed_json() {
    let env = Env::start().await;
    let http = reqwest::Client::new();
    let base = env.base_url();
    let today = env.today();
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "non-UTF-8 serial",
            http.get(format!("{base}/api/v1/payments/01/{today}/%FF")),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            "non-UTF-8 serial on the reversal",
            http.post(format!("{base}/api/v1/payments/01/{today}/%FF/reversal")),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            "malformed reversal body",
            http.post(format!("{base}/api/v1/payments/01/{today}/X1/reversal"))
                .header("content-type", "application/json")
                .body("{\"reason\":"),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            "reversal body as text/plain",
            http.post(format!("{base}/api/v1/payments/01/{today}/X1/reversal"))
                .header("content-type", "text/plain")
                .body("reason"),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            "reversal body over the limit",
            http.post(format!("{base}/api/v1/payments/01/{today}/X1/reversal"))
                .header("content-type", "application/json")
                .body(format!("{{\"reason\":\"{}\"}}", "x".repeat(40_000))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
        ),
    ];
    for (case, request, status, code) in cases {
        let response = request.send().await.expect("hub answers");
        assert_eq!(response.status(), status, "{case}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{case}: not JSON: {e}"));
        assert_refusal(status, &body, status, code, case);
    }
    assert_eq!(env.payment_count().await, 0);
}
