//! Tests of the generic adapter with the built-in water profile (spec 02). Expected bytes and
//! outcomes are typed from the spec, never taken from the code under test.

use std::future::Future;

use chrono::{NaiveDate, NaiveTime};
use codecs::layout::Record;
use codecs::Money;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::profile::Trade;
use super::*;
use crate::spi::{Channel, PartnerReply};

/// Spec 02's worked-example key.
const KEY_HEX: &str = "00112233445566778899AABBCCDDEEFF";
const SERIAL: &str = "HB2612020000000017";
/// The 89-byte header of spec 02's example up to BankSerial (新晃, counter, 2026-12-02 09:30:15).
const HEADER_ECHO: &str = "431227080101T0801001120261202093015HB2612020000000017";

fn key() -> [u8; 16] {
    codecs::mac::parse_key_hex(KEY_HEX).expect("key")
}

fn config(port: u16) -> FixedLenConfig {
    FixedLenConfig {
        instance: "water-xinhuang".into(),
        profile_builtin: Some("water".into()),
        profile_file: None,
        company_code: "431227".into(),
        host: "127.0.0.1".into(),
        port,
        mac_key_hex: KEY_HEX.into(),
        suspense_account: "43122700100100000001".into(),
        settlement_account: "43122700100100000099".into(),
        connect_timeout_ms: 1_000,
        answer_timeout_ms: Some(2_000),
        answer_timeouts_ms: Default::default(),
        file_dir: None,
    }
}

fn adapter(port: u16) -> FixedLenAdapter {
    FixedLenAdapter::from_config(config(port)).expect("adapter")
}

