//! Every response code of spec 01 (郴电国际) that the hub can meet, end to end: the channel's
//! answer, the journal's final state, the core balances and the power company's books.
//!
//! Two codes cannot be provoked from the hub and have no test here:
//! - 2004 (original differs): the hub's 1003 always carries the original's own CustomerNo and
//!   Amount from the journal, so the power company never finds them different.
//! - 9001 (malformed): the hub validates and encodes every field before sending; a request the
//!   hub could not encode is never sent. The simulator's own 9001 is covered in `bad_input.rs`.

use e2e_tests::*;
use fixtures::power_sim::{ArrearsItem, PowerFault, PowerFaultRule, PowerPaymentState};
use hub::state::{NextAction, PaymentState};

fn arm(env: &Env, tx_code: &str, customer_no: &str, fault: PowerFault, times: usize) {
    env.power.arm(PowerFaultRule {
        tx_code: tx_code.into(),
        customer_no: Some(customer_no.into()),
        fault,
        times,
    });
}

fn has_note(notes: &[String], wanted: &str) -> bool {
    notes.iter().any(|n| n.contains(wanted))
}

/// 0000: the spec's worked example, 300.00 yuan paid against 223.35 due from mobile banking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_0000_success_debits_once_and_writes_off() {
    let env = Env::start().await;
    let (status, bill) = env.query(ZHANG_SAN, "02").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "OK");
    assert_eq!(bill["customer_name"], "张三");
    assert_eq!(bill["address"], "郴州市北湖区人民路1号");
    assert_eq!(bill["total_due_fen"], 22_335);
    assert_eq!(bill["prepaid_fen"], 0);
    assert_eq!(bill["nothing_due"], false);
    let items = bill["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["period"], "202610");
    assert_eq!(items[0]["amount_fen"], 12_345);
    assert_eq!(items[1]["period"], "202611");
    assert_eq!(items[1]["amount_fen"], 9_870);
    assert_eq!(items[1]["penalty_fen"], 120);

    let pay = PayArgs {
        amount_fen: 30_000,
        ..PayArgs::mobile("MB0001", ZHANG_SAN, PAYER_A, ZHANG_SAN_DUE_FEN)
    };
    let (answer, serial) = env.pay_ok(&pay).await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    // 300.00 - 223.35 = 76.65 yuan goes to prepaid.
    assert_eq!(answer["prepaid_fen"], 7_665);
    assert_eq!(answer["acct_date"], "20261203");
    assert_eq!(answer["amount_fen"], 30_000);

    let row = env.wait_state(&serial, PaymentState::Succeeded).await;
    let partner = env
        .power_payment(&serial)
        .expect("the power company wrote the bill off");
    assert_eq!(partner.state, PowerPaymentState::WrittenOff);
    assert_eq!(partner.amount.fen(), 30_000);
    assert_eq!(partner.total_due.fen(), 22_335);
    assert_eq!(partner.payer_account, PAYER_A);
    assert_eq!(partner.channel, "02");
    assert_eq!(answer["partner_serial"], partner.partner_serial.as_str());
    assert_eq!(
        row.partner_serial.as_deref(),
        Some(partner.partner_serial.as_str())
    );
    assert_eq!(row.acct_date, Some(business_date()));
    assert!(
        row.core_seq_no.is_some(),
        "the core's serial of the debit is journaled"
    );
    assert_eq!(env.core.posting_count(), 1, "exactly one 8002");
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN - 30_000, 30_000);
    assert_eq!(power_due_fen(&env, ZHANG_SAN), 0);
    assert_eq!(
        env.power
            .customer(ZHANG_SAN)
            .expect("customer")
            .prepaid
            .fen(),
        7_665
    );
}

