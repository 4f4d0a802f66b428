//! The `sigil` command line: argument parsing, wiring and output. All rule
//! logic lives in `sigil-compiler` and `sigil-runtime`.

mod check;
mod scan;

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
    Scan {
        /// Rule files or directories (recursive). Default: `rules/`.
        #[arg(long = "rules", short = 'r', num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Log files or directories: .json ({"Records":[...]}, a record or an
        /// array), .jsonl/.ndjson, .gz of these, S3 delivery trees; `-` = stdin.
        inputs: Vec<PathBuf>,
        /// Output format; `table` on a terminal, `jsonl` otherwise.
        #[arg(long, value_enum)]
        format: Option<scan::ScanFormat>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Output only these fields of each matched record (comma-separated paths).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Exit with 1 when anything is detected.
        #[arg(long)]
        fail_on_match: bool,
        /// YAML file of `expand` placeholder values.
        #[arg(long)]
        placeholders: Option<PathBuf>,
        /// The input's logsource (default: product=aws service=cloudtrail); repeat for several keys.
        #[arg(long)]
        logsource: Vec<String>,
        /// No summary or progress on stderr (the RESULT line is still printed).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
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
        Command::Scan {
            rules,
            inputs,
            format,
            threads,
            fields,
            fail_on_match,
            placeholders,
            logsource,
            quiet,
        } => scan::run(scan::ScanOptions {
            rules,
            inputs,
            format,
            threads,
            fields,
            fail_on_match,
            placeholders,
            logsource,
            quiet,
        }),
        Command::Explain {
            rule,
            with,
            placeholders,
        } => check::run_explain(rule, with, placeholders),
    };
    ExitCode::from(code)
}
