//! 城乡居民医保 (spec 03) through the running hub: the channel API, the engine, the core simulator
//! and the insurer simulator over real loopback HTTP. Expected values come from the spec and the
//! simulator's seed data (张三 and 王芳 owe 400.00 for 2027, 杨老汉 200.00; window 2026-09-01 to
//! 2026-12-31), never from what the hub answers.

use chrono::Days;
use codecs::clock::Clock;
use codecs::crypto::sm2::PrivateKey;
use e2e_tests::*;
use fixtures::core_sim::{AccountFixture, AcctClass, AcctStatus};
use fixtures::medical_sim::{
    sample_insured, MedicalFault, MedicalSim, MedicalSimConfig, TEST_BANK_PRIVATE_HEX,
    TEST_DATA_KEY_HEX,
};
use hub::medical::MedicalInstanceConfig;
use hub::state::{NextAction, PaymentState};
use serde_json::{json, Value};

const PAYEE_CXJM: &str = "CXJM";
const INSTANCE: &str = "medins-xinhuang";
const MED_BANK_CODE: &str = "HHXH0001";
const MED_SUSPENSE: &str = "9003100000000301";
const MED_FUND: &str = "9003200000000301";
const ZHANG: &str = "431227199003150016";
const WANG: &str = "11010519491231002X";
const YANG: &str = "431227195501010018";
/// A valid number (Σ = 196, 196 mod 11 = 9 → `3`) the insurer does not know.
const NOT_INSURED: &str = "431227195501020013";
const ZHANG_FEN: i64 = 40_000;
const WANG_FEN: i64 = 40_000;
const YANG_FEN: i64 = 20_000;

fn internal(acct_no: &str, name: &str) -> AccountFixture {
    AccountFixture {
        acct_no: acct_no.into(),
        name: name.into(),
        class: AcctClass::I,
        status: AcctStatus::N,
        balance: codecs::Money::ZERO,
        open_branch: BRANCH.into(),
        id_type: None,
        id_no: None,
        interest_bearing: false,
    }
}

struct World {
    env: Env,
    sim: MedicalSim,
    medical: MedicalInstanceConfig,
}

