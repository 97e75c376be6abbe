//! The core's daily journal file `CORE_MBP_<CoreDate>.txt` (core-banking.md, "Daily journal file").
//!
//! GBK, CRLF after every line (the last too), no column-name line, ten `|`-separated fields per
//! detail line, then `TOTAL|<count>|<sum of S>|<sum of V>`. The TOTAL line is checked so that a
//! truncated file is refused instead of producing one-sided entries. A UTF-8 BOM and trailing
//! blank lines are tolerated. The whole file is decoded before it is split, so a `|` byte that is
//! the trail byte of a GBK character can never split a field.

use std::collections::HashSet;

use chrono::NaiveDate;
use codecs::clock::parse_yyyymmdd;
use codecs::delimited::{lines_strict_crlf, DelimitedError};
use codecs::text::Charset;
use codecs::Money;
use serde::{Deserialize, Serialize};

const FIELD_COUNT: usize = 10;
/// CoreSeqNo is `C` + CoreDate + 10 digits.
const CORE_SEQ_NO_LEN: usize = 19;
const HUB_SEQ_NO_MAX_LEN: usize = 32;
/// A daily file of one channel is far smaller; anything larger is refused rather than loaded.
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;

/// One day of the core's MBP postings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreFile {
    pub core_date: NaiveDate,
    pub records: Vec<CoreRecord>,
}

/// Posting status of a core file line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoreStatus {
    /// An 8002 posted on this CoreDate and standing when the file was cut.
    #[serde(rename = "S")]
    Standing,
    /// An 8002 posted and reversed on this same CoreDate (net zero).
    #[serde(rename = "R")]
    ReversedSameDay,
    /// An 8003 posted on this CoreDate reversing an original of an earlier CoreDate.
    #[serde(rename = "V")]
    ReversalOfEarlier,
}

impl CoreStatus {
    pub fn letter(self) -> char {
        match self {
            CoreStatus::Standing => 'S',
            CoreStatus::ReversedSameDay => 'R',
            CoreStatus::ReversalOfEarlier => 'V',
        }
    }
}

/// One detail line of the core file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreRecord {
    pub line_no: usize,
    pub core_date: NaiveDate,
    pub core_seq_no: String,
    /// SeqNo of the hub's request (the 8002, or the 8003 for a V line).
    pub hub_seq_no: String,
    pub hub_tran_date: NaiveDate,
    pub debit_acct: String,
    pub credit_acct: String,
    pub amount: Money,
    pub status: CoreStatus,
    /// For a V line, the CoreSeqNo of the original it reverses.
    pub orig_core_seq_no: Option<String>,
    pub purpose: String,
}

/// Why a core file was refused. Every variant that concerns a line names it (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("核心对账文件过大: {size_bytes} 字节")]
    TooLarge { size_bytes: usize },
    #[error("核心对账文件第{line}行: 不是合法的GBK编码 ({detail})")]
    Encoding { line: usize, detail: String },
    #[error("核心对账文件第{line}行: 行尾缺少CRLF")]
    MissingCrlf { line: usize },
    #[error("核心对账文件第{line}行: 空行")]
    BlankLine { line: usize },
    #[error("核心对账文件第{line}行: 应为{expected}个字段, 实际{found}个")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("核心对账文件第{line}行: 字段{field}的值{value:?}不合法")]
    BadField {
        line: usize,
        field: &'static str,
        value: String,
    },
    #[error("核心对账文件第{line}行: 核心日期{found}与文件日期{expected}不符")]
    WrongDate {
        line: usize,
        expected: NaiveDate,
        found: NaiveDate,
    },
    #[error("核心对账文件第{line}行: 核心流水号{core_seq_no}重复")]
    DuplicateSeqNo { line: usize, core_seq_no: String },
    #[error("核心对账文件在第{last_line}行结束, 缺少TOTAL汇总行 (文件可能被截断)")]
    MissingTotal { last_line: usize },
    #[error("核心对账文件第{line}行: TOTAL汇总行之后还有内容")]
    AfterTotal { line: usize },
    #[error("核心对账文件第{line}行: TOTAL汇总{field}为{stated}, 明细合计为{computed}")]
    TotalMismatch {
        line: usize,
        field: &'static str,
        stated: String,
        computed: String,
    },
    #[error("核心对账文件没有明细行, 无法确定核心日期; 请按文件名给出日期")]
    UnknownDate,
}

