//! The county water batch withholding run (批量代扣): one DK file in, one core 8002 per line that
//! the agreement register allows, one DKR file out. Every line is journaled before its 8002, and the
//! 8002's SeqNo is derived from (BatchDate, instance, SeqNo) ([`line_serial`]). A line a crash left
//! between its 8002 and the journaling of the answer has an unknown outcome: a rerun resolves it
//! with 8004 (and fences the key with 8003 when the core has nothing), never by sending the 8002
//! again, so nobody is debited twice and no late 8002 can post after the line was written 399.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use codecs::clock::{parse_yyyymmdd, yyyymmdd, SharedClock};
use codecs::mask::mask_account;
use indicatif::{ProgressBar, ProgressStyle};
use sm3::{Digest, Sm3};
use sqlx::Row;

use super::agreements::AgreementRegister;
use super::file::{
    dk_name, dkr_name, flag_name, header_echo, parse_dk, render_header_only, render_result, DkFile,
    DkLine, FileResult, LineResult, ResultLine,
};
use crate::core_client::{CoreClient, CoreReversalOutcome, CoreStatusOutcome, TransferOutcome};
use crate::journal::{Journal, JournalError};

/// What one run of one instance needs.
#[derive(Clone, Debug)]
pub struct WaterWithholdConfig {
    /// The instance name (`water-xinhuang`): the agreement register and the batch journal key.
    pub instance: String,
    /// 水司代码: in the file names and headers, and the core Purpose of every debit.
    pub company_code: String,
    /// The 3 characters of this instance in its line serials ([`line_serial`]); distinct among
    /// the hub's withholding instances (the config check enforces it).
    pub serial_code: String,
    /// 代收过渡户 of the instance: the credit side of every debit.
    pub suspense_account: String,
    /// The instance's SFTP folder, with `in/` and `out/` under it.
    pub dir: PathBuf,
    /// The hub node (2 digits of the serials of 8004/8003).
    pub node: u8,
    /// How many times an unknown 8002 is asked about (8004, and 8003 to fence) before the run
    /// stops and leaves the line to the next run.
    pub resolve_attempts: u32,
    /// Real time between two of those attempts.
    pub resolve_interval_ms: u64,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
    /// Test hook: stop as a crash would, right after this many 8002s of this run were answered and
    /// before their answers are journaled.
    pub stop_after_debits: Option<usize>,
}

