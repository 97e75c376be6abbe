//! The hub's side of the admin surface: answers the console's questions from the journal.

use std::sync::Arc;

use admin::{AdminBackend, AdminError, Overview, PaymentDetail};

use crate::engine::Engine;
use crate::state::PaymentState;
use codecs::mask::mask_account;

pub struct JournalAdmin {
    pub engine: Arc<Engine>,
}

#[async_trait::async_trait]
impl AdminBackend for JournalAdmin {
    async fn overview(&self) -> Result<Overview, AdminError> {
        let journal = self.engine.journal();
        let counts = journal
            .count_by_state()
            .await
            .map_err(|e| AdminError::Backend(e.to_string()))?;
        let states = counts
            .into_iter()
            .map(|(state, n)| {
                let label = PaymentState::parse(&state)
                    .map(|s| s.label_zh())
                    .unwrap_or("未知");
                (state, label.to_string(), n)
            })
            .collect();
        let pending = journal
            .pending_count()
            .await
            .map_err(|e| AdminError::Backend(e.to_string()))?;
        let operator: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE next_action = 'OPERATOR'")
                .fetch_one(journal.pool())
                .await
                .map_err(|e| AdminError::Backend(e.to_string()))?;
        Ok(Overview {
            states,
            pending,
            operator,
        })
    }

    async fn payment(&self, hub_serial: &str) -> Result<PaymentDetail, AdminError> {
        let journal = self.engine.journal();
        let row = journal
            .get(hub_serial)
            .await
            .map_err(|e| AdminError::Backend(e.to_string()))?
            .ok_or(AdminError::NotFound)?;
        let events = journal
            .events(hub_serial)
            .await
            .map_err(|e| AdminError::Backend(e.to_string()))?;
        Ok(PaymentDetail {
            hub_serial: row.hub_serial.clone(),
            state: row.state.as_str().to_string(),
            state_label: row.state.label_zh().to_string(),
            pending_action: row.next_action.as_str().to_string(),
            amount_fen: row.amount.fen(),
            payer_account_masked: mask_account(&row.payer_account),
            events,
        })
    }
}
