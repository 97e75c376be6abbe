//! Spec 04's wire form, pure: the 4-byte big-endian frame, the 103-byte header, the AN / C / N
//! fields, the HMAC-SM3-16 MAC, and the body size each TxCode allows. Nothing here does I/O.

use bytes::{Buf, BufMut, BytesMut};
use chrono::{NaiveDate, NaiveTime};
use codecs::clock::parse_yyyymmdd;
use codecs::mac::{hmac_sm3_16_hex, verify_hmac_sm3_16};
use codecs::text::{self, Charset};
use codecs::Money;
use tokio_util::codec::{Decoder, Encoder};

/// Header bytes of every frame.
pub const HEADER_LEN: usize = 103;
/// The MAC: 32 upper-case hex characters, last in every frame.
pub const MAC_LEN: usize = 32;
/// The largest body the spec allows (the 4 length bytes not counted).
pub const MAX_BODY_LEN: usize = 8192;
/// Header plus MAC: the whole body of a heartbeat request or of any answer other than 00.
pub const BARE_LEN: usize = HEADER_LEN + MAC_LEN;

/// Offsets of the header fields (spec table "Common header").
const TX_CODE: (usize, usize) = (0, 4);
const MSG_TYPE: (usize, usize) = (4, 1);
const BANK_CODE: (usize, usize) = (5, 6);
const BRANCH_NO: (usize, usize) = (11, 6);
const TELLER_NO: (usize, usize) = (17, 8);
const CHANNEL: (usize, usize) = (25, 2);
const TX_TIME: (usize, usize) = (35, 6);
const SERIAL: (usize, usize) = (41, 20);
const RSP_CODE: (usize, usize) = (61, 2);
const RSP_MSG: (usize, usize) = (63, 40);

/// Why bytes from the wire could not be taken. `Protocol` closes the connection (spec: "a
/// protocol error: the receiver closes the connection"); `BadMac` drops the frame only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("协议错误：{0}")]
    Protocol(String),
    #[error("MAC校验失败：交易码{tx_code} 流水号{serial}")]
    BadMac { tx_code: String, serial: String },
    #[error("字段{field}（偏移{offset}）取值非法：{found}")]
    Field {
        field: &'static str,
        offset: usize,
        found: String,
    },
    #[error("字段{field}超长：{reason}")]
    Encode { field: &'static str, reason: String },
    #[error("通讯错误：{0}")]
    Io(String),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e.to_string())
    }
}

impl WireError {
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Protocol(_) => "CATV_PROTOCOL",
            WireError::BadMac { .. } => "CATV_BAD_MAC",
            WireError::Field { .. } => "CATV_FIELD",
            WireError::Encode { .. } => "CATV_ENCODE",
            WireError::Io(_) => "CATV_IO",
        }
    }
}

/// The 4-byte big-endian length frame. Lengths of 0 or over 8192 are protocol errors.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, WireError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if length == 0 || length > MAX_BODY_LEN {
            return Err(WireError::Protocol(format!("帧长度{length}不在1..=8192")));
        }
        if src.len() < 4 + length {
            src.reserve(4 + length - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(length)))
    }
}

impl Encoder<Vec<u8>> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, body: Vec<u8>, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        let length = u32::try_from(body.len())
            .ok()
            .filter(|l| *l > 0 && (*l as usize) <= MAX_BODY_LEN)
            .ok_or_else(|| std::io::Error::other("frame body length out of 1..=8192"))?;
        dst.reserve(4 + body.len());
        dst.put_u32(length);
        dst.extend_from_slice(&body);
        Ok(())
    }
}

/// The transactions of the spec; `Unknown` keeps any other 4 digits (answered 90).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxCode {
    Heartbeat,
    SignIn,
    CustomerQuery,
    Pay,
    Cancel,
    Status,
    Statistics,
    DailyTotals,
    DetailPage,
    YearTotals,
    Parameters,
}

