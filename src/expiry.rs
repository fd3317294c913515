//! Expiry: parsing what people type after `--expires`, and the status a key has now.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::error::usage;

/// How close to its expiry a key counts as `expiring`, unless config.yaml says
/// `expiring_window:`.
pub(crate) const DEFAULT_WARN_WINDOW: Duration = Duration::days(14);

/// Parses `90d`, `12h`, `2w`, `2027-01-31` (end of that day, UTC), an RFC 3339 time, or
/// `never`. A time that is not in the future is refused: a key born expired is a typo.
pub(crate) fn parse_expires(
    input: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Option<OffsetDateTime>> {
    let s = input.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let at =
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            t
        } else if let Ok(d) =
            Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        {
            d.with_time(Time::from_hms(23, 59, 59).expect("valid time"))
                .assume_utc()
        } else {
            let d = parse_duration(s).map_err(|e| {
            let why = format!("{e:#}");
            let why = why.split_once(": ").map_or(why.as_str(), |(_, w)| w).to_string();
            usage(format!(
                "invalid --expires {}: {why}; or a date (2027-01-31), an RFC 3339 time, or never",
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

/// What a duration may say, for `--help` and error messages.
pub(crate) const DURATION_FORMS: &str = "a number and a unit: s (seconds), min (minutes), h (hours), d (days), w (weeks), mo (months of 30 days), y (years of 365 days), combinable as 1h30min";

/// A duration such as `7d`, `12h`, `1h30min` or `6mo` (for `--expires`, `--grace`,
/// `list --expiring` and `expiring_window`). A bare `m` (or `M`) is refused: it means
/// minutes to some tools and months to others, and a key that lives one minute
/// instead of one month is a silent disaster.
pub(crate) fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let text = s.trim();
    let bad = |why: &str| {
        usage(format!(
            "invalid duration {}: {why}",
            crate::output::quoted(s)
        ))
    };
    if text.is_empty() {
        return Err(bad(&format!("it is empty; use {DURATION_FORMS}")));
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad(&format!("expected a number; use {DURATION_FORMS}")));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let one = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => Duration::SECOND,
            "min" | "mins" | "minute" | "minutes" => Duration::MINUTE,
            "h" | "hr" | "hrs" | "hour" | "hours" => Duration::HOUR,
            "d" | "day" | "days" => Duration::DAY,
            "w" | "week" | "weeks" => Duration::WEEK,
            "mo" | "month" | "months" => Duration::days(30),
            "y" | "year" | "years" => Duration::days(365),
            "m" | "M" => {
                return Err(bad(&format!(
                    "'{unit}' could mean minutes or months; write {n}min for minutes or {n}mo for months"
                )));
            }
            "" => {
                return Err(bad(&format!(
                    "{n} has no unit; write {n}d for days, {n}h for hours ({DURATION_FORMS})"
                )));
            }
            u => {
                return Err(bad(&format!(
                    "unknown unit '{}'; use {DURATION_FORMS}",
                    crate::output::sanitize(u)
                )));
            }
        };
        let part = one.checked_mul(i32::try_from(n).map_err(|_| bad("the number is too large"))?);
        total = part
            .and_then(|p| total.checked_add(p))
            .filter(|t| *t <= Duration::days(365 * 1000))
            .ok_or_else(|| bad("it is too long (over 1000 years)"))?;
    }
    if total.is_zero() {
        return Err(usage("a duration of zero is not allowed"));
    }
    Ok(total)
}

/// "in 9 days", "3 hours ago", "now": how far `t` is from `now`, in one unit, for tables.
pub(crate) fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds().unsigned_abs();
    // Rounded, not cut: a key made with --expires 9d reads "in 9 days" a second later.
    let (size, unit) = match secs {
        0..60 => return "now".into(),
        60..3570 => (60, "minute"),
        3570..84_600 => (3600, "hour"),
        84_600..10_368_000 => (86_400, "day"),
        10_368_000..63_072_000 => (2_592_000, "month"),
        _ => (31_536_000, "year"),
    };
    let n = (secs + size / 2) / size;
    let plural = if n == 1 { "" } else { "s" };
    if d.is_positive() {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// "expires 2027-02-21 (in 90 days)" or "never expires": what `create`, `import` and
/// `rotate` say about a new key.
pub(crate) fn describe(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match expires_at {
        None => "never expires".into(),
        Some(t) => format!("expires {} ({})", day(t), relative(t, now)),
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("RFC 3339 formatting of a valid time")
}

/// A time for people: UTC, to the second ("2026-12-05 08:25:39 UTC"). JSON keeps RFC 3339.
pub(crate) fn human(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        day(t),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The day a time falls on, for tables.
pub(crate) fn day(t: OffsetDateTime) -> String {
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
    /// A rotation's successor while the rotation is under way (not yet what its name
    /// means).
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expiring => "expiring",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Superseded => "superseded",
            Status::Pending => "pending",
        }
    }

    pub fn is_usable(self) -> bool {
        matches!(
            self,
            Status::Active | Status::Expiring | Status::Superseded | Status::Pending
        )
    }
}

pub(crate) fn status(
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

    #[test]
    fn durations_and_the_ambiguous_m() {
        assert_eq!(parse_duration("90d").unwrap(), Duration::days(90));
        assert_eq!(parse_duration("1h30min").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("2w").unwrap(), Duration::weeks(2));
        assert_eq!(parse_duration("6mo").unwrap(), Duration::days(180));
        assert_eq!(parse_duration(" 1 y ").unwrap(), Duration::days(365));
        let e = format!("{:#}", parse_duration("1m").unwrap_err());
        assert!(e.contains("1min for minutes or 1mo for months"), "{e}");
        assert!(parse_duration("1M").is_err());
        let e = format!("{:#}", parse_expires("1m", NOW).unwrap_err());
        assert!(
            e.starts_with("invalid --expires '1m': 'm' could mean"),
            "{e}"
        );
        for bad in ["", "d", "5", "5 parsecs", "0d", "99999999999d", "1.5d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_times_read_like_speech() {
        assert_eq!(relative(NOW + Duration::days(9), NOW), "in 9 days");
        assert_eq!(relative(NOW - Duration::days(3), NOW), "3 days ago");
        assert_eq!(relative(NOW + Duration::hours(1), NOW), "in 1 hour");
        assert_eq!(relative(NOW + Duration::seconds(20), NOW), "now");
        assert_eq!(
            relative(NOW + Duration::days(9) - Duration::seconds(2), NOW),
            "in 9 days"
        );
        assert_eq!(relative(NOW + Duration::minutes(59), NOW), "in 59 minutes");
        assert_eq!(
            relative(NOW + Duration::minutes(-50), NOW),
            "50 minutes ago"
        );
        assert_eq!(relative(NOW + Duration::days(200), NOW), "in 7 months");
        assert_eq!(relative(NOW - Duration::days(800), NOW), "2 years ago");
        assert_eq!(
            describe(Some(NOW + Duration::days(90)), NOW),
            "expires 2027-02-21 (in 90 days)"
        );
        assert_eq!(describe(None, NOW), "never expires");
    }
}
