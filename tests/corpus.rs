//! Whole-corpus test: every SigmaHQ rule in `../shared/corpus/sigmahq` loads
//! and checks without a single error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::Severity;
use sigil_compiler::Config;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/sigmahq")
}

#[test]
fn sigmahq_corpus_loads_with_zero_errors() {
    let catalog = Catalog::load(&[corpus()], &Config::default());
    assert_eq!(catalog.file_count(), 3780, "corpus file count");
    assert_eq!(catalog.documents().count(), 3780, "every document lowers");
    let errors: Vec<String> = catalog
        .diagnostics()
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .map(|d| {
            let pos = d
                .range()
                .map(|(s, _)| format!("{}:{}", s.line, s.column))
                .unwrap_or_default();
            format!(
                "{}:{pos} {} {}",
                d.path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                d.code().id,
                d.message()
            )
        })
        .collect();
    assert!(
        errors.is_empty(),
        "{} errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    let mut by_code: BTreeMap<&str, usize> = BTreeMap::new();
    for d in catalog.diagnostics().iter() {
        *by_code.entry(d.code().id).or_default() += 1;
    }
    // Warnings are expected only where a rule really is questionable; pin the
    // counts so a lint that starts firing across the corpus is noticed.
    let expected: BTreeMap<&str, usize> = [("S409", 35), ("S411", 8), ("S413", 17)]
        .into_iter()
        .collect();
    assert_eq!(by_code, expected);
}

#[test]
fn cloudtrail_rules_are_clean() {
    let dir = corpus().join("rules/cloud/aws/cloudtrail");
    let catalog = Catalog::load(&[dir], &Config::default());
    assert_eq!(catalog.rules().count(), 57);
    assert!(
        catalog.diagnostics().is_empty(),
        "{:?}",
        catalog.diagnostics()
    );
}
