//! 攸县 cable TV (spec 04) through the running hub: the channel API over loopback HTTP, the hub's
//! long link to the cable TV simulator, the core simulator's ledger. Expected amounts are worked
//! out here from the simulator's sample data and the spec's rules, never read back from the hub.
//!
//! Sample data (business date 2026-12-03; prices: JB0001 2600 fen a month in 2025–2027, GQ0002
//! 1000 / 1100 / 1200 fen in 2025 / 2026 / 2027):
//! - YX2019000123 张三: JB0001 paid through 202611 (the spec's worked example customer).
//! - YX2019000124 李四: JB0001 through 202606, GQ0002 through 202609.
//! - YX2019000999: closed. YX20200000000..39: JB0001 through 202601.

use adapters::cabletv::CableTvConfig;
use chrono::Days;
use e2e_tests::*;
use fixtures::cabletv_sim::{self, CableFault, CableFaultRule, CableSimHandle};
use hub::state::{NextAction, PaymentState};
use serde_json::{json, Value};

const INSTANCE: &str = "YX0001";
/// The spec's worked-example key.
const KEY_HEX: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
const ZHANG: &str = "YX2019000123";
const LI: &str = "YX2019000124";
const CLOSED: &str = "YX2019000999";
const NOBODY: &str = "YX2019999999";
/// One JB0001 month, 2026 and 2027 alike.
const JB_FEN: i64 = 2_600;
/// The worked example: 12 months 202612–202711 of JB0001.
const EXAMPLE_FEN: i64 = 31_200;

/// A subscriber with JB0001 paid through 202601: the next months are 202602, 202603, ...
fn extra(n: usize) -> String {
    format!("YX20200{n:05}")
}

fn cable_config(port: u16) -> CableTvConfig {
    CableTvConfig {
        bank_code: INSTANCE.into(),
        host: "127.0.0.1".into(),
        port,
        mac_key_hex: KEY_HEX.into(),
        suspense_account: SUSPENSE.into(),
        settlement_account: SETTLEMENT.into(),
        connect_timeout_ms: 500,
        money_timeout_ms: 400,
        other_timeout_ms: 400,
        heartbeat_idle_ms: 30_000,
        receive_idle_ms: 90_000,
        backoff_ms: vec![50, 100, 200],
    }
}

/// The shared Env's hub, restarted with a `[[cabletv]]` pointing at a cable TV simulator, and
/// signed in with the prices downloaded.
async fn cable_env() -> (Env, CableSimHandle) {
    cable_env_with(EnvOptions::default(), cable_config).await
}

async fn cable_env_with(
    options: EnvOptions,
    config_of: fn(u16) -> CableTvConfig,
) -> (Env, CableSimHandle) {
    let mut env = Env::start_with(options).await;
    env.stop_hub().await;
    let key: Vec<u8> = (0u8..32).collect();
    let sim = cabletv_sim::start(cabletv_sim::sample_config(key, 2026), env.clock.clone())
        .await
        .expect("cable TV simulator");
    let mut config = env.hub_config();
    config.cabletv = vec![config_of(sim.addr.port())];
    env.start_hub_with_config(config).await;
    wait_for_link(&env).await;
    (env, sim)
}

