//! `MedicalPartner` against the spec's rules: expected values are worked from the spec's text
//! (codes, masks, schedule, cut-off, summaries), and a few exchanges with the insurer simulator.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::{Clock, ManualClock, SharedClock};
use codecs::crypto::sm2::PrivateKey;
use codecs::Money;
use fixtures::medical_sim::{
    sample_insured, MedicalFault, MedicalSim, MedicalSimConfig, TEST_BANK_PRIVATE_HEX,
    TEST_DATA_KEY_HEX,
};

use super::*;
use crate::medical::client::MedicalConfig;
use crate::medical::messages::Payable;

const ZHANG: &str = "431227199003150016";
/// 王芳: Σ = 167, 167 mod 11 = 2 → `X` (worked in id_number.rs).
const WANG_LOWER_X: &str = "11010519491231002x";

fn at(d: u32, hh: u32, mm: u32, ss: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, d)
        .and_then(|x| x.and_hms_opt(hh, mm, ss))
        .expect("time")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

struct World {
    sim: MedicalSim,
    clock: Arc<ManualClock>,
    partner: MedicalPartner,
}

async fn world(money_timeout_ms: u64) -> World {
    let clock = ManualClock::new(at(2, 10, 30, 15));
    let shared: SharedClock = clock.clone();
    let bank = PrivateKey::from_hex(TEST_BANK_PRIVATE_HEX).expect("bank");
    let insurer = PrivateKey::generate().expect("insurer");
    let insurer_public_hex = hex::encode(insurer.public_key().to_uncompressed());
    let data_key: [u8; 16] = hex::decode(TEST_DATA_KEY_HEX)
        .expect("hex")
        .try_into()
        .expect("16");
    let sim = MedicalSim::start(MedicalSimConfig {
        bank_code: "HHXH0001".into(),
        data_key,
        bank_public: bank.public_key(),
        insurer_key: insurer,
        clock: shared.clone(),
        insured: sample_insured("2027", date(2026, 9, 1), date(2026, 12, 31)),
        payments_elsewhere: vec![],
    })
    .await
    .expect("sim");
    let config = MedicalConfig {
        instance: "medins-xinhuang".into(),
        url: sim.url(),
        bank_code: "HHXH0001".into(),
        data_key_hex: TEST_DATA_KEY_HEX.into(),
        bank_private_key_hex: TEST_BANK_PRIVATE_HEX.into(),
        insurer_public_key_hex: insurer_public_hex,
        money_timeout_ms,
        query_timeout_ms: 2_000,
        allow_plain_http: true,
    };
    let client =
        MedicalClient::new(config, reqwest::Client::new(), shared.clone()).expect("client");
    World {
        sim,
        clock,
        partner: MedicalPartner::new(client, shared),
    }
}

impl World {
    fn ctx(&self, channel: Channel, serial: &str) -> RequestContext {
        let now = self.clock.now();
        RequestContext {
            channel,
            branch_no: "000101".into(),
            teller_no: "T00001".into(),
            tx_date: now.date(),
            tx_time: now.time(),
            bank_serial: serial.into(),
        }
    }
}

fn fields(name: &str, year: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("year".to_string(), year.to_string()),
        ("payer_name".to_string(), "李四".to_string()),
    ])
}

fn order(id_no: &str, name: &str, year: &str, fen: i64) -> PayOrder {
    PayOrder {
        customer_no: id_no.into(),
        pay_amount: Money::from_fen(fen),
        total_due: Money::from_fen(fen),
        payer_account: "6230901234567890456".into(),
        fields: fields(name, year),
    }
}

fn original(serial: &str, accepted: NaiveDateTime, fen: i64) -> OriginalRef {
    OriginalRef {
        bank_serial: serial.into(),
        tx_date: accepted.date(),
        customer_no: ZHANG.into(),
        amount: Money::from_fen(fen),
        total_due: Money::from_fen(fen),
        tx_time: accepted.time(),
        fields: fields("张三", "2027"),
    }
}

