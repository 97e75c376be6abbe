//! Errors the channels and operators see: a stable English code and its Chinese text, from one
//! table. Every refusal the hub gives a channel is one of these.

use adapters::spi::RefusalReason;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    BodyTooLarge,
    NoSuchRoute,
    MethodNotAllowed,
    PayerNotAllowed,
    DuplicateMismatch,
    UnknownPayee,
    NotFound,
    CoreInsufficientBalance,
    CoreAccountFrozen,
    CoreAccountNotFound,
    CoreAccountClosed,
    CoreRefused,
    CoreUnavailable,
    PartnerCustomerNotFound,
    PartnerNothingDue,
    PartnerAmountTooLow,
    PartnerCustomerClosed,
    PartnerArrearsChanged,
    PartnerRefused,
    PartnerUnavailable,
    PartnerDayEnd,
    InDoubt,
    ReversalNotAllowed,
    ReversalTooLate,
    ReversalMismatch,
    PartnerNameMismatch,
    PartnerAlreadyPaid,
    PartnerInvalidIdNumber,
    PartnerNotPayableNow,
    PartnerAmountMismatch,
    PartnerBatchInProgress,
    CancelNotAllowed,
    CancelTooLate,
    CancelMismatch,
    AccountNameMismatch,
    AgreementRefused,
    Internal,
}

impl ErrorCode {
    /// (stable code, Chinese message)
    pub fn describe(self) -> (&'static str, &'static str) {
        use ErrorCode::*;
        match self {
            BadRequest => ("BAD_REQUEST", "请求报文格式错误"),
            BodyTooLarge => ("BODY_TOO_LARGE", "请求报文过长"),
            NoSuchRoute => ("NO_SUCH_ROUTE", "接口不存在"),
            MethodNotAllowed => ("METHOD_NOT_ALLOWED", "接口不支持该请求方法"),
            PayerNotAllowed => ("PAYER_NOT_ALLOWED", "付款账户不允许为内部账户"),
            DuplicateMismatch => ("DUPLICATE_MISMATCH", "渠道流水号重复且交易要素不同"),
            UnknownPayee => ("UNKNOWN_PAYEE", "不支持的收费单位"),
            NotFound => ("NOT_FOUND", "交易不存在"),
            CoreInsufficientBalance => ("CORE_INSUFFICIENT_BALANCE", "账户余额不足"),
            CoreAccountFrozen => ("CORE_ACCOUNT_FROZEN", "账户冻结或止付"),
            CoreAccountNotFound => ("CORE_ACCOUNT_NOT_FOUND", "账户不存在"),
            CoreAccountClosed => ("CORE_ACCOUNT_CLOSED", "账户已销户"),
            CoreRefused => ("CORE_REFUSED", "核心系统拒绝交易"),
            CoreUnavailable => ("CORE_UNAVAILABLE", "核心系统暂不可用，未扣款"),
            PartnerCustomerNotFound => ("PARTNER_CUSTOMER_NOT_FOUND", "户号不存在"),
            PartnerNothingDue => ("PARTNER_NOTHING_DUE", "该户无欠费"),
            PartnerAmountTooLow => ("PARTNER_AMOUNT_TOO_LOW", "缴费金额不足"),
            PartnerCustomerClosed => ("PARTNER_CUSTOMER_CLOSED", "户号已销户"),
            PartnerArrearsChanged => ("PARTNER_ARREARS_CHANGED", "欠费已变化，请重新查询"),
            PartnerRefused => ("PARTNER_REFUSED", "收费单位拒绝交易"),
            PartnerUnavailable => ("PARTNER_UNAVAILABLE", "收费单位系统暂不可用"),
            PartnerDayEnd => ("PARTNER_DAY_END", "收费单位日终处理中，请稍后再缴"),
            InDoubt => ("IN_DOUBT", "交易结果未知，系统将自动处理，请稍后查询"),
            ReversalNotAllowed => ("REVERSAL_NOT_ALLOWED", "该交易不允许冲正"),
            ReversalTooLate => ("REVERSAL_TOO_LATE", "超过冲正时限"),
            ReversalMismatch => ("REVERSAL_MISMATCH", "原交易要素不符，未冲正"),
            PartnerNameMismatch => ("PARTNER_NAME_MISMATCH", "姓名与收费单位登记不符"),
            PartnerAlreadyPaid => ("PARTNER_ALREADY_PAID", "该期已缴费"),
            PartnerInvalidIdNumber => ("PARTNER_INVALID_ID_NUMBER", "证件号码无效"),
            PartnerNotPayableNow => ("PARTNER_NOT_PAYABLE_NOW", "当前不在缴费期或无应缴项目"),
            PartnerAmountMismatch => ("PARTNER_AMOUNT_MISMATCH", "缴费金额与应缴金额不符"),
            // Spec 02's words for 007: the batch result is due by 16:00.
            PartnerBatchInProgress => ("PARTNER_BATCH_IN_PROGRESS", "代扣处理中，请17:00后再试"),
            CancelNotAllowed => ("CANCEL_NOT_ALLOWED", "该交易不允许撤销"),
            CancelTooLate => ("CANCEL_TOO_LATE", "超过撤销时限"),
            CancelMismatch => ("CANCEL_MISMATCH", "原交易信息不符，未撤销"),
            AccountNameMismatch => ("ACCOUNT_NAME_MISMATCH", "账户户名与核心登记不符"),
            AgreementRefused => ("AGREEMENT_REFUSED", "收费单位未受理签约或解约"),
            Internal => ("INTERNAL", "系统内部错误"),
        }
    }

