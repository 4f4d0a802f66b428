//! Rule fixtures: the `<rule>.tests` files next to each rule, read through the
//! compiler's YAML layer, and the code that runs them. `sigil test` and the
//! catalog's own test (`tests/catalog.rs`) both use [`run`].
//!
//! The fixture format is documented in `docs/rules.md`. In short:
//!
//! ```yaml
//! cases:
//!   - name: trail stopped by an IAM user
//!     match: true
//!     record: {"eventSource": "cloudtrail.amazonaws.com", ...}
//!   - name: the same call denied
//!     match: false
//!     file: fixtures/stop_logging_denied.json   # relative to this file
//!     index: 0                                  # optional; default: every record
//! alerts:                                       # correlation rules only
//!   pending: correlation execution is not built yet (issue 4)
//!   expect:
//!     - group: {userIdentity.arn: "arn:aws:iam::111122223333:user/alice"}
//!       count: 22
//! ```
//!
//! Fixture files end in `.tests`, not `.yml`: the catalog loads every `*.yml`
//! under a rules directory as a rule, so a `.tests.yml` file would be checked
//! (and rejected) as a Sigma rule by `sigil check rules/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::{Diagnostic, Diagnostics, Severity};
use sigil_compiler::ir;
use sigil_compiler::rule::RuleDocument;
use sigil_compiler::source::Source;
use sigil_compiler::syntax::{self, Node, NodeKind};
use sigil_compiler::Config;
use sigil_runtime::input::{InputSource, RecordReader};
use sigil_runtime::{InputLogSource, Program};

/// The extension of fixture files (`x.yml` → `x.tests`).
pub const FIXTURE_EXTENSION: &str = "tests";

/// The fixture file of a rule file.
pub fn fixture_path(rule: &Path) -> PathBuf {
    rule.with_extension(FIXTURE_EXTENSION)
}

/// One record with its expected verdict.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name (with `#i` appended for each record of a multi-record file).
    pub name: String,
    /// Must the rule match the record?
    pub expected: bool,
    /// The record's JSON bytes.
    pub record: Vec<u8>,
    /// Where the record came from (`inline` or `file#index`).
    pub from: String,
}

/// An expected correlation alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `group-by` field → value.
    pub group: BTreeMap<String, String>,
    /// The correlation's value (event count, value count, ...), if stated.
    pub count: Option<u64>,
}

/// A parsed fixture file.
#[derive(Debug, Clone, Default)]
pub struct Fixtures {
    /// The fixture file.
    pub path: PathBuf,
    /// Record cases.
    pub cases: Vec<Case>,
    /// Expected correlation alerts.
    pub alerts: Vec<Alert>,
    /// Why the alerts cannot be checked yet, if they cannot.
    pub alerts_pending: Option<String>,
    /// Problems reading the file (each fails the rule).
    pub problems: Vec<String>,
}

/// Reads a fixture file. Problems are collected, never fatal.
pub fn load_fixtures(path: &Path) -> Fixtures {
    let mut fx = Fixtures {
        path: path.to_path_buf(),
        ..Fixtures::default()
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            fx.problems.push(format!("cannot read: {e}"));
            return fx;
        }
    };
    let source = Arc::new(Source::new(path, text));
    let mut diags = Diagnostics::new();
    let docs = syntax::parse(&source, &mut diags);
    for d in diags.iter().filter(|d| d.severity() == Severity::Error) {
        fx.problems.push(render_diag(d));
    }
    if !fx.problems.is_empty() {
        return fx;
    }
    let Some(doc) = docs.first() else {
        fx.problems.push("empty fixture file".into());
        return fx;
    };
    let root = &doc.root;
    let NodeKind::Map(entries) = &root.kind else {
        fx.problems
            .push("a fixture file is a mapping with `cases`".into());
        return fx;
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for (k, v) in entries {
        match k.scalar_text().as_deref() {
            Some("cases") => read_cases(v, base, &source, &mut fx),
            Some("alerts") => read_alerts(v, &source, &mut fx),
            Some("description") => {}
            other => fx.problems.push(format!(
                "{}: unknown key `{}` (expected cases, alerts, description)",
                at(&source, k),
                other.unwrap_or("?")
            )),
        }
    }
    fx
}

