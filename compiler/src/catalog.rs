//! A catalog: rule files loaded from paths, lowered, and checked as a whole —
//! duplicate ids and names, references between documents (by id or name, across
//! files), reference cycles, aliases, and filters applied to the rules they name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::diag::{codes, Diagnostic, Diagnostics};
use crate::rule::{self, Correlation, Detection, Filter, Rule, RuleDocument};
use crate::source::{Source, Span};
use crate::syntax::{self, condition::Expr, condition::OfTarget};
use crate::Config;

/// Every document loaded from a set of paths, with the diagnostics found.
#[derive(Debug, Default)]
pub struct Catalog {
    documents: Vec<RuleDocument>,
    /// Documents still usable after cross-document checks.
    valid: Vec<bool>,
    /// For each correlation, the documents its `rules` resolve to.
    links: HashMap<usize, Vec<usize>>,
    /// Ids (lower-cased) and names of documents that did not lower: their
    /// errors are reported already, so a reference to them is not reported
    /// again as dangling.
    failed: Vec<String>,
    diags: Diagnostics,
    files: usize,
}

impl Catalog {
    /// Loads files and directories (recursively: `*.yml`, `*.yaml`).
    pub fn load(paths: &[PathBuf], config: &Config) -> Catalog {
        let mut catalog = Catalog::default();
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files, &mut catalog.diags);
        }
        // Files are independent until `link`: read, parse and lower them in
        // parallel, then merge in path order so output is deterministic.
        let per_file: Vec<(Lowered, Diagnostics)> = files
            .par_iter()
            .map(|file| {
                let mut diags = Diagnostics::new();
                let lowered = match read_source(file, &mut diags) {
                    Some(source) => lower_source(&source, config, &mut diags),
                    None => Lowered::default(),
                };
                (lowered, diags)
            })
            .collect();
        catalog.files = files.len();
        for (lowered, diags) in per_file {
            catalog.diags.extend(diags);
            catalog.add_lowered(lowered);
        }
        catalog.link();
        catalog
    }

    /// Builds a catalog from in-memory texts (tests, fuzzing, editors).
    pub fn from_texts(texts: &[(&str, &str)], config: &Config) -> Catalog {
        let mut catalog = Catalog::default();
        for (path, text) in texts {
            catalog.files += 1;
            let source = Arc::new(Source::new(*path, *text));
            catalog.add_source(&source, config);
        }
        catalog.link();
        catalog
    }

    /// Loads one file's bytes (which may not be UTF-8).
    pub fn from_bytes(path: &str, bytes: &[u8], config: &Config) -> Catalog {
        let mut catalog = Catalog {
            files: 1,
            ..Catalog::default()
        };
        if let Some(source) = decode(Path::new(path), bytes, &mut catalog.diags) {
            catalog.add_source(&source, config);
        }
        catalog.link();
        catalog
    }

    fn add_source(&mut self, source: &Arc<Source>, config: &Config) {
        let lowered = lower_source(source, config, &mut self.diags);
        self.add_lowered(lowered);
    }

    fn add_lowered(&mut self, lowered: Lowered) {
        self.valid.extend(lowered.documents.iter().map(|_| true));
        self.documents.extend(lowered.documents);
        self.failed.extend(lowered.failed);
    }

    /// Number of files read.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// All diagnostics, in discovery order.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diags
    }

    /// Takes the diagnostics out.
    pub fn take_diagnostics(&mut self) -> Diagnostics {
        std::mem::take(&mut self.diags)
    }

    /// Every lowered document that passed the cross-document checks.
    pub fn documents(&self) -> impl Iterator<Item = &RuleDocument> {
        self.documents
            .iter()
            .zip(&self.valid)
            .filter(|(_, v)| **v)
            .map(|(d, _)| d)
    }

    /// Detection rules (with filters applied).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.documents().filter_map(|d| match d {
            RuleDocument::Rule(r) => Some(r),
            _ => None,
        })
    }

    /// Correlation rules.
    pub fn correlations(&self) -> impl Iterator<Item = &Correlation> {
        self.documents().filter_map(|d| match d {
            RuleDocument::Correlation(c) => Some(c),
            _ => None,
        })
    }

    /// The documents a correlation's `rules` refer to, in order.
    pub fn referenced(&self, correlation: &Correlation) -> Vec<&RuleDocument> {
        let Some(index) = self.documents.iter().position(|d| match d {
            RuleDocument::Correlation(c) => std::ptr::eq(c, correlation),
            _ => false,
        }) else {
            return Vec::new();
        };
        self.links
            .get(&index)
            .map(|l| l.iter().filter_map(|&i| self.documents.get(i)).collect())
            .unwrap_or_default()
    }

    /// Finds the document a reference (id or name) names.
    pub fn find(&self, reference: &str) -> Option<&RuleDocument> {
        match self.lookup(reference).as_slice() {
            [one] => self.documents.get(*one),
            _ => None,
        }
    }

    fn lookup(&self, reference: &str) -> Vec<usize> {
        let lower = reference.to_ascii_lowercase();
        let mut found: Vec<usize> = self
            .documents
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                let m = d.meta();
                m.id.as_deref() == Some(lower.as_str()) || m.name.as_deref() == Some(reference)
            })
            .map(|(i, _)| i)
            .collect();
        found.dedup();
        found
    }

    fn invalidate(&mut self, index: usize, d: Diagnostic) {
        if d.is_error() {
            if let Some(v) = self.valid.get_mut(index) {
                *v = false;
            }
        }
        self.diags.push(d);
    }

    fn link(&mut self) {
        self.check_unique();
        self.resolve_references();
        self.check_cycles();
        self.apply_filters();
    }

    fn check_unique(&mut self) {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for i in 0..self.documents.len() {
            let meta = self.documents[i].meta();
            let source = Arc::clone(&meta.source);
            if let (Some(id), Some(span)) = (meta.id.clone(), meta.id_span) {
                if let Some(&first) = ids.get(&id) {
                    let fm = self.documents[first].meta();
                    let d = Diagnostic::new(
                        codes::DUPLICATE_ID,
                        format!("id `{id}` is already used by `{}`", fm.title),
                    )
                    .at(&source, span)
                    .with_secondary(
                        &fm.source,
                        fm.id_span.unwrap_or_default(),
                        "first used here",
                    )
                    .with_help("give this document a new UUID");
                    self.invalidate(i, d);
                } else {
                    ids.insert(id, i);
                }
            }
            let meta = self.documents[i].meta();
            if let (Some(name), Some(span)) = (meta.name.clone(), meta.name_span) {
                if let Some(&first) = names.get(&name) {
                    let fm = self.documents[first].meta();
                    let d = Diagnostic::new(
                        codes::DUPLICATE_NAME,
                        format!("name `{name}` is already used by `{}`", fm.title),
                    )
                    .at(&source, span)
                    .with_secondary(
                        &fm.source,
                        fm.name_span.unwrap_or_default(),
                        "first used here",
                    );
                    self.invalidate(i, d);
                } else {
                    names.insert(name, i);
                }
            }
        }
    }

    fn resolve_one(
        &mut self,
        owner: usize,
        reference: &rule::Reference,
        source: &Arc<Source>,
    ) -> Option<usize> {
        match self.lookup(&reference.text).as_slice() {
            [one] => Some(*one),
            [] if self.failed.contains(&reference.text)
                || self.failed.contains(&reference.text.to_ascii_lowercase()) =>
            {
                // The referenced document has errors of its own, reported
                // where they are; this document cannot be used either.
                if let Some(v) = self.valid.get_mut(owner) {
                    *v = false;
                }
                None
            }
            [] => {
                let d = Diagnostic::new(
                    codes::DANGLING_REFERENCE,
                    format!("`{}` names no loaded rule (by id or name)", reference.text),
                )
                .at(source, reference.span)
                .with_label("not found")
                .with_help("load the file that defines it too, or correct the reference");
                self.invalidate(owner, d);
                None
            }
            many => {
                let mut d = Diagnostic::new(
                    codes::AMBIGUOUS_REFERENCE,
                    format!("`{}` names {} documents", reference.text, many.len()),
                )
                .at(source, reference.span);
                for &m in many {
                    let meta = self.documents[m].meta();
                    d = d.with_secondary(&meta.source, meta.span, format!("`{}`", meta.title));
                }
                self.invalidate(owner, d);
                None
            }
        }
    }

    fn resolve_references(&mut self) {
        for i in 0..self.documents.len() {
            let RuleDocument::Correlation(c) = &self.documents[i] else {
                continue;
            };
            let refs = c.rules.clone();
            let aliases = c.aliases.clone();
            let source = Arc::clone(&c.meta.source);
            let mut resolved = Vec::new();
            for r in &refs {
                if let Some(t) = self.resolve_one(i, r, &source) {
                    if matches!(self.documents[t], RuleDocument::Filter(_)) {
                        let d = Diagnostic::new(
                            codes::DANGLING_REFERENCE,
                            format!("`{}` is a filter, not a rule", r.text),
                        )
                        .at(&source, r.span);
                        self.invalidate(i, d);
                    } else {
                        resolved.push(t);
                    }
                }
            }
            for alias in &aliases {
                for (r, _) in &alias.fields {
                    let target = self.lookup(&r.text);
                    if target.len() != 1 || !resolved.contains(&target[0]) {
                        let d = Diagnostic::new(
                            codes::ALIAS_REFERENCE,
                            format!(
                                "alias `{}` maps `{}`, which this correlation does not reference",
                                alias.name, r.text
                            ),
                        )
                        .at(&source, r.span);
                        self.invalidate(i, d);
                    }
                }
            }
            self.links.insert(i, resolved);
        }
    }

    fn check_cycles(&mut self) {
        // Colour-marking DFS over correlation → referenced documents.
        let n = self.documents.len();
        let mut state = vec![0u8; n];
        let mut in_cycle = Vec::new();
        fn visit(
            i: usize,
            links: &HashMap<usize, Vec<usize>>,
            state: &mut [u8],
            in_cycle: &mut Vec<(usize, usize)>,
        ) {
            state[i] = 1;
            for &j in links.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
                match state[j] {
                    0 => visit(j, links, state, in_cycle),
                    1 => in_cycle.push((i, j)),
                    _ => {}
                }
            }
            state[i] = 2;
        }
        for i in 0..n {
            if state[i] == 0 {
                visit(i, &self.links, &mut state, &mut in_cycle);
            }
        }
        for (i, j) in in_cycle {
            let meta = self.documents[i].meta();
            let (source, span) = (Arc::clone(&meta.source), meta.span);
            // Point at the reference that closes the cycle.
            let reference = match &self.documents[i] {
                RuleDocument::Correlation(c) => c
                    .rules
                    .iter()
                    .find(|r| self.lookup(&r.text) == [j])
                    .map(|r| r.span),
                _ => None,
            };
            let target = &self.documents[j].meta().title;
            let d = Diagnostic::new(
                codes::REFERENCE_CYCLE,
                if i == j {
                    format!("correlation `{}` refers to itself", meta.title)
                } else {
                    format!(
                        "correlation `{}` refers to `{target}`, which refers back to it",
                        meta.title
                    )
                },
            )
            .at(
                &source,
                reference.unwrap_or(Span::new(span.start, span.start + 1)),
            )
            .with_label("closes the cycle");
            self.invalidate(i, d);
        }
    }

    fn apply_filters(&mut self) {
        let filters: Vec<(usize, Filter)> = self
            .documents
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match d {
                RuleDocument::Filter(f) => Some((i, f.clone())),
                _ => None,
            })
            .collect();
        for (n, (fi, filter)) in filters.into_iter().enumerate() {
            let source = Arc::clone(&filter.meta.source);
            for r in &filter.rules {
                let Some(target) = self.resolve_one(fi, r, &source) else {
                    continue;
                };
                match &mut self.documents[target] {
                    RuleDocument::Rule(rule) => {
                        if !filter.logsource.covers(&rule.logsource) {
                            let d = Diagnostic::new(
                                codes::FILTER_LOGSOURCE,
                                format!("filter `{}` does not cover the logsource of `{}`; it is not applied", filter.meta.title, rule.meta.title),
                            )
                            .at(&source, r.span);
                            self.diags.push(d);
                            continue;
                        }
                        apply_filter(&mut rule.detection, &filter.detection, n);
                    }
                    RuleDocument::Correlation(_) => {
                        let d = Diagnostic::new(codes::FILTER_ON_CORRELATION, format!("filter `{}` names a correlation; filters apply to detection rules only", filter.meta.title))
                            .at(&source, r.span);
                        self.diags.push(d);
                    }
                    RuleDocument::Filter(_) => {
                        let d = Diagnostic::new(
                            codes::DANGLING_REFERENCE,
                            format!("`{}` is a filter, not a rule", r.text),
                        )
                        .at(&source, r.span);
                        self.invalidate(fi, d);
                    }
                }
            }
        }
    }
}

