//! What goes into a reconciliation and what comes out of it. The hub maps its journal rows and the
//! adapter's parsed partner file into the input types; the output serializes to `summary.json`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use codecs::Money;
use serde::{Deserialize, Serialize};

pub use crate::core_file::{CoreFile, CoreRecord, CoreStatus};

/// One payment of the hub's journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubRecord {
    /// The hub serial: the BankSerial sent to the partner and the SeqNo of the core 8002 debit.
    pub hub_serial: String,
    /// The hub's calendar date of the payment: the partner's TxDate and the core's HubTranDate.
    pub tx_date: NaiveDate,
    pub channel: String,
    pub customer_no: String,
    pub amount: Money,
    pub state: HubState,
    /// The partner's accounting date, once the partner wrote the bill off.
    pub acct_date: Option<NaiveDate>,
    pub core_seq_no: Option<String>,
    /// CoreDate of the debit posting.
    pub core_date: Option<NaiveDate>,
    /// SeqNo of the hub's 8003 reversal, if one was sent.
    pub reversal_seq_no: Option<String>,
}

/// The hub's view of a payment, reduced to what reconciliation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HubState {
    Succeeded,
    /// 冲正: reversed (the partner wrote nothing off, or its write-off was reversed), core reversed.
    Reversed,
    /// 撤销: cancelled on the customer's request after success, partner and core both undone.
    Cancelled,
    /// Nothing moved (the core refused the debit).
    Failed,
    /// Any unfinished state: the hub itself does not know the outcome yet.
    InDoubt,
}

impl HubState {
    pub fn code(self) -> &'static str {
        match self {
            HubState::Succeeded => "SUCCEEDED",
            HubState::Reversed => "REVERSED",
            HubState::Cancelled => "CANCELLED",
            HubState::Failed => "FAILED",
            HubState::InDoubt => "IN_DOUBT",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            HubState::Succeeded => "成功",
            HubState::Reversed => "已冲正",
            HubState::Cancelled => "已撤销",
            HubState::Failed => "失败",
            HubState::InDoubt => "未决",
        }
    }
}

/// One detail line of the partner's daily file (AcctDate D).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRecord {
    /// Line number in the partner's file, for operators.
    pub line_no: usize,
    pub tx_date: NaiveDate,
    pub bank_serial: String,
    pub partner_serial: String,
    pub customer_no: String,
    pub amount: Money,
    pub acct_date: NaiveDate,
}

/// The classes of difference, in the order the engine tests them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DifferenceKind {
    /// 本方成功对方无
    HubSuccessMissingAtPartner,
    /// 对方有本方非成功
    PartnerNotHubSuccess,
    /// 金额不符
    AmountMismatch,
    /// 核心已记账本方非成功
    CoreNotHubSuccess,
    /// 本方成功核心无
    HubSuccessMissingAtCore,
    /// 本方状态未决
    HubInDoubt,
}

impl DifferenceKind {
    pub const ALL: [DifferenceKind; 6] = [
        DifferenceKind::HubSuccessMissingAtPartner,
        DifferenceKind::PartnerNotHubSuccess,
        DifferenceKind::AmountMismatch,
        DifferenceKind::CoreNotHubSuccess,
        DifferenceKind::HubSuccessMissingAtCore,
        DifferenceKind::HubInDoubt,
    ];

    /// Stable English code, used in summary.json, metrics and beside the Chinese label in reports.
    pub fn code(self) -> &'static str {
        match self {
            DifferenceKind::HubSuccessMissingAtPartner => "HUB_SUCCESS_MISSING_AT_PARTNER",
            DifferenceKind::PartnerNotHubSuccess => "PARTNER_NOT_HUB_SUCCESS",
            DifferenceKind::AmountMismatch => "AMOUNT_MISMATCH",
            DifferenceKind::CoreNotHubSuccess => "CORE_NOT_HUB_SUCCESS",
            DifferenceKind::HubSuccessMissingAtCore => "HUB_SUCCESS_MISSING_AT_CORE",
            DifferenceKind::HubInDoubt => "HUB_IN_DOUBT",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            DifferenceKind::HubSuccessMissingAtPartner => "本方成功对方无",
            DifferenceKind::PartnerNotHubSuccess => "对方有本方非成功",
            DifferenceKind::AmountMismatch => "金额不符",
            DifferenceKind::CoreNotHubSuccess => "核心已记账本方非成功",
            DifferenceKind::HubSuccessMissingAtCore => "本方成功核心无",
            DifferenceKind::HubInDoubt => "本方状态未决",
        }
    }
}

