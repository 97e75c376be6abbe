//! The batch withholding poll of spec 02: every 10 minutes from 06:00 to 12:00 (hub clock) the hub
//! looks for the day's DK file and runs the batch when a flag newer than its last reading is
//! there; a file that arrives later is not run automatically but waits for an operator (an alert,
//! once per file). A day with no file raises nothing.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use codecs::clock::SharedClock;
use tokio::sync::watch;

use super::file::{dk_name, flag_name};
use super::run::{RunOutcome, WaterWithholdJob};

/// `[[withholding]]` of the hub's config: which fixed-length instance runs a batch, from where.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithholdingConfig {
    /// The `[[fixedlen]]` instance (`water-jiahe`).
    pub instance: String,
    /// Its SFTP folder, with `in/` and `out/`.
    pub dir: PathBuf,
    /// Real time between two looks at the clock (the poll slots themselves are on the hub clock).
    #[serde(default = "default_check_ms")]
    pub check_interval_ms: u64,
    /// The 3 letters or digits that name this instance in its line serials
    /// (`<BatchDate>D<serial_code><SeqNo:06>`); by default the last 3 characters of its
    /// CompanyCode. Needed only when two withholding instances' CompanyCodes end alike; never
    /// change it while a batch is unfinished.
    #[serde(default)]
    pub serial_code: Option<String>,
}

fn default_check_ms() -> u64 {
    30_000
}

/// The spec's window and period.
const WINDOW_START: (u32, u32) = (6, 0);
const WINDOW_END: (u32, u32) = (12, 0);
const PERIOD_MINUTES: u32 = 10;

/// The poll slot `now` falls in: `Some(n)` for the n-th poll of the day (06:00 is 0, 12:00 is 36),
/// `None` outside the window.
pub fn poll_slot(now: NaiveTime) -> Option<u32> {
    let minutes = now.hour() * 60 + now.minute();
    let start = WINDOW_START.0 * 60 + WINDOW_START.1;
    let end = WINDOW_END.0 * 60 + WINDOW_END.1;
    (start..=end)
        .contains(&minutes)
        .then(|| (minutes - start) / PERIOD_MINUTES)
}

/// What one look at the clock and the folder leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollDecision {
    /// Nothing to do now.
    Idle,
    /// Run the batch (a poll slot not yet used today, with a flag not read yet).
    Run,
    /// A flag not read yet, after the window: an operator must run it.
    LateFile,
}

/// What the poller remembers of one instance (in memory: after a restart the next slot reads the
/// file again, which the batch run makes harmless).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollState {
    /// The last slot used: (date, slot).
    pub last_slot: Option<(NaiveDate, u32)>,
    /// The flag's modification time at the last reading (or the last alert).
    pub last_flag_seen: Option<SystemTime>,
}

/// Decides, without side effects; `flag` is the modification time of today's `.ok` flag.
pub fn decide(state: &PollState, now: NaiveDateTime, flag: Option<SystemTime>) -> PollDecision {
    let Some(flag) = flag else {
        return PollDecision::Idle;
    };
    if state.last_flag_seen == Some(flag) {
        return PollDecision::Idle;
    }
    match poll_slot(now.time()) {
        Some(slot) if state.last_slot != Some((now.date(), slot)) => PollDecision::Run,
        Some(_) => PollDecision::Idle,
        None if now.time()
            > NaiveTime::from_hms_opt(WINDOW_END.0, WINDOW_END.1, 0).unwrap_or(NaiveTime::MIN) =>
        {
            PollDecision::LateFile
        }
        None => PollDecision::Idle,
    }
}

fn flag_mtime(dir: &std::path::Path, company_code: &str, date: NaiveDate) -> Option<SystemTime> {
    let flag = dir.join("in").join(flag_name(&dk_name(company_code, date)));
    std::fs::metadata(flag).and_then(|m| m.modified()).ok()
}