impl FileError {
    /// Stable code for logs, metrics and the admin console.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::TooLarge { .. } => "CORE_FILE_TOO_LARGE",
            FileError::Encoding { .. } => "CORE_FILE_ENCODING",
            FileError::MissingCrlf { .. } => "CORE_FILE_MISSING_CRLF",
            FileError::BlankLine { .. } => "CORE_FILE_BLANK_LINE",
            FileError::FieldCount { .. } => "CORE_FILE_FIELD_COUNT",
            FileError::BadField { .. } => "CORE_FILE_BAD_FIELD",
            FileError::WrongDate { .. } => "CORE_FILE_WRONG_DATE",
            FileError::DuplicateSeqNo { .. } => "CORE_FILE_DUPLICATE_SEQ_NO",
            FileError::MissingTotal { .. } => "CORE_FILE_MISSING_TOTAL",
            FileError::AfterTotal { .. } => "CORE_FILE_AFTER_TOTAL",
            FileError::TotalMismatch { .. } => "CORE_FILE_TOTAL_MISMATCH",
            FileError::UnknownDate => "CORE_FILE_UNKNOWN_DATE",
        }
    }

    /// The 1-based line the error is about, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            FileError::Encoding { line, .. }
            | FileError::MissingCrlf { line }
            | FileError::BlankLine { line }
            | FileError::FieldCount { line, .. }
            | FileError::BadField { line, .. }
            | FileError::WrongDate { line, .. }
            | FileError::DuplicateSeqNo { line, .. }
            | FileError::AfterTotal { line }
            | FileError::TotalMismatch { line, .. } => Some(*line),
            FileError::MissingTotal { last_line } => Some(*last_line),
            FileError::TooLarge { .. } | FileError::UnknownDate => None,
        }
    }
}

/// The CoreDate in a file name `CORE_MBP_<YYYYMMDD>.txt` (or `.ok`).
pub fn date_from_file_name(name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix("CORE_MBP_")?;
    let digits = rest
        .strip_suffix(".txt")
        .or_else(|| rest.strip_suffix(".ok"))?;
    parse_yyyymmdd(digits)
}

/// Parses a core file, taking its CoreDate from its detail lines. A file with only its TOTAL line
/// (a day without MBP postings) has no date in it: use [`parse_for_date`] for those.
pub fn parse(bytes: &[u8]) -> Result<CoreFile, FileError> {
    let (records, _) = parse_lines(bytes)?;
    let core_date = records
        .first()
        .map(|r| r.core_date)
        .ok_or(FileError::UnknownDate)?;
    check_dates(&records, core_date)?;
    Ok(CoreFile { core_date, records })
}

/// Parses the core file of a known CoreDate (from its name); every line must carry that date.
pub fn parse_for_date(bytes: &[u8], core_date: NaiveDate) -> Result<CoreFile, FileError> {
    let (records, _) = parse_lines(bytes)?;
    check_dates(&records, core_date)?;
    Ok(CoreFile { core_date, records })
}

fn check_dates(records: &[CoreRecord], core_date: NaiveDate) -> Result<(), FileError> {
    match records.iter().find(|r| r.core_date != core_date) {
        Some(r) => Err(FileError::WrongDate {
            line: r.line_no,
            expected: core_date,
            found: r.core_date,
        }),
        None => Ok(()),
    }
}

fn bad(line: usize, field: &'static str, value: &str) -> FileError {
    FileError::BadField {
        line,
        field,
        value: value.to_string(),
    }
}

fn is_core_seq_no(text: &str) -> bool {
    text.len() == CORE_SEQ_NO_LEN
        && text.starts_with('C')
        && text.bytes().skip(1).all(|b| b.is_ascii_digit())
}