/// Renames the filter's identifiers under a `_filt<N>_` prefix (so the rule's
/// own `1 of x*` and `them` cannot capture them) and ANDs its condition to
/// every condition of the rule, as pySigma does.
fn apply_filter(rule: &mut Detection, filter: &Detection, n: usize) {
    let prefix = format!("_filt{n}_");
    for ident in &filter.identifiers {
        let mut ident = ident.clone();
        ident.name = format!("{prefix}{}", ident.name);
        rule.identifiers.push(ident);
    }
    let filter_cond = match filter.conditions.as_slice() {
        [one] => rename(one, &prefix),
        many => Expr::Or(many.iter().map(|c| rename(c, &prefix)).collect()),
    };
    for cond in &mut rule.conditions {
        let original = std::mem::replace(cond, Expr::And(Vec::new()));
        *cond = Expr::And(vec![original, filter_cond.clone()]);
    }
}

fn rename(expr: &Expr, prefix: &str) -> Expr {
    match expr {
        Expr::Ident { name, span } => Expr::Ident {
            name: format!("{prefix}{name}"),
            span: *span,
        },
        Expr::Not { expr, span } => Expr::Not {
            expr: Box::new(rename(expr, prefix)),
            span: *span,
        },
        Expr::And(items) => Expr::And(items.iter().map(|e| rename(e, prefix)).collect()),
        Expr::Or(items) => Expr::Or(items.iter().map(|e| rename(e, prefix)).collect()),
        Expr::Of {
            quantifier,
            target,
            span,
            target_span,
        } => Expr::Of {
            quantifier: *quantifier,
            target: OfTarget::Pattern(match target {
                OfTarget::Them => format!("{prefix}*"),
                OfTarget::Pattern(p) => format!("{prefix}{p}"),
            }),
            span: *span,
            target_span: *target_span,
        },
    }
}

