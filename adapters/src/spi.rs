//! The adapter SPI: what the hub's engine asks of every bill-collection partner, and the outcomes
//! it gets back. The outcome types encode the one question the engine must answer after a
//! money-moving call: did the partner write something off, did it definitely not, or can nobody
//! tell yet (then a reversal or a status query settles it, never a re-send).

use chrono::{NaiveDate, NaiveTime};
use codecs::Money;
use serde::{Deserialize, Serialize};

/// The bank channel a request came from, as the partner specs number them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    /// 01 柜面
    Counter,
    /// 02 手机银行
    Mobile,
    /// 03 自助设备
    SelfService,
    /// 04 网上银行
    Online,
    /// 05 农信银: the rural credit interbank network; only a partner that names it takes it
    /// (spec 09), see [`BillPartner::accepts_channel`].
    Nongxinyin,
}

impl Channel {
    pub fn code(&self) -> &'static str {
        match self {
            Channel::Counter => "01",
            Channel::Mobile => "02",
            Channel::SelfService => "03",
            Channel::Online => "04",
            Channel::Nongxinyin => "05",
        }
    }

    pub fn from_code(code: &str) -> Option<Channel> {
        match code {
            "01" => Some(Channel::Counter),
            "02" => Some(Channel::Mobile),
            "03" => Some(Channel::SelfService),
            "04" => Some(Channel::Online),
            "05" => Some(Channel::Nongxinyin),
            _ => None,
        }
    }
}

/// Who asks and when: the header fields every partner message carries.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub channel: Channel,
    pub branch_no: String,
    pub teller_no: String,
    /// The hub's calendar date when it builds the request (not the core's date).
    pub tx_date: NaiveDate,
    pub tx_time: NaiveTime,
    /// The hub serial of this request, 20 characters, unique per partner instance and date.
    pub bank_serial: String,
}

/// What the customer owes, as the partner states it.
#[derive(Clone, Debug, Serialize)]
pub struct Bill {
    pub customer_no: String,
    pub customer_name: String,
    pub address: String,
    pub total_due: Money,
    pub prepaid: Money,
    pub items: Vec<BillItem>,
    /// The partner said nothing is due; a payment is still allowed as a pure prepayment.
    pub nothing_due: bool,
    /// The meter the bills were read from, where the partner states one (the water protocol).
    pub meter_no: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BillItem {
    /// `YYYYMM`.
    pub period: String,
    pub amount: Money,
    pub penalty: Money,
    /// Readings and usage of the period, where the partner states them.
    pub usage: Option<MeterUsage>,
}

/// A period's readings and usage as decimal text in `unit` (`40.50`): the partner's usage is
/// authoritative (specs 02 and 11: never recomputed from the readings).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MeterUsage {
    pub prev_reading: String,
    pub curr_reading: String,
    pub usage: String,
    pub unit: String,
}

#[derive(Clone, Debug)]
pub struct PayOrder {
    pub customer_no: String,
    pub pay_amount: Money,
    /// The total due the customer was shown by the query (partners refuse when it changed).
    pub total_due: Money,
    pub payer_account: String,
    /// The partner's own elements of a payment beyond the customer and amount (medical: the
    /// insured's `name` and the contribution `year`; cable TV: `package_code` and `months`),
    /// journaled with the payment so that a status query or cancel after a restart has them.
    pub fields: PayFields,
}

/// Partner-specific payment elements by name; [`BillPartner::check_order`] says which it needs.
pub type PayFields = std::collections::BTreeMap<String, String>;

/// The payment a reversal or status query is about.
#[derive(Clone, Debug)]
pub struct OriginalRef {
    pub bank_serial: String,
    pub tx_date: NaiveDate,
    pub customer_no: String,
    pub amount: Money,
    /// The total due the original payment carried: with the amount it tells which trade the
    /// original went as (a prepayment when nothing was due), so a reversal after a restart names it
    /// right.
    pub total_due: Money,
    /// When the hub sent the original (its `tx_date` with this time): some partners' answers
    /// become final only a fixed time after the original (medical: 330 s).
    pub tx_time: NaiveTime,
    pub fields: PayFields,
}

