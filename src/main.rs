//! The `sigil` command line: argument parsing, wiring and output. All rule
//! logic lives in `sigil-compiler` and `sigil-runtime`.

mod check;


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
        Command::Explain {
            rule,
            with,
            placeholders,
        } => check::run_explain(rule, with, placeholders),
    };
    ExitCode::from(code)
}
