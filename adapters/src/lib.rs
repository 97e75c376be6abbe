//! Adapters: the SPI the hub's engine calls for every bill-collection partner, and one module per
//! partner that implements it.
//!
//! | module | job |
//! |---|---|
//! | [`spi`] | the `BillPartner` trait, its request/outcome types, `AdapterError`, log masking |
//! | [`chendian`] | 郴电国际 electricity (spec 01): config, layouts, messages, client, daily file |
//! | [`fixedlen`] | any fixed-length partner of the shape of 01/02, driven by a profile file (water, spec 02) |
//!
//! Adding a partner touches one folder here and one registry line in the hub.
pub mod chendian;
pub mod fixedlen;
pub mod spi;

pub use spi::{
    AdapterError, Bill, BillItem, BillPartner, Channel, DailyFile, DailyRecord, OriginalRef,
    PartnerReply, PayOrder, PayOutcome, QueryOutcome, RequestContext, ReversalOutcome,
    StatusOutcome,
};
