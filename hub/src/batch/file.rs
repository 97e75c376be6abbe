//! Spec 02's batch files, pure: the water company's `DK<CompanyCode><YYYYMMDD>.txt` read and
//! checked, the bank's `DKR<CompanyCode><YYYYMMDD>.txt` written. GBK, `|` between fields, CRLF after
//! every line (the last too), amounts in yuan with two decimals and no leading zeros.

use chrono::NaiveDate;
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::text::{self, Charset};
use codecs::Money;

/// At most this many detail lines in one DK file: the bank serial carries the SeqNo in 6 digits.
pub const MAX_LINES: usize = 999_999;

/// `DK<CompanyCode><YYYYMMDD>.txt`.
pub fn dk_name(company_code: &str, batch_date: NaiveDate) -> String {
    format!("DK{company_code}{}.txt", yyyymmdd(batch_date))
}

/// `DKR<CompanyCode><YYYYMMDD>.txt`.
pub fn dkr_name(company_code: &str, batch_date: NaiveDate) -> String {
    format!("DKR{company_code}{}.txt", yyyymmdd(batch_date))
}

/// The flag of a batch file: `.txt` replaced by `.ok` (never `.txt.ok`).
pub fn flag_name(file_name: &str) -> String {
    match file_name.strip_suffix(".txt") {
        Some(stem) => format!("{stem}.ok"),
        None => format!("{file_name}.ok"),
    }
}

/// The DK header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkHeader {
    pub company_code: String,
    pub batch_date: NaiveDate,
    pub batch_no: String,
    pub count: usize,
    pub total: Money,
}

/// One DK detail line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkLine {
    pub seq_no: usize,
    pub customer_no: String,
    pub customer_name: String,
    pub agreement_no: String,
    pub account_no: String,
    pub period: String,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkFile {
    pub header: DkHeader,
    pub lines: Vec<DkLine>,
}

/// The five header fields as a header-only result copies them: each as read when readable, else
/// the spec's stand-in (CompanyCode and BatchDate from the name, BatchNo empty, Count 0, Total 0.00).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderEcho {
    pub company_code: String,
    pub batch_date: String,
    pub batch_no: String,
    pub count: usize,
    pub total: Money,
}

/// FileResult of a DKR header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileResult {
    /// 000 processed.
    Processed,
    /// 901 format.
    Format,
    /// 902 totals.
    Totals,
    /// 903 a BatchNo already processed, re-dropped with other content.
    OtherContent,
}

impl FileResult {
    pub fn code(self) -> &'static str {
        match self {
            FileResult::Processed => "000",
            FileResult::Format => "901",
            FileResult::Totals => "902",
            FileResult::OtherContent => "903",
        }
    }
}

/// Why a DK file is refused whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DkError {
    #[error("代扣文件格式错（第{line}行）：{reason}")]
    Format { line: usize, reason: String },
    #[error("代扣文件总笔数或总金额不符：{reason}")]
    Totals { reason: String },
}

impl DkError {
    pub fn code(&self) -> &'static str {
        match self {
            DkError::Format { .. } => "BATCH_FILE_FORMAT",
            DkError::Totals { .. } => "BATCH_FILE_TOTALS",
        }
    }

    pub fn file_result(&self) -> FileResult {
        match self {
            DkError::Format { .. } => FileResult::Format,
            DkError::Totals { .. } => FileResult::Totals,
        }
    }
}

/// A line's result (301–306, 399) or success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineResult {
    Success,
    InsufficientBalance,
    AccountBlocked,
    AccountMissingOrClosed,
    NoAgreement,
    OtherAccount,
    Duplicate,
    Other,
}

