//! A partner profile: everything about a fixed-length protocol of the shape of specs 01/02 that is
//! the same for every instance — framing, charset, MAC scheme, layouts, trade codes, which fields
//! carry which SPI value, the response-code table, timeouts and the daily files. Data, not code:
//! a new partner of this shape is a new profile file.
//!
//! Built-in profiles are the protocols this code ships (`water`); any other is loaded from a file
//! at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveTime;
use codecs::clock::parse_hhmmss;
use codecs::layout::{FieldKind, Item, Layout};
use codecs::text::Charset;
use serde::Deserialize;

use crate::spi::{AdapterError, Channel};

/// The water protocol of spec 02.
pub const WATER_PROFILE_TOML: &str = include_str!("../../profiles/water.toml");

/// Frames longer than this are not a bill message whatever a profile says.
pub const MAX_FRAME_LENGTH: usize = 999_999;
/// The longest answer timeout a profile may state.
pub const MAX_ANSWER_TIMEOUT_MS: u64 = 600_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (`water`).
    pub name: String,
    /// The payee code in journals and logs (`WATER`).
    pub payee: String,
    #[serde(default)]
    pub charset: Charset,
    /// Every AN and C field of a request must be non-blank (RspCode and RspMsg excepted); spec
    /// 02 answers 090 otherwise, so the hub refuses such a request before sending it.
    #[serde(default)]
    pub require_filled_fields: bool,
    pub core: CoreTexts,
    /// When the hub refuses new payments from channels around the partner's day-end.
    #[serde(default)]
    pub day_end: Option<DayEnd>,
    pub framing: Framing,
    pub mac: MacSpec,
    pub header: HeaderFields,
    pub channels: ChannelMap,
    pub trades: Trades,
    pub fields: BodyFields,
    pub codes: Codes,
    pub status_values: StatusValues,
    pub daily_file: DailyFileSpec,
    pub layouts: Vec<Layout>,
}

/// Texts of the core postings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreTexts {
    pub payment_summary_prefix: String,
    pub settlement_summary_prefix: String,
}

/// A window of the hub's clock, `HHMMSS` to `HHMMSS` inclusive, that may wrap past midnight.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayEnd {
    pub refuse_from: String,
    pub refuse_until: String,
}

