//! The core banking gateway connector (core-banking.md): 8001–8004 over TCP with an 8-digit length
//! header and GBK XML. One request per connection: the gateway accepts it and it keeps a late answer
//! from ever being paired with the wrong request.
//!
//! Outcomes are three-valued on purpose: an answer, a refusal, or UNKNOWN. Anything that happens
//! after the request may have left the hub (timeout, dropped connection, garbled or mismatched
//! answer, E99999) is UNKNOWN and is resolved by 8004, never by assuming failure.

use std::time::Duration;

use chrono::NaiveDate;
use codecs::clock::{hhmmss, parse_yyyymmdd, yyyymmdd, SharedClock};
use codecs::frame::LengthPrefixed;
use codecs::text::Charset;
use codecs::xml::{self, Element};
use codecs::Money;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Where and how to reach the core gateway.
#[derive(Clone, Debug, Deserialize)]
pub struct CoreConfig {
    pub host: String,
    pub port: u16,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_answer_timeout_ms")]
    pub answer_timeout_ms: u64,
    /// The branch that owns the business (6 digits).
    pub branch_id: String,
    /// The hub's virtual teller.
    pub teller_id: String,
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}
fn default_answer_timeout_ms() -> u64 {
    10_000
}

const CHANNEL_ID: &str = "MBP";
const MAX_FRAME: usize = 1 << 20;

/// What the core answered in the Head.
#[derive(Clone, Debug)]
pub struct CoreHead {
    pub ret_code: String,
    pub ret_msg: String,
    pub core_seq_no: String,
    pub core_date: Option<NaiveDate>,
    pub err_side: String,
}

enum Call {
    Answered {
        head: CoreHead,
        body: Element,
    },
    /// Nothing was sent: the connection could not be opened.
    NotSent(String),
    Unknown(String),
}

