//! The generic fixed-length adapter: any bill partner whose protocol has the shape of specs 01/02
//! (length header, fixed fields, MAC, query/pay/prepay/reversal/status, T+1 totals and detail
//! files) is a profile file plus an instance config, with no partner code.
//!
//! | file | job |
//! |---|---|
//! | `profile.rs` | the profile: framing, MAC, layouts, trade codes, field names, code table, files |
//! | `config.rs` | one instance: CompanyCode, host, key, accounts, timeout overrides |
//! | `messages.rs` | pure encode of request frames and checks of answers |
//! | `client.rs` | short connections, and answers/failures mapped to the SPI's outcomes |
//! | `daily_file.rs` | the totals and detail files, checked against each other |
//!
//! Built-in profile: `water` (spec 02, `adapters/profiles/water.toml`). Others are loaded from
//! `deploy/partners/*.toml` at run time. Withholding agreements (201/202) are in `agreement`; the batch withholding run is the hub's (`hub::batch`).
pub mod agreement;
pub mod client;
pub mod config;
pub mod daily_file;
pub mod messages;
pub mod profile;
#[cfg(test)]
mod tests;

use std::time::Instant;

use chrono::NaiveDate;
use codecs::clock::yyyymmdd;
use codecs::layout::Record;

pub use client::{Endpoint, ExchangeError, CONNECT_CODE};
pub use config::FixedLenConfig;
pub use daily_file::DailyFileNames;
pub use messages::{Codec, Response, ResponseError};
pub use profile::{Operation, Profile};

use crate::spi::{
    mask, AdapterError, BillPartner, DailyFile, OriginalRef, PayOrder, PayOutcome, QueryOutcome,
    RequestContext, ReversalOutcome, StatusOutcome,
};

/// Which trade a payment went as, so that its reversal names it (spec 02: a 102 named as 103 is
/// refused 023).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentKind {
    Pay,
    Prepay,
}

/// One instance of a fixed-length partner.
#[derive(Debug)]
pub struct FixedLenAdapter {
    config: FixedLenConfig,
    codec: Codec,
    endpoint: Endpoint,
}

impl FixedLenAdapter {
    /// Validates the instance against the profile; the same path serves start-up and reload.
    pub fn new(profile: Profile, config: FixedLenConfig) -> Result<Self, AdapterError> {
        profile.validate()?;
        let key = config.validate(&profile)?;
        let endpoint = Endpoint {
            host: config.host.clone(),
            port: config.port,
            connect_timeout_ms: config.connect_timeout_ms,
            permits: client::connection_permits(
                &config.instance,
                &config.host,
                config.port,
                profile.framing.max_connections,
            ),
        };
        Ok(FixedLenAdapter {
            codec: Codec::new(profile, &config.company_code, key),
            endpoint,
            config,
        })
    }

    /// Loads the profile the config names, then as [`FixedLenAdapter::new`].
    pub fn from_config(config: FixedLenConfig) -> Result<Self, AdapterError> {
        let profile = config.load_profile()?;
        FixedLenAdapter::new(profile, config)
    }

    pub fn config(&self) -> &FixedLenConfig {
        &self.config
    }

