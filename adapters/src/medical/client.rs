//! The HTTPS client of one insurer instance: builds the envelope, sends once (never re-sends),
//! and maps every answer or failure onto the outcome types. A money-moving call (2001 pay, 2002
//! 撤销 cancellation) that may have reached the insurer and got no valid answer is `Unknown`; an
//! `Err` always means nothing left the hub (or, for queries, no usable answer came back).

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use codecs::clock::SharedClock;
use codecs::Money;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::envelope::{self, EnvelopeError, EnvelopeKeys, OpenedResponse, RequestHeader};
use super::id_number::{mask_id_number, IdNumber, IdNumberError};
use super::messages::{
    self, CancelRequest, DailyFileRequest, History, HistoryRequest, InsuredPerson, InsuredQuery,
    PayChannel, PayRequest, PayloadError, PaymentReceipt, StatusRequest,
};

pub const PAYEE: &str = "CXJM";

/// `[[medical]]`: one insurer instance (one per bank).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MedicalConfig {
    /// `medins-xinhuang`.
    pub instance: String,
    /// `https://<host>:<port>/cxjm/bank/api`.
    pub url: String,
    /// 机构编码, `HHXH0001`.
    pub bank_code: String,
    /// SM4 data key, 32 hex digits.
    pub data_key_hex: String,
    /// The bank's SM2 private key, 64 hex digits.
    pub bank_private_key_hex: String,
    /// The insurer's SM2 public key, `04‖x‖y` in hex.
    pub insurer_public_key_hex: String,
    /// Whole exchange of 2001 and 2002 (spec: 30 s).
    #[serde(default = "default_money_timeout_ms")]
    pub money_timeout_ms: u64,
    /// Whole exchange of 1001, 2003, 3001, 9001 (spec: 15 s).
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// Tests only: allow an `http://` URL. Production URLs must be HTTPS.
    #[serde(default)]
    pub allow_plain_http: bool,
}

fn default_money_timeout_ms() -> u64 {
    30_000
}

fn default_query_timeout_ms() -> u64 {
    15_000
}

impl std::fmt::Debug for MedicalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedicalConfig")
            .field("instance", &self.instance)
            .field("url", &self.url)
            .field("bank_code", &self.bank_code)
            .field("keys", &"<redacted>")
            .field("money_timeout_ms", &self.money_timeout_ms)
            .field("query_timeout_ms", &self.query_timeout_ms)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish()
    }
}

/// Failures that are not an answer of the insurer.
#[derive(Debug, thiserror::Error)]
pub enum MedicalError {
    #[error("医保适配器配置错误：{0}")]
    Config(String),
    #[error(transparent)]
    IdNumber(#[from] IdNumberError),
    #[error("请求要素不合规：{field} {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("无法连接医保系统：{0}")]
    Connect(String),
    #[error("医保系统应答超时")]
    Timeout,
    #[error("与医保系统通讯中断：{0}")]
    Transport(String),
    #[error("医保系统应答HTTP状态{0}")]
    HttpStatus(u16),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("对账文件错误：{0}")]
    DailyFile(String),
}

impl MedicalError {
    pub fn code(&self) -> &'static str {
        match self {
            MedicalError::Config(_) => "MED_CONFIG",
            MedicalError::IdNumber(e) => e.code(),
            MedicalError::InvalidInput { .. } => "MED_INPUT",
            MedicalError::Envelope(e) => e.code(),
            MedicalError::Connect(_) => "CONNECT",
            MedicalError::Timeout => "MED_TIMEOUT",
            MedicalError::Transport(_) => "MED_TRANSPORT",
            MedicalError::HttpStatus(_) => "MED_HTTP_STATUS",
            MedicalError::Payload(_) => "MED_PAYLOAD",
            MedicalError::DailyFile(_) => "MED_FILE",
        }
    }
}

/// The insurer's definite answer other than success, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsurerReply {
    pub ret_code: String,
    pub ret_msg: String,
}

/// The engine's key of one request, journaled BEFORE the call; `req_time` goes on the wire and
/// is what the 330 s rule of 2003 counts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestKey {
    /// 1–32 of `[0-9A-Za-z]`, unique per bankCode and reqDate.
    pub req_serial: String,
    pub req_time: NaiveDateTime,
}

impl RequestKey {
    pub fn req_date(&self) -> NaiveDate {
        self.req_time.date()
    }
}