fn at(source: &Source, node: &Node) -> String {
    let lc = source.line_col(node.span.start);
    format!("{}:{}:{}", source.path().display(), lc.line, lc.column)
}

fn read_cases(node: &Node, base: &Path, source: &Source, fx: &mut Fixtures) {
    let NodeKind::Seq(items) = &node.kind else {
        fx.problems
            .push(format!("{}: `cases` must be a list", at(source, node)));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| format!("case {}", i + 1));
        let expected = match item.get("match").map(|n| &n.kind) {
            Some(NodeKind::Bool(b)) => *b,
            _ => {
                fx.problems.push(format!(
                    "{}: case `{name}` needs `match: true` or `match: false`",
                    at(source, item)
                ));
                continue;
            }
        };
        if let NodeKind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = k.scalar_text().unwrap_or_default();
                if !matches!(key.as_str(), "name" | "match" | "record" | "file" | "index") {
                    fx.problems.push(format!(
                        "{}: case `{name}`: unknown key `{key}` (expected name, match, record, file, index)",
                        at(source, k)
                    ));
                }
            }
        }
        match (item.get("record"), item.get("file")) {
            (Some(rec), None) => {
                if !matches!(rec.kind, NodeKind::Map(_)) {
                    fx.problems.push(format!(
                        "{}: case `{name}`: `record` must be a mapping",
                        at(source, rec)
                    ));
                    continue;
                }
                let mut json = String::new();
                node_json(rec, &mut json);
                fx.cases.push(Case {
                    name,
                    expected,
                    record: json.into_bytes(),
                    from: "inline".into(),
                });
            }
            (None, Some(file)) => {
                let Some(rel) = file.as_str() else {
                    fx.problems.push(format!(
                        "{}: case `{name}`: `file` must be a path",
                        at(source, file)
                    ));
                    continue;
                };
                let index = match item.get("index").map(|n| &n.kind) {
                    None => None,
                    Some(NodeKind::Int { value, .. }) if *value >= 0 => Some(*value as u64),
                    Some(_) => {
                        fx.problems.push(format!(
                            "{}: case `{name}`: `index` must be a record index (0, 1, ...)",
                            at(source, item)
                        ));
                        continue;
                    }
                };
                let path = base.join(rel);
                match read_records(&path) {
                    Ok(records) => {
                        let picked: Vec<(u64, Vec<u8>)> = match index {
                            Some(ix) => records.into_iter().filter(|(r, _)| *r == ix).collect(),
                            None => records,
                        };
                        if picked.is_empty() {
                            fx.problems.push(format!(
                                "case `{name}`: no record{} in `{}`",
                                index
                                    .map(|i| format!(" with index {i}"))
                                    .unwrap_or_default(),
                                path.display()
                            ));
                        }
                        let many = picked.len() > 1;
                        for (ix, bytes) in picked {
                            fx.cases.push(Case {
                                name: if many {
                                    format!("{name} #{ix}")
                                } else {
                                    name.clone()
                                },
                                expected,
                                record: bytes,
                                from: format!("{rel}#{ix}"),
                            });
                        }
                    }
                    Err(e) => fx.problems.push(format!("case `{name}`: {e}")),
                }
            }
            _ => fx.problems.push(format!(
                "{}: case `{name}` needs exactly one of `record` or `file`",
                at(source, item)
            )),
        }
    }
}

fn read_alerts(node: &Node, source: &Source, fx: &mut Fixtures) {
    if let Some(p) = node.get("pending") {
        fx.alerts_pending = Some(p.scalar_text().unwrap_or_else(|| "pending".into()));
    }
    let Some(NodeKind::Seq(items)) = node.get("expect").map(|n| &n.kind) else {
        fx.problems.push(format!(
            "{}: `alerts` needs `expect`, a list of {{group, count}}",
            at(source, node)
        ));
        return;
    };
    for item in items {
        let mut group = BTreeMap::new();
        if let Some(NodeKind::Map(entries)) = item.get("group").map(|n| &n.kind) {
            for (k, v) in entries {
                group.insert(
                    k.scalar_text().unwrap_or_default(),
                    v.scalar_text().unwrap_or_default(),
                );
            }
        }
        let count = match item.get("count").map(|n| &n.kind) {
            Some(NodeKind::Int { value, .. }) if *value >= 0 => Some(*value as u64),
            None => None,
            Some(_) => {
                fx.problems.push(format!(
                    "{}: alert `count` must be a whole number",
                    at(source, item)
                ));
                None
            }
        };
        fx.alerts.push(Alert { group, count });
    }
}