fn person(payables: Vec<Payable>) -> InsuredPerson {
    InsuredPerson {
        name: "张三".into(),
        gender: "1".into(),
        id_no: ZHANG.into(),
        ins_type: "390".into(),
        ins_type_name: "城乡居民基本医疗保险".into(),
        ins_no: "HH90031500".into(),
        phone: "13812345678".into(),
        id_address: "湖南省怀化市新晃侗族自治县".into(),
        home_address: "新晃县城关镇和平街12号".into(),
        payables,
    }
}

fn payable(year: &str, fen: i64, paid: bool) -> Payable {
    Payable {
        year: year.into(),
        amount: Money::from_fen(fen),
        paid,
        start_date: date(2026, 9, 1),
        end_date: date(2026, 12, 31),
    }
}

#[test]
fn channels_are_numbered_as_spec_03_numbers_them() {
    // Spec 03: 01 counter, 03 self-service, 04 mobile, 05 online.
    assert_eq!(pay_channel(&Channel::Counter).code(), "01");
    assert_eq!(pay_channel(&Channel::Mobile).code(), "04");
    assert_eq!(pay_channel(&Channel::SelfService).code(), "03");
    assert_eq!(pay_channel(&Channel::Online).code(), "05");
}

#[tokio::test]
async fn refusal_codes_carry_their_meaning() {
    let w = world(2_000).await;
    let p = &w.partner;
    assert_eq!(
        p.refusal_reason("1001"),
        Some(RefusalReason::CustomerNotFound)
    );
    assert_eq!(p.refusal_reason("1002"), Some(RefusalReason::NameMismatch));
    assert_eq!(p.refusal_reason("1003"), Some(RefusalReason::AlreadyPaid));
    assert_eq!(p.refusal_reason("1004"), Some(RefusalReason::NotPayableNow));
    assert_eq!(
        p.refusal_reason("1005"),
        Some(RefusalReason::AmountMismatch)
    );
    assert_eq!(
        p.refusal_reason("1006"),
        Some(RefusalReason::InvalidIdNumber)
    );
    assert_eq!(
        p.refusal_reason("MED_ID_CHECK_DIGIT"),
        Some(RefusalReason::InvalidIdNumber)
    );
    assert_eq!(p.refusal_reason("9001"), None);
    assert_eq!(p.payee(), "CXJM");
    assert_eq!(p.instance(), "medins-xinhuang");
    assert_eq!(p.purpose(), "CXJM");
    assert_eq!(p.settlement_code(), "HHXH0001");
    assert_eq!(p.customer_no_max_len(), 18);
    assert!(!p.accepts_prepayment());
    assert!(p.supports_cancel() && p.cancel_counter_only());
    assert!(p.resend_reversal_with_new_serial());
    assert_eq!(p.unknown_resolution(), UnknownResolution::AskStatus);
}

#[tokio::test]
async fn status_is_asked_at_10_30_60_120_330_seconds_then_every_10_minutes() {
    let w = world(2_000).await;
    let mut elapsed = 0;
    let mut asks = Vec::new();
    for attempts in 0..8 {
        elapsed += w
            .partner
            .status_retry_after(attempts)
            .expect("a schedule")
            .num_seconds();
        asks.push(elapsed);
    }
    assert_eq!(asks, vec![10, 30, 60, 120, 330, 930, 1530, 2130]);
}

#[test]
fn not_found_is_final_only_330_seconds_after_the_original_req_time() {
    // The spec's example reqTime 20261202103015.
    let req_time = at(2, 10, 30, 15);
    let original = original("XH202612021030150001", req_time, 40_000);
    let just_before = req_time + chrono::Duration::seconds(329);
    let on_time = req_time + chrono::Duration::seconds(330);
    assert!(!MedicalPartner::not_found_is_final(&original, just_before));
    assert!(MedicalPartner::not_found_is_final(&original, on_time));
}

#[tokio::test]
async fn cancel_cut_off_is_22_00() {
    let w = world(2_000).await;
    let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).expect("time");
    assert!(w.partner.accepts_cancel_at(t(21, 59, 59)));
    assert!(!w.partner.accepts_cancel_at(t(22, 0, 0)));
    assert!(!w.partner.accepts_cancel_at(t(23, 30, 0)));
}

