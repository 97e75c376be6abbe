//! End to end against the simulator of `fixtures` (written independently from the spec), over
//! real loopback sockets, with short timings.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use codecs::clock::{ManualClock, SharedClock};
use codecs::Money;
use fixtures::cabletv_sim::{self, CableFault, CableFaultRule, CableSimHandle};

use super::wire::YearMonth;
use super::*;

const KEY_HEX: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap_or_default()
}

fn settings() -> LinkSettings {
    LinkSettings {
        connect_timeout_ms: 500,
        heartbeat_idle_ms: 300,
        receive_idle_ms: 5_000,
        year_end_heartbeat_ms: 600,
        money_timeout_ms: 800,
        other_timeout_ms: 600,
        backoff_ms: vec![50, 100, 200],
        max_in_flight: 32,
    }
}

async fn setup() -> (CableSimHandle, CableTv, SharedClock) {
    let clock: SharedClock = ManualClock::new(at("2026-12-02 19:30:05"));
    let key = hex::decode(KEY_HEX).unwrap_or_default();
    let mut config = cabletv_sim::sample_config(key.clone(), 2026);
    config.heartbeat_idle = Duration::from_millis(200);
    let sim = cabletv_sim::start(config, clock.clone()).await;
    let Ok(sim) = sim else {
        panic!("simulator did not start")
    };
    let tv = CableTv::start(
        sim.addr.to_string(),
        "YX0001".to_string(),
        key,
        settings(),
        clock.clone(),
    );
    for _ in 0..100 {
        if tv.signed_in() && tv.parameters().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tv.signed_in(), "link did not sign in");
    (sim, tv, clock)
}

