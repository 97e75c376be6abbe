//! The cable company as a [`BillPartner`]: the engine journals, debits and resolves; this maps
//! its requests onto [`CableTv`] and the cable company's answers onto the SPI's outcomes, as
//! spec 04's "Pay and cancel rules" say.
//!
//! - A payment names a package and a number of months (`package_code`, `months` in
//!   [`PayOrder::fields`]); its amount must be the fees of those months from the price cache.
//! - A pay in doubt is resolved by a 3001 sent by the hub (Channel XT): 00/20/21 reversed, 22/24
//!   too late (then 4001), 23 an operator's; a channel's same-day cancel is the same 3001 under
//!   the channel's own header.
//! - No signed-in link, or the year-end stop: refused before the debit, nothing moves.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use codecs::clock::yyyymmdd;
use codecs::Money;

use super::daily_file;
use super::link::{clock_seeded_serials, CallError, Caller, SerialSource};
use super::ops::{
    CableError, CableTv, CancelOutcome, Customer, OriginalPay, ParamSet, PayOutcome as CablePay,
    PayRequest, QueryKey, StatusOutcome as CableStatus,
};
use super::wire::YearMonth;
use crate::spi::{
    AdapterError, Bill, BillItem, BillPartner, Channel, DailyFile, OriginalRef, PartnerReply,
    PayOrder, PayOutcome, QueryOutcome, RefusalReason, RequestContext, ReversalOutcome,
    StatusOutcome, UnknownResolution,
};

/// The payment field naming the package (AN 6).
pub const FIELD_PACKAGE: &str = "package_code";
/// The payment field with the number of months (1–36).
pub const FIELD_MONTHS: &str = "months";
/// Purpose of every cable TV posting (spec 04, core-banking.md).
pub const PURPOSE: &str = "YXCATV";
/// The hub refuses channel cancels from this time (its clock).
const CANCEL_CUTOFF: (u32, u32, u32) = (23, 50, 0);

/// The hub's standing count and sum of one AcctDate (its journal's SUCCEEDED payments), for 5001.
pub type StandingTotals = Arc<
    dyn Fn(NaiveDate) -> Pin<Box<dyn Future<Output = Result<(u64, Money), String>> + Send>>
        + Send
        + Sync,
>;

/// The TxTime each 3001 went out with first, so that a re-send is the same frame (the cable
/// company answers a repeat with other content 06). Forgotten once the 3001 has its answer; a
/// restart forgets too, and the re-send then carries the restarted hub's time.
#[derive(Default)]
pub struct FrameTimes {
    first: std::sync::Mutex<std::collections::HashMap<(NaiveDate, String), NaiveTime>>,
}

impl FrameTimes {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(NaiveDate, String), NaiveTime>> {
        match self.first.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The time of the first send of this (TxDate, Serial), `now` if it is the first.
    pub fn time_for(&self, tx_date: NaiveDate, serial: &str, now: NaiveTime) -> NaiveTime {
        *self
            .map()
            .entry((tx_date, serial.to_string()))
            .or_insert(now)
    }

    pub fn forget(&self, tx_date: NaiveDate, serial: &str) {
        self.map().remove(&(tx_date, serial.to_string()));
    }
}

/// One cable TV instance; owns the link, which stops when the partner is dropped.
pub struct CablePartner {
    tv: CableTv,
    cancel_times: FrameTimes,
    bank_code: String,
    standing: Option<StandingTotals>,
    /// How long [`BillPartner::fetch_daily`] waits for a signed-in link (a fresh `hub recon`).
    sign_in_wait: Duration,
}

impl std::fmt::Debug for CablePartner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CablePartner")
            .field("tv", &self.tv)
            .field("bank_code", &self.bank_code)
            .finish()
    }
}

impl Drop for CablePartner {
    fn drop(&mut self) {
        self.tv.shutdown();
    }
}

/// A package and months, read from a payment's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageMonths {
    pub package_code: String,
    pub months: u32,
}

fn invalid(field: &'static str, reason: &str) -> AdapterError {
    AdapterError::InvalidInput {
        field,
        reason: reason.to_string(),
    }
}

fn reply(code: &str, message: &str) -> PartnerReply {
    PartnerReply {
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// Reads and checks `package_code` and `months`.
pub fn package_months(fields: &crate::spi::PayFields) -> Result<PackageMonths, AdapterError> {
    let package_code = fields
        .get(FIELD_PACKAGE)
        .ok_or_else(|| invalid("package_code", "缺少套餐编码"))?;
    if package_code.is_empty()
        || package_code.len() > 6
        || !package_code.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(invalid("package_code", "须为1至6位字母或数字"));
    }
    let months_text = fields
        .get(FIELD_MONTHS)
        .ok_or_else(|| invalid("months", "缺少缴费月数"))?;
    if months_text.is_empty()
        || months_text.len() > 3
        || !months_text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid("months", "须为1至36的整数"));
    }
    let months: u32 = months_text
        .parse()
        .map_err(|_| invalid("months", "须为1至36的整数"))?;
    if !(1..=36).contains(&months) {
        return Err(invalid("months", "须为1至36的整数"));
    }
    Ok(PackageMonths {
        package_code: package_code.clone(),
        months,
    })
}

