//! `CXJM_<bankCode>_<acctDate>.txt`: UTF-8 without BOM, LF after every line, a summary line then
//! one line per 2001 accepted with that acctDate. Parsed strictly and checked against its summary
//! so that a truncated file cannot pass as one-sided entries.

use chrono::{NaiveDate, NaiveDateTime};
use codecs::Money;

use super::messages::{parse_amount, parse_time, PayChannel};

/// A file larger than this is refused rather than parsed.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

pub fn file_name(bank_code: &str, acct_date: NaiveDate) -> String {
    format!(
        "CXJM_{bank_code}_{}.txt",
        codecs::clock::yyyymmdd(acct_date)
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("医保对账文件第{line}行错误：{reason}")]
pub struct DailyFileError {
    pub line: usize,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordStatus {
    /// `1`
    Standing,
    /// `2`: cancelled (撤销) the same day.
    Cancelled,
}

#[derive(Clone, PartialEq, Eq)]
pub struct MedicalDailyRecord {
    pub line_no: usize,
    /// Matching key with `req_date`.
    pub req_serial: String,
    pub req_date: NaiveDate,
    pub pay_no: String,
    pub id_no: String,
    pub name: String,
    pub year: String,
    pub amount: Money,
    pub channel: PayChannel,
    pub pay_time: NaiveDateTime,
    pub status: RecordStatus,
}

impl std::fmt::Debug for MedicalDailyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedicalDailyRecord")
            .field("line_no", &self.line_no)
            .field("req_serial", &self.req_serial)
            .field("req_date", &self.req_date)
            .field("pay_no", &self.pay_no)
            .field("id_no", &super::id_number::mask_id_number(&self.id_no))
            .field("amount", &self.amount)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MedicalDailyFile {
    pub acct_date: NaiveDate,
    pub records: Vec<MedicalDailyRecord>,
}

impl MedicalDailyFile {
    /// Records to settle: standing ones.
    pub fn standing(&self) -> impl Iterator<Item = &MedicalDailyRecord> {
        self.records
            .iter()
            .filter(|r| r.status == RecordStatus::Standing)
    }
}

pub fn parse(bytes: &[u8], expected_date: NaiveDate) -> Result<MedicalDailyFile, DailyFileError> {
    let fail = |line: usize, reason: &str| DailyFileError {
        line,
        reason: reason.to_string(),
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(fail(0, "文件过大"));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(fail(1, "文件带BOM"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| fail(0, "不是UTF-8"))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(fail(0, "末行缺少换行（文件可能不完整）"));
    };
    let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let (_, summary) = lines.next().ok_or_else(|| fail(1, "缺少汇总行"))?;
    let fields: Vec<&str> = summary.split('|').collect();
    let [date, valid_count, valid_amount, cancel_count, cancel_amount] = fields.as_slice() else {
        return Err(fail(1, "汇总行须为5个字段"));
    };
    let acct_date = codecs::clock::parse_yyyymmdd(date).ok_or_else(|| fail(1, "对账日期错误"))?;
    if acct_date != expected_date {
        return Err(fail(1, "对账日期与所取日期不符"));
    }
    let count = |t: &str| -> Result<usize, DailyFileError> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(1, "笔数错误"));
        }
        t.parse().map_err(|_| fail(1, "笔数错误"))
    };
    let money = |t: &str, line: usize| parse_amount(t).ok_or_else(|| fail(line, "金额格式错误"));
    let (valid_count, cancel_count) = (count(valid_count)?, count(cancel_count)?);
    let (valid_amount, cancel_amount) = (money(valid_amount, 1)?, money(cancel_amount, 1)?);

    let mut records = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (line_no, line) in lines {
        if line.ends_with('\r') {
            return Err(fail(line_no, "行尾有CR"));
        }
        let fields: Vec<&str> = line.split('|').collect();
        let [req_serial, req_date, pay_no, id_no, name, year, amount, channel, pay_time, status] =
            fields.as_slice()
        else {
            return Err(fail(line_no, "明细行须为10个字段"));
        };
        let record = MedicalDailyRecord {
            line_no,
            req_serial: req_serial.to_string(),
            req_date: codecs::clock::parse_yyyymmdd(req_date)
                .ok_or_else(|| fail(line_no, "reqDate错误"))?,
            pay_no: pay_no.to_string(),
            id_no: id_no.to_string(),
            name: name.to_string(),
            year: year.to_string(),
            amount: money(amount, line_no)?,
            channel: PayChannel::from_code(channel).ok_or_else(|| fail(line_no, "渠道错误"))?,
            pay_time: parse_time(pay_time).ok_or_else(|| fail(line_no, "payTime错误"))?,
            status: match *status {
                "1" => RecordStatus::Standing,
                "2" => RecordStatus::Cancelled,
                _ => return Err(fail(line_no, "状态须为1或2")),
            },
        };
        if record.req_serial.is_empty() || record.pay_no.is_empty() {
            return Err(fail(line_no, "reqSerial或payNo为空"));
        }
        if !keys.insert((record.req_date, record.req_serial.clone())) {
            return Err(fail(line_no, "重复的(reqDate, reqSerial)"));
        }
        records.push(record);
    }
    let sum = |status: RecordStatus| -> (usize, Option<Money>) {
        let chosen: Vec<Money> = records
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.amount)
            .collect();
        let total = chosen
            .iter()
            .try_fold(Money::ZERO, |acc, m| acc.checked_add(*m));
        (chosen.len(), total)
    };
    if sum(RecordStatus::Standing) != (valid_count, Some(valid_amount)) {
        return Err(fail(1, "有效笔数或金额与明细不符"));
    }
    if sum(RecordStatus::Cancelled) != (cancel_count, Some(cancel_amount)) {
        return Err(fail(1, "撤销笔数或金额与明细不符"));
    }
    Ok(MedicalDailyFile { acct_date, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "20261202|1|400.00|1|380.00\n\
XH202612021030150001|20261202|P0001|431227199003150016|张三|2027|400.00|04|20261202103016|1\n\
XH202612021100000002|20261202|P0002|11010519491231002X|李五|2027|380.00|01|20261202110001|2\n";

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
    }

    #[test]
    fn a_hand_built_file_parses() {
        let file = parse(FILE.as_bytes(), date()).expect("file");
        assert_eq!(file.records.len(), 2);
        let first = file.records.first().expect("first");
        assert_eq!(first.req_serial, "XH202612021030150001");
        assert_eq!(first.amount, Money::from_fen(40_000));
        assert_eq!(first.channel, PayChannel::Mobile);
        assert_eq!(file.standing().count(), 1);
        assert_eq!(file_name("HHXH0001", date()), "CXJM_HHXH0001_20261202.txt");
    }

    #[test]
    fn broken_files_are_refused() {
        let truncated = FILE
            .rsplit_once("XH20261202110000")
            .map(|(a, _)| a)
            .expect("cut");
        assert!(parse(truncated.as_bytes(), date()).is_err());
        let without_last_line: String = FILE.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            parse(without_last_line.as_bytes(), date()).map_err(|e| e.line),
            Err(1)
        );
        let crlf = FILE.replace('\n', "\r\n");
        assert!(parse(crlf.as_bytes(), date()).is_err());
        let bom = format!("\u{feff}{FILE}");
        assert!(parse(bom.as_bytes(), date()).is_err());
        let other_day = NaiveDate::from_ymd_opt(2026, 12, 3).expect("d");
        assert!(parse(FILE.as_bytes(), other_day).is_err());
        let empty_day = "20261202|0|0.00|0|0.00\n";
        assert_eq!(
            parse(empty_day.as_bytes(), date()).map(|f| f.records.len()),
            Ok(0)
        );
    }
}
