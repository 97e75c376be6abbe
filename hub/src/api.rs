//! The channel API: HTTP/JSON for counter, mobile, self-service and online banking, with an
//! OpenAPI document at `/openapi.json`. Every refusal is `{code, message, detail}`: a stable English
//! code, the Chinese text the channel shows, and what exactly was wrong.

use std::sync::Arc;

use adapters::spi::QueryOutcome;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::{Engine, EngineError, PayRequest};
use crate::errors::ErrorCode;

/// Largest request body accepted; a bill payment is a few hundred bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Serialize)]
pub struct ApiError {
    pub code: &'static str,
    pub message: &'static str,
    pub detail: String,
}

pub struct Refusal(StatusCode, ApiError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub(crate) fn refusal(code: ErrorCode, detail: String) -> Refusal {
    let status = match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::DuplicateMismatch => StatusCode::CONFLICT,
        ErrorCode::NotFound | ErrorCode::NoSuchRoute => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::UnknownPayee
        | ErrorCode::ReversalNotAllowed
        | ErrorCode::CancelNotAllowed
        | ErrorCode::CancelTooLate
        | ErrorCode::PayerNotAllowed
        | ErrorCode::PartnerNothingDue => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::PartnerUnavailable | ErrorCode::CoreUnavailable | ErrorCode::PartnerDayEnd => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    };
    Refusal(
        status,
        ApiError {
            code: code.code(),
            message: code.message_zh(),
            detail,
        },
    )
}

impl From<EngineError> for Refusal {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "Internal error answering a channel.");
        }
        refusal(code, e.to_string())
    }
}

pub(crate) fn bad_json(rejection: JsonRejection) -> Refusal {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return refusal(
            ErrorCode::BodyTooLarge,
            format!("body over {MAX_BODY_BYTES} bytes"),
        );
    }
    refusal(ErrorCode::BadRequest, rejection.body_text())
}

