//! 攸县 cable TV in the hub: the link is started with the partner (and stops when it is dropped);
//! the journal gives the standing totals 5001 and 5003 carry; the year check (5003) runs from
//! 02:00 on 1 January for the closed year.

use std::sync::Arc;
use std::time::Duration;

use adapters::cabletv::link::SERIAL_SOURCE_WIDTH;
use adapters::cabletv::{
    CablePartner, CableTv, CableTvConfig, SerialSource, StandingTotals, PAYEE,
};
use chrono::{Datelike, NaiveDate, NaiveTime};
use codecs::clock::{yyyymmdd, SharedClock};
use codecs::Money;

use crate::engine::PartnerLink;
use crate::journal::Journal;
use crate::state::PaymentState;

/// The standing (SUCCEEDED) payments of the instance with an AcctDate in `from..=to`.
async fn standing_between(
    journal: &Journal,
    instance: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(u64, Money), String> {
    let row: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(amount_fen), 0) FROM payments
          WHERE payee = ? AND instance = ? AND state = ? AND acct_date >= ? AND acct_date <= ?",
    )
    .bind(PAYEE)
    .bind(instance)
    .bind(PaymentState::Succeeded.as_str())
    .bind(yyyymmdd(from))
    .bind(yyyymmdd(to))
    .fetch_one(journal.pool())
    .await;
    let (count, fen) = row.map_err(|e| e.to_string())?;
    Ok((u64::try_from(count).unwrap_or(0), Money::from_fen(fen)))
}

fn standing_totals(journal: Journal, instance: String) -> StandingTotals {
    Arc::new(move |date: NaiveDate| {
        let journal = journal.clone();
        let instance = instance.clone();
        Box::pin(async move { standing_between(&journal, &instance, date, date).await })
    })
}

/// The hub-originated serials of the cable link (`XT` + these 18 characters: date, node, 8
/// digits) from the journal's day counter, the one the engine's serials use: it is durable and
/// shared by every process on the journal, so a `hub serve` restarted the same day or a `hub
/// recon` beside it never repeats a serial (spec 04: unique per BankCode and TxDate; a repeat
/// with other content is answered 06). The `XT` keeps them apart from the engine's all-digit
/// serials, which the counter also numbers.
pub fn journal_serials(journal: Journal, node: u8) -> SerialSource {
    Arc::new(move |date: NaiveDate| {
        let journal = journal.clone();
        Box::pin(async move {
            journal
                .next_serial(node, date, SERIAL_SOURCE_WIDTH)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// Starts one `[[cabletv]]` instance: its link, and the year check tied to the link's life.
pub fn link(
    config: &CableTvConfig,
    clock: SharedClock,
    journal: &Journal,
    node: u8,
) -> Result<PartnerLink, adapters::spi::AdapterError> {
    let standing = standing_totals(journal.clone(), config.bank_code.clone());
    let serials = journal_serials(journal.clone(), node);
    let partner = CablePartner::start(config, clock.clone(), Some(standing), Some(serials))?;
    tokio::spawn(year_check(
        partner.tv().clone(),
        journal.clone(),
        config.bank_code.clone(),
        clock,
    ));
    Ok(PartnerLink {
        purpose: adapters::cabletv::partner::PURPOSE.to_string(),
        adapter: Arc::new(partner),
        suspense_account: config.suspense_account.clone(),
        settlement_account: config.settlement_account.clone(),
    })
}

/// From 02:00 on 1 January (hub clock), 5003 for the closed year with the journal's standing
/// payments of that year; Result 1 raises an operator alert with both totals and the months'
/// 4002 figures. 31 (the cable company not ready) is asked again a minute later.
async fn year_check(tv: CableTv, journal: Journal, instance: String, clock: SharedClock) {
    let mut done_for: Option<i32> = None;
    let start = NaiveTime::from_hms_opt(2, 0, 0).unwrap_or(NaiveTime::MIN);
    loop {
        tokio::select! {
            _ = tv.stopped() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        let now = clock.now();
        let closed = now.year() - 1;
        if now.month() != 1 || (now.day() == 1 && now.time() < start) || done_for == Some(closed) {
            continue;
        }
        match check_year(&tv, &journal, &instance, closed).await {
            Ok(_) => done_for = Some(closed),
            Err(e) => {
                tracing::warn!(year = closed, error = %e, "Cable TV 5003 not done; retrying.")
            }
        }
    }
}

/// One 5003 for `year`: `Ok(true)` when the totals agree, `Ok(false)` when they differ (the
/// operator alert is raised), `Err` when the cable company gave no totals (31: not yet).
pub async fn check_year(
    tv: &CableTv,
    journal: &Journal,
    instance: &str,
    year: i32,
) -> Result<bool, String> {
    let (Some(first), Some(last)) = (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) else {
        return Err(format!("year {year}"));
    };
    let (count, amount) = standing_between(journal, instance, first, last).await?;
    let totals = tv
        .year_totals(year, count, amount)
        .await
        .map_err(|e| e.to_string())?;
    if totals.equal {
        tracing::info!(year, count, "Cable TV year totals agree (5003).");
        return Ok(true);
    }
    let mut months = Vec::new();
    for month in 1..=12 {
        let from = NaiveDate::from_ymd_opt(year, month, 1);
        let to = from.and_then(|d| {
            d.checked_add_months(chrono::Months::new(1))
                .and_then(|n| n.pred_opt())
        });
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        let bank = standing_between(journal, instance, from, to).await?;
        let cable = tv.statistics(from, to).await.map_err(|e| e.to_string())?;
        months.push(format!(
            "{year}{month:02}: 本方{}笔{}分 有线缴费{}笔{}分 取消{}笔{}分",
            bank.0,
            bank.1.fen(),
            cable.pay_count,
            cable.pay_amount.fen(),
            cable.cancel_count,
            cable.cancel_amount.fen()
        ));
    }
    tracing::error!(
        year,
        bank_count = count,
        bank_fen = amount.fen(),
        cable_count = totals.count,
        cable_fen = totals.amount.fen(),
        months = %months.join("; "),
        "有线电视年度对账不平（5003），请运维人员核查。"
    );
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec 04: Serial unique per BankCode and TxDate for each side's requests. A `hub serve`
    /// restarted the same day opens the journal again: its link's serials go on from the
    /// earlier process's, and a `hub recon` running beside it draws from the same counter.
    #[tokio::test]
    async fn serials_from_the_journal_go_on_across_a_restart_and_beside_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();

        let first = Journal::open(&url).await.unwrap();
        let serials = journal_serials(first.clone(), 1);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(serials(day).await.unwrap());
        }
        // The date, node 01, then the day's counter in 8 digits: 18 characters after `XT`.
        let expected: Vec<String> = (1..=3).map(|n| format!("2026120201{n:08}")).collect();
        assert_eq!(seen, expected);
        drop(serials);
        first.pool().close().await;

        // The restart: a new journal handle on the same file, and beside it a second process.
        let restarted = journal_serials(Journal::open(&url).await.unwrap(), 1);
        let recon = journal_serials(Journal::open(&url).await.unwrap(), 1);
        for _ in 0..3 {
            for source in [&restarted, &recon] {
                let serial = source(day).await.unwrap();
                assert_eq!(serial.len(), SERIAL_SOURCE_WIDTH);
                assert!(!seen.contains(&serial), "{serial} again");
                seen.push(serial);
            }
        }
        assert_eq!(seen.last().map(String::as_str), Some("202612020100000009"));
    }
}
