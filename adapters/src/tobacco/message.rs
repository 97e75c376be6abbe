//! The JSON messages of spec 09, parsed strictly from the exact body bytes (amounts are JSON
//! integers in fen: `1256800.0`, `1.2568e6` and `"1256800"` are field errors) and written with a
//! fixed key order so that an outbox row can store the byte-identical body it re-sends.

use chrono::{NaiveDate, NaiveDateTime};
use codecs::Money;
use serde::Serialize;
use serde_json::{Map, Value};

pub const PATH_ORDERS: &str = "/tobacco/v1/orders";
pub const PATH_CANCEL: &str = "/tobacco/v1/orders/cancel";
pub const PATH_QUERY: &str = "/tobacco/v1/orders/query";
pub const PATH_NOTIFY: &str = "/bank/v1/payment-notify";

pub const MAX_ORDERS_PER_PUSH: usize = 100;
pub const MIN_AMOUNT_FEN: i64 = 1;
pub const MAX_AMOUNT_FEN: i64 = 9_999_999_999;

/// An order's state at the hub, as the spec numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    Unpaid,
    Paying,
    Paid,
    Cancelled,
}

impl OrderState {
    pub fn code(self) -> &'static str {
        match self {
            OrderState::Unpaid => "1",
            OrderState::Paying => "2",
            OrderState::Paid => "3",
            OrderState::Cancelled => "4",
        }
    }

    pub fn from_code(code: &str) -> Option<OrderState> {
        match code {
            "1" => Some(OrderState::Unpaid),
            "2" => Some(OrderState::Paying),
            "3" => Some(OrderState::Paid),
            "4" => Some(OrderState::Cancelled),
            _ => None,
        }
    }
}

/// Channel codes of spec 09 (they differ from the bill SPI's numbering: 04 is self-service here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayChannel {
    Counter,
    Mobile,
    Online,
    SelfService,
    Nongxinyin,
}

impl PayChannel {
    pub fn code(self) -> &'static str {
        match self {
            PayChannel::Counter => "01",
            PayChannel::Mobile => "02",
            PayChannel::Online => "03",
            PayChannel::SelfService => "04",
            PayChannel::Nongxinyin => "05",
        }
    }

    pub fn from_code(code: &str) -> Option<PayChannel> {
        match code {
            "01" => Some(PayChannel::Counter),
            "02" => Some(PayChannel::Mobile),
            "03" => Some(PayChannel::Online),
            "04" => Some(PayChannel::SelfService),
            "05" => Some(PayChannel::Nongxinyin),
            _ => None,
        }
    }
}

/// One payable order as the bureau pushed it (all keys valid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayableOrder {
    pub order_no: String,
    pub licence_no: String,
    pub retailer_name: String,
    pub amount: Money,
    pub order_date: NaiveDate,
    pub due_date: NaiveDate,
    pub item_count: u16,
    pub items_summary: String,
}

/// One entry of `orders`: valid, or a 2003 field error naming the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushedOrder {
    Valid(PayableOrder),
    Invalid {
        /// The orderNo as sent when it was a string (echoed in the result), else empty.
        order_no: String,
        field: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderPush {
    pub bureau_code: String,
    pub push_id: String,
    pub push_time: NaiveDateTime,
    pub orders: Vec<PushedOrder>,
}

/// A whole-message refusal: nothing is stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("报文格式错：{0}")]
    Malformed(String),
    #[error("订单数超限：{0}")]
    OrderCount(usize),
}

impl MessageError {
    pub fn code(&self) -> &'static str {
        match self {
            MessageError::Malformed(_) => "1007",
            MessageError::OrderCount(_) => "1006",
        }
    }
}

fn malformed(what: impl Into<String>) -> MessageError {
    MessageError::Malformed(what.into())
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, MessageError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed("not a JSON object")),
        Err(e) => Err(malformed(format!("JSON: {e}"))),
    }
}

fn required<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a Value, MessageError> {
    map.get(key)
        .ok_or_else(|| malformed(format!("missing {key}")))
}

fn required_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, MessageError> {
    required(map, key)?
        .as_str()
        .ok_or_else(|| malformed(format!("{key} is not a string")))
}

