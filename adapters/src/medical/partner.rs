//! The insurer as a [`BillPartner`], so that channels query and pay contributions through the
//! hub's engine: customer number = the insured's ID number, payment fields `name` (the insured's
//! full name as the payer typed it), `year` and `payer_name` (缴款人).
//!
//! The spec's rules this file carries: the ID check before any call, the 1001 re-check before the
//! debit (typed name and payable amount from fresh data, never the channel's), 2003 on the
//! spec's schedule for an unknown 2001 with "not found" final only 330 s after the original,
//! 撤销 (2002) counter-only before 22:00 with a new reqSerial for every resend, and the daily file
//! fetched with 9001 (standing lines only count as payments).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::spi::{
    AdapterError, Bill, BillItem, BillPartner, Channel, DailyFile, DailyRecord, OriginalRef,
    PartnerReply, PayOrder, PayOutcome, QueryOutcome, RefusalReason, RequestContext,
    ReversalOutcome, StatusOutcome, UnknownResolution,
};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::SharedClock;
use codecs::Money;

use super::client::{
    self, CancelOutcome, ContributionOrder, DailyFileOutcome, MedicalClient, MedicalError,
    OriginalPayment, RequestKey,
};
use super::id_number::{mask_address, mask_id_number, mask_name, names_match, IdNumber};
use super::messages::{InsuredPerson, PayChannel};

/// Core Purpose of medical insurance postings (core-banking.md).
pub const PURPOSE: &str = "CXJM";
/// The payment field with the insured's full name as typed.
pub const FIELD_NAME: &str = "name";
/// The payment field with the contribution year (`2027`).
pub const FIELD_YEAR: &str = "year";
/// The optional payment field with the payer's name (payer and insured may differ).
pub const FIELD_PAYER_NAME: &str = "payer_name";

/// The spec's waits before each 2003 of an unknown 2001, counted from the previous step: asks
/// at 10, 30, 60, 120 and 330 s, then every 10 minutes.
const STATUS_GAPS_S: [i64; 5] = [10, 20, 30, 60, 210];
const STATUS_LATER_GAP_S: i64 = 600;

