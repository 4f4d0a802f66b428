//! Filters (meta filters, Sigma v2.1 §9): a detection AND-ed to the rules they
//! name, as pySigma combines them.

use crate::diag::codes;
use crate::source::Span;
use crate::syntax::{Node, NodeKind};

use super::correlation::Reference;
use super::detection::{self, Detection};
use super::meta::{self, LogSource, Meta};
use super::Ctx;

/// A filter document.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Title, id, ...
    pub meta: Meta,
    /// Which rules' logsources it covers.
    pub logsource: LogSource,
    /// The rules it applies to.
    pub rules: Vec<Reference>,
    /// Its identifiers and condition (AND-ed to each rule's condition).
    pub detection: Detection,
}

const KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "description",
    "author",
    "date",
    "modified",
    "taxonomy",
    "logsource",
    "filter",
    "references",
    "status",
    "level",
    "tags",
    "related",
    "license",
];

pub(crate) fn lower(root: &Node, index: usize, ctx: &mut Ctx<'_>) -> Option<Filter> {
    let meta = meta::lower_meta(root, index, KEYS, ctx);
    let logsource = meta::lower_logsource(root, ctx);
    let (key, section) = root.entry("filter")?;
    let NodeKind::Map(entries) = &section.kind else {
        ctx.wrong_type(
            "filter",
            "a mapping with `rules`, identifiers and `condition`",
            section,
        );
        return None;
    };
    let rules = match section.get("rules") {
        None => {
            ctx.error(codes::MISSING_FIELD, key.span, "`filter` has no `rules`");
            None
        }
        Some(node) => {
            let items: Vec<&Node> = match &node.kind {
                NodeKind::Seq(items) => items.iter().collect(),
                _ => vec![node],
            };
            let mut refs = Vec::new();
            let mut bad = false;
            for item in items {
                match item.scalar_text() {
                    Some(text) => refs.push(Reference {
                        text,
                        span: item.span,
                    }),
                    None if item.kind == NodeKind::Null => {}
                    None => {
                        ctx.wrong_type("filter.rules entry", "a rule id or name", item);
                        bad = true;
                    }
                }
            }
            if bad {
                None
            } else if refs.is_empty() {
                ctx.error(
                    codes::MISSING_FIELD,
                    node.span,
                    "`filter.rules` names no rule",
                );
                None
            } else {
                Some(refs)
            }
        }
    };
    // The detection part is the filter section without `rules`.
    let body = Node {
        kind: NodeKind::Map(
            entries
                .iter()
                .filter(|(k, _)| k.scalar_text().as_deref() != Some("rules"))
                .cloned()
                .collect(),
        ),
        span: section.span,
        quoted: false,
    };
    let detection = detection::lower(key, &body, ctx);
    if let Some(d) = &detection {
        let mut has_not = false;
        for c in &d.conditions {
            detection::walk(c, &mut |e| {
                has_not |= matches!(e, crate::syntax::condition::Expr::Not { .. })
            });
        }
        if !has_not {
            let span = section
                .entry("condition")
                .map(|(k, _)| k.span)
                .unwrap_or(Span::point(section.span.start));
            let dg = ctx
                .diag(codes::FILTER_WITHOUT_NOT, span, "filter condition has no `not`, so it restricts the rules instead of excluding events")
                .with_help("write `condition: not selection` to exclude what the selection describes");
            ctx.report(dg);
        }
    }
    Some(Filter {
        meta: meta?,
        logsource: logsource?,
        rules: rules?,
        detection: detection?,
    })
}
