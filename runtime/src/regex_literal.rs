//! A literal that every match of a regular expression contains, so that a
//! substring search can reject most texts before the regex runs.

use regex_syntax::hir::{Hir, HirKind};
use sigil_compiler::rule::RegexFlags;

/// The longest literal (at least three bytes) that occurs in every match of
/// `pattern` under `flags`, if the pattern's top-level sequence has one.
/// Case-insensitive literals parse as classes, so they yield none: the
/// search that rejects must be exact.
pub(crate) fn required(pattern: &str, flags: &RegexFlags) -> Option<Vec<u8>> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(flags.ignore_case)
        .multi_line(flags.multiline)
        .dot_matches_new_line(flags.dot_all)
        .build()
        .parse(pattern)
        .ok()?;
    let mut found = Vec::new();
    collect(&hir, &mut found);
    found
        .into_iter()
        .filter(|lit| lit.len() >= 3)
        .max_by_key(Vec::len)
}

/// Literals every match of `hir` contains: each literal of a sequence, through
/// groups and repetitions that must occur at least once. Alternations,
/// classes and optional parts contribute none.
fn collect(hir: &Hir, out: &mut Vec<Vec<u8>>) {
    match hir.kind() {
        HirKind::Literal(lit) => out.push(lit.0.to_vec()),
        HirKind::Capture(cap) => collect(&cap.sub, out),
        HirKind::Repetition(rep) if rep.min >= 1 => collect(&rep.sub, out),
        HirKind::Concat(items) => {
            // Adjacent literals of a sequence form one longer literal.
            let mut run: Vec<u8> = Vec::new();
            for item in items {
                if let HirKind::Literal(lit) = item.kind() {
                    run.extend_from_slice(&lit.0);
                    continue;
                }
                if !run.is_empty() {
                    out.push(std::mem::take(&mut run));
                }
                collect(item, out);
            }
            if !run.is_empty() {
                out.push(run);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(pattern: &str, flags: RegexFlags) -> Option<String> {
        required(pattern, &flags).map(|l| String::from_utf8(l).unwrap())
    }

    #[test]
    fn finds_the_longest_required_literal() {
        let plain = RegexFlags::default();
        assert_eq!(
            lit(".+:assumed-role/aws:.+", plain).as_deref(),
            Some(":assumed-role/aws:")
        );
        assert_eq!(lit("^abcd(def)+x*yz", plain).as_deref(), Some("abcd"));
        assert_eq!(lit("é{2}tail", plain).as_deref(), Some("tail"));
        for none in ["^\\*$", "(abc|abd)", "(abcd)?", "x*yyy?", "[abc]{3}", ""] {
            assert_eq!(lit(none, plain), None, "{none}");
        }
        let ignore_case = RegexFlags {
            ignore_case: true,
            ..RegexFlags::default()
        };
        assert_eq!(lit("abcdef", ignore_case), None);
    }

    /// The pre-check never rejects a text the regex matches.
    #[test]
    fn a_text_the_regex_matches_holds_the_literal() {
        let texts = [
            "arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1",
            "x:assumed-role/aws:",
            ":assumed-role/aws:y",
            "abcdefdefx",
            "abcdefyz",
            "éétail",
            "ab\ncdef",
        ];
        for pattern in [
            ".+:assumed-role/aws:.+",
            "abc(def)+x*yz",
            "é{2}tail",
            "(?s)ab.cdef",
        ] {
            let re = regex::Regex::new(pattern).unwrap();
            let Some(l) = required(pattern, &RegexFlags::default()) else {
                panic!("{pattern}: no literal");
            };
            for t in texts {
                if re.is_match(t) {
                    assert!(
                        memchr::memmem::find(t.as_bytes(), &l).is_some(),
                        "{pattern} {t}"
                    );
                }
            }
        }
    }
}