impl TxCode {
    pub fn code(self) -> &'static str {
        match self {
            TxCode::Heartbeat => "0000",
            TxCode::SignIn => "1001",
            TxCode::CustomerQuery => "2001",
            TxCode::Pay => "2002",
            TxCode::Cancel => "3001",
            TxCode::Status => "4001",
            TxCode::Statistics => "4002",
            TxCode::DailyTotals => "5001",
            TxCode::DetailPage => "5002",
            TxCode::YearTotals => "5003",
            TxCode::Parameters => "6001",
        }
    }

    pub fn from_code(code: &str) -> Option<TxCode> {
        Some(match code {
            "0000" => TxCode::Heartbeat,
            "1001" => TxCode::SignIn,
            "2001" => TxCode::CustomerQuery,
            "2002" => TxCode::Pay,
            "3001" => TxCode::Cancel,
            "4001" => TxCode::Status,
            "4002" => TxCode::Statistics,
            "5001" => TxCode::DailyTotals,
            "5002" => TxCode::DetailPage,
            "5003" => TxCode::YearTotals,
            "6001" => TxCode::Parameters,
            _ => return None,
        })
    }

    /// Request body bytes between header and MAC (spec table "Transactions").
    pub fn request_fields_len(self) -> usize {
        match self {
            TxCode::Heartbeat => 0,
            TxCode::SignIn | TxCode::Parameters => 10,
            TxCode::CustomerQuery => 21,
            TxCode::Pay => 63,
            TxCode::Cancel => 50,
            TxCode::Status => 28,
            TxCode::Statistics => 16,
            TxCode::DailyTotals => 30,
            TxCode::DetailPage => 12,
            TxCode::YearTotals => 26,
        }
    }

    /// Whether a 00 answer's field bytes fit this TxCode (fixed part plus whole repeated rows).
    pub fn answer_fields_fit(self, fields_len: usize) -> bool {
        let (fixed, row) = match self {
            TxCode::Heartbeat | TxCode::SignIn => (19, 0),
            TxCode::CustomerQuery => (130, 63),
            TxCode::Pay => (40, 0),
            TxCode::Cancel => (6, 0),
            TxCode::Status => (39, 0),
            TxCode::Statistics => (44, 0),
            TxCode::DailyTotals | TxCode::YearTotals => (23, 0),
            TxCode::DetailPage => (18, 81),
            TxCode::Parameters => (13, 49),
        };
        if row == 0 {
            fields_len == fixed
        } else {
            fields_len >= fixed && (fields_len - fixed).is_multiple_of(row)
        }
    }
}

/// The common header, typed. Text fields hold the trimmed values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub tx_code: String,
    /// 0 request, 1 response.
    pub msg_type: u8,
    pub bank_code: String,
    pub branch_no: String,
    pub teller_no: String,
    pub channel: String,
    pub tx_date: NaiveDate,
    pub tx_time: NaiveTime,
    pub serial: String,
    /// Empty in requests.
    pub rsp_code: String,
    pub rsp_msg: String,
}

/// Writes fields one after the other, each checked against its type and width.
#[derive(Debug, Default)]
pub struct FieldWriter {
    bytes: Vec<u8>,
}

impl FieldWriter {
    pub fn new() -> Self {
        FieldWriter {
            bytes: Vec::with_capacity(256),
        }
    }

