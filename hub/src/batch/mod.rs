//! Batch jobs. Today: county water batch withholding (spec 02, 批量代扣).
//!
//! | module | job |
//! |---|---|
//! | [`file`] | the DK file read and checked, the DKR result written (pure) |
//! | [`agreements`] | the register of withholding agreements (201 signed, 202 ended) |
//! | [`run`] | the run: DK in, one journaled core 8002 per allowed line, DKR out; resumable |
//! | [`schedule`] | the poll of `hub serve`: every 10 min 06:00–12:00, later files left to an operator |
//!
//! A rerun is always safe: a processed BatchNo re-writes its first result byte for byte (other
//! content: 903); an unfinished one resumes, finished lines keep their results, and a line whose
//! 8002 outcome was never journaled is resolved with 8004 under its deterministic SeqNo.
pub mod agreements;
pub mod file;
pub mod run;
pub mod schedule;

pub use agreements::{Agreement, AgreementRegister};
pub use file::{DkError, FileResult, LineResult, ResultLine};
pub use run::{BatchError, BatchReport, RunOutcome, WaterWithholdConfig, WaterWithholdJob};