/// The documents of one file that lowered, and the references (ids and names)
/// of those that did not.
#[derive(Default)]
struct Lowered {
    documents: Vec<RuleDocument>,
    failed: Vec<String>,
}

fn lower_source(source: &Arc<Source>, config: &Config, diags: &mut Diagnostics) -> Lowered {
    let mut out = Lowered::default();
    let mut variants = 0;
    for doc in syntax::parse(source, diags) {
        match rule::lower_in_file(source, &doc, config, diags, &mut variants) {
            Some(lowered) => out.documents.push(lowered),
            None => {
                let key = |k: &str| doc.root.get(k).and_then(|n| n.scalar_text());
                out.failed
                    .extend(key("id").map(|id| id.to_ascii_lowercase()));
                out.failed.extend(key("name"));
            }
        }
    }
    out
}

/// Visits `path` and, when it is a directory, every file below it in sorted
/// order, skipping hidden entries. `visit` gets each file and whether it was
/// named explicitly (only `path` itself is); I/O problems go to `on_error`.
pub fn walk(
    path: &Path,
    visit: &mut dyn FnMut(&Path, bool),
    on_error: &mut dyn FnMut(&Path, &std::io::Error),
) {
    walk_inner(path, true, visit, on_error);
}

fn walk_inner(
    path: &Path,
    explicit: bool,
    visit: &mut dyn FnMut(&Path, bool),
    on_error: &mut dyn FnMut(&Path, &std::io::Error),
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return on_error(path, &e),
    };
    if !meta.is_dir() {
        return visit(path, explicit);
    }
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => return on_error(path, &e),
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        let hidden = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            walk_inner(&child, false, visit, on_error);
        }
    }
}

