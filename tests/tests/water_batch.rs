//! County water batch withholding (spec 02, 批量代扣) end to end against the core simulator over
//! loopback and a real SQLite journal. The DK files are written by hand from the spec, and every
//! expected DKR byte and balance is worked out here from those files and the account fixture.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::{ManualClock, SharedClock};
use codecs::Money;
use fixtures::core_sim::{
    self, AccountFixture, AcctClass, AcctStatus, CoreFault, CoreSimConfig, CoreSimHandle, FaultRule,
};
use hub::batch::{
    Agreement, AgreementRegister, BatchError, FileResult, RunOutcome, WaterWithholdConfig,
    WaterWithholdJob,
};
use hub::core_client::{CoreClient, CoreConfig, TransferOutcome};
use hub::journal::Journal;

const INSTANCE: &str = "water-xinhuang";
const CODE: &str = "431227";
const SUSPENSE: &str = "9003143122700001";
const SETTLEMENT: &str = "9003243122700001";

/// Line 1 and 7: 张三, signed, rich.
const ACCT_ZHANG: &str = "6230901000000000011";
const ZHANG_OPENING_FEN: i64 = 1_000_000;
/// Line 3: 李四 signed with this account, the file names another.
const ACCT_LI: &str = "6230901000000000029";
const ACCT_LI_OTHER: &str = "6230901000000000045";
/// Line 4: 王五, 10.00 yuan only.
const ACCT_WANG: &str = "6230901000000000037";
const WANG_OPENING_FEN: i64 = 1_000;
/// Line 5: 赵六, frozen.
const ACCT_ZHAO: &str = "6230901000000000052";
const ZHAO_OPENING_FEN: i64 = 500_000;
/// Line 6: 孙七, signed.
const ACCT_SUN: &str = "6230901000000000060";
const SUN_OPENING_FEN: i64 = 200_000;

fn batch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).expect("date")
}

fn account(
    acct_no: &str,
    name: &str,
    class: AcctClass,
    status: AcctStatus,
    fen: i64,
) -> AccountFixture {
    AccountFixture {
        acct_no: acct_no.into(),
        name: name.into(),
        class,
        status,
        balance: Money::from_fen(fen),
        open_branch: "000101".into(),
        id_type: None,
        id_no: None,
        interest_bearing: false,
    }
}

struct Env {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    core: CoreSimHandle,
    journal: Journal,
}