/// Everything one reconciliation run needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconInput {
    /// The partner, e.g. `CDGJ`.
    pub payee: String,
    /// The partner instance, e.g. the BankCode `NSH43102`.
    pub instance: String,
    /// The partner AcctDate being reconciled.
    pub business_date: NaiveDate,
    pub hub: Vec<HubRecord>,
    pub partner: Vec<PartnerRecord>,
    /// Every core file available: normally D and, when it has arrived, D+1.
    pub core: Vec<CoreFile>,
    /// The core Purpose of this partner, e.g. `CDGJ`.
    pub purpose: String,
    /// This instance's collection suspense account (代收过渡户).
    pub suspense_acct: String,
    /// The partner's settlement account for this instance.
    pub settlement_acct: String,
    /// Deterministic `S<instance><YYYYMMDD>` (see [`crate::settlement_seq_no`]).
    pub settlement_seq_no: String,
    /// The partner's file confirms payments but does not gate their settlement (tobacco, spec
    /// 09: the money is the bureau's once the order is paid): a success posted at core that the
    /// file leaves out is still reported (通知未确认) and is settled with the matched ones.
    #[serde(default)]
    pub settle_unconfirmed: bool,
    /// Only with `settle_unconfirmed`: the partner's file of this date did not arrive (or was
    /// refused), so this run compares journal and core alone and `partner` is empty. Payments
    /// are reported as unconfirmed (not as re-notified: nothing was compared) and still settled.
    #[serde(default)]
    pub partner_file_absent: bool,
    /// The partner's file is matched on the bank serial alone (tobacco, spec 09: "The engine
    /// matches on bankSerial across files"): its line date is the payment time, which can be
    /// the day after the hub's acceptance date, so the hub record's own date keys the line.
    #[serde(default)]
    pub match_on_bank_serial: bool,
}

/// A payment on which hub, partner and core agree: it is settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRecord {
    pub hub_serial: String,
    pub tx_date: NaiveDate,
    pub channel: String,
    pub customer_no: String,
    pub amount: Money,
    pub partner_serial: String,
    pub acct_date: NaiveDate,
    pub core_seq_no: String,
    pub core_date: NaiveDate,
    /// The earlier business date this record was carried from while it awaited its core file
    /// (see [`crate::reconcile_with_carried`]); `None` for records of this business date.
    pub carried_from: Option<NaiveDate>,
}

/// One classified difference: waits for an operator, never settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub hub_serial: String,
    pub tx_date: NaiveDate,
    pub hub_amount: Option<Money>,
    pub partner_amount: Option<Money>,
    /// The net amount standing at core for this serial (None when core shows nothing).
    pub core_amount: Option<Money>,
    pub partner_serial: Option<String>,
    pub core_seq_no: Option<String>,
    /// Chinese explanation for the operator; never carries an unmasked account or customer number.
    pub detail: String,
}

/// What the engine expects the missing core file to show for an awaiting record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoreExpectation {
    /// Hub and partner agree the payment succeeded: the core must show the debit standing.
    Posted,
    /// Hub and partner agree nothing was paid: the core must show nothing standing.
    NotPosted,
}

/// A record whose core posting (or reversal) is on a CoreDate whose file is not yet available.
/// Not a difference; a `Posted` one is settled when its core file arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingCore {
    pub hub_serial: String,
    pub tx_date: NaiveDate,
    pub channel: String,
    pub customer_no: String,
    pub amount: Money,
    pub partner_serial: Option<String>,
    pub acct_date: Option<NaiveDate>,
    /// The business date on which the record was first reconciled.
    pub business_date: NaiveDate,
    /// The CoreDate whose file is awaited, when known.
    pub awaited_core_date: Option<NaiveDate>,
    pub expects: CoreExpectation,
    pub detail: String,
}

/// The settlement 8002 to post: suspense account to the partner's settlement account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub seq_no: String,
    /// This instance's suspense account.
    pub debit_acct: String,
    pub credit_acct: String,
    /// Sum of the matched records.
    pub amount: Money,
    pub count: usize,
    pub summary: String,
    pub purpose: String,
    /// Why this settlement must not be posted (e.g. an overflowing sum); `None` when it may be.
    pub blocked_reason: Option<String>,
}

impl Settlement {
    /// True when there is money to move and nothing blocks it: the core refuses 0.00.
    pub fn is_postable(&self) -> bool {
        self.blocked_reason.is_none() && self.amount.is_positive()
    }
}

/// Counts and sums of each side, over the records this run considered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// In-scope hub records that succeeded (AcctDate D).
    pub hub_success_count: usize,
    pub hub_success_amount: Money,
    /// In-scope hub records in any other state (reversed, cancelled, failed, in doubt).
    pub hub_other_count: usize,
    pub hub_other_amount: Money,
    /// Partner file detail lines of AcctDate D.
    pub partner_count: usize,
    pub partner_amount: Money,
    /// Core postings of this purpose standing (not reversed) that this run looked at.
    pub core_count: usize,
    pub core_amount: Money,
    pub matched_count: usize,
    pub matched_amount: Money,
    pub difference_count: usize,
    /// Agreed by hub and partner, posting expected in a core file not yet available.
    pub awaiting_core_count: usize,
    pub awaiting_core_amount: Money,
    /// Reversed at the hub; the core file that must show the reversal is not yet available.
    pub awaiting_reversal_count: usize,
    pub awaiting_reversal_amount: Money,
}

