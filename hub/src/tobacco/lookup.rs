//! The channels' look-up of a retailer's orders by licence number (spec 09 "Paying": all unpaid
//! orders of the licence, oldest dueDate first, overdue ones marked 已逾期). Paying one is then
//! an ordinary bill payment of payee `TOBACCO` keyed by its orderNo.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::store::TobaccoStore;
use crate::api::{bad_json, refusal, Refusal};
use crate::errors::ErrorCode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    /// 专卖许可证号: 12 digits.
    pub licence_no: String,
    pub channel: String,
    pub branch_no: String,
    pub teller_no: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct OrderLine {
    pub order_no: String,
    pub retailer_name: String,
    pub amount_fen: i64,
    pub order_date: String,
    pub due_date: String,
    pub overdue: bool,
    /// `已逾期` for an overdue order, else empty.
    pub mark: &'static str,
    pub items_summary: String,
}

#[derive(Debug, Serialize)]
pub struct LookupAnswer {
    pub status: &'static str,
    pub licence_no: String,
    pub orders: Vec<OrderLine>,
}

pub fn router(store: TobaccoStore) -> Router {
    Router::new()
        .route("/api/v1/tobacco/orders/by-licence", post(by_licence))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(Arc::new(store))
}

async fn by_licence(
    State(store): State<Arc<TobaccoStore>>,
    body: Result<Json<LookupBody>, JsonRejection>,
) -> Result<Json<LookupAnswer>, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    if req.licence_no.len() != 12 || !req.licence_no.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refusal(
            ErrorCode::BadRequest,
            "licence_no must be 12 digits".into(),
        ));
    }
    if adapters::spi::Channel::from_code(&req.channel).is_none() {
        return Err(refusal(
            ErrorCode::BadRequest,
            format!("channel {:?} is not 01..05", req.channel),
        ));
    }
    let views = store
        .lookup_by_licence(&req.licence_no)
        .await
        .map_err(|e| refusal(ErrorCode::Internal, e.to_string()))?;
    let orders = views
        .into_iter()
        .map(|v| OrderLine {
            order_no: v.order.order_no,
            retailer_name: v.order.retailer_name,
            amount_fen: v.order.amount.fen(),
            order_date: codecs::clock::yyyymmdd(v.order.order_date),
            due_date: codecs::clock::yyyymmdd(v.order.due_date),
            overdue: v.overdue,
            mark: if v.overdue { "已逾期" } else { "" },
            items_summary: v.order.items_summary,
        })
        .collect();
    Ok(Json(LookupAnswer {
        status: "OK",
        licence_no: req.licence_no,
        orders,
    }))
}