#[derive(Clone, Debug)]
pub enum TransferOutcome {
    Posted {
        core_seq_no: String,
        core_date: NaiveDate,
    },
    /// Nothing posted, for certain.
    Refused {
        ret_code: String,
        ret_msg: String,
        err_side: String,
    },
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub enum CoreReversalOutcome {
    /// 000000 (the mirror posting), E20001 (fenced: nothing had posted) or E20002 (already reversed).
    Reversed {
        ret_code: String,
        core_seq_no: Option<String>,
        core_date: Option<NaiveDate>,
    },
    /// E90001 and the like: automatic retry cannot help (e.g. original over 30 days old).
    Refused {
        ret_code: String,
        ret_msg: String,
    },
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub enum CoreStatusOutcome {
    Posted {
        core_seq_no: String,
        core_date: Option<NaiveDate>,
    },
    Reversed,
    NotFound,
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub struct AccountInfo {
    pub name: String,
    pub class: String,
    pub status: String,
    pub balance: Money,
    pub available: Money,
}

/// 8005's answer: whether the name (and the ID, when one was sent) is the account's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameCheck {
    pub name_matches: bool,
    /// `None` when no IdNo was sent.
    pub id_matches: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct CoreClient {
    config: CoreConfig,
    clock: SharedClock,
}

impl CoreClient {
    pub fn new(config: CoreConfig, clock: SharedClock) -> CoreClient {
        CoreClient { config, clock }
    }

    fn head(&self, tran_code: &str, seq_no: &str, tran_date: NaiveDate) -> Element {
        Element::new("Head")
            .with(Element::text_node("TranCode", tran_code))
            .with(Element::text_node("ChannelId", CHANNEL_ID))
            .with(Element::text_node("SeqNo", seq_no))
            .with(Element::text_node("TranDate", yyyymmdd(tran_date)))
            .with(Element::text_node("TranTime", hhmmss(self.clock.now())))
            .with(Element::text_node(
                "BranchId",
                self.config.branch_id.clone(),
            ))
            .with(Element::text_node(
                "TellerId",
                self.config.teller_id.clone(),
            ))
    }

    async fn call(
        &self,
        tran_code: &str,
        seq_no: &str,
        tran_date: NaiveDate,
        body: Element,
    ) -> Call {
        let request = Element::new("Service")
            .with(self.head(tran_code, seq_no, tran_date))
            .with(body);
        let bytes = match xml::write(&request, Charset::Gbk) {
            Ok(b) => b,
            // Our own request cannot be encoded (a character GBK lacks): nothing was sent.
            Err(e) => return Call::NotSent(format!("request not encodable: {e}")),
        };
        let address = format!("{}:{}", self.config.host, self.config.port);
        let connect = tokio::time::timeout(
            Duration::from_millis(self.config.connect_timeout_ms),
            TcpStream::connect(&address),
        )
        .await;
        let stream = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Call::NotSent(format!("connect failed: {e}")),
            Err(_) => return Call::NotSent("connect timed out".to_string()),
        };
        let mut framed = Framed::new(stream, LengthPrefixed::new(8, MAX_FRAME));
        if let Err(e) = framed.send(bytes::Bytes::from(bytes)).await {
            return Call::Unknown(format!("send failed: {e}"));
        }
        let answer = tokio::time::timeout(
            Duration::from_millis(self.config.answer_timeout_ms),
            framed.next(),
        )
        .await;
        let frame = match answer {
            Err(_) => return Call::Unknown("answer timed out".to_string()),
            Ok(None) => return Call::Unknown("connection closed without an answer".to_string()),
            Ok(Some(Err(e))) => return Call::Unknown(format!("bad answer frame: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let root = match xml::parse(&frame, Charset::Gbk) {
            Ok(r) => r,
            Err(e) => return Call::Unknown(format!("answer not parseable: {e}")),
        };
        let Some(head) = root.child("Head") else {
            return Call::Unknown("answer without Head".to_string());
        };
        let echo = |name: &str| head.child_text(name).unwrap_or_default().to_string();
        // An answer that does not echo our request is somebody else's: outcome unknown.
        if echo("TranCode") != tran_code || echo("SeqNo") != seq_no {
            return Call::Unknown(format!(
                "answer echoes {}/{} instead of {tran_code}/{seq_no}",
                echo("TranCode"),
                echo("SeqNo")
            ));
        }
        let head = CoreHead {
            ret_code: echo("RetCode"),
            ret_msg: echo("RetMsg"),
            core_seq_no: echo("CoreSeqNo"),
            core_date: parse_yyyymmdd(&echo("CoreDate")),
            err_side: echo("ErrSide"),
        };
        let body = root
            .child("Body")
            .cloned()
            .unwrap_or_else(|| Element::new("Body"));
        Call::Answered { head, body }
    }

    /// 8002: one transfer, idempotent at the core on (seq_no, tran_date).
    #[allow(clippy::too_many_arguments)]
    pub async fn transfer(
        &self,
        seq_no: &str,
        tran_date: NaiveDate,
        debit_acct: &str,
        credit_acct: &str,
        amount: Money,
        summary: &str,
        purpose: &str,
    ) -> TransferOutcome {
        let body = Element::new("Body")
            .with(Element::text_node("DebitAcct", debit_acct))
            .with(Element::text_node("CreditAcct", credit_acct))
            .with(Element::text_node("Amount", amount.to_yuan()))
            .with(Element::text_node("Summary", summary))
            .with(Element::text_node("Purpose", purpose));
        match self.call("8002", seq_no, tran_date, body).await {
            Call::NotSent(reason) => TransferOutcome::Refused {
                ret_code: "NOT_SENT".to_string(),
                ret_msg: reason,
                err_side: String::new(),
            },
            Call::Unknown(reason) => TransferOutcome::Unknown { reason },
            Call::Answered { head, .. } => match head.ret_code.as_str() {
                "000000" => match head.core_date {
                    Some(core_date) if !head.core_seq_no.is_empty() => TransferOutcome::Posted {
                        core_seq_no: head.core_seq_no,
                        core_date,
                    },
                    _ => TransferOutcome::Unknown {
                        reason: "000000 without CoreSeqNo or CoreDate".to_string(),
                    },
                },
                "E99999" => TransferOutcome::Unknown {
                    reason: format!("E99999 {}", head.ret_msg),
                },
                _ => TransferOutcome::Refused {
                    ret_code: head.ret_code,
                    ret_msg: head.ret_msg,
                    err_side: head.err_side,
                },
            },
        }
    }

    /// 8003: reversal of an 8002. Its own SeqNo; safe to repeat (a second one answers E20002).
    pub async fn reverse(
        &self,
        seq_no: &str,
        tran_date: NaiveDate,
        orig_seq_no: &str,
        orig_tran_date: NaiveDate,
    ) -> CoreReversalOutcome {
        let body = Element::new("Body")
            .with(Element::text_node("OrigSeqNo", orig_seq_no))
            .with(Element::text_node("OrigTranDate", yyyymmdd(orig_tran_date)));
        match self.call("8003", seq_no, tran_date, body).await {
            Call::NotSent(reason) | Call::Unknown(reason) => {
                CoreReversalOutcome::Unknown { reason }
            }
            Call::Answered { head, .. } => match head.ret_code.as_str() {
                "000000" | "E20001" | "E20002" => CoreReversalOutcome::Reversed {
                    core_seq_no: Some(head.core_seq_no).filter(|s| !s.is_empty()),
                    core_date: head.core_date,
                    ret_code: head.ret_code,
                },
                "E99999" => CoreReversalOutcome::Unknown {
                    reason: format!("E99999 {}", head.ret_msg),
                },
                _ => CoreReversalOutcome::Refused {
                    ret_code: head.ret_code,
                    ret_msg: head.ret_msg,
                },
            },
        }
    }

    /// 8004: what became of an 8002.
    pub async fn status(
        &self,
        seq_no: &str,
        tran_date: NaiveDate,
        orig_seq_no: &str,
        orig_tran_date: NaiveDate,
    ) -> CoreStatusOutcome {
        let body = Element::new("Body")
            .with(Element::text_node("OrigSeqNo", orig_seq_no))
            .with(Element::text_node("OrigTranDate", yyyymmdd(orig_tran_date)));
        match self.call("8004", seq_no, tran_date, body).await {
            Call::NotSent(reason) | Call::Unknown(reason) => CoreStatusOutcome::Unknown { reason },
            Call::Answered { head, body } => {
                if head.ret_code != "000000" {
                    return CoreStatusOutcome::Unknown {
                        reason: format!("8004 answered {} {}", head.ret_code, head.ret_msg),
                    };
                }
                match body.child_text("TxStatus").unwrap_or_default() {
                    "S" => CoreStatusOutcome::Posted {
                        core_seq_no: body
                            .child_text("OrigCoreSeqNo")
                            .unwrap_or_default()
                            .to_string(),
                        core_date: body.child_text("OrigCoreDate").and_then(parse_yyyymmdd),
                    },
                    "R" => CoreStatusOutcome::Reversed,
                    "N" => CoreStatusOutcome::NotFound,
                    other => CoreStatusOutcome::Unknown {
                        reason: format!("8004 TxStatus {other:?}"),
                    },
                }
            }
        }
    }

    /// 8005: account/name check (spec 02: before a withholding agreement is signed). Moves no
    /// money, so a failure is an error, never an outcome to resolve.
    pub async fn name_check(
        &self,
        seq_no: &str,
        acct_no: &str,
        acct_name: &str,
        id: Option<(&str, &str)>,
    ) -> Result<NameCheck, String> {
        let mut body = Element::new("Body")
            .with(Element::text_node("AcctNo", acct_no))
            .with(Element::text_node("AcctName", acct_name));
        if let Some((id_type, id_no)) = id {
            body = body
                .with(Element::text_node("IdType", id_type))
                .with(Element::text_node("IdNo", id_no));
        }
        match self.call("8005", seq_no, self.clock.today(), body).await {
            Call::NotSent(r) | Call::Unknown(r) => Err(r),
            Call::Answered { head, body } => {
                if head.ret_code != "000000" {
                    return Err(format!("{} {}", head.ret_code, head.ret_msg));
                }
                let flag = |n: &str| match body.child_text(n).unwrap_or_default() {
                    "Y" => Ok(Some(true)),
                    "N" => Ok(Some(false)),
                    "" => Ok(None),
                    other => Err(format!("8005 {n} {other:?}")),
                };
                let name_matches =
                    flag("Match")?.ok_or_else(|| "8005 without Match".to_string())?;
                Ok(NameCheck {
                    name_matches,
                    id_matches: if id.is_some() { flag("IdMatch")? } else { None },
                })
            }
        }
    }

    /// 8001: account inquiry (used by the operator tools and tests).
    pub async fn inquiry(&self, seq_no: &str, acct_no: &str) -> Result<AccountInfo, String> {
        let body = Element::new("Body").with(Element::text_node("AcctNo", acct_no));
        match self.call("8001", seq_no, self.clock.today(), body).await {
            Call::NotSent(r) | Call::Unknown(r) => Err(r),
            Call::Answered { head, body } => {
                if head.ret_code != "000000" {
                    return Err(format!("{} {}", head.ret_code, head.ret_msg));
                }
                let text = |n: &str| body.child_text(n).unwrap_or_default().to_string();
                let balance =
                    Money::parse_signed_yuan(&text("Balance")).map_err(|e| e.to_string())?;
                let available =
                    Money::parse_signed_yuan(&text("AvailBal")).map_err(|e| e.to_string())?;
                Ok(AccountInfo {
                    name: text("AcctName"),
                    class: text("AcctClass"),
                    status: text("Status"),
                    balance,
                    available,
                })
            }
        }
    }
}
