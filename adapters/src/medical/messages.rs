//! The business payloads of 1001–9001: request members in the spec's order, and typed readers of
//! the answer payloads (every value a string; unknown members ignored).

use chrono::{NaiveDate, NaiveDateTime};
use codecs::Money;
use serde::Serialize;
use serde_json::{Map, Value};

/// An answer payload that lacks a member or has one of the wrong form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("医保应答业务数据错误：{member} {reason}")]
pub struct PayloadError {
    pub member: String,
    pub reason: String,
}

fn bad(member: &str, reason: &str) -> PayloadError {
    PayloadError {
        member: member.to_string(),
        reason: reason.to_string(),
    }
}

#[derive(Serialize)]
pub struct InsuredQuery {
    #[serde(rename = "idType")]
    pub id_type: String,
    #[serde(rename = "idNo")]
    pub id_no: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct PayRequest {
    #[serde(rename = "idNo")]
    pub id_no: String,
    pub name: String,
    pub year: String,
    pub amount: String,
    #[serde(rename = "payerName")]
    pub payer_name: String,
    #[serde(rename = "payerAcct")]
    pub payer_acct: String,
    pub channel: String,
}

#[derive(Serialize)]
pub struct CancelRequest {
    #[serde(rename = "origReqSerial")]
    pub orig_req_serial: String,
    #[serde(rename = "origReqDate")]
    pub orig_req_date: String,
    #[serde(rename = "idNo")]
    pub id_no: String,
    pub amount: String,
}

#[derive(Serialize)]
pub struct StatusRequest {
    #[serde(rename = "origReqSerial")]
    pub orig_req_serial: String,
    #[serde(rename = "origReqDate")]
    pub orig_req_date: String,
}

#[derive(Serialize)]
pub struct HistoryRequest {
    #[serde(rename = "idNo")]
    pub id_no: String,
    #[serde(rename = "startDate")]
    pub start_date: String,
    #[serde(rename = "endDate")]
    pub end_date: String,
}

#[derive(Serialize)]
pub struct DailyFileRequest {
    #[serde(rename = "acctDate")]
    pub acct_date: String,
}

/// Where a contribution is paid, as 2001 and 3001 number it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayChannel {
    /// 01 柜台
    Counter,
    /// 02 微信 (the insurer's own WeChat account; appears in 3001 only)
    WeChat,
    /// 03 自助设备
    SelfService,
    /// 04 手机银行
    Mobile,
    /// 05 网上银行
    Online,
}

impl PayChannel {
    pub fn code(self) -> &'static str {
        match self {
            PayChannel::Counter => "01",
            PayChannel::WeChat => "02",
            PayChannel::SelfService => "03",
            PayChannel::Mobile => "04",
            PayChannel::Online => "05",
        }
    }

    pub fn from_code(code: &str) -> Option<PayChannel> {
        match code {
            "01" => Some(PayChannel::Counter),
            "02" => Some(PayChannel::WeChat),
            "03" => Some(PayChannel::SelfService),
            "04" => Some(PayChannel::Mobile),
            "05" => Some(PayChannel::Online),
            _ => None,
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            PayChannel::Counter => "柜台",
            PayChannel::WeChat => "微信",
            PayChannel::SelfService => "自助设备",
            PayChannel::Mobile => "手机银行",
            PayChannel::Online => "网上银行",
        }
    }
}

/// `^(0|[1-9][0-9]{0,9})\.[0-9]{2}$`, read into fen.
pub fn parse_amount(text: &str) -> Option<Money> {
    let (int_part, dec_part) = text.split_once('.')?;
    let int_ok = int_part == "0"
        || (!int_part.is_empty()
            && int_part.len() <= 10
            && !int_part.starts_with('0')
            && int_part.bytes().all(|b| b.is_ascii_digit()));
    if !int_ok || dec_part.len() != 2 || !dec_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Money::parse_yuan(text).ok()
}

/// The spec's amount form, or `None` for a negative or too large amount.
pub fn format_amount(amount: Money) -> Option<String> {
    let text = amount.to_yuan();
    parse_amount(&text).map(|_| text)
}

pub(crate) fn text<'a>(map: &'a Map<String, Value>, member: &str) -> Result<&'a str, PayloadError> {
    match map.get(member) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(bad(member, "不是字符串")),
        None => Err(bad(member, "缺少")),
    }
}

pub(crate) fn amount(map: &Map<String, Value>, member: &str) -> Result<Money, PayloadError> {
    parse_amount(text(map, member)?).ok_or_else(|| bad(member, "金额格式错误"))
}

