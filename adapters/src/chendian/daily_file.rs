//! The daily file `CDGJ_<BankCode>_<YYYYMMDD>.txt`: strict GBK, CRLF after every line (the last
//! too), line 1 `<AcctDate>|<count>|<total yuan>`, then one detail line per payment written off
//! that AcctDate, in any order:
//! `<BankSerial>|<PartnerSerial>|<CustomerNo>|<amount yuan>|<TxDate>|<TxTime>|<Channel>`.
//!
//! The summary's count and total must equal the details': a truncated file must fail here, not
//! show up in reconciliation as payments the partner never received. Every error names its line.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveTime};
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::delimited::{lines_strict_crlf, DelimitedError, Line};
use codecs::text::Charset;
use codecs::Money;

use super::client::PAYEE;
use crate::spi::{AdapterError, DailyFile, DailyRecord};

/// More detail lines than this is not a daily file of one bank's electricity payments.
pub const MAX_DETAIL_LINES: usize = 1_000_000;
const SUMMARY_FIELDS: usize = 3;
const DETAIL_FIELDS: usize = 7;

/// `CDGJ_<BankCode>_<YYYYMMDD>.txt`.
pub fn file_name(bank_code: &str, acct_date: NaiveDate) -> String {
    format!("{PAYEE}_{bank_code}_{}.txt", yyyymmdd(acct_date))
}

/// The AcctDate a file name stands for, when it is this BankCode's daily file.
pub fn acct_date_of_file_name(bank_code: &str, name: &str) -> Option<NaiveDate> {
    let date = name
        .strip_prefix(PAYEE)?
        .strip_prefix('_')?
        .strip_prefix(bank_code)?
        .strip_prefix('_')?
        .strip_suffix(".txt")?;
    parse_yyyymmdd(date)
}

fn error(line: usize, reason: impl Into<String>) -> AdapterError {
    AdapterError::DailyFile {
        line,
        reason: reason.into(),
    }
}

/// Parses and checks a whole file.
pub fn parse(bytes: &[u8]) -> Result<DailyFile, AdapterError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        // The spec's file is GBK: a UTF-8 BOM means someone re-saved it in another encoding.
        return Err(error(1, "文件以UTF-8 BOM开头，不是GBK文件"));
    }
    let lines = lines_strict_crlf(bytes, Charset::Gbk).map_err(|e| {
        let line = match &e {
            DelimitedError::Malformed { line, .. }
            | DelimitedError::BareCr { line }
            | DelimitedError::MissingCrlf { line } => *line,
        };
        error(line, format!("{}：{e}", e.message_zh()))
    })?;
    let Some((summary, details)) = lines.split_first() else {
        return Err(error(1, "文件为空，缺少汇总行"));
    };
    let (acct_date, stated_count, stated_total) = parse_summary(summary)?;
    if details.len() > MAX_DETAIL_LINES {
        return Err(error(1, format!("明细超过{MAX_DETAIL_LINES}行")));
    }

    let mut records = Vec::with_capacity(details.len());
    let mut seen: HashMap<(NaiveDate, String), usize> = HashMap::with_capacity(details.len());
    let mut total = Money::ZERO;
    for line in details {
        let record = parse_detail(line)?;
        if let Some(first) = seen.insert((record.tx_date, record.bank_serial.clone()), line.number)
        {
            return Err(error(
                line.number,
                format!("交易日期与银行流水号与第{first}行重复"),
            ));
        }
        total = total
            .checked_add(record.amount)
            .ok_or_else(|| error(line.number, "金额合计溢出"))?;
        records.push(record);
    }
    if records.len() != stated_count {
        return Err(error(
            1,
            format!(
                "汇总笔数{stated_count}与明细笔数{}不符（文件可能不完整）",
                records.len()
            ),
        ));
    }
    if total != stated_total {
        return Err(error(
            1,
            format!("汇总金额{stated_total}与明细合计{total}不符（文件可能不完整）"),
        ));
    }
    Ok(DailyFile { acct_date, records })
}

fn fields<'l>(line: &'l Line, expected: usize, what: &str) -> Result<Vec<&'l str>, AdapterError> {
    if line.fields.len() != expected {
        return Err(error(
            line.number,
            format!("{what}应有{expected}个字段，实有{}个", line.fields.len()),
        ));
    }
    Ok(line.fields.iter().map(String::as_str).collect())
}

