//! Rule metadata: title, id, status, level, dates, tags, related, logsource and
//! custom fields, each typed and checked.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::diag::codes;
use crate::source::{Source, Span};
use crate::syntax::{Node, NodeKind};

use super::Ctx;

/// Metadata every document kind carries.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Mandatory title.
    pub title: String,
    /// UUID, lower-cased.
    pub id: Option<String>,
    /// Unique name (reference key for correlations).
    pub name: Option<String>,
    /// Related rules.
    pub related: Vec<Related>,
    /// Taxonomy; `sigma` when absent.
    pub taxonomy: Option<String>,
    /// Maturity.
    pub status: Option<Status>,
    /// Free text.
    pub description: Option<String>,
    /// SPDX licence id.
    pub license: Option<String>,
    /// Authors, as written.
    pub author: Option<String>,
    /// Reference URLs.
    pub references: Vec<String>,
    /// Creation date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Last change, `YYYY-MM-DD`.
    pub modified: Option<String>,
    /// Namespaced tags.
    pub tags: Vec<Tag>,
    /// Known false positives.
    pub falsepositives: Vec<String>,
    /// Severity.
    pub level: Option<Level>,
    /// Fields to show with a match.
    pub fields: Vec<String>,
    /// Scope, e.g. `server`.
    pub scope: Vec<String>,
    /// Fields the specification does not define, kept as JSON.
    pub custom: BTreeMap<String, serde_json::Value>,
    /// The file the document came from.
    pub source: Arc<Source>,
    /// Index of the document in its file.
    pub document: usize,
    /// The document's span.
    pub span: Span,
    /// Span of the `id` value, when present.
    pub id_span: Option<Span>,
    /// Span of the `name` value, when present.
    pub name_span: Option<Span>,
}

impl Meta {
    /// `path` plus, for multi-document files, `#N`.
    pub fn origin(&self) -> String {
        let path = self.source.path().display().to_string();
        if self.document > 0 {
            format!("{path}#{}", self.document)
        } else {
            path
        }
    }
}

/// A tag split at its first dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `attack`, `cve`, ...
    pub namespace: String,
    /// The rest.
    pub name: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(&self.namespace)
        } else {
            write!(f, "{}.{}", self.namespace, self.name)
        }
    }
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// The specification's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// Rule maturity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Status {
    Stable,
    Test,
    Experimental,
    Deprecated,
    Unsupported,
}

impl Status {
    /// The specification's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stable => "stable",
            Status::Test => "test",
            Status::Experimental => "experimental",
            Status::Deprecated => "deprecated",
            Status::Unsupported => "unsupported",
        }
    }
}

/// A `related` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// The related rule's id.
    pub id: String,
    /// How it is related.
    pub kind: RelatedType,
}

/// Kinds of `related` links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RelatedType {
    Derived,
    Obsolete,
    Merged,
    Renamed,
    Similar,
}

/// Where a rule's events come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    /// e.g. `process_creation`.
    pub category: Option<String>,
    /// e.g. `aws`.
    pub product: Option<String>,
    /// e.g. `cloudtrail`.
    pub service: Option<String>,
    /// Prose, not evaluated.
    pub definition: Option<String>,
    /// Other keys.
    pub custom: BTreeMap<String, String>,
}

impl LogSource {
    /// True when every field this logsource sets is set equally in `rule`:
    /// a filter for `product: aws` covers a rule for `product: aws, service: cloudtrail`.
    pub fn covers(&self, rule: &LogSource) -> bool {
        let fits = |mine: &Option<String>, theirs: &Option<String>| match mine {
            None => true,
            Some(m) => theirs.as_deref() == Some(m.as_str()),
        };
        fits(&self.category, &rule.category)
            && fits(&self.product, &rule.product)
            && fits(&self.service, &rule.service)
    }
}

const NAMESPACES: &[&str] = &["attack", "car", "cve", "d3fend", "detection", "stp", "tlp"];