    pub fn code(self) -> &'static str {
        self.describe().0
    }

    pub fn message_zh(self) -> &'static str {
        self.describe().1
    }

    /// The core's refusal of an 8002, for the channel.
    pub fn from_core(ret_code: &str) -> ErrorCode {
        match ret_code {
            "E10001" => ErrorCode::CoreInsufficientBalance,
            "E10002" => ErrorCode::CoreAccountFrozen,
            "E10003" => ErrorCode::CoreAccountNotFound,
            "E10004" => ErrorCode::CoreAccountClosed,
            "NOT_SENT" => ErrorCode::CoreUnavailable,
            _ => ErrorCode::CoreRefused,
        }
    }

    /// A partner's refusal, for the channel: its meaning as the adapter reads the partner's code
    /// (each partner numbers its codes differently), else a generic refusal.
    pub fn from_partner(reason: Option<RefusalReason>, rsp_code: &str) -> ErrorCode {
        match (reason, rsp_code) {
            (Some(RefusalReason::CustomerNotFound), _) => ErrorCode::PartnerCustomerNotFound,
            (Some(RefusalReason::NothingDue), _) => ErrorCode::PartnerNothingDue,
            (Some(RefusalReason::AmountTooLow), _) => ErrorCode::PartnerAmountTooLow,
            (Some(RefusalReason::CustomerClosed), _) => ErrorCode::PartnerCustomerClosed,
            (Some(RefusalReason::ArrearsChanged), _) => ErrorCode::PartnerArrearsChanged,
            (Some(RefusalReason::NameMismatch), _) => ErrorCode::PartnerNameMismatch,
            (Some(RefusalReason::AlreadyPaid), _) => ErrorCode::PartnerAlreadyPaid,
            (Some(RefusalReason::InvalidIdNumber), _) => ErrorCode::PartnerInvalidIdNumber,
            (Some(RefusalReason::NotPayableNow), _) => ErrorCode::PartnerNotPayableNow,
            (Some(RefusalReason::AmountMismatch), _) => ErrorCode::PartnerAmountMismatch,
            (Some(RefusalReason::BillLockedByBatch), _) => ErrorCode::PartnerBatchInProgress,
            (None, "CONNECT") => ErrorCode::PartnerUnavailable,
            (None, _) => ErrorCode::PartnerRefused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_messages_chinese() {
        let all = [
            ErrorCode::BadRequest,
            ErrorCode::BodyTooLarge,
            ErrorCode::NoSuchRoute,
            ErrorCode::MethodNotAllowed,
            ErrorCode::PayerNotAllowed,
            ErrorCode::DuplicateMismatch,
            ErrorCode::UnknownPayee,
            ErrorCode::NotFound,
            ErrorCode::CoreInsufficientBalance,
            ErrorCode::CoreAccountFrozen,
            ErrorCode::CoreAccountNotFound,
            ErrorCode::CoreAccountClosed,
            ErrorCode::CoreRefused,
            ErrorCode::CoreUnavailable,
            ErrorCode::PartnerCustomerNotFound,
            ErrorCode::PartnerNothingDue,
            ErrorCode::PartnerAmountTooLow,
            ErrorCode::PartnerCustomerClosed,
            ErrorCode::PartnerArrearsChanged,
            ErrorCode::PartnerRefused,
            ErrorCode::PartnerUnavailable,
            ErrorCode::PartnerDayEnd,
            ErrorCode::InDoubt,
            ErrorCode::ReversalNotAllowed,
            ErrorCode::ReversalTooLate,
            ErrorCode::ReversalMismatch,
            ErrorCode::PartnerNameMismatch,
            ErrorCode::PartnerAlreadyPaid,
            ErrorCode::PartnerInvalidIdNumber,
            ErrorCode::PartnerNotPayableNow,
            ErrorCode::PartnerAmountMismatch,
            ErrorCode::PartnerBatchInProgress,
            ErrorCode::CancelNotAllowed,
            ErrorCode::CancelTooLate,
            ErrorCode::CancelMismatch,
            ErrorCode::AccountNameMismatch,
            ErrorCode::AgreementRefused,
            ErrorCode::Internal,
        ];
        let mut codes: Vec<_> = all.iter().map(|c| c.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for c in all {
            assert!(c
                .message_zh()
                .chars()
                .any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)));
            // serde name and code agree, so JSON and the table never drift apart
            assert_eq!(
                serde_json::to_string(&c).ok(),
                Some(format!("\"{}\"", c.code()))
            );
        }
        assert_eq!(
            ErrorCode::from_core("E10001").code(),
            "CORE_INSUFFICIENT_BALANCE"
        );
        assert_eq!(
            ErrorCode::from_partner(Some(RefusalReason::ArrearsChanged), "1005").code(),
            "PARTNER_ARREARS_CHANGED"
        );
        // Spec 02: "102 on it answers 007 (the channel says "代扣处理中，请17:00后再试")".
        let locked = ErrorCode::from_partner(Some(RefusalReason::BillLockedByBatch), "007");
        assert_eq!(locked.code(), "PARTNER_BATCH_IN_PROGRESS");
        assert_eq!(locked.message_zh(), "代扣处理中，请17:00后再试");
    }
}
