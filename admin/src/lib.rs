//! The operators' surface: a JSON API and a thin console page in Chinese. It knows nothing of the
//! journal's tables: it asks an [`AdminBackend`], which the hub implements, so the console can be
//! tested with a stub and the hub keeps its storage to itself.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// Payments per state, and what waits for the resolver or an operator.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Overview {
    /// (state code, Chinese label, count)
    pub states: Vec<(String, String, i64)>,
    /// Payments with an automatic action pending (reversal, status query).
    pub pending: i64,
    /// Payments that wait for an operator.
    pub operator: i64,
}

/// One payment as an operator sees it; account numbers are masked by the backend.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PaymentDetail {
    pub hub_serial: String,
    pub state: String,
    pub state_label: String,
    pub pending_action: String,
    pub amount_fen: i64,
    pub payer_account_masked: String,
    /// (from, to, note) in order.
    pub events: Vec<(String, String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not found")]
    NotFound,
    #[error("backend: {0}")]
    Backend(String),
}

#[async_trait::async_trait]
pub trait AdminBackend: Send + Sync + 'static {
    async fn overview(&self) -> Result<Overview, AdminError>;
    async fn payment(&self, hub_serial: &str) -> Result<PaymentDetail, AdminError>;
}

fn error_response(e: AdminError) -> Response {
    let (status, code, message) = match e {
        AdminError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", "交易不存在"),
        AdminError::Backend(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "系统内部错误",
        ),
    };
    (
        status,
        Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response()
}

pub fn router(backend: Arc<dyn AdminBackend>) -> Router {
    Router::new()
        .route("/admin", get(console))
        .route("/admin/api/overview", get(overview))
        .route("/admin/api/payments/{serial}", get(payment))
        .with_state(backend)
}

async fn overview(State(backend): State<Arc<dyn AdminBackend>>) -> Response {
    match backend.overview().await {
        Ok(o) => Json(o).into_response(),
        Err(e) => error_response(e),
    }
}

async fn payment(
    State(backend): State<Arc<dyn AdminBackend>>,
    Path(serial): Path<String>,
) -> Response {
    match backend.payment(&serial).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => error_response(e),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the console page: the state of the day at a glance.
pub fn render_console(overview: &Overview) -> String {
    let mut rows = String::new();
    for (code, label, count) in &overview.states {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=n>{count}</td></tr>",
            escape(label),
            escape(code)
        ));
    }
    format!(
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8><title>中间业务平台 运维控制台</title>\
         <style>body{{font-family:sans-serif}}td,th{{border:1px solid #999;padding:2px 8px}}table{{border-collapse:collapse}}td.n{{text-align:right}}</style></head>\
         <body><h1>中间业务平台 运维控制台</h1><h2>交易状态 (payments by state)</h2>\
         <table><tr><th>状态</th><th>代码</th><th>笔数</th></tr>{rows}</table>\
         <p>待自动处理 (pending automatic action): {}</p><p>待人工处理 (waiting for an operator): {}</p></body></html>",
        overview.pending, overview.operator
    )
}

async fn console(State(backend): State<Arc<dyn AdminBackend>>) -> Response {
    match backend.overview().await {
        Ok(o) => Html(render_console(&o)).into_response(),
        Err(e) => error_response(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    struct Stub;

    #[async_trait::async_trait]
    impl AdminBackend for Stub {
        async fn overview(&self) -> Result<Overview, AdminError> {
            Ok(Overview {
                states: vec![
                    ("SUCCEEDED".into(), "缴费成功".into(), 7),
                    ("REVERSED".into(), "已冲正<".into(), 2),
                ],
                pending: 1,
                operator: 0,
            })
        }
        async fn payment(&self, _serial: &str) -> Result<PaymentDetail, AdminError> {
            Err(AdminError::NotFound)
        }
    }

    #[tokio::test]
    async fn console_shows_chinese_labels_escaped() {
        let app = router(Arc::new(Stub));
        let response = app
            .oneshot(
                Request::get("/admin")
                    .body(Body::empty())
                    .unwrap_or_default(),
            )
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let page = String::from_utf8_lossy(&bytes);
        assert!(page.contains("缴费成功"));
        assert!(page.contains("<td class=n>7</td>"));
        assert!(page.contains("已冲正&lt;"));
        assert!(page.contains("待自动处理 (pending automatic action): 1"));
    }

    #[tokio::test]
    async fn unknown_payment_is_404_with_code() {
        let app = router(Arc::new(Stub));
        let response = app
            .oneshot(
                Request::get("/admin/api/payments/B1")
                    .body(Body::empty())
                    .unwrap_or_default(),
            )
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(value["code"], "NOT_FOUND");
        assert_eq!(value["message"], "交易不存在");
    }
}