/// 1–32 `[0-9A-Za-z]`: orderNo, pushId, bankSerial.
pub fn is_serial(text: &str) -> bool {
    (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn is_licence_no(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn chars_between(text: &str, min: usize, max: usize) -> bool {
    let count = text.chars().count();
    (min..=max).contains(&count) && !text.chars().any(char::is_control)
}

/// A JSON integer (not a float, not a string) in 1..=9999999999.
pub fn amount_from_json(value: &Value) -> Option<Money> {
    // `as_i64` is None for a float (1256800.0, 1.2568e6) and for a string.
    let fen = value.as_i64()?;
    (MIN_AMOUNT_FEN..=MAX_AMOUNT_FEN)
        .contains(&fen)
        .then_some(Money::from_fen(fen))
}

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    codecs::clock::parse_yyyymmdd(text)
}

pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").ok()
}

pub fn format_time(time: NaiveDateTime) -> String {
    time.format("%Y%m%d%H%M%S").to_string()
}

const ORDER_KEYS: [&str; 8] = [
    "orderNo",
    "licenceNo",
    "retailerName",
    "amount",
    "orderDate",
    "dueDate",
    "itemCount",
    "itemsSummary",
];

fn parse_order(value: &Value) -> Result<PushedOrder, MessageError> {
    let map = value
        .as_object()
        .ok_or_else(|| malformed("an order is not an object"))?;
    for key in ORDER_KEYS {
        required(map, key)?;
    }
    let order_no_text = map
        .get("orderNo")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let invalid = |field: &'static str| PushedOrder::Invalid {
        order_no: order_no_text.clone(),
        field,
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str);
    let Some(order_no) = text("orderNo").filter(|t| is_serial(t)) else {
        return Ok(invalid("orderNo"));
    };
    let Some(licence_no) = text("licenceNo").filter(|t| is_licence_no(t)) else {
        return Ok(invalid("licenceNo"));
    };
    let Some(retailer_name) = text("retailerName").filter(|t| chars_between(t, 1, 60)) else {
        return Ok(invalid("retailerName"));
    };
    let Some(amount) = map.get("amount").and_then(amount_from_json) else {
        return Ok(invalid("amount"));
    };
    let Some(order_date) = text("orderDate").and_then(parse_date) else {
        return Ok(invalid("orderDate"));
    };
    let Some(due_date) = text("dueDate")
        .and_then(parse_date)
        .filter(|d| *d >= order_date)
    else {
        return Ok(invalid("dueDate"));
    };
    let Some(item_count) = map
        .get("itemCount")
        .filter(|v| v.is_i64() || v.is_u64())
        .and_then(Value::as_i64)
        .filter(|n| (1..=999).contains(n))
        .and_then(|n| u16::try_from(n).ok())
    else {
        return Ok(invalid("itemCount"));
    };
    let Some(items_summary) = text("itemsSummary").filter(|t| chars_between(t, 1, 200)) else {
        return Ok(invalid("itemsSummary"));
    };
    Ok(PushedOrder::Valid(PayableOrder {
        order_no: order_no.to_string(),
        licence_no: licence_no.to_string(),
        retailer_name: retailer_name.to_string(),
        amount,
        order_date,
        due_date,
        item_count,
        items_summary: items_summary.to_string(),
    }))
}

