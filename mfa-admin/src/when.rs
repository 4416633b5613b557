//! Times as administrators type and read them: local dates and times, RFC 3339, Unix
//! seconds (`@1700000000`) and ages (`2h`, `7d` ago).

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};
use mfa_core::settings::parse_duration;
use mfa_core::{Result, invalid};

/// Parses a point in time; `now` anchors ages.
pub fn parse_time(what: &str, text: &str, now: i64) -> Result<i64> {
    let t = text.trim();
    let bad = || {
        invalid!(
            "invalid time {text:?} for {what}: expected a date (2026-01-31), a local date and time ('2026-01-31 13:45[:00]'), RFC 3339 (2026-01-31T13:45:00Z), @UNIXSECONDS, or an age such as 90m, 2h or 7d"
        )
    };
    if let Some(secs) = t.strip_prefix('@') {
        return secs.parse::<i64>().map_err(|_| bad());
    }
    if let Some(age) = parse_duration(t) {
        return Ok(now - i64::from(age));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return local(naive).ok_or_else(bad);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).and_then(local).ok_or_else(bad);
    }
    Err(bad())
}

fn local(naive: NaiveDateTime) -> Option<i64> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.timestamp())
}

/// Formats Unix seconds as local `YYYY-MM-DD HH:MM:SS`.
pub fn show(ts: i64) -> String {
    match Local.timestamp_opt(ts, 0).single() {
        Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ts.to_string(),
    }
}
