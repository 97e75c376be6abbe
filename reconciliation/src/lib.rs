//! The T+1 reconciliation engine: for one partner instance and one business date (the partner's
//! AcctDate), compare the partner's daily file, the hub's journal and the core's daily file(s),
//! classify every record, write the report and compute the settlement instruction.
//!
//! Pure library: no network, no clock; file I/O only to write reports.
//!
//! | module | job |
//! |---|---|
//! | [`model`] | the input and output types (hub, partner and core records, differences, settlement) |
//! | [`core_file`] | parses `CORE_MBP_<CoreDate>.txt`, checking CRLF, fields and the TOTAL line |
//! | [`engine`] | scope, core net positions, classification, settlement: [`reconcile`] |
//! | [`report`] | the operators' report in Chinese, HTML and CSV, personal data masked |
//! | [`mask`] | masking of account, customer and ID numbers for reports and logs |
pub mod core_file;
pub mod engine;
pub mod mask;
pub mod model;
pub mod report;

pub use core_file::{CoreFile, FileError};
pub use engine::{reconcile, reconcile_with_carried, settlement_seq_no, settlement_summary};
pub use model::{
    AwaitingCore, CoreExpectation, CoreRecord, CoreStatus, Difference, DifferenceKind, HubRecord,
    HubState, MatchedRecord, PartnerRecord, ReconInput, ReconResult, Settlement,
    SettlementExecution, Totals, UnconfirmedEarlier,
};
