//! Necessary literals: for a rule, a set of strings at least one of which must
//! occur in an event's raw JSON text (ASCII case-insensitively) for the rule
//! to possibly match. The matcher runs one Aho-Corasick pass over each record
//! and evaluates only the rules whose set was hit.
//!
//! A literal qualifies only if it reads the same in raw JSON as in the decoded
//! value: ASCII, no quote, backslash or control character, no JSON structure
//! characters that compact object text could place differently than the raw
//! record does (`{}[],`, or `:` at either end). Records that escape ordinary
//! characters (`\u`, `\/`) or hold characters whose lowercase is ASCII bypass
//! the prefilter in the matcher.

use super::{Check, Expr, GlobPiece, StrKind};

/// Literals shorter than this are not selective enough to be worth a bit.
pub const MIN_LITERAL: usize = 3;

/// The literals of which one must occur, or `None` when the expression can
/// hold without any (it must then be evaluated on every record). `Some(vec![])`
/// means the expression can never hold.
pub fn required(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Const(true) => None,
        Expr::Const(false) => Some(Vec::new()),
        Expr::Not(_) => None,
        Expr::Pred(p) => pred(&p.check),
        Expr::Or(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(required(item)?);
            }
            all.sort();
            all.dedup();
            Some(all)
        }
        Expr::And(items) => items.iter().filter_map(required).min_by_key(|set| {
            (
                set.len() > 8,
                set.iter().map(|s| usize::MAX - s.len()).max(),
                set.len(),
            )
        }),
    }
}

fn pred(check: &Check) -> Option<Vec<String>> {
    let one = |s: &str| usable(s).then(|| vec![s.to_ascii_lowercase()]);
    match check {
        Check::Str(m) => match &m.kind {
            StrKind::Exact(s) | StrKind::Prefix(s) | StrKind::Suffix(s) | StrKind::Contains(s) => {
                one(s)
            }
            StrKind::Glob(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    GlobPiece::Lit(s) if usable(s) => Some(s),
                    _ => None,
                })
                .max_by_key(|s| s.len())
                .map(|s| vec![s.to_ascii_lowercase()]),
        },
        Check::StrIn { values, .. } => {
            let mut out = Vec::new();
            for v in values {
                out.extend(one(v)?);
            }
            Some(out)
        }
        // Numbers compare numerically (`3.6e3` equals 3600), so no text is
        // guaranteed to occur.
        Check::Num { .. } => None,
        Check::Bool(b) => Some(vec![b.to_string()]),
        _ => None,
    }
}

/// Whether a literal reads the same in the raw record.
pub fn usable(s: &str) -> bool {
    s.len() >= MIN_LITERAL
        && s.bytes().all(|b| {
            (0x20..0x7f).contains(&b)
                && !matches!(b, b'"' | b'\\' | b'{' | b'}' | b'[' | b']' | b',')
        })
        && !s.starts_with(':')
        && !s.ends_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FieldPath, Pred, StrMatch};

    fn s(kind: StrKind) -> Expr {
        Expr::Pred(Pred {
            field: Some(FieldPath::new("f")),
            check: Check::Str(StrMatch { kind, cased: false }),
        })
    }

    #[test]
    fn and_picks_one_side_or_unions() {
        let e = Expr::And(vec![
            s(StrKind::Exact("stoplogging".into())),
            s(StrKind::Contains("x".into())),
        ]);
        assert_eq!(required(&e), Some(vec!["stoplogging".to_string()]));
        let e = Expr::Or(vec![
            s(StrKind::Exact("abc".into())),
            s(StrKind::Exact("def".into())),
        ]);
        assert_eq!(
            required(&e),
            Some(vec!["abc".to_string(), "def".to_string()])
        );
        let e = Expr::Or(vec![
            s(StrKind::Exact("abc".into())),
            Expr::Not(Box::new(s(StrKind::Exact("d".into())))),
        ]);
        assert_eq!(required(&e), None);
        assert!(!usable("a\"b"));
        assert!(!usable(":1"));
        assert!(usable("arn:aws:iam"));
    }
}
