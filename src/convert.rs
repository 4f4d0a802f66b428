//! `sigil convert`: the catalog as Splunk SPL or Athena SQL.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use sigil::render;
use sigil_compiler::backend::{self, spl, Mapping, Options, Target};
use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::{Diagnostic, Diagnostics, Severity};
use sigil_compiler::ir;
use sigil_compiler::source::Source;

use crate::check::{config, EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE};

/// `--target`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum ConvertTarget {
    /// Splunk SPL (`sourcetype=aws:cloudtrail`).
    Splunk,
    /// Athena SQL (Trino, engine 3) over the CloudTrail table.
    Athena,
}

/// `--format`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum ConvertFormat {
    /// One query per rule, separated by blank lines (`;`-terminated for Athena).
    Plain,
    /// One JSON object per rule: {"rule", "target", "query"|"error"}.
    Json,
    /// Athena: `CREATE OR REPLACE VIEW` statements.
    View,
    /// Splunk: `savedsearches.conf` stanzas.
    Savedsearches,
}

/// Options of `sigil convert`.
#[derive(clap::Args)]
pub struct ConvertOptions {
    /// Rule files or directories (recursive). Default: `rules/`.
    pub paths: Vec<PathBuf>,
    /// The query language.
    #[arg(long, value_enum)]
    pub target: ConvertTarget,
    /// Write into this directory instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "plain")]
    pub format: ConvertFormat,
    /// YAML field-mapping file (docs/backends.md).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Only events at or after this ISO-8601 time (Athena: `eventtime >=`; Splunk: `earliest=`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this ISO-8601 time (Athena: `eventtime <`; Splunk: `latest=`).
    #[arg(long)]
    pub until: Option<String>,
    /// YAML file of `expand` placeholder values.
    #[arg(long)]
    pub placeholders: Option<PathBuf>,
    /// Exit with 1 when a rule cannot be expressed on the target.
    #[arg(long)]
    pub fail_on_unsupported: bool,
}

pub fn run(o: ConvertOptions) -> u8 {
    let target = match o.target {
        ConvertTarget::Splunk => Target::Splunk,
        ConvertTarget::Athena => Target::Athena,
    };
    match (target, o.format) {
        (Target::Splunk, ConvertFormat::View) | (Target::Athena, ConvertFormat::Savedsearches) => {
            eprintln!(
                "error: --format {:?} does not apply to --target {}",
                o.format,
                target.name()
            );
            return EXIT_USAGE;
        }
        _ => {}
    }
    if target == Target::Splunk {
        for t in [&o.since, &o.until].into_iter().flatten() {
            if spl::epoch_millis(t).is_none() {
                eprintln!(
                    "error: `{t}` is not an ISO-8601 time (`2024-01-15`, `2024-01-15T10:00:00Z`)"
                );
                return EXIT_USAGE;
            }
        }
    }
    let config = match config(o.placeholders) {
        Ok(c) => c,
        Err(diags) => {
            let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
            return EXIT_USAGE;
        }
    };
    let mut mdiags = Diagnostics::new();
    let mapping = match &o.mapping {
        Some(p) => Mapping::from_file(p, &mut mdiags),
        None => Mapping::default(),
    };
    if mdiags.has_errors() {
        let _ = render::human(&mut std::io::stderr().lock(), mdiags.iter());
        return EXIT_USAGE;
    }
    let started = std::time::Instant::now();
    let paths = if o.paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        o.paths
    };
    let mut catalog = Catalog::load(&paths, &config);
    let (program, ir_diags) = ir::from_catalog(&catalog);
    let mut diags = catalog.take_diagnostics();
    for d in ir_diags.iter() {
        diags.push(d.clone());
    }
    let options = Options {
        since: o.since,
        until: o.until,
    };
    let view = o.format == ConvertFormat::View;
    let mut out_text = String::new();
    let (mut ok, mut unsupported) = (0usize, 0usize);
    // Correlation rules the target cannot express get an S500 diagnostic
    // (and a JSON error line), never a query that ignores its window.
    let correlations = program.correlations.iter().map(|c| {
        (
            &c.info,
            c.timespan_secs,
            if view {
                Err(backend::Unsupported::construct(
                    "correlation rules are not exported as Athena views yet",
                ))
            } else {
                backend::convert_correlation(c, &program, target, &mapping, &options)
            },
        )
    });
    let results: Vec<(&sigil_compiler::ir::RuleInfo, u64, backend::Out)> = program
        .rules
        .iter()
        .map(|rule| {
            (
                &rule.info,
                0,
                backend::convert_rule(rule, target, &mapping, &options, view),
            )
        })
        .chain(correlations)
        .collect();
    for (info, window_secs, result) in &results {
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                unsupported += 1;
                let source = Arc::new(Source::new(info.origin.clone(), ""));
                diags.push(
                    Diagnostic::new(
                        e.diag_code(),
                        format!(
                            "rule `{}`: {} has no query: {}",
                            info.title,
                            target.name(),
                            e.message
                        ),
                    )
                    .in_file(&source),
                );
            }
        }
        match o.format {
            ConvertFormat::Json => {
                out_text.push_str(&backend::json_line(info, target.name(), result).to_string());
                out_text.push('\n');
            }
            ConvertFormat::Savedsearches => {
                if let Ok(q) = &result {
                    out_text.push_str(&spl::saved_search(
                        info,
                        q,
                        &mapping.splunk.cron,
                        *window_secs,
                    ));
                    out_text.push('\n');
                }
            }
            ConvertFormat::Plain | ConvertFormat::View => {
                if let Ok(q) = &result {
                    let comment = if target == Target::Athena {
                        "--"
                    } else {
                        "```"
                    };
                    let end = if target == Target::Athena { "" } else { " ```" };
                    out_text.push_str(&format!(
                        "{comment} {} ({}){end}\n",
                        info.title.replace('\n', " "),
                        info.origin
                    ));
                    out_text.push_str(q);
                    out_text.push_str(if target == Target::Athena {
                        ";\n\n"
                    } else {
                        "\n\n"
                    });
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let diags = diags.into_sorted();
    let errors = diags
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let _ = render::human(
        &mut std::io::stderr().lock(),
        diags.iter().filter(|d| d.severity() == Severity::Error),
    );
    let written = match &o.output {
        Some(dir) => {
            let ext = match (target, o.format) {
                (_, ConvertFormat::Json) => "jsonl",
                (_, ConvertFormat::Savedsearches) => "conf",
                (Target::Athena, _) => "sql",
                (Target::Splunk, _) => "spl",
            };
            let file = if o.format == ConvertFormat::Savedsearches {
                dir.join("savedsearches.conf")
            } else {
                dir.join(format!("sigil-{}.{ext}", target.name()))
            };
            std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&file, &out_text))
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            lock.write_all(out_text.as_bytes())
                .and_then(|_| lock.flush())
        }
    };
    if let Err(e) = written {
        eprintln!("error: cannot write output: {e}");
        return EXIT_USAGE;
    }
    eprintln!(
        "{}: {ok} rules converted, {unsupported} unsupported, {} rule errors in {elapsed:.3}s",
        target.name(),
        errors - unsupported.min(errors)
    );
    if o.fail_on_unsupported && unsupported > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}
