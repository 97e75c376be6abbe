//! The T+1 files of a profile of spec 02's shape: a one-line totals file (总账) and a detail file
//! (明细, 0 bytes when nothing was written off), `|`-separated, GBK, CRLF after every line, amounts
//! in yuan with two decimals; a flag file marks both complete.
//!
//! Each type's count and sum in the details must equal the totals', and the grand total theirs:
//! a truncated detail file must fail here, not show up as one-sided entries in reconciliation.
//! Every error names its line: the totals line is line 1 and detail line n is line n + 1, as if
//! the detail file followed the totals file (which is how `parse_daily_file` takes them).

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveTime};
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::delimited::{lines_strict_crlf, DelimitedError, Line};
use codecs::Money;

use super::profile::{DailyFileSpec, Profile};
use crate::spi::{AdapterError, DailyFile, DailyRecord};

/// More detail lines than this is not one instance's day.
pub const MAX_DETAIL_LINES: usize = 1_000_000;

/// The three names of one AcctDate's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyFileNames {
    pub totals: String,
    pub detail: String,
    pub flag: String,
}

fn fill(pattern: &str, company_code: &str, acct_date: NaiveDate) -> String {
    pattern
        .replace("{company}", company_code)
        .replace("{date}", &yyyymmdd(acct_date))
}

pub fn file_names(
    spec: &DailyFileSpec,
    company_code: &str,
    acct_date: NaiveDate,
) -> DailyFileNames {
    DailyFileNames {
        totals: fill(&spec.totals_name, company_code, acct_date),
        detail: fill(&spec.detail_name, company_code, acct_date),
        flag: fill(&spec.flag_name, company_code, acct_date),
    }
}

fn error(line: usize, reason: impl Into<String>) -> AdapterError {
    AdapterError::DailyFile {
        line,
        reason: reason.into(),
    }
}

fn read_lines(bytes: &[u8], first_line: usize) -> Result<Vec<Line>, AdapterError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(error(first_line, "文件以UTF-8 BOM开头，不是GBK文件"));
    }
    let shift = first_line.saturating_sub(1);
    let mut lines = lines_strict_crlf(bytes, codecs::text::Charset::Gbk).map_err(|e| {
        let line = match &e {
            DelimitedError::Malformed { line, .. }
            | DelimitedError::BareCr { line }
            | DelimitedError::MissingCrlf { line } => *line,
        };
        error(line + shift, format!("{}：{e}", e.message_zh()))
    })?;
    for line in &mut lines {
        line.number += shift;
    }
    Ok(lines)
}

fn columns<'l>(
    line: &'l Line,
    names: &'l [String],
    what: &str,
) -> Result<HashMap<&'l str, &'l str>, AdapterError> {
    if line.fields.len() != names.len() {
        return Err(error(
            line.number,
            format!(
                "{what}应有{}个字段，实有{}个",
                names.len(),
                line.fields.len()
            ),
        ));
    }
    Ok(names
        .iter()
        .map(String::as_str)
        .zip(line.fields.iter().map(String::as_str))
        .collect())
}

fn column<'a>(
    values: &HashMap<&str, &'a str>,
    name: &str,
    line: usize,
) -> Result<&'a str, AdapterError> {
    values
        .get(name)
        .copied()
        .ok_or_else(|| error(line, format!("缺少字段{name}")))
}

fn count(text: &str, line: usize, name: &str) -> Result<usize, AdapterError> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(line, format!("{name}={text:?}不是笔数")));
    }
    text.parse()
        .map_err(|_| error(line, format!("{name}={text:?}不是笔数")))
}

/// Yuan with two decimals and no leading zeros (`166.32`, `0.00`), as spec 02's files write it.
fn amount(text: &str, line: usize, name: &str) -> Result<Money, AdapterError> {
    let bad = || error(line, format!("{name}={text:?}须为两位小数的元"));
    let int_part = text.split_once('.').map(|(int, _)| int).ok_or_else(bad)?;
    if int_part.len() > 1 && int_part.starts_with('0') {
        return Err(bad());
    }
    Money::parse_yuan(text).map_err(|_| bad())
}

fn date(text: &str, line: usize, name: &str) -> Result<NaiveDate, AdapterError> {
    parse_yyyymmdd(text).ok_or_else(|| error(line, format!("{name}={text:?}不是有效日期")))
}

