//! Expiry: parsing what people type after `--expires`, and the status a key has now.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::error::usage;

/// How close to its expiry a key counts as `expiring`, unless config.yaml says
/// `expiring_window:`.
pub const DEFAULT_WARN_WINDOW: Duration = Duration::days(14);

/// Parses `90d`, `12h`, `2w`, `2027-01-31` (end of that day, UTC), an RFC 3339 time, or
/// `never`. A time that is not in the future is refused: a key born expired is a typo.
pub fn parse_expires(input: &str, now: OffsetDateTime) -> anyhow::Result<Option<OffsetDateTime>> {
    let s = input.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let at = if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        t
    } else if let Ok(d) = Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
    {
        d.with_time(Time::from_hms(23, 59, 59).expect("valid time"))
            .assume_utc()
    } else {
        let d = parse_duration(s).map_err(|_| {
            usage(format!(
                "invalid --expires {}: use a duration (90d, 12h, 2w), a date (2027-01-31), an RFC 3339 time or 'never'",
                crate::output::quoted(input)
            ))
        })?;
        now + d
    };
    if at <= now {
        return Err(usage(format!(
            "invalid --expires {}: {} is not in the future",
            crate::output::quoted(input),
            rfc3339(at)
        )));
    }
    Ok(Some(at))
}

/// A window such as `7d` (for `list --expiring`).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let std = humantime::parse_duration(s.trim()).map_err(|e| {
        usage(format!(
            "invalid duration {}: {e}",
            crate::output::quoted(s)
        ))
    })?;
    if std.is_zero() {
        return Err(usage("a duration of zero is not allowed"));
    }
    Duration::try_from(std).map_err(|_| usage("duration too large"))
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("RFC 3339 formatting of a valid time")
}

/// The day a time falls on, for tables.
pub fn day(t: OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Expiring,
    Expired,
    Revoked,
    /// Replaced by `keyctl rotate`; works until its grace period ends.
    Superseded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expiring => "expiring",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Superseded => "superseded",
        }
    }

    pub fn is_usable(self) -> bool {
        matches!(self, Status::Active | Status::Expiring | Status::Superseded)
    }
}

pub fn status(
    expires_at: Option<OffsetDateTime>,
    revoked: bool,
    now: OffsetDateTime,
    window: Duration,
) -> Status {
    match expires_at {
        _ if revoked => Status::Revoked,
        Some(t) if t <= now => Status::Expired,
        Some(t) if t <= now + window => Status::Expiring,
        _ => Status::Active,
    }
}

/// serde helpers for RFC 3339 times in the registry and JSON output.
pub mod serde_rfc3339 {
    pub use time::serde::rfc3339::*;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    #[test]
    fn forms() {
        assert_eq!(parse_expires("never", NOW).unwrap(), None);
        assert_eq!(
            parse_expires("90d", NOW).unwrap(),
            Some(NOW + Duration::days(90))
        );
        assert_eq!(
            parse_expires("12h", NOW).unwrap(),
            Some(NOW + Duration::hours(12))
        );
        assert_eq!(
            parse_expires("2027-01-31", NOW).unwrap(),
            Some(datetime!(2027-01-31 23:59:59 UTC))
        );
        assert_eq!(
            parse_expires("2027-01-31T10:00:00+02:00", NOW).unwrap(),
            Some(datetime!(2027-01-31 08:00 UTC))
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "2020-01-01",
            "yesterday",
            "",
            "-5d",
            "0s",
            "2026-11-23T11:00:00Z",
        ] {
            assert!(parse_expires(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses() {
        let w = DEFAULT_WARN_WINDOW;
        assert_eq!(status(None, false, NOW, w), Status::Active);
        assert_eq!(status(None, true, NOW, w), Status::Revoked);
        assert_eq!(status(Some(NOW), false, NOW, w), Status::Expired);
        assert_eq!(
            status(Some(NOW + Duration::days(3)), false, NOW, w),
            Status::Expiring
        );
        assert_eq!(
            status(Some(NOW + Duration::days(30)), false, NOW, w),
            Status::Active
        );
    }
}