impl WaterWithholdConfig {
    /// Defaults for `instance`: 5 attempts 2 s apart, progress shown.
    pub fn new(
        instance: &str,
        company_code: &str,
        suspense_account: &str,
        dir: &Path,
    ) -> WaterWithholdConfig {
        WaterWithholdConfig {
            instance: instance.to_string(),
            company_code: company_code.to_string(),
            serial_code: default_serial_code(company_code),
            suspense_account: suspense_account.to_string(),
            dir: dir.to_path_buf(),
            node: 1,
            resolve_attempts: 5,
            resolve_interval_ms: 2_000,
            progress: true,
            stop_after_debits: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("批量文件读写失败 {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("批量流水记录失败: {0}")]
    Journal(#[from] JournalError),
    #[error("批量结果文件生成失败: {0}")]
    Render(String),
    #[error("核心系统无法连接，批量已暂停，可重跑续做: {reason}")]
    CoreUnreachable { reason: String },
    #[error("流水{bank_serial}的核心记账结果仍不明，批量已暂停，可重跑续做")]
    CoreUnresolved { bank_serial: String },
    #[error("批量流水损坏: {0}")]
    Corrupt(String),
    #[error("批量按测试设定中断")]
    Interrupted,
}

impl BatchError {
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::Io { .. } => "BATCH_IO",
            BatchError::Journal(_) => "BATCH_JOURNAL",
            BatchError::Render(_) => "BATCH_RENDER",
            BatchError::CoreUnreachable { .. } => "BATCH_CORE_UNREACHABLE",
            BatchError::CoreUnresolved { .. } => "BATCH_CORE_UNRESOLVED",
            BatchError::Corrupt(_) => "BATCH_CORRUPT",
            BatchError::Interrupted => "BATCH_INTERRUPTED",
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// No DK file, or its `.ok` flag is not there yet: nothing read.
    NotReady,
    /// A DKR file and its flag were written.
    Written(BatchReport),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReport {
    pub file_result: FileResult,
    pub result_path: PathBuf,
    /// The detail lines (empty for a header-only result).
    pub lines: Vec<ResultLine>,
    /// The result of a batch processed before, written again byte for byte.
    pub replayed: bool,
}

/// Characters of an instance's code in a line serial.
pub const SERIAL_CODE_LEN: usize = 3;

/// The serial code an instance gets unless its `[[withholding]]` entry names one: the last 3
/// characters of its CompanyCode (431024, 431022, 431081, 431227 give 024, 022, 081, 227).
pub fn default_serial_code(company_code: &str) -> String {
    let chars: Vec<char> = company_code.chars().collect();
    chars[chars.len().saturating_sub(SERIAL_CODE_LEN)..]
        .iter()
        .collect()
}

/// Whether `code` can stand in a line serial: 3 ASCII letters or digits (the core's SeqNo
/// alphabet, and AN in the DKR file).
pub fn valid_serial_code(code: &str) -> bool {
    code.len() == SERIAL_CODE_LEN && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The bank serial (and core SeqNo, TranDate = BatchDate) of a line's debit:
/// `<BatchDate:8>D<serial code:3><SeqNo:06>`, exactly 18 characters, the header's BankSerial
/// width (spec 02: AN 18), so a water company can keep it in its serial column.
///
/// Unique among the hub's serials of that TranDate because:
/// - it is a function of (BatchDate, instance, SeqNo) only, so a rerun after a crash finds the
///   same serial, and within one instance and batch SeqNo is unique (one batch per day, SeqNo
///   ≤ 999999 by the file check);
/// - the serial codes of the withholding instances are distinct (checked at config load), so
///   two instances never share one: the core's SeqNo space is the hub's, not the instance's;
/// - every other hub serial of the day is all digits (`Journal::next_serial`) or starts with a
///   letter (settlements), while this one has a `D` right after its 8 date digits.
pub fn line_serial(batch_date: NaiveDate, serial_code: &str, seq_no: usize) -> String {
    format!("{}D{serial_code}{seq_no:06}", yyyymmdd(batch_date))
}

struct LineRow {
    state: String,
    bank_serial: Option<String>,
    result: Option<String>,
    core_date: Option<String>,
}

/// The run for one instance.
pub struct WaterWithholdJob {
    journal: Journal,
    core: CoreClient,
    clock: SharedClock,
    register: AgreementRegister,
    config: WaterWithholdConfig,
}

impl WaterWithholdJob {
    pub fn new(
        journal: Journal,
        core: CoreClient,
        clock: SharedClock,
        config: WaterWithholdConfig,
    ) -> WaterWithholdJob {
        let register = AgreementRegister::new(journal.clone(), clock.clone());
        WaterWithholdJob {
            journal,
            core,
            clock,
            register,
            config,
        }
    }

    fn now_text(&self) -> String {
        self.clock.now().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }

    /// Reads `in/DK<CompanyCode><batch_date>.txt` (when its flag is there), debits, writes the
    /// result. Safe to run again at any time: see the module docs.
    pub async fn run(&self, batch_date: NaiveDate) -> Result<RunOutcome, BatchError> {
        let company_code = &self.config.company_code;
        let name = dk_name(company_code, batch_date);
        let in_dir = self.config.dir.join("in");
        let flag = in_dir.join(flag_name(&name));
        let path = in_dir.join(&name);
        if !flag.exists() {
            return Ok(RunOutcome::NotReady);
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(instance = %self.config.instance, file = %name, "Flag without its file.");
                return Ok(RunOutcome::NotReady);
            }
            Err(source) => return Err(BatchError::Io { path, source }),
        };
        let file = match parse_dk(&bytes, company_code, batch_date) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(instance = %self.config.instance, file = %name, code = e.code(), error = %e, "DK file refused.");
                let echo = header_echo(&bytes, company_code, batch_date);
                let out = render_header_only(&echo, e.file_result()).map_err(BatchError::Render)?;
                return self.write_result(batch_date, &out, e.file_result(), Vec::new(), false);
            }
        };
        let file_sm3 = hex::encode(Sm3::digest(&bytes));
        let existing = sqlx::query(
            "SELECT state, file_sm3, result FROM batch_runs WHERE instance = ? AND batch_no = ?",
        )
        .bind(&self.config.instance)
        .bind(&file.header.batch_no)
        .fetch_optional(self.journal.pool())
        .await
        .map_err(JournalError::from)?;
        if let Some(row) = existing {
            let state: String = row.try_get("state").map_err(JournalError::from)?;
            let known_sm3: String = row.try_get("file_sm3").map_err(JournalError::from)?;
            let result: Option<Vec<u8>> = row.try_get("result").map_err(JournalError::from)?;
            if known_sm3 != file_sm3 {
                tracing::warn!(instance = %self.config.instance, batch_no = %file.header.batch_no, "BatchNo re-dropped with other content.");
                let echo = header_echo(&bytes, company_code, batch_date);
                let out = render_header_only(&echo, FileResult::OtherContent)
                    .map_err(BatchError::Render)?;
                return self.write_result(
                    batch_date,
                    &out,
                    FileResult::OtherContent,
                    Vec::new(),
                    false,
                );
            }
            if let ("DONE", Some(result)) = (state.as_str(), result) {
                let lines = self.load_results(&file).await?;
                return self.write_result(batch_date, &result, FileResult::Processed, lines, true);
            }
            tracing::info!(instance = %self.config.instance, batch_no = %file.header.batch_no, "Resuming an unfinished batch.");
        } else {
            let now = self.now_text();
            sqlx::query(
                "INSERT INTO batch_runs (instance, batch_no, batch_date, file_sm3, state, result,
                     created_at, updated_at)
                 VALUES (?, ?, ?, ?, 'RUNNING', NULL, ?, ?)",
            )
            .bind(&self.config.instance)
            .bind(&file.header.batch_no)
            .bind(yyyymmdd(batch_date))
            .bind(&file_sm3)
            .bind(&now)
            .bind(&now)
            .execute(self.journal.pool())
            .await
            .map_err(JournalError::from)?;
        }
        let lines = self.process(&file).await?;
        let out = render_result(&file.header, &lines).map_err(BatchError::Render)?;
        // The result is kept before it is written: a crash in between re-writes the same bytes.
        sqlx::query(
            "UPDATE batch_runs SET state = 'DONE', result = ?, updated_at = ?
             WHERE instance = ? AND batch_no = ?",
        )
        .bind(&out)
        .bind(self.now_text())
        .bind(&self.config.instance)
        .bind(&file.header.batch_no)
        .execute(self.journal.pool())
        .await
        .map_err(JournalError::from)?;
        self.write_result(batch_date, &out, FileResult::Processed, lines, false)
    }

    async fn load_rows(&self, batch_no: &str) -> Result<HashMap<usize, LineRow>, BatchError> {
        let rows = sqlx::query(
            "SELECT seq_no, state, bank_serial, result, core_date FROM batch_lines
             WHERE instance = ? AND batch_no = ?",
        )
        .bind(&self.config.instance)
        .bind(batch_no)
        .fetch_all(self.journal.pool())
        .await
        .map_err(JournalError::from)?;
        let mut out = HashMap::new();
        for row in rows {
            let seq_no: i64 = row.try_get("seq_no").map_err(JournalError::from)?;
            let seq_no = usize::try_from(seq_no)
                .map_err(|_| BatchError::Corrupt(format!("seq_no {seq_no}")))?;
            out.insert(
                seq_no,
                LineRow {
                    state: row.try_get("state").map_err(JournalError::from)?,
                    bank_serial: row.try_get("bank_serial").map_err(JournalError::from)?,
                    result: row.try_get("result").map_err(JournalError::from)?,
                    core_date: row.try_get("core_date").map_err(JournalError::from)?,
                },
            );
        }
        Ok(out)
    }

    fn done_line(line: &DkLine, row: &LineRow) -> Result<ResultLine, BatchError> {
        let result = row
            .result
            .as_deref()
            .and_then(LineResult::from_code)
            .ok_or_else(|| BatchError::Corrupt(format!("line {} result", line.seq_no)))?;
        let core_date =
            match row.core_date.as_deref() {
                Some(text) => Some(parse_yyyymmdd(text).ok_or_else(|| {
                    BatchError::Corrupt(format!("line {} core_date", line.seq_no))
                })?),
                None => None,
            };
        Ok(result_line(
            line,
            result,
            row.bank_serial.clone().unwrap_or_default(),
            core_date,
        ))
    }

    async fn load_results(&self, file: &DkFile) -> Result<Vec<ResultLine>, BatchError> {
        let rows = self.load_rows(&file.header.batch_no).await?;
        let mut out = Vec::with_capacity(file.lines.len());
        for line in &file.lines {
            let row = rows
                .get(&line.seq_no)
                .ok_or_else(|| BatchError::Corrupt(format!("line {} missing", line.seq_no)))?;
            out.push(Self::done_line(line, row)?);
        }
        Ok(out)
    }

    async fn process(&self, file: &DkFile) -> Result<Vec<ResultLine>, BatchError> {
        let batch_date = file.header.batch_date;
        let rows = self.load_rows(&file.header.batch_no).await?;
        let progress = self.progress_bar(file.lines.len());
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut results = Vec::with_capacity(file.lines.len());
        let mut debits_answered = 0usize;
        for line in &file.lines {
            let repeated = !seen.insert((line.customer_no.as_str(), line.period.as_str()));
            let result = match rows.get(&line.seq_no) {
                Some(row) if row.state == "DONE" => Self::done_line(line, row)?,
                Some(row) => {
                    // Journaled DEBITING, answer not journaled: the 8002 may or may not have
                    // reached the core, an unknown outcome (spec 02). Resolved as one, never by
                    // sending the 8002 again: N fences the key and the line is 399.
                    let serial = row.bank_serial.clone().ok_or_else(|| {
                        BatchError::Corrupt(format!("line {} without serial", line.seq_no))
                    })?;
                    tracing::warn!(instance = %self.config.instance, bank_serial = %serial, "Resuming a batch debit of unknown outcome: asking the core.");
                    self.resolve_unknown(file, line, &serial).await?
                }
                None => match self.precheck(line, batch_date, repeated).await? {
                    Some(refusal) => {
                        self.insert_done(file, line, refusal).await?;
                        result_line(line, refusal, String::new(), None)
                    }
                    None => {
                        let done = self.debit(file, line).await?;
                        debits_answered += 1;
                        if self.config.stop_after_debits == Some(debits_answered) {
                            progress.abandon();
                            return Err(BatchError::Interrupted);
                        }
                        self.finish_debit(file, line, done).await?
                    }
                },
            };
            results.push(result);
            progress.inc(1);
        }
        progress.finish_and_clear();
        Ok(results)
    }

    fn progress_bar(&self, len: usize) -> ProgressBar {
        let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        if !(self.config.progress && on_terminal) {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64);
        if let Ok(style) =
            ProgressStyle::with_template("批量代扣 {bar:40} {pos}/{len} 已用{elapsed} 预计{eta}")
        {
            bar.set_style(style);
        }
        bar
    }

    /// 304, 305, 306: the register and the file itself, before any money moves.
    async fn precheck(
        &self,
        line: &DkLine,
        batch_date: NaiveDate,
        repeated: bool,
    ) -> Result<Option<LineResult>, BatchError> {
        let agreement = self
            .register
            .find(&self.config.instance, &line.agreement_no)
            .await?;
        let Some(agreement) =
            agreement.filter(|a| a.customer_no == line.customer_no && a.is_live_on(batch_date))
        else {
            return Ok(Some(LineResult::NoAgreement));
        };
        if agreement.account_no != line.account_no {
            return Ok(Some(LineResult::OtherAccount));
        }
        if repeated {
            return Ok(Some(LineResult::Duplicate));
        }
        Ok(None)
    }

    async fn insert_done(
        &self,
        file: &DkFile,
        line: &DkLine,
        result: LineResult,
    ) -> Result<(), BatchError> {
        sqlx::query(
            "INSERT INTO batch_lines (instance, batch_no, seq_no, customer_no, amount_fen, state,
                 bank_serial, result, core_seq_no, core_date, note, updated_at)
             VALUES (?, ?, ?, ?, ?, 'DONE', NULL, ?, NULL, NULL, ?, ?)",
        )
        .bind(&self.config.instance)
        .bind(&file.header.batch_no)
        .bind(seq_no_i64(line)?)
        .bind(&line.customer_no)
        .bind(line.amount.fen())
        .bind(result.code())
        .bind("refused before any debit")
        .bind(self.now_text())
        .execute(self.journal.pool())
        .await
        .map_err(JournalError::from)?;
        Ok(())
    }

    /// Journals the line as DEBITING, then sends its 8002.
    async fn debit(&self, file: &DkFile, line: &DkLine) -> Result<TransferOutcome, BatchError> {
        let batch_date = file.header.batch_date;
        let serial = line_serial(batch_date, &self.config.serial_code, line.seq_no);
        sqlx::query(
            "INSERT INTO batch_lines (instance, batch_no, seq_no, customer_no, amount_fen, state,
                 bank_serial, result, core_seq_no, core_date, note, updated_at)
             VALUES (?, ?, ?, ?, ?, 'DEBITING', ?, NULL, NULL, NULL, '8002 sent', ?)",
        )
        .bind(&self.config.instance)
        .bind(&file.header.batch_no)
        .bind(seq_no_i64(line)?)
        .bind(&line.customer_no)
        .bind(line.amount.fen())
        .bind(&serial)
        .bind(self.now_text())
        .execute(self.journal.pool())
        .await
        .map_err(JournalError::from)?;
        Ok(self.send_transfer(line, &serial, batch_date).await)
    }

