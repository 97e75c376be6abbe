//! Timeouts are not failures: an answer that does not come (partner or core) leaves the outcome
//! unknown, and the hub resolves it with the spec's reversal and status queries.

use std::time::{Duration, Instant};

use e2e_tests::*;
use fixtures::core_sim::{CoreFault, FaultRule};
use fixtures::power_sim::{PowerFault, PowerFaultRule, PowerPaymentState};
use hub::state::PaymentState;

fn arm_core(env: &Env, payer: &str, fault: CoreFault) {
    env.core.arm(FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(payer.into()),
        fault,
        times: 1,
    });
}

/// The partner answers 1002 a second after the hub's 300 ms answer timeout: in doubt, 1003,
/// 8003, REVERSED; the late answer, when it finally comes, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_timeout_is_reversed_and_the_late_answer_is_ignored() {
    let env = Env::start().await;
    let late_by = Duration::from_millis(1_000);
    env.power.arm(PowerFaultRule {
        tx_code: "1002".into(),
        customer_no: Some(ZHANG_SAN.into()),
        fault: PowerFault::AnswerLate(late_by),
        times: 1,
    });
    let sent = Instant::now();
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MBT001",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    assert_eq!(answer["code"], "IN_DOUBT");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert_eq!(
        env.power_payment(&serial).map(|p| p.state),
        Some(PowerPaymentState::Reversed)
    );
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
    let events_at_reversal = env.event_notes(&serial).await;

    // Negative check: nothing signals "the late answer was dropped", so let the simulator's
    // delay run out (plus margin) and look again.
    let answered_at = sent + late_by + Duration::from_millis(300);
    tokio::time::sleep(answered_at.saturating_duration_since(Instant::now())).await;
    let row = env.row(&serial).await;
    assert_eq!(row.state, PaymentState::Reversed);
    assert_eq!(
        env.event_notes(&serial).await,
        events_at_reversal,
        "no state change after the reversal"
    );
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
    // The channel's status query says the same.
    let (status, view) = env.status("02", &env.today(), "MBT001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["state"], "REVERSED");
}

/// The core posts the 8002 but answers after the hub's timeout: 8004 says S, and since the
/// channel was already answered IN_DOUBT, the debit is reversed (8003): REVERSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_timeout_after_posting_is_reversed_via_8004_and_8003() {
    let env = Env::start().await;
    arm_core(
        &env,
        PAYER_A,
        CoreFault::AnswerLate(Duration::from_millis(1_000)),
    );
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MBT002",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    let row = env.wait_state(&serial, PaymentState::Reversed).await;
    let notes = env.event_notes(&serial).await;
    assert!(notes.iter().any(|n| n.contains("8004: S")), "{notes:?}");
    assert!(row.reversal_core_seq_no.is_some());
    assert_eq!(env.core.posting_count(), 1, "posted once, never re-sent");
    assert!(
        env.power.payments().is_empty(),
        "no 1002 after an unknown debit"
    );
    assert_eq!(power_due_fen(&env, ZHANG_SAN), ZHANG_SAN_DUE_FEN);
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// E99999 without posting: 8004 says N, the key is fenced with an 8003 (E20001): CORE_FAILED,
/// no money moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_system_error_without_posting_ends_core_failed() {
    let env = Env::start().await;
    arm_core(&env, PAYER_B, CoreFault::SystemError);
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile("MBT003", LI_SI, PAYER_B, LI_SI_DUE_FEN))
        .await;
    assert_ne!(answer["status"], "SUCCEEDED", "{answer}");
    env.wait_state(&serial, PaymentState::CoreFailed).await;
    let notes = env.event_notes(&serial).await;
    assert!(notes.iter().any(|n| n.contains("8004: N")), "{notes:?}");
    assert_eq!(env.core.posting_count(), 0);
    assert!(env.power.payments().is_empty());
    assert_money(&env, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

/// The core posts, then drops the connection: REVERSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_drop_after_processing_is_reversed() {
    let env = Env::start().await;
    arm_core(&env, PAYER_C, CoreFault::DropAfterProcessing);
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MBT004",
            ZHAO_LIU,
            PAYER_C,
            ZHAO_LIU_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert_eq!(env.core.posting_count(), 1);
    assert!(env.power.payments().is_empty());
    assert_money(&env, PAYER_C, PAYER_C_OPENING_FEN, 0);
}

/// The core posts, then answers E99999: as unknown as a timeout, REVERSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_system_error_after_posting_is_reversed() {
    let env = Env::start().await;
    arm_core(&env, PAYER_A, CoreFault::SystemErrorAfterProcessing);
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile("MBT005", LI_SI, PAYER_A, LI_SI_DUE_FEN))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert_eq!(env.core.posting_count(), 1);
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}
