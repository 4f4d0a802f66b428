//! Correlation rules (Sigma v2.1 §8): typed, with references kept symbolic
//! until the catalog resolves them across files.

use std::fmt;

use crate::diag::codes;
use crate::source::Span;
use crate::syntax::{Node, NodeKind};

use super::meta::{self, Meta};
use super::Ctx;

/// A correlation document.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// Title, id, name, level, ...
    pub meta: Meta,
    /// What the window computes.
    pub kind: CorrelationType,
    /// Referenced rules (ids or names), in order.
    pub rules: Vec<Reference>,
    /// Fields (or aliases) that key the groups; empty = one global group.
    pub group_by: Vec<String>,
    /// The window length.
    pub timespan: Timespan,
    /// The threshold; for temporal types without one, "all rules".
    pub condition: Option<CorrelationCondition>,
    /// Aliases: name → (rule reference, field in that rule's events).
    pub aliases: Vec<Alias>,
    /// Also alert on the base rules.
    pub generate: bool,
}

/// A reference to a rule by id or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written.
    pub text: String,
    /// Where.
    pub span: Span,
}

/// An alias: one field name standing for differently named fields per rule.
#[derive(Debug, Clone)]
pub struct Alias {
    /// The alias.
    pub name: String,
    /// Per referenced rule, the field its events carry.
    pub fields: Vec<(Reference, String)>,
}

/// The seven correlation types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    ValueSum,
    ValueAvg,
    ValuePercentile,
    Temporal,
    TemporalOrdered,
}

impl CorrelationType {
    /// The specification's word.
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::ValueSum => "value_sum",
            CorrelationType::ValueAvg => "value_avg",
            CorrelationType::ValuePercentile => "value_percentile",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
        }
    }

    /// Types that aggregate a field.
    pub fn needs_field(self) -> bool {
        matches!(
            self,
            CorrelationType::ValueCount
                | CorrelationType::ValueSum
                | CorrelationType::ValueAvg
                | CorrelationType::ValuePercentile
        )
    }

    /// `temporal` and `temporal_ordered`.
    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        )
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl CmpOp {
    /// `gt`, `gte`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => "gt",
            CmpOp::Gte => "gte",
            CmpOp::Lt => "lt",
            CmpOp::Lte => "lte",
            CmpOp::Eq => "eq",
            CmpOp::Neq => "neq",
        }
    }

    /// `>`, `>=`, ...
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
            CmpOp::Eq => "=",
            CmpOp::Neq => "!=",
        }
    }

    /// Applies the operator.
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CmpOp::Gt => left > right,
            CmpOp::Gte => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Lte => left <= right,
            CmpOp::Eq => left == right,
            CmpOp::Neq => left != right,
        }
    }
}

/// The threshold: one operator, or a range of two AND-ed.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationCondition {
    /// Operators with their bounds (AND-ed).
    pub ops: Vec<(CmpOp, f64)>,
    /// The aggregated field(s) for value_* types.
    pub fields: Vec<String>,
}

/// A window length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timespan {
    /// In seconds.
    pub seconds: u64,
    /// As written.
    pub text: String,
}

impl fmt::Display for Timespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses `5m`, `1h`, `30s`, `2d` (and pySigma's `w`, `M`, `y`).
pub fn parse_timespan(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let digits = text.get(..text.len() - unit.len_utf8())?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'M' => 2_629_746,
        'y' => 31_556_952,
        _ => return None,
    };
    let s = n.checked_mul(mult)?;
    (s > 0).then_some(s)
}

const KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "status",
    "description",
    "author",
    "references",
    "date",
    "modified",
    "taxonomy",
    "falsepositives",
    "level",
    "generate",
    "correlation",
    "tags",
    "related",
    "license",
    "fields",
    "scope",
];

const SECTION_KEYS: &[&str] = &[
    "type",
    "rules",
    "group-by",
    "timespan",
    "condition",
    "aliases",
    "generate",
];

