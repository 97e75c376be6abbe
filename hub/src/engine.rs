//! The transaction engine: one bill payment from the channel's request to a final state.
//!
//! Read top to bottom: [`Engine::pay`] accepts and journals, debits at core ([`Engine::debit`]),
//! writes off at the partner ([`Engine::write_off`]); whatever is left in doubt is a pending
//! [`NextAction`] that [`Engine::drive`] works off, now or later (the resolver job calls it with
//! backoff, and again after a restart). Every external call is preceded by the journal write that
//! says it is about to happen.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use adapters::spi::{
    BillPartner, Channel, OriginalRef, PayFields, PayOrder, PayOutcome, QueryOutcome,
    RequestContext, ReversalOutcome, StatusOutcome, UnknownResolution,
};
use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};
use codecs::clock::{parse_yyyymmdd, SharedClock};
use codecs::Money;
use serde::{Deserialize, Serialize};
use sm3::{Digest, Sm3};
use tokio::sync::Notify;

use crate::core_client::{CoreClient, CoreReversalOutcome, CoreStatusOutcome, TransferOutcome};
use crate::errors::ErrorCode;
use crate::journal::{Change, Inserted, Journal, JournalError, NewPayment, PaymentRow};
use crate::state::{NextAction, PaymentState};
use codecs::mask::mask_account;

/// One partner instance as the engine sees it: the adapter and the accounts money moves through.
#[derive(Clone)]
pub struct PartnerLink {
    pub adapter: Arc<dyn BillPartner>,
    pub purpose: String,
    pub suspense_account: String,
    pub settlement_account: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EngineConfig {
    /// Two digits in every hub serial, so several nodes sharing a journal never collide.
    #[serde(default)]
    pub node: u8,
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: i64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: i64,
    /// How long a repeat of an in-flight request waits for the first answer before it is told
    /// IN_DOUBT: longer than one core call plus one partner call.
    #[serde(default = "default_repeat_wait_ms")]
    pub repeat_wait_ms: u64,
}

fn default_repeat_wait_ms() -> u64 {
    30_000
}

fn default_backoff_initial_ms() -> i64 {
    10_000
}
fn default_backoff_max_ms() -> i64 {
    600_000
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node: 0,
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            repeat_wait_ms: default_repeat_wait_ms(),
        }
    }
}

/// A channel's request to pay a bill.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PayRequest {
    pub channel: String,
    pub channel_date: String,
    pub channel_serial: String,
    pub payee: String,
    pub instance: String,
    pub customer_no: String,
    pub payer_account: String,
    pub amount_fen: i64,
    pub total_due_fen: i64,
    pub branch_no: String,
    pub teller_no: String,
    /// The partner's own elements of the payment (see [`BillPartner::check_order`]).
    #[serde(default, skip_serializing_if = "PayFields::is_empty")]
    pub fields: PayFields,
}

/// What the channel is told. The first answer to a channel key is stored and returned again,
/// byte for byte, to every repeat.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelAnswer {
    /// SUCCEEDED, FAILED (nothing taken, or taken and given back) or IN_DOUBT.
    pub status: String,
    pub hub_serial: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acct_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepaid_fen: Option<i64>,
    pub amount_fen: i64,
}

/// A refusal before anything was journaled, or a problem of the hub itself.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{}: {detail}", .code.code())]
    Refused { code: ErrorCode, detail: String },
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
}

impl EngineError {
    fn bad(detail: impl Into<String>) -> EngineError {
        EngineError::Refused {
            code: ErrorCode::BadRequest,
            detail: detail.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Refused { code, .. } => *code,
            EngineError::Journal(_) => ErrorCode::Internal,
        }
    }
}

/// How a step of [`Engine::drive`] ended.
enum Step {
    /// Moved on; look at the row again.
    Continue,
    /// Waiting: retry later (already rescheduled) or nothing left to do.
    Stop,
}

pub struct Engine {
    journal: Journal,
    core: CoreClient,
    partners: HashMap<(String, String), PartnerLink>,
    clock: SharedClock,
    config: EngineConfig,
    /// Payments a task of this node is working on; the resolver leaves them alone.
    in_flight: Mutex<HashSet<String>>,
    wake: Notify,
}

/// Releases a payment from `in_flight` when the work on it ends, however it ends.
struct FlightGuard<'a> {
    engine: &'a Engine,
    serial: String,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.engine.in_flight.lock() {
            set.remove(&self.serial);
        }
    }
}