/// One instance's poller, until the hub stops.
pub async fn run_poller(
    job: WaterWithholdJob,
    company_code: String,
    config: WithholdingConfig,
    clock: SharedClock,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = PollState::default();
    loop {
        let now = clock.now();
        let today = now.date();
        let flag = flag_mtime(&config.dir, &company_code, today);
        match decide(&state, now, flag) {
            PollDecision::Idle => {}
            PollDecision::Run => {
                if let Some(slot) = poll_slot(now.time()) {
                    state.last_slot = Some((today, slot));
                }
                match job.run(today).await {
                    Ok(RunOutcome::Written(report)) => {
                        state.last_flag_seen = flag;
                        tracing::info!(instance = %config.instance, result = report.file_result.code(), path = %report.result_path.display(), "批量代扣结果已写出 batch withholding result written.");
                    }
                    Ok(RunOutcome::NotReady) => {}
                    // The next slot tries again; the run resumes where it stopped.
                    Err(e) => {
                        tracing::error!(instance = %config.instance, code = e.code(), error = %e, "批量代扣失败 batch withholding failed; the next poll resumes it.")
                    }
                }
            }
            PollDecision::LateFile => {
                state.last_flag_seen = flag;
                tracing::error!(
                    instance = %config.instance,
                    code = "BATCH_LATE_FILE",
                    file = %dk_name(&company_code, today),
                    "ALERT 代扣文件12:00后到达，待人工处理 (hub batch water-withhold): the DK file came after the poll window."
                );
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

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 2)
            .expect("date")
            .and_time(t(h, m))
    }

    #[test]
    fn the_window_is_06_00_to_12_00_every_10_minutes() {
        assert_eq!(poll_slot(t(5, 59)), None);
        assert_eq!(poll_slot(t(6, 0)), Some(0));
        assert_eq!(poll_slot(t(6, 9)), Some(0));
        assert_eq!(poll_slot(t(6, 10)), Some(1));
        assert_eq!(poll_slot(t(9, 0)), Some(18));
        assert_eq!(poll_slot(t(12, 0)), Some(36));
        assert_eq!(poll_slot(t(12, 1)), None);
        // 37 polls a day: 06:00, 06:10, …, 12:00.
        let slots: std::collections::BTreeSet<u32> = (0..24 * 60)
            .filter_map(|m| poll_slot(t(m / 60, m % 60)))
            .collect();
        assert_eq!(slots.len(), 37);
    }

    #[test]
    fn a_flag_is_read_once_per_slot_and_a_late_one_alerts_once() {
        let flag = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
        let mut state = PollState::default();
        assert_eq!(decide(&state, at(5, 50), flag), PollDecision::Idle);
        assert_eq!(decide(&state, at(9, 3), None), PollDecision::Idle);
        assert_eq!(decide(&state, at(9, 3), flag), PollDecision::Run);
        // Used slot, file not read (not ready): wait for the next slot.
        state.last_slot = Some((at(9, 3).date(), 18));
        assert_eq!(decide(&state, at(9, 8), flag), PollDecision::Idle);
        assert_eq!(decide(&state, at(9, 10), flag), PollDecision::Run);
        // Read: the same flag is never run again; a newer one (a re-drop) is.
        state.last_flag_seen = flag;
        assert_eq!(decide(&state, at(9, 20), flag), PollDecision::Idle);
        let newer = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000));
        assert_eq!(decide(&state, at(9, 20), newer), PollDecision::Run);
        // After 12:00 a flag not read yet waits for an operator.
        let fresh = PollState::default();
        assert_eq!(decide(&fresh, at(12, 0), flag), PollDecision::Run);
        assert_eq!(decide(&fresh, at(12, 1), flag), PollDecision::LateFile);
        assert_eq!(decide(&state, at(13, 0), flag), PollDecision::Idle);
        // No file: nothing, whatever the hour.
        assert_eq!(decide(&fresh, at(13, 0), None), PollDecision::Idle);
    }
}
