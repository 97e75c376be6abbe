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
        clock_seeded_serials(clock.clone()),
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

/// A simulator and a link on a clock the test moves; `heartbeat_idle_ms` as given.
async fn setup_at(
    start: &str,
    heartbeat_idle_ms: u64,
) -> (CableSimHandle, CableTv, Arc<ManualClock>) {
    let manual = ManualClock::new(at(start));
    let clock: SharedClock = manual.clone();
    let key = hex::decode(KEY_HEX).unwrap_or_default();
    let mut config = cabletv_sim::sample_config(key.clone(), 2026);
    config.heartbeat_idle = Duration::from_millis(200);
    let Ok(sim) = cabletv_sim::start(config, clock.clone()).await else {
        panic!("simulator did not start")
    };
    let tv = CableTv::start(
        sim.addr.to_string(),
        "YX0001".to_string(),
        key,
        LinkSettings {
            heartbeat_idle_ms,
            ..settings()
        },
        clock.clone(),
        clock_seeded_serials(clock),
    );
    (sim, tv, manual)
}

/// Polls `done` every 20 ms for at most `ms`.
async fn within(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// Spec 04: Serial is unique per BankCode and TxDate for each side's requests (a reuse with
/// other content is answered 06). A link stopped and started again on the same day (a restarted
/// `hub serve`) must not send any serial of the first one again.
#[tokio::test]
async fn a_link_started_again_the_same_day_repeats_no_serial() {
    let (sim, first, clock) = setup_at("2026-12-02 19:30:05", 300).await;
    assert!(within(2_000, || first.signed_in() && first.parameters().is_some()).await);
    let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
    let week = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
    for _ in 0..3 {
        let stats = first.statistics(week, day).await;
        assert!(stats.is_ok(), "{stats:?}");
    }
    let mut serials = Vec::new();
    for _ in 0..3 {
        let Ok(caller) = first.system_caller().await else {
            panic!("no serial")
        };
        serials.push(caller.serial);
    }
    first.shutdown();
    // The restart takes its time; the serials of the day go on from its second.
    clock.advance(chrono::Duration::seconds(1));
    let key = hex::decode(KEY_HEX).unwrap_or_default();
    let shared: SharedClock = clock.clone();
    let second = CableTv::start(
        sim.addr.to_string(),
        "YX0001".to_string(),
        key,
        settings(),
        shared.clone(),
        clock_seeded_serials(shared),
    );
    assert!(
        within(2_000, || second.signed_in()
            && second.parameters().is_some())
        .await
    );
    for _ in 0..3 {
        let stats = second.statistics(week, day).await;
        assert!(stats.is_ok(), "{stats:?}");
        let Ok(caller) = second.system_caller().await else {
            panic!("no serial")
        };
        assert!(!serials.contains(&caller.serial), "{} again", caller.serial);
        serials.push(caller.serial);
    }
    for serial in &serials {
        // AN 20: `XT`, the TxDate, 10 digits.
        assert_eq!(serial.len(), 20, "{serial}");
        assert!(serial.starts_with("XT20261202"), "{serial}");
    }
    // Everything the cable company received: sign-ins, 6001s, 4002s and heartbeats of both.
    assert_eq!(sim.repeated_serials(), Vec::new());
    second.shutdown();
}

/// The clock-seeded serials: the first of a process started at 19:30:05 is that second's slot
/// (70 205 × 100 000), and after 100 000 serials the process moves on to the next slot, never
/// back to a number it used.
#[tokio::test]
async fn clock_seeded_serials_start_at_the_second_and_move_to_the_next_slot_when_full() {
    let clock: SharedClock = ManualClock::new(at("2026-12-02 19:30:05"));
    let source = clock_seeded_serials(clock);
    let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
    let first = source(day).await;
    assert_eq!(first.as_deref(), Ok("202612027020500000"));
    let mut last = String::new();
    for _ in 1..100_000 {
        last = source(day).await.unwrap_or_default();
    }
    assert_eq!(last, "202612027020599999");
    assert_eq!(source(day).await.as_deref(), Ok("202612027020600000"));
    // A new date starts from that date's current second.
    let next_day = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default();
    assert_eq!(source(next_day).await.as_deref(), Ok("202612037020500000"));
}

/// Sends a 4002 every 100 ms until stopped: with a 300 ms idle heartbeat the hub then never
/// falls idle, so any 0000 it sends is the year-end's forced one.
fn keep_busy(tv: &CableTv) -> tokio::sync::watch::Sender<bool> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let tv = tv.clone();
    tokio::spawn(async move {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        while !*stopped.borrow() {
            let _ = tv.statistics(day, day).await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stopped.changed() => {}
            }
        }
    });
    stop
}

