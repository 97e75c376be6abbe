//! The operators' desk for 攸县 cable TV (spec 04): the cable company's 4002 statistics of a date
//! range beside the hub's own standing payments of the same range, and a parameter download
//! (6001) on request, for when the company says it changed its prices.

use std::collections::HashMap;
use std::sync::Arc;

use adapters::cabletv::{CablePartner, CableTv};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use codecs::clock::parse_yyyymmdd;
use serde::{Deserialize, Serialize};

use crate::api::{bad_json, refusal, Refusal};
use crate::engine::PartnerLink;
use crate::errors::ErrorCode;
use crate::journal::Journal;

pub struct CableDesk {
    links: HashMap<String, CableTv>,
    journal: Journal,
}

impl CableDesk {
    /// The cable TV instances among the engine's partners.
    pub fn new<'a>(links: impl Iterator<Item = &'a PartnerLink>, journal: Journal) -> CableDesk {
        let links = links
            .filter_map(|l| {
                let partner = l.adapter.as_any()?.downcast_ref::<CablePartner>()?;
                Some((l.adapter.instance().to_string(), partner.tv().clone()))
            })
            .collect();
        CableDesk { links, journal }
    }

    fn tv(&self, instance: &str) -> Result<&CableTv, Refusal> {
        self.links
            .get(instance)
            .ok_or_else(|| refusal(ErrorCode::UnknownPayee, format!("cable TV {instance}")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsBody {
    /// `YYYYMMDD`, at most 31 days counting both ends.
    pub start_date: String,
    pub end_date: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StatisticsAnswer {
    pub instance: String,
    pub start_date: String,
    pub end_date: String,
    /// 4002: what the cable company counts (payments and cancels in the range).
    pub cable_pay_count: u64,
    pub cable_pay_fen: i64,
    pub cable_cancel_count: u64,
    pub cable_cancel_fen: i64,
    /// The journal's standing (SUCCEEDED) payments with an AcctDate in the range.
    pub hub_standing_count: i64,
    pub hub_standing_fen: i64,
    /// `一致` when the company's payments less its cancels equal the hub's standing ones.
    pub verdict: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RefreshAnswer {
    pub instance: String,
    pub version: u64,
    pub prices: Vec<PriceLine>,
}

#[derive(Debug, Serialize)]
pub struct PriceLine {
    pub package_code: String,
    pub package_name: String,
    pub year: i32,
    pub monthly_fee_fen: i64,
    pub on_sale: bool,
}

pub fn router(desk: Arc<CableDesk>) -> Router {
    Router::new()
        .route("/admin/api/cabletv/{instance}/statistics", post(statistics))
        .route(
            "/admin/api/cabletv/{instance}/parameters/refresh",
            post(refresh),
        )
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(desk)
}

fn cable_failure(e: adapters::cabletv::CableError) -> Refusal {
    let code = match e {
        adapters::cabletv::CableError::Refused(_) => ErrorCode::PartnerRefused,
        _ => ErrorCode::PartnerUnavailable,
    };
    refusal(code, e.to_string())
}

async fn statistics(
    State(desk): State<Arc<CableDesk>>,
    Path(instance): Path<String>,
    body: Result<Json<StatisticsBody>, JsonRejection>,
) -> Result<Json<StatisticsAnswer>, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    let (Some(start), Some(end)) = (
        parse_yyyymmdd(&req.start_date),
        parse_yyyymmdd(&req.end_date),
    ) else {
        return Err(refusal(
            ErrorCode::BadRequest,
            "start_date and end_date must be YYYYMMDD".into(),
        ));
    };
    if start > end || (end - start).num_days() > 30 {
        return Err(refusal(
            ErrorCode::BadRequest,
            "the range is 1 to 31 days (spec 04, 4002)".into(),
        ));
    }
    let tv = desk.tv(&instance)?;
    let cable = tv.statistics(start, end).await.map_err(cable_failure)?;
    let (hub_count, hub_fen): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(amount_fen), 0) FROM payments
          WHERE payee = ? AND instance = ? AND state = 'SUCCEEDED' AND acct_date >= ? AND acct_date <= ?",
    )
    .bind(adapters::cabletv::PAYEE)
    .bind(&instance)
    .bind(&req.start_date)
    .bind(&req.end_date)
    .fetch_one(desk.journal.pool())
    .await
    .map_err(|e| refusal(ErrorCode::Internal, e.to_string()))?;
    let net_count = i64::try_from(cable.pay_count).unwrap_or(i64::MAX)
        - i64::try_from(cable.cancel_count).unwrap_or(i64::MAX);
    let net_fen = cable.pay_amount.fen() - cable.cancel_amount.fen();
    Ok(Json(StatisticsAnswer {
        instance,
        start_date: req.start_date,
        end_date: req.end_date,
        cable_pay_count: cable.pay_count,
        cable_pay_fen: cable.pay_amount.fen(),
        cable_cancel_count: cable.cancel_count,
        cable_cancel_fen: cable.cancel_amount.fen(),
        hub_standing_count: hub_count,
        hub_standing_fen: hub_fen,
        verdict: if (net_count, net_fen) == (hub_count, hub_fen) {
            "一致"
        } else {
            "不一致，请核对明细"
        },
    }))
}

async fn refresh(
    State(desk): State<Arc<CableDesk>>,
    Path(instance): Path<String>,
) -> Result<Json<RefreshAnswer>, Refusal> {
    let tv = desk.tv(&instance)?;
    let params = tv.refresh_parameters().await.map_err(cable_failure)?;
    tracing::info!(instance = %instance, version = params.version, "Cable TV parameters downloaded on an operator's request.");
    Ok(Json(RefreshAnswer {
        instance,
        version: params.version,
        prices: params
            .rows
            .into_iter()
            .map(|r| PriceLine {
                package_code: r.package_code,
                package_name: r.package_name,
                year: r.year,
                monthly_fee_fen: r.monthly_fee.fen(),
                on_sale: r.on_sale,
            })
            .collect(),
    }))
}
