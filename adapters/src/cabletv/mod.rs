//! 攸县 cable TV fee collection (partner-specs/04-cable-tv.md): one long-lived multiplexed TCP link.
//!
//! | file | job |
//! |---|---|
//! | `wire.rs` | 4-byte frames, the 103-byte header, AN / C / N fields, HMAC-SM3-16, sizes per TxCode |
//! | `link.rs` | the link: sign-in, heartbeats both ways, (TxDate, Serial) matching, reconnect backoff |
//! | `ops.rs` | typed operations 2001–6001, the parameter cache, outcomes Paid / Refused / Unknown |
//! | `daily_file.rs` | `CATV_<BankCode>_<YYYYMMDD>.txt` written from 5001/5002 and parsed for T+1 |
//!
//! The bill SPI does not fit (pay by months of a package; 3001 cancel instead of a reversal), so
//! the engine drives [`CableTv`] directly: see the operations' docs for what each answer means.
pub mod daily_file;
pub mod link;
pub mod ops;
pub mod wire;

#[cfg(test)]
mod tests;

pub use link::{CallError, Caller, LinkSettings, PartnerStatus};
pub use ops::{
    CableError, CableTv, CancelOutcome, Customer, DetailPage, DetailRecord, OriginalPay,
    PackageState, ParamSet, PayOutcome, PayRequest, PriceRow, QueryKey, Statistics, StatusOutcome,
    Totals,
};

/// The payee code.
pub const PAYEE: &str = "CATV";
