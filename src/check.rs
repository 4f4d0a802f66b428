//! `sigil check` and `sigil explain`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::{codes, Diagnostics, Severity};
use sigil_compiler::source::Source;
use sigil_compiler::{explain, load_placeholders, Config};

use crate::CheckFormat;
use sigil::render;

/// Exit codes (DESIGN.md).
pub const EXIT_CLEAN: u8 = 0;
/// Findings or failures.
pub const EXIT_FINDINGS: u8 = 1;
/// Usage or I/O error.
pub const EXIT_USAGE: u8 = 2;

/// Builds the compiler configuration from CLI options; returns diagnostics on failure.
pub fn config(placeholders: Option<PathBuf>) -> Result<Config, Diagnostics> {
    let mut config = Config::default();
    if let Some(path) = placeholders {
        let mut diags = Diagnostics::new();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let source = Arc::new(Source::new(&path, ""));
                diags.push(
                    sigil_compiler::diag::Diagnostic::new(
                        codes::IO_ERROR,
                        format!("cannot read placeholder file `{}`: {e}", path.display()),
                    )
                    .in_file(&source),
                );
                return Err(diags);
            }
        };
        let source = Arc::new(Source::new(&path, text));
        match load_placeholders(&source, &mut diags) {
            Some(table) if !diags.has_errors() => config = config.with_placeholders(table),
            _ => return Err(diags),
        }
    }
    Ok(config)
}

fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        paths
    }
}

