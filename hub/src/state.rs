//! The transaction state machine of DESIGN.md, as data. The engine moves a payment only along
//! these edges, and every move is journaled before the external call it leads to.
//!
//! ```text
//! ACCEPTED -> CORE_DEBITED -> SUCCEEDED -> REVERSAL_REQUESTED (冲正 on request) -> REVERSED
//!    |             |               \-> CANCEL_REQUESTED (撤销: partner cancel, core 8003) -> CANCELLED
//!    |             |  \-> PARTNER_FAILED -> (core 8003) -> REVERSED
//!    |             \-> PARTNER_UNKNOWN -> (reversal then status, or status only, as the partner's spec
//!    |                                  says) -> REVERSED or SUCCEEDED
//!    \-> CORE_FAILED (nothing moved)
//!    \-> CORE_UNKNOWN -> (8004) -> S: 8003 -> REVERSED | R: CORE_FAILED | N: 8003 fence -> CORE_FAILED
//! ```

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    Accepted,
    CoreDebited,
    CoreFailed,
    CoreUnknown,
    PartnerUnknown,
    PartnerFailed,
    Succeeded,
    ReversalRequested,
    Reversed,
    CancelRequested,
    Cancelled,
}

impl PaymentState {
    pub const ALL: [PaymentState; 11] = [
        PaymentState::Accepted,
        PaymentState::CoreDebited,
        PaymentState::CoreFailed,
        PaymentState::CoreUnknown,
        PaymentState::PartnerUnknown,
        PaymentState::PartnerFailed,
        PaymentState::Succeeded,
        PaymentState::ReversalRequested,
        PaymentState::Reversed,
        PaymentState::CancelRequested,
        PaymentState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Accepted => "ACCEPTED",
            PaymentState::CoreDebited => "CORE_DEBITED",
            PaymentState::CoreFailed => "CORE_FAILED",
            PaymentState::CoreUnknown => "CORE_UNKNOWN",
            PaymentState::PartnerUnknown => "PARTNER_UNKNOWN",
            PaymentState::PartnerFailed => "PARTNER_FAILED",
            PaymentState::Succeeded => "SUCCEEDED",
            PaymentState::ReversalRequested => "REVERSAL_REQUESTED",
            PaymentState::Reversed => "REVERSED",
            PaymentState::CancelRequested => "CANCEL_REQUESTED",
            PaymentState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Chinese label for operators and channels.
    pub fn label_zh(self) -> &'static str {
        match self {
            PaymentState::Accepted => "已受理",
            PaymentState::CoreDebited => "核心已扣款",
            PaymentState::CoreFailed => "扣款失败",
            PaymentState::CoreUnknown => "核心结果未知",
            PaymentState::PartnerUnknown => "销账结果未知",
            PaymentState::PartnerFailed => "销账失败待冲正",
            PaymentState::Succeeded => "缴费成功",
            PaymentState::ReversalRequested => "冲正处理中",
            PaymentState::Reversed => "已冲正",
            PaymentState::CancelRequested => "撤销处理中",
            PaymentState::Cancelled => "已撤销",
        }
    }

    /// A final state: nothing more will happen to the money without an operator.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentState::CoreFailed
                | PaymentState::Succeeded
                | PaymentState::Reversed
                | PaymentState::Cancelled
        )
    }
}

/// The durable queue: the next external call a payment waits for, retried with backoff by the
/// resolver until it gets an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextAction {
    None,
    /// 8004 for an 8002 whose outcome is unknown.
    CoreStatus,
    /// 8003 of the debit (also used to fence a debit the core never saw).
    CoreReversal,
    /// Partner 冲正 (1003) of a write-off whose outcome is unknown or that was asked to be reversed.
    PartnerReversal,
    /// Partner 查证 (1004) after the partner answered that reversal is too late, or the status
    /// query that resolves an unknown write-off where the spec asks for it (medical 2003).
    PartnerStatus,
    /// The partner's 撤销 of a completed payment the channel asked to cancel.
    PartnerCancel,
    /// Nothing automatic can resolve it; an operator must look.
    Operator,
}

impl NextAction {
    const ALL: [NextAction; 7] = [
        NextAction::None,
        NextAction::CoreStatus,
        NextAction::CoreReversal,
        NextAction::PartnerReversal,
        NextAction::PartnerStatus,
        NextAction::PartnerCancel,
        NextAction::Operator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NextAction::None => "NONE",
            NextAction::CoreStatus => "CORE_STATUS",
            NextAction::CoreReversal => "CORE_REVERSAL",
            NextAction::PartnerReversal => "PARTNER_REVERSAL",
            NextAction::PartnerStatus => "PARTNER_STATUS",
            NextAction::PartnerCancel => "PARTNER_CANCEL",
            NextAction::Operator => "OPERATOR",
        }
    }

    pub fn parse(text: &str) -> Option<NextAction> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in PaymentState::ALL {
            assert_eq!(PaymentState::parse(s.as_str()), Some(s));
        }
        for a in NextAction::ALL {
            assert_eq!(NextAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(PaymentState::parse("DONE"), None);
    }
}