pub(crate) fn date(map: &Map<String, Value>, member: &str) -> Result<NaiveDate, PayloadError> {
    codecs::clock::parse_yyyymmdd(text(map, member)?).ok_or_else(|| bad(member, "日期格式错误"))
}

pub(crate) fn time(map: &Map<String, Value>, member: &str) -> Result<NaiveDateTime, PayloadError> {
    parse_time(text(map, member)?).ok_or_else(|| bad(member, "时间格式错误"))
}

/// `yyyyMMddHHmmss`.
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").ok()
}

pub fn format_time(time: NaiveDateTime) -> String {
    time.format("%Y%m%d%H%M%S").to_string()
}

/// One year the insured owes (or has paid), with its collection window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payable {
    pub year: String,
    pub amount: Money,
    pub paid: bool,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

/// The 1001 answer. Personal data: show masked on mobile/online, never log unmasked.
#[derive(Clone, PartialEq, Eq)]
pub struct InsuredPerson {
    pub name: String,
    /// `1` 男, `2` 女.
    pub gender: String,
    pub id_no: String,
    /// `390` is 城乡居民基本医疗保险; any other code is shown verbatim.
    pub ins_type: String,
    pub ins_type_name: String,
    pub ins_no: String,
    pub phone: String,
    pub id_address: String,
    pub home_address: String,
    pub payables: Vec<Payable>,
}

impl std::fmt::Debug for InsuredPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::id_number::{mask_id_number, mask_name};
        f.debug_struct("InsuredPerson")
            .field("name", &mask_name(&self.name))
            .field("id_no", &mask_id_number(&self.id_no))
            .field("ins_type", &self.ins_type)
            .field("payables", &self.payables)
            .finish_non_exhaustive()
    }
}

impl InsuredPerson {
    pub fn from_payload(map: &Map<String, Value>) -> Result<InsuredPerson, PayloadError> {
        let payables = match map.get("payables") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let Value::Object(item) = item else {
                        return Err(bad("payables", "元素不是对象"));
                    };
                    let paid = match text(item, "paid")? {
                        "0" => false,
                        "1" => true,
                        _ => return Err(bad("paid", "须为0或1")),
                    };
                    Ok(Payable {
                        year: year(item, "year")?,
                        amount: amount(item, "amount")?,
                        paid,
                        start_date: date(item, "startDate")?,
                        end_date: date(item, "endDate")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(bad("payables", "不是数组")),
            None => return Err(bad("payables", "缺少")),
        };
        let ins_no = text(map, "insNo")?;
        if ins_no.is_empty()
            || ins_no.len() > 20
            || !ins_no
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(bad("insNo", "须为1-20位数字或大写字母"));
        }
        Ok(InsuredPerson {
            name: text(map, "name")?.to_string(),
            gender: text(map, "gender")?.to_string(),
            id_no: text(map, "idNo")?.to_string(),
            ins_type: text(map, "insType")?.to_string(),
            ins_type_name: text(map, "insTypeName")?.to_string(),
            ins_no: ins_no.to_string(),
            phone: text(map, "phone")?.to_string(),
            id_address: text(map, "idAddress")?.to_string(),
            home_address: text(map, "homeAddress")?.to_string(),
            payables,
        })
    }

    pub fn payable(&self, year: &str) -> Option<&Payable> {
        self.payables.iter().find(|p| p.year == year)
    }
}

pub(crate) fn year(map: &Map<String, Value>, member: &str) -> Result<String, PayloadError> {
    let value = text(map, member)?;
    if value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err(bad(member, "年度须为4位数字"))
    }
}

/// The 2001 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReceipt {
    pub pay_no: String,
    pub id_no: String,
    pub year: String,
    pub amount: Money,
    pub pay_time: NaiveDateTime,
    /// The insurer's business date of the payment: the hub reconciles on it.
    pub acct_date: NaiveDate,
}

impl PaymentReceipt {
    pub fn from_payload(map: &Map<String, Value>) -> Result<PaymentReceipt, PayloadError> {
        Ok(PaymentReceipt {
            pay_no: non_empty(map, "payNo")?,
            id_no: text(map, "idNo")?.to_string(),
            year: year(map, "year")?,
            amount: amount(map, "amount")?,
            pay_time: time(map, "payTime")?,
            acct_date: date(map, "acctDate")?,
        })
    }
}

pub(crate) fn non_empty(map: &Map<String, Value>, member: &str) -> Result<String, PayloadError> {
    let value = text(map, member)?;
    if value.is_empty() {
        Err(bad(member, "为空"))
    } else {
        Ok(value.to_string())
    }
}