impl Env {
    async fn start() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let start = NaiveDateTime::new(
            batch_date(),
            NaiveTime::from_hms_opt(10, 0, 0).expect("time"),
        );
        let clock = ManualClock::new(start);
        let shared: SharedClock = clock.clone();
        let accounts = vec![
            account(SETTLEMENT, "新晃水司结算户", AcctClass::I, AcctStatus::N, 0),
            account(
                ACCT_ZHANG,
                "张三",
                AcctClass::P,
                AcctStatus::N,
                ZHANG_OPENING_FEN,
            ),
            account(ACCT_LI, "李四", AcctClass::P, AcctStatus::N, 300_000),
            account(ACCT_LI_OTHER, "李四", AcctClass::P, AcctStatus::N, 300_000),
            account(
                ACCT_WANG,
                "王五",
                AcctClass::P,
                AcctStatus::N,
                WANG_OPENING_FEN,
            ),
            account(
                ACCT_ZHAO,
                "赵六",
                AcctClass::P,
                AcctStatus::F,
                ZHAO_OPENING_FEN,
            ),
            account(
                ACCT_SUN,
                "孙七",
                AcctClass::P,
                AcctStatus::N,
                SUN_OPENING_FEN,
            ),
            account(SUSPENSE, "代收水费过渡户", AcctClass::I, AcctStatus::N, 0),
        ];
        let core = core_sim::start(
            CoreSimConfig {
                accounts,
                ..CoreSimConfig::default()
            },
            shared,
        )
        .await
        .expect("core simulator starts");
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let journal = Journal::open(&url).await.expect("journal opens");
        std::fs::create_dir_all(dir.path().join("sftp/in")).expect("in dir");
        let env = Env {
            dir,
            clock,
            core,
            journal,
        };
        env.sign_agreements().await;
        env
    }

    /// The register as 201 answers of earlier days left it.
    async fn sign_agreements(&self) {
        let shared: SharedClock = self.clock.clone();
        let register = AgreementRegister::new(self.journal.clone(), shared);
        let signed =
            |customer_no: &str, agreement_no: &str, account_no: &str, effective: u32| Agreement {
                instance: INSTANCE.into(),
                agreement_no: agreement_no.into(),
                customer_no: customer_no.into(),
                account_no: account_no.into(),
                effective_date: NaiveDate::from_ymd_opt(2026, 11, effective).expect("date"),
                end_date: None,
            };
        for agreement in [
            signed("0800000001", "XH26110100000001", ACCT_ZHANG, 2),
            signed("0800000003", "XH26110100000003", ACCT_LI, 2),
            signed("0800000004", "XH26110100000004", ACCT_WANG, 2),
            signed("0800000005", "XH26110100000005", ACCT_ZHAO, 2),
            signed("0800000006", "XH26110100000006", ACCT_SUN, 30),
        ] {
            register
                .record_signed(&agreement)
                .await
                .expect("agreement recorded");
        }
    }

    fn sftp(&self) -> PathBuf {
        self.dir.path().join("sftp")
    }

    fn core_client(&self) -> CoreClient {
        let shared: SharedClock = self.clock.clone();
        CoreClient::new(
            CoreConfig {
                host: "127.0.0.1".into(),
                port: self.core.addr.port(),
                connect_timeout_ms: 1_000,
                answer_timeout_ms: 2_000,
                branch_id: "000101".into(),
                teller_id: "MBP001".into(),
            },
            shared,
        )
    }

    fn job(&self, stop_after_debits: Option<usize>) -> WaterWithholdJob {
        let shared: SharedClock = self.clock.clone();
        let core = self.core_client();
        let mut config = WaterWithholdConfig::new(INSTANCE, CODE, SUSPENSE, &self.sftp());
        config.progress = false;
        config.resolve_attempts = 3;
        config.resolve_interval_ms = 50;
        config.stop_after_debits = stop_after_debits;
        WaterWithholdJob::new(self.journal.clone(), core, shared, config)
    }

    fn drop_dk(&self, bytes: &[u8]) {
        let dir = self.sftp().join("in");
        let flag = dir.join("DK43122720261203.ok");
        let _ = std::fs::remove_file(&flag);
        std::fs::write(dir.join("DK43122720261203.txt"), bytes).expect("DK written");
        std::fs::write(&flag, b"").expect("flag written");
    }

    fn dkr(&self) -> Vec<u8> {
        let out = self.sftp().join("out");
        assert!(
            out.join("DKR43122720261203.ok").exists(),
            "the DKR flag is written"
        );
        std::fs::read(out.join("DKR43122720261203.txt")).expect("DKR read")
    }

    fn balance_fen(&self, acct_no: &str) -> i64 {
        self.core.balance(acct_no).expect("known account").fen()
    }
}

fn gbk(text: &str) -> Vec<u8> {
    codecs::text::encode(text, codecs::text::Charset::Gbk).expect("GBK")
}

/// Seven lines, Total = 166.32 + 35.20 + 40.00 + 35.20 + 12.50 + 88.00 + 166.32 = 543.54.
fn dk_file() -> Vec<u8> {
    gbk(concat!(
        "431227|20261203|2026120301|7|543.54\r\n",
        // signed: debited
        "1|0800000001|张三|XH26110100000001|6230901000000000011|202611|166.32\r\n",
        // no agreement in the register: 304
        "2|0800000002|钱二|XH26110100000002|6230901000000000099|202611|35.20\r\n",
        // signed with another account: 305
        "3|0800000003|李四|XH26110100000003|6230901000000000045|202611|40.00\r\n",
        // 10.00 yuan in the account: E10001 -> 301
        "4|0800000004|王五|XH26110100000004|6230901000000000037|202611|35.20\r\n",
        // frozen: E10002 -> 302
        "5|0800000005|赵六|XH26110100000005|6230901000000000052|202611|12.50\r\n",
        // signed: debited
        "6|0800000006|孙七|XH26110100000006|6230901000000000060|202611|88.00\r\n",
        // a second line for 0800000001 and 202611: 306
        "7|0800000001|张三|XH26110100000001|6230901000000000011|202611|166.32\r\n",
    ))
}

