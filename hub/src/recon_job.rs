//! T+1 for one partner instance and business date: read the partner's and the core's files from
//! the drop folder, map the journal, reconcile, write the reports, and post the settlement once.

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use codecs::clock::yyyymmdd;
use codecs::Money;
use reconciliation::{HubRecord, HubState, PartnerRecord, ReconInput, ReconResult};
use serde::Serialize;

use crate::core_client::TransferOutcome;
use crate::engine::{Engine, PartnerLink};
use crate::journal::PaymentRow;
use crate::state::PaymentState;

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error("partner file {0} is missing: this partner-date does not settle until it arrives")]
    PartnerFileMissing(PathBuf),
    #[error("core file {0} is missing")]
    CoreFileMissing(PathBuf),
    #[error("partner file refused: {0}")]
    PartnerFile(String),
    #[error("core file refused: {0}")]
    CoreFile(String),
    #[error("partner file is for {found}, not {expected}")]
    WrongDate {
        expected: NaiveDate,
        found: NaiveDate,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

impl ReconError {
    pub fn code(&self) -> &'static str {
        match self {
            ReconError::PartnerFileMissing(_) => "RECON_PARTNER_FILE_MISSING",
            ReconError::CoreFileMissing(_) => "RECON_CORE_FILE_MISSING",
            ReconError::PartnerFile(_) => "RECON_PARTNER_FILE_BAD",
            ReconError::CoreFile(_) => "RECON_CORE_FILE_BAD",
            ReconError::WrongDate { .. } => "RECON_WRONG_DATE",
            ReconError::Io(_) => "RECON_IO",
            ReconError::Journal(_) => "RECON_JOURNAL",
        }
    }
}

/// What became of the settlement instruction.
#[derive(Clone, Debug, Serialize)]
pub struct SettlementOutcome {
    pub seq_no: String,
    pub amount_fen: i64,
    /// POSTED, NOTHING_TO_SETTLE, REFUSED (an operator must look) or UNKNOWN (retried by a rerun).
    pub state: String,
    pub core_seq_no: Option<String>,
    pub message: Option<String>,
    /// Records the posted (or pending) amount covers: the first run's count on a rerun.
    pub count: usize,
    /// An earlier run had already acted on this SeqNo: this run posted nothing.
    pub earlier_run: bool,
}

impl SettlementOutcome {
    fn execution(&self) -> reconciliation::SettlementExecution {
        reconciliation::SettlementExecution {
            state: self.state.clone(),
            amount: Money::from_fen(self.amount_fen),
            count: self.count,
            core_seq_no: self.core_seq_no.clone(),
            earlier_run: self.earlier_run,
            message: self.message.clone(),
        }
    }
}

pub struct ReconRun {
    pub result: ReconResult,
    pub html: PathBuf,
    pub csv: PathBuf,
    pub settlement: SettlementOutcome,
    /// The partner's file was missing or refused and the run went on without it (partners whose
    /// file only confirms): the operator's alert text, also the report's first 提示 line.
    pub partner_file_alert: Option<String>,
}

fn hub_state(state: PaymentState) -> HubState {
    match state {
        PaymentState::Succeeded => HubState::Succeeded,
        PaymentState::Reversed => HubState::Reversed,
        PaymentState::Cancelled => HubState::Cancelled,
        PaymentState::CoreFailed => HubState::Failed,
        _ => HubState::InDoubt,
    }
}

fn hub_record(row: &PaymentRow) -> HubRecord {
    HubRecord {
        hub_serial: row.hub_serial.clone(),
        tx_date: row.tx_date,
        channel: row.channel.clone(),
        customer_no: row.customer_no.clone(),
        amount: row.amount,
        state: hub_state(row.state),
        acct_date: row.acct_date,
        core_seq_no: row.core_seq_no.clone(),
        core_date: row.core_date,
        reversal_seq_no: row.reversal_seq_no.clone(),
    }
}