impl DayEnd {
    /// Whether a new payment from a channel is refused at `time` (the hub's clock).
    pub fn refuses_at(&self, time: NaiveTime) -> bool {
        match (
            parse_hhmmss(&self.refuse_from),
            parse_hhmmss(&self.refuse_until),
        ) {
            (Some(from), Some(until)) if from <= until => from <= time && time <= until,
            (Some(from), Some(until)) => time >= from || time <= until,
            // `validate` refuses such a profile; refusing is the side that moves no money.
            _ => true,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framing {
    /// ASCII digits of the length header.
    pub length_digits: usize,
    /// Whether the length value counts the MAC (spec 02: yes).
    pub length_covers_mac: bool,
    /// The largest length value allowed.
    pub max_length: usize,
    /// Connections open at once to one instance (specs 02/11: at most 20); a request beyond
    /// them waits for one to close.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// Spec 02's limit, for a profile that states none.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20;

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum MacScheme {
    /// Spec 01: zero padding, first 8 bytes of the last block, 16 hex.
    #[serde(rename = "cdgj")]
    Cdgj,
    /// Specs 02/11: ISO/IEC 9797-1 padding method 2, the whole last block, 32 hex.
    #[serde(rename = "iso9797-m2")]
    Iso9797M2,
}

impl MacScheme {
    /// Hex characters of the MAC field.
    pub fn hex_len(self) -> usize {
        match self {
            MacScheme::Cdgj => 16,
            MacScheme::Iso9797M2 => 32,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacCoverage {
    /// From the first length digit up to the byte before the MAC.
    Frame,
    /// From the first byte after the length header up to the byte before the MAC.
    Body,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacSpec {
    pub scheme: MacScheme,
    pub covers: MacCoverage,
    /// Response codes whose answers carry no verifiable MAC and mean nothing was done.
    #[serde(default)]
    pub unverified_codes: Vec<String>,
}

/// Names of the header fields (in the header layout) that carry each value.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderFields {
    pub layout: String,
    pub trade_code: String,
    pub company_code: String,
    pub branch_no: String,
    pub teller_no: String,
    pub channel: String,
    pub tx_date: String,
    pub tx_time: String,
    pub bank_serial: String,
    pub rsp_code: String,
    pub rsp_msg: String,
    /// Header fields a response must echo from its request.
    pub echo: Vec<String>,
}

/// The partner's code for each bank channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMap {
    pub counter: String,
    pub self_service: String,
    pub online: String,
    pub mobile: String,
    /// The batch-withholding channel, seen only in files.
    #[serde(default)]
    pub batch: Option<String>,
}

/// The channel code daily records carry for batch-withholding lines.
pub const BATCH_CHANNEL: &str = "BATCH";

impl ChannelMap {
    pub fn code(&self, channel: &Channel) -> &str {
        match channel {
            Channel::Counter => &self.counter,
            Channel::SelfService => &self.self_service,
            Channel::Online => &self.online,
            Channel::Mobile => &self.mobile,
            // Refused by the engine before any call (`accepts_channel`): no code of its own.
            Channel::Nongxinyin => "",
        }
    }

    /// The SPI's channel code for a partner's code (`BATCH` for the batch channel).
    pub fn spi_code(&self, partner_code: &str) -> Option<&'static str> {
        [
            Channel::Counter,
            Channel::SelfService,
            Channel::Online,
            Channel::Mobile,
        ]
        .iter()
        .find(|channel| self.code(channel) == partner_code)
        .map(Channel::code)
        .or_else(|| (self.batch.as_deref() == Some(partner_code)).then_some(BATCH_CHANNEL))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trade {
    pub code: String,
    /// The request body layout.
    pub request: String,
    /// The body layout of a success answer; none when a success answer has no body.
    #[serde(default)]
    pub response: Option<String>,
    pub answer_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trades {
    pub query: Trade,
    pub pay: Trade,
    /// Payment when nothing is due; without it such a payment goes as `pay`.
    #[serde(default)]
    pub prepay: Option<Trade>,
    pub reverse: Trade,
    pub status: Trade,
}

/// The SPI operations, as the config's timeout overrides name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Query,
    Pay,
    Prepay,
    Reverse,
    Status,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Query,
        Operation::Pay,
        Operation::Prepay,
        Operation::Reverse,
        Operation::Status,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Query => "query",
            Operation::Pay => "pay",
            Operation::Prepay => "prepay",
            Operation::Reverse => "reverse",
            Operation::Status => "status",
        }
    }
}

impl Trades {
    pub fn get(&self, operation: Operation) -> Option<&Trade> {
        match operation {
            Operation::Query => Some(&self.query),
            Operation::Pay => Some(&self.pay),
            Operation::Prepay => self.prepay.as_ref(),
            Operation::Reverse => Some(&self.reverse),
            Operation::Status => Some(&self.status),
        }
    }
}

/// Names of the body fields that carry each SPI value.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyFields {
    pub customer_no: String,
    pub customer_name: String,
    pub address: String,
    pub balance: String,
    pub total_due: String,
    pub bills: String,
    pub bill_period: String,
    pub bill_amount: String,
    pub bill_penalty: String,
    pub pay_amount: String,
    pub payer_account: String,
    pub partner_serial: String,
    pub acct_date: String,
    pub orig_bank_serial: String,
    pub orig_tx_date: String,
    pub orig_trade_code: String,
    pub amount: String,
    pub status: String,
    /// `[fields.usage]`: the meter and usage a query answer carries (spec 02's arrears and usage
    /// query, spec 11's 用气量), shown to the channel beside each bill. Absent: none.
    #[serde(default)]
    pub usage: Option<UsageFields>,
}

/// Where a query answer carries the meter and each bill's readings and usage.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageFields {
    /// A top-level field of the query answer.
    pub meter_no: String,
    /// Fields of each bill of the `bills` group.
    pub prev_reading: String,
    pub curr_reading: String,
    pub usage: String,
    /// Decimal places of the three numbers as sent (spec 02: 0, whole m³; spec 11: 2, 0.01 m³).
    pub scale: u32,
    /// The unit the channel shows (`m³`).
    pub unit: String,
}

/// The response-code table: what each code means for the SPI.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codes {
    pub success: Vec<String>,
    /// A payment answered so has an unknown outcome.
    pub unknown: Vec<String>,
    pub reversal_not_found: Vec<String>,
    pub reversal_already: Vec<String>,
    pub reversal_too_late: Vec<String>,
    pub reversal_mismatch: Vec<String>,
    /// A reversal answered so must be re-sent.
    pub reversal_retry: Vec<String>,
    /// Chinese text per code, for operators and channels when the answer's own text is empty.
    #[serde(default)]
    pub messages: BTreeMap<String, String>,
    /// What refusal codes mean for the channel (`"001" = "customer_not_found"`).
    #[serde(default)]
    pub reasons: BTreeMap<String, crate::spi::RefusalReason>,
}

impl Codes {
    pub fn is(list: &[String], code: &str) -> bool {
        list.iter().any(|listed| listed == code)
    }
}

/// Values of the status-query answer's Status field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusValues {
    pub written_off: String,
    pub reversed: String,
    pub not_found: String,
}

/// One transaction type's count and sum columns in the totals file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeTotal {
    pub code: String,
    pub count: String,
    pub amount: String,
}