    pub fn profile(&self) -> &Profile {
        self.codec.profile()
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The core Purpose of this instance's postings: its CompanyCode (core-banking.md).
    pub fn purpose(&self) -> &str {
        &self.config.company_code
    }

    /// Summary of a payment's 8002 (`水费<CustomerNo>`).
    pub fn payment_summary(&self, customer_no: &str) -> String {
        format!(
            "{}{customer_no}",
            self.profile().core.payment_summary_prefix
        )
    }

    /// Summary of the settlement 8002 (`水费结算<CompanyCode><YYYYMMDD>`).
    pub fn settlement_summary(&self, acct_date: NaiveDate) -> String {
        format!(
            "{}{}{}",
            self.profile().core.settlement_summary_prefix,
            self.config.company_code,
            yyyymmdd(acct_date)
        )
    }

    /// Whether a new payment from a channel must be refused at `time` (the hub's clock, from its
    /// `SharedClock`) because of the partner's day-end; nothing is debited then.
    pub fn refuses_new_payments_at(&self, time: chrono::NaiveTime) -> bool {
        self.profile()
            .day_end
            .as_ref()
            .is_some_and(|day_end| day_end.refuses_at(time))
    }

    /// The width of the header's BankSerial: the engine's serials for this instance must fit it
    /// (spec 02: AN 18), or every request is refused before it is sent.
    pub fn bank_serial_len(&self) -> usize {
        let profile = self.profile();
        field_len(&profile.header.layout, &profile.header.bank_serial, profile)
    }

    /// The width of the header's TellerNo (spec 01: AN 6, spec 02: AN 8): a longer teller is
    /// refused before any debit rather than by the encoder after it.
    pub fn teller_no_len(&self) -> usize {
        let profile = self.profile();
        field_len(&profile.header.layout, &profile.header.teller_no, profile)
    }

    /// The width of CustomerNo in the query request (spec 02: AN 10, spec 11: AN 12): a longer
    /// one is refused before any debit, not by the encoder after it.
    pub fn customer_no_len(&self) -> usize {
        let profile = self.profile();
        field_len(
            &profile.trades.query.request,
            &profile.fields.customer_no,
            profile,
        )
    }

    /// Whether this profile offers a separate prepayment trade.
    pub fn supports_prepay(&self) -> bool {
        self.profile().trades.prepay.is_some()
    }

    pub fn daily_file_names(&self, acct_date: NaiveDate) -> DailyFileNames {
        daily_file::file_names(
            &self.profile().daily_file,
            &self.config.company_code,
            acct_date,
        )
    }

    /// Parses one day's totals and detail files.
    pub fn parse_daily_files(
        &self,
        totals: &[u8],
        detail: &[u8],
    ) -> Result<DailyFile, AdapterError> {
        daily_file::parse_files(self.profile(), &self.config.company_code, totals, detail)
    }

    fn trade(&self, operation: Operation) -> Result<&profile::Trade, AdapterError> {
        self.profile()
            .trades
            .get(operation)
            .ok_or_else(|| AdapterError::InvalidInput {
                field: "operation",
                reason: format!("本协议不支持{}", operation.name()),
            })
    }

    /// The payment kind of an order: a prepayment when nothing is due and the profile has one.
    pub fn payment_kind(&self, order: &PayOrder) -> PaymentKind {
        if order.total_due == codecs::Money::ZERO && self.supports_prepay() {
            PaymentKind::Prepay
        } else {
            PaymentKind::Pay
        }
    }

    /// One exchange: encode, send on a fresh connection, check the answer.
    pub async fn exchange(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        body: &Record,
        customer_no: &str,
    ) -> Result<Response, ExchangeError> {
        let trade = self.trade(operation).map_err(ExchangeError::NotSent)?;
        let frame = self
            .codec
            .encode_request(ctx, trade, body)
            .map_err(ExchangeError::NotSent)?;
        let timeout_ms = self
            .config
            .answer_timeout_ms(operation, trade.answer_timeout_ms);
        let started = Instant::now();
        let result = client::round_trip(&self.endpoint, self.profile(), &frame, timeout_ms)
            .await
            .and_then(|answer| {
                self.codec
                    .decode_response(ctx, trade, &answer)
                    .map_err(ExchangeError::Garbled)
            });
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let payee = self.profile().payee.as_str();
        match &result {
            Ok(response) => tracing::info!(
                partner = payee,
                instance = %self.config.instance,
                trade_code = %trade.code,
                bank_serial = %ctx.bank_serial,
                customer = %mask(customer_no),
                rsp_code = %response.rsp_code,
                rsp_msg = %response.rsp_msg,
                elapsed_ms,
                "Partner answered."
            ),
            Err(error) => tracing::warn!(
                partner = payee,
                instance = %self.config.instance,
                trade_code = %trade.code,
                bank_serial = %ctx.bank_serial,
                customer = %mask(customer_no),
                error_code = error.code(),
                error = %error,
                elapsed_ms,
                "Partner exchange failed."
            ),
        }
        result
    }

    /// 冲正 naming the original's trade explicitly (after a restart the in-memory record of
    /// which trade a payment went as is gone; the engine knows it from its journal).
    pub async fn reverse_as(
        &self,
        ctx: &RequestContext,
        original: &OriginalRef,
        kind: PaymentKind,
    ) -> ReversalOutcome {
        let operation = match kind {
            PaymentKind::Pay => Operation::Pay,
            PaymentKind::Prepay => Operation::Prepay,
        };
        let orig_code = match self.trade(operation) {
            Ok(trade) => trade.code.clone(),
            Err(error) => return ReversalOutcome::Refused(error.to_reply()),
        };
        let f = &self.profile().fields;
        let mut body = Record::new()
            .with(&f.orig_bank_serial, original.bank_serial.as_str())
            .with(&f.orig_tx_date, yyyymmdd(original.tx_date))
            .with(&f.orig_trade_code, orig_code)
            .with(&f.customer_no, original.customer_no.as_str());
        body.set_money(&f.amount, original.amount);
        let result = self
            .exchange(ctx, Operation::Reverse, &body, &original.customer_no)
            .await;
        client::reversal_outcome(self.profile(), result)
    }
}

#[async_trait::async_trait]
impl BillPartner for FixedLenAdapter {
    fn payee(&self) -> &str {
        &self.profile().payee
    }