    /// The line's 8002: the same Body every time it is sent, so the core's idempotency holds.
    async fn send_transfer(
        &self,
        line: &DkLine,
        serial: &str,
        batch_date: NaiveDate,
    ) -> TransferOutcome {
        let summary = format!("水费代扣{}", line.customer_no);
        self.core
            .transfer(
                serial,
                batch_date,
                &line.account_no,
                &self.config.suspense_account,
                line.amount,
                &summary,
                &self.config.company_code,
            )
            .await
    }

    async fn finish_debit(
        &self,
        file: &DkFile,
        line: &DkLine,
        outcome: TransferOutcome,
    ) -> Result<ResultLine, BatchError> {
        let serial = line_serial(
            file.header.batch_date,
            &self.config.serial_code,
            line.seq_no,
        );
        match outcome {
            TransferOutcome::Posted {
                core_seq_no,
                core_date,
            } => {
                self.finish(
                    file,
                    line,
                    LineResult::Success,
                    Some((&core_seq_no, core_date)),
                    "posted",
                )
                .await?;
                Ok(result_line(
                    line,
                    LineResult::Success,
                    serial,
                    Some(core_date),
                ))
            }
            TransferOutcome::Refused {
                ret_code, ret_msg, ..
            } if ret_code == "NOT_SENT" => {
                // Nothing left the hub: forget the line so that the next run sends it afresh.
                sqlx::query(
                    "DELETE FROM batch_lines
                     WHERE instance = ? AND batch_no = ? AND seq_no = ? AND state = 'DEBITING'",
                )
                .bind(&self.config.instance)
                .bind(&file.header.batch_no)
                .bind(seq_no_i64(line)?)
                .execute(self.journal.pool())
                .await
                .map_err(JournalError::from)?;
                Err(BatchError::CoreUnreachable { reason: ret_msg })
            }
            TransferOutcome::Refused {
                ret_code,
                ret_msg,
                err_side,
            } => {
                let result = self.refusal_result(line, &ret_code, &err_side);
                let note = format!("{ret_code} {ret_msg} {err_side}");
                self.finish(file, line, result, None, &note).await?;
                Ok(result_line(line, result, serial, None))
            }
            TransferOutcome::Unknown { reason } => {
                tracing::warn!(instance = %self.config.instance, bank_serial = %serial, reason = %reason, "Batch debit outcome unknown: asking the core.");
                self.resolve_unknown(file, line, &serial).await
            }
        }
    }