/// A payment of one year's contribution. `name` is the insured's full name as the payer typed
/// it; `amount` comes from the insurer's 1001 answer at pay time, never from the channel.
#[derive(Clone)]
pub struct ContributionOrder {
    pub id_no: String,
    pub name: String,
    pub year: String,
    pub amount: Money,
    pub payer_name: String,
    pub payer_acct: String,
    pub channel: PayChannel,
}

/// Which payment a 2002 撤销 or a 2003 status query is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalPayment {
    pub req_serial: String,
    /// The original's reqDate (first 8 digits of its reqTime).
    pub req_date: NaiveDate,
}

#[derive(Clone, Debug)]
pub enum QueryOutcome {
    Insured(InsuredPerson),
    Refused(InsurerReply),
}

#[derive(Clone, Debug)]
pub enum PayOutcome {
    Paid(PaymentReceipt),
    /// The insurer did nothing (every code but 0000 and 9999): reverse the core debit (8003).
    Refused(InsurerReply),
    /// Timeout, 9999, non-200, bad signature, garbled answer: ask 2003, never re-send.
    Unknown {
        reason: String,
    },
}

/// The answer to a 2002 撤销 (cancellation). `Cancelled` and `AlreadyCancelled` both mean:
/// reverse the core debit (8003), state CANCELLED.
#[derive(Clone, Debug)]
pub enum CancelOutcome {
    Cancelled {
        cancel_time: NaiveDateTime,
    },
    /// 2002: already cancelled, a success for the bank.
    AlreadyCancelled,
    /// 2001
    OriginalNotFound,
    /// 2004
    Mismatch,
    /// 2003: past 22:00 or the original's acctDate is not the insurer's current date.
    TooLate,
    Refused(InsurerReply),
    /// No valid answer: the engine sends a NEW 2002 (new reqSerial) until answered.
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    /// `0`: ask again.
    InProcess,
    /// `1`: SUCCEEDED, keep the acctDate.
    Paid {
        pay_no: String,
        amount: Money,
        acct_date: NaiveDate,
    },
    /// `2`: core reversal.
    Cancelled {
        pay_no: String,
        amount: Money,
        acct_date: NaiveDate,
    },
    /// `3`: final only per [`not_found_is_final`].
    NotFound,
    Refused(InsurerReply),
    Unknown {
        reason: String,
    },
}

/// A 2003 `3` is final only when that 2003 was sent 330 s or more after the original reqTime.
pub fn not_found_is_final(
    original_req_time: NaiveDateTime,
    status_req_time: NaiveDateTime,
) -> bool {
    status_req_time - original_req_time >= chrono::Duration::seconds(330)
}

#[derive(Clone, Debug)]
pub enum HistoryOutcome {
    History(History),
    Refused(InsurerReply),
}

#[derive(Clone, Debug)]
pub enum DailyFileOutcome {
    /// The file, its SM3 checked.
    File {
        file_name: String,
        content: Vec<u8>,
    },
    /// 3002: not generated yet; try again later.
    NotReady,
    Refused(InsurerReply),
}

/// One insurer instance.
pub struct MedicalClient {
    config: MedicalConfig,
    keys: EnvelopeKeys,
    http: reqwest::Client,
    clock: SharedClock,
}

impl std::fmt::Debug for MedicalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedicalClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Raw answer or the reason there is none.
enum Exchange {
    Answer(OpenedResponse),
    /// The request was never sent.
    NotSent(MedicalError),
    /// It may have been received: no valid answer.
    NoAnswer(MedicalError),
}

