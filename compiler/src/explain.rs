//! `sigil explain`: the rule as sigil read it — identifiers with their field
//! tests and resolved modifiers, and the condition with precedence explicit.

use std::fmt::Write as _;

use crate::catalog::Catalog;
use crate::rule::{
    Correlation, Detection, FieldTest, Filter, Link, Pattern, Piece, Position, Rule, RuleDocument,
    Search, Test,
};
use crate::syntax::condition::{Expr, OfTarget, Quantifier};

/// Renders one document.
pub fn explain(doc: &RuleDocument, catalog: &Catalog) -> String {
    let mut out = String::new();
    match doc {
        RuleDocument::Rule(r) => rule(&mut out, r),
        RuleDocument::Correlation(c) => correlation(&mut out, c, catalog),
        RuleDocument::Filter(f) => filter(&mut out, f),
    }
    out
}

fn header(out: &mut String, kind: &str, meta: &crate::rule::Meta) {
    let _ = writeln!(out, "{kind}: {}", meta.title);
    let _ = writeln!(out, "  file: {}", meta.origin());
    if let Some(id) = &meta.id {
        let _ = writeln!(out, "  id: {id}");
    }
    if let Some(name) = &meta.name {
        let _ = writeln!(out, "  name: {name}");
    }
    let mut facts = Vec::new();
    if let Some(l) = meta.level {
        facts.push(format!("level {}", l.as_str()));
    }
    if let Some(s) = meta.status {
        facts.push(format!("status {}", s.as_str()));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "  {}", facts.join(", "));
    }
    if !meta.tags.is_empty() {
        let tags: Vec<String> = meta.tags.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  tags: {}", tags.join(", "));
    }
}