    fn refusal_result(&self, line: &DkLine, ret_code: &str, err_side: &str) -> LineResult {
        let customer_side = err_side != "C";
        let result = match ret_code {
            "E10001" if customer_side => LineResult::InsufficientBalance,
            "E10002" if customer_side => LineResult::AccountBlocked,
            "E10003" | "E10004" if customer_side => LineResult::AccountMissingOrClosed,
            _ => LineResult::Other,
        };
        if !customer_side {
            // The suspense account refused the credit: not the customer's doing.
            tracing::error!(
                instance = %self.config.instance,
                account = %mask_account(&self.config.suspense_account),
                seq_no = line.seq_no,
                ret_code,
                "ALERT: the collection suspense account refused a batch credit."
            );
        }
        result
    }

    /// An 8002 whose outcome is unknown (a timeout now, or a crash before its answer was
    /// journaled): 8004, retried; S → 000, R → 399, N → 8003 to fence the key, then 399.
    async fn resolve_unknown(
        &self,
        file: &DkFile,
        line: &DkLine,
        serial: &str,
    ) -> Result<ResultLine, BatchError> {
        let batch_date = file.header.batch_date;
        for attempt in 0..self.config.resolve_attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(self.config.resolve_interval_ms)).await;
            }
            let query_serial = self
                .journal
                .next_serial(self.config.node, self.clock.today(), 20)
                .await?;
            match self
                .core
                .status(&query_serial, self.clock.today(), serial, batch_date)
                .await
            {
                CoreStatusOutcome::Posted {
                    core_seq_no,
                    core_date: Some(core_date),
                } => {
                    self.finish(
                        file,
                        line,
                        LineResult::Success,
                        Some((&core_seq_no, core_date)),
                        "8004 S",
                    )
                    .await?;
                    return Ok(result_line(
                        line,
                        LineResult::Success,
                        serial.to_string(),
                        Some(core_date),
                    ));
                }
                CoreStatusOutcome::Posted {
                    core_date: None, ..
                } => {
                    tracing::warn!(bank_serial = %serial, "8004 S without OrigCoreDate.");
                }
                CoreStatusOutcome::Reversed => {
                    self.finish(file, line, LineResult::Other, None, "8004 R")
                        .await?;
                    return Ok(result_line(
                        line,
                        LineResult::Other,
                        serial.to_string(),
                        None,
                    ));
                }
                CoreStatusOutcome::NotFound => {
                    let fence_serial = self
                        .journal
                        .next_serial(self.config.node, self.clock.today(), 20)
                        .await?;
                    match self
                        .core
                        .reverse(&fence_serial, self.clock.today(), serial, batch_date)
                        .await
                    {
                        CoreReversalOutcome::Reversed { ret_code, .. } => {
                            let note = format!("8004 N, 8003 {ret_code}");
                            self.finish(file, line, LineResult::Other, None, &note)
                                .await?;
                            return Ok(result_line(
                                line,
                                LineResult::Other,
                                serial.to_string(),
                                None,
                            ));
                        }
                        CoreReversalOutcome::Refused { ret_code, ret_msg } => {
                            tracing::warn!(bank_serial = %serial, ret_code = %ret_code, ret_msg = %ret_msg, "Fencing 8003 refused.");
                        }
                        CoreReversalOutcome::Unknown { reason } => {
                            tracing::warn!(bank_serial = %serial, reason = %reason, "Fencing 8003 unknown.");
                        }
                    }
                }
                CoreStatusOutcome::Unknown { reason } => {
                    tracing::warn!(bank_serial = %serial, reason = %reason, "8004 unknown.");
                }
            }
        }
        Err(BatchError::CoreUnresolved {
            bank_serial: serial.to_string(),
        })
    }

    async fn finish(
        &self,
        file: &DkFile,
        line: &DkLine,
        result: LineResult,
        posted: Option<(&str, NaiveDate)>,
        note: &str,
    ) -> Result<(), BatchError> {
        let done = sqlx::query(
            "UPDATE batch_lines SET state = 'DONE', result = ?, core_seq_no = ?, core_date = ?,
                 note = ?, updated_at = ?
             WHERE instance = ? AND batch_no = ? AND seq_no = ? AND state = 'DEBITING'",
        )
        .bind(result.code())
        .bind(posted.map(|(seq, _)| seq.to_string()))
        .bind(posted.map(|(_, date)| yyyymmdd(date)))
        .bind(note)
        .bind(self.now_text())
        .bind(&self.config.instance)
        .bind(&file.header.batch_no)
        .bind(seq_no_i64(line)?)
        .execute(self.journal.pool())
        .await
        .map_err(JournalError::from)?;
        if done.rows_affected() != 1 {
            return Err(BatchError::Corrupt(format!(
                "line {} was not DEBITING",
                line.seq_no
            )));
        }
        tracing::info!(
            instance = %self.config.instance,
            seq_no = line.seq_no,
            account = %mask_account(&line.account_no),
            result = result.code(),
            "Batch line done."
        );
        Ok(())
    }

    /// Flag removed first, file written (via a temporary name), flag written last.
    fn write_result(
        &self,
        batch_date: NaiveDate,
        bytes: &[u8],
        file_result: FileResult,
        lines: Vec<ResultLine>,
        replayed: bool,
    ) -> Result<RunOutcome, BatchError> {
        let out_dir = self.config.dir.join("out");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BatchError::Io { path, source }
        };
        std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
        let name = dkr_name(&self.config.company_code, batch_date);
        let path = out_dir.join(&name);
        let flag = out_dir.join(flag_name(&name));
        match std::fs::remove_file(&flag) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(BatchError::Io { path: flag, source }),
        }
        let temporary = out_dir.join(format!(".{name}.partial"));
        std::fs::write(&temporary, bytes).map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        std::fs::write(&flag, b"").map_err(io(&flag))?;
        tracing::info!(instance = %self.config.instance, file = %name, file_result = file_result.code(), "Batch result written.");
        Ok(RunOutcome::Written(BatchReport {
            file_result,
            result_path: path,
            lines,
            replayed,
        }))
    }
}

