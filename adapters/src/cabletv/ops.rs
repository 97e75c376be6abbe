//! The cable company's operations, typed, over the link; outcomes with the SPI's semantics:
//! anything after a request may have left is `Unknown`, never a failure; nothing is re-sent here.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use codecs::clock::{yyyymmdd, SharedClock};
use codecs::Money;
use tokio::sync::mpsc;

use super::link::{self, CallError, Caller, Inner, LinkSettings, PartnerStatus, SerialSource};
use super::wire::{Decoded, TxCode, WireError, YearMonth};
use crate::spi::PartnerReply;

/// The least time between two downloads started by refusals from the cached prices.
pub const CACHE_REFUSAL_REFRESH_GAP: std::time::Duration = std::time::Duration::from_secs(30);

/// One price row of 6001.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceRow {
    pub package_code: String,
    pub package_name: String,
    pub year: i32,
    pub monthly_fee: Money,
    pub on_sale: bool,
}

/// The parameter cache, replaced in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSet {
    pub version: u64,
    pub rows: Vec<PriceRow>,
}

impl ParamSet {
    pub fn fee(&self, package_code: &str, year: i32) -> Option<Money> {
        self.rows
            .iter()
            .find(|r| r.package_code == package_code && r.year == year)
            .map(|r| r.monthly_fee)
    }

