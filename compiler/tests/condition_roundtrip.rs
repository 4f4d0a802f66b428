//! Property test: printing a parsed condition (every group parenthesised)
//! and parsing it again gives the same tree, for random condition trees.

use proptest::prelude::*;
use sigil_compiler::source::Span;
use sigil_compiler::syntax::condition::{parse, Expr, OfTarget, Quantifier};

fn ident() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,8}".prop_filter("not an operator", |s| {
        !matches!(
            s.as_str(),
            "and" | "or" | "not" | "of" | "all" | "any" | "them"
        )
    })
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        ident().prop_map(|name| Expr::Ident {
            name,
            span: Span::default()
        }),
        (
            any::<bool>(),
            prop_oneof![
                Just(OfTarget::Them),
                ident().prop_map(|p| OfTarget::Pattern(format!("{p}*")))
            ]
        )
            .prop_map(|(all, target)| Expr::Of {
                quantifier: if all {
                    Quantifier::All
                } else {
                    Quantifier::Any
                },
                target,
                span: Span::default(),
                target_span: Span::default(),
            }),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not {
                expr: Box::new(e),
                span: Span::default()
            }),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn print_then_parse_is_identity(e in expr()) {
        let text = e.to_string();
        let parsed = parse(&text, &mut Vec::new()).map_err(|err| TestCaseError::fail(format!("{text}: {err:?}")))?;
        prop_assert_eq!(&parsed, &e, "{}", text);
        // and printing is stable
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let _ = parse(&text, &mut Vec::new());
    }
}
