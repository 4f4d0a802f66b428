//! Splunk SPL over `sourcetype=aws:cloudtrail` as the Splunk Add-on for AWS
//! extracts it (JSON paths with their casing, arrays as `name{}.child`,
//! JSON null giving no field).
//!
//! A rule becomes a base search plus, where search terms cannot say it
//! exactly, one `| where` clause. Search terms are used for case-insensitive
//! ASCII text without `*` or `?` (a backslash cannot escape `*` in Splunk)
//! and without `i` or `s`, and `field=*` tests; they work on multivalue
//! (array) fields with "any value" semantics. Everything else (cased text,
//! literal `*`, `?`, non-ASCII text, text with `i`/`s`, regexes, numbers,
//! comparisons, CIDR, time parts, field references) is a `where` expression
//! whose every test is guarded by `isnotnull()`, so it is two-valued and
//! `NOT` keeps records without the field. Negation is always `NOT (...)`,
//! never `!=`.
//!
//! A case-insensitive search term also lets `ı`/`İ` stand for `i` and `ſ`
//! for `s`, which the matcher's lowercase comparison does not; such a test
//! is said exactly in `where`, and its search term stays in the base search
//! as a superset prefilter wherever that is sound (`Splunk::prefilter`), so
//! the index still narrows the events.
//!
//! Only paths the mapping declares scalar (`splunk.scalars`) are tested: at
//! other paths the add-on's fields can differ from the record's values
//! (objects, arrays of arrays, keys containing dots; `Splunk::declared`).

use crate::ir::{Check, Expr, GlobPiece, Pred, RuleInfo, RuleIr, StrKind};
use crate::rule::{CmpOp, Position, TimePart};

use super::mapping::SplunkMapping;
use super::{regex_escape, Backend, Out, Unsupported};

/// Numeric text as the matcher reads it, to the end of the value: `(?!.)`
/// under `(?s)`, since `$` would also accept a final newline.
const NUMERIC_RE: &str = concat!("(?s)^", super::number_syntax!(), "(?!.)");

/// Integer text the matcher compares exactly (as `i128`): `-?`, 1 to 38 digits.
const INT38_RE: &str = "(?s)^-?[0-9]{1,38}(?!.)";

/// 2^53: from here on a double no longer holds every integer.
pub(crate) const EXACT_DOUBLE: f64 = 9_007_199_254_740_992.0;

/// The matcher's integer reading of a text (`-?`, at most 38 digits).
pub(crate) fn int38(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    (!digits.is_empty() && digits.len() <= 38 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn digit_class(lo: u8, hi: u8) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("[{lo}-{hi}]")
    }
}

fn any_digits(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "[0-9]".to_string(),
        n => format!("[0-9]{{{n}}}"),
    }
}

/// Regex alternatives for the decimal texts (no leading zero) of the
/// naturals greater than `s` (digits, no leading zero).
fn nat_gt(s: &str) -> Vec<String> {
    let d: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
    let l = d.len();
    let mut alts = vec![format!("[1-9][0-9]{{{l},}}")];
    for i in 0..l {
        if d[i] < 9 {
            alts.push(format!(
                "{}{}{}",
                &s[..i],
                digit_class(d[i] + 1, 9),
                any_digits(l - i - 1)
            ));
        }
    }
    alts
}

/// Regex alternatives for the decimal texts (no leading zero) of the
/// naturals from 1 to `s` - 1.
fn nat_lt(s: &str) -> Vec<String> {
    let d: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
    let l = d.len();
    let mut alts = Vec::new();
    if l >= 2 {
        alts.push(format!("[1-9][0-9]{{0,{}}}", l - 2));
    }
    for i in 0..l {
        let lo = u8::from(i == 0);
        if d[i] > lo {
            alts.push(format!(
                "{}{}{}",
                &s[..i],
                digit_class(lo, d[i] - 1),
                any_digits(l - i - 1)
            ));
        }
    }
    alts
}

/// A regex over integer text (`-?[0-9]+`, leading zeros allowed) that holds
/// when the integer compares with `b` by `op` (`Neq` is not asked).
fn int_cmp_regex(op: CmpOp, b: i128) -> String {
    format!("(?s)^{}(?!.)", int_cmp_alternatives(op, b))
}

