//! 攸县 cable TV fee collection (partner-specs/04-cable-tv.md): one long-lived multiplexed TCP link.
//!
//! | file | job |
//! |---|---|
//! | `wire.rs` | 4-byte frames, the 103-byte header, AN / C / N fields, HMAC-SM3-16, sizes per TxCode |
//! | `link.rs` | the link: sign-in, heartbeats both ways, (TxDate, Serial) matching, reconnect backoff |
//! | `ops.rs` | typed operations 2001–6001, the parameter cache, outcomes Paid / Refused / Unknown |
//! | `daily_file.rs` | `CATV_<BankCode>_<YYYYMMDD>.txt` written from 5001/5002 and parsed for T+1 |
//! | `config.rs` | `[[cabletv]]`: address, BankCode, key, accounts, the link's timings |
//! | `partner.rs` | [`partner::CablePartner`]: the bill SPI over [`CableTv`] (package and months as the
//! payment's fields, 3001 both as 撤销 and as the resolution of a pay in doubt) |
pub mod config;
pub mod daily_file;
pub mod link;
pub mod ops;
pub mod partner;
pub mod wire;

#[cfg(test)]
mod tests;

pub use config::CableTvConfig;
pub use link::{
    clock_seeded_serials, CallError, Caller, LinkSettings, PartnerStatus, SerialSource,
};
pub use ops::{
    CableError, CableTv, CancelOutcome, Customer, DetailPage, DetailRecord, OriginalPay,
    PackageState, ParamSet, PayOutcome, PayRequest, PriceRow, QueryKey, Statistics, StatusOutcome,
    Totals,
};
pub use partner::{CablePartner, StandingTotals};

/// The payee code.
pub const PAYEE: &str = "CATV";
