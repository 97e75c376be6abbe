//! The one injectable clock. Every component (hub, simulators, jobs) reads the wall-clock time
//! from a [`Clock`], never from the OS directly, so that tests and `hub demo` can run a business
//! day (through the core's 23:00 date switch and the partners' day-ends) on a compressed clock.
//! Times are Beijing local time (UTC+8), the time every spec is written in.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current Beijing local time.
    fn now(&self) -> NaiveDateTime;

    fn today(&self) -> NaiveDate {
        self.now().date()
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The machine clock, read in Beijing time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> NaiveDateTime {
        // UTC+8 has no daylight saving; the offset is a constant in range, so this cannot fail.
        match FixedOffset::east_opt(8 * 3600) {
            Some(beijing) => Utc::now().with_timezone(&beijing).naive_local(),
            None => Utc::now().naive_utc() + Duration::hours(8),
        }
    }
}

/// A clock that stands still until it is moved: tests and the demo driver set it.
/// Moving it backwards is refused so that serials and business dates never go back.
#[derive(Debug)]
pub struct ManualClock {
    /// Milliseconds since the Unix epoch, naive local time.
    millis: AtomicI64,
}

impl ManualClock {
    pub fn new(start: NaiveDateTime) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            millis: AtomicI64::new(start.and_utc().timestamp_millis()),
        })
    }

    /// Moves the clock forward to `to`; a target in the past leaves it where it is.
    pub fn advance_to(&self, to: NaiveDateTime) {
        self.millis
            .fetch_max(to.and_utc().timestamp_millis(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        let step = by.num_milliseconds().max(0);
        self.millis.fetch_add(step, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> NaiveDateTime {
        let millis = self.millis.load(Ordering::SeqCst);
        chrono::DateTime::from_timestamp_millis(millis)
            .map(|t| t.naive_utc())
            .unwrap_or_default()
    }
}

/// `YYYYMMDD` of a date, the form every spec uses.
pub fn yyyymmdd(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// `HHMMSS` of a time.
pub fn hhmmss(time: NaiveDateTime) -> String {
    time.format("%H%M%S").to_string()
}

/// Parses `HHMMSS` (six digits, a real time of day); `None` otherwise.
pub fn parse_hhmmss(text: &str) -> Option<NaiveTime> {
    if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H%M%S").ok()
}

/// Parses `YYYYMMDD`; `None` when it is not a real calendar date.
pub fn parse_yyyymmdd(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // No partner's date (a business date, a birth date in an ID number) lies before 1900; year
    // 0000 is a typing slip chrono would otherwise accept.
    NaiveDate::parse_from_str(text, "%Y%m%d")
        .ok()
        .filter(|date| date.year() >= 1900)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_back() {
        let start = NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap_or_default();
        let clock = ManualClock::new(start);
        clock.advance(Duration::seconds(90));
        assert_eq!(hhmmss(clock.now()), "080130");
        clock.advance_to(start);
        assert_eq!(hhmmss(clock.now()), "080130");
        assert_eq!(yyyymmdd(clock.today()), "20261203");
        assert_eq!(parse_yyyymmdd("20261203"), Some(clock.today()));
        assert_eq!(parse_yyyymmdd("20261302"), None);
        assert_eq!(parse_yyyymmdd("2026120"), None);
        assert_eq!(parse_yyyymmdd("00000101"), None);
        assert_eq!(parse_hhmmss("235959"), NaiveTime::from_hms_opt(23, 59, 59));
        assert_eq!(parse_hhmmss("240000"), None);
        assert_eq!(parse_hhmmss("6:30:0"), None);
        assert_eq!(parse_yyyymmdd("18991231"), None);
        assert_eq!(
            parse_yyyymmdd("19000101"),
            NaiveDate::from_ymd_opt(1900, 1, 1)
        );
    }
}
