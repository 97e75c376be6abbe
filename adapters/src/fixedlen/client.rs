//! One short TCP connection per request (connect, write one frame, read one frame, close), and
//! the mapping of every answer and failure to the SPI's outcomes through the profile's code table.
//!
//! The line drawn here is the chendian adapter's: a failure before the request can have left the
//! hub (input refused, connect failed) means nothing was written off; a failure after the first
//! byte may have been written means nobody knows. Nothing is ever re-sent here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::NaiveDate;
use codecs::clock::parse_yyyymmdd;
use codecs::layout::Record;
use codecs::Money;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::messages::{Response, ResponseError};
use super::profile::{Codes, Profile};
use crate::spi::{
    AdapterError, Bill, BillItem, MeterUsage, PartnerReply, PayOutcome, QueryOutcome,
    ReversalOutcome, StatusOutcome,
};

/// The reply code of a payment refused because the partner could not be reached at all.
pub const CONNECT_CODE: &str = "CONNECT";

/// Why one exchange did not produce a checked answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Refused before any I/O.
    #[error("{0}")]
    NotSent(AdapterError),
    /// No connection: nothing can have reached the partner.
    #[error("连接{address}失败：{reason}")]
    Connect { address: String, reason: String },
    /// From here on the request may have been written.
    #[error("等待应答超过{timeout_ms}毫秒")]
    Timeout { timeout_ms: u64 },
    #[error("通讯中断：{0}")]
    Transport(String),
    #[error("{0}")]
    Garbled(ResponseError),
}

impl ExchangeError {
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::NotSent(error) => error.code(),
            ExchangeError::Connect { .. } => CONNECT_CODE,
            ExchangeError::Timeout { .. } => "ADP_TIMEOUT",
            ExchangeError::Transport(_) => "ADP_TRANSPORT",
            ExchangeError::Garbled(error) => error.code(),
        }
    }

    fn into_adapter_error(self) -> AdapterError {
        match self {
            ExchangeError::NotSent(error) => error,
            error @ ExchangeError::Connect { .. } => AdapterError::Connect(error.to_string()),
            error @ ExchangeError::Timeout { .. } => AdapterError::Timeout(error.to_string()),
            ExchangeError::Transport(reason) => AdapterError::Transport(reason),
            ExchangeError::Garbled(error) => AdapterError::Garbled(error.to_string()),
        }
    }
}

/// Where and how patiently to talk to one instance.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub connect_timeout_ms: u64,
    /// One permit per connection the instance allows at once ([`connection_permits`]).
    pub permits: Arc<Semaphore>,
}

/// The connection permits of one instance, shared by every adapter built for it in this process.
/// The engine's adapter (payments, 104/105 of the resolver) and the agreement desk's (201/202)
/// are separate values, and a reload builds new ones while old exchanges finish: a semaphore per
/// adapter would let them add up past the partner's limit (specs 02/11: at most 20 at once per
/// instance). Keyed by instance, address and limit.
pub fn connection_permits(instance: &str, host: &str, port: u16, limit: usize) -> Arc<Semaphore> {
    static PERMITS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    let key = format!("{instance}@{host}:{port}/{limit}");
    let registry = PERMITS.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked while inserting: the map is intact.
    let mut map = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(key)
        .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
        .clone()
}

/// Sends one frame on a fresh connection and reads one answer frame (length header included).
/// A late answer is never read: the socket is dropped when the timeout fires.
pub async fn round_trip(
    endpoint: &Endpoint,
    profile: &Profile,
    frame: &[u8],
    answer_timeout_ms: u64,
) -> Result<Vec<u8>, ExchangeError> {
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    // Held until the connection is dropped at the end of this function. Waiting for it sends
    // nothing, so a wait longer than the answer timeout is a failure to connect: the request
    // never left, and a payment is refused (and its debit given back), not left in doubt.
    let wait = Duration::from_millis(answer_timeout_ms);
    let _permit = match tokio::time::timeout(wait, endpoint.permits.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => {
            return Err(ExchangeError::Connect {
                address,
                reason: format!("{answer_timeout_ms}毫秒内无空闲连接（同时连接数已达上限）"),
            })
        }
    };
    let connect = TcpStream::connect((endpoint.host.as_str(), endpoint.port));
    let mut stream =
        match tokio::time::timeout(Duration::from_millis(endpoint.connect_timeout_ms), connect)
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(ExchangeError::Connect {
                    address,
                    reason: error.to_string(),
                })
            }
            Err(_) => {
                return Err(ExchangeError::Connect {
                    address,
                    reason: format!("超过{}毫秒", endpoint.connect_timeout_ms),
                })
            }
        };
    let framing = &profile.framing;
    let mac_len = profile.mac_len();
    let answer = async {
        stream
            .write_all(frame)
            .await
            .map_err(|e| ExchangeError::Transport(format!("写请求失败：{e}")))?;
        let mut answer = vec![0u8; framing.length_digits];
        stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| ExchangeError::Transport(format!("读应答长度失败：{e}")))?;
        let length = std::str::from_utf8(&answer)
            .ok()
            .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<usize>().ok())
            .ok_or_else(|| {
                ExchangeError::Garbled(ResponseError::Length("长度头不是数字".into()))
            })?;
        if length > framing.max_length {
            return Err(ExchangeError::Garbled(ResponseError::Length(format!(
                "长度{length}超过上限{}",
                framing.max_length
            ))));
        }
        let rest = if framing.length_covers_mac {
            length
        } else {
            length + mac_len
        };
        let start = answer.len();
        answer.resize(start + rest, 0);
        let tail = answer.get_mut(start..).unwrap_or_default();
        stream
            .read_exact(tail)
            .await
            .map_err(|e| ExchangeError::Transport(format!("读应答失败：{e}")))?;
        Ok(answer)
    };
    match tokio::time::timeout(Duration::from_millis(answer_timeout_ms), answer).await {
        Ok(result) => result,
        Err(_) => Err(ExchangeError::Timeout {
            timeout_ms: answer_timeout_ms,
        }),
    }
}

