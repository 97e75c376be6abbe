//! The hub's inbound endpoint for the bureau: `/tobacco/v1/orders`, `/orders/cancel`,
//! `/orders/query`. Every request is checked (AppId, timestamp, nonce, SM2 signature) before
//! anything else; every answer but a 401 is signed over the request's nonce.

use std::sync::Arc;

use adapters::tobacco::message::{
    self, CancelAnswer, MessageError, PushAnswer, PushResult, QueryAnswer,
};
use adapters::tobacco::sign::{self, SignedHeaders};
use adapters::tobacco::{OrderState, RequestVerifier};
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use codecs::clock::SharedClock;
use codecs::crypto::sm2::PrivateKey;
use serde::Serialize;

use super::store::{state_code, PushOutcome, TobaccoStore};

/// What the endpoint needs.
pub struct TobaccoInbound {
    pub store: TobaccoStore,
    pub verifier: RequestVerifier,
    pub bank_key: PrivateKey,
    /// Our AppId `YYNS0001`.
    pub bank_code: String,
    /// The bureau's AppId and bureauCode `430600`.
    pub bureau_code: String,
    pub clock: SharedClock,
}

pub fn router(inbound: Arc<TobaccoInbound>) -> axum::Router {
    axum::Router::new()
        .route(message::PATH_ORDERS, axum::routing::post(push))
        .route(message::PATH_CANCEL, axum::routing::post(cancel))
        .route(message::PATH_QUERY, axum::routing::post(query))
        .with_state(inbound)
}

fn headers_of(headers: &HeaderMap) -> SignedHeaders {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    SignedHeaders {
        app_id: get(sign::HEADER_APP_ID),
        timestamp: get(sign::HEADER_TIMESTAMP),
        nonce: get(sign::HEADER_NONCE),
        signature: get(sign::HEADER_SIGNATURE),
    }
}