pub(crate) fn lower(root: &Node, index: usize, ctx: &mut Ctx<'_>) -> Option<Correlation> {
    let meta = meta::lower_meta(root, index, KEYS, ctx);
    let (section_key, section) = root.entry("correlation")?;
    let NodeKind::Map(entries) = &section.kind else {
        ctx.wrong_type("correlation", "a mapping", section);
        return None;
    };
    for (k, _) in entries {
        let name = k.scalar_text().unwrap_or_default();
        if !SECTION_KEYS.contains(&name.as_str()) {
            let mut d = ctx.diag(
                codes::UNKNOWN_KEY,
                k.span,
                format!("unknown key `{name}` in `correlation` is ignored"),
            );
            if matches!(name.as_str(), "groupby" | "group_by" | "group") {
                d = d.with_help("did you mean `group-by`?");
            }
            ctx.report(d);
        }
    }
    let start = Span::new(section_key.span.start, section_key.span.end);
    let kind = match section.get("type") {
        None => {
            ctx.error(codes::MISSING_FIELD, start, "`correlation` has no `type`");
            None
        }
        Some(t) if t.scalar_text().is_none() => {
            ctx.wrong_type("correlation.type", "a string", t);
            None
        }
        Some(t) => match t.scalar_text().as_deref() {
            Some("event_count") => Some(CorrelationType::EventCount),
            Some("value_count") => Some(CorrelationType::ValueCount),
            Some("value_sum") => Some(CorrelationType::ValueSum),
            Some("value_avg") => Some(CorrelationType::ValueAvg),
            Some("value_percentile") => {
                // The specification leaves the percentile's meaning open
                // (SIGMA-SPEC.md §8); sigil gives it none rather than a guess.
                let d = ctx
                    .diag(
                        codes::UNSUPPORTED,
                        t.span,
                        "`value_percentile` has no defined meaning in Sigma 2.1; sigil does not run it",
                    )
                    .with_severity(crate::diag::Severity::Warning)
                    .with_help("use value_avg or value_sum, or a value_count with a threshold");
                ctx.report(d);
                Some(CorrelationType::ValuePercentile)
            }
            Some("temporal") => Some(CorrelationType::Temporal),
            Some("temporal_ordered") => Some(CorrelationType::TemporalOrdered),
            other => {
                let d = ctx
                    .diag(codes::UNKNOWN_CORRELATION_TYPE, t.span, format!("`{}` is not a correlation type", other.unwrap_or("?")))
                    .with_help("use event_count, value_count, value_sum, value_avg, value_percentile, temporal or temporal_ordered");
                ctx.report(d);
                None
            }
        },
    };
    let rules = match section.get("rules") {
        None => {
            ctx.error(
                codes::CORRELATION_FIELD,
                start,
                "`correlation` has no `rules`",
            );
            None
        }
        Some(node) => references(node, ctx),
    };
    let group_by = match section.get("group-by") {
        None
        | Some(Node {
            kind: NodeKind::Null,
            ..
        }) => Vec::new(),
        Some(node) => field_names(ctx, "group-by", node).unwrap_or_default(),
    };
    let timespan = match section.get("timespan") {
        None => {
            ctx.error(
                codes::CORRELATION_FIELD,
                start,
                "`correlation` has no `timespan`",
            );
            None
        }
        Some(node) if node.scalar_text().is_none() => {
            ctx.wrong_type("timespan", "a duration such as `5m`", node);
            None
        }
        Some(node) => {
            let text = node.scalar_text().unwrap_or_default();
            match parse_timespan(&text) {
                Some(seconds) => Some(Timespan { seconds, text }),
                None => {
                    let d = ctx
                        .diag(
                            codes::MALFORMED_TIMESPAN,
                            node.span,
                            format!("`timespan` `{text}` is not a positive number followed by s, m, h or d"),
                        )
                        .with_help("write e.g. `timespan: 5m`");
                    ctx.report(d);
                    None
                }
            }
        }
    };
    let condition = match section.get("condition") {
        None => None,
        Some(node) => Some(condition(node, ctx)?),
    };
    if let Some(kind) = kind {
        let has_field = condition.as_ref().is_some_and(|c| !c.fields.is_empty());
        let cond_node = section.get("condition");
        let cond_span = cond_node.map(|n| n.span).unwrap_or(start);
        let example = if kind.needs_field() {
            "`{gte: 10, field: <field>}`"
        } else {
            "`gte: 10`"
        };
        if condition.is_none() {
            // One message for the missing condition, not one per part of it.
            if !kind.is_temporal() {
                ctx.error(
                    codes::MALFORMED_CORRELATION_CONDITION,
                    start,
                    format!("`{}` needs a `condition` such as {example}", kind.as_str()),
                );
            }
        } else if kind.needs_field() && !has_field {
            ctx.error(
                codes::CORRELATION_FIELD,
                cond_span,
                format!("`{}` needs `condition.field`", kind.as_str()),
            );
        } else if !kind.needs_field() && has_field {
            let field_span = cond_node
                .and_then(|n| n.entry("field"))
                .map(|(k, _)| k.span)
                .unwrap_or(cond_span);
            ctx.error(
                codes::CORRELATION_FIELD,
                field_span,
                format!(
                    "`{}` does not aggregate a field; remove `condition.field`",
                    kind.as_str()
                ),
            );
        }
        if !kind.is_temporal() && condition.as_ref().is_some_and(|c| c.ops.is_empty()) {
            ctx.error(
                codes::MALFORMED_CORRELATION_CONDITION,
                cond_span,
                format!("`{}` needs a `condition` such as {example}", kind.as_str()),
            );
        }
        if kind.is_temporal() && rules.as_ref().is_some_and(|r| r.len() < 2) {
            let span = section.get("rules").map(|n| n.span).unwrap_or(start);
            ctx.error(
                codes::CORRELATION_FIELD,
                span,
                format!("`{}` needs at least two rules", kind.as_str()),
            );
        }
    }
    let aliases = match section.get("aliases") {
        None => Vec::new(),
        Some(node) => aliases(node, ctx),
    };
    let generate = match section.get("generate").or_else(|| root.get("generate")) {
        None => false,
        Some(Node {
            kind: NodeKind::Bool(b),
            ..
        }) => *b,
        Some(node) => {
            ctx.wrong_type("generate", "`true` or `false`", node);
            false
        }
    };
    Some(Correlation {
        meta: meta?,
        kind: kind?,
        rules: rules?,
        group_by,
        timespan: timespan?,
        condition,
        aliases,
        generate,
    })
}

