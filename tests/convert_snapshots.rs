//! Snapshots of every shipped rule and every SigmaHQ CloudTrail rule on
//! both backends, a structural check that each Athena query is well-formed
//! Trino SQL over the documented table, and the conversion time.

use std::path::{Path, PathBuf};

use sigil_compiler::backend::{self, Mapping, Options, Target};
use sigil_compiler::catalog::Catalog;
use sigil_compiler::{ir, Config};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sigmahq_cloudtrail() -> PathBuf {
    root().join("../shared/corpus/sigmahq/rules/cloud/aws/cloudtrail")
}

/// Every rule of `paths` on `target`, as one text (rules ordered by origin).
fn export(paths: &[PathBuf], target: Target) -> (String, usize, usize) {
    let catalog = Catalog::load(paths, &Config::default());
    let (program, _) = ir::from_catalog(&catalog);
    let mapping = Mapping::default();
    let mut rules: Vec<_> = program.rules.iter().collect();
    rules.sort_by(|a, b| a.info.origin.cmp(&b.info.origin));
    let base = root().join("..");
    let (mut ok, mut bad) = (0, 0);
    let mut out = String::new();
    for r in rules {
        let origin = Path::new(&r.info.origin);
        let shown = origin
            .strip_prefix(&base)
            .or_else(|_| origin.strip_prefix(root()))
            .unwrap_or(origin)
            .display()
            .to_string();
        out.push_str(&format!("=== {} ({shown})\n", r.info.title));
        match backend::convert_rule(r, target, &mapping, &Options::default(), false) {
            Ok(q) => {
                ok += 1;
                out.push_str(&q);
            }
            Err(e) => {
                bad += 1;
                out.push_str(&format!("ERROR {}: {}", e.code, e.message));
            }
        }
        out.push_str("\n\n");
    }
    for c in &program.correlations {
        out.push_str(&format!("=== correlation {}\n", c.info.title));
        match backend::convert_correlation(c, &program, target, &mapping, &Default::default()) {
            Ok(q) => out.push_str(&q),
            Err(e) => out.push_str(&format!("ERROR {}: {}", e.code, e.message)),
        }
        out.push_str("\n\n");
    }
    (out, ok, bad)
}

#[test]
fn shipped_rules_snapshots() {
    let paths = [root().join("rules")];
    for target in [Target::Splunk, Target::Athena] {
        let (text, ok, _) = export(&paths, target);
        assert!(ok > 0);
        insta::assert_snapshot!(format!("shipped_{}", target.name()), text);
    }
}

#[test]
fn sigmahq_cloudtrail_snapshots() {
    let dir = sigmahq_cloudtrail();
    assert!(dir.is_dir(), "{} is missing", dir.display());
    for target in [Target::Splunk, Target::Athena] {
        let (text, ok, _) = export(std::slice::from_ref(&dir), target);
        assert!(ok > 40, "{}: only {ok} rules converted", target.name());
        insta::assert_snapshot!(format!("sigmahq_cloudtrail_{}", target.name()), text);
    }
}

