//! The bureau's T+1 file against the hub's paid orders: lines matched on bankSerial across files,
//! unknown lines alerted, paid orders missing from the file re-notified on a new schedule and
//! reported as 通知未确认 until a later file lists them.

use std::path::Path;

use adapters::tobacco::daily_file::{
    file_name, parse_daily_file, DailyFileError, TobaccoDailyFile,
};
use chrono::NaiveDate;

use super::store::{TobaccoError, TobaccoStore};

#[derive(Debug, thiserror::Error)]
pub enum FileJobError {
    #[error("烟草对账文件读取失败：{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    File(#[from] DailyFileError),
    #[error(transparent)]
    Store(#[from] TobaccoError),
}

impl FileJobError {
    pub fn code(&self) -> &'static str {
        match self {
            FileJobError::Io(_) => "YC_FILE_IO",
            FileJobError::File(e) => e.code(),
            FileJobError::Store(e) => e.code(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    /// bankSerials matched to a paid order with the same orderNo, licence and amount.
    pub matched: Vec<String>,
    /// Lines the journal does not know, or whose values differ: alerts.
    pub unknown: Vec<String>,
    /// Paid, acctDate ≤ the file's date, listed by no file yet: re-notified, 通知未确认.
    pub unconfirmed: Vec<String>,
}

/// Reads `YCJF_<bankCode>_<date>.txt` from the drop folder.
pub fn read_file(
    dir: &Path,
    bank_code: &str,
    date: NaiveDate,
) -> Result<TobaccoDailyFile, FileJobError> {
    let bytes = std::fs::read(dir.join(file_name(bank_code, date)))?;
    Ok(parse_daily_file(&bytes, date)?)
}

pub async fn reconcile_file(
    store: &TobaccoStore,
    file: &TobaccoDailyFile,
) -> Result<FileReport, FileJobError> {
    let mut report = FileReport::default();
    for line in &file.lines {
        let known = store.paid_by_serial(&line.bank_serial).await?;
        let agrees = known.as_ref().is_some_and(|row| {
            row.order.order_no == line.order_no
                && row.order.licence_no == line.licence_no
                && row.order.amount == line.amount
        });
        if agrees {
            store.mark_listed(&line.bank_serial, file.acct_date).await?;
            report.matched.push(line.bank_serial.clone());
        } else {
            tracing::error!(partner = "tobacco-yueyang", bank_serial = %line.bank_serial, "烟草对账文件有本地流水不符或不存在的记录。");
            report.unknown.push(line.bank_serial.clone());
        }
    }
    for notify_id in store.unlisted_up_to(file.acct_date).await? {
        store.renotify(&notify_id).await?;
        report.unconfirmed.push(notify_id);
    }
    Ok(report)
}
