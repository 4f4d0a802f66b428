//! String tests on value text: case folding, wildcards, numbers, networks,
//! timestamps.

use std::borrow::Cow;
use std::net::IpAddr;

use sigil_compiler::ir::{GlobPiece, StrKind, StrMatch};
use sigil_compiler::rule::{CmpOp, TimePart};
use sigil_compiler::time;

/// Unicode simple lowercase, borrowing when nothing changes.
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.bytes().all(|b| !b.is_ascii_uppercase() && b < 0x80) {
        Cow::Borrowed(text)
    } else if text.is_ascii() {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// Appends [`fold`]`(text)` to `out`, without a temporary for ASCII text.
pub fn fold_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&text.to_lowercase());
    }
}

/// Does a value's text match? Folds the text when the match is
/// case-insensitive; wildcards compare character by character of the
/// original text, so `?` is one character even where lowercasing changes the
/// length (`İ` lowercases to two characters).
pub fn matches(m: &StrMatch, text: &str) -> bool {
    match (&m.kind, m.cased) {
        (StrKind::Glob(pieces), false) => glob_folded(pieces, text),
        (_, true) => str_match(m, text),
        (_, false) => str_match(m, &fold(text)),
    }
}

/// Does `text` (already folded when the match is case-insensitive) match?
pub fn str_match(m: &StrMatch, text: &str) -> bool {
    match &m.kind {
        StrKind::Exact(s) => text == s,
        StrKind::Prefix(s) => text.starts_with(s.as_str()),
        StrKind::Suffix(s) => text.ends_with(s.as_str()),
        StrKind::Contains(s) => memchr::memmem::find(text.as_bytes(), s.as_bytes()).is_some(),
        StrKind::Glob(pieces) => glob(pieces, text),
    }
}

/// [`str_match`] of a case-insensitive match (its pattern already folded)
/// on ASCII text that has not been folded, when it can be decided without
/// folding: equality, prefix and suffix compare ignoring ASCII case, which
/// is exactly how ASCII text folds. `None` for other shapes.
pub fn ascii_str_match(m: &StrMatch, ascii_text: &str) -> Option<bool> {
    let t = ascii_text.as_bytes();
    let ci = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
    match &m.kind {
        StrKind::Exact(s) => Some(ci(t, s)),
        StrKind::Prefix(s) => Some(t.len() >= s.len() && ci(&t[..s.len()], s)),
        StrKind::Suffix(s) => Some(t.len() >= s.len() && ci(&t[t.len() - s.len()..], s)),
        StrKind::Contains(_) | StrKind::Glob(_) => None,
    }
}

/// Wildcard match over characters; `*` backtracks to the latest star only,
/// which is linear-ish and never exponential.
pub fn glob(pieces: &[GlobPiece], text: &str) -> bool {
    glob_units(pieces, &text.chars().map(|c| vec![c]).collect::<Vec<_>>())
}

/// Case-insensitive wildcard match: each character of the text is one unit
/// (for `?`), compared by its lowercase form (the pattern is lowercase).
pub fn glob_folded(pieces: &[GlobPiece], text: &str) -> bool {
    glob_units(
        pieces,
        &text
            .chars()
            .map(|c| c.to_lowercase().collect())
            .collect::<Vec<Vec<char>>>(),
    )
}

fn glob_units(pieces: &[GlobPiece], t: &[Vec<char>]) -> bool {
    // Expand pieces to a char-level pattern: Some(c) literal, None for `?`,
    // and a separate marker for `*`.
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Lit(char),
        One,
        Star,
    }
    let mut p = Vec::new();
    for piece in pieces {
        match piece {
            GlobPiece::Lit(s) => p.extend(s.chars().map(P::Lit)),
            GlobPiece::AnyChar => p.push(P::One),
            GlobPiece::AnyRun => p.push(P::Star),
        }
    }
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while ti < t.len() {
        let unit = &t[ti];
        let lit_matches = unit
            .iter()
            .enumerate()
            .all(|(k, c)| p.get(pi + k) == Some(&P::Lit(*c)));
        match p.get(pi) {
            Some(P::Lit(_)) if lit_matches => {
                pi += unit.len();
                ti += 1;
            }
            Some(P::One) => {
                pi += 1;
                ti += 1;
            }
            Some(P::Star) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&P::Star) {
        pi += 1;
    }
    pi == p.len()
}