/// 2002 is taken before 22:00:00 (spec: "Business date and cut-off").
fn cancel_cut_off() -> NaiveTime {
    NaiveTime::from_hms_opt(22, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// The spi numbers channels 01 counter, 02 mobile, 03 self-service, 04 online; spec 03 numbers
/// them 01, 04, 03, 05.
pub fn pay_channel(channel: &Channel) -> PayChannel {
    match channel {
        Channel::Counter => PayChannel::Counter,
        Channel::Mobile => PayChannel::Mobile,
        Channel::SelfService => PayChannel::SelfService,
        Channel::Online => PayChannel::Online,
        // Refused by the engine before any call (`accepts_channel`); spec 03 has no code for it,
        // and the counter's is the one that shows the payer in full.
        Channel::Nongxinyin => PayChannel::Counter,
    }
}

fn reply(code: &str, message: &str) -> PartnerReply {
    PartnerReply {
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// A failure that is not the insurer's answer, in the codes the engine knows (a transport
/// failure of the 1001 re-check is "partner unavailable", not a refusal).
fn error_reply(error: &MedicalError) -> PartnerReply {
    let code = match error {
        MedicalError::Connect(_) => "CONNECT",
        MedicalError::Timeout => "ADP_TIMEOUT",
        MedicalError::Transport(_) | MedicalError::HttpStatus(_) => "ADP_TRANSPORT",
        MedicalError::Envelope(_) | MedicalError::Payload(_) => "ADP_GARBLED",
        other => other.code(),
    };
    reply(code, &error.to_string())
}

fn adapter_error(error: MedicalError) -> AdapterError {
    match error {
        MedicalError::Connect(e) => AdapterError::Connect(e),
        MedicalError::Timeout => AdapterError::Timeout("医保系统应答超时".into()),
        MedicalError::Transport(e) => AdapterError::Transport(e),
        MedicalError::HttpStatus(s) => AdapterError::Transport(format!("HTTP {s}")),
        MedicalError::IdNumber(e) => AdapterError::InvalidInput {
            field: "customer_no",
            reason: e.to_string(),
        },
        MedicalError::InvalidInput { field, reason } => {
            AdapterError::InvalidInput { field, reason }
        }
        MedicalError::Config(e) => AdapterError::Config {
            field: "medical",
            reason: e,
        },
        other => AdapterError::Garbled(other.to_string()),
    }
}

fn field<'a>(fields: &'a crate::spi::PayFields, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or_default()
}

/// One insurer instance (one per bank).
pub struct MedicalPartner {
    client: MedicalClient,
    clock: SharedClock,
    instance: String,
    bank_code: String,
    /// Makes the reqSerials of 9001 fetches unique within a reqDate.
    fetches: AtomicU64,
}

impl std::fmt::Debug for MedicalPartner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedicalPartner")
            .field("instance", &self.instance)
            .field("bank_code", &self.bank_code)
            .finish_non_exhaustive()
    }
}

impl MedicalPartner {
    pub fn new(client: MedicalClient, clock: SharedClock) -> MedicalPartner {
        let instance = client.config().instance.clone();
        let bank_code = client.config().bank_code.clone();
        MedicalPartner {
            client,
            clock,
            instance,
            bank_code,
            fetches: AtomicU64::new(0),
        }
    }

    /// The reqTime of a request the engine gave a context for: its date and time.
    fn key(serial: &str, ctx: &RequestContext) -> RequestKey {
        RequestKey {
            req_serial: serial.to_string(),
            req_time: ctx.tx_date.and_time(ctx.tx_time.with_nanosecond_zero()),
        }
    }

    /// What a channel may see of the 1001 answer: everything at the counter, the spec's masks
    /// elsewhere (self-service included: the spec unmasks only at the counter).
    fn bill_of(person: &InsuredPerson, channel: &Channel, today: NaiveDate) -> Bill {
        let open: Vec<_> = person
            .payables
            .iter()
            .filter(|p| !p.paid && p.start_date <= today && today <= p.end_date)
            .collect();
        let counter = *channel == Channel::Counter;
        let total_due = open.first().map(|p| p.amount).unwrap_or(Money::ZERO);
        Bill {
            customer_no: if counter {
                person.id_no.clone()
            } else {
                mask_id_number(&person.id_no)
            },
            customer_name: if counter {
                person.name.clone()
            } else {
                mask_name(&person.name)
            },
            address: if counter {
                person.home_address.clone()
            } else {
                mask_address(&person.home_address)
            },
            // One year is paid per 2001: the earliest open year is what the channel offers.
            total_due,
            prepaid: Money::ZERO,
            items: open
                .iter()
                .map(|p| BillItem {
                    period: p.year.clone(),
                    amount: p.amount,
                    penalty: Money::ZERO,
                    usage: None,
                })
                .collect(),
            nothing_due: open.is_empty(),
            meter_no: None,
        }
    }

    /// The 2001 rules the hub checks itself against a fresh 1001 answer, in the insurer's order
    /// (1002, 1003, 1004, 1005), answered with the insurer's codes.
    pub fn check_against(
        person: &InsuredPerson,
        order: &PayOrder,
        today: NaiveDate,
    ) -> Result<(), PartnerReply> {
        if !names_match(field(&order.fields, FIELD_NAME), &person.name) {
            return Err(reply("1002", "姓名不符"));
        }
        let year = field(&order.fields, FIELD_YEAR);
        let payable = person.payable(year);
        if payable.is_some_and(|p| p.paid) {
            return Err(reply("1003", "该年度已缴费"));
        }
        let Some(payable) = payable.filter(|p| p.start_date <= today && today <= p.end_date) else {
            return Err(reply("1004", "不在缴费期"));
        };
        if payable.amount != order.pay_amount {
            return Err(reply("1005", "缴费金额不符"));
        }
        Ok(())
    }

    fn original(original: &OriginalRef) -> OriginalPayment {
        OriginalPayment {
            req_serial: original.bank_serial.clone(),
            req_date: original.tx_date,
        }
    }

    /// A 2003 `3` ends the wait only when no late 2001 can still be accepted. The 2001's
    /// reqTime is the payment's journaled time (the engine sends it for partners that resolve
    /// by status), so the original's `tx_date` and `tx_time` are that reqTime.
    pub fn not_found_is_final(original: &OriginalRef, status_req_time: NaiveDateTime) -> bool {
        client::not_found_is_final(original.tx_date.and_time(original.tx_time), status_req_time)
    }

    fn cancel_outcome(outcome: Result<CancelOutcome, MedicalError>) -> ReversalOutcome {
        match outcome {
            Ok(CancelOutcome::Cancelled { .. }) => ReversalOutcome::Reversed,
            Ok(CancelOutcome::AlreadyCancelled) => ReversalOutcome::AlreadyReversed,
            // The hub holds a receipt (or a status 1) for this payment: an insurer that does not
            // know it contradicts that, and only 0000 or 2002 may give the money back.
            Ok(CancelOutcome::OriginalNotFound) => ReversalOutcome::NeedsOperator(reply(
                "2001",
                "原交易不存在（与行内成功记录矛盾，需人工核实）",
            )),
            Ok(CancelOutcome::Mismatch) => ReversalOutcome::Mismatch,
            Ok(CancelOutcome::TooLate) => ReversalOutcome::TooLate,
            Ok(CancelOutcome::Refused(r)) => {
                ReversalOutcome::Refused(reply(&r.ret_code, &r.ret_msg))
            }
            Ok(CancelOutcome::Unknown { reason }) => ReversalOutcome::Unknown { reason },
            // Never sent for want of a connection: the engine sends it again.
            Err(MedicalError::Connect(e)) => ReversalOutcome::Unknown { reason: e },
            Err(error) => ReversalOutcome::Refused(error_reply(&error)),
        }
    }
}

/// `NaiveTime` without its sub-second part (reqTime has whole seconds).
trait WholeSeconds {
    fn with_nanosecond_zero(self) -> NaiveTime;
}

impl WholeSeconds for NaiveTime {
    fn with_nanosecond_zero(self) -> NaiveTime {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

#[async_trait::async_trait]
impl BillPartner for MedicalPartner {
    fn payee(&self) -> &str {
        client::PAYEE
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    async fn query(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError> {
        // A failing number is refused to the channel and never sent.
        if let Err(error) = IdNumber::parse(customer_no, self.clock.today()) {
            return Ok(QueryOutcome::Refused(reply(
                error.code(),
                &error.to_string(),
            )));
        }
        let key = Self::key(&ctx.bank_serial, ctx);
        match self.client.query_insured(&key, customer_no).await {
            Ok(client::QueryOutcome::Insured(person)) => Ok(QueryOutcome::Bill(Self::bill_of(
                &person,
                &ctx.channel,
                self.clock.today(),
            ))),
            Ok(client::QueryOutcome::Refused(r)) => {
                Ok(QueryOutcome::Refused(reply(&r.ret_code, &r.ret_msg)))
            }
            Err(error) => Err(adapter_error(error)),
        }
    }

    fn check_order(&self, order: &PayOrder) -> Result<(), AdapterError> {
        IdNumber::parse(&order.customer_no, self.clock.today()).map_err(|e| {
            AdapterError::InvalidInput {
                field: "customer_no",
                reason: e.to_string(),
            }
        })?;
        if field(&order.fields, FIELD_NAME).trim().is_empty() {
            return Err(AdapterError::InvalidInput {
                field: "fields.name",
                reason: "须填写参保人姓名".into(),
            });
        }
        // 2001's payerName (the payer may be anyone, spec 03): the insurer takes no empty one.
        if field(&order.fields, FIELD_PAYER_NAME).trim().is_empty() {
            return Err(AdapterError::InvalidInput {
                field: "fields.payer_name",
                reason: "须填写缴款人姓名".into(),
            });
        }
        // The spec names no default year: a contribution is always for a year the payer chose.
        let year = field(&order.fields, FIELD_YEAR);
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AdapterError::InvalidInput {
                field: "fields.year",
                reason: "缴费年度须为4位数字".into(),
            });
        }
        if order.total_due != order.pay_amount {
            return Err(AdapterError::InvalidInput {
                field: "amount_fen",
                reason: "医保按年度应缴金额足额缴费".into(),
            });
        }
        Ok(())
    }

    async fn before_debit(
        &self,
        ctx: &RequestContext,
        order: &PayOrder,
    ) -> Result<(), PartnerReply> {
        let today = self.clock.today();
        if let Err(error) = IdNumber::parse(&order.customer_no, today) {
            return Err(reply(error.code(), &error.to_string()));
        }
        // Its own reqSerial: the payment's serial is the 2001's. Its reqTime is the clock's now
        // (spec 03: "the hub's clock"), not the payment's date with today's time: a payment
        // accepted at 23:59:59 and checked after midnight would otherwise be 24 h off (9005).
        let now = self.clock.now();
        let key = RequestKey {
            req_serial: format!("{}Q", ctx.bank_serial),
            req_time: now.date().and_time(now.time().with_nanosecond_zero()),
        };
        match self.client.query_insured(&key, &order.customer_no).await {
            Ok(client::QueryOutcome::Insured(person)) => Self::check_against(&person, order, today),
            Ok(client::QueryOutcome::Refused(r)) => Err(reply(&r.ret_code, &r.ret_msg)),
            Err(error) => Err(error_reply(&error)),
        }
    }

    async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome {
        // reqTime is the journal's date and time of the payment (the engine's context for a
        // status-resolved partner): status, cancel and the daily file find it under (reqDate,
        // reqSerial), and the 330 s rule counts from it. A 2001 that leaves more than 300 s
        // later is refused by the insurer (9005) and the debit is given back.
        let key = Self::key(&ctx.bank_serial, ctx);
        let contribution = ContributionOrder {
            id_no: order.customer_no.clone(),
            name: field(&order.fields, FIELD_NAME).to_string(),
            year: field(&order.fields, FIELD_YEAR).to_string(),
            amount: order.pay_amount,
            payer_name: field(&order.fields, FIELD_PAYER_NAME).to_string(),
            payer_acct: order.payer_account.clone(),
            channel: pay_channel(&ctx.channel),
        };
        match self.client.pay(&key, &contribution).await {
            Ok(client::PayOutcome::Paid(receipt)) => PayOutcome::Paid {
                partner_serial: receipt.pay_no,
                acct_date: receipt.acct_date,
                prepaid: Money::ZERO,
            },
            Ok(client::PayOutcome::Refused(r)) => {
                PayOutcome::Refused(reply(&r.ret_code, &r.ret_msg))
            }
            Ok(client::PayOutcome::Unknown { reason }) => PayOutcome::Unknown { reason },
            // Nothing left the hub.
            Err(error) => PayOutcome::Refused(error_reply(&error)),
        }
    }

    /// The spec has no 冲正: an unknown 2001 is settled by 2003 and a completed one is undone only
    /// by the counter's authorised 2002 ([`BillPartner::cancel`]). The engine never asks this of
    /// a partner that resolves by status and has a cancel; should it, an operator decides.
    async fn reverse(&self, _ctx: &RequestContext, _original: &OriginalRef) -> ReversalOutcome {
        ReversalOutcome::NeedsOperator(reply(
            "MED_NO_REVERSAL",
            "医保缴费无冲正交易：超时以2003查证，当日撤销走柜面授权2002",
        ))
    }

    async fn status(&self, ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome {
        let key = Self::key(&ctx.bank_serial, ctx);
        match self.client.status(&key, &Self::original(original)).await {
            Ok(client::StatusOutcome::Paid {
                pay_no,
                amount,
                acct_date,
            }) => StatusOutcome::WrittenOff {
                partner_serial: pay_no,
                acct_date,
                amount,
            },
            Ok(client::StatusOutcome::Cancelled { .. }) => StatusOutcome::Reversed,
            Ok(client::StatusOutcome::NotFound)
                if Self::not_found_is_final(original, key.req_time) =>
            {
                StatusOutcome::NotFound
            }
            Ok(client::StatusOutcome::NotFound) => StatusOutcome::Unknown {
                reason: "2003: 3 未找到，原交易仍可能被受理".into(),
            },
            Ok(client::StatusOutcome::InProcess) => StatusOutcome::Unknown {
                reason: "2003: 0 处理中".into(),
            },
            Ok(client::StatusOutcome::Refused(r)) => StatusOutcome::Unknown {
                reason: format!("2003 {} {}", r.ret_code, r.ret_msg),
            },
            Ok(client::StatusOutcome::Unknown { reason }) => StatusOutcome::Unknown { reason },
            Err(error) => StatusOutcome::Unknown {
                reason: error.to_string(),
            },
        }
    }

    fn daily_files(&self, acct_date: NaiveDate) -> Vec<String> {
        vec![super::daily_file::file_name(&self.bank_code, acct_date)]
    }

    async fn fetch_daily(
        &self,
        acct_date: NaiveDate,
        dir: &std::path::Path,
    ) -> Result<bool, AdapterError> {
        let now = self.clock.now();
        let n = self.fetches.fetch_add(1, Ordering::Relaxed) % 1000;
        let key = RequestKey {
            req_serial: format!("DF{}{n:03}", now.format("%Y%m%d%H%M%S%3f")),
            req_time: now.date().and_time(now.time().with_nanosecond_zero()),
        };
        match self
            .client
            .daily_file(&key, acct_date)
            .await
            .map_err(adapter_error)?
        {
            DailyFileOutcome::File { file_name, content } => {
                let path = dir.join(&file_name);
                let partial = dir.join(format!("{file_name}.part"));
                std::fs::create_dir_all(dir)?;
                std::fs::write(&partial, &content)?;
                std::fs::rename(&partial, &path)?;
                tracing::info!(instance = %self.instance, file = %file_name, bytes = content.len(), "Medical daily file fetched (SM3 checked).");
                Ok(true)
            }
            DailyFileOutcome::NotReady => {
                Err(AdapterError::Transport("3002 对账文件未生成".into()))
            }
            DailyFileOutcome::Refused(r) => Err(AdapterError::Transport(format!(
                "9001 {} {}",
                r.ret_code, r.ret_msg
            ))),
        }
    }

    fn parse_daily(&self, files: &[Vec<u8>]) -> Result<DailyFile, AdapterError> {
        let bytes = files.first().ok_or(AdapterError::DailyFile {
            line: 0,
            reason: "缺少对账文件".into(),
        })?;
        // The summary line names the date; the reconciliation checks it is the one it wanted.
        let acct_date = bytes
            .get(..8)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(codecs::clock::parse_yyyymmdd)
            .ok_or(AdapterError::DailyFile {
                line: 1,
                reason: "汇总行日期错误".into(),
            })?;
        let file =
            super::daily_file::parse(bytes, acct_date).map_err(|e| AdapterError::DailyFile {
                line: e.line,
                reason: e.reason,
            })?;
        // A cancelled (status 2) line is a payment undone the same day: it is not one to settle,
        // and the journal holds it as CANCELLED.
        let records = file
            .standing()
            .map(|r| DailyRecord {
                line_no: r.line_no,
                bank_serial: r.req_serial.clone(),
                partner_serial: r.pay_no.clone(),
                customer_no: r.id_no.clone(),
                amount: r.amount,
                tx_date: r.req_date,
                tx_time: r.pay_time.time(),
                channel: r.channel.code().to_string(),
            })
            .collect();
        Ok(DailyFile {
            acct_date: file.acct_date,
            records,
        })
    }

    fn purpose(&self) -> &str {
        PURPOSE
    }

    fn payment_summary(&self, _customer_no: &str) -> String {
        "医保缴费".to_string()
    }

    fn order_summary(&self, order: &PayOrder) -> String {
        format!("医保缴费{}", field(&order.fields, FIELD_YEAR))
    }

    fn settlement_code(&self) -> &str {
        &self.bank_code
    }

    fn settlement_summary(&self, acct_date: NaiveDate) -> String {
        format!(
            "医保缴费{}{}",
            self.bank_code,
            codecs::clock::yyyymmdd(acct_date)
        )
    }

    fn canonical_customer_no(&self, customer_no: &str) -> String {
        IdNumber::canonical(customer_no)
    }

    fn customer_no_max_len(&self) -> usize {
        18
    }

    fn accepts_prepayment(&self) -> bool {
        false
    }

    fn refusal_reason(&self, code: &str) -> Option<RefusalReason> {
        Some(match code {
            "1001" => RefusalReason::CustomerNotFound,
            "1002" => RefusalReason::NameMismatch,
            "1003" => RefusalReason::AlreadyPaid,
            "1004" => RefusalReason::NotPayableNow,
            "1005" => RefusalReason::AmountMismatch,
            "1006" => RefusalReason::InvalidIdNumber,
            c if c.starts_with("MED_ID_") => RefusalReason::InvalidIdNumber,
            _ => return None,
        })
    }

    fn unknown_resolution(&self) -> UnknownResolution {
        UnknownResolution::AskStatus
    }

    fn status_retry_after(&self, attempts: i64) -> Option<Duration> {
        let gap = usize::try_from(attempts)
            .ok()
            .and_then(|i| STATUS_GAPS_S.get(i).copied())
            .unwrap_or(STATUS_LATER_GAP_S);
        Some(Duration::seconds(gap))
    }

    fn supports_cancel(&self) -> bool {
        true
    }

    fn cancel_counter_only(&self) -> bool {
        true
    }

    fn accepts_cancel_at(&self, time: NaiveTime) -> bool {
        time < cancel_cut_off()
    }

    async fn cancel(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        let key = Self::key(&ctx.bank_serial, ctx);
        let outcome = self
            .client
            .cancel(
                &key,
                &Self::original(original),
                &original.customer_no,
                original.amount,
            )
            .await;
        Self::cancel_outcome(outcome)
    }

    fn resend_reversal_with_new_serial(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[path = "partner_tests.rs"]
mod tests;