/// One 3001 record. Personal data: mask before showing on mobile/online and in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    pub name: String,
    pub id_no: String,
    pub year: String,
    /// The payment's acctDate.
    pub pay_date: NaiveDate,
    pub amount: Money,
    pub phone: String,
    pub ins_type: String,
    pub ins_no: String,
    pub channel: PayChannel,
}

impl std::fmt::Debug for HistoryRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryRecord")
            .field("id_no", &super::id_number::mask_id_number(&self.id_no))
            .field("year", &self.year)
            .field("pay_date", &self.pay_date)
            .field("amount", &self.amount)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// Older records were left out (at most 100 come back).
    pub more: bool,
    /// Newest first.
    pub records: Vec<HistoryRecord>,
}

impl History {
    pub fn from_payload(map: &Map<String, Value>) -> Result<History, PayloadError> {
        let more = match text(map, "more")? {
            "0" => false,
            "1" => true,
            _ => return Err(bad("more", "须为0或1")),
        };
        let records = match map.get("records") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let Value::Object(item) = item else {
                        return Err(bad("records", "元素不是对象"));
                    };
                    Ok(HistoryRecord {
                        name: text(item, "name")?.to_string(),
                        id_no: text(item, "idNo")?.to_string(),
                        year: year(item, "year")?,
                        pay_date: date(item, "payDate")?,
                        amount: amount(item, "amount")?,
                        phone: text(item, "phone")?.to_string(),
                        ins_type: text(item, "insType")?.to_string(),
                        ins_no: text(item, "insNo")?.to_string(),
                        channel: PayChannel::from_code(text(item, "channel")?)
                            .ok_or_else(|| bad("channel", "未知渠道"))?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(bad("records", "不是数组")),
            None => return Err(bad("records", "缺少")),
        };
        Ok(History { more, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_follow_the_spec_pattern() {
        assert_eq!(parse_amount("400.00"), Some(Money::from_fen(40_000)));
        assert_eq!(parse_amount("0.05"), Some(Money::from_fen(5)));
        assert_eq!(
            parse_amount("9999999999.99"),
            Some(Money::from_fen(999_999_999_999))
        );
        for bad in [
            "400",
            "400.0",
            "400.000",
            "0400.00",
            "-1.00",
            "+1.00",
            "1,000.00",
            "10000000000.00",
            " 1.00",
            ".50",
            "00.00",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        assert_eq!(
            format_amount(Money::from_fen(40_000)).as_deref(),
            Some("400.00")
        );
        assert_eq!(format_amount(Money::from_fen(-1)), None);
    }

    #[test]
    fn insured_person_reads_a_hand_built_payload() {
        let payload: Value = serde_json::from_str(
            r#"{"name":"张三","gender":"1","idNo":"431227199003150016","insType":"390",
            "insTypeName":"城乡居民基本医疗保险","insNo":"HH0001","phone":"13812345678",
            "idAddress":"湖南省怀化市新晃县","homeAddress":"新晃县城关镇","extra":"ignored",
            "payables":[{"year":"2027","amount":"400.00","paid":"0","startDate":"20260901","endDate":"20261231"}]}"#,
        )
        .expect("json");
        let Value::Object(map) = payload else {
            panic!("object")
        };
        let person = InsuredPerson::from_payload(&map).expect("person");
        assert_eq!(
            person.payable("2027"),
            Some(&Payable {
                year: "2027".into(),
                amount: Money::from_fen(40_000),
                paid: false,
                start_date: NaiveDate::from_ymd_opt(2026, 9, 1).expect("d"),
                end_date: NaiveDate::from_ymd_opt(2026, 12, 31).expect("d"),
            })
        );
        assert!(!format!("{person:?}").contains("张三"));
        let mut broken = map.clone();
        broken.insert("insNo".into(), Value::String("hh0001".into()));
        assert!(InsuredPerson::from_payload(&broken).is_err());
    }

    #[test]
    fn history_reads_channels() {
        let payload: Value = serde_json::from_str(
            r#"{"more":"1","records":[{"name":"张三","idNo":"431227199003150016","year":"2026",
            "payDate":"20251120","amount":"380.00","phone":"","insType":"390","insNo":"HH0001","channel":"02"}]}"#,
        )
        .expect("json");
        let Value::Object(map) = payload else {
            panic!("object")
        };
        let history = History::from_payload(&map).expect("history");
        assert!(history.more);
        assert_eq!(
            history.records.first().map(|r| r.channel),
            Some(PayChannel::WeChat)
        );
        assert_eq!(PayChannel::WeChat.name_zh(), "微信");
    }
}
