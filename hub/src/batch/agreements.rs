//! The hub's register of withholding agreements (代扣协议): it follows only the water company's 000
//! answers to 201 (signed) and 202 (ended), and is what the batch run checks each line against.
//! [`AgreementRegister::sign`] and [`AgreementRegister::terminate`] make the call through the
//! water adapter with spec 02's one retry, and record what was answered.

use chrono::NaiveDate;
use codecs::clock::{parse_yyyymmdd, yyyymmdd, SharedClock};
use sqlx::Row;

use adapters::fixedlen::agreement::{AgreementOutcome, SignRequest};
use adapters::fixedlen::FixedLenAdapter;
use adapters::spi::RequestContext;

use crate::journal::{Journal, JournalError};

/// One agreement as the water company confirmed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    pub instance: String,
    pub agreement_no: String,
    pub customer_no: String,
    pub account_no: String,
    /// The first batch date that may include it.
    pub effective_date: NaiveDate,
    /// Set by a 202 answered 000.
    pub end_date: Option<NaiveDate>,
}

impl Agreement {
    /// Whether a batch of `batch_date` may debit under this agreement.
    pub fn is_live_on(&self, batch_date: NaiveDate) -> bool {
        self.end_date.is_none() && self.effective_date <= batch_date
    }
}

#[derive(Clone)]
pub struct AgreementRegister {
    journal: Journal,
    clock: SharedClock,
}

impl AgreementRegister {
    pub fn new(journal: Journal, clock: SharedClock) -> AgreementRegister {
        AgreementRegister { journal, clock }
    }

    fn now_text(&self) -> String {
        self.clock.now().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }

