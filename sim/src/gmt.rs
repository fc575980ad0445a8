//! GMT time as the Monitor API writes and reads it: ISO 8601 to the second
//! (`2015-07-30T20:00:00Z`), the two `StartDate`/`EndDate` forms, and the wall clock that alert
//! timestamps are read from.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::SignedDuration;
use jiff::civil::DateTime;

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;
/// What the seconds here count from. GMT times are civil times here (no time zone, nothing
/// to convert), which also keeps all of years 1970 to 9999 in range.
const EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);

/// Whole seconds since the Unix epoch (the simulator never sees a time before it).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDThh:mm:ssZ`, the format of the Monitor API's examples. A time past the end of
/// year 9999 is written as that end.
pub fn format_iso(seconds: u64) -> String {
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|seconds| EPOCH.checked_add(SignedDuration::from_secs(seconds)).ok())
        .unwrap_or(DateTime::MAX);
    format!("{time:.0}Z")
}

/// `YYYY-MM-DD` (midnight GMT of that day) or `YYYY-MM-DDThh:mm:ssZ`, as the document's
/// `StartDate` and `EndDate` take them, to seconds since the epoch. Anything else, an
/// impossible date or a time before 1970 is `None`.
pub fn parse_query_date(text: &str) -> Option<u64> {
    // The exact shape first (`0` for a digit): jiff's parsers are laxer than the document
    // (other offsets, fractions, a leap second read as :59).
    const DATE: &[u8] = b"0000-00-00";
    const DATE_TIME: &[u8] = b"0000-00-00T00:00:00Z";
    let shape = if text.len() == DATE.len() {
        DATE
    } else {
        DATE_TIME
    };
    let fits = text.len() == shape.len()
        && text.bytes().zip(shape).all(|(byte, &want)| match want {
            b'0' => byte.is_ascii_digit(),
            _ => byte == want,
        });
    if !fits {
        return None;
    }
    // ASCII digits where numbers go: a four-digit year fits an i16, two digits an i8.
    let year = text[0..4].parse().ok()?;
    let two = |at: usize| text[at..at + 2].parse::<i8>().ok();
    let (hour, minute, second) = if shape == DATE {
        (0, 0, 0)
    } else {
        (two(11)?, two(14)?, two(17)?)
    };
    // jiff refuses an impossible date or time (2015-02-29, 24:00:00, :60).
    let datetime = DateTime::new(year, two(5)?, two(8)?, hour, minute, second, 0).ok()?;
    u64::try_from(datetime.duration_since(EPOCH).as_secs()).ok()
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
