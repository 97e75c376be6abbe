//! County gas (partner-specs/11-county-gas.md) onboarded by configuration only: the profile is
//! loaded from deploy/partners/gas.toml at run time and driven by the generic fixed-length
//! adapter. Expected bytes and outcomes are typed from spec 11 (and 02, where 11 defers to it).

use std::path::PathBuf;

use adapters::fixedlen::{
    client, ExchangeError, FixedLenAdapter, FixedLenConfig, Operation, Profile,
};
use adapters::{
    AdapterError, BillPartner, Channel, OriginalRef, PartnerReply, PayOrder, PayOutcome,
    QueryOutcome, RequestContext, ReversalOutcome, StatusOutcome,
};
use chrono::{NaiveDate, NaiveTime};
use codecs::Money;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Spec 11's worked-example key.
const KEY_HEX: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const SERIAL: &str = "ZF2612020000000031";
/// Header fields 2-8 of the worked example: CompanyCode, BranchNo, TellerNo, Channel 4, TxDate,
/// TxTime, BankSerial.
const HEADER_ECHO: &str = "431221120301SJ000001420261202183012ZF2612020000000031";

fn profile_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/partners/gas.toml")
}

fn key() -> [u8; 16] {
    codecs::mac::parse_key_hex(KEY_HEX).expect("key")
}

fn config(port: u16) -> FixedLenConfig {
    FixedLenConfig {
        instance: "gas-zhongfang".into(),
        profile_builtin: None,
        profile_file: Some(profile_path()),
        company_code: "431221".into(),
        host: "127.0.0.1".into(),
        port,
        mac_key_hex: KEY_HEX.into(),
        suspense_account: "43122100100100000001".into(),
        settlement_account: "43122100100100000099".into(),
        connect_timeout_ms: 1_000,
        answer_timeout_ms: Some(2_000),
        answer_timeouts_ms: Default::default(),
        file_dir: None,
    }
}

fn adapter(port: u16) -> FixedLenAdapter {
    FixedLenAdapter::from_config(config(port)).expect("gas adapter from the profile file")
}

