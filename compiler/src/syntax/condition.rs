//! The condition language: lexed with logos, parsed by precedence climbing into
//! a spanned [`Expr`]. Precedence, loosest first: `or`, `and`, `not`,
//! `1 of`/`all of`, parentheses.

use std::fmt;

use logos::Logos;

use crate::source::Span;

/// Deepest nesting of parentheses and `not` accepted, in the text and in its
/// printed form (which parenthesises every `and`/`or` group).
pub const MAX_CONDITION_DEPTH: usize = 64;

#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq)]
#[logos(skip r"[ \t\r\n]+")]
enum Token {
    #[token("(")]
    Open,
    #[token(")")]
    Close,
    #[token("|")]
    Pipe,
    // Identifiers may hold `-` and `.`; patterns add `*` (and `?`, read as a
    // one-character wildcard like in values).
    #[regex(r"[A-Za-z0-9_\-.*?]+")]
    Word,
}

/// A parsed condition.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A search identifier.
    Ident {
        /// Its name.
        name: String,
        /// Where it is written (relative to the condition text).
        span: Span,
    },
    /// `not expr`.
    Not {
        /// The negated expression.
        expr: Box<Expr>,
        /// From `not` to the end of the operand.
        span: Span,
    },
    /// Conjunction of two or more operands.
    And(Vec<Expr>),
    /// Disjunction of two or more operands.
    Or(Vec<Expr>),
    /// `1 of pattern`, `all of them`, ...
    Of {
        /// `1`/`any` or `all`.
        quantifier: Quantifier,
        /// `them` or an identifier pattern.
        target: OfTarget,
        /// The whole `x of y`.
        span: Span,
        /// Just the target.
        target_span: Span,
    },
}

/// How many identifiers of an `of` must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `1 of` / `any of`: at least one.
    Any,
    /// `all of`: every one.
    All,
}

/// What an `of` ranges over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfTarget {
    /// Every identifier not starting with `_`.
    Them,
    /// Identifiers matching a `*` pattern.
    Pattern(String),
}

impl PartialEq for Expr {
    /// Structural equality, ignoring spans (for round-trip tests).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Expr::Ident { name: a, .. }, Expr::Ident { name: b, .. }) => a == b,
            (Expr::Not { expr: a, .. }, Expr::Not { expr: b, .. }) => a == b,
            (Expr::And(a), Expr::And(b)) | (Expr::Or(a), Expr::Or(b)) => a == b,
            (
                Expr::Of {
                    quantifier: qa,
                    target: ta,
                    ..
                },
                Expr::Of {
                    quantifier: qb,
                    target: tb,
                    ..
                },
            ) => qa == qb && ta == tb,
            _ => false,
        }
    }
}

impl Expr {
    /// The span the expression covers.
    pub fn span(&self) -> Span {
        match self {
            Expr::Ident { span, .. } | Expr::Not { span, .. } | Expr::Of { span, .. } => *span,
            Expr::And(items) | Expr::Or(items) => items
                .iter()
                .map(Expr::span)
                .reduce(Span::join)
                .unwrap_or_default(),
        }
    }

    /// Moves every span by `offset` bytes.
    pub fn shift(&mut self, offset: usize) {
        let mv = |s: &mut Span| *s = Span::new(s.start + offset, s.end + offset);
        match self {
            Expr::Ident { span, .. } => mv(span),
            Expr::Not { expr, span } => {
                mv(span);
                expr.shift(offset);
            }
            Expr::And(items) | Expr::Or(items) => items.iter_mut().for_each(|e| e.shift(offset)),
            Expr::Of {
                span, target_span, ..
            } => {
                mv(span);
                mv(target_span);
            }
        }
    }
}

/// Prints with every binary group parenthesised, so precedence is explicit and
/// the output parses back to the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Ident { name, .. } => f.write_str(name),
            Expr::Not { expr, .. } => write!(f, "not {expr}"),
            Expr::And(items) | Expr::Or(items) => {
                let op = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Expr::Of {
                quantifier, target, ..
            } => {
                let q = match quantifier {
                    Quantifier::Any => "1",
                    Quantifier::All => "all",
                };
                match target {
                    OfTarget::Them => write!(f, "{q} of them"),
                    OfTarget::Pattern(p) => write!(f, "{q} of {p}"),
                }
            }
        }
    }
}