/// Reads the metadata shared by every document kind. `known` lists the
/// document kind's defined top-level keys; others are custom fields.
pub(crate) fn lower_meta(
    root: &Node,
    document: usize,
    known: &[&str],
    ctx: &mut Ctx<'_>,
) -> Option<Meta> {
    let mut meta = Meta {
        title: String::new(),
        id: None,
        name: None,
        related: Vec::new(),
        taxonomy: None,
        status: None,
        description: None,
        license: None,
        author: None,
        references: Vec::new(),
        date: None,
        modified: None,
        tags: Vec::new(),
        falsepositives: Vec::new(),
        level: None,
        fields: Vec::new(),
        scope: Vec::new(),
        custom: BTreeMap::new(),
        source: Arc::clone(ctx.source),
        document,
        span: root.span,
        id_span: None,
        name_span: None,
    };
    let NodeKind::Map(entries) = &root.kind else {
        return None;
    };
    let mut has_title = false;
    for (key, value) in entries {
        let Some(k) = key.scalar_text() else {
            ctx.wrong_type("key", "a string", key);
            continue;
        };
        match k.as_str() {
            "title" => {
                has_title = true;
                if let Some(t) = string(ctx, "title", value) {
                    if t.trim().is_empty() {
                        ctx.error(codes::MISSING_FIELD, value.span, "`title` is empty");
                    } else if t.chars().count() > 256 {
                        ctx.error(
                            codes::FIELD_TOO_LONG,
                            value.span,
                            format!("`title` has {} characters, over 256", t.chars().count()),
                        );
                    }
                    meta.title = t;
                }
            }
            "id" => {
                if let Some(id) = string(ctx, "id", value) {
                    if is_uuid(&id) {
                        meta.id = Some(id.to_ascii_lowercase());
                        meta.id_span = Some(value.span);
                    } else {
                        let d = ctx
                            .diag(
                                codes::MALFORMED_ID,
                                value.span,
                                format!("`id` `{id}` is not a UUID"),
                            )
                            .with_label("expected 8-4-4-4-12 hexadecimal digits")
                            .with_help("generate one with `uuidgen`");
                        ctx.report(d);
                    }
                }
            }
            "name" => {
                if let Some(name) = string(ctx, "name", value) {
                    if name.is_empty() || name.chars().any(char::is_whitespace) {
                        let message = if name.trim().is_empty() {
                            "`name` is empty".to_string()
                        } else {
                            format!("`name` `{name}` contains whitespace")
                        };
                        let d = ctx
                            .diag(codes::INVALID_NAME, value.span, message)
                            .with_help(format!(
                                "names are references; write e.g. `{}`",
                                match name.split_whitespace().collect::<Vec<_>>().join("_") {
                                    n if n.is_empty() => "my_rule".to_string(),
                                    n => n,
                                }
                            ));
                        ctx.report(d);
                    } else {
                        if name.chars().count() > 256 {
                            ctx.error(
                                codes::FIELD_TOO_LONG,
                                value.span,
                                "`name` has over 256 characters",
                            );
                        }
                        meta.name = Some(name);
                        meta.name_span = Some(value.span);
                    }
                }
            }
            "related" => meta.related = related(ctx, value),
            "taxonomy" => meta.taxonomy = string(ctx, "taxonomy", value),
            "status" => {
                if let Some(s) = string(ctx, "status", value) {
                    meta.status = match s.as_str() {
                        "stable" => Some(Status::Stable),
                        "test" => Some(Status::Test),
                        "experimental" => Some(Status::Experimental),
                        "deprecated" => Some(Status::Deprecated),
                        "unsupported" => Some(Status::Unsupported),
                        _ => {
                            ctx.error(
                                codes::INVALID_STATUS,
                                value.span,
                                format!("`status` `{s}` is not stable, test, experimental, deprecated or unsupported"),
                            );
                            None
                        }
                    }
                }
            }
            "description" => {
                meta.description = string(ctx, "description", value);
                if meta
                    .description
                    .as_ref()
                    .is_some_and(|d| d.chars().count() > 65_535)
                {
                    ctx.error(
                        codes::FIELD_TOO_LONG,
                        value.span,
                        "`description` has over 65,535 characters",
                    );
                }
            }
            "license" => meta.license = string(ctx, "license", value),
            "author" => {
                meta.author = match &value.kind {
                    NodeKind::Seq(items) => Some(
                        items
                            .iter()
                            .filter_map(Node::scalar_text)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    _ => string(ctx, "author", value),
                }
            }
            "references" => meta.references = string_list(ctx, "references", value, true),
            "date" => meta.date = date(ctx, "date", value),
            "modified" => meta.modified = date(ctx, "modified", value),
            "tags" => meta.tags = tags(ctx, value),
            "falsepositives" => {
                meta.falsepositives = string_list(ctx, "falsepositives", value, true)
            }
            "level" => {
                if let Some(s) = string(ctx, "level", value) {
                    meta.level = match s.as_str() {
                        "informational" => Some(Level::Informational),
                        "low" => Some(Level::Low),
                        "medium" => Some(Level::Medium),
                        "high" => Some(Level::High),
                        "critical" => Some(Level::Critical),
                        _ => {
                            ctx.error(
                                codes::INVALID_LEVEL,
                                value.span,
                                format!("`level` `{s}` is not informational, low, medium, high or critical"),
                            );
                            None
                        }
                    }
                }
            }
            "fields" => meta.fields = string_list(ctx, "fields", value, false),
            "scope" => meta.scope = string_list(ctx, "scope", value, true),
            other if known.contains(&other) => {}
            other => {
                if let Some(close) = known
                    .iter()
                    .chain(["reference", "falsepositive", "tag", "author"].iter())
                    .find(|k| is_misspelling(other, k))
                {
                    let suggestion = if *close == "reference" {
                        "references"
                    } else if *close == "falsepositive" {
                        "falsepositives"
                    } else if *close == "tag" {
                        "tags"
                    } else {
                        close
                    };
                    let d = ctx
                        .diag(
                            codes::UNKNOWN_KEY,
                            key.span,
                            format!("unknown field `{other}` is kept as a custom field"),
                        )
                        .with_help(format!("did you mean `{suggestion}`?"));
                    ctx.report(d);
                }
                meta.custom.insert(other.to_string(), to_json(value));
            }
        }
    }
    if !has_title {
        let d = ctx
            .diag(
                codes::MISSING_FIELD,
                Span::new(root.span.start, root.span.start + 1),
                "document has no `title`",
            )
            .with_help("add `title:` with a short description of what the rule detects");
        ctx.report(d);
        return None;
    }
    Some(meta)
}

fn is_misspelling(word: &str, known: &str) -> bool {
    if word == known {
        return false;
    }
    let w = word.to_ascii_lowercase();
    if w == known {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (w.chars().collect(), known.chars().collect());
    if a.len().abs_diff(b.len()) > 1 || known.len() < 4 {
        return false;
    }
    // one edit (insert, delete, substitute) or one swap
    super::modifier::edit_distance(&w, known) == 1
        || (a.len() == b.len() && {
            let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            diffs.len() == 2 && a[diffs[0]] == b[diffs[1]] && a[diffs[1]] == b[diffs[0]]
        })
}

pub(crate) fn lower_logsource(root: &Node, ctx: &mut Ctx<'_>) -> Option<LogSource> {
    let Some(node) = root.get("logsource") else {
        let d = ctx
            .diag(
                codes::MISSING_FIELD,
                Span::new(root.span.start, root.span.start + 1),
                "document has no `logsource`",
            )
            .with_help("for CloudTrail write `logsource: {product: aws, service: cloudtrail}`");
        ctx.report(d);
        return None;
    };
    let NodeKind::Map(entries) = &node.kind else {
        ctx.wrong_type("logsource", "a mapping (category, product, service)", node);
        return None;
    };
    let mut ls = LogSource::default();
    for (key, value) in entries {
        let Some(k) = key.scalar_text() else {
            continue;
        };
        let Some(v) = (match &value.kind {
            NodeKind::Null => None,
            _ => match value.scalar_text() {
                Some(v) => Some(v),
                None => {
                    ctx.wrong_type(&format!("logsource.{k}"), "a string", value);
                    continue;
                }
            },
        }) else {
            continue;
        };
        if k != "definition"
            && !v.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
            })
        {
            let d = ctx
                .diag(
                    codes::LOGSOURCE_VALUE,
                    value.span,
                    format!("logsource `{k}` value `{v}` is not lower case with `_`, `.` or `-`"),
                )
                .with_help(format!("write `{}`", v.to_lowercase().replace(' ', "_")));
            ctx.report(d);
        }
        match k.as_str() {
            "category" => ls.category = Some(v),
            "product" => ls.product = Some(v),
            "service" => ls.service = Some(v),
            "definition" => ls.definition = Some(v),
            _ => {
                ls.custom.insert(k, v);
            }
        }
    }
    Some(ls)
}