/// The unanchored body of [`int_cmp_regex`]: `(?:…|…)`.
pub(crate) fn int_cmp_alternatives(op: CmpOp, b: i128) -> String {
    let zero = "-?0+".to_string();
    let any_pos = "0*[1-9][0-9]*".to_string();
    let any_neg = "-0*[1-9][0-9]*".to_string();
    let pos = |alts: Vec<String>| (!alts.is_empty()).then(|| format!("0*(?:{})", alts.join("|")));
    let neg = |alts: Vec<String>| (!alts.is_empty()).then(|| format!("-0*(?:{})", alts.join("|")));
    let s = b.unsigned_abs().to_string();
    let eq = match b.signum() {
        0 => zero.clone(),
        1 => format!("0*{s}"),
        _ => format!("-0*{s}"),
    };
    let gt: Vec<Option<String>> = if b >= 0 {
        vec![pos(nat_gt(&s))]
    } else {
        vec![Some(any_pos.clone()), Some(zero.clone()), neg(nat_lt(&s))]
    };
    let lt: Vec<Option<String>> = if b > 0 {
        vec![Some(any_neg), Some(zero), pos(nat_lt(&s))]
    } else {
        vec![neg(nat_gt(&s))]
    };
    let alts: Vec<String> = match op {
        CmpOp::Gt => gt.into_iter().flatten().collect(),
        CmpOp::Lt => lt.into_iter().flatten().collect(),
        CmpOp::Gte => gt.into_iter().flatten().chain([eq]).collect(),
        CmpOp::Lte => lt.into_iter().flatten().chain([eq]).collect(),
        CmpOp::Eq | CmpOp::Neq => vec![eq],
    };
    format!("(?:{})", alts.join("|"))
}

/// Above this code point no character has a different lowercase.
const CASED_LIMIT: u32 = 0x20000;

/// Characters by their (per-character, Unicode) lowercase: `k` → `K`, `K`
/// (KELVIN SIGN); `i̇` → `İ`.
fn lowercase_sources() -> &'static std::collections::HashMap<String, Vec<char>> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<String, Vec<char>>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: std::collections::HashMap<String, Vec<char>> = std::collections::HashMap::new();
        // Every character with a different lowercase lies below U+20000
        // (the last are Adlam's, U+1E900..U+1E921; checked by a test).
        for c in (0..CASED_LIMIT).filter_map(char::from_u32) {
            let l: String = c.to_lowercase().collect();
            if l.chars().ne(std::iter::once(c)) {
                t.entry(l).or_default().push(c);
            }
        }
        t
    })
}

/// A regex over the original text that holds where the matcher's
/// case-insensitive comparison of a lowercase literal does: each character
/// of the text stands for its own lowercase, so `k` is `[kKK]` and `i̇` is
/// `(?:i̇|İ|İ)`. Unlike `(?i)` this never admits case-folding extras
/// (`ſ` for `s`, `ı` for `i`), and unlike `lower()` it keeps one text
/// character one character for `?`.
pub(crate) fn caseless_literal(s: &str) -> String {
    let table = lowercase_sources();
    let chars: Vec<char> = s.chars().collect();
    let one = |c: char| -> String {
        match table.get(&c.to_string()) {
            Some(srcs) => {
                let mut class = String::from("[");
                class.push_str(&regex_escape(&c.to_string()));
                for x in srcs {
                    class.push_str(&regex_escape(&x.to_string()));
                }
                class.push(']');
                class
            }
            None => regex_escape(&c.to_string()),
        }
    };
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        // A text character whose lowercase is several characters (`İ`)
        // stands for all of them at once.
        let multi = table.iter().find(|(l, _)| {
            l.chars().count() > 1
                && chars[i..]
                    .iter()
                    .take(l.chars().count())
                    .copied()
                    .eq(l.chars())
        });
        match multi {
            Some((l, srcs)) => {
                let n = l.chars().count();
                let parts: String = chars[i..i + n].iter().map(|c| one(*c)).collect();
                let whole: Vec<String> =
                    srcs.iter().map(|x| regex_escape(&x.to_string())).collect();
                out.push_str(&format!("(?:{parts}|{})", whole.join("|")));
                i += n;
            }
            None => {
                out.push_str(&one(chars[i]));
                i += 1;
            }
        }
    }
    out
}

