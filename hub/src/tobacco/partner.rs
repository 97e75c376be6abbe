//! The tobacco orders as a [`BillPartner`], so channels query and pay them through the engine like
//! any bill. Orders live in the hub (spec 09): no call leaves the hub, the write-off is the
//! order's 2 → 3 update with its outbox row, and the bureau learns of it from the outbox.

use adapters::spi::{
    AdapterError, Bill, BillItem, BillPartner, Channel, DailyFile, DailyRecord, OriginalRef,
    PartnerReply, PayOrder, PayOutcome, QueryOutcome, RefusalReason, RequestContext,
    ReversalOutcome, StatusOutcome, UnconfirmedPayment,
};
use adapters::tobacco::daily_file::{file_name, parse_daily_file};
use adapters::tobacco::{OrderState, PayChannel};
use chrono::NaiveDate;
use codecs::Money;

use super::store::{PayRefusal, TobaccoStore};

/// The payee code channels use for the bureau.
pub const PAYEE: &str = "TOBACCO";
/// Purpose of tobacco postings (core-banking.md).
pub const PURPOSE: &str = "430600";

pub struct TobaccoPartner {
    store: TobaccoStore,
    bureau_code: String,
    bank_code: String,
}

fn refused(code: &str, message: &str) -> PartnerReply {
    PartnerReply {
        code: code.to_string(),
        message: message.to_string(),
    }
}

fn refusal_reply(refusal: &PayRefusal) -> PartnerReply {
    refused(refusal.code(), &refusal.to_string())
}

/// The spi numbers channels its own way (03 self-service, 04 online); spec 09 the other way round.
fn pay_channel(channel: &Channel) -> PayChannel {
    match channel {
        Channel::Counter => PayChannel::Counter,
        Channel::Mobile => PayChannel::Mobile,
        Channel::SelfService => PayChannel::SelfService,
        Channel::Online => PayChannel::Online,
        Channel::Nongxinyin => PayChannel::Nongxinyin,
    }
}

impl TobaccoPartner {
    pub fn new(
        store: TobaccoStore,
        bureau_code: impl Into<String>,
        bank_code: impl Into<String>,
    ) -> TobaccoPartner {
        TobaccoPartner {
            store,
            bureau_code: bureau_code.into(),
            bank_code: bank_code.into(),
        }
    }

    /// acctDate is the core's date of the 8002 (spec 09), which the engine journaled before it
    /// asked for the write-off; the hub's date only if the journal has none.
    async fn core_date(&self, hub_serial: &str, fallback: NaiveDate) -> NaiveDate {
        let found: Result<Option<Option<String>>, sqlx::Error> =
            sqlx::query_scalar("SELECT core_date FROM payments WHERE hub_serial = ?")
                .bind(hub_serial)
                .fetch_optional(self.store.pool())
                .await;
        found
            .ok()
            .flatten()
            .flatten()
            .and_then(|text| codecs::clock::parse_yyyymmdd(&text))
            .unwrap_or(fallback)
    }
}

#[async_trait::async_trait]
impl BillPartner for TobaccoPartner {
    fn payee(&self) -> &str {
        PAYEE
    }

    fn instance(&self) -> &str {
        &self.bureau_code
    }