/// Checks the envelope; on failure the unsigned 401 the spec prescribes.
fn authenticate(
    inbound: &TobaccoInbound,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignedHeaders, Box<Response>> {
    let signed = headers_of(headers);
    match inbound
        .verifier
        .verify_request(&signed, uri.0.path(), body, inbound.clock.now())
    {
        Ok(_) => Ok(signed),
        Err(e) => {
            tracing::warn!(
                partner = "tobacco-yueyang",
                code = e.code(),
                "Bureau request refused."
            );
            Err(Box::new(
                (
                    StatusCode::UNAUTHORIZED,
                    [("content-type", "application/json; charset=UTF-8")],
                    e.body(),
                )
                    .into_response(),
            ))
        }
    }
}

fn signed_answer(
    inbound: &TobaccoInbound,
    request_nonce: &str,
    answer: &impl Serialize,
) -> Response {
    let body = serde_json::to_vec(answer).unwrap_or_default();
    match sign::sign_response(
        &inbound.bank_key,
        &inbound.bank_code,
        request_nonce,
        &body,
        inbound.clock.now(),
    ) {
        Ok(signed) => {
            let mut response = (
                StatusCode::OK,
                [("content-type", "application/json; charset=UTF-8")],
                body,
            )
                .into_response();
            for (name, value) in signed.pairs() {
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        // Unsigned counts as no answer at the bureau, which pushes again: safe.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn content_type_ok(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.replace(' ', "")
                .eq_ignore_ascii_case("application/json;charset=utf-8")
        })
        .unwrap_or(false)
}

fn push_error(code: &str) -> PushAnswer {
    PushAnswer {
        code: code.to_string(),
        msg: message::code_text(code).to_string(),
        results: Vec::new(),
    }
}

async fn push(
    State(inbound): State<Arc<TobaccoInbound>>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match authenticate(&inbound, &uri, &headers, &body) {
        Ok(signed) => signed,
        Err(refusal) => return *refusal,
    };
    if !content_type_ok(&headers) {
        return signed_answer(&inbound, &signed.nonce, &push_error("1007"));
    }
    let parsed = match message::parse_push(&body, &inbound.bureau_code) {
        Ok(parsed) => parsed,
        Err(e) => return signed_answer(&inbound, &signed.nonce, &push_error(e.code())),
    };
    let digest = hex::encode(codecs::crypto::sm3::digest(&body));
    let answer = match inbound
        .store
        .push(&parsed.push_id, &digest, &parsed.orders)
        .await
    {
        Ok(PushOutcome::PushIdReused) => push_error("1005"),
        Ok(PushOutcome::Stored(lines)) => PushAnswer {
            code: "0000".into(),
            msg: message::code_text("0000").into(),
            results: lines
                .into_iter()
                .map(|line| PushResult {
                    order_no: line.order_no,
                    code: line.code.to_string(),
                    msg: message::code_text(line.code).to_string(),
                    state: state_code(line.state),
                })
                .collect(),
        },
        Err(e) => {
            tracing::error!(partner = "tobacco-yueyang", code = e.code(), error = %e, "Order push not stored.");
            push_error("9999")
        }
    };
    signed_answer(&inbound, &signed.nonce, &answer)
}

async fn cancel(
    State(inbound): State<Arc<TobaccoInbound>>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match authenticate(&inbound, &uri, &headers, &body) {
        Ok(signed) => signed,
        Err(refusal) => return *refusal,
    };
    let answer = |code: &str, state: Option<OrderState>| CancelAnswer {
        code: code.to_string(),
        msg: message::code_text(code).to_string(),
        state: state_code(state),
    };
    let request = match if content_type_ok(&headers) {
        message::parse_cancel(&body, &inbound.bureau_code)
    } else {
        Err(MessageError::Malformed("Content-Type".into()))
    } {
        Ok(request) => request,
        Err(e) => return signed_answer(&inbound, &signed.nonce, &answer(e.code(), None)),
    };
    let reply = match inbound
        .store
        .cancel(&request.order_no, &request.reason)
        .await
    {
        Ok((outcome, state)) => answer(outcome.code(), state),
        Err(e) => {
            tracing::error!(partner = "tobacco-yueyang", code = e.code(), error = %e, "Cancellation failed.");
            answer("9999", None)
        }
    };
    signed_answer(&inbound, &signed.nonce, &reply)
}

async fn query(
    State(inbound): State<Arc<TobaccoInbound>>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match authenticate(&inbound, &uri, &headers, &body) {
        Ok(signed) => signed,
        Err(refusal) => return *refusal,
    };
    let bare = |code: &str| QueryAnswer {
        code: code.to_string(),
        msg: message::code_text(code).to_string(),
        state: String::new(),
        amount: None,
        bank_serial: None,
        acct_date: None,
        pay_time: None,
        channel: None,
    };
    let request = match if content_type_ok(&headers) {
        message::parse_query(&body, &inbound.bureau_code)
    } else {
        Err(MessageError::Malformed("Content-Type".into()))
    } {
        Ok(request) => request,
        Err(e) => return signed_answer(&inbound, &signed.nonce, &bare(e.code())),
    };
    let reply = match inbound.store.order(&request.order_no).await {
        Ok(None) => bare("3001"),
        Ok(Some(row)) => {
            let paid = row.state == OrderState::Paid;
            QueryAnswer {
                code: "0000".into(),
                msg: message::code_text("0000").into(),
                state: row.state.code().into(),
                amount: Some(row.order.amount.fen()),
                bank_serial: row.bank_serial.filter(|_| paid),
                acct_date: row.acct_date.filter(|_| paid),
                pay_time: row.pay_time.filter(|_| paid),
                channel: row.channel.filter(|_| paid),
            }
        }
        Err(e) => {
            tracing::error!(partner = "tobacco-yueyang", code = e.code(), error = %e, "Order query failed.");
            bare("9999")
        }
    };
    signed_answer(&inbound, &signed.nonce, &reply)
}
