//! Pure encoding and decoding of the 郴电国际 messages 1001–1004 through the layout table in
//! `layouts.toml`: body = 104-byte header + business body + 16-byte MAC (the 6-digit frame length
//! is the client's business). No I/O here.
//!
//! A response is accepted only when its MAC verifies, it echoes the request's TxCode and
//! BankSerial, its RspCode is four digits and its length is exactly what the spec gives for that
//! TxCode and RspCode. Anything else is [`ResponseError`]: the caller treats it as garbled.

use chrono::{NaiveDate, NaiveTime};
use codecs::clock::{parse_yyyymmdd, yyyymmdd};
use codecs::layout::{Layout, LayoutError, LayoutSet, Record};
use codecs::text::Charset;
use codecs::Money;

use crate::spi::{AdapterError, Bill, BillItem, OriginalRef, PayOrder, RequestContext};

/// The layout table of this partner, data rather than code.
pub const LAYOUTS_TOML: &str = include_str!("layouts.toml");
/// The spec: CP936 as WHATWG defines it, not GB18030.
pub const CHARSET: Charset = Charset::Gbk;
pub const HEADER_LEN: usize = 104;
pub const MAC_LEN: usize = 16;
/// The longest body the spec allows is 662 bytes; a receiver drops anything over 1024.
pub const MAX_BODY_LEN: usize = 1024;
/// Digits of the frame's length header (not counted in the length; the MAC is).
pub const FRAME_DIGITS: usize = 6;
/// Fixed part of a 1001 answer body (CustomerNo .. ItemCount).
pub const QUERY_ANSWER_FIXED_LEN: usize = 182;
pub const QUERY_ITEM_LEN: usize = 30;
pub const QUERY_MAX_ITEMS: usize = 12;
pub const PAY_ANSWER_LEN: usize = 40;
pub const STATUS_ANSWER_LEN: usize = 41;
/// The largest amount an N 12 field holds, in fen.
pub const MAX_AMOUNT_FEN: i64 = 999_999_999_999;

const RSP_SUCCESS: &str = "0000";
const RSP_NOTHING_DUE: &str = "1002";

/// The four transactions of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxCode {
    /// 1001 欠费查询
    Query,
    /// 1002 缴费
    Pay,
    /// 1003 冲正
    Reversal,
    /// 1004 查证
    Status,
}

impl TxCode {
    pub fn code(self) -> &'static str {
        match self {
            TxCode::Query => "1001",
            TxCode::Pay => "1002",
            TxCode::Reversal => "1003",
            TxCode::Status => "1004",
        }
    }

    fn request_layout(self) -> &'static str {
        match self {
            TxCode::Query => "Req1001",
            TxCode::Pay => "Req1002",
            TxCode::Reversal => "Req1003",
            TxCode::Status => "Req1004",
        }
    }
}

/// One request of the bank, borrowing the engine's data.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    Query { customer_no: &'a str },
    Pay(&'a PayOrder),
    Reversal(&'a OriginalRef),
    Status(&'a OriginalRef),
}

impl Request<'_> {
    pub fn tx_code(&self) -> TxCode {
        match self {
            Request::Query { .. } => TxCode::Query,
            Request::Pay(_) => TxCode::Pay,
            Request::Reversal(_) => TxCode::Reversal,
            Request::Status(_) => TxCode::Status,
        }
    }

    /// The customer the request is about (for masked logs).
    pub fn customer_no(&self) -> &str {
        match self {
            Request::Query { customer_no } => customer_no,
            Request::Pay(order) => &order.customer_no,
            Request::Reversal(original) | Request::Status(original) => &original.customer_no,
        }
    }
}

/// The header fields of an answer that the adapter uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHeader {
    pub tx_code: String,
    pub bank_code: String,
    pub bank_serial: String,
    pub rsp_code: String,
    pub rsp_msg: String,
}

/// What the partner says about an original payment in a 1004 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Status 1.
    WrittenOff {
        partner_serial: String,
        acct_date: NaiveDate,
        amount: Money,
    },
    /// Status 2 (carries the original's values, which the adapter does not need).
    Reversed,
    /// Status 3.
    NotFound,
}

#[derive(Clone, Debug)]
pub enum ResponseBody {
    /// Header and MAC only.
    Empty,
    /// 1001 with 0000 or 1002.
    Bill(Bill),
    /// 1002 with 0000.
    Paid {
        partner_serial: String,
        acct_date: NaiveDate,
        prepaid: Money,
    },
    /// 1004 with 0000.
    Status(PaymentStatus),
}

#[derive(Clone, Debug)]
pub struct Response {
    pub header: ResponseHeader,
    pub body: ResponseBody,
}

/// Why an answer is garbled. For 1002–1004 every one of these means "outcome unknown".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("应答报文{length}字节，短于报文头加MAC（{minimum}字节）")]
    TooShort { length: usize, minimum: usize },
    #[error("应答报文{length}字节，超过上限{MAX_BODY_LEN}字节")]
    TooLong { length: usize },
    #[error("应答MAC校验失败")]
    BadMac,
    #[error("应答报文头无法解析：{0}")]
    BadHeader(String),
    #[error("应答交易码{found:?}与请求交易码{expected}不符")]
    WrongTxCode {
        expected: &'static str,
        found: String,
    },
    #[error("应答流水号{found:?}与请求流水号{expected}不符")]
    WrongSerial { expected: String, found: String },
    #[error("应答码{0:?}不是4位数字")]
    BadRspCode(String),
    #[error("交易{tx_code}应答码{rsp_code}的报文体应为{expected}，实为{found}字节")]
    BadBodyLength {
        tx_code: &'static str,
        rsp_code: String,
        expected: String,
        found: usize,
    },
    #[error("应答报文体无法解析：{0}")]
    BadBody(String),
}