    /// AN: printable ASCII, left-aligned, space-padded.
    pub fn an(&mut self, field: &'static str, value: &str, width: usize) -> Result<(), WireError> {
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(WireError::Encode {
                field,
                reason: "不是ASCII可打印字符".to_string(),
            });
        }
        self.padded(field, value.as_bytes(), width)
    }

    /// C: GBK text measured in bytes, never cut: too long is an error.
    pub fn c(&mut self, field: &'static str, value: &str, width: usize) -> Result<(), WireError> {
        let encoded = text::encode(value, Charset::Gbk).map_err(|e| WireError::Encode {
            field,
            reason: e.to_string(),
        })?;
        self.padded(field, &encoded, width)
    }

    /// N: digits, right-aligned, zero-padded.
    pub fn n(&mut self, field: &'static str, value: u64, width: usize) -> Result<(), WireError> {
        let digits = format!("{value:0width$}");
        if digits.len() != width {
            return Err(WireError::Encode {
                field,
                reason: format!("{value}超过{width}位"),
            });
        }
        self.bytes.extend_from_slice(digits.as_bytes());
        Ok(())
    }

    /// An amount in fen as an N field.
    pub fn money(
        &mut self,
        field: &'static str,
        value: Money,
        width: usize,
    ) -> Result<(), WireError> {
        let digits = value.to_fen_digits(width).map_err(|e| WireError::Encode {
            field,
            reason: e.to_string(),
        })?;
        self.bytes.extend_from_slice(digits.as_bytes());
        Ok(())
    }

    pub fn date(&mut self, field: &'static str, value: NaiveDate) -> Result<(), WireError> {
        self.an(field, &value.format("%Y%m%d").to_string(), 8)
    }

    fn padded(&mut self, field: &'static str, value: &[u8], width: usize) -> Result<(), WireError> {
        if value.len() > width {
            return Err(WireError::Encode {
                field,
                reason: format!("{}字节超过{width}字节", value.len()),
            });
        }
        self.bytes.extend_from_slice(value);
        self.bytes
            .resize(self.bytes.len() + width - value.len(), b' ');
        Ok(())
    }

    pub fn header(&mut self, header: &Header) -> Result<(), WireError> {
        self.an("TxCode", &header.tx_code, 4)?;
        self.n("MsgType", u64::from(header.msg_type), 1)?;
        self.an("BankCode", &header.bank_code, 6)?;
        self.an("BranchNo", &header.branch_no, 6)?;
        self.an("TellerNo", &header.teller_no, 8)?;
        self.an("Channel", &header.channel, 2)?;
        self.date("TxDate", header.tx_date)?;
        self.an("TxTime", &header.tx_time.format("%H%M%S").to_string(), 6)?;
        self.an("Serial", &header.serial, 20)?;
        self.an("RspCode", &header.rsp_code, 2)?;
        self.c("RspMsg", &header.rsp_msg, 40)
    }

    /// Appends the MAC over everything written so far and returns the finished body.
    pub fn finish(mut self, key: &[u8]) -> Result<Vec<u8>, WireError> {
        let mac = hmac_sm3_16_hex(key, &self.bytes);
        self.bytes.extend_from_slice(mac.as_bytes());
        if self.bytes.len() > MAX_BODY_LEN {
            return Err(WireError::Encode {
                field: "body",
                reason: format!("{}字节超过8192", self.bytes.len()),
            });
        }
        Ok(self.bytes)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Reads fields in order from the bytes between header and MAC; `finish` refuses leftovers.
#[derive(Debug)]
pub struct FieldReader<'a> {
    bytes: &'a [u8],
    /// Offset of `bytes[0]` in the body, for error messages.
    base: usize,
    at: usize,
}

impl<'a> FieldReader<'a> {
    pub fn new(bytes: &'a [u8], base: usize) -> Self {
        FieldReader { bytes, base, at: 0 }
    }

    fn take(&mut self, field: &'static str, width: usize) -> Result<&'a [u8], WireError> {
        let slice = self
            .bytes
            .get(self.at..self.at + width)
            .ok_or_else(|| WireError::Field {
                field,
                offset: self.base + self.at,
                found: "报文过短".to_string(),
            })?;
        self.at += width;
        Ok(slice)
    }

    fn error(&self, field: &'static str, width: usize, raw: &[u8]) -> WireError {
        WireError::Field {
            field,
            offset: self.base + self.at - width,
            found: hex_of(raw),
        }
    }

    /// AN, trimmed of its padding.
    pub fn an(&mut self, field: &'static str, width: usize) -> Result<String, WireError> {
        let raw = self.take(field, width)?;
        if !raw.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(self.error(field, width, raw));
        }
        Ok(String::from_utf8_lossy(raw).trim_end().to_string())
    }

    /// C, decoded strictly as GBK, trimmed of its padding.
    pub fn c(&mut self, field: &'static str, width: usize) -> Result<String, WireError> {
        let raw = self.take(field, width)?;
        match text::decode(raw, Charset::Gbk) {
            Ok(value) => Ok(value.trim_end_matches(' ').to_string()),
            Err(_) => Err(self.error(field, width, raw)),
        }
    }

    pub fn n(&mut self, field: &'static str, width: usize) -> Result<u64, WireError> {
        let raw = self.take(field, width)?;
        if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) || width > 18 {
            return Err(self.error(field, width, raw));
        }
        Ok(raw
            .iter()
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0')))
    }

    pub fn money(&mut self, field: &'static str, width: usize) -> Result<Money, WireError> {
        let value = self.n(field, width)?;
        i64::try_from(value)
            .map(Money::from_fen)
            .map_err(|_| WireError::Field {
                field,
                offset: self.base + self.at - width,
                found: value.to_string(),
            })
    }