/// Why a condition could not be parsed. Spans are relative to the condition text.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConditionError {
    /// Nothing but whitespace.
    Empty,
    /// A character no token starts with.
    InvalidCharacter {
        /// Where.
        span: Span,
    },
    /// A token where another was expected.
    Unexpected {
        /// Where.
        span: Span,
        /// What was found, as shown in messages (tokens in backticks).
        found: String,
        /// What would have been valid.
        expected: &'static str,
    },
    /// A parenthesis without its partner.
    Unbalanced {
        /// The lone parenthesis.
        span: Span,
        /// True when a `(` is never closed.
        unclosed: bool,
    },
    /// `2 of x`, `few of x`.
    InvalidQuantifier {
        /// The quantifier.
        span: Span,
    },
    /// `1 of` with nothing after it.
    OfWithoutTarget {
        /// The `x of`.
        span: Span,
    },
    /// Nested deeper than [`MAX_CONDITION_DEPTH`].
    TooDeep {
        /// The first token past the limit.
        span: Span,
    },
    /// A v1 aggregation pipe.
    Aggregation(Box<LegacyAggregation>),
    /// A v1 `near`.
    Near {
        /// From the pipe to the end.
        span: Span,
    },
}

/// The pieces of a v1 `search | agg(field) by group op N` condition, kept to
/// show the author the equivalent correlation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyAggregation {
    /// The search expression before the pipe, as written.
    pub search: String,
    /// `count`, `min`, `max`, `avg` or `sum`.
    pub function: String,
    /// The aggregated field, if any.
    pub field: Option<String>,
    /// The group-by field, if any.
    pub group_by: Option<String>,
    /// The comparison (`>`, `>=`, ...).
    pub operator: String,
    /// The threshold as written.
    pub threshold: String,
    /// From the pipe to the end of the condition.
    pub span: Span,
}

/// A warning that does not stop parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionWarning {
    /// `AND`, `Or`, `NOT` ...
    UppercaseOperator {
        /// Where.
        span: Span,
        /// As written.
        word: String,
    },
}

/// Parses a condition. Warnings are pushed; the first error is returned.
pub fn parse(text: &str, warnings: &mut Vec<ConditionWarning>) -> Result<Expr, ConditionError> {
    let mut tokens = Vec::new();
    let mut lexer = Token::lexer(text);
    while let Some(token) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        match token {
            Ok(Token::Pipe) => return Err(legacy(text, span)),
            Ok(t) => tokens.push((t, span, lexer.slice())),
            Err(()) => {
                if tokens.iter().any(|(_, _, w)| *w == "|") {
                    break;
                }
                return Err(ConditionError::InvalidCharacter { span });
            }
        }
    }
    if tokens.is_empty() {
        return Err(ConditionError::Empty);
    }
    let mut parser = ConditionParser {
        tokens,
        pos: 0,
        depth: 0,
        warnings,
        len: text.len(),
    };
    let expr = parser.or_expr()?;
    if let Some((token, span, word)) = parser.peek() {
        return Err(if token == Token::Close {
            ConditionError::Unbalanced {
                span,
                unclosed: false,
            }
        } else {
            ConditionError::Unexpected {
                span,
                found: format!("`{word}`"),
                expected: "`and`, `or` or the end of the condition",
            }
        });
    }
    // The printed form parenthesises every `and`/`or` group, including those
    // precedence left implicit, so it can nest deeper than the text did:
    // refuse what would not parse back.
    if let Some(span) = printed_too_deep(&expr, 0) {
        return Err(ConditionError::TooDeep { span });
    }
    Ok(expr)
}

/// The first node whose printed form (see `Display`) nests deeper than
/// [`MAX_CONDITION_DEPTH`], counting each `not` and each `and`/`or` group.
fn printed_too_deep(expr: &Expr, depth: usize) -> Option<Span> {
    match expr {
        Expr::Ident { .. } | Expr::Of { .. } => None,
        Expr::Not { expr: inner, span } => {
            if depth >= MAX_CONDITION_DEPTH {
                return Some(Span::new(span.start, span.start + "not".len()));
            }
            printed_too_deep(inner, depth + 1)
        }
        Expr::And(items) | Expr::Or(items) => {
            if depth >= MAX_CONDITION_DEPTH {
                return Some(expr.span());
            }
            items.iter().find_map(|e| printed_too_deep(e, depth + 1))
        }
    }
}