impl ResponseError {
    pub fn code(&self) -> &'static str {
        match self {
            ResponseError::TooShort { .. } => "CDGJ_RSP_SHORT",
            ResponseError::TooLong { .. } => "CDGJ_RSP_LONG",
            ResponseError::BadMac => "CDGJ_RSP_MAC",
            ResponseError::BadHeader(_) => "CDGJ_RSP_HEADER",
            ResponseError::WrongTxCode { .. } => "CDGJ_RSP_TXCODE",
            ResponseError::WrongSerial { .. } => "CDGJ_RSP_SERIAL",
            ResponseError::BadRspCode(_) => "CDGJ_RSP_CODE",
            ResponseError::BadBodyLength { .. } => "CDGJ_RSP_LENGTH",
            ResponseError::BadBody(_) => "CDGJ_RSP_BODY",
        }
    }
}

/// The message codec of one instance: its layouts, BankCode and MAC keys.
pub struct Messages {
    layouts: LayoutSet,
    bank_code: String,
    /// Requests are MACed with this key; answers are checked with it first.
    key: [u8; 16],
    /// During a key change the partner may switch before we do: answers that fail with `key`
    /// are checked with this one.
    next_key: Option<[u8; 16]>,
}

/// Which configured key verified an answer's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacKeySlot {
    Current,
    Next,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("bank_code", &self.bank_code)
            .field("key", &"<hidden>")
            .field("next_key", &self.next_key.map(|_| "<hidden>"))
            .finish()
    }
}