/// 1001 on query: a refusal the channel can show. 1001 on pay: the debit is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_1001_customer_not_found() {
    let env = Env::start().await;
    let (status, bill) = env.query(UNKNOWN_CUSTOMER, "02").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "FAILED");
    assert_eq!(bill["code"], "PARTNER_CUSTOMER_NOT_FOUND");
    assert_eq!(bill["partner_code"], "1001");
    assert!(
        is_chinese(bill["message"].as_str().unwrap_or_default()),
        "{bill}"
    );

    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile("MB1001", UNKNOWN_CUSTOMER, PAYER_B, 5_000))
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["code"], "PARTNER_CUSTOMER_NOT_FOUND");
    assert_eq!(answer["partner_code"], "1001");
    let row = env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(row.reversal_core_seq_no.is_some(), "the 8003 is journaled");
    assert!(env.power_payment(&serial).is_none());
    assert_eq!(
        env.core.posting_count(),
        1,
        "one 8002, then its 8003 (not counted)"
    );
    assert_money(&env, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

/// 1002 on query: nothing due. A payment is still allowed, as pure prepayment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_1002_nothing_due_then_prepayment() {
    let env = Env::start().await;
    let (status, bill) = env.query(WANG_WU, "03").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bill["status"], "OK", "{bill}");
    assert_eq!(bill["nothing_due"], true);
    assert_eq!(bill["total_due_fen"], 0);
    assert_eq!(bill["prepaid_fen"], WANG_WU_PREPAID_FEN);
    assert_eq!(bill["items"].as_array().map(Vec::len), Some(0));

    let pay = PayArgs {
        channel: "03",
        amount_fen: 5_000,
        ..PayArgs::mobile("SS1002", WANG_WU, PAYER_C, 0)
    };
    let (answer, serial) = env.pay_ok(&pay).await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["prepaid_fen"], WANG_WU_PREPAID_FEN + 5_000);
    env.wait_state(&serial, PaymentState::Succeeded).await;
    let partner = env.power_payment(&serial).expect("written off");
    assert_eq!(partner.prepaid_added.fen(), 5_000);
    assert_money(&env, PAYER_C, PAYER_C_OPENING_FEN - 5_000, 5_000);
}