fn is_ascii_alnum(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Engine {
    pub fn new(
        journal: Journal,
        core: CoreClient,
        partners: Vec<PartnerLink>,
        clock: SharedClock,
        config: EngineConfig,
    ) -> Arc<Engine> {
        let partners = partners
            .into_iter()
            .map(|p| {
                (
                    (
                        p.adapter.payee().to_string(),
                        p.adapter.instance().to_string(),
                    ),
                    p,
                )
            })
            .collect();
        Arc::new(Engine {
            journal,
            core,
            partners,
            clock,
            config,
            in_flight: Mutex::new(HashSet::new()),
            wake: Notify::new(),
        })
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn core(&self) -> &CoreClient {
        &self.core
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn partners(&self) -> impl Iterator<Item = &PartnerLink> {
        self.partners.values()
    }

    pub fn partner(&self, payee: &str, instance: &str) -> Option<&PartnerLink> {
        self.partners
            .get(&(payee.to_string(), instance.to_string()))
    }

    /// Waits until some payment was left with a pending action (for the resolver).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    fn claim(&self, serial: &str) -> Option<FlightGuard<'_>> {
        let mut set = self.in_flight.lock().ok()?;
        if !set.insert(serial.to_string()) {
            return None;
        }
        Some(FlightGuard {
            engine: self,
            serial: serial.to_string(),
        })
    }

    fn context(&self, row: &PaymentRow, bank_serial: String, tx_date: NaiveDate) -> RequestContext {
        let now = self.clock.now();
        RequestContext {
            channel: Channel::from_code(&row.channel).unwrap_or(Channel::Counter),
            branch_no: row.branch_no.clone(),
            teller_no: row.teller_no.clone(),
            tx_date,
            tx_time: now.time(),
            bank_serial,
        }
    }

    fn backoff(&self, attempts: i64) -> NaiveDateTime {
        let shift = attempts.clamp(0, 20) as u32;
        let delay = self
            .config
            .backoff_initial_ms
            .saturating_mul(1i64 << shift)
            .min(self.config.backoff_max_ms)
            .max(0);
        self.clock.now() + Duration::milliseconds(delay)
    }

    /// Bill query: no money moves, nothing is journaled.
    pub async fn query(
        &self,
        payee: &str,
        instance: &str,
        customer_no: &str,
        channel: &str,
        branch_no: &str,
        teller_no: &str,
    ) -> Result<QueryOutcome, EngineError> {
        let link = self.partner(payee, instance).ok_or(EngineError::Refused {
            code: ErrorCode::UnknownPayee,
            detail: format!("{payee}/{instance}"),
        })?;
        let channel = Self::channel_of(link, channel)?;
        let customer_no = &link.adapter.canonical_customer_no(customer_no);
        let max = link.adapter.customer_no_max_len();
        if customer_no.len() > max || !is_ascii_alnum(customer_no) {
            return Err(EngineError::bad(format!(
                "customer_no must be 1..{max} letters or digits"
            )));
        }
        let now = self.clock.now();
        let serial = self
            .journal
            .next_serial(self.config.node, now.date(), link.adapter.bank_serial_len())
            .await?;
        let ctx = RequestContext {
            channel,
            branch_no: branch_no.to_string(),
            teller_no: teller_no.to_string(),
            tx_date: now.date(),
            tx_time: now.time(),
            bank_serial: serial,
        };
        link.adapter
            .query(&ctx, customer_no)
            .await
            .map_err(|e| match e {
                adapters::spi::AdapterError::InvalidInput { .. } => EngineError::bad(e.to_string()),
                _ => EngineError::Refused {
                    code: ErrorCode::PartnerUnavailable,
                    detail: e.to_string(),
                },
            })
    }

    /// A channel code the partner takes: 01–04, and 05 农信银 where its spec names it.
    fn channel_of(link: &PartnerLink, code: &str) -> Result<Channel, EngineError> {
        let channel = Channel::from_code(code).ok_or_else(|| EngineError::bad("channel"))?;
        if !link.adapter.accepts_channel(&channel) {
            return Err(EngineError::bad(format!(
                "channel {code} is not offered for {}",
                link.adapter.payee()
            )));
        }
        Ok(channel)
    }

    fn validate(&self, req: &PayRequest) -> Result<&PartnerLink, EngineError> {
        if Channel::from_code(&req.channel).is_none() {
            return Err(EngineError::bad("channel must be 01 to 05"));
        }
        if parse_yyyymmdd(&req.channel_date).is_none() {
            return Err(EngineError::bad("channel_date must be YYYYMMDD"));
        }
        if req.channel_serial.len() > 32 || !is_ascii_alnum(&req.channel_serial) {
            return Err(EngineError::bad(
                "channel_serial must be 1..32 letters or digits",
            ));
        }

        if req.payer_account.len() > 32
            || !req.payer_account.bytes().all(|b| b.is_ascii_digit())
            || req.payer_account.is_empty()
        {
            return Err(EngineError::bad("payer_account must be 1..32 digits"));
        }
        if req.amount_fen <= 0 || req.amount_fen > Money::MAX_FEN {
            return Err(EngineError::bad("amount_fen must be positive"));
        }
        if req.total_due_fen < 0 || req.total_due_fen > Money::MAX_FEN {
            return Err(EngineError::bad("total_due_fen must not be negative"));
        }
        if req.branch_no.len() != 6 || !req.branch_no.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EngineError::bad("branch_no must be 6 digits"));
        }
        let Some(link) = self.partner(&req.payee, &req.instance) else {
            return Err(EngineError::Refused {
                code: ErrorCode::UnknownPayee,
                detail: format!("{}/{}", req.payee, req.instance),
            });
        };
        Self::channel_of(link, &req.channel)?;
        let teller_max = link.adapter.teller_no_max_len();
        if req.teller_no.is_empty()
            || req.teller_no.len() > teller_max
            || !is_ascii_alnum(&req.teller_no)
        {
            return Err(EngineError::bad(format!(
                "teller_no must be 1..{teller_max} letters or digits"
            )));
        }
        // A channel pays from a customer's account, never from the bank's own accounts of any
        // partner (an internal account may run a debit balance, so the core would not stop it).
        let internal = self
            .partners
            .values()
            .chain(std::iter::once(link))
            .any(|p| {
                p.suspense_account == req.payer_account || p.settlement_account == req.payer_account
            });
        if internal {
            return Err(EngineError::Refused {
                code: ErrorCode::PayerNotAllowed,
                detail: "payer_account is an internal account of the hub".into(),
            });
        }
        // A partner without prepayment refuses a payment with nothing due: refuse it before
        // debiting anyone rather than debit and give back.
        if req.total_due_fen == 0 && !link.adapter.accepts_prepayment() {
            return Err(EngineError::Refused {
                code: ErrorCode::PartnerNothingDue,
                detail: format!("{} takes no prepayment", req.instance),
            });
        }
        let max = link.adapter.customer_no_max_len();
        if req.customer_no.len() > max || !is_ascii_alnum(&req.customer_no) {
            return Err(EngineError::bad(format!(
                "customer_no must be 1..{max} letters or digits"
            )));
        }
        // The partner's own elements (an ID number, a package): bad input never reaches the core.
        link.adapter
            .check_order(&Self::order_of(req))
            .map_err(|e| EngineError::bad(e.to_string()))?;
        // Some partners refuse new payments around their day-end: refuse before debiting.
        if !link.adapter.accepts_payments_at(self.clock.now().time()) {
            return Err(EngineError::Refused {
                code: ErrorCode::PartnerDayEnd,
                detail: format!("{} is in its day-end", req.instance),
            });
        }
        Ok(link)
    }

    fn order_of(req: &PayRequest) -> PayOrder {
        PayOrder {
            customer_no: req.customer_no.clone(),
            pay_amount: Money::from_fen(req.amount_fen),
            total_due: Money::from_fen(req.total_due_fen),
            payer_account: req.payer_account.clone(),
            fields: req.fields.clone(),
        }
    }

    fn request_hash(req: &PayRequest) -> String {
        // The channel key is excluded: the hash says whether a repeat carries the same payment.
        // Fields join the hash only when present, so hashes of earlier payments stay valid.
        let mut canonical = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}",
            req.payee,
            req.instance,
            req.customer_no,
            req.payer_account,
            req.amount_fen,
            req.total_due_fen,
            req.branch_no,
            req.teller_no,
            req.channel
        );
        for (name, value) in &req.fields {
            canonical.push_str(&format!("|{name}={value}"));
        }
        hex::encode(Sm3::digest(canonical.as_bytes()))
    }

    /// Pays a bill: the whole channel flow. Returns the answer for the channel; a repeat of a
    /// channel key returns the first answer and moves no money.
    pub async fn pay(&self, req: &PayRequest) -> Result<ChannelAnswer, EngineError> {
        let canonical;
        let req = match self.partner(&req.payee, &req.instance) {
            Some(link) => {
                let customer_no = link.adapter.canonical_customer_no(&req.customer_no);
                if customer_no == req.customer_no {
                    req
                } else {
                    canonical = PayRequest {
                        customer_no,
                        ..req.clone()
                    };
                    &canonical
                }
            }
            None => req,
        };
        let link = self.validate(req)?;
        let hash = Self::request_hash(req);
        let now = self.clock.now();
        let serial = self
            .journal
            .next_serial(self.config.node, now.date(), link.adapter.bank_serial_len())
            .await?;
        let new = NewPayment {
            hub_serial: serial.clone(),
            channel: req.channel.clone(),
            channel_date: req.channel_date.clone(),
            channel_serial: req.channel_serial.clone(),
            request_hash: hash.clone(),
            payee: req.payee.clone(),
            instance: req.instance.clone(),
            customer_no: req.customer_no.clone(),
            payer_account: req.payer_account.clone(),
            amount: Money::from_fen(req.amount_fen),
            total_due: Money::from_fen(req.total_due_fen),
            branch_no: req.branch_no.clone(),
            teller_no: req.teller_no.clone(),
            tx_date: now.date(),
            tx_time: now.format("%H%M%S").to_string(),
            fields: req.fields.clone(),
            now,
        };
        match self.journal.insert_payment(&new).await? {
            Inserted::Existing(first) => {
                if first.request_hash != hash {
                    return Err(EngineError::Refused {
                        code: ErrorCode::DuplicateMismatch,
                        detail: format!(
                            "channel serial {} was used for another payment",
                            req.channel_serial
                        ),
                    });
                }
                tracing::info!(hub_serial = %first.hub_serial, "Repeated channel serial: first answer returned.");
                return self.first_answer(*first).await;
            }
            Inserted::New => {}
        }
        let Some(_guard) = self.claim(&serial) else {
            return Err(EngineError::Refused {
                code: ErrorCode::Internal,
                detail: "serial in use".into(),
            });
        };
        let answer = self.run_payment(&serial).await?;
        let text = serde_json::to_string(&answer).unwrap_or_default();
        self.journal.set_first_answer(&serial, &text).await?;
        Ok(answer)
    }

    /// The answer the first request with this channel key got. When that request is still in
    /// flight, waits (bounded) for it, so that a concurrent repeat gets the same answer.
    async fn first_answer(&self, first: PaymentRow) -> Result<ChannelAnswer, EngineError> {
        let wait = tokio::time::Duration::from_millis(self.config.repeat_wait_ms);
        let deadline = tokio::time::Instant::now() + wait;
        let mut row = first;
        loop {
            let stored = row
                .first_answer
                .as_deref()
                .map(serde_json::from_str::<ChannelAnswer>);
            if let Some(Ok(answer)) = stored {
                return Ok(answer);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(in_doubt(&row));
            }
            tokio::time::sleep(tokio::time::Duration::from_millis(20)).await;
            row = self.load(&row.hub_serial).await?;
        }
    }

    async fn load(&self, serial: &str) -> Result<PaymentRow, EngineError> {
        self.journal.get(serial).await?.ok_or(EngineError::Refused {
            code: ErrorCode::NotFound,
            detail: serial.to_string(),
        })
    }

    async fn run_payment(&self, serial: &str) -> Result<ChannelAnswer, EngineError> {
        let row = self.load(serial).await?;
        let link = self
            .partner(&row.payee, &row.instance)
            .ok_or(EngineError::Refused {
                code: ErrorCode::UnknownPayee,
                detail: row.payee.clone(),
            })?;
        if let Some(answer) = self.check_before_debit(&row, link).await? {
            return Ok(answer);
        }
        if let Some(answer) = self.debit(&row, link).await? {
            return Ok(answer);
        }
        let row = self.load(serial).await?;
        self.write_off(&row, link).await
    }

    fn row_order(row: &PaymentRow) -> PayOrder {
        PayOrder {
            customer_no: row.customer_no.clone(),
            pay_amount: row.amount,
            total_due: row.total_due,
            payer_account: row.payer_account.clone(),
            fields: row.fields.clone(),
        }
    }

    /// Step 0: the partner's checks against fresh data, or its hold, before any money moves.
    /// A refusal ends the payment with nothing debited.
    async fn check_before_debit(
        &self,
        row: &PaymentRow,
        link: &PartnerLink,
    ) -> Result<Option<ChannelAnswer>, EngineError> {
        let ctx = self.context(row, row.hub_serial.clone(), row.tx_date);
        let Err(reply) = link.adapter.before_debit(&ctx, &Self::row_order(row)).await else {
            return Ok(None);
        };
        tracing::info!(hub_serial = %row.hub_serial, partner_code = %reply.code, "Partner check refused the payment before the debit; nothing moved.");
        let change = Change {
            state: Some(PaymentState::CoreFailed),
            last_error: Some(format!("{} {}", reply.code, reply.message)),
            note: format!("refused before the debit: {}", reply.code),
            ..Change::default()
        };
        self.journal
            .transition(
                &row.hub_serial,
                PaymentState::Accepted,
                NextAction::None,
                &change,
                self.clock.now(),
            )
            .await?;
        let code = match reply.code.as_str() {
            "CONNECT" | "ADP_TIMEOUT" | "ADP_TRANSPORT" | "ADP_GARBLED" => {
                ErrorCode::PartnerUnavailable
            }
            other => ErrorCode::from_partner(link.adapter.refusal_reason(other), other),
        };
        Ok(Some(failed(row, code, Some(reply.code))))
    }

    /// Step 1: the core 8002 from the payer to the suspense account. `Some(answer)` when the flow
    /// ends here (refused or in doubt).
    async fn debit(
        &self,
        row: &PaymentRow,
        link: &PartnerLink,
    ) -> Result<Option<ChannelAnswer>, EngineError> {
        let summary = link.adapter.order_summary(&Self::row_order(row));
        let outcome = self
            .core
            .transfer(
                &row.hub_serial,
                row.tx_date,
                &row.payer_account,
                &link.suspense_account,
                row.amount,
                &summary,
                &link.purpose,
            )
            .await;
        let now = self.clock.now();
        match outcome {
            TransferOutcome::Posted {
                core_seq_no,
                core_date,
            } => {
                let change = Change {
                    state: Some(PaymentState::CoreDebited),
                    core_seq_no: Some(core_seq_no),
                    core_date: Some(core_date),
                    note: "core 8002 posted".into(),
                    ..Change::default()
                };
                self.journal
                    .transition(
                        &row.hub_serial,
                        PaymentState::Accepted,
                        NextAction::None,
                        &change,
                        now,
                    )
                    .await?;
                Ok(None)
            }
            TransferOutcome::Refused {
                ret_code,
                ret_msg,
                err_side,
            } => {
                tracing::warn!(hub_serial = %row.hub_serial, ret_code = %ret_code, err_side = %err_side, "Core refused the debit; nothing moved.");
                let change = Change {
                    state: Some(PaymentState::CoreFailed),
                    last_error: Some(format!("{ret_code} {ret_msg} {err_side}")),
                    note: format!("core refused 8002: {ret_code}"),
                    ..Change::default()
                };
                self.journal
                    .transition(
                        &row.hub_serial,
                        PaymentState::Accepted,
                        NextAction::None,
                        &change,
                        now,
                    )
                    .await?;
                self.release_if_unwritten(row, PaymentState::CoreFailed)
                    .await;
                let code = ErrorCode::from_core(&ret_code);
                Ok(Some(failed(row, code, None)))
            }
            TransferOutcome::Unknown { reason } => {
                tracing::warn!(hub_serial = %row.hub_serial, reason = %reason, "Core 8002 outcome unknown; 8004 will resolve it.");
                let change = Change {
                    state: Some(PaymentState::CoreUnknown),
                    next_action: Some(NextAction::CoreStatus),
                    next_attempt_at: Some(Some(now)),
                    last_error: Some(reason),
                    note: "core 8002 outcome unknown".into(),
                    ..Change::default()
                };
                self.journal
                    .transition(
                        &row.hub_serial,
                        PaymentState::Accepted,
                        NextAction::None,
                        &change,
                        now,
                    )
                    .await?;
                self.wake.notify_one();
                Ok(Some(in_doubt(row)))
            }
        }
    }

    /// Step 2: the partner's write-off (1002). Never re-sent: an unknown outcome is resolved by
    /// the partner's reversal (1003) and status query (1004).
    async fn write_off(
        &self,
        row: &PaymentRow,
        link: &PartnerLink,
    ) -> Result<ChannelAnswer, EngineError> {
        let mut ctx = self.context(row, row.hub_serial.clone(), row.tx_date);
        if link.adapter.unknown_resolution() == UnknownResolution::AskStatus {
            // The partner's status rule counts from the original's request time (medical: a
            // "not found" is final 330 s after reqTime): send the time the journal holds for it.
            if let Ok(time) = chrono::NaiveTime::parse_from_str(&row.tx_time, "%H%M%S") {
                ctx.tx_time = time;
            }
        }
        let order = Self::row_order(row);
        let outcome = link.adapter.pay(&ctx, &order).await;
        let now = self.clock.now();
        match outcome {
            PayOutcome::Paid {
                partner_serial,
                acct_date,
                prepaid,
            } => {
                let change = Change {
                    state: Some(PaymentState::Succeeded),
                    partner_serial: Some(partner_serial.clone()),
                    acct_date: Some(acct_date),
                    prepaid: Some(prepaid),
                    note: "partner wrote off".into(),
                    ..Change::default()
                };
                self.journal
                    .transition(
                        &row.hub_serial,
                        PaymentState::CoreDebited,
                        NextAction::None,
                        &change,
                        now,
                    )
                    .await?;
                Ok(ChannelAnswer {
                    status: "SUCCEEDED".into(),
                    hub_serial: row.hub_serial.clone(),
                    code: None,
                    message: Some("缴费成功".into()),
                    partner_code: None,
                    partner_serial: Some(partner_serial),
                    acct_date: Some(codecs::clock::yyyymmdd(acct_date)),
                    prepaid_fen: Some(prepaid.fen()),
                    amount_fen: row.amount.fen(),
                })
            }
            PayOutcome::Refused(reply) => {
                tracing::info!(hub_serial = %row.hub_serial, partner_code = %reply.code, "Partner refused the write-off; reversing the debit.");
                let change = Change {
                    state: Some(PaymentState::PartnerFailed),
                    next_action: Some(NextAction::CoreReversal),
                    next_attempt_at: Some(Some(now)),
                    last_error: Some(format!("{} {}", reply.code, reply.message)),
                    reversal_reason: Some(format!("partner refused {}", reply.code)),
                    note: format!("partner refused 1002: {}", reply.code),
                    ..Change::default()
                };
                self.journal
                    .transition(
                        &row.hub_serial,
                        PaymentState::CoreDebited,
                        NextAction::None,
                        &change,
                        now,
                    )
                    .await?;
                // The money goes back now if the core answers; otherwise the resolver retries.
                self.drive_claimed(&row.hub_serial).await?;
                let reason = link.adapter.refusal_reason(&reply.code);
                Ok(failed(
                    row,
                    ErrorCode::from_partner(reason, &reply.code),
                    Some(reply.code),
                ))
            }
            PayOutcome::Unknown { reason } => {
                let (action, at) = self.resolution_of(link.adapter.as_ref(), now);
                tracing::warn!(hub_serial = %row.hub_serial, reason = %reason, action = action.as_str(), "Write-off outcome unknown.");
                let change = Change {
                    state: Some(PaymentState::PartnerUnknown),
                    next_action: Some(action),
                    next_attempt_at: Some(Some(at)),
                    last_error: Some(reason),
                    reversal_reason: Some("write-off outcome unknown".into()),
                    note: "partner payment outcome unknown".into(),
                    ..Change::default()
                };
                self.journal
                    .transition(
                        &row.hub_serial,
                        PaymentState::CoreDebited,
                        NextAction::None,
                        &change,
                        now,
                    )
                    .await?;
                self.wake.notify_one();
                Ok(in_doubt(row))
            }
        }
    }

    /// The first step that resolves an unknown write-off, and when, as the partner's spec says.
    fn resolution_of(
        &self,
        adapter: &dyn BillPartner,
        now: NaiveDateTime,
    ) -> (NextAction, NaiveDateTime) {
        match adapter.unknown_resolution() {
            UnknownResolution::Reverse => (NextAction::PartnerReversal, now),
            UnknownResolution::AskStatus => (
                NextAction::PartnerStatus,
                now + adapter.status_retry_after(0).unwrap_or_else(Duration::zero),
            ),
        }
    }

    /// 撤销 of a completed payment on the customer's request, where the partner has one: the
    /// partner's cancel, then the core reversal; ends CANCELLED. `authorized_by` is the teller
    /// who authorised it (counter-only partners require one other than the payment's teller).
    pub async fn request_cancel(
        &self,
        serial: &str,
        reason: &str,
        authorized_by: &str,
    ) -> Result<ChannelAnswer, EngineError> {
        let row = self.load(serial).await?;
        let not_allowed = |code: ErrorCode, detail: &str| EngineError::Refused {
            code,
            detail: detail.to_string(),
        };
        let link = self
            .partner(&row.payee, &row.instance)
            .ok_or(EngineError::Refused {
                code: ErrorCode::UnknownPayee,
                detail: row.payee.clone(),
            })?;
        if !link.adapter.supports_cancel() {
            return Err(not_allowed(
                ErrorCode::CancelNotAllowed,
                "this payee has no cancel",
            ));
        }
        if link.adapter.cancel_counter_only() {
            if row.channel != Channel::Counter.code() {
                return Err(not_allowed(
                    ErrorCode::CancelNotAllowed,
                    "only counter payments are cancelled",
                ));
            }
            if authorized_by.is_empty() || authorized_by == row.teller_no {
                return Err(not_allowed(
                    ErrorCode::CancelNotAllowed,
                    "a cancel needs an authorising teller other than the payment's",
                ));
            }
        }
        match row.state {
            PaymentState::Succeeded => {}
            PaymentState::Cancelled => return Ok(cancelled_answer(&row)),
            _ => {
                return Err(not_allowed(
                    ErrorCode::CancelNotAllowed,
                    row.state.label_zh(),
                ))
            }
        }
        let now = self.clock.now();
        // Same day only: the partner's accounting date of the payment must be today's (specs 03
        // and 04 say AcctDate, so a payment of 23:59:58 booked on D+1 is cancellable on D+1); the
        // journal's date stands in where the partner gave none.
        if row.acct_date.unwrap_or(row.tx_date) != now.date() {
            return Err(not_allowed(
                ErrorCode::CancelTooLate,
                "not a payment of today",
            ));
        }
        if !link.adapter.accepts_cancel_at(now.time()) {
            return Err(not_allowed(
                ErrorCode::CancelTooLate,
                "past the cancel cut-off",
            ));
        }
        let Some(guard) = self.claim(serial) else {
            return Ok(in_doubt(&row));
        };
        let change = Change {
            state: Some(PaymentState::CancelRequested),
            next_action: Some(NextAction::PartnerCancel),
            next_attempt_at: Some(Some(now)),
            reset_attempts: true,
            reversal_reason: Some(format!("channel cancel by {authorized_by}: {reason}")),
            note: "撤销 requested by channel".into(),
            ..Change::default()
        };
        if !self
            .journal
            .transition(
                serial,
                PaymentState::Succeeded,
                NextAction::None,
                &change,
                now,
            )
            .await?
        {
            return Ok(in_doubt(&row));
        }
        self.drive_claimed(serial).await?;
        drop(guard);
        let row = self.load(serial).await?;
        Ok(match row.state {
            PaymentState::Cancelled => cancelled_answer(&row),
            PaymentState::Succeeded => {
                let code = match row.last_error.as_deref() {
                    Some(e) if e.starts_with("MISMATCH") => ErrorCode::CancelMismatch,
                    Some(e) if e.starts_with("TOO_LATE") => ErrorCode::CancelTooLate,
                    _ => ErrorCode::CancelNotAllowed,
                };
                let partner_code = row
                    .last_error
                    .as_deref()
                    .and_then(|e| e.split_whitespace().next())
                    .map(str::to_string);
                failed(&row, code, partner_code)
            }
            _ => in_doubt(&row),
        })
    }

    /// 冲正 of a completed counter payment on the channel's request (same accounting date).
    pub async fn request_reversal(
        &self,
        serial: &str,
        reason: &str,
    ) -> Result<ChannelAnswer, EngineError> {
        let row = self.load(serial).await?;
        let not_allowed = |detail: &str| EngineError::Refused {
            code: ErrorCode::ReversalNotAllowed,
            detail: detail.to_string(),
        };
        if row.channel != Channel::Counter.code() {
            return Err(not_allowed("only counter payments are reversed on request"));
        }
        // A partner with a 撤销 of its own (medical 2002, teller-authorised) has no 冲正.
        if self
            .partner(&row.payee, &row.instance)
            .is_some_and(|link| link.adapter.supports_cancel())
        {
            return Err(not_allowed(
                "this payee undoes payments by cancel, not reversal",
            ));
        }
        match row.state {
            PaymentState::Succeeded => {}
            PaymentState::Reversed => return Ok(reversed_answer(&row)),
            _ => return Err(not_allowed(row.state.label_zh())),
        }
        let Some(guard) = self.claim(serial) else {
            return Ok(in_doubt(&row));
        };
        let now = self.clock.now();
        let change = Change {
            state: Some(PaymentState::ReversalRequested),
            next_action: Some(NextAction::PartnerReversal),
            next_attempt_at: Some(Some(now)),
            reset_attempts: true,
            reversal_reason: Some(format!("channel request: {reason}")),
            note: "冲正 requested by channel".into(),
            ..Change::default()
        };
        if !self
            .journal
            .transition(
                serial,
                PaymentState::Succeeded,
                NextAction::None,
                &change,
                now,
            )
            .await?
        {
            return Ok(in_doubt(&row));
        }
        self.drive_claimed(serial).await?;
        drop(guard);
        let row = self.load(serial).await?;
        Ok(match row.state {
            PaymentState::Reversed => reversed_answer(&row),
            PaymentState::Succeeded => {
                let code = match row.last_error.as_deref() {
                    Some(e) if e.starts_with("2004") => ErrorCode::ReversalMismatch,
                    _ => ErrorCode::ReversalTooLate,
                };
                failed(&row, code, None)
            }
            _ => in_doubt(&row),
        })
    }

    /// Works off a payment's pending actions for as long as answers come; the resolver's entry.
    pub async fn drive(&self, serial: &str) -> Result<(), EngineError> {
        let Some(_guard) = self.claim(serial) else {
            return Ok(());
        };
        self.drive_claimed(serial).await
    }

    async fn drive_claimed(&self, serial: &str) -> Result<(), EngineError> {
        // Each step either changes the row's (state, next_action) or stops: bounded.
        for _ in 0..8 {
            let row = self.load(serial).await?;
            match self.step(&row).await? {
                Step::Continue => continue,
                Step::Stop => break,
            }
        }
        Ok(())
    }

    async fn reschedule(&self, row: &PaymentRow, error: String) -> Result<Step, EngineError> {
        let now = self.clock.now();
        tracing::warn!(
            hub_serial = %row.hub_serial,
            action = row.next_action.as_str(),
            attempt = row.attempts + 1,
            error = %error,
            "Pending action got no answer; retrying with backoff."
        );
        let change = Change {
            next_attempt_at: Some(Some(self.backoff(row.attempts))),
            bump_attempts: true,
            last_error: Some(error),
            note: format!("{} retry {}", row.next_action.as_str(), row.attempts + 1),
            ..Change::default()
        };
        self.journal
            .transition(&row.hub_serial, row.state, row.next_action, &change, now)
            .await?;
        Ok(Step::Stop)
    }

    async fn apply(&self, row: &PaymentRow, change: Change) -> Result<Step, EngineError> {
        let moved = self
            .journal
            .transition(
                &row.hub_serial,
                row.state,
                row.next_action,
                &change,
                self.clock.now(),
            )
            .await?;
        if moved {
            if let Some(state) = change.state {
                self.release_if_unwritten(row, state).await;
            }
        }
        Ok(if moved { Step::Continue } else { Step::Stop })
    }

    /// A payment that ends with its money back at the payer (or never taken) gives the partner's
    /// hold back. After the journal transition: a crash before this call leaves the hold to the
    /// partner's own repair, never a hold on a payment that may still succeed.
    async fn release_if_unwritten(&self, row: &PaymentRow, state: PaymentState) {
        if !matches!(state, PaymentState::CoreFailed | PaymentState::Reversed) {
            return;
        }
        if let Some(link) = self.partner(&row.payee, &row.instance) {
            let ctx = self.context(row, row.hub_serial.clone(), row.tx_date);
            link.adapter.release_hold(&ctx, &Self::row_order(row)).await;
        }
    }

    async fn step(&self, row: &PaymentRow) -> Result<Step, EngineError> {
        match row.next_action {
            NextAction::None | NextAction::Operator => Ok(Step::Stop),
            NextAction::CoreStatus => self.step_core_status(row).await,
            NextAction::CoreReversal => self.step_core_reversal(row).await,
            NextAction::PartnerReversal => self.step_partner_reversal(row).await,
            NextAction::PartnerStatus => self.step_partner_status(row).await,
            NextAction::PartnerCancel => self.step_partner_cancel(row).await,
        }
    }

    async fn step_core_status(&self, row: &PaymentRow) -> Result<Step, EngineError> {
        let today = self.clock.today();
        let query_seq = format!("{}Q{}", row.hub_serial, row.attempts);
        match self
            .core
            .status(&query_seq, today, &row.hub_serial, row.tx_date)
            .await
        {
            // Posted: the channel was already told the outcome is unknown, so the debit is
            // reversed (DESIGN.md: channel flows of 01 reverse).
            CoreStatusOutcome::Posted {
                core_seq_no,
                core_date,
            } if self.writes_off_late_debit(row) => {
                let step = self
                    .apply(
                        row,
                        Change {
                            state: Some(PaymentState::CoreDebited),
                            next_action: Some(NextAction::None),
                            next_attempt_at: Some(None),
                            reset_attempts: true,
                            core_seq_no: Some(core_seq_no).filter(|s| !s.is_empty()),
                            core_date,
                            note: "8004: S, write-off follows".into(),
                            ..Change::default()
                        },
                    )
                    .await?;
                if matches!(step, Step::Stop) {
                    return Ok(Step::Stop);
                }
                let row = self.load(&row.hub_serial).await?;
                if let Some(link) = self.partner(&row.payee, &row.instance) {
                    // The channel was told "unknown" already; it learns the end by its status query.
                    let _ = Box::pin(self.write_off(&row, link)).await?;
                }
                Ok(Step::Continue)
            }
            CoreStatusOutcome::Posted {
                core_seq_no,
                core_date,
            } => {
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::CoreReversal),
                        next_attempt_at: Some(Some(self.clock.now())),
                        reset_attempts: true,
                        core_seq_no: Some(core_seq_no).filter(|s| !s.is_empty()),
                        core_date,
                        reversal_reason: Some("core posted after the channel was answered".into()),
                        note: "8004: S".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            CoreStatusOutcome::Reversed => {
                self.apply(
                    row,
                    Change {
                        state: Some(PaymentState::CoreFailed),
                        next_action: Some(NextAction::None),
                        next_attempt_at: Some(None),
                        note: "8004: R".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            // Not found: fence the key with an 8003 so a late 8002 can never post.
            CoreStatusOutcome::NotFound => {
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::CoreReversal),
                        next_attempt_at: Some(Some(self.clock.now())),
                        reset_attempts: true,
                        note: "8004: N, fencing".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            CoreStatusOutcome::Unknown { reason } => self.reschedule(row, reason).await,
        }
    }

    async fn step_core_reversal(&self, row: &PaymentRow) -> Result<Step, EngineError> {
        // The reversal's SeqNo and TranDate are fixed at the first attempt and journaled before
        // it is sent, so every retry is the same 8003.
        let (seq, tran_date) = match (&row.reversal_seq_no, row.reversal_tran_date) {
            (Some(seq), Some(date)) => (seq.clone(), date),
            _ => {
                let seq = format!("{}R", row.hub_serial);
                let date = self.clock.today();
                return self
                    .apply(
                        row,
                        Change {
                            reversal_seq_no: Some(seq),
                            reversal_tran_date: Some(date),
                            note: "8003 prepared".into(),
                            ..Change::default()
                        },
                    )
                    .await;
            }
        };
        match self
            .core
            .reverse(&seq, tran_date, &row.hub_serial, row.tx_date)
            .await
        {
            CoreReversalOutcome::Reversed {
                ret_code,
                core_seq_no,
                core_date,
            } => {
                // E20001 after an unknown 8002 means nothing ever posted: the payment failed.
                let never_posted = row.state == PaymentState::CoreUnknown && ret_code == "E20001";
                let state = if never_posted {
                    PaymentState::CoreFailed
                } else if row.state == PaymentState::CancelRequested {
                    PaymentState::Cancelled
                } else {
                    PaymentState::Reversed
                };
                self.apply(
                    row,
                    Change {
                        state: Some(state),
                        next_action: Some(NextAction::None),
                        next_attempt_at: Some(None),
                        reversal_core_seq_no: core_seq_no,
                        reversal_core_date: core_date,
                        note: format!("8003: {ret_code}"),
                        ..Change::default()
                    },
                )
                .await
            }
            CoreReversalOutcome::Refused { ret_code, ret_msg } => {
                tracing::error!(hub_serial = %row.hub_serial, ret_code = %ret_code, "Core refused the reversal; an operator must resolve it.");
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::Operator),
                        next_attempt_at: Some(None),
                        last_error: Some(format!("{ret_code} {ret_msg}")),
                        note: "8003 refused".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            CoreReversalOutcome::Unknown { reason } => self.reschedule(row, reason).await,
        }
    }

    fn original(row: &PaymentRow) -> OriginalRef {
        OriginalRef {
            bank_serial: row.hub_serial.clone(),
            tx_date: row.tx_date,
            customer_no: row.customer_no.clone(),
            amount: row.amount,
            total_due: row.total_due,
            tx_time: chrono::NaiveTime::parse_from_str(&row.tx_time, "%H%M%S").unwrap_or_default(),
            fields: row.fields.clone(),
        }
    }

    /// The serial of the partner's reversal or cancel: fixed and journaled before the first
    /// attempt (`Err(step)` is that journal write), so every retry is the same request, unless
    /// the partner takes a re-send only under a new one.
    async fn reversal_serial(
        &self,
        row: &PaymentRow,
        link: &PartnerLink,
    ) -> Result<Result<RequestContext, Step>, EngineError> {
        if let (Some(s), Some(d)) = (&row.partner_reversal_serial, row.partner_reversal_date) {
            // Specs 01, 02 and 04 re-send the reversal as the same frame: the first send's
            // TxTime too, or the partner sees other content under the serial (093/06).
            let mut ctx = self.context(row, s.clone(), d);
            if let Some(time) = row.partner_reversal_time {
                ctx.tx_time = time;
            }
            return Ok(Ok(ctx));
        }
        let now = self.clock.now();
        let today = now.date();
        let serial = self
            .journal
            .next_serial(self.config.node, today, link.adapter.bank_serial_len())
            .await?;
        let step = self
            .apply(
                row,
                Change {
                    partner_reversal_serial: Some(serial),
                    partner_reversal_date: Some(today),
                    partner_reversal_time: Some(
                        now.time().with_nanosecond(0).unwrap_or(now.time()),
                    ),
                    note: format!("{} prepared", row.next_action.as_str()),
                    ..Change::default()
                },
            )
            .await?;
        Ok(Err(step))
    }

    /// A reversal or cancel without an answer: retried with backoff, under a new serial where
    /// the partner wants one.
    async fn retry_reversal(
        &self,
        row: &PaymentRow,
        link: &PartnerLink,
        error: String,
    ) -> Result<Step, EngineError> {
        if link.adapter.resend_reversal_with_new_serial() {
            let change = Change {
                next_attempt_at: Some(Some(self.backoff(row.attempts))),
                bump_attempts: true,
                last_error: Some(error),
                clear_partner_reversal_serial: true,
                note: format!(
                    "{} retry {} (new serial)",
                    row.next_action.as_str(),
                    row.attempts + 1
                ),
                ..Change::default()
            };
            self.apply(row, change).await?;
            return Ok(Step::Stop);
        }
        if let Some(wait) = link.adapter.reversal_retry_after(row.attempts) {
            tracing::warn!(hub_serial = %row.hub_serial, attempt = row.attempts + 1, error = %error, "Reversal got no answer; re-sending on the partner's schedule.");
            let change = Change {
                next_attempt_at: Some(Some(self.clock.now() + wait)),
                bump_attempts: true,
                last_error: Some(error),
                note: format!("{} retry {}", row.next_action.as_str(), row.attempts + 1),
                ..Change::default()
            };
            self.apply(row, change).await?;
            return Ok(Step::Stop);
        }
        self.reschedule(row, error).await
    }

    fn to_operator(&self, error: String, note: &str) -> Change {
        Change {
            next_action: Some(NextAction::Operator),
            next_attempt_at: Some(None),
            last_error: Some(error),
            note: note.to_string(),
            ..Change::default()
        }
    }

    /// The partner's 撤销 of a completed payment: "cancelled" answers lead to the core reversal
    /// (ending CANCELLED); a definite refusal puts the payment back to SUCCEEDED with the reason.
    async fn step_partner_cancel(&self, row: &PaymentRow) -> Result<Step, EngineError> {
        let Some(link) = self.partner(&row.payee, &row.instance) else {
            return self
                .reschedule(row, "partner no longer configured".into())
                .await;
        };
        let ctx = match self.reversal_serial(row, link).await? {
            Ok(ctx) => ctx,
            Err(step) => return Ok(step),
        };
        let outcome = link.adapter.cancel(&ctx, &Self::original(row)).await;
        let now = self.clock.now();
        // A definite refusal spends the cancel's serial: a later cancel of the same payment is a
        // new request (cable TV answers a repeated serial with its first answer).
        let back_to_succeeded = |error: String, note: &str| Change {
            state: Some(PaymentState::Succeeded),
            next_action: Some(NextAction::None),
            next_attempt_at: Some(None),
            clear_partner_reversal_serial: true,
            last_error: Some(error),
            note: note.to_string(),
            ..Change::default()
        };
        match outcome {
            ReversalOutcome::Reversed
            | ReversalOutcome::OriginalNotFound
            | ReversalOutcome::AlreadyReversed => {
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::CoreReversal),
                        next_attempt_at: Some(Some(now)),
                        reset_attempts: true,
                        note: "partner cancelled".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            ReversalOutcome::TooLate => {
                self.apply(
                    row,
                    back_to_succeeded("TOO_LATE 超过撤销时限".into(), "cancel refused: too late"),
                )
                .await
            }
            ReversalOutcome::Mismatch => {
                self.apply(
                    row,
                    back_to_succeeded("MISMATCH 原交易信息不符".into(), "cancel refused: mismatch"),
                )
                .await
            }
            ReversalOutcome::Refused(reply) => {
                self.apply(
                    row,
                    back_to_succeeded(
                        format!("{} {}", reply.code, reply.message),
                        "cancel refused",
                    ),
                )
                .await
            }
            ReversalOutcome::NeedsOperator(reply) => {
                tracing::error!(hub_serial = %row.hub_serial, partner_code = %reply.code, "Cancel answer needs an operator.");
                self.apply(
                    row,
                    self.to_operator(
                        format!("{} {}", reply.code, reply.message),
                        "cancel: operator",
                    ),
                )
                .await
            }
            ReversalOutcome::Unknown { reason } => self.retry_reversal(row, link, reason).await,
        }
    }

    async fn step_partner_reversal(&self, row: &PaymentRow) -> Result<Step, EngineError> {
        let Some(link) = self.partner(&row.payee, &row.instance) else {
            return self
                .reschedule(row, "partner no longer configured".into())
                .await;
        };
        let ctx = match self.reversal_serial(row, link).await? {
            Ok(ctx) => ctx,
            Err(step) => return Ok(step),
        };
        let outcome = link.adapter.reverse(&ctx, &Self::original(row)).await;
        let now = self.clock.now();
        let to_core_reversal = |note: &str| Change {
            next_action: Some(NextAction::CoreReversal),
            next_attempt_at: Some(Some(now)),
            reset_attempts: true,
            note: note.to_string(),
            ..Change::default()
        };
        match outcome {
            ReversalOutcome::Reversed => {
                self.apply(row, to_core_reversal("partner reversal: reversed"))
                    .await
            }
            ReversalOutcome::OriginalNotFound => {
                self.apply(
                    row,
                    to_core_reversal("partner reversal: original not found, nothing written off"),
                )
                .await
            }
            ReversalOutcome::AlreadyReversed => {
                self.apply(row, to_core_reversal("partner reversal: already reversed"))
                    .await
            }
            ReversalOutcome::TooLate => {
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::PartnerStatus),
                        next_attempt_at: Some(Some(now)),
                        reset_attempts: true,
                        last_error: Some("冲正超过收费单位时限 reversal too late".into()),
                        note: "partner reversal: too late for the partner's day, asking status"
                            .into(),
                        ..Change::default()
                    },
                )
                .await
            }
            ReversalOutcome::Mismatch => {
                // Our own 1003 carries the original's elements; a mismatch means the partner
                // knows the serial differently. 1004 tells what it holds.
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::PartnerStatus),
                        next_attempt_at: Some(Some(now)),
                        reset_attempts: true,
                        last_error: Some("原交易要素不符 original elements differ".into()),
                        note: "partner reversal: elements differ, asking status".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            ReversalOutcome::Refused(reply) => {
                self.retry_reversal(
                    row,
                    link,
                    format!("partner reversal refused {} {}", reply.code, reply.message),
                )
                .await
            }
            ReversalOutcome::NeedsOperator(reply) => {
                tracing::error!(hub_serial = %row.hub_serial, partner_code = %reply.code, "Reversal answer needs an operator; no core reversal until resolved.");
                self.apply(
                    row,
                    self.to_operator(
                        format!("{} {}", reply.code, reply.message),
                        "reversal: operator",
                    ),
                )
                .await
            }
            ReversalOutcome::Unknown { reason } => self.retry_reversal(row, link, reason).await,
        }
    }

    async fn step_partner_status(&self, row: &PaymentRow) -> Result<Step, EngineError> {
        let Some(link) = self.partner(&row.payee, &row.instance) else {
            return self
                .reschedule(row, "partner no longer configured".into())
                .await;
        };
        let today = self.clock.today();
        let serial = self
            .journal
            .next_serial(self.config.node, today, link.adapter.bank_serial_len())
            .await?;
        let ctx = self.context(row, serial, today);
        match link.adapter.status(&ctx, &Self::original(row)).await {
            StatusOutcome::WrittenOff {
                partner_serial,
                acct_date,
                amount,
            } => {
                if amount != row.amount {
                    tracing::error!(hub_serial = %row.hub_serial, "Partner holds a different amount; an operator must resolve it.");
                    return self
                        .apply(
                            row,
                            Change {
                                next_action: Some(NextAction::Operator),
                                next_attempt_at: Some(None),
                                last_error: Some(format!(
                                    "partner status amount {} differs",
                                    amount.fen()
                                )),
                                note: "partner status: amount differs".into(),
                                ..Change::default()
                            },
                        )
                        .await;
                }
                self.apply(
                    row,
                    Change {
                        state: Some(PaymentState::Succeeded),
                        next_action: Some(NextAction::None),
                        next_attempt_at: Some(None),
                        partner_serial: Some(partner_serial),
                        acct_date: Some(acct_date),
                        note: "partner status: written off".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            StatusOutcome::Reversed | StatusOutcome::NotFound => {
                self.apply(
                    row,
                    Change {
                        next_action: Some(NextAction::CoreReversal),
                        next_attempt_at: Some(Some(self.clock.now())),
                        reset_attempts: true,
                        note: "partner status: reversed or not found".into(),
                        ..Change::default()
                    },
                )
                .await
            }
            StatusOutcome::NeedsOperator { reason } => {
                tracing::error!(hub_serial = %row.hub_serial, reason = %reason, "Status answer needs an operator; no core reversal until resolved.");
                self.apply(row, self.to_operator(reason, "status: operator"))
                    .await
            }
            StatusOutcome::Unknown { reason } => {
                match link.adapter.status_retry_after(row.attempts + 1) {
                    // The partner's spec fixes when to ask again (medical: 10, 30, 60, 120, 330 s
                    // after the original, then every 10 minutes).
                    Some(wait) => {
                        tracing::warn!(hub_serial = %row.hub_serial, attempt = row.attempts + 1, reason = %reason, "Status not final; asking again on the partner's schedule.");
                        self.apply(
                            row,
                            Change {
                                next_attempt_at: Some(Some(self.clock.now() + wait)),
                                bump_attempts: true,
                                last_error: Some(reason),
                                note: format!("status retry {}", row.attempts + 1),
                                ..Change::default()
                            },
                        )
                        .await?;
                        Ok(Step::Stop)
                    }
                    None => self.reschedule(row, reason).await,
                }
            }
        }
    }

    /// On start-up: every payment stopped while an external call may have been in flight gets
    /// the action that resolves it without ever repeating a money-moving request.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let rows = self.journal.interrupted().await?;
        let now = self.clock.now();
        for row in &rows {
            let change = match row.state {
                // 8002 may have been sent: ask the core.
                PaymentState::Accepted => Change {
                    state: Some(PaymentState::CoreUnknown),
                    next_action: Some(NextAction::CoreStatus),
                    next_attempt_at: Some(Some(now)),
                    note: "recovered after restart: 8002 may have been sent".into(),
                    ..Change::default()
                },
                // 1002 may have been sent: never re-send it; resolve it as the partner's spec says.
                PaymentState::CoreDebited => Change {
                    state: Some(PaymentState::PartnerUnknown),
                    next_action: Some(self.recovery_action(row)),
                    next_attempt_at: Some(Some(now)),
                    reversal_reason: Some("hub restarted during the write-off".into()),
                    note: "recovered after restart: 1002 may have been sent".into(),
                    ..Change::default()
                },
                // A partner that takes a re-sent cancel or reversal only as a new request (spec
                // 03's 2002, whose reqTime must be the clock's) gets a new serial after a restart
                // too; the others get the same frame again.
                PaymentState::CancelRequested => Change {
                    next_action: Some(NextAction::PartnerCancel),
                    next_attempt_at: Some(Some(now)),
                    clear_partner_reversal_serial: self.resends_with_new_serial(row),
                    note: "recovered after restart".into(),
                    ..Change::default()
                },
                _ => Change {
                    next_action: Some(NextAction::PartnerReversal),
                    next_attempt_at: Some(Some(now)),
                    clear_partner_reversal_serial: self.resends_with_new_serial(row),
                    note: "recovered after restart".into(),
                    ..Change::default()
                },
            };
            tracing::warn!(hub_serial = %row.hub_serial, state = row.state.as_str(), "Resuming an interrupted payment.");
            self.journal
                .transition(&row.hub_serial, row.state, row.next_action, &change, now)
                .await?;
        }
        Ok(rows.len())
    }

    fn resends_with_new_serial(&self, row: &PaymentRow) -> bool {
        self.partner(&row.payee, &row.instance)
            .is_some_and(|link| link.adapter.resend_reversal_with_new_serial())
    }

    fn writes_off_late_debit(&self, row: &PaymentRow) -> bool {
        self.partner(&row.payee, &row.instance)
            .is_some_and(|link| link.adapter.writes_off_late_debit())
    }

    fn recovery_action(&self, row: &PaymentRow) -> NextAction {
        match self.partner(&row.payee, &row.instance) {
            Some(link) if link.adapter.unknown_resolution() == UnknownResolution::AskStatus => {
                NextAction::PartnerStatus
            }
            _ => NextAction::PartnerReversal,
        }
    }

    /// One pass of the resolver: drives every payment whose pending action is due.
    pub async fn resolve_due(self: &Arc<Self>, limit: i64) -> Result<usize, EngineError> {
        let due = self.journal.due(self.clock.now(), limit).await?;
        let count = due.len();
        let mut tasks = Vec::with_capacity(count);
        for row in due {
            let engine = Arc::clone(self);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = engine.drive(&row.hub_serial).await {
                    tracing::error!(hub_serial = %row.hub_serial, error = %e, "Resolver step failed.");
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        Ok(count)
    }

    /// Current state of a payment for the channel's status query.
    pub async fn status_view(
        &self,
        channel: &str,
        channel_date: &str,
        channel_serial: &str,
    ) -> Result<PaymentView, EngineError> {
        let row = self
            .journal
            .by_channel_key(channel, channel_date, channel_serial)
            .await?
            .ok_or(EngineError::Refused {
                code: ErrorCode::NotFound,
                detail: channel_serial.to_string(),
            })?;
        Ok(PaymentView::from(&row))
    }
}

/// A payment as a channel or operator sees it. Account numbers are masked.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentView {
    pub hub_serial: String,
    pub state: PaymentState,
    pub state_label: String,
    pub pending_action: NextAction,
    pub payee: String,
    pub instance: String,
    pub customer_no: String,
    pub payer_account: String,
    pub amount_fen: i64,
    pub tx_date: String,
    pub core_seq_no: Option<String>,
    pub core_date: Option<String>,
    pub partner_serial: Option<String>,
    pub acct_date: Option<String>,
    pub reversal_core_seq_no: Option<String>,
}

impl From<&PaymentRow> for PaymentView {
    fn from(row: &PaymentRow) -> Self {
        use codecs::clock::yyyymmdd;
        PaymentView {
            hub_serial: row.hub_serial.clone(),
            state: row.state,
            state_label: row.state.label_zh().to_string(),
            pending_action: row.next_action,
            payee: row.payee.clone(),
            instance: row.instance.clone(),
            customer_no: row.customer_no.clone(),
            payer_account: mask_account(&row.payer_account),
            amount_fen: row.amount.fen(),
            tx_date: yyyymmdd(row.tx_date),
            core_seq_no: row.core_seq_no.clone(),
            core_date: row.core_date.map(yyyymmdd),
            partner_serial: row.partner_serial.clone(),
            acct_date: row.acct_date.map(yyyymmdd),
            reversal_core_seq_no: row.reversal_core_seq_no.clone(),
        }
    }
}

fn in_doubt(row: &PaymentRow) -> ChannelAnswer {
    let code = ErrorCode::InDoubt;
    ChannelAnswer {
        status: "IN_DOUBT".into(),
        hub_serial: row.hub_serial.clone(),
        code: Some(code.code().into()),
        message: Some(code.message_zh().into()),
        partner_code: None,
        partner_serial: None,
        acct_date: None,
        prepaid_fen: None,
        amount_fen: row.amount.fen(),
    }
}

fn failed(row: &PaymentRow, code: ErrorCode, partner_code: Option<String>) -> ChannelAnswer {
    ChannelAnswer {
        status: "FAILED".into(),
        hub_serial: row.hub_serial.clone(),
        code: Some(code.code().into()),
        message: Some(code.message_zh().into()),
        partner_code,
        partner_serial: None,
        acct_date: None,
        prepaid_fen: None,
        amount_fen: row.amount.fen(),
    }
}

fn cancelled_answer(row: &PaymentRow) -> ChannelAnswer {
    ChannelAnswer {
        status: "CANCELLED".into(),
        hub_serial: row.hub_serial.clone(),
        code: None,
        message: Some("已撤销，款项已退回".into()),
        partner_code: None,
        partner_serial: row.partner_serial.clone(),
        acct_date: row.acct_date.map(codecs::clock::yyyymmdd),
        prepaid_fen: None,
        amount_fen: row.amount.fen(),
    }
}

fn reversed_answer(row: &PaymentRow) -> ChannelAnswer {
    ChannelAnswer {
        status: "REVERSED".into(),
        hub_serial: row.hub_serial.clone(),
        code: None,
        message: Some("冲正成功".into()),
        partner_code: None,
        partner_serial: row.partner_serial.clone(),
        acct_date: row.acct_date.map(codecs::clock::yyyymmdd),
        prepaid_fen: None,
        amount_fen: row.amount.fen(),
    }
}