    /// Records a 201 answered 000. A repeat of the same answer (signing again with the same
    /// account answers the existing agreement) changes nothing.
    pub async fn record_signed(&self, agreement: &Agreement) -> Result<(), JournalError> {
        let now = self.now_text();
        sqlx::query(
            "INSERT INTO withholding_agreements (instance, agreement_no, customer_no, account_no,
                 effective_date, end_date, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, NULL, ?, ?)
             ON CONFLICT (instance, agreement_no) DO NOTHING",
        )
        .bind(&agreement.instance)
        .bind(&agreement.agreement_no)
        .bind(&agreement.customer_no)
        .bind(&agreement.account_no)
        .bind(yyyymmdd(agreement.effective_date))
        .bind(&now)
        .bind(&now)
        .execute(self.journal.pool())
        .await?;
        Ok(())
    }

    /// Records a 202 answered 000 (or 011 on a retry, which means ended). Returns whether a live
    /// agreement was ended.
    pub async fn record_ended(
        &self,
        instance: &str,
        customer_no: &str,
        agreement_no: &str,
        end_date: NaiveDate,
    ) -> Result<bool, JournalError> {
        let done = sqlx::query(
            "UPDATE withholding_agreements SET end_date = ?, updated_at = ?
             WHERE instance = ? AND agreement_no = ? AND customer_no = ? AND end_date IS NULL",
        )
        .bind(yyyymmdd(end_date))
        .bind(self.now_text())
        .bind(instance)
        .bind(agreement_no)
        .bind(customer_no)
        .execute(self.journal.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The agreement `agreement_no` of `instance`, ended or not.
    pub async fn find(
        &self,
        instance: &str,
        agreement_no: &str,
    ) -> Result<Option<Agreement>, JournalError> {
        let row = sqlx::query(
            "SELECT instance, agreement_no, customer_no, account_no, effective_date, end_date
             FROM withholding_agreements WHERE instance = ? AND agreement_no = ?",
        )
        .bind(instance)
        .bind(agreement_no)
        .fetch_optional(self.journal.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let agreement_no: String = row.try_get("agreement_no")?;
        let date = |column: &'static str, text: String| {
            parse_yyyymmdd(&text).ok_or_else(|| JournalError::Corrupt {
                serial: agreement_no.clone(),
                column,
                value: text,
            })
        };
        let effective_date = date("effective_date", row.try_get("effective_date")?)?;
        let end_date = match row.try_get::<Option<String>, _>("end_date")? {
            Some(text) => Some(date("end_date", text)?),
            None => None,
        };
        Ok(Some(Agreement {
            instance: row.try_get("instance")?,
            customer_no: row.try_get("customer_no")?,
            account_no: row.try_get("account_no")?,
            agreement_no,
            effective_date,
            end_date,
        }))
    }
}

/// 202 answered 011: no such agreement (on a retry after an unknown outcome: it ended).
const NO_AGREEMENT_CODE: &str = "011";

impl AgreementRegister {
    /// A fresh hub serial of the request's date, as wide as the partner's BankSerial.
    async fn fresh_context(
        &self,
        adapter: &FixedLenAdapter,
        node: u8,
        template: &RequestContext,
    ) -> Result<RequestContext, JournalError> {
        let bank_serial = self
            .journal
            .next_serial(node, template.tx_date, adapter.bank_serial_len())
            .await?;
        Ok(RequestContext {
            bank_serial,
            ..template.clone()
        })
    }

    /// 201 through `adapter`, retried once with a new serial when the outcome is unknown (spec
    /// 02); the register records a 000 answer only. `template`'s serial is not used: each attempt
    /// gets a fresh hub serial.
    pub async fn sign(
        &self,
        adapter: &FixedLenAdapter,
        node: u8,
        template: &RequestContext,
        request: &SignRequest,
    ) -> Result<AgreementOutcome, JournalError> {
        let mut outcome = AgreementOutcome::Unknown {
            reason: String::new(),
        };
        for _attempt in 0..2 {
            let ctx = self.fresh_context(adapter, node, template).await?;
            outcome = adapter.sign_agreement(&ctx, request).await;
            if !matches!(outcome, AgreementOutcome::Unknown { .. }) {
                break;
            }
        }
        if let AgreementOutcome::Signed {
            agreement_no,
            effective_date,
        } = &outcome
        {
            self.record_signed(&Agreement {
                instance: adapter.config().instance.clone(),
                agreement_no: agreement_no.clone(),
                customer_no: request.customer_no.clone(),
                account_no: request.account_no.clone(),
                effective_date: *effective_date,
                end_date: None,
            })
            .await?;
        }
        Ok(outcome)
    }

    /// 202 through `adapter`, retried once with a new serial when the outcome is unknown; a retry
    /// answered 011 means the first attempt ended it (reported as ended on the request's date).
    pub async fn terminate(
        &self,
        adapter: &FixedLenAdapter,
        node: u8,
        template: &RequestContext,
        customer_no: &str,
        agreement_no: &str,
        account_no: &str,
    ) -> Result<AgreementOutcome, JournalError> {
        let mut outcome = AgreementOutcome::Unknown {
            reason: String::new(),
        };
        for attempt in 0..2 {
            let ctx = self.fresh_context(adapter, node, template).await?;
            outcome = adapter
                .terminate_agreement(&ctx, customer_no, agreement_no, account_no)
                .await;
            match &outcome {
                AgreementOutcome::Refused(reply)
                    if attempt > 0 && reply.code == NO_AGREEMENT_CODE =>
                {
                    outcome = AgreementOutcome::Terminated {
                        end_date: ctx.tx_date,
                    };
                    break;
                }
                AgreementOutcome::Unknown { .. } => {}
                _ => break,
            }
        }
        if let AgreementOutcome::Terminated { end_date } = &outcome {
            self.record_ended(
                &adapter.config().instance,
                customer_no,
                agreement_no,
                *end_date,
            )
            .await?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;
    use codecs::clock::ManualClock;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, day).unwrap_or_default()
    }

    #[tokio::test]
    async fn signed_then_ended() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        let journal = Journal::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let start = NaiveDateTime::new(d(2), chrono::NaiveTime::MIN);
        let register = AgreementRegister::new(journal, ManualClock::new(start));
        let agreement = Agreement {
            instance: "water-xinhuang".into(),
            agreement_no: "A000000000000001".into(),
            customer_no: "0800123456".into(),
            account_no: "6230901234567890123".into(),
            effective_date: d(3),
            end_date: None,
        };
        assert!(register.record_signed(&agreement).await.is_ok());
        // the same 000 answer twice: one agreement
        assert!(register.record_signed(&agreement).await.is_ok());
        let found = register.find("water-xinhuang", "A000000000000001").await;
        assert_eq!(found.ok().flatten(), Some(agreement.clone()));
        assert!(!agreement.is_live_on(d(2)), "not before EffectiveDate");
        assert!(agreement.is_live_on(d(3)));
        let ended = register
            .record_ended("water-xinhuang", "0800123456", "A000000000000001", d(5))
            .await;
        assert_eq!(ended.ok(), Some(true));
        let found = register.find("water-xinhuang", "A000000000000001").await;
        let found = found.ok().flatten();
        assert_eq!(found.as_ref().and_then(|a| a.end_date), Some(d(5)));
        assert_eq!(found.map(|a| a.is_live_on(d(6))), Some(false));
        let other_instance = register.find("water-jiahe", "A000000000000001").await;
        assert_eq!(other_instance.ok().flatten(), None);
    }

    /// Spec 02: a 201 or 202 whose outcome is unknown is retried once with a new serial; the
    /// water company processed the first one, so the retry of 201 answers the same agreement and
    /// the retry of 202 answers 011, which means ended.
    #[tokio::test]
    async fn sign_and_terminate_retry_once_after_a_timeout() {
        use adapters::fixedlen::FixedLenConfig;
        use adapters::spi::Channel;
        use codecs::Money;
        use fixtures::water_sim::{
            self, DayEnd, WaterBill, WaterCustomer, WaterFault, WaterFaultRule, WaterSimConfig,
        };

        const KEY_HEX: &str = "00112233445566778899AABBCCDDEEFF";
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        let journal = Journal::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
        let start = NaiveDateTime::new(
            d(2),
            chrono::NaiveTime::from_hms_opt(9, 30, 15).unwrap_or_default(),
        );
        let clock = ManualClock::new(start);
        let water = water_sim::start(
            WaterSimConfig {
                company_code: "431227".into(),
                mac_key: codecs::mac::parse_key_hex(KEY_HEX).unwrap_or_else(|e| panic!("{e}")),
                day_end: DayEnd::spec(),
                customers: vec![WaterCustomer {
                    customer_no: "0800123456".into(),
                    name: "张三".into(),
                    address: "新晃县城".into(),
                    meter_no: "M00000000001".into(),
                    closed: false,
                    balance: Money::ZERO,
                    bills: vec![WaterBill {
                        period: "202611".into(),
                        prev_reading_m3: 100,
                        curr_reading_m3: 112,
                        usage_m3: 12,
                        water_fee: Money::from_fen(3_520),
                        late_fee: Money::ZERO,
                    }],
                    locked_by_batch: false,
                }],
            },
            clock.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let adapter = FixedLenAdapter::from_config(FixedLenConfig {
            instance: "water-xinhuang".into(),
            profile_builtin: Some("water".into()),
            profile_file: None,
            company_code: "431227".into(),
            host: "127.0.0.1".into(),
            port: water.addr.port(),
            mac_key_hex: KEY_HEX.into(),
            suspense_account: "9003143122700001".into(),
            settlement_account: "9003243122700001".into(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms: Some(300),
            answer_timeouts_ms: Default::default(),
            file_dir: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let register = AgreementRegister::new(journal, clock);
        let template = RequestContext {
            channel: Channel::Counter,
            branch_no: "080101".into(),
            teller_no: "T0801001".into(),
            tx_date: d(2),
            tx_time: chrono::NaiveTime::from_hms_opt(9, 30, 15).unwrap_or_default(),
            bank_serial: String::new(),
        };
        let late = |trade_code: &str| WaterFaultRule {
            trade_code: trade_code.into(),
            customer_no: None,
            fault: WaterFault::AnswerLate(std::time::Duration::from_millis(800)),
            times: 1,
        };
        water.arm(late("201"));
        let request = SignRequest {
            customer_no: "0800123456".into(),
            customer_name: "张三".into(),
            account_no: "6230901234567890123".into(),
            account_name: "张三".into(),
            id_type: "01".into(),
            id_no: "431227199003150016".into(),
            phone: "13900001111".into(),
        };
        let signed = register.sign(&adapter, 1, &template, &request).await;
        let Ok(AgreementOutcome::Signed {
            agreement_no,
            effective_date,
        }) = signed
        else {
            panic!("{signed:?}");
        };
        assert_eq!(effective_date, d(3), "the day after AcctDate 20261202");
        let recorded = register.find("water-xinhuang", &agreement_no).await;
        let recorded = recorded.ok().flatten();
        assert_eq!(
            recorded.as_ref().map(|a| a.account_no.as_str()),
            Some("6230901234567890123")
        );
        assert_eq!(recorded.map(|a| a.end_date), Some(None));

        water.arm(late("202"));
        let ended = register
            .terminate(
                &adapter,
                1,
                &template,
                "0800123456",
                &agreement_no,
                "6230901234567890123",
            )
            .await;
        assert_eq!(
            ended.ok(),
            Some(AgreementOutcome::Terminated { end_date: d(2) })
        );
        let recorded = register.find("water-xinhuang", &agreement_no).await;
        assert_eq!(recorded.ok().flatten().and_then(|a| a.end_date), Some(d(2)));
        let at_partner = water.agreements();
        assert_eq!(at_partner.len(), 1);
        assert_eq!(at_partner.first().and_then(|a| a.end_date), Some(d(2)));
        water.shutdown();
    }
}