/// A number from value text: JSON numbers and numeric strings, exactly as
/// written (no trimming: spaces are significant in Sigma values).
pub fn number(text: &str) -> Option<f64> {
    let t = text;
    if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("inf") {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Integers compare exactly (beyond 2^53 too); anything else as f64.
fn integer(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    (!digits.is_empty() && digits.len() <= 38 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Numeric equality of a value's text with a rule number (given as text and value).
pub fn numbers_equal(value: &str, rule_text: &str, rule_value: f64) -> bool {
    match (integer(value), integer(rule_text)) {
        (Some(a), Some(b)) => a == b,
        _ => number(value) == Some(rule_value),
    }
}

/// A numeric comparison of a value's text with a bound.
pub fn compare_text(op: CmpOp, value: &str, bound: f64) -> bool {
    if let (Some(a), true) = (integer(value), bound.fract() == 0.0 && bound.abs() < 1e38) {
        // Compare integers exactly; the bound is integral.
        let b = bound as i128;
        return match op {
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Neq => a != b,
        };
    }
    number(value).is_some_and(|n| op.holds(n, bound))
}

/// Network membership.
pub fn in_network(text: &str, net: IpAddr, prefix: u8) -> bool {
    let Ok(ip) = text.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        // An IPv4-mapped IPv6 address is the IPv4 address.
        (IpAddr::V6(a), IpAddr::V4(_)) => match a.to_ipv4_mapped() {
            Some(v4) => in_network(&v4.to_string(), net, prefix),
            None => false,
        },
        _ => false,
    }
}

/// Extracts a part of an ISO 8601 timestamp (`2024-01-31T22:15:03Z`), as
/// written (no time-zone conversion, as the specification says).
pub fn time_part(text: &str, part: TimePart) -> Option<i64> {
    let b = text.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| time::digits(b, r);
    if b.len() < 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let time = |r| -> Option<i64> {
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        num(r)
    };
    Some(match part {
        TimePart::Year => y,
        TimePart::Month => mo,
        TimePart::Day => d,
        TimePart::Hour => time(11..13)?,
        TimePart::Minute => time(14..16)?,
        TimePart::Week => iso_week(y, mo, d)?,
    })
}

/// A record's `eventTime` as milliseconds since the Unix epoch: an RFC 3339
/// time ([`time::parse_timestamp`]) with a time of day, any number of
/// fraction digits and a leap second allowed.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    time::parse_timestamp(
        text,
        &time::TimestampSyntax {
            date_alone: false,
            max_fraction_digits: usize::MAX,
            max_second: 60,
        },
    )
}

/// ISO 8601 week number.
fn iso_week(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let ordinal = cum[(m - 1) as usize] + d + i64::from(m > 2 && leap(y));
    // Day of week, Monday = 1.
    let weekday = (time::days_from_civil(y, m, d) + 3).rem_euclid(7) + 1; // 1970-01-01 was a Thursday
    let week = (ordinal - weekday + 10) / 7;
    let weeks_in = |y: i64| {
        let p = |y: i64| (y + y / 4 - y / 100 + y / 400) % 7;
        if p(y) == 4 || p(y - 1) == 3 {
            53
        } else {
            52
        }
    };
    Some(if week < 1 {
        weeks_in(y - 1)
    } else if week > weeks_in(y) {
        1
    } else {
        week
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = |p: &[GlobPiece], t| glob(p, t);
        use GlobPiece::*;
        assert!(g(&[Lit("a".into()), AnyRun, Lit("c".into())], "abbbc"));
        assert!(!g(&[Lit("a".into()), AnyChar], "a"));
        assert!(g(&[AnyRun], ""));
        assert!(g(&[Lit("é".into()), AnyChar], "éx"));
    }

    #[test]
    fn networks_and_numbers() {
        assert!(in_network("10.1.2.3", "10.0.0.0".parse().unwrap(), 8));
        assert!(!in_network("11.1.2.3", "10.0.0.0".parse().unwrap(), 8));
        assert!(in_network("2001:db8::1", "2001:db8::".parse().unwrap(), 32));
        assert!(!in_network(
            "ec2.amazonaws.com",
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_network("1.2.3.4", "0.0.0.0".parse().unwrap(), 0));
        assert_eq!(number(" 42 "), None);
        assert!(numbers_equal(
            "9007199254740993",
            "9007199254740993",
            9007199254740993.0
        ));
        assert!(!numbers_equal(
            "9007199254740993",
            "9007199254740992",
            9007199254740992.0
        ));
        assert_eq!(number("3.6e3"), Some(3600.0));
        assert_eq!(number("inf"), None);
    }

    #[test]
    fn time_parts() {
        let t = "2024-12-30T22:15:03Z";
        assert_eq!(time_part(t, TimePart::Hour), Some(22));
        assert_eq!(time_part(t, TimePart::Minute), Some(15));
        assert_eq!(time_part(t, TimePart::Week), Some(1));
        assert_eq!(time_part("2021-01-03T00:00:00Z", TimePart::Week), Some(53));
        assert_eq!(time_part("2024-06-15T00:00:00Z", TimePart::Week), Some(24));
        assert_eq!(time_part("nonsense", TimePart::Year), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time_ms("2024-01-31T22:15:03Z"),
            Some(1_706_739_303_000)
        );
        assert_eq!(
            parse_time_ms("2024-01-31T22:15:03.5Z"),
            Some(1_706_739_303_500)
        );
        assert_eq!(
            parse_time_ms("2024-01-31T23:15:03+01:00"),
            Some(1_706_739_303_000)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
    }

    #[test]
    fn ascii_matches_agree_with_folded_ones() {
        let texts = [
            "AssumedRole",
            "assumedrole",
            "ASSUMED",
            "Role",
            "",
            "x-AMZ",
            "é",
            "K",
        ];
        let patterns = [
            "assumedrole",
            "assumed",
            "role",
            "",
            "x-amz",
            "é",
            "k",
            "\u{212a}",
        ];
        for t in texts.iter().filter(|t| t.is_ascii()) {
            for p in patterns {
                let shapes = [
                    StrKind::Exact(p.into()),
                    StrKind::Prefix(p.into()),
                    StrKind::Suffix(p.into()),
                ];
                for kind in shapes {
                    let m = StrMatch { kind, cased: false };
                    assert_eq!(
                        ascii_str_match(&m, t),
                        Some(str_match(&m, &fold(t))),
                        "{t} {m:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn folding() {
        assert_eq!(fold("ÉCOLE"), "école");
        assert!(matches!(fold("abc"), Cow::Borrowed(_)));
        let mut arena = String::from("kept|");
        for t in ["ÉCOLE", "AbC", "", "ΟΔΟΣ", "İx"] {
            let start = arena.len();
            fold_into(t, &mut arena);
            assert_eq!(&arena[start..], fold(t), "{t}");
        }
        assert!(arena.starts_with("kept|"));
    }
}