/// The meaning of a partner's refusal, whatever its code, so that channels show one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    CustomerNotFound,
    CustomerClosed,
    NothingDue,
    AmountTooLow,
    ArrearsChanged,
    /// The typed name is not the partner's (medical 1002).
    NameMismatch,
    /// The period was paid already (medical 1003).
    AlreadyPaid,
    /// The partner's ID-number check failed (medical 1006).
    InvalidIdNumber,
    /// Nothing payable for that period now (medical 1004, cable TV 04).
    NotPayableNow,
    /// The amount is not what the partner asks (medical 1005, cable TV 05).
    AmountMismatch,
    /// The bill is locked by the partner's batch withholding of the day (county water 007):
    /// payable again once the batch result is read.
    BillLockedByBatch,
}

/// A definite answer of the partner, kept verbatim for the journal and the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerReply {
    /// The partner's response code (`1003`), or one of the adapter's own codes (`CONNECT`,
    /// `ADP_INPUT`) when the request never left the hub.
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug)]
pub enum QueryOutcome {
    Bill(Bill),
    Refused(PartnerReply),
}

#[derive(Clone, Debug)]
pub enum PayOutcome {
    Paid {
        partner_serial: String,
        acct_date: NaiveDate,
        prepaid: Money,
    },
    /// The partner wrote nothing off, definitely (including: the request never left the hub).
    Refused(PartnerReply),
    /// Timeout, system busy, bad MAC, a connection dropped after the request was (possibly)
    /// sent, a garbled answer: the engine must resolve it with a reversal or a status query.
    Unknown { reason: String },
}

#[derive(Clone, Debug)]
pub enum ReversalOutcome {
    /// 0000
    Reversed,
    /// 2001: nothing was written off; the partner fences the serial.
    OriginalNotFound,
    /// 2002: success for the bank.
    AlreadyReversed,
    /// 2003: past the partner's reversal deadline; ask for the status.
    TooLate,
    /// 2004: customer or amount differ from the original; nothing reversed.
    Mismatch,
    Refused(PartnerReply),
    /// An answer the spec says no automatic step may act on (cable TV 23): the money stays where
    /// it is until an operator resolves it.
    NeedsOperator(PartnerReply),
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub enum StatusOutcome {
    WrittenOff {
        partner_serial: String,
        acct_date: NaiveDate,
        amount: Money,
    },
    Reversed,
    /// The partner never wrote it off and fences the serial against a late original (or the
    /// original can no longer be accepted).
    NotFound,
    /// The partner's answer contradicts what the hub knows (cable TV: 3 after 22/24): an operator
    /// must look before any money moves back.
    NeedsOperator {
        reason: String,
    },
    Unknown {
        reason: String,
    },
}

/// What the engine does when a write-off's outcome is unknown (the spec of each partner says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownResolution {
    /// Send the partner's reversal (冲正; cable TV: its 3001) and undo the debit when it lands.
    Reverse,
    /// Ask the partner's status query until it gives a final answer (medical: 2003).
    AskStatus,
}

/// A partner's daily file, parsed and checked against its own summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyFile {
    pub acct_date: NaiveDate,
    pub records: Vec<DailyRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyRecord {
    /// 1-based line number in the file, for operators' reports.
    pub line_no: usize,
    pub bank_serial: String,
    pub partner_serial: String,
    pub customer_no: String,
    pub amount: Money,
    pub tx_date: NaiveDate,
    pub tx_time: NaiveTime,
    pub channel: String,
}

/// A paid payment of an earlier accounting date that no daily file of the partner has listed
/// yet (tobacco, spec 09: reported as 通知未确认 until a later file lists it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnconfirmedPayment {
    pub bank_serial: String,
    pub customer_no: String,
    pub amount: Money,
    pub acct_date: NaiveDate,
    /// Where its notification stands, in Chinese for the operator (re-notifying, rejected, ...).
    pub notice: String,
}