/// Splits a JSON / NDJSON / `{"Records":[...]}` file (optionally gzip) into
/// records, with their indices, as `sigil scan` reads them.
pub fn read_records(path: &Path) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut reader = RecordReader::open(&InputSource::File(path.to_path_buf()))
        .map_err(|d| format!("cannot read `{}`: {}", path.display(), d.reason))?;
    let mut out = Vec::new();
    while let Some(batch) = reader.next_batch(1 << 20) {
        if let Some(d) = batch.damage.first() {
            return Err(format!(
                "`{}` is damaged at line {}: {}",
                path.display(),
                d.line,
                d.reason
            ));
        }
        for r in &batch.records {
            out.push((r.index, batch.data[r.start..r.end].to_vec()));
        }
    }
    Ok(out)
}

/// A YAML node as JSON text: keys in source order, numbers as written.
fn node_json(node: &Node, out: &mut String) {
    match &node.kind {
        NodeKind::Null => out.push_str("null"),
        NodeKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        NodeKind::Int { text, value } => {
            if text.parse::<f64>().is_ok() && !text.starts_with('+') {
                out.push_str(text)
            } else {
                out.push_str(&value.to_string())
            }
        }
        NodeKind::Float { text, value } => {
            if serde_json::from_str::<serde_json::Number>(text).is_ok() {
                out.push_str(text)
            } else {
                out.push_str(&value.to_string())
            }
        }
        NodeKind::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
        NodeKind::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                node_json(item, out);
            }
            out.push(']');
        }
        NodeKind::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let key = k.scalar_text().unwrap_or_default();
                out.push_str(&serde_json::Value::String(key).to_string());
                out.push(':');
                node_json(v, out);
            }
            out.push('}');
        }
    }
}

fn render_diag(d: &Diagnostic) -> String {
    let mut buf = Vec::new();
    let _ = crate::render::human(&mut buf, std::iter::once(d));
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

/// The outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// Verdict as expected.
    Pass,
    /// Verdict not as expected, or the case could not run.
    Fail,
    /// Cannot be checked yet (correlation alerts before correlation execution).
    Pending,
}

impl CaseStatus {
    /// `pass`, `fail`, `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Pass => "pass",
            CaseStatus::Fail => "fail",
            CaseStatus::Pending => "pending",
        }
    }
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Pass, fail or pending.
    pub status: CaseStatus,
    /// `match`, `no match`, or an alert description.
    pub expected: String,
    /// What happened.
    pub actual: String,
    /// Where the record came from.
    pub from: String,
    /// The record, for failures.
    pub record: Option<String>,
    /// The matcher's trace of the rule on the record, for failures.
    pub explanation: Vec<String>,
}

/// The outcome of one rule file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    /// Every live case passed.
    Pass,
    /// A case failed, the rule has check errors, or its fixtures are broken.
    Fail,
    /// No fixture file.
    NoFixtures,
}

impl RuleStatus {
    /// `pass`, `fail`, `no-fixtures`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Pass => "pass",
            RuleStatus::Fail => "fail",
            RuleStatus::NoFixtures => "no-fixtures",
        }
    }
}

/// What `sigil test` reports for a rule file.
#[derive(Debug, Clone)]
pub struct RuleResult {
    /// The rule file.
    pub file: PathBuf,
    /// The rule's id, if any.
    pub id: Option<String>,
    /// Its title (or the file name when it did not load).
    pub title: String,
    /// Its level.
    pub level: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// `rule` or `correlation`.
    pub kind: &'static str,
    /// The overall status.
    pub status: RuleStatus,
    /// Check errors and fixture problems (each fails the rule).
    pub errors: Vec<String>,
    /// Case results.
    pub cases: Vec<CaseResult>,
}

/// The result of running every fixture under some paths.
#[derive(Debug, Default)]
pub struct Report {
    /// One result per rule file, in path order.
    pub rules: Vec<RuleResult>,
    /// Fixture files without a rule file beside them.
    pub orphans: Vec<PathBuf>,
    /// I/O problems with the paths given.
    pub io_errors: Vec<String>,
}