/// Parses and checks one day's totals and detail files of `company_code`.
pub fn parse_files(
    profile: &Profile,
    company_code: &str,
    totals_bytes: &[u8],
    detail_bytes: &[u8],
) -> Result<DailyFile, AdapterError> {
    let spec = &profile.daily_file;
    let totals_lines = read_lines(totals_bytes, 1)?;
    let [totals_line] = totals_lines.as_slice() else {
        return Err(error(
            1,
            format!("总账文件应为一行，实有{}行", totals_lines.len()),
        ));
    };
    let totals = columns(totals_line, &spec.totals_columns, "总账行")?;
    let stated_company = column(&totals, "CompanyCode", 1)?;
    if stated_company != company_code {
        return Err(error(
            1,
            format!("单位代码{stated_company}不是{company_code}"),
        ));
    }
    let acct_date = date(column(&totals, "AcctDate", 1)?, 1, "AcctDate")?;

    let details = read_lines(detail_bytes, 2)?;
    if details.len() > MAX_DETAIL_LINES {
        return Err(error(1, format!("明细超过{MAX_DETAIL_LINES}行")));
    }
    let mut by_type: BTreeMap<&str, (usize, Money)> = spec
        .types
        .iter()
        .map(|t| (t.code.as_str(), (0usize, Money::ZERO)))
        .collect();
    let mut seen: HashMap<(NaiveDate, String), usize> = HashMap::with_capacity(details.len());
    let mut records = Vec::with_capacity(details.len());
    for line in &details {
        let number = line.number;
        let values = columns(line, &spec.detail_columns, "明细行")?;
        let line_date = date(column(&values, "AcctDate", number)?, number, "AcctDate")?;
        if line_date != acct_date {
            return Err(error(number, "记账日期与总账不符"));
        }
        let kind = column(&values, "Type", number)?;
        let amount_fen = amount(column(&values, "Amount", number)?, number, "Amount")?;
        let Some((type_count, type_sum)) = by_type.get_mut(kind) else {
            return Err(error(number, format!("交易类型{kind:?}未定义")));
        };
        *type_count += 1;
        *type_sum = type_sum
            .checked_add(amount_fen)
            .ok_or_else(|| error(number, "金额合计溢出"))?;
        let tx_date = date(column(&values, "TxDate", number)?, number, "TxDate")?;
        let bank_serial = column(&values, "BankSerial", number)?;
        if bank_serial.is_empty() {
            return Err(error(number, "银行流水号为空"));
        }
        if let Some(first) = seen.insert((tx_date, bank_serial.to_string()), number) {
            return Err(error(
                number,
                format!("交易日期与银行流水号与第{first}行重复"),
            ));
        }
        let customer_no = column(&values, "CustomerNo", number)?;
        if customer_no.is_empty()
            || spec
                .customer_no_max_len
                .is_some_and(|max| customer_no.len() > max)
        {
            return Err(error(number, "用户号为空或超长"));
        }
        let channel_code = column(&values, "Channel", number)?;
        let channel = profile
            .channels
            .spi_code(channel_code)
            .ok_or_else(|| error(number, format!("渠道{channel_code:?}未定义")))?;
        records.push(DailyRecord {
            line_no: number,
            bank_serial: bank_serial.to_string(),
            partner_serial: column(&values, "PartnerSerial", number)?.to_string(),
            customer_no: customer_no.to_string(),
            amount: amount_fen,
            tx_date,
            // The files carry no time of day.
            tx_time: NaiveTime::MIN,
            channel: channel.to_string(),
        });
    }

    let mut grand_count = 0usize;
    let mut grand_sum = Money::ZERO;
    for total in &spec.types {
        let (found_count, found_sum) = by_type
            .get(total.code.as_str())
            .copied()
            .unwrap_or((0, Money::ZERO));
        let stated_count = count(column(&totals, &total.count, 1)?, 1, &total.count)?;
        let stated_sum = amount(column(&totals, &total.amount, 1)?, 1, &total.amount)?;
        if stated_count != found_count || stated_sum != found_sum {
            return Err(error(
                1,
                format!(
                    "类型{}：总账{stated_count}笔{stated_sum}元，明细{found_count}笔{found_sum}元（文件可能不完整）",
                    total.code
                ),
            ));
        }
        grand_count += found_count;
        grand_sum = grand_sum
            .checked_add(found_sum)
            .ok_or_else(|| error(1, "金额合计溢出"))?;
    }
    let stated_count = count(column(&totals, &spec.total_count, 1)?, 1, &spec.total_count)?;
    let stated_sum = amount(
        column(&totals, &spec.total_amount, 1)?,
        1,
        &spec.total_amount,
    )?;
    if stated_count != grand_count || stated_sum != grand_sum {
        return Err(error(
            1,
            format!(
                "合计：总账{stated_count}笔{stated_sum}元，各类型合计{grand_count}笔{grand_sum}元"
            ),
        ));
    }
    Ok(DailyFile { acct_date, records })
}

/// The SPI's single-buffer form: the totals file's bytes immediately followed by the detail
/// file's. The totals file is exactly one CRLF-terminated line, so the split is unambiguous.
pub fn parse_concatenated(
    profile: &Profile,
    company_code: &str,
    bytes: &[u8],
) -> Result<DailyFile, AdapterError> {
    let split = bytes
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .map(|at| at + 2)
        .ok_or_else(|| error(1, "总账行缺少CRLF"))?;
    let (totals, detail) = bytes.split_at_checked(split).unwrap_or((bytes, &[]));
    parse_files(profile, company_code, totals, detail)
}