fn month_before(month: YearMonth) -> YearMonth {
    if month.month <= 1 {
        YearMonth {
            year: month.year - 1,
            month: 12,
        }
    } else {
        YearMonth {
            year: month.year,
            month: month.month - 1,
        }
    }
}

/// Whether `amount` is the fee of `months` consecutive months of the package for some first
/// month within the cached price years: the check possible without the customer's PaidThrough.
pub fn amount_possible(params: &ParamSet, package_code: &str, months: u32, amount: Money) -> bool {
    let mut years: Vec<i32> = params
        .rows
        .iter()
        .filter(|r| r.package_code == package_code)
        .map(|r| r.year)
        .collect();
    years.sort_unstable();
    years.dedup();
    years.iter().any(|&year| {
        (1..=12).any(|month| {
            let paid_through = month_before(YearMonth { year, month });
            params.amount_for(package_code, paid_through, months) == Some(amount)
        })
    })
}

/// The customer's bill: every package's arrears month by month (each at its year's fee from the
/// cache); one line per package when the cache cannot explain the cable company's sum.
pub fn bill_of(customer: &Customer, params: Option<&ParamSet>) -> Bill {
    let mut items = Vec::new();
    let mut total = Money::ZERO;
    for package in &customer.packages {
        if package.arrears_months == 0 && !package.arrears_amount.is_positive() {
            continue;
        }
        total = total.checked_add(package.arrears_amount).unwrap_or(total);
        let mut lines = Vec::new();
        let mut sum = Some(Money::ZERO);
        let mut month = package.paid_through;
        for _ in 0..package.arrears_months.min(600) {
            month = month.next();
            let fee = params.and_then(|p| p.fee(&package.package_code, month.year));
            sum = match (sum, fee) {
                (Some(s), Some(fee)) => s.checked_add(fee),
                _ => None,
            };
            lines.push(BillItem {
                period: format!("{:04}{:02}", month.year, month.month),
                amount: fee.unwrap_or(Money::ZERO),
                penalty: Money::ZERO,
                usage: None,
            });
        }
        if sum == Some(package.arrears_amount) {
            items.extend(lines);
        } else {
            let first = package.paid_through.next();
            items.push(BillItem {
                period: format!("{:04}{:02}", first.year, first.month),
                amount: package.arrears_amount,
                penalty: Money::ZERO,
                usage: None,
            });
        }
    }
    Bill {
        customer_no: customer.customer_no.clone(),
        customer_name: customer.name.clone(),
        address: customer.address.clone(),
        total_due: total,
        prepaid: Money::ZERO,
        items,
        nothing_due: !total.is_positive(),
        meter_no: None,
    }
}

/// The amount the cable company will ask for this package and months, from fresh data: its
/// 2001 answer's PaidThrough and the cached prices. `Err` is the answer 2002 would give.
pub fn expected_amount(
    customer: &Customer,
    params: &ParamSet,
    wanted: &PackageMonths,
) -> Result<Money, PartnerReply> {
    let package = customer
        .packages
        .iter()
        .find(|p| p.package_code == wanted.package_code)
        .ok_or_else(|| reply("03", "套餐不存在或未订购"))?;
    params
        .amount_for(&wanted.package_code, package.paid_through, wanted.months)
        .ok_or_else(|| reply("04", "缴费月数超限"))
}

/// A 3001 sent for a pay in doubt: 00/20/21 mean cancelled; 22/24 too late (4001 decides); 23
/// only an operator may act on; 40/90/91/92 and no link are re-sent with backoff.
pub fn timeout_cancel_outcome(outcome: CancelOutcome) -> ReversalOutcome {
    match outcome {
        CancelOutcome::Cancelled { .. } => ReversalOutcome::Reversed,
        CancelOutcome::OriginalNotFound => ReversalOutcome::OriginalNotFound,
        CancelOutcome::AlreadyCancelled => ReversalOutcome::AlreadyReversed,
        CancelOutcome::NotCancellableNow | CancelOutcome::LaterPaymentExists => {
            ReversalOutcome::TooLate
        }
        CancelOutcome::OriginalDiffers => {
            ReversalOutcome::NeedsOperator(reply("23", "原交易信息不符"))
        }
        CancelOutcome::Refused(reply) => ReversalOutcome::Refused(reply),
        CancelOutcome::Unknown { reason } => ReversalOutcome::Unknown { reason },
    }
}

