//! `hub demo` as the README promises it: a (short) business day across every partner of the
//! demo, reconciled T+1, with every difference explained by a fault the day recorded.

use hub::demo::{run, DemoOptions};

/// Every partner instance the demo configures: 郴电国际 power, the four county water companies,
/// the gas company onboarded by configuration, 攸县 cable TV, 新晃 medical insurance and the
/// tobacco bureau.
const EXPECTED_ROWS: &[(&str, &str)] = &[
    ("CDGJ", "NSH43102"),
    ("CATV", "YX0001"),
    ("CXJM", "medins-xinhuang"),
    ("GAS", "gas-zhongfang"),
    ("TOBACCO", "430600"),
    ("WATER", "water-jiahe"),
    ("WATER", "water-xinhuang"),
    ("WATER", "water-yizhang"),
    ("WATER", "water-zixing"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_day_reconciles_every_partner_with_nothing_unexplained() {
    let out = tempfile::tempdir().expect("out dir");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date");
    let summary = run(DemoOptions {
        out: out.path().to_path_buf(),
        payments: 500,
        date: Some(date),
        seed: 7,
        progress: false,
    })
    .await
    .expect("demo runs");
    assert!(summary.ledger_balanced, "core ledger no longer balances");
    assert!(
        summary.scenario_mismatches.is_empty(),
        "{:?}",
        summary.scenario_mismatches
    );
    for (payee, instance) in EXPECTED_ROWS {
        let row = summary
            .partners
            .iter()
            .find(|p| p.payee == *payee && p.instance == *instance)
            .unwrap_or_else(|| panic!("no summary row for {payee} {instance}"));
        assert!(
            row.payments_succeeded > 0,
            "{payee} {instance}: no payment succeeded"
        );
        assert_eq!(row.unexplained, 0, "{payee} {instance}: {row:?}");
        if *payee == "WATER" {
            // deploy/demo/partners.toml: 6 agreements per water company, signed the day before
            // from the counter; all 6 customers owe, so the day's batch debits 6.
            assert_eq!(row.agreements_signed, 6, "{instance}");
            // Withheld lines are reconciled with the rest: were any unmatched, `unexplained`
            // above would count it.
            assert_eq!(row.withheld, 6, "{instance}");
        }
        assert_eq!(row.business_date, "20261202");
        assert!(
            out.path().join("reports").exists() && std::path::Path::new(&row.report_html).exists(),
            "{payee} {instance}: report missing"
        );
    }
    assert_eq!(summary.partners.len(), EXPECTED_ROWS.len());
    assert_eq!(summary.unexplained_total(), 0);
    assert!(out.path().join("summary.json").exists());
}