/// bank_serial, customer_no, amount_fen, state, result, core_seq_no, core_date of a batch line.
type BatchRow = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The batch withholding lines of `business_date` (spec 02: the water company writes them off with
/// AcctDate = BatchDate and lists them as Type 3): each line that was (or may have been) debited is
/// a hub record like a channel payment, keyed by its BankSerial.
async fn batch_records(
    engine: &Engine,
    instance: &str,
    business_date: NaiveDate,
) -> Result<Vec<HubRecord>, ReconError> {
    let rows: Vec<BatchRow> =
        sqlx::query_as(
            "SELECT l.bank_serial, l.customer_no, l.amount_fen, l.state, l.result, l.core_seq_no,
                    l.core_date
             FROM batch_lines l JOIN batch_runs r ON r.instance = l.instance AND r.batch_no = l.batch_no
             WHERE l.instance = ? AND r.batch_date = ? AND l.bank_serial IS NOT NULL
             ORDER BY l.seq_no",
        )
        .bind(instance)
        .bind(yyyymmdd(business_date))
        .fetch_all(engine.journal().pool())
        .await
        .map_err(crate::journal::JournalError::from)?;
    Ok(rows
        .into_iter()
        .map(
            |(serial, customer_no, amount_fen, state, result, core_seq_no, core_date)| {
                let state = match (state.as_str(), result.as_deref()) {
                    ("DONE", Some("000")) => HubState::Succeeded,
                    ("DONE", _) => HubState::Failed,
                    _ => HubState::InDoubt,
                };
                HubRecord {
                    hub_serial: serial,
                    tx_date: business_date,
                    channel: "BATCH".into(),
                    customer_no,
                    amount: Money::from_fen(amount_fen),
                    acct_date: (state == HubState::Succeeded).then_some(business_date),
                    state,
                    core_seq_no,
                    core_date: core_date.as_deref().and_then(codecs::clock::parse_yyyymmdd),
                    reversal_seq_no: None,
                }
            },
        )
        .collect())
}

/// Where a run leaves the records that wait for a later core file, for the next day's run.
pub fn awaiting_path(
    report_dir: &Path,
    payee: &str,
    instance: &str,
    business_date: NaiveDate,
) -> PathBuf {
    report_dir.join(format!(
        "AWAITING_{payee}_{instance}_{}.json",
        yyyymmdd(business_date)
    ))
}

pub fn core_file_path(dir: &Path, core_date: NaiveDate) -> PathBuf {
    dir.join(format!("CORE_MBP_{}.txt", yyyymmdd(core_date)))
}

/// Reconciles one partner instance for `business_date` and settles what agrees.
pub async fn run(
    engine: &Engine,
    link: &PartnerLink,
    business_date: NaiveDate,
    file_dir: &Path,
    report_dir: &Path,
) -> Result<ReconRun, ReconError> {
    let adapter = &link.adapter;
    let confirms_only = adapter.file_confirms_only();
    // Spec 09: the bureau's money is what is paid in the journal and posted at core, "whether
    // or not the bureau's file lists them yet". For such a partner a missing or refused file is
    // an alert and a report line, and journal and core are still reconciled and settled.
    let (daily, partner_files, partner_file_alert) =
        match partner_file(adapter.as_ref(), business_date, file_dir).await {
            Ok((daily, files)) => (Some(daily), files, None),
            Err(e) if confirms_only => {
                tracing::error!(
                    instance = adapter.instance(),
                    code = e.code(),
                    error = %e,
                    "对方对账文件未到或无法使用：仅核对本方与核心，已入账缴费照常结算。"
                );
                let alert = format!(
                    "[{}] 对方对账文件未到或无法使用（{e}）：本次仅核对本方与核心，\
                     已入账缴费照常结算，文件到达后请重新对账",
                    e.code()
                );
                (None, Vec::new(), Some(alert))
            }
            Err(e) => return Err(e),
        };
    if daily.is_some() {
        if let Err(e) = adapter
            .daily_files_read(business_date, &partner_files)
            .await
        {
            tracing::error!(instance = adapter.instance(), code = e.code(), error = %e, "Partner file follow-up failed.");
        }
    }
    let records = daily.as_ref().map_or(&[][..], |d| d.records.as_slice());
    // A confirming file may list, late, a payment the journal gives an earlier date: it confirms
    // that payment (already settled with its own date) and is no line of this one.
    let mut confirmations_of_earlier_days = std::collections::HashSet::new();
    if confirms_only {
        for r in records {
            if let Some(row) = engine.journal().get(&r.bank_serial).await? {
                let earlier = row.acct_date.is_some_and(|d| d < business_date);
                if earlier && row.state == crate::state::PaymentState::Succeeded {
                    confirmations_of_earlier_days.insert(r.bank_serial.clone());
                }
            }
        }
    }
    let partner: Vec<PartnerRecord> = records
        .iter()
        .filter(|r| !confirmations_of_earlier_days.contains(&r.bank_serial))
        .map(|r| PartnerRecord {
            line_no: r.line_no,
            tx_date: r.tx_date,
            bank_serial: r.bank_serial.clone(),
            partner_serial: r.partner_serial.clone(),
            customer_no: r.customer_no.clone(),
            amount: r.amount,
            acct_date: business_date,
        })
        .collect();

    // The core file of D is required; D+1's is used when present (payments after the core's
    // 23:00 switch that still belong to the partner's AcctDate D).
    let mut core = Vec::new();
    let next = business_date.checked_add_days(Days::new(1));
    for (date, required) in [(Some(business_date), true), (next, false)] {
        let Some(date) = date else { continue };
        let path = core_file_path(file_dir, date);
        match std::fs::read(&path) {
            Ok(bytes) => core.push(
                reconciliation::core_file::parse_for_date(&bytes, date)
                    .map_err(|e| ReconError::CoreFile(e.to_string()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReconError::CoreFileMissing(path))
            }
            Err(e) => return Err(e.into()),
        }
    }

    let rows = engine
        .journal()
        .for_reconciliation(adapter.payee(), adapter.instance(), business_date)
        .await?;
    let batch = batch_records(engine, adapter.instance(), business_date).await?;
    let input = ReconInput {
        payee: adapter.payee().to_string(),
        instance: adapter.instance().to_string(),
        business_date,
        hub: rows.iter().map(hub_record).chain(batch).collect(),
        partner,
        core,
        purpose: link.purpose.clone(),
        suspense_acct: link.suspense_account.clone(),
        settlement_acct: link.settlement_account.clone(),
        // The SeqNo carries the instance's settlement code (letters and digits only).
        settlement_seq_no: reconciliation::settlement_seq_no(
            adapter.settlement_code(),
            business_date,
        ),
        settle_unconfirmed: confirms_only,
        partner_file_absent: daily.is_none(),
        match_on_bank_serial: adapter.file_matches_on_bank_serial(),
    };
    // Records the previous run left waiting for a core file are re-examined and, once agreed,
    // settled with this date (spec 01, "Settlement").
    std::fs::create_dir_all(report_dir)?;
    let carried: Vec<reconciliation::AwaitingCore> =
        match business_date.checked_sub_days(Days::new(1)) {
            Some(previous) => {
                let path = awaiting_path(report_dir, adapter.payee(), adapter.instance(), previous);
                match std::fs::read(&path) {
                    Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                        ReconError::Io(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{}: {e}", path.display()),
                        ))
                    })?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(e.into()),
                }
            }
            None => Vec::new(),
        };
    let mut result = reconciliation::reconcile_with_carried(&input, &carried);
    result.settlement.summary = adapter.settlement_summary(business_date);
    if let Some(alert) = &partner_file_alert {
        result.warnings.insert(0, alert.clone());
    }
    // Earlier days' payments still unconfirmed stay on this report (spec 09, 通知未确认). The
    // list is read after this date's file was taken in, so what it listed is off it.
    match adapter.unconfirmed_before(business_date).await {
        Ok(list) => {
            result.unconfirmed_earlier = list
                .into_iter()
                .map(|u| reconciliation::UnconfirmedEarlier {
                    hub_serial: u.bank_serial,
                    acct_date: u.acct_date,
                    customer_no: u.customer_no,
                    amount: u.amount,
                    detail: u.notice,
                })
                .collect()
        }
        Err(e) => {
            tracing::error!(instance = adapter.instance(), code = e.code(), error = %e, "Unconfirmed payments of earlier days could not be read.");
            result
                .warnings
                .push(format!("往日通知未确认清单读取失败（{e}），请人工核查"));
        }
    }
    let awaiting = awaiting_path(
        report_dir,
        adapter.payee(),
        adapter.instance(),
        business_date,
    );
    std::fs::write(
        &awaiting,
        serde_json::to_vec_pretty(&result.awaiting_core).unwrap_or_default(),
    )?;
    let settlement = settle(
        engine,
        adapter.payee(),
        adapter.instance(),
        business_date,
        &result,
    )
    .await?;
    result.execution = Some(settlement.execution());
    let stem = format!(
        "RECON_{}_{}_{}",
        adapter.payee(),
        adapter.instance(),
        yyyymmdd(business_date)
    );
    let html = report_dir.join(format!("{stem}.html"));
    let csv = report_dir.join(format!("{stem}.csv"));
    // A rerun never destroys the report an operator may already have acted on.
    let stamp = engine.clock().now().format("%Y%m%d%H%M%S").to_string();
    for (path, ext) in [(&html, "html"), (&csv, "csv")] {
        if path.exists() {
            std::fs::rename(path, report_dir.join(format!("{stem}.{stamp}.{ext}")))?;
        }
    }
    reconciliation::report::write_html(&result, &html)?;
    reconciliation::report::write_csv(&result, &csv)?;

    Ok(ReconRun {
        result,
        html,
        csv,
        settlement,
        partner_file_alert,
    })
}