/// Until a query goes through (signed in), then long enough for the 6001 download after it.
async fn wait_for_link(env: &Env) {
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    loop {
        let (status, answer) = query(env, ZHANG).await;
        if status == StatusCode::OK && answer["status"] == "OK" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cable TV link never signed in: {answer}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

async fn query(env: &Env, customer_no: &str) -> (StatusCode, Value) {
    let body = json!({
        "payee": "CATV", "instance": INSTANCE, "customer_no": customer_no, "channel": "02",
        "branch_no": BRANCH, "teller_no": "T00001",
    });
    env.post("/api/v1/bills/query", &body).await
}

struct Pay<'a> {
    serial: &'a str,
    customer_no: &'a str,
    package: &'a str,
    months: u32,
    amount_fen: i64,
    payer: &'a str,
}

fn pay_body(env: &Env, p: &Pay<'_>) -> Value {
    json!({
        "channel": "02", "channel_date": env.today(), "channel_serial": p.serial,
        "payee": "CATV", "instance": INSTANCE, "customer_no": p.customer_no,
        "payer_account": p.payer, "amount_fen": p.amount_fen, "total_due_fen": p.amount_fen,
        "branch_no": BRANCH, "teller_no": "T00001",
        "fields": {"package_code": p.package, "months": p.months.to_string()},
    })
}

async fn pay(env: &Env, p: &Pay<'_>) -> (StatusCode, Value) {
    env.post("/api/v1/payments", &pay_body(env, p)).await
}

/// Pays, insisting on HTTP 200; returns the answer and the hub serial.
async fn pay_ok(env: &Env, p: &Pay<'_>) -> (Value, String) {
    let (status, answer) = pay(env, p).await;
    assert_eq!(status, StatusCode::OK, "pay answered {answer}");
    let serial = answer["hub_serial"]
        .as_str()
        .expect("hub_serial")
        .to_string();
    (answer, serial)
}

async fn cancel(env: &Env, serial: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/payments/02/{}/{serial}/cancel", env.today());
    env.post(
        &path,
        &json!({"reason": "客户申请撤销", "authorized_by": ""}),
    )
    .await
}

fn arm(sim: &CableSimHandle, tx_code: &str, customer_no: &str, fault: CableFault) {
    sim.arm(CableFaultRule {
        tx_code: Some(tx_code.into()),
        customer_no: Some(customer_no.into()),
        fault,
        times: 1,
    });
}

fn answer(code: &str, process: bool) -> CableFault {
    CableFault::Answer {
        code: code.into(),
        process,
    }
}

fn sim_payment(
    sim: &CableSimHandle,
    hub_serial: &str,
) -> Option<fixtures::cabletv_sim::CablePayment> {
    sim.payments().into_iter().find(|p| p.serial == hub_serial)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_pay_answers_every_code_a_channel_meets_with_the_right_ledger_effect() {
    let (env, sim) = cable_env().await;
    let mut payer = PAYER_A_OPENING_FEN;
    let mut suspense = 0;

    // 2001: 李四 owes JB0001 202607–202612 (6 × 2600) and GQ0002 202610–202612 (3 × 1100).
    let (status, bill) = query(&env, LI).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["total_due_fen"], 6 * 2_600 + 3 * 1_100);
    let items = bill["items"].as_array().expect("items");
    let periods: Vec<&str> = items.iter().filter_map(|i| i["period"].as_str()).collect();
    assert_eq!(
        periods,
        [
            "202607", "202608", "202609", "202610", "202611", "202612", "202610", "202611",
            "202612"
        ]
    );
    assert_eq!(items[0]["amount_fen"], 2_600);
    assert_eq!(items[8]["amount_fen"], 1_100);
    // 01 and 02 on the query.
    let (_, unknown) = query(&env, NOBODY).await;
    assert_eq!(unknown["code"], "PARTNER_CUSTOMER_NOT_FOUND", "{unknown}");
    assert_eq!(unknown["partner_code"], "01");
    let (_, closed) = query(&env, CLOSED).await;
    assert_eq!(closed["code"], "PARTNER_CUSTOMER_CLOSED", "{closed}");
    assert_eq!(closed["partner_code"], "02");

    // 00: the worked example, 12 months of JB0001 for 312.00 yuan from mobile banking.
    let (paid, s1) = pay_ok(
        &env,
        &Pay {
            serial: "CT0001",
            customer_no: ZHANG,
            package: "JB0001",
            months: 12,
            amount_fen: EXAMPLE_FEN,
            payer: PAYER_A,
        },
    )
    .await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    assert_eq!(paid["acct_date"], "20261203");
    payer -= EXAMPLE_FEN;
    suspense += EXAMPLE_FEN;
    assert_money(&env, PAYER_A, payer, suspense);
    let record = sim_payment(&sim, &s1).expect("the cable company holds the payment");
    assert_eq!(record.amount_fen, EXAMPLE_FEN);
    assert_eq!(record.channel, "SJ");
    assert_eq!(record.paid_from.number(), 202_612);
    assert_eq!(record.paid_through.number(), 202_711);
    assert_eq!(record.payer_account, PAYER_A);
    assert_eq!(
        paid["partner_serial"].as_str(),
        Some(record.cable_serial.as_str())
    );

    // An amount no run of JB0001 months makes: refused before anything is journaled.
    let count = env.payment_count().await;
    let (status, bad) = pay(
        &env,
        &Pay {
            serial: "CT0002",
            customer_no: LI,
            package: "JB0001",
            months: 2,
            amount_fen: 2 * JB_FEN + 1,
            payer: PAYER_A,
        },
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(env.payment_count().await, count);

    // Checked before the debit against a fresh 2001 and the prices: nothing moves.
    // 05: 2300 is two GQ0002 months (202612 + 202701), but 李四's next two are 202610, 202611.
    // 03: 张三 has no GQ0002. 04: 36 GQ0002 months from 202610 reach 2029, which has no price.
    // 01 / 02: no such subscriber, a closed one.
    for (serial, customer, package, months, amount, code, partner_code) in [
        (
            "CT0003",
            LI,
            "GQ0002",
            2,
            1_100 + 1_200,
            "PARTNER_AMOUNT_MISMATCH",
            "05",
        ),
        ("CT0004", ZHANG, "GQ0002", 1, 1_100, "PARTNER_REFUSED", "03"),
        (
            "CT0005",
            LI,
            "GQ0002",
            36,
            12 * (1_000 + 1_100 + 1_200),
            "PARTNER_NOT_PAYABLE_NOW",
            "04",
        ),
        (
            "CT0006",
            NOBODY,
            "JB0001",
            1,
            JB_FEN,
            "PARTNER_CUSTOMER_NOT_FOUND",
            "01",
        ),
        (
            "CT0007",
            CLOSED,
            "JB0001",
            1,
            JB_FEN,
            "PARTNER_CUSTOMER_CLOSED",
            "02",
        ),
    ] {
        let (refused, hub_serial) = pay_ok(
            &env,
            &Pay {
                serial,
                customer_no: customer,
                package,
                months,
                amount_fen: amount,
                payer: PAYER_A,
            },
        )
        .await;
        assert_eq!(refused["status"], "FAILED", "{serial}: {refused}");
        assert_eq!(refused["code"], code, "{serial}: {refused}");
        assert_eq!(refused["partner_code"], partner_code, "{serial}: {refused}");
        assert!(is_chinese(refused["message"].as_str().unwrap_or_default()));
        assert_eq!(env.row(&hub_serial).await.state, PaymentState::CoreFailed);
        assert_eq!(env.row(&hub_serial).await.core_seq_no, None, "no 8002 sent");
        assert_money(&env, PAYER_A, payer, suspense);
    }

    // 2002 refusals after the debit (the cable company's data changed in between, or it is
    // closing its year, or the link lost its sign-in): the debit is reversed at the core.
    let li_two = 2 * JB_FEN; // 202607 + 202608
    let connections_before = sim.connections();
    for (serial, code, channel_code) in [
        ("CT0010", "05", "PARTNER_AMOUNT_MISMATCH"),
        ("CT0011", "04", "PARTNER_NOT_PAYABLE_NOW"),
        ("CT0012", "01", "PARTNER_CUSTOMER_NOT_FOUND"),
        ("CT0013", "02", "PARTNER_CUSTOMER_CLOSED"),
        ("CT0014", "03", "PARTNER_REFUSED"),
        ("CT0015", "06", "PARTNER_REFUSED"),
        ("CT0016", "21", "PARTNER_REFUSED"),
        ("CT0017", "40", "PARTNER_REFUSED"),
        ("CT0018", "90", "PARTNER_REFUSED"),
        ("CT0019", "91", "PARTNER_REFUSED"),
        ("CT0020", "92", "PARTNER_REFUSED"),
    ] {
        arm(&sim, "2002", LI, answer(code, false));
        let (refused, hub_serial) = pay_ok(
            &env,
            &Pay {
                serial,
                customer_no: LI,
                package: "JB0001",
                months: 2,
                amount_fen: li_two,
                payer: PAYER_A,
            },
        )
        .await;
        assert_eq!(refused["status"], "FAILED", "{code}: {refused}");
        assert_eq!(refused["code"], channel_code, "{code}: {refused}");
        assert_eq!(refused["partner_code"], code, "{code}: {refused}");
        let row = env.wait_final(&hub_serial).await;
        assert_eq!(row.state, PaymentState::Reversed, "{code}");
        assert!(row.reversal_core_seq_no.is_some(), "{code}: 8003 posted");
        assert_money(&env, PAYER_A, payer, suspense);
        assert!(sim_payment(&sim, &hub_serial).is_none());
        if code == "92" {
            // Spec: after 92, "re-send after reconnect and sign-in": the hub closed the link
            // that answered 92 and signs in on a new connection.
            let connections = sim.connections();
            wait_for_link(&env).await;
            assert!(
                sim.connections() > connections_before,
                "no reconnect after 92"
            );
            assert!(sim.connections() >= connections);
        }
    }

    // 李四 can still pay the same two months: the cable company wrote none of the above off.
    let (ok, s2) = pay_ok(
        &env,
        &Pay {
            serial: "CT0030",
            customer_no: LI,
            package: "JB0001",
            months: 2,
            amount_fen: li_two,
            payer: PAYER_A,
        },
    )
    .await;
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    payer -= li_two;
    suspense += li_two;
    assert_money(&env, PAYER_A, payer, suspense);
    let record = sim_payment(&sim, &s2).expect("paid");
    assert_eq!(record.paid_from.number(), 202_607);
    assert_eq!(record.paid_through.number(), 202_608);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pay_in_doubt_ends_as_the_3001_and_4001_answers_say() {
    let (env, sim) = cable_env().await;
    let mut payer = PAYER_B_OPENING_FEN;
    let mut suspense = 0;
    let one = |serial: &'static str, n: usize| (serial, extra(n));

    // Timeout, the pay landed: 3001 (Channel XT) answers 00 → core reversal, REVERSED.
    let (serial, customer) = one("CD0001", 1);
    arm(&sim, "2002", &customer, CableFault::Silent);
    let p = Pay {
        serial,
        customer_no: &customer,
        package: "JB0001",
        months: 1,
        amount_fen: JB_FEN,
        payer: PAYER_B,
    };
    let (doubt, s1) = pay_ok(&env, &p).await;
    assert_eq!(doubt["status"], "IN_DOUBT", "{doubt}");
    let row = env.wait_state(&s1, PaymentState::Reversed).await;
    assert!(row.reversal_core_seq_no.is_some());
    assert_money(&env, PAYER_B, payer, suspense);
    let held = sim_payment(&sim, &s1).expect("the pay had landed");
    assert!(
        held.cancelled_on.is_some(),
        "3001 cancelled it at the cable company"
    );

    // 99 (not processed): 3001 answers 20 → REVERSED; the serial is fenced at the cable company.
    let (serial, customer) = one("CD0002", 2);
    arm(&sim, "2002", &customer, CableFault::Busy);
    let (doubt, s2) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    assert_eq!(doubt["status"], "IN_DOUBT", "{doubt}");
    env.wait_state(&s2, PaymentState::Reversed).await;
    assert_money(&env, PAYER_B, payer, suspense);
    assert!(sim_payment(&sim, &s2).is_none());

    // Dropped link after the pay landed: treated as a timeout; 3001 after the reconnect → 00.
    let (serial, customer) = one("CD0003", 3);
    arm(&sim, "2002", &customer, CableFault::DropLink);
    let (doubt, s3) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    assert_eq!(doubt["status"], "IN_DOUBT", "{doubt}");
    env.wait_state(&s3, PaymentState::Reversed).await;
    assert_money(&env, PAYER_B, payer, suspense);
    assert!(sim_payment(&sim, &s3).is_some_and(|p| p.cancelled_on.is_some()));

    // 3001 answers 24 (too late) → 4001 says 1 (paid) → SUCCEEDED, the debit stands.
    let (serial, customer) = one("CD0004", 4);
    arm(&sim, "2002", &customer, CableFault::Silent);
    arm(&sim, "3001", &customer, answer("24", false));
    let (_, s4) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    let row = env.wait_state(&s4, PaymentState::Succeeded).await;
    payer -= JB_FEN;
    suspense += JB_FEN;
    assert_money(&env, PAYER_B, payer, suspense);
    let held = sim_payment(&sim, &s4).expect("paid");
    assert_eq!(held.cancelled_on, None);
    assert_eq!(
        row.partner_serial.as_deref(),
        Some(held.cable_serial.as_str())
    );
    assert_eq!(row.acct_date, Some(business_date()));

    // 3001 answers 22 though it cancelled → 4001 says 2 (cancelled) → core reversal, REVERSED.
    let (serial, customer) = one("CD0005", 5);
    arm(&sim, "2002", &customer, CableFault::Silent);
    arm(&sim, "3001", &customer, answer("22", true));
    let (_, s5) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    env.wait_state(&s5, PaymentState::Reversed).await;
    assert_money(&env, PAYER_B, payer, suspense);

    // The pay never arrived, yet 3001 answers 22 → 4001 says 3: contradictory, an operator's;
    // the money stays where it is (debited, in the suspense account) until resolved.
    let (serial, customer) = one("CD0006", 6);
    arm(&sim, "2002", &customer, CableFault::Swallow);
    arm(&sim, "3001", &customer, answer("22", false));
    let (_, s6) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    let row = env
        .wait_until(&s6, chrono::Duration::seconds(1), "the operator", |row| {
            row.next_action == NextAction::Operator
        })
        .await;
    assert_eq!(row.state, PaymentState::PartnerUnknown);
    assert_eq!(row.reversal_core_seq_no, None, "no core reversal");
    assert_money(&env, PAYER_B, payer - JB_FEN, suspense + JB_FEN);

    // 3001 answers 23 (original differs): an operator's, no core reversal.
    let (serial, customer) = one("CD0007", 7);
    arm(&sim, "2002", &customer, CableFault::Silent);
    arm(&sim, "3001", &customer, answer("23", false));
    let (_, s7) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    let row = env
        .wait_until(&s7, chrono::Duration::seconds(1), "the operator", |row| {
            row.next_action == NextAction::Operator
        })
        .await;
    assert_eq!(row.state, PaymentState::PartnerUnknown);
    assert!(row
        .last_error
        .as_deref()
        .is_some_and(|e| e.starts_with("23")));
    payer -= 2 * JB_FEN;
    suspense += 2 * JB_FEN;
    assert_money(&env, PAYER_B, payer, suspense);

    // 3001 answered 92 first (not signed in): re-sent, then 00 → REVERSED.
    let (serial, customer) = one("CD0008", 8);
    arm(&sim, "2002", &customer, CableFault::Silent);
    arm(&sim, "3001", &customer, answer("92", false));
    let (_, s8) = pay_ok(
        &env,
        &Pay {
            serial,
            customer_no: &customer,
            ..p
        },
    )
    .await;
    env.wait_state(&s8, PaymentState::Reversed).await;
    assert_money(&env, PAYER_B, payer, suspense);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_day_cancel_gives_the_money_back_and_is_refused_after_the_cut_off() {
    let (env, sim) = cable_env().await;
    let customer = extra(11);
    let p = Pay {
        serial: "CC0001",
        customer_no: &customer,
        package: "JB0001",
        months: 3,
        amount_fen: 3 * JB_FEN,
        payer: PAYER_C,
    };
    let (paid, s1) = pay_ok(&env, &p).await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    assert_money(&env, PAYER_C, PAYER_C_OPENING_FEN - 3 * JB_FEN, 3 * JB_FEN);

    // A later payment of the same package: the first cannot be cancelled before it (24).
    let (later, s2) = pay_ok(
        &env,
        &Pay {
            serial: "CC0002",
            months: 1,
            amount_fen: JB_FEN,
            ..p
        },
    )
    .await;
    assert_eq!(later["status"], "SUCCEEDED", "{later}");
    let (status, refused) = cancel(&env, "CC0001").await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(refused["status"], "FAILED", "{refused}");
    assert_eq!(refused["code"], "CANCEL_NOT_ALLOWED", "{refused}");
    assert_eq!(refused["partner_code"], "24", "{refused}");
    assert_eq!(env.row(&s1).await.state, PaymentState::Succeeded);

    // The later one first, then the first: both CANCELLED, all money back.
    for (channel_serial, hub_serial) in [("CC0002", &s2), ("CC0001", &s1)] {
        let (status, done) = cancel(&env, channel_serial).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "CANCELLED", "{done}");
        let row = env.row(hub_serial).await;
        assert_eq!(row.state, PaymentState::Cancelled);
        assert!(row.reversal_core_seq_no.is_some());
        assert!(sim_payment(&sim, hub_serial).is_some_and(|p| p.cancelled_on.is_some()));
    }
    assert_money(&env, PAYER_C, PAYER_C_OPENING_FEN, 0);
    // 3001 restored PaidThrough: the customer owes from 202602 again.
    let paid_through = sim
        .customer(&customer)
        .and_then(|c| c.packages.first().map(|(_, m)| m.number()));
    assert_eq!(paid_through, Some(202_601));

    // A payment at 23:49:30, a cancel asked at 23:50:00: refused by the hub, nothing moves.
    env.clock.advance_to(at(business_date(), 23, 49, 30));
    let (paid, s3) = pay_ok(
        &env,
        &Pay {
            serial: "CC0003",
            ..p
        },
    )
    .await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    env.clock.advance_to(at(business_date(), 23, 50, 0));
    let (status, late) = cancel(&env, "CC0003").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{late}");
    assert_eq!(late["code"], "CANCEL_TOO_LATE", "{late}");
    assert_eq!(env.row(&s3).await.state, PaymentState::Succeeded);
    assert!(sim_payment(&sim, &s3).is_some_and(|p| p.cancelled_on.is_none()));
    assert_money(&env, PAYER_C, PAYER_C_OPENING_FEN - 3 * JB_FEN, 3 * JB_FEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_link_down_a_pay_is_refused_and_nothing_is_debited() {
    let (env, sim) = cable_env().await;
    sim.shutdown();
    sim.drop_links();
    // Until the hub has seen the link go, a query may still be on its way.
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    loop {
        let (status, answer) = query(&env, ZHANG).await;
        if status != StatusCode::OK || answer["status"] != "OK" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "link never went down");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let (refused, hub_serial) = pay_ok(
        &env,
        &Pay {
            serial: "CL0001",
            customer_no: ZHANG,
            package: "JB0001",
            months: 12,
            amount_fen: EXAMPLE_FEN,
            payer: PAYER_A,
        },
    )
    .await;
    assert_eq!(refused["status"], "FAILED", "{refused}");
    assert_eq!(refused["code"], "PARTNER_UNAVAILABLE", "{refused}");
    let row = env.row(&hub_serial).await;
    assert_eq!(row.state, PaymentState::CoreFailed);
    assert_eq!(row.core_seq_no, None, "no 8002 was sent");
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_with_cable_payments_reconciles_at_t_plus_1_with_no_difference() {
    let (env, sim) = cable_env().await;
    let base = Pay {
        serial: "CR0001",
        customer_no: ZHANG,
        package: "JB0001",
        months: 12,
        amount_fen: EXAMPLE_FEN,
        payer: PAYER_A,
    };
    // Standing: the worked example and 李四's GQ0002 202610–202611 (2 × 1100).
    let (a, s1) = pay_ok(&env, &base).await;
    assert_eq!(a["status"], "SUCCEEDED", "{a}");
    let (b, s2) = pay_ok(
        &env,
        &Pay {
            serial: "CR0002",
            customer_no: LI,
            package: "GQ0002",
            months: 2,
            amount_fen: 2 * 1_100,
            payer: PAYER_B,
        },
    )
    .await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    // Cancelled the same day, and reversed after a timeout: neither stands.
    let customer = extra(21);
    let (c, s3) = pay_ok(
        &env,
        &Pay {
            serial: "CR0003",
            customer_no: &customer,
            months: 1,
            amount_fen: JB_FEN,
            payer: PAYER_C,
            ..base
        },
    )
    .await;
    assert_eq!(c["status"], "SUCCEEDED", "{c}");
    let (_, cancelled) = cancel(&env, "CR0003").await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    let customer = extra(22);
    arm(&sim, "2002", &customer, CableFault::Silent);
    let (_, s4) = pay_ok(
        &env,
        &Pay {
            serial: "CR0004",
            customer_no: &customer,
            months: 1,
            amount_fen: JB_FEN,
            payer: PAYER_C,
            ..base
        },
    )
    .await;
    env.wait_state(&s4, PaymentState::Reversed).await;
    assert_eq!(env.row(&s3).await.state, PaymentState::Cancelled);

    // T+1: the core's file by 00:30; the cable company answers 5001 for D with 31 until 01:00,
    // so a run at 00:30 fetches nothing and waits; the 01:30 run fetches the day.
    let next_day = business_date()
        .checked_add_days(Days::new(1))
        .expect("next day");
    env.clock.advance_to(at(next_day, 0, 30, 0));
    env.core
        .write_daily_file(business_date(), &env.files_dir())
        .expect("core file");
    let reconcile = || {
        let files = env.files_dir();
        let reports = env.dir.path().join("reports");
        env.on_hub(move |engine| async move {
            let link = engine
                .partner("CATV", INSTANCE)
                .cloned()
                .expect("cable TV configured");
            hub::recon_job::run(&engine, &link, business_date(), &files, &reports).await
        })
    };
    let early = reconcile().await;
    assert!(
        matches!(
            early,
            Err(hub::recon_job::ReconError::PartnerFileMissing(_))
        ),
        "31 before 01:00: {:?}",
        early.map(|r| r.result.matched.len())
    );
    assert!(!env.files_dir().join("CATV_YX0001_20261203.txt").exists());
    env.clock.advance_to(at(next_day, 1, 30, 0));
    let run = reconcile().await.expect("reconciliation runs");
    assert!(
        run.result.differences.is_empty(),
        "differences: {:?}",
        run.result.differences
    );
    let standing_fen = EXAMPLE_FEN + 2 * 1_100;
    assert_eq!(run.result.matched.len(), 2);
    assert_eq!(run.settlement.amount_fen, standing_fen);

    // The archive the hub wrote from 5001/5002 is the spec's file, byte for byte as the cable
    // company sees the day.
    let (name, expected) = sim.daily_file(business_date());
    assert_eq!(name, "CATV_YX0001_20261203.txt");
    let written = std::fs::read(env.files_dir().join(&name)).expect("archive written");
    assert_eq!(written, expected);
    let text = String::from_utf8(written).expect("ASCII content");
    assert!(
        text.starts_with(&format!("20261203|2|{standing_fen}\r\n")),
        "{text}"
    );
    for serial in [&s1, &s2] {
        assert!(text.contains(serial.as_str()), "{serial} in {text}");
    }
}

/// Heartbeats every 100 ms of sending silence, so the cable company's state reaches the hub
/// at once whatever the test's clock does.
fn chatty_config(port: u16) -> CableTvConfig {
    CableTvConfig {
        heartbeat_idle_ms: 100,
        ..cable_config(port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_year_end_stops_channel_money_from_22_55_until_the_new_year_prices_are_in() {
    let dec31 = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
    let jan1 = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).expect("date");
    let options = EnvOptions {
        start: at(dec31, 22, 50, 0),
        ..EnvOptions::default()
    };
    let (env, sim) = cable_env_with(options, chatty_config).await;
    let mut payer = PAYER_A_OPENING_FEN;
    let mut suspense = 0;

    // 22:50: an ordinary payment of 张三's 202612.
    let one = Pay {
        serial: "CY0001",
        customer_no: ZHANG,
        package: "JB0001",
        months: 1,
        amount_fen: JB_FEN,
        payer: PAYER_A,
    };
    let (paid, s1) = pay_ok(&env, &one).await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    payer -= JB_FEN;
    suspense += JB_FEN;

    // 22:54:50: a pay in doubt whose first 3001 gets no answer either; its re-send falls in
    // the window, where a 3001 would answer 40: the hub asks 4001 instead, which says paid.
    env.clock.advance_to(at(dec31, 22, 54, 50));
    let customer = extra(31);
    arm(&sim, "2002", &customer, CableFault::Silent);
    arm(&sim, "3001", &customer, CableFault::Swallow);
    let (doubt, s2) = pay_ok(
        &env,
        &Pay {
            serial: "CY0002",
            customer_no: &customer,
            ..one
        },
    )
    .await;
    assert_eq!(doubt["status"], "IN_DOUBT", "{doubt}");
    env.wait_until(&s2, chrono::Duration::zero(), "a first 3001", |row| {
        row.attempts >= 1 && row.next_action == NextAction::PartnerReversal
    })
    .await;
    env.clock.advance_to(at(dec31, 22, 55, 30));
    let row = env.wait_state(&s2, PaymentState::Succeeded).await;
    assert_eq!(row.reversal_core_seq_no, None);
    assert!(sim_payment(&sim, &s2).is_some_and(|p| p.cancelled_on.is_none()));
    payer -= JB_FEN;
    suspense += JB_FEN;
    assert_money(&env, PAYER_A, payer, suspense);

    // From 22:55:00 (hub clock): no pay, no cancel; nothing is journaled or debited.
    let count = env.payment_count().await;
    let li_four = 3 * 1_100 + 1_200; // GQ0002 202610–202612 at 2026's price, 202701 at 2027's
    fn li(serial: &str) -> Pay<'_> {
        Pay {
            serial,
            customer_no: LI,
            package: "GQ0002",
            months: 4,
            amount_fen: 3 * 1_100 + 1_200,
            payer: PAYER_A,
        }
    }
    let (status, stopped) = pay(&env, &li("CY0003")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{stopped}");
    assert_eq!(stopped["code"], "PARTNER_DAY_END", "{stopped}");
    let (status, no_cancel) = cancel(&env, "CY0001").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{no_cancel}");
    assert_eq!(no_cancel["code"], "CANCEL_TOO_LATE", "{no_cancel}");
    assert_eq!(env.row(&s1).await.state, PaymentState::Succeeded);

    // After midnight, while the cable company still closes 2026: still stopped.
    env.clock.advance_to(at(jan1, 0, 10, 0));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, stopped) = pay(&env, &li("CY0004")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{stopped}");
    assert_eq!(env.payment_count().await, count);
    assert_money(&env, PAYER_A, payer, suspense);

    // 00:31: the carry-over is done; a 0000 shows 2027 and ServiceState 0, the new prices are
    // downloaded, and pays resume: four GQ0002 months for 4500 fen.
    env.clock.advance_to(at(jan1, 0, 31, 0));
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    let mut attempt = 5;
    let (answer, s5) = loop {
        let serial = format!("CY{attempt:04}");
        let (status, answer) = pay(&env, &li(&serial)).await;
        if status == StatusCode::OK {
            let hub_serial = answer["hub_serial"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            break (answer, hub_serial);
        }
        assert_eq!(answer["code"], "PARTNER_DAY_END", "{answer}");
        assert!(std::time::Instant::now() < deadline, "pays never resumed");
        attempt += 1;
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["acct_date"], "20270101");
    payer -= li_four;
    suspense += li_four;
    assert_money(&env, PAYER_A, payer, suspense);
    let record = sim_payment(&sim, &s5).expect("paid");
    assert_eq!(record.paid_from.number(), 202_610);
    assert_eq!(record.paid_through.number(), 202_701);
    assert!(
        sim.param_version() > 2_026_010_101,
        "the carry-over bumped the version"
    );

    // 5003 for the closed year with the journal's standing 2026 payments: 张三's and the one
    // settled by 4001, 2 × 2600 fen, as the cable company holds them.
    let key: Vec<u8> = (0u8..32).collect();
    let tv = adapters::cabletv::CableTv::start(
        sim.addr.to_string(),
        INSTANCE.into(),
        key,
        cable_config(sim.addr.port()).link_settings(),
        env.clock.clone(),
        // The journal's counter, as the hub's own link: the two links run side by side on one
        // day and must not share a serial.
        hub::cabletv::journal_serials(env.journal.clone(), 1),
    );
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while !tv.signed_in() {
        assert!(
            std::time::Instant::now() < deadline,
            "second link never signed in"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let agreed = hub::cabletv::check_year(&tv, &env.journal, INSTANCE, 2026).await;
    assert_eq!(agreed, Ok(true));
    let cable_2026: i64 = sim
        .payments()
        .iter()
        .filter(|p| p.acct_date.format("%Y").to_string() == "2026" && p.cancelled_on.is_none())
        .map(|p| p.amount_fen)
        .sum();
    assert_eq!(cable_2026, 2 * JB_FEN);
    tv.shutdown();
}

/// The operators' desk: the cable company's 4002 figures of the day beside the journal's standing
/// payments (two paid, one cancelled: 2 and 1 at the company, 1 standing at the hub, agreeing),
/// and a 6001 download on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_the_cable_statistics_beside_the_journal_and_refresh_the_prices() {
    let (env, _sim) = cable_env().await;
    let first = extra(21);
    let second = extra(22);
    for (serial, customer) in [("ST0001", &first), ("ST0002", &second)] {
        let (paid, _) = pay_ok(
            &env,
            &Pay {
                serial,
                customer_no: customer,
                package: "JB0001",
                months: 1,
                amount_fen: JB_FEN,
                payer: PAYER_A,
            },
        )
        .await;
        assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    }
    let (_, cancelled) = cancel(&env, "ST0002").await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");

    let today = env.today();
    let (status, stats) = env
        .post(
            &format!("/admin/api/cabletv/{INSTANCE}/statistics"),
            &json!({"start_date": today, "end_date": today}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["cable_pay_count"], 2, "{stats}");
    assert_eq!(stats["cable_pay_fen"], 2 * JB_FEN);
    assert_eq!(stats["cable_cancel_count"], 1);
    assert_eq!(stats["cable_cancel_fen"], JB_FEN);
    assert_eq!(stats["hub_standing_count"], 1);
    assert_eq!(stats["hub_standing_fen"], JB_FEN);
    assert_eq!(stats["verdict"], "一致");
    // 4002 takes at most 31 days.
    let (status, _) = env
        .post(
            &format!("/admin/api/cabletv/{INSTANCE}/statistics"),
            &json!({"start_date": "20261101", "end_date": "20261202"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Year 0000 is a typing slip, not a date (chrono alone would take it).
    let (status, zero) = env
        .post(
            &format!("/admin/api/cabletv/{INSTANCE}/statistics"),
            &json!({"start_date": "00000101", "end_date": "00000102"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{zero}");
    assert_eq!(zero["code"], "BAD_REQUEST", "{zero}");
    // A wrong method gets the JSON refusal with its code, not an empty 405.
    let wrong = reqwest::Client::new()
        .get(format!(
            "{}/admin/api/cabletv/{INSTANCE}/statistics",
            env.base_url()
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = wrong.json().await.expect("a JSON body");
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED", "{body}");

    let (status, refreshed) = env
        .post(
            &format!("/admin/api/cabletv/{INSTANCE}/parameters/refresh"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let prices = refreshed["prices"].as_array().expect("prices");
    assert!(
        prices
            .iter()
            .any(|p| p["package_code"] == "JB0001" && p["monthly_fee_fen"] == JB_FEN),
        "{refreshed}"
    );
    let (status, _) = env
        .post("/admin/api/cabletv/NOSUCH/parameters/refresh", &json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
