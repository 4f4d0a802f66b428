//! The semantics corpus: every `*.jsonl` file under `tests/semantics/` holds
//! cases of (detection section, record, expected verdict), one JSON object a
//! line (`#` lines are comments). Each case's detection is wrapped into a
//! full `CloudTrail` rule, compiled through catalog → IR → matcher program, and
//! matched against the record's exact bytes. `docs/semantics.md` says which
//! decision each case pins.
//!
//! Case fields:
//! - `name` (unique), `rule` (the `detection` section as YAML text);
//! - `event`: a JSON object (re-serialised by `serde_json`, so key order
//!   and number text are not kept) or a string used verbatim as the record
//!   (exact number text, key order, whitespace, escapes);
//! - `match`: the verdict, or instead `error`: a code the rule must be
//!   rejected with (by `check`, or by lowering to IR);
//! - optional `warning`: a code `check` must also report;
//! - optional `why`: a note; optional `known_bug`: the matcher disagrees
//!   with the documented semantics (reported, not failed; a known bug that
//!   starts passing fails the test so the marker gets removed).

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use sigil_compiler::catalog::Catalog;
use sigil_compiler::{ir, Config};
use sigil_runtime::{InputLogSource, Program};

/// Fewest cases the corpus may hold.
const MIN_CASES: usize = 320;

enum Expect {
    Match(bool),
    Error(String),
}

struct Case {
    origin: String,
    name: String,
    rule: String,
    record: Option<String>,
    expect: Expect,
    warning: Option<String>,
    known_bug: Option<String>,
}

fn text_field(obj: &serde_json::Map<String, Value>, key: &str, origin: &str) -> Option<String> {
    match obj.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => panic!("{origin}: `{key}` must be a string, found {other}"),
    }
}

fn parse_case(origin: String, line: &str) -> Case {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{origin}: not JSON: {e}"));
    let Value::Object(obj) = value else {
        panic!("{origin}: a case must be a JSON object");
    };
    for key in obj.keys() {
        assert!(
            [
                "name",
                "rule",
                "event",
                "match",
                "error",
                "warning",
                "why",
                "known_bug"
            ]
            .contains(&key.as_str()),
            "{origin}: unknown key `{key}`"
        );
    }
    let name = text_field(&obj, "name", &origin).unwrap_or_else(|| panic!("{origin}: no `name`"));
    let rule = text_field(&obj, "rule", &origin).unwrap_or_else(|| panic!("{origin}: no `rule`"));
    let record = match obj.get("event") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(other) => panic!("{origin}: `event` must be an object or a string, found {other}"),
    };
    let expect = match (obj.get("match"), text_field(&obj, "error", &origin)) {
        (Some(Value::Bool(b)), None) => {
            assert!(
                record.is_some(),
                "{origin}: a `match` case needs an `event`"
            );
            Expect::Match(*b)
        }
        (None, Some(code)) => Expect::Error(code),
        _ => panic!("{origin}: give exactly one of `match` (a boolean) and `error`"),
    };
    let warning = text_field(&obj, "warning", &origin);
    let known_bug = text_field(&obj, "known_bug", &origin);
    Case {
        origin,
        name,
        rule,
        record,
        expect,
        warning,
        known_bug,
    }
}

fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/semantics");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/semantics")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in &paths {
        let file = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(path).expect("UTF-8 case file");
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            cases.push(parse_case(format!("{file}:{}", i + 1), line));
        }
    }
    cases
}

/// The full rule text around a case's detection section.
fn rule_text(case: &Case) -> String {
    support::rule_text(&case.name, &case.rule)
}

fn codes(diags: &sigil_compiler::diag::Diagnostics, errors_only: bool) -> Vec<String> {
    diags
        .iter()
        .filter(|d| !errors_only || d.is_error())
        .map(|d| format!("{} ({})", d.code().id, d.message()))
        .collect()
}