pub(crate) fn string(ctx: &mut Ctx<'_>, what: &str, node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Str(s) => Some(s.clone()),
        NodeKind::Int { .. } | NodeKind::Float { .. } | NodeKind::Bool(_) => node.scalar_text(),
        _ => {
            ctx.wrong_type(what, "a string", node);
            None
        }
    }
}

pub(crate) fn string_list(
    ctx: &mut Ctx<'_>,
    what: &str,
    node: &Node,
    single_ok: bool,
) -> Vec<String> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        NodeKind::Null => return Vec::new(),
        _ if single_ok && node.scalar_text().is_some() => vec![node],
        _ => {
            ctx.wrong_type(what, "a list of strings", node);
            return Vec::new();
        }
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let Some(s) = item.scalar_text() else {
            if item.kind != NodeKind::Null {
                ctx.wrong_type(&format!("{what} entry"), "a string", item);
            }
            continue;
        };
        if out.contains(&s) {
            ctx.error(
                codes::DUPLICATE_LIST_ENTRY,
                item.span,
                format!("`{what}` lists `{s}` twice"),
            );
            continue;
        }
        out.push(s);
    }
    out
}

fn date(ctx: &mut Ctx<'_>, what: &str, node: &Node) -> Option<String> {
    let s = string(ctx, what, node)?;
    if is_date(&s) {
        return Some(s);
    }
    let mut d = ctx.diag(
        codes::MALFORMED_DATE,
        node.span,
        format!("`{what}` `{s}` is not a valid YYYY-MM-DD date"),
    );
    if s.len() == 10 && s.as_bytes().get(4) == Some(&b'/') {
        d = d.with_help(format!(
            "Sigma v2 writes dates as `{}`",
            s.replace('/', "-")
        ));
    }
    ctx.report(d);
    None
}

