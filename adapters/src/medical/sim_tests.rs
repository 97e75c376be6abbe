//! End to end against the insurer simulator of `fixtures` (written separately from the spec):
//! real HTTP on loopback, the insurer with its own key pair.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use codecs::clock::{Clock, ManualClock, SharedClock};
use codecs::crypto::sm2::PrivateKey;
use codecs::Money;
use fixtures::medical_sim::{
    sample_insured, MedicalFault, MedicalSim, MedicalSimConfig, TEST_BANK_PRIVATE_HEX,
    TEST_DATA_KEY_HEX,
};

use super::client::*;
use super::daily_file::{self, RecordStatus};
use super::messages::PayChannel;

fn at(d: u32, hh: u32, mm: u32, ss: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, d)
        .and_then(|x| x.and_hms_opt(hh, mm, ss))
        .expect("time")
}

struct World {
    sim: MedicalSim,
    clock: Arc<ManualClock>,
    client: MedicalClient,
    serial: std::sync::atomic::AtomicU32,
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
        insured: sample_insured(
            "2027",
            NaiveDate::from_ymd_opt(2026, 9, 1).expect("d"),
            NaiveDate::from_ymd_opt(2026, 12, 31).expect("d"),
        ),
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
    let client = MedicalClient::new(config, reqwest::Client::new(), shared).expect("client");
    World {
        sim,
        clock,
        client,
        serial: std::sync::atomic::AtomicU32::new(1),
    }
}

impl World {
    fn key(&self) -> RequestKey {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = self.clock.now();
        self.client
            .request_key(&format!("XH{}{n:06}", now.format("%Y%m%d%H%M%S")))
    }
}

const ZHANG: &str = "431227199003150016";

fn order(id_no: &str, name: &str, amount: Money) -> ContributionOrder {
    ContributionOrder {
        id_no: id_no.into(),
        name: name.into(),
        year: "2027".into(),
        amount,
        payer_name: "李四".into(),
        payer_acct: "6230901234567890456".into(),
        channel: PayChannel::Counter,
    }
}

#[tokio::test]
async fn a_business_day_against_the_simulator() {
    let w = world(2_000).await;
    let QueryOutcome::Insured(person) = w
        .client
        .query_insured(&w.key(), ZHANG)
        .await
        .expect("query")
    else {
        panic!("insured expected")
    };
    let payable = person.payable("2027").expect("2027").clone();
    assert_eq!(payable.amount, Money::from_fen(40_000));
    assert!(!payable.paid);

    let pay_key = w.key();
    let outcome = w
        .client
        .pay(&pay_key, &order(ZHANG, "张三", payable.amount))
        .await
        .expect("sent");
    let PayOutcome::Paid(receipt) = outcome else {
        panic!("paid expected: {outcome:?}")
    };
    assert_eq!(receipt.acct_date, at(2, 0, 0, 0).date());

    let refused = w
        .client
        .pay(&w.key(), &order(ZHANG, "张三", payable.amount))
        .await
        .expect("sent");
    assert!(
        matches!(refused, PayOutcome::Refused(ref r) if r.ret_code == "1003"),
        "{refused:?}"
    );
    let wrong_name = w
        .client
        .pay(
            &w.key(),
            &order("11010519491231002x", "王 芳", Money::from_fen(40_000)),
        )
        .await
        .expect("sent");
    assert!(
        matches!(wrong_name, PayOutcome::Refused(ref r) if r.ret_code == "1002"),
        "{wrong_name:?}"
    );

    let original = OriginalPayment {
        req_serial: pay_key.req_serial.clone(),
        req_date: pay_key.req_date(),
    };
    let status = w.client.status(&w.key(), &original).await.expect("status");
    assert_eq!(
        status,
        StatusOutcome::Paid {
            pay_no: receipt.pay_no.clone(),
            amount: Money::from_fen(40_000),
            acct_date: receipt.acct_date,
        }
    );

    let HistoryOutcome::History(history) = w
        .client
        .history(
            &w.key(),
            ZHANG,
            at(1, 0, 0, 0).date(),
            at(2, 0, 0, 0).date(),
        )
        .await
        .expect("history")
    else {
        panic!("history expected")
    };
    assert_eq!(history.records.len(), 1);
    assert_eq!(
        history.records.first().map(|r| r.channel),
        Some(PayChannel::Counter)
    );
    // Spec 03: more than 366 days counting both ends is the insurer's 3001 (the channels' desk
    // refuses it before calling; the client passes the insurer's answer on typed).
    let start = at(1, 0, 0, 0).date() - chrono::Duration::days(366);
    match w
        .client
        .history(&w.key(), ZHANG, start, at(1, 0, 0, 0).date())
        .await
    {
        Ok(HistoryOutcome::Refused(reply)) => assert_eq!(reply.ret_code, "3001"),
        other => panic!("3001 expected, got {other:?}"),
    }

    // A second payment, cancelled (撤销) the same day.
    let yang_key = w.key();
    let yang = w
        .client
        .pay(
            &yang_key,
            &order("431227195501010018", "杨老汉", Money::from_fen(20_000)),
        )
        .await
        .expect("sent");
    assert!(matches!(yang, PayOutcome::Paid(_)), "{yang:?}");
    let yang_original = OriginalPayment {
        req_serial: yang_key.req_serial.clone(),
        req_date: yang_key.req_date(),
    };
    let cancel = w
        .client
        .cancel(
            &w.key(),
            &yang_original,
            "431227195501010018",
            Money::from_fen(20_000),
        )
        .await
        .expect("sent");
    assert!(
        matches!(cancel, CancelOutcome::Cancelled { .. }),
        "{cancel:?}"
    );
    let again = w
        .client
        .cancel(
            &w.key(),
            &yang_original,
            "431227195501010018",
            Money::from_fen(20_000),
        )
        .await
        .expect("sent");
    assert!(
        matches!(again, CancelOutcome::AlreadyCancelled),
        "{again:?}"
    );

    w.clock.advance_to(at(3, 5, 0, 0));
    let not_ready = w
        .client
        .daily_file(&w.key(), at(2, 0, 0, 0).date())
        .await
        .expect("9001");
    assert!(
        matches!(not_ready, DailyFileOutcome::NotReady),
        "{not_ready:?}"
    );
    w.clock.advance_to(at(3, 6, 30, 0));
    let DailyFileOutcome::File { file_name, content } = w
        .client
        .daily_file(&w.key(), at(2, 0, 0, 0).date())
        .await
        .expect("9001")
    else {
        panic!("file expected")
    };
    assert_eq!(file_name, "CXJM_HHXH0001_20261202.txt");
    let file = daily_file::parse(&content, at(2, 0, 0, 0).date()).expect("parse");
    let keys: Vec<(&str, RecordStatus)> = file
        .records
        .iter()
        .map(|r| (r.req_serial.as_str(), r.status))
        .collect();
    assert_eq!(
        keys,
        vec![
            (pay_key.req_serial.as_str(), RecordStatus::Standing),
            (yang_key.req_serial.as_str(), RecordStatus::Cancelled),
        ]
    );
}

