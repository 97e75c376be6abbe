//! The channels' desk for medical insurance payment history (spec 03, 3001 缴费记录查询): an ID
//! number (check digit first, never sent when it fails) and a date range, answered with each
//! standing payment and the channel it came through. Mobile, online and self-service channels see
//! names, ID numbers and phones masked; the counter sees them whole (spec 03 "Name and privacy").

use std::collections::HashMap;
use std::sync::Arc;

use adapters::medical::id_number::{mask_id_number, mask_name, mask_phone};
use adapters::medical::{HistoryOutcome, IdNumber, MedicalClient, PayChannel};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use codecs::clock::{parse_yyyymmdd, yyyymmdd, SharedClock};
use serde::{Deserialize, Serialize};

use crate::api::{bad_json, refusal, Refusal};
use crate::errors::ErrorCode;
use crate::journal::Journal;

pub struct MedicalDesk {
    clients: HashMap<String, Arc<MedicalClient>>,
    journal: Journal,
    node: u8,
    clock: SharedClock,
}

impl MedicalDesk {
    pub fn new(
        clients: HashMap<String, Arc<MedicalClient>>,
        journal: Journal,
        node: u8,
        clock: SharedClock,
    ) -> MedicalDesk {
        MedicalDesk {
            clients,
            journal,
            node,
            clock,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryBody {
    pub instance: String,
    pub id_no: String,
    /// `YYYYMMDD`; at most 366 days to `end_date`, which is not after today.
    pub start_date: String,
    pub end_date: String,
    pub channel: String,
    pub branch_no: String,
    pub teller_no: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HistoryLine {
    pub name: String,
    pub id_no: String,
    pub year: String,
    pub pay_date: String,
    pub amount_fen: i64,
    pub phone: String,
    /// The insurer's code of the channel of that payment (`01` counter, `02` WeChat, `03`
    /// self-service, `04` mobile banking, `05` online banking) and its Chinese name.
    pub pay_channel: &'static str,
    pub pay_channel_name: &'static str,
}

#[derive(Debug, Serialize)]
pub struct HistoryAnswer {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_code: Option<String>,
    /// Older records were left out (the insurer returns at most 100).
    pub more: bool,
    pub records: Vec<HistoryLine>,
}

fn channel_name(channel: PayChannel) -> &'static str {
    match channel {
        PayChannel::Counter => "柜面",
        PayChannel::WeChat => "微信",
        PayChannel::SelfService => "自助设备",
        PayChannel::Mobile => "手机银行",
        PayChannel::Online => "网上银行",
    }
}

pub fn router(desk: Arc<MedicalDesk>) -> Router {
    Router::new()
        .route("/api/v1/medical/history", post(history))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(desk)
}

fn failed(code: ErrorCode, partner: Option<(String, String)>) -> HistoryAnswer {
    HistoryAnswer {
        status: "FAILED",
        code: Some(code.code()),
        message: Some(match &partner {
            Some((_, msg)) if !msg.is_empty() => format!("{}：{msg}", code.message_zh()),
            _ => code.message_zh().to_string(),
        }),
        partner_code: partner.map(|(c, _)| c),
        more: false,
        records: Vec::new(),
    }
}

async fn history(
    State(desk): State<Arc<MedicalDesk>>,
    body: Result<Json<HistoryBody>, JsonRejection>,
) -> Result<Json<HistoryAnswer>, Refusal> {
    let Json(req) = body.map_err(bad_json)?;
    // Spec 03 knows four bank channels; 农信银 (05) is not one of them.
    let channel = adapters::spi::Channel::from_code(&req.channel)
        .filter(|c| *c != adapters::spi::Channel::Nongxinyin)
        .ok_or_else(|| {
            refusal(
                ErrorCode::BadRequest,
                format!("channel {:?} is not 01..04", req.channel),
            )
        })?;
    let client = desk
        .clients
        .get(&req.instance)
        .ok_or_else(|| {
            refusal(
                ErrorCode::UnknownPayee,
                format!("instance {}", req.instance),
            )
        })?
        .clone();
    let (Some(start), Some(end)) = (
        parse_yyyymmdd(&req.start_date),
        parse_yyyymmdd(&req.end_date),
    ) else {
        return Err(refusal(
            ErrorCode::BadRequest,
            "start_date and end_date must be YYYYMMDD".into(),
        ));
    };
    // Spec 03, 3001: start <= end <= today, at most 366 days counting both ends; the insurer
    // would answer 3001, so the hub refuses it without a call.
    let today = desk.clock.today();
    if start > end || end > today || (end - start).num_days() + 1 > 366 {
        return Err(refusal(
            ErrorCode::BadRequest,
            "start_date <= end_date <= today, at most 366 days".into(),
        ));
    }
    if req.branch_no.trim().is_empty() || req.teller_no.trim().is_empty() {
        return Err(refusal(
            ErrorCode::BadRequest,
            "branch_no and teller_no are required".into(),
        ));
    }
    // The check digit before anything leaves the hub (spec 03 "ID numbers"); the insurer gets
    // the checked spelling (final `X`).
    let id_no = match IdNumber::parse(&req.id_no, today) {
        Ok(id) => id.as_str().to_string(),
        Err(_) => return Ok(Json(failed(ErrorCode::PartnerInvalidIdNumber, None))),
    };
    let serial = desk
        .journal
        .next_serial(desk.node, desk.clock.today(), 20)
        .await
        .map_err(|e| refusal(ErrorCode::Internal, e.to_string()))?;
    let key = client.request_key(&serial);
    let outcome = match client.history(&key, &id_no, start, end).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(instance = %req.instance, id_no = %mask_id_number(&id_no), error = %e, "3001 got no answer.");
            return Ok(Json(failed(ErrorCode::PartnerUnavailable, None)));
        }
    };
    let history = match outcome {
        HistoryOutcome::History(history) => history,
        HistoryOutcome::Refused(reply) => {
            let code = match reply.ret_code.as_str() {
                "1001" => ErrorCode::PartnerCustomerNotFound,
                "1006" => ErrorCode::PartnerInvalidIdNumber,
                "3001" => ErrorCode::BadRequest,
                _ => ErrorCode::PartnerRefused,
            };
            return Ok(Json(failed(code, Some((reply.ret_code, reply.ret_msg)))));
        }
    };
    // The counter shows the data whole; every other channel masked.
    let masked = channel != adapters::spi::Channel::Counter;
    let records = history
        .records
        .into_iter()
        .map(|r| HistoryLine {
            name: if masked { mask_name(&r.name) } else { r.name },
            id_no: if masked {
                mask_id_number(&r.id_no)
            } else {
                r.id_no
            },
            year: r.year,
            pay_date: yyyymmdd(r.pay_date),
            amount_fen: r.amount.fen(),
            phone: if masked {
                mask_phone(&r.phone)
            } else {
                r.phone
            },
            pay_channel: r.channel.code(),
            pay_channel_name: channel_name(r.channel),
        })
        .collect();
    Ok(Json(HistoryAnswer {
        status: "OK",
        code: None,
        message: None,
        partner_code: None,
        more: history.more,
        records,
    }))
}
