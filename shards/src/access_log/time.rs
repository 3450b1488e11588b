//! The current second as the access-log formats write it, without allocating.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current second in the two shapes the formats use.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timestamps {
    /// `23/Nov/2026:10:00:00 +0000`
    pub(super) clf: [u8; 26],
    /// `2026-11-23T10:00:00Z`
    pub(super) iso: [u8; 20],
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Timestamps {
    /// `now` in UTC (into stack buffers: no allocation).
    pub(super) fn at(now: SystemTime) -> Self {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let (year, month, day) = civil_from_days(secs / 86_400);
        let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
        let mut stamps = Timestamps {
            clf: [b' '; 26],
            iso: [b' '; 20],
        };
        let month_name = MONTHS[(month - 1) as usize];
        let _ = write!(
            &mut stamps.clf[..],
            "{day:02}/{month_name}/{year:04}:{hour:02}:{minute:02}:{second:02} +0000"
        );
        let _ = write!(
            &mut stamps.iso[..],
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
        );
        stamps
    }
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