impl LineResult {
    pub fn code(self) -> &'static str {
        match self {
            LineResult::Success => "000",
            LineResult::InsufficientBalance => "301",
            LineResult::AccountBlocked => "302",
            LineResult::AccountMissingOrClosed => "303",
            LineResult::NoAgreement => "304",
            LineResult::OtherAccount => "305",
            LineResult::Duplicate => "306",
            LineResult::Other => "399",
        }
    }

    pub fn from_code(code: &str) -> Option<LineResult> {
        Some(match code {
            "000" => LineResult::Success,
            "301" => LineResult::InsufficientBalance,
            "302" => LineResult::AccountBlocked,
            "303" => LineResult::AccountMissingOrClosed,
            "304" => LineResult::NoAgreement,
            "305" => LineResult::OtherAccount,
            "306" => LineResult::Duplicate,
            "399" => LineResult::Other,
            _ => return None,
        })
    }

    /// ResultMsg: the spec names the codes only; these texts are the water company's operators'.
    pub fn message_zh(self) -> &'static str {
        match self {
            LineResult::Success => "成功",
            LineResult::InsufficientBalance => "余额不足",
            LineResult::AccountBlocked => "账户冻结或止付",
            LineResult::AccountMissingOrClosed => "账户不存在或已销户",
            LineResult::NoAgreement => "未签约或协议无效",
            LineResult::OtherAccount => "扣款账号与协议不符",
            LineResult::Duplicate => "重复扣款",
            LineResult::Other => "其他错误",
        }
    }
}

/// One DKR detail line as the run decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    pub seq_no: usize,
    pub customer_no: String,
    pub agreement_no: String,
    pub account_no: String,
    pub amount: Money,
    pub result: LineResult,
    /// The hub's serial of the line's debit when one was sent, else empty.
    pub bank_serial: String,
    /// The debit's CoreDate on 000 lines only.
    pub core_date: Option<NaiveDate>,
}

fn format_err(line: usize, reason: impl Into<String>) -> DkError {
    DkError::Format {
        line,
        reason: reason.into(),
    }
}

/// Amounts of the batch files: `166.32`, `0.00`; no sign, no leading zeros, two decimals.
pub fn parse_amount(text: &str) -> Option<Money> {
    let int_part = text.split('.').next().unwrap_or_default();
    if int_part.len() > 1 && int_part.starts_with('0') {
        return None;
    }
    Money::parse_yuan(text).ok()
}

/// A count: digits, no leading zeros.
fn parse_count(text: &str) -> Option<usize> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

fn is_an(text: &str, max_len: usize) -> bool {
    !text.is_empty()
        && text.len() <= max_len
        && text.bytes().all(|b| b.is_ascii_graphic() && b != b'|')
}

fn is_digits(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit())
}

/// Splits GBK bytes into lines, each ended by CRLF. `|` is ASCII and never a GBK trail byte
/// (trail bytes start at 0x40, but 0x7C is one): the split is done on decoded text, never on bytes.
fn split_lines(bytes: &[u8]) -> Result<Vec<String>, DkError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(format_err(1, "文件以BOM开头"));
    }
    let text = text::decode(bytes, Charset::Gbk).map_err(|e| format_err(0, e.to_string()))?;
    let Some(body) = text.strip_suffix("\r\n") else {
        return Err(format_err(0, "最后一行未以CRLF结束"));
    };
    let lines: Vec<String> = body.split("\r\n").map(str::to_string).collect();
    for (index, line) in lines.iter().enumerate() {
        if line.contains('\r') || line.contains('\n') {
            return Err(format_err(index + 1, "行结束符不是CRLF"));
        }
        if line.is_empty() {
            return Err(format_err(index + 1, "空行"));
        }
    }
    Ok(lines)
}

