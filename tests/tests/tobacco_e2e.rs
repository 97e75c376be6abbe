//! 岳阳烟草 (spec 09) through the running hub: the bureau simulator (written from the spec) pushes
//! signed orders to the hub's inbound endpoint, retailers query and pay them over the channel API,
//! and the hub's outbox notifies the bureau.

use codecs::crypto::sm2::PrivateKey;
use e2e_tests::*;
use fixtures::tobacco_sim::{order_json, TobaccoSim, TobaccoSimConfig, BUREAU_TEST_PRIVATE_HEX};
use hub::config::TobaccoConfig;
use hub::state::PaymentState;
use serde_json::{json, Value};

const BUREAU_CODE: &str = "430600";
const TOBACCO_BANK_CODE: &str = "YYNS0001";
/// The spec's worked-example bureau public key (pair of `BUREAU_TEST_PRIVATE_HEX`).
const BUREAU_PUBLIC_HEX: &str = "048f6a3511895bd10fc9b106d29383039c0fc8300f96012109a7b052be784af5cb04716e176dd7434523547c9c98ea63c8bb4d364848190a8ae3cd2fd4577c87cb";
/// The bank's test key (the GM/T 0003 example private key).
const BANK_PRIVATE_HEX: &str = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8";
const ORDER_PAID: &str = "YC20261202000123";
const ORDER_CANCELLED: &str = "YC20261202000124";
const LICENCE: &str = "430602100123";
/// 1 256.80 yuan: within the payer's 10 000.00.
const ORDER_PAID_FEN: i64 = 125_680;
const ORDER_CANCELLED_FEN: i64 = 3_300;

/// A hub with `[tobacco]` pointing at a bureau simulator that pushes to the hub's listener.
async fn tobacco_env() -> (Env, TobaccoSim) {
    let mut env = Env::start().await;
    env.stop_hub().await;
    // The simulator needs the hub's URL before the hub starts: reserve a port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let bank = PrivateKey::from_hex(BANK_PRIVATE_HEX).expect("bank key");
    let sim = TobaccoSim::start(
        TobaccoSimConfig {
            bureau_code: BUREAU_CODE.into(),
            bank_code: TOBACCO_BANK_CODE.into(),
            bureau_key: PrivateKey::from_hex(BUREAU_TEST_PRIVATE_HEX).expect("bureau key"),
            bank_public: bank.public_key(),
            hub_base_url: format!("http://127.0.0.1:{port}"),
        },
        env.clock.clone(),
    )
    .await
    .expect("tobacco simulator");
    let mut config = env.hub_config();
    config.hub.listen = format!("127.0.0.1:{port}");
    config.tobacco = Some(TobaccoConfig {
        bureau_code: BUREAU_CODE.into(),
        bank_code: TOBACCO_BANK_CODE.into(),
        bureau_base_url: sim.base_url(),
        bank_private_key_hex: BANK_PRIVATE_HEX.into(),
        bureau_public_key_hex: BUREAU_PUBLIC_HEX.into(),
        suspense_account: SUSPENSE.into(),
        settlement_account: SETTLEMENT.into(),
        tls: None,
        notify_timeout_ms: 2_000,
        outbox_poll_interval_ms: 20,
    });
    env.start_hub_with_config(config).await;
    (env, sim)
}

fn channel_query(order_no: &str) -> Value {
    json!({
        "payee": "TOBACCO", "instance": BUREAU_CODE, "customer_no": order_no, "channel": "02",
        "branch_no": BRANCH, "teller_no": "T00001",
    })
}

fn channel_pay(env: &Env, serial: &str, order_no: &str, amount_fen: i64) -> Value {
    json!({
        "channel": "02", "channel_date": env.today(), "channel_serial": serial,
        "payee": "TOBACCO", "instance": BUREAU_CODE, "customer_no": order_no,
        "payer_account": PAYER_A, "amount_fen": amount_fen, "total_due_fen": amount_fen,
        "branch_no": BRANCH, "teller_no": "T00001",
    })
}