fn parse_lines(bytes: &[u8]) -> Result<(Vec<CoreRecord>, usize), FileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            size_bytes: bytes.len(),
        });
    }
    // Decoding whole before splitting, CRLF, BOM and trailing blank lines: the shared reader.
    let lines = lines_strict_crlf(bytes, Charset::Gbk).map_err(|e| match e {
        DelimitedError::Malformed { line, .. } => FileError::Encoding {
            line,
            detail: e.to_string(),
        },
        DelimitedError::BareCr { line } | DelimitedError::MissingCrlf { line } => {
            FileError::MissingCrlf { line }
        }
    })?;

    let mut records = Vec::new();
    let mut seen_seq_nos: HashSet<String> = HashSet::new();
    let mut total_line: Option<usize> = None;
    let mut last_line = 0usize;
    for line in &lines {
        let number = line.number;
        last_line = number;
        if total_line.is_some() {
            if line.fields.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            return Err(FileError::AfterTotal { line: number });
        }
        if line.fields.iter().all(|f| f.is_empty()) && line.fields.len() == 1 {
            return Err(FileError::BlankLine { line: number });
        }
        let fields: Vec<&str> = line.fields.iter().map(String::as_str).collect();
        if fields.first() == Some(&"TOTAL") {
            check_total(number, &fields, &records)?;
            total_line = Some(number);
            continue;
        }
        let record = parse_detail(number, &fields)?;
        if !seen_seq_nos.insert(record.core_seq_no.clone()) {
            return Err(FileError::DuplicateSeqNo {
                line: number,
                core_seq_no: record.core_seq_no,
            });
        }
        records.push(record);
    }
    match total_line {
        Some(line) => Ok((records, line)),
        None => Err(FileError::MissingTotal { last_line }),
    }
}

fn parse_detail(line: usize, fields: &[&str]) -> Result<CoreRecord, FileError> {
    let [core_date, core_seq_no, hub_seq_no, hub_tran_date, debit_acct, credit_acct, amount, status, orig, purpose] =
        fields
    else {
        return Err(FileError::FieldCount {
            line,
            expected: FIELD_COUNT,
            found: fields.len(),
        });
    };
    let date = |field: &'static str, value: &str| {
        parse_yyyymmdd(value).ok_or_else(|| bad(line, field, value))
    };
    let core_date_value = date("CoreDate", core_date)?;
    if !is_core_seq_no(core_seq_no) {
        return Err(bad(line, "CoreSeqNo", core_seq_no));
    }
    if hub_seq_no.is_empty()
        || hub_seq_no.len() > HUB_SEQ_NO_MAX_LEN
        || !hub_seq_no.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(bad(line, "HubSeqNo", hub_seq_no));
    }
    let hub_tran_date_value = date("HubTranDate", hub_tran_date)?;
    if debit_acct.is_empty() {
        return Err(bad(line, "DebitAcct", debit_acct));
    }
    if credit_acct.is_empty() {
        return Err(bad(line, "CreditAcct", credit_acct));
    }
    let amount_value = Money::parse_yuan(amount).map_err(|_| bad(line, "Amount", amount))?;
    if !amount_value.is_positive() {
        return Err(bad(line, "Amount", amount));
    }
    let status_value = match *status {
        "S" => CoreStatus::Standing,
        "R" => CoreStatus::ReversedSameDay,
        "V" => CoreStatus::ReversalOfEarlier,
        other => return Err(bad(line, "Status", other)),
    };
    // Only a V line names an original; an S or R line carrying one is a malformed line.
    let orig_core_seq_no = match (status_value, *orig) {
        (CoreStatus::ReversalOfEarlier, seq) if is_core_seq_no(seq) => Some(seq.to_string()),
        (CoreStatus::ReversalOfEarlier, seq) => return Err(bad(line, "OrigCoreSeqNo", seq)),
        (_, "") => None,
        (_, seq) => return Err(bad(line, "OrigCoreSeqNo", seq)),
    };
    if purpose.is_empty() {
        return Err(bad(line, "Purpose", purpose));
    }
    Ok(CoreRecord {
        line_no: line,
        core_date: core_date_value,
        core_seq_no: core_seq_no.to_string(),
        hub_seq_no: hub_seq_no.to_string(),
        hub_tran_date: hub_tran_date_value,
        debit_acct: debit_acct.to_string(),
        credit_acct: credit_acct.to_string(),
        amount: amount_value,
        status: status_value,
        orig_core_seq_no,
        purpose: purpose.to_string(),
    })
}

