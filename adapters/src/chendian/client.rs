//! The 郴电国际 client: one short TCP connection per request (connect, write one frame, read one
//! frame, close), and the mapping of every answer and every failure to the SPI's outcomes.
//!
//! The line this file draws: a failure before the request can have left the hub (input refused,
//! connect failed) means nothing was written off; a failure after the first byte may have been
//! written means nobody knows. The client never re-sends: the engine journals and retries.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use codecs::frame::LengthPrefixed;

use super::messages::{Messages, PaymentStatus, Request, Response, ResponseBody, ResponseError};
use super::messages::{FRAME_DIGITS, MAX_BODY_LEN};
use crate::spi::{
    mask, AdapterError, OriginalRef, PartnerReply, PayOrder, PayOutcome, QueryOutcome,
    RequestContext, ReversalOutcome, StatusOutcome,
};

/// The payee code of this partner in journals, logs and file names.
pub const PAYEE: &str = "CDGJ";
/// The reply code of a payment refused because the partner could not be reached at all.
pub const CONNECT_CODE: &str = "CONNECT";

/// Why one request/answer exchange did not produce a checked answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Refused before any I/O: nothing can have reached the partner.
    #[error("{0}")]
    NotSent(AdapterError),
    /// The connection was never established: nothing can have reached the partner.
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
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::NotSent(error) => error.code(),
            ExchangeError::Connect { .. } => CONNECT_CODE,
            ExchangeError::Timeout { .. } => "ADP_TIMEOUT",
            ExchangeError::Transport(_) => "ADP_TRANSPORT",
            ExchangeError::Garbled(error) => error.code(),
        }
    }

    /// For calls that move no money (1001): every failure is an error.
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

/// Where and how patiently to talk to one instance of the partner.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub connect_timeout_ms: u64,
    pub answer_timeout_ms: u64,
}

#[derive(Debug)]
pub struct Client {
    messages: Messages,
    endpoint: Endpoint,
}

impl Client {
    pub fn new(messages: Messages, endpoint: Endpoint) -> Client {
        Client { messages, endpoint }
    }

    pub fn bank_code(&self) -> &str {
        self.messages.bank_code()
    }