/// 1003: less than the arrears is refused; the debit is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_1003_payment_below_arrears_is_reversed() {
    let env = Env::start().await;
    let pay = PayArgs {
        amount_fen: LI_SI_DUE_FEN - 50,
        ..PayArgs::mobile("MB1003", LI_SI, PAYER_B, LI_SI_DUE_FEN)
    };
    let (answer, serial) = env.pay_ok(&pay).await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["code"], "PARTNER_AMOUNT_TOO_LOW");
    assert_eq!(answer["partner_code"], "1003");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(env.power_payment(&serial).is_none());
    assert_eq!(
        power_due_fen(&env, LI_SI),
        LI_SI_DUE_FEN,
        "nothing written off"
    );
    assert_money(&env, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

/// 1004: a closed customer; query refused, payment reversed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_1004_closed_customer_is_reversed() {
    let env = Env::start().await;
    let (_, bill) = env.query(CLOSED_CUSTOMER, "02").await;
    assert_eq!(bill["status"], "FAILED", "{bill}");
    assert_eq!(bill["code"], "PARTNER_CUSTOMER_CLOSED");
    assert_eq!(bill["partner_code"], "1004");

    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile("MB1004", CLOSED_CUSTOMER, PAYER_A, 1_200))
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["code"], "PARTNER_CUSTOMER_CLOSED");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// 1005: the arrears changed between the query and the payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_1005_arrears_changed_is_reversed() {
    let env = Env::start().await;
    let (_, bill) = env.query(ZHAO_LIU, "02").await;
    assert_eq!(bill["total_due_fen"], ZHAO_LIU_DUE_FEN);
    env.power.add_arrears(
        ZHAO_LIU,
        ArrearsItem {
            period: "202612".into(),
            amount: codecs::Money::from_fen(4_321),
            penalty: codecs::Money::ZERO,
        },
    );
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MB1005",
            ZHAO_LIU,
            PAYER_A,
            ZHAO_LIU_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["code"], "PARTNER_ARREARS_CHANGED");
    assert_eq!(answer["partner_code"], "1005");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(env.power_payment(&serial).is_none());
    assert_eq!(power_due_fen(&env, ZHAO_LIU), ZHAO_LIU_DUE_FEN + 4_321);
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// 9002 read by the hub: a BankCode the power company holds no key for fails the MAC (the
/// simulator's rule); its 9002 answer carries a good MAC, so the hub reads it as a refusal:
/// nothing was written off, the debit is reversed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_9002_answer_read_is_reversed() {
    let env = Env::start_with(EnvOptions {
        hub_bank_code: "NSH43199".into(),
        ..EnvOptions::default()
    })
    .await;
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MB9002",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["partner_code"], "9002");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(env.power.payments().is_empty());
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// 9002 with a wrong MAC key at the hub: the power company's 9002 answer carries a MAC the hub
/// cannot verify, so by the spec ("treats the response as garbled (outcome unknown)") the
/// payment is in doubt and 1003 is re-sent with backoff, never SUCCEEDED. Once the key is put
/// right (restart), the 1003 is answered 2001 and the debit is reversed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_9002_wrong_key_never_succeeds_and_reverses_once_the_key_is_fixed() {
    let mut env = Env::start_with(EnvOptions {
        hub_mac_key_hex: WRONG_MAC_KEY_HEX.into(),
        ..EnvOptions::default()
    })
    .await;
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MB9003",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_ne!(answer["status"], "SUCCEEDED", "{answer}");
    let row = env
        .wait_until(
            &serial,
            chrono::Duration::seconds(1),
            "two 1003 attempts",
            |row| row.next_action == NextAction::PartnerReversal && row.attempts >= 2,
        )
        .await;
    assert_eq!(row.state, PaymentState::PartnerUnknown);
    assert!(env.power.payments().is_empty(), "nothing was written off");
    // The money sits in the suspense account while the outcome is in doubt.
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );

    env.restart_hub_with(EnvOptions::default()).await;
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(has_note(
        &env.event_notes(&serial).await,
        "partner reversal: original not found"
    ));
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// 9999 Busy (nothing processed): unknown -> 1003 -> 2001 -> 8003 -> REVERSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_9999_busy_is_reversed_via_2001() {
    let env = Env::start().await;
    arm(&env, "1002", LI_SI, PowerFault::Busy, 1);
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile("MB9999", LI_SI, PAYER_B, LI_SI_DUE_FEN))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(has_note(
        &env.event_notes(&serial).await,
        "partner reversal: original not found"
    ));
    assert!(env.power_payment(&serial).is_none());
    assert_eq!(power_due_fen(&env, LI_SI), LI_SI_DUE_FEN);
    assert_money(&env, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

/// 9999 after the power company wrote the bill off: 1003 reverses the write-off, then 8003.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_9999_busy_after_processing_is_reversed_at_both_ends() {
    let env = Env::start().await;
    arm(&env, "1002", ZHANG_SAN, PowerFault::BusyAfterProcessing, 1);
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MB9998",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(has_note(
        &env.event_notes(&serial).await,
        "partner reversal: reversed"
    ));
    let partner = env.power_payment(&serial).expect("the write-off happened");
    assert_eq!(partner.state, PowerPaymentState::Reversed);
    assert_eq!(
        power_due_fen(&env, ZHANG_SAN),
        ZHANG_SAN_DUE_FEN,
        "arrears restored"
    );
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// 2002: the answer to a 1003 is lost (it reversed, but answered too late); the same 1003 is
/// re-sent and answered 2002, which is success for the bank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_2002_lost_reversal_answer_is_resent() {
    let env = Env::start().await;
    arm(&env, "1002", ZHANG_SAN, PowerFault::BusyAfterProcessing, 1);
    arm(
        &env,
        "1003",
        ZHANG_SAN,
        PowerFault::AnswerLate(std::time::Duration::from_millis(700)),
        1,
    );
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MB2002",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    env.wait_state(&serial, PaymentState::Reversed).await;
    let notes = env.event_notes(&serial).await;
    assert!(
        has_note(&notes, "partner reversal: already reversed"),
        "{notes:?}"
    );
    assert!(
        !has_note(&notes, "partner reversal: reversed"),
        "the first answer was never read: {notes:?}"
    );
    assert_eq!(
        env.power_payment(&serial).map(|p| p.state),
        Some(PowerPaymentState::Reversed)
    );
    assert_money(&env, PAYER_A, PAYER_A_OPENING_FEN, 0);
}

