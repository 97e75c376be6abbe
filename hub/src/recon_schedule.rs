//! T+1 reconciliation on the hub's clock (`[recon_schedule]`): from `start` each day the server
//! reconciles and settles the previous day of every partner instance with its own partner links
//! (one cable TV link, spec 04), and while a file is missing it tries again every `retry_minutes`
//! (spec 03: from 06:30, then hourly; spec 04: from 01:30, every 15 min for a 31). A day still not
//! reconciled after `alert_after` (settlement is due by 11:00, specs 03 and 04) raises the alert
//! `RECON_FILE_LATE` once; the attempts go on, and `hub recon` stays the operator's tool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};
use codecs::clock::{parse_hhmmss, yyyymmdd, SharedClock};
use serde::Deserialize;
use tokio::sync::watch;

use crate::engine::Engine;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconScheduleConfig {
    /// First attempt of the day for the previous day (HHMMSS, hub clock).
    #[serde(default = "default_start")]
    pub start: String,
    /// Minutes between attempts while a day is not reconciled.
    #[serde(default = "default_retry_minutes")]
    pub retry_minutes: u32,
    /// After this time (HHMMSS) a day still not reconciled raises `RECON_FILE_LATE`, once.
    #[serde(default = "default_alert_after")]
    pub alert_after: String,
    /// Real time between two looks at the clock.
    #[serde(default = "default_check_ms")]
    pub check_interval_ms: u64,
}

fn default_start() -> String {
    "063000".into()
}

fn default_retry_minutes() -> u32 {
    60
}

fn default_alert_after() -> String {
    "110000".into()
}

fn default_check_ms() -> u64 {
    30_000
}

impl ReconScheduleConfig {
    /// The two times, checked: a config error names the field.
    pub fn times(&self) -> Result<(NaiveTime, NaiveTime), String> {
        let start = parse_hhmmss(&self.start)
            .ok_or_else(|| format!("recon_schedule.start {:?} 须为HHMMSS", self.start))?;
        let alert_after = parse_hhmmss(&self.alert_after).ok_or_else(|| {
            format!(
                "recon_schedule.alert_after {:?} 须为HHMMSS",
                self.alert_after
            )
        })?;
        if self.retry_minutes == 0 || self.retry_minutes > 24 * 60 {
            return Err("recon_schedule.retry_minutes 须在1至1440之间".into());
        }
        if !(10..=3_600_000).contains(&self.check_interval_ms) {
            return Err("recon_schedule.check_interval_ms 须在10至3600000之间".into());
        }
        if alert_after < start {
            return Err("recon_schedule.alert_after 不能早于 start".into());
        }
        Ok((start, alert_after))
    }
}

/// What the scheduler remembers of one instance (in memory: after a restart the day is tried
/// again, which a run makes harmless: a settled day answers with its earlier run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceState {
    /// The last business day reconciled.
    pub done: Option<NaiveDate>,
    pub last_attempt: Option<NaiveDateTime>,
    /// The business day whose lateness was alerted.
    pub alerted: Option<NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Idle,
    /// Reconcile this business day now.
    Attempt(NaiveDate),
}

/// Decides, without side effects.
pub fn decide(
    start: NaiveTime,
    retry_minutes: u32,
    state: &InstanceState,
    now: NaiveDateTime,
) -> Decision {
    let Some(day) = now.date().checked_sub_days(Days::new(1)) else {
        return Decision::Idle;
    };
    if state.done == Some(day) || now.time() < start {
        return Decision::Idle;
    }
    match state.last_attempt {
        Some(last)
            if last.date() == now.date()
                && now - last < chrono::Duration::minutes(i64::from(retry_minutes)) =>
        {
            Decision::Idle
        }
        _ => Decision::Attempt(day),
    }
}

/// Whether a failed attempt at `now` must raise the alert for `day`.
pub fn must_alert(
    alert_after: NaiveTime,
    state: &InstanceState,
    now: NaiveTime,
    day: NaiveDate,
) -> bool {
    now >= alert_after && state.alerted != Some(day)
}

