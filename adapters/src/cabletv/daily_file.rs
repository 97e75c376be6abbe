//! The archive `CATV_<BankCode>_<YYYYMMDD>.txt` (GBK, CRLF): line 1 `AcctDate|CableCount|CableAmount`,
//! then the 5002 records in page order, `Serial|TxDate|CableSerial|CustomerNo|PackageCode|Months|Amount|Channel`.

use chrono::{NaiveDate, NaiveTime};
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::text::{self, Charset};
use codecs::Money;

use super::ops::{DetailRecord, Totals};
use crate::spi::{AdapterError, DailyFile, DailyRecord};

pub fn file_name(bank_code: &str, acct_date: NaiveDate) -> String {
    format!("CATV_{bank_code}_{}.txt", yyyymmdd(acct_date))
}

/// Writes the archive from the 5001 totals and the 5002 records.
pub fn write(
    acct_date: NaiveDate,
    totals: &Totals,
    records: &[DetailRecord],
) -> Result<Vec<u8>, AdapterError> {
    let mut out = format!(
        "{}|{}|{}\r\n",
        yyyymmdd(acct_date),
        totals.count,
        totals.amount.fen()
    );
    for r in records {
        out.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{}|{}\r\n",
            r.serial,
            yyyymmdd(r.tx_date),
            r.cable_serial,
            r.customer_no,
            r.package_code,
            r.months,
            r.amount.fen(),
            r.channel
        ));
    }
    text::encode(&out, Charset::Gbk).map_err(|e| AdapterError::Encode(e.to_string()))
}

fn bad(line: usize, reason: impl Into<String>) -> AdapterError {
    AdapterError::DailyFile {
        line,
        reason: reason.into(),
    }
}

/// Parses the archive for the T+1 engine, checking the count and sum against line 1. The
/// records carry no time: 00:00:00 stands in.
pub fn parse(bytes: &[u8]) -> Result<DailyFile, AdapterError> {
    let content = text::decode(bytes, Charset::Gbk).map_err(|e| bad(0, e.to_string()))?;
    let content = content.strip_prefix('\u{feff}').unwrap_or(&content);
    let mut lines = content
        .split("\r\n")
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or_else(|| bad(1, "空文件"))?;
    let head: Vec<&str> = first.split('|').collect();
    let [date, count, amount] = head.as_slice() else {
        return Err(bad(1, "汇总行应为3个字段"));
    };
    let acct_date = parse_yyyymmdd(date).ok_or_else(|| bad(1, "对账日期非法"))?;
    let count: usize = count.parse().map_err(|_| bad(1, "笔数非法"))?;
    let amount = Money::parse_fen_digits(amount).map_err(|e| bad(1, e.to_string()))?;
    let mut records = Vec::new();
    let mut sum = Money::ZERO;
    for (index, line) in lines {
        let line_no = index + 1;
        let fields: Vec<&str> = line.split('|').collect();
        let [serial, tx_date, cable_serial, customer_no, _package, _months, amount, channel] =
            fields.as_slice()
        else {
            return Err(bad(line_no, "明细行应为8个字段"));
        };
        let amount = Money::parse_fen_digits(amount).map_err(|e| bad(line_no, e.to_string()))?;
        sum = sum
            .checked_add(amount)
            .ok_or_else(|| bad(line_no, "金额溢出"))?;
        records.push(DailyRecord {
            line_no,
            bank_serial: serial.to_string(),
            partner_serial: cable_serial.to_string(),
            customer_no: customer_no.to_string(),
            amount,
            tx_date: parse_yyyymmdd(tx_date).ok_or_else(|| bad(line_no, "交易日期非法"))?,
            tx_time: NaiveTime::MIN,
            channel: channel.to_string(),
        });
    }
    if records.len() != count || sum != amount {
        return Err(bad(
            1,
            format!(
                "汇总{count}笔{}分与明细{}笔{}分不符",
                amount.fen(),
                records.len(),
                sum.fen()
            ),
        ));
    }
    Ok(DailyFile { acct_date, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_built_file_and_checks_its_totals() {
        let text = "20261202|2|33800\r\nYX202612021930050042|20261202|CATV2026120200000001|YX2019000123|JB0001|12|31200|SJ\r\nYX202612021931000043|20261202|CATV2026120200000002|YX2019000124|JB0001|1|2600|GT\r\n";
        let file = parse(text.as_bytes());
        let Ok(file) = file else { panic!("{file:?}") };
        assert_eq!(
            file.acct_date,
            NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default()
        );
        assert_eq!(file.records.len(), 2);
        assert_eq!(file.records[0].amount, Money::from_fen(31_200));
        assert_eq!(file.records[1].partner_serial, "CATV2026120200000002");
        let truncated = "20261202|2|33800\r\nYX202612021930050042|20261202|CATV2026120200000001|YX2019000123|JB0001|12|31200|SJ\r\n";
        assert!(parse(truncated.as_bytes()).is_err());
        assert_eq!(
            file_name("YX0001", file.acct_date),
            "CATV_YX0001_20261202.txt"
        );
    }
}