fn ctx() -> RequestContext {
    RequestContext {
        channel: Channel::Counter,
        branch_no: "080101".into(),
        teller_no: "T0801001".into(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        tx_time: NaiveTime::from_hms_opt(9, 30, 15).expect("time"),
        bank_serial: SERIAL.into(),
    }
}

fn gbk(text: &str) -> Vec<u8> {
    codecs::text::encode(text, codecs::text::Charset::Gbk).expect("gbk")
}

/// A framed answer as spec 02 describes it: trade code, the echoed header fields 2-8, RspCode,
/// RspMsg (C 30), the body, then the MAC over everything from the first length digit.
fn answer(trade_code: &str, rsp_code: &str, rsp_msg: &str, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(trade_code.as_bytes());
    payload.extend_from_slice(HEADER_ECHO.as_bytes());
    payload.extend_from_slice(rsp_code.as_bytes());
    let msg = gbk(rsp_msg);
    payload.extend_from_slice(&msg);
    payload.extend(std::iter::repeat_n(b' ', 30 - msg.len()));
    payload.extend_from_slice(body);
    let mut frame = format!("{:04}", payload.len() + 32).into_bytes();
    frame.extend_from_slice(&payload);
    let mac = codecs::mac::iso9797_m2_mac_hex(&key(), &frame);
    frame.extend_from_slice(mac.as_bytes());
    frame
}

/// A 102/103 answer body: PartnerSerial AN 20, AcctDate 20261202, Balance M 12.
fn paid_body(partner_serial: &str, balance: &str) -> Vec<u8> {
    assert_eq!(partner_serial.len(), 20);
    assert_eq!(balance.len(), 12);
    [partner_serial.as_bytes(), b"20261202", balance.as_bytes()].concat()
}

/// A 105 answer body for a 102 of 166.32 written off as W2026120200000000001 on 20261202.
fn status_body(status: &str) -> Vec<u8> {
    [
        status.as_bytes(),
        b"102",
        b"W2026120200000000001",
        b"20261202",
        b"000000166.32",
    ]
    .concat()
}

fn decode(
    adapter: &FixedLenAdapter,
    operation: Operation,
    frame: &[u8],
) -> Result<Response, ExchangeError> {
    let trade = adapter.profile().trades.get(operation).expect("trade");
    adapter
        .codec()
        .decode_response(&ctx(), trade, frame)
        .map_err(ExchangeError::Garbled)
}

fn refused_code(outcome: &PayOutcome) -> Option<&str> {
    match outcome {
        PayOutcome::Refused(PartnerReply { code, .. }) => Some(code),
        _ => None,
    }
}

#[test]
fn spec_02_worked_example_201_frame_byte_for_byte() {
    let adapter = adapter(9);
    let trade = Trade {
        code: "201".into(),
        request: "201.req".into(),
        response: Some("201.rsp".into()),
        answer_timeout_ms: 10_000,
    };
    let body = Record::new()
        .with("CustomerNo", "0800123456")
        .with("CustomerName", "张三")
        .with("AccountNo", "6230901234567890123")
        .with("AccountName", "张三")
        .with("IdType", "01")
        .with("IdNo", "431227199003150016")
        .with("Phone", "13900001111");
    let frame = adapter
        .codec()
        .encode_request(&ctx(), &trade, &body)
        .expect("encodes");
    let zhang_san = [0xD5u8, 0xC5, 0xC8, 0xFD];
    let mut expected = b"0276201431227080101T0801001120261202093015HB2612020000000017".to_vec();
    expected.extend_from_slice(&[b' '; 33]);
    expected.extend_from_slice(b"0800123456");
    expected.extend_from_slice(&zhang_san);
    expected.extend_from_slice(&[b' '; 36]);
    expected.extend_from_slice(b"6230901234567890123");
    expected.extend_from_slice(&[b' '; 13]);
    expected.extend_from_slice(&zhang_san);
    expected.extend_from_slice(&[b' '; 36]);
    expected.extend_from_slice(b"01431227199003150016  13900001111");
    expected.extend_from_slice(b"AB34326DCF7230C08E799B5E5B443CE3");
    assert_eq!(expected.len(), 280);
    assert_eq!(frame, expected);
}

fn bill_101_body() -> Vec<u8> {
    // CustomerNo 0800123456, 张三, address, meter, balance 0.00, due 166.32, one bill
    // (2026-11, 120 -> 150, 30 m3, water 160.00, late 6.32).
    let mut body = b"0800123456".to_vec();
    let name = gbk("张三");
    body.extend_from_slice(&name);
    body.extend(std::iter::repeat_n(b' ', 40 - name.len()));
    let address = gbk("新晃县城关镇1号");
    body.extend_from_slice(&address);
    body.extend(std::iter::repeat_n(b' ', 60 - address.len()));
    body.extend_from_slice(b"M00000000001");
    body.extend_from_slice(b"000000000.00000000166.3201");
    body.extend_from_slice(b"202611000001200000015000000030000000160.00000000006.32");
    body
}

#[test]
fn query_answer_decodes_to_a_bill() {
    let adapter = adapter(9);
    let frame = answer("101", "000", "成功", &bill_101_body());
    let outcome = client::query_outcome(
        adapter.profile(),
        decode(&adapter, Operation::Query, &frame),
        "0800123456",
    )
    .expect("bill");
    let QueryOutcome::Bill(bill) = outcome else {
        panic!("not a bill: {outcome:?}");
    };
    assert_eq!(bill.customer_name, "张三");
    assert_eq!(bill.total_due, Money::from_fen(16632));
    assert_eq!(bill.prepaid, Money::ZERO);
    assert_eq!(bill.items.len(), 1);
    assert_eq!(bill.items[0].period, "202611");
    assert_eq!(bill.items[0].amount, Money::from_fen(16000));
    assert_eq!(bill.items[0].penalty, Money::from_fen(632));
    assert!(!bill.nothing_due);
    // Another customer's bill is garbled.
    let other = client::query_outcome(
        adapter.profile(),
        decode(&adapter, Operation::Query, &frame),
        "0800999999",
    );
    assert_eq!(other.err().map(|e| e.code()), Some("ADP_GARBLED"));
    for code in ["001", "002", "093", "098"] {
        let frame = answer("101", code, "", b"");
        let outcome = client::query_outcome(
            adapter.profile(),
            decode(&adapter, Operation::Query, &frame),
            "0800123456",
        )
        .expect("answer");
        assert!(
            matches!(outcome, QueryOutcome::Refused(ref r) if r.code == code),
            "{code}"
        );
    }
}

#[test]
fn every_pay_answer_code_maps_to_the_spec_outcome() {
    let adapter = adapter(9);
    let paid = answer(
        "102",
        "000",
        "成功",
        &paid_body("W2026120200000000001", "000000000.00"),
    );
    match client::pay_outcome(adapter.profile(), decode(&adapter, Operation::Pay, &paid)) {
        PayOutcome::Paid {
            partner_serial,
            acct_date,
            prepaid,
        } => {
            assert_eq!(partner_serial, "W2026120200000000001");
            assert_eq!(
                acct_date,
                NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
            );
            assert_eq!(prepaid, Money::ZERO);
        }
        other => panic!("{other:?}"),
    }
    // 099 on 102/103: outcome unknown.
    let busy = answer("102", "099", "系统错误", b"");
    assert!(matches!(
        client::pay_outcome(adapter.profile(), decode(&adapter, Operation::Pay, &busy)),
        PayOutcome::Unknown { .. }
    ));
    // Every other code wrote nothing off.
    for code in [
        "001", "002", "003", "004", "005", "006", "007", "010", "011", "012", "020", "021", "022",
        "023", "091", "093", "098",
    ] {
        let frame = answer("102", code, "", b"");
        let outcome =
            client::pay_outcome(adapter.profile(), decode(&adapter, Operation::Pay, &frame));
        assert_eq!(refused_code(&outcome), Some(code), "{code}: {outcome:?}");
    }
    // 090 and 092 carry 32 ASCII zeros as MAC and are not verified; 090 may blank the header.
    for code in ["090", "092"] {
        let mut frame = b"0121102".to_vec();
        frame.extend_from_slice(HEADER_ECHO.as_bytes());
        frame.extend_from_slice(code.as_bytes());
        frame.extend_from_slice(&[b' '; 30]);
        frame.extend_from_slice(&[b'0'; 32]);
        let outcome =
            client::pay_outcome(adapter.profile(), decode(&adapter, Operation::Pay, &frame));
        assert_eq!(refused_code(&outcome), Some(code), "{code}");
    }
    // Unreadable header fields echoed as spaces (AN) or zeros (N).
    let mut blanked = [
        &b"0121"[..],
        b"   ",
        b"000000",
        b"      ",
        b"        ",
        b"0",
        b"00000000",
        b"000000",
        b"                  ",
        b"090",
    ]
    .concat();
    blanked.extend_from_slice(&[b' '; 30]);
    blanked.extend_from_slice(&[b'0'; 32]);
    let outcome = client::pay_outcome(
        adapter.profile(),
        decode(&adapter, Operation::Pay, &blanked),
    );
    assert_eq!(refused_code(&outcome), Some("090"));
    // A prepayment (nothing due) goes as 103, and its answers decode with 102's layout.
    let order = PayOrder {
        customer_no: "0800123456".into(),
        pay_amount: Money::from_fen(10000),
        total_due: Money::ZERO,
        payer_account: "6230901234567890123".into(),
        fields: Default::default(),
    };
    assert_eq!(adapter.payment_kind(&order), PaymentKind::Prepay);
    let prepaid = answer(
        "103",
        "000",
        "成功",
        &paid_body("W2026120200000000002", "000000100.00"),
    );
    assert!(matches!(
        client::pay_outcome(adapter.profile(), decode(&adapter, Operation::Prepay, &prepaid)),
        PayOutcome::Paid { prepaid, .. } if prepaid == Money::from_fen(10000)
    ));
}

#[test]
fn every_reversal_answer_code_maps_to_the_spec_outcome() {
    let adapter = adapter(9);
    let outcome = |code: &str| {
        let frame = answer("104", code, "", b"");
        client::reversal_outcome(
            adapter.profile(),
            decode(&adapter, Operation::Reverse, &frame),
        )
    };
    assert!(matches!(outcome("000"), ReversalOutcome::Reversed));
    assert!(matches!(outcome("020"), ReversalOutcome::OriginalNotFound));
    assert!(matches!(outcome("021"), ReversalOutcome::AlreadyReversed));
    assert!(matches!(outcome("022"), ReversalOutcome::TooLate));
    assert!(matches!(outcome("023"), ReversalOutcome::Mismatch));
    // 098 (day-end) and 099: re-send the same 104.
    assert!(matches!(outcome("098"), ReversalOutcome::Unknown { .. }));
    assert!(matches!(outcome("099"), ReversalOutcome::Unknown { .. }));
    for code in ["091", "093"] {
        assert!(
            matches!(outcome(code), ReversalOutcome::Refused(ref r) if r.code == code),
            "{code}"
        );
    }
}

#[test]
fn every_status_value_maps_to_the_spec_outcome() {
    let adapter = adapter(9);
    let status = |body: &[u8]| {
        let frame = answer("105", "000", "成功", body);
        client::status_outcome(
            adapter.profile(),
            decode(&adapter, Operation::Status, &frame),
        )
    };
    match status(&status_body("1")) {
        StatusOutcome::WrittenOff {
            partner_serial,
            acct_date,
            amount,
        } => {
            assert_eq!(partner_serial, "W2026120200000000001");
            assert_eq!(
                acct_date,
                NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
            );
            assert_eq!(amount, Money::from_fen(16632));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(status(&status_body("2")), StatusOutcome::Reversed));
    // Status 3: OrigTradeCode and PartnerSerial spaces, AcctDate zeros, Amount 000000000.00.
    let mut not_found = b"3".to_vec();
    not_found.extend_from_slice(&[b' '; 23]);
    not_found.extend_from_slice(b"00000000000000000.00");
    assert!(matches!(status(&not_found), StatusOutcome::NotFound));
    assert!(matches!(
        status(&status_body("9")),
        StatusOutcome::Unknown { .. }
    ));
    for code in ["090", "091", "093", "099"] {
        let frame = answer("105", code, "", b"");
        assert!(matches!(
            client::status_outcome(
                adapter.profile(),
                decode(&adapter, Operation::Status, &frame)
            ),
            StatusOutcome::Unknown { .. }
        ));
    }
}

#[test]
fn untrustworthy_pay_answers_are_unknown() {
    let adapter = adapter(9);
    let good = answer(
        "102",
        "000",
        "成功",
        &paid_body("W2026120200000000001", "000000000.00"),
    );
    let unknown = |frame: &[u8]| {
        matches!(
            client::pay_outcome(adapter.profile(), decode(&adapter, Operation::Pay, frame)),
            PayOutcome::Unknown { .. }
        )
    };
    // Bad MAC: one MAC character changed.
    let mut bad_mac = good.clone();
    if let Some(last) = bad_mac.last_mut() {
        *last = if *last == b'0' { b'1' } else { b'0' };
    }
    assert!(unknown(&bad_mac));
    // Lowercase MAC is another byte string.
    let mut lower = good.clone();
    let mac_start = lower.len() - 32;
    lower[mac_start..].make_ascii_lowercase();
    if lower != good {
        assert!(unknown(&lower));
    }
    // Wrong serial echoed (MAC recomputed, so only the echo check can catch it).
    let mut wrong = good[4..good.len() - 32].to_vec();
    let at = wrong
        .windows(SERIAL.len())
        .position(|w| w == SERIAL.as_bytes())
        .expect("serial");
    wrong[at + SERIAL.len() - 1] = b'8';
    let mut framed = format!("{:04}", wrong.len() + 32).into_bytes();
    framed.append(&mut wrong);
    let mac = codecs::mac::iso9797_m2_mac_hex(&key(), &framed);
    framed.extend_from_slice(mac.as_bytes());
    assert!(unknown(&framed));
    // A 090 naming another serial is not ours either.
    let mut other_090 = b"0121102431227080101T0801001120261202093015HB2612020000000099090".to_vec();
    other_090.extend_from_slice(&[b' '; 30]);
    other_090.extend_from_slice(&[b'0'; 32]);
    assert!(unknown(&other_090));
    // Truncated: the length header promises more than arrived.
    assert!(unknown(&good[..good.len() - 5]));
    // An error answer with a body.
    let with_body = answer(
        "102",
        "003",
        "",
        &paid_body("W2026120200000000001", "000000000.00"),
    );
    assert!(unknown(&with_body));
    // Non-GBK bytes in RspMsg (0x81 0x20 is no GBK character), MAC valid.
    let mut payload = b"102".to_vec();
    payload.extend_from_slice(HEADER_ECHO.as_bytes());
    payload.extend_from_slice(b"000");
    payload.extend_from_slice(&[0x81, 0x20]);
    payload.extend_from_slice(&[b' '; 28]);
    payload.extend_from_slice(&paid_body("W2026120200000000001", "000000000.00"));
    let mut non_gbk = format!("{:04}", payload.len() + 32).into_bytes();
    non_gbk.extend_from_slice(&payload);
    let mac = codecs::mac::iso9797_m2_mac_hex(&key(), &non_gbk);
    non_gbk.extend_from_slice(mac.as_bytes());
    assert!(unknown(&non_gbk));
    // A success answer whose amount has a third decimal.
    let bad_amount = answer(
        "102",
        "000",
        "成功",
        &paid_body("W2026120200000000001", "00000000.000"),
    );
    assert!(unknown(&bad_amount));
}

/// A one-shot partner on 127.0.0.1: reads one request frame and hands it with the socket to
/// `behave`. Returns the port and the task yielding the request bytes.
async fn partner<F, Fut>(behave: F) -> (u16, tokio::task::JoinHandle<Vec<u8>>)
where
    F: FnOnce(TcpStream, Vec<u8>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut length = [0u8; 4];
        socket.read_exact(&mut length).await.expect("length");
        let n: usize = std::str::from_utf8(&length)
            .expect("ascii")
            .parse()
            .expect("digits");
        let mut rest = vec![0u8; n];
        socket.read_exact(&mut rest).await.expect("body");
        let mut request = length.to_vec();
        request.extend_from_slice(&rest);
        behave(socket, request.clone()).await;
        request
    });
    (port, task)
}