/// The DKR the spec defines for [`dk_file`]: 2 successes (254.32), 5 failures (289.22).
fn expected_dkr() -> Vec<u8> {
    gbk(concat!(
        "431227|20261203|2026120301|000|7|543.54|2|254.32|5|289.22\r\n",
        "1|0800000001|XH26110100000001|6230901000000000011|166.32|000|成功|20261203D227000001|20261203\r\n",
        "2|0800000002|XH26110100000002|6230901000000000099|35.20|304|未签约或协议无效||\r\n",
        "3|0800000003|XH26110100000003|6230901000000000045|40.00|305|扣款账号与协议不符||\r\n",
        "4|0800000004|XH26110100000004|6230901000000000037|35.20|301|余额不足|20261203D227000004|\r\n",
        "5|0800000005|XH26110100000005|6230901000000000052|12.50|302|账户冻结或止付|20261203D227000005|\r\n",
        "6|0800000006|XH26110100000006|6230901000000000060|88.00|000|成功|20261203D227000006|20261203\r\n",
        "7|0800000001|XH26110100000001|6230901000000000011|166.32|306|重复扣款||\r\n",
    ))
}

fn assert_money_moved_once(env: &Env) {
    assert_eq!(env.core.posting_count(), 2, "two debits posted, once each");
    assert_eq!(env.balance_fen(ACCT_ZHANG), ZHANG_OPENING_FEN - 16_632);
    assert_eq!(env.balance_fen(ACCT_SUN), SUN_OPENING_FEN - 8_800);
    assert_eq!(env.balance_fen(ACCT_WANG), WANG_OPENING_FEN);
    assert_eq!(env.balance_fen(ACCT_ZHAO), ZHAO_OPENING_FEN);
    assert_eq!(env.balance_fen(SUSPENSE), 16_632 + 8_800);
}

fn written(outcome: Result<RunOutcome, BatchError>) -> hub::batch::BatchReport {
    match outcome {
        Ok(RunOutcome::Written(report)) => report,
        other => panic!("expected a written result, got {other:?}"),
    }
}

fn assert_path(report: &hub::batch::BatchReport, sftp: &Path) {
    assert_eq!(
        report.result_path,
        sftp.join("out").join("DKR43122720261203.txt")
    );
}

#[tokio::test]
async fn a_batch_debits_each_allowed_line_once_and_writes_the_spec_result() {
    let env = Env::start().await;
    // No flag yet: the file is not read.
    std::fs::write(env.sftp().join("in/DK43122720261203.txt"), dk_file()).expect("DK");
    let outcome = env.job(None).run(batch_date()).await;
    assert!(matches!(outcome, Ok(RunOutcome::NotReady)), "{outcome:?}");
    assert_eq!(env.core.posting_count(), 0);

    env.drop_dk(&dk_file());
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Processed);
    assert!(!report.replayed);
    assert_path(&report, &env.sftp());
    assert_eq!(env.dkr(), expected_dkr());
    assert_money_moved_once(&env);

    // A re-drop of the same content: the same bytes again, nothing posted.
    env.drop_dk(&dk_file());
    let report = written(env.job(None).run(batch_date()).await);
    assert!(report.replayed);
    assert_eq!(env.dkr(), expected_dkr());
    assert_money_moved_once(&env);

    // The same BatchNo with other content: 903, header-only, nothing posted.
    let other = gbk(concat!(
        "431227|20261203|2026120301|1|88.00\r\n",
        "1|0800000006|孙七|XH26110100000006|6230901000000000060|202611|88.00\r\n",
    ));
    env.drop_dk(&other);
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::OtherContent);
    assert_eq!(
        env.dkr(),
        b"431227|20261203|2026120301|903|1|88.00|0|0.00|1|88.00\r\n".to_vec()
    );
    assert_money_moved_once(&env);
}