fn caller(serial: &str) -> Caller {
    Caller {
        branch_no: "050201".to_string(),
        teller_no: "SJ000001".to_string(),
        channel: "SJ".to_string(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
        tx_time: chrono::NaiveTime::from_hms_opt(19, 30, 5).unwrap_or_default(),
        serial: serial.to_string(),
    }
}

fn worked_order() -> PayRequest {
    PayRequest {
        customer_no: "YX2019000123".to_string(),
        package_code: "JB0001".to_string(),
        months: 12,
        amount: Money::from_fen(31_200),
        payer_account: "6230901234567890123".to_string(),
    }
}

#[tokio::test]
async fn query_pay_cancel_status_and_parameters_end_to_end() {
    let (sim, tv, _clock) = setup().await;
    let params = tv.parameters().unwrap_or(ParamSet {
        version: 0,
        rows: Vec::new(),
    });
    assert_eq!(params.fee("JB0001", 2027), Some(Money::from_fen(2600)));
    let paid_through = YearMonth {
        year: 2026,
        month: 11,
    };
    assert_eq!(
        params.amount_for("JB0001", paid_through, 12),
        Some(Money::from_fen(31_200))
    );

    let customer = tv
        .query(
            &caller("YX202612021930000001"),
            &QueryKey::CustomerNo("YX2019000123".to_string()),
        )
        .await;
    let Ok(customer) = customer else {
        panic!("{customer:?}")
    };
    assert_eq!(customer.name, "张三");
    assert_eq!(customer.packages.len(), 1);
    assert_eq!(customer.packages[0].paid_through, paid_through);
    // 202612 is the current month and unpaid: one month of arrears.
    assert_eq!(customer.packages[0].arrears_months, 1);
    assert_eq!(customer.packages[0].arrears_amount, Money::from_fen(2600));

    let paid = tv
        .pay(&caller("YX202612021930050042"), &worked_order())
        .await;
    let PayOutcome::Paid {
        paid_from,
        paid_through: through,
        acct_date,
        ..
    } = paid
    else {
        panic!("{paid:?}")
    };
    assert_eq!(
        paid_from,
        YearMonth {
            year: 2026,
            month: 12
        }
    );
    assert_eq!(
        through,
        YearMonth {
            year: 2027,
            month: 11
        }
    );
    assert_eq!(
        acct_date,
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default()
    );
    assert_eq!(sim.payments().len(), 1);

    let original = OriginalPay {
        serial: "YX202612021930050042".to_string(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
        customer_no: "YX2019000123".to_string(),
        amount: Money::from_fen(31_200),
    };
    let cancelled = tv
        .channel_cancel(&caller("YX202612021931000043"), &original)
        .await;
    assert_eq!(
        cancelled,
        CancelOutcome::Cancelled {
            paid_through: YearMonth {
                year: 2026,
                month: 11
            }
        }
    );
    let again = tv.cancel(&caller("YX202612021931000044"), &original).await;
    assert_eq!(again, CancelOutcome::AlreadyCancelled);
    let status = tv
        .status_of(
            &caller("YX202612021932000045"),
            &original.serial,
            original.tx_date,
        )
        .await;
    assert!(
        matches!(status, StatusOutcome::Cancelled { .. }),
        "{status:?}"
    );

    // A wrong amount is 05; an unknown customer 01.
    let mut wrong = worked_order();
    wrong.amount = Money::from_fen(31_000);
    let refused = tv.pay(&caller("YX202612021933000046"), &wrong).await;
    assert!(
        matches!(&refused, PayOutcome::Refused(r) if r.code == "05"),
        "{refused:?}"
    );
    let stats = tv.statistics(original.tx_date, original.tx_date).await;
    let Ok(stats) = stats else {
        panic!("{stats:?}")
    };
    assert_eq!(
        (stats.pay_count, stats.pay_amount),
        (1, Money::from_fen(31_200))
    );
    assert_eq!(
        (stats.cancel_count, stats.cancel_amount),
        (1, Money::from_fen(31_200))
    );
    tv.shutdown();
}

#[tokio::test]
async fn twenty_requests_in_flight_answered_in_reverse_are_each_matched() {
    let (sim, tv, _clock) = setup().await;
    sim.hold_and_reverse(20);
    let mut calls = Vec::new();
    for i in 0..20 {
        let tv = tv.clone();
        calls.push(tokio::spawn(async move {
            let no = format!("YX20200{i:05}");
            let c = caller(&format!("YX2026120219300{i:05}"));
            (no.clone(), tv.query(&c, &QueryKey::CustomerNo(no)).await)
        }));
    }
    for call in calls {
        let Ok((no, answer)) = call.await else {
            panic!("task failed")
        };
        let Ok(customer) = answer else {
            panic!("{no}: {answer:?}")
        };
        assert_eq!(customer.customer_no, no);
    }
    assert_eq!(tv.stray_answers(), 0);
    tv.shutdown();
}

#[tokio::test]
async fn dropped_link_makes_in_flight_unknown_and_reconnects() {
    let (sim, tv, _clock) = setup().await;
    sim.arm(CableFaultRule {
        tx_code: Some("2002".to_string()),
        customer_no: None,
        fault: CableFault::Silent,
        times: 1,
    });
    let tv2 = tv.clone();
    let pay = tokio::spawn(async move {
        tv2.pay(&caller("YX202612021930050042"), &worked_order())
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.drop_links();
    let started = std::time::Instant::now();
    let outcome = pay.await;
    assert!(
        matches!(outcome, Ok(PayOutcome::Unknown { .. })),
        "{outcome:?}"
    );
    // Failed by the drop, not by the 800 ms timeout.
    assert!(started.elapsed() < Duration::from_millis(700));
    for _ in 0..100 {
        if tv.signed_in() && tv.connects() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tv.connects() >= 2 && tv.signed_in());
    tv.shutdown();
}

#[tokio::test]
async fn late_answer_is_dropped_and_bad_mac_fails_at_once() {
    let (sim, tv, _clock) = setup().await;
    sim.arm(CableFaultRule {
        tx_code: Some("2001".to_string()),
        customer_no: None,
        fault: CableFault::AnswerLate(Duration::from_millis(900)),
        times: 1,
    });
    let key = QueryKey::CustomerNo("YX2019000123".to_string());
    let late = tv.query(&caller("YX202612021930000001"), &key).await;
    assert!(
        matches!(late, Err(CableError::Call(CallError::Lost(_)))),
        "{late:?}"
    );
    // The next call with another serial is not paired with the late answer.
    let next = tv
        .query(
            &caller("YX202612021930000002"),
            &QueryKey::CustomerNo("YX2019000124".to_string()),
        )
        .await;
    assert!(
        matches!(&next, Ok(c) if c.customer_no == "YX2019000124"),
        "{next:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tv.stray_answers(), 1);

    sim.arm(CableFaultRule {
        tx_code: Some("2002".to_string()),
        customer_no: None,
        fault: CableFault::BadMac,
        times: 1,
    });
    let started = std::time::Instant::now();
    let outcome = tv
        .pay(&caller("YX202612021930050042"), &worked_order())
        .await;
    assert!(matches!(outcome, PayOutcome::Unknown { .. }), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_millis(700));
    assert!(tv.signed_in(), "a bad MAC does not drop the link");
    // The cable company's own heartbeats were answered.
    assert!(sim.heartbeat_answers() >= 1);
    tv.shutdown();
}

#[tokio::test]
async fn daily_reconciliation_writes_the_archive() {
    let (sim, tv, clock) = setup().await;
    let paid = tv
        .pay(&caller("YX202612021930050042"), &worked_order())
        .await;
    assert!(matches!(paid, PayOutcome::Paid { .. }), "{paid:?}");
    let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
    let early = tv.reconcile_day(day, 1, Money::from_fen(31_200)).await;
    assert!(
        matches!(&early, Err(CableError::Refused(r)) if r.code == "31"),
        "{early:?}"
    );
    let _ = clock;
    drop(sim);
    tv.shutdown();
}

#[test]
fn manual_clock_is_arc() {
    let clock = ManualClock::new(at("2026-12-03 01:30:00"));
    let _shared: SharedClock = Arc::clone(&clock) as SharedClock;
}
