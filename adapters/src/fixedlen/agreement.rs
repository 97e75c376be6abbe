//! Withholding agreements of spec 02: 201 代扣签约 (sign) and 202 代扣解约 (terminate), over the
//! same short connections, header and MAC as the online trades. The profile carries their layouts
//! (`201.req`, `201.rsp`, `202.req`, `202.rsp`); the trade codes are spec 02's own.
//!
//! Nothing is re-sent here: on an unknown outcome the hub retries once with a new serial, as the
//! spec says, and keeps its agreement register in step with 000 answers only.

use chrono::NaiveDate;
use codecs::clock::parse_yyyymmdd;
use codecs::layout::Record;

use super::client::{self, ExchangeError, CONNECT_CODE};
use super::profile::{Codes, Trade};
use super::FixedLenAdapter;
use crate::medical::id_number::IdNumber;
use crate::spi::{mask, AdapterError, PartnerReply, RequestContext};

/// Spec 02: answer timeout 10 s for every trade but 102, 103 and 104.
pub const AGREEMENT_ANSWER_TIMEOUT_MS: u64 = 10_000;
/// IdType of the resident ID card: its GB 11643 check digit is checked before any call.
pub const ID_TYPE_RESIDENT: &str = "01";
/// 099: system error; for an agreement trade the outcome is not known.
const SYSTEM_ERROR_CODE: &str = "099";

/// What a 201 carries after the header. Every field must be filled (spec 02: blanks are 090).
#[derive(Clone, PartialEq, Eq)]
pub struct SignRequest {
    pub customer_no: String,
    /// Must equal the water company's name of the customer (else 012).
    pub customer_name: String,
    pub account_no: String,
    /// The account's name at the core (the hub checks it with 8005 before calling).
    pub account_name: String,
    /// `01` resident ID card, `99` other.
    pub id_type: String,
    pub id_no: String,
    pub phone: String,
}

impl std::fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest")
            .field("customer_no", &self.customer_no)
            .field("customer_name", &"<masked>")
            .field("account_no", &mask(&self.account_no))
            .field("account_name", &"<masked>")
            .field("id_type", &self.id_type)
            .field("id_no", &mask(&self.id_no))
            .field("phone", &mask(&self.phone))
            .finish()
    }
}

/// The outcome of one 201 or 202 exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgreementOutcome {
    /// 201 answered 000 (a repeat with the same account answers the existing agreement).
    Signed {
        agreement_no: String,
        effective_date: NaiveDate,
    },
    /// 202 answered 000.
    Terminated { end_date: NaiveDate },
    /// A definite answer other than 000 (010, 011, 012, 001, 002, 098, 090...), or refused before
    /// anything was sent: nothing changed at the water company.
    Refused(PartnerReply),
    /// Timeout, broken connection, garbled answer or 099: nobody knows.
    Unknown { reason: String },
}

fn sign_trade() -> Trade {
    Trade {
        code: "201".into(),
        request: "201.req".into(),
        response: Some("201.rsp".into()),
        answer_timeout_ms: AGREEMENT_ANSWER_TIMEOUT_MS,
    }
}

fn terminate_trade() -> Trade {
    Trade {
        code: "202".into(),
        request: "202.req".into(),
        response: Some("202.rsp".into()),
        answer_timeout_ms: AGREEMENT_ANSWER_TIMEOUT_MS,
    }
}

impl FixedLenAdapter {
    /// The whole 201 frame for `request` (length header and MAC included). The ID number of an
    /// IdType 01 is checked (GB 11643) first: nothing that fails here leaves the hub.
    pub fn encode_sign_request(
        &self,
        ctx: &RequestContext,
        request: &SignRequest,
    ) -> Result<Vec<u8>, AdapterError> {
        if request.id_type == ID_TYPE_RESIDENT {
            IdNumber::parse(&request.id_no, ctx.tx_date).map_err(|e| {
                AdapterError::InvalidInput {
                    field: "IdNo",
                    reason: e.to_string(),
                }
            })?;
        }
        let body = Record::new()
            .with("CustomerNo", request.customer_no.as_str())
            .with("CustomerName", request.customer_name.as_str())
            .with("AccountNo", request.account_no.as_str())
            .with("AccountName", request.account_name.as_str())
            .with("IdType", request.id_type.as_str())
            .with("IdNo", request.id_no.as_str())
            .with("Phone", request.phone.as_str());
        self.codec.encode_request(ctx, &sign_trade(), &body)
    }

