//! `docs/diagnostics.md` must be exactly what the code table generates.

use std::path::PathBuf;

#[test]
fn diagnostics_doc_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md");
    let generated = sigil_compiler::diag::codes::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/diagnostics.md");
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "docs/diagnostics.md is stale: run with UPDATE_DOCS=1"
    );
}

#[test]
fn codes_are_unique_and_well_formed() {
    let all = sigil_compiler::diag::codes::ALL;
    for (i, c) in all.iter().enumerate() {
        assert!(c.id.len() == 4 && c.id.starts_with('S'), "{}", c.id);
        assert!(
            all[..i].iter().all(|o| o.id != c.id && o.name != c.name),
            "duplicate {}",
            c.id
        );
    }
}