impl MedicalClient {
    /// `http` comes from `hub::tls::https_client` (its connect timeout is the spec's 5 s).
    pub fn new(
        config: MedicalConfig,
        http: reqwest::Client,
        clock: SharedClock,
    ) -> Result<MedicalClient, MedicalError> {
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| MedicalError::Config(format!("url: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if config.allow_plain_http => {}
            other => return Err(MedicalError::Config(format!("url须为https（实为{other}）"))),
        }
        if config.bank_code.is_empty() {
            return Err(MedicalError::Config("bank_code为空".into()));
        }
        let keys = EnvelopeKeys::from_hex(
            &config.data_key_hex,
            &config.bank_private_key_hex,
            &config.insurer_public_key_hex,
        )?;
        Ok(MedicalClient {
            config,
            keys,
            http,
            clock,
        })
    }

    pub fn config(&self) -> &MedicalConfig {
        &self.config
    }

    /// A key stamped with the clock's current time; the engine journals it before the call.
    pub fn request_key(&self, req_serial: &str) -> RequestKey {
        RequestKey {
            req_serial: req_serial.to_string(),
            req_time: self.clock.now(),
        }
    }

    fn today(&self) -> NaiveDate {
        self.clock.today()
    }

    /// 1001. The ID number is checked before any call.
    pub async fn query_insured(
        &self,
        key: &RequestKey,
        id_no: &str,
    ) -> Result<QueryOutcome, MedicalError> {
        let id = IdNumber::parse(id_no, self.today())?;
        let payload = InsuredQuery {
            id_type: "01".into(),
            id_no: id.as_str().to_string(),
        };
        match self.query_exchange(key, "1001", &payload).await? {
            Ok(map) => Ok(QueryOutcome::Insured(InsuredPerson::from_payload(&map)?)),
            Err(reply) => Ok(QueryOutcome::Refused(reply)),
        }
    }

    /// 2001. `Err` only when nothing was sent (bad input, connect failure).
    pub async fn pay(
        &self,
        key: &RequestKey,
        order: &ContributionOrder,
    ) -> Result<PayOutcome, MedicalError> {
        let id = IdNumber::parse(&order.id_no, self.today())?;
        let amount = messages::format_amount(order.amount).ok_or(MedicalError::InvalidInput {
            field: "amount",
            reason: "金额须为非负且不超过10位整数".into(),
        })?;
        if !order.amount.is_positive() {
            return Err(MedicalError::InvalidInput {
                field: "amount",
                reason: "金额须大于0".into(),
            });
        }
        if order.year.len() != 4 || !order.year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MedicalError::InvalidInput {
                field: "year",
                reason: "年度须为4位数字".into(),
            });
        }
        if order.channel == PayChannel::WeChat {
            return Err(MedicalError::InvalidInput {
                field: "channel",
                reason: "银行渠道不能为微信".into(),
            });
        }
        let name = order.name.trim();
        if name.is_empty() {
            return Err(MedicalError::InvalidInput {
                field: "name",
                reason: "参保人姓名为空".into(),
            });
        }
        let payload = PayRequest {
            id_no: id.as_str().to_string(),
            name: name.to_string(),
            year: order.year.clone(),
            amount,
            payer_name: order.payer_name.trim().to_string(),
            payer_acct: order.payer_acct.clone(),
            channel: order.channel.code().to_string(),
        };
        tracing::info!(
            instance = %self.config.instance,
            req_serial = %key.req_serial,
            id_no = %mask_id_number(id.as_str()),
            year = %order.year,
            amount_fen = order.amount.fen(),
            "Sending medical insurance contribution 2001."
        );
        let response = match self
            .exchange(key, "2001", &payload, self.money_timeout())
            .await
        {
            Exchange::NotSent(error) => return Err(error),
            Exchange::NoAnswer(error) => return Ok(unknown_pay(error.to_string())),
            Exchange::Answer(response) => response,
        };
        Ok(match response.ret_code.as_str() {
            "0000" => {
                let Some(map) = response.payload else {
                    return Ok(unknown_pay("0000应答无业务数据".into()));
                };
                match PaymentReceipt::from_payload(&map) {
                    Ok(receipt)
                        if receipt.id_no == payload.id_no
                            && receipt.year == order.year
                            && receipt.amount == order.amount =>
                    {
                        PayOutcome::Paid(receipt)
                    }
                    Ok(_) => unknown_pay("0000应答的证件号、年度或金额与请求不符".into()),
                    Err(error) => unknown_pay(error.to_string()),
                }
            }
            "9999" => unknown_pay(format!("9999 {}", response.ret_msg)),
            _ => PayOutcome::Refused(reply_of(response)),
        })
    }

    /// 2002 撤销 (same-day cancellation, counter only, teller-authorised). A new `key` for each
    /// attempt.
    pub async fn cancel(
        &self,
        key: &RequestKey,
        original: &OriginalPayment,
        id_no: &str,
        amount: Money,
    ) -> Result<CancelOutcome, MedicalError> {
        let id = IdNumber::parse(id_no, self.today())?;
        let amount = messages::format_amount(amount).ok_or(MedicalError::InvalidInput {
            field: "amount",
            reason: "金额格式错误".into(),
        })?;
        check_serial(&original.req_serial)?;
        let payload = CancelRequest {
            orig_req_serial: original.req_serial.clone(),
            orig_req_date: codecs::clock::yyyymmdd(original.req_date),
            id_no: id.as_str().to_string(),
            amount,
        };
        let response = match self
            .exchange(key, "2002", &payload, self.money_timeout())
            .await
        {
            Exchange::NotSent(error) => return Err(error),
            Exchange::NoAnswer(error) => {
                return Ok(CancelOutcome::Unknown {
                    reason: error.to_string(),
                })
            }
            Exchange::Answer(response) => response,
        };
        Ok(match response.ret_code.as_str() {
            "0000" => match response
                .payload
                .as_ref()
                .map(|map| messages::time(map, "cancelTime"))
            {
                Some(Ok(cancel_time)) => CancelOutcome::Cancelled { cancel_time },
                Some(Err(error)) => CancelOutcome::Unknown {
                    reason: error.to_string(),
                },
                None => CancelOutcome::Unknown {
                    reason: "0000应答无业务数据".into(),
                },
            },
            "2002" => CancelOutcome::AlreadyCancelled,
            "2001" => CancelOutcome::OriginalNotFound,
            "2004" => CancelOutcome::Mismatch,
            "2003" => CancelOutcome::TooLate,
            "9999" => CancelOutcome::Unknown {
                reason: format!("9999 {}", response.ret_msg),
            },
            _ => CancelOutcome::Refused(reply_of(response)),
        })
    }

    /// 2003 交易结果查询 of a 2001.
    pub async fn status(
        &self,
        key: &RequestKey,
        original: &OriginalPayment,
    ) -> Result<StatusOutcome, MedicalError> {
        check_serial(&original.req_serial)?;
        let payload = StatusRequest {
            orig_req_serial: original.req_serial.clone(),
            orig_req_date: codecs::clock::yyyymmdd(original.req_date),
        };
        let response = match self
            .exchange(key, "2003", &payload, self.query_timeout())
            .await
        {
            Exchange::NotSent(error) => return Err(error),
            Exchange::NoAnswer(error) => {
                return Ok(StatusOutcome::Unknown {
                    reason: error.to_string(),
                })
            }
            Exchange::Answer(response) => response,
        };
        if response.ret_code != "0000" {
            return Ok(if response.ret_code == "9999" {
                StatusOutcome::Unknown {
                    reason: format!("9999 {}", response.ret_msg),
                }
            } else {
                StatusOutcome::Refused(reply_of(response))
            });
        }
        let Some(map) = response.payload else {
            return Ok(StatusOutcome::Unknown {
                reason: "0000应答无业务数据".into(),
            });
        };
        Ok(
            read_status(&map).unwrap_or_else(|error| StatusOutcome::Unknown {
                reason: error.to_string(),
            }),
        )
    }

    /// 3001 缴费记录查询: history of an ID number, `start`..=`end` (at most 366 days).
    pub async fn history(
        &self,
        key: &RequestKey,
        id_no: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<HistoryOutcome, MedicalError> {
        let id = IdNumber::parse(id_no, self.today())?;
        let payload = HistoryRequest {
            id_no: id.as_str().to_string(),
            start_date: codecs::clock::yyyymmdd(start),
            end_date: codecs::clock::yyyymmdd(end),
        };
        match self.query_exchange(key, "3001", &payload).await? {
            Ok(map) => Ok(HistoryOutcome::History(History::from_payload(&map)?)),
            Err(reply) => Ok(HistoryOutcome::Refused(reply)),
        }
    }

    /// 9001 对账文件获取; the content's SM3 is checked against `sm3`.
    pub async fn daily_file(
        &self,
        key: &RequestKey,
        acct_date: NaiveDate,
    ) -> Result<DailyFileOutcome, MedicalError> {
        let payload = DailyFileRequest {
            acct_date: codecs::clock::yyyymmdd(acct_date),
        };
        let map = match self.query_exchange(key, "9001", &payload).await? {
            Ok(map) => map,
            Err(reply) if reply.ret_code == "3002" => return Ok(DailyFileOutcome::NotReady),
            Err(reply) => return Ok(DailyFileOutcome::Refused(reply)),
        };
        let file_name = messages::text(&map, "fileName")?.to_string();
        let expected_name = super::daily_file::file_name(&self.config.bank_code, acct_date);
        if file_name != expected_name {
            return Err(MedicalError::DailyFile(format!(
                "文件名{file_name}，应为{expected_name}"
            )));
        }
        let sm3_hex = messages::text(&map, "sm3")?;
        use base64::Engine as _;
        let content = base64::engine::general_purpose::STANDARD
            .decode(messages::text(&map, "content")?)
            .map_err(|e| MedicalError::DailyFile(format!("content不是Base64: {e}")))?;
        let digest = hex::encode(codecs::crypto::sm3::digest(&content));
        if !digest.eq_ignore_ascii_case(sm3_hex) {
            return Err(MedicalError::DailyFile("SM3校验值不符".into()));
        }
        Ok(DailyFileOutcome::File { file_name, content })
    }

    fn money_timeout(&self) -> Duration {
        Duration::from_millis(self.config.money_timeout_ms)
    }

    fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.config.query_timeout_ms)
    }

    /// Queries: any missing answer is an error; 0000 gives the payload, others the reply.
    async fn query_exchange<T: Serialize>(
        &self,
        key: &RequestKey,
        tx_code: &str,
        payload: &T,
    ) -> Result<Result<Map<String, Value>, InsurerReply>, MedicalError> {
        match self
            .exchange(key, tx_code, payload, self.query_timeout())
            .await
        {
            Exchange::NotSent(error) | Exchange::NoAnswer(error) => Err(error),
            Exchange::Answer(response) => match response.payload {
                Some(map) if response.ret_code == "0000" => Ok(Ok(map)),
                _ => Ok(Err(reply_of(response))),
            },
        }
    }

    async fn exchange<T: Serialize>(
        &self,
        key: &RequestKey,
        tx_code: &str,
        payload: &T,
        timeout: Duration,
    ) -> Exchange {
        if let Err(error) = check_serial(&key.req_serial) {
            return Exchange::NotSent(error);
        }
        let header = RequestHeader {
            bank_code: self.config.bank_code.clone(),
            tx_code: tx_code.to_string(),
            req_serial: key.req_serial.clone(),
            req_time: key.req_time,
        };
        let body = match serde_json::to_vec(payload)
            .map_err(|e| EnvelopeError::Encode(e.to_string()))
            .and_then(|plain| envelope::seal_request(&self.keys, &header, &plain))
        {
            Ok(body) => body,
            Err(error) => return Exchange::NotSent(error.into()),
        };
        let sent = self
            .http
            .post(&self.config.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=UTF-8",
            )
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return classify(error),
        };
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Exchange::NoAnswer(MedicalError::HttpStatus(status.as_u16()));
        }
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) if error.is_timeout() => return Exchange::NoAnswer(MedicalError::Timeout),
            Err(error) => return Exchange::NoAnswer(MedicalError::Transport(error.to_string())),
        };
        match envelope::open_response(&self.keys, &header, &bytes) {
            Ok(opened) => {
                tracing::debug!(
                    instance = %self.config.instance,
                    tx_code,
                    req_serial = %key.req_serial,
                    ret_code = %opened.ret_code,
                    "Medical insurer answered."
                );
                Exchange::Answer(opened)
            }
            Err(error) => {
                tracing::warn!(
                    instance = %self.config.instance,
                    tx_code,
                    req_serial = %key.req_serial,
                    error = %error,
                    "Medical insurer answer refused."
                );
                Exchange::NoAnswer(error.into())
            }
        }
    }
}