    /// The whole 202 frame.
    pub fn encode_terminate_request(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
        agreement_no: &str,
        account_no: &str,
    ) -> Result<Vec<u8>, AdapterError> {
        let body = Record::new()
            .with("CustomerNo", customer_no)
            .with("AgreementNo", agreement_no)
            .with("AccountNo", account_no);
        self.codec.encode_request(ctx, &terminate_trade(), &body)
    }

    /// 201 代扣签约.
    pub async fn sign_agreement(
        &self,
        ctx: &RequestContext,
        request: &SignRequest,
    ) -> AgreementOutcome {
        let frame = match self.encode_sign_request(ctx, request) {
            Ok(frame) => frame,
            Err(error) => return AgreementOutcome::Refused(error.to_reply()),
        };
        let trade = sign_trade();
        let result = self
            .agreement_exchange(ctx, &trade, &frame, &request.customer_no)
            .await;
        self.agreement_outcome(result, |body| {
            let agreement_no = body.get("AgreementNo").unwrap_or_default().to_string();
            let effective_date = body.get("EffectiveDate").and_then(parse_yyyymmdd);
            match effective_date {
                Some(effective_date) if !agreement_no.is_empty() => {
                    Some(AgreementOutcome::Signed {
                        agreement_no,
                        effective_date,
                    })
                }
                _ => None,
            }
        })
    }

    /// 202 代扣解约.
    pub async fn terminate_agreement(
        &self,
        ctx: &RequestContext,
        customer_no: &str,
        agreement_no: &str,
        account_no: &str,
    ) -> AgreementOutcome {
        let frame = match self.encode_terminate_request(ctx, customer_no, agreement_no, account_no)
        {
            Ok(frame) => frame,
            Err(error) => return AgreementOutcome::Refused(error.to_reply()),
        };
        let trade = terminate_trade();
        let result = self
            .agreement_exchange(ctx, &trade, &frame, customer_no)
            .await;
        self.agreement_outcome(result, |body| {
            body.get("EndDate")
                .and_then(parse_yyyymmdd)
                .map(|end_date| AgreementOutcome::Terminated { end_date })
        })
    }

    async fn agreement_exchange(
        &self,
        ctx: &RequestContext,
        trade: &Trade,
        frame: &[u8],
        customer_no: &str,
    ) -> Result<super::Response, ExchangeError> {
        let timeout_ms = self
            .config
            .answer_timeout_ms
            .unwrap_or(trade.answer_timeout_ms);
        let result = client::round_trip(&self.endpoint, self.profile(), frame, timeout_ms)
            .await
            .and_then(|answer| {
                self.codec
                    .decode_response(ctx, trade, &answer)
                    .map_err(ExchangeError::Garbled)
            });
        match &result {
            Ok(response) => tracing::info!(
                partner = %self.profile().payee,
                instance = %self.config.instance,
                trade_code = %trade.code,
                bank_serial = %ctx.bank_serial,
                customer = %mask(customer_no),
                rsp_code = %response.rsp_code,
                "Partner answered."
            ),
            Err(error) => tracing::warn!(
                partner = %self.profile().payee,
                instance = %self.config.instance,
                trade_code = %trade.code,
                bank_serial = %ctx.bank_serial,
                customer = %mask(customer_no),
                error_code = error.code(),
                error = %error,
                "Partner exchange failed."
            ),
        }
        result
    }