/// A channel's 3001 (撤销): 22 past the cut-off, 23 the original differs, 24 a later payment must
/// be cancelled first; a frame that never left the hub is treated as unknown, because a re-send
/// of a 3001 whose first attempt may have landed must never end "not cancelled".
pub fn channel_cancel_outcome(outcome: CancelOutcome) -> ReversalOutcome {
    match outcome {
        CancelOutcome::Cancelled { .. } => ReversalOutcome::Reversed,
        CancelOutcome::OriginalNotFound => ReversalOutcome::OriginalNotFound,
        CancelOutcome::AlreadyCancelled => ReversalOutcome::AlreadyReversed,
        CancelOutcome::NotCancellableNow => ReversalOutcome::TooLate,
        CancelOutcome::OriginalDiffers => ReversalOutcome::Mismatch,
        CancelOutcome::LaterPaymentExists => {
            ReversalOutcome::Refused(reply("24", "存在后续缴费，请先取消后续缴费"))
        }
        CancelOutcome::Refused(r) if r.code == "CATV_NOT_SENT" => ReversalOutcome::Unknown {
            reason: format!("{} {}", r.code, r.message),
        },
        CancelOutcome::Refused(reply) => ReversalOutcome::Refused(reply),
        CancelOutcome::Unknown { reason } => ReversalOutcome::Unknown { reason },
    }
}

/// 4001, asked after a 3001 answered 22 or 24: Status 3 then contradicts the cable company's own
/// answer, so an operator must look. In the year-end window anything but 1 waits.
pub fn status_outcome(outcome: CableStatus, year_end_stop: bool) -> StatusOutcome {
    match outcome {
        CableStatus::Paid {
            cable_serial,
            acct_date,
            amount,
        } => StatusOutcome::WrittenOff {
            partner_serial: cable_serial,
            acct_date,
            amount,
        },
        _ if year_end_stop => StatusOutcome::Unknown {
            reason: "年终结转中，状态非已缴费，等待结转结束".to_string(),
        },
        CableStatus::Cancelled { .. } => StatusOutcome::Reversed,
        CableStatus::NotFound => StatusOutcome::NeedsOperator {
            reason: "4001状态3（查无原交易）与3001的22/24应答矛盾".to_string(),
        },
        CableStatus::Refused(r) => StatusOutcome::Unknown {
            reason: format!("4001 {} {}", r.code, r.message),
        },
        CableStatus::Unknown { reason } => StatusOutcome::Unknown { reason },
    }
}

/// The header's Channel for a bank channel.
pub fn channel_code(channel: &Channel) -> &'static str {
    match channel {
        Channel::Counter => "GT",
        Channel::Mobile => "SJ",
        Channel::Online => "WY",
        Channel::SelfService => "ZZ",
        // Refused by the engine before any call (`accepts_channel`); spec 04 has no code for it.
        Channel::Nongxinyin => "",
    }
}

fn channel_caller(ctx: &RequestContext) -> Caller {
    Caller {
        branch_no: ctx.branch_no.clone(),
        teller_no: ctx.teller_no.clone(),
        channel: channel_code(&ctx.channel).to_string(),
        tx_date: ctx.tx_date,
        tx_time: ctx.tx_time,
        serial: ctx.bank_serial.clone(),
    }
}

/// A hub-originated frame under the engine's journaled serial, so every re-send is the same frame.
fn hub_caller(ctx: &RequestContext) -> Caller {
    Caller {
        branch_no: String::new(),
        teller_no: "SYSTEM".to_string(),
        channel: "XT".to_string(),
        tx_date: ctx.tx_date,
        tx_time: ctx.tx_time,
        serial: ctx.bank_serial.clone(),
    }
}

fn original_pay(original: &OriginalRef) -> OriginalPay {
    OriginalPay {
        serial: original.bank_serial.clone(),
        tx_date: original.tx_date,
        customer_no: original.customer_no.clone(),
        amount: original.amount,
    }
}

fn adapter_error(e: CableError) -> AdapterError {
    match e {
        CableError::Call(CallError::NotSent(reason)) => AdapterError::Connect(reason),
        CableError::Call(CallError::Lost(reason)) => AdapterError::Timeout(reason),
        CableError::Garbled(e) => AdapterError::Garbled(e.to_string()),
        other => AdapterError::Transport(other.to_string()),
    }
}

