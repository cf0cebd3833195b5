//! Times as people read and type them: always UTC.

use crate::domain::Millis;
use crate::errors::AppError;

/// `2026-01-01 12:00:00 UTC`; empty for a time out of range.
pub fn format_time(ms: Millis) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// A UTC time typed as `YYYY-MM-DDTHH:MM` (a datetime-local field), with
/// or without seconds.
pub fn parse_utc(input: &str) -> Result<Millis, AppError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let bad = || AppError::Validation("Give the date and time as YYYY-MM-DDTHH:MM (UTC).".into());
    let s = input.trim();
    if s.len() > 20 {
        return Err(bad());
    }
    // Browsers send seconds when the field's step asks for them.
    let with_seconds = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let dt = time::PrimitiveDateTime::parse(s, &fmt)
        .or_else(|_| time::PrimitiveDateTime::parse(s, &with_seconds))
        .map_err(|_| bad())?;
    Ok((dt.assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_times_are_utc() {
        assert_eq!(parse_utc("2026-01-01T12:00").unwrap(), 1_767_268_800_000);
        assert_eq!(parse_utc("2026-01-01T12:00:30").unwrap(), 1_767_268_830_000);
        for bad in ["2026-01-01", "tomorrow", "2026-13-01T00:00", "2026-01-01T12:00Z+1", ""] {
            assert!(parse_utc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(format_time(1_767_268_830_000), "2026-01-01 12:00:30 UTC");
    }
}