/// The T+1 files: a one-line totals file and a detail file, `|`-separated, CRLF after every line.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyFileSpec {
    /// File names with `{company}` and `{date}` (YYYYMMDD) placeholders.
    pub totals_name: String,
    pub detail_name: String,
    pub flag_name: String,
    pub totals_columns: Vec<String>,
    /// Columns by name; `AcctDate`, `Type`, `TxDate`, `BankSerial`, `PartnerSerial`,
    /// `CustomerNo`, `Amount`, `Channel` are understood, others are read and ignored.
    pub detail_columns: Vec<String>,
    pub total_count: String,
    pub total_amount: String,
    #[serde(default)]
    pub customer_no_max_len: Option<usize>,
    pub types: Vec<TypeTotal>,
}

/// The layouts of spec 02's 201 and 202, request and answer.
pub const AGREEMENT_LAYOUTS: [&str; 4] = ["201.req", "201.rsp", "202.req", "202.rsp"];

/// Detail columns the parser needs.
pub const DETAIL_REQUIRED: [&str; 8] = [
    "AcctDate",
    "Type",
    "TxDate",
    "BankSerial",
    "PartnerSerial",
    "CustomerNo",
    "Amount",
    "Channel",
];
/// Totals columns the parser needs besides the counts and sums.
pub const TOTALS_REQUIRED: [&str; 2] = ["CompanyCode", "AcctDate"];

fn config_error(field: &'static str, reason: impl Into<String>) -> AdapterError {
    AdapterError::Config {
        field,
        reason: reason.into(),
    }
}

impl Profile {
    /// Parses and validates a profile.
    pub fn from_toml(text: &str) -> Result<Profile, AdapterError> {
        let profile: Profile = toml::from_str(text)
            .map_err(|e| config_error("profile", format!("无法解析：{}", e.message())))?;
        profile.validate()?;
        Ok(profile)
    }

    /// A profile this code ships, by name.
    pub fn builtin(name: &str) -> Result<Profile, AdapterError> {
        match name {
            "water" => Profile::from_toml(WATER_PROFILE_TOML),
            other => Err(config_error(
                "profile",
                format!("没有内置的协议配置{other:?}"),
            )),
        }
    }