/// Fetches (when the partner hands it over on request), reads and parses the partner's files of
/// `business_date`; the raw bytes come back too, for the partner's own follow-up.
async fn partner_file(
    adapter: &dyn adapters::spi::BillPartner,
    business_date: NaiveDate,
    file_dir: &Path,
) -> Result<(adapters::spi::DailyFile, Vec<Vec<u8>>), ReconError> {
    let wanted = adapter.daily_files(business_date);
    if wanted.iter().any(|name| !file_dir.join(name).exists()) {
        // Partners that hand their file over on request: fetch (and archive) it first.
        if let Err(e) = adapter.fetch_daily(business_date, file_dir).await {
            tracing::warn!(instance = adapter.instance(), error = %e, "Partner daily file could not be fetched.");
        }
    }
    // A partner that flags its files (county water's DZ…ok, written last) is read only once the
    // flag is there: without it the day counts as not arrived, as a missing file does. A re-cut
    // removes the flag first and writes it last, so a rerun never reads half a cut.
    if let Some(flag) = adapter.daily_flag(business_date) {
        let path = file_dir.join(flag);
        if !path.exists() {
            return Err(ReconError::PartnerFileMissing(path));
        }
    }
    let mut partner_files = Vec::new();
    for name in wanted {
        let path = file_dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => partner_files.push(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReconError::PartnerFileMissing(path))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let daily = adapter
        .parse_daily(&partner_files)
        .map_err(|e| ReconError::PartnerFile(e.to_string()))?;
    if daily.acct_date != business_date {
        return Err(ReconError::WrongDate {
            expected: business_date,
            found: daily.acct_date,
        });
    }
    Ok((daily, partner_files))
}

/// Posts the settlement 8002 from the suspense account to the partner's account. The SeqNo is
/// deterministic and its TranDate is journaled before the first attempt, so a rerun (after a
/// timeout, or of the whole job) asks the core the same question and never posts twice.
async fn settle(
    engine: &Engine,
    payee: &str,
    instance: &str,
    business_date: NaiveDate,
    result: &ReconResult,
) -> Result<SettlementOutcome, ReconError> {
    let s = &result.settlement;
    if !s.is_postable() {
        return Ok(SettlementOutcome {
            seq_no: s.seq_no.clone(),
            amount_fen: 0,
            state: if s.blocked_reason.is_some() {
                "BLOCKED".into()
            } else {
                "NOTHING_TO_SETTLE".into()
            },
            core_seq_no: None,
            message: s.blocked_reason.clone(),
            count: 0,
            earlier_run: false,
        });
    }
    let journal = engine.journal();
    let now = engine.clock().now();
    let stamp = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let day = yyyymmdd(business_date);
    sqlx::query(
        "INSERT INTO settlements (payee, instance, business_date, seq_no, tran_date, amount_fen, record_count,
            state, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?)
         ON CONFLICT (payee, instance, business_date) DO NOTHING",
    )
    .bind(payee)
    .bind(instance)
    .bind(&day)
    .bind(&s.seq_no)
    .bind(yyyymmdd(now.date()))
    .bind(s.amount.fen())
    .bind(s.count as i64)
    .bind(&stamp)
    .bind(&stamp)
    .execute(journal.pool())
    .await
    .map_err(crate::journal::JournalError::from)?;
    let row: (String, String, i64, Option<String>, i64) = sqlx::query_as(
        "SELECT state, tran_date, amount_fen, core_seq_no, record_count FROM settlements
         WHERE payee = ? AND instance = ? AND business_date = ?",
    )
    .bind(payee)
    .bind(instance)
    .bind(&day)
    .fetch_one(journal.pool())
    .await
    .map_err(crate::journal::JournalError::from)?;
    let (state, tran_date_text, amount_fen, core_seq_no, record_count) = row;
    let count = usize::try_from(record_count).unwrap_or(0);
    if state == "POSTED" || state == "REFUSED" {
        return Ok(SettlementOutcome {
            seq_no: s.seq_no.clone(),
            amount_fen,
            state,
            core_seq_no,
            message: Some("已处理，未重复记账".into()),
            count,
            earlier_run: true,
        });
    }
    let tran_date = codecs::clock::parse_yyyymmdd(&tran_date_text).unwrap_or(now.date());
    // The amount journaled first is the one posted: a rerun with other figures must not change
    // the question asked of the core under the same SeqNo.
    let amount = Money::from_fen(amount_fen);
    let Some(link) = engine.partner(payee, instance) else {
        return Ok(SettlementOutcome {
            seq_no: s.seq_no.clone(),
            amount_fen,
            state: "REFUSED".into(),
            core_seq_no: None,
            message: Some("partner not configured".into()),
            count,
            earlier_run: false,
        });
    };
    let outcome = engine
        .core()
        .transfer(
            &s.seq_no,
            tran_date,
            &link.suspense_account,
            &link.settlement_account,
            amount,
            &s.summary,
            &s.purpose,
        )
        .await;
    let (state, core_seq, message) = match outcome {
        TransferOutcome::Posted { core_seq_no, .. } => ("POSTED", Some(core_seq_no), None),
        TransferOutcome::Refused {
            ret_code, ret_msg, ..
        } => {
            tracing::error!(seq_no = %s.seq_no, ret_code = %ret_code, "Settlement refused by the core; an operator must act.");
            ("REFUSED", None, Some(format!("{ret_code} {ret_msg}")))
        }
        TransferOutcome::Unknown { reason } => ("UNKNOWN", None, Some(reason)),
    };
    sqlx::query(
        "UPDATE settlements SET state = ?, core_seq_no = ?, message = ?, updated_at = ?
         WHERE payee = ? AND instance = ? AND business_date = ?",
    )
    .bind(state)
    .bind(&core_seq)
    .bind(&message)
    .bind(&stamp)
    .bind(payee)
    .bind(instance)
    .bind(&day)
    .execute(journal.pool())
    .await
    .map_err(crate::journal::JournalError::from)?;
    Ok(SettlementOutcome {
        seq_no: s.seq_no.clone(),
        amount_fen,
        state: state.into(),
        core_seq_no: core_seq,
        message,
        count,
        earlier_run: false,
    })
}