/// Spec 04 year-end: from 22:55:00 on 31 December "send 0000 every 60 s whatever the traffic",
/// and "resume only after a 0000 or 1001 answer shows ServiceState 0 and a PartnerDate in the
/// new year, and a 6001 download has replaced the cache". On a busy link the forced heartbeat
/// must go on after midnight, or no status ever shows the resumption. (Here the forced period is
/// 600 ms; the simulator's carry-over ends at 00:30 on 1 January.)
#[tokio::test]
async fn the_year_end_heartbeat_goes_on_past_midnight_until_the_service_resumes() {
    let (sim, tv, clock) = setup_at("2026-12-31 22:54:00", 300).await;
    assert!(within(2_000, || tv.signed_in() && tv.parameters().is_some()).await);
    assert!(tv.accepting_channel_money());
    let busy = keep_busy(&tv);

    // Busy before the window: no 0000 from the hub.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = sim.heartbeat_requests();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        sim.heartbeat_requests(),
        before,
        "no heartbeat on a busy link"
    );

    // 22:56: stopped, and 0000 every 600 ms despite the traffic.
    clock.advance_to(at("2026-12-31 22:56:00"));
    assert!(!tv.accepting_channel_money());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(sim.heartbeat_requests() > before);

    // 00:10 on 1 January, the carry-over still running (ServiceState 1): still stopped, and
    // the forced heartbeat goes on after midnight.
    clock.advance_to(at("2027-01-01 00:10:00"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after_midnight = sim.heartbeat_requests();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        sim.heartbeat_requests() > after_midnight,
        "0000 stopped at midnight"
    );
    assert!(!tv.accepting_channel_money());
    assert_eq!(tv.status().map(|s| s.service_state), Some(1));

    // 00:31: the carry-over is done; a forced 0000 brings ServiceState 0 and 2027, a 6001
    // replaces the cache (2025's rows go), and channel money resumes.
    clock.advance_to(at("2027-01-01 00:31:00"));
    assert!(
        within(3_000, || tv.accepting_channel_money()).await,
        "pays never resumed on a busy link"
    );
    let status = tv.status();
    assert_eq!(status.map(|s| s.service_state), Some(0));
    assert_eq!(
        status.map(|s| s.partner_date),
        NaiveDate::from_ymd_opt(2027, 1, 1)
    );
    let params = tv.parameters();
    assert_eq!(
        params.as_ref().map(|p| p.version),
        Some(sim.param_version())
    );
    assert!(params.is_some_and(|p| p.rows.iter().all(|r| r.year >= 2026)));

    // Resumed: the busy link sends no 0000 any more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resumed = sim.heartbeat_requests();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sim.heartbeat_requests(), resumed);
    let _ = busy.send(true);
    tv.shutdown();
}

