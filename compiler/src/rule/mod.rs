//! The typed rule AST and the `lower` stage that builds it from syntax nodes.
//!
//! After `lower`, a document is well-formed: every modifier is resolved into a
//! [`Test`], every condition refers to defined identifiers. Spans are kept so
//! later cross-document checks can still point at the source.

mod correlation;
mod detection;
mod field;
mod filter;
mod meta;
pub mod modifier;
pub mod value;

use std::sync::Arc;

pub use correlation::{
    Alias, CmpOp, Correlation, CorrelationCondition, CorrelationType, Reference, Timespan,
};
pub use detection::{Detection, Identifier, Search};
pub use field::{FieldTest, Link, Number, Position, RegexFlags, Test, TimePart, ValueTest};
pub use filter::Filter;
pub use meta::{Level, LogSource, Meta, Related, RelatedType, Status, Tag};
pub use modifier::Modifier;
pub use value::{Pattern, Piece};

use crate::diag::{codes, Code, Diagnostic, Diagnostics};
use crate::source::{Source, Span};
use crate::syntax::{Document as SyntaxDocument, Node, NodeKind};
use crate::Config;

/// A detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Title, id, tags, level, ...
    pub meta: Meta,
    /// Where the events come from.
    pub logsource: LogSource,
    /// Search identifiers and condition.
    pub detection: Detection,
}

/// One lowered YAML document.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum RuleDocument {
    /// A detection rule.
    Rule(Rule),
    /// A correlation rule.
    Correlation(Correlation),
    /// A filter (meta filter).
    Filter(Filter),
}

impl RuleDocument {
    /// Metadata common to every kind.
    pub fn meta(&self) -> &Meta {
        match self {
            RuleDocument::Rule(r) => &r.meta,
            RuleDocument::Correlation(c) => &c.meta,
            RuleDocument::Filter(f) => &f.meta,
        }
    }

    /// `rule`, `correlation` or `filter`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            RuleDocument::Rule(_) => "rule",
            RuleDocument::Correlation(_) => "correlation",
            RuleDocument::Filter(_) => "filter",
        }
    }
}

/// Shared state of one document's lowering.
pub(crate) struct Ctx<'a> {
    pub source: &'a Arc<Source>,
    pub diags: &'a mut Diagnostics,
    pub config: &'a Config,
    errors: usize,
    /// Value variants beyond the first of each value, so far in this file
    /// (bounded by `field::MAX_FILE_VARIANTS`).
    pub variants: &'a mut usize,
}

impl Ctx<'_> {
    pub fn diag(&self, code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, message).at(self.source, span)
    }

    pub fn report(&mut self, d: Diagnostic) {
        if d.is_error() {
            self.errors += 1;
        }
        self.diags.push(d);
    }

    pub fn error(&mut self, code: Code, span: Span, message: impl Into<String>) {
        let d = self.diag(code, span, message);
        self.report(d);
    }

    /// Reports a wrong node kind.
    pub fn wrong_type(&mut self, what: &str, expected: &str, node: &Node) {
        let d = self
            .diag(
                codes::WRONG_TYPE,
                node.span,
                format!("`{what}` must be {expected}, found {}", node.kind_name()),
            )
            .with_label(format!("expected {expected}"));
        self.report(d);
    }
}

/// Lowers one YAML document. Returns `None` when the document has errors; all
/// of them are in `diags`.
pub fn lower(
    source: &Arc<Source>,
    doc: &SyntaxDocument,
    config: &Config,
    diags: &mut Diagnostics,
) -> Option<RuleDocument> {
    lower_in_file(source, doc, config, diags, &mut 0)
}

/// [`lower`] for one of the documents of a file: `variants` carries the
/// count of value variants from document to document, so the bound on them
/// holds for the whole file.
pub(crate) fn lower_in_file(
    source: &Arc<Source>,
    doc: &SyntaxDocument,
    config: &Config,
    diags: &mut Diagnostics,
    variants: &mut usize,
) -> Option<RuleDocument> {
    let mut ctx = Ctx {
        source,
        diags,
        config,
        errors: 0,
        variants,
    };
    if doc.damaged {
        // Part of the document was dropped by the YAML stage (reported there);
        // lowering the rest would report the stand-in nulls as new problems.
        return None;
    }
    let root = &doc.root;
    let NodeKind::Map(_) = &root.kind else {
        ctx.wrong_type("document", "a mapping of rule fields", root);
        return None;
    };
    let kinds: Vec<(&str, &Node)> = ["detection", "correlation", "filter"]
        .into_iter()
        .filter_map(|k| root.entry(k).map(|(key, _)| (k, key)))
        .collect();
    let lowered = match kinds.as_slice() {
        [] => {
            let span = root
                .entry("title")
                .map(|(k, _)| k.span)
                .unwrap_or(Span::new(root.span.start, root.span.start + 1));
            let d = ctx
                .diag(
                    codes::UNKNOWN_DOCUMENT,
                    span,
                    "document has no `detection`, `correlation` or `filter` section",
                )
                .with_help(
                    "a rule needs `detection`; a correlation rule `correlation`; a filter `filter`",
                );
            let d = if root.get("title").is_some() && root.get("logsource").is_some() {
                Diagnostic::new(codes::MISSING_FIELD, "rule has no `detection` section")
                    .at(source, span)
                    .with_help(
                        "add `detection:` with at least one search identifier and a `condition`",
                    )
            } else {
                d
            };
            ctx.report(d);
            None
        }
        [("detection", _)] => lower_rule(root, doc.index, &mut ctx).map(RuleDocument::Rule),
        [("correlation", _)] => {
            correlation::lower(root, doc.index, &mut ctx).map(RuleDocument::Correlation)
        }
        [(_, _)] => filter::lower(root, doc.index, &mut ctx).map(RuleDocument::Filter),
        [_, (second, key), ..] => {
            let d = ctx
                .diag(
                    codes::CONFLICTING_DOCUMENT,
                    key.span,
                    format!(
                        "document has both `{}` and `{second}`",
                        kinds.first().map(|k| k.0).unwrap_or("")
                    ),
                )
                .with_help("split the document in two with `---`");
            ctx.report(d);
            None
        }
    };
    if ctx.errors > 0 || doc.has_errors {
        None
    } else {
        lowered
    }
}

const RULE_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "related",
    "taxonomy",
    "status",
    "description",
    "license",
    "author",
    "references",
    "date",
    "modified",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
    "tags",
    "scope",
];

fn lower_rule(root: &Node, index: usize, ctx: &mut Ctx<'_>) -> Option<Rule> {
    let meta = meta::lower_meta(root, index, RULE_KEYS, ctx);
    let logsource = meta::lower_logsource(root, ctx);
    let detection = match root.entry("detection") {
        Some((key, node)) => detection::lower(key, node, ctx),
        None => None,
    };
    Some(Rule {
        meta: meta?,
        logsource: logsource?,
        detection: detection?,
    })
}
