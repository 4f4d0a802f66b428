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

/// The number the ASCII digits `text[range]` spell; `None` when the range
/// is empty, runs past the text or holds anything but digits.
pub fn digits(text: &[u8], range: std::ops::Range<usize>) -> Option<i64> {
    let s = text.get(range).filter(|s| !s.is_empty())?;
    s.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(i64::from(c - b'0')))
            .flatten()
    })
}

/// What an RFC 3339 timestamp may look like for [`parse_timestamp`]: the
/// matcher's `eventTime` and Splunk's `--since`/`--until` accept different
/// forms of the same syntax.
#[derive(Debug, Clone, Copy)]
pub struct TimestampSyntax {
    /// A bare date (`2024-01-15`, midnight UTC) is accepted.
    pub date_alone: bool,
    /// Most digits a fraction of a second may have.
    pub max_fraction_digits: usize,
    /// Largest second (60 admits a leap second).
    pub max_second: i64,
}

/// An ISO 8601 / RFC 3339 time (`2024-01-31T22:15:03Z`,
/// `2024-01-31T22:15:03.123+01:00`; no offset means UTC; `T`, `t` or a space
/// between date and time) as milliseconds since the Unix epoch, the fraction
/// truncated to milliseconds.
pub fn parse_timestamp(text: &str, syntax: &TimestampSyntax) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| digits(b, r);
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (mut h, mut mi, mut sec, mut millis, mut i) = (0, 0, 0, 0, 10);
    if b.len() > 10 || !syntax.date_alone {
        if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start || i - start > syntax.max_fraction_digits {
                return None;
            }
            // Milliseconds: the first three digits, padded with zeros.
            millis = (0..3).fold(0, |ms, k| {
                let digit = b.get(start + k).filter(|_| start + k < i);
                ms * 10 + digit.map_or(0, |&c| i64::from(c - b'0'))
            });
        }
    }
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > syntax.max_second
    {
        return None;
    }
    let offset_min = utc_offset_minutes(b, i)?;
    Some(epoch_ms((y, mo, d), (h, mi, sec), millis, offset_min))
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
    fn timestamps_in_both_syntaxes() {
        let event_time = TimestampSyntax {
            date_alone: false,
            max_fraction_digits: usize::MAX,
            max_second: 60,
        };
        let since = TimestampSyntax {
            date_alone: true,
            max_fraction_digits: 3,
            max_second: 59,
        };
        let at = |t, s| parse_timestamp(t, s);
        assert_eq!(at("1970-01-01T00:00:00Z", &event_time), Some(0));
        assert_eq!(at("1970-01-01T01:00:00.25+01:00", &since), Some(250));
        assert_eq!(at("1970-01-01 00:00:01.123456", &event_time), Some(1123));
        assert_eq!(at("1970-01-01T00:00:01.1234Z", &since), None);
        assert_eq!(at("1970-01-02", &since), Some(86_400_000));
        assert_eq!(at("1970-01-02", &event_time), None);
        assert_eq!(at("1970-01-01T23:59:60Z", &event_time), Some(86_400_000));
        assert_eq!(at("1970-01-01T23:59:60Z", &since), None);
        for bad in [
            "1970-13-01T00:00:00Z",
            "1970-01-01T00:00:00.Z",
            "1970-01-01T00:00",
            "x",
        ] {
            assert_eq!(at(bad, &event_time), None, "{bad}");
        }
        assert_eq!(digits(b"2024", 0..4), Some(2024));
        assert_eq!(digits(b"20x4", 0..4), None);
        assert_eq!(digits(b"20", 1..1), None);
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