#[tokio::test]
async fn summaries_follow_the_spec_and_fit_the_core() {
    let w = world(2_000).await;
    let summary = w
        .partner
        .order_summary(&order(ZHANG, "张三", "2027", 40_000));
    assert_eq!(summary, "医保缴费2027");
    let settlement = w.partner.settlement_summary(date(2026, 12, 2));
    assert_eq!(settlement, "医保缴费HHXH000120261202");
    // 4 GBK characters of 2 bytes and 16 ASCII: 24 bytes, within the core's 40.
    assert_eq!(
        codecs::text::encode(&settlement, codecs::text::Charset::Gbk)
            .map(|b| b.len())
            .ok(),
        Some(24)
    );
}

#[tokio::test]
async fn bad_orders_are_refused_before_anything_is_journaled() {
    let w = world(2_000).await;
    let p = &w.partner;
    assert!(p.check_order(&order(ZHANG, "张三", "2027", 40_000)).is_ok());
    // A final lower-case x is upper-cased, then checked.
    assert!(p
        .check_order(&order(WANG_LOWER_X, "王芳", "2027", 40_000))
        .is_ok());
    for bad in [
        order("431227199003150017", "张三", "2027", 40_000),
        order("431227900315001", "张三", "2027", 40_000),
        order(ZHANG, "  ", "2027", 40_000),
        order(ZHANG, "张三", "27", 40_000),
    ] {
        assert!(
            matches!(p.check_order(&bad), Err(AdapterError::InvalidInput { .. })),
            "{:?}",
            bad.customer_no
        );
    }
    let mut partial = order(ZHANG, "张三", "2027", 40_000);
    partial.pay_amount = Money::from_fen(20_000);
    assert!(p.check_order(&partial).is_err());
}

#[test]
fn fresh_data_checks_come_in_the_insurers_order_with_its_codes() {
    let today = date(2026, 12, 2);
    let code = |person: &InsuredPerson, order: &PayOrder| {
        MedicalPartner::check_against(person, order, today).map_err(|r| r.code)
    };
    let open = person(vec![payable("2027", 40_000, false)]);
    assert_eq!(code(&open, &order(ZHANG, " 张三 ", "2027", 40_000)), Ok(()));
    assert_eq!(
        code(&open, &order(ZHANG, "张四", "2027", 40_000)),
        Err("1002".into())
    );
    let paid = person(vec![payable("2027", 40_000, true)]);
    assert_eq!(
        code(&paid, &order(ZHANG, "张三", "2027", 40_000)),
        Err("1003".into())
    );
    assert_eq!(
        code(&open, &order(ZHANG, "张三", "2028", 40_000)),
        Err("1004".into())
    );
    let mut closed = payable("2027", 40_000, false);
    closed.end_date = date(2026, 12, 1);
    assert_eq!(
        code(&person(vec![closed]), &order(ZHANG, "张三", "2027", 40_000)),
        Err("1004".into())
    );
    assert_eq!(
        code(&open, &order(ZHANG, "张三", "2027", 38_000)),
        Err("1005".into())
    );
    // Name before amount: both wrong gives 1002.
    assert_eq!(
        code(&open, &order(ZHANG, "李四", "2027", 1)),
        Err("1002".into())
    );
}

