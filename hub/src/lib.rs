//! The hub runtime. Follow one payment: [`api`] (HTTP handler) -> [`engine::Engine::pay`] ->
//! [`journal`] (ACCEPTED) -> [`core_client`] (8002) -> the partner adapter (1002) -> [`journal`]
//! (SUCCEEDED), or a pending action that [`engine::Engine::drive`] works off later.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the TOML configuration |
//! | [`state`] | the transaction states and pending actions |
//! | [`journal`] | sqlx journal: payments, events, serials, settlements; migrations on start |
//! | [`core_client`] | the core banking gateway connector (8001–8004) |
//! | [`engine`] | the state machine: pay, 冲正 on request, resolution of unknown outcomes |
//! | [`api`] | the channel HTTP/JSON API and its OpenAPI document |
//! | [`app`] | start-up wiring, the resolver job, recovery after restart |
//! | [`batch`] | batch withholding (spec 02 批量代扣): DK file in, one journaled debit per signed line, DKR out; the agreement register |
//! | [`cabletv`] | 攸县有线电视: the long link per `[[cabletv]]`, journal totals for 5001/5003, the 1 January year check |
//! | [`recon_job`] | T+1: files in, reconciliation, reports, settlement |
//! | [`simulate`] | `hub simulate`: the simulators on a config's ports, to try `hub serve` |
//! | [`demo`] | `hub demo`: a business day against the simulators |
//! | [`admin_backend`] | the journal behind the admin console (`/admin`) |
//! | [`errors`] | channel error codes and their Chinese text |
//! | [`crypto_cli`] | `hub crypto`: the operators' SM2/SM3/SM4/MAC tool |
//! | [`keys`] | key references, current/next rings, maker-checker promotion, session keys |
//! | [`medical`] | 城乡居民医保 (spec 03): `[[medical]]` instances as engine partners |
//! | [`tobacco`] | 岳阳烟草: the bureau's signed order endpoint, order look-ups, the notification outbox, the T+1 file |
//! | [`tls`] | rustls: HTTPS listeners (optional mutual TLS) and HTTPS partner clients |
pub mod admin_backend;
pub mod agreement_api;
pub mod api;
pub mod app;
pub mod batch;
pub mod cabletv;
pub mod cabletv_desk;
pub mod config;
pub mod core_client;
pub mod crypto_cli;
pub mod demo;
pub mod engine;
pub mod errors;
pub mod journal;
pub mod keys;
pub mod medical;
pub mod medical_desk;
pub mod recon_job;
pub mod recon_schedule;
pub mod simulate;
pub mod state;
pub mod tls;
pub mod tobacco;