/// Spec 04: "90, 91 or 92: re-send after reconnect and sign-in". A 92 means the cable company
/// does not hold this connection signed in: the link closes at once and signs in anew, and the
/// re-sent 3001 is processed (20: no such original).
#[tokio::test]
async fn a_92_answer_drops_the_link_and_signs_in_again_before_the_retry() {
    let (sim, tv, _clock) = setup().await;
    sim.arm(CableFaultRule {
        tx_code: Some("3001".to_string()),
        customer_no: None,
        fault: CableFault::Answer {
            code: "92".to_string(),
            process: false,
        },
        times: 1,
    });
    let connects = tv.connects();
    let accepted = sim.connections();
    let original = OriginalPay {
        serial: "YX202612021930059999".to_string(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
        customer_no: "YX2019000123".to_string(),
        amount: Money::from_fen(2_600),
    };
    let c = caller("YX202612021930060001");
    let first = tv.cancel(&c, &original).await;
    assert!(
        matches!(&first, CancelOutcome::Refused(r) if r.code == "92"),
        "{first:?}"
    );
    // The retry does not go out on the connection that answered 92.
    assert!(!tv.signed_in(), "still signed in after a 92");
    assert!(within(2_000, || tv.signed_in() && tv.connects() == connects + 1).await);
    assert_eq!(sim.connections(), accepted + 1);
    let again = tv.cancel(&c, &original).await;
    assert_eq!(again, CancelOutcome::OriginalNotFound);
    tv.shutdown();
}

/// Spec 04: "a wrong Amount answers 05 (the hub then re-downloads parameters)". The hub's own
/// pre-debit check from its cache refuses such a pay before the cable company sees it, so that
/// refusal starts the download itself; and the first download follows the sign-in at once.
/// The hub's idle heartbeat is 60 s here, so only these can bring the new prices.
#[tokio::test]
async fn a_refusal_from_stale_cached_prices_downloads_the_parameters() {
    use crate::spi::{BillPartner, Channel, PayOrder, RequestContext};
    let clock: SharedClock = ManualClock::new(at("2026-12-02 19:30:05"));
    let key = hex::decode(KEY_HEX).unwrap_or_default();
    let mut sim_config = cabletv_sim::sample_config(key, 2026);
    sim_config.heartbeat_idle = Duration::from_millis(200);
    let Ok(sim) = cabletv_sim::start(sim_config, clock.clone()).await else {
        panic!("simulator did not start")
    };
    let toml = format!(
        r#"
bank_code = "YX0001"
host = "127.0.0.1"
port = {}
mac_key_hex = "{KEY_HEX}"
suspense_account = "9004100000000001"
settlement_account = "9004200000000001"
connect_timeout_ms = 500
money_timeout_ms = 800
other_timeout_ms = 600
heartbeat_idle_ms = 60000
backoff_ms = [50, 100]
"#,
        sim.addr.port()
    );
    let config: CableTvConfig = match toml::from_str(&toml) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    let Ok(partner) = CablePartner::start(&config, clock, None, None) else {
        panic!("partner did not start")
    };
    let tv = partner.tv().clone();
    // The download right after the sign-in (it once raced ahead of it and was "not sent").
    assert!(within(1_500, || tv.signed_in() && tv.parameters().is_some()).await);
    let old_version = sim.param_version();

    // 2027's JB0001 goes from 2600 to 2800 fen. 张三 is paid through 202611: 12 months are
    // 202612 at 2600 and 202701–202711 at 2800.
    sim.publish_price(cabletv_sim::PriceRow {
        package_code: "JB0001".to_string(),
        package_name: "基本收视包".to_string(),
        year: 2027,
        monthly_fee_fen: 2_800,
        on_sale: true,
    });
    let new_amount = Money::from_fen(2_600 + 11 * 2_800);
    let ctx = RequestContext {
        channel: Channel::Mobile,
        branch_no: "050201".to_string(),
        teller_no: "SJ000001".to_string(),
        tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
        tx_time: chrono::NaiveTime::from_hms_opt(19, 30, 5).unwrap_or_default(),
        bank_serial: "YX202612021930050042".to_string(),
    };
    let order = PayOrder {
        customer_no: "YX2019000123".to_string(),
        pay_amount: new_amount,
        total_due: new_amount,
        payer_account: "6230901234567890123".to_string(),
        fields: [
            ("package_code".to_string(), "JB0001".to_string()),
            ("months".to_string(), "12".to_string()),
        ]
        .into_iter()
        .collect(),
    };
    let stale = partner.before_debit(&ctx, &order).await;
    assert!(
        matches!(&stale, Err(r) if r.code == "05"),
        "the stale cache asks 31200 fen: {stale:?}"
    );
    assert!(sim.param_version() > old_version);
    assert!(
        within(2_000, || tv
            .parameters()
            .is_some_and(|p| p.version == sim.param_version()))
        .await,
        "the refusal started no download"
    );
    let fresh = partner.before_debit(&ctx, &order).await;
    assert_eq!(fresh, Ok(()));
}
