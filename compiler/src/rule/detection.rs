//! The `detection` section: search identifiers and the condition, with the
//! identifier lints (undefined, unused, patterns matching nothing).

use crate::diag::codes;
use crate::source::Span;
use crate::syntax::condition::{self, ConditionError, ConditionWarning, Expr, OfTarget};
use crate::syntax::{Node, NodeKind};

use super::field::{self, FieldTest};
use super::Ctx;

/// The detection section of a rule (or a filter).
#[derive(Debug, Clone)]
pub struct Detection {
    /// Search identifiers in source order.
    pub identifiers: Vec<Identifier>,
    /// One or more conditions (OR-ed); spans point into the rule file.
    pub conditions: Vec<Expr>,
}

/// A named search.
#[derive(Debug, Clone)]
pub struct Identifier {
    /// The name.
    pub name: String,
    /// Where the name is written.
    pub span: Span,
    /// What it searches.
    pub search: Search,
}

/// The structure of an identifier's body.
#[derive(Debug, Clone)]
pub enum Search {
    /// A map: every entry must hold.
    AllOf(Vec<Search>),
    /// A list of maps: any must hold.
    AnyOf(Vec<Search>),
    /// One field (or keyword) item.
    Test(FieldTest),
}

impl Detection {
    /// The identifier called `name`.
    pub fn identifier(&self, name: &str) -> Option<&Identifier> {
        self.identifiers.iter().find(|i| i.name == name)
    }

    /// Names an `of` target ranges over. `them` and patterns not starting with
    /// `_` skip `_`-prefixed identifiers.
    pub fn resolve(&self, target: &OfTarget) -> Vec<&str> {
        self.identifiers
            .iter()
            .map(|i| i.name.as_str())
            .filter(|name| match target {
                OfTarget::Them => !name.starts_with('_'),
                OfTarget::Pattern(p) => {
                    (p.starts_with('_') || !name.starts_with('_')) && glob_match(p, name)
                }
            })
            .collect()
    }
}

/// Whole-name match with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Lowers a `detection` section (or a filter's `filter` section, whose `rules`
/// the caller has removed). `key` is the section's key, for messages.
pub(crate) fn lower(key: &Node, node: &Node, ctx: &mut Ctx<'_>) -> Option<Detection> {
    let section = key.scalar_text().unwrap_or_default();
    let NodeKind::Map(entries) = &node.kind else {
        ctx.wrong_type(
            &section,
            "a mapping of search identifiers and `condition`",
            node,
        );
        return None;
    };
    let mut identifiers = Vec::new();
    let mut condition_node = None;
    let mut ok = true;
    for (key, value) in entries {
        let Some(name) = key.scalar_text() else {
            ctx.wrong_type("search identifier", "a name", key);
            ok = false;
            continue;
        };
        match name.as_str() {
            "condition" => condition_node = Some((key, value)),
            "timeframe" => {
                let d = ctx
                    .diag(
                        codes::LEGACY_TIMEFRAME,
                        key.span,
                        format!("`timeframe` in `{section}` is Sigma v1 syntax"),
                    )
                    .with_help("write a correlation rule with `timespan` instead");
                ctx.report(d);
                ok = false;
            }
            _ if value.kind == NodeKind::Null => {
                ctx.error(
                    codes::EMPTY_IDENTIFIER,
                    key.span,
                    format!("search identifier `{name}` has no body"),
                );
                identifiers.push(Identifier {
                    name,
                    span: key.span,
                    search: Search::AnyOf(Vec::new()),
                });
                ok = false;
            }
            _ => match lower_search(value, ctx, 0) {
                Some(search) => identifiers.push(Identifier {
                    name,
                    span: key.span,
                    search,
                }),
                None => {
                    // Poisoned: the name stays defined so the condition is
                    // still checked without follow-on "undefined" errors.
                    identifiers.push(Identifier {
                        name,
                        span: key.span,
                        search: Search::AnyOf(Vec::new()),
                    });
                    ok = false;
                }
            },
        }
    }
    let Some((cond_key, cond_value)) = condition_node else {
        let d = ctx
            .diag(
                codes::MISSING_FIELD,
                key.span,
                format!("`{section}` has no `condition`"),
            )
            .with_help(match identifiers.first() {
                Some(i) => format!("add `condition: {}`", i.name),
                None => "add search identifiers and a `condition`".to_string(),
            });
        ctx.report(d);
        return None;
    };
    if identifiers.is_empty() && ok {
        ctx.error(
            codes::MISSING_FIELD,
            cond_key.span,
            format!("`{section}` defines no search identifier"),
        );
        return None;
    }
    let condition_nodes: Vec<&Node> = match &cond_value.kind {
        NodeKind::Seq(items) if !items.is_empty() => items.iter().collect(),
        _ => vec![cond_value],
    };
    let mut detection = Detection {
        identifiers,
        conditions: Vec::new(),
    };
    let mut conditions_ok = true;
    for cn in condition_nodes {
        let Some(text) = cn.as_str() else {
            if cn.kind == NodeKind::Null {
                ctx.error(
                    codes::EMPTY_CONDITION,
                    cond_key.span,
                    "`condition` is empty",
                );
            } else {
                ctx.wrong_type("condition", "a string", cn);
            }
            conditions_ok = false;
            continue;
        };
        match parse_condition(text, cn, ctx) {
            Some(expr) => detection.conditions.push(expr),
            None => conditions_ok = false,
        }
    }
    if !conditions_ok {
        return None;
    }
    if !check_references(&detection, ctx) || !ok {
        return None;
    }
    Some(detection)
}

