//! 郴电国际 electricity bill collection (partner-specs/01-chendian-power.md).
//!
//! | file | job |
//! |---|---|
//! | `config.rs` | one instance per BankCode: host, key, accounts, timeouts |
//! | `layouts.toml` | the message layouts, as data |
//! | `messages.rs` | pure encode/decode and checks of 1001–1004 |
//! | `client.rs` | short connections, and failures mapped to the SPI's outcomes |
//! | `daily_file.rs` | `CDGJ_<BankCode>_<YYYYMMDD>.txt`, checked against its summary line |
pub mod client;
pub mod config;
pub mod daily_file;
pub mod messages;

use chrono::NaiveDate;

use crate::spi::{
    AdapterError, BillPartner, DailyFile, OriginalRef, PayOrder, PayOutcome, QueryOutcome,
    RequestContext, ReversalOutcome, StatusOutcome,
};
pub use client::{Client, Endpoint, PAYEE};
pub use config::ChendianConfig;

/// One 郴电国际 instance (one legal-entity bank).
#[derive(Debug)]
pub struct ChendianAdapter {
    config: ChendianConfig,
    client: Client,
}

impl ChendianAdapter {
    /// Validates the configuration and loads the layouts; the same path serves start-up and
    /// reload.
    pub fn new(config: ChendianConfig) -> Result<Self, AdapterError> {
        let key = config.validate()?;
        let next_key = config.next_mac_key()?;
        let messages = messages::Messages::new(&config.bank_code, key)?.with_next_key(next_key);
        let endpoint = Endpoint {
            host: config.host.clone(),
            port: config.port,
            connect_timeout_ms: config.connect_timeout_ms,
            answer_timeout_ms: config.answer_timeout_ms,
        };
        Ok(ChendianAdapter {
            client: Client::new(messages, endpoint),
            config,
        })
    }

    pub fn config(&self) -> &ChendianConfig {
        &self.config
    }
}

#[async_trait::async_trait]
impl BillPartner for ChendianAdapter {
    fn payee(&self) -> &str {
        PAYEE
    }

    fn instance(&self) -> &str {
        &self.config.bank_code
    }

    /// Spec 01: TellerNo AN 6 (a longer one would be debited, then refused by the encoder).
    fn teller_no_max_len(&self) -> usize {
        6
    }

    async fn query(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError> {
        self.client.query(ctx, customer_no).await
    }

    async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome {
        self.client.pay(ctx, order).await
    }

    async fn reverse(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        self.client.reverse(ctx, original).await
    }

    async fn status(&self, ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome {
        self.client.status(ctx, original).await
    }

    fn daily_files(&self, acct_date: NaiveDate) -> Vec<String> {
        vec![daily_file::file_name(&self.config.bank_code, acct_date)]
    }

    fn parse_daily(&self, files: &[Vec<u8>]) -> Result<DailyFile, AdapterError> {
        match files {
            [file] => daily_file::parse(file),
            _ => Err(AdapterError::DailyFile {
                line: 0,
                reason: format!("须为1个文件，收到{}个", files.len()),
            }),
        }
    }

    fn purpose(&self) -> &str {
        PAYEE
    }

    fn payment_summary(&self, customer_no: &str) -> String {
        format!("电费{customer_no}")
    }

    fn settlement_code(&self) -> &str {
        &self.config.bank_code
    }

    fn refusal_reason(&self, code: &str) -> Option<crate::spi::RefusalReason> {
        use crate::spi::RefusalReason::*;
        match code {
            "1001" => Some(CustomerNotFound),
            "1002" => Some(NothingDue),
            "1003" => Some(AmountTooLow),
            "1004" => Some(CustomerClosed),
            "1005" => Some(ArrearsChanged),
            _ => None,
        }
    }

    fn settlement_summary(&self, acct_date: NaiveDate) -> String {
        format!(
            "电费结算{}{}",
            self.config.bank_code,
            codecs::clock::yyyymmdd(acct_date)
        )
    }
}