impl CablePartner {
    /// Starts the link (sign-in, heartbeats, reconnect, parameter downloads). `serials` numbers
    /// the hub-originated frames (the hub's journal); `None` takes [`clock_seeded_serials`].
    pub fn start(
        config: &super::CableTvConfig,
        clock: codecs::clock::SharedClock,
        standing: Option<StandingTotals>,
        serials: Option<SerialSource>,
    ) -> Result<CablePartner, AdapterError> {
        let key = config.validate()?;
        // Without a durable source (no journal) the clock-seeded one; see its bound.
        let serials = serials.unwrap_or_else(|| clock_seeded_serials(clock.clone()));
        let tv = CableTv::start(
            config.addr(),
            config.bank_code.clone(),
            key,
            config.link_settings(),
            clock,
            serials,
        );
        Ok(CablePartner {
            tv,
            cancel_times: FrameTimes::default(),
            bank_code: config.bank_code.clone(),
            standing,
            sign_in_wait: Duration::from_millis(
                config
                    .connect_timeout_ms
                    .saturating_add(config.other_timeout_ms),
            ),
        })
    }

    /// A 3001 under `caller`, its TxTime that of its first send until it has an answer.
    async fn send_cancel(&self, mut caller: Caller, original: &OriginalRef) -> CancelOutcome {
        caller.tx_time = self
            .cancel_times
            .time_for(caller.tx_date, &caller.serial, caller.tx_time);
        let outcome = self.tv.cancel(&caller, &original_pay(original)).await;
        let unanswered = matches!(outcome, CancelOutcome::Unknown { .. })
            || matches!(&outcome, CancelOutcome::Refused(r) if r.code == "CATV_NOT_SENT");
        if !unanswered {
            self.cancel_times.forget(caller.tx_date, &caller.serial);
        }
        outcome
    }

    /// The link's operations (statistics, year totals) for the hub's own tasks.
    pub fn tv(&self) -> &CableTv {
        &self.tv
    }