/// Reads the header fields that can be read, for a header-only result.
pub fn header_echo(
    bytes: &[u8],
    name_company_code: &str,
    name_batch_date: NaiveDate,
) -> HeaderEcho {
    let fields: Vec<String> = text::decode(bytes, Charset::Gbk)
        .ok()
        .and_then(|t| t.split("\r\n").next().map(str::to_string))
        .map(|first| first.split('|').map(str::to_string).collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or_default();
    let company_code = if is_digits(field(0), 6) {
        field(0).to_string()
    } else {
        name_company_code.to_string()
    };
    let batch_date = match parse_yyyymmdd(field(1)) {
        Some(d) if is_digits(field(1), 8) => yyyymmdd(d),
        _ => yyyymmdd(name_batch_date),
    };
    let batch_no = if is_digits(field(2), 10) {
        field(2).to_string()
    } else {
        String::new()
    };
    HeaderEcho {
        company_code,
        batch_date,
        batch_no,
        count: parse_count(field(3)).unwrap_or(0),
        total: parse_amount(field(4)).unwrap_or(Money::ZERO),
    }
}

/// Reads and checks a DK file named for (`company_code`, `batch_date`): format first (901), then
/// Count and Total against the detail lines (902).
pub fn parse_dk(
    bytes: &[u8],
    company_code: &str,
    batch_date: NaiveDate,
) -> Result<DkFile, DkError> {
    let lines = split_lines(bytes)?;
    let Some((first, details)) = lines.split_first() else {
        return Err(format_err(1, "缺少首行"));
    };
    let fields: Vec<&str> = first.split('|').collect();
    let [code, date, batch_no, count, total] = fields.as_slice() else {
        return Err(format_err(1, "首行应有5个字段"));
    };
    if *code != company_code {
        return Err(format_err(1, "水司代码与文件名不符"));
    }
    if !is_digits(date, 8) || parse_yyyymmdd(date) != Some(batch_date) {
        return Err(format_err(1, "批量日期与文件名不符"));
    }
    if *batch_no != format!("{date}01") {
        return Err(format_err(1, "批次号应为批量日期加01"));
    }
    let count = parse_count(count).ok_or_else(|| format_err(1, "总笔数格式错"))?;
    let total = parse_amount(total).ok_or_else(|| format_err(1, "总金额格式错"))?;
    if details.len() > MAX_LINES {
        return Err(format_err(1, format!("明细超过{MAX_LINES}行")));
    }
    let mut parsed = Vec::with_capacity(details.len());
    for (index, line) in details.iter().enumerate() {
        let line_no = index + 2;
        let fields: Vec<&str> = line.split('|').collect();
        let [seq_no, customer_no, customer_name, agreement_no, account_no, period, amount] =
            fields.as_slice()
        else {
            return Err(format_err(line_no, "明细行应有7个字段"));
        };
        if parse_count(seq_no) != Some(index + 1) {
            return Err(format_err(line_no, "序号应从1起连续"));
        }
        if !is_an(customer_no, 10) {
            return Err(format_err(line_no, "用户号格式错"));
        }
        match text::byte_len(customer_name, Charset::Gbk) {
            Ok(len) if len <= 40 => {}
            _ => return Err(format_err(line_no, "户名格式错")),
        }
        if !is_an(agreement_no, 16) {
            return Err(format_err(line_no, "协议号格式错"));
        }
        if !is_an(account_no, 32) {
            return Err(format_err(line_no, "代扣账号格式错"));
        }
        let month_ok = period
            .get(4..6)
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| (1..=12).contains(&m));
        if !is_digits(period, 6) || !month_ok {
            return Err(format_err(line_no, "账期格式错"));
        }
        let amount = match parse_amount(amount) {
            Some(a) if a.is_positive() => a,
            _ => return Err(format_err(line_no, "金额格式错")),
        };
        parsed.push(DkLine {
            seq_no: index + 1,
            customer_no: customer_no.to_string(),
            customer_name: customer_name.to_string(),
            agreement_no: agreement_no.to_string(),
            account_no: account_no.to_string(),
            period: period.to_string(),
            amount,
        });
    }
    if count != parsed.len() {
        return Err(DkError::Totals {
            reason: format!("总笔数{count}，明细{}笔", parsed.len()),
        });
    }
    let mut sum = Money::ZERO;
    for line in &parsed {
        sum = sum
            .checked_add(line.amount)
            .ok_or_else(|| DkError::Totals {
                reason: "明细金额合计溢出".to_string(),
            })?;
    }
    if sum != total {
        return Err(DkError::Totals {
            reason: format!("总金额{}，明细合计{}", total.to_yuan(), sum.to_yuan()),
        });
    }
    Ok(DkFile {
        header: DkHeader {
            company_code: company_code.to_string(),
            batch_date,
            batch_no: batch_no.to_string(),
            count,
            total,
        },
        lines: parsed,
    })
}