    async fn query(
        &self,
        _ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError> {
        let row = self
            .store
            .lookup_by_order(customer_no)
            .await
            .map_err(|e| AdapterError::Transport(e.to_string()))?;
        let refusal = match row {
            None => PayRefusal::NoSuchOrder,
            Some(row) => match row.state {
                OrderState::Unpaid => {
                    let order = row.order;
                    return Ok(QueryOutcome::Bill(Bill {
                        customer_no: order.order_no,
                        customer_name: order.retailer_name,
                        address: String::new(),
                        total_due: order.amount,
                        prepaid: Money::ZERO,
                        items: vec![BillItem {
                            period: order.order_date.format("%Y%m").to_string(),
                            amount: order.amount,
                            penalty: Money::ZERO,
                            usage: None,
                        }],
                        nothing_due: false,
                        meter_no: None,
                    }));
                }
                OrderState::Paying => PayRefusal::InProgress,
                OrderState::Paid => PayRefusal::AlreadyPaid,
                OrderState::Cancelled => PayRefusal::Cancelled,
            },
        };
        Ok(QueryOutcome::Refused(refusal_reply(&refusal)))
    }

    /// Spec 09: 1 → 2 when the payment is accepted, journaled before the core call, so that a
    /// bureau cancel meanwhile gets 3003 and a second payment of the order is refused before
    /// anyone is debited.
    async fn before_debit(
        &self,
        ctx: &RequestContext,
        order: &PayOrder,
    ) -> Result<(), PartnerReply> {
        match self
            .store
            .begin_payment(&order.customer_no, order.pay_amount, &ctx.bank_serial)
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(refusal)) => Err(refusal_reply(&refusal)),
            Err(e) => Err(refused(e.code(), &e.to_string())),
        }
    }

    /// Spec 09: 2 → 1 when the debit failed (or 8004 said R, or N then 8003).
    async fn release_hold(&self, ctx: &RequestContext, order: &PayOrder) {
        if let Err(e) = self
            .store
            .payment_failed(&order.customer_no, &ctx.bank_serial)
            .await
        {
            // The next payment or cancel of the order repairs it from the journal.
            tracing::error!(hub_serial = %ctx.bank_serial, error = %e, "Could not release the tobacco order.");
        }
    }

    /// Spec 09: an unknown debit keeps the order in 2 while 8004 is asked; S → 3.
    fn writes_off_late_debit(&self) -> bool {
        true
    }

    async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome {
        let order_no = order.customer_no.as_str();
        let serial = ctx.bank_serial.as_str();
        let acct_date = self.core_date(serial, ctx.tx_date).await;
        match self
            .store
            .payment_succeeded(order_no, serial, acct_date, pay_channel(&ctx.channel))
            .await
        {
            Ok(true) => PayOutcome::Paid {
                partner_serial: order_no.to_string(),
                acct_date,
                prepaid: Money::ZERO,
            },
            // The one conditional update did not apply: nothing was written off under this
            // serial (unless an earlier attempt already did), so the engine gives the debit back.
            Ok(false) => match self.store.order(order_no).await {
                Ok(Some(row))
                    if row.state == OrderState::Paid
                        && row.bank_serial.as_deref() == Some(serial) =>
                {
                    PayOutcome::Paid {
                        partner_serial: order_no.to_string(),
                        acct_date,
                        prepaid: Money::ZERO,
                    }
                }
                Ok(row) => {
                    let refusal = match row.map(|r| r.state) {
                        None => PayRefusal::NoSuchOrder,
                        Some(OrderState::Paid) => PayRefusal::AlreadyPaid,
                        Some(OrderState::Cancelled) => PayRefusal::Cancelled,
                        Some(OrderState::Paying | OrderState::Unpaid) => PayRefusal::InProgress,
                    };
                    PayOutcome::Refused(refusal_reply(&refusal))
                }
                Err(e) => PayOutcome::Unknown {
                    reason: format!("{}: {e}", e.code()),
                },
            },
            // The order stays 2 under our serial; the engine's reversal puts it back to 1.
            Err(e) => PayOutcome::Unknown {
                reason: format!("{}: {e}", e.code()),
            },
        }
    }

    async fn reverse(&self, _ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        let row = match self.store.order(&original.customer_no).await {
            Ok(row) => row,
            Err(e) => {
                return ReversalOutcome::Unknown {
                    reason: e.to_string(),
                }
            }
        };
        let Some(row) = row else {
            return ReversalOutcome::OriginalNotFound;
        };
        if row.bank_serial.as_deref() != Some(original.bank_serial.as_str()) {
            return ReversalOutcome::OriginalNotFound;
        }
        match row.state {
            OrderState::Paying => {
                match self
                    .store
                    .payment_failed(&original.customer_no, &original.bank_serial)
                    .await
                {
                    Ok(true) => ReversalOutcome::Reversed,
                    Ok(false) => ReversalOutcome::Unknown {
                        reason: "烟草订单状态已变化".into(),
                    },
                    Err(e) => ReversalOutcome::Unknown {
                        reason: e.to_string(),
                    },
                }
            }
            // Spec 09: a paid order is never reversed, not even the same day; the status query
            // this answer leads to tells the engine it stays paid.
            OrderState::Paid => ReversalOutcome::TooLate,
            OrderState::Unpaid | OrderState::Cancelled => ReversalOutcome::OriginalNotFound,
        }
    }

    async fn status(&self, _ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome {
        let row = match self.store.order(&original.customer_no).await {
            Ok(row) => row,
            Err(e) => {
                return StatusOutcome::Unknown {
                    reason: e.to_string(),
                }
            }
        };
        let Some(row) =
            row.filter(|r| r.bank_serial.as_deref() == Some(original.bank_serial.as_str()))
        else {
            return StatusOutcome::NotFound;
        };
        match row.state {
            OrderState::Paid => {
                let acct_date = row
                    .acct_date
                    .as_deref()
                    .and_then(codecs::clock::parse_yyyymmdd)
                    .unwrap_or(original.tx_date);
                StatusOutcome::WrittenOff {
                    partner_serial: row.order.order_no,
                    acct_date,
                    amount: row.order.amount,
                }
            }
            // Left in 2 by a failed write: never paid, so back to payable and fenced.
            OrderState::Paying => {
                match self
                    .store
                    .payment_failed(&original.customer_no, &original.bank_serial)
                    .await
                {
                    Ok(true) => StatusOutcome::NotFound,
                    Ok(false) => StatusOutcome::Unknown {
                        reason: "烟草订单状态已变化".into(),
                    },
                    Err(e) => StatusOutcome::Unknown {
                        reason: e.to_string(),
                    },
                }
            }
            OrderState::Unpaid | OrderState::Cancelled => StatusOutcome::NotFound,
        }
    }

    fn daily_files(&self, acct_date: NaiveDate) -> Vec<String> {
        vec![file_name(&self.bank_code, acct_date)]
    }

    fn parse_daily(&self, files: &[Vec<u8>]) -> Result<DailyFile, AdapterError> {
        let file_error = |reason: String| AdapterError::DailyFile { line: 1, reason };
        let [bytes] = files else {
            return Err(file_error(format!("须为一个文件，收到{}个", files.len())));
        };
        // The date is the first field of line 1; the parser checks it against itself then.
        let date = bytes
            .get(..8)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(codecs::clock::parse_yyyymmdd)
            .ok_or_else(|| file_error("首行 acctDate 不是日期".into()))?;
        let file = parse_daily_file(bytes, date).map_err(|e| file_error(e.to_string()))?;
        let records = file
            .lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| DailyRecord {
                line_no: i + 2,
                bank_serial: line.bank_serial,
                partner_serial: line.order_no.clone(),
                customer_no: line.order_no,
                amount: line.amount,
                tx_date: line.pay_time.date(),
                tx_time: line.pay_time.time(),
                channel: line.channel.code().to_string(),
            })
            .collect();
        Ok(DailyFile {
            acct_date: file.acct_date,
            records,
        })
    }

    /// Spec 09: the file confirms the notifications it lists; a paid order no file lists by its
    /// acctDate is notified again and reported 通知未确认.
    async fn daily_files_read(
        &self,
        acct_date: NaiveDate,
        files: &[Vec<u8>],
    ) -> Result<(), AdapterError> {
        let file_error = |reason: String| AdapterError::DailyFile { line: 1, reason };
        let [bytes] = files else {
            return Err(file_error(format!("须为一个文件，收到{}个", files.len())));
        };
        let file = parse_daily_file(bytes, acct_date).map_err(|e| file_error(e.to_string()))?;
        let report = super::file::reconcile_file(&self.store, &file)
            .await
            .map_err(|e| AdapterError::Transport(e.to_string()))?;
        if !report.unconfirmed.is_empty() {
            tracing::warn!(
                count = report.unconfirmed.len(),
                "烟草缴费通知未确认 (paid orders missing from the bureau's file): notified again."
            );
        }
        Ok(())
    }

    /// Spec 09: the money is the bureau's once the order is paid; its file confirms the
    /// notifications, late ones in the first file cut after them.
    fn file_confirms_only(&self) -> bool {
        true
    }

    /// Spec 09: "The engine matches on bankSerial across files". A line's date is its payTime,
    /// which is the day after acceptance for a payment accepted just before midnight (or one
    /// an 8004 resolved the next day).
    fn file_matches_on_bank_serial(&self) -> bool {
        true
    }

    /// Spec 09: an unlisted payment is "reported as 通知未确认 until a later file lists it", and
    /// after 72 h "reconciliation reports it as 通知未确认 until resolved": every later report
    /// carries the ones of earlier days.
    async fn unconfirmed_before(
        &self,
        acct_date: NaiveDate,
    ) -> Result<Vec<UnconfirmedPayment>, AdapterError> {
        let rows = self
            .store
            .unlisted_before(acct_date)
            .await
            .map_err(|e| AdapterError::Transport(format!("{}: {e}", e.code())))?;
        Ok(rows
            .into_iter()
            .map(|row| UnconfirmedPayment {
                notice: match row.status.as_str() {
                    "PENDING" => "对方文件未列出，重新通知中",
                    "ACKED" => "对方已应答通知，但文件未列出",
                    "REJECTED" => "对方拒绝通知(2005)，已停止重发，需人工处理",
                    "EXPIRED" => "72小时内未获确认，已停止重发，需人工处理",
                    _ => "通知状态未知，需人工核查",
                }
                .to_string(),
                bank_serial: row.notify_id,
                customer_no: row.order_no,
                amount: row.amount,
                acct_date: row.acct_date,
            })
            .collect())
    }

    fn purpose(&self) -> &str {
        PURPOSE
    }

    /// `烟草货款<orderNo>`: 8 + at most 32 bytes, within the 40 of the Summary.
    fn payment_summary(&self, customer_no: &str) -> String {
        format!("烟草货款{customer_no}")
    }

    fn settlement_code(&self) -> &str {
        &self.bank_code
    }

    fn settlement_summary(&self, acct_date: NaiveDate) -> String {
        format!(
            "烟草货款{}{}",
            self.bank_code,
            codecs::clock::yyyymmdd(acct_date)
        )
    }

    /// Spec 09: `orderNo` is 1–32 `[0-9A-Za-z]`, and the order number is the payment key; the
    /// SPI's default of 16 would refuse every order number of 17 to 32 characters.
    fn customer_no_max_len(&self) -> usize {
        32
    }

    /// Spec 09: retailers also pay through 农信银 (channel `05`).
    fn accepts_channel(&self, _channel: &Channel) -> bool {
        true
    }

    /// An order is paid exactly, never prepaid.
    fn accepts_prepayment(&self) -> bool {
        false
    }

    fn refusal_reason(&self, code: &str) -> Option<RefusalReason> {
        match code {
            "YC_NO_ORDER" => Some(RefusalReason::CustomerNotFound),
            "YC_CANCELLED" => Some(RefusalReason::CustomerClosed),
            "YC_PAID" => Some(RefusalReason::NothingDue),
            "YC_AMOUNT" => Some(RefusalReason::ArrearsChanged),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use adapters::tobacco::message::{PayableOrder, PushedOrder};
    use chrono::{NaiveDate, NaiveTime};
    use codecs::clock::{ManualClock, SharedClock};

    use super::*;
    use crate::journal::Journal;

    const ORDER: &str = "YC20261202000123";

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default()
    }

    fn ctx(serial: &str, channel: Channel) -> RequestContext {
        RequestContext {
            channel,
            branch_no: "000101".into(),
            teller_no: "T00001".into(),
            tx_date: day(),
            tx_time: NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default(),
            bank_serial: serial.into(),
        }
    }

    fn pay_order(amount_fen: i64) -> PayOrder {
        PayOrder {
            customer_no: ORDER.into(),
            pay_amount: Money::from_fen(amount_fen),
            total_due: Money::from_fen(amount_fen),
            payer_account: "6230901000000000011".into(),
            fields: Default::default(),
        }
    }

    fn original(serial: &str) -> OriginalRef {
        OriginalRef {
            bank_serial: serial.into(),
            tx_date: day(),
            customer_no: ORDER.into(),
            amount: Money::from_fen(1_256_800),
            total_due: Money::from_fen(1_256_800),
            fields: Default::default(),
            tx_time: Default::default(),
        }
    }

    /// A partner over a fresh journal holding the spec's example order (12 568.00 yuan).
    async fn partner() -> (TobaccoPartner, TobaccoStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let journal = Journal::open(&url).await.expect("journal");
        let clock: SharedClock = ManualClock::new(day().and_hms_opt(9, 30, 0).unwrap_or_default());
        let store = TobaccoStore::new(journal.pool().clone(), clock, "YYNS0001");
        let order = PayableOrder {
            order_no: ORDER.into(),
            licence_no: "430602100123".into(),
            retailer_name: "岳阳楼区张三便利店".into(),
            amount: Money::from_fen(1_256_800),
            order_date: day(),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap_or_default(),
            item_count: 7,
            items_summary: "卷烟7个品规，共25条".into(),
        };
        store
            .push("P202612020001", "00", &[PushedOrder::Valid(order)])
            .await
            .expect("push");
        let partner = TobaccoPartner::new(store.clone(), "430600", "YYNS0001");
        (partner, store, dir)
    }

    #[tokio::test]
    async fn query_shows_the_unpaid_order_as_a_bill_of_its_amount() {
        let (partner, _, _dir) = partner().await;
        let outcome = partner
            .query(&ctx("B2026120201000000001", Channel::Mobile), ORDER)
            .await
            .expect("query");
        let QueryOutcome::Bill(bill) = outcome else {
            panic!("expected a bill, got {outcome:?}");
        };
        assert_eq!(bill.customer_no, ORDER);
        assert_eq!(bill.customer_name, "岳阳楼区张三便利店");
        assert_eq!(bill.total_due, Money::from_fen(1_256_800));
        assert!(!bill.nothing_due);
        let unknown = partner
            .query(&ctx("B2026120201000000002", Channel::Mobile), "YC0")
            .await
            .expect("query");
        assert!(matches!(unknown, QueryOutcome::Refused(r) if r.code == "YC_NO_ORDER"));
    }

    #[tokio::test]
    async fn pay_makes_the_order_paid_with_one_notification_and_a_second_pay_is_refused() {
        let (partner, store, _dir) = partner().await;
        let serial = "B2026120201000000001";
        // The spi's 04 is online banking; spec 09 numbers online banking 03.
        partner
            .before_debit(&ctx(serial, Channel::Online), &pay_order(1_256_800))
            .await
            .expect("order held");
        assert_eq!(
            store.order(ORDER).await.expect("read").map(|r| r.state),
            Some(OrderState::Paying)
        );
        let outcome = partner
            .pay(&ctx(serial, Channel::Online), &pay_order(1_256_800))
            .await;
        let PayOutcome::Paid {
            partner_serial,
            acct_date,
            prepaid,
        } = outcome
        else {
            panic!("expected Paid, got {outcome:?}");
        };
        assert_eq!(partner_serial, ORDER);
        assert_eq!(acct_date, day());
        assert_eq!(prepaid, Money::ZERO);
        let row = store.order(ORDER).await.expect("read").expect("order");
        assert_eq!(row.state, OrderState::Paid);
        assert_eq!(row.bank_serial.as_deref(), Some(serial));
        assert_eq!(row.channel.as_deref(), Some("03"));
        let notification = store.notification(serial).await.expect("read");
        assert_eq!(notification.map(|n| n.status), Some("PENDING".to_string()));

        let again = partner
            .before_debit(
                &ctx("B2026120201000000002", Channel::Mobile),
                &pay_order(1_256_800),
            )
            .await;
        assert!(matches!(again, Err(r) if r.code == "YC_PAID"));
        // A write-off without the hold writes nothing.
        let unheld = partner
            .pay(
                &ctx("B2026120201000000002", Channel::Mobile),
                &pay_order(1_256_800),
            )
            .await;
        assert!(matches!(unheld, PayOutcome::Refused(r) if r.code == "YC_PAID"));
        // Spec 09: no reversal of a paid order, not even the same day.
        let reversal = partner
            .reverse(
                &ctx("B2026120201000000003", Channel::Counter),
                &original(serial),
            )
            .await;
        assert!(matches!(reversal, ReversalOutcome::TooLate));
        let status = partner
            .status(
                &ctx("B2026120201000000004", Channel::Counter),
                &original(serial),
            )
            .await;
        assert!(matches!(
            status,
            StatusOutcome::WrittenOff { ref partner_serial, acct_date, amount }
                if partner_serial == ORDER && acct_date == day() && amount == Money::from_fen(1_256_800)
        ));
    }

    #[tokio::test]
    async fn wrong_amount_is_refused_and_a_payment_left_in_progress_is_undone_by_reversal() {
        let (partner, store, _dir) = partner().await;
        let wrong = partner
            .before_debit(
                &ctx("B2026120201000000001", Channel::Mobile),
                &pay_order(1_256_700),
            )
            .await;
        assert!(matches!(wrong, Err(r) if r.code == "YC_AMOUNT"));
        // A write that failed after 1 → 2 leaves the order paying under the serial.
        let serial = "B2026120201000000002";
        let begun = store
            .begin_payment(ORDER, Money::from_fen(1_256_800), serial)
            .await
            .expect("db");
        assert!(begun.is_ok());
        let reversal = partner
            .reverse(
                &ctx("B2026120201000000003", Channel::Counter),
                &original(serial),
            )
            .await;
        assert!(matches!(reversal, ReversalOutcome::Reversed));
        let row = store.order(ORDER).await.expect("read").expect("order");
        assert_eq!(row.state, OrderState::Unpaid);
        let status = partner
            .status(
                &ctx("B2026120201000000004", Channel::Counter),
                &original(serial),
            )
            .await;
        assert!(matches!(status, StatusOutcome::NotFound));
    }

    #[tokio::test]
    async fn summaries_and_file_follow_the_spec() {
        let (partner, _, _dir) = partner().await;
        // 烟草货款 is 8 GBK bytes, the order number at most 32: 40 in all.
        let summary = partner.payment_summary("YC202612020001230000000000000000");
        assert_eq!(summary, "烟草货款YC202612020001230000000000000000");
        assert_eq!(
            codecs::text::byte_len(&summary, codecs::text::Charset::Gbk).ok(),
            Some(40)
        );
        assert_eq!(
            partner.settlement_summary(day()),
            "烟草货款YYNS000120261202"
        );
        assert_eq!(partner.purpose(), "430600");
        // Spec 09: orderNo is 1–32 characters, and the order number is the payment key.
        assert_eq!(partner.customer_no_max_len(), 32);
        assert_eq!(partner.payee(), "TOBACCO");
        assert_eq!(partner.instance(), "430600");
        assert_eq!(
            partner.daily_files(day()),
            vec!["YCJF_YYNS0001_20261202.txt".to_string()]
        );
        let file = b"20261202|1|1256800\nB2026120201000000001|YC20261202000123|430602100123|1256800|20261202093000|02\n";
        let parsed = partner.parse_daily(&[file.to_vec()]).expect("file");
        assert_eq!(parsed.acct_date, day());
        assert_eq!(parsed.records.len(), 1);
        let record = &parsed.records[0];
        assert_eq!(record.line_no, 2);
        assert_eq!(record.bank_serial, "B2026120201000000001");
        assert_eq!(record.customer_no, ORDER);
        assert_eq!(record.amount, Money::from_fen(1_256_800));
        assert_eq!(record.channel, "02");
        assert!(partner.parse_daily(&[]).is_err());
        assert!(partner.parse_daily(&[b"20261202|1|5\n".to_vec()]).is_err());
    }
}