async fn world() -> World {
    let mut env = Env::start_without_hub(
        EnvOptions::default(),
        vec![
            internal(MED_SUSPENSE, "医保代收过渡户"),
            internal(MED_FUND, "医保基金收入户"),
        ],
    )
    .await;
    let bank = PrivateKey::from_hex(TEST_BANK_PRIVATE_HEX).expect("bank key");
    let insurer = PrivateKey::generate().expect("insurer key");
    let insurer_public_hex = hex_of(&insurer.public_key().to_uncompressed());
    let data_key: [u8; 16] = (0..16)
        .map(|i| u8::from_str_radix(&TEST_DATA_KEY_HEX[2 * i..2 * i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>()
        .try_into()
        .expect("16 bytes");
    let window = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let sim = MedicalSim::start(MedicalSimConfig {
        bank_code: MED_BANK_CODE.into(),
        data_key,
        bank_public: bank.public_key(),
        insurer_key: insurer,
        clock: env.clock.clone(),
        insured: sample_insured("2027", window(9, 1), window(12, 31)),
        payments_elsewhere: vec![],
    })
    .await
    .expect("insurer simulator");
    let medical = MedicalInstanceConfig {
        instance: INSTANCE.into(),
        url: sim.url(),
        bank_code: MED_BANK_CODE.into(),
        data_key_hex: TEST_DATA_KEY_HEX.into(),
        bank_private_key_hex: TEST_BANK_PRIVATE_HEX.into(),
        insurer_public_key_hex: insurer_public_hex,
        suspense_account: MED_SUSPENSE.into(),
        settlement_account: MED_FUND.into(),
        money_timeout_ms: 500,
        query_timeout_ms: 1_000,
        tls: None,
        allow_plain_http: true,
    };
    let mut config = env.hub_config();
    config.medical = vec![medical.clone()];
    env.start_hub_with_config(config).await;
    World { env, sim, medical }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn query(id_no: &str, channel: &str) -> Value {
    json!({
        "payee": PAYEE_CXJM, "instance": INSTANCE, "customer_no": id_no, "channel": channel,
        "branch_no": BRANCH, "teller_no": "T00001",
    })
}

struct Pay<'a> {
    channel: &'a str,
    serial: &'a str,
    id_no: &'a str,
    name: &'a str,
    year: &'a str,
    payer: &'a str,
    fen: i64,
}

impl Pay<'_> {
    fn body(&self, env: &Env) -> Value {
        json!({
            "channel": self.channel, "channel_date": env.today(), "channel_serial": self.serial,
            "payee": PAYEE_CXJM, "instance": INSTANCE, "customer_no": self.id_no,
            "payer_account": self.payer, "amount_fen": self.fen, "total_due_fen": self.fen,
            "branch_no": BRANCH, "teller_no": "T00001",
            "fields": {"name": self.name, "year": self.year, "payer_name": "李四"},
        })
    }
}

fn zhang<'a>(channel: &'a str, serial: &'a str) -> Pay<'a> {
    Pay {
        channel,
        serial,
        id_no: ZHANG,
        name: "张三",
        year: "2027",
        payer: PAYER_A,
        fen: ZHANG_FEN,
    }
}

impl World {
    async fn pay(&self, pay: &Pay<'_>) -> (StatusCode, Value) {
        self.env
            .post("/api/v1/payments", &pay.body(&self.env))
            .await
    }

    async fn cancel(
        &self,
        channel: &str,
        serial: &str,
        authorized_by: &str,
    ) -> (StatusCode, Value) {
        let path = format!(
            "/api/v1/payments/{channel}/{}/{serial}/cancel",
            self.env.today()
        );
        self.env
            .post(
                &path,
                &json!({"reason": "客户申请撤销", "authorized_by": authorized_by}),
            )
            .await
    }

    /// The journal row; read through `wait_until`, which looks again when a read fails (the
    /// first read of a fresh test pool can fail inside sqlx: see the report).
    async fn row(&self, hub_serial: &str) -> hub::journal::PaymentRow {
        self.env
            .wait_until(hub_serial, chrono::Duration::zero(), "journaled", |_| true)
            .await
    }

    fn ledger(&self, payer_fen: i64, suspense_fen: i64) {
        assert_eq!(self.env.balance_fen(PAYER_A), payer_fen, "payer balance");
        assert_eq!(
            self.env.balance_fen(MED_SUSPENSE),
            suspense_fen,
            "medical suspense balance"
        );
    }
}

fn serial_of(answer: &Value) -> String {
    answer["hub_serial"]
        .as_str()
        .expect("hub serial")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_insured_is_shown_masked_off_the_counter_and_a_payment_lands_once() {
    let w = world().await;
    let (status, mobile) = w.env.post("/api/v1/bills/query", &query(ZHANG, "02")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mobile["status"], "OK", "{mobile}");
    assert_eq!(mobile["customer_name"], "*三");
    assert_eq!(mobile["customer_no"], "4312**********0016");
    assert_eq!(mobile["address"], "新晃县城关镇****");
    assert_eq!(mobile["total_due_fen"], ZHANG_FEN);
    assert_eq!(mobile["items"][0]["period"], "2027");
    let (_, counter) = w.env.post("/api/v1/bills/query", &query(ZHANG, "01")).await;
    assert_eq!(counter["customer_name"], "张三");
    assert_eq!(counter["customer_no"], ZHANG);

    // 李四 pays 张三's 2027 from his mobile banking.
    let pay = zhang("02", "MED0001");
    let (status, answer) = w.pay(&pay).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["acct_date"], "20261203");
    let hub_serial = serial_of(&answer);
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
    let held = w.sim.payments();
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].bank_key,
        Some(("20261203".to_string(), hub_serial.clone()))
    );
    assert_eq!(held[0].channel, "04", "mobile banking is 04 in spec 03");
    assert_eq!(answer["partner_serial"], held[0].pay_no.as_str());
    let row = w.row(&hub_serial).await;
    assert_eq!(row.state, PaymentState::Succeeded);
    assert_eq!(row.fields.get("year").map(String::as_str), Some("2027"));

    // The same channel serial again: the first answer, nothing moves.
    let (_, repeat) = w.pay(&pay).await;
    assert_eq!(repeat, answer);
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
    assert_eq!(w.sim.payments().len(), 1);

    // The year is paid now: the query says nothing is due, a new payment is refused unpaid.
    let (_, after) = w.env.post("/api/v1/bills/query", &query(ZHANG, "02")).await;
    assert_eq!(after["nothing_due"], true, "{after}");
    let (_, again) = w.pay(&zhang("02", "MED0002")).await;
    assert_eq!(again["status"], "FAILED", "{again}");
    assert_eq!(again["code"], "PARTNER_ALREADY_PAID");
    assert_eq!(again["partner_code"], "1003");
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_debit_take_no_money() {
    let w = world().await;
    let cases: Vec<(Pay<'_>, &str, &str)> = vec![
        (
            Pay {
                name: "张四",
                ..zhang("02", "MEDR001")
            },
            "PARTNER_NAME_MISMATCH",
            "1002",
        ),
        (
            Pay {
                fen: 38_000,
                ..zhang("02", "MEDR002")
            },
            "PARTNER_AMOUNT_MISMATCH",
            "1005",
        ),
        (
            Pay {
                year: "2028",
                ..zhang("02", "MEDR003")
            },
            "PARTNER_NOT_PAYABLE_NOW",
            "1004",
        ),
        (
            Pay {
                id_no: NOT_INSURED,
                ..zhang("02", "MEDR004")
            },
            "PARTNER_CUSTOMER_NOT_FOUND",
            "1001",
        ),
    ];
    for (pay, code, partner_code) in &cases {
        let (status, answer) = w.pay(pay).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], "FAILED", "{answer}");
        assert_eq!(answer["code"], *code, "{answer}");
        assert_eq!(answer["partner_code"], *partner_code, "{answer}");
        assert!(is_chinese(answer["message"].as_str().unwrap_or_default()));
        let row = w.row(&serial_of(&answer)).await;
        assert_eq!(row.state, PaymentState::CoreFailed);
        assert_eq!(row.core_seq_no, None, "never debited");
    }
    // Failing ID numbers are refused before anything is journaled or sent.
    let before = w.env.payment_count().await;
    for (serial, id_no) in [
        ("MEDR010", "431227199003150017"),
        ("MEDR011", "431227900315001"),
    ] {
        let (status, answer) = w
            .pay(&Pay {
                id_no,
                ..zhang("02", serial)
            })
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], "BAD_REQUEST");
    }
    // 2001 carries payerName (spec 03): without it the insurer would answer 9001 after the
    // debit, so the hub refuses it first.
    let mut nameless = zhang("02", "MEDR012").body(&w.env);
    nameless["fields"]["payer_name"] = json!(" ");
    let (status, answer) = w.env.post("/api/v1/payments", &nameless).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (_, refused) = w
        .env
        .post("/api/v1/bills/query", &query("431227199003150017", "02"))
        .await;
    assert_eq!(refused["code"], "PARTNER_INVALID_ID_NUMBER", "{refused}");
    assert_eq!(w.env.payment_count().await, before);
    w.ledger(PAYER_A_OPENING_FEN, 0);
    assert!(w.sim.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insurer_refusal_after_the_debit_gives_the_money_back() {
    let w = world().await;
    // 1003 (paid meanwhile elsewhere) and 9005 (reqTime refused): the insurer did nothing.
    for (serial, ret_code, code) in [
        ("MEDF001", "1003", "PARTNER_ALREADY_PAID"),
        ("MEDF002", "9005", "PARTNER_REFUSED"),
    ] {
        w.sim
            .inject(Some("2001"), MedicalFault::Answer { ret_code });
        let (_, answer) = w.pay(&zhang("02", serial)).await;
        assert_eq!(answer["status"], "FAILED", "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
        assert_eq!(answer["partner_code"], ret_code);
        let row = w
            .env
            .wait_state(&serial_of(&answer), PaymentState::Reversed)
            .await;
        assert!(row.reversal_core_seq_no.is_some(), "core 8003 posted");
        w.ledger(PAYER_A_OPENING_FEN, 0);
    }
    assert!(w.sim.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_payment_is_asked_with_2003_and_ends_paid() {
    let w = world().await;
    // The insurer commits after 1.5 s; the hub gives up waiting after 0.5 s.
    w.sim
        .inject(Some("2001"), MedicalFault::AnswerLate { delay_ms: 1_500 });
    let (_, answer) = w.pay(&zhang("04", "MEDT001")).await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    let hub_serial = serial_of(&answer);
    let row = w.row(&hub_serial).await;
    assert_eq!(row.state, PaymentState::PartnerUnknown);
    assert_eq!(row.next_action, NextAction::PartnerStatus);
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
    let row = w.env.wait_state(&hub_serial, PaymentState::Succeeded).await;
    let held = w.sim.payments();
    assert_eq!(held.len(), 1);
    assert_eq!(row.partner_serial.as_deref(), Some(held[0].pay_no.as_str()));
    assert_eq!(row.acct_date, Some(held[0].acct_date));
    assert_eq!(held[0].channel, "05", "online banking is 05 in spec 03");
    // Nothing was given back: the money waits for settlement.
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_payment_is_reversed_only_once_not_found_is_final() {
    let w = world().await;
    w.sim.inject(Some("2001"), MedicalFault::Lost);
    let accepted = w.env.clock.now();
    let (_, answer) = w.pay(&zhang("02", "MEDL001")).await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    let hub_serial = serial_of(&answer);
    // 2003 answers 3 from the first ask (10, 30, 60, 120 s), but until 330 s after reqTime a
    // late 2001 could still be accepted: the money stays.
    while w.env.clock.now() < accepted + chrono::Duration::seconds(300) {
        w.env.clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let row = w.row(&hub_serial).await;
    assert_eq!(
        row.state,
        PaymentState::PartnerUnknown,
        "{:?}",
        row.last_error
    );
    assert!(row.attempts >= 4, "asked on the schedule: {}", row.attempts);
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
    // The ask at 330 s is final: core reversal.
    let row = w
        .env
        .wait_until(
            &hub_serial,
            chrono::Duration::seconds(10),
            "REVERSED",
            |r| r.state == PaymentState::Reversed,
        )
        .await;
    assert!(row.reversal_core_seq_no.is_some());
    assert!(w.env.clock.now() >= accepted + chrono::Duration::seconds(330));
    w.ledger(PAYER_A_OPENING_FEN, 0);
    assert!(w.sim.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_cancel_the_same_day_gives_the_money_back() {
    let w = world().await;
    let (_, paid) = w.pay(&zhang("01", "MEDC001")).await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);

    // The counter's 冲正 is not this partner's undo; a cancel needs a second teller.
    let (status, reversal) = w.env.reverse("01", &w.env.today(), "MEDC001").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reversal}");
    assert_eq!(reversal["code"], "REVERSAL_NOT_ALLOWED");
    let (status, same_teller) = w.cancel("01", "MEDC001", "T00001").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{same_teller}");

    // The first 2002 gets no answer: it is sent again under a new reqSerial.
    w.sim.inject(Some("2002"), MedicalFault::Busy);
    let (status, cancelled) = w.cancel("01", "MEDC001", "T00002").await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let hub_serial = serial_of(&paid);
    let row = w.env.wait_state(&hub_serial, PaymentState::Cancelled).await;
    assert!(row.reversal_core_seq_no.is_some());
    assert_ne!(cancelled["status"], "FAILED", "{cancelled}");
    w.ledger(PAYER_A_OPENING_FEN, 0);
    let held = w.sim.payments();
    assert_eq!(held.len(), 1);
    assert!(held[0].cancelled);
    // Cancelled again: the same answer, nothing moves.
    let (_, again) = w.cancel("01", "MEDC001", "T00002").await;
    assert_eq!(again["status"], "CANCELLED", "{again}");
    w.ledger(PAYER_A_OPENING_FEN, 0);

    // Mobile payments are not cancelled.
    let (_, mobile) = w
        .pay(&Pay {
            id_no: WANG,
            name: "王芳",
            fen: WANG_FEN,
            ..zhang("02", "MEDC002")
        })
        .await;
    assert_eq!(mobile["status"], "SUCCEEDED", "{mobile}");
    let (status, refused) = w.cancel("02", "MEDC002", "T00002").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "CANCEL_NOT_ALLOWED");

    // After 22:00 the counter cannot cancel either; the payment stands.
    let (_, late) = w
        .pay(&Pay {
            id_no: YANG,
            name: "杨老汉",
            fen: YANG_FEN,
            ..zhang("01", "MEDC003")
        })
        .await;
    assert_eq!(late["status"], "SUCCEEDED", "{late}");
    w.env.clock.advance_to(at(business_date(), 22, 0, 1));
    let (status, too_late) = w.cancel("01", "MEDC003", "T00002").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{too_late}");
    assert_eq!(too_late["code"], "CANCEL_TOO_LATE");
    let row = w.row(&serial_of(&late)).await;
    assert_eq!(row.state, PaymentState::Succeeded);
    w.ledger(
        PAYER_A_OPENING_FEN - WANG_FEN - YANG_FEN,
        WANG_FEN + YANG_FEN,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_with_medical_payments_reconciles_on_t_plus_1_without_differences() {
    let w = world().await;
    // Standing: 张三 on mobile; 杨老汉 online after a timeout settled by 2003.
    let (_, a) = w.pay(&zhang("02", "MEDD001")).await;
    assert_eq!(a["status"], "SUCCEEDED", "{a}");
    w.sim
        .inject(Some("2001"), MedicalFault::AnswerLate { delay_ms: 1_500 });
    let (_, c) = w
        .pay(&Pay {
            id_no: YANG,
            name: "杨老汉",
            fen: YANG_FEN,
            ..zhang("04", "MEDD003")
        })
        .await;
    assert_eq!(c["status"], "IN_DOUBT", "{c}");
    w.env
        .wait_state(&serial_of(&c), PaymentState::Succeeded)
        .await;
    // Cancelled at the counter the same day: a status-2 line, not a payment to settle.
    let (_, b) = w
        .pay(&Pay {
            id_no: WANG,
            name: "王芳",
            fen: WANG_FEN,
            ..zhang("01", "MEDD002")
        })
        .await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    let (_, cancelled) = w.cancel("01", "MEDD002", "T00002").await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");

    // T+1: the core's file by 01:00; the insurer's is fetched with 9001 (ready from 06:00).
    let next_day = business_date().checked_add_days(Days::new(1)).expect("day");
    w.env.clock.advance_to(at(next_day, 1, 0, 0));
    w.env
        .core
        .write_daily_file(business_date(), &w.env.files_dir())
        .expect("core file");
    w.env.clock.advance_to(at(next_day, 9, 0, 0));
    let files = w.env.files_dir();
    let reports = w.env.dir.path().join("reports");
    let run = w
        .env
        .on_hub(move |engine| async move {
            let link = engine
                .partners()
                .find(|l| l.adapter.payee() == PAYEE_CXJM)
                .cloned()
                .expect("medical configured");
            hub::recon_job::run(&engine, &link, business_date(), &files, &reports).await
        })
        .await
        .expect("reconciliation runs");
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    let file = w
        .env
        .files_dir()
        .join(format!("CXJM_{MED_BANK_CODE}_20261203.txt"));
    let text = std::fs::read_to_string(&file).expect("the fetched file is archived");
    assert!(
        text.starts_with("20261203|2|600.00|1|400.00\n"),
        "summary line: {text}"
    );
    // 400.00 + 200.00 standing go to the fund in one 8002.
    assert_eq!(run.settlement.amount_fen, ZHANG_FEN + YANG_FEN);
    assert_eq!(run.settlement.state, "POSTED");
    assert_eq!(w.env.balance_fen(MED_FUND), ZHANG_FEN + YANG_FEN);
    assert_eq!(w.env.balance_fen(MED_SUSPENSE), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insurer_refusals_of_a_cancel_leave_the_payment_standing() {
    let w = world().await;
    let (_, paid) = w.pay(&zhang("01", "MEDX001")).await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    let hub_serial = serial_of(&paid);
    // 2003 (the insurer's day moved on) and 2004 (original differs): the money stays.
    for (ret_code, code) in [("2003", "CANCEL_TOO_LATE"), ("2004", "CANCEL_MISMATCH")] {
        w.sim
            .inject(Some("2002"), MedicalFault::Answer { ret_code });
        let (_, refused) = w.cancel("01", "MEDX001", "T00002").await;
        assert_eq!(refused["status"], "FAILED", "{refused}");
        assert_eq!(refused["code"], code, "{refused}");
        let row = w.row(&hub_serial).await;
        assert_eq!(row.state, PaymentState::Succeeded);
        w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
    }
    // 2001 "original not found" contradicts the receipt the hub holds: an operator decides,
    // nothing is given back automatically.
    w.sim
        .inject(Some("2002"), MedicalFault::Answer { ret_code: "2001" });
    let (_, answer) = w.cancel("01", "MEDX001", "T00002").await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    let row = w.row(&hub_serial).await;
    assert_eq!(row.state, PaymentState::CancelRequested);
    assert_eq!(row.next_action, NextAction::Operator);
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
    assert!(!w.sim.payments()[0].cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_during_the_2001_resolves_it_by_2003_after_restart() {
    let mut w = world().await;
    // The insurer holds the 2001 for 1.5 s, then commits it; the hub dies meanwhile.
    w.sim
        .inject(Some("2001"), MedicalFault::AnswerLate { delay_ms: 1_500 });
    let body = zhang("02", "MEDK001").body(&w.env);
    let http = w.env.http.clone();
    let url = format!("{}/api/v1/payments", w.env.base_url());
    let in_flight = tokio::spawn(async move { http.post(url).json(&body).send().await });
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    let hub_serial = loop {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT hub_serial, state FROM payments WHERE channel_serial = ?")
                .bind("MEDK001")
                .fetch_optional(w.env.journal.pool())
                .await
                .ok()
                .flatten();
        if let Some((serial, state)) = row {
            if state == PaymentState::CoreDebited.as_str() {
                break serial;
            }
        }
        assert!(std::time::Instant::now() < deadline, "2001 never in flight");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    // CORE_DEBITED is journaled just before the 2001 leaves: give it time to reach the insurer.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    w.env.kill_hub();
    let _ = in_flight.await;
    // Let the insurer commit what it received, then start a new hub on the same journal.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let mut config = w.env.hub_config();
    config.medical = vec![w.medical.clone()];
    w.env.start_hub_with_config(config).await;
    // Never a second 2001: the new hub asks 2003 and keeps the payment the insurer holds.
    let row = w.env.wait_state(&hub_serial, PaymentState::Succeeded).await;
    let held = w.sim.payments();
    assert_eq!(held.len(), 1);
    assert_eq!(row.partner_serial.as_deref(), Some(held[0].pay_no.as_str()));
    w.ledger(PAYER_A_OPENING_FEN - ZHANG_FEN, ZHANG_FEN);
}

/// 3001 through the channels' history desk: the payment just made comes back with the channel it
/// came through (mobile banking is 04 at the insurer), masked off the counter and whole at it;
/// a bad check digit never leaves the hub; the insurer's 1001 and 3001 come back typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_history_shows_each_payment_with_its_channel_masked_off_the_counter() {
    let w = world().await;
    let (_, paid) = w.pay(&zhang("02", "MEDH001")).await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    let today = w.env.today();
    let history = |id_no: &str, channel: &str, start: &str| {
        json!({
            "instance": INSTANCE, "id_no": id_no, "start_date": start, "end_date": today,
            "channel": channel, "branch_no": BRANCH, "teller_no": "T00001",
        })
    };
    let (status, mobile) = w
        .env
        .post("/api/v1/medical/history", &history(ZHANG, "02", "20261201"))
        .await;
    assert_eq!(status, StatusCode::OK, "{mobile}");
    assert_eq!(mobile["status"], "OK", "{mobile}");
    let records = mobile["records"].as_array().expect("records");
    let ours = records
        .iter()
        .find(|r| r["year"] == "2027" && r["pay_date"] == "20261203")
        .unwrap_or_else(|| panic!("the payment is in the history: {mobile}"));
    assert_eq!(ours["amount_fen"], ZHANG_FEN);
    assert_eq!(ours["pay_channel"], "04");
    assert_eq!(ours["pay_channel_name"], "手机银行");
    assert_eq!(ours["name"], "*三");
    assert_eq!(ours["id_no"], "4312**********0016");
    let (_, counter) = w
        .env
        .post("/api/v1/medical/history", &history(ZHANG, "01", "20261201"))
        .await;
    let whole = counter["records"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["year"] == "2027").cloned())
        .unwrap_or_default();
    assert_eq!(whole["name"], "张三", "{counter}");
    assert_eq!(whole["id_no"], ZHANG);

    // The check digit of 431227199003150016 is 6.
    let (_, bad) = w
        .env
        .post(
            "/api/v1/medical/history",
            &history("431227199003150017", "02", "20261201"),
        )
        .await;
    assert_eq!(bad["code"], "PARTNER_INVALID_ID_NUMBER", "{bad}");
    // Not insured here: 1001. More than 366 days: 3001.
    let (_, unknown) = w
        .env
        .post(
            "/api/v1/medical/history",
            &history(NOT_INSURED, "02", "20261201"),
        )
        .await;
    assert_eq!(unknown["partner_code"], "1001", "{unknown}");
    assert_eq!(unknown["code"], "PARTNER_CUSTOMER_NOT_FOUND");
    // A range the insurer would answer 3001 (more than 366 days, start after end, end after
    // today) and a missing teller are refused by the hub without a call.
    let mut after_today = history(ZHANG, "02", "20261201");
    after_today["end_date"] = json!("20261204");
    let mut reversed = history(ZHANG, "02", "20261202");
    reversed["end_date"] = json!("20261201");
    let mut no_teller = history(ZHANG, "02", "20261201");
    no_teller["teller_no"] = json!(" ");
    let mut year_zero = history(ZHANG, "02", "00000101");
    year_zero["end_date"] = json!("00000102");
    for bad in [
        history(ZHANG, "02", "20251101"),
        after_today,
        reversed,
        no_teller,
        year_zero,
    ] {
        let (status, refused) = w.env.post("/api/v1/medical/history", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {refused}");
        assert_eq!(refused["code"], "BAD_REQUEST", "{refused}");
    }
    // 366 days counting both ends is still one question.
    let (status, year) = w
        .env
        .post("/api/v1/medical/history", &history(ZHANG, "02", "20251203"))
        .await;
    assert_eq!(status, StatusCode::OK, "{year}");
    assert_eq!(year["status"], "OK", "{year}");
}

/// GB 11643 writes the check character X; a channel that sends `x` pays the same person: the
/// hub journals and sends `X`, so the insurer's records and the T+1 file match the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_case_check_character_is_journaled_and_sent_upper_case() {
    let w = world().await;
    let lower = WANG.to_ascii_lowercase();
    let (status, bill) = w
        .env
        .post(
            "/api/v1/bills/query",
            &json!({
                "payee": PAYEE_CXJM, "instance": INSTANCE, "customer_no": lower,
                "channel": "01", "branch_no": BRANCH, "teller_no": "T00001",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bill}");
    let (_, paid) = w
        .pay(&Pay {
            id_no: &lower,
            name: "王芳",
            fen: WANG_FEN,
            ..zhang("01", "MEDX001")
        })
        .await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    let hub_serial = paid["hub_serial"].as_str().expect("hub_serial");
    assert_eq!(w.env.row(hub_serial).await.customer_no, WANG);
    let held = w.sim.payments();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].id_no, WANG);
    // The same payment repeated with `X` is the same payment, not a second one.
    let (_, again) = w
        .pay(&Pay {
            id_no: WANG,
            name: "王芳",
            fen: WANG_FEN,
            ..zhang("01", "MEDX001")
        })
        .await;
    assert_eq!(again["hub_serial"], paid["hub_serial"], "{again}");
    assert_eq!(w.sim.payments().len(), 1);
}