/// The CIDR networks a `cidr` test accepts: the network, and for an IPv4
/// network also its IPv4-mapped IPv6 form (`::ffff:10.0.0.0/104`), since
/// the matcher reads `::ffff:10.1.2.3` as `10.1.2.3`.
fn cidr_networks(addr: std::net::IpAddr, prefix: u8) -> Vec<String> {
    let mut nets = vec![super::masked_network(addr, prefix)];
    if let std::net::IpAddr::V4(a) = addr {
        nets.push(super::masked_network(
            std::net::IpAddr::V6(a.to_ipv6_mapped()),
            96 + prefix.min(32),
        ));
    }
    nets
}

#[path = "spl_correlation.rs"]
pub(crate) mod correlation;

/// The Splunk backend.
pub struct Splunk<'a> {
    /// Field names and base search.
    pub mapping: &'a SplunkMapping,
}

fn spl_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text a quoted search term can hold (case-insensitively): printable
/// ASCII without `*`.
fn search_safe(s: &str) -> bool {
    s.chars().all(|c| (' '..='~').contains(&c) && c != '*')
}

/// Whether a case-insensitive search term for `s` selects more than the
/// matcher's lowercase comparison: Splunk (Python's `re.IGNORECASE` in the
/// oracle) also lets `ı` (U+0131) and `İ` (U+0130) stand for `i` and `ſ`
/// (U+017F) for `s`. These are the only extras `re.IGNORECASE` gives ASCII
/// letters besides KELVIN SIGN for `k`, which the matcher also folds to `k`.
fn search_wider(s: &str) -> bool {
    s.chars().any(|c| matches!(c, 'i' | 'I' | 's' | 'S'))
}

/// Text equality that never turns numeric: `where` compares two
/// numeric-looking strings as numbers (`"5"=="5.0"`), so both sides get a
/// non-numeric prefix.
fn text_eq(lhs: &str, lit: &str) -> String {
    format!("(\"_\".{lhs})=={}", spl_quote(&format!("_{lit}")))
}

fn cmp_holds(op: CmpOp, a: i64, b: i64) -> bool {
    match op {
        CmpOp::Gt => a > b,
        CmpOp::Gte => a >= b,
        CmpOp::Lt => a < b,
        CmpOp::Lte => a <= b,
        CmpOp::Eq => a == b,
        CmpOp::Neq => a != b,
    }
}