/// Parses a push. A key missing anywhere or a top-level key of the wrong form is 1007; a count
/// outside 1–100 is 1006; a present but invalid order key is that order's 2003.
pub fn parse_push(body: &[u8], bureau_code: &str) -> Result<OrderPush, MessageError> {
    let map = parse_object(body)?;
    let code = required_str(&map, "bureauCode")?;
    if code != bureau_code {
        return Err(malformed("bureauCode is not this bureau's"));
    }
    let push_id = required_str(&map, "pushId")?;
    if !is_serial(push_id) {
        return Err(malformed("pushId must be 1-32 [0-9A-Za-z]"));
    }
    let push_time = parse_time(required_str(&map, "pushTime")?)
        .ok_or_else(|| malformed("pushTime must be yyyyMMddHHmmss"))?;
    let orders = required(&map, "orders")?
        .as_array()
        .ok_or_else(|| malformed("orders is not an array"))?;
    if orders.is_empty() || orders.len() > MAX_ORDERS_PER_PUSH {
        return Err(MessageError::OrderCount(orders.len()));
    }
    let orders = orders
        .iter()
        .map(parse_order)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OrderPush {
        bureau_code: code.to_string(),
        push_id: push_id.to_string(),
        push_time,
        orders,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelRequest {
    pub bureau_code: String,
    pub order_no: String,
    pub reason: String,
}

pub fn parse_cancel(body: &[u8], bureau_code: &str) -> Result<CancelRequest, MessageError> {
    let map = parse_object(body)?;
    let code = required_str(&map, "bureauCode")?;
    if code != bureau_code {
        return Err(malformed("bureauCode is not this bureau's"));
    }
    let order_no = required_str(&map, "orderNo")?;
    let reason = required_str(&map, "reason")?;
    if reason.chars().count() > 60 {
        return Err(malformed("reason is longer than 60 characters"));
    }
    Ok(CancelRequest {
        bureau_code: code.to_string(),
        order_no: order_no.to_string(),
        reason: reason.to_string(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRequest {
    pub bureau_code: String,
    pub order_no: String,
}

pub fn parse_query(body: &[u8], bureau_code: &str) -> Result<QueryRequest, MessageError> {
    let map = parse_object(body)?;
    let code = required_str(&map, "bureauCode")?;
    if code != bureau_code {
        return Err(malformed("bureauCode is not this bureau's"));
    }
    let order_no = required_str(&map, "orderNo")?;
    Ok(QueryRequest {
        bureau_code: code.to_string(),
        order_no: order_no.to_string(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushResult {
    #[serde(rename = "orderNo")]
    pub order_no: String,
    pub code: String,
    pub msg: String,
    /// Empty for 2003.
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushAnswer {
    pub code: String,
    pub msg: String,
    pub results: Vec<PushResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CancelAnswer {
    pub code: String,
    pub msg: String,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueryAnswer {
    pub code: String,
    pub msg: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(rename = "bankSerial", skip_serializing_if = "Option::is_none")]
    pub bank_serial: Option<String>,
    #[serde(rename = "acctDate", skip_serializing_if = "Option::is_none")]
    pub acct_date: Option<String>,
    #[serde(rename = "payTime", skip_serializing_if = "Option::is_none")]
    pub pay_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The Chinese text of each answer code (one table).
pub fn code_text(code: &str) -> &'static str {
    match code {
        "0000" => "成功",
        "0001" => "已处理",
        "1001" => "验签失败",
        "1002" => "AppId未知",
        "1003" => "时间戳超限",
        "1004" => "nonce重复",
        "1005" => "pushId重复",
        "1006" => "订单数超限",
        "1007" => "报文格式错",
        "2001" => "订单号已存在且内容不同",
        "2003" => "字段错误",
        "2005" => "订单不存在、已撤销、要素不符或已由其他流水缴费",
        "3001" => "订单不存在",
        "3002" => "已缴费不能撤销",
        "3003" => "缴费处理中",
        _ => "系统错误",
    }
}

/// The payment notification; `to_body` writes the keys in the spec's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentNotification {
    pub bank_code: String,
    pub order_no: String,
    pub licence_no: String,
    pub amount: Money,
    /// Hub clock when the order reached state 3.
    pub pay_time: NaiveDateTime,
    /// The core's date of the posting.
    pub acct_date: NaiveDate,
    /// Also the notifyId: one per payment.
    pub bank_serial: String,
    pub channel: PayChannel,
}

#[derive(Serialize)]
struct NotificationBody<'a> {
    #[serde(rename = "bankCode")]
    bank_code: &'a str,
    #[serde(rename = "notifyId")]
    notify_id: &'a str,
    #[serde(rename = "orderNo")]
    order_no: &'a str,
    #[serde(rename = "licenceNo")]
    licence_no: &'a str,
    amount: i64,
    #[serde(rename = "payTime")]
    pay_time: String,
    #[serde(rename = "acctDate")]
    acct_date: String,
    #[serde(rename = "bankSerial")]
    bank_serial: &'a str,
    channel: &'a str,
}

impl PaymentNotification {
    pub fn to_body(&self) -> Vec<u8> {
        let body = NotificationBody {
            bank_code: &self.bank_code,
            notify_id: &self.bank_serial,
            order_no: &self.order_no,
            licence_no: &self.licence_no,
            amount: self.amount.fen(),
            pay_time: format_time(self.pay_time),
            acct_date: codecs::clock::yyyymmdd(self.acct_date),
            bank_serial: &self.bank_serial,
            channel: self.channel.code(),
        };
        // A struct of strings and an integer always serialises.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "{\"bureauCode\":\"430600\",\"pushId\":\"P202612020001\",\"pushTime\":\"20261202083000\",\"orders\":[{\"orderNo\":\"YC20261202000123\",\"licenceNo\":\"430602100123\",\"retailerName\":\"岳阳楼区张三便利店\",\"amount\":1256800,\"orderDate\":\"20261202\",\"dueDate\":\"20261205\",\"itemCount\":7,\"itemsSummary\":\"卷烟7个品规，共25条\"}]}";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn parses_the_worked_example() {
        let push = parse_push(EXAMPLE.as_bytes(), "430600").expect("push");
        assert_eq!(push.push_id, "P202612020001");
        assert_eq!(
            push.orders,
            vec![PushedOrder::Valid(PayableOrder {
                order_no: "YC20261202000123".into(),
                licence_no: "430602100123".into(),
                retailer_name: "岳阳楼区张三便利店".into(),
                amount: Money::from_fen(1_256_800),
                order_date: date(2026, 12, 2),
                due_date: date(2026, 12, 5),
                item_count: 7,
                items_summary: "卷烟7个品规，共25条".into(),
            })]
        );
    }

    #[test]
    fn amount_forms_other_than_a_json_integer_are_field_errors() {
        for bad in [
            "1256800.0",
            "1.2568e6",
            "\"1256800\"",
            "0",
            "-1",
            "10000000000",
        ] {
            let body = EXAMPLE.replace("\"amount\":1256800", &format!("\"amount\":{bad}"));
            let push = parse_push(body.as_bytes(), "430600").expect("push");
            assert_eq!(
                push.orders,
                vec![PushedOrder::Invalid {
                    order_no: "YC20261202000123".into(),
                    field: "amount"
                }],
                "{bad}"
            );
        }
        let max = EXAMPLE.replace("\"amount\":1256800", "\"amount\":9999999999");
        assert!(matches!(
            parse_push(max.as_bytes(), "430600").expect("push").orders.first(),
            Some(PushedOrder::Valid(o)) if o.amount.fen() == 9_999_999_999
        ));
    }

    #[test]
    fn whole_push_errors() {
        let missing = EXAMPLE.replace("\"itemCount\":7,", "");
        assert_eq!(
            parse_push(missing.as_bytes(), "430600").map_err(|e| e.code()),
            Err("1007")
        );
        assert_eq!(
            parse_push(b"[1]", "430600").map_err(|e| e.code()),
            Err("1007")
        );
        assert_eq!(
            parse_push(b"{", "430600").map_err(|e| e.code()),
            Err("1007")
        );
        let empty =
            r#"{"bureauCode":"430600","pushId":"P1","pushTime":"20261202083000","orders":[]}"#;
        assert_eq!(
            parse_push(empty.as_bytes(), "430600").map_err(|e| e.code()),
            Err("1006")
        );
        let early = EXAMPLE.replace("\"dueDate\":\"20261205\"", "\"dueDate\":\"20261201\"");
        assert!(matches!(
            parse_push(early.as_bytes(), "430600")
                .expect("push")
                .orders
                .first(),
            Some(PushedOrder::Invalid {
                field: "dueDate",
                ..
            })
        ));
    }

    #[test]
    fn notification_body_has_the_spec_keys_in_order() {
        let n = PaymentNotification {
            bank_code: "YYNS0001".into(),
            order_no: "YC20261202000123".into(),
            licence_no: "430602100123".into(),
            amount: Money::from_fen(1_256_800),
            pay_time: date(2026, 12, 2).and_hms_opt(9, 15, 3).expect("time"),
            acct_date: date(2026, 12, 2),
            bank_serial: "20261202H100000001".into(),
            channel: PayChannel::Mobile,
        };
        assert_eq!(
            String::from_utf8(n.to_body()).expect("utf8"),
            "{\"bankCode\":\"YYNS0001\",\"notifyId\":\"20261202H100000001\",\"orderNo\":\"YC20261202000123\",\"licenceNo\":\"430602100123\",\"amount\":1256800,\"payTime\":\"20261202091503\",\"acctDate\":\"20261202\",\"bankSerial\":\"20261202H100000001\",\"channel\":\"02\"}"
        );
    }
}