/// A field name or a list of them; `None` when another shape was reported.
fn field_names(ctx: &mut Ctx<'_>, what: &str, node: &Node) -> Option<Vec<String>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Some(Vec::new());
    for item in items {
        match (item.scalar_text(), out.as_mut()) {
            (Some(name), Some(names)) => names.push(name),
            (Some(_), None) => {}
            (None, _) if item.kind == NodeKind::Null => {}
            (None, _) => {
                ctx.wrong_type(what, "a field name or a list of field names", item);
                out = None;
            }
        }
    }
    out
}

fn references(node: &Node, ctx: &mut Ctx<'_>) -> Option<Vec<Reference>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        NodeKind::Str(_) => vec![node],
        _ => {
            ctx.wrong_type("rules", "a list of rule ids or names", node);
            return None;
        }
    };
    if items.is_empty() {
        ctx.error(codes::CORRELATION_FIELD, node.span, "`rules` is empty");
        return None;
    }
    let mut out = Vec::new();
    for item in items {
        match item.scalar_text() {
            Some(text) => out.push(Reference {
                text,
                span: item.span,
            }),
            None => ctx.wrong_type("rules entry", "a rule id or name", item),
        }
    }
    Some(out)
}

fn condition(node: &Node, ctx: &mut Ctx<'_>) -> Option<CorrelationCondition> {
    let NodeKind::Map(entries) = &node.kind else {
        let d = ctx
            .diag(
                codes::MALFORMED_CORRELATION_CONDITION,
                node.span,
                format!(
                    "`condition` must be a mapping such as `gte: 10`, found {}",
                    node.kind_name()
                ),
            )
            .with_help("write `condition: {gte: 10}`");
        ctx.report(d);
        return None;
    };
    let mut out = CorrelationCondition {
        ops: Vec::new(),
        fields: Vec::new(),
    };
    let mut ok = true;
    for (k, v) in entries {
        let key = k.scalar_text().unwrap_or_default();
        let op = match key.as_str() {
            "gt" => CmpOp::Gt,
            "gte" => CmpOp::Gte,
            "lt" => CmpOp::Lt,
            "lte" => CmpOp::Lte,
            "eq" => CmpOp::Eq,
            "neq" => CmpOp::Neq,
            "field" => {
                match field_names(ctx, "condition.field", v) {
                    Some(names) => out.fields.extend(names),
                    None => ok = false,
                }
                continue;
            }
            other => {
                ctx.error(
                    codes::MALFORMED_CORRELATION_CONDITION,
                    k.span,
                    format!("`{other}` is not gt, gte, lt, lte, eq, neq or field"),
                );
                ok = false;
                continue;
            }
        };
        let value = match &v.kind {
            NodeKind::Int { value, .. } => *value as f64,
            NodeKind::Float { value, .. } => *value,
            _ => {
                ctx.error(
                    codes::MALFORMED_CORRELATION_CONDITION,
                    v.span,
                    format!("`{key}` needs a number, found {}", v.kind_name()),
                );
                ok = false;
                continue;
            }
        };
        out.ops.push((op, value));
    }
    if out.ops.len() > 2 {
        ctx.error(
            codes::MALFORMED_CORRELATION_CONDITION,
            node.span,
            "`condition` holds more than two operators",
        );
        ok = false;
    }
    ok.then_some(out)
}

fn aliases(node: &Node, ctx: &mut Ctx<'_>) -> Vec<Alias> {
    let NodeKind::Map(entries) = &node.kind else {
        ctx.wrong_type("aliases", "a mapping of alias → {rule: field}", node);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = k.scalar_text().unwrap_or_default();
        let NodeKind::Map(map) = &v.kind else {
            ctx.wrong_type(&format!("aliases.{name}"), "a mapping of rule → field", v);
            continue;
        };
        let mut fields = Vec::new();
        for (r, f) in map {
            let Some(text) = r.scalar_text() else {
                ctx.wrong_type(&format!("aliases.{name} key"), "a rule id or name", r);
                continue;
            };
            let Some(field) = f.scalar_text() else {
                ctx.wrong_type(&format!("aliases.{name}.{text}"), "a field name", f);
                continue;
            };
            fields.push((Reference { text, span: r.span }, field));
        }
        out.push(Alias { name, fields });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_timespan;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("5m"), Some(300));
        assert_eq!(parse_timespan("1h"), Some(3600));
        assert_eq!(parse_timespan("2d"), Some(172_800));
        assert_eq!(parse_timespan("0s"), None);
        assert_eq!(parse_timespan("5 minutes"), None);
        assert_eq!(parse_timespan("m"), None);
        assert_eq!(parse_timespan("99999999999999999999d"), None);
    }
}