fn legacy(text: &str, pipe: Span) -> ConditionError {
    let span = Span::new(pipe.start, text.len());
    let search = text.get(..pipe.start).unwrap_or("").trim().to_string();
    let rest = text.get(pipe.end..).unwrap_or("").trim();
    if rest.starts_with("near") {
        return ConditionError::Near { span };
    }
    // agg(field) [by group] op N
    let parsed = (|| {
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        let function = rest.get(..open)?.trim().to_ascii_lowercase();
        let field = rest.get(open + 1..close)?.trim();
        let after = rest.get(close + 1..)?.trim();
        let (group_by, after) = match after.strip_prefix("by ") {
            Some(g) => {
                let g = g.trim_start();
                let end = g.find([' ', '<', '>', '=', '!']).unwrap_or(g.len());
                (Some(g.get(..end)?.to_string()), g.get(end..)?.trim())
            }
            None => (None, after),
        };
        let op_len = after
            .bytes()
            .take_while(|b| matches!(b, b'<' | b'>' | b'=' | b'!'))
            .count();
        let operator = after.get(..op_len)?.to_string();
        let threshold = after.get(op_len..)?.trim().to_string();
        if function.is_empty() || operator.is_empty() || threshold.is_empty() {
            return None;
        }
        Some(LegacyAggregation {
            search: search.clone(),
            function,
            field: (!field.is_empty()).then(|| field.to_string()),
            group_by,
            operator,
            threshold,
            span,
        })
    })();
    ConditionError::Aggregation(Box::new(parsed.unwrap_or(LegacyAggregation {
        search,
        function: String::new(),
        field: None,
        group_by: None,
        operator: String::new(),
        threshold: String::new(),
        span,
    })))
}

struct ConditionParser<'t, 'w> {
    tokens: Vec<(Token, Span, &'t str)>,
    pos: usize,
    depth: usize,
    warnings: &'w mut Vec<ConditionWarning>,
    len: usize,
}

#[derive(PartialEq)]
enum Keyword {
    And,
    Or,
    Not,
    Of,
}

impl<'t> ConditionParser<'t, '_> {
    fn peek(&self) -> Option<(Token, Span, &'t str)> {
        self.tokens.get(self.pos).copied()
    }

    fn end_span(&self) -> Span {
        Span::point(self.len)
    }