/// Offset of the condition text inside the file, when it can be recovered
/// exactly (plain or single-line quoted scalars); otherwise the scalar start.
fn text_offset(text: &str, node: &Node, ctx: &Ctx<'_>) -> Option<usize> {
    let raw = ctx.source.slice(node.span);
    if raw == text {
        return Some(node.span.start);
    }
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    (inner == text && (raw.starts_with('\'') || raw.starts_with('"')))
        .then_some(node.span.start + 1)
}

pub(crate) fn parse_condition(text: &str, node: &Node, ctx: &mut Ctx<'_>) -> Option<Expr> {
    let offset = text_offset(text, node, ctx);
    let map = |s: Span| match offset {
        Some(o) => Span::new(o + s.start, o + s.end.max(s.start + 1)),
        None => node.span,
    };
    let mut warnings = Vec::new();
    let result = condition::parse(text, &mut warnings);
    for w in warnings {
        let ConditionWarning::UppercaseOperator { span, word } = w;
        let d = ctx
            .diag(
                codes::UPPERCASE_OPERATOR,
                map(span),
                format!("operator `{word}` is not lower case"),
            )
            .with_help(format!("write `{}`", word.to_ascii_lowercase()));
        ctx.report(d);
    }
    match result {
        Ok(mut expr) => {
            match offset {
                Some(o) => expr.shift(o),
                None => reset_spans(&mut expr, node.span),
            }
            Some(expr)
        }
        Err(err) => {
            let d = match err {
                ConditionError::Empty => {
                    ctx.diag(codes::EMPTY_CONDITION, node.span, "`condition` is empty")
                }
                ConditionError::InvalidCharacter { span } => {
                    let c = text.get(span.start..span.end).unwrap_or("?");
                    let mut d = ctx
                        .diag(
                            codes::INVALID_CHARACTER,
                            map(span),
                            format!("unexpected character `{c}` in condition"),
                        )
                        .with_label("no condition token starts here");
                    if matches!(c, "&" | "!") {
                        d = d.with_help("write `and`, `or`, `not`");
                    }
                    d
                }
                ConditionError::Unexpected {
                    span,
                    found,
                    expected,
                } => ctx
                    .diag(
                        codes::CONDITION_SYNTAX,
                        map(span),
                        format!("expected {expected}, found {found}"),
                    )
                    .with_label("unexpected here"),
                ConditionError::Unbalanced { span, unclosed } => ctx
                    .diag(
                        codes::UNBALANCED_PARENTHESES,
                        map(span),
                        if unclosed {
                            "`(` is never closed"
                        } else {
                            "`)` has no matching `(`"
                        },
                    )
                    .with_label(if unclosed {
                        "opened here"
                    } else {
                        "closes nothing"
                    }),
                ConditionError::InvalidQuantifier { span } => ctx
                    .diag(
                        codes::INVALID_QUANTIFIER,
                        map(span),
                        format!(
                            "`{} of` is not a Sigma quantifier",
                            text.get(span.start..span.end).unwrap_or("")
                        ),
                    )
                    .with_help("use `1 of`, `any of` or `all of`"),
                ConditionError::OfWithoutTarget { span } => ctx
                    .diag(
                        codes::QUANTIFIER_WITHOUT_PATTERN,
                        map(span),
                        "`of` needs `them` or an identifier pattern",
                    )
                    .with_help("write e.g. `1 of selection_*`"),
                ConditionError::TooDeep { span } => ctx.diag(
                    codes::CONDITION_TOO_DEEP,
                    map(span),
                    format!(
                        "condition nests deeper than {} levels",
                        condition::MAX_CONDITION_DEPTH
                    ),
                ),
                ConditionError::Near { span } => ctx
                    .diag(codes::LEGACY_NEAR, map(span), "`near` is Sigma v1 syntax")
                    .with_help("write a `temporal` correlation rule over the rules involved"),
                ConditionError::Aggregation(agg) => {
                    let help = aggregation_help(&agg);
                    ctx.diag(
                        codes::LEGACY_AGGREGATION,
                        map(agg.span),
                        "aggregation pipes are Sigma v1 syntax; v2 uses correlation rules",
                    )
                    .with_label("aggregation")
                    .with_help(help)
                }
            };
            ctx.report(d);
            None
        }
    }
}

