//! A hub killed in the middle of a payment finishes it after a restart on the same journal,
//! without ever repeating a money-moving request.

use std::time::Duration;

use e2e_tests::*;
use fixtures::core_sim::{CoreFault, FaultRule};
use fixtures::power_sim::{PowerFault, PowerFaultRule, PowerPaymentState};
use hub::journal::PaymentRow;
use hub::state::PaymentState;

/// Long timeouts for the hub that will be killed, so it is surely still waiting when it dies.
fn patient() -> EnvOptions {
    EnvOptions {
        partner_answer_timeout_ms: 20_000,
        core_answer_timeout_ms: 20_000,
        ..EnvOptions::default()
    }
}

/// Starts the payment in the background (its HTTP call dies with the hub) and waits, bounded,
/// until `ready` holds for its journal row.
async fn pay_in_flight(
    env: &Env,
    args: PayArgs<'_>,
    ready: impl Fn(&PaymentRow) -> bool,
) -> String {
    let http = env.http.clone();
    let url = format!("{}/api/v1/payments", env.base_url());
    let body = env.pay_body(&args);
    tokio::spawn(async move {
        let _ = http.post(url).json(&body).send().await;
    });
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    loop {
        let row = env
            .journal
            .by_channel_key(args.channel, &env.today(), args.serial)
            .await
            .expect("journal read");
        if let Some(row) = row {
            if ready(&row) {
                return row.hub_serial;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the payment never got in flight"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Killed after the debit, while the 1002 is unanswered (the power company wrote it off): the
/// new hub does not re-send the 1002; it sends 1003 and reverses the debit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_debit_and_write_off_is_reversed_after_restart() {
    let mut env = Env::start_with(patient()).await;
    env.power.arm(PowerFaultRule {
        tx_code: "1002".into(),
        customer_no: Some(ZHANG_SAN.into()),
        fault: PowerFault::AnswerLate(Duration::from_secs(30)),
        times: 1,
    });
    let args = PayArgs::mobile("MBR001", ZHANG_SAN, PAYER_A, ZHANG_SAN_DUE_FEN);
    let serial = pay_in_flight(&env, args, |row| row.state == PaymentState::CoreDebited).await;
    // The write-off happened at the power company; only its answer is outstanding.
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while env.power_payment(&serial).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the 1002 never reached the power company"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    env.kill_hub();
    assert_eq!(
        env.row(&serial).await.state,
        PaymentState::CoreDebited,
        "killed between debit and write-off"
    );
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );

    env.options = EnvOptions::default();
    env.start_hub().await;
    env.wait_state(&serial, PaymentState::Reversed).await;
    let payments: Vec<_> = env
        .power
        .payments()
        .into_iter()
        .filter(|p| p.customer_no == ZHANG_SAN)
        .collect();
    assert_eq!(payments.len(), 1, "the 1002 was never sent twice");
    assert_eq!(
        payments.first().map(|p| p.state),
        Some(PowerPaymentState::Reversed)
    );
    assert_eq!(env.core.posting_count(), 1, "debited once");
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// Killed the same way, but restarted after the power company's day-end: 1003 is answered 2003,
/// 1004 confirms the write-off, and the payment SUCCEEDED, debited exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_day_end_and_restarted_after_it_succeeds_once() {
    let mut env = Env::start_with(EnvOptions {
        start: at(business_date(), 23, 20, 0),
        ..patient()
    })
    .await;
    env.power.arm(PowerFaultRule {
        tx_code: "1002".into(),
        customer_no: Some(LI_SI.into()),
        fault: PowerFault::AnswerLate(Duration::from_secs(30)),
        times: 1,
    });
    let args = PayArgs::mobile("MBR002", LI_SI, PAYER_B, LI_SI_DUE_FEN);
    let serial = pay_in_flight(&env, args, |row| row.state == PaymentState::CoreDebited).await;
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while env.power_payment(&serial).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the 1002 never reached the power company"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    env.kill_hub();
    env.clock.advance_to(at(business_date(), 23, 45, 0));

    env.options = EnvOptions {
        start: at(business_date(), 23, 20, 0),
        ..EnvOptions::default()
    };
    env.start_hub().await;
    let row = env.wait_state(&serial, PaymentState::Succeeded).await;
    let partner = env.power_payment(&serial).expect("written off");
    assert_eq!(partner.state, PowerPaymentState::WrittenOff);
    assert_eq!(
        row.partner_serial.as_deref(),
        Some(partner.partner_serial.as_str())
    );
    assert_eq!(
        row.acct_date,
        Some(business_date()),
        "written off before the 23:30 day-end"
    );
    assert_eq!(env.core.posting_count(), 1);
    assert_money(
        &env,
        PAYER_B,
        PAYER_B_OPENING_FEN - LI_SI_DUE_FEN,
        LI_SI_DUE_FEN,
    );
}

/// Killed while the 8002 is unanswered (the core posted it): the new hub asks 8004, learns S,
/// and reverses with 8003; no 1002 is ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_an_unanswered_8002_resumes_with_8004() {
    let mut env = Env::start_with(patient()).await;
    env.core.arm(FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(PAYER_C.into()),
        fault: CoreFault::AnswerLate(Duration::from_secs(30)),
        times: 1,
    });
    let args = PayArgs::mobile("MBR003", ZHAO_LIU, PAYER_C, ZHAO_LIU_DUE_FEN);
    let serial = pay_in_flight(&env, args, |row| row.state == PaymentState::Accepted).await;
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while env.core.posting_count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the 8002 never reached the core"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    env.kill_hub();
    assert_eq!(env.row(&serial).await.state, PaymentState::Accepted);

    env.options = EnvOptions::default();
    env.start_hub().await;
    env.wait_state(&serial, PaymentState::Reversed).await;
    let notes = env.event_notes(&serial).await;
    assert!(notes.iter().any(|n| n.contains("8004: S")), "{notes:?}");
    assert_eq!(env.core.posting_count(), 1, "the 8002 was not sent again");
    assert!(
        env.power.payments().is_empty(),
        "no write-off after an unknown debit"
    );
    assert_money(&env, PAYER_C, PAYER_C_OPENING_FEN, 0);
}