    pub fn date(&mut self, field: &'static str) -> Result<NaiveDate, WireError> {
        let raw = self.take(field, 8)?;
        std::str::from_utf8(raw)
            .ok()
            .and_then(parse_yyyymmdd)
            .ok_or_else(|| self.error(field, 8, raw))
    }

    /// A date field that is all zeros where the spec allows "none" (4001 Status 3).
    pub fn optional_date(&mut self, field: &'static str) -> Result<Option<NaiveDate>, WireError> {
        let raw = self.take(field, 8)?;
        if raw == b"00000000" {
            return Ok(None);
        }
        std::str::from_utf8(raw)
            .ok()
            .and_then(parse_yyyymmdd)
            .map(Some)
            .ok_or_else(|| self.error(field, 8, raw))
    }

    /// `YYYYMM` as an N 6 field, checked to be a real month.
    pub fn month(&mut self, field: &'static str) -> Result<YearMonth, WireError> {
        let value = self.n(field, 6)?;
        YearMonth::from_number(value).ok_or_else(|| WireError::Field {
            field,
            offset: self.base + self.at - 6,
            found: value.to_string(),
        })
    }

    pub fn finish(self) -> Result<(), WireError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(WireError::Field {
                field: "body",
                offset: self.base + self.at,
                found: format!("多余{}字节", self.bytes.len() - self.at),
            })
        }
    }
}

/// A calendar month, as `PaidThrough` and friends carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i32,
    /// 1..=12.
    pub month: u32,
}

impl YearMonth {
    pub fn from_number(value: u64) -> Option<YearMonth> {
        let year = i32::try_from(value / 100).ok()?;
        let month = u32::try_from(value % 100).ok()?;
        ((1..=12).contains(&month) && year > 0).then_some(YearMonth { year, month })
    }

    pub fn number(self) -> u64 {
        u64::try_from(self.year).unwrap_or(0) * 100 + u64::from(self.month)
    }