/// Errors that are not a partner's answer: configuration, keys, input refused before any I/O,
/// transport failures of calls that move no money, daily files.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("适配器配置错误：{field} {reason}")]
    Config { field: &'static str, reason: String },
    #[error("MAC密钥配置错误：{0}")]
    Key(String),
    #[error("请求要素不合规：{field} {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("报文组装失败：{0}")]
    Encode(String),
    #[error("无法连接合作方：{0}")]
    Connect(String),
    #[error("合作方应答超时：{0}")]
    Timeout(String),
    #[error("与合作方通讯中断：{0}")]
    Transport(String),
    #[error("合作方应答报文错误：{0}")]
    Garbled(String),
    #[error("对账文件第{line}行错误：{reason}")]
    DailyFile { line: usize, reason: String },
    #[error("文件读取失败：{0}")]
    Io(#[from] std::io::Error),
}

impl AdapterError {
    /// A stable code for journals, metrics and channel answers.
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::Config { .. } => "ADP_CONFIG",
            AdapterError::Key(_) => "ADP_KEY",
            AdapterError::InvalidInput { .. } => "ADP_INPUT",
            AdapterError::Encode(_) => "ADP_ENCODE",
            AdapterError::Connect(_) => "CONNECT",
            AdapterError::Timeout(_) => "ADP_TIMEOUT",
            AdapterError::Transport(_) => "ADP_TRANSPORT",
            AdapterError::Garbled(_) => "ADP_GARBLED",
            AdapterError::DailyFile { .. } => "ADP_FILE",
            AdapterError::Io(_) => "ADP_IO",
        }
    }

    /// The reply the engine journals when a money-moving request was refused before any I/O.
    pub fn to_reply(&self) -> PartnerReply {
        PartnerReply {
            code: self.code().to_string(),
            message: self.to_string(),
        }
    }
}