/// `YYYY-MM-DD` with a real month and day (leap years included).
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// 8-4-4-4-12 hexadecimal digits.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn tags(ctx: &mut Ctx<'_>, node: &Node) -> Vec<Tag> {
    let mut out = Vec::new();
    let NodeKind::Seq(items) = &node.kind else {
        if node.kind != NodeKind::Null {
            ctx.wrong_type("tags", "a list of strings", node);
        }
        return out;
    };
    let mut seen: Vec<String> = Vec::new();
    for item in items {
        let Some(text) = item.scalar_text() else {
            ctx.wrong_type("tag", "a string", item);
            continue;
        };
        if seen.contains(&text) {
            ctx.error(
                codes::DUPLICATE_LIST_ENTRY,
                item.span,
                format!("`tags` lists `{text}` twice"),
            );
            continue;
        }
        seen.push(text.clone());
        let (ns, name) = text.split_once('.').unwrap_or((text.as_str(), ""));
        let well_formed = !ns.is_empty()
            && !name.is_empty()
            && ns
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
            && name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
            });
        if !well_formed {
            let d = ctx
                .diag(
                    codes::MALFORMED_TAG,
                    item.span,
                    format!("tag `{text}` is not `namespace.value` in lower case"),
                )
                .with_help(
                    if text.to_ascii_lowercase().starts_with('t') && !text.contains('.') {
                        format!(
                            "ATT&CK techniques are written `attack.{}`",
                            text.to_ascii_lowercase()
                        )
                    } else {
                        "tags look like `attack.t1562.008` or `attack.defense-evasion`".to_string()
                    },
                );
            ctx.report(d);
        } else if !NAMESPACES.contains(&ns) {
            let d = ctx
                .diag(
                    codes::MALFORMED_TAG,
                    item.span,
                    format!("tag namespace `{ns}` is not a Sigma namespace"),
                )
                .with_help("namespaces are attack, car, cve, d3fend, detection, stp, tlp");
            ctx.report(d);
        }
        out.push(Tag {
            namespace: ns.to_string(),
            name: name.to_string(),
        });
    }
    out
}