fn order() -> PayOrder {
    PayOrder {
        customer_no: "0800123456".into(),
        pay_amount: Money::from_fen(16632),
        total_due: Money::from_fen(16632),
        payer_account: "6230901234567890123".into(),
        fields: Default::default(),
    }
}

#[tokio::test]
async fn a_serial_wider_than_the_header_is_refused_before_sending() {
    // Port 9 is never contacted: the frame cannot be built.
    let mut wide = ctx();
    wide.bank_serial = "B2026120201000000017".into();
    let outcome = adapter(9).pay(&wide, &order()).await;
    assert_eq!(refused_code(&outcome), Some("ADP_INPUT"));
    // Spec 02 answers 090 to a blank AN field: refused here, unsent.
    let blank_account = PayOrder {
        payer_account: " ".into(),
        ..order()
    };
    let outcome = adapter(9).pay(&ctx(), &blank_account).await;
    assert_eq!(refused_code(&outcome), Some("ADP_INPUT"));
    let mut blank_teller = ctx();
    blank_teller.teller_no = String::new();
    let outcome = adapter(9).pay(&blank_teller, &order()).await;
    assert_eq!(refused_code(&outcome), Some("ADP_INPUT"));
}

#[tokio::test]
async fn pay_over_tcp_sends_102_and_reads_the_answer() {
    let (port, task) = partner(|mut socket, _request| async move {
        let reply = answer(
            "102",
            "000",
            "成功",
            &paid_body("W2026120200000000001", "000000000.00"),
        );
        socket.write_all(&reply).await.expect("write");
    })
    .await;
    let adapter = adapter(port);
    let outcome = adapter.pay(&ctx(), &order()).await;
    assert!(matches!(outcome, PayOutcome::Paid { .. }), "{outcome:?}");
    let request = task.await.expect("partner");
    let mut expected = b"0175102431227080101T0801001120261202093015HB2612020000000017".to_vec();
    expected.extend_from_slice(&[b' '; 33]);
    expected.extend_from_slice(b"0800123456000000166.326230901234567890123");
    expected.extend_from_slice(&[b' '; 13]);
    assert_eq!(request.get(..expected.len()), Some(&expected[..]));
    let mac = codecs::mac::iso9797_m2_mac_hex(&key(), &expected);
    assert_eq!(request.get(expected.len()..), Some(mac.as_bytes()));
}