impl Messages {
    /// Loads the layout table and checks it against the lengths the spec states, so that an
    /// edited table cannot silently produce frames the partner refuses.
    pub fn new(bank_code: &str, key: [u8; 16]) -> Result<Messages, AdapterError> {
        let layouts = LayoutSet::from_toml(LAYOUTS_TOML).map_err(layout_config_error)?;
        let expected = [
            ("Header", HEADER_LEN),
            ("Req1001", 16),
            ("Req1002", 72),
            ("Req1003", 56),
            ("Req1004", 28),
            ("Rsp1002", PAY_ANSWER_LEN),
            ("Rsp1004", STATUS_ANSWER_LEN),
        ];
        for (name, length) in expected {
            let layout = layouts.get(name).map_err(layout_config_error)?;
            if layout.fixed_len() != Some(length) {
                return Err(AdapterError::Config {
                    field: "layouts.toml",
                    reason: format!("{name} 长度应为{length}字节"),
                });
            }
        }
        layouts.get("Rsp1001").map_err(layout_config_error)?;
        if bank_code.is_empty()
            || bank_code.len() > 8
            || !bank_code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(AdapterError::Config {
                field: "bank_code",
                reason: "须为1至8位字母或数字".into(),
            });
        }
        Ok(Messages {
            layouts,
            bank_code: bank_code.to_string(),
            key,
            next_key: None,
        })
    }

    /// Adds the next MAC key of a key change (see [`MacKeySlot`]).
    pub fn with_next_key(mut self, next_key: Option<[u8; 16]>) -> Messages {
        self.next_key = next_key;
        self
    }

    /// Checks the answer MAC with the current key, then the next one; `None` when neither
    /// matches. Which key matched is logged by fingerprint, never the key.
    pub fn verify_mac(&self, data: &[u8], mac: &[u8]) -> Option<MacKeySlot> {
        if codecs::mac::verify_cdgj_mac(&self.key, data, mac) {
            return Some(MacKeySlot::Current);
        }
        let next_key = self.next_key.as_ref()?;
        if codecs::mac::verify_cdgj_mac(next_key, data, mac) {
            let fingerprint =
                codecs::crypto::secret::SecretBytes::new(next_key.to_vec()).fingerprint();
            tracing::info!(
                partner = crate::chendian::PAYEE,
                bank_code = %self.bank_code,
                key_slot = "next",
                key_fp = %fingerprint,
                "Answer MAC verified with the next key: the partner has switched keys."
            );
            return Some(MacKeySlot::Next);
        }
        None
    }

    pub fn bank_code(&self) -> &str {
        &self.bank_code
    }

    /// The body of a request (header + business body + MAC), without the frame's length digits.
    /// Every input the engine passes is checked here, before any I/O.
    pub fn encode_request(
        &self,
        ctx: &RequestContext,
        request: &Request<'_>,
    ) -> Result<Vec<u8>, AdapterError> {
        let tx_code = request.tx_code();
        check_ascii("BranchNo", &ctx.branch_no, 6, true)?;
        check_ascii("TellerNo", &ctx.teller_no, 6, true)?;
        check_ascii("BankSerial", &ctx.bank_serial, 20, false)?;
        let header = Record::new()
            .with("TxCode", tx_code.code())
            .with("BankCode", self.bank_code.as_str())
            .with("BranchNo", ctx.branch_no.as_str())
            .with("TellerNo", ctx.teller_no.as_str())
            .with("Channel", ctx.channel.code())
            .with("TxDate", yyyymmdd(ctx.tx_date))
            .with("TxTime", hhmmss(ctx.tx_time))
            .with("BankSerial", ctx.bank_serial.as_str())
            .with("RspCode", "")
            .with("RspMsg", "");
        let body = match request {
            Request::Query { customer_no } => {
                check_customer_no(customer_no)?;
                Record::new().with("CustomerNo", *customer_no)
            }
            Request::Pay(order) => {
                check_customer_no(&order.customer_no)?;
                check_ascii("PayerAccount", &order.payer_account, 32, false)?;
                if !order.pay_amount.is_positive() {
                    return Err(AdapterError::InvalidInput {
                        field: "PayAmount",
                        reason: "缴费金额须大于0".into(),
                    });
                }
                Record::new()
                    .with("CustomerNo", order.customer_no.as_str())
                    .with("PayAmount", fen_digits("PayAmount", order.pay_amount)?)
                    .with("TotalDue", fen_digits("TotalDue", order.total_due)?)
                    .with("PayerAccount", order.payer_account.as_str())
            }
            Request::Reversal(original) => {
                check_customer_no(&original.customer_no)?;
                check_ascii("OrigBankSerial", &original.bank_serial, 20, false)?;
                Record::new()
                    .with("OrigBankSerial", original.bank_serial.as_str())
                    .with("OrigTxDate", yyyymmdd(original.tx_date))
                    .with("CustomerNo", original.customer_no.as_str())
                    .with("Amount", fen_digits("Amount", original.amount)?)
            }
            Request::Status(original) => {
                check_ascii("OrigBankSerial", &original.bank_serial, 20, false)?;
                Record::new()
                    .with("OrigBankSerial", original.bank_serial.as_str())
                    .with("OrigTxDate", yyyymmdd(original.tx_date))
            }
        };
        let mut bytes = self.encode_with("Header", &header)?;
        bytes.extend(self.encode_with(tx_code.request_layout(), &body)?);
        let mac = codecs::mac::cdgj_mac_hex(&self.key, &bytes);
        if mac.len() != MAC_LEN {
            return Err(AdapterError::Encode(format!(
                "MAC长度{}不是{MAC_LEN}",
                mac.len()
            )));
        }
        bytes.extend_from_slice(mac.as_bytes());
        Ok(bytes)
    }

    fn encode_with(&self, layout: &str, record: &Record) -> Result<Vec<u8>, AdapterError> {
        self.layouts
            .get(layout)
            .and_then(|l| l.encode(record, CHARSET))
            .map_err(|e| AdapterError::Encode(e.to_string()))
    }

    fn layout(&self, name: &str) -> Result<&Layout, ResponseError> {
        self.layouts
            .get(name)
            .map_err(|e| ResponseError::BadBody(e.to_string()))
    }

    /// Checks and decodes the answer `body` (frame length digits removed) to a request of
    /// `tx_code` sent with `bank_serial`.
    pub fn decode_response(
        &self,
        tx_code: TxCode,
        bank_serial: &str,
        body: &[u8],
    ) -> Result<Response, ResponseError> {
        let minimum = HEADER_LEN + MAC_LEN;
        if body.len() < minimum {
            return Err(ResponseError::TooShort {
                length: body.len(),
                minimum,
            });
        }
        if body.len() > MAX_BODY_LEN {
            return Err(ResponseError::TooLong { length: body.len() });
        }
        let (data, mac) = body.split_at(body.len() - MAC_LEN);
        // The MAC is checked on the raw bytes before any field is read: a field that fails to
        // parse in a message whose MAC is also wrong is noise, not a partner error.
        if self.verify_mac(data, mac).is_none() {
            return Err(ResponseError::BadMac);
        }
        let (header_bytes, rest) = data.split_at(HEADER_LEN);
        let header = self
            .layout("Header")?
            .decode(header_bytes, CHARSET)
            .map_err(|e| ResponseError::BadHeader(e.to_string()))?;
        let text = |name: &str| header.get(name).unwrap_or_default().to_string();
        let header = ResponseHeader {
            tx_code: text("TxCode"),
            bank_code: text("BankCode"),
            bank_serial: text("BankSerial"),
            rsp_code: text("RspCode"),
            rsp_msg: text("RspMsg"),
        };
        if header.tx_code != tx_code.code() {
            return Err(ResponseError::WrongTxCode {
                expected: tx_code.code(),
                found: header.tx_code,
            });
        }
        if header.bank_serial != bank_serial {
            return Err(ResponseError::WrongSerial {
                expected: bank_serial.to_string(),
                found: header.bank_serial,
            });
        }
        if header.rsp_code.len() != 4 || !header.rsp_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ResponseError::BadRspCode(header.rsp_code));
        }
        let rsp_code = header.rsp_code.as_str();
        let bad_length = |expected: &str| ResponseError::BadBodyLength {
            tx_code: tx_code.code(),
            rsp_code: rsp_code.to_string(),
            expected: expected.to_string(),
            found: rest.len(),
        };
        let body = match (tx_code, rsp_code) {
            (TxCode::Query, RSP_SUCCESS | RSP_NOTHING_DUE) => {
                let items_len = rest
                    .len()
                    .checked_sub(QUERY_ANSWER_FIXED_LEN)
                    .ok_or_else(|| bad_length("182+30n字节"))?;
                if items_len % QUERY_ITEM_LEN != 0 || items_len / QUERY_ITEM_LEN > QUERY_MAX_ITEMS {
                    return Err(bad_length("182+30n字节（n≤12）"));
                }
                let record = self.decode_body("Rsp1001", rest)?;
                ResponseBody::Bill(bill(&record, rsp_code == RSP_NOTHING_DUE)?)
            }
            (TxCode::Pay, RSP_SUCCESS) => {
                if rest.len() != PAY_ANSWER_LEN {
                    return Err(bad_length("40字节"));
                }
                let record = self.decode_body("Rsp1002", rest)?;
                ResponseBody::Paid {
                    partner_serial: required(&record, "PartnerSerial")?.to_string(),
                    acct_date: date(&record, "AcctDate")?,
                    prepaid: money(&record, "Prepaid")?,
                }
            }
            (TxCode::Status, RSP_SUCCESS) => {
                if rest.len() != STATUS_ANSWER_LEN {
                    return Err(bad_length("41字节"));
                }
                let record = self.decode_body("Rsp1004", rest)?;
                ResponseBody::Status(payment_status(&record)?)
            }
            _ => {
                if !rest.is_empty() {
                    return Err(bad_length("0字节"));
                }
                ResponseBody::Empty
            }
        };
        Ok(Response { header, body })
    }

    fn decode_body(&self, layout: &str, bytes: &[u8]) -> Result<Record, ResponseError> {
        self.layout(layout)?
            .decode(bytes, CHARSET)
            .map_err(|e| ResponseError::BadBody(e.to_string()))
    }
}