impl Report {
    /// Any failure (with `require_fixtures`, rules without fixtures fail too)?
    pub fn failed(&self, require_fixtures: bool) -> bool {
        !self.io_errors.is_empty()
            || !self.orphans.is_empty()
            || self.rules.iter().any(|r| {
                r.status == RuleStatus::Fail
                    || (require_fixtures && r.status == RuleStatus::NoFixtures)
            })
    }
    /// Count of rules per status.
    pub fn count(&self, status: RuleStatus) -> usize {
        self.rules.iter().filter(|r| r.status == status).count()
    }
    /// Count of cases per status.
    pub fn case_count(&self, status: CaseStatus) -> usize {
        self.rules
            .iter()
            .flat_map(|r| &r.cases)
            .filter(|c| c.status == status)
            .count()
    }
}

/// Rule files (`*.yml`, `*.yaml`, or any file named explicitly) and fixture
/// files below `path`.
fn collect(path: &Path, rules: &mut Vec<PathBuf>, fixtures: &mut Vec<PathBuf>) {
    sigil_compiler::catalog::walk(
        path,
        &mut |file, explicit| match file.extension().and_then(|e| e.to_str()) {
            Some("yml" | "yaml") => rules.push(file.to_path_buf()),
            Some(FIXTURE_EXTENSION) => fixtures.push(file.to_path_buf()),
            _ if explicit => rules.push(file.to_path_buf()),
            _ => {}
        },
        // Unreadable paths surface when the catalog loads them.
        &mut |_, _| {},
    );
}