#[tokio::test]
async fn a_late_answer_is_unknown_and_2003_resolves_it() {
    let w = world(300).await;
    w.sim
        .inject(Some("2001"), MedicalFault::AnswerLate { delay_ms: 800 });
    let pay_key = w.key();
    let outcome = w
        .client
        .pay(&pay_key, &order(ZHANG, "张三", Money::from_fen(40_000)))
        .await
        .expect("sent");
    assert!(matches!(outcome, PayOutcome::Unknown { .. }), "{outcome:?}");
    let original = OriginalPayment {
        req_serial: pay_key.req_serial.clone(),
        req_date: pay_key.req_date(),
    };
    assert_eq!(
        w.client.status(&w.key(), &original).await.expect("2003"),
        StatusOutcome::InProcess
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let status = w.client.status(&w.key(), &original).await.expect("2003");
    assert!(matches!(status, StatusOutcome::Paid { .. }), "{status:?}");
}

#[tokio::test]
async fn bad_signature_close_and_busy_are_unknown() {
    let w = world(2_000).await;
    for (fault, id, name, amount_fen, expected_status) in [
        (MedicalFault::BadSignature, ZHANG, "张三", 40_000, "paid"),
        (
            MedicalFault::Close,
            "431227195501010018",
            "杨老汉",
            20_000,
            "paid",
        ),
        (
            MedicalFault::Busy,
            "11010519491231002X",
            "王芳",
            40_000,
            "not found",
        ),
    ] {
        w.sim.inject(Some("2001"), fault);
        let pay_key = w.key();
        let outcome = w
            .client
            .pay(&pay_key, &order(id, name, Money::from_fen(amount_fen)))
            .await
            .expect("sent");
        assert!(
            matches!(outcome, PayOutcome::Unknown { .. }),
            "{fault:?}: {outcome:?}"
        );
        let original = OriginalPayment {
            req_serial: pay_key.req_serial.clone(),
            req_date: pay_key.req_date(),
        };
        let status = w.client.status(&w.key(), &original).await.expect("2003");
        let seen = match status {
            StatusOutcome::Paid { .. } => "paid",
            StatusOutcome::NotFound => "not found",
            _ => "other",
        };
        assert_eq!(seen, expected_status, "{fault:?}");
    }
}
