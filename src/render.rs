//! Rendering diagnostics: caret snippets for people, JSON lines and SARIF for
//! machines. The compiler hands over data; only this module formats it.

use std::io::{self, Write};

use serde_json::{json, Value};
use sigil_compiler::diag::{codes, Diagnostic, Severity};

/// `error[S402]: message` with a caret snippet, help lines and secondary labels.
pub fn human<'a>(
    out: &mut impl Write,
    diags: impl Iterator<Item = &'a Diagnostic>,
) -> io::Result<()> {
    for d in diags {
        writeln!(out, "{}[{}]: {}", d.severity(), d.code().id, d.message())?;
        match (d.source(), d.range()) {
            (Some(source), Some((start, end))) => {
                let line_text = source.line_text(start.line);
                let gutter = start.line.to_string().len();
                let pad = " ".repeat(gutter);
                writeln!(
                    out,
                    "{pad}--> {}:{}:{}",
                    source.path().display(),
                    start.line,
                    start.column
                )?;
                writeln!(out, "{pad} |")?;
                let line_len = line_text.chars().count();
                let width = if end.line == start.line {
                    end.column.saturating_sub(start.column).max(1)
                } else {
                    line_len.saturating_sub(start.column - 1).max(1)
                };
                let (shown, column, width) = window(line_text, start.column - 1, width);
                writeln!(out, "{} | {}", start.line, shown.replace('\t', " "))?;
                let label = d.label().map(|l| format!(" {l}")).unwrap_or_default();
                writeln!(
                    out,
                    "{pad} | {}{}{label}",
                    " ".repeat(column),
                    "^".repeat(width)
                )?;
                for s in d.secondary() {
                    if let Some(src) = &s.source {
                        let at = src.line_col(s.span.start);
                        writeln!(
                            out,
                            "{pad} = note: {}: {}:{}:{}",
                            s.message,
                            src.path().display(),
                            at.line,
                            at.column
                        )?;
                    }
                }
            }
            (Some(source), None) => writeln!(out, "  --> {}", source.path().display())?,
            _ => {}
        }
        // Help lines line up with the snippet's gutter (and its notes).
        let pad = " ".repeat(d.range().map_or(1, |(s, _)| s.line.to_string().len()));
        for h in d.help() {
            let mut lines = h.lines();
            if let Some(first) = lines.next() {
                writeln!(out, "{pad} = help: {first}")?;
            }
            for l in lines {
                writeln!(out, "{pad}         {l}")?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Widest source line shown whole; longer lines are cut around the caret.
const MAX_SHOWN: usize = 120;

/// The part of `line` to show for a caret at character `column` spanning
/// `width` characters, with the caret's column and width within that part.
fn window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let len = line.chars().count();
    if len <= MAX_SHOWN {
        return (line.to_string(), column, width);
    }
    let begin = column.saturating_sub(40).min(len);
    let end = (begin + MAX_SHOWN).min(len);
    let mut shown: String = line.chars().skip(begin).take(end - begin).collect();
    let mut at = column - begin;
    if begin > 0 {
        shown.insert_str(0, "...");
        at += 3;
    }
    if end < len {
        shown.push_str("...");
    }
    (shown, at, width.min(end.saturating_sub(column)).max(1))
}

/// The JSON object DESIGN.md specifies for one diagnostic.
pub fn to_json(d: &Diagnostic) -> Value {
    let (start, end) = match d.range() {
        Some((s, e)) => (Some(s), Some(e)),
        None => (None, None),
    };
    json!({
        "code": d.code().id,
        "severity": d.severity(),
        "message": d.message(),
        "file": d.path().map(|p| p.display().to_string()),
        "line": start.map(|s| s.line),
        "column": start.map(|s| s.column),
        "end_line": end.map(|e| e.line),
        "end_column": end.map(|e| e.column),
        "help": if d.help().is_empty() { Value::Null } else { Value::String(d.help().join("\n")) },
    })
}

/// One JSON object per line.
pub fn json_lines<'a>(
    out: &mut impl Write,
    diags: impl Iterator<Item = &'a Diagnostic>,
) -> io::Result<()> {
    for d in diags {
        writeln!(out, "{}", to_json(d))?;
    }
    Ok(())
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// A SARIF 2.1.0 log with one run: every code as a rule, every diagnostic as a result.
pub fn sarif(out: &mut impl Write, diags: &[Diagnostic]) -> io::Result<()> {
    let rules: Vec<Value> = codes::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": {"text": c.summary},
                "fullDescription": {"text": format!("{}. {}", c.summary, c.why)},
                "help": {
                    "text": format!("{}\n\nExample:\n{}\n\nFix: {}", c.why, c.example, c.fix),
                    "markdown": format!("{}\n\n**Example**\n\n```yaml\n{}\n```\n\n**Fix:** {}", c.why, c.example, c.fix),
                },
                "defaultConfiguration": {"level": sarif_level(c.severity)},
                "properties": {"tags": ["sigma"]},
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let index = codes::ALL.iter().position(|c| c.id == d.code().id).unwrap_or(0);
            let uri = d
                .path()
                .map(|p| p.display().to_string().replace('\\', "/"))
                .unwrap_or_default();
            let uri = uri.strip_prefix("./").unwrap_or(&uri).to_string();
            let region = match d.range() {
                Some((s, e)) => json!({"startLine": s.line, "startColumn": s.column, "endLine": e.line, "endColumn": e.column.max(if e.line == s.line { s.column + 1 } else { 1 })}),
                None => json!({"startLine": 1, "startColumn": 1}),
            };
            let mut message = d.message().to_string();
            for h in d.help() {
                message.push_str("\nhelp: ");
                message.push_str(h);
            }
            json!({
                "ruleId": d.code().id,
                "ruleIndex": index,
                "level": sarif_level(d.severity()),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": region,
                    }
                }],
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sigil",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/sigil-detection/sigil",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}