    pub fn next(self) -> YearMonth {
        if self.month >= 12 {
            YearMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

/// A body from the wire, its MAC verified and its size checked against its TxCode.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub header: Header,
    /// Known TxCode, or `None` for digits the spec does not define (answered 90).
    pub tx: Option<TxCode>,
    /// The bytes between header and MAC.
    pub fields: Vec<u8>,
}

impl Decoded {
    pub fn reader(&self) -> FieldReader<'_> {
        FieldReader::new(&self.fields, HEADER_LEN)
    }

    pub fn is_response(&self) -> bool {
        self.header.msg_type == 1
    }
}

/// Checks a body in the spec's order as far as a receiver on our side needs: frame (size,
/// digits, GBK → `Protocol`), then the MAC (`BadMac`), then the header values (`Field`).
pub fn decode_body(body: &[u8], key: &[u8]) -> Result<Decoded, WireError> {
    if body.len() < BARE_LEN {
        return Err(WireError::Protocol(format!(
            "报文长度{}小于135",
            body.len()
        )));
    }
    let slice = |(at, len): (usize, usize)| body.get(at..at + len).unwrap_or_default();
    let tx_code_raw = slice(TX_CODE);
    let msg_type_raw = slice(MSG_TYPE);
    if !tx_code_raw.iter().all(u8::is_ascii_digit) || !msg_type_raw.iter().all(u8::is_ascii_digit) {
        return Err(WireError::Protocol(format!(
            "交易码或报文类型不是数字：{}",
            hex_of(slice((0, 5)))
        )));
    }
    let tx_code = String::from_utf8_lossy(tx_code_raw).to_string();
    let msg_type = msg_type_raw.first().map_or(0, |b| b - b'0');
    let split = body.len() - MAC_LEN;
    let (signed, mac) = body.split_at(split);
    let fields = signed.get(HEADER_LEN..).unwrap_or_default();
    let tx = TxCode::from_code(&tx_code);
    if let Some(tx) = tx {
        let fits = match msg_type {
            0 => fields.len() == tx.request_fields_len(),
            // An answer other than 00 is header plus MAC; the code is read after the MAC.
            _ => fields.is_empty() || tx.answer_fields_fit(fields.len()),
        };
        if !fits {
            return Err(WireError::Protocol(format!(
                "交易码{tx_code}的报文长度{}不符",
                body.len()
            )));
        }
    }
    if text::decode(signed, Charset::Gbk).is_err() {
        return Err(WireError::Protocol("报文含非GBK字节".to_string()));
    }
    let serial_raw = slice(SERIAL);
    if !verify_hmac_sm3_16(key, signed, mac) {
        return Err(WireError::BadMac {
            tx_code,
            serial: String::from_utf8_lossy(serial_raw).trim_end().to_string(),
        });
    }
    let mut reader = FieldReader::new(signed.get(..HEADER_LEN).unwrap_or_default(), 0);
    let _ = reader.an("TxCode", TX_CODE.1)?;
    let _ = reader.n("MsgType", MSG_TYPE.1)?;
    let bank_code = reader.an("BankCode", BANK_CODE.1)?;
    let branch_no = reader.an("BranchNo", BRANCH_NO.1)?;
    let teller_no = reader.an("TellerNo", TELLER_NO.1)?;
    let channel = reader.an("Channel", CHANNEL.1)?;
    let tx_date = reader.date("TxDate")?;
    let time_raw = reader.an("TxTime", TX_TIME.1)?;
    let tx_time = NaiveTime::parse_from_str(&time_raw, "%H%M%S").map_err(|_| WireError::Field {
        field: "TxTime",
        offset: TX_TIME.0,
        found: time_raw.clone(),
    })?;
    let serial = reader.an("Serial", SERIAL.1)?;
    let rsp_code = reader.an("RspCode", RSP_CODE.1)?;
    let rsp_msg = reader.c("RspMsg", RSP_MSG.1)?;
    reader.finish()?;
    if msg_type == 1 && rsp_code != "00" && !fields.is_empty() {
        return Err(WireError::Protocol(format!(
            "应答码{rsp_code}的应答应只有报文头和MAC"
        )));
    }
    if msg_type == 1
        && rsp_code == "00"
        && tx.is_some()
        && fields.is_empty()
        && tx != Some(TxCode::Heartbeat)
    {
        return Err(WireError::Protocol(format!(
            "交易码{tx_code}的成功应答缺少字段"
        )));
    }
    Ok(Decoded {
        header: Header {
            tx_code,
            msg_type,
            bank_code,
            branch_no,
            teller_no,
            channel,
            tx_date,
            tx_time,
            serial,
            rsp_code,
            rsp_msg,
        },
        tx,
        fields: fields.to_vec(),
    })
}

/// Builds a body: header, the fields the closure writes, the MAC.
pub fn encode_body(
    header: &Header,
    key: &[u8],
    fields: impl FnOnce(&mut FieldWriter) -> Result<(), WireError>,
) -> Result<Vec<u8>, WireError> {
    let mut writer = FieldWriter::new();
    writer.header(header)?;
    fields(&mut writer)?;
    writer.finish(key)
}

/// Hex of at most 16 bytes: enough to see what was found without dumping personal data.
pub fn hex_of(bytes: &[u8]) -> String {
    let shown = bytes.get(..bytes.len().min(16)).unwrap_or_default();
    let mut out = String::with_capacity(shown.len() * 3);
    for byte in shown {
        out.push_str(&format!("{byte:02X} "));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE_KEY_HEX: &str =
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    /// The spec's worked example body, copied from the spec text.
    pub(crate) const EXAMPLE_BODY: &str = "20020YX0001050201SJ000001SJ20261202193005YX202612021930050042                                          YX2019000123JB000101200000312006230901234567890123             0F378AF42BBF2B8DE2704063988868DE";

    fn example_header() -> Header {
        Header {
            tx_code: "2002".to_string(),
            msg_type: 0,
            bank_code: "YX0001".to_string(),
            branch_no: "050201".to_string(),
            teller_no: "SJ000001".to_string(),
            channel: "SJ".to_string(),
            tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
            tx_time: NaiveTime::from_hms_opt(19, 30, 5).unwrap_or_default(),
            serial: "YX202612021930050042".to_string(),
            rsp_code: String::new(),
            rsp_msg: String::new(),
        }
    }

    fn key() -> Vec<u8> {
        hex::decode(EXAMPLE_KEY_HEX).unwrap_or_default()
    }

    #[test]
    fn worked_example_is_reproduced_byte_for_byte() {
        let body = encode_body(&example_header(), &key(), |w| {
            w.an("CustomerNo", "YX2019000123", 12)?;
            w.an("PackageCode", "JB0001", 6)?;
            w.n("Months", 12, 3)?;
            w.money("Amount", Money::from_fen(31_200), 10)?;
            w.an("PayerAccount", "6230901234567890123", 32)
        });
        let body = body.unwrap_or_default();
        assert_eq!(body.len(), 198);
        assert_eq!(body, EXAMPLE_BODY.as_bytes());
        let mut framed = BytesMut::new();
        assert!(FrameCodec.encode(body, &mut framed).is_ok());
        assert_eq!(framed.get(..4), Some(&[0x00, 0x00, 0x00, 0xC6][..]));
    }

    #[test]
    fn worked_example_parses_back() {
        let mut src = BytesMut::new();
        src.extend_from_slice(&[0, 0, 0, 0xC6]);
        src.extend_from_slice(EXAMPLE_BODY.as_bytes());
        let frame = FrameCodec.decode(&mut src);
        let Ok(Some(frame)) = frame else {
            panic!("frame not decoded: {frame:?}");
        };
        let decoded = decode_body(&frame, &key());
        let Ok(decoded) = decoded else {
            panic!("body not decoded: {decoded:?}");
        };
        assert_eq!(decoded.header, example_header());
        assert_eq!(decoded.tx, Some(TxCode::Pay));
        let mut r = decoded.reader();
        assert_eq!(r.an("CustomerNo", 12).ok().as_deref(), Some("YX2019000123"));
        assert_eq!(r.an("PackageCode", 6).ok().as_deref(), Some("JB0001"));
        assert_eq!(r.n("Months", 3).ok(), Some(12));
        assert_eq!(r.money("Amount", 10).ok(), Some(Money::from_fen(31_200)));
        assert_eq!(
            r.an("PayerAccount", 32).ok().as_deref(),
            Some("6230901234567890123")
        );
        assert!(r.finish().is_ok());
    }

    #[test]
    fn one_flipped_byte_fails_the_mac() {
        let mut body = EXAMPLE_BODY.as_bytes().to_vec();
        if let Some(b) = body.get_mut(120) {
            *b = b'9';
        }
        assert!(matches!(
            decode_body(&body, &key()),
            Err(WireError::BadMac { .. })
        ));
    }

    #[test]
    fn frame_lengths_zero_and_over_8192_are_protocol_errors() {
        let mut zero = BytesMut::from(&[0u8, 0, 0, 0, b'x'][..]);
        assert!(matches!(
            FrameCodec.decode(&mut zero),
            Err(WireError::Protocol(_))
        ));
        let mut big = BytesMut::from(&[0u8, 0, 0x20, 0x01][..]);
        assert!(matches!(
            FrameCodec.decode(&mut big),
            Err(WireError::Protocol(_))
        ));
        // A split read waits for the rest.
        let mut part = BytesMut::from(&[0u8, 0, 0, 0xC6, b'2'][..]);
        assert!(matches!(FrameCodec.decode(&mut part), Ok(None)));
    }

    #[test]
    fn wrong_size_for_txcode_and_non_digit_txcode_are_protocol_errors() {
        let mut short = EXAMPLE_BODY.as_bytes().to_vec();
        short.remove(150);
        assert!(matches!(
            decode_body(&short, &key()),
            Err(WireError::Protocol(_))
        ));
        let mut letters = EXAMPLE_BODY.as_bytes().to_vec();
        if let Some(b) = letters.get_mut(0) {
            *b = b'A';
        }
        assert!(matches!(
            decode_body(&letters, &key()),
            Err(WireError::Protocol(_))
        ));
    }

    #[test]
    fn c_fields_are_bytes_and_never_cut() {
        let mut w = FieldWriter::new();
        // 20 Chinese characters = 40 GBK bytes: fits exactly; 21 do not.
        assert!(w.c("RspMsg", &"成".repeat(20), 40).is_ok());
        assert_eq!(w.len(), 40);
        assert!(w.c("RspMsg", &"成".repeat(21), 40).is_err());
        assert!(w.c("RspMsg", "𠀀", 40).is_err());
    }
}
