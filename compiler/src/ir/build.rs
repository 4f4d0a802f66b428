//! Lowering typed rules into IR expressions.

use crate::catalog::Catalog;
use crate::diag::{codes, Diagnostic, Diagnostics};
use crate::rule::{
    Correlation, Detection, FieldTest, Link, Pattern, Piece, Rule, RuleDocument, Search, Test,
};
use crate::syntax::condition::{Expr as Cond, Quantifier};

use super::{
    fold_case, Check, CorrelationInput, CorrelationIr, Expr, FieldPath, GlobPiece, Pred, Program,
    RuleInfo, RuleIr, StrKind, StrMatch,
};

/// Lowers every usable detection rule of a catalog. A rule that cannot be
/// lowered (an unresolved placeholder) is left out with an error diagnostic.
pub fn from_catalog(catalog: &Catalog) -> (Program, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut program = Program::default();
    let mut rule_index: Vec<(*const Rule, usize)> = Vec::new();
    for rule in catalog.rules() {
        if let Some(ir) = from_rule(rule, &mut diags) {
            rule_index.push((rule as *const Rule, program.rules.len()));
            program.rules.push(ir);
        }
    }
    correlations(catalog, &rule_index, &mut program, &mut diags);
    (program, diags)
}

/// Lowers correlations in dependency order (the catalog has rejected cycles);
/// one whose input did not lower is left out with its reason.
fn correlations(
    catalog: &Catalog,
    rules: &[(*const Rule, usize)],
    program: &mut Program,
    diags: &mut Diagnostics,
) {
    let all: Vec<&Correlation> = catalog.correlations().collect();
    let mut placed: Vec<Option<usize>> = vec![None; all.len()];
    let mut failed = vec![false; all.len()];
    let mut progress = true;
    while progress {
        progress = false;
        for (ci, c) in all.iter().enumerate() {
            if placed[ci].is_some() || failed[ci] {
                continue;
            }
            let mut inputs = Vec::new();
            let mut ready = true;
            for doc in catalog.referenced(c) {
                match doc {
                    RuleDocument::Rule(r) => {
                        match rules.iter().find(|(p, _)| std::ptr::eq(*p, r)) {
                            Some((_, i)) => inputs.push(CorrelationInput::Rule(*i)),
                            None => {
                                failed[ci] = true;
                                diags.push(
                                    Diagnostic::new(
                                        codes::DANGLING_REFERENCE,
                                        format!(
                                            "correlation `{}` refers to `{}`, which cannot run",
                                            c.meta.title, r.meta.title
                                        ),
                                    )
                                    .at(&c.meta.source, c.meta.span),
                                );
                            }
                        }
                    }
                    RuleDocument::Correlation(inner) => {
                        match all
                            .iter()
                            .position(|x| std::ptr::eq(*x, inner))
                            .and_then(|j| placed[j].map(|p| (j, p)))
                        {
                            Some((_, p)) => inputs.push(CorrelationInput::Correlation(p)),
                            None => {
                                let j = all.iter().position(|x| std::ptr::eq(*x, inner));
                                if j.is_some_and(|j| failed[j]) {
                                    failed[ci] = true;
                                }
                                ready = false;
                            }
                        }
                    }
                    RuleDocument::Filter(_) => failed[ci] = true,
                }
            }
            if failed[ci] || !ready {
                continue;
            }
            let group_fields = c
                .group_by
                .iter()
                .map(|g| {
                    c.rules
                        .iter()
                        .map(|reference| {
                            c.aliases
                                .iter()
                                .find(|a| &a.name == g)
                                .and_then(|a| {
                                    a.fields.iter().find(|(r, _)| r.text == reference.text)
                                })
                                .map(|(_, f)| f.clone())
                                .unwrap_or_else(|| g.clone())
                        })
                        .collect()
                })
                .collect();
            let cond = c.condition.clone();
            let m = &c.meta;
            placed[ci] = Some(program.correlations.len());
            program.correlations.push(CorrelationIr {
                info: info(m),
                kind: c.kind,
                inputs,
                group_by: c.group_by.clone(),
                group_fields,
                timespan_secs: c.timespan.seconds,
                ops: cond.as_ref().map(|c| c.ops.clone()).unwrap_or_default(),
                value_fields: cond.map(|c| c.fields).unwrap_or_default(),
                generate: c.generate,
            });
            progress = true;
        }
    }
    // A rule fed only to correlations without `generate` does not alert alone.
    let mut referenced = vec![false; program.rules.len()];
    let mut generated = vec![false; program.rules.len()];
    for c in &program.correlations {
        for input in &c.inputs {
            if let CorrelationInput::Rule(i) = input {
                referenced[*i] = true;
                generated[*i] |= c.generate;
            }
        }
    }
    for (i, rule) in program.rules.iter_mut().enumerate() {
        rule.standalone = !referenced[i] || generated[i];
    }
}

