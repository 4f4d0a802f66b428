//! The malformed-rule suite: every file under `tests/diagnostics/` declares the
//! diagnostics it must produce in `# expect: CODE LINE:COL` header lines, and
//! the test asserts exactly that set (every problem reported, one message per
//! problem, at the right place). The rendered caret output of each case is an
//! insta snapshot, so message quality is reviewed too.

use std::path::Path;

use sigil::render;
use sigil_compiler::catalog::Catalog;
use sigil_compiler::Config;

fn expected(text: &str) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|spec| {
            let (code, pos) = spec.trim().split_once(' ').expect("`CODE LINE:COL`");
            let (line, col) = pos.trim().split_once(':').expect("LINE:COL");
            (
                code.to_string(),
                line.parse().expect("line"),
                col.parse().expect("col"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn malformed_rules_report_code_and_position() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 100, "only {} malformed cases", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).expect("utf-8 case file");
        let want = expected(&text);
        assert!(!want.is_empty(), "{name} declares no `# expect:` line");
        let rel = format!("tests/diagnostics/{name}");
        let catalog = Catalog::from_texts(&[(rel.as_str(), text.as_str())], &Config::default());
        let diags = catalog.diagnostics().clone().into_sorted();
        let mut got: Vec<(String, usize, usize)> = diags
            .iter()
            .map(|d| {
                let (line, col) = d.range().map(|(s, _)| (s.line, s.column)).unwrap_or((0, 0));
                (d.code().id.to_string(), line, col)
            })
            .collect();
        got.sort();
        if got != want {
            failures.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
        let mut rendered = Vec::new();
        render::human(&mut rendered, diags.iter()).expect("render");
        insta::assert_snapshot!(
            name.trim_end_matches(".yml").to_string(),
            String::from_utf8_lossy(&rendered)
        );
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
