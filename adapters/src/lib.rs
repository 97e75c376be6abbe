//! Adapters: the SPI the hub's engine calls for every bill-collection partner, and one module per
//! partner that implements it.
//!
//! | module | job |
//! |---|---|
//! | [`spi`] | the `BillPartner` trait, its request/outcome types, `AdapterError`, log masking |
//! | [`chendian`] | 郴电国际 electricity (spec 01): config, layouts, messages, client, daily file |
//! | [`cabletv`] | 攸县 cable TV (spec 04): the multiplexed long link, typed operations, daily file |
//! | [`fixedlen`] | any fixed-length partner of the shape of 01/02, driven by a profile file (water, spec 02) |
//! | [`medical`] | 城乡居民医保 medical insurance (spec 03): encrypted, SM2-signed JSON over HTTPS, daily file |
//! | [`tobacco`] | 岳阳烟草 tobacco (spec 09): SM2-signed JSON envelope, order messages, notify client, daily file |
//!
//! Adding a partner touches one folder here and one registry line in the hub.
pub mod cabletv;
pub mod chendian;
pub mod fixedlen;
pub mod medical;
pub mod spi;
pub mod tobacco;

pub use spi::{
    AdapterError, Bill, BillItem, BillPartner, Channel, DailyFile, DailyRecord, OriginalRef,
    PartnerReply, PayOrder, PayOutcome, QueryOutcome, RequestContext, ReversalOutcome,
    StatusOutcome,
};