    /// One exchange on a fresh connection. A late answer is never read: the socket is dropped
    /// when the answer timeout fires.
    pub async fn exchange(
        &self,
        ctx: &RequestContext,
        request: &Request<'_>,
    ) -> Result<Response, ExchangeError> {
        let tx_code = request.tx_code();
        let body = self
            .messages
            .encode_request(ctx, request)
            .map_err(ExchangeError::NotSent)?;
        let frame = LengthPrefixed::new(FRAME_DIGITS, MAX_BODY_LEN)
            .frame(&body)
            .map_err(|e| ExchangeError::NotSent(AdapterError::Encode(e.to_string())))?;
        let started = Instant::now();
        let result = self.round_trip(&frame).await.and_then(|answer| {
            self.messages
                .decode_response(tx_code, &ctx.bank_serial, &answer)
                .map_err(ExchangeError::Garbled)
        });
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(response) => tracing::info!(
                partner = PAYEE,
                instance = %self.bank_code(),
                tx_code = tx_code.code(),
                bank_serial = %ctx.bank_serial,
                customer = %mask(request.customer_no()),
                rsp_code = %response.header.rsp_code,
                rsp_msg = %response.header.rsp_msg,
                elapsed_ms,
                "Partner answered."
            ),
            Err(error) => tracing::warn!(
                partner = PAYEE,
                instance = %self.bank_code(),
                tx_code = tx_code.code(),
                bank_serial = %ctx.bank_serial,
                customer = %mask(request.customer_no()),
                error_code = error.code(),
                error = %error,
                elapsed_ms,
                "Partner exchange failed."
            ),
        }
        result
    }

    async fn round_trip(&self, frame: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let endpoint = &self.endpoint;
        let address = format!("{}:{}", endpoint.host, endpoint.port);
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
        tracing::debug!(partner = PAYEE, instance = %self.bank_code(), frame_bytes = frame.len(), "Connected; sending the request.");
        let answer = async {
            stream
                .write_all(frame)
                .await
                .map_err(|e| ExchangeError::Transport(format!("写请求失败：{e}")))?;
            let mut frames =
                FramedRead::new(&mut stream, LengthPrefixed::new(FRAME_DIGITS, MAX_BODY_LEN));
            match frames.next().await {
                Some(Ok(body)) => Ok(body.to_vec()),
                Some(Err(error)) => Err(ExchangeError::Transport(format!("读应答失败：{error}"))),
                None => Err(ExchangeError::Transport("对方未应答即关闭连接".into())),
            }
        };
        match tokio::time::timeout(Duration::from_millis(endpoint.answer_timeout_ms), answer).await
        {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout {
                timeout_ms: endpoint.answer_timeout_ms,
            }),
        }
    }

    /// 1001. Moves no money, so every failure is an error the channel can show.
    pub async fn query(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError> {
        query_outcome(
            self.exchange(ctx, &Request::Query { customer_no }).await,
            customer_no,
        )
    }

    /// 1002. Sent once; whatever happens after the first byte may have left is `Unknown`.
    pub async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome {
        pay_outcome(self.exchange(ctx, &Request::Pay(order)).await)
    }

    /// 1003 冲正.
    pub async fn reverse(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        reversal_outcome(self.exchange(ctx, &Request::Reversal(original)).await)
    }

    /// 1004 查证.
    pub async fn status(&self, ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome {
        status_outcome(self.exchange(ctx, &Request::Status(original)).await)
    }
}

/// 1001: a query moves no money, so every failure is an error; an answer for another customer is
/// garbled.
pub fn query_outcome(
    result: Result<Response, ExchangeError>,
    customer_no: &str,
) -> Result<QueryOutcome, AdapterError> {
    let response = result.map_err(ExchangeError::into_adapter_error)?;
    match response.body {
        ResponseBody::Bill(bill) if bill.customer_no == customer_no => Ok(QueryOutcome::Bill(bill)),
        ResponseBody::Bill(_) => Err(AdapterError::Garbled("应答户号与查询户号不符".into())),
        ResponseBody::Empty => Ok(QueryOutcome::Refused(reply(&response))),
        ResponseBody::Paid { .. } | ResponseBody::Status(_) => {
            Err(AdapterError::Garbled("1001应答含其他交易的报文体".into()))
        }
    }
}

/// 1002: only a failure before any byte can have left (input refused, connect failed) and an
/// answer other than 0000/9999 are `Refused`; everything else in doubt is `Unknown`.
pub fn pay_outcome(result: Result<Response, ExchangeError>) -> PayOutcome {
    match result {
        Ok(response) => match (response.header.rsp_code.as_str(), response.body) {
            (
                "0000",
                ResponseBody::Paid {
                    partner_serial,
                    acct_date,
                    prepaid,
                },
            ) => PayOutcome::Paid {
                partner_serial,
                acct_date,
                prepaid,
            },
            ("0000", _) => PayOutcome::Unknown {
                reason: "1002应答0000但无缴费结果".into(),
            },
            // The spec: 9999 leaves the outcome of a 1002 unknown (resolve with 1003/1004).
            ("9999", _) => PayOutcome::Unknown {
                reason: format!("合作方系统忙（9999 {}）", response.header.rsp_msg),
            },
            // Any other code wrote nothing off.
            _ => PayOutcome::Refused(PartnerReply {
                code: response.header.rsp_code,
                message: response.header.rsp_msg,
            }),
        },
        Err(ExchangeError::NotSent(error)) => PayOutcome::Refused(error.to_reply()),
        Err(error @ ExchangeError::Connect { .. }) => PayOutcome::Refused(PartnerReply {
            code: CONNECT_CODE.to_string(),
            message: error.to_string(),
        }),
        Err(error) => PayOutcome::Unknown {
            reason: format!("{}：{error}", error.code()),
        },
    }
}

/// 1003: a connect failure is `Unknown` too, since the engine simply retries a reversal; 9999 is
/// `Unknown` because the spec re-sends a 1003 answered 9999 like one that timed out.
pub fn reversal_outcome(result: Result<Response, ExchangeError>) -> ReversalOutcome {
    match result {
        Ok(response) => match response.header.rsp_code.as_str() {
            "0000" => ReversalOutcome::Reversed,
            "2001" => ReversalOutcome::OriginalNotFound,
            "2002" => ReversalOutcome::AlreadyReversed,
            "2003" => ReversalOutcome::TooLate,
            "2004" => ReversalOutcome::Mismatch,
            "9999" => ReversalOutcome::Unknown {
                reason: format!("合作方系统忙（9999 {}）", response.header.rsp_msg),
            },
            _ => ReversalOutcome::Refused(reply(&response)),
        },
        Err(ExchangeError::NotSent(error)) => ReversalOutcome::Refused(error.to_reply()),
        Err(error) => ReversalOutcome::Unknown {
            reason: format!("{}：{error}", error.code()),
        },
    }
}

/// 1004: the spec answers 0000 whenever the request parses, so any other answer is `Unknown`.
pub fn status_outcome(result: Result<Response, ExchangeError>) -> StatusOutcome {
    match result {
        Ok(Response {
            body: ResponseBody::Status(status),
            ..
        }) => match status {
            PaymentStatus::WrittenOff {
                partner_serial,
                acct_date,
                amount,
            } => StatusOutcome::WrittenOff {
                partner_serial,
                acct_date,
                amount,
            },
            PaymentStatus::Reversed => StatusOutcome::Reversed,
            PaymentStatus::NotFound => StatusOutcome::NotFound,
        },
        Ok(response) => StatusOutcome::Unknown {
            reason: format!(
                "查证应答{} {}",
                response.header.rsp_code, response.header.rsp_msg
            ),
        },
        Err(error) => StatusOutcome::Unknown {
            reason: format!("{}：{error}", error.code()),
        },
    }
}

fn reply(response: &Response) -> PartnerReply {
    PartnerReply {
        code: response.header.rsp_code.clone(),
        message: response.header.rsp_msg.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use chrono::{NaiveDate, NaiveTime};
    use codecs::Money;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::chendian::messages::TxCode;
    use crate::chendian::{ChendianAdapter, ChendianConfig};
    use crate::spi::{BillPartner, Channel};

    const KEY_HEX: &str = "0123456789abcdeffedcba9876543210";
    const SERIAL: &str = "B2026120300000000002";

    fn key() -> [u8; 16] {
        codecs::mac::parse_key_hex(KEY_HEX).expect("key")
    }

    fn adapter(port: u16, answer_timeout_ms: u64) -> ChendianAdapter {
        ChendianAdapter::new(ChendianConfig {
            bank_code: "NSH43102".into(),
            host: "127.0.0.1".into(),
            port,
            mac_key_hex: KEY_HEX.into(),
            mac_key_next_hex: None,
            suspense_account: "43102000100100000001".into(),
            settlement_account: "43102000100100000099".into(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms,
            file_dir: None,
        })
        .expect("adapter")
    }

    fn ctx() -> RequestContext {
        RequestContext {
            channel: Channel::Mobile,
            branch_no: "000101".into(),
            teller_no: "MB0001".into(),
            tx_date: NaiveDate::from_ymd_opt(2026, 12, 3).expect("date"),
            tx_time: NaiveTime::from_hms_opt(10, 10, 10).expect("time"),
            bank_serial: SERIAL.into(),
        }
    }

    fn order() -> PayOrder {
        PayOrder {
            customer_no: "4310020000000001".into(),
            pay_amount: Money::from_fen(30000),
            total_due: Money::from_fen(22335),
            payer_account: "6230901000000000011".into(),
            fields: Default::default(),
        }
    }

    fn original() -> OriginalRef {
        OriginalRef {
            bank_serial: SERIAL.into(),
            tx_date: NaiveDate::from_ymd_opt(2026, 12, 3).expect("date"),
            customer_no: "4310020000000001".into(),
            amount: Money::from_fen(30000),
            total_due: Money::from_fen(22335),
            fields: Default::default(),
            tx_time: Default::default(),
        }
    }

    /// A framed answer typed from the spec: header fields of the request, RspCode, an ASCII
    /// RspMsg, the business body, the MAC, and the 6-digit length in front.
    fn answer(tx_code: &str, rsp_code: &str, business: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(tx_code.as_bytes());
        data.extend_from_slice(b"NSH43102000101MB00010220261203101010");
        data.extend_from_slice(SERIAL.as_bytes());
        data.extend_from_slice(rsp_code.as_bytes());
        data.extend_from_slice(format!("{:<40}", "msg").as_bytes());
        data.extend_from_slice(business);
        let mac = codecs::mac::cdgj_mac_hex(&key(), &data);
        data.extend_from_slice(mac.as_bytes());
        let mut frame = format!("{:06}", data.len()).into_bytes();
        frame.extend_from_slice(&data);
        frame
    }

    /// A one-shot partner on 127.0.0.1: reads one request frame and hands it with the socket
    /// to `behave`. Returns the port and the task yielding the request bytes.
    async fn partner<F, Fut>(behave: F) -> (u16, tokio::task::JoinHandle<Vec<u8>>)
    where
        F: FnOnce(tokio::net::TcpStream, Vec<u8>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut length = [0u8; 6];
            socket.read_exact(&mut length).await.expect("length");
            let length: usize = std::str::from_utf8(&length)
                .expect("ascii")
                .parse()
                .expect("digits");
            let mut request = vec![0u8; length];
            socket.read_exact(&mut request).await.expect("body");
            behave(socket, request.clone()).await;
            request
        });
        (port, task)
    }

    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        port
    }

    #[tokio::test]
    async fn pay_written_off_over_a_short_connection() {
        let (port, task) = partner(|mut socket, _| async move {
            let frame = answer("1002", "0000", b"P202612030000000007720261203000000007665");
            socket.write_all(&frame).await.expect("write");
        })
        .await;
        let outcome = adapter(port, 2_000).pay(&ctx(), &order()).await;
        let request = task.await.expect("partner task");
        assert_eq!(request.len(), 192);
        assert_eq!(&request[176..], b"10B87B1C3800640D");
        match outcome {
            PayOutcome::Paid {
                partner_serial,
                acct_date,
                prepaid,
            } => {
                assert_eq!(partner_serial, "P2026120300000000077");
                assert_eq!(
                    acct_date,
                    NaiveDate::from_ymd_opt(2026, 12, 3).expect("date")
                );
                assert_eq!(prepaid, Money::from_fen(7665));
            }
            other => panic!("expected Paid, got {other:?}"),
        }
    }

    /// The partner switched to `KEY_HEX` first; our current key is still the old one.
    #[tokio::test]
    async fn an_answer_under_the_next_key_is_accepted_and_the_request_uses_the_current() {
        const OLD_KEY_HEX: &str = "11111111111111111111111111111111";
        let (port, task) = partner(|mut socket, _| async move {
            let frame = answer("1002", "0000", b"P202612030000000007720261203000000007665");
            socket.write_all(&frame).await.expect("write");
        })
        .await;
        let adapter = ChendianAdapter::new(ChendianConfig {
            bank_code: "NSH43102".into(),
            host: "127.0.0.1".into(),
            port,
            mac_key_hex: OLD_KEY_HEX.into(),
            mac_key_next_hex: Some(KEY_HEX.into()),
            suspense_account: "43102000100100000001".into(),
            settlement_account: "43102000100100000099".into(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms: 2_000,
            file_dir: None,
        })
        .expect("adapter");
        let outcome = adapter.pay(&ctx(), &order()).await;
        let request = task.await.expect("partner task");
        assert_eq!(request.len(), 192);
        // Under the spec key the MAC would be 10B87B1C3800640D; the current (old) key gives another.
        assert_ne!(&request[176..], b"10B87B1C3800640D");
        let old_key = codecs::mac::parse_key_hex(OLD_KEY_HEX).expect("key");
        let expected = codecs::mac::cdgj_mac_hex(&old_key, &request[..176]);
        assert_eq!(&request[176..], expected.as_bytes());
        assert!(
            matches!(&outcome, PayOutcome::Paid { partner_serial, .. } if partner_serial == "P2026120300000000077"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_late_answer_is_unknown_and_never_read() {
        let (port, _task) = partner(|mut socket, _| async move {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let frame = answer("1002", "0000", b"P202612030000000007720261203000000007665");
            let _ = socket.write_all(&frame).await;
        })
        .await;
        let started = Instant::now();
        let outcome = adapter(port, 200).pay(&ctx(), &order()).await;
        assert!(started.elapsed() < Duration::from_millis(1_200));
        assert!(
            matches!(&outcome, PayOutcome::Unknown { reason } if reason.starts_with("ADP_TIMEOUT")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_connection_closed_mid_frame_is_unknown() {
        let (port, _task) = partner(|mut socket, _| async move {
            let frame = answer("1002", "0000", b"P202612030000000007720261203000000007665");
            socket.write_all(&frame[..50]).await.expect("write");
        })
        .await;
        let outcome = adapter(port, 2_000).pay(&ctx(), &order()).await;
        assert!(
            matches!(&outcome, PayOutcome::Unknown { reason } if reason.starts_with("ADP_TRANSPORT")),
            "{outcome:?}"
        );
        let (port, _task) = partner(|_, _| async move {}).await;
        let outcome = adapter(port, 2_000).reverse(&ctx(), &original()).await;
        assert!(
            matches!(outcome, ReversalOutcome::Unknown { .. }),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_oversized_frame_is_unknown() {
        let (port, _task) = partner(|mut socket, _| async move {
            let _ = socket.write_all(b"001025").await;
        })
        .await;
        let outcome = adapter(port, 2_000).status(&ctx(), &original()).await;
        assert!(
            matches!(outcome, StatusOutcome::Unknown { .. }),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_sent_nothing() {
        let port = closed_port().await;
        let partner = adapter(port, 2_000);
        let outcome = partner.pay(&ctx(), &order()).await;
        assert!(
            matches!(&outcome, PayOutcome::Refused(reply) if reply.code == "CONNECT"),
            "{outcome:?}"
        );
        let outcome = partner.reverse(&ctx(), &original()).await;
        assert!(
            matches!(outcome, ReversalOutcome::Unknown { .. }),
            "{outcome:?}"
        );
        let outcome = partner.status(&ctx(), &original()).await;
        assert!(
            matches!(outcome, StatusOutcome::Unknown { .. }),
            "{outcome:?}"
        );
        let error = partner
            .query(&ctx(), "4310020000000001")
            .await
            .expect_err("no partner");
        assert_eq!(error.code(), "CONNECT");
    }

    #[tokio::test]
    async fn bad_input_never_reaches_the_wire() {
        // Nothing listens there, so an attempt to connect would show up as CONNECT.
        let port = closed_port().await;
        let partner = adapter(port, 2_000);
        let error = partner
            .query(&ctx(), "43100200000000001")
            .await
            .expect_err("too long");
        assert_eq!(error.code(), "ADP_INPUT");
        let mut bad = order();
        bad.customer_no = "4310张三".into();
        let outcome = partner.pay(&ctx(), &bad).await;
        assert!(
            matches!(&outcome, PayOutcome::Refused(reply) if reply.code == "ADP_INPUT"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn query_refusals_and_bad_macs() {
        let (port, _task) = partner(|mut socket, _| async move {
            socket
                .write_all(&answer("1001", "1001", b""))
                .await
                .expect("write");
        })
        .await;
        let outcome = adapter(port, 2_000).query(&ctx(), "4310020000000001").await;
        assert!(
            matches!(&outcome, Ok(QueryOutcome::Refused(reply)) if reply.code == "1001" && reply.message == "msg"),
            "{outcome:?}"
        );
        let (port, _task) = partner(|mut socket, _| async move {
            let mut frame = answer("1001", "1001", b"");
            if let Some(last) = frame.last_mut() {
                *last = if *last == b'0' { b'1' } else { b'0' };
            }
            socket.write_all(&frame).await.expect("write");
        })
        .await;
        let error = adapter(port, 2_000)
            .query(&ctx(), "4310020000000001")
            .await
            .expect_err("bad MAC");
        assert_eq!(error.code(), "ADP_GARBLED");
    }

    fn header_only(tx_code: TxCode, rsp_code: &str) -> Result<Response, ExchangeError> {
        let frame = answer(tx_code.code(), rsp_code, b"");
        let messages = Messages::new("NSH43102", key()).expect("messages");
        Ok(messages
            .decode_response(tx_code, SERIAL, &frame[6..])
            .expect("decodes"))
    }

    #[test]
    fn pay_codes_map_to_outcomes() {
        for code in ["1001", "1003", "1004", "1005", "9001", "9002"] {
            let outcome = pay_outcome(header_only(TxCode::Pay, code));
            assert!(
                matches!(&outcome, PayOutcome::Refused(reply) if reply.code == code),
                "{code}: {outcome:?}"
            );
        }
        assert!(matches!(
            pay_outcome(header_only(TxCode::Pay, "9999")),
            PayOutcome::Unknown { .. }
        ));
        let garbled = Err(ExchangeError::Garbled(ResponseError::BadMac));
        assert!(matches!(pay_outcome(garbled), PayOutcome::Unknown { .. }));
        let timeout = Err(ExchangeError::Timeout { timeout_ms: 15_000 });
        assert!(matches!(pay_outcome(timeout), PayOutcome::Unknown { .. }));
    }

    #[test]
    fn reversal_codes_map_to_outcomes() {
        let outcome = |code| reversal_outcome(header_only(TxCode::Reversal, code));
        assert!(matches!(outcome("0000"), ReversalOutcome::Reversed));
        assert!(matches!(outcome("2001"), ReversalOutcome::OriginalNotFound));
        assert!(matches!(outcome("2002"), ReversalOutcome::AlreadyReversed));
        assert!(matches!(outcome("2003"), ReversalOutcome::TooLate));
        assert!(matches!(outcome("2004"), ReversalOutcome::Mismatch));
        assert!(matches!(outcome("9999"), ReversalOutcome::Unknown { .. }));
        assert!(matches!(outcome("9001"), ReversalOutcome::Refused(ref r) if r.code == "9001"));
        assert!(matches!(outcome("9002"), ReversalOutcome::Refused(ref r) if r.code == "9002"));
        let garbled = Err(ExchangeError::Garbled(ResponseError::BadMac));
        assert!(matches!(
            reversal_outcome(garbled),
            ReversalOutcome::Unknown { .. }
        ));
    }

    #[test]
    fn status_codes_map_to_outcomes() {
        for code in ["9001", "9002", "9999"] {
            assert!(matches!(
                status_outcome(header_only(TxCode::Status, code)),
                StatusOutcome::Unknown { .. }
            ));
        }
        let frame = answer("1004", "0000", b"1P202612030000000007720261203000000030000");
        let messages = Messages::new("NSH43102", key()).expect("messages");
        let response = messages.decode_response(TxCode::Status, SERIAL, &frame[6..]);
        let outcome = status_outcome(response.map_err(ExchangeError::Garbled));
        assert!(
            matches!(&outcome, StatusOutcome::WrittenOff { partner_serial, amount, .. }
                if partner_serial == "P2026120300000000077" && *amount == Money::from_fen(30000)),
            "{outcome:?}"
        );
    }
}