impl Splunk<'_> {
    fn name_of(&self, path: &str) -> Result<String, Unsupported> {
        if self.mapping.objects.iter().any(|o| o == path) {
            return Err(Unsupported::construct(format!(
                "`{path}` holds an object; Splunk extracts only its leaves, so a test on the object's JSON text cannot be expressed"
            )));
        }
        if let Some(n) = self.mapping.fields.get(path) {
            return Ok(n.clone());
        }
        let segs: Vec<&str> = path.split('.').collect();
        let mut out = String::new();
        for i in 0..segs.len() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(segs[i]);
            let prefix = segs[..=i].join(".");
            if self.mapping.arrays.contains(&prefix) {
                out.push_str("{}");
            }
        }
        Ok(out)
    }

    /// Refuses a test on a path the mapping does not declare to hold a
    /// scalar (or an array of scalars): there Splunk's extraction may not
    /// hold the record's value. An object has no field (only its leaves), so
    /// `exists`, `null` and text tests that the matcher applies to its
    /// compact text would differ; an array of arrays is named `a{}{}`; a
    /// record key containing a dot (`{"a.b": 1}`) flattens exactly like the
    /// path `a.b`, which the matcher never reaches.
    fn declared(&self, path: &str) -> Result<(), Unsupported> {
        if self.mapping.fields.contains_key(path) || self.mapping.scalars.iter().any(|s| s == path)
        {
            return Ok(());
        }
        let top = path.split('.').next().unwrap_or(path);
        let m = self.mapping;
        let known_top = m
            .scalars
            .iter()
            .chain(&m.fixed)
            .chain(&m.arrays)
            .chain(&m.objects)
            .chain(m.fields.keys())
            .any(|p| p.split('.').next() == Some(top));
        if !known_top {
            return Err(Unsupported::field(format!(
                "`{path}`: CloudTrail records have no top-level field `{top}` (field names are case-sensitive JSON paths: `eventName`, not `eventname`); declare the path under `splunk.scalars` in the mapping file if your records have it"
            )));
        }
        Err(Unsupported::construct(format!(
            "`{path}` is not a declared scalar path: there it may hold an object (Splunk extracts only its leaves, so no field holds the object the matcher tests), an array of arrays (Splunk names it `{{}}{{}}`) or be spelled by a record key containing a dot (flattened like the path), so no search is exact; declare it under `splunk.scalars` in the mapping file if it always holds a scalar or an array of scalars"
        )))
    }

    /// Every spelling of `path` Splunk may use: declared arrays get `{}`;
    /// a segment neither declared an array nor known to be fixed may be an
    /// array in some record, so both spellings are tried (at most 16).
    fn search_fields(&self, path: &str) -> Result<Vec<String>, Unsupported> {
        let first = self.name_of(path)?;
        self.declared(path)?;
        if self.mapping.fields.contains_key(path) {
            return Ok(vec![self.quote_field(path, first)?]);
        }
        let segs: Vec<&str> = path.split('.').collect();
        let mut names = vec![String::new()];
        for i in 0..segs.len() {
            let prefix = segs[..=i].join(".");
            let declared = self.mapping.arrays.contains(&prefix);
            let fixed = self.mapping.fixed.contains(&prefix);
            let mut next = Vec::new();
            for n in &names {
                let base = if i == 0 {
                    segs[0].to_string()
                } else {
                    format!("{n}.{}", segs[i])
                };
                if declared {
                    next.push(format!("{base}{{}}"));
                } else {
                    next.push(base.clone());
                    if !fixed {
                        next.push(format!("{base}{{}}"));
                    }
                }
            }
            names = next;
        }
        if names.len() > 16 {
            // Trying only the declared spelling would silently miss records
            // where an undeclared segment is an array.
            return Err(Unsupported::construct(format!(
                "`{path}` has too many segments that may hold an array ({} spellings with and without `{{}}`); declare them under `splunk.fixed` or `splunk.arrays` in the mapping file",
                names.len()
            )));
        }
        names
            .into_iter()
            .map(|n| self.quote_field(path, n))
            .collect()
    }

    fn quote_field(&self, path: &str, n: String) -> Result<String, Unsupported> {
        let bare = n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '{' | '}' | '@' | '-'))
            && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if bare {
            Ok(n)
        } else if n.contains(['"', '\\']) || n.chars().any(char::is_control) {
            Err(Unsupported::field(format!(
                "`{path}` cannot be written as a Splunk field name"
            )))
        } else {
            Ok(format!("\"{n}\""))
        }
    }

    fn where_field(&self, path: &str) -> Result<String, Unsupported> {
        let n = self.name_of(path)?;
        self.declared(path)?;
        if n.contains("{}") {
            return Err(Unsupported::construct(format!(
                "`{path}` is a multivalue (array) field and the test needs `| where`, where Splunk does not apply \"any value\" semantics"
            )));
        }
        if !self.mapping.fields.contains_key(path) {
            let segs: Vec<&str> = path.split('.').collect();
            for i in 0..segs.len() {
                let prefix = segs[..=i].join(".");
                if !self.mapping.fixed.contains(&prefix) {
                    return Err(Unsupported::construct(format!(
                        "`{path}`: `{prefix}` may hold an array in some records (Splunk then names the field `{prefix}{{}}`), and the test needs `| where`, which would not see it; declare the path under `splunk.fixed` (never an array) or `splunk.arrays` in the mapping file"
                    )));
                }
            }
        }
        if n.contains(['\'', '\\']) || n.chars().any(char::is_control) {
            return Err(Unsupported::field(format!(
                "`{path}` cannot be written as a Splunk field name"
            )));
        }
        Ok(format!("'{n}'"))
    }

    /// The predicate as search terms, when they say it exactly; with
    /// `superset`, also when they select a superset of it (`ı`, `İ`, `ſ`
    /// standing for `i`/`s`: [`search_wider`]).
    fn search_pred(&self, p: &Pred, superset: bool) -> Option<Result<String, Unsupported>> {
        let field = p.field.as_ref()?;
        if !superset {
            let wider = match &p.check {
                Check::Str(m) if !m.cased => match &m.kind {
                    StrKind::Exact(s)
                    | StrKind::Prefix(s)
                    | StrKind::Suffix(s)
                    | StrKind::Contains(s) => search_wider(s),
                    StrKind::Glob(pieces) => pieces.iter().any(|g| match g {
                        GlobPiece::Lit(s) => search_wider(s),
                        _ => false,
                    }),
                },
                Check::StrIn {
                    values,
                    cased: false,
                } => values.iter().any(|v| search_wider(v)),
                Check::Bool(b) => search_wider(&b.to_string()),
                _ => false,
            };
            if wider {
                return None;
            }
        }
        let names = match self.search_fields(field.as_str()) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let any = |f: &dyn Fn(&str) -> String| {
            if names.len() == 1 {
                f(&names[0])
            } else {
                let parts: Vec<String> = names.iter().map(|n| f(n)).collect();
                format!("({})", parts.join(" OR "))
            }
        };
        let term = |v: String| any(&|n: &str| format!("{n}={}", spl_quote(&v)));
        let t = match &p.check {
            Check::Null => format!("(NOT {})", any(&|n: &str| format!("{n}=*"))),
            Check::Exists => any(&|n: &str| format!("{n}=*")),
            Check::Str(m) if !m.cased => match &m.kind {
                StrKind::Exact(s) if search_safe(s) => term(s.clone()),
                StrKind::Prefix(s) if search_safe(s) => term(format!("{s}*")),
                StrKind::Suffix(s) if search_safe(s) => term(format!("*{s}")),
                StrKind::Contains(s) if search_safe(s) => {
                    if s.is_empty() {
                        any(&|n: &str| format!("{n}=*"))
                    } else {
                        term(format!("*{s}*"))
                    }
                }
                StrKind::Glob(pieces)
                    if pieces.iter().all(|g| match g {
                        GlobPiece::Lit(s) => search_safe(s),
                        GlobPiece::AnyRun => true,
                        GlobPiece::AnyChar => false,
                    }) =>
                {
                    let mut v = String::new();
                    for g in pieces {
                        match g {
                            GlobPiece::Lit(s) => v.push_str(s),
                            _ => v.push('*'),
                        }
                    }
                    term(v)
                }
                _ => return None,
            },
            Check::StrIn {
                values,
                cased: false,
            } if values.iter().all(|s| search_safe(s)) => {
                let parts: Vec<String> = values.iter().map(|v| term(v.clone())).collect();
                format!("({})", parts.join(" OR "))
            }
            Check::Bool(b) => term(b.to_string()),
            // No CIDR search terms: a term `f="10.0.0.0/8"` also matches the
            // text `10.0.0.0/8` itself, which is no address (`cidrmatch()`
            // in `where` instead).
            _ => return None,
        };
        Some(Ok(t))
    }

    /// The whole expression as search terms, if possible.
    fn search_expr(&self, e: &Expr) -> Option<Result<String, Unsupported>> {
        Some(Ok(match e {
            Expr::Const(_) => return None,
            Expr::And(items) | Expr::Or(items) => {
                let mut parts = Vec::new();
                for i in items {
                    match self.search_expr(i)? {
                        Ok(s) => parts.push(s),
                        Err(e) => return Some(Err(e)),
                    }
                }
                let op = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                format!("({})", parts.join(op))
            }
            Expr::Not(inner) => match self.search_expr(inner)? {
                Ok(s) => format!("(NOT {s})"),
                Err(e) => return Some(Err(e)),
            },
            Expr::Pred(p) => return self.search_pred(p, false),
        }))
    }

    /// Search terms selecting a superset of `e` (an index prefilter for a
    /// `where` that says `e` exactly), if any: a test whose search term is
    /// wider ([`search_wider`]) keeps that term; `AND` keeps the parts that
    /// have one, `OR` needs every branch, `NOT` only an exact term.
    fn prefilter(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Const(_) => None,
            Expr::And(items) => {
                let parts: Vec<String> = items.iter().filter_map(|i| self.prefilter(i)).collect();
                match parts.len() {
                    0 => None,
                    1 => parts.into_iter().next(),
                    _ => Some(format!("({})", parts.join(" AND "))),
                }
            }
            Expr::Or(items) => {
                let parts = items
                    .iter()
                    .map(|i| self.prefilter(i))
                    .collect::<Option<Vec<String>>>()?;
                Some(format!("({})", parts.join(" OR ")))
            }
            Expr::Not(inner) => Some(format!("(NOT {})", self.search_expr(inner)?.ok()?)),
            Expr::Pred(p) => self.search_pred(p, true)?.ok(),
        }
    }

    fn str_where(&self, f: &str, kind: &StrKind, cased: bool) -> String {
        let l = if cased {
            f.to_string()
        } else {
            format!("lower({f})")
        };
        let re = |body: String| format!("match({l}, {})", spl_quote(&format!("(?s){body}")));
        let end = "(?!.)";
        match kind {
            StrKind::Exact(s) if !s.chars().any(char::is_control) => text_eq(&l, s),
            StrKind::Exact(s) => re(format!("^{}{end}", regex_escape(s))),
            StrKind::Prefix(s) => re(format!("^{}", regex_escape(s))),
            StrKind::Suffix(s) => re(format!("{}{end}", regex_escape(s))),
            StrKind::Contains(s) => re(regex_escape(s)),
            StrKind::Glob(pieces) if !cased => {
                // On the original text: `?` is one character of the value
                // even where lower-casing lengthens it (`İ` → `i̇`).
                let mut body = String::from("^");
                for g in pieces {
                    match g {
                        GlobPiece::Lit(s) => body.push_str(&caseless_literal(s)),
                        GlobPiece::AnyRun => body.push_str(".*"),
                        GlobPiece::AnyChar => body.push('.'),
                    }
                }
                body.push_str(end);
                format!("match({f}, {})", spl_quote(&format!("(?s){body}")))
            }
            StrKind::Glob(pieces) => {
                let mut body = String::from("^");
                for g in pieces {
                    match g {
                        GlobPiece::Lit(s) => body.push_str(&regex_escape(s)),
                        GlobPiece::AnyRun => body.push_str(".*"),
                        GlobPiece::AnyChar => body.push('.'),
                    }
                }
                body.push_str(end);
                re(body)
            }
        }
    }

    fn time_part_where(&self, f: &str, part: TimePart, op: CmpOp, value: i64) -> Out {
        let (prefix, width, hi) = match part {
            TimePart::Year => ("^", 4, 9999),
            TimePart::Month => ("^[0-9]{4}-", 2, 99),
            TimePart::Day => ("^[0-9]{4}-[0-9]{2}-", 2, 99),
            TimePart::Hour => ("^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]", 2, 99),
            TimePart::Minute => ("^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:", 2, 99),
            TimePart::Week => {
                return Err(Unsupported::construct(
                    "`|week` needs ISO week arithmetic, which SPL's search-time functions cannot do exactly",
                ))
            }
        };
        let suffix = match part {
            TimePart::Year => "-[0-9]{2}-[0-9]{2}",
            TimePart::Month => "-[0-9]{2}",
            TimePart::Day => "",
            TimePart::Hour => ":[0-9]{2}",
            TimePart::Minute | TimePart::Week => "",
        };
        let vals: Vec<String> = (0..=hi)
            .filter(|v| cmp_holds(op, *v, value))
            .map(|v| format!("{v:0width$}"))
            .collect();
        if vals.len() > 200 {
            return Err(Unsupported::construct(
                "a year comparison would need a regex over thousands of years",
            ));
        }
        if vals.is_empty() {
            return Ok("(1==0)".to_string());
        }
        let re = format!("{prefix}({}){suffix}", vals.join("|"));
        Ok(format!(
            "(isnotnull({f}) AND match({f}, {}))",
            spl_quote(&re)
        ))
    }
}