/// The scheduler, until the hub stops.
pub async fn run_scheduler(
    engine: Arc<Engine>,
    config: ReconScheduleConfig,
    file_dir: PathBuf,
    report_dir: PathBuf,
    clock: SharedClock,
    mut stop: watch::Receiver<bool>,
) {
    let (start, alert_after) = match config.times() {
        Ok(times) => times,
        Err(e) => {
            tracing::error!(error = %e, "对账调度配置错误 recon schedule not started.");
            return;
        }
    };
    let mut states: HashMap<(String, String), InstanceState> = HashMap::new();
    loop {
        let mut links: Vec<_> = engine.partners().cloned().collect();
        links.sort_by_key(|l| {
            (
                l.adapter.payee().to_string(),
                l.adapter.instance().to_string(),
            )
        });
        for link in &links {
            let key = (
                link.adapter.payee().to_string(),
                link.adapter.instance().to_string(),
            );
            let now = clock.now();
            let state = states.entry(key).or_default();
            let Decision::Attempt(day) = decide(start, config.retry_minutes, state, now) else {
                continue;
            };
            state.last_attempt = Some(now);
            match crate::recon_job::run(&engine, link, day, &file_dir, &report_dir).await {
                Ok(run) => {
                    state.done = Some(day);
                    // Settled without the partner's file (tobacco): the file must still come.
                    if let Some(alert) = &run.partner_file_alert {
                        tracing::error!(
                            payee = link.adapter.payee(),
                            instance = link.adapter.instance(),
                            date = %yyyymmdd(day),
                            alert = %alert,
                            "ALERT 对方对账文件未到，已仅按本方与核心结算 (hub recon): follow the file up."
                        );
                    }
                    tracing::info!(
                        payee = link.adapter.payee(),
                        instance = link.adapter.instance(),
                        date = %yyyymmdd(day),
                        matched = run.result.matched.len(),
                        differences = run.result.differences.len(),
                        settlement = %run.settlement.state,
                        report = %run.html.display(),
                        "T+1 对账完成 reconciled."
                    );
                }
                Err(e) => {
                    if must_alert(alert_after, state, now.time(), day) {
                        state.alerted = Some(day);
                        tracing::error!(
                            payee = link.adapter.payee(),
                            instance = link.adapter.instance(),
                            date = %yyyymmdd(day),
                            code = "RECON_FILE_LATE",
                            cause = e.code(),
                            error = %e,
                            "ALERT 对账未能完成，结算延误，请人工处理 (hub recon): the day is not reconciled by its deadline."
                        );
                    } else {
                        tracing::warn!(
                            payee = link.adapter.payee(),
                            instance = link.adapter.instance(),
                            date = %yyyymmdd(day),
                            code = e.code(),
                            error = %e,
                            "对账暂未完成，稍后重试 reconciliation will be tried again."
                        );
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(config.check_interval_ms.max(10))) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    fn at(d: u32, h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, d)
            .expect("date")
            .and_time(t(h, m))
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).expect("date")
    }

    #[test]
    fn the_previous_day_is_tried_from_start_then_every_retry_period_until_done() {
        let start = t(6, 30);
        let mut state = InstanceState::default();
        assert_eq!(decide(start, 60, &state, at(4, 6, 29)), Decision::Idle);
        assert_eq!(
            decide(start, 60, &state, at(4, 6, 30)),
            Decision::Attempt(day(3))
        );
        state.last_attempt = Some(at(4, 6, 30));
        // The file was missing: not before an hour has passed.
        assert_eq!(decide(start, 60, &state, at(4, 7, 29)), Decision::Idle);
        assert_eq!(
            decide(start, 60, &state, at(4, 7, 30)),
            Decision::Attempt(day(3))
        );
        state.done = Some(day(3));
        assert_eq!(decide(start, 60, &state, at(4, 9, 0)), Decision::Idle);
        // The next morning, the next day; an attempt of yesterday does not hold it back.
        assert_eq!(
            decide(start, 60, &state, at(5, 6, 30)),
            Decision::Attempt(day(4))
        );
    }

    #[test]
    fn a_day_not_done_by_the_deadline_alerts_once() {
        let alert_after = t(11, 0);
        let mut state = InstanceState::default();
        assert!(!must_alert(alert_after, &state, t(10, 59), day(3)));
        assert!(must_alert(alert_after, &state, t(11, 0), day(3)));
        state.alerted = Some(day(3));
        assert!(!must_alert(alert_after, &state, t(12, 0), day(3)));
        assert!(must_alert(alert_after, &state, t(11, 30), day(4)));
    }

    #[test]
    fn times_are_checked() {
        let good = ReconScheduleConfig {
            start: "063000".into(),
            retry_minutes: 60,
            alert_after: "110000".into(),
            check_interval_ms: 1000,
        };
        assert_eq!(good.times(), Ok((t(6, 30), t(11, 0))));
        for bad in [
            ReconScheduleConfig {
                start: "0630".into(),
                ..good.clone()
            },
            ReconScheduleConfig {
                retry_minutes: 0,
                ..good.clone()
            },
            ReconScheduleConfig {
                alert_after: "050000".into(),
                ..good.clone()
            },
            ReconScheduleConfig {
                check_interval_ms: 0,
                ..good.clone()
            },
            ReconScheduleConfig {
                check_interval_ms: u64::MAX,
                ..good.clone()
            },
        ] {
            assert!(bad.times().is_err(), "{bad:?}");
        }
    }
}
