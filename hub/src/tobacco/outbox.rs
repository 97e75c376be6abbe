//! The durable notification outbox: rows written with the payment's success, sent by this worker,
//! retried on the spec's schedule (on the injectable clock) until acknowledged, 2005, or 72 h.
//! All state is in the table, so a restart resumes where it stopped; a crash between send and
//! record only means one more attempt, which the bureau deduplicates on notifyId.

use std::time::Duration;

use adapters::tobacco::{NotifyClient, NotifyOutcome};

use super::store::{TobaccoError, TobaccoStore};

/// The spec's limit on notifications in flight.
pub const MAX_IN_FLIGHT: usize = 8;

pub struct Outbox {
    store: TobaccoStore,
    client: NotifyClient,
    /// Real-time pause between polls of the table (tokio time; the demo uses short ones).
    poll_interval_ms: u64,
}

/// One attempt's result, for tests and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptReport {
    pub notify_id: String,
    pub status: &'static str,
}

impl Outbox {
    pub fn new(store: TobaccoStore, client: NotifyClient, poll_interval_ms: u64) -> Outbox {
        Outbox {
            store,
            client,
            poll_interval_ms,
        }
    }

    /// Sends every due notification (at most 8 at once) and records the outcomes.
    pub async fn run_once(&self) -> Result<Vec<AttemptReport>, TobaccoError> {
        let due = self.store.due_notifications(MAX_IN_FLIGHT as i64).await?;
        let outcomes =
            futures::future::join_all(due.iter().map(|row| self.client.notify(&row.body))).await;
        let mut reports = Vec::with_capacity(due.len());
        for (row, outcome) in due.iter().zip(outcomes) {
            let status = match &outcome {
                NotifyOutcome::Acknowledged { .. } => {
                    self.store.record_attempt(row, Some("ACKED"), None).await?
                }
                NotifyOutcome::Rejected { code, msg } => {
                    tracing::error!(
                        partner = "tobacco-yueyang",
                        notify_id = %row.notify_id,
                        code = %code,
                        msg = %msg,
                        "烟草局拒绝缴费通知(2005)，停止重发，请人工核查。"
                    );
                    self.store
                        .record_attempt(row, Some("REJECTED"), Some(code))
                        .await?
                }
                NotifyOutcome::NotAcknowledged { reason } => {
                    let status = self.store.record_attempt(row, None, Some(reason)).await?;
                    if status == "EXPIRED" {
                        tracing::error!(
                            partner = "tobacco-yueyang",
                            notify_id = %row.notify_id,
                            "缴费通知72小时内未获确认(通知未确认)，请人工处理。"
                        );
                    } else {
                        tracing::warn!(partner = "tobacco-yueyang", notify_id = %row.notify_id, reason = %reason, "Payment notification not acknowledged; will retry.");
                    }
                    status
                }
            };
            reports.push(AttemptReport {
                notify_id: row.notify_id.clone(),
                status,
            });
        }
        Ok(reports)
    }

    /// Polls until `shutdown` turns true.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.run_once().await {
                tracing::error!(partner = "tobacco-yueyang", code = e.code(), error = %e, "Outbox pass failed.");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(self.poll_interval_ms)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