    /// Loads a profile file (the same path at start-up and reload).
    pub fn load(path: &Path) -> Result<Profile, AdapterError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            config_error("profile_file", format!("无法读取{}：{e}", path.display()))
        })?;
        Profile::from_toml(&text)
    }

    pub fn layout(&self, name: &str) -> Result<&Layout, AdapterError> {
        self.layouts
            .iter()
            .find(|layout| layout.name == name)
            .ok_or_else(|| config_error("layouts", format!("没有名为{name}的报文格式")))
    }

    pub fn header_layout(&self) -> Result<&Layout, AdapterError> {
        self.layout(&self.header.layout)
    }

    /// The header's width in bytes (a fixed-length layout, checked by `validate`).
    pub fn header_len(&self) -> usize {
        self.header_layout()
            .ok()
            .and_then(Layout::fixed_len)
            .unwrap_or(0)
    }

    pub fn mac_len(&self) -> usize {
        self.mac.scheme.hex_len()
    }

    /// Whether the profile carries spec 02's withholding agreements (201 sign, 202 terminate):
    /// their four layouts. The trade codes themselves are spec 02's (`fixedlen::agreement`).
    pub fn supports_agreements(&self) -> bool {
        AGREEMENT_LAYOUTS
            .iter()
            .all(|name| self.layouts.iter().any(|layout| layout.name == *name))
    }

    /// Whether the profile's partner runs spec 02's batch withholding: a batch channel (Channel
    /// 5, files only) and the agreements the batch checks every line against. A profile without
    /// them (spec 11: no 201/202, no DK/DKR, no Channel 5) gets no batch run.
    pub fn supports_batch_withholding(&self) -> bool {
        self.channels.batch.is_some() && self.supports_agreements()
    }

    /// The Chinese text of a response code, when the profile has one.
    pub fn code_message(&self, code: &str) -> Option<&str> {
        self.codes.messages.get(code).map(String::as_str)
    }

    /// Checks that every name the profile uses exists and every width is sane.
    pub fn validate(&self) -> Result<(), AdapterError> {
        if self.name.trim().is_empty() || self.payee.trim().is_empty() {
            return Err(config_error("name", "协议名与收款单位代码不能为空"));
        }
        if let Some(day_end) = &self.day_end {
            if parse_hhmmss(&day_end.refuse_from).is_none()
                || parse_hhmmss(&day_end.refuse_until).is_none()
            {
                return Err(config_error("day_end", "须为HHMMSS"));
            }
        }
        let framing = &self.framing;
        if framing.length_digits == 0 || framing.length_digits > 6 {
            return Err(config_error("framing.length_digits", "须为1至6位"));
        }
        let digits_max = 10usize.pow(u32::try_from(framing.length_digits).unwrap_or(6)) - 1;
        if framing.max_length == 0
            || framing.max_length > digits_max
            || framing.max_length > MAX_FRAME_LENGTH
        {
            return Err(config_error(
                "framing.max_length",
                format!("须在1至{}之间", digits_max.min(MAX_FRAME_LENGTH)),
            ));
        }
        if framing.max_connections == 0 || framing.max_connections > 1_000 {
            return Err(config_error("framing.max_connections", "须在1至1000之间"));
        }
        let mut names = BTreeSet::new();
        for layout in &self.layouts {
            if !names.insert(layout.name.as_str()) {
                return Err(config_error(
                    "layouts",
                    format!("报文格式{}重名", layout.name),
                ));
            }
            layout
                .validate()
                .map_err(|e| config_error("layouts", e.to_string()))?;
        }
        let header = self.header_layout()?;
        if header.fixed_len().is_none() {
            return Err(config_error("header.layout", "报文头须为定长"));
        }
        let h = &self.header;
        for field in [
            &h.trade_code,
            &h.company_code,
            &h.branch_no,
            &h.teller_no,
            &h.channel,
            &h.tx_date,
            &h.tx_time,
            &h.bank_serial,
            &h.rsp_code,
            &h.rsp_msg,
        ]
        .into_iter()
        .chain(h.echo.iter())
        {
            if field_kind(header, field).is_none() {
                return Err(config_error("header", format!("报文头中没有字段{field}")));
            }
        }
        let mut codes = BTreeSet::new();
        for operation in Operation::ALL {
            let Some(trade) = self.trades.get(operation) else {
                continue;
            };
            if trade.code.is_empty() || !codes.insert(trade.code.as_str()) {
                return Err(config_error(
                    "trades",
                    format!("{}的交易码为空或重复", operation.name()),
                ));
            }
            if trade.answer_timeout_ms == 0 || trade.answer_timeout_ms > MAX_ANSWER_TIMEOUT_MS {
                return Err(config_error(
                    "trades.answer_timeout_ms",
                    format!("{}须在1至{MAX_ANSWER_TIMEOUT_MS}毫秒之间", operation.name()),
                ));
            }
            self.layout(&trade.request)?;
            let needs_body = matches!(
                operation,
                Operation::Query | Operation::Pay | Operation::Prepay | Operation::Status
            );
            match (&trade.response, needs_body) {
                (Some(response), _) => {
                    self.layout(response)?;
                }
                (None, true) => {
                    return Err(config_error(
                        "trades",
                        format!("{}须有应答报文体格式", operation.name()),
                    ))
                }
                (None, false) => {}
            }
        }
        self.validate_usage()?;
        self.validate_daily_file()
    }

    /// `[fields.usage]` names fields the query answer has: a typo would otherwise make every
    /// query of the instance garbled.
    fn validate_usage(&self) -> Result<(), AdapterError> {
        let Some(usage) = &self.fields.usage else {
            return Ok(());
        };
        if usage.scale > 6 || usage.unit.trim().is_empty() {
            return Err(config_error(
                "fields.usage",
                "scale须在0至6之间，unit不能为空",
            ));
        }
        let Some(response) = self.trades.query.response.as_deref() else {
            return Err(config_error("fields.usage", "查询交易无应答报文体"));
        };
        let layout = self.layout(response)?;
        if field_kind(layout, &usage.meter_no).is_none() {
            return Err(config_error(
                "fields.usage.meter_no",
                format!("查询应答中没有字段{}", usage.meter_no),
            ));
        }
        let bills = layout.items.iter().find_map(|item| match item {
            Item::Group(group) if group.group == self.fields.bills => Some(group),
            _ => None,
        });
        let Some(bills) = bills else {
            return Err(config_error("fields.bills", "查询应答中没有账单组"));
        };
        for name in [&usage.prev_reading, &usage.curr_reading, &usage.usage] {
            let numeric = bills
                .fields
                .iter()
                .any(|f| &f.name == name && f.kind == FieldKind::N);
            if !numeric {
                return Err(config_error(
                    "fields.usage",
                    format!("账单组中没有数字字段{name}"),
                ));
            }
        }
        Ok(())
    }

    fn validate_daily_file(&self) -> Result<(), AdapterError> {
        let spec = &self.daily_file;
        for name in [&spec.totals_name, &spec.detail_name, &spec.flag_name] {
            if !name.contains("{date}") {
                return Err(config_error(
                    "daily_file",
                    format!("文件名{name}缺少{{date}}"),
                ));
            }
        }
        for required in DETAIL_REQUIRED {
            if !spec.detail_columns.iter().any(|c| c == required) {
                return Err(config_error(
                    "daily_file.detail_columns",
                    format!("缺少{required}"),
                ));
            }
        }
        let totals: Vec<&str> = TOTALS_REQUIRED
            .into_iter()
            .chain([spec.total_count.as_str(), spec.total_amount.as_str()])
            .chain(
                spec.types
                    .iter()
                    .flat_map(|t| [t.count.as_str(), t.amount.as_str()]),
            )
            .collect();
        for required in totals {
            if !spec.totals_columns.iter().any(|c| c == required) {
                return Err(config_error(
                    "daily_file.totals_columns",
                    format!("缺少{required}"),
                ));
            }
        }
        if spec.types.is_empty() {
            return Err(config_error("daily_file.types", "至少一种交易类型"));
        }
        Ok(())
    }
}

