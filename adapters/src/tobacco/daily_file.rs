//! The bureau's T+1 file `YCJF_YYNS0001_<acctDate>.txt`: UTF-8, LF after every line (the last
//! too), line 1 `acctDate|count|total`, then `bankSerial|orderNo|licenceNo|amount|payTime|channel`.
//! A file whose header disagrees with its lines is refused whole (a truncated file must not look
//! like one-sided entries).

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use codecs::Money;

use super::message::{is_licence_no, is_serial, parse_date, parse_time, PayChannel};

/// Hard cap on lines: far above any day of one bureau, low enough to bound memory.
pub const MAX_FILE_LINES: usize = 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLine {
    pub bank_serial: String,
    pub order_no: String,
    pub licence_no: String,
    pub amount: Money,
    pub pay_time: NaiveDateTime,
    pub channel: PayChannel,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TobaccoDailyFile {
    pub acct_date: NaiveDate,
    pub lines: Vec<FileLine>,
    pub total: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DailyFileError {
    #[error("对账文件第{line}行错误：{reason}")]
    Line { line: usize, reason: String },
    #[error("对账文件格式错误：{0}")]
    File(String),
}

impl DailyFileError {
    pub fn code(&self) -> &'static str {
        match self {
            DailyFileError::Line { .. } => "YC_FILE_LINE",
            DailyFileError::File(_) => "YC_FILE",
        }
    }
}

/// The file name the bureau drops for `acct_date`.
pub fn file_name(bank_code: &str, acct_date: NaiveDate) -> String {
    format!(
        "YCJF_{bank_code}_{}.txt",
        codecs::clock::yyyymmdd(acct_date)
    )
}

fn line_error(line: usize, reason: impl Into<String>) -> DailyFileError {
    DailyFileError::Line {
        line,
        reason: reason.into(),
    }
}

fn fen(text: &str, line: usize, what: &str) -> Result<Money, DailyFileError> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(line_error(line, format!("{what} 须为分为单位的数字")));
    }
    Money::parse_fen_digits(text).map_err(|e| line_error(line, format!("{what}: {e}")))
}

/// Parses and checks a whole file; `expected_date` is the date in its name.
pub fn parse_daily_file(
    bytes: &[u8],
    expected_date: NaiveDate,
) -> Result<TobaccoDailyFile, DailyFileError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| DailyFileError::File(format!("不是 UTF-8: {e}")))?;
    if text.starts_with('\u{feff}') {
        return Err(DailyFileError::File("不应有 BOM".into()));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(DailyFileError::File("最后一行须以 LF 结束".into()));
    };
    let mut rows = body.split('\n');
    let header = rows.next().unwrap_or_default();
    let fields: Vec<&str> = header.split('|').collect();
    let [date, count, total] = fields.as_slice() else {
        return Err(line_error(1, "首行须为 acctDate|count|total"));
    };
    let acct_date = parse_date(date).ok_or_else(|| line_error(1, "acctDate 不是日期"))?;
    if acct_date != expected_date {
        return Err(line_error(1, "acctDate 与文件名日期不符"));
    }
    let count: usize = count
        .parse()
        .ok()
        .filter(|_| count.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| line_error(1, "count 不是数字"))?;
    let total = fen(total, 1, "total")?;
    let mut lines = Vec::new();
    let mut serials = HashSet::new();
    let mut sum = Money::ZERO;
    for (index, row) in rows.enumerate() {
        let number = index + 2;
        if lines.len() >= MAX_FILE_LINES {
            return Err(DailyFileError::File("行数超限".into()));
        }
        if row.contains('\r') {
            return Err(line_error(number, "含 CR"));
        }
        let fields: Vec<&str> = row.split('|').collect();
        let [bank_serial, order_no, licence_no, amount, pay_time, channel] = fields.as_slice()
        else {
            return Err(line_error(number, "须为 6 个字段"));
        };
        if !is_serial(bank_serial) || !serials.insert(bank_serial.to_string()) {
            return Err(line_error(number, "bankSerial 格式错或重复"));
        }
        if !is_serial(order_no) {
            return Err(line_error(number, "orderNo 格式错"));
        }
        if !is_licence_no(licence_no) {
            return Err(line_error(number, "licenceNo 须为 12 位数字"));
        }
        let amount = fen(amount, number, "amount")?;
        let pay_time = parse_time(pay_time).ok_or_else(|| line_error(number, "payTime 格式错"))?;
        let channel =
            PayChannel::from_code(channel).ok_or_else(|| line_error(number, "channel 未知"))?;
        sum = sum
            .checked_add(amount)
            .ok_or_else(|| line_error(number, "合计溢出"))?;
        lines.push(FileLine {
            bank_serial: bank_serial.to_string(),
            order_no: order_no.to_string(),
            licence_no: licence_no.to_string(),
            amount,
            pay_time,
            channel,
        });
    }
    if lines.len() != count {
        return Err(line_error(
            1,
            format!("count {count} 与明细行数 {} 不符", lines.len()),
        ));
    }
    if sum != total {
        return Err(line_error(1, "total 与明细合计不符"));
    }
    Ok(TobaccoDailyFile {
        acct_date,
        lines,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
    }

    #[test]
    fn parses_a_file_with_lines_and_checks_totals() {
        let text = "20261202|2|1257800\n\
                    A1|YC1|430602100123|1256800|20261202091503|02\n\
                    A2|YC2|430602100124|1000|20261201233001|05\n";
        let file = parse_daily_file(text.as_bytes(), date()).expect("file");
        assert_eq!(file.total, Money::from_fen(1_257_800));
        assert_eq!(file.lines.len(), 2);
        assert_eq!(file.lines[1].channel, PayChannel::Nongxinyin);
        assert_eq!(file.lines[0].amount, Money::from_fen(1_256_800));
        assert_eq!(file_name("YYNS0001", date()), "YCJF_YYNS0001_20261202.txt");
    }

    #[test]
    fn an_empty_day_has_only_line_one() {
        let file = parse_daily_file(b"20261202|0|0\n", date()).expect("file");
        assert!(file.lines.is_empty());
    }

    #[test]
    fn refuses_damaged_files() {
        for bad in [
            &b"20261202|0|0"[..],
            b"\xef\xbb\xbf20261202|0|0\n",
            b"20261202|0|0\r\n",
            b"20261202|1|100\n",
            b"20261202|1|100\nA1|YC1|430602100123|101|20261202091503|02\n",
            b"20261202|2|200\nA1|YC1|430602100123|100|20261202091503|02\nA1|YC2|430602100123|100|20261202091503|02\n",
            b"20261202|1|100\nA1|YC1|430602100123|1.00|20261202091503|02\n",
            b"20261202|1|100\nA1|YC1|430602100123|100|20261202091503|06\n",
            b"20261203|0|0\n",
            b"20261202|0|0\n\n",
        ] {
            assert!(parse_daily_file(bad, date()).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