fn ctx() -> RequestContext {
    RequestContext {
        channel: Channel::Mobile,
        branch_no: "120301".into(),
        teller_no: "SJ000001".into(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        tx_time: NaiveTime::from_hms_opt(18, 30, 12).expect("time"),
        bank_serial: SERIAL.into(),
    }
}

fn order() -> PayOrder {
    PayOrder {
        customer_no: "RQ2019004567".into(),
        pay_amount: Money::from_fen(12640),
        total_due: Money::from_fen(12640),
        payer_account: "6230901100000000021".into(),
        fields: Default::default(),
    }
}

/// A framed answer: trade code, echoed header, RspCode, RspMsg C 30 (ASCII here), body, MAC over
/// the frame from its first length digit.
fn answer(trade_code: &str, rsp_code: &str, body: &[u8]) -> Vec<u8> {
    let payload = [
        trade_code.as_bytes(),
        HEADER_ECHO.as_bytes(),
        rsp_code.as_bytes(),
        &[b' '; 30],
        body,
    ]
    .concat();
    let mut frame = format!("{:04}", payload.len() + 32).into_bytes();
    frame.extend_from_slice(&payload);
    let mac = codecs::mac::iso9797_m2_mac_hex(&key(), &frame);
    frame.extend_from_slice(mac.as_bytes());
    frame
}

fn decode(
    adapter: &FixedLenAdapter,
    operation: Operation,
    frame: &[u8],
) -> Result<adapters::fixedlen::Response, ExchangeError> {
    let trade = adapter.profile().trades.get(operation).expect("trade");
    adapter
        .codec()
        .decode_response(&ctx(), trade, frame)
        .map_err(ExchangeError::Garbled)
}

#[test]
fn profile_file_loads_with_spec_11_shapes() {
    let profile = Profile::load(&profile_path()).expect("loads");
    assert_eq!(profile.payee, "GAS");
    assert_eq!(profile.header_len(), 89);
    assert_eq!(profile.trades.query.code, "301");
    assert_eq!(profile.trades.pay.code, "302");
    assert!(profile.trades.prepay.is_none());
    assert_eq!(profile.trades.reverse.code, "304");
    assert_eq!(profile.trades.status.code, "305");
    assert_eq!(profile.trades.pay.answer_timeout_ms, 20_000);
    assert_eq!(profile.trades.reverse.answer_timeout_ms, 20_000);
    assert_eq!(profile.trades.query.answer_timeout_ms, 10_000);
    assert_eq!(profile.trades.status.answer_timeout_ms, 10_000);
    // 302 body: CustomerNo AN 12 + PayAmount M 12 + PayerAccount AN 32 = 56.
    assert_eq!(
        profile.layout("302.req").expect("302").fixed_len(),
        Some(56)
    );
    // No Channel 5.
    assert_eq!(profile.channels.spi_code("5"), None);
    let adapter = adapter(9);
    assert_eq!(adapter.payee(), "GAS");
    assert_eq!(adapter.instance(), "gas-zhongfang");
    assert_eq!(adapter.purpose(), "431221");
    assert!(!adapter.supports_prepay());
    // Spec 11: `燃气费<CustomerNo>` (18 bytes) and `燃气费结算<CompanyCode><YYYYMMDD>` (24 bytes).
    let summary = adapter.payment_summary("RQ2019004567");
    assert_eq!(summary, "燃气费RQ2019004567");
    assert_eq!(
        codecs::text::byte_len(&summary, codecs::text::Charset::Gbk),
        Ok(18)
    );
    let settlement =
        adapter.settlement_summary(NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"));
    assert_eq!(settlement, "燃气费结算43122120261202");
    assert_eq!(
        codecs::text::byte_len(&settlement, codecs::text::Charset::Gbk),
        Ok(24)
    );
    // A prepayment order still goes as 302: there is no 103 here.
    let prepay = PayOrder {
        total_due: Money::ZERO,
        ..order()
    };
    assert_eq!(
        adapter.payment_kind(&prepay),
        adapters::fixedlen::PaymentKind::Pay
    );
}

#[tokio::test]
async fn worked_example_302_frame_byte_for_byte_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let partner = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = vec![0u8; 181];
        socket.read_exact(&mut request).await.expect("181 bytes");
        let body = [&b"G2026120200000000031"[..], b"20261202", b"000000000.00"].concat();
        socket
            .write_all(&answer("302", "000", &body))
            .await
            .expect("answer");
        request
    });
    let outcome = adapter(port).pay(&ctx(), &order()).await;
    let request = partner.await.expect("partner");
    let expected = [
        &b"0177302431221120301SJ000001420261202183012ZF2612020000000031"[..],
        &[b' '; 33],
        b"RQ2019004567000000126.406230901100000000021",
        &[b' '; 13],
        b"E3076851669EF1B85B7D6C5FD4A565AC",
    ]
    .concat();
    assert_eq!(expected.len(), 181);
    assert_eq!(request, expected);
    match outcome {
        PayOutcome::Paid {
            partner_serial,
            acct_date,
            prepaid,
        } => {
            assert_eq!(partner_serial, "G2026120200000000031");
            assert_eq!(
                acct_date,
                NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
            );
            assert_eq!(prepaid, Money::ZERO);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn query_301_answer_with_the_worked_example_bill() {
    let adapter = adapter(9);
    let name = codecs::text::encode("张三", codecs::text::Charset::Gbk).expect("gbk");
    let body = [
        &b"RQ2019004567"[..],
        &name,
        &[b' '; 36],
        &[b' '; 60],
        b"GM0000000001",
        b"000000000.00",
        b"000000126.40",
        b"01",
        // Spec 11's bill: 2026-11, 12345.00 -> 12385.50 m3 in 0.01 m3, 40.50 used, 121.50 + 4.90.
        b"202611000012345000001275000000004050000000121.50000000004.90",
    ]
    .concat();
    let frame = answer("301", "000", &body);
    // 89 + 150 + 60 + 32 after the 4 digits.
    assert_eq!(frame.len(), 4 + 89 + 150 + 60 + 32);
    let outcome = client::query_outcome(
        adapter.profile(),
        decode(&adapter, Operation::Query, &frame),
        "RQ2019004567",
    )
    .expect("bill");
    let QueryOutcome::Bill(bill) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(bill.customer_name, "张三");
    assert_eq!(bill.total_due, Money::from_fen(12640));
    assert_eq!(bill.items.len(), 1);
    assert_eq!(bill.items[0].period, "202611");
    assert_eq!(bill.items[0].amount, Money::from_fen(12150));
    assert_eq!(bill.items[0].penalty, Money::from_fen(490));
}

#[test]
fn every_spec_11_code_maps_to_the_spec_outcome() {
    let adapter = adapter(9);
    let profile = adapter.profile();
    let refused = |outcome: PayOutcome| match outcome {
        PayOutcome::Refused(PartnerReply { code, .. }) => Some(code),
        _ => None,
    };
    // 302: 000 paid, 099 unknown, everything else wrote nothing off.
    let paid_body = [&b"G2026120200000000031"[..], b"20261202", b"000000000.00"].concat();
    assert!(matches!(
        client::pay_outcome(
            profile,
            decode(&adapter, Operation::Pay, &answer("302", "000", &paid_body))
        ),
        PayOutcome::Paid { .. }
    ));
    assert!(matches!(
        client::pay_outcome(
            profile,
            decode(&adapter, Operation::Pay, &answer("302", "099", b""))
        ),
        PayOutcome::Unknown { .. }
    ));
    for code in ["001", "002", "003", "004", "021", "091", "093", "098"] {
        let outcome = client::pay_outcome(
            profile,
            decode(&adapter, Operation::Pay, &answer("302", code, b"")),
        );
        assert_eq!(refused(outcome).as_deref(), Some(code), "{code}");
    }
    for code in ["090", "092"] {
        let frame = [
            &b"0121302"[..],
            HEADER_ECHO.as_bytes(),
            code.as_bytes(),
            &[b' '; 30],
            &[b'0'; 32],
        ]
        .concat();
        let outcome = client::pay_outcome(profile, decode(&adapter, Operation::Pay, &frame));
        assert_eq!(refused(outcome).as_deref(), Some(code), "{code}");
    }
    // 304.
    let reversal = |code: &str| {
        client::reversal_outcome(
            profile,
            decode(&adapter, Operation::Reverse, &answer("304", code, b"")),
        )
    };
    assert!(matches!(reversal("000"), ReversalOutcome::Reversed));
    assert!(matches!(reversal("020"), ReversalOutcome::OriginalNotFound));
    assert!(matches!(reversal("021"), ReversalOutcome::AlreadyReversed));
    assert!(matches!(reversal("022"), ReversalOutcome::TooLate));
    assert!(matches!(reversal("023"), ReversalOutcome::Mismatch));
    assert!(matches!(reversal("098"), ReversalOutcome::Unknown { .. }));
    assert!(matches!(reversal("099"), ReversalOutcome::Unknown { .. }));
    // 305.
    let status = |value: &str| {
        let body = [
            value.as_bytes(),
            b"302",
            b"G2026120200000000031",
            b"20261202",
            b"000000126.40",
        ]
        .concat();
        client::status_outcome(
            profile,
            decode(&adapter, Operation::Status, &answer("305", "000", &body)),
        )
    };
    assert!(matches!(
        status("1"),
        StatusOutcome::WrittenOff { amount, .. } if amount == Money::from_fen(12640)
    ));
    assert!(matches!(status("2"), StatusOutcome::Reversed));
    let not_found = [&b"3"[..], &[b' '; 23], b"00000000", b"000000000.00"].concat();
    assert!(matches!(
        client::status_outcome(
            profile,
            decode(
                &adapter,
                Operation::Status,
                &answer("305", "000", &not_found)
            )
        ),
        StatusOutcome::NotFound
    ));
    // An answer with water's trade code is not an answer to 302.
    let body = [&b"G2026120200000000031"[..], b"20261202", b"000000000.00"].concat();
    assert!(matches!(
        client::pay_outcome(
            profile,
            decode(&adapter, Operation::Pay, &answer("102", "000", &body))
        ),
        PayOutcome::Unknown { .. }
    ));
}

#[tokio::test]
async fn reversal_304_names_302_and_status_305_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let partner = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut length = [0u8; 4];
        socket.read_exact(&mut length).await.expect("length");
        let n: usize = std::str::from_utf8(&length)
            .expect("ascii")
            .parse()
            .expect("n");
        let mut rest = vec![0u8; n];
        socket.read_exact(&mut rest).await.expect("rest");
        socket
            .write_all(&answer("304", "022", b""))
            .await
            .expect("answer");
        [&length[..], &rest].concat()
    });
    let original = OriginalRef {
        bank_serial: "ZF2612020000000030".into(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        customer_no: "RQ2019004567".into(),
        amount: Money::from_fen(12640),
        total_due: Money::from_fen(12640),
        fields: Default::default(),
        tx_time: Default::default(),
    };
    let outcome = adapter(port).reverse(&ctx(), &original).await;
    assert!(matches!(outcome, ReversalOutcome::TooLate), "{outcome:?}");
    let request = partner.await.expect("partner");
    // 0 + 89 header + 53 body + 32 MAC = 174.
    assert_eq!(&request[..4], b"0174");
    assert_eq!(&request[4..7], b"304");
    assert_eq!(
        &request[93..146],
        &b"ZF261202000000003020261202302RQ2019004567000000126.40"[..]
    );
}