fn reply(profile: &Profile, response: &Response) -> PartnerReply {
    let message = if response.rsp_msg.is_empty() {
        profile
            .code_message(&response.rsp_code)
            .unwrap_or_default()
            .to_string()
    } else {
        response.rsp_msg.clone()
    };
    PartnerReply {
        code: response.rsp_code.clone(),
        message,
    }
}

fn garbled(reason: impl Into<String>) -> AdapterError {
    AdapterError::Garbled(reason.into())
}

fn money(record: &Record, field: &str) -> Result<Money, AdapterError> {
    record
        .get_money(field)
        .map_err(|e| garbled(format!("{field}：{}", e.redacted())))
}

fn date(record: &Record, field: &str) -> Result<NaiveDate, AdapterError> {
    record
        .get(field)
        .and_then(parse_yyyymmdd)
        .ok_or_else(|| garbled(format!("{field}不是有效日期")))
}

fn text(record: &Record, field: &str) -> String {
    record.get(field).unwrap_or_default().to_string()
}

/// An N field of `scale` implied decimal places as decimal text (`0000004050`, 2 → `40.50`).
fn scaled(record: &Record, field: &str, scale: u32) -> Result<String, AdapterError> {
    let digits = record.get(field).unwrap_or_default();
    let value: u64 = digits
        .parse()
        .map_err(|_| garbled(format!("{field}不是数字")))?;
    if scale == 0 {
        return Ok(value.to_string());
    }
    let unit = 10u64.pow(scale);
    Ok(format!(
        "{}.{:0width$}",
        value / unit,
        value % unit,
        width = scale as usize
    ))
}

/// Query: a query moves no money, so every failure is an error; an answer for another customer
/// is garbled.
pub fn query_outcome(
    profile: &Profile,
    result: Result<Response, ExchangeError>,
    customer_no: &str,
) -> Result<QueryOutcome, AdapterError> {
    let response = result.map_err(ExchangeError::into_adapter_error)?;
    if !Codes::is(&profile.codes.success, &response.rsp_code) {
        return Ok(QueryOutcome::Refused(reply(profile, &response)));
    }
    let body = response
        .body
        .as_ref()
        .ok_or_else(|| garbled("查询成功应答无报文体"))?;
    let f = &profile.fields;
    if body.get(&f.customer_no) != Some(customer_no) {
        return Err(garbled("应答户号与查询户号不符"));
    }
    let mut items = Vec::new();
    for bill in body.group(&f.bills) {
        let usage = match &f.usage {
            Some(u) => Some(MeterUsage {
                prev_reading: scaled(bill, &u.prev_reading, u.scale)?,
                curr_reading: scaled(bill, &u.curr_reading, u.scale)?,
                usage: scaled(bill, &u.usage, u.scale)?,
                unit: u.unit.clone(),
            }),
            None => None,
        };
        items.push(BillItem {
            period: text(bill, &f.bill_period),
            amount: money(bill, &f.bill_amount)?,
            penalty: money(bill, &f.bill_penalty)?,
            usage,
        });
    }
    let total_due = money(body, &f.total_due)?;
    // The total is what the customer pays: it must be the bills' sum, or a bill was lost.
    let sum = items.iter().try_fold(Money::ZERO, |sum, item| {
        sum.checked_add(item.amount)?.checked_add(item.penalty)
    });
    if sum != Some(total_due) {
        return Err(garbled("应缴总额与账单合计不符"));
    }
    Ok(QueryOutcome::Bill(Bill {
        customer_no: text(body, &f.customer_no),
        customer_name: text(body, &f.customer_name),
        address: text(body, &f.address),
        total_due,
        prepaid: money(body, &f.balance)?,
        items,
        nothing_due: total_due == Money::ZERO,
        meter_no: f.usage.as_ref().map(|u| text(body, &u.meter_no)),
    }))
}