impl Backend for Splunk<'_> {
    fn name(&self) -> &'static str {
        "splunk"
    }

    fn const_bool(&self, value: bool) -> Out {
        Ok(if value { "(1==1)" } else { "(1==0)" }.to_string())
    }

    /// The predicate as a two-valued `where` expression.
    fn pred(&self, p: &Pred) -> Out {
        let Some(field) = &p.field else {
            return Err(Unsupported::construct(
                "keywords (values without a field) search the text of every string, number and boolean leaf, JSON escapes decoded; Splunk's free text and `_raw` also hold keys, JSON punctuation, `null` and escapes as written (`\\u0041`), and no field holds every leaf (a `{}`-spelling per path is unknown in advance)",
            ));
        };
        let path = field.as_str();
        let f = self.where_field(path)?;
        let g = format!("isnotnull({f})");
        Ok(match &p.check {
            Check::Null => format!("isnull({f})"),
            Check::Exists => g,
            Check::Str(m) => format!("({g} AND {})", self.str_where(&f, &m.kind, m.cased)),
            Check::StrIn { values, cased } => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| self.str_where(&f, &StrKind::Exact(v.clone()), *cased))
                    .collect();
                format!("({g} AND ({}))", parts.join(" OR "))
            }
            Check::Num { value, text } => {
                let double = format!(
                    "match({f}, {}) AND tonumber({f})=={value}",
                    spl_quote(NUMERIC_RE)
                );
                match int38(text) {
                    // Integers beyond 2^53 compare exactly, by their digits.
                    Some(b) if value.abs() >= EXACT_DOUBLE => format!(
                        "({g} AND ({} OR (match({f}, {i}) AND match({f}, {})) OR ((NOT match({f}, {i})) AND {double})))",
                        text_eq(&f, text),
                        spl_quote(&int_cmp_regex(CmpOp::Eq, b)),
                        i = spl_quote(INT38_RE),
                    ),
                    _ => format!("({g} AND ({} OR ({double})))", text_eq(&f, text)),
                }
            }
            Check::Bool(b) => format!(
                "({g} AND {})",
                text_eq(&format!("lower({f})"), &b.to_string())
            ),
            Check::Regex { pattern, flags } => {
                format!(
                    "({g} AND match({f}, {}))",
                    spl_quote(&flags.inline(pattern))
                )
            }
            Check::Cidr { addr, prefix } => {
                let nets: Vec<String> = cidr_networks(*addr, *prefix)
                    .iter()
                    .map(|n| format!("cidrmatch({}, {f})", spl_quote(n)))
                    .collect();
                format!("({g} AND ({}))", nets.join(" OR "))
            }
            Check::Cmp { op, value } => {
                let o = match op {
                    CmpOp::Gt => ">",
                    CmpOp::Gte => ">=",
                    CmpOp::Lt => "<",
                    CmpOp::Lte => "<=",
                    CmpOp::Eq => "==",
                    CmpOp::Neq => "!=",
                };
                // `tonumber(f)*0==0`: finite (`1e400` is no number to the
                // matcher; infinity times 0 is NaN).
                let double = format!(
                    "match({f}, {}) AND tonumber({f})*0==0 AND tonumber({f}){o}{value}",
                    spl_quote(NUMERIC_RE)
                );
                if value.fract() == 0.0 && value.abs() >= EXACT_DOUBLE && value.abs() < 1e38 {
                    // The matcher compares integer text with an integral
                    // bound exactly; a double cannot beyond 2^53.
                    let b = *value as i128;
                    let int = if *op == CmpOp::Neq {
                        format!(
                            "NOT match({f}, {})",
                            spl_quote(&int_cmp_regex(CmpOp::Eq, b))
                        )
                    } else {
                        format!("match({f}, {})", spl_quote(&int_cmp_regex(*op, b)))
                    };
                    format!(
                        "({g} AND ((match({f}, {i}) AND {int}) OR ((NOT match({f}, {i})) AND {double})))",
                        i = spl_quote(INT38_RE),
                    )
                } else {
                    format!("({g} AND {double})")
                }
            }
            Check::TimePart { part, op, value } => self.time_part_where(&f, *part, *op, *value)?,
            Check::FieldRef {
                other,
                position,
                cased,
            } => {
                if *position != Position::Equals {
                    return Err(Unsupported::construct(
                        "`fieldref` with contains/startswith/endswith: SPL has no literal substring function over two fields",
                    ));
                }
                let o = self.where_field(other.as_str())?;
                let (a, b) = if *cased {
                    (f.clone(), o.clone())
                } else {
                    (format!("lower({f})"), format!("lower({o})"))
                };
                format!("({g} AND isnotnull({o}) AND (\"_\".{a})==(\"_\".{b}))")
            }
        })
    }

    fn finish(&self, _rule: &RuleIr, condition: String) -> Out {
        Ok(format!("{} | where {condition}", self.mapping.base))
    }

    fn convert(&self, rule: &RuleIr) -> Out {
        if let Some(s) = self.search_expr(&rule.expr) {
            return Ok(format!("{} {}", self.mapping.base, s?));
        }
        if let Expr::And(items) = &rule.expr {
            let mut search = Vec::new();
            let mut wh = Vec::new();
            for i in items {
                match self.search_expr(i) {
                    Some(s) => search.push(s?),
                    None => {
                        wh.push(self.expr(i)?);
                        // A superset of a conjunct narrows the search
                        // without changing the result.
                        search.extend(self.prefilter(i));
                    }
                }
            }
            let mut q = self.mapping.base.clone();
            if !search.is_empty() {
                q.push_str(&format!(" ({})", search.join(" AND ")));
            }
            q.push_str(&format!(" | where {}", wh.join(" AND ")));
            return Ok(q);
        }
        let cond = self.expr(&rule.expr)?;
        match self.prefilter(&rule.expr) {
            Some(pre) => Ok(format!("{} {pre} | where {cond}", self.mapping.base)),
            None => self.finish(rule, cond),
        }
    }
}