/// The kind of a top-level field of a layout.
pub fn field_kind(layout: &Layout, name: &str) -> Option<FieldKind> {
    layout.items.iter().find_map(|item| match item {
        Item::Field(field) if field.name == name => Some(field.kind),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_profile_loads_with_spec_02_sizes() {
        let profile = Profile::builtin("water").expect("water loads");
        // Spec 02: 89-byte header, 32-hex MAC, 4 length digits.
        assert_eq!(profile.header_len(), 89);
        assert_eq!(profile.mac_len(), 32);
        assert_eq!(profile.framing.length_digits, 4);
        // "At most 20 connections at once per instance."
        assert_eq!(profile.framing.max_connections, 20);
        assert_eq!(profile.trades.pay.code, "102");
        assert_eq!(
            profile.trades.prepay.as_ref().map(|t| t.code.as_str()),
            Some("103")
        );
        assert_eq!(profile.trades.pay.answer_timeout_ms, 20_000);
        assert_eq!(profile.trades.query.answer_timeout_ms, 10_000);
        // 102 request body: CustomerNo 10 + PayAmount 12 + PayerAccount 32.
        let pay = profile.layout("102.req").expect("layout").fixed_len();
        assert_eq!(pay, Some(54));
        assert_eq!(profile.channels.spi_code("4"), Some("02"));
        assert_eq!(profile.channels.spi_code("2"), Some("03"));
        assert_eq!(profile.channels.spi_code("5"), Some(BATCH_CHANNEL));
        assert_eq!(profile.channels.spi_code("01"), None);
    }

    #[test]
    fn day_end_window_wraps_midnight_as_spec_02_says() {
        let profile = Profile::builtin("water").expect("water");
        let day_end = profile.day_end.expect("water has a day-end window");
        let at = |h, m, s| NaiveTime::from_hms_opt(h, m, s).expect("time");
        assert!(!day_end.refuses_at(at(23, 49, 59)));
        assert!(day_end.refuses_at(at(23, 50, 0)));
        assert!(day_end.refuses_at(at(0, 0, 0)));
        assert!(day_end.refuses_at(at(0, 9, 59)));
        assert!(!day_end.refuses_at(at(0, 10, 0)));
        assert!(!day_end.refuses_at(at(12, 0, 0)));
        let bad = WATER_PROFILE_TOML.replace("refuse_from = \"235000\"", "refuse_from = \"2350\"");
        assert!(Profile::from_toml(&bad).is_err());
    }

    #[test]
    fn usage_fields_must_name_numeric_bill_fields_of_the_query_answer() {
        let profile = Profile::builtin("water").expect("water");
        let usage = profile.fields.usage.expect("spec 02 shows usage");
        assert_eq!((usage.usage.as_str(), usage.scale), ("Usage", 0));
        for (from, to) in [
            ("usage = \"Usage\"", "usage = \"Usages\""),
            // Period is numeric but WaterFee is M: not a reading.
            (
                "prev_reading = \"PrevReading\"",
                "prev_reading = \"WaterFee\"",
            ),
            ("meter_no = \"MeterNo\"", "meter_no = \"Meter\""),
            ("scale = 0", "scale = 7"),
        ] {
            let bad = WATER_PROFILE_TOML.replace(from, to);
            assert_ne!(bad, WATER_PROFILE_TOML, "{from}");
            assert!(Profile::from_toml(&bad).is_err(), "{to} accepted");
        }
    }

    #[test]
    fn unknown_builtin_and_broken_profiles_are_refused() {
        assert_eq!(
            Profile::builtin("nope").err().map(|e| e.code()),
            Some("ADP_CONFIG")
        );
        let broken = WATER_PROFILE_TOML.replace("request = \"104.req\"", "request = \"999.req\"");
        assert!(Profile::from_toml(&broken).is_err());
        let bad_header =
            WATER_PROFILE_TOML.replace("bank_serial = \"BankSerial\"", "bank_serial = \"Serial\"");
        assert!(Profile::from_toml(&bad_header).is_err());
        let twice = WATER_PROFILE_TOML.replace("code = \"105\"", "code = \"104\"");
        assert!(Profile::from_toml(&twice).is_err());
        let wide = WATER_PROFILE_TOML.replace("max_length = 9999", "max_length = 10000");
        assert!(Profile::from_toml(&wide).is_err());
    }
}