#[tokio::test]
async fn the_query_masks_outside_the_counter() {
    let w = world(2_000).await;
    let mobile = w.ctx(Channel::Mobile, "XH0000000000000000001");
    let QueryOutcome::Bill(bill) = w.partner.query(&mobile, ZHANG).await.expect("answer") else {
        panic!("a bill")
    };
    assert_eq!(bill.customer_name, "*三");
    assert_eq!(bill.customer_no, "4312**********0016");
    assert_eq!(bill.address, "新晃县城关镇****");
    assert_eq!(bill.total_due, Money::from_fen(40_000));
    assert!(!bill.nothing_due);
    assert_eq!(bill.items.len(), 1);
    assert_eq!(bill.items[0].period, "2027");

    let counter = w.ctx(Channel::Counter, "XH0000000000000000002");
    let QueryOutcome::Bill(bill) = w.partner.query(&counter, ZHANG).await.expect("answer") else {
        panic!("a bill")
    };
    assert_eq!(bill.customer_name, "张三");
    assert_eq!(bill.customer_no, ZHANG);
    assert_eq!(bill.address, "新晃县城关镇和平街12号");

    // A failing number never reaches the insurer.
    let QueryOutcome::Refused(refused) = w
        .partner
        .query(&counter, "431227199003150017")
        .await
        .expect("answer")
    else {
        panic!("refused")
    };
    assert_eq!(refused.code, "MED_ID_CHECK_DIGIT");
    // An ID number the insurer does not know: 1001 (Σ = 196, 196 mod 11 = 9 → `3`).
    let other = w.ctx(Channel::Counter, "XH0000000000000000004");
    let QueryOutcome::Refused(unknown) = w
        .partner
        .query(&other, "431227195501020013")
        .await
        .expect("answer")
    else {
        panic!("refused")
    };
    assert_eq!(unknown.code, "1001");
}

#[tokio::test]
async fn before_debit_refuses_a_wrong_name_and_pays_nothing() {
    let w = world(2_000).await;
    let ctx = w.ctx(Channel::Mobile, "XH0000000000000000003");
    let wrong = w
        .partner
        .before_debit(&ctx, &order(ZHANG, "张四", "2027", 40_000))
        .await;
    assert_eq!(wrong.map_err(|r| r.code), Err("1002".into()));
    let amount = w
        .partner
        .before_debit(&ctx, &order(ZHANG, "张三", "2027", 38_000))
        .await;
    assert_eq!(amount.map_err(|r| r.code), Err("1005".into()));
    assert!(w.sim.payments().is_empty());
    assert!(w
        .partner
        .before_debit(&ctx, &order(ZHANG, "张三", "2027", 40_000))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_payment_then_its_status_then_a_cancel_and_its_resend() {
    let w = world(2_000).await;
    let serial = "XH0000000000000000010";
    let ctx = w.ctx(Channel::Counter, serial);
    let accepted = w.clock.now();
    let PayOutcome::Paid {
        partner_serial,
        acct_date,
        ..
    } = w
        .partner
        .pay(&ctx, &order(ZHANG, "张三", "2027", 40_000))
        .await
    else {
        panic!("paid")
    };
    assert_eq!(acct_date, date(2026, 12, 2));
    let held = w.sim.payments();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].channel, "01");
    assert_eq!(
        held[0].bank_key,
        Some(("20261202".to_string(), serial.to_string()))
    );

    let status_ctx = w.ctx(Channel::Counter, "XH0000000000000000011");
    let original = original(serial, accepted, 40_000);
    match w.partner.status(&status_ctx, &original).await {
        StatusOutcome::WrittenOff {
            partner_serial: pay_no,
            amount,
            ..
        } => {
            assert_eq!(pay_no, partner_serial);
            assert_eq!(amount, Money::from_fen(40_000));
        }
        other => panic!("{other:?}"),
    }

    let cancel_ctx = w.ctx(Channel::Counter, "XH0000000000000000012");
    assert!(matches!(
        w.partner.cancel(&cancel_ctx, &original).await,
        ReversalOutcome::Reversed
    ));
    // A resend under a new reqSerial: 2002, a success for the bank.
    let again = w.ctx(Channel::Counter, "XH0000000000000000013");
    assert!(matches!(
        w.partner.cancel(&again, &original).await,
        ReversalOutcome::AlreadyReversed
    ));
    assert!(w.sim.payments()[0].cancelled);
}