/// A `--since`/`--until` time as Unix epoch milliseconds: an RFC 3339 time
/// ([`crate::time::parse_timestamp`]) or a bare date (`2024-01-15`), with at
/// most millisecond precision, as Splunk's `earliest=`/`latest=` take it.
pub fn epoch_millis(text: &str) -> Option<i64> {
    crate::time::parse_timestamp(
        text,
        &crate::time::TimestampSyntax {
            date_alone: true,
            max_fraction_digits: 3,
            max_second: 59,
        },
    )
}

fn epoch_text(ms: i64) -> String {
    if ms.rem_euclid(1000) == 0 {
        ms.div_euclid(1000).to_string()
    } else {
        format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
    }
}

/// Adds `--since` / `--until` to a search as `earliest=` / `latest=` in Unix
/// epoch seconds (Splunk keeps `earliest <= _time < latest`; `_time` is the
/// record's `eventTime`), right after the base search.
pub fn with_time_range(query: String, base: &str, options: &super::Options) -> Out {
    let mut terms = String::new();
    for (name, t) in [("earliest", &options.since), ("latest", &options.until)] {
        if let Some(t) = t {
            let ms = epoch_millis(t).ok_or_else(|| {
                Unsupported::construct(format!(
                    "`{t}` is not an ISO-8601 time (`2024-01-15`, `2024-01-15T10:00:00Z`)"
                ))
            })?;
            terms.push_str(&format!(" {name}={}", epoch_text(ms)));
        }
    }
    if terms.is_empty() {
        return Ok(query);
    }
    match query.strip_prefix(base) {
        Some(rest) => Ok(format!("{base}{terms}{rest}")),
        None => Ok(format!("{base}{terms} | search {query}")),
    }
}