/// Pay or prepay: only a failure before any byte can have left and an answer outside the
/// success and unknown lists are `Refused`; everything else in doubt is `Unknown`.
pub fn pay_outcome(profile: &Profile, result: Result<Response, ExchangeError>) -> PayOutcome {
    let response = match result {
        Ok(response) => response,
        Err(ExchangeError::NotSent(error)) => return PayOutcome::Refused(error.to_reply()),
        Err(error @ ExchangeError::Connect { .. }) => {
            return PayOutcome::Refused(PartnerReply {
                code: CONNECT_CODE.to_string(),
                message: error.to_string(),
            })
        }
        Err(error) => {
            return PayOutcome::Unknown {
                reason: format!("{}：{error}", error.code()),
            }
        }
    };
    let codes = &profile.codes;
    if Codes::is(&codes.unknown, &response.rsp_code) {
        return PayOutcome::Unknown {
            reason: format!("合作方应答{}（结果未知）", response.rsp_code),
        };
    }
    if !Codes::is(&codes.success, &response.rsp_code) {
        return PayOutcome::Refused(reply(profile, &response));
    }
    let f = &profile.fields;
    let paid = response
        .body
        .as_ref()
        .ok_or_else(|| garbled("缴费成功应答无报文体"))
        .and_then(|body| {
            Ok(PayOutcome::Paid {
                partner_serial: text(body, &f.partner_serial),
                acct_date: date(body, &f.acct_date)?,
                prepaid: money(body, &f.balance)?,
            })
        });
    paid.unwrap_or_else(|error| PayOutcome::Unknown {
        reason: format!("{}：{error}", error.code()),
    })
}

/// Reversal: a connect failure is `Unknown` too, since the engine simply re-sends a reversal.
pub fn reversal_outcome(
    profile: &Profile,
    result: Result<Response, ExchangeError>,
) -> ReversalOutcome {
    let response = match result {
        Ok(response) => response,
        Err(ExchangeError::NotSent(error)) => return ReversalOutcome::Refused(error.to_reply()),
        Err(error) => {
            return ReversalOutcome::Unknown {
                reason: format!("{}：{error}", error.code()),
            }
        }
    };
    let codes = &profile.codes;
    let code = response.rsp_code.as_str();
    if Codes::is(&codes.success, code) {
        ReversalOutcome::Reversed
    } else if Codes::is(&codes.reversal_not_found, code) {
        ReversalOutcome::OriginalNotFound
    } else if Codes::is(&codes.reversal_already, code) {
        ReversalOutcome::AlreadyReversed
    } else if Codes::is(&codes.reversal_too_late, code) {
        ReversalOutcome::TooLate
    } else if Codes::is(&codes.reversal_mismatch, code) {
        ReversalOutcome::Mismatch
    } else if Codes::is(&codes.reversal_retry, code) {
        ReversalOutcome::Unknown {
            reason: format!("合作方应答{code}，须重发冲正"),
        }
    } else {
        ReversalOutcome::Refused(reply(profile, &response))
    }
}

/// Status query: only a success answer with a known Status value is an answer.
pub fn status_outcome(profile: &Profile, result: Result<Response, ExchangeError>) -> StatusOutcome {
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            return StatusOutcome::Unknown {
                reason: format!("{}：{error}", error.code()),
            }
        }
    };
    let body = match (
        &response.body,
        Codes::is(&profile.codes.success, &response.rsp_code),
    ) {
        (Some(body), true) => body,
        _ => {
            return StatusOutcome::Unknown {
                reason: format!("查证应答{} {}", response.rsp_code, response.rsp_msg),
            }
        }
    };
    let f = &profile.fields;
    let values = &profile.status_values;
    let status = body.get(&f.status).unwrap_or_default();
    if status == values.written_off {
        let written_off = (|| {
            Ok::<_, AdapterError>(StatusOutcome::WrittenOff {
                partner_serial: text(body, &f.partner_serial),
                acct_date: date(body, &f.acct_date)?,
                amount: money(body, &f.amount)?,
            })
        })();
        written_off.unwrap_or_else(|error| StatusOutcome::Unknown {
            reason: format!("{}：{error}", error.code()),
        })
    } else if status == values.reversed {
        StatusOutcome::Reversed
    } else if status == values.not_found {
        StatusOutcome::NotFound
    } else {
        StatusOutcome::Unknown {
            reason: format!("查证状态{status:?}未定义"),
        }
    }
}