/// One bill-collection partner instance (one per partner and legal-entity bank).
///
/// The adapter never re-sends: retries and backoff belong to the engine, which journals each
/// attempt before it is made.
#[async_trait::async_trait]
pub trait BillPartner: Send + Sync {
    /// The payee code (`CDGJ`).
    fn payee(&self) -> &str;
    /// The instance within the payee (the BankCode).
    fn instance(&self) -> &str;
    /// A query moves no money, so its transport failures are errors rather than outcomes.
    async fn query(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError>;
    async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome;
    /// 冲正 of a payment.
    async fn reverse(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome;
    /// 查证 of a payment.
    async fn status(&self, ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome;
    /// The names of one accounting date's files, in the order [`BillPartner::parse_daily`]
    /// takes their contents (郴电国际: one file; county water: totals, then detail).
    fn daily_files(&self, acct_date: NaiveDate) -> Vec<String>;
    /// The flag file that marks one accounting date's files complete, for partners that write
    /// one (county water: `DZ<CompanyCode><YYYYMMDD>.ok`, "the only flag: it marks both files
    /// complete"). Until it exists the files are not read: they may be half written, or being
    /// cut again.
    fn daily_flag(&self, _acct_date: NaiveDate) -> Option<String> {
        None
    }
    /// Fetches one accounting date's files from the partner into `dir` under the names of
    /// [`BillPartner::daily_files`], for partners that hand them over on request (medical 9001,
    /// cable TV's 5002 pages) rather than drop them. `Ok(false)`: nothing to fetch (the files
    /// are dropped by the partner); an error leaves the reconciliation waiting.
    async fn fetch_daily(
        &self,
        _acct_date: NaiveDate,
        _dir: &std::path::Path,
    ) -> Result<bool, AdapterError> {
        Ok(false)
    }
    /// The partner's own follow-up once its files of `acct_date` have been read and parsed
    /// (tobacco: lines marked listed, paid orders no file listed re-notified). Moves no money;
    /// an error is reported and leaves the reconciliation itself standing.
    async fn daily_files_read(
        &self,
        _acct_date: NaiveDate,
        _files: &[Vec<u8>],
    ) -> Result<(), AdapterError> {
        Ok(())
    }
    /// Whether the partner's file only confirms payments, possibly in a later file, without
    /// gating their settlement (tobacco, spec 09): a success posted at core that the file leaves
    /// out is still settled, and a line confirming a payment of an earlier date is that payment's
    /// confirmation rather than a difference of this date.
    fn file_confirms_only(&self) -> bool {
        false
    }
    /// Whether the partner's file lines match journal payments on the bank serial alone rather
    /// than on (date, serial) (tobacco, spec 09: a line's date is the payment time, which may be
    /// the day after the hub's acceptance date).
    fn file_matches_on_bank_serial(&self) -> bool {
        false
    }
    /// Paid payments of an accounting date before `acct_date` that no file has listed yet, for
    /// the report of `acct_date` (tobacco: 通知未确认 stays on the report until resolved).
    async fn unconfirmed_before(
        &self,
        _acct_date: NaiveDate,
    ) -> Result<Vec<UnconfirmedPayment>, AdapterError> {
        Ok(Vec::new())
    }
    /// Parses one accounting date's files, checked against their own totals.
    fn parse_daily(&self, files: &[Vec<u8>]) -> Result<DailyFile, AdapterError>;
    /// The core Purpose of this partner's postings (core-banking.md, "Purpose codes").
    fn purpose(&self) -> &str;
    /// The 8002 Summary of a payment (at most 40 GBK bytes).
    fn payment_summary(&self, customer_no: &str) -> String;
    /// The 8002 Summary of one payment when it depends on more than the customer (medical:
    /// `医保缴费<year>`); by default [`BillPartner::payment_summary`].
    fn order_summary(&self, order: &PayOrder) -> String {
        self.payment_summary(&order.customer_no)
    }
    /// The code that names this instance in settlements (BankCode, CompanyCode): letters and
    /// digits only, as it goes into the settlement SeqNo.
    fn settlement_code(&self) -> &str;
    /// The 8002 Summary of a settlement.
    fn settlement_summary(&self, acct_date: NaiveDate) -> String;
    /// Width of the partner's bank serial field: the hub's serials for it are this long.
    fn bank_serial_len(&self) -> usize {
        20
    }
    /// The longest customer number (or other payment key: an ID number, an order number) the
    /// partner takes; longer ones are refused before any call.
    fn customer_no_max_len(&self) -> usize {
        16
    }
    /// Whether the partner takes requests from `channel`: the four channels every spec names, and
    /// 农信银 only where the partner's spec names it (09). Others are refused before any call.
    fn accepts_channel(&self, channel: &Channel) -> bool {
        *channel != Channel::Nongxinyin
    }
    /// The longest teller number the partner's frames carry (specs 02 and 04: AN 8; the
    /// fixed-length adapters take it from their header layout, 郴电国际 says AN 6).
    fn teller_no_max_len(&self) -> usize {
        8
    }
    /// The one spelling of a customer number the partner and its files use (an ID number's
    /// final `x` is `X`): the hub journals and sends that one, so a repeat and the T+1 file match.
    fn canonical_customer_no(&self, customer_no: &str) -> String {
        customer_no.to_string()
    }
    /// Whether a payment with nothing due (a pure prepayment) is possible at all: where it is not,
    /// the hub refuses it before debiting anyone.
    fn accepts_prepayment(&self) -> bool {
        true
    }
    /// What a partner's refusal code means, for the channel's message.
    fn refusal_reason(&self, _code: &str) -> Option<RefusalReason> {
        None
    }
    /// Whether the partner takes new payments at this time of day (some refuse them around
    /// their day-end): outside, the hub refuses before debiting anyone.
    fn accepts_payments_at(&self, _time: chrono::NaiveTime) -> bool {
        true
    }
    /// Checks the partner's own elements of an order before anything is journaled (an ID
    /// number's check digit, a package and months), so bad input never reaches the core.
    fn check_order(&self, _order: &PayOrder) -> Result<(), AdapterError> {
        Ok(())
    }
    /// A call made after the payment is journaled and before the core debit, moving no money:
    /// the partner's rules that the hub must check against fresh data (medical: 1001 again,
    /// the typed name and the payable amount) or a hold it must take (tobacco: the order
    /// locked). `Err` refuses the payment with nothing debited.
    async fn before_debit(
        &self,
        _ctx: &RequestContext,
        _order: &PayOrder,
    ) -> Result<(), PartnerReply> {
        Ok(())
    }
    /// Gives back what [`BillPartner::before_debit`] took (tobacco: the order 2 → 1) when the
    /// payment ends with no write-off: the core refused or reversed the debit. Called after the
    /// journal says so; must be idempotent (a crash may leave it to the partner's own repair).
    async fn release_hold(&self, _ctx: &RequestContext, _order: &PayOrder) {}
    /// Whether a debit the core turns out to have posted after its outcome was unknown (8004 S)
    /// goes on to the write-off (tobacco: S → 3) instead of back to the payer (the 01 rule).
    fn writes_off_late_debit(&self) -> bool {
        false
    }
    /// How an unknown write-off is resolved.
    fn unknown_resolution(&self) -> UnknownResolution {
        UnknownResolution::Reverse
    }
    /// The wait before the next status query of an unknown write-off, when the spec fixes a
    /// schedule (`attempts` status queries already made); `None` keeps the engine's backoff.
    fn status_retry_after(&self, _attempts: i64) -> Option<chrono::Duration> {
        None
    }
    /// Whether the partner has a 撤销 (cancel of a completed payment on the customer's
    /// request) distinct from the timeout 冲正; then the channel's cancel ends CANCELLED.
    fn supports_cancel(&self) -> bool {
        false
    }
    /// Whether only counter payments may be cancelled, with a second teller's authorisation
    /// (medical 2002); otherwise any channel may cancel its own payment.
    fn cancel_counter_only(&self) -> bool {
        true
    }
    /// Whether a cancel is taken at this time (its partner's cut-off; hub clock).
    fn accepts_cancel_at(&self, _time: chrono::NaiveTime) -> bool {
        true
    }
    /// 撤销 of a completed payment; by default the partner's reversal.
    async fn cancel(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        self.reverse(ctx, original).await
    }
    /// The wait before re-sending a reversal or cancel that got no answer (`attempts` made so
    /// far), when the spec fixes a schedule (cable TV: 5 s doubling to 5 min); `None` keeps the
    /// engine's backoff.
    fn reversal_retry_after(&self, _attempts: i64) -> Option<chrono::Duration> {
        None
    }
    /// Whether a reversal or cancel that got no answer is re-sent under a new serial (medical:
    /// a new reqSerial) rather than as the same frame (power, water, cable TV).
    fn resend_reversal_with_new_serial(&self) -> bool {
        false
    }
    /// Stops what the partner keeps running (cable TV: its long link); the hub calls it when
    /// it stops.
    fn stop(&self) {}
    /// The concrete adapter, for the operator tools of one partner (cable TV's statistics and
    /// parameter refresh) that the bill SPI has no words for.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Masks personal data for logs: the one rule of [`codecs::mask::mask_account`].
pub use codecs::mask::mask_account as mask;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_codes_follow_the_specs() {
        assert_eq!(Channel::Counter.code(), "01");
        assert_eq!(Channel::Mobile.code(), "02");
        assert_eq!(Channel::SelfService.code(), "03");
        assert_eq!(Channel::Online.code(), "04");
        assert_eq!(Channel::from_code("02"), Some(Channel::Mobile));
        assert_eq!(Channel::from_code("05"), Some(Channel::Nongxinyin));
        assert_eq!(Channel::from_code("06"), None);
        assert_eq!(Channel::from_code("2"), None);
    }

    #[test]
    fn masking_keeps_first_and_last_four() {
        assert_eq!(mask("4310020000000001"), "4310********0001");
        assert_eq!(mask("6230901000000000011"), "6230***********0011");
        assert_eq!(mask("12345678"), "******78");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn error_codes_are_stable() {
        let error = AdapterError::InvalidInput {
            field: "CustomerNo",
            reason: "too long".into(),
        };
        assert_eq!(error.code(), "ADP_INPUT");
        assert_eq!(AdapterError::Connect("x".into()).to_reply().code, "CONNECT");
    }
}