    async fn wait_signed_in(&self) -> bool {
        let deadline = tokio::time::Instant::now() + self.sign_in_wait;
        while !self.tv.signed_in() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

#[async_trait::async_trait]
impl BillPartner for CablePartner {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn payee(&self) -> &str {
        super::PAYEE
    }

    fn instance(&self) -> &str {
        &self.bank_code
    }

    async fn query(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError> {
        let key = QueryKey::CustomerNo(customer_no.to_string());
        match self.tv.query(&channel_caller(ctx), &key).await {
            Ok(customer) => Ok(QueryOutcome::Bill(bill_of(
                &customer,
                self.tv.parameters().as_ref(),
            ))),
            Err(CableError::Refused(reply)) => Ok(QueryOutcome::Refused(reply)),
            Err(e) => Err(adapter_error(e)),
        }
    }

    /// Before the debit: a signed-in link, then the package and months against a fresh 2001 and
    /// the cached prices, so that 03, 04 and 05 never cost a debit and its reversal.
    async fn before_debit(
        &self,
        _ctx: &RequestContext,
        order: &PayOrder,
    ) -> Result<(), PartnerReply> {
        if !self.tv.signed_in() {
            return Err(reply("CONNECT", "与有线电视公司的链路未签到，未扣款"));
        }
        if !self.tv.accepting_channel_money() {
            return Err(reply("40", "年终结转中"));
        }
        let wanted = package_months(&order.fields).map_err(|e| e.to_reply())?;
        // A serial of its own: the engine's serial is the 2002's, and the cable company answers
        // a reused serial with other content 06.
        let caller = self
            .tv
            .system_caller()
            .await
            .map_err(|e| adapter_error(CableError::Call(e)).to_reply())?;
        let key = QueryKey::CustomerNo(order.customer_no.clone());
        let customer = match self.tv.query(&caller, &key).await {
            Ok(customer) => customer,
            Err(CableError::Refused(reply)) => return Err(reply),
            Err(e) => return Err(adapter_error(e).to_reply()),
        };
        // The package must be the subscriber's now (a swap since the query is a stale bill),
        // whether or not the prices are cached.
        if !customer
            .packages
            .iter()
            .any(|p| p.package_code == wanted.package_code)
        {
            return Err(reply("03", "套餐不存在或未订购"));
        }
        let Some(params) = self.tv.parameters() else {
            // No prices cached (a reconnect is downloading them): the company's own 05 check
            // decides the amount.
            return Ok(());
        };
        // A refusal from the cache (04: no price row, 05: another sum) may be the cache's fault:
        // a 6001 then runs, so that the next attempt is checked against fresh prices.
        let expected = match expected_amount(&customer, &params, &wanted) {
            Ok(expected) => expected,
            Err(refusal) => {
                self.tv.refresh_after_cache_refusal();
                return Err(refusal);
            }
        };
        if expected != order.pay_amount {
            self.tv.refresh_after_cache_refusal();
            return Err(reply(
                "05",
                &format!("金额不符：应缴{}元", expected.to_yuan()),
            ));
        }
        Ok(())
    }

    async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome {
        let wanted = match package_months(&order.fields) {
            Ok(wanted) => wanted,
            Err(e) => return PayOutcome::Refused(e.to_reply()),
        };
        let request = PayRequest {
            customer_no: order.customer_no.clone(),
            package_code: wanted.package_code,
            months: wanted.months,
            amount: order.pay_amount,
            payer_account: order.payer_account.clone(),
        };
        match self.tv.pay(&channel_caller(ctx), &request).await {
            CablePay::Paid {
                cable_serial,
                acct_date,
                ..
            } => PayOutcome::Paid {
                partner_serial: cable_serial,
                acct_date,
                prepaid: Money::ZERO,
            },
            CablePay::Refused(reply) => PayOutcome::Refused(reply),
            CablePay::Unknown { reason } => PayOutcome::Unknown { reason },
        }
    }

    /// The 3001 for a pay in doubt (Channel XT). In the year-end window a 3001 would answer 40:
    /// 4001 instead, and only "paid" settles it (through the status the engine then asks).
    async fn reverse(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        if self.tv.in_year_end_stop() {
            let caller = match self.tv.system_caller().await {
                Ok(caller) => caller,
                Err(e) => {
                    return ReversalOutcome::Unknown {
                        reason: e.to_string(),
                    }
                }
            };
            return match self
                .tv
                .status_of(&caller, &original.bank_serial, original.tx_date)
                .await
            {
                CableStatus::Paid { .. } => ReversalOutcome::TooLate,
                _ => ReversalOutcome::Unknown {
                    reason: "年终结转中，待结转结束后发送3001".to_string(),
                },
            };
        }
        let outcome = self.send_cancel(hub_caller(ctx), original).await;
        timeout_cancel_outcome(outcome)
    }

    async fn status(&self, ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome {
        let outcome = self
            .tv
            .status_of(&hub_caller(ctx), &original.bank_serial, original.tx_date)
            .await;
        status_outcome(outcome, self.tv.in_year_end_stop())
    }

    fn daily_files(&self, acct_date: NaiveDate) -> Vec<String> {
        vec![daily_file::file_name(&self.bank_code, acct_date)]
    }

    /// 5001 with the journal's standing count and sum, every 5002 page, the archive written.
    async fn fetch_daily(&self, acct_date: NaiveDate, dir: &Path) -> Result<bool, AdapterError> {
        let standing = self.standing.as_ref().ok_or_else(|| AdapterError::Config {
            field: "cabletv",
            reason: "未配置本方对账汇总".to_string(),
        })?;
        let (count, amount) = standing(acct_date).await.map_err(AdapterError::Transport)?;
        if !self.wait_signed_in().await {
            return Err(AdapterError::Connect(
                "与有线电视公司的链路未签到".to_string(),
            ));
        }
        let (totals, records) = self
            .tv
            .reconcile_day(acct_date, count, amount)
            .await
            .map_err(adapter_error)?;
        if !totals.equal {
            tracing::warn!(
                acct_date = %yyyymmdd(acct_date),
                bank_count = count,
                bank_fen = amount.fen(),
                cable_count = totals.count,
                cable_fen = totals.amount.fen(),
                "Cable TV 5001 totals differ; the T+1 reconciliation lists the differences."
            );
        }
        let bytes = daily_file::write(acct_date, &totals, &records)?;
        let name = daily_file::file_name(&self.bank_code, acct_date);
        // Written aside, then renamed: a half-written archive is never taken for the day's.
        let partial = dir.join(format!("{name}.part"));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, dir.join(name))?;
        Ok(true)
    }

    fn parse_daily(&self, files: &[Vec<u8>]) -> Result<DailyFile, AdapterError> {
        match files {
            [file] => daily_file::parse(file),
            _ => Err(AdapterError::DailyFile {
                line: 0,
                reason: format!("须为1个文件，收到{}个", files.len()),
            }),
        }
    }

    fn purpose(&self) -> &str {
        PURPOSE
    }

    fn payment_summary(&self, customer_no: &str) -> String {
        payment_summary_of(customer_no)
    }

    fn settlement_code(&self) -> &str {
        &self.bank_code
    }

    fn settlement_summary(&self, acct_date: NaiveDate) -> String {
        settlement_summary_of(&self.bank_code, acct_date)
    }

    fn customer_no_max_len(&self) -> usize {
        12
    }

    fn refusal_reason(&self, code: &str) -> Option<RefusalReason> {
        refusal_reason_of(code)
    }

    /// From 22:55:00 on 31 December until the cable company shows the new year: no new pays.
    fn accepts_payments_at(&self, _time: NaiveTime) -> bool {
        !self.tv.in_year_end_stop()
    }

    fn check_order(&self, order: &PayOrder) -> Result<(), AdapterError> {
        let wanted = package_months(&order.fields)?;
        if let Some(params) = self.tv.parameters() {
            if !params
                .rows
                .iter()
                .any(|r| r.package_code == wanted.package_code)
            {
                return Err(invalid("package_code", "有线电视公司无此套餐"));
            }
            if !amount_possible(
                &params,
                &wanted.package_code,
                wanted.months,
                order.pay_amount,
            ) {
                return Err(invalid("amount_fen", "金额不是该套餐若干月月费之和"));
            }
        }
        Ok(())
    }

    fn unknown_resolution(&self) -> UnknownResolution {
        UnknownResolution::Reverse
    }

    fn supports_cancel(&self) -> bool {
        true
    }

    fn cancel_counter_only(&self) -> bool {
        false
    }

    fn stop(&self) {
        self.tv.shutdown();
    }

    fn reversal_retry_after(&self, attempts: i64) -> Option<chrono::Duration> {
        Some(cancel_retry_after(attempts))
    }

    fn accepts_cancel_at(&self, time: NaiveTime) -> bool {
        let cutoff = NaiveTime::from_hms_opt(CANCEL_CUTOFF.0, CANCEL_CUTOFF.1, CANCEL_CUTOFF.2)
            .unwrap_or(NaiveTime::MIN);
        time < cutoff && self.tv.accepting_channel_money()
    }

    async fn cancel(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        let outcome = self.send_cancel(channel_caller(ctx), original).await;
        channel_cancel_outcome(outcome)
    }
}

/// The wait before re-sending a 3001 that got no answer: 5 s doubling to 5 min (spec 04).
pub fn cancel_retry_after(attempts: i64) -> chrono::Duration {
    let shift = u32::try_from(attempts.clamp(0, 10)).unwrap_or(10);
    chrono::Duration::seconds((5i64 << shift).min(300))
}

/// What a refusal code of 2001 / 2002 means for the channel (03 has no common meaning).
pub fn refusal_reason_of(code: &str) -> Option<RefusalReason> {
    match code {
        "01" => Some(RefusalReason::CustomerNotFound),
        "02" => Some(RefusalReason::CustomerClosed),
        "04" => Some(RefusalReason::NotPayableNow),
        "05" => Some(RefusalReason::AmountMismatch),
        _ => None,
    }
}

/// 8002 Summary of a payment: `收视费<CustomerNo>`.
pub fn payment_summary_of(customer_no: &str) -> String {
    format!("收视费{customer_no}")
}

/// 8002 Summary of a settlement: `收视费结算<BankCode><YYYYMMDD>`.
pub fn settlement_summary_of(bank_code: &str, acct_date: NaiveDate) -> String {
    format!("收视费结算{bank_code}{}", yyyymmdd(acct_date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cabletv::ops::{PackageState, PriceRow};

    fn row(code: &str, year: i32, fee: i64) -> PriceRow {
        PriceRow {
            package_code: code.to_string(),
            package_name: "基本收视包".to_string(),
            year,
            monthly_fee: Money::from_fen(fee),
            on_sale: true,
        }
    }

    /// The worked example's prices: JB0001 at 2600 fen in 2026 and 2027; GQ0002 dearer in 2027.
    fn params() -> ParamSet {
        ParamSet {
            version: 2_026_120_101,
            rows: vec![
                row("JB0001", 2025, 2500),
                row("JB0001", 2026, 2600),
                row("JB0001", 2027, 2600),
                row("GQ0002", 2026, 1100),
                row("GQ0002", 2027, 1200),
            ],
        }
    }

    fn fields(package: &str, months: &str) -> crate::spi::PayFields {
        [
            (FIELD_PACKAGE.to_string(), package.to_string()),
            (FIELD_MONTHS.to_string(), months.to_string()),
        ]
        .into_iter()
        .collect()
    }

    fn customer(packages: Vec<PackageState>) -> Customer {
        Customer {
            customer_no: "YX2019000123".into(),
            name: "张三".into(),
            address: "攸县联星街道".into(),
            card_no: "8001000000000123".into(),
            user_status: 1,
            packages,
        }
    }

    fn package(code: &str, through: (i32, u32), months: u32, fen: i64) -> PackageState {
        PackageState {
            package_code: code.into(),
            package_name: "基本收视包".into(),
            monthly_fee: Money::from_fen(2600),
            paid_through: YearMonth {
                year: through.0,
                month: through.1,
            },
            arrears_months: months,
            arrears_amount: Money::from_fen(fen),
        }
    }

    #[test]
    fn package_and_months_follow_the_spec_ranges() {
        assert_eq!(
            package_months(&fields("JB0001", "12")).ok(),
            Some(PackageMonths {
                package_code: "JB0001".into(),
                months: 12
            })
        );
        assert!(package_months(&fields("JB0001", "36")).is_ok());
        for bad in ["0", "37", "", "1a", "-1", "0012"] {
            assert!(package_months(&fields("JB0001", bad)).is_err(), "{bad}");
        }
        assert!(package_months(&fields("JB00011", "1")).is_err());
        assert!(package_months(&fields("", "1")).is_err());
        assert!(package_months(&fields("JB 001", "1")).is_err());
        assert!(package_months(&crate::spi::PayFields::new()).is_err());
    }

    #[test]
    fn worked_example_amount_is_possible_and_off_by_one_fen_is_not() {
        let p = params();
        // Spec: 12 months 202612–202711 at 2600 fen = 31200 fen.
        assert!(amount_possible(&p, "JB0001", 12, Money::from_fen(31_200)));
        assert!(!amount_possible(&p, "JB0001", 12, Money::from_fen(31_199)));
        // GQ0002: 2 months across the year end, 1100 + 1200.
        assert!(amount_possible(&p, "GQ0002", 2, Money::from_fen(2_300)));
        assert!(!amount_possible(
            &p,
            "GQ0002",
            2,
            Money::from_fen(2_400 + 1)
        ));
        // 25 months of GQ0002 cannot fit in the two priced years.
        assert!(!amount_possible(
            &p,
            "GQ0002",
            25,
            Money::from_fen(25 * 1_200)
        ));
        assert!(!amount_possible(&p, "XX0001", 1, Money::from_fen(2_600)));
    }

    #[test]
    fn expected_amount_starts_after_paid_through_and_prices_each_month_by_its_year() {
        let p = params();
        let c = customer(vec![package("GQ0002", (2026, 10), 0, 0)]);
        let wanted = PackageMonths {
            package_code: "GQ0002".into(),
            months: 4,
        };
        // 202611, 202612 at 1100; 202701, 202702 at 1200.
        assert_eq!(expected_amount(&c, &p, &wanted), Ok(Money::from_fen(4_600)));
        let other = PackageMonths {
            package_code: "JB0001".into(),
            months: 1,
        };
        assert_eq!(
            expected_amount(&c, &p, &other).map_err(|r| r.code),
            Err("03".into())
        );
        // 202711 + 15 months reaches 2029, which has no price row: 04.
        let long = PackageMonths {
            package_code: "GQ0002".into(),
            months: 15,
        };
        assert_eq!(
            expected_amount(&c, &p, &long).map_err(|r| r.code),
            Err("04".into())
        );
    }

    #[test]
    fn bill_lists_arrears_month_by_month_and_totals_the_cable_company_sums() {
        // Paid through 202609, 3 months in arrears: 202610..202612 at 2600 = 7800.
        let c = customer(vec![
            package("JB0001", (2026, 9), 3, 7_800),
            package("GQ0002", (2026, 12), 0, 0),
        ]);
        let bill = bill_of(&c, Some(&params()));
        assert_eq!(bill.total_due, Money::from_fen(7_800));
        assert!(!bill.nothing_due);
        let periods: Vec<_> = bill.items.iter().map(|i| i.period.as_str()).collect();
        assert_eq!(periods, ["202610", "202611", "202612"]);
        assert!(bill
            .items
            .iter()
            .all(|i| i.amount == Money::from_fen(2_600)));
        // A sum the cache cannot explain is shown as the cable company states it.
        let odd = customer(vec![package("JB0001", (2026, 9), 3, 7_000)]);
        let bill = bill_of(&odd, Some(&params()));
        assert_eq!(bill.items.len(), 1);
        assert_eq!(bill.items[0].period, "202610");
        assert_eq!(bill.items[0].amount, Money::from_fen(7_000));
        let paid_up = bill_of(&customer(vec![package("JB0001", (2026, 12), 0, 0)]), None);
        assert!(paid_up.nothing_due);
        assert!(paid_up.items.is_empty());
    }

    #[test]
    fn a_cancel_for_a_pay_in_doubt_resolves_as_the_spec_says() {
        let through = YearMonth {
            year: 2026,
            month: 11,
        };
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::Cancelled {
                paid_through: through
            }),
            ReversalOutcome::Reversed
        ));
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::OriginalNotFound),
            ReversalOutcome::OriginalNotFound
        ));
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::AlreadyCancelled),
            ReversalOutcome::AlreadyReversed
        ));
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::NotCancellableNow),
            ReversalOutcome::TooLate
        ));
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::LaterPaymentExists),
            ReversalOutcome::TooLate
        ));
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::OriginalDiffers),
            ReversalOutcome::NeedsOperator(r) if r.code == "23"
        ));
        assert!(matches!(
            timeout_cancel_outcome(CancelOutcome::Refused(reply("92", "未签到"))),
            ReversalOutcome::Refused(r) if r.code == "92"
        ));
    }

    #[test]
    fn a_channel_cancel_never_ends_not_cancelled_on_a_frame_that_did_not_leave() {
        assert!(matches!(
            channel_cancel_outcome(CancelOutcome::NotCancellableNow),
            ReversalOutcome::TooLate
        ));
        assert!(matches!(
            channel_cancel_outcome(CancelOutcome::OriginalDiffers),
            ReversalOutcome::Mismatch
        ));
        assert!(matches!(
            channel_cancel_outcome(CancelOutcome::LaterPaymentExists),
            ReversalOutcome::Refused(r) if r.code == "24"
        ));
        assert!(matches!(
            channel_cancel_outcome(CancelOutcome::Refused(reply("CATV_NOT_SENT", "x"))),
            ReversalOutcome::Unknown { .. }
        ));
        assert!(matches!(
            channel_cancel_outcome(CancelOutcome::Refused(reply("40", "年终结转中"))),
            ReversalOutcome::Refused(r) if r.code == "40"
        ));
    }

    #[test]
    fn status_three_after_22_or_24_needs_an_operator_but_waits_at_year_end() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let paid = CableStatus::Paid {
            cable_serial: "C1".into(),
            acct_date: date,
            amount: Money::from_fen(2_600),
        };
        assert!(matches!(
            status_outcome(paid.clone(), false),
            StatusOutcome::WrittenOff { amount, .. } if amount == Money::from_fen(2_600)
        ));
        assert!(matches!(
            status_outcome(paid, true),
            StatusOutcome::WrittenOff { .. }
        ));
        let cancelled = CableStatus::Cancelled {
            cable_serial: "C1".into(),
            acct_date: date,
            amount: Money::from_fen(2_600),
        };
        assert!(matches!(
            status_outcome(cancelled.clone(), false),
            StatusOutcome::Reversed
        ));
        assert!(matches!(
            status_outcome(cancelled, true),
            StatusOutcome::Unknown { .. }
        ));
        assert!(matches!(
            status_outcome(CableStatus::NotFound, false),
            StatusOutcome::NeedsOperator { .. }
        ));
        assert!(matches!(
            status_outcome(CableStatus::NotFound, true),
            StatusOutcome::Unknown { .. }
        ));
    }

    #[test]
    fn summaries_and_refusals_follow_the_spec() {
        assert_eq!(payment_summary_of("YX2019000123"), "收视费YX2019000123");
        let date = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(
            settlement_summary_of("YX0001", date),
            "收视费结算YX000120261202"
        );
        // Both fit the core's 40-byte GBK Summary.
        let gbk = |s: &str| {
            codecs::text::encode(s, codecs::text::Charset::Gbk)
                .unwrap()
                .len()
        };
        assert_eq!(gbk(&payment_summary_of("YX2019000123")), 18);
        assert_eq!(gbk(&settlement_summary_of("YX0001", date)), 24);
        assert_eq!(
            refusal_reason_of("01"),
            Some(RefusalReason::CustomerNotFound)
        );
        assert_eq!(refusal_reason_of("02"), Some(RefusalReason::CustomerClosed));
        assert_eq!(refusal_reason_of("04"), Some(RefusalReason::NotPayableNow));
        assert_eq!(refusal_reason_of("05"), Some(RefusalReason::AmountMismatch));
        assert_eq!(refusal_reason_of("03"), None);
        assert_eq!(PURPOSE, "YXCATV");
    }

    #[test]
    fn a_3001_is_re_sent_after_5_s_doubling_to_5_minutes() {
        let secs: Vec<i64> = (0..9)
            .map(|a| cancel_retry_after(a).num_seconds())
            .collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(cancel_retry_after(-1).num_seconds(), 5);
        assert_eq!(cancel_retry_after(i64::MAX).num_seconds(), 300);
    }

    #[test]
    fn a_re_sent_3001_keeps_the_time_of_its_first_send_until_answered() {
        let times = FrameTimes::default();
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
        assert_eq!(times.time_for(date, "B1", t(10, 0, 0)), t(10, 0, 0));
        assert_eq!(times.time_for(date, "B1", t(10, 0, 15)), t(10, 0, 0));
        assert_eq!(times.time_for(date, "B2", t(10, 0, 20)), t(10, 0, 20));
        times.forget(date, "B1");
        assert_eq!(times.time_for(date, "B1", t(10, 1, 0)), t(10, 1, 0));
    }

    #[test]
    fn channel_codes_follow_the_header_table() {
        assert_eq!(channel_code(&Channel::Counter), "GT");
        assert_eq!(channel_code(&Channel::Mobile), "SJ");
        assert_eq!(channel_code(&Channel::Online), "WY");
        assert_eq!(channel_code(&Channel::SelfService), "ZZ");
    }
}