fn info(m: &crate::rule::Meta) -> RuleInfo {
    RuleInfo {
        id: m.id.clone(),
        name: m.name.clone(),
        title: m.title.clone(),
        level: m.level.map(|l| l.as_str().to_string()),
        status: m.status.map(|s| s.as_str().to_string()),
        tags: m.tags.iter().map(ToString::to_string).collect(),
        author: m.author.clone(),
        description: m.description.clone(),
        fields: m.fields.clone(),
        falsepositives: m.falsepositives.clone(),
        references: m.references.clone(),
        origin: m.origin(),
    }
}

/// Lowers one rule.
pub fn from_rule(rule: &Rule, diags: &mut Diagnostics) -> Option<RuleIr> {
    let mut unresolved = Vec::new();
    let expr = detection(&rule.detection, &mut unresolved);
    if let Some((name, span)) = unresolved.first() {
        diags.push(
            Diagnostic::new(
                codes::UNRESOLVED_PLACEHOLDER,
                format!(
                    "placeholder `%{name}%` has no configured value; rule `{}` cannot run",
                    rule.meta.title
                ),
            )
            .at(&rule.meta.source, *span)
            .with_help("give its values with `--placeholders FILE` (YAML: name: [values])"),
        );
        return None;
    }
    Some(RuleIr {
        info: info(&rule.meta),
        logsource: rule.logsource.clone(),
        expr: super::optimize(expr),
        standalone: true,
    })
}

type Unresolved = Vec<(String, crate::source::Span)>;

/// Each search identifier of a rule as its own expression (for explaining
/// which identifiers held on a record). Identifiers with unresolved
/// placeholders are left out.
pub fn identifier_exprs(rule: &Rule) -> Vec<(String, Expr)> {
    rule.detection
        .identifiers
        .iter()
        .filter_map(|ident| {
            let mut unresolved = Vec::new();
            let expr = super::optimize(search(&ident.search, &mut unresolved));
            unresolved.is_empty().then(|| (ident.name.clone(), expr))
        })
        .collect()
}

fn detection(d: &Detection, unresolved: &mut Unresolved) -> Expr {
    let conds: Vec<Expr> = d
        .conditions
        .iter()
        .map(|c| condition(c, d, unresolved))
        .collect();
    if conds.len() == 1 {
        conds.into_iter().next().unwrap_or(Expr::Const(false))
    } else {
        Expr::Or(conds)
    }
}

fn condition(c: &Cond, d: &Detection, unresolved: &mut Unresolved) -> Expr {
    match c {
        Cond::Ident { name, .. } => match d.identifier(name) {
            Some(ident) => search(&ident.search, unresolved),
            // `lower` guarantees every identifier exists.
            None => Expr::Const(false),
        },
        Cond::Not { expr, .. } => Expr::Not(Box::new(condition(expr, d, unresolved))),
        Cond::And(items) => Expr::And(items.iter().map(|i| condition(i, d, unresolved)).collect()),
        Cond::Or(items) => Expr::Or(items.iter().map(|i| condition(i, d, unresolved)).collect()),
        Cond::Of {
            quantifier, target, ..
        } => {
            let items: Vec<Expr> = d
                .resolve(target)
                .into_iter()
                .filter_map(|n| d.identifier(n))
                .map(|i| search(&i.search, unresolved))
                .collect();
            match quantifier {
                Quantifier::Any => Expr::Or(items),
                Quantifier::All => Expr::And(items),
            }
        }
    }
}

