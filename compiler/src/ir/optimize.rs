//! IR passes: flatten nested and/or, fold constants, remove double negation,
//! and gather exact string values tested on one field into one set.

use std::collections::BTreeMap;

use super::{Check, Expr, Pred, StrKind, StrMatch};

/// Runs every pass to a fixed shape.
pub fn optimize(expr: Expr) -> Expr {
    group_exact(simplify(expr))
}

fn simplify(expr: Expr) -> Expr {
    match expr {
        Expr::And(items) => {
            let mut out = Vec::new();
            for item in items.into_iter().map(simplify) {
                match item {
                    Expr::Const(true) => {}
                    Expr::Const(false) => return Expr::Const(false),
                    Expr::And(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Expr::Const(true),
                1 => out.pop().unwrap_or(Expr::Const(true)),
                _ => Expr::And(out),
            }
        }
        Expr::Or(items) => {
            let mut out = Vec::new();
            for item in items.into_iter().map(simplify) {
                match item {
                    Expr::Const(false) => {}
                    Expr::Const(true) => return Expr::Const(true),
                    Expr::Or(inner) => out.extend(inner),
                    other => {
                        if !out.contains(&other) {
                            out.push(other)
                        }
                    }
                }
            }
            match out.len() {
                0 => Expr::Const(false),
                1 => out.pop().unwrap_or(Expr::Const(false)),
                _ => Expr::Or(out),
            }
        }
        Expr::Not(inner) => match simplify(*inner) {
            Expr::Const(b) => Expr::Const(!b),
            Expr::Not(x) => *x,
            other => Expr::Not(Box::new(other)),
        },
        other => other,
    }
}

/// `f = a or f = b or f = c` (exact, same case mode) becomes `f in {a, b, c}`:
/// one hash or binary search instead of many comparisons, and one `IN` list
/// for SQL backends.
fn group_exact(expr: Expr) -> Expr {
    match expr {
        Expr::Or(items) => {
            let items: Vec<Expr> = items.into_iter().map(group_exact).collect();
            let mut groups: BTreeMap<(Option<String>, bool), Vec<String>> = BTreeMap::new();
            let mut order: Vec<(Option<String>, bool)> = Vec::new();
            let mut rest = Vec::new();
            for item in items {
                match item {
                    Expr::Pred(Pred {
                        field: Some(field),
                        check:
                            Check::Str(StrMatch {
                                kind: StrKind::Exact(v),
                                cased,
                            }),
                    }) => {
                        let key = (Some(field.as_str().to_string()), cased);
                        if !groups.contains_key(&key) {
                            order.push(key.clone());
                        }
                        groups.entry(key).or_default().push(v);
                    }
                    Expr::Pred(Pred {
                        field: Some(field),
                        check: Check::StrIn { values, cased },
                    }) => {
                        let key = (Some(field.as_str().to_string()), cased);
                        if !groups.contains_key(&key) {
                            order.push(key.clone());
                        }
                        groups.entry(key).or_default().extend(values);
                    }
                    other => rest.push(other),
                }
            }
            let mut out = Vec::new();
            for key in order {
                let Some(mut values) = groups.remove(&key) else {
                    continue;
                };
                let (field, cased) = key;
                let field = super::FieldPath::new(field.as_deref().unwrap_or(""));
                values.sort();
                values.dedup();
                let check = if values.len() == 1 {
                    Check::Str(StrMatch {
                        kind: StrKind::Exact(values.pop().unwrap_or_default()),
                        cased,
                    })
                } else {
                    Check::StrIn { values, cased }
                };
                out.push(Expr::Pred(Pred {
                    field: Some(field),
                    check,
                }));
            }
            out.extend(rest);
            if out.len() == 1 {
                out.pop().unwrap_or(Expr::Const(false))
            } else {
                Expr::Or(out)
            }
        }
        Expr::And(items) => Expr::And(items.into_iter().map(group_exact).collect()),
        Expr::Not(inner) => Expr::Not(Box::new(group_exact(*inner))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::FieldPath;

    fn exact(f: &str, v: &str) -> Expr {
        Expr::Pred(Pred {
            field: Some(FieldPath::new(f)),
            check: Check::Str(StrMatch {
                kind: StrKind::Exact(v.into()),
                cased: false,
            }),
        })
    }

    #[test]
    fn flattens_folds_and_groups() {
        let e = Expr::And(vec![
            Expr::Const(true),
            Expr::Or(vec![
                exact("a", "x"),
                Expr::Or(vec![exact("a", "y"), exact("b", "z")]),
            ]),
            Expr::Not(Box::new(Expr::Not(Box::new(exact("c", "w"))))),
        ]);
        let o = optimize(e);
        let Expr::And(items) = o else { panic!("{o:?}") };
        assert_eq!(items.len(), 2);
        let Expr::Or(or) = &items[0] else { panic!() };
        assert!(
            matches!(&or[0], Expr::Pred(Pred { check: Check::StrIn { values, .. }, .. }) if values == &vec!["x".to_string(), "y".to_string()])
        );
        assert_eq!(items[1], exact("c", "w"));
        assert_eq!(optimize(Expr::Or(vec![])), Expr::Const(false));
        assert_eq!(optimize(Expr::And(vec![])), Expr::Const(true));
    }
}