/// Rule files: `*.yml`/`*.yaml` below directories, and any file named explicitly.
fn collect(path: &Path, out: &mut Vec<PathBuf>, diags: &mut Diagnostics) {
    walk(
        path,
        &mut |file, explicit| {
            if explicit
                || matches!(
                    file.extension().and_then(|e| e.to_str()),
                    Some("yml" | "yaml")
                )
            {
                out.push(file.to_path_buf());
            }
        },
        &mut |p, e| diags.push(io_error(p, e)),
    );
}

fn io_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    let source = Arc::new(Source::new(path, ""));
    Diagnostic::new(
        codes::IO_ERROR,
        format!("cannot read `{}`: {e}", path.display()),
    )
    .in_file(&source)
}

fn read_source(path: &Path, diags: &mut Diagnostics) -> Option<Arc<Source>> {
    match std::fs::read(path) {
        Ok(bytes) => decode(path, &bytes, diags),
        Err(e) => {
            diags.push(io_error(path, &e));
            None
        }
    }
}

fn decode(path: &Path, bytes: &[u8], diags: &mut Diagnostics) -> Option<Arc<Source>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(Arc::new(Source::new(path, text))),
        Err(e) => {
            let at = e.valid_up_to();
            let source = Arc::new(Source::new(
                path,
                String::from_utf8_lossy(bytes).into_owned(),
            ));
            let byte = bytes.get(at).copied().unwrap_or(0);
            diags.push(
                Diagnostic::new(
                    codes::NOT_UTF8,
                    format!("file is not valid UTF-8: byte 0x{byte:02x} at offset {at}"),
                )
                .at(&source, Span::new(at, at + 1))
                .with_label("invalid UTF-8")
                .with_help("re-save the file as UTF-8"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: Failed login\nname: failed_login\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: ConsoleLogin\n  condition: sel\n";

    #[test]
    fn correlation_references_resolve_across_files() {
        let corr = "title: Many failures\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n  condition: {gte: 5}\n";
        let c = Catalog::from_texts(&[("a.yml", RULE), ("b.yml", corr)], &Config::default());
        assert!(!c.diagnostics().has_errors(), "{:?}", c.diagnostics());
        let corr = c.correlations().next().unwrap();
        assert_eq!(c.referenced(corr).len(), 1);
    }

    #[test]
    fn dangling_and_duplicate() {
        let corr = "title: X\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 5}\n";
        let c = Catalog::from_texts(
            &[("a.yml", RULE), ("b.yml", RULE), ("c.yml", corr)],
            &Config::default(),
        );
        let ids: Vec<&str> = c.diagnostics().iter().map(|d| d.code().id).collect();
        assert!(ids.contains(&"S410"));
        assert!(ids.contains(&"S423"));
        assert!(ids.contains(&"S420"));
        assert_eq!(c.correlations().count(), 0);
    }

    #[test]
    fn cycles_are_reported() {
        let a = "title: A\nname: a\ncorrelation:\n  type: event_count\n  rules: [b]\n  timespan: 5m\n  condition: {gte: 5}\n";
        let b = "title: B\nname: b\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 5}\n";
        let c = Catalog::from_texts(&[("a.yml", a), ("b.yml", b)], &Config::default());
        assert!(c.diagnostics().iter().any(|d| d.code().id == "S422"));
    }

    #[test]
    fn filters_are_and_ed_with_renamed_identifiers() {
        let filter = "title: Not admins\nlogsource: {product: aws}\nfilter:\n  rules: [failed_login]\n  sel:\n    userIdentity.type: Root\n  condition: not sel\n";
        let c = Catalog::from_texts(&[("a.yml", RULE), ("f.yml", filter)], &Config::default());
        assert!(!c.diagnostics().has_errors());
        let rule = c.rules().next().unwrap();
        assert_eq!(
            rule.detection.conditions[0].to_string(),
            "(sel and not _filt0_sel)"
        );
        assert!(rule.detection.identifier("_filt0_sel").is_some());
    }
}