async fn notification_status(env: &Env, notify_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM tobacco_notifications WHERE notify_id = ?")
        .bind(notify_id)
        .fetch_optional(env.journal.pool())
        .await
        .expect("notification row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_order_is_paid_once_and_notified_once_and_a_cancelled_one_cannot_be_paid() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();

    // The bureau pushes two orders; the hub stores both and signs its answer.
    let pushed = sim
        .push(
            "P202612020001",
            vec![
                order_json(ORDER_PAID, LICENCE, ORDER_PAID_FEN, &today),
                order_json(ORDER_CANCELLED, LICENCE, ORDER_CANCELLED_FEN, &today),
            ],
        )
        .await
        .expect("push exchange");
    assert_eq!(pushed.status, 200);
    assert!(
        pushed.signed_ok,
        "the hub's answer is signed: {:?}",
        pushed.body
    );
    assert_eq!(pushed.body["code"], "0000");
    assert_eq!(pushed.body["results"][0]["orderNo"], ORDER_PAID);
    assert_eq!(pushed.body["results"][0]["code"], "0000");
    assert_eq!(pushed.body["results"][0]["state"], "1");
    assert_eq!(pushed.body["results"][1]["code"], "0000");

    // A retailer looks the order up by its number over the channel API.
    let (status, bill) = env
        .post("/api/v1/bills/query", &channel_query(ORDER_PAID))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["customer_no"], ORDER_PAID);
    assert_eq!(bill["customer_name"], "岳阳楼区张三便利店");
    assert_eq!(bill["total_due_fen"], ORDER_PAID_FEN);

    // ... and pays it: the payer is debited once, the money sits in the suspense account.
    let suspense_before = env.balance_fen(SUSPENSE);
    let body = channel_pay(&env, "M0000000001", ORDER_PAID, ORDER_PAID_FEN);
    let (status, answer) = env.post("/api/v1/payments", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["partner_serial"], ORDER_PAID);
    assert_eq!(answer["acct_date"], today.as_str());
    let hub_serial = answer["hub_serial"]
        .as_str()
        .expect("hub serial")
        .to_string();
    assert_eq!(
        env.balance_fen(PAYER_A),
        PAYER_A_OPENING_FEN - ORDER_PAID_FEN
    );
    assert_eq!(env.balance_fen(SUSPENSE), suspense_before + ORDER_PAID_FEN);

    // The same channel serial again: the same answer, no second debit.
    let (status, repeat) = env.post("/api/v1/payments", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repeat, answer);
    assert_eq!(
        env.balance_fen(PAYER_A),
        PAYER_A_OPENING_FEN - ORDER_PAID_FEN
    );

    // The bureau receives one signed notification and acknowledges it.
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while notification_status(&env, &hub_serial).await.as_deref() != Some("ACKED") {
        assert!(
            std::time::Instant::now() < deadline,
            "notification not acknowledged: {:?}",
            notification_status(&env, &hub_serial).await
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    // A few more outbox passes: nothing is sent again.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sim.state().attempts.len(), 1);
    let recorded = sim.recorded();
    assert_eq!(recorded.len(), 1);
    let payment = &recorded[0];
    assert_eq!(payment.notify_id, hub_serial);
    assert_eq!(payment.bank_serial, hub_serial);
    assert_eq!(payment.order_no, ORDER_PAID);
    assert_eq!(payment.licence_no, LICENCE);
    assert_eq!(payment.amount_fen, ORDER_PAID_FEN);
    assert_eq!(payment.acct_date, today);
    assert_eq!(payment.channel, "02");

    // The bureau sees the order paid under the hub's serial and cannot cancel it.
    let queried = sim.query(ORDER_PAID).await.expect("query exchange");
    assert!(queried.signed_ok);
    assert_eq!(queried.body["code"], "0000");
    assert_eq!(queried.body["state"], "3");
    assert_eq!(queried.body["bankSerial"], hub_serial.as_str());
    let cancel_paid = sim.cancel(ORDER_PAID, "测试").await.expect("cancel");
    assert_eq!(cancel_paid.body["code"], "3002");

    // A cancelled order: the channel's look-up refuses it, and a payment leaves the payer whole.
    let cancelled = sim
        .cancel(ORDER_CANCELLED, "零售户退单")
        .await
        .expect("cancel");
    assert_eq!(cancelled.body["code"], "0000");
    assert_eq!(cancelled.body["state"], "4");
    let (_, refused) = env
        .post("/api/v1/bills/query", &channel_query(ORDER_CANCELLED))
        .await;
    assert_eq!(refused["status"], "FAILED", "{refused}");
    assert_eq!(refused["partner_code"], "YC_CANCELLED");
    let (status, failed) = env
        .post(
            "/api/v1/payments",
            &channel_pay(&env, "M0000000002", ORDER_CANCELLED, ORDER_CANCELLED_FEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["partner_code"], "YC_CANCELLED");
    assert_eq!(
        env.balance_fen(PAYER_A),
        PAYER_A_OPENING_FEN - ORDER_PAID_FEN
    );
    assert_eq!(env.balance_fen(SUSPENSE), suspense_before + ORDER_PAID_FEN);
    let still = sim.query(ORDER_CANCELLED).await.expect("query exchange");
    assert_eq!(still.body["state"], "4");
    assert_eq!(sim.recorded().len(), 1);
}

fn pay_from(env: &Env, serial: &str, order_no: &str, amount_fen: i64, payer: &str) -> Value {
    let mut body = channel_pay(env, serial, order_no, amount_fen);
    body["payer_account"] = json!(payer);
    body
}

/// Spec 09 "Order states": 1 → 2 when the payment is accepted (before the core call), 2 → 1 when
/// the 8002 fails, and an unknown 8002 keeps the order 2 while 8004 is asked: S → 3 (paid and
/// notified, never reversed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_is_held_during_the_debit_released_on_refusal_and_paid_after_a_late_8004_s() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    const REFUSED: &str = "YC20261202000201";
    const LATE: &str = "YC20261202000202";
    // More than PAYER_C holds: the core refuses the 8002.
    const REFUSED_FEN: i64 = PAYER_C_OPENING_FEN + 1;
    const LATE_FEN: i64 = 45_600;
    let pushed = sim
        .push(
            "P202612020002",
            vec![
                order_json(REFUSED, LICENCE, REFUSED_FEN, &today),
                order_json(LATE, LICENCE, LATE_FEN, &today),
            ],
        )
        .await
        .expect("push exchange");
    assert_eq!(pushed.body["code"], "0000", "{:?}", pushed.body);

    // Refused by the core: nothing moved, and the order is payable again (state 1).
    let (_, failed) = env
        .post(
            "/api/v1/payments",
            &pay_from(&env, "M0000000101", REFUSED, REFUSED_FEN, PAYER_C),
        )
        .await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(env.balance_fen(PAYER_C), PAYER_C_OPENING_FEN);
    let state = sim.query(REFUSED).await.expect("query exchange");
    assert_eq!(state.body["state"], "1", "{:?}", state.body);
    let (_, paid) = env
        .post(
            "/api/v1/payments",
            &pay_from(&env, "M0000000102", REFUSED, REFUSED_FEN, PAYER_A),
        )
        .await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    assert_eq!(env.balance_fen(PAYER_A), PAYER_A_OPENING_FEN - REFUSED_FEN);

    // The core posts but answers after the hub's timeout: the channel hears "in doubt", the
    // order stays 2, and the 8004 that finds the posting completes the payment.
    env.core.arm(fixtures::core_sim::FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(PAYER_B.into()),
        fault: fixtures::core_sim::CoreFault::AnswerLate(std::time::Duration::from_millis(1_500)),
        times: 1,
    });
    let (_, doubt) = env
        .post(
            "/api/v1/payments",
            &pay_from(&env, "M0000000103", LATE, LATE_FEN, PAYER_B),
        )
        .await;
    assert_eq!(doubt["status"], "IN_DOUBT", "{doubt}");
    let serial = doubt["hub_serial"]
        .as_str()
        .expect("hub serial")
        .to_string();
    let row = env.wait_state(&serial, PaymentState::Succeeded).await;
    assert_eq!(row.partner_serial.as_deref(), Some(LATE));
    assert_eq!(env.balance_fen(PAYER_B), PAYER_B_OPENING_FEN - LATE_FEN);
    let state = sim.query(LATE).await.expect("query exchange");
    assert_eq!(state.body["state"], "3", "{:?}", state.body);
    assert_eq!(state.body["bankSerial"], serial.as_str());
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while !sim.recorded().iter().any(|r| r.bank_serial == serial) {
        assert!(
            std::time::Instant::now() < deadline,
            "the late payment was never notified"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Spec 09 "Daily file and settlement": the bureau's file of D lists what it recorded before
/// 05:00 on D+1; a payment recorded later is left out (reported 通知未确认, notified again) but
/// settled with D all the same, and the file of D+1 lists it without a difference of D+1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bureau_file_confirms_payments_and_a_late_listed_one_is_settled_with_its_own_day() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    let day = business_date();
    let next_day = day.checked_add_days(chrono::Days::new(1)).expect("date");
    const LISTED: &str = "YC20261202000301";
    const LATE: &str = "YC20261202000302";
    const LISTED_FEN: i64 = 12_300;
    const LATE_FEN: i64 = 45_600;
    sim.push(
        "P202612020003",
        vec![
            order_json(LISTED, LICENCE, LISTED_FEN, &today),
            order_json(LATE, LICENCE, LATE_FEN, &today),
        ],
    )
    .await
    .expect("push exchange");
    let mut serials = Vec::new();
    for (n, (order, fen)) in [(LISTED, LISTED_FEN), (LATE, LATE_FEN)]
        .into_iter()
        .enumerate()
    {
        let (_, paid) = env
            .post(
                "/api/v1/payments",
                &channel_pay(&env, &format!("M00000003{n:02}"), order, fen),
            )
            .await;
        assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
        serials.push(paid["hub_serial"].as_str().expect("serial").to_string());
    }
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while sim.recorded().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "notifications not recorded"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    // The bureau records the second one only after the 05:00 cut (as if its first
    // notifications had failed until then).
    for r in sim.state().recorded.iter_mut() {
        if r.order_no == LATE {
            r.recorded_at = at(next_day, 5, 30, 0);
        }
    }

    let files = env.files_dir();
    env.clock.advance_to(at(next_day, 1, 0, 0));
    env.core.write_daily_file(day, &files).expect("core file");
    env.clock.advance_to(at(next_day, 7, 0, 0));
    let file_d = sim.daily_file(day);
    std::fs::write(
        files.join(format!("YCJF_{TOBACCO_BANK_CODE}_{today}.txt")),
        &file_d,
    )
    .expect("bureau file");
    assert_eq!(
        file_d.lines().next(),
        Some(format!("{today}|1|{LISTED_FEN}").as_str())
    );
    env.clock.advance_to(at(next_day, 9, 0, 0));
    let reports = env.dir.path().join("reports");
    let run = {
        let (files, reports) = (files.clone(), reports.clone());
        env.on_hub(move |engine| async move {
            let link = engine
                .partners()
                .find(|l| l.adapter.payee() == "TOBACCO")
                .cloned()
                .expect("tobacco configured");
            hub::recon_job::run(&engine, &link, day, &files, &reports).await
        })
        .await
        .expect("reconciliation of D")
    };
    assert_eq!(run.result.matched.len(), 1);
    let missing: Vec<_> = run
        .result
        .differences
        .iter()
        .map(|d| (d.kind, d.hub_serial.clone()))
        .collect();
    assert_eq!(
        missing,
        [(
            reconciliation::DifferenceKind::HubSuccessMissingAtPartner,
            serials[1].clone()
        )]
    );
    // Both are the bureau's money: one 8002 of 123.00 + 456.00 to its settlement account.
    assert_eq!(run.settlement.amount_fen, LISTED_FEN + LATE_FEN);
    assert_eq!(env.balance_fen(SETTLEMENT), LISTED_FEN + LATE_FEN);
    // The unlisted payment is notified again (a new schedule).
    assert_eq!(
        notification_status(&env, &serials[1]).await.as_deref(),
        Some("PENDING")
    );

    // D+1: the bureau's next file lists the late one; it confirms D's payment, no difference.
    let day_after = next_day
        .checked_add_days(chrono::Days::new(1))
        .expect("date");
    env.clock.advance_to(at(day_after, 1, 0, 0));
    env.core
        .write_daily_file(next_day, &files)
        .expect("core file");
    env.clock.advance_to(at(day_after, 7, 0, 0));
    let file_d1 = sim.daily_file(next_day);
    assert!(file_d1.contains(serials[1].as_str()), "{file_d1}");
    std::fs::write(
        files.join(format!(
            "YCJF_{TOBACCO_BANK_CODE}_{}.txt",
            codecs::clock::yyyymmdd(next_day)
        )),
        &file_d1,
    )
    .expect("bureau file");
    let next = env
        .on_hub(move |engine| async move {
            let link = engine
                .partners()
                .find(|l| l.adapter.payee() == "TOBACCO")
                .cloned()
                .expect("tobacco configured");
            hub::recon_job::run(&engine, &link, next_day, &files, &reports).await
        })
        .await
        .expect("reconciliation of D+1");
    assert!(
        next.result.differences.is_empty(),
        "{:?}",
        next.result.differences
    );
    assert_eq!(next.settlement.amount_fen, 0);
    assert_eq!(env.balance_fen(SETTLEMENT), LISTED_FEN + LATE_FEN);
}

/// Spec 09 "Paying": a retailer's unpaid orders by licence number, oldest dueDate first, the
/// overdue ones marked 已逾期; a paid order is no longer listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_lists_its_unpaid_orders_oldest_first_with_the_overdue_marked() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    let yesterday = codecs::clock::yyyymmdd(
        business_date()
            .checked_sub_days(chrono::Days::new(1))
            .expect("date"),
    );
    const RETAILER: &str = "430602100999";
    sim.push(
        "P202612020004",
        vec![
            order_json("YC20261202000401", RETAILER, 1_000, &today),
            order_json("YC20261201000402", RETAILER, 2_000, &yesterday),
            order_json("YC20261202000403", RETAILER, 3_000, &today),
            order_json("YC20261202000404", LICENCE, 4_000, &today),
        ],
    )
    .await
    .expect("push exchange");
    let (_, paid) = env
        .post(
            "/api/v1/payments",
            &channel_pay(&env, "M0000000401", "YC20261202000403", 3_000),
        )
        .await;
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    let lookup = json!({"licence_no": RETAILER, "channel": "01", "branch_no": BRANCH, "teller_no": "T00001"});
    let (status, answer) = env.post("/api/v1/tobacco/orders/by-licence", &lookup).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<(&str, i64, &str)> = answer["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| {
            (
                o["order_no"].as_str().unwrap_or_default(),
                o["amount_fen"].as_i64().unwrap_or_default(),
                o["mark"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("YC20261201000402", 2_000, "已逾期"),
            ("YC20261202000401", 1_000, ""),
        ]
    );
    let (status, _) = env
        .post(
            "/api/v1/tobacco/orders/by-licence",
            &json!({"licence_no": "43060210099", "channel": "01", "branch_no": BRANCH, "teller_no": "T00001"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