/// A crash between a line's 8002 and the journaling of its answer leaves the outcome unknown:
/// spec 02 resolves it with 8004 "before the line is written: S → 000 …; N → 8003 to fence the
/// key, then 399; R → 399", never by sending the 8002 again.
#[tokio::test]
async fn a_crash_in_the_middle_resumes_without_a_second_debit() {
    let env = Env::start().await;
    // Line 1's 8002 is lost on its way: the core never sees it.
    env.core.arm(FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(ACCT_ZHANG.into()),
        fault: CoreFault::DropBeforeProcessing,
        times: 1,
    });
    env.drop_dk(&dk_file());
    // Stops right after line 1's 8002 (journaled as sent), before its outcome is journaled.
    let outcome = env.job(Some(1)).run(batch_date()).await;
    assert!(
        matches!(outcome, Err(BatchError::Interrupted)),
        "{outcome:?}"
    );
    assert_eq!(env.core.posting_count(), 0);
    assert!(!env.sftp().join("out/DKR43122720261203.ok").exists());

    // The next run resolves line 1 (8004 N, 8003 fences), then sends lines 4, 5 and 6 and stops
    // right after line 6's 8002 posted, before journaling its answer.
    let outcome = env.job(Some(3)).run(batch_date()).await;
    assert!(
        matches!(outcome, Err(BatchError::Interrupted)),
        "{outcome:?}"
    );
    assert_eq!(env.core.posting_count(), 1, "line 6 posted");

    // The last run finds line 6 posted (8004 S): 000 with the posting's CoreDate, no new debit.
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Processed);
    // 1 success (88.00); 6 failures: 543.54 - 88.00 = 455.54.
    let expected = gbk(concat!(
        "431227|20261203|2026120301|000|7|543.54|1|88.00|6|455.54\r\n",
        "1|0800000001|XH26110100000001|6230901000000000011|166.32|399|其他错误|20261203D227000001|\r\n",
        "2|0800000002|XH26110100000002|6230901000000000099|35.20|304|未签约或协议无效||\r\n",
        "3|0800000003|XH26110100000003|6230901000000000045|40.00|305|扣款账号与协议不符||\r\n",
        "4|0800000004|XH26110100000004|6230901000000000037|35.20|301|余额不足|20261203D227000004|\r\n",
        "5|0800000005|XH26110100000005|6230901000000000052|12.50|302|账户冻结或止付|20261203D227000005|\r\n",
        "6|0800000006|XH26110100000006|6230901000000000060|88.00|000|成功|20261203D227000006|20261203\r\n",
        "7|0800000001|XH26110100000001|6230901000000000011|166.32|306|重复扣款||\r\n",
    ));
    assert_eq!(env.dkr(), expected);
    let assert_money = |env: &Env| {
        assert_eq!(
            env.core.posting_count(),
            1,
            "line 6 debited once, nothing else"
        );
        assert_eq!(env.balance_fen(ACCT_ZHANG), ZHANG_OPENING_FEN);
        assert_eq!(env.balance_fen(ACCT_SUN), SUN_OPENING_FEN - 8_800);
        assert_eq!(env.balance_fen(SUSPENSE), 8_800);
    };
    assert_money(&env);

    // Line 1's key is fenced: the very 8002 arriving late at the core posts nothing.
    let late = env
        .core_client()
        .transfer(
            "20261203D227000001",
            batch_date(),
            ACCT_ZHANG,
            SUSPENSE,
            Money::from_fen(16_632),
            "水费代扣0800000001",
            CODE,
        )
        .await;
    assert!(
        matches!(&late, TransferOutcome::Refused { ret_code, .. } if ret_code == "E20002"),
        "{late:?}"
    );
    assert_money(&env);

    // And once more after the end: the same bytes, nothing posted.
    let report = written(env.job(None).run(batch_date()).await);
    assert!(report.replayed);
    assert_eq!(env.dkr(), expected);
    assert_money(&env);
}

#[tokio::test]
async fn a_bad_total_is_answered_902_and_debits_nobody() {
    let env = Env::start().await;
    let bad = gbk(concat!(
        "431227|20261203|2026120301|2|254.33\r\n",
        "1|0800000001|张三|XH26110100000001|6230901000000000011|202611|166.32\r\n",
        "2|0800000006|孙七|XH26110100000006|6230901000000000060|202611|88.00\r\n",
    ));
    env.drop_dk(&bad);
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Totals);
    assert_eq!(
        env.dkr(),
        b"431227|20261203|2026120301|902|2|254.33|0|0.00|2|254.33\r\n".to_vec()
    );
    assert_eq!(env.core.posting_count(), 0);

    // The corrected file under the same BatchNo is processed: the 902 debited nobody.
    let good = gbk(concat!(
        "431227|20261203|2026120301|2|254.32\r\n",
        "1|0800000001|张三|XH26110100000001|6230901000000000011|202611|166.32\r\n",
        "2|0800000006|孙七|XH26110100000006|6230901000000000060|202611|88.00\r\n",
    ));
    env.drop_dk(&good);
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Processed);
    assert_eq!(
        env.dkr(),
        gbk(concat!(
            "431227|20261203|2026120301|000|2|254.32|2|254.32|0|0.00\r\n",
            "1|0800000001|XH26110100000001|6230901000000000011|166.32|000|成功|20261203D227000001|20261203\r\n",
            "2|0800000006|XH26110100000006|6230901000000000060|88.00|000|成功|20261203D227000002|20261203\r\n",
        ))
    );
    assert_eq!(env.core.posting_count(), 2);
}

