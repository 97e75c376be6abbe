//! 岳阳烟草 (spec 09) inside the hub: the bureau pushes orders here, channels pay them here, and the
//! hub notifies the bureau from a durable outbox.
//!
//! | module | job |
//! |---|---|
//! | [`store`] | orders, push digests, one-UPDATE state changes, the outbox rows, channel look-ups |
//! | [`router`] | the signed inbound endpoint: push, cancel, query |
//! | [`outbox`] | the worker that sends the signed notification and retries on the spec's schedule |
//! | [`file`] | the bureau's T+1 file against the paid orders |
//!
//! The engine drives a payment with [`store::TobaccoStore::begin_payment`] (1 → 2, before the
//! core 8002), then `payment_succeeded_in` (2 → 3 and the outbox row, in its transaction) or
//! `payment_failed` (2 → 1).
pub mod file;
pub mod lookup;
pub mod outbox;
pub mod partner;
pub mod router;
pub mod store;

#[cfg(test)]
mod tests;