fn parse_summary(line: &Line) -> Result<(NaiveDate, usize, Money), AdapterError> {
    let values = fields(line, SUMMARY_FIELDS, "汇总行")?;
    let [date, count, total] = values.as_slice() else {
        return Err(error(line.number, "汇总行字段数错误"));
    };
    let acct_date =
        parse_yyyymmdd(date).ok_or_else(|| error(line.number, format!("记账日期{date:?}无效")))?;
    if count.is_empty() || count.len() > 9 || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(line.number, format!("汇总笔数{count:?}无效")));
    }
    let count: usize = count
        .parse()
        .map_err(|_| error(line.number, format!("汇总笔数{count:?}无效")))?;
    let total = Money::parse_yuan(total)
        .map_err(|_| error(line.number, format!("汇总金额{total:?}须为两位小数的元")))?;
    Ok((acct_date, count, total))
}

fn parse_detail(line: &Line) -> Result<DailyRecord, AdapterError> {
    let number = line.number;
    let values = fields(line, DETAIL_FIELDS, "明细行")?;
    let [bank_serial, partner_serial, customer_no, amount, tx_date, tx_time, channel] =
        values.as_slice()
    else {
        return Err(error(number, "明细行字段数错误"));
    };
    let code = |name: &str, value: &str, max_len: usize| {
        if value.is_empty() || value.len() > max_len || !value.bytes().all(|b| b.is_ascii_graphic())
        {
            // The value itself is not quoted: it may be a customer number.
            Err(error(number, format!("{name}须为1至{max_len}位ASCII字符")))
        } else {
            Ok(value.to_string())
        }
    };
    let bank_serial = code("银行流水号", bank_serial, 20)?;
    let partner_serial = code("电力流水号", partner_serial, 20)?;
    let customer_no = code("户号", customer_no, 16)?;
    let amount = Money::parse_yuan(amount)
        .map_err(|_| error(number, format!("金额{amount:?}须为两位小数的元")))?;
    if !amount.is_positive() {
        return Err(error(number, format!("金额{amount}须大于0")));
    }
    let tx_date =
        parse_yyyymmdd(tx_date).ok_or_else(|| error(number, format!("交易日期{tx_date:?}无效")))?;
    let time_ok = tx_time.len() == 6 && tx_time.bytes().all(|b| b.is_ascii_digit());
    let tx_time = NaiveTime::parse_from_str(tx_time, "%H%M%S")
        .ok()
        .filter(|_| time_ok)
        .ok_or_else(|| error(number, format!("交易时间{tx_time:?}无效")))?;
    if !matches!(*channel, "01" | "02" | "03" | "04") {
        return Err(error(number, format!("渠道{channel:?}不是01至04")));
    }
    Ok(DailyRecord {
        line_no: number,
        bank_serial,
        partner_serial,
        customer_no,
        amount,
        tx_date,
        tx_time,
        channel: channel.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    const GOOD: &[u8] = b"20261203|2|523.35\r\n\
B2026120300000000002|P2026120300000000077|4310020000000001|300.00|20261203|101010|02\r\n\
B2026120200000000950|P2026120300000000003|4310020000000002|223.35|20261202|233512|01\r\n";

    fn line_of(result: Result<DailyFile, AdapterError>) -> Option<usize> {
        match result {
            Err(AdapterError::DailyFile { line, .. }) => Some(line),
            _ => None,
        }
    }

    #[test]
    fn a_good_file_parses() {
        let file = parse(GOOD).expect("parses");
        assert_eq!(file.acct_date, day(2026, 12, 3));
        assert_eq!(file.records.len(), 2);
        let first = &file.records[0];
        assert_eq!(first.line_no, 2);
        assert_eq!(first.bank_serial, "B2026120300000000002");
        assert_eq!(first.partner_serial, "P2026120300000000077");
        assert_eq!(first.customer_no, "4310020000000001");
        assert_eq!(first.amount, Money::from_fen(30000));
        assert_eq!(first.tx_date, day(2026, 12, 3));
        assert_eq!(
            first.tx_time,
            NaiveTime::from_hms_opt(10, 10, 10).expect("time")
        );
        assert_eq!(first.channel, "02");
        // Accepted after the partner's 23:30 day-end: TxDate is the day before the AcctDate.
        assert_eq!(file.records[1].tx_date, day(2026, 12, 2));
        assert_eq!(file.records[1].amount, Money::from_fen(22335));
        assert_eq!(file.records[1].line_no, 3);
    }

    #[test]
    fn an_empty_day_has_only_the_summary() {
        let file = parse(b"20261205|0|0.00\r\n").expect("parses");
        assert_eq!(file.acct_date, day(2026, 12, 5));
        assert!(file.records.is_empty());
        assert_eq!(line_of(parse(b"")), Some(1));
    }

    #[test]
    fn summary_must_cover_the_details() {
        let bad_count = String::from_utf8_lossy(GOOD).replacen("|2|", "|3|", 1);
        assert_eq!(line_of(parse(bad_count.as_bytes())), Some(1));
        let bad_total = String::from_utf8_lossy(GOOD).replacen("523.35", "523.36", 1);
        assert_eq!(line_of(parse(bad_total.as_bytes())), Some(1));
        // A file cut after its first detail line.
        let cut = b"20261203|2|523.35\r\n\
B2026120300000000002|P2026120300000000077|4310020000000001|300.00|20261203|101010|02\r\n";
        assert_eq!(line_of(parse(cut)), Some(1));
    }

    #[test]
    fn every_line_ends_with_crlf() {
        let no_final_crlf = &GOOD[..GOOD.len() - 2];
        assert_eq!(line_of(parse(no_final_crlf)), Some(3));
        let bare_lf = String::from_utf8_lossy(GOOD).replacen("\r\n", "\n", 1);
        assert_eq!(line_of(parse(bare_lf.as_bytes())), Some(1));
    }

    #[test]
    fn amounts_have_exactly_two_decimals() {
        let three = String::from_utf8_lossy(GOOD).replacen("|300.00|", "|300.000|", 1);
        assert_eq!(line_of(parse(three.as_bytes())), Some(2));
        let one = String::from_utf8_lossy(GOOD).replacen("|300.00|", "|300.0|", 1);
        assert_eq!(line_of(parse(one.as_bytes())), Some(2));
        let zero = b"20261203|1|0.00\r\nB1|P1|4310020000000001|0.00|20261203|101010|02\r\n";
        assert_eq!(line_of(parse(zero)), Some(2));
    }

    #[test]
    fn duplicate_payments_are_refused() {
        let line = b"B2026120300000000002|P2026120300000000077|4310020000000001|300.00|20261203|101010|02\r\n";
        let mut file = b"20261203|2|600.00\r\n".to_vec();
        file.extend_from_slice(line);
        file.extend_from_slice(line);
        let result = parse(&file);
        assert_eq!(line_of(result), Some(3));
        // Same serial on another TxDate is another payment.
        let mut file = b"20261203|2|600.00\r\n".to_vec();
        file.extend_from_slice(line);
        file.extend_from_slice(
            b"B2026120300000000002|P2026120300000000078|4310020000000001|300.00|20261202|235959|02\r\n",
        );
        assert_eq!(parse(&file).map(|f| f.records.len()).ok(), Some(2));
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let six_fields = b"20261203|1|1.00\r\nB1|P1|4310020000000001|1.00|20261203|101010\r\n";
        assert_eq!(line_of(parse(six_fields)), Some(2));
        let bad_time = b"20261203|1|1.00\r\nB1|P1|4310020000000001|1.00|20261203|246060|02\r\n";
        assert_eq!(line_of(parse(bad_time)), Some(2));
        let bad_channel = b"20261203|1|1.00\r\nB1|P1|4310020000000001|1.00|20261203|101010|05\r\n";
        assert_eq!(line_of(parse(bad_channel)), Some(2));
        let bad_date = b"20261232|0|0.00\r\n";
        assert_eq!(line_of(parse(bad_date)), Some(1));
        let bom = b"\xEF\xBB\xBF20261203|0|0.00\r\n";
        assert_eq!(line_of(parse(bom)), Some(1));
        // A half GBK character on line 2.
        let half = b"20261203|1|1.00\r\nB1|P1|4310\xD5|1.00|20261203|101010|02\r\n";
        assert_eq!(line_of(parse(half)), Some(2));
    }

    #[test]
    fn file_names_follow_the_spec() {
        assert_eq!(
            file_name("NSH43102", day(2026, 12, 3)),
            "CDGJ_NSH43102_20261203.txt"
        );
        assert_eq!(
            acct_date_of_file_name("NSH43102", "CDGJ_NSH43102_20261203.txt"),
            Some(day(2026, 12, 3))
        );
        assert_eq!(
            acct_date_of_file_name("NSH43102", "CDGJ_NSH43103_20261203.txt"),
            None
        );
        assert_eq!(
            acct_date_of_file_name("NSH43102", "CDGJ_NSH43102_20261203.txt.tmp"),
            None
        );
    }
}