    fn agreement_outcome(
        &self,
        result: Result<super::Response, ExchangeError>,
        success: impl FnOnce(&Record) -> Option<AgreementOutcome>,
    ) -> AgreementOutcome {
        let response = match result {
            Ok(response) => response,
            Err(ExchangeError::NotSent(error)) => {
                return AgreementOutcome::Refused(error.to_reply())
            }
            Err(error @ ExchangeError::Connect { .. }) => {
                return AgreementOutcome::Refused(PartnerReply {
                    code: CONNECT_CODE.to_string(),
                    message: error.to_string(),
                })
            }
            Err(error) => {
                return AgreementOutcome::Unknown {
                    reason: error.to_string(),
                }
            }
        };
        let profile = self.profile();
        if Codes::is(&profile.codes.success, &response.rsp_code) {
            return match response.body.as_ref().and_then(success) {
                Some(outcome) => outcome,
                None => AgreementOutcome::Unknown {
                    reason: "成功应答的报文体不可读".to_string(),
                },
            };
        }
        if response.rsp_code == SYSTEM_ERROR_CODE {
            return AgreementOutcome::Unknown {
                reason: format!("{} {}", response.rsp_code, response.rsp_msg),
            };
        }
        let message = if response.rsp_msg.is_empty() {
            profile
                .code_message(&response.rsp_code)
                .unwrap_or_default()
                .to_string()
        } else {
            response.rsp_msg.clone()
        };
        AgreementOutcome::Refused(PartnerReply {
            code: response.rsp_code,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDateTime, NaiveTime};
    use codecs::clock::{ManualClock, SharedClock};
    use codecs::Money;
    use fixtures::water_sim::{self, DayEnd, WaterBill, WaterCustomer, WaterSimConfig};

    use super::*;
    use crate::fixedlen::FixedLenConfig;
    use crate::spi::Channel;

    const KEY_HEX: &str = "00112233445566778899AABBCCDDEEFF";

    fn config(port: u16) -> FixedLenConfig {
        FixedLenConfig {
            instance: "water-xinhuang".into(),
            profile_builtin: Some("water".into()),
            profile_file: None,
            company_code: "431227".into(),
            host: "127.0.0.1".into(),
            port,
            mac_key_hex: KEY_HEX.into(),
            suspense_account: "43122700100100000001".into(),
            settlement_account: "43122700100100000099".into(),
            connect_timeout_ms: 1_000,
            answer_timeout_ms: Some(2_000),
            answer_timeouts_ms: Default::default(),
            file_dir: None,
        }
    }

    fn adapter(port: u16) -> FixedLenAdapter {
        FixedLenAdapter::from_config(config(port)).expect("adapter")
    }

    fn ctx(serial: &str) -> RequestContext {
        RequestContext {
            channel: Channel::Counter,
            branch_no: "080101".into(),
            teller_no: "T0801001".into(),
            tx_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
            tx_time: NaiveTime::from_hms_opt(9, 30, 15).expect("time"),
            bank_serial: serial.into(),
        }
    }

    fn zhang_san(account_no: &str, id_no: &str) -> SignRequest {
        SignRequest {
            customer_no: "0800123456".into(),
            customer_name: "张三".into(),
            account_no: account_no.into(),
            account_name: "张三".into(),
            id_type: "01".into(),
            id_no: id_no.into(),
            phone: "13900001111".into(),
        }
    }

    /// Spec 02's worked example, byte for byte.
    #[test]
    fn sign_request_is_the_worked_example() {
        let frame = adapter(1).encode_sign_request(
            &ctx("HB2612020000000017"),
            &zhang_san("6230901234567890123", "431227199003150016"),
        );
        let zhang = codecs::text::encode("张三", codecs::text::Charset::Gbk).expect("gbk");
        let mut expected = b"0276201431227080101T0801001120261202093015HB2612020000000017".to_vec();
        expected.extend(std::iter::repeat_n(b' ', 33));
        expected.extend_from_slice(b"0800123456");
        expected.extend_from_slice(&zhang);
        expected.extend(std::iter::repeat_n(b' ', 36));
        expected.extend_from_slice(b"6230901234567890123             ");
        expected.extend_from_slice(&zhang);
        expected.extend(std::iter::repeat_n(b' ', 36));
        expected.extend_from_slice(b"01431227199003150016  13900001111");
        expected.extend_from_slice(b"AB34326DCF7230C08E799B5E5B443CE3");
        assert_eq!(expected.len(), 280);
        assert_eq!(frame.ok(), Some(expected));
    }

    #[test]
    fn a_wrong_check_digit_is_refused_before_any_call() {
        let frame = adapter(1).encode_sign_request(
            &ctx("HB2612020000000017"),
            &zhang_san("6230901234567890123", "431227199003150017"),
        );
        assert!(
            matches!(frame, Err(AdapterError::InvalidInput { field: "IdNo", .. })),
            "{frame:?}"
        );
    }

    #[test]
    fn terminate_request_layout() {
        let frame = adapter(1).encode_terminate_request(
            &ctx("HB2612020000000018"),
            "0800123456",
            "XH26120200000001",
            "6230901234567890123",
        );
        let Ok(frame) = frame else {
            panic!("{frame:?}");
        };
        // 89 header + 10 + 16 + 32 + 32 MAC = 179
        assert_eq!(frame.len(), 183);
        assert_eq!(frame.get(..7), Some(&b"0179202"[..]));
        assert_eq!(
            frame.get(93..151),
            Some(&b"0800123456XH261202000000016230901234567890123             "[..])
        );
    }

    #[tokio::test]
    async fn sign_again_other_account_then_terminate_against_the_simulator() {
        let start = NaiveDateTime::new(
            NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
            NaiveTime::from_hms_opt(9, 30, 15).expect("time"),
        );
        let clock: SharedClock = ManualClock::new(start);
        let water = water_sim::start(
            WaterSimConfig {
                company_code: "431227".into(),
                mac_key: codecs::mac::parse_key_hex(KEY_HEX).expect("key"),
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
            clock,
        )
        .await
        .expect("water simulator");
        let adapter = adapter(water.addr.port());
        let signed = adapter
            .sign_agreement(
                &ctx("HB2612020000000101"),
                &zhang_san("6230901234567890123", "431227199003150016"),
            )
            .await;
        let AgreementOutcome::Signed {
            agreement_no,
            effective_date,
        } = signed
        else {
            panic!("{signed:?}");
        };
        // The day after the water company's AcctDate at signing.
        assert_eq!(
            effective_date,
            NaiveDate::from_ymd_opt(2026, 12, 3).expect("date")
        );
        // Signing again with the same account: 000 with the same agreement.
        let again = adapter
            .sign_agreement(
                &ctx("HB2612020000000102"),
                &zhang_san("6230901234567890123", "431227199003150016"),
            )
            .await;
        assert_eq!(
            again,
            AgreementOutcome::Signed {
                agreement_no: agreement_no.clone(),
                effective_date,
            }
        );
        // Another account: 010.
        let other = adapter
            .sign_agreement(
                &ctx("HB2612020000000103"),
                &zhang_san("6230901234567890131", "431227199003150016"),
            )
            .await;
        assert!(
            matches!(other, AgreementOutcome::Refused(ref r) if r.code == "010"),
            "{other:?}"
        );
        let ended = adapter
            .terminate_agreement(
                &ctx("HB2612020000000104"),
                "0800123456",
                &agreement_no,
                "6230901234567890123",
            )
            .await;
        assert_eq!(
            ended,
            AgreementOutcome::Terminated {
                end_date: NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
            }
        );
        // Ended already: 011.
        let twice = adapter
            .terminate_agreement(
                &ctx("HB2612020000000105"),
                "0800123456",
                &agreement_no,
                "6230901234567890123",
            )
            .await;
        assert!(
            matches!(twice, AgreementOutcome::Refused(ref r) if r.code == "011"),
            "{twice:?}"
        );
        let register = water.agreements();
        assert_eq!(register.len(), 1);
        water.shutdown();
    }
}
