//! Calendar arithmetic shared by the matcher (`eventTime`, time-part
//! modifiers, alert windows) and the exports (`--since`/`--until`): days
//! since the Unix epoch to and from a proleptic Gregorian date (Howard
//! Hinnant's algorithms), and the UTC offset that ends an RFC 3339 time.

/// Days since 1970-01-01 of the date `y-m-d`.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The date (year, month, day) `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The UTC offset, in minutes, that `text[at..]` spells: nothing (UTC), `Z`,
/// or `+hh:mm` / `-hh:mm`, each running to the end of the text.
pub fn utc_offset_minutes(text: &[u8], at: usize) -> Option<i64> {
    let two = |i: usize| -> Option<i64> {
        let pair = text.get(i..i + 2)?;
        pair.iter()
            .all(u8::is_ascii_digit)
            .then(|| i64::from(pair[0] - b'0') * 10 + i64::from(pair[1] - b'0'))
    };
    match text.get(at) {
        None => Some(0),
        Some(b'Z' | b'z') if at + 1 == text.len() => Some(0),
        Some(sign @ (b'+' | b'-')) if text.len() == at + 6 && text[at + 3] == b':' => {
            let m = two(at + 1)? * 60 + two(at + 4)?;
            Some(if *sign == b'+' { m } else { -m })
        }
        _ => None,
    }
}

/// Milliseconds since the epoch of a civil time at a UTC offset.
pub fn epoch_ms(
    (y, mo, d): (i64, i64, i64),
    (h, mi, s): (i64, i64, i64),
    millis: i64,
    offset_min: i64,
) -> i64 {
    (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60) * 1000 + millis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_eras() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_753), (2024, 1, 31));
    }

    #[test]
    fn offsets() {
        assert_eq!(utc_offset_minutes(b"T", 1), Some(0));
        assert_eq!(utc_offset_minutes(b"TZ", 1), Some(0));
        assert_eq!(utc_offset_minutes(b"T+01:30", 1), Some(90));
        assert_eq!(utc_offset_minutes(b"T-05:00", 1), Some(-300));
        assert_eq!(utc_offset_minutes(b"TZx", 1), None);
        assert_eq!(utc_offset_minutes(b"T+0100", 1), None);
        assert_eq!(utc_offset_minutes(b"T+ab:00", 1), None);
    }
}
