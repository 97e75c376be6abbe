//! 岳阳烟草 tobacco retailer payments (spec 09). The bureau pushes payable orders to the hub and
//! the hub notifies it of every payment; both directions are JSON over HTTPS, SM2-signed both ways.
//! The bill SPI does not fit (no online query or pay call to the bureau), so this module offers its
//! own typed pieces, pure except for the one client:
//!
//! | module | job |
//! |---|---|
//! | [`sign`] | the `X-YC-*` headers, request/response signing strings, the receiver's checks |
//! | [`message`] | push / cancel / query parsing (strict fen integers), answers, the notification |
//! | [`client`] | the signed payment-notification call and its Acknowledged/Rejected/NotAcknowledged outcome |
//! | [`daily_file`] | the T+1 file `YCJF_<bankCode>_<acctDate>.txt` |
pub mod client;
pub mod daily_file;
pub mod message;
pub mod sign;

pub use client::{NotifyClient, NotifyConfig, NotifyOutcome};
pub use daily_file::{parse_daily_file, FileLine, TobaccoDailyFile};
pub use message::{OrderState, PayChannel, PayableOrder, PaymentNotification};
pub use sign::{AuthError, RequestVerifier, SignedHeaders};
