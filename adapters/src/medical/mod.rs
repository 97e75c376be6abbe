//! 城乡居民医保缴费, urban-rural resident medical insurance contributions
//! (partner-specs/03-medical-insurance.md), over HTTPS with an SM4-encrypted, SM2-signed JSON
//! envelope.
//!
//! | file | job |
//! |---|---|
//! | `envelope.rs` | seal a request (SM4-CBC, fresh IV, SM2 r‖s), open and verify an answer |
//! | `id_number.rs` | the GB 11643 check made before any call, and the spec's masking |
//! | `messages.rs` | payloads of 1001–9001 and typed readers of the answers |
//! | `client.rs` | config, the `reqwest` exchange, outcomes (Paid / Refused / Unknown) |
//! | `daily_file.rs` | `CXJM_<bankCode>_<acctDate>.txt`, checked against its summary line |
//! | `partner.rs` | the insurer as the engine's `BillPartner` (ID number + `name`/`year` fields) |
//!
//! The typed client keeps the spec's own shapes (ID number and year, 撤销 instead of 冲正, a
//! status answer with "in process"); `partner.rs` maps them onto the engine's `BillPartner`.
pub mod client;
pub mod daily_file;
pub mod envelope;
pub mod id_number;
pub mod messages;
pub mod partner;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod sim_tests;

pub use client::{
    not_found_is_final, CancelOutcome, ContributionOrder, DailyFileOutcome, HistoryOutcome,
    InsurerReply, MedicalClient, MedicalConfig, MedicalError, OriginalPayment, PayOutcome,
    QueryOutcome, RequestKey, StatusOutcome, PAYEE,
};
pub use id_number::{IdNumber, IdNumberError};
pub use messages::{History, HistoryRecord, InsuredPerson, PayChannel, Payable, PaymentReceipt};
pub use partner::MedicalPartner;