/// Loads the rules under `paths` (one catalog, as `sigil check` does), runs
/// each rule file's fixtures and reports per rule file.
pub fn run(paths: &[PathBuf], config: &Config) -> Report {
    let mut report = Report::default();
    let mut rule_files = Vec::new();
    let mut fixture_files = Vec::new();
    for p in paths {
        if !p.exists() {
            report
                .io_errors
                .push(format!("`{}`: no such file or directory", p.display()));
            continue;
        }
        collect(p, &mut rule_files, &mut fixture_files);
    }
    // A fixture file given explicitly tests its rule.
    for f in &fixture_files {
        let yml = f.with_extension("yml");
        let yaml = f.with_extension("yaml");
        if yml.exists() {
            rule_files.push(yml);
        } else if yaml.exists() {
            rule_files.push(yaml);
        } else {
            report.orphans.push(f.clone());
        }
    }
    rule_files.sort();
    rule_files.dedup();

    // Correlations name rules in other files: load the rules beside each
    // requested file too (reported on only when requested).
    let mut load_files = rule_files.clone();
    for f in &rule_files {
        if let Some(dir) = f.parent() {
            let mut siblings = Vec::new();
            let mut ignored = Vec::new();
            collect(dir, &mut siblings, &mut ignored);
            load_files.extend(siblings.into_iter().filter(|s| s.parent() == Some(dir)));
        }
    }
    load_files.sort();
    load_files.dedup();
    let catalog = Catalog::load(&load_files, config);
    let (ir, ir_diags) = ir::from_catalog(&catalog);
    let (mut program, problems) = Program::build(&ir, &InputLogSource::default());
    let plan = crate::correlation::Plan::new(&ir.correlations, &mut program);
    let mut matcher = program.matcher();

    // Program index by origin (`file` or `file#N`).
    let mut by_origin: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..program.rule_count() {
        by_origin.insert(program.info(i).origin.clone(), i);
    }
    let mut errors_by_file: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for d in catalog.diagnostics().iter().chain(ir_diags.iter()) {
        if d.severity() == Severity::Error {
            if let Some(p) = d.path() {
                errors_by_file
                    .entry(p.to_path_buf())
                    .or_default()
                    .push(render_diag(d));
            }
        }
    }
    for p in &problems {
        let file = p.origin.split('#').next().unwrap_or(&p.origin);
        errors_by_file
            .entry(PathBuf::from(file))
            .or_default()
            .push(format!("rule `{}` cannot run: {}", p.rule, p.message));
    }

    for file in &rule_files {
        let docs: Vec<&RuleDocument> = catalog
            .documents()
            .filter(|d| d.meta().source.path() == file.as_path())
            .collect();
        let first = docs.first();
        let mut result = RuleResult {
            file: file.clone(),
            id: first.and_then(|d| d.meta().id.clone()),
            title: first.map(|d| d.meta().title.clone()).unwrap_or_else(|| {
                file.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            }),
            level: first.and_then(|d| d.meta().level.map(|l| l.as_str().to_string())),
            tags: first
                .map(|d| d.meta().tags.iter().map(|t| t.to_string()).collect())
                .unwrap_or_default(),
            kind: match first {
                Some(RuleDocument::Correlation(_)) => "correlation",
                Some(RuleDocument::Filter(_)) => "filter",
                _ => "rule",
            },
            status: RuleStatus::Pass,
            errors: errors_by_file.remove(file).unwrap_or_default(),
            cases: Vec::new(),
        };
        // The rules a record of this file's fixtures is matched against: the
        // file's detection rules, or, for a correlation, the rules it names.
        let mut targets: BTreeSet<usize> = BTreeSet::new();
        let mut has_correlation = false;
        for d in &docs {
            match d {
                RuleDocument::Rule(_) => {
                    if let Some(&i) = by_origin.get(&d.meta().origin()) {
                        targets.insert(i);
                    }
                }
                RuleDocument::Correlation(c) => {
                    has_correlation = true;
                    referenced_rules(&catalog, c, &by_origin, &mut targets, 0);
                }
                RuleDocument::Filter(_) => {}
            }
        }
        let fx_path = fixture_path(file);
        if !fx_path.exists() {
            result.status = if result.errors.is_empty() {
                RuleStatus::NoFixtures
            } else {
                RuleStatus::Fail
            };
            report.rules.push(result);
            continue;
        }
        let fx = load_fixtures(&fx_path);
        result.errors.extend(fx.problems.iter().cloned());
        if fx.cases.is_empty() && fx.alerts.is_empty() {
            result
                .errors
                .push(format!("`{}` has no cases", fx_path.display()));
        }
        if targets.is_empty() && result.errors.is_empty() && !fx.cases.is_empty() {
            result
                .errors
                .push("no runnable detection rule in this file".to_string());
        }
        if !targets.is_empty() {
            for case in &fx.cases {
                result
                    .cases
                    .push(run_case(&mut matcher, &program, &targets, case));
            }
        }
        if !fx.alerts.is_empty() && !has_correlation && !docs.is_empty() {
            result
                .errors
                .push("`alerts` are for correlation rules only".to_string());
        }
        if !fx.alerts.is_empty() {
            let produced = correlation_alerts(&plan, &mut matcher, &fx.cases, file);
            let mut unmatched = produced.clone();
            for alert in &fx.alerts {
                let desc = describe_alert(alert);
                let found = unmatched.iter().position(|p| {
                    p.group == alert.group && alert.count.is_none_or(|c| p.count == Some(c))
                });
                let status = if found.is_some() {
                    CaseStatus::Pass
                } else {
                    CaseStatus::Fail
                };
                if let Some(i) = found {
                    unmatched.remove(i);
                }
                let actual = if produced.is_empty() {
                    "no alert".to_string()
                } else {
                    produced
                        .iter()
                        .map(describe_alert)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                result.cases.push(CaseResult {
                    name: format!("alert {desc}"),
                    status,
                    expected: desc,
                    actual,
                    from: fx_path.display().to_string(),
                    record: None,
                    explanation: Vec::new(),
                });
            }
            for extra in unmatched {
                let desc = describe_alert(&extra);
                result.cases.push(CaseResult {
                    name: format!("unexpected alert {desc}"),
                    status: CaseStatus::Fail,
                    expected: "no further alert".to_string(),
                    actual: desc,
                    from: fx_path.display().to_string(),
                    record: None,
                    explanation: Vec::new(),
                });
            }
        }
        if !result.errors.is_empty() || result.cases.iter().any(|c| c.status == CaseStatus::Fail) {
            result.status = RuleStatus::Fail;
        }
        report.rules.push(result);
    }
    report
}

/// The detection rules a correlation names, through nested correlations.
fn referenced_rules(
    catalog: &Catalog,
    correlation: &sigil_compiler::rule::Correlation,
    by_origin: &BTreeMap<String, usize>,
    targets: &mut BTreeSet<usize>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    for r in catalog.referenced(correlation) {
        match r {
            RuleDocument::Rule(_) => {
                if let Some(&i) = by_origin.get(&r.meta().origin()) {
                    targets.insert(i);
                }
            }
            RuleDocument::Correlation(inner) => {
                referenced_rules(catalog, inner, by_origin, targets, depth + 1)
            }
            RuleDocument::Filter(_) => {}
        }
    }
}

/// Runs the fixture records through the matcher and the correlation engine
/// exactly as `sigil scan` does, and returns the alerts of the correlations
/// defined in `file`.
fn correlation_alerts(
    plan: &crate::correlation::Plan,
    matcher: &mut sigil_runtime::Matcher<'_>,
    cases: &[Case],
    file: &Path,
) -> Vec<Alert> {
    let mut events = crate::correlation::collector(plan, crate::correlation::DEFAULT_MEMORY);
    let mut dropped = crate::correlation::Dropped::default();
    let mut hits = Vec::new();
    // The event stream is the records that must match (docs/rules.md).
    for (i, case) in cases.iter().enumerate().filter(|(_, c)| c.expected) {
        // The record as text, which the matcher has when anything matched.
        let Ok(Some(text)) = matcher.matches(&case.record, &mut hits) else {
            continue;
        };
        let mut batch = sigil_runtime::correlate::EventBatch::default();
        for &r in &hits {
            for feed in &plan.by_rule[r] {
                let at = sigil_runtime::correlate::RecordRef {
                    source: 0,
                    record: i as u64,
                    line: i as u64 + 1,
                };
                crate::correlation::event(feed, matcher, text, at, &mut dropped, &mut batch);
            }
        }
        events.push_batch(&batch);
    }
    let mut problems = Vec::new();
    let fired = crate::correlation::evaluate(plan, events, &mut problems).fired;
    let file_text = file.display().to_string();
    let mut out = Vec::new();
    for f in fired {
        let c = &plan.correlations[f.correlation];
        if c.info.origin.split('#').next() != Some(file_text.as_str()) {
            continue;
        }
        for a in f.alerts {
            out.push(Alert {
                group: c
                    .group_by
                    .iter()
                    .cloned()
                    .zip(a.group.iter().cloned())
                    .collect(),
                count: (a.value >= 0.0 && a.value.fract() == 0.0).then_some(a.value as u64),
            });
        }
    }
    out
}

fn describe_alert(a: &Alert) -> String {
    let group: Vec<String> = a.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut s = format!("{{{}}}", group.join(", "));
    if let Some(c) = a.count {
        s.push_str(&format!(" count={c}"));
    }
    s
}

fn verdict_word(b: bool) -> &'static str {
    if b {
        "match"
    } else {
        "no match"
    }
}