#[test]
fn daily_files_parse_with_totals_checked() {
    let adapter = adapter(9);
    let date = NaiveDate::from_ymd_opt(2026, 12, 2).expect("date");
    let names = adapter.daily_file_names(date);
    assert_eq!(names.totals, "RQZZ43122120261202.txt");
    assert_eq!(names.detail, "RQMX43122120261202.txt");
    assert_eq!(names.flag, "DZ43122120261202.ok");
    assert_eq!(
        BillPartner::daily_files(&adapter, date),
        vec![
            "RQZZ43122120261202.txt".to_string(),
            "RQMX43122120261202.txt".to_string()
        ]
    );
    let totals = b"431221|20261202|2|226.40|2|226.40\r\n";
    let lines: [&[u8]; 2] = [
        b"20261202|1|20261202|ZF2612020000000031|G2026120200000000031|RQ2019004567|126.40|4\r\n",
        b"20261202|1|20261202|ZF2612020000000032|G2026120200000000032|RQ2019004568|100.00|1\r\n",
    ];
    let detail = lines.concat();
    let file = adapter.parse_daily_files(totals, &detail).expect("parses");
    assert_eq!(file.acct_date, date);
    assert_eq!(file.records.len(), 2);
    assert_eq!(file.records[0].bank_serial, "ZF2612020000000031");
    assert_eq!(file.records[0].customer_no, "RQ2019004567");
    assert_eq!(file.records[0].amount, Money::from_fen(12640));
    assert_eq!(file.records[0].channel, "02");
    assert_eq!(file.records[1].line_no, 3);

    let line_of = |result: Result<adapters::DailyFile, AdapterError>| match result {
        Err(AdapterError::DailyFile { line, .. }) => Some(line),
        _ => None,
    };
    // Truncated detail.
    assert_eq!(
        line_of(adapter.parse_daily_files(totals, lines[0])),
        Some(1)
    );
    // Wrong totals.
    assert_eq!(
        line_of(adapter.parse_daily_files(b"431221|20261202|2|226.41|2|226.41\r\n", &detail)),
        Some(1)
    );
    // Duplicate line.
    let duplicate = [lines[0], lines[0]].concat();
    assert_eq!(
        line_of(adapter.parse_daily_files(b"431221|20261202|2|252.80|2|252.80\r\n", &duplicate)),
        Some(3)
    );
    // Missing CRLF on the last line.
    assert_eq!(
        line_of(adapter.parse_daily_files(totals, &detail[..detail.len() - 2])),
        Some(3)
    );
    // Water's totals shape (10 columns) is not gas's.
    assert_eq!(
        line_of(adapter.parse_daily_files(
            b"431221|20261202|2|226.40|0|0.00|0|0.00|2|226.40\r\n",
            &detail
        )),
        Some(1)
    );
    // Channel 5 does not exist here.
    let batch = b"20261202|1|20261202|ZF2612020000000031|G1|RQ2019004567|126.40|5\r\n";
    assert_eq!(
        line_of(adapter.parse_daily_files(b"431221|20261202|1|126.40|1|126.40\r\n", batch)),
        Some(2)
    );
    // CustomerNo longer than AN 12.
    let long = b"20261202|1|20261202|ZF2612020000000031|G1|RQ20190045670|126.40|4\r\n";
    assert_eq!(
        line_of(adapter.parse_daily_files(b"431221|20261202|1|126.40|1|126.40\r\n", long)),
        Some(2)
    );
}

#[test]
fn example_instance_config_builds_an_adapter() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/partners/gas-zhongfang.example.toml"),
    )
    .expect("example present");
    let mut config = FixedLenConfig::from_toml(&text).expect("parses");
    assert_eq!(
        config.profile_file.as_deref(),
        Some(std::path::Path::new("deploy/partners/gas.toml"))
    );
    // The example's path is relative to the hub's working directory, the workspace root.
    config.profile_file = Some(profile_path());
    let adapter = FixedLenAdapter::from_config(config).expect("adapter");
    assert_eq!(adapter.instance(), "gas-zhongfang");
    assert_eq!(adapter.purpose(), "431221");
    let debug = format!("{:?}", adapter.config());
    assert!(
        !debug.contains("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
        "{debug}"
    );
}