/// A header-only result (901, 902, 903): the DK header's five fields, then nothing succeeded.
pub fn render_header_only(echo: &HeaderEcho, result: FileResult) -> Result<Vec<u8>, String> {
    let line = format!(
        "{}|{}|{}|{}|{}|{}|0|0.00|{}|{}\r\n",
        echo.company_code,
        echo.batch_date,
        echo.batch_no,
        result.code(),
        echo.count,
        echo.total.to_yuan(),
        echo.count,
        echo.total.to_yuan(),
    );
    text::encode(&line, Charset::Gbk).map_err(|e| e.to_string())
}

/// The full result of a processed batch (FileResult 000).
pub fn render_result(header: &DkHeader, lines: &[ResultLine]) -> Result<Vec<u8>, String> {
    let mut succ_count = 0usize;
    let mut succ_amount = Money::ZERO;
    let mut fail_count = 0usize;
    let mut fail_amount = Money::ZERO;
    for line in lines {
        let overflow = || "金额合计溢出".to_string();
        if line.result == LineResult::Success {
            succ_count += 1;
            succ_amount = succ_amount.checked_add(line.amount).ok_or_else(overflow)?;
        } else {
            fail_count += 1;
            fail_amount = fail_amount.checked_add(line.amount).ok_or_else(overflow)?;
        }
    }
    let mut out = format!(
        "{}|{}|{}|{}|{}|{}|{succ_count}|{}|{fail_count}|{}\r\n",
        header.company_code,
        yyyymmdd(header.batch_date),
        header.batch_no,
        FileResult::Processed.code(),
        header.count,
        header.total.to_yuan(),
        succ_amount.to_yuan(),
        fail_amount.to_yuan(),
    );
    for line in lines {
        out.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}\r\n",
            line.seq_no,
            line.customer_no,
            line.agreement_no,
            line.account_no,
            line.amount.to_yuan(),
            line.result.code(),
            line.result.message_zh(),
            line.bank_serial,
            line.core_date.map(yyyymmdd).unwrap_or_default(),
        ));
    }
    text::encode(&out, Charset::Gbk).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default()
    }

    /// 张三 in GBK is D5 C5 C8 FD.
    fn dk_bytes() -> Vec<u8> {
        let mut b = b"431227|20261203|2026120301|2|201.52\r\n1|0800123456|".to_vec();
        b.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]);
        b.extend_from_slice(b"|A000000000000001|6230901234567890123|202611|166.32\r\n");
        b.extend_from_slice(
            b"2|0800123457|LI|A000000000000002|6230901234567890131|202611|35.20\r\n",
        );
        b
    }

    #[test]
    fn names_and_flags() {
        assert_eq!(dk_name("431227", date()), "DK43122720261203.txt");
        assert_eq!(dkr_name("431227", date()), "DKR43122720261203.txt");
        assert_eq!(flag_name("DK43122720261203.txt"), "DK43122720261203.ok");
    }

    #[test]
    fn reads_a_dk_file() {
        let file = parse_dk(&dk_bytes(), "431227", date());
        let Ok(file) = file else {
            panic!("{file:?}");
        };
        assert_eq!(file.header.batch_no, "2026120301");
        assert_eq!(file.header.count, 2);
        assert_eq!(file.header.total, Money::from_fen(20_152));
        assert_eq!(file.lines.len(), 2);
        assert_eq!(file.lines[0].customer_name, "张三");
        assert_eq!(file.lines[0].amount, Money::from_fen(16_632));
        assert_eq!(file.lines[1].amount, Money::from_fen(3_520));
    }

    #[test]
    fn header_only_count_zero_is_a_file() {
        let bytes = b"431227|20261203|2026120301|0|0.00\r\n";
        let file = parse_dk(bytes, "431227", date());
        assert!(matches!(file, Ok(ref f) if f.lines.is_empty()), "{file:?}");
    }

    #[test]
    fn format_errors_are_901() {
        let cases: Vec<Vec<u8>> = vec![
            // LF only
            dk_bytes().iter().copied().filter(|b| *b != b'\r').collect(),
            // last line without CRLF
            dk_bytes()[..dk_bytes().len() - 2].to_vec(),
            // BOM
            [&[0xEF, 0xBB, 0xBF][..], &dk_bytes()].concat(),
            // other company in the header
            b"431022|20261203|2026120301|0|0.00\r\n".to_vec(),
            // leading zero in an amount
            b"431227|20261203|2026120301|1|035.20\r\n1|C1|N|A1|6230|202611|035.20\r\n".to_vec(),
            // three decimals
            b"431227|20261203|2026120301|1|35.200\r\n1|C1|N|A1|6230|202611|35.200\r\n".to_vec(),
            // SeqNo not 1..n
            b"431227|20261203|2026120301|1|35.20\r\n2|C1|N|A1|6230|202611|35.20\r\n".to_vec(),
            // a trailing blank line
            b"431227|20261203|2026120301|0|0.00\r\n\r\n".to_vec(),
            // half a GBK character
            b"431227|20261203|2026120301|1|35.20\r\n1|C1|\xD5|A1|6230|202611|35.20\r\n".to_vec(),
        ];
        for bytes in cases {
            let result = parse_dk(&bytes, "431227", date());
            assert!(
                matches!(result, Err(DkError::Format { .. })),
                "{:?} -> {result:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn totals_errors_are_902() {
        let bad_total = b"431227|20261203|2026120301|1|35.21\r\n1|C1|N|A1|6230|202611|35.20\r\n";
        let bad_count = b"431227|20261203|2026120301|2|35.20\r\n1|C1|N|A1|6230|202611|35.20\r\n";
        for bytes in [&bad_total[..], &bad_count[..]] {
            let result = parse_dk(bytes, "431227", date());
            assert!(matches!(result, Err(DkError::Totals { .. })), "{result:?}");
        }
    }

    #[test]
    fn header_only_result_copies_the_header() {
        let bytes = b"431227|20261203|2026120301|1|35.21\r\n1|C1|N|A1|6230|202611|35.20\r\n";
        let echo = header_echo(bytes, "431227", date());
        let out = render_header_only(&echo, FileResult::Totals);
        assert_eq!(
            out.as_deref(),
            Ok(&b"431227|20261203|2026120301|902|1|35.21|0|0.00|1|35.21\r\n"[..])
        );
        // unreadable header: CompanyCode and BatchDate from the name, BatchNo empty, 0 and 0.00
        let echo = header_echo(b"\xFF\xFF garbage", "431227", date());
        let out = render_header_only(&echo, FileResult::Format);
        assert_eq!(
            out.as_deref(),
            Ok(&b"431227|20261203||901|0|0.00|0|0.00|0|0.00\r\n"[..])
        );
    }

    #[test]
    fn result_file_layout() {
        let Ok(file) = parse_dk(&dk_bytes(), "431227", date()) else {
            panic!("DK file");
        };
        let lines = vec![
            ResultLine {
                seq_no: 1,
                customer_no: "0800123456".into(),
                agreement_no: "A000000000000001".into(),
                account_no: "6230901234567890123".into(),
                amount: Money::from_fen(16_632),
                result: LineResult::Success,
                bank_serial: "20261203D227000001".into(),
                core_date: Some(date()),
            },
            ResultLine {
                seq_no: 2,
                customer_no: "0800123457".into(),
                agreement_no: "A000000000000002".into(),
                account_no: "6230901234567890131".into(),
                amount: Money::from_fen(3_520),
                result: LineResult::NoAgreement,
                bank_serial: String::new(),
                core_date: None,
            },
        ];
        let mut expected = b"431227|20261203|2026120301|000|2|201.52|1|166.32|1|35.20\r\n".to_vec();
        expected
            .extend_from_slice(b"1|0800123456|A000000000000001|6230901234567890123|166.32|000|");
        expected.extend_from_slice(&[0xB3, 0xC9, 0xB9, 0xA6]); // 成功
        expected.extend_from_slice(b"|20261203D227000001|20261203\r\n");
        expected.extend_from_slice(b"2|0800123457|A000000000000002|6230901234567890131|35.20|304|");
        // 未签约或协议无效
        expected.extend_from_slice(&[
            0xCE, 0xB4, 0xC7, 0xA9, 0xD4, 0xBC, 0xBB, 0xF2, 0xD0, 0xAD, 0xD2, 0xE9, 0xCE, 0xDE,
            0xD0, 0xA7,
        ]);
        expected.extend_from_slice(b"||\r\n");
        assert_eq!(render_result(&file.header, &lines), Ok(expected));
    }
}