#[tokio::test]
async fn a_lost_payment_is_not_found_finally_only_after_the_wait() {
    let w = world(2_000).await;
    let serial = "XH0000000000000000020";
    let accepted = w.clock.now();
    let original = original(serial, accepted, 40_000);
    let ctx = w.ctx(Channel::Mobile, "XH0000000000000000021");
    assert!(matches!(
        w.partner.status(&ctx, &original).await,
        StatusOutcome::Unknown { .. }
    ));
    w.clock.advance(chrono::Duration::seconds(329));
    let ctx = w.ctx(Channel::Mobile, "XH0000000000000000022");
    assert!(matches!(
        w.partner.status(&ctx, &original).await,
        StatusOutcome::Unknown { .. }
    ));
    w.clock.advance(chrono::Duration::seconds(1));
    let ctx = w.ctx(Channel::Mobile, "XH0000000000000000023");
    assert!(matches!(
        w.partner.status(&ctx, &original).await,
        StatusOutcome::NotFound
    ));
}

#[tokio::test]
async fn a_busy_answer_to_2001_is_unknown() {
    let w = world(2_000).await;
    w.sim.inject(Some("2001"), MedicalFault::Busy);
    let ctx = w.ctx(Channel::Mobile, "XH0000000000000000030");
    assert!(matches!(
        w.partner
            .pay(&ctx, &order(ZHANG, "张三", "2027", 40_000))
            .await,
        PayOutcome::Unknown { .. }
    ));
}

#[tokio::test]
async fn the_daily_file_is_fetched_checked_and_read_for_standing_lines() {
    let w = world(2_000).await;
    let pay_ctx = w.ctx(Channel::Mobile, "XH0000000000000000040");
    assert!(matches!(
        w.partner
            .pay(&pay_ctx, &order(ZHANG, "张三", "2027", 40_000))
            .await,
        PayOutcome::Paid { .. }
    ));
    let counter = w.ctx(Channel::Counter, "XH0000000000000000041");
    let wang = order(WANG_LOWER_X, "王芳", "2027", 40_000);
    assert!(matches!(
        w.partner.pay(&counter, &wang).await,
        PayOutcome::Paid { .. }
    ));
    let mut wang_original = original("XH0000000000000000041", w.clock.now(), 40_000);
    wang_original.customer_no = WANG_LOWER_X.into();
    let cancel = w.ctx(Channel::Counter, "XH0000000000000000042");
    assert!(matches!(
        w.partner.cancel(&cancel, &wang_original).await,
        ReversalOutcome::Reversed
    ));

    let dir = tempfile::tempdir().expect("dir");
    let day = date(2026, 12, 2);
    // Before 06:00 on D+1 the file is not ready: the reconciliation waits.
    w.clock.advance_to(at(3, 5, 59, 0));
    assert!(w.partner.fetch_daily(day, dir.path()).await.is_err());
    w.clock.advance_to(at(3, 6, 30, 0));
    assert_eq!(
        w.partner.fetch_daily(day, dir.path()).await.ok(),
        Some(true)
    );
    let names = w.partner.daily_files(day);
    assert_eq!(names, vec!["CXJM_HHXH0001_20261202.txt".to_string()]);
    let bytes = std::fs::read(dir.path().join(&names[0])).expect("file written");
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    assert!(text.starts_with("20261202|1|400.00|1|400.00\n"), "{text}");
    let daily = w.partner.parse_daily(&[bytes]).expect("parsed");
    assert_eq!(daily.acct_date, day);
    assert_eq!(
        daily.records.len(),
        1,
        "the cancelled line is not a payment"
    );
    let record = &daily.records[0];
    assert_eq!(record.bank_serial, "XH0000000000000000040");
    assert_eq!(record.tx_date, day);
    assert_eq!(record.customer_no, ZHANG);
    assert_eq!(record.amount, Money::from_fen(40_000));
    assert_eq!(record.channel, "04");
}

#[tokio::test]
async fn reverse_is_never_a_silent_undo() {
    let w = world(2_000).await;
    let ctx = w.ctx(Channel::Counter, "XH0000000000000000050");
    let original = original("XH0000000000000000010", w.clock.now(), 40_000);
    assert!(matches!(
        w.partner.reverse(&ctx, &original).await,
        ReversalOutcome::NeedsOperator(_)
    ));
}