/// Counter 冲正 the same AcctDate: 1003 then 8003; money back, bill owed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_reversal_same_day_is_reversed() {
    let env = Env::start().await;
    let (answer, serial) = env
        .pay_ok(&PayArgs::counter("CT0001", LI_SI, PAYER_B, LI_SI_DUE_FEN))
        .await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_money(
        &env,
        PAYER_B,
        PAYER_B_OPENING_FEN - LI_SI_DUE_FEN,
        LI_SI_DUE_FEN,
    );

    let (status, reversal) = env.reverse("01", &env.today(), "CT0001").await;
    assert_eq!(status, StatusCode::OK, "{reversal}");
    assert_eq!(reversal["status"], "REVERSED", "{reversal}");
    let row = env.wait_state(&serial, PaymentState::Reversed).await;
    assert!(row.reversal_core_seq_no.is_some());
    assert_eq!(
        env.power_payment(&serial).map(|p| p.state),
        Some(PowerPaymentState::Reversed)
    );
    assert_eq!(power_due_fen(&env, LI_SI), LI_SI_DUE_FEN);
    assert_money(&env, PAYER_B, PAYER_B_OPENING_FEN, 0);

    // Asked again: the same outcome, nothing moves.
    let (status, again) = env.reverse("01", &env.today(), "CT0001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "REVERSED");
    assert_money(&env, PAYER_B, PAYER_B_OPENING_FEN, 0);
}

/// 2003 on a counter 冲正 asked after the 23:30 day-end: refused as too late, the payment stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_2003_counter_reversal_after_day_end_is_too_late() {
    let env = Env::start_with(EnvOptions {
        start: at(business_date(), 23, 10, 0),
        ..EnvOptions::default()
    })
    .await;
    let (answer, serial) = env
        .pay_ok(&PayArgs::counter(
            "CT2003",
            ZHANG_SAN,
            PAYER_A,
            ZHANG_SAN_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(answer["acct_date"], "20261203");
    env.clock.advance_to(at(business_date(), 23, 31, 0));

    let (status, reversal) = env.reverse("01", "20261203", "CT2003").await;
    assert_eq!(status, StatusCode::OK, "{reversal}");
    assert_eq!(reversal["status"], "FAILED", "{reversal}");
    assert_eq!(reversal["code"], "REVERSAL_TOO_LATE");
    let row = env.wait_state(&serial, PaymentState::Succeeded).await;
    assert_eq!(row.acct_date, Some(business_date()));
    assert!(has_note(&env.event_notes(&serial).await, "too late"));
    assert_eq!(
        env.power_payment(&serial).map(|p| p.state),
        Some(PowerPaymentState::WrittenOff)
    );
    assert_money(
        &env,
        PAYER_A,
        PAYER_A_OPENING_FEN - ZHANG_SAN_DUE_FEN,
        ZHANG_SAN_DUE_FEN,
    );
}

/// 2003 on a write-off whose outcome was unknown: its 1003 reaches the power company after the
/// day-end, is refused 2003, and 1004 says Status 1: the payment SUCCEEDED, with the partner's
/// serial and AcctDate journaled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_2003_unknown_write_off_after_day_end_succeeds_via_1004() {
    let env = Env::start_with(EnvOptions {
        start: at(business_date(), 23, 29, 59),
        ..EnvOptions::default()
    })
    .await;
    arm(&env, "1002", ZHAO_LIU, PowerFault::BusyAfterProcessing, 1);
    // The first 1003 (before the day-end) is answered 9999 without being processed.
    arm(&env, "1003", ZHAO_LIU, PowerFault::Busy, 1);
    let (answer, serial) = env
        .pay_ok(&PayArgs::mobile(
            "MB2003",
            ZHAO_LIU,
            PAYER_C,
            ZHAO_LIU_DUE_FEN,
        ))
        .await;
    assert_eq!(answer["status"], "IN_DOUBT", "{answer}");
    // The clock stands still until the busy 1003 has been answered and rescheduled.
    env.wait_until(
        &serial,
        chrono::Duration::zero(),
        "a rescheduled 1003",
        |row| row.next_action == NextAction::PartnerReversal && row.attempts >= 1,
    )
    .await;
    env.clock.advance_to(at(business_date(), 23, 30, 1));

    let row = env.wait_state(&serial, PaymentState::Succeeded).await;
    let notes = env.event_notes(&serial).await;
    assert!(has_note(&notes, "too late"), "{notes:?}");
    let partner = env
        .power_payment(&serial)
        .expect("written off before the day-end");
    assert_eq!(partner.state, PowerPaymentState::WrittenOff);
    assert_eq!(partner.acct_date, business_date());
    assert_eq!(
        row.partner_serial.as_deref(),
        Some(partner.partner_serial.as_str())
    );
    assert_eq!(row.acct_date, Some(business_date()));
    assert_money(
        &env,
        PAYER_C,
        PAYER_C_OPENING_FEN - ZHAO_LIU_DUE_FEN,
        ZHAO_LIU_DUE_FEN,
    );
}