    fn instance(&self) -> &str {
        &self.config.instance
    }

    async fn query(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
    ) -> Result<QueryOutcome, AdapterError> {
        let body = Record::new().with(&self.profile().fields.customer_no, customer_no);
        let result = self
            .exchange(ctx, Operation::Query, &body, customer_no)
            .await;
        client::query_outcome(self.profile(), result, customer_no)
    }

    async fn pay(&self, ctx: &RequestContext, order: &PayOrder) -> PayOutcome {
        let kind = self.payment_kind(order);
        let operation = match kind {
            PaymentKind::Pay => Operation::Pay,
            PaymentKind::Prepay => Operation::Prepay,
        };
        let f = &self.profile().fields;
        let mut body = Record::new()
            .with(&f.customer_no, order.customer_no.as_str())
            .with(&f.payer_account, order.payer_account.as_str());
        body.set_money(&f.pay_amount, order.pay_amount);
        body.set_money(&f.total_due, order.total_due);
        let result = self
            .exchange(ctx, operation, &body, &order.customer_no)
            .await;
        client::pay_outcome(self.profile(), result)
    }

    /// 冲正. The original's trade (pay or prepay) follows from its total due exactly as
    /// [`FixedLenAdapter::payment_kind`] chose it, so it is right after a restart too.
    async fn reverse(&self, ctx: &RequestContext, original: &OriginalRef) -> ReversalOutcome {
        let kind = self.payment_kind(&PayOrder {
            customer_no: original.customer_no.clone(),
            pay_amount: original.amount,
            total_due: original.total_due,
            payer_account: String::new(),
            fields: Default::default(),
        });
        self.reverse_as(ctx, original, kind).await
    }

    async fn status(&self, ctx: &RequestContext, original: &OriginalRef) -> StatusOutcome {
        let f = &self.profile().fields;
        let body = Record::new()
            .with(&f.orig_bank_serial, original.bank_serial.as_str())
            .with(&f.orig_tx_date, yyyymmdd(original.tx_date));
        let result = self
            .exchange(ctx, Operation::Status, &body, &original.customer_no)
            .await;
        client::status_outcome(self.profile(), result)
    }

    /// The totals file, then the detail file (the flag file only says both are complete).
    fn daily_files(&self, acct_date: NaiveDate) -> Vec<String> {
        let names = self.daily_file_names(acct_date);
        vec![names.totals, names.detail]
    }

    fn daily_flag(&self, acct_date: NaiveDate) -> Option<String> {
        Some(self.daily_file_names(acct_date).flag)
    }

    fn parse_daily(&self, files: &[Vec<u8>]) -> Result<DailyFile, AdapterError> {
        match files {
            [totals, detail] => self.parse_daily_files(totals, detail),
            _ => Err(AdapterError::DailyFile {
                line: 0,
                reason: format!("须为总账和明细2个文件，收到{}个", files.len()),
            }),
        }
    }

    fn purpose(&self) -> &str {
        FixedLenAdapter::purpose(self)
    }

    fn payment_summary(&self, customer_no: &str) -> String {
        FixedLenAdapter::payment_summary(self, customer_no)
    }

    fn settlement_code(&self) -> &str {
        &self.config.company_code
    }

    fn settlement_summary(&self, acct_date: NaiveDate) -> String {
        FixedLenAdapter::settlement_summary(self, acct_date)
    }

    fn bank_serial_len(&self) -> usize {
        FixedLenAdapter::bank_serial_len(self)
    }

    fn teller_no_max_len(&self) -> usize {
        FixedLenAdapter::teller_no_len(self)
    }

    fn customer_no_max_len(&self) -> usize {
        FixedLenAdapter::customer_no_len(self)
    }

    fn accepts_payments_at(&self, time: chrono::NaiveTime) -> bool {
        !self.refuses_new_payments_at(time)
    }

    fn accepts_prepayment(&self) -> bool {
        self.supports_prepay()
    }

    fn refusal_reason(&self, code: &str) -> Option<crate::spi::RefusalReason> {
        self.profile().codes.reasons.get(code).copied()
    }
}

/// The width of a top-level field of one of the profile's layouts; 0 when there is none (the
/// profile's validation makes sure the header and query fields exist).
fn field_len(layout: &str, name: &str, profile: &Profile) -> usize {
    profile
        .layout(layout)
        .ok()
        .and_then(|layout| {
            layout.items.iter().find_map(|item| match item {
                codecs::layout::Item::Field(field) if field.name == name => Some(field.len),
                _ => None,
            })
        })
        .unwrap_or(0)
}
