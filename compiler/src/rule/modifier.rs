//! Value modifiers: names, classes and the chaining rules of the
//! specification (and pySigma where the specification is silent).

use std::fmt;

/// One value modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Exists,
    Cased,
    Neq,
    Windash,
    Re,
    /// `i` (or pySigma's alias `ignorecase`).
    IgnoreCase,
    /// `m` (or `multiline`).
    Multiline,
    /// `s` (or `dotall`).
    DotAll,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Wide,
    Cidr,
    Expand,
    FieldRef,
    Lt,
    Lte,
    Gt,
    Gte,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// Every modifier name sigil accepts, with pySigma's aliases flagged.
const NAMES: &[(&str, Modifier, bool)] = &[
    ("contains", Modifier::Contains, false),
    ("startswith", Modifier::StartsWith, false),
    ("endswith", Modifier::EndsWith, false),
    ("all", Modifier::All, false),
    ("exists", Modifier::Exists, false),
    ("cased", Modifier::Cased, false),
    ("neq", Modifier::Neq, false),
    ("windash", Modifier::Windash, false),
    ("re", Modifier::Re, false),
    ("i", Modifier::IgnoreCase, false),
    ("m", Modifier::Multiline, false),
    ("s", Modifier::DotAll, false),
    ("ignorecase", Modifier::IgnoreCase, true),
    ("multiline", Modifier::Multiline, true),
    ("dotall", Modifier::DotAll, true),
    ("base64", Modifier::Base64, false),
    ("base64offset", Modifier::Base64Offset, false),
    ("utf16le", Modifier::Utf16Le, false),
    ("utf16be", Modifier::Utf16Be, false),
    ("utf16", Modifier::Utf16, false),
    ("wide", Modifier::Wide, false),
    ("cidr", Modifier::Cidr, false),
    ("expand", Modifier::Expand, false),
    ("fieldref", Modifier::FieldRef, false),
    ("lt", Modifier::Lt, false),
    ("lte", Modifier::Lte, false),
    ("gt", Modifier::Gt, false),
    ("gte", Modifier::Gte, false),
    ("minute", Modifier::Minute, false),
    ("hour", Modifier::Hour, false),
    ("day", Modifier::Day, false),
    ("week", Modifier::Week, false),
    ("month", Modifier::Month, false),
    ("year", Modifier::Year, false),
];

impl Modifier {
    /// Looks a modifier up by name; the flag is true for pySigma-only aliases.
    pub fn from_name(name: &str) -> Option<(Modifier, bool)> {
        NAMES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, m, alias)| (*m, *alias))
    }

    /// The specification's name.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, m, alias)| *m == self && !alias)
            .map(|(n, _, _)| *n)
            .unwrap_or("?")
    }

    /// The closest known name, for "did you mean" help.
    pub fn suggest(name: &str) -> Option<&'static str> {
        NAMES
            .iter()
            .filter(|(_, _, alias)| !alias)
            .map(|(n, _, _)| (*n, edit_distance(n, &name.to_ascii_lowercase())))
            .filter(|(n, d)| *d <= 2.max(n.len() / 3) && *d < n.len())
            .min_by_key(|(_, d)| *d)
            .map(|(n, _)| n)
    }

    /// `lt`, `lte`, `gt`, `gte`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Modifier::Lt | Modifier::Lte | Modifier::Gt | Modifier::Gte
        )
    }

    /// `minute` ... `year`.
    pub fn is_time_part(self) -> bool {
        matches!(
            self,
            Modifier::Minute
                | Modifier::Hour
                | Modifier::Day
                | Modifier::Week
                | Modifier::Month
                | Modifier::Year
        )
    }

    /// `contains`, `startswith`, `endswith`.
    pub fn is_position(self) -> bool {
        matches!(
            self,
            Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
        )
    }

    /// The UTF-16 encodings.
    pub fn is_encoding(self) -> bool {
        matches!(
            self,
            Modifier::Utf16 | Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Wide
        )
    }

    /// `i`, `m`, `s`.
    pub fn is_regex_flag(self) -> bool {
        matches!(
            self,
            Modifier::IgnoreCase | Modifier::Multiline | Modifier::DotAll
        )
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a chain of modifiers is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// Index of a modifier that repeats an earlier one.
    Duplicate(usize),
    /// Two modifiers that cannot apply together (indices).
    Conflict(usize, usize),
    /// A modifier in a position or company the rules forbid, with the reason.
    Illegal(usize, String),
    /// `i`/`m`/`s` without `re`.
    FlagWithoutRe(usize),
}

