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
    // The hub records the acknowledgements a moment after the bureau recorded them: wait, so
    // that the run below finds them acknowledged (a still-pending one is not re-scheduled).
    for serial in &serials {
        wait_acked(&env, serial).await;
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
    // The unlisted payment is notified again: a new schedule from the run's time. (Its status
    // is not checked: the outbox may already have sent it and had it acknowledged.)
    let schedule: Option<String> =
        sqlx::query_scalar("SELECT schedule_start FROM tobacco_notifications WHERE notify_id = ?")
            .bind(&serials[1])
            .fetch_optional(env.journal.pool())
            .await
            .expect("notification row");
    assert_eq!(
        schedule.as_deref(),
        Some(
            at(next_day, 9, 0, 0)
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
                .as_str()
        )
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

/// Runs the tobacco reconciliation of `date` on the hub, with the env's file and report folders.
async fn reconcile_tobacco(
    env: &Env,
    date: chrono::NaiveDate,
) -> Result<hub::recon_job::ReconRun, hub::recon_job::ReconError> {
    let files = env.files_dir();
    let reports = env.dir.path().join("reports");
    env.on_hub(move |engine| async move {
        let link = engine
            .partners()
            .find(|l| l.adapter.payee() == "TOBACCO")
            .cloned()
            .expect("tobacco configured");
        hub::recon_job::run(&engine, &link, date, &files, &reports).await
    })
    .await
}

async fn wait_acked(env: &Env, notify_id: &str) {
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while notification_status(env, notify_id).await.as_deref() != Some("ACKED") {
        assert!(
            std::time::Instant::now() < deadline,
            "notification {notify_id} not acknowledged: {:?}",
            notification_status(env, notify_id).await
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Spec 09: `orderNo` is 1–32 `[0-9A-Za-z]`. An order number of the full 32 characters is
/// pushed, found by number and by licence, paid, notified and acknowledged, listed in the
/// bureau's file and reconciled without a difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_32_character_order_number_is_pushed_paid_notified_and_reconciled() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    let day = business_date();
    let next_day = day.checked_add_days(chrono::Days::new(1)).expect("date");
    const LONG: &str = "YC202612030000000000000000000001";
    const LONG_FEN: i64 = 98_760;
    const RETAILER: &str = "430602100777";
    assert_eq!(LONG.len(), 32);

    let pushed = sim
        .push(
            "P202612030032",
            vec![order_json(LONG, RETAILER, LONG_FEN, &today)],
        )
        .await
        .expect("push exchange");
    assert_eq!(pushed.body["code"], "0000", "{:?}", pushed.body);
    assert_eq!(pushed.body["results"][0]["orderNo"], LONG);
    assert_eq!(pushed.body["results"][0]["code"], "0000");
    assert_eq!(pushed.body["results"][0]["state"], "1");

    let lookup = json!({"licence_no": RETAILER, "channel": "02", "branch_no": BRANCH, "teller_no": "T00001"});
    let (status, listed) = env.post("/api/v1/tobacco/orders/by-licence", &lookup).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["orders"][0]["order_no"], LONG, "{listed}");

    let (status, bill) = env.post("/api/v1/bills/query", &channel_query(LONG)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["customer_no"], LONG);
    assert_eq!(bill["total_due_fen"], LONG_FEN);

    let (status, paid) = env
        .post(
            "/api/v1/payments",
            &channel_pay(&env, "M0000000032", LONG, LONG_FEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    assert_eq!(paid["partner_serial"], LONG);
    let serial = paid["hub_serial"].as_str().expect("serial").to_string();
    assert_eq!(env.balance_fen(PAYER_A), PAYER_A_OPENING_FEN - LONG_FEN);

    wait_acked(&env, &serial).await;
    let recorded = sim.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].order_no, LONG);
    assert_eq!(recorded[0].bank_serial, serial);
    assert_eq!(recorded[0].amount_fen, LONG_FEN);
    let queried = sim.query(LONG).await.expect("query exchange");
    assert_eq!(queried.body["state"], "3", "{:?}", queried.body);
    assert_eq!(queried.body["bankSerial"], serial.as_str());

    // The bureau's file carries the 32 characters; the journal and core agree.
    let files = env.files_dir();
    env.clock.advance_to(at(next_day, 1, 0, 0));
    env.core.write_daily_file(day, &files).expect("core file");
    env.clock.advance_to(at(next_day, 7, 0, 0));
    let file_d = sim.daily_file(day);
    assert!(
        file_d.contains(&format!("|{LONG}|{RETAILER}|{LONG_FEN}|")),
        "{file_d}"
    );
    std::fs::write(
        files.join(format!("YCJF_{TOBACCO_BANK_CODE}_{today}.txt")),
        &file_d,
    )
    .expect("bureau file");
    env.clock.advance_to(at(next_day, 9, 0, 0));
    let run = reconcile_tobacco(&env, day).await.expect("reconciliation");
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    assert_eq!(run.result.matched.len(), 1);
    assert_eq!(run.result.matched[0].customer_no, LONG);
    assert_eq!(run.settlement.amount_fen, LONG_FEN);
    assert_eq!(env.balance_fen(SETTLEMENT), LONG_FEN);
}

/// Spec 09: "The engine matches on bankSerial across files and keeps each payment's own
/// acctDate from the journal." A payment accepted at 23:59:59 on D (the hub's date D, the
/// core's HubTranDate D) is posted after the core's 23:00 switch (CoreDate, so acctDate, D+1);
/// its 8002 answer is lost and the 8004 that finds it runs after midnight, so payTime is on
/// D+1 too. The bureau's file of D+1 lists it with that payTime: the reconciliation of D+1
/// matches it, with no difference, and settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_accepted_before_midnight_and_paid_after_it_reconciles_without_difference() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    let day = business_date();
    let next_day = day.checked_add_days(chrono::Days::new(1)).expect("date");
    let day_after = next_day
        .checked_add_days(chrono::Days::new(1))
        .expect("date");
    const ORDER: &str = "YC20261203000501";
    const FEN: i64 = 23_450;
    sim.push(
        "P202612030005",
        vec![order_json(ORDER, LICENCE, FEN, &today)],
    )
    .await
    .expect("push exchange");

    env.clock.advance_to(at(day, 23, 59, 59));
    env.core.arm(fixtures::core_sim::FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(PAYER_B.into()),
        fault: fixtures::core_sim::CoreFault::AnswerLate(std::time::Duration::from_millis(1_500)),
        times: 1,
    });
    // The first 8004 fails too, so the one that finds the posting runs after midnight.
    env.core.arm(fixtures::core_sim::FaultRule {
        tran_code: "8004".into(),
        debit_acct: Some(PAYER_B.into()),
        fault: fixtures::core_sim::CoreFault::SystemError,
        times: 1,
    });
    let (_, doubt) = env
        .post(
            "/api/v1/payments",
            &pay_from(&env, "M0000000501", ORDER, FEN, PAYER_B),
        )
        .await;
    assert_eq!(doubt["status"], "IN_DOUBT", "{doubt}");
    let serial = doubt["hub_serial"].as_str().expect("serial").to_string();
    env.clock.advance_to(at(next_day, 0, 0, 30));
    // The resolver's backoff runs on the manual clock: nudge it until the 8004 succeeds.
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    let row = loop {
        let row = env
            .journal
            .get(&serial)
            .await
            .expect("journal")
            .expect("payment row");
        if row.state == PaymentState::Succeeded {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "payment not resolved: {:?}",
            row.state
        );
        env.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    assert_eq!(row.tx_date, day);
    assert_eq!(row.acct_date, Some(next_day));
    wait_acked(&env, &serial).await;
    let recorded = sim.recorded();
    assert_eq!(recorded.len(), 1);
    let next = codecs::clock::yyyymmdd(next_day);
    assert_eq!(recorded[0].acct_date, next);
    assert!(
        recorded[0].pay_time.starts_with(&next),
        "payTime {} is not on D+1",
        recorded[0].pay_time
    );

    let files = env.files_dir();
    env.clock.advance_to(at(day_after, 1, 0, 0));
    env.core
        .write_daily_file(next_day, &files)
        .expect("core file");
    env.clock.advance_to(at(day_after, 7, 0, 0));
    let file = sim.daily_file(next_day);
    assert_eq!(
        file.lines().next(),
        Some(format!("{next}|1|{FEN}").as_str())
    );
    std::fs::write(
        files.join(format!("YCJF_{TOBACCO_BANK_CODE}_{next}.txt")),
        &file,
    )
    .expect("bureau file");
    env.clock.advance_to(at(day_after, 9, 0, 0));
    let run = reconcile_tobacco(&env, next_day)
        .await
        .expect("reconciliation of D+1");
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    assert_eq!(run.result.matched.len(), 1);
    assert_eq!(run.result.matched[0].hub_serial, serial);
    assert_eq!(run.result.matched[0].tx_date, day);
    assert_eq!(run.result.matched[0].acct_date, next_day);
    assert_eq!(run.settlement.amount_fen, FEN);
    assert_eq!(env.balance_fen(SETTLEMENT), FEN);
}

/// Spec 09: the settlement is every payment "paid in the journal and posted (S) in the core
/// file, whether or not the bureau's file lists them yet", and an unlisted payment is "reported
/// as 通知未确认 until a later file lists it". D: the bureau's file never arrives: journal and
/// core are reconciled, both payments settle (123.00 + 456.00), the missing file is an alert and
/// the first 提示 line, and a rerun with a damaged file posts nothing twice. D+1: the file lists
/// the first payment; the second (the bureau never recorded its notification) is still on the
/// report of D+1 as 通知未确认 of D.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_bureau_file_payments_settle_and_unconfirmed_ones_stay_on_later_reports() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    let day = business_date();
    let next_day = day.checked_add_days(chrono::Days::new(1)).expect("date");
    let day_after = next_day
        .checked_add_days(chrono::Days::new(1))
        .expect("date");
    const CONFIRMED: &str = "YC20261203000601";
    const UNCONFIRMED: &str = "YC20261203000602";
    const CONFIRMED_FEN: i64 = 12_300;
    const UNCONFIRMED_FEN: i64 = 45_600;
    sim.push(
        "P202612030006",
        vec![
            order_json(CONFIRMED, LICENCE, CONFIRMED_FEN, &today),
            order_json(UNCONFIRMED, LICENCE, UNCONFIRMED_FEN, &today),
        ],
    )
    .await
    .expect("push exchange");
    let (_, first) = env
        .post(
            "/api/v1/payments",
            &channel_pay(&env, "M0000000601", CONFIRMED, CONFIRMED_FEN),
        )
        .await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    let confirmed = first["hub_serial"].as_str().expect("serial").to_string();
    wait_acked(&env, &confirmed).await;
    // The bureau answers 9999 to every notification from now on: it never records the second.
    sim.inject(fixtures::tobacco_sim::NotifyFault::SystemError, 10_000);
    let (_, second) = env
        .post(
            "/api/v1/payments",
            &channel_pay(&env, "M0000000602", UNCONFIRMED, UNCONFIRMED_FEN),
        )
        .await;
    assert_eq!(second["status"], "SUCCEEDED", "{second}");
    let unconfirmed = second["hub_serial"].as_str().expect("serial").to_string();

    let files = env.files_dir();
    env.clock.advance_to(at(next_day, 1, 0, 0));
    env.core.write_daily_file(day, &files).expect("core file");
    env.clock.advance_to(at(next_day, 10, 0, 0));
    let run = reconcile_tobacco(&env, day)
        .await
        .expect("a missing bureau file does not stop the reconciliation");
    let alert = run.partner_file_alert.clone().expect("missing file alert");
    assert!(alert.contains("RECON_PARTNER_FILE_MISSING"), "{alert}");
    assert_eq!(run.result.warnings.first(), Some(&alert));
    assert_eq!(run.settlement.state, "POSTED");
    assert_eq!(run.settlement.amount_fen, CONFIRMED_FEN + UNCONFIRMED_FEN);
    assert_eq!(run.settlement.count, 2);
    assert_eq!(env.balance_fen(SETTLEMENT), CONFIRMED_FEN + UNCONFIRMED_FEN);
    let mut reported: Vec<_> = run
        .result
        .differences
        .iter()
        .map(|d| (d.kind, d.hub_serial.clone()))
        .collect();
    reported.sort();
    let mut expected = vec![
        (
            reconciliation::DifferenceKind::HubSuccessMissingAtPartner,
            confirmed.clone(),
        ),
        (
            reconciliation::DifferenceKind::HubSuccessMissingAtPartner,
            unconfirmed.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(reported, expected);
    let html = std::fs::read_to_string(&run.html).expect("report");
    assert!(html.contains("RECON_PARTNER_FILE_MISSING"), "{html}");

    // A damaged file is the same alert; the settlement already posted is not posted again.
    std::fs::write(
        files.join(format!("YCJF_{TOBACCO_BANK_CODE}_{today}.txt")),
        "not a file\n",
    )
    .expect("bureau file");
    let rerun = reconcile_tobacco(&env, day).await.expect("rerun");
    assert!(rerun
        .partner_file_alert
        .as_deref()
        .is_some_and(|a| a.contains("RECON_PARTNER_FILE_BAD")));
    assert!(rerun.settlement.earlier_run);
    assert_eq!(env.balance_fen(SETTLEMENT), CONFIRMED_FEN + UNCONFIRMED_FEN);

    // D+1: the bureau's file lists the first payment (a confirmation of D); the second is
    // still unconfirmed and stays on the report, with its own date and amount.
    env.clock.advance_to(at(day_after, 1, 0, 0));
    env.core
        .write_daily_file(next_day, &files)
        .expect("core file");
    env.clock.advance_to(at(day_after, 7, 0, 0));
    let next = codecs::clock::yyyymmdd(next_day);
    let file = sim.daily_file(next_day);
    assert!(file.contains(confirmed.as_str()), "{file}");
    assert!(!file.contains(unconfirmed.as_str()), "{file}");
    std::fs::write(
        files.join(format!("YCJF_{TOBACCO_BANK_CODE}_{next}.txt")),
        &file,
    )
    .expect("bureau file");
    let run = reconcile_tobacco(&env, next_day)
        .await
        .expect("reconciliation of D+1");
    assert_eq!(run.partner_file_alert, None);
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    let carried: Vec<_> = run
        .result
        .unconfirmed_earlier
        .iter()
        .map(|u| (u.hub_serial.clone(), u.acct_date, u.amount.fen()))
        .collect();
    assert_eq!(carried, [(unconfirmed.clone(), day, UNCONFIRMED_FEN)]);
    let html = std::fs::read_to_string(&run.html).expect("report");
    assert!(html.contains("通知未确认"), "{html}");
    assert!(html.contains("NOTIFY_UNCONFIRMED"), "{html}");
    assert!(html.contains(unconfirmed.as_str()), "{html}");
    assert_eq!(run.settlement.amount_fen, 0);
    assert_eq!(env.balance_fen(SETTLEMENT), CONFIRMED_FEN + UNCONFIRMED_FEN);
}

/// Spec 09: retailers also pay "through the 农信银 channel" (channel `05`): the payment goes
/// through and the bureau is notified with channel 05. No other partner names 05: a power
/// payment from it is a bad request before any debit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retailer_pays_through_nongxinyin_and_the_bureau_hears_channel_05() {
    let (env, sim) = tobacco_env().await;
    let today = env.today();
    const ORDER: &str = "YC20261203NXY001";
    const FEN: i64 = 45_600;
    let pushed = sim
        .push(
            "P202612030005",
            vec![order_json(ORDER, "430602100555", FEN, &today)],
        )
        .await
        .expect("push exchange");
    assert_eq!(pushed.body["code"], "0000", "{:?}", pushed.body);
    let mut pay = channel_pay(&env, "NX0000000001", ORDER, FEN);
    pay["channel"] = json!("05");
    let (status, paid) = env.post("/api/v1/payments", &pay).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "SUCCEEDED", "{paid}");
    let serial = paid["hub_serial"].as_str().expect("serial").to_string();
    wait_acked(&env, &serial).await;
    let recorded = sim.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].channel, "05");
    assert_eq!(env.balance_fen(PAYER_A), PAYER_A_OPENING_FEN - FEN);

    let postings = env.core.posting_count();
    let mut power = env.pay_body(&PayArgs::mobile(
        "NX0000000002",
        ZHANG_SAN,
        PAYER_A,
        ZHANG_SAN_DUE_FEN,
    ));
    power["channel"] = json!("05");
    let (status, refused) = env.post("/api/v1/payments", &power).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["code"], "BAD_REQUEST");
    assert_eq!(env.core.posting_count(), postings, "nobody debited");
}