fn logsource(out: &mut String, ls: &crate::rule::LogSource) {
    let mut parts = Vec::new();
    for (k, v) in [
        ("category", &ls.category),
        ("product", &ls.product),
        ("service", &ls.service),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    for (k, v) in &ls.custom {
        parts.push(format!("{k}={v}"));
    }
    let _ = writeln!(out, "  logsource: {}", parts.join(" "));
}

fn rule(out: &mut String, r: &Rule) {
    header(out, "rule", &r.meta);
    logsource(out, &r.logsource);
    detection(out, &r.detection);
}

fn filter(out: &mut String, f: &Filter) {
    header(out, "filter", &f.meta);
    logsource(out, &f.logsource);
    let names: Vec<&str> = f.rules.iter().map(|r| r.text.as_str()).collect();
    let _ = writeln!(out, "  applies to: {}", names.join(", "));
    let _ = writeln!(
        out,
        "  combined with each rule as: (rule condition) and (filter condition)"
    );
    detection(out, &f.detection);
}

fn correlation(out: &mut String, c: &Correlation, catalog: &Catalog) {
    header(out, "correlation", &c.meta);
    let _ = writeln!(out, "  type: {}", c.kind.as_str());
    let _ = writeln!(out, "  rules:");
    let resolved = catalog.referenced(c);
    for (i, r) in c.rules.iter().enumerate() {
        let target = resolved
            .get(i)
            .map(|d| format!(" -> {} `{}`", d.kind_name(), d.meta().title))
            .unwrap_or_default();
        let _ = writeln!(out, "    {}{target}", r.text);
    }
    if c.group_by.is_empty() {
        let _ = writeln!(out, "  group-by: (none: all events form one group)");
    } else {
        let _ = writeln!(out, "  group-by: {}", c.group_by.join(", "));
    }
    for a in &c.aliases {
        let map: Vec<String> = a
            .fields
            .iter()
            .map(|(r, f)| format!("{} -> {f}", r.text))
            .collect();
        let _ = writeln!(out, "  alias {}: {}", a.name, map.join(", "));
    }
    let _ = writeln!(
        out,
        "  window: sliding over eventTime, {} ({} s); events less than {} s apart share a window",
        c.timespan, c.timespan.seconds, c.timespan.seconds
    );
    match &c.condition {
        Some(cond) if !cond.ops.is_empty() => {
            let what = match c.kind {
                crate::rule::CorrelationType::EventCount => "count of events".to_string(),
                crate::rule::CorrelationType::ValueCount => {
                    format!("distinct values of {}", cond.fields.join(", "))
                }
                crate::rule::CorrelationType::ValueSum => {
                    format!("sum of {}", cond.fields.join(", "))
                }
                crate::rule::CorrelationType::ValueAvg => {
                    format!("average of {}", cond.fields.join(", "))
                }
                crate::rule::CorrelationType::ValuePercentile => {
                    format!("percentile of {}", cond.fields.join(", "))
                }
                _ => "distinct rules matched".to_string(),
            };
            let ops: Vec<String> = cond
                .ops
                .iter()
                .map(|(op, v)| format!("{what} {} {v}", op.symbol()))
                .collect();
            let _ = writeln!(out, "  fires when: {}", ops.join(" and "));
        }
        _ => {
            let _ = writeln!(
                out,
                "  fires when: all {} rules matched in the window{}",
                c.rules.len(),
                if c.kind == crate::rule::CorrelationType::TemporalOrdered {
                    ", in the listed order"
                } else {
                    ""
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "  generate: {}",
        if c.generate {
            "yes (base rules alert on their own too)"
        } else {
            "no (only the correlation alerts)"
        }
    );
}

fn detection(out: &mut String, d: &Detection) {
    let _ = writeln!(out, "  identifiers:");
    for ident in &d.identifiers {
        let _ = writeln!(out, "    {}:", ident.name);
        search(out, &ident.search, 6);
    }
    for (i, cond) in d.conditions.iter().enumerate() {
        let label = if d.conditions.len() > 1 {
            format!("condition {}", i + 1)
        } else {
            "condition".to_string()
        };
        let _ = writeln!(out, "  {label}: {cond}");
        tree(out, cond, d, 4);
    }
}

fn search(out: &mut String, s: &Search, indent: usize) {
    let pad = " ".repeat(indent);
    match s {
        Search::AllOf(items) if items.len() == 1 => search(out, &items[0], indent),
        Search::AllOf(items) => {
            let _ = writeln!(out, "{pad}all of:");
            items.iter().for_each(|i| search(out, i, indent + 2));
        }
        Search::AnyOf(items) => {
            let _ = writeln!(out, "{pad}any of:");
            items.iter().for_each(|i| search(out, i, indent + 2));
        }
        Search::Test(t) => {
            let _ = writeln!(out, "{pad}{}", field_test(t));
        }
    }
}

/// One field test in words.
pub fn field_test(t: &FieldTest) -> String {
    let subject = match &t.field {
        Some(f) => f.clone(),
        None => "any value of the event".to_string(),
    };
    let values: Vec<String> = t
        .values
        .iter()
        .map(|v| {
            let alts: Vec<String> = v.alternatives.iter().map(test).collect();
            if alts.len() == 1 {
                alts.into_iter().next().unwrap_or_default()
            } else {
                format!("one of [{}]", alts.join(" | "))
            }
        })
        .collect();
    let body = if values.len() == 1 {
        values.into_iter().next().unwrap_or_default()
    } else {
        let joiner = if t.link == Link::All { " and " } else { " or " };
        format!("({})", values.join(joiner))
    };
    let mods = if t.modifiers.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = t.modifiers.iter().map(|m| m.name()).collect();
        format!("   [|{}]", names.join("|"))
    };
    if t.negated {
        format!("not ({subject} {body}){mods}")
    } else {
        format!("{subject} {body}{mods}")
    }
}

fn quoted(p: &Pattern) -> String {
    format!("'{}'", p.to_string().replace('\'', "''"))
}

fn test(t: &Test) -> String {
    match t {
        Test::Null => "is null or absent".into(),
        Test::Exists(true) => "exists".into(),
        Test::Exists(false) => "does not exist".into(),
        Test::Text { pattern, cased } => {
            let case = if *cased { " (case-sensitive)" } else { "" };
            let pieces = pattern.pieces();
            let inner = |p: &[Piece]| Pattern::from_pieces(p.iter().cloned());
            let text = match pieces {
                [Piece::AnyRun, mid @ .., Piece::AnyRun]
                    if !mid.is_empty() && !inner(mid).has_wildcards() =>
                {
                    format!("contains {}", quoted(&inner(mid)))
                }
                [Piece::AnyRun, rest @ ..] if !rest.is_empty() && !inner(rest).has_wildcards() => {
                    format!("ends with {}", quoted(&inner(rest)))
                }
                [rest @ .., Piece::AnyRun] if !rest.is_empty() && !inner(rest).has_wildcards() => {
                    format!("starts with {}", quoted(&inner(rest)))
                }
                _ if pattern.has_wildcards() => format!("matches wildcard {}", quoted(pattern)),
                [] => "equals ''".into(),
                _ => format!("equals {}", quoted(pattern)),
            };
            let ph = if pattern.has_placeholders() {
                " (placeholder unresolved)"
            } else {
                ""
            };
            format!("{text}{case}{ph}")
        }
        Test::Number(n) => format!("equals {}", n.text),
        Test::Bool(b) => format!("equals {b}"),
        Test::Regex { pattern, flags } => {
            let f = flags.letters();
            let flags = if f.is_empty() {
                " (case-sensitive)".to_string()
            } else {
                format!(" (flags {f})")
            };
            format!("matches regex /{pattern}/{flags}")
        }
        Test::Cidr { addr, prefix } => format!("is in network {addr}/{prefix}"),
        Test::Compare { op, value } => format!("{} {}", op.symbol(), value.text),
        Test::FieldRef {
            field,
            position,
            cased,
        } => {
            let how = match position {
                Position::Equals => "equals",
                Position::Contains => "contains",
                Position::StartsWith => "starts with",
                Position::EndsWith => "ends with",
            };
            format!(
                "{how} the value of field {field}{}",
                if *cased { " (case-sensitive)" } else { "" }
            )
        }
        Test::TimePart { part, op, value } => {
            format!("{part:?} part {} {value}", op.symbol()).to_lowercase()
        }
    }
}

fn tree(out: &mut String, e: &Expr, d: &Detection, indent: usize) {
    let pad = " ".repeat(indent);
    match e {
        Expr::Ident { name, .. } => {
            let _ = writeln!(out, "{pad}{name}");
        }
        Expr::Not { expr, .. } => {
            let _ = writeln!(out, "{pad}not");
            tree(out, expr, d, indent + 2);
        }
        Expr::And(items) | Expr::Or(items) => {
            let _ = writeln!(
                out,
                "{pad}{}",
                if matches!(e, Expr::And(_)) {
                    "and"
                } else {
                    "or"
                }
            );
            items.iter().for_each(|i| tree(out, i, d, indent + 2));
        }
        Expr::Of {
            quantifier, target, ..
        } => {
            let names = d.resolve(target);
            let q = match quantifier {
                Quantifier::Any => "any",
                Quantifier::All => "all",
            };
            let t = match target {
                OfTarget::Them => "them".to_string(),
                OfTarget::Pattern(p) => p.clone(),
            };
            let _ = writeln!(
                out,
                "{pad}{q} of {t} = {}",
                if matches!(quantifier, Quantifier::Any) {
                    names.join(" or ")
                } else {
                    names.join(" and ")
                }
            );
        }
    }
}