/// axum's own rejections (a path segment that is not UTF-8, a body that is not JSON on a route
/// that reads it optionally, a body over the limit) answer in plain text: the channel and the
/// operator get the typed JSON refusal instead, with axum's text as the detail. JSON answers and
/// the console's HTML pages pass untouched.
pub(crate) async fn typed_rejections(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let typed = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    if typed {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NoSuchRoute,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    refusal(code, detail).into_response()
}

#[derive(Debug, Deserialize)]
pub struct QueryRequest {
    pub payee: String,
    pub instance: String,
    pub customer_no: String,
    pub channel: String,
    pub branch_no: String,
    pub teller_no: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct ReversalRequest {
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: String,
    /// The teller who authorised the cancel (counter cancels need one other than the payment's).
    #[serde(default)]
    pub authorized_by: String,
}

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/api/v1/bills/query", post(query))
        .route("/api/v1/payments", post(pay))
        .route(
            "/api/v1/payments/{channel}/{channel_date}/{channel_serial}",
            get(status),
        )
        .route(
            "/api/v1/payments/{channel}/{channel_date}/{channel_serial}/reversal",
            post(reverse),
        )
        .route(
            "/api/v1/payments/{channel}/{channel_date}/{channel_serial}/cancel",
            post(cancel),
        )
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { refusal(ErrorCode::NoSuchRoute, "no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(engine)
}

async fn query(
    State(engine): State<Arc<Engine>>,
    body: Result<Json<QueryRequest>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    if req.customer_no.is_empty()
        || req.customer_no.len() > 32
        || !req.customer_no.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(refusal(
            ErrorCode::BadRequest,
            "customer_no must be 1..32 letters or digits".into(),
        ));
    }
    let reason_of = |code: &str| {
        engine
            .partner(&req.payee, &req.instance)
            .and_then(|link| link.adapter.refusal_reason(code))
    };
    let outcome = engine
        .query(
            &req.payee,
            &req.instance,
            &req.customer_no,
            &req.channel,
            &req.branch_no,
            &req.teller_no,
        )
        .await?;
    Ok(match outcome {
        QueryOutcome::Bill(bill) => Json(with_meter(json!({
            "status": "OK",
            "customer_no": bill.customer_no,
            "customer_name": bill.customer_name,
            "address": bill.address,
            "total_due_fen": bill.total_due.fen(),
            "prepaid_fen": bill.prepaid.fen(),
            "nothing_due": bill.nothing_due,
            "items": bill.items.iter().map(|i| {
                let mut item = json!({
                    "period": i.period, "amount_fen": i.amount.fen(), "penalty_fen": i.penalty.fen()
                });
                if let Some(u) = &i.usage {
                    item["usage"] = json!({
                        "prev_reading": u.prev_reading, "curr_reading": u.curr_reading,
                        "usage": u.usage, "unit": u.unit,
                    });
                }
                item
            }).collect::<Vec<_>>(),
        }), bill.meter_no))
        .into_response(),
        QueryOutcome::Refused(reply) => {
            let code = ErrorCode::from_partner(reason_of(&reply.code), &reply.code);
            Json(json!({
                "status": "FAILED",
                "code": code.code(),
                "message": code.message_zh(),
                "partner_code": reply.code,
            }))
            .into_response()
        }
    })
}

async fn pay(
    State(engine): State<Arc<Engine>>,
    body: Result<Json<PayRequest>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    let answer = engine.pay(&req).await?;
    Ok(Json(answer).into_response())
}

async fn status(
    State(engine): State<Arc<Engine>>,
    Path((channel, channel_date, channel_serial)): Path<(String, String, String)>,
) -> Result<Response, Refusal> {
    let view = engine
        .status_view(&channel, &channel_date, &channel_serial)
        .await?;
    Ok(Json(view).into_response())
}

async fn reverse(
    State(engine): State<Arc<Engine>>,
    Path((channel, channel_date, channel_serial)): Path<(String, String, String)>,
    body: Option<Json<ReversalRequest>>,
) -> Result<Response, Refusal> {
    let reason = body.map(|Json(b)| b.reason).unwrap_or_default();
    let view = engine
        .status_view(&channel, &channel_date, &channel_serial)
        .await?;
    let answer = engine.request_reversal(&view.hub_serial, &reason).await?;
    Ok(Json(answer).into_response())
}

async fn cancel(
    State(engine): State<Arc<Engine>>,
    Path((channel, channel_date, channel_serial)): Path<(String, String, String)>,
    body: Result<Json<CancelRequest>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    if req.authorized_by.len() > 8 || !req.authorized_by.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(refusal(
            ErrorCode::BadRequest,
            "authorized_by must be 0..8 letters or digits".into(),
        ));
    }
    let view = engine
        .status_view(&channel, &channel_date, &channel_serial)
        .await?;
    let answer = engine
        .request_cancel(&view.hub_serial, &req.reason, &req.authorized_by)
        .await?;
    Ok(Json(answer).into_response())
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.0 document of the channel API.
pub fn openapi_document() -> serde_json::Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let answer = json!({"$ref": "#/components/schemas/ChannelAnswer"});
    let key_params = json!([
        {"name": "channel", "in": "path", "required": true, "schema": {"type": "string", "enum": ["01","02","03","04","05"]}},
        {"name": "channel_date", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{8}$"}},
        {"name": "channel_serial", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9A-Za-z]{1,32}$"}}
    ]);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "中间业务平台 渠道接口 (integration hub channel API)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Bill query, payment, status and same-day 冲正 for bank channels. Amounts are integer fen. A repeated (channel, channel_date, channel_serial) returns the first answer and never debits twice; the same key with a different payload is refused with DUPLICATE_MISMATCH."
        },
        "paths": {
            "/api/v1/bills/query": {"post": {
                "summary": "欠费查询 query a bill",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryRequest"}}}},
                "responses": {"200": {"description": "the bill, or the partner's refusal", "content": {"application/json": {"schema": {"type": "object"}}}},
                               "400": {"description": "bad request", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/payments": {"post": {
                "summary": "缴费 pay a bill",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PayRequest"}}}},
                "responses": {
                    "200": {"description": "SUCCEEDED, FAILED (nothing taken or given back) or IN_DOUBT (resolved automatically; query the status)", "content": {"application/json": {"schema": answer}}},
                    "400": {"description": "bad request", "content": {"application/json": {"schema": error}}},
                    "409": {"description": "channel serial reused with a different payload", "content": {"application/json": {"schema": error}}},
                    "422": {"description": "unknown payee", "content": {"application/json": {"schema": error}}}
                }
            }},
            "/api/v1/payments/{channel}/{channel_date}/{channel_serial}": {"get": {
                "summary": "交易状态查询 status of a payment",
                "parameters": key_params,
                "responses": {"200": {"description": "the payment", "content": {"application/json": {"schema": {"type": "object"}}}},
                              "404": {"description": "not found", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/payments/{channel}/{channel_date}/{channel_serial}/reversal": {"post": {
                "summary": "冲正 reverse a same-day counter payment (before the partner's day-end)",
                "parameters": key_params,
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"reason": {"type": "string"}}}}}},
                "responses": {"200": {"description": "REVERSED, FAILED (REVERSAL_TOO_LATE, REVERSAL_MISMATCH) or IN_DOUBT", "content": {"application/json": {"schema": answer}}},
                              "422": {"description": "not a counter payment, or not succeeded", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/payments/{channel}/{channel_date}/{channel_serial}/cancel": {"post": {
                "summary": "撤销 cancel a same-day payment at a partner that has a cancel (medical insurance: counter only, authorised by a second teller; cable TV: any channel, before 23:50)",
                "parameters": key_params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "reason": {"type": "string"}, "authorized_by": {"type": "string", "pattern": "^[0-9A-Za-z]{0,8}$"}}}}}},
                "responses": {"200": {"description": "CANCELLED, FAILED (CANCEL_TOO_LATE, CANCEL_MISMATCH, CANCEL_NOT_ALLOWED) or IN_DOUBT", "content": {"application/json": {"schema": answer}}},
                              "422": {"description": "the partner has no cancel, not allowed for this channel, not succeeded, or past the cut-off", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/agreements/sign": {"post": {
                "summary": "代扣签约 sign a withholding agreement (county water 201): ID check digit and core 8005 name check first",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["instance", "customer_no", "customer_name", "account_no", "account_name", "id_type", "id_no", "phone", "channel", "branch_no", "teller_no"],
                    "properties": {"instance": {"type": "string"}, "customer_no": {"type": "string"}, "customer_name": {"type": "string"},
                        "account_no": {"type": "string"}, "account_name": {"type": "string"}, "id_type": {"type": "string", "enum": ["01", "99"]},
                        "id_no": {"type": "string"}, "phone": {"type": "string"}, "channel": {"type": "string"},
                        "branch_no": {"type": "string"}, "teller_no": {"type": "string"}}}}}},
                "responses": {"200": {"description": "SIGNED (agreement_no, effective_date), FAILED (code, partner_code) or IN_DOUBT"},
                              "400": {"description": "an empty or malformed field", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/tobacco/orders/by-licence": {"post": {
                "summary": "烟草订单查询 a retailer's unpaid tobacco orders by licence number, oldest dueDate first, overdue ones marked 已逾期 (pay one as payee TOBACCO with its order_no)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["licence_no", "channel", "branch_no", "teller_no"],
                    "properties": {"licence_no": {"type": "string", "pattern": "^[0-9]{12}$"}, "channel": {"type": "string"},
                        "branch_no": {"type": "string"}, "teller_no": {"type": "string"}}}}}},
                "responses": {"200": {"description": "status OK, orders [{order_no, retailer_name, amount_fen, order_date, due_date, overdue, mark, items_summary}]"},
                              "400": {"description": "licence_no not 12 digits, or a bad channel", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/medical/history": {"post": {
                "summary": "医保缴费记录查询 medical insurance payment history of an ID number (spec 03 3001): each standing payment with the channel it came through; masked for every channel but the counter",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["instance", "id_no", "start_date", "end_date", "channel", "branch_no", "teller_no"],
                    "properties": {"instance": {"type": "string"}, "id_no": {"type": "string", "description": "18 characters, GB 11643 check digit"},
                        "start_date": {"type": "string", "pattern": "^[0-9]{8}$"}, "end_date": {"type": "string", "pattern": "^[0-9]{8}$"},
                        "channel": {"type": "string"}, "branch_no": {"type": "string"}, "teller_no": {"type": "string"}}}}}},
                "responses": {"200": {"description": "OK with more and records [{name, id_no, year, pay_date, amount_fen, phone, pay_channel, pay_channel_name}], or FAILED (code, partner_code)"},
                              "400": {"description": "malformed dates or channel", "content": {"application/json": {"schema": error}}}}
            }},
            "/api/v1/agreements/terminate": {"post": {
                "summary": "代扣解约 terminate a withholding agreement (county water 202)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["instance", "customer_no", "agreement_no", "account_no", "channel", "branch_no", "teller_no"],
                    "properties": {"instance": {"type": "string"}, "customer_no": {"type": "string"}, "agreement_no": {"type": "string"},
                        "account_no": {"type": "string"}, "channel": {"type": "string"}, "branch_no": {"type": "string"}, "teller_no": {"type": "string"}}}}}},
                "responses": {"200": {"description": "TERMINATED (end_date), FAILED (code, partner_code) or IN_DOUBT"},
                              "400": {"description": "an empty or malformed field", "content": {"application/json": {"schema": error}}}}
            }}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["code", "message", "detail"], "properties": {
                "code": {"type": "string", "description": "stable English code"},
                "message": {"type": "string", "description": "Chinese text for the channel"},
                "detail": {"type": "string"}}},
            "QueryRequest": {"type": "object", "required": ["payee","instance","customer_no","channel","branch_no","teller_no"], "properties": {
                "payee": {"type": "string", "example": "CDGJ"}, "instance": {"type": "string", "example": "NSH43102"},
                "customer_no": {"type": "string"}, "channel": {"type": "string"}, "branch_no": {"type": "string"}, "teller_no": {"type": "string"}}},
            "PayRequest": {"type": "object", "required": ["channel","channel_date","channel_serial","payee","instance","customer_no","payer_account","amount_fen","total_due_fen","branch_no","teller_no"], "properties": {
                "channel": {"type": "string", "enum": ["01","02","03","04","05"], "description": "01 counter 柜面, 02 mobile banking 手机银行, 03 self-service 自助设备, 04 online banking 网上银行, 05 农信银 (tobacco only)"},
                "channel_date": {"type": "string", "pattern": "^[0-9]{8}$"},
                "channel_serial": {"type": "string", "pattern": "^[0-9A-Za-z]{1,32}$"},
                "payee": {"type": "string"}, "instance": {"type": "string"},
                "customer_no": {"type": "string"}, "payer_account": {"type": "string"},
                "amount_fen": {"type": "integer", "minimum": 1}, "total_due_fen": {"type": "integer", "minimum": 0},
                "branch_no": {"type": "string", "pattern": "^[0-9]{6}$"}, "teller_no": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}, "description": "the partner's own elements: medical `name` (the insured), `year`, `payer_name` (缴款人, required); cable TV `package_code`, `months`"}}},
            "ChannelAnswer": {"type": "object", "required": ["status","hub_serial","amount_fen"], "properties": {
                "status": {"type": "string", "enum": ["SUCCEEDED","FAILED","IN_DOUBT","REVERSED","CANCELLED"]},
                "hub_serial": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"},
                "partner_code": {"type": "string"}, "partner_serial": {"type": "string"},
                "acct_date": {"type": "string"}, "prepaid_fen": {"type": "integer"}, "amount_fen": {"type": "integer"}}}
        }}
    })
}

/// The meter number joins a bill only where the partner states one (the water protocol and its configured kin).
fn with_meter(mut bill: serde_json::Value, meter_no: Option<String>) -> serde_json::Value {
    if let Some(meter_no) = meter_no {
        bill["meter_no"] = json!(meter_no);
    }
    bill
}
