//! Time as objects carry it: RFC 3339 to the second, and arithmetic on it that saturates at
//! the times typed objects can hold (years 1 to 9999) rather than panicking on a value from a manifest
//! (`terminationGracePeriodSeconds: 10000000000000` is valid Kubernetes).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};

/// The current time as objects write it.
pub fn now() -> String {
    format(Utc::now())
}

/// `2026-01-01T00:00:00Z`.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A timestamp as objects write it, or `None` when it is not one.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `at` moved by `seconds` (negative: earlier), within years 1 to 9999.
pub fn add_seconds(at: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let moved = TimeDelta::try_seconds(seconds).and_then(|delta| at.checked_add_signed(delta));
    match moved {
        Some(moved) => moved.clamp(earliest(), latest()),
        None if seconds < 0 => earliest(),
        None => latest(),
    }
}

/// `at` moved later by `duration`, within years 1 to 9999.
pub fn add(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    add_seconds(at, i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}

fn earliest() -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(1, 1, 1).expect("a valid date");
    day.and_hms_opt(0, 0, 0).expect("a valid time").and_utc()
}

/// The latest time a typed object (k8s-openapi's `Time`, a jiff `Timestamp`) can hold: jiff
/// keeps a day's worth of UTC offsets inside year 9999, so its last instant is
/// 9999-12-30T22:00:00Z. A later `deletionTimestamp` was stored, and every later update of
/// the object failed to decode it.
fn latest() -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(9999, 12, 30).expect("a valid date");
    day.and_hms_opt(22, 0, 0).expect("a valid time").and_utc()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn extreme_offsets_saturate_at_what_rfc_3339_can_write() {
        let at = parse("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(format(add_seconds(at, 10)), "2026-01-01T00:00:10Z");
        for seconds in [i64::MAX, 10_000_000_000_000, i64::MAX / 1000 + 1] {
            assert_eq!(format(add_seconds(at, seconds)), "9999-12-30T22:00:00Z");
        }
        for seconds in [i64::MIN, -10_000_000_000_000] {
            assert_eq!(format(add_seconds(at, seconds)), "0001-01-01T00:00:00Z");
        }
        assert_eq!(format(add(at, Duration::MAX)), "9999-12-30T22:00:00Z");
        assert_eq!(parse(&format(latest())), Some(latest()));
        for bound in [earliest(), latest()] {
            let typed: Result<Time, _> = serde_json::from_value(format(bound).into());
            assert!(typed.is_ok(), "{bound}: {typed:?}");
        }
    }
}