#[tokio::test]
async fn a_malformed_file_is_answered_901_and_a_header_only_file_000() {
    let env = Env::start().await;
    // LF line ends.
    env.drop_dk(b"431227|20261203|2026120301|0|0.00\n");
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Format);
    assert_eq!(
        env.dkr(),
        b"431227|20261203|2026120301|901|0|0.00|0|0.00|0|0.00\r\n".to_vec()
    );
    env.drop_dk(b"431227|20261203|2026120301|0|0.00\r\n");
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Processed);
    assert_eq!(
        env.dkr(),
        b"431227|20261203|2026120301|000|0|0.00|0|0.00|0|0.00\r\n".to_vec()
    );
    assert_eq!(env.core.posting_count(), 0);
}

#[tokio::test]
async fn an_unknown_debit_is_resolved_by_8004_during_the_run() {
    let env = Env::start().await;
    // Line 1 posts but its answer is lost: 8004 says S, the line is 000 with the posting's date.
    env.core.arm(FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(ACCT_ZHANG.into()),
        fault: CoreFault::DropAfterProcessing,
        times: 1,
    });
    // Line 6 never reaches the ledger: 8004 says N, 8003 fences the key, the line is 399.
    env.core.arm(FaultRule {
        tran_code: "8002".into(),
        debit_acct: Some(ACCT_SUN.into()),
        fault: CoreFault::DropBeforeProcessing,
        times: 1,
    });
    env.drop_dk(&dk_file());
    let report = written(env.job(None).run(batch_date()).await);
    assert_eq!(report.file_result, FileResult::Processed);
    assert_eq!(
        env.dkr(),
        gbk(concat!(
            "431227|20261203|2026120301|000|7|543.54|1|166.32|6|377.22\r\n",
            "1|0800000001|XH26110100000001|6230901000000000011|166.32|000|成功|20261203D227000001|20261203\r\n",
            "2|0800000002|XH26110100000002|6230901000000000099|35.20|304|未签约或协议无效||\r\n",
            "3|0800000003|XH26110100000003|6230901000000000045|40.00|305|扣款账号与协议不符||\r\n",
            "4|0800000004|XH26110100000004|6230901000000000037|35.20|301|余额不足|20261203D227000004|\r\n",
            "5|0800000005|XH26110100000005|6230901000000000052|12.50|302|账户冻结或止付|20261203D227000005|\r\n",
            "6|0800000006|XH26110100000006|6230901000000000060|88.00|399|其他错误|20261203D227000006|\r\n",
            "7|0800000001|XH26110100000001|6230901000000000011|166.32|306|重复扣款||\r\n",
        ))
    );
    assert_eq!(env.core.posting_count(), 1);
    assert_eq!(env.balance_fen(ACCT_ZHANG), ZHANG_OPENING_FEN - 16_632);
    assert_eq!(env.balance_fen(ACCT_SUN), SUN_OPENING_FEN);
    assert_eq!(env.balance_fen(SUSPENSE), 16_632);
}