#[tokio::test]
async fn late_answer_is_unknown_and_refused_connection_is_connect() {
    let (port, task) = partner(|mut socket, _request| async move {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let reply = answer(
            "102",
            "000",
            "成功",
            &paid_body("W2026120200000000001", "000000000.00"),
        );
        let _ = socket.write_all(&reply).await;
    })
    .await;
    let mut late = config(port);
    late.answer_timeouts_ms.insert("pay".into(), 150);
    let adapter = FixedLenAdapter::from_config(late).expect("adapter");
    let outcome = adapter.pay(&ctx(), &order()).await;
    assert!(
        matches!(&outcome, PayOutcome::Unknown { reason } if reason.contains("ADP_TIMEOUT")),
        "{outcome:?}"
    );
    task.await.expect("partner");

    // A port nobody listens on: nothing was sent.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let outcome = adapter_on(port).pay(&ctx(), &order()).await;
    assert_eq!(refused_code(&outcome), Some(CONNECT_CODE));
    // A reversal that could not connect is re-sent by the engine: unknown.
    let original = OriginalRef {
        bank_serial: SERIAL.into(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        customer_no: "0800123456".into(),
        amount: Money::from_fen(16632),
        total_due: Money::from_fen(16632),
        fields: Default::default(),
        tx_time: Default::default(),
    };
    assert!(matches!(
        adapter_on(port).reverse(&ctx(), &original).await,
        ReversalOutcome::Unknown { .. }
    ));
    // A query that could not connect is an error.
    assert_eq!(
        adapter_on(port)
            .query(&ctx(), "0800123456")
            .await
            .err()
            .map(|e| e.code()),
        Some("CONNECT")
    );
}

fn adapter_on(port: u16) -> FixedLenAdapter {
    adapter(port)
}

#[tokio::test]
async fn reversal_names_the_trade_the_payment_went_as() {
    let (port, task) = partner(|mut socket, _request| async move {
        let reply = answer(
            "103",
            "000",
            "成功",
            &paid_body("W2026120200000000002", "000000100.00"),
        );
        socket.write_all(&reply).await.expect("write");
    })
    .await;
    let adapter = adapter(port);
    let prepay = PayOrder {
        total_due: Money::ZERO,
        pay_amount: Money::from_fen(10000),
        ..order()
    };
    assert!(matches!(
        adapter.pay(&ctx(), &prepay).await,
        PayOutcome::Paid { .. }
    ));
    let request = task.await.expect("partner");
    assert_eq!(request.get(4..7), Some(&b"103"[..]));

    let mut reversal_ctx = ctx();
    reversal_ctx.bank_serial = "HB2612020000000018".into();
    let (port, task) = partner(|mut socket, _request| async move {
        let mut payload = b"104431227080101T0801001120261202093015HB2612020000000018000".to_vec();
        payload.extend_from_slice(&[b' '; 30]);
        let mut frame = format!("{:04}", payload.len() + 32).into_bytes();
        frame.extend_from_slice(&payload);
        let mac = codecs::mac::iso9797_m2_mac_hex(&key(), &frame);
        frame.extend_from_slice(mac.as_bytes());
        socket.write_all(&frame).await.expect("write");
    })
    .await;
    let mut moved = adapter;
    moved.endpoint.port = port;
    let original = OriginalRef {
        bank_serial: SERIAL.into(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        customer_no: "0800123456".into(),
        amount: Money::from_fen(10000),
        // Nothing was due: the original went as a prepayment (103), and the reversal names it
        // from the journal's figures alone (no memory of the pay call needed).
        total_due: Money::ZERO,
        fields: Default::default(),
        tx_time: Default::default(),
    };
    assert!(matches!(
        moved.reverse(&reversal_ctx, &original).await,
        ReversalOutcome::Reversed
    ));
    let request = task.await.expect("partner");
    // Body after the 89-byte header: OrigBankSerial, OrigTxDate, OrigTradeCode 103, CustomerNo, Amount.
    assert_eq!(
        request.get(93..93 + 51),
        Some(&b"HB2612020000000017202612021030800123456000000100.00"[..])
    );
}

#[test]
fn water_daily_files_parse_with_totals_checked() {
    let adapter = adapter(9);
    let names = adapter.daily_file_names(NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"));
    assert_eq!(names.totals, "ZZ43122720261202.txt");
    assert_eq!(names.detail, "MX43122720261202.txt");
    assert_eq!(names.flag, "DZ43122720261202.ok");
    let totals = b"431227|20261202|1|166.32|1|110.00|1|35.20|3|311.52\r\n";
    let lines: [&[u8]; 3] = [
        b"20261202|1|20261202|HB2612020000000017|W2026120200000000001|0800123456|166.32|1\r\n",
        b"20261202|2|20261202|HB2612020000000019|W2026120200000000002|0800123457|110.00|4\r\n",
        b"20261202|3|20261202|DK0000000000000001||0800123458|35.20|5\r\n",
    ];
    let detail = &lines.concat()[..];
    let file = adapter.parse_daily_files(totals, detail).expect("parses");
    assert_eq!(
        file.acct_date,
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
    );
    assert_eq!(file.records.len(), 3);
    assert_eq!(file.records[0].amount, Money::from_fen(16632));
    assert_eq!(file.records[0].line_no, 2);
    assert_eq!(file.records[0].channel, "01");
    assert_eq!(file.records[1].channel, "02");
    assert_eq!(file.records[2].channel, "BATCH");
    assert_eq!(file.records[2].partner_serial, "");
    // The SPI form: the files in the order daily_files names them.
    assert_eq!(
        BillPartner::parse_daily(&adapter, &[totals.to_vec(), detail.to_vec()]).expect("parses"),
        file
    );
    // A day with no business: a totals line of zeros and a 0-byte detail file.
    let empty = adapter
        .parse_daily_files(b"431227|20261202|0|0.00|0|0.00|0|0.00|0|0.00\r\n", b"")
        .expect("empty day");
    assert!(empty.records.is_empty());

    let line_of = |result: Result<DailyFile, AdapterError>| match result {
        Err(AdapterError::DailyFile { line, .. }) => Some(line),
        _ => None,
    };
    // Truncated: the last detail line is missing.
    let truncated = &lines[..2].concat()[..];
    assert_eq!(
        line_of(adapter.parse_daily_files(totals, truncated)),
        Some(1)
    );
    // Wrong totals.
    let wrong = b"431227|20261202|1|166.33|1|110.00|1|35.20|3|311.53\r\n";
    assert_eq!(line_of(adapter.parse_daily_files(wrong, detail)), Some(1));
    let wrong_grand = b"431227|20261202|1|166.32|1|110.00|1|35.20|3|311.50\r\n";
    assert_eq!(
        line_of(adapter.parse_daily_files(wrong_grand, detail)),
        Some(1)
    );
    // Duplicate (TxDate, BankSerial) names the second line.
    let duplicate = b"20261202|1|20261202|HB2612020000000017|W1|0800123456|100.00|1\r\n\
20261202|1|20261202|HB2612020000000017|W2|0800123456|100.00|1\r\n";
    let dup_totals = b"431227|20261202|2|200.00|0|0.00|0|0.00|2|200.00\r\n";
    assert_eq!(
        line_of(adapter.parse_daily_files(dup_totals, duplicate)),
        Some(3)
    );
    // Missing CRLF after the last detail line.
    let no_crlf = &detail[..detail.len() - 2];
    assert_eq!(line_of(adapter.parse_daily_files(totals, no_crlf)), Some(4));
    // Another company's totals, a leading-zero amount, an unknown type.
    let other = b"431024|20261202|1|166.32|1|110.00|1|35.20|3|311.52\r\n";
    assert_eq!(line_of(adapter.parse_daily_files(other, detail)), Some(1));
    let zero_padded = b"20261202|1|20261202|HB2612020000000017|W1|0800123456|0100.00|1\r\n";
    let one = b"431227|20261202|1|100.00|0|0.00|0|0.00|1|100.00\r\n";
    assert_eq!(
        line_of(adapter.parse_daily_files(one, zero_padded)),
        Some(2)
    );
    let bad_type = b"20261202|9|20261202|HB2612020000000017|W1|0800123456|100.00|1\r\n";
    assert_eq!(line_of(adapter.parse_daily_files(one, bad_type)), Some(2));
}

#[test]
fn summaries_and_purpose_follow_spec_02() {
    let adapter = adapter(9);
    assert_eq!(adapter.payee(), "WATER");
    assert_eq!(adapter.instance(), "water-xinhuang");
    assert_eq!(adapter.purpose(), "431227");
    assert_eq!(adapter.bank_serial_len(), 18);
    let at = |h, m, s| NaiveTime::from_hms_opt(h, m, s).expect("time");
    assert!(adapter.refuses_new_payments_at(at(23, 50, 0)));
    assert!(!adapter.refuses_new_payments_at(at(0, 10, 0)));
    assert_eq!(adapter.payment_summary("0800123456"), "水费0800123456");
    assert_eq!(
        adapter.settlement_summary(NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")),
        "水费结算43122720261202"
    );
}

/// Spec 02: "At most 20 connections at once per instance." 30 queries at once, each answered
/// 300 ms late by the simulator: the adapter never has more than 20 connections open (the
/// simulator, which closes any connection over 20 at once, refuses none), all 30 are answered,
/// and 20 were open together at some point (the limit is what held the others back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_queries_never_open_more_than_twenty_connections() {
    use std::sync::Arc;

    use codecs::clock::{ManualClock, SharedClock};
    use fixtures::water_sim::{
        self, DayEnd, WaterBill, WaterCustomer, WaterFault, WaterFaultRule, WaterSimConfig,
    };

    use crate::spi::{BillPartner, QueryOutcome};

    let start = chrono::NaiveDateTime::new(
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        NaiveTime::from_hms_opt(9, 30, 15).expect("time"),
    );
    let clock: SharedClock = ManualClock::new(start);
    let water = water_sim::start(
        WaterSimConfig {
            company_code: "431227".into(),
            mac_key: key(),
            day_end: DayEnd::spec(),
            customers: vec![WaterCustomer {
                customer_no: "0800123456".into(),
                name: "张三".into(),
                address: "新晃县城".into(),
                meter_no: "M00000000001".into(),
                closed: false,
                balance: Money::ZERO,
                bills: vec![WaterBill {
                    period: "202611".into(),
                    prev_reading_m3: 100,
                    curr_reading_m3: 112,
                    usage_m3: 12,
                    water_fee: Money::from_fen(3_520),
                    late_fee: Money::ZERO,
                }],
                locked_by_batch: false,
            }],
        },
        clock,
    )
    .await
    .expect("water simulator starts");
    water.arm(WaterFaultRule {
        trade_code: "101".into(),
        customer_no: Some("0800123456".into()),
        fault: WaterFault::AnswerLate(std::time::Duration::from_millis(300)),
        times: 30,
    });
    let adapter = Arc::new(adapter(water.addr.port()));
    let mut tasks = Vec::new();
    for n in 0..30u32 {
        let adapter = adapter.clone();
        tasks.push(tokio::spawn(async move {
            let mut ctx = ctx();
            ctx.bank_serial = format!("HB26120200000001{n:02}");
            adapter.query(&ctx, "0800123456").await
        }));
    }
    let mut answered = 0;
    for task in tasks {
        match task.await.expect("query task") {
            Ok(QueryOutcome::Bill(bill)) => {
                assert_eq!(bill.total_due, Money::from_fen(3_520));
                answered += 1;
            }
            other => panic!("query failed: {other:?}"),
        }
    }
    assert_eq!(answered, 30);
    assert_eq!(water.refused_connections(), 0);
    assert_eq!(water.peak_connections(), 20);
    water.shutdown();
}