/// Checks a chain. `keyword` is true for items without a field name.
pub fn check_chain(chain: &[Modifier], keyword: bool) -> Vec<ChainProblem> {
    use Modifier::*;
    let mut problems = Vec::new();
    for (i, m) in chain.iter().enumerate() {
        if chain[..i].contains(m) {
            problems.push(ChainProblem::Duplicate(i));
        }
    }
    let has = |m: Modifier| chain.contains(&m);
    let first = chain.first().copied();
    for (i, &m) in chain.iter().enumerate() {
        match m {
            Re | Cidr | Exists if i > 0 => problems.push(ChainProblem::Illegal(
                i,
                format!("`{m}` works on the value as written and must be the first modifier"),
            )),
            Exists | FieldRef if keyword => problems.push(ChainProblem::Illegal(
                i,
                format!("`{m}` needs a field name"),
            )),
            _ if (m.is_comparison() || m.is_time_part()) && keyword => problems.push(
                ChainProblem::Illegal(i, format!("`{m}` needs a field name")),
            ),
            _ => {}
        }
        if m.is_regex_flag() && !has(Re) {
            problems.push(ChainProblem::FlagWithoutRe(i));
        }
    }
    let allowed_after = |lead: Modifier, m: Modifier| -> bool {
        match lead {
            Re => m.is_regex_flag() || matches!(m, All | Neq | Re),
            Cidr => matches!(m, All | Neq | Cidr),
            Exists => m == Exists,
            _ => true,
        }
    };
    if let Some(lead @ (Re | Cidr | Exists)) = first {
        for (i, &m) in chain.iter().enumerate().skip(1) {
            if !allowed_after(lead, m) && !matches!(m, Re | Cidr | Exists) {
                problems.push(ChainProblem::Illegal(
                    i,
                    format!("`{m}` cannot be combined with `{lead}`"),
                ));
            }
        }
    }
    // Comparisons and time parts: a time part may stand before one comparison;
    // nothing else combines with them except `neq` on the time part.
    let numeric: Vec<usize> = (0..chain.len())
        .filter(|&i| chain[i].is_comparison() || chain[i].is_time_part())
        .collect();
    if !numeric.is_empty() {
        let comparisons: Vec<usize> = numeric
            .iter()
            .copied()
            .filter(|&i| chain[i].is_comparison())
            .collect();
        let parts: Vec<usize> = numeric
            .iter()
            .copied()
            .filter(|&i| chain[i].is_time_part())
            .collect();
        if let [a, b, ..] = comparisons[..] {
            problems.push(ChainProblem::Conflict(a, b));
        }
        if let [a, b, ..] = parts[..] {
            problems.push(ChainProblem::Conflict(a, b));
        }
        if let (Some(&c), Some(&p)) = (comparisons.first(), parts.first()) {
            if c < p {
                problems.push(ChainProblem::Illegal(
                    p,
                    format!("time part `{}` must come before `{}`", chain[p], chain[c]),
                ));
            }
        }
        for (i, &m) in chain.iter().enumerate() {
            let ok = m.is_comparison()
                || m.is_time_part()
                || (m == Neq && !parts.is_empty() && comparisons.is_empty());
            if !ok && !matches!(m, Re | Cidr | Exists) {
                problems.push(ChainProblem::Illegal(
                    i,
                    format!("`{m}` cannot be combined with a numeric comparison"),
                ));
            }
        }
    }
    if has(FieldRef) {
        for (i, &m) in chain.iter().enumerate() {
            if !(m == FieldRef || m.is_position() || matches!(m, Cased | Neq | All)) {
                problems.push(ChainProblem::Illegal(
                    i,
                    format!("`{m}` cannot be combined with `fieldref`"),
                ));
            }
        }
    }
    let positions: Vec<usize> = (0..chain.len())
        .filter(|&i| chain[i].is_position())
        .collect();
    if let [a, b, ..] = positions[..] {
        if chain[a] != chain[b] {
            problems.push(ChainProblem::Conflict(a, b));
        }
    }
    let pair = |x: Modifier, y: Modifier| -> Option<(usize, usize)> {
        let a = chain.iter().position(|&m| m == x)?;
        let b = chain.iter().position(|&m| m == y)?;
        Some((a.min(b), a.max(b)))
    };
    if let Some((a, b)) = pair(Base64, Base64Offset) {
        problems.push(ChainProblem::Conflict(a, b));
    }
    if let Some((a, b)) = pair(Re, Cased) {
        problems.push(ChainProblem::Conflict(a, b));
    }
    let encodings: Vec<usize> = (0..chain.len())
        .filter(|&i| chain[i].is_encoding())
        .collect();
    if let [a, b, ..] = encodings[..] {
        if chain[a] != chain[b] {
            problems.push(ChainProblem::Conflict(a, b));
        }
    }
    problems.sort_by_key(|p| match p {
        ChainProblem::Duplicate(i)
        | ChainProblem::Illegal(i, _)
        | ChainProblem::FlagWithoutRe(i) => *i,
        ChainProblem::Conflict(_, b) => *b,
    });
    problems.dedup();
    problems
}

/// Levenshtein distance over characters, for "did you mean" help.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let v = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Modifier::*;

    #[test]
    fn corpus_chains_are_legal() {
        for chain in [
            vec![Contains, All],
            vec![Contains, Windash],
            vec![Re, IgnoreCase],
            vec![Wide, Base64Offset, Contains],
            vec![Base64, Contains],
            vec![Contains, Expand],
            vec![FieldRef],
            vec![Hour, Gte],
            vec![Cidr],
        ] {
            assert!(check_chain(&chain, false).is_empty(), "{chain:?}");
        }
    }

    #[test]
    fn illegal_chains_are_named() {
        assert!(matches!(
            check_chain(&[Contains, Re], false)[0],
            ChainProblem::Illegal(1, _)
        ));
        assert!(matches!(
            check_chain(&[Contains, StartsWith], false)[0],
            ChainProblem::Conflict(0, 1)
        ));
        assert!(matches!(
            check_chain(&[Contains, Contains], false)[0],
            ChainProblem::Duplicate(1)
        ));
        assert!(matches!(
            check_chain(&[IgnoreCase], false)[0],
            ChainProblem::FlagWithoutRe(0)
        ));
        assert!(matches!(
            check_chain(&[Gt, Hour], false)[0],
            ChainProblem::Illegal(1, _)
        ));
        assert!(matches!(
            check_chain(&[Exists], true)[0],
            ChainProblem::Illegal(0, _)
        ));
        assert!(!check_chain(&[Re, Contains], false).is_empty());
    }

    #[test]
    fn suggestions() {
        assert_eq!(Modifier::suggest("contain"), Some("contains"));
        assert_eq!(Modifier::suggest("startwith"), Some("startswith"));
        assert_eq!(Modifier::suggest("zzzzzz"), None);
    }
}