fn reset_spans(expr: &mut Expr, span: Span) {
    match expr {
        Expr::Ident { span: s, .. } => *s = span,
        Expr::Not { expr, span: s } => {
            *s = span;
            reset_spans(expr, span);
        }
        Expr::And(items) | Expr::Or(items) => items.iter_mut().for_each(|e| reset_spans(e, span)),
        Expr::Of {
            span: s,
            target_span,
            ..
        } => {
            *s = span;
            *target_span = span;
        }
    }
}

fn aggregation_help(agg: &condition::LegacyAggregation) -> String {
    let kind = match (agg.function.as_str(), agg.field.is_some()) {
        ("count", false) => "event_count",
        ("count", true) => "value_count",
        ("sum", _) => "value_sum",
        ("avg", _) => "value_avg",
        _ => {
            return format!(
                "Sigma v2 has no correlation for `{}()`; keep `condition: {}` and aggregate in the backend",
                agg.function, agg.search
            )
        }
    };
    let op = match agg.operator.as_str() {
        ">" => "gt",
        ">=" => "gte",
        "<" => "lt",
        "<=" => "lte",
        "=" | "==" => "eq",
        "!=" => "neq",
        _ => "gt",
    };
    let mut out = format!(
        "set this rule's `condition: {}` and give it a `name`, then add a correlation document:\n\
         ---\ntitle: <title>\ncorrelation:\n  type: {kind}\n  rules:\n    - <this rule's name>\n",
        agg.search
    );
    if let Some(g) = &agg.group_by {
        out.push_str(&format!("  group-by:\n    - {g}\n"));
    }
    out.push_str("  timespan: <window, e.g. 5m>\n  condition:\n");
    out.push_str(&format!("    {op}: {}\n", agg.threshold));
    if let Some(f) = &agg.field {
        out.push_str(&format!("    field: {f}\n"));
    }
    out
}

