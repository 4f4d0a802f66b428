//! Inputs that broke the invariants of the cargo-fuzz targets in
//! `compiler/fuzz` (see `docs/fuzzing.md`), kept so the bugs stay fixed. They
//! were built by hand and confirmed with the target binaries: libFuzzer's own
//! inputs stayed small.

use sigil_compiler::catalog::Catalog;
use sigil_compiler::rule::Search;
use sigil_compiler::source::{LineCol, Source};
use sigil_compiler::syntax::condition::{parse, ConditionError, MAX_CONDITION_DEPTH};
use sigil_compiler::Config;

/// The `condition_parser` invariant: what parses prints back to text that
/// parses to an equal expression.
fn assert_round_trips(text: &str) {
    let Ok(expr) = parse(text, &mut Vec::new()) else {
        return;
    };
    let printed = expr.to_string();
    match parse(&printed, &mut Vec::new()) {
        Ok(again) => assert_eq!(again, expr, "{text:?} printed as {printed:?}"),
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e:?}"),
    }
}

/// 64 `not`s are within the limit, but the printed form wraps the `and` in
/// parentheses, one level more: it used to parse and then fail to re-parse.
#[test]
fn fuzz_condition_parser_deep_not_under_and_round_trip() {
    // 263 bytes; `-minimize_crash` could not shorten it.
    let text = format!("{}a and b", "not ".repeat(MAX_CONDITION_DEPTH));
    assert_round_trips(&text);
    assert!(matches!(
        parse(&text, &mut Vec::new()),
        Err(ConditionError::TooDeep { span }) if span.start == 4 * (MAX_CONDITION_DEPTH - 1)
    ));
    // Exactly at the limit in both forms: still accepted.
    let text = format!("{}a", "not ".repeat(MAX_CONDITION_DEPTH));
    assert_round_trips(&text);
    assert!(parse(&text, &mut Vec::new()).is_ok());
    let text = format!("{}a and b", "not ".repeat(MAX_CONDITION_DEPTH - 1));
    assert_round_trips(&text);
    assert!(parse(&text, &mut Vec::new()).is_ok());
}

/// Precedence leaves `a or b and (...)` one parenthesis deep but two groups
/// deep, so the printed form nests about twice as deep as the text.
#[test]
fn fuzz_condition_parser_implicit_groups_round_trip() {
    let depth = MAX_CONDITION_DEPTH / 2 + 1;
    let text = format!("{}x{}", "a or b and (".repeat(depth), ")".repeat(depth));
    assert_round_trips(&text);
    assert!(matches!(
        parse(&text, &mut Vec::new()),
        Err(ConditionError::TooDeep { .. })
    ));
    let depth = MAX_CONDITION_DEPTH / 2 - 1;
    let text = format!("{}x{}", "a or b and (".repeat(depth), ")".repeat(depth));
    assert_round_trips(&text);
    assert!(parse(&text, &mut Vec::new()).is_ok());
}

/// Character-column ↔ byte-offset conversion walked from the line start, so a
/// long one-line flow collection (thousands of YAML events on one line) took
/// quadratic time: 42 KB of `[a,a,...]` ran for 43 s under the fuzzer.
#[test]
fn fuzz_rule_loader_long_flow_line_is_not_quadratic() {
    let head = "title: t\nlogsource: {product: aws}\ndetection:\n  keywords: [";
    let n = 100_000;
    let text = format!(
        "{head}{}é]\n  condition: keywords\n  bad: [x, {{]\n",
        "a,".repeat(n)
    );
    let started = std::time::Instant::now();
    let catalog = Catalog::from_bytes("long.yml", text.as_bytes(), &Config::default());
    for d in catalog.diagnostics().iter() {
        let _ = d.range();
    }
    let elapsed = started.elapsed();
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
    // The YAML error on the last line is still placed right.
    let d = catalog
        .diagnostics()
        .iter()
        .find(|d| d.code().id == "S100")
        .expect("a YAML syntax error");
    let (start, _) = d.range().expect("a position");
    assert_eq!(start.line, 6, "{d:?}");
}