pub fn run_check(
    paths: Vec<PathBuf>,
    format: Option<CheckFormat>,
    placeholders: Option<PathBuf>,
    deny_warnings: bool,
) -> u8 {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        CheckFormat::Human
    } else {
        CheckFormat::Json
    });
    let config = match config(placeholders) {
        Ok(c) => c,
        Err(diags) => {
            let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
            return EXIT_USAGE;
        }
    };
    let started = std::time::Instant::now();
    let mut catalog = Catalog::load(&default_paths(paths), &config);
    let files = catalog.file_count();
    let documents = catalog.documents().count();
    let diags = catalog.take_diagnostics().into_sorted();
    let io_failure = diags.iter().any(|d| d.code() == codes::IO_ERROR);
    let errors = diags
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = diags
        .iter()
        .filter(|d| d.severity() == Severity::Warning)
        .count();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match format {
        CheckFormat::Human => render::human(&mut out, diags.iter()),
        CheckFormat::Json => render::json_lines(&mut out, diags.iter()),
        CheckFormat::Sarif => render::sarif(&mut out, &diags),
    };
    if written.and_then(|_| out.flush()).is_err() {
        // A closed stdout (e.g. `| head`) is a clean way to stop.
        return if errors > 0 {
            EXIT_FINDINGS
        } else {
            EXIT_CLEAN
        };
    }
    eprintln!(
        "checked {files} files, {documents} documents in {:.2}s: {errors} errors, {warnings} warnings",
        started.elapsed().as_secs_f64()
    );
    if io_failure {
        EXIT_USAGE
    } else if errors > 0 || (deny_warnings && warnings > 0) {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

pub fn run_explain(
    rule: PathBuf,
    with: Vec<PathBuf>,
    placeholders: Option<PathBuf>,
    event: Option<PathBuf>,
) -> u8 {
    let config = match config(placeholders) {
        Ok(c) => c,
        Err(diags) => {
            let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
            return EXIT_USAGE;
        }
    };
    let mut paths = vec![rule.clone()];
    paths.extend(with);
    let mut catalog = Catalog::load(&paths, &config);
    let diags = catalog.take_diagnostics().into_sorted();
    let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
    if diags.iter().any(|d| d.code() == codes::IO_ERROR) {
        return EXIT_USAGE;
    }
    let mut out = std::io::stdout().lock();
    let mut shown = 0;
    for doc in catalog.documents() {
        if doc.meta().source.path() != rule.as_path() {
            continue;
        }
        if shown > 0 {
            let _ = writeln!(out);
        }
        if out
            .write_all(explain::explain(doc, &catalog).as_bytes())
            .is_err()
        {
            return EXIT_CLEAN;
        }
        shown += 1;
    }
    if shown == 0 {
        eprintln!("no usable rule in `{}`", rule.display());
        return EXIT_FINDINGS;
    }
    match event {
        Some(path) => explain_events(&catalog, &rule, &path, &mut out),
        None => EXIT_CLEAN,
    }
}

/// Runs the rule file's detection rules over each record of `path` and
/// prints every field test's outcome.
fn explain_events(
    catalog: &Catalog,
    rule: &std::path::Path,
    path: &std::path::Path,
    out: &mut impl Write,
) -> u8 {
    use sigil_runtime::input::{InputSource, RecordReader};
    let (ir, _) = sigil_compiler::ir::from_catalog(catalog);
    let input = sigil_runtime::InputLogSource {
        product: None,
        service: None,
        category: None,
    };
    let origin = rule.display().to_string();
    // The file's rules, each followed by one pseudo-rule per search
    // identifier, all whatever their logsource: the author asked about
    // these records.
    let mut all = sigil_compiler::ir::Program::default();
    let mut groups: Vec<(usize, Vec<(String, usize)>)> = Vec::new();
    for r in catalog.rules() {
        if r.meta.origin().split('#').next() != Some(origin.as_str()) {
            continue;
        }
        let Some(full) = ir.rules.iter().find(|x| x.info.origin == r.meta.origin()) else {
            continue;
        };
        let mut full = full.clone();
        full.logsource = Default::default();
        let at = all.rules.len();
        all.rules.push(full.clone());
        let mut idents = Vec::new();
        for (name, expr) in sigil_compiler::ir::identifier_exprs(r) {
            idents.push((name.clone(), all.rules.len()));
            let mut pseudo = full.clone();
            pseudo.info.title = format!("identifier `{name}`");
            pseudo.expr = expr;
            all.rules.push(pseudo);
        }
        groups.push((at, idents));
    }
    let (program, problems) = sigil_runtime::Program::build(&all, &input);
    for p in &problems {
        eprintln!("error: rule `{}` cannot run: {}", p.rule, p.message);
    }
    let source = if path.as_os_str() == "-" {
        InputSource::Stdin
    } else {
        InputSource::File(path.to_path_buf())
    };
    let mut reader = match RecordReader::open(&source) {
        Ok(r) => r,
        Err(d) => {
            eprintln!("error: {}: {}", d.file, d.reason);
            return EXIT_USAGE;
        }
    };
    let mut matcher = program.matcher();
    let mut any = false;
    while let Some(batch) = reader.next_batch(4 << 20) {
        for d in &batch.damage {
            eprintln!(
                "warning: skipped damaged input: {}: line {}: {}",
                d.file, d.line, d.reason
            );
        }
        for rec in &batch.records {
            let Some(bytes) = batch.data.get(rec.start..rec.end) else {
                continue;
            };
            for (at, idents) in &groups {
                let Some(r) = program.by_ir_index(*at) else {
                    continue;
                };
                match matcher.explain(bytes, r) {
                    Ok((verdict, _)) => {
                        any |= verdict;
                        let _ = writeln!(
                            out,
                            "\nrecord {} (line {}): {} {}",
                            rec.index,
                            rec.line,
                            program.info(r).title,
                            if verdict { "MATCHES" } else { "does not match" }
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "\nrecord {} (line {}): invalid JSON at byte {}: {}",
                            rec.index, rec.line, e.offset, e.reason
                        );
                        continue;
                    }
                }
                for (name, ir_index) in idents {
                    let Some(i) = program.by_ir_index(*ir_index) else {
                        continue;
                    };
                    if let Ok((held, trace)) = matcher.explain(bytes, i) {
                        let _ = writeln!(
                            out,
                            "  identifier `{name}` {}",
                            if held { "held" } else { "did not hold" }
                        );
                        for t in trace {
                            let _ = writeln!(out, "    {t}");
                        }
                    }
                }
            }
        }
    }
    if any {
        EXIT_CLEAN
    } else {
        EXIT_FINDINGS
    }
}
