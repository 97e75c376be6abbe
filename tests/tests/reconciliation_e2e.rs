//! T+1 end to end: a small business day through the hub, the daily files written by the
//! simulators, `hub::recon_job::run`, and the settlement posted once at the core.

use chrono::Days;
use e2e_tests::*;
use fixtures::power_sim::{PowerFault, PowerFaultRule};
use hub::recon_job::ReconRun;
use hub::state::PaymentState;
use reconciliation::DifferenceKind;

async fn reconcile(env: &Env) -> ReconRun {
    let files = env.files_dir();
    let reports = env.dir.path().join("reports");
    env.on_hub(move |engine| async move {
        let link = engine
            .partners()
            .next()
            .cloned()
            .expect("one partner configured");
        hub::recon_job::run(&engine, &link, business_date(), &files, &reports).await
    })
    .await
    .expect("reconciliation runs")
}

/// T+1: the core's file by 01:00, the power company's by 06:00, reconciliation at 09:00.
fn drop_files(env: &Env) {
    let next_day = business_date()
        .checked_add_days(Days::new(1))
        .expect("next day");
    env.clock.advance_to(at(next_day, 1, 0, 0));
    env.core
        .write_daily_file(business_date(), &env.files_dir())
        .expect("core file");
    env.clock.advance_to(at(next_day, 6, 0, 0));
    env.power
        .write_daily_file(business_date(), &env.files_dir())
        .expect("power file");
    env.clock.advance_to(at(next_day, 9, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_day_reconciles_and_settles_once() {
    let env = Env::start().await;
    // 1. The spec's example: 300.00 against 223.35 due.
    let (a, s1) = env
        .pay_ok(&PayArgs {
            amount_fen: 30_000,
            ..PayArgs::mobile("RC0001", ZHANG_SAN, PAYER_A, ZHANG_SAN_DUE_FEN)
        })
        .await;
    assert_eq!(a["status"], "SUCCEEDED", "{a}");
    // 2. A counter payment reversed (冲正) the same day.
    let (b, s2) = env
        .pay_ok(&PayArgs::counter("RC0002", LI_SI, PAYER_B, LI_SI_DUE_FEN))
        .await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    let (_, reversal) = env.reverse("01", &env.today(), "RC0002").await;
    assert_eq!(reversal["status"], "REVERSED", "{reversal}");
    // 3. and 4. Self-service and online banking.
    let c1 = extra_customer(1);
    let (c, s3) = env
        .pay_ok(&PayArgs {
            channel: "03",
            ..PayArgs::mobile("RC0003", &c1, PAYER_C, extra_customer_due_fen(1))
        })
        .await;
    assert_eq!(c["status"], "SUCCEEDED", "{c}");
    let c2 = extra_customer(2);
    let (d, s4) = env
        .pay_ok(&PayArgs {
            channel: "04",
            ..PayArgs::mobile("RC0004", &c2, PAYER_A, extra_customer_due_fen(2))
        })
        .await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    // 5. Refused by the power company (1001): debit reversed.
    let (_, s5) = env
        .pay_ok(&PayArgs::mobile("RC0005", UNKNOWN_CUSTOMER, PAYER_B, 1_000))
        .await;
    // 6. Written off, answered 9999, reversed by 1003.
    let c3 = extra_customer(3);
    env.power.arm(PowerFaultRule {
        tx_code: "1002".into(),
        customer_no: Some(c3.clone()),
        fault: PowerFault::BusyAfterProcessing,
        times: 1,
    });
    let (_, s6) = env
        .pay_ok(&PayArgs::mobile(
            "RC0006",
            &c3,
            PAYER_C,
            extra_customer_due_fen(3),
        ))
        .await;
    for (serial, state) in [
        (&s1, PaymentState::Succeeded),
        (&s2, PaymentState::Reversed),
        (&s3, PaymentState::Succeeded),
        (&s4, PaymentState::Succeeded),
        (&s5, PaymentState::Reversed),
        (&s6, PaymentState::Reversed),
    ] {
        env.wait_state(serial, state).await;
    }
    let settled_fen = 30_000 + extra_customer_due_fen(1) + extra_customer_due_fen(2);
    assert_eq!(
        env.balance_fen(SUSPENSE),
        settled_fen,
        "the suspense account holds the day's successes"
    );

    drop_files(&env);
    let postings = env.core.posting_count();
    let run = reconcile(&env).await;
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    assert_eq!(run.result.matched.len(), 3);
    assert_eq!(run.settlement.state, "POSTED", "{:?}", run.settlement);
    assert_eq!(run.settlement.amount_fen, settled_fen);
    assert_eq!(run.settlement.seq_no, format!("S{BANK_CODE}20261203"));
    assert!(
        run.html.exists() && run.csv.exists(),
        "the reports are written"
    );
    assert_eq!(
        env.core.posting_count(),
        postings + 1,
        "one settlement 8002"
    );
    assert_eq!(env.balance_fen(SETTLEMENT), settled_fen);
    assert_eq!(
        env.balance_fen(SUSPENSE),
        0,
        "the suspense account is cleared"
    );

    // A rerun posts nothing more.
    let again = reconcile(&env).await;
    assert!(again.result.differences.is_empty());
    assert_eq!(again.settlement.state, "POSTED");
    assert_eq!(again.settlement.amount_fen, settled_fen);
    assert_eq!(
        env.core.posting_count(),
        postings + 1,
        "no second settlement 8002"
    );
    assert_eq!(env.balance_fen(SETTLEMENT), settled_fen);
    assert_eq!(env.balance_fen(SUSPENSE), 0);
    let opening = PAYER_A_OPENING_FEN + PAYER_B_OPENING_FEN + PAYER_C_OPENING_FEN;
    assert_eq!(env.ledger_total_fen(), opening);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_missing_from_the_partner_file_is_one_difference_and_is_not_settled() {
    let env = Env::start().await;
    let mut serials = Vec::new();
    for n in 1..=3 {
        let customer = extra_customer(n);
        let channel_serial = format!("OM000{n}");
        let (answer, serial) = env
            .pay_ok(&PayArgs::mobile(
                &channel_serial,
                &customer,
                PAYER_A,
                extra_customer_due_fen(n),
            ))
            .await;
        assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
        env.wait_state(&serial, PaymentState::Succeeded).await;
        serials.push(serial);
    }
    let omitted = serials.get(1).expect("three payments").clone();
    env.power.omit_from_daily_file(business_date(), &omitted);

    drop_files(&env);
    let run = reconcile(&env).await;
    assert_eq!(
        run.result.differences.len(),
        1,
        "{:?}",
        run.result.differences
    );
    let difference = run.result.differences.first().expect("one difference");
    assert_eq!(difference.kind, DifferenceKind::HubSuccessMissingAtPartner);
    assert_eq!(difference.hub_serial, omitted);
    assert_eq!(
        difference.hub_amount.map(|m| m.fen()),
        Some(extra_customer_due_fen(2))
    );
    assert_eq!(run.result.matched.len(), 2);
    // Only what all three sides agree on is settled; the difference waits for an operator.
    let settled_fen = extra_customer_due_fen(1) + extra_customer_due_fen(3);
    assert_eq!(run.settlement.amount_fen, settled_fen);
    assert_eq!(env.balance_fen(SETTLEMENT), settled_fen);
    assert_eq!(env.balance_fen(SUSPENSE), extra_customer_due_fen(2));
}