/// Tokens of a SQL text: identifiers/keywords, string literals, numbers,
/// punctuation. Panics on an unterminated literal or an unknown character.
fn sql_tokens(sql: &str) -> Vec<String> {
    let cs: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut j = i + 1;
            loop {
                assert!(j < cs.len(), "unterminated string literal in {sql}");
                if cs[j] == '\'' {
                    if j + 1 < cs.len() && cs[j + 1] == '\'' {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            out.push("'".to_string());
            i = j + 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i;
            while j < cs.len() && (cs[j].is_ascii_alphanumeric() || cs[j] == '_') {
                j += 1;
            }
            out.push(cs[i..j].iter().collect());
            i = j;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < cs.len()
                && (cs[j].is_ascii_alphanumeric() || matches!(cs[j], '.' | '+' | '-'))
            {
                j += 1;
            }
            out.push("0".to_string());
            i = j;
        } else if "(),.*=<>-".contains(c) {
            if (c == '-' && cs.get(i + 1) == Some(&'>'))
                || (matches!(c, '<' | '>') && cs.get(i + 1) == Some(&'='))
                || (c == '<' && cs.get(i + 1) == Some(&'>'))
            {
                out.push(cs[i..i + 2].iter().collect());
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        } else {
            panic!("unexpected character {c:?} in {sql}");
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "LIKE",
    "ESCAPE",
    "IN",
    "AS",
    "DOUBLE",
    "INTEGER",
    "DATE",
    "IPADDRESS",
    "ARRAY",
    "JSON",
];
const FUNCTIONS: &[&str] = &[
    "lower",
    "regexp_like",
    "contains",
    "TRY_CAST",
    "CAST",
    "any_match",
    "json_extract_scalar",
    "json_extract",
    "json_format",
    "COALESCE",
    "strpos",
    "reverse",
    "substr",
    "week",
    "from_iso8601_timestamp",
];

/// A structural check of one Athena query: tokens are known, parentheses
/// balance, every function is one Athena engine 3 has and is called, every
/// column is a column (or struct field) of the documented CloudTrail table,
/// and lambda variables are bound.
fn check_athena(sql: &str, columns: &[String]) {
    let toks = sql_tokens(sql);
    assert_eq!(toks.first().map(String::as_str), Some("SELECT"), "{sql}");
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate() {
        match t.as_str() {
            "(" => depth += 1,
            ")" => {
                depth -= 1;
                assert!(depth >= 0, "unbalanced `)` in {sql}");
            }
            _ => {}
        }
        let is_ident = t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if !is_ident {
            continue;
        }
        let next = toks.get(k + 1).map(String::as_str);
        let prev = k.checked_sub(1).map(|p| toks[p].as_str());
        if FUNCTIONS.contains(&t.as_str()) {
            assert_eq!(next, Some("("), "function `{t}` not called in {sql}");
        } else if KEYWORDS.contains(&t.as_str()) {
        } else if t.len() > 1 && t.starts_with('x') && t[1..].chars().all(|c| c.is_ascii_digit()) {
            // A JSON-array lambda variable (`x1 -> …`).
        } else if t == "r" {
            assert!(
                next == Some("->") || next == Some("."),
                "lambda variable misused in {sql}"
            );
        } else if prev == Some(".") {
            // A struct field: the whole dotted chain is checked at its head.
        } else if t == "cloudtrail_logs" {
            assert_eq!(prev, Some("FROM"), "{sql}");
        } else {
            // A column, possibly a dotted struct path.
            let mut path = t.clone();
            let mut j = k + 1;
            while toks.get(j).map(String::as_str) == Some(".") {
                path.push('.');
                path.push_str(&toks[j + 1]);
                j += 2;
            }
            assert!(
                columns.contains(&path),
                "`{path}` is not a column of the CloudTrail table in {sql}"
            );
        }
    }
    assert_eq!(depth, 0, "unbalanced `(` in {sql}");
}

#[test]
fn athena_queries_are_well_formed() {
    let mapping = Mapping::default();
    let mut columns: Vec<String> = mapping
        .athena
        .columns
        .values()
        .map(|(c, _)| c.clone())
        .collect();
    columns.push("resources".to_string());
    let paths = [root().join("rules"), sigmahq_cloudtrail()];
    let catalog = Catalog::load(&paths, &Config::default());
    let (program, _) = ir::from_catalog(&catalog);
    let mut checked = 0;
    for r in &program.rules {
        for view in [false, true] {
            let Ok(q) =
                backend::convert_rule(r, Target::Athena, &mapping, &Options::default(), view)
            else {
                continue;
            };
            let q = if view {
                let (head, rest) = q.split_once(" AS\n").expect("view head");
                assert!(head.starts_with("CREATE OR REPLACE VIEW sigil_"), "{head}");
                assert!(
                    head["CREATE OR REPLACE VIEW ".len()..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{head}"
                );
                rest.to_string()
            } else {
                q
            };
            check_athena(&q, &columns);
            checked += 1;
        }
    }
    assert!(checked > 80, "only {checked} queries checked");
}

#[test]
fn structural_check_rejects_broken_sql() {
    let cols = vec!["eventname".to_string()];
    let bad = [
        "SELECT *\nFROM cloudtrail_logs\nWHERE (lower(eventname) = 'x'",
        "SELECT *\nFROM cloudtrail_logs\nWHERE lower(eventName) = 'x'",
        "SELECT *\nFROM cloudtrail_logs\nWHERE lower(eventname) = 'x",
        "SELECT *\nFROM cloudtrail_logs\nWHERE upper(eventname) = 'x'",
    ];
    for b in bad {
        let r = std::panic::catch_unwind(|| check_athena(b, &cols));
        assert!(r.is_err(), "accepted: {b}");
    }
    check_athena(
        "SELECT *\nFROM cloudtrail_logs\nWHERE COALESCE(lower(eventname) LIKE 'a\\_%' ESCAPE '\\', FALSE)",
        &cols,
    );
}