fn layout_config_error(error: LayoutError) -> AdapterError {
    AdapterError::Config {
        field: "layouts.toml",
        reason: error.to_string(),
    }
}

/// CustomerNo is AN 16: printable ASCII without spaces (a padded space would be trimmed away and
/// the partner would see another number).
pub fn check_customer_no(customer_no: &str) -> Result<(), AdapterError> {
    check_ascii("CustomerNo", customer_no, 16, false)
}

fn check_ascii(
    field: &'static str,
    value: &str,
    max_len: usize,
    allow_empty: bool,
) -> Result<(), AdapterError> {
    let bad = |reason: String| AdapterError::InvalidInput { field, reason };
    if value.is_empty() && !allow_empty {
        return Err(bad("不能为空".into()));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("只能含ASCII字母、数字或符号，不能含空格".into()));
    }
    if value.len() > max_len {
        return Err(bad(format!("长度{}超过{max_len}位", value.len())));
    }
    Ok(())
}

fn fen_digits(field: &'static str, amount: Money) -> Result<String, AdapterError> {
    if amount.fen() < 0 || amount.fen() > MAX_AMOUNT_FEN {
        return Err(AdapterError::InvalidInput {
            field,
            reason: format!("金额{amount}超出0至9999999999.99元"),
        });
    }
    amount
        .to_fen_digits(12)
        .map_err(|e| AdapterError::InvalidInput {
            field,
            reason: e.to_string(),
        })
}

fn required<'r>(record: &'r Record, name: &str) -> Result<&'r str, ResponseError> {
    record
        .get(name)
        .ok_or_else(|| ResponseError::BadBody(format!("缺少字段{name}")))
}

fn money(record: &Record, name: &str) -> Result<Money, ResponseError> {
    record
        .get_money(name)
        .map_err(|e| ResponseError::BadBody(e.to_string()))
}

fn date(record: &Record, name: &str) -> Result<NaiveDate, ResponseError> {
    let text = required(record, name)?;
    parse_yyyymmdd(text)
        .ok_or_else(|| ResponseError::BadBody(format!("{name} {text:?} 不是有效日期")))
}

fn bill(record: &Record, nothing_due: bool) -> Result<Bill, ResponseError> {
    let items = record
        .group("Items")
        .iter()
        .map(|item| {
            Ok(BillItem {
                period: required(item, "Period")?.to_string(),
                amount: money(item, "Amount")?,
                penalty: money(item, "Penalty")?,
                usage: None,
            })
        })
        .collect::<Result<Vec<_>, ResponseError>>()?;
    Ok(Bill {
        customer_no: required(record, "CustomerNo")?.to_string(),
        customer_name: required(record, "CustomerName")?.to_string(),
        address: required(record, "Address")?.to_string(),
        total_due: money(record, "TotalDue")?,
        prepaid: money(record, "Prepaid")?,
        items,
        nothing_due,
        meter_no: None,
    })
}