/// T+1 after a batch: the water company lists the batch's successes as Type 3 lines (TxDate =
/// BatchDate, BankSerial = the result line's, no PartnerSerial, Channel 5, spec 02 "Daily files");
/// reconciliation matches them to the batch journal and the core file, finds no difference, and
/// settles their sum (166.32 + 88.00 = 254.32) once.
#[tokio::test]
async fn batch_successes_reconcile_with_the_partner_and_core_files() {
    let env = Env::start().await;
    env.drop_dk(&dk_file());
    written(env.job(None).run(batch_date()).await);
    assert_money_moved_once(&env);

    let shared: SharedClock = env.clock.clone();
    let core = CoreClient::new(
        CoreConfig {
            host: "127.0.0.1".into(),
            port: env.core.addr.port(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms: 2_000,
            branch_id: "000101".into(),
            teller_id: "MBP001".into(),
        },
        shared.clone(),
    );
    let adapter =
        adapters::fixedlen::FixedLenAdapter::from_config(adapters::fixedlen::FixedLenConfig {
            instance: INSTANCE.into(),
            profile_builtin: Some("water".into()),
            profile_file: None,
            company_code: CODE.into(),
            host: "127.0.0.1".into(),
            port: 9,
            mac_key_hex: "11223344556677889900AABBCCDDEEFF".into(),
            suspense_account: SUSPENSE.into(),
            settlement_account: SETTLEMENT.into(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms: None,
            answer_timeouts_ms: Default::default(),
            file_dir: None,
        })
        .expect("water adapter");
    let link = hub::engine::PartnerLink {
        purpose: CODE.into(),
        adapter: Arc::new(adapter),
        suspense_account: SUSPENSE.into(),
        settlement_account: SETTLEMENT.into(),
    };
    let engine = hub::engine::Engine::new(
        env.journal.clone(),
        core,
        vec![link.clone()],
        shared,
        hub::engine::EngineConfig::default(),
    );

    // The files of AcctDate 20261203, written here from the spec's layouts.
    let files = env.dir.path().join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    env.clock.advance_to(NaiveDateTime::new(
        NaiveDate::from_ymd_opt(2026, 12, 4).expect("date"),
        NaiveTime::from_hms_opt(6, 0, 0).expect("time"),
    ));
    env.core
        .write_daily_file(batch_date(), &files)
        .expect("core file");
    std::fs::write(
        files.join("ZZ43122720261203.txt"),
        gbk("431227|20261203|0|0.00|0|0.00|2|254.32|2|254.32\r\n"),
    )
    .expect("totals file");
    std::fs::write(
        files.join("MX43122720261203.txt"),
        gbk(concat!(
            "20261203|3|20261203|20261203D227000001||0800000001|166.32|5\r\n",
            "20261203|3|20261203|20261203D227000006||0800000006|88.00|5\r\n",
        )),
    )
    .expect("detail file");
    let reports = env.dir.path().join("reports");
    // Spec 02: DZ…ok is "the only flag: it marks both files complete". Without it the day has
    // not arrived: nothing is read, nothing settled.
    let flag = files.join("DZ43122720261203.ok");
    let early = hub::recon_job::run(&engine, &link, batch_date(), &files, &reports).await;
    assert!(
        matches!(&early, Err(hub::recon_job::ReconError::PartnerFileMissing(path)) if *path == flag),
        "{:?}",
        early.as_ref().err()
    );
    assert_eq!(env.balance_fen(SETTLEMENT), 0);
    std::fs::write(&flag, b"").expect("flag written");
    let run = hub::recon_job::run(&engine, &link, batch_date(), &files, &reports)
        .await
        .expect("reconciliation runs");
    assert!(
        run.result.differences.is_empty(),
        "{:?}",
        run.result.differences
    );
    assert_eq!(run.result.matched.len(), 2);
    assert_eq!(run.settlement.state, "POSTED");
    assert_eq!(run.settlement.amount_fen, 16_632 + 8_800);
    assert_eq!(env.balance_fen(SETTLEMENT), 16_632 + 8_800);
    assert_eq!(env.balance_fen(SUSPENSE), 0);
}

/// `hub serve`'s poll (spec 02: every 10 minutes 06:00–12:00): a dropped file is run at the next
/// poll, later polls debit nobody again, and a file dropped after 12:00 is left to an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_runs_a_dropped_file_once_in_the_window_and_leaves_a_late_one() {
    let env = Env::start().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shared: SharedClock = env.clock.clone();
    let poller = tokio::spawn(hub::batch::schedule::run_poller(
        env.job(None),
        CODE.into(),
        hub::batch::schedule::WithholdingConfig {
            instance: INSTANCE.into(),
            dir: env.sftp(),
            check_interval_ms: 20,
            serial_code: None,
        },
        shared,
        stopped,
    ));
    let dkr_flag = env.sftp().join("out").join("DKR43122720261203.ok");
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // 10:00, a poll slot: the file dropped now is run at once.
    env.drop_dk(&dk_file());
    wait_for("the poll runs the dropped file", &|| dkr_flag.exists());
    assert_eq!(env.dkr(), expected_dkr());
    assert_money_moved_once(&env);

    // The next slots see the same flag: nothing is run or debited again.
    for _ in 0..3 {
        env.clock.advance(chrono::Duration::minutes(10));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_money_moved_once(&env);

    // 12:30: a new flag after the window waits for an operator: no result is written.
    env.clock.advance_to(NaiveDateTime::new(
        batch_date(),
        NaiveTime::from_hms_opt(12, 30, 0).expect("time"),
    ));
    std::fs::remove_file(&dkr_flag).expect("flag removed");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    env.drop_dk(&dk_file());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!dkr_flag.exists(), "a late file is not run automatically");
    assert_money_moved_once(&env);
    let _ = stop.send(true);
    poller.await.expect("poller stops");
}