    /// Recognises an operator word, warning once per occurrence written in
    /// upper or mixed case.
    fn keyword_at(&mut self, pos: usize) -> Option<Keyword> {
        let (token, span, word) = self.tokens.get(pos).copied()?;
        if token != Token::Word {
            return None;
        }
        let kw = match word.to_ascii_lowercase().as_str() {
            "and" => Keyword::And,
            "or" => Keyword::Or,
            "not" => Keyword::Not,
            "of" => Keyword::Of,
            _ => return None,
        };
        if word.bytes().any(|b| b.is_ascii_uppercase()) {
            let warning = ConditionWarning::UppercaseOperator {
                span,
                word: word.to_string(),
            };
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        Some(kw)
    }

    fn or_expr(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.and_expr()?];
        while self.keyword_at(self.pos) == Some(Keyword::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.not_expr()?];
        while self.keyword_at(self.pos) == Some(Keyword::And) {
            self.pos += 1;
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn enter(&mut self, span: Span) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_CONDITION_DEPTH {
            return Err(ConditionError::TooDeep { span });
        }
        Ok(())
    }

    fn not_expr(&mut self) -> Result<Expr, ConditionError> {
        if self.keyword_at(self.pos) == Some(Keyword::Not) {
            let Some((_, start, _)) = self.peek() else {
                return Err(self.unexpected_end("an identifier after `not`"));
            };
            self.enter(start)?;
            self.pos += 1;
            let expr = self.not_expr()?;
            self.depth -= 1;
            let span = start.join(expr.span());
            return Ok(Expr::Not {
                expr: Box::new(expr),
                span,
            });
        }
        self.atom()
    }

    fn unexpected_end(&self, expected: &'static str) -> ConditionError {
        ConditionError::Unexpected {
            span: self.end_span(),
            found: "the end of the condition".into(),
            expected,
        }
    }

    fn atom(&mut self) -> Result<Expr, ConditionError> {
        let Some((token, span, word)) = self.peek() else {
            return Err(self.unexpected_end("an identifier, `not`, `(` or `1 of`"));
        };
        match token {
            Token::Open => {
                self.enter(span)?;
                self.pos += 1;
                let expr = self.or_expr()?;
                self.depth -= 1;
                match self.peek() {
                    Some((Token::Close, _, _)) => {
                        self.pos += 1;
                        Ok(expr)
                    }
                    Some((_, found_span, found)) => Err(ConditionError::Unexpected {
                        span: found_span,
                        found: format!("`{found}`"),
                        expected: "`)`, `and` or `or`",
                    }),
                    None => Err(ConditionError::Unbalanced {
                        span,
                        unclosed: true,
                    }),
                }
            }
            Token::Close => Err(ConditionError::Unexpected {
                span,
                found: "`)`".into(),
                expected: "an identifier, `not`, `(` or `1 of`",
            }),
            Token::Pipe => Err(ConditionError::InvalidCharacter { span }),
            Token::Word => {
                if self.keyword_at(self.pos + 1) == Some(Keyword::Of) {
                    return self.of_expr(span, word);
                }
                if let Some(kw) = self.keyword_at(self.pos) {
                    let what = match kw {
                        Keyword::And => "and",
                        Keyword::Or => "or",
                        Keyword::Not => "not",
                        Keyword::Of => "of",
                    };
                    return Err(ConditionError::Unexpected {
                        span,
                        found: format!("`{what}`"),
                        expected: "an identifier, `not`, `(` or `1 of`",
                    });
                }
                self.pos += 1;
                Ok(Expr::Ident {
                    name: word.to_string(),
                    span,
                })
            }
        }
    }

    fn of_expr(&mut self, qspan: Span, qword: &str) -> Result<Expr, ConditionError> {
        let quantifier = match qword.to_ascii_lowercase().as_str() {
            "1" | "any" => Quantifier::Any,
            "all" => Quantifier::All,
            _ => return Err(ConditionError::InvalidQuantifier { span: qspan }),
        };
        let of_span = self.tokens.get(self.pos + 1).map(|t| t.1).unwrap_or(qspan);
        self.pos += 2;
        match self.peek() {
            Some((Token::Word, tspan, tword)) if self.keyword_at(self.pos).is_none() => {
                self.pos += 1;
                let target = if tword.eq_ignore_ascii_case("them") {
                    OfTarget::Them
                } else {
                    OfTarget::Pattern(tword.to_string())
                };
                Ok(Expr::Of {
                    quantifier,
                    target,
                    span: qspan.join(tspan),
                    target_span: tspan,
                })
            }
            _ => Err(ConditionError::OfWithoutTarget {
                span: qspan.join(of_span),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Expr, ConditionError> {
        parse(text, &mut Vec::new())
    }

    #[test]
    fn precedence_is_or_and_not() {
        assert_eq!(p("a or b and c").unwrap().to_string(), "(a or (b and c))");
        assert_eq!(p("not a and b").unwrap().to_string(), "(not a and b)");
        assert_eq!(
            p("(a or b) and not 1 of f_*").unwrap().to_string(),
            "((a or b) and not 1 of f_*)"
        );
        assert_eq!(p("all of them").unwrap().to_string(), "all of them");
        assert_eq!(p("any of sel*").unwrap().to_string(), "1 of sel*");
        assert_eq!(p("not not a").unwrap().to_string(), "not not a");
    }

    #[test]
    fn errors_carry_positions() {
        assert_eq!(p("  "), Err(ConditionError::Empty));
        assert!(matches!(
            p("a and (b or c"),
            Err(ConditionError::Unbalanced { unclosed: true, span }) if span.start == 6
        ));
        assert!(matches!(
            p("a and b)"),
            Err(ConditionError::Unbalanced { unclosed: false, span }) if span.start == 7
        ));
        assert!(
            matches!(p("a && b"), Err(ConditionError::InvalidCharacter { span }) if span.start == 2)
        );
        assert!(matches!(
            p("2 of x*"),
            Err(ConditionError::InvalidQuantifier { .. })
        ));
        assert!(matches!(
            p("1 of"),
            Err(ConditionError::OfWithoutTarget { .. })
        ));
        assert!(
            matches!(p("a and or b"), Err(ConditionError::Unexpected { span, .. }) if span.start == 6)
        );
        assert!(
            matches!(p("a b"), Err(ConditionError::Unexpected { span, .. }) if span.start == 2)
        );
    }

    #[test]
    fn legacy_forms_are_recognised() {
        let Err(ConditionError::Aggregation(agg)) = p("sel | count(dst) by src > 5") else {
            panic!("expected aggregation")
        };
        assert_eq!(agg.function, "count");
        assert_eq!(agg.field.as_deref(), Some("dst"));
        assert_eq!(agg.group_by.as_deref(), Some("src"));
        assert_eq!(agg.operator, ">");
        assert_eq!(agg.threshold, "5");
        assert!(matches!(p("a | near b"), Err(ConditionError::Near { .. })));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(matches!(p(&text), Err(ConditionError::TooDeep { .. })));
        let text = format!("{}a", "not ".repeat(200));
        assert!(matches!(p(&text), Err(ConditionError::TooDeep { .. })));
    }

    #[test]
    fn uppercase_operators_warn() {
        let mut w = Vec::new();
        assert_eq!(
            parse("a AND NOT b", &mut w).unwrap().to_string(),
            "(a and not b)"
        );
        assert_eq!(w.len(), 2);
    }
}
