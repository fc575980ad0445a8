//! GMT time as the Monitor API writes and reads it: ISO 8601 to the second
//! (`2015-07-30T20:00:00Z`), the two `StartDate`/`EndDate` forms, and the wall clock that alert
//! timestamps are read from.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SECONDS_PER_DAY: u64 = 24 * 60 * 60;
/// 1970-03-01 is day 0 of the era arithmetic below (the leap day then ends a year).
const DAYS_FROM_ERA_TO_EPOCH: i64 = 719_468;
const DAYS_PER_ERA: i64 = 146_097;

/// Whole seconds since the Unix epoch (the simulator never sees a time before it).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDThh:mm:ssZ`, the format of the Monitor API's examples.
pub fn format_iso(seconds: u64) -> String {
    let days = i64::try_from(seconds / SECONDS_PER_DAY).unwrap_or(i64::MAX / 2);
    let (year, month, day) = civil_from_days(days);
    let of_day = seconds % SECONDS_PER_DAY;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// `YYYY-MM-DD` (midnight GMT of that day) or `YYYY-MM-DDThh:mm:ssZ`, as the document's
/// `StartDate` and `EndDate` take them, to seconds since the epoch. Anything else, an
/// impossible date or a time before 1970 is `None`.
pub fn parse_query_date(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let date_only = bytes.len() == 10;
    if !date_only
        && (bytes.len() != 20
            || bytes[10] != b'T'
            || bytes[13] != b':'
            || bytes[16] != b':'
            || bytes[19] != b'Z')
    {
        return None;
    }
    if bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (hour, minute, second) = if date_only {
        (0, 0, 0)
    } else {
        (number(11..13)?, number(14..16)?, number(17..19)?)
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = u64::try_from(days_from_civil(i64::from(year), month, day)).ok()?;
    Some(
        days * SECONDS_PER_DAY
            + u64::from(hour) * 3600
            + u64::from(minute) * 60
            + u64::from(second),
    )
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + DAYS_FROM_ERA_TO_EPOCH;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01; the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - DAYS_FROM_ERA_TO_EPOCH
}

/// Wall-clock time for the monotonic instants the lifecycle runs on, from one reading of both
/// clocks: a failure due at an `Instant` gets the GMT time it happened at, however late it is
/// found, and the simulator's "now" never jumps with the system clock.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant: Instant,
    system: SystemTime,
}

impl WallClock {
    pub fn new() -> WallClock {
        WallClock {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    pub fn at(&self, instant: Instant) -> SystemTime {
        match instant.checked_duration_since(self.instant) {
            Some(after) => self.system + after,
            None => self
                .system
                .checked_sub(self.instant.duration_since(instant))
                .unwrap_or(UNIX_EPOCH),
        }
    }
}

impl Default for WallClock {
    fn default() -> WallClock {
        WallClock::new()
    }
}

/// `days` whole days.
pub const fn days(days: u64) -> Duration {
    Duration::from_secs(days * SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_documents_example_instant() {
        // 2015-07-30T20:00:00Z, the date_created of the Monitor document's examples.
        assert_eq!(format_iso(1_438_286_400), "2015-07-30T20:00:00Z");
        assert_eq!(format_iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_iso(951_782_399), "2000-02-28T23:59:59Z");
        assert_eq!(format_iso(951_868_800), "2000-03-01T00:00:00Z");
    }

    #[test]
    fn parses_both_query_forms_and_round_trips() {
        assert_eq!(
            parse_query_date("2015-07-30T20:00:00Z"),
            Some(1_438_286_400)
        );
        assert_eq!(parse_query_date("2015-07-30"), Some(1_438_214_400));
        assert_eq!(parse_query_date("2016-02-29"), Some(1_456_704_000));
        for seconds in [0, 59, 86_399, 951_868_800, 1_438_286_400, 4_102_444_800] {
            let text = format_iso(seconds);
            assert_eq!(parse_query_date(&text), Some(seconds), "{text}");
        }
    }

    #[test]
    fn rejects_every_other_form() {
        for bad in [
            "",
            "2015-7-30",
            "2015/07/30",
            "20150730",
            "2015-07-30T20:00:00",
            "2015-07-30T20:00:00+00:00",
            "2015-07-30T20:00:00.000Z",
            "2015-07-30 20:00:00Z",
            "2015-07-30t20:00:00z",
            "2015-13-01",
            "2015-00-10",
            "2015-02-29",
            "2015-04-31",
            "2015-07-00",
            "2015-07-30T24:00:00Z",
            "2015-07-30T20:60:00Z",
            "2015-07-30T20:00:60Z",
            "1969-12-31",
            "+015-07-30",
            "2015-07-3a",
            "２０15-07-30",
        ] {
            assert_eq!(parse_query_date(bad), None, "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_wall_clock_follows_the_monotonic_one() {
        let clock = WallClock::new();
        let later = clock.instant + Duration::from_secs(90);
        assert_eq!(
            clock.at(later).duration_since(clock.system).unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(clock.at(clock.instant), clock.system);
    }
}
