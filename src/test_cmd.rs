//! `sigil test`: runs every rule's fixtures (see `sigil::fixtures`) and
//! reports per rule, as text, JSON lines or JUnit XML.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use sigil::fixtures::{self, CaseStatus, Report, RuleStatus};
use sigil::render;

use crate::check::{config, EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE};

/// Output formats of `test`.
#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq, Debug)]
pub enum TestFormat {
    /// Per-rule lines, failures explained, a summary.
    Human,
    /// One JSON object per rule.
    Json,
}

/// Options of `test`.
pub struct TestOptions {
    pub paths: Vec<PathBuf>,
    pub format: Option<TestFormat>,
    pub junit: Option<PathBuf>,
    pub require_fixtures: bool,
    pub placeholders: Option<PathBuf>,
}

pub fn run(opts: TestOptions) -> u8 {
    let format = opts.format.unwrap_or(if std::io::stdout().is_terminal() {
        TestFormat::Human
    } else {
        TestFormat::Json
    });
    let cfg = match config(opts.placeholders) {
        Ok(c) => c,
        Err(diags) => {
            let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
            return EXIT_USAGE;
        }
    };
    let paths = if opts.paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        opts.paths
    };
    let report = fixtures::run(&paths, &cfg);
    for e in &report.io_errors {
        eprintln!("error: {e}");
    }
    if !report.io_errors.is_empty() {
        return EXIT_USAGE;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let _ = match format {
        TestFormat::Human => human(&mut out, &report, opts.require_fixtures),
        TestFormat::Json => json(&mut out, &report),
    };
    let _ = out.flush();
    if let Some(path) = &opts.junit {
        if let Err(e) = std::fs::write(path, junit(&report, opts.require_fixtures)) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    eprintln!("{}", summary(&report));
    if report.failed(opts.require_fixtures) {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

/// The summary line.
pub fn summary(report: &Report) -> String {
    format!(
        "tested {} rule files: {} passed, {} failed, {} without fixtures; cases: {} passed, {} failed, {} pending{}",
        report.rules.len(),
        report.count(RuleStatus::Pass),
        report.count(RuleStatus::Fail),
        report.count(RuleStatus::NoFixtures),
        report.case_count(CaseStatus::Pass),
        report.case_count(CaseStatus::Fail),
        report.case_count(CaseStatus::Pending),
        if report.orphans.is_empty() {
            String::new()
        } else {
            format!("; {} fixture files without a rule", report.orphans.len())
        }
    )
}

fn human(out: &mut impl Write, report: &Report, require_fixtures: bool) -> std::io::Result<()> {
    for r in &report.rules {
        let pending = r
            .cases
            .iter()
            .filter(|c| c.status == CaseStatus::Pending)
            .count();
        let word = match r.status {
            RuleStatus::Pass => "PASS",
            RuleStatus::Fail => "FAIL",
            RuleStatus::NoFixtures if require_fixtures => "FAIL",
            RuleStatus::NoFixtures => "NONE",
        };
        write!(
            out,
            "{word}  {}  ({} cases",
            r.file.display(),
            r.cases.len() - pending
        )?;
        if pending > 0 {
            write!(out, ", {pending} pending")?;
        }
        writeln!(out, ")")?;
        if r.status == RuleStatus::NoFixtures {
            writeln!(
                out,
                "      no fixtures: add {}",
                fixtures::fixture_path(&r.file).display()
            )?;
        }
        for e in &r.errors {
            for line in e.lines() {
                writeln!(out, "      {line}")?;
            }
        }
        for c in &r.cases {
            if c.status != CaseStatus::Fail {
                continue;
            }
            writeln!(
                out,
                "      case `{}` ({}): expected {}, got {}",
                c.name, c.from, c.expected, c.actual
            )?;
            if let Some(rec) = &c.record {
                writeln!(out, "        record: {}", rec.trim())?;
            }
            if !c.explanation.is_empty() {
                writeln!(out, "        why:")?;
                for line in &c.explanation {
                    writeln!(out, "          {line}")?;
                }
            }
        }
    }
    for o in &report.orphans {
        writeln!(
            out,
            "FAIL  {}  (fixture file without a rule beside it)",
            o.display()
        )?;
    }
    Ok(())
}

fn json(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    use serde_json::json;
    for r in &report.rules {
        let cases: Vec<_> = r
            .cases
            .iter()
            .map(|c| {
                let mut v = json!({
                    "name": c.name, "status": c.status.as_str(),
                    "expected": c.expected, "actual": c.actual, "from": c.from,
                });
                if c.status == CaseStatus::Fail {
                    v["record"] = json!(c.record);
                    v["explanation"] = json!(c.explanation);
                }
                v
            })
            .collect();
        let v = json!({
            "rule": {"id": r.id, "title": r.title, "level": r.level, "tags": r.tags,
                     "file": r.file.display().to_string(), "kind": r.kind},
            "status": r.status.as_str(),
            "errors": r.errors,
            "cases": cases,
        });
        writeln!(out, "{v}")?;
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one `<testsuite>` per rule file, one `<testcase>` per case
/// (pending alerts are `<skipped>`), rule-level errors as a `check` case.
pub fn junit(report: &Report, require_fixtures: bool) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = report
        .rules
        .iter()
        .map(|r| r.cases.len() + usize::from(!r.errors.is_empty() || r.cases.is_empty()))
        .sum();
    let failures = report
        .rules
        .iter()
        .map(|r| {
            r.cases
                .iter()
                .filter(|c| c.status == CaseStatus::Fail)
                .count()
                + usize::from(
                    !r.errors.is_empty()
                        || (require_fixtures && r.status == RuleStatus::NoFixtures),
                )
        })
        .sum::<usize>();
    s.push_str(&format!(
        "<testsuites name=\"sigil test\" tests=\"{tests}\" failures=\"{failures}\">\n"
    ));
    for r in &report.rules {
        let name = xml_escape(&format!("{} ({})", r.title, r.file.display()));
        let file = xml_escape(&r.file.display().to_string());
        let fails = r
            .cases
            .iter()
            .filter(|c| c.status == CaseStatus::Fail)
            .count();
        let skipped = r
            .cases
            .iter()
            .filter(|c| c.status == CaseStatus::Pending)
            .count();
        s.push_str(&format!(
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skipped}\">\n",
            r.cases.len()
        ));
        if !r.errors.is_empty() {
            s.push_str(&format!(
                "    <testcase classname=\"{file}\" name=\"check\">\n      <failure message=\"rule or fixture errors\">{}</failure>\n    </testcase>\n",
                xml_escape(&r.errors.join("\n"))
            ));
        }
        if r.status == RuleStatus::NoFixtures {
            if require_fixtures {
                s.push_str(&format!(
                    "    <testcase classname=\"{file}\" name=\"fixtures\">\n      <failure message=\"no fixtures\"/>\n    </testcase>\n"
                ));
            } else {
                s.push_str(&format!(
                    "    <testcase classname=\"{file}\" name=\"fixtures\">\n      <skipped message=\"no fixtures\"/>\n    </testcase>\n"
                ));
            }
        }
        for c in &r.cases {
            let cname = xml_escape(&c.name);
            match c.status {
                CaseStatus::Pass => s.push_str(&format!(
                    "    <testcase classname=\"{file}\" name=\"{cname}\"/>\n"
                )),
                CaseStatus::Pending => s.push_str(&format!(
                    "    <testcase classname=\"{file}\" name=\"{cname}\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(&c.actual)
                )),
                CaseStatus::Fail => {
                    let mut body = format!("record ({}): {}\n", c.from, c.record.as_deref().unwrap_or(""));
                    for line in &c.explanation {
                        body.push_str(line);
                        body.push('\n');
                    }
                    s.push_str(&format!(
                        "    <testcase classname=\"{file}\" name=\"{cname}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(&format!("expected {}, got {}", c.expected, c.actual)),
                        xml_escape(&body)
                    ));
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