fn seq_no_i64(line: &DkLine) -> Result<i64, BatchError> {
    i64::try_from(line.seq_no).map_err(|_| BatchError::Corrupt(format!("seq_no {}", line.seq_no)))
}

fn result_line(
    line: &DkLine,
    result: LineResult,
    bank_serial: String,
    core_date: Option<NaiveDate>,
) -> ResultLine {
    ResultLine {
        seq_no: line.seq_no,
        customer_no: line.customer_no.clone(),
        agreement_no: line.agreement_no.clone(),
        account_no: line.account_no.clone(),
        amount: line.amount,
        result,
        bank_serial,
        core_date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_serials_are_18_characters_and_never_look_like_online_ones() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default();
        // Spec 02's 新晃 (431227): 20261203, D, 227, 000007.
        assert_eq!(line_serial(date, "227", 7), "20261203D227000007");
        assert_eq!(line_serial(date, "227", 999_999), "20261203D227999999");
        assert_eq!(line_serial(date, "227", 999_999).len(), 18);
        assert_eq!(default_serial_code("431227"), "227");
        assert_eq!(default_serial_code("431024"), "024");
        assert!(valid_serial_code("x9Z"));
        assert!(!valid_serial_code("12"));
        assert!(!valid_serial_code("1|2"));
        // An online serial of the same day (node 01, 18 wide) is all digits.
        let online = "202612030100000007";
        assert_eq!(online.len(), 18);
        assert!(online.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(
            line_serial(date, "227", 7).as_bytes()[8],
            online.as_bytes()[8]
        );
    }
}