fn classify(error: reqwest::Error) -> Exchange {
    if error.is_connect() {
        // The connection (TCP or TLS) never came up: no byte of the request left.
        Exchange::NotSent(MedicalError::Connect(error.to_string()))
    } else if error.is_timeout() {
        Exchange::NoAnswer(MedicalError::Timeout)
    } else {
        Exchange::NoAnswer(MedicalError::Transport(error.to_string()))
    }
}

fn unknown_pay(reason: String) -> PayOutcome {
    PayOutcome::Unknown { reason }
}

fn reply_of(response: OpenedResponse) -> InsurerReply {
    InsurerReply {
        ret_code: response.ret_code,
        ret_msg: response.ret_msg,
    }
}

fn check_serial(serial: &str) -> Result<(), MedicalError> {
    if serial.is_empty() || serial.len() > 32 || !serial.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(MedicalError::InvalidInput {
            field: "reqSerial",
            reason: "须为1-32位字母或数字".into(),
        });
    }
    Ok(())
}

fn read_status(map: &Map<String, Value>) -> Result<StatusOutcome, PayloadError> {
    let status = messages::text(map, "status")?;
    Ok(match status {
        "0" => StatusOutcome::InProcess,
        "3" => StatusOutcome::NotFound,
        "1" | "2" => {
            let pay_no = messages::non_empty(map, "payNo")?;
            let amount = messages::amount(map, "amount")?;
            let acct_date = messages::date(map, "acctDate")?;
            if status == "1" {
                StatusOutcome::Paid {
                    pay_no,
                    amount,
                    acct_date,
                }
            } else {
                StatusOutcome::Cancelled {
                    pay_no,
                    amount,
                    acct_date,
                }
            }
        }
        _ => {
            return Err(PayloadError {
                member: "status".into(),
                reason: "未知状态".into(),
            })
        }
    })
}