fn run_case(
    matcher: &mut sigil_runtime::Matcher<'_>,
    program: &Program,
    targets: &BTreeSet<usize>,
    case: &Case,
) -> CaseResult {
    let mut hits = Vec::new();
    let mut result = CaseResult {
        name: case.name.clone(),
        status: CaseStatus::Pass,
        expected: verdict_word(case.expected).to_string(),
        actual: String::new(),
        from: case.from.clone(),
        record: None,
        explanation: Vec::new(),
    };
    if let Err(e) = matcher.matches(&case.record, &mut hits) {
        result.status = CaseStatus::Fail;
        result.actual = format!("error: the record is not valid JSON ({e:?})");
        result.record = Some(String::from_utf8_lossy(&case.record).to_string());
        return result;
    }
    let matched: Vec<usize> = hits
        .iter()
        .copied()
        .filter(|h| targets.contains(h))
        .collect();
    let actual = !matched.is_empty();
    result.actual = verdict_word(actual).to_string();
    if actual != case.expected {
        result.status = CaseStatus::Fail;
        result.record = Some(String::from_utf8_lossy(&case.record).to_string());
        // Explain each rule of the file: why it failed to match, or why it matched.
        for &t in targets {
            if let Ok((verdict, trace)) = matcher.explain(&case.record, t) {
                if targets.len() > 1 {
                    result.explanation.push(format!(
                        "rule `{}`: {}",
                        program.info(t).title,
                        verdict_word(verdict)
                    ));
                }
                result.explanation.extend(trace);
            }
        }
    }
    result
}
