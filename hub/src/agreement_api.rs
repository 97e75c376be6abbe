//! The channels' desk for withholding agreements (spec 02, 201 代扣签约 and 202 代扣解约): the
//! hub checks the ID number and, with core 8005, the account's name before it calls the water
//! company; the register follows only the company's 000 answers (see [`crate::batch::agreements`]).

use std::collections::HashMap;
use std::sync::Arc;

use adapters::fixedlen::agreement::{AgreementOutcome, SignRequest};
use adapters::fixedlen::FixedLenAdapter;
use adapters::spi::{mask, Channel, PartnerReply, RequestContext};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use codecs::clock::{yyyymmdd, SharedClock};
use serde::{Deserialize, Serialize};

use crate::api::{bad_json, refusal, Refusal};
use crate::batch::AgreementRegister;
use crate::core_client::CoreClient;
use crate::errors::ErrorCode;
use crate::journal::Journal;

/// The fixed-length instances whose protocol has 201/202, and what the desk needs to call them.
pub struct AgreementDesk {
    adapters: HashMap<String, Arc<FixedLenAdapter>>,
    register: AgreementRegister,
    core: CoreClient,
    journal: Journal,
    node: u8,
    clock: SharedClock,
}

impl AgreementDesk {
    pub fn new(
        adapters: HashMap<String, Arc<FixedLenAdapter>>,
        journal: Journal,
        core: CoreClient,
        node: u8,
        clock: SharedClock,
    ) -> AgreementDesk {
        AgreementDesk {
            register: AgreementRegister::new(journal.clone(), clock.clone()),
            adapters,
            core,
            journal,
            node,
            clock,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    pub instance: String,
    pub customer_no: String,
    /// The customer's name as the water company has it (else 012).
    pub customer_name: String,
    pub account_no: String,
    pub account_name: String,
    /// `01` resident ID card (GB 11643 checked before any call), `99` other.
    pub id_type: String,
    pub id_no: String,
    pub phone: String,
    pub channel: String,
    pub branch_no: String,
    pub teller_no: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateBody {
    pub instance: String,
    pub customer_no: String,
    pub agreement_no: String,
    pub account_no: String,
    pub channel: String,
    pub branch_no: String,
    pub teller_no: String,
}

/// The channel's answer: `SIGNED`, `TERMINATED`, `FAILED` (nothing changed) or `IN_DOUBT` (the
/// company's answer never came after the spec's one retry: ask again later).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AgreementAnswer {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

impl AgreementAnswer {
    fn failed(code: ErrorCode, reply: Option<PartnerReply>) -> AgreementAnswer {
        AgreementAnswer {
            status: "FAILED",
            code: Some(code.code()),
            message: match &reply {
                Some(r) if !r.message.is_empty() => {
                    format!("{}：{}", code.message_zh(), r.message)
                }
                _ => code.message_zh().to_string(),
            },
            partner_code: reply.map(|r| r.code),
            agreement_no: None,
            effective_date: None,
            end_date: None,
        }
    }

    fn from_outcome(outcome: AgreementOutcome) -> AgreementAnswer {
        let done = |status| AgreementAnswer {
            status,
            code: None,
            message: String::new(),
            partner_code: None,
            agreement_no: None,
            effective_date: None,
            end_date: None,
        };
        match outcome {
            AgreementOutcome::Signed {
                agreement_no,
                effective_date,
            } => AgreementAnswer {
                message: "签约成功".into(),
                agreement_no: Some(agreement_no),
                effective_date: Some(yyyymmdd(effective_date)),
                ..done("SIGNED")
            },
            AgreementOutcome::Terminated { end_date } => AgreementAnswer {
                message: "解约成功".into(),
                end_date: Some(yyyymmdd(end_date)),
                ..done("TERMINATED")
            },
            AgreementOutcome::Refused(reply) => {
                let code = match reply.code.as_str() {
                    "ADP_INPUT" => ErrorCode::BadRequest,
                    "CONNECT" => ErrorCode::PartnerUnavailable,
                    "098" => ErrorCode::PartnerDayEnd,
                    _ => ErrorCode::AgreementRefused,
                };
                AgreementAnswer::failed(code, Some(reply))
            }
            AgreementOutcome::Unknown { .. } => AgreementAnswer {
                code: Some(ErrorCode::InDoubt.code()),
                message: "签约/解约结果未知，请稍后查询协议状态".into(),
                ..done("IN_DOUBT")
            },
        }
    }
}

pub fn router(desk: Arc<AgreementDesk>) -> Router {
    Router::new()
        .route("/api/v1/agreements/sign", post(sign))
        .route("/api/v1/agreements/terminate", post(terminate))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(desk)
}

/// The four channels of spec 02 (农信银 is not one of them).
fn channel(code: &str) -> Result<Channel, Refusal> {
    Channel::from_code(code)
        .filter(|c| *c != Channel::Nongxinyin)
        .ok_or_else(|| {
            refusal(
                ErrorCode::BadRequest,
                format!("channel {code:?} is not 01..04"),
            )
        })
}

/// Spec 02: an empty 201/202 field is answered 090 by the company; the hub refuses it first.
/// A control character is refused too: GBK has them, but core 8005's XML cannot carry them.
fn required(fields: &[(&'static str, &str)]) -> Result<(), Refusal> {
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(refusal(ErrorCode::BadRequest, format!("{name} is empty")));
    }
    match fields.iter().find(|(_, v)| v.chars().any(char::is_control)) {
        Some((name, _)) => Err(refusal(
            ErrorCode::BadRequest,
            format!("{name} has a control character"),
        )),
        None => Ok(()),
    }
}

impl AgreementDesk {
    fn adapter(&self, instance: &str) -> Result<&Arc<FixedLenAdapter>, Refusal> {
        self.adapters
            .get(instance)
            .ok_or_else(|| refusal(ErrorCode::UnknownPayee, format!("instance {instance}")))
    }

    /// Spec 02: the hub refuses new 201/202 from channels in its day-end window (23:50:00 to
    /// 00:09:59 by its clock), before 8005 and before any call.
    fn day_end(&self, adapter: &FixedLenAdapter) -> Option<AgreementAnswer> {
        adapter
            .refuses_new_payments_at(self.clock.now().time())
            .then(|| AgreementAnswer::failed(ErrorCode::PartnerDayEnd, None))
    }

    fn template(&self, channel: Channel, branch_no: &str, teller_no: &str) -> RequestContext {
        let now = self.clock.now();
        RequestContext {
            channel,
            branch_no: branch_no.to_string(),
            teller_no: teller_no.to_string(),
            tx_date: now.date(),
            tx_time: now.time(),
            // Each attempt takes a fresh serial from the journal (the register does).
            bank_serial: String::new(),
        }
    }
}

/// A context to try the encoding with before any serial is taken (the real one comes from the
/// journal per attempt): a placeholder serial of the header's width.
fn trial(template: &RequestContext, adapter: &FixedLenAdapter) -> RequestContext {
    RequestContext {
        bank_serial: "0".repeat(adapter.bank_serial_len()),
        ..template.clone()
    }
}

async fn sign(
    State(desk): State<Arc<AgreementDesk>>,
    body: Result<Json<SignBody>, JsonRejection>,
) -> Result<Json<AgreementAnswer>, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    required(&[
        ("instance", &req.instance),
        ("customer_no", &req.customer_no),
        ("customer_name", &req.customer_name),
        ("account_no", &req.account_no),
        ("account_name", &req.account_name),
        ("id_type", &req.id_type),
        ("id_no", &req.id_no),
        ("phone", &req.phone),
        ("branch_no", &req.branch_no),
        ("teller_no", &req.teller_no),
    ])?;
    let channel = channel(&req.channel)?;
    let adapter = desk.adapter(&req.instance)?.clone();
    if !matches!(req.id_type.as_str(), "01" | "99") {
        return Err(refusal(
            ErrorCode::BadRequest,
            format!("id_type {:?} is not 01 or 99", req.id_type),
        ));
    }
    if let Some(answer) = desk.day_end(&adapter) {
        return Ok(Json(answer));
    }
    let request = SignRequest {
        customer_no: req.customer_no,
        customer_name: req.customer_name,
        account_no: req.account_no,
        account_name: req.account_name,
        id_type: req.id_type,
        id_no: req.id_no,
        phone: req.phone,
    };
    // The ID number's check digit before anything leaves the hub (the adapter checks the rest
    // of the layout when it encodes).
    if request.id_type == "01"
        && adapters::medical::IdNumber::parse(&request.id_no, desk.clock.today()).is_err()
    {
        return Ok(Json(AgreementAnswer::failed(
            ErrorCode::PartnerInvalidIdNumber,
            None,
        )));
    }
    // Every field against the 201 layout (GBK, byte widths) before 8005, so a name the company
    // could never receive is a bad request, not a core outage.
    let template = desk.template(channel, &req.branch_no, &req.teller_no);
    if let Err(e) = adapter.encode_sign_request(&trial(&template, &adapter), &request) {
        return Err(refusal(ErrorCode::BadRequest, e.to_string()));
    }
    // Spec 02: the account's name with core 8005 before calling; Match=N refuses.
    let seq = desk
        .journal
        .next_serial(desk.node, desk.clock.today(), 20)
        .await
        .map_err(|e| refusal(ErrorCode::Internal, e.to_string()))?;
    match desk
        .core
        .name_check(&seq, &request.account_no, &request.account_name, None)
        .await
    {
        Ok(check) if check.name_matches => {}
        Ok(_) => {
            tracing::info!(account = %mask(&request.account_no), "8005: the account's name does not match; not signed.");
            return Ok(Json(AgreementAnswer::failed(
                ErrorCode::AccountNameMismatch,
                None,
            )));
        }
        Err(e) => {
            let code = if e.starts_with("E10003") {
                ErrorCode::CoreAccountNotFound
            } else if e.starts_with("E10004") {
                ErrorCode::CoreAccountClosed
            } else {
                ErrorCode::CoreUnavailable
            };
            return Ok(Json(AgreementAnswer::failed(code, None)));
        }
    }
    let outcome = desk
        .register
        .sign(&adapter, desk.node, &template, &request)
        .await
        .map_err(|e| refusal(ErrorCode::Internal, e.to_string()))?;
    Ok(Json(AgreementAnswer::from_outcome(outcome)))
}

async fn terminate(
    State(desk): State<Arc<AgreementDesk>>,
    body: Result<Json<TerminateBody>, JsonRejection>,
) -> Result<Json<AgreementAnswer>, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    required(&[
        ("instance", &req.instance),
        ("customer_no", &req.customer_no),
        ("agreement_no", &req.agreement_no),
        ("account_no", &req.account_no),
        ("branch_no", &req.branch_no),
        ("teller_no", &req.teller_no),
    ])?;
    let channel = channel(&req.channel)?;
    let adapter = desk.adapter(&req.instance)?.clone();
    if let Some(answer) = desk.day_end(&adapter) {
        return Ok(Json(answer));
    }
    let template = desk.template(channel, &req.branch_no, &req.teller_no);
    if let Err(e) = adapter.encode_terminate_request(
        &trial(&template, &adapter),
        &req.customer_no,
        &req.agreement_no,
        &req.account_no,
    ) {
        return Err(refusal(ErrorCode::BadRequest, e.to_string()));
    }
    let outcome = desk
        .register
        .terminate(
            &adapter,
            desk.node,
            &template,
            &req.customer_no,
            &req.agreement_no,
            &req.account_no,
        )
        .await
        .map_err(|e| refusal(ErrorCode::Internal, e.to_string()))?;
    Ok(Json(AgreementAnswer::from_outcome(outcome)))
}
