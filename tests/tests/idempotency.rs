//! (channel, channel date, channel serial) is unique for ever: a repeat returns the first answer
//! and never debits twice; a repeat with another payload is refused and moves nothing.

use std::time::Duration;

use e2e_tests::*;
use fixtures::power_sim::{PowerFault, PowerFaultRule};
use hub::state::PaymentState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_repeat_returns_the_first_answer_and_debits_once() {
    let env = Env::start().await;
    let args = PayArgs::mobile("MBI001", ZHANG_SAN, PAYER_A, ZHANG_SAN_DUE_FEN);
    let (first, serial) = env.pay_ok(&args).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    let (status, second) = env.pay(&args).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        second, first,
        "the repeat gets the first answer, field for field"
    );
    env.wait_state(&serial, PaymentState::Succeeded).await;
    assert_eq!(env.core.posting_count(), 1);
    assert_eq!(env.power.payments().len(), 1);
    assert_eq!(env.payment_count().await, 1);
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );
}

/// Ten copies at once (the power company answers after 150 ms, under the hub's timeout, so all
/// ten arrive while the first is in flight). A copy that arrives while the first is in flight waits
/// for the first answer, so all ten get exactly the same answer, and one debit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_copies_debit_once() {
    let env = Env::start().await;
    env.power.arm(PowerFaultRule {
        tx_code: "1002".into(),
        customer_no: Some(LI_SI.into()),
        fault: PowerFault::AnswerLate(Duration::from_millis(150)),
        times: 1,
    });
    let args = PayArgs::mobile("MBI002", LI_SI, PAYER_B, LI_SI_DUE_FEN);
    let body = env.pay_body(&args);
    let url = format!("{}/api/v1/payments", env.base_url());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = env.http.clone();
        let url = url.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("hub answers");
            let status = response.status();
            (
                status,
                response.json::<serde_json::Value>().await.expect("json"),
            )
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let (status, first) = env.pay(&args).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    let hub_serial = first["hub_serial"].as_str().expect("hub serial");
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer["hub_serial"], hub_serial, "one payment for one key");
        assert_eq!(answer, &first, "every copy gets the first answer");
    }
    env.wait_state(hub_serial, PaymentState::Succeeded).await;
    assert_eq!(env.core.posting_count(), 1);
    assert_eq!(env.power.payments().len(), 1);
    assert_eq!(env.payment_count().await, 1);
    assert_money(
        &env,
        PAYER_B,
        PAYER_B_OPENING_FEN - LI_SI_DUE_FEN,
        LI_SI_DUE_FEN,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_with_another_amount_is_refused_409_and_moves_nothing() {
    let env = Env::start().await;
    let args = PayArgs::mobile("MBI003", ZHANG_SAN, PAYER_A, ZHANG_SAN_DUE_FEN);
    let (first, _) = env.pay_ok(&args).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    let postings = env.core.posting_count();

    let other = PayArgs {
        amount_fen: ZHANG_SAN_DUE_FEN + 100,
        ..args.clone()
    };
    let (status, refusal) = env.pay(&other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refusal}");
    assert_eq!(refusal["code"], "DUPLICATE_MISMATCH");
    assert!(
        is_chinese(refusal["message"].as_str().unwrap_or_default()),
        "{refusal}"
    );
    assert!(refusal["detail"].is_string());
    assert_eq!(env.core.posting_count(), postings);
    assert_eq!(env.payment_count().await, 1);
    assert_eq!(env.power.payments().len(), 1);
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );

    // Another payer under the same key is refused the same way.
    let (status, refusal) = env
        .pay(&PayArgs {
            payer: PAYER_B,
            ..args.clone()
        })
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refusal["code"], "DUPLICATE_MISMATCH");
    assert_eq!(env.balance_fen(PAYER_B), PAYER_B_OPENING_FEN);
}

/// The same serial on another channel or date is another key: a payment of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_includes_the_channel() {
    let env = Env::start().await;
    let (a, _) = env
        .pay_ok(&PayArgs::mobile(
            "SAME0001",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    let (b, _) = env
        .pay_ok(&PayArgs {
            channel: "03",
            ..PayArgs::mobile("SAME0001", LI_SI, PAYER_A, LI_SI_DUE_FEN)
        })
        .await;
    assert_eq!(a["status"], "SUCCEEDED");
    assert_eq!(b["status"], "SUCCEEDED");
    assert_ne!(a["hub_serial"], b["hub_serial"]);
    assert_eq!(env.core.posting_count(), 2);
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN - LI_SI_DUE_FEN,
        ZHANG_SAN_DUE_FEN + LI_SI_DUE_FEN,
    );
}
