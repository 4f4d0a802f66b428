//! The two ways of finding a record's candidate rules — from its raw bytes,
//! or by parsing it — give the same verdicts: the matcher picks between them
//! by speed alone, so a difference would make results depend on timing.

use std::path::PathBuf;

use sigil_compiler::{catalog::Catalog, ir, Config};
use sigil_runtime::{Dispatch, InputLogSource, Program};

#[path = "support/real_records.rs"]
mod real_records;
use real_records::real_records;

/// Each record, and variants that reach the raw path's special cases: the
/// `eventName` in other letter cases, spelled with an escape, and with a
/// non-ASCII letter (which a raw search cannot fold).
fn variants() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for r in real_records() {
        let text = String::from_utf8_lossy(&r).into_owned();
        if let Some(at) = text.find("\"eventName\":\"") {
            let name_at = at + "\"eventName\":\"".len();
            let end = text[name_at..]
                .find('"')
                .map_or(text.len(), |e| name_at + e);
            let name = &text[name_at..end];
            let mut variant = |name: String| {
                out.push(format!("{}{name}{}", &text[..name_at], &text[end..]).into_bytes())
            };
            variant(name.to_uppercase());
            variant(name.to_lowercase());
            if let Some(first) = name.chars().next() {
                variant(format!(
                    "\\u{:04x}{}",
                    first as u32,
                    &name[first.len_utf8()..]
                ));
            }
            variant(name.replace('k', "\u{212a}"));
        }
        out.push(r);
    }
    out
}

/// The verdicts of both ways on every record, compared; returns how many
/// matches were compared.
fn compare(name: &str, program: &Program, records: &[Vec<u8>]) -> usize {
    let mut compared = 0;
    for validated in [false, true] {
        let matcher = |how| {
            let m = program.matcher().dispatch(how);
            if validated {
                m.assume_valid_json()
            } else {
                m
            }
        };
        let (mut raw, mut parsed) = (matcher(Dispatch::Raw), matcher(Dispatch::Parsed));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, r) in records.iter().enumerate() {
            let x = raw.matches(r, &mut a).map(|_| a.clone());
            let y = parsed.matches(r, &mut b).map(|_| b.clone());
            assert_eq!(x, y, "{name}: record {i} (validated: {validated})");
            compared += a.len();
        }
    }
    compared
}

fn program(files: &[PathBuf]) -> Program {
    let catalog = Catalog::load(files, &Config::default());
    let (ir, _) = ir::from_catalog(&catalog);
    Program::build(&ir, &InputLogSource::default()).0
}

#[test]
fn raw_and_parsed_dispatch_give_the_same_verdicts() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = [
        manifest.join("../../shared/corpus/sigmahq/rules/cloud/aws/cloudtrail"),
        manifest.join("../rules/aws/cloudtrail"),
    ]
    .iter()
    .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
    .map(|e| e.path())
    .filter(|p| p.extension().is_some_and(|e| e == "yml"))
    .collect();
    files.sort();
    let real = real_records();
    assert!(real.len() > 800, "too few records: {}", real.len());
    // One program per rule file, so that a rule that must see every record
    // (which makes every record parsed, whatever the dispatch) hides no
    // other; then one of every such file, over the records' variants too.
    let mut raw_capable = Vec::new();
    let mut compared = 0;
    for file in &files {
        let program = program(std::slice::from_ref(file));
        if program.plan().contains(" 0 on every record") {
            compared += compare(&file.display().to_string(), &program, &real);
            raw_capable.push(file.clone());
        }
    }
    assert!(
        raw_capable.len() > 50,
        "only {} files dispatch raw",
        raw_capable.len()
    );
    compared += compare("all files", &program(&raw_capable), &variants());
    assert!(compared > 1000, "only {compared} matches compared");
}