fn payment_status(record: &Record) -> Result<PaymentStatus, ResponseError> {
    match required(record, "Status")? {
        "1" => Ok(PaymentStatus::WrittenOff {
            partner_serial: required(record, "PartnerSerial")?.to_string(),
            acct_date: date(record, "AcctDate")?,
            amount: money(record, "Amount")?,
        }),
        "2" => Ok(PaymentStatus::Reversed),
        "3" => {
            // Status 3 must carry nothing: a "not found" that names a serial contradicts itself,
            // and it would drive a core reversal.
            let serial_empty = required(record, "PartnerSerial")?.is_empty();
            let date_zero = required(record, "AcctDate")? == "00000000";
            let amount_zero = money(record, "Amount")? == Money::ZERO;
            if serial_empty && date_zero && amount_zero {
                Ok(PaymentStatus::NotFound)
            } else {
                Err(ResponseError::BadBody(
                    "Status 3 的 PartnerSerial/AcctDate/Amount 应为空或零".into(),
                ))
            }
        }
        other => Err(ResponseError::BadBody(format!(
            "Status {other:?} 不是1、2或3"
        ))),
    }
}

/// `HHMMSS` of a time of day.
pub fn hhmmss(time: NaiveTime) -> String {
    time.format("%H%M%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spi::Channel;

    const KEY: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32,
        0x10,
    ];

    fn messages() -> Messages {
        Messages::new("NSH43102", KEY).expect("layouts load")
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn ctx(serial: &str) -> RequestContext {
        RequestContext {
            channel: Channel::Mobile,
            branch_no: "000101".into(),
            teller_no: "MB0001".into(),
            tx_date: day(2026, 12, 3),
            tx_time: NaiveTime::from_hms_opt(10, 10, 10).expect("valid time"),
            bank_serial: serial.into(),
        }
    }

    fn spaces(n: usize) -> Vec<u8> {
        vec![b' '; n]
    }

    /// A response header typed from the spec's table: the worked example's fields, then RspCode
    /// and RspMsg (already GBK bytes, padded here to 40).
    fn header(tx_code: &str, serial: &str, rsp_code: &str, rsp_msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(tx_code.as_bytes());
        out.extend_from_slice(b"NSH43102000101MB00010220261203101010");
        out.extend_from_slice(serial.as_bytes());
        out.extend_from_slice(rsp_code.as_bytes());
        out.extend_from_slice(rsp_msg);
        out.extend(spaces(40 - rsp_msg.len()));
        assert_eq!(out.len(), 104);
        out
    }

    /// Appends the MAC the partner would write.
    fn signed(mut data: Vec<u8>) -> Vec<u8> {
        let mac = codecs::mac::cdgj_mac_hex(&KEY, &data);
        data.extend_from_slice(mac.as_bytes());
        data
    }

    const SERIAL_1: &str = "B2026120300000000001";
    const SERIAL_2: &str = "B2026120300000000002";

    #[test]
    fn worked_example_1002_request_is_byte_exact() {
        let order = PayOrder {
            customer_no: "4310020000000001".into(),
            pay_amount: Money::from_fen(30000),
            total_due: Money::from_fen(22335),
            payer_account: "6230901000000000011".into(),
            fields: Default::default(),
        };
        let body = messages()
            .encode_request(&ctx(SERIAL_2), &Request::Pay(&order))
            .expect("encodes");
        let frame = codecs::frame::LengthPrefixed::new(6, 1024)
            .frame(&body)
            .expect("frames");
        let mut expected = Vec::new();
        expected.extend_from_slice(b"000192");
        expected.extend_from_slice(b"1002NSH43102000101MB00010220261203101010B2026120300000000002");
        expected.extend(spaces(44));
        expected.extend_from_slice(b"4310020000000001");
        expected.extend_from_slice(b"000000030000");
        expected.extend_from_slice(b"000000022335");
        expected.extend_from_slice(b"6230901000000000011");
        expected.extend(spaces(13));
        expected.extend_from_slice(b"10B87B1C3800640D");
        assert_eq!(
            String::from_utf8_lossy(&frame),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(frame, expected);
    }

    fn spec_1001_answer() -> Vec<u8> {
        let mut data = header("1001", SERIAL_1, "0000", &[0xB3, 0xC9, 0xB9, 0xA6]);
        data.extend_from_slice(b"4310020000000001");
        data.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]);
        data.extend(spaces(56));
        let address = codecs::text::encode("郴州市北湖区人民路1号", Charset::Gbk).expect("GBK");
        assert_eq!(address.len(), 21);
        data.extend_from_slice(&address);
        data.extend(spaces(59));
        data.extend_from_slice(b"000000022335");
        data.extend_from_slice(b"000000000000");
        data.extend_from_slice(b"02");
        data.extend_from_slice(b"202610000000012345000000000000");
        data.extend_from_slice(b"202611000000009870000000000120");
        assert_eq!(data.len(), 346);
        data
    }

    /// A key that is not the spec's: the worked examples' MACs cannot verify under it.
    const OTHER_KEY: [u8; 16] = [0x11; 16];

    fn spec_1001_body_with_mac() -> Vec<u8> {
        let mut body = spec_1001_answer();
        body.extend_from_slice(b"2320B0CE729FFA80");
        body
    }

    #[test]
    fn answer_under_the_next_key_verifies_after_the_current_fails() {
        // The partner switched to the spec key (our next) while our current key is another one.
        let switched = Messages::new("NSH43102", OTHER_KEY)
            .expect("layouts load")
            .with_next_key(Some(KEY));
        let body = spec_1001_body_with_mac();
        let (data, mac) = body.split_at(346);
        assert_eq!(switched.verify_mac(data, mac), Some(MacKeySlot::Next));
        let response = switched
            .decode_response(TxCode::Query, SERIAL_1, &body)
            .expect("decodes with the next key");
        assert_eq!(response.header.rsp_msg, "成功");

        // The current key is tried first.
        let both = messages().with_next_key(Some(OTHER_KEY));
        assert_eq!(both.verify_mac(data, mac), Some(MacKeySlot::Current));

        // Neither key: refused, as without a next key.
        let neither = Messages::new("NSH43102", OTHER_KEY)
            .expect("layouts load")
            .with_next_key(Some([0x22; 16]));
        assert_eq!(neither.verify_mac(data, mac), None);
        assert_eq!(
            neither
                .decode_response(TxCode::Query, SERIAL_1, &body)
                .err(),
            Some(ResponseError::BadMac)
        );
        let no_next = Messages::new("NSH43102", OTHER_KEY).expect("layouts load");
        assert_eq!(no_next.verify_mac(data, mac), None);
    }

    #[test]
    fn requests_are_maced_with_the_current_key_only() {
        let order = PayOrder {
            customer_no: "4310020000000001".into(),
            pay_amount: Money::from_fen(30000),
            total_due: Money::from_fen(22335),
            payer_account: "6230901000000000011".into(),
            fields: Default::default(),
        };
        let with_next = messages().with_next_key(Some(OTHER_KEY));
        let body = with_next
            .encode_request(&ctx(SERIAL_2), &Request::Pay(&order))
            .expect("encodes");
        assert_eq!(body.len(), 192);
        assert_eq!(&body[176..], b"10B87B1C3800640D");
        // With the spec key only as the next key, the request is not MACed with it.
        let next_only = Messages::new("NSH43102", OTHER_KEY)
            .expect("layouts load")
            .with_next_key(Some(KEY));
        let body = next_only
            .encode_request(&ctx(SERIAL_2), &Request::Pay(&order))
            .expect("encodes");
        assert_ne!(&body[176..], b"10B87B1C3800640D");
    }

    #[test]
    fn debug_hides_both_keys() {
        let shown = format!("{:?}", messages().with_next_key(Some(OTHER_KEY)));
        assert!(!shown.contains("17, 17"));
        assert!(!shown.contains("0x11"));
        assert!(shown.contains("<hidden>"));
    }

    #[test]
    fn worked_example_1001_answer_decodes() {
        let mut body = spec_1001_answer();
        body.extend_from_slice(b"2320B0CE729FFA80");
        let mut frame = b"000362".to_vec();
        frame.extend_from_slice(&body);
        let mut buffer = bytes::BytesMut::from(frame.as_slice());
        let mut codec = codecs::frame::LengthPrefixed::new(6, 1024);
        let unframed = tokio_util::codec::Decoder::decode(&mut codec, &mut buffer)
            .expect("frame ok")
            .expect("whole frame");
        let response = messages()
            .decode_response(TxCode::Query, SERIAL_1, &unframed)
            .expect("decodes");
        assert_eq!(response.header.rsp_code, "0000");
        assert_eq!(response.header.rsp_msg, "成功");
        let ResponseBody::Bill(bill) = response.body else {
            panic!("expected a bill, got {:?}", response.body);
        };
        assert_eq!(bill.customer_no, "4310020000000001");
        assert_eq!(bill.customer_name, "张三");
        assert_eq!(bill.address, "郴州市北湖区人民路1号");
        assert_eq!(bill.total_due, Money::from_fen(22335));
        assert_eq!(bill.prepaid, Money::ZERO);
        assert!(!bill.nothing_due);
        assert_eq!(bill.items.len(), 2);
        assert_eq!(bill.items[0].period, "202610");
        assert_eq!(bill.items[0].amount, Money::from_fen(12345));
        assert_eq!(bill.items[0].penalty, Money::ZERO);
        assert_eq!(bill.items[1].period, "202611");
        assert_eq!(bill.items[1].amount, Money::from_fen(9870));
        assert_eq!(bill.items[1].penalty, Money::from_fen(120));
    }

    #[test]
    fn other_requests_have_the_spec_layout() {
        let m = messages();
        let query = m
            .encode_request(
                &ctx(SERIAL_1),
                &Request::Query {
                    customer_no: "4310020000000001",
                },
            )
            .expect("encodes");
        let mut expected = b"1001NSH43102000101MB00010220261203101010B2026120300000000001".to_vec();
        expected.extend(spaces(44));
        expected.extend_from_slice(b"4310020000000001");
        assert_eq!(query.len(), 136);
        assert_eq!(&query[..120], expected.as_slice());
        assert_eq!(
            query[120..],
            *codecs::mac::cdgj_mac_hex(&KEY, &expected).as_bytes()
        );

        let original = OriginalRef {
            bank_serial: SERIAL_2.into(),
            tx_date: day(2026, 12, 3),
            customer_no: "4310020000000001".into(),
            amount: Money::from_fen(30000),
            total_due: Money::from_fen(22335),
            fields: Default::default(),
            tx_time: Default::default(),
        };
        let reversal = m
            .encode_request(&ctx("B2026120300000000003"), &Request::Reversal(&original))
            .expect("encodes");
        let mut expected = b"1003NSH43102000101MB00010220261203101010B2026120300000000003".to_vec();
        expected.extend(spaces(44));
        expected.extend_from_slice(b"B2026120300000000002202612034310020000000001000000030000");
        assert_eq!(reversal.len(), 176);
        assert_eq!(&reversal[..160], expected.as_slice());

        let status = m
            .encode_request(&ctx("B2026120300000000004"), &Request::Status(&original))
            .expect("encodes");
        let mut expected = b"1004NSH43102000101MB00010220261203101010B2026120300000000004".to_vec();
        expected.extend(spaces(44));
        expected.extend_from_slice(b"B202612030000000000220261203");
        assert_eq!(status.len(), 148);
        assert_eq!(&status[..132], expected.as_slice());
    }

    #[test]
    fn bad_input_is_refused_before_any_io() {
        let m = messages();
        for customer_no in [
            "",
            "43100200000000001",
            "4310 20000000001",
            "43100200000000０1",
        ] {
            let error = m
                .encode_request(&ctx(SERIAL_1), &Request::Query { customer_no })
                .expect_err("refused");
            assert_eq!(error.code(), "ADP_INPUT", "{customer_no:?}");
        }
        let mut order = PayOrder {
            customer_no: "4310020000000001".into(),
            pay_amount: Money::ZERO,
            total_due: Money::ZERO,
            payer_account: "6230901000000000011".into(),
            fields: Default::default(),
        };
        let refused = |order: &PayOrder| {
            m.encode_request(&ctx(SERIAL_2), &Request::Pay(order))
                .map_err(|e| e.code())
        };
        assert_eq!(refused(&order).err(), Some("ADP_INPUT"));
        order.pay_amount = Money::from_fen(1_000_000_000_000);
        assert_eq!(refused(&order).err(), Some("ADP_INPUT"));
        order.pay_amount = Money::from_fen(100);
        order.payer_account = "1".repeat(33);
        assert_eq!(refused(&order).err(), Some("ADP_INPUT"));
        order.payer_account = "1".repeat(32);
        assert!(refused(&order).is_ok());
        let mut long_serial = ctx(SERIAL_2);
        long_serial.bank_serial.push('9');
        assert_eq!(
            m.encode_request(&long_serial, &Request::Pay(&order))
                .err()
                .map(|e| e.code()),
            Some("ADP_INPUT")
        );
    }

    fn decode(tx_code: TxCode, serial: &str, body: &[u8]) -> Result<Response, ResponseError> {
        messages().decode_response(tx_code, serial, body)
    }

    #[test]
    fn header_only_codes_decode_for_every_transaction() {
        let cases: [(TxCode, &str, &[&str]); 4] = [
            (
                TxCode::Query,
                "1001",
                &["1001", "1004", "9001", "9002", "9999"],
            ),
            (
                TxCode::Pay,
                "1002",
                &["1001", "1003", "1004", "1005", "9001", "9002", "9999"],
            ),
            (
                TxCode::Reversal,
                "1003",
                &[
                    "0000", "2001", "2002", "2003", "2004", "9001", "9002", "9999",
                ],
            ),
            (TxCode::Status, "1004", &["9001", "9002", "9999"]),
        ];
        for (tx_code, code, rsp_codes) in cases {
            for rsp_code in rsp_codes {
                // 系统忙 = CF B5 CD B3 C3 A6 in GBK.
                let body = signed(header(
                    code,
                    SERIAL_1,
                    rsp_code,
                    &[0xCF, 0xB5, 0xCD, 0xB3, 0xC3, 0xA6],
                ));
                assert_eq!(body.len(), 120);
                let response = decode(tx_code, SERIAL_1, &body).expect("decodes");
                assert_eq!(response.header.rsp_code, *rsp_code);
                assert_eq!(response.header.rsp_msg, "系统忙");
                assert!(
                    matches!(response.body, ResponseBody::Empty),
                    "{code} {rsp_code}"
                );
            }
        }
    }

    #[test]
    fn query_answer_1002_has_a_body_and_means_nothing_due() {
        let mut data = header("1001", SERIAL_1, "1002", &[]);
        data.extend_from_slice(b"4310020000000001");
        data.extend_from_slice(&[0xD5, 0xC5, 0xC8, 0xFD]);
        data.extend(spaces(56 + 80));
        data.extend_from_slice(b"000000000000000000005000");
        data.extend_from_slice(b"00");
        let response = decode(TxCode::Query, SERIAL_1, &signed(data)).expect("decodes");
        let ResponseBody::Bill(bill) = response.body else {
            panic!("expected a bill");
        };
        assert!(bill.nothing_due);
        assert_eq!(bill.total_due, Money::ZERO);
        assert_eq!(bill.prepaid, Money::from_fen(5000));
        assert!(bill.items.is_empty());
        assert_eq!(bill.address, "");
    }

    #[test]
    fn pay_answer_0000_decodes() {
        let mut data = header("1002", SERIAL_2, "0000", &[0xB3, 0xC9, 0xB9, 0xA6]);
        data.extend_from_slice(b"P2026120300000000077");
        data.extend_from_slice(b"20261203");
        data.extend_from_slice(b"000000007665");
        let response = decode(TxCode::Pay, SERIAL_2, &signed(data)).expect("decodes");
        let ResponseBody::Paid {
            partner_serial,
            acct_date,
            prepaid,
        } = response.body
        else {
            panic!("expected a payment result");
        };
        assert_eq!(partner_serial, "P2026120300000000077");
        assert_eq!(acct_date, day(2026, 12, 3));
        assert_eq!(prepaid, Money::from_fen(7665));
    }

    fn status_answer(fields: &[u8]) -> Result<Response, ResponseError> {
        let mut data = header("1004", SERIAL_1, "0000", &[]);
        data.extend_from_slice(fields);
        decode(TxCode::Status, SERIAL_1, &signed(data))
    }

    #[test]
    fn status_answers_decode() {
        let written_off = status_answer(b"1P2026120300000000077" as &[u8])
            .map(|_| ())
            .expect_err("short body refused");
        assert_eq!(written_off.code(), "CDGJ_RSP_LENGTH");
        let response =
            status_answer(b"1P202612030000000007720261204000000030000").expect("decodes");
        assert!(matches!(
            response.body,
            ResponseBody::Status(PaymentStatus::WrittenOff { ref partner_serial, acct_date, amount })
                if partner_serial == "P2026120300000000077"
                    && acct_date == day(2026, 12, 4)
                    && amount == Money::from_fen(30000)
        ));
        let response =
            status_answer(b"2P202612030000000007720261204000000030000").expect("decodes");
        assert!(matches!(
            response.body,
            ResponseBody::Status(PaymentStatus::Reversed)
        ));
        let mut not_found = b"3".to_vec();
        not_found.extend(spaces(20));
        not_found.extend_from_slice(b"00000000000000000000");
        let response = status_answer(&not_found).expect("decodes");
        assert!(matches!(
            response.body,
            ResponseBody::Status(PaymentStatus::NotFound)
        ));
        let contradiction = status_answer(b"3P202612030000000007700000000000000000000");
        assert_eq!(
            contradiction.map(|_| ()).err().map(|e| e.code()),
            Some("CDGJ_RSP_BODY")
        );
        let bad_status = status_answer(b"4P202612030000000007700000000000000000000");
        assert_eq!(
            bad_status.map(|_| ()).err().map(|e| e.code()),
            Some("CDGJ_RSP_BODY")
        );
    }

    #[test]
    fn garbled_answers_are_classified() {
        let good = signed(header("1002", SERIAL_2, "1003", &[]));
        assert!(decode(TxCode::Pay, SERIAL_2, &good).is_ok());

        let mut bad_mac = good.clone();
        bad_mac[119] = if bad_mac[119] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            decode(TxCode::Pay, SERIAL_2, &bad_mac).err(),
            Some(ResponseError::BadMac)
        );

        // Lowercase hex is not the MAC the spec writes.
        let mut lowercase = good.clone();
        lowercase[104..].make_ascii_lowercase();
        if lowercase != good {
            assert_eq!(
                decode(TxCode::Pay, SERIAL_2, &lowercase).err(),
                Some(ResponseError::BadMac)
            );
        }

        let wrong_serial = signed(header("1002", SERIAL_1, "1003", &[]));
        assert!(matches!(
            decode(TxCode::Pay, SERIAL_2, &wrong_serial),
            Err(ResponseError::WrongSerial { .. })
        ));
        let wrong_tx = signed(header("1001", SERIAL_2, "1003", &[]));
        assert!(matches!(
            decode(TxCode::Pay, SERIAL_2, &wrong_tx),
            Err(ResponseError::WrongTxCode { .. })
        ));
        let blank_code = signed(header("1002", SERIAL_2, "    ", &[]));
        assert!(matches!(
            decode(TxCode::Pay, SERIAL_2, &blank_code),
            Err(ResponseError::BadRspCode(_))
        ));

        // 0000 without its body: the partner wrote something off, but we cannot read what.
        let truncated = signed(header("1002", SERIAL_2, "0000", &[]));
        assert!(matches!(
            decode(TxCode::Pay, SERIAL_2, &truncated),
            Err(ResponseError::BadBodyLength { found: 0, .. })
        ));
        // A body where the spec lists none.
        let mut extra = header("1003", SERIAL_2, "2001", &[]);
        extra.extend_from_slice(b"X");
        assert!(matches!(
            decode(TxCode::Reversal, SERIAL_2, &signed(extra)),
            Err(ResponseError::BadBodyLength { found: 1, .. })
        ));
        // A 1001 answer with one item fewer than its ItemCount says.
        let mut short_items = spec_1001_answer();
        short_items.truncate(346 - 30);
        assert!(matches!(
            decode(TxCode::Query, SERIAL_1, &signed(short_items)),
            Err(ResponseError::BadBody(_))
        ));
        let mut ragged = spec_1001_answer();
        ragged.truncate(340);
        assert!(matches!(
            decode(TxCode::Query, SERIAL_1, &signed(ragged)),
            Err(ResponseError::BadBodyLength { .. })
        ));
        assert!(matches!(
            decode(TxCode::Pay, SERIAL_2, &good[..119]),
            Err(ResponseError::TooShort { .. })
        ));
        // A half GBK character at the end of RspMsg.
        let mut half = header("1002", SERIAL_2, "1003", &[]);
        half[103] = 0xB3;
        assert!(matches!(
            decode(TxCode::Pay, SERIAL_2, &signed(half)),
            Err(ResponseError::BadHeader(_))
        ));
    }
}