fn related(ctx: &mut Ctx<'_>, node: &Node) -> Vec<Related> {
    let mut out = Vec::new();
    let NodeKind::Seq(items) = &node.kind else {
        ctx.wrong_type("related", "a list of {id, type}", node);
        return out;
    };
    for item in items {
        let (Some(id), Some(kind)) = (item.get("id"), item.get("type")) else {
            ctx.error(
                codes::INVALID_RELATED,
                item.span,
                "`related` entry needs both `id` and `type`",
            );
            continue;
        };
        let Some(id_text) = id.scalar_text() else {
            ctx.wrong_type("related.id", "a UUID string", id);
            continue;
        };
        if !is_uuid(&id_text) {
            ctx.error(
                codes::MALFORMED_ID,
                id.span,
                format!("related id `{id_text}` is not a UUID"),
            );
            continue;
        }
        let kind_text = kind.scalar_text().unwrap_or_default();
        let kind = match kind_text.as_str() {
            "derived" => RelatedType::Derived,
            "obsolete" => RelatedType::Obsolete,
            "merged" => RelatedType::Merged,
            "renamed" => RelatedType::Renamed,
            "similar" => RelatedType::Similar,
            other => {
                let mut d = ctx.diag(
                    codes::INVALID_RELATED,
                    kind.span,
                    format!("related type `{other}` is not derived, obsolete, merged, renamed or similar"),
                );
                if other == "obsoletes" {
                    d = d.with_help("Sigma v2 renamed `obsoletes` to `obsolete`");
                }
                ctx.report(d);
                continue;
            }
        };
        out.push(Related {
            id: id_text.to_ascii_lowercase(),
            kind,
        });
    }
    out
}

/// A node as JSON, for custom fields.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Int { value, .. } => Value::from(*value),
        NodeKind::Float { value, .. } => serde_json::Number::from_f64(*value)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        NodeKind::Str(s) => Value::String(s.clone()),
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_text().unwrap_or_default(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_uuids() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024/01/31"));
        assert!(!is_date("2024-13-01"));
        assert!(is_uuid("5f0c5e7e-1b1e-4d3b-9a3f-0f8a1c2b3d4e"));
        assert!(!is_uuid("5f0c5e7e-1b1e-4d3b-9a3f-0f8a1c2b3d4"));
    }

    #[test]
    fn misspellings() {
        assert!(is_misspelling("titel", "title"));
        assert!(is_misspelling("falsepositive", "falsepositives"));
        assert!(!is_misspelling("simulation", "description"));
        assert!(!is_misspelling("regression_tests_path", "references"));
    }
}