/// The fast position conversions agree with walking the text character by
/// character, on lines longer than the internal step and with multi-byte
/// characters on both sides of it.
#[test]
fn fuzz_rule_loader_positions_match_a_character_walk() {
    let text = format!(
        "ab\n{}é{}\n\n{}\nz",
        "x".repeat(63),
        "€y".repeat(70),
        "😀".repeat(130)
    );
    let source = Source::new("p.yml", text.as_str());
    let lines: Vec<&str> = text.split('\n').collect();
    let mut line_start = 0;
    for (l, line) in lines.iter().enumerate() {
        let rest = &text[line_start..];
        for col in 0..line.chars().count() + 3 {
            let want = rest
                .char_indices()
                .nth(col)
                .map_or(text.len(), |(i, _)| line_start + i);
            assert_eq!(
                source.offset_of(l + 1, col),
                want,
                "line {} col {col}",
                l + 1
            );
        }
        line_start += line.len() + 1;
    }
    assert_eq!(source.offset_of(0, 0), text.len());
    assert_eq!(source.offset_of(lines.len() + 1, 0), text.len());
    for offset in 0..=text.len() + 2 {
        let clamped = offset.min(text.len());
        let before = &text.as_bytes()[..clamped];
        let line = before.iter().filter(|&&b| b == b'\n').count();
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = text.get(start..clamped).map_or(0, |p| p.chars().count()) + 1;
        let want = LineCol {
            line: line + 1,
            column,
        };
        assert_eq!(source.line_col(offset), want, "offset {offset}");
    }
}

fn windash_rule(title: &str, values: usize) -> String {
    let list = vec!["'-a -b -c -d -e'"; values].join(", ");
    format!(
        "title: {title}\nlogsource: {{product: aws}}\ndetection:\n  sel:\n    \
         cmd|windash|contains: [{list}]\n  condition: sel\n"
    )
}

/// Each `-a -b -c -d -e` has 5^5 = 3,125 windash variants, under the 4,096
/// bound per value, so a 946-byte rule of 50 of them took 33 s under the
/// fuzzer (pairwise deduplication of each value's variants) and 63 KB of them
/// took 17 s and 2.6 GB in a release `sigil check`. The values of one file now
/// share a bound, across its documents too.
#[test]
fn fuzz_rule_loader_windash_variants_bounded_per_file() {
    let started = std::time::Instant::now();
    let one = windash_rule("one", 3_700);
    let many: Vec<String> = (0..40).map(|i| windash_rule(&format!("r{i}"), 3)).collect();
    let many = many.join("---\n");
    for (text, documents_ok) in [(one.as_str(), 0), (many.as_str(), 6)] {
        let catalog = Catalog::from_bytes("wd.yml", text.as_bytes(), &Config::default());
        let over: Vec<_> = catalog
            .diagnostics()
            .iter()
            .filter(|d| d.code().id == "S417")
            .collect();
        assert!(!over.is_empty());
        assert!(over[0].message().contains("together"), "{:?}", over[0]);
        assert_eq!(catalog.rules().count(), documents_ok);
    }
    // A rule well under the bound still expands in full.
    let catalog = Catalog::from_bytes(
        "ok.yml",
        windash_rule("ok", 20).as_bytes(),
        &Config::default(),
    );
    assert!(!catalog.diagnostics().has_errors());
    let rule = catalog.rules().next().expect("the rule lowers");
    let mut search = &rule.detection.identifiers[0].search;
    while let Search::AllOf(items) | Search::AnyOf(items) = search {
        search = &items[0];
    }
    let Search::Test(test) = search else {
        unreachable!()
    };
    assert_eq!(test.values.len(), 20);
    assert!(test.values.iter().all(|v| v.alternatives.len() == 3_125));
    let elapsed = started.elapsed();
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
}

/// The alias-expansion budget was reset by every `---`, so a file of many
/// small alias-heavy documents (143 bytes → 11,000 nodes each) grew without
/// bound: 64 KB held 1.1 GB under the fuzzer. The budget is now per file.
#[test]
fn fuzz_rule_loader_alias_budget_is_per_file() {
    let doc = "a: &a [x, x, x, x, x, x, x, x, x, x]\n\
               b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
               c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n\
               d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
    let alias_errors = |text: &str| {
        let catalog = Catalog::from_bytes("a.yml", text.as_bytes(), &Config::default());
        catalog
            .diagnostics()
            .iter()
            .filter(|d| d.code().id == "S106")
            .count()
    };
    assert_eq!(alias_errors(doc), 0);
    assert_eq!(alias_errors(&[doc; 12].join("---\n")), 1);
}