    /// Σ of the monthly fees of `months` months after `paid_through`, by each month's year.
    pub fn amount_for(
        &self,
        package_code: &str,
        paid_through: YearMonth,
        months: u32,
    ) -> Option<Money> {
        let mut month = paid_through;
        let mut total = Money::ZERO;
        for _ in 0..months {
            month = month.next();
            total = total.checked_add(self.fee(package_code, month.year)?)?;
        }
        Some(total)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageState {
    pub package_code: String,
    pub package_name: String,
    pub monthly_fee: Money,
    pub paid_through: YearMonth,
    pub arrears_months: u32,
    pub arrears_amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub customer_no: String,
    pub name: String,
    pub address: String,
    pub card_no: String,
    pub user_status: u8,
    pub packages: Vec<PackageState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKey {
    CustomerNo(String),
    CardNo(String),
}

#[derive(Clone, Debug)]
pub struct PayRequest {
    pub customer_no: String,
    pub package_code: String,
    pub months: u32,
    pub amount: Money,
    pub payer_account: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayOutcome {
    Paid {
        cable_serial: String,
        acct_date: NaiveDate,
        paid_from: YearMonth,
        paid_through: YearMonth,
    },
    /// Nothing was written off, definitely (including: never sent). 05 means re-download prices.
    Refused(PartnerReply),
    /// Timeout, 99, a dropped link, a bad answer MAC: send 3001 for it (Channel XT), never the pay.
    Unknown { reason: String },
}

/// The original a 3001 (缴费取消) or 4001 is about.
#[derive(Clone, Debug)]
pub struct OriginalPay {
    pub serial: String,
    pub tx_date: NaiveDate,
    pub customer_no: String,
    pub amount: Money,
}

/// 3001's answers. 撤销 (cancellation) here; the cable company has no separate 冲正 message: a
/// timed-out pay is resolved by a 3001 with Channel XT, which the engine journals as a reversal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// 00, with PaidThrough after the cancel.
    Cancelled {
        paid_through: YearMonth,
    },
    /// 20: nothing was paid; the cable company keeps the serial (a late original gets 21).
    OriginalNotFound,
    /// 21.
    AlreadyCancelled,
    /// 22: not the current day or past 23:50.
    NotCancellableNow,
    /// 23: CustomerNo or Amount differ.
    OriginalDiffers,
    /// 24: a later payment of that customer and package exists.
    LaterPaymentExists,
    /// 40, 90, 91, 92 and the like: re-send after reconnect with backoff.
    Refused(PartnerReply),
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    Paid {
        cable_serial: String,
        acct_date: NaiveDate,
        amount: Money,
    },
    Cancelled {
        cable_serial: String,
        acct_date: NaiveDate,
        amount: Money,
    },
    /// Status 3: not found (a late original may still be accepted: 4001 never fences).
    NotFound,
    Refused(PartnerReply),
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statistics {
    pub pay_count: u64,
    pub pay_amount: Money,
    pub cancel_count: u64,
    pub cancel_amount: Money,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub amount: Money,
    /// Result 0 equal, 1 differ.
    pub equal: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailRecord {
    pub serial: String,
    pub tx_date: NaiveDate,
    pub cable_serial: String,
    pub customer_no: String,
    pub package_code: String,
    pub months: u32,
    pub amount: Money,
    pub channel: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailPage {
    pub total_count: u64,
    pub total_pages: u64,
    pub page_no: u64,
    pub records: Vec<DetailRecord>,
}

/// Errors of calls that move no money.
#[derive(Debug, thiserror::Error)]
pub enum CableError {
    #[error("有线电视公司拒绝：{} {}", .0.code, .0.message)]
    Refused(PartnerReply),
    #[error("有线电视公司通讯失败：{0}")]
    Call(#[from] CallError),
    #[error("有线电视公司应答报文错误：{0}")]
    Garbled(#[from] WireError),
    #[error("对账不平：{0}")]
    Reconcile(String),
}

impl CableError {
    pub fn code(&self) -> &'static str {
        match self {
            CableError::Refused(_) => "CATV_REFUSED",
            CableError::Call(CallError::NotSent(_)) => "CATV_NOT_SENT",
            CableError::Call(CallError::Lost(_)) => "CATV_LOST",
            CableError::Garbled(_) => "CATV_GARBLED",
            CableError::Reconcile(_) => "CATV_RECONCILE",
        }
    }
}

fn reply_of(decoded: &Decoded) -> PartnerReply {
    PartnerReply {
        code: decoded.header.rsp_code.clone(),
        message: decoded.header.rsp_msg.clone(),
    }
}

fn local_reply(code: &str, message: &str) -> PartnerReply {
    PartnerReply {
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// The cable company as the hub sees it: one link, its parameter cache, the operations.
#[derive(Clone)]
pub struct CableTv {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CableTv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CableTv")
            .field("addr", &self.inner.addr)
            .field("bank_code", &self.inner.bank_code)
            .finish()
    }
}

impl CableTv {
    /// Starts the link task (connect, sign in, heartbeats, reconnect) and the parameter refresher.
    pub fn start(
        addr: String,
        bank_code: String,
        key: Vec<u8>,
        settings: LinkSettings,
        clock: SharedClock,
        serials: SerialSource,
    ) -> CableTv {
        let inner = Arc::new(Inner::new(addr, bank_code, key, settings, clock, serials));
        let (status_tx, mut status_rx) = mpsc::unbounded_channel::<PartnerStatus>();
        tokio::spawn(link::run(inner.clone(), status_tx));
        let tv = CableTv { inner };
        let refresher = tv.clone();
        tokio::spawn(async move {
            while let Some(status) = status_rx.recv().await {
                let cached = refresher.inner.cached_param_version.load(Ordering::SeqCst);
                // After the year-end resumption a download is due whatever the version says:
                // only it ends the stop (spec 04, year-end step 3).
                if status.param_version != cached
                    || cached == 0
                    || refresher.inner.year_end_awaiting_parameters()
                {
                    if let Err(e) = refresher.refresh_parameters().await {
                        tracing::warn!(error = %e, "Cable TV parameter download failed.");
                    }
                }
            }
        });
        tv
    }

    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    pub fn signed_in(&self) -> bool {
        self.inner.signed_in()
    }

    /// Resolves once [`CableTv::shutdown`] was called (tasks tied to the link end with it).
    pub async fn stopped(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// The year-end stop of channel money on a signed-in link: from 22:55:00 on 31 December
    /// until the cable company shows the new year and the new prices are cached.
    pub fn in_year_end_stop(&self) -> bool {
        self.inner.signed_in() && !self.accepting_channel_money()
    }

    pub fn status(&self) -> Option<PartnerStatus> {
        *self.inner.status.borrow()
    }

    /// Answers that matched nothing pending and were dropped (late answers).
    pub fn stray_answers(&self) -> u64 {
        self.inner.stray_answers.load(Ordering::SeqCst)
    }

    /// TCP connections made so far (a reconnect adds one).
    pub fn connects(&self) -> u64 {
        self.inner.connects.load(Ordering::SeqCst)
    }

    pub fn parameters(&self) -> Option<ParamSet> {
        self.inner.params.read().ok().and_then(|p| p.clone())
    }

    /// A hub-originated caller (Channel XT, teller SYSTEM, an `XT…` serial).
    pub async fn system_caller(&self) -> Result<Caller, CallError> {
        self.inner.system_caller().await
    }

    /// A 6001 in the background after the hub refused a pay from its cached prices (04 / 05 of its
    /// own pre-debit check): the cable company would answer 05 and the hub re-download (spec 04),
    /// but the hub's own refusal never reaches it, so a stale cache would refuse every such pay.
    /// At most one per [`CACHE_REFUSAL_REFRESH_GAP`], so that a burst of refusals is one download.
    pub fn refresh_after_cache_refusal(&self) {
        if self.inner.cache_refresh_due(CACHE_REFUSAL_REFRESH_GAP) {
            self.refresh_in_background();
        }
    }

    fn refresh_in_background(&self) {
        let tv = self.clone();
        tokio::spawn(async move {
            if let Err(e) = tv.refresh_parameters().await {
                tracing::warn!(error = %e, "Cable TV parameter download failed.");
            }
        });
    }

    /// Whether channel pays and cancels are accepted now: a signed-in link, not from 22:55 on 31
    /// December until a new-year status with ServiceState 0 and a fresh parameter download.
    pub fn accepting_channel_money(&self) -> bool {
        if !self.inner.signed_in() || self.inner.year_end_stop() {
            return false;
        }
        let today = self.inner.clock.today();
        if today.month() == 1 && today.day() == 1 {
            let resumed = self
                .status()
                .is_some_and(|s| s.service_state == 0 && s.partner_date.year() == today.year());
            let fresh = self.parameters().is_some_and(|p| {
                p.rows.iter().all(|r| r.year >= today.year() - 1)
                    && p.version == self.status().map_or(0, |s| s.param_version)
            });
            return resumed && fresh;
        }
        true
    }

    /// 6001, then the cache is replaced in one step.
    pub async fn refresh_parameters(&self) -> Result<ParamSet, CableError> {
        // Noted before sending: a 6001 that left before the year-end resumption carries the old
        // year's set and must not end the stop.
        let after_resume = self.inner.year_end_awaiting_parameters();
        let caller = self.inner.system_caller().await?;
        let cached = self.inner.cached_param_version.load(Ordering::SeqCst);
        let decoded = self
            .inner
            .call(TxCode::Parameters, &caller, |w| {
                w.n("ParamVersion", cached, 10)
            })
            .await?;
        if decoded.header.rsp_code != "00" {
            return Err(CableError::Refused(reply_of(&decoded)));
        }
        let mut r = decoded.reader();
        let version = r.n("ParamVersion", 10)?;
        let count = r.n("RowCount", 3)?;
        let mut rows = Vec::new();
        for _ in 0..count.min(160) {
            rows.push(PriceRow {
                package_code: r.an("PackageCode", 6)?,
                package_name: r.c("PackageName", 30)?,
                year: i32::try_from(r.n("Year", 4)?).unwrap_or(0),
                monthly_fee: r.money("MonthlyFee", 8)?,
                on_sale: r.n("SaleStatus", 1)? == 1,
            });
        }
        r.finish()?;
        let set = ParamSet { version, rows };
        if let Ok(mut slot) = self.inner.params.write() {
            *slot = Some(set.clone());
        }
        self.inner
            .cached_param_version
            .store(version, Ordering::SeqCst);
        self.inner.parameters_replaced(after_resume);
        Ok(set)
    }

    /// 2001.
    pub async fn query(&self, caller: &Caller, key: &QueryKey) -> Result<Customer, CableError> {
        let (kind, value) = match key {
            QueryKey::CustomerNo(v) => (1, v.as_str()),
            QueryKey::CardNo(v) => (2, v.as_str()),
        };
        let decoded = self
            .inner
            .call(TxCode::CustomerQuery, caller, |w| {
                w.n("QueryType", kind, 1)?;
                w.an("QueryKey", value, 20)
            })
            .await?;
        if decoded.header.rsp_code != "00" {
            return Err(CableError::Refused(reply_of(&decoded)));
        }
        let mut r = decoded.reader();
        let customer_no = r.an("CustomerNo", 12)?;
        let name = r.c("CustomerName", 40)?;
        let address = r.c("Address", 60)?;
        let card_no = r.an("CardNo", 16)?;
        let user_status = u8::try_from(r.n("UserStatus", 1)?).unwrap_or(0);
        let count = r.n("PkgCount", 1)?;
        let mut packages = Vec::new();
        for _ in 0..count {
            packages.push(PackageState {
                package_code: r.an("PackageCode", 6)?,
                package_name: r.c("PackageName", 30)?,
                monthly_fee: r.money("MonthlyFee", 8)?,
                paid_through: r.month("PaidThrough")?,
                arrears_months: u32::try_from(r.n("ArrearsMonths", 3)?).unwrap_or(0),
                arrears_amount: r.money("ArrearsAmount", 10)?,
            });
        }
        r.finish()?;
        Ok(Customer {
            customer_no,
            name,
            address,
            card_no,
            user_status,
            packages,
        })
    }

    /// 2002. Refused without sending while channel money is stopped (no link, year-end).
    pub async fn pay(&self, caller: &Caller, order: &PayRequest) -> PayOutcome {
        if !self.accepting_channel_money() {
            return PayOutcome::Refused(local_reply(
                "CATV_CLOSED",
                "有线电视缴费暂停（未签到或年终结转）",
            ));
        }
        if !(1..=36).contains(&order.months) || !order.amount.is_positive() {
            return PayOutcome::Refused(local_reply("ADP_INPUT", "缴费月数或金额不合规"));
        }
        let result = self
            .inner
            .call(TxCode::Pay, caller, |w| {
                w.an("CustomerNo", &order.customer_no, 12)?;
                w.an("PackageCode", &order.package_code, 6)?;
                w.n("Months", u64::from(order.months), 3)?;
                w.money("Amount", order.amount, 10)?;
                w.an("PayerAccount", &order.payer_account, 32)
            })
            .await;
        let decoded = match result {
            Ok(decoded) => decoded,
            Err(CallError::NotSent(reason)) => {
                return PayOutcome::Refused(local_reply("CATV_NOT_SENT", &reason))
            }
            Err(CallError::Lost(reason)) => return PayOutcome::Unknown { reason },
        };
        match decoded.header.rsp_code.as_str() {
            "00" => {
                let mut r = decoded.reader();
                let parsed = (|| -> Result<PayOutcome, WireError> {
                    let cable_serial = r.an("CableSerial", 20)?;
                    let acct_date = r.date("AcctDate")?;
                    let paid_from = r.month("PaidFrom")?;
                    let paid_through = r.month("PaidThrough")?;
                    Ok(PayOutcome::Paid {
                        cable_serial,
                        acct_date,
                        paid_from,
                        paid_through,
                    })
                })();
                parsed.unwrap_or_else(|e| PayOutcome::Unknown {
                    reason: e.to_string(),
                })
            }
            "99" => PayOutcome::Unknown {
                reason: "99 系统错误".to_string(),
            },
            "05" => {
                // The hub's prices are stale: re-download, then refuse this one.
                self.refresh_in_background();
                PayOutcome::Refused(reply_of(&decoded))
            }
            _ => PayOutcome::Refused(reply_of(&decoded)),
        }
    }

    /// 3001 缴费取消: a channel's same-day cancellation (撤销), or with a system caller the
    /// resolution of a pay in doubt.
    pub async fn cancel(&self, caller: &Caller, original: &OriginalPay) -> CancelOutcome {
        let result = self
            .inner
            .call(TxCode::Cancel, caller, |w| {
                w.an("OrigSerial", &original.serial, 20)?;
                w.date("OrigTxDate", original.tx_date)?;
                w.an("CustomerNo", &original.customer_no, 12)?;
                w.money("Amount", original.amount, 10)
            })
            .await;
        let decoded = match result {
            Ok(decoded) => decoded,
            Err(CallError::NotSent(reason)) => {
                return CancelOutcome::Refused(local_reply("CATV_NOT_SENT", &reason))
            }
            Err(CallError::Lost(reason)) => return CancelOutcome::Unknown { reason },
        };
        match decoded.header.rsp_code.as_str() {
            "00" => {
                let mut r = decoded.reader();
                match r.month("PaidThrough") {
                    Ok(paid_through) => CancelOutcome::Cancelled { paid_through },
                    Err(e) => CancelOutcome::Unknown {
                        reason: e.to_string(),
                    },
                }
            }
            "20" => CancelOutcome::OriginalNotFound,
            "21" => CancelOutcome::AlreadyCancelled,
            "22" => CancelOutcome::NotCancellableNow,
            "23" => CancelOutcome::OriginalDiffers,
            "24" => CancelOutcome::LaterPaymentExists,
            "99" => CancelOutcome::Unknown {
                reason: "99 系统错误".to_string(),
            },
            _ => CancelOutcome::Refused(reply_of(&decoded)),
        }
    }

    /// A channel's cancel: refused by the hub from 23:50:00 (its clock) and while money is stopped.
    pub async fn channel_cancel(&self, caller: &Caller, original: &OriginalPay) -> CancelOutcome {
        let cutoff = chrono::NaiveTime::from_hms_opt(23, 50, 0).unwrap_or_default();
        if self.inner.clock.now().time() >= cutoff || !self.accepting_channel_money() {
            return CancelOutcome::Refused(local_reply("CATV_CANCEL_CLOSED", "已过当日取消时限"));
        }
        self.cancel(caller, original).await
    }

    /// 4001.
    pub async fn status_of(
        &self,
        caller: &Caller,
        serial: &str,
        tx_date: NaiveDate,
    ) -> StatusOutcome {
        let result = self
            .inner
            .call(TxCode::Status, caller, |w| {
                w.an("OrigSerial", serial, 20)?;
                w.date("OrigTxDate", tx_date)
            })
            .await;
        let decoded = match result {
            Ok(decoded) => decoded,
            Err(CallError::NotSent(reason)) => {
                return StatusOutcome::Refused(local_reply("CATV_NOT_SENT", &reason))
            }
            Err(CallError::Lost(reason)) => return StatusOutcome::Unknown { reason },
        };
        if decoded.header.rsp_code != "00" {
            return StatusOutcome::Refused(reply_of(&decoded));
        }
        let mut r = decoded.reader();
        let parsed = (|| -> Result<StatusOutcome, WireError> {
            let status = r.n("Status", 1)?;
            let cable_serial = r.an("CableSerial", 20)?;
            let acct_date = r.optional_date("AcctDate")?;
            let amount = r.money("Amount", 10)?;
            r.finish()?;
            Ok(match (status, acct_date) {
                (1, Some(acct_date)) => StatusOutcome::Paid {
                    cable_serial,
                    acct_date,
                    amount,
                },
                (2, Some(acct_date)) => StatusOutcome::Cancelled {
                    cable_serial,
                    acct_date,
                    amount,
                },
                (3, _) => StatusOutcome::NotFound,
                _ => StatusOutcome::Unknown {
                    reason: format!("未知的交易状态{status}"),
                },
            })
        })();
        parsed.unwrap_or_else(|e| StatusOutcome::Unknown {
            reason: e.to_string(),
        })
    }

    /// 4002, at most 31 days counting both ends (checked here before sending).
    pub async fn statistics(
        &self,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Statistics, CableError> {
        if start > end || (end - start).num_days() > 30 {
            return Err(CableError::Call(CallError::NotSent(
                "统计区间须为1至31天".to_string(),
            )));
        }
        let caller = self.inner.system_caller().await?;
        let decoded = self
            .inner
            .call(TxCode::Statistics, &caller, |w| {
                w.date("StartDate", start)?;
                w.date("EndDate", end)
            })
            .await?;
        if decoded.header.rsp_code != "00" {
            return Err(CableError::Refused(reply_of(&decoded)));
        }
        let mut r = decoded.reader();
        let stats = Statistics {
            pay_count: r.n("PayCount", 8)?,
            pay_amount: r.money("PayAmount", 14)?,
            cancel_count: r.n("CancelCount", 8)?,
            cancel_amount: r.money("CancelAmount", 14)?,
        };
        r.finish()?;
        Ok(stats)
    }

    async fn totals(
        &self,
        tx: TxCode,
        write: impl FnOnce(&mut super::wire::FieldWriter) -> Result<(), WireError>,
    ) -> Result<Totals, CableError> {
        let caller = self.inner.system_caller().await?;
        let decoded = self.inner.call(tx, &caller, write).await?;
        if decoded.header.rsp_code != "00" {
            return Err(CableError::Refused(reply_of(&decoded)));
        }
        let mut r = decoded.reader();
        let totals = Totals {
            count: r.n("CableCount", 8)?,
            amount: r.money("CableAmount", 14)?,
            equal: r.n("Result", 1)? == 0,
        };
        r.finish()?;
        Ok(totals)
    }

    /// 5001 (31 until 01:00 on D+1: the caller retries every 15 min).
    pub async fn daily_totals(
        &self,
        acct_date: NaiveDate,
        bank_count: u64,
        bank_amount: Money,
    ) -> Result<Totals, CableError> {
        self.totals(TxCode::DailyTotals, |w| {
            w.date("AcctDate", acct_date)?;
            w.n("BankCount", bank_count, 8)?;
            w.money("BankAmount", bank_amount, 14)
        })
        .await
    }

    /// 5003 for a closed year, with the hub's standing count and sum of that year.
    pub async fn year_totals(
        &self,
        year: i32,
        bank_count: u64,
        bank_amount: Money,
    ) -> Result<Totals, CableError> {
        let year = u64::try_from(year).unwrap_or(0);
        self.totals(TxCode::YearTotals, |w| {
            w.n("Year", year, 4)?;
            w.n("BankCount", bank_count, 8)?;
            w.money("BankAmount", bank_amount, 14)
        })
        .await
    }

    /// 5002, one page.
    pub async fn detail_page(
        &self,
        acct_date: NaiveDate,
        page_no: u64,
    ) -> Result<DetailPage, CableError> {
        let caller = self.inner.system_caller().await?;
        let decoded = self
            .inner
            .call(TxCode::DetailPage, &caller, |w| {
                w.date("AcctDate", acct_date)?;
                w.n("PageNo", page_no, 4)
            })
            .await?;
        if decoded.header.rsp_code != "00" {
            return Err(CableError::Refused(reply_of(&decoded)));
        }
        let mut r = decoded.reader();
        let total_count = r.n("TotalCount", 8)?;
        let total_pages = r.n("TotalPages", 4)?;
        let page = r.n("PageNo", 4)?;
        let count = r.n("RecCount", 2)?;
        if count > 50 {
            return Err(CableError::Garbled(WireError::Protocol(format!(
                "RecCount {count} > 50"
            ))));
        }
        let mut records = Vec::new();
        for _ in 0..count {
            records.push(DetailRecord {
                serial: r.an("Serial", 20)?,
                tx_date: r.date("TxDate")?,
                cable_serial: r.an("CableSerial", 20)?,
                customer_no: r.an("CustomerNo", 12)?,
                package_code: r.an("PackageCode", 6)?,
                months: u32::try_from(r.n("Months", 3)?).unwrap_or(0),
                amount: r.money("Amount", 10)?,
                channel: r.an("Channel", 2)?,
            });
        }
        r.finish()?;
        Ok(DetailPage {
            total_count,
            total_pages,
            page_no: page,
            records,
        })
    }

    /// 5001 then every 5002 page; if the pages disagree with 5001, fetches once more, then errs
    /// (the caller alerts). Returns the totals and the records in page order.
    pub async fn reconcile_day(
        &self,
        acct_date: NaiveDate,
        bank_count: u64,
        bank_amount: Money,
    ) -> Result<(Totals, Vec<DetailRecord>), CableError> {
        let totals = self
            .daily_totals(acct_date, bank_count, bank_amount)
            .await?;
        for _attempt in 0..2 {
            let mut records = Vec::new();
            let mut page_no = 1;
            loop {
                let page = self.detail_page(acct_date, page_no).await?;
                records.extend(page.records);
                // TotalPages bounds the loop; 9999 is the field's own maximum.
                if page_no >= page.total_pages || page_no >= 9_999 {
                    break;
                }
                page_no += 1;
            }
            let sum = records
                .iter()
                .try_fold(Money::ZERO, |acc, r| acc.checked_add(r.amount));
            if records.len() as u64 == totals.count && sum == Some(totals.amount) {
                return Ok((totals, records));
            }
        }
        Err(CableError::Reconcile(format!(
            "{} 明细与5001总数不符（{}笔 {}分）",
            yyyymmdd(acct_date),
            totals.count,
            totals.amount.fen()
        )))
    }
}
