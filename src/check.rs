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

pub fn run_explain(rule: PathBuf, with: Vec<PathBuf>, placeholders: Option<PathBuf>) -> u8 {
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
    EXIT_CLEAN
}