/// Splunk's `alert.severity` for a Sigma level.
pub fn severity(level: Option<&str>) -> u8 {
    match level {
        Some("informational") => 2,
        Some("low") => 3,
        Some("medium") => 4,
        Some("high") => 5,
        Some("critical") => 6,
        _ => 3,
    }
}

fn conf_value(s: &str) -> String {
    s.replace('\r', "").replace('\n', " \\\n")
}

/// A `savedsearches.conf` stanza for a rule.
/// A `savedsearches.conf` stanza. `window_secs` is a correlation's timespan
/// (0 for a detection rule): each run looks back 15 minutes plus one window,
/// so a window that ends in the last 15 minutes is seen whole.
pub fn saved_search(info: &RuleInfo, query: &str, cron: &str, window_secs: u64) -> String {
    let name = format!("sigil - {}", info.title).replace(['[', ']'], "");
    let mut out = format!("[{}]\n", conf_value(&name));
    out.push_str(&format!("search = {}\n", conf_value(query)));
    if let Some(d) = &info.description {
        out.push_str(&format!("description = {}\n", conf_value(d.trim())));
    }
    out.push_str("enableSched = 1\n");
    out.push_str(&format!("cron_schedule = {cron}\n"));
    match window_secs {
        0 => out.push_str("dispatch.earliest_time = -15m\n"),
        w => out.push_str(&format!("dispatch.earliest_time = -{}s\n", 15 * 60 + w)),
    }
    out.push_str("dispatch.latest_time = now\n");
    out.push_str("counttype = number of events\nrelation = greater than\nquantity = 0\n");
    out.push_str(&format!(
        "alert.severity = {}\nalert.track = 1\n",
        severity(info.level.as_deref())
    ));
    out
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cased_character_beyond_the_table_limit() {
        assert!((CASED_LIMIT..=0x10FFFF)
            .filter_map(char::from_u32)
            .all(|c| c.to_lowercase().eq(std::iter::once(c))));
    }

    #[test]
    fn integer_regexes_compare_like_integers() {
        assert_eq!(
            int_cmp_regex(CmpOp::Gt, 99),
            "(?s)^(?:0*(?:[1-9][0-9]{2,}))(?!.)"
        );
        assert_eq!(
            int_cmp_regex(CmpOp::Lt, -101),
            "(?s)^(?:-0*(?:[1-9][0-9]{3,}|[2-9][0-9]{2}|1[1-9][0-9]|10[2-9]))(?!.)"
        );
        assert_eq!(
            int_cmp_regex(CmpOp::Lte, 1),
            "(?s)^(?:-0*[1-9][0-9]*|-?0+|0*1)(?!.)"
        );
    }
}