/// Runs one case; `Err` explains a wrong outcome.
fn run(case: &Case) -> Result<(), String> {
    let text = rule_text(case);
    let path = format!("tests/semantics/{}.yml", case.origin.replace(':', "_"));
    let catalog = Catalog::from_texts(&[(path.as_str(), text.as_str())], &Config::default());
    let (program, ir_diags) = ir::from_catalog(&catalog);
    if let Some(code) = &case.warning {
        if !catalog.diagnostics().iter().any(|d| d.code().id == code) {
            return Err(format!(
                "expected diagnostic {code}, got {:?}",
                codes(catalog.diagnostics(), false)
            ));
        }
    }
    let mut errors = codes(catalog.diagnostics(), true);
    errors.extend(codes(&ir_diags, true));
    match &case.expect {
        Expect::Error(code) => {
            let hit = catalog
                .diagnostics()
                .iter()
                .chain(ir_diags.iter())
                .any(|d| d.is_error() && d.code().id == code);
            if !hit {
                return Err(format!("expected error {code}, got errors {errors:?}"));
            }
            if !program.rules.is_empty() {
                return Err(format!(
                    "expected the rule to be rejected with {code}, but it was lowered to IR"
                ));
            }
            Ok(())
        }
        Expect::Match(expected) => {
            if !errors.is_empty() || program.rules.len() != 1 {
                return Err(format!(
                    "rule rejected: {errors:?} ({} rules in IR)",
                    program.rules.len()
                ));
            }
            let (matcher_program, problems) = Program::build(&program, &InputLogSource::default());
            if !problems.is_empty() {
                let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
                return Err(format!("matcher build failed: {messages:?}"));
            }
            let record = case.record.as_deref().unwrap_or_default().as_bytes();
            let mut matcher = matcher_program.matcher();
            let mut hits = Vec::new();
            matcher
                .matches(record, &mut hits)
                .map_err(|e| format!("record rejected at byte {}: {}", e.offset, e.reason))?;
            let got = hits.contains(&0);
            let (explained, trace) = matcher
                .explain(record, 0)
                .map_err(|e| format!("explain rejected the record: {}", e.reason))?;
            if got != explained {
                return Err(format!(
                    "matches() says {got} but explain() evaluates {explained} (prefilter disagrees); trace {trace:?}"
                ));
            }
            if got != *expected {
                return Err(format!(
                    "expected {expected}, got {got}; ir {:?}; trace {trace:?}",
                    program.rules[0].expr
                ));
            }
            Ok(())
        }
    }
}

#[test]
fn semantics_corpus() {
    let cases = load_cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} semantics cases (want {MIN_CASES})",
        cases.len()
    );
    let mut names = BTreeSet::new();
    let duplicates: Vec<&str> = cases
        .iter()
        .filter(|c| !names.insert(c.name.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        duplicates.is_empty(),
        "duplicate case names: {duplicates:?}"
    );

    let mut failures = Vec::new();
    let mut known = Vec::new();
    for case in &cases {
        let result = run(case);
        match (&case.known_bug, result) {
            (None, Ok(())) => {}
            (None, Err(why)) => failures.push(format!("{} `{}`: {why}", case.origin, case.name)),
            (Some(bug), Err(why)) => {
                known.push(format!("{} `{}` [{bug}]: {why}", case.origin, case.name));
            }
            (Some(bug), Ok(())) => failures.push(format!(
                "{} `{}` now passes: remove its known_bug marker ({bug})",
                case.origin, case.name
            )),
        }
    }
    println!(
        "{} semantics cases, {} failing, {} known bugs",
        cases.len(),
        failures.len(),
        known.len()
    );
    for k in &known {
        println!("known bug: {k}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `docs/semantics.md` names its pinning cases on `Pinned by:` lines
/// (`` `file.jsonl`: `case`, `case`; ``…); every one must exist, and every
/// known bug must be listed on the page.
#[test]
fn semantics_doc_names_existing_cases() {
    let cases = load_cases();
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/semantics.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/semantics.md");
    let known: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| {
            let file = c.origin.split(':').next().unwrap_or_default().to_string();
            (file, c.name.clone())
        })
        .collect();
    let mut missing = Vec::new();
    let mut pinned = 0;
    for line in doc.lines().filter(|l| l.starts_with("Pinned by:")) {
        let mut file = None;
        for (i, token) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            if token.ends_with(".jsonl") {
                file = Some(token.to_string());
                continue;
            }
            let Some(f) = &file else {
                missing.push(format!("`{token}` has no file before it"));
                continue;
            };
            pinned += 1;
            if !known.contains(&(f.clone(), token.to_string())) {
                missing.push(format!("{f}: `{token}`"));
            }
        }
    }
    assert!(pinned > 0, "docs/semantics.md pins no case");
    assert!(
        missing.is_empty(),
        "docs/semantics.md names cases that do not exist:\n{}",
        missing.join("\n")
    );
    let unlisted: Vec<&str> = cases
        .iter()
        .filter(|c| c.known_bug.is_some() && !doc.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        unlisted.is_empty(),
        "known bugs missing from docs/semantics.md: {unlisted:?}"
    );
}