fn lower_search(node: &Node, ctx: &mut Ctx<'_>, depth: usize) -> Option<Search> {
    match &node.kind {
        NodeKind::Map(entries) => {
            if entries.is_empty() {
                ctx.error(
                    codes::EMPTY_IDENTIFIER,
                    node.span,
                    "search identifier has an empty body",
                );
                return None;
            }
            let mut items = Vec::new();
            let mut ok = true;
            for (key, value) in entries {
                if key.scalar_text().is_none() {
                    ctx.wrong_type("field name", "a string", key);
                    ok = false;
                    continue;
                }
                if let NodeKind::Map(_) = value.kind {
                    let k = key.scalar_text().unwrap_or_default();
                    let d = ctx
                        .diag(
                            codes::INVALID_DETECTION_ITEM,
                            value.span,
                            format!("field `{k}` has a mapping as its value"),
                        )
                        .with_help(format!(
                            "nested fields are written with dots: `{k}.<child>: value`"
                        ));
                    ctx.report(d);
                    ok = false;
                    continue;
                }
                match field::lower(key, value, ctx) {
                    Some(t) => items.push(Search::Test(t)),
                    None => ok = false,
                }
            }
            ok.then_some(Search::AllOf(items))
        }
        NodeKind::Seq(items) => {
            if items.is_empty() {
                ctx.error(
                    codes::EMPTY_IDENTIFIER,
                    node.span,
                    "search identifier has an empty list",
                );
                return None;
            }
            if depth > 0 {
                let d = ctx.diag(
                    codes::INVALID_DETECTION_ITEM,
                    node.span,
                    "a list inside a list of searches has no meaning in Sigma",
                );
                ctx.report(d);
                return None;
            }
            let all_scalars = items
                .iter()
                .all(|i| !matches!(i.kind, NodeKind::Map(_) | NodeKind::Seq(_)));
            if all_scalars {
                return keyword_list(node, ctx);
            }
            // Mixed lists: each element is its own sub-search, OR-ed (pySigma).
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                let s = if matches!(item.kind, NodeKind::Map(_) | NodeKind::Seq(_)) {
                    lower_search(item, ctx, depth + 1)
                } else {
                    keyword_list(item, ctx)
                };
                match s {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok.then_some(Search::AnyOf(out))
        }
        NodeKind::Null => {
            ctx.error(
                codes::EMPTY_IDENTIFIER,
                node.span,
                "search identifier has no body",
            );
            None
        }
        _ => keyword_list(node, ctx),
    }
}

fn keyword_list(node: &Node, ctx: &mut Ctx<'_>) -> Option<Search> {
    let key = Node {
        kind: NodeKind::Str(String::new()),
        span: node.span,
        quoted: false,
    };
    field::lower(&key, node, ctx).map(Search::Test)
}

/// Undefined identifiers, `of` patterns that match nothing, unused identifiers.
fn check_references(detection: &Detection, ctx: &mut Ctx<'_>) -> bool {
    let mut used = vec![false; detection.identifiers.len()];
    let mut ok = true;
    let names: Vec<&str> = detection
        .identifiers
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    // Name → positions (a duplicate key yields two identifiers of one name);
    // a map keeps checking linear in the number of identifiers.
    let mut index: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, n) in names.iter().enumerate() {
        index.entry(n).or_default().push(i);
    }
    for cond in &detection.conditions {
        walk(cond, &mut |e| match e {
            // Every identifier of that name counts as used: a duplicate key
            // is reported once by the YAML layer (S105), not again as unused.
            Expr::Ident { name, span } => match index.get(name.as_str()) {
                Some(positions) => positions.iter().for_each(|&i| used[i] = true),
                None => {
                    ok = false;
                    let mut d = ctx
                        .diag(
                            codes::UNDEFINED_IDENTIFIER,
                            *span,
                            format!("condition refers to undefined identifier `{name}`"),
                        )
                        .with_label("not defined under `detection`");
                    if let Some(close) = closest(name, &names) {
                        d = d.with_help(format!("did you mean `{close}`?"));
                    } else if !names.is_empty() {
                        d = d.with_help(format!(
                            "defined identifiers are {}",
                            names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    ctx.report(d);
                }
            },
            Expr::Of {
                target,
                target_span,
                quantifier,
                ..
            } => {
                let matched = detection.resolve(target);
                if matched.is_empty() {
                    ok = false;
                    let what = match target {
                        OfTarget::Them => "`them`".to_string(),
                        OfTarget::Pattern(p) => format!("pattern `{p}`"),
                    };
                    let d = ctx
                        .diag(
                            codes::PATTERN_MATCHES_NOTHING,
                            *target_span,
                            format!("{what} matches no identifier"),
                        )
                        .with_help(format!(
                            "defined identifiers are {}",
                            names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    ctx.report(d);
                }
                if *target == OfTarget::Them
                    && (matched.len() == 1 || *quantifier == condition::Quantifier::All)
                {
                    let d = ctx
                        .diag(
                            codes::ALL_OF_THEM,
                            *target_span,
                            if matched.len() == 1 {
                                "`them` ranges over a single identifier"
                            } else {
                                "`all of them` changes meaning whenever an identifier is added"
                            },
                        )
                        .with_help("name the identifiers instead");
                    ctx.report(d);
                }
                for m in matched {
                    for &i in index.get(m).map(Vec::as_slice).unwrap_or(&[]) {
                        used[i] = true;
                    }
                }
            }
            _ => {}
        });
    }
    if ok {
        for (ident, used) in detection.identifiers.iter().zip(used) {
            if !used {
                let d = ctx
                    .diag(
                        codes::UNUSED_IDENTIFIER,
                        ident.span,
                        format!("identifier `{}` is not used in the condition", ident.name),
                    )
                    .with_help("use it (for a filter: `... and not <name>`) or remove it");
                ctx.report(d);
            }
        }
    }
    ok
}

fn closest<'n>(name: &str, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .copied()
        .map(|n| (n, super::modifier::edit_distance(name, n)))
        .filter(|(n, d)| *d <= 2 && *d < n.len())
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

/// Visits every node of a condition, parents first.
pub fn walk(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Not { expr, .. } => walk(expr, f),
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| walk(e, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("sel*", "selection"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("sel*", "filter"));
        assert!(glob_match("sel_?", "sel_1"));
    }
}
