//! The `sigil` command line: argument parsing, wiring and output. All rule
//! logic lives in `sigil-compiler` and `sigil-runtime`.

mod check;
mod convert;
mod coverage;
mod scan;
mod test_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Detection-as-code for cloud audit logs.
#[derive(Parser)]
#[command(name = "sigil", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate rules and report every problem with its position.
    Check {
        /// Rule files or directories (recursive). Default: `rules/`.
        paths: Vec<PathBuf>,
        /// Output format; `human` on a terminal, `json` otherwise.
        #[arg(long, value_enum)]
        format: Option<CheckFormat>,
        /// YAML file of `expand` placeholder values (name: [values]).
        #[arg(long)]
        placeholders: Option<PathBuf>,
        /// Treat warnings as failures (exit 1).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run rules over CloudTrail logs and report detections.
    Scan(scan::ScanOptions),
    /// Run every rule's fixtures (`<rule>.tests` beside each rule).
    Test {
        /// Rule files or directories (recursive). Default: `rules/`.
        paths: Vec<PathBuf>,
        /// Output format; `human` on a terminal, `json` otherwise.
        #[arg(long, value_enum)]
        format: Option<test_cmd::TestFormat>,
        /// Also write a JUnit XML report to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Rules without fixtures fail.
        #[arg(long)]
        require_fixtures: bool,
        /// YAML file of `expand` placeholder values.
        #[arg(long)]
        placeholders: Option<PathBuf>,
    },
    /// ATT&CK coverage of the catalog and the DOMAIN.md actions without a rule.
    Coverage {
        /// Rule files or directories (recursive). Default: `rules/`.
        paths: Vec<PathBuf>,
        /// Output format; `human` on a terminal, `json` otherwise.
        #[arg(long, value_enum)]
        format: Option<coverage::CoverageFormat>,
        /// Exit with 1 when a DOMAIN.md action has no rule.
        #[arg(long)]
        fail_on_gaps: bool,
    },
    /// Export rules as Splunk SPL or Athena SQL that select what the matcher selects.
    Convert(convert::ConvertOptions),
    /// Print a rule as sigil reads it: identifiers, field tests, condition tree.
    Explain {
        /// A rule file (every document in it is explained).
        rule: PathBuf,
        /// Other rule files or directories that correlations may reference.
        #[arg(long = "with")]
        with: Vec<PathBuf>,
        /// YAML file of `expand` placeholder values.
        #[arg(long)]
        placeholders: Option<PathBuf>,
        /// Records to explain the verdict for (any input `scan` reads): which
        /// identifiers held, which field tests failed, on what values.
        #[arg(long)]
        event: Option<PathBuf>,
    },
}

/// Output formats of `check`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum CheckFormat {
    /// Caret snippets for people.
    Human,
    /// One JSON object per diagnostic.
    Json,
    /// SARIF 2.1.0 for code-scanning tools.
    Sarif,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check {
            paths,
            format,
            placeholders,
            deny_warnings,
        } => check::run_check(paths, format, placeholders, deny_warnings),
        Command::Scan(opts) => scan::run(opts),
        Command::Test {
            paths,
            format,
            junit,
            require_fixtures,
            placeholders,
        } => test_cmd::run(test_cmd::TestOptions {
            paths,
            format,
            junit,
            require_fixtures,
            placeholders,
        }),
        Command::Coverage {
            paths,
            format,
            fail_on_gaps,
        } => coverage::run(paths, format, fail_on_gaps),
        Command::Convert(opts) => convert::run(opts),
        Command::Explain {
            rule,
            with,
            placeholders,
            event,
        } => check::run_explain(rule, with, placeholders, event),
    };
    ExitCode::from(code)
}