fn search(s: &Search, unresolved: &mut Unresolved) -> Expr {
    match s {
        Search::AllOf(items) => Expr::And(items.iter().map(|i| search(i, unresolved)).collect()),
        Search::AnyOf(items) => Expr::Or(items.iter().map(|i| search(i, unresolved)).collect()),
        Search::Test(t) => field_test(t, unresolved),
    }
}

fn field_test(t: &FieldTest, unresolved: &mut Unresolved) -> Expr {
    let field = t.field.as_deref().map(FieldPath::new);
    let values: Vec<Expr> = t
        .values
        .iter()
        .map(|v| {
            Expr::Or(
                v.alternatives
                    .iter()
                    .map(|alt| match check(alt) {
                        Some(check) => Expr::Pred(Pred {
                            field: field.clone(),
                            check,
                        }),
                        None => {
                            if let Test::Text { pattern, .. } = alt {
                                for p in pattern.pieces() {
                                    if let Piece::Placeholder(name) = p {
                                        unresolved.push((name.clone(), v.span));
                                    }
                                }
                            }
                            Expr::Const(false)
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let combined = match t.link {
        Link::Any => Expr::Or(values),
        Link::All => Expr::And(values),
    };
    if t.negated {
        Expr::Not(Box::new(combined))
    } else {
        combined
    }
}

fn check(t: &Test) -> Option<Check> {
    Some(match t {
        Test::Null | Test::Exists(false) => Check::Null,
        Test::Exists(true) => Check::Exists,
        Test::Text { pattern, cased } => {
            if pattern.has_placeholders() {
                return None;
            }
            Check::Str(str_match(pattern, *cased))
        }
        Test::Number(n) => Check::Num {
            value: n.value,
            text: n.text.clone(),
        },
        Test::Bool(b) => Check::Bool(*b),
        Test::Regex { pattern, flags } => Check::Regex {
            pattern: pattern.clone(),
            flags: *flags,
        },
        Test::Cidr { addr, prefix } => Check::Cidr {
            addr: *addr,
            prefix: *prefix,
        },
        Test::Compare { op, value } => Check::Cmp {
            op: *op,
            value: value.value,
        },
        Test::FieldRef {
            field,
            position,
            cased,
        } => Check::FieldRef {
            other: FieldPath::new(field),
            position: *position,
            cased: *cased,
        },
        Test::TimePart { part, op, value } => Check::TimePart {
            part: *part,
            op: *op,
            value: *value,
        },
    })
}

/// Classifies a pattern into the cheapest match shape.
pub fn str_match(pattern: &Pattern, cased: bool) -> StrMatch {
    let fold = |s: &str| if cased { s.to_string() } else { fold_case(s) };
    let pieces = pattern.pieces();
    let lit = |p: &Piece| match p {
        Piece::Literal(s) => Some(fold(s)),
        _ => None,
    };
    let kind = match pieces {
        [] => StrKind::Exact(String::new()),
        [one] if lit(one).is_some() => StrKind::Exact(lit(one).unwrap_or_default()),
        [Piece::AnyRun, mid, Piece::AnyRun] if lit(mid).is_some() => {
            StrKind::Contains(lit(mid).unwrap_or_default())
        }
        [Piece::AnyRun, last] if lit(last).is_some() => {
            StrKind::Suffix(lit(last).unwrap_or_default())
        }
        [first, Piece::AnyRun] if lit(first).is_some() => {
            StrKind::Prefix(lit(first).unwrap_or_default())
        }
        _ => StrKind::Glob(
            pieces
                .iter()
                .map(|p| match p {
                    Piece::Literal(s) => GlobPiece::Lit(fold(s)),
                    Piece::AnyChar => GlobPiece::AnyChar,
                    _ => GlobPiece::AnyRun,
                })
                .collect(),
        ),
    };
    StrMatch { kind, cased }
}