/// `hub recon`: reconciles every configured partner instance for `date` and settles; exit code 0
/// when every instance reconciled without differences, 3 when differences wait for an operator.
pub async fn run_all(
    config: &crate::config::HubConfig,
    date: NaiveDate,
) -> Result<std::process::ExitCode, String> {
    use std::sync::Arc;
    let clock: codecs::clock::SharedClock = Arc::new(codecs::clock::SystemClock);
    let journal = crate::journal::Journal::open(&config.hub.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let core = crate::core_client::CoreClient::new(config.core.clone(), clock.clone());
    let key_store =
        crate::keys::KeyStore::new(config.keys.clone(), journal.pool().clone(), clock.clone());
    let mut links = crate::app::partner_links(config, Some(&key_store), &clock, &journal)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(tobacco) = &config.tobacco {
        let (link, _) = crate::app::tobacco_link(tobacco, journal.pool().clone(), clock.clone());
        links.push(link);
    }
    let engine = Engine::new(journal, core, links, clock, config.engine.clone());
    let mut differences = 0usize;
    let mut links: Vec<PartnerLink> = engine.partners().cloned().collect();
    links.sort_by_key(|l| {
        (
            l.adapter.payee().to_string(),
            l.adapter.instance().to_string(),
        )
    });
    for link in &links {
        match run(
            &engine,
            link,
            date,
            &config.hub.file_dir,
            &config.hub.report_dir,
        )
        .await
        {
            Ok(r) => {
                differences += r.result.differences.len();
                println!(
                    "{} {} {}: 对平 {} 笔, 差错 {} 笔, 结算 {} 元 ({}), 报告 {}",
                    link.adapter.payee(),
                    link.adapter.instance(),
                    yyyymmdd(date),
                    r.result.matched.len(),
                    r.result.differences.len(),
                    Money::from_fen(r.settlement.amount_fen).to_yuan(),
                    r.settlement.state,
                    r.html.display()
                );
                if !r.result.unconfirmed_earlier.is_empty() {
                    println!(
                        "{} {}: 往日通知未确认 {} 笔",
                        link.adapter.payee(),
                        link.adapter.instance(),
                        r.result.unconfirmed_earlier.len()
                    );
                }
                // The file still has to come: an operator must follow it up.
                if let Some(alert) = &r.partner_file_alert {
                    println!(
                        "{} {}: {alert}",
                        link.adapter.payee(),
                        link.adapter.instance()
                    );
                    differences += 1;
                }
            }
            Err(e) => {
                println!(
                    "{} {} {}: [{}] {e}",
                    link.adapter.payee(),
                    link.adapter.instance(),
                    yyyymmdd(date),
                    e.code()
                );
                differences += 1;
            }
        }
    }
    Ok(if differences == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(3)
    })
}