fn check_total(line: usize, fields: &[&str], records: &[CoreRecord]) -> Result<(), FileError> {
    let [_, count, sum_s, sum_v] = fields else {
        return Err(FileError::FieldCount {
            line,
            expected: 4,
            found: fields.len(),
        });
    };
    let stated_count: usize = count
        .parse()
        .ok()
        .filter(|_| !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad(line, "TOTAL count", count))?;
    let stated_s = Money::parse_yuan(sum_s).map_err(|_| bad(line, "TOTAL S sum", sum_s))?;
    let stated_v = Money::parse_yuan(sum_v).map_err(|_| bad(line, "TOTAL V sum", sum_v))?;
    if stated_count != records.len() {
        return Err(FileError::TotalMismatch {
            line,
            field: "笔数",
            stated: stated_count.to_string(),
            computed: records.len().to_string(),
        });
    }
    let sum_of = |status: CoreStatus| -> Result<Money, FileError> {
        records
            .iter()
            .filter(|r| r.status == status)
            .try_fold(Money::ZERO, |acc, r| acc.checked_add(r.amount))
            .ok_or_else(|| bad(line, "TOTAL", "明细合计溢出"))
    };
    let computed_s = sum_of(CoreStatus::Standing)?;
    if computed_s != stated_s {
        return Err(FileError::TotalMismatch {
            line,
            field: "S金额",
            stated: stated_s.to_yuan(),
            computed: computed_s.to_yuan(),
        });
    }
    let computed_v = sum_of(CoreStatus::ReversalOfEarlier)?;
    if computed_v != stated_v {
        return Err(FileError::TotalMismatch {
            line,
            field: "V金额",
            stated: stated_v.to_yuan(),
            computed: computed_v.to_yuan(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// The spec's example line followed by a second S line and its TOTAL (2 lines, 335.20).
    const EXAMPLE: &str = "20261202|C202612020000000123|H2026120200000123|20261202|6230901000000000011|9003100000000001|35.20|S||CDGJ\r\n\
20261202|C202612020000000124|H2026120200000124|20261202|6230901000000000022|9003100000000001|300.00|S||CDGJ\r\n\
TOTAL|2|335.20|0.00\r\n";

    #[test]
    fn parses_the_spec_example() {
        let file = parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(file.core_date, d(2026, 12, 2));
        assert_eq!(file.records.len(), 2);
        let first = &file.records[0];
        assert_eq!(first.line_no, 1);
        assert_eq!(first.core_seq_no, "C202612020000000123");
        assert_eq!(first.hub_seq_no, "H2026120200000123");
        assert_eq!(first.hub_tran_date, d(2026, 12, 2));
        assert_eq!(first.debit_acct, "6230901000000000011");
        assert_eq!(first.credit_acct, "9003100000000001");
        assert_eq!(first.amount, Money::from_fen(3520));
        assert_eq!(first.status, CoreStatus::Standing);
        assert_eq!(first.orig_core_seq_no, None);
        assert_eq!(first.purpose, "CDGJ");
        assert_eq!(file.records[1].amount, Money::from_fen(30000));
    }

    #[test]
    fn tolerates_bom_and_trailing_blank_lines() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(EXAMPLE.as_bytes());
        bytes.extend_from_slice(b"\r\n\r\n");
        let file = parse(&bytes).unwrap();
        assert_eq!(file.records.len(), 2);
    }

    #[test]
    fn an_empty_day_needs_its_date_from_the_name() {
        let bytes = b"TOTAL|0|0.00|0.00\r\n";
        assert_eq!(parse(bytes), Err(FileError::UnknownDate));
        let file = parse_for_date(bytes, d(2026, 12, 5)).unwrap();
        assert_eq!(file.core_date, d(2026, 12, 5));
        assert!(file.records.is_empty());
        assert_eq!(
            date_from_file_name("CORE_MBP_20261205.txt"),
            Some(d(2026, 12, 5))
        );
        assert_eq!(date_from_file_name("CORE_MBP_20261305.txt"), None);
    }

    #[test]
    fn a_wrong_total_is_refused_with_its_line() {
        let wrong_sum = EXAMPLE.replace("TOTAL|2|335.20|0.00", "TOTAL|2|335.21|0.00");
        let err = parse(wrong_sum.as_bytes()).unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(err.code(), "CORE_FILE_TOTAL_MISMATCH");

        // A truncated file: one detail line lost, so the TOTAL count no longer fits.
        let truncated = EXAMPLE.replace(
            "20261202|C202612020000000124|H2026120200000124|20261202|6230901000000000022|9003100000000001|300.00|S||CDGJ\r\n",
            "",
        );
        let err = parse(truncated.as_bytes()).unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert_eq!(err.code(), "CORE_FILE_TOTAL_MISMATCH");

        // Cut before the TOTAL line.
        let cut = EXAMPLE.replace("TOTAL|2|335.20|0.00\r\n", "");
        assert_eq!(
            parse(cut.as_bytes()),
            Err(FileError::MissingTotal { last_line: 2 })
        );
    }

    #[test]
    fn a_missing_crlf_is_refused_with_its_line() {
        // Second line ends with a bare LF.
        let bare_lf = EXAMPLE.replacen(
            "|CDGJ\r\n20261202|C202612020000000124",
            "|CDGJ\n20261202|C202612020000000124",
            1,
        );
        assert_eq!(
            parse(bare_lf.as_bytes()),
            Err(FileError::MissingCrlf { line: 1 })
        );
        // Last line without its CRLF.
        let no_final = EXAMPLE.trim_end_matches("\r\n");
        assert_eq!(
            parse(no_final.as_bytes()),
            Err(FileError::MissingCrlf { line: 3 })
        );
    }

    #[test]
    fn v_lines_and_wrong_fields_are_checked() {
        let text = "20261203|C202612030000000005|H2026120300000077|20261203|9003100000000001|6230901000000000011|35.20|V|C202612020000000123|CDGJ\r\n\
TOTAL|1|0.00|35.20\r\n";
        let file = parse(text.as_bytes()).unwrap();
        assert_eq!(file.records[0].status, CoreStatus::ReversalOfEarlier);
        assert_eq!(
            file.records[0].orig_core_seq_no.as_deref(),
            Some("C202612020000000123")
        );

        let no_orig = text.replace("|V|C202612020000000123|", "|V||");
        assert!(matches!(
            parse(no_orig.as_bytes()),
            Err(FileError::BadField {
                line: 1,
                field: "OrigCoreSeqNo",
                ..
            })
        ));
        let third_decimal = text.replace("|35.20|V", "|35.201|V");
        assert!(matches!(
            parse(third_decimal.as_bytes()),
            Err(FileError::BadField {
                line: 1,
                field: "Amount",
                ..
            })
        ));
        let nine_fields = text.replace("|CDGJ\r\n", "\r\n");
        assert_eq!(
            parse(nine_fields.as_bytes()),
            Err(FileError::FieldCount {
                line: 1,
                expected: 10,
                found: 9
            })
        );
        let blank_in_middle = format!("\r\n{text}");
        assert_eq!(
            parse(blank_in_middle.as_bytes()),
            Err(FileError::BlankLine { line: 1 })
        );
    }

    #[test]
    fn gbk_is_decoded_before_splitting_and_bad_bytes_name_their_line() {
        // 郴 in GBK is B3 BB; 0x7C ('|') as a trail byte would be split by a byte-level splitter:
        // GBK 0x817C is U+4E85. Put it in the purpose field, which must survive as one field.
        let mut bytes = b"TOTAL|0|0.00|0.00\r\n".to_vec();
        let mut detail: Vec<u8> =
            b"20261202|C202612020000000001|H1|20261202|A|B|1.00|S||X".to_vec();
        detail.extend_from_slice(&[0x81, 0x7C]);
        detail.extend_from_slice(b"\r\n");
        let mut file_bytes = detail.clone();
        file_bytes.extend_from_slice(b"TOTAL|1|1.00|0.00\r\n");
        let file = parse(&file_bytes).unwrap();
        assert_eq!(file.records[0].purpose, "X\u{4E85}");

        // A lone lead byte at the end of line 2.
        bytes.splice(0..0, detail);
        let mut broken = bytes.clone();
        broken.splice(
            0..0,
            b"20261202|C202612020000000002|H2|20261202|A|B|1.00|S||X\r\n".to_vec(),
        );
        let at = broken.len() - 2;
        broken.insert(at, 0x81);
        let err = parse(&broken).unwrap_err();
        assert_eq!(err.code(), "CORE_FILE_ENCODING");
        assert_eq!(err.line(), Some(3));
    }
}