/// The outcome of one reconciliation run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconResult {
    pub payee: String,
    pub instance: String,
    pub business_date: NaiveDate,
    /// CoreDates whose files were available to this run.
    pub core_dates: Vec<NaiveDate>,
    pub matched: Vec<MatchedRecord>,
    pub differences: Vec<Difference>,
    pub awaiting_core: Vec<AwaitingCore>,
    pub settlement: Settlement,
    pub totals: Totals,
    /// Anomalies in the input that are not differences (duplicates, out-of-date lines), in Chinese.
    pub warnings: Vec<String>,
    /// What became of the settlement instruction, once the hub has acted on it (the engine
    /// itself never posts: it leaves this empty).
    #[serde(default)]
    pub execution: Option<SettlementExecution>,
    /// Payments of earlier business dates the partner has still not confirmed (filled in by
    /// the hub for partners whose file only confirms; the engine leaves this empty).
    #[serde(default)]
    pub unconfirmed_earlier: Vec<UnconfirmedEarlier>,
}

/// A payment of an earlier business date, settled with its own date, that no partner file has
/// listed yet (tobacco, spec 09: reported as 通知未确认 until a later file lists it). Not a
/// difference of this date: it is carried on every report until resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedEarlier {
    pub hub_serial: String,
    /// The payment's own accounting date.
    pub acct_date: NaiveDate,
    pub customer_no: String,
    pub amount: Money,
    /// Chinese, for the operator: where the notification stands.
    pub detail: String,
}

impl UnconfirmedEarlier {
    /// Stable code beside the Chinese label in reports.
    pub const CODE: &'static str = "NOTIFY_UNCONFIRMED";
    pub const LABEL_ZH: &'static str = "通知未确认";
}

/// The settlement as the core recorded it (filled in by the hub after it posted, or found that a
/// previous run had posted, the instruction).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementExecution {
    /// POSTED, REFUSED, UNKNOWN, NOTHING_TO_SETTLE, BLOCKED.
    pub state: String,
    /// What was (or is being) posted under the SeqNo: the first run's figures on a rerun.
    pub amount: Money,
    pub count: usize,
    pub core_seq_no: Option<String>,
    /// True when an earlier run had already acted on this SeqNo and this run posted nothing.
    pub earlier_run: bool,
    pub message: Option<String>,
}

impl ReconResult {
    /// Number of differences per kind, keyed by [`DifferenceKind::code`]; every kind is present
    /// (zero when none) so that summary.json and dashboards have a stable shape.
    pub fn difference_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> =
            DifferenceKind::ALL.iter().map(|k| (k.code(), 0)).collect();
        for difference in &self.differences {
            *counts.entry(difference.kind.code()).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_labels_are_the_agreed_ones() {
        let expected = [
            ("HUB_SUCCESS_MISSING_AT_PARTNER", "本方成功对方无"),
            ("PARTNER_NOT_HUB_SUCCESS", "对方有本方非成功"),
            ("AMOUNT_MISMATCH", "金额不符"),
            ("CORE_NOT_HUB_SUCCESS", "核心已记账本方非成功"),
            ("HUB_SUCCESS_MISSING_AT_CORE", "本方成功核心无"),
            ("HUB_IN_DOUBT", "本方状态未决"),
        ];
        for (kind, (code, label)) in DifferenceKind::ALL.iter().zip(expected) {
            assert_eq!(kind.code(), code);
            assert_eq!(kind.label_zh(), label);
            // serde writes the same stable code.
            assert_eq!(
                serde_json::to_string(kind).ok(),
                Some(format!("\"{code}\""))
            );
        }
    }

    #[test]
    fn settlement_of_zero_is_not_postable() {
        let settlement = Settlement {
            seq_no: "SNSH4310220261202".into(),
            debit_acct: "9003100000000001".into(),
            credit_acct: "9003100000009999".into(),
            amount: Money::ZERO,
            count: 0,
            summary: "电费结算NSH4310220261202".into(),
            purpose: "CDGJ".into(),
            blocked_reason: None,
        };
        assert!(!settlement.is_postable());
        let positive = Settlement {
            amount: Money::from_fen(1),
            count: 1,
            ..settlement
        };
        assert!(positive.is_postable());
        let blocked = Settlement {
            blocked_reason: Some("x".into()),
            ..positive
        };
        assert!(!blocked.is_postable());
    }
}
