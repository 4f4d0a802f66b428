//! One detection item (`field|mod|mod: value(s)`) lowered into typed tests.

use std::collections::HashSet;
use std::net::IpAddr;

use base64::Engine as _;

use crate::diag::codes;
use crate::source::Span;
use crate::syntax::{Node, NodeKind};

use super::modifier::{check_chain, ChainProblem, Modifier};
use super::value::{Pattern, Piece};
use super::Ctx;

/// Most variants one value may expand into (windash, base64offset, expand).
pub const MAX_VARIANTS: usize = 4096;

/// Most variants, beyond the first of each value, that all values of one file
/// may expand into together: without it, many values of a few bytes each
/// multiply memory without bound.
pub const MAX_FILE_VARIANTS: usize = 65_536;

/// How the values of one item combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Any value may hold (the default).
    Any,
    /// Every value must hold (`|all`).
    All,
}

/// One detection item: a field (or keywords) tested against values.
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// The field's dotted name; `None` for keywords.
    pub field: Option<String>,
    /// The key as written (field and modifiers).
    pub span: Span,
    /// The modifiers, in order.
    pub modifiers: Vec<Modifier>,
    /// How the values combine.
    pub link: Link,
    /// `neq`: the whole item is negated (as pySigma reads it).
    pub negated: bool,
    /// The values, each with its expansions.
    pub values: Vec<ValueTest>,
}

/// One value as written, with the alternatives it expanded into (OR-ed).
#[derive(Debug, Clone)]
pub struct ValueTest {
    /// Where the value is written.
    pub span: Span,
    /// The tests; any one holding makes the value hold.
    pub alternatives: Vec<Test>,
}

/// What a value tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `null`: the field is absent (or JSON null).
    Null,
    /// `exists: true|false`.
    Exists(bool),
    /// A string pattern, case-insensitive unless `cased`.
    Text {
        /// Literal pieces and wildcards.
        pattern: Pattern,
        /// `|cased`.
        cased: bool,
    },
    /// A number written unquoted.
    Number(Number),
    /// `true`/`false` written unquoted.
    Bool(bool),
    /// `|re`.
    Regex {
        /// The expression as written.
        pattern: String,
        /// `i`, `m`, `s`.
        flags: RegexFlags,
    },
    /// `|cidr`.
    Cidr {
        /// Network address.
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// `|lt` ... `|gte`.
    Compare {
        /// The operator.
        op: super::CmpOp,
        /// The bound.
        value: Number,
    },
    /// `|fieldref`: compare with another field of the same event.
    FieldRef {
        /// The other field.
        field: String,
        /// Equality or substring position.
        position: Position,
        /// `|cased`.
        cased: bool,
    },
    /// A time-part modifier on a timestamp field.
    TimePart {
        /// Which part.
        part: TimePart,
        /// The comparison (`Eq` when none is given).
        op: super::CmpOp,
        /// The number compared with.
        value: i64,
    },
}

/// A number as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    /// Its value.
    pub value: f64,
    /// Its source text.
    pub text: String,
}

/// Where a `fieldref` value must sit in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Position {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

/// Regular-expression flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegexFlags {
    /// `i`.
    pub ignore_case: bool,
    /// `m`.
    pub multiline: bool,
    /// `s`.
    pub dot_all: bool,
}

impl RegexFlags {
    /// The flags as inline-flag letters (`ims` order), empty when none.
    pub fn letters(&self) -> String {
        [
            (self.ignore_case, 'i'),
            (self.multiline, 'm'),
            (self.dot_all, 's'),
        ]
        .iter()
        .filter_map(|&(on, c)| on.then_some(c))
        .collect()
    }

    /// `pattern` with the flags as an inline group in front (`(?i)...`).
    pub fn inline(&self, pattern: &str) -> String {
        match self.letters() {
            f if f.is_empty() => pattern.to_string(),
            f => format!("(?{f}){pattern}"),
        }
    }
}

/// Part of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// A value on its way through the transformation modifiers.
#[derive(Clone)]
enum Work {
    Text(Pattern),
    Bytes(Vec<u8>),
}

impl Work {
    fn into_pattern(self) -> Pattern {
        match self {
            Work::Text(p) => p,
            // Encoded bytes compare as text with one character per byte, as
            // pySigma hands them to backends.
            Work::Bytes(b) => {
                Pattern::literal(&b.iter().map(|&c| char::from(c)).collect::<String>())
            }
        }
    }
}

/// Lowers `key: value` inside a detection map (`key` = `field|mods`).
pub(crate) fn lower(key: &Node, value: &Node, ctx: &mut Ctx<'_>) -> Option<FieldTest> {
    let key_text = key.scalar_text().unwrap_or_default();
    let mut parts = key_text.split('|');
    let field = parts.next().unwrap_or("").to_string();
    // Where each modifier is written, so diagnostics point at the modifier
    // rather than the whole key (the whole key when its text is not exact).
    let key_offset = text_offset(&key_text, key, ctx);
    let mut spans = Vec::new();
    let mut modifiers = Vec::new();
    let mut failed = false;
    let mut at = field.len() + 1;
    for name in parts {
        let span = match key_offset {
            // an empty modifier: the `|` before it, and the one after if any
            Some(o) if name.is_empty() => Span::new(o + at - 1, o + (at + 1).min(key_text.len())),
            Some(o) => Span::new(o + at, o + at + name.len()),
            None => key.span,
        };
        at += name.len() + 1;
        match Modifier::from_name(name) {
            Some((m, alias)) => {
                if alias {
                    let d = ctx
                        .diag(
                            codes::MODIFIER_ALIAS,
                            span,
                            format!("`{name}` is pySigma's alias of `{m}`"),
                        )
                        .with_help(format!("write `{m}`"));
                    ctx.report(d);
                }
                modifiers.push(m);
                spans.push(span);
            }
            None if name.is_empty() => {
                failed = true;
                let d = ctx
                    .diag(
                        codes::UNKNOWN_MODIFIER,
                        span,
                        format!("empty modifier in `{key_text}`"),
                    )
                    .with_label("no modifier name here")
                    .with_help("remove the extra `|`");
                ctx.report(d);
            }
            None => {
                failed = true;
                let mut d = ctx
                    .diag(
                        codes::UNKNOWN_MODIFIER,
                        span,
                        format!("unknown modifier `{name}`"),
                    )
                    .with_label(format!("in `{key_text}`"));
                if let Some(s) = Modifier::suggest(name) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                ctx.report(d);
            }
        }
    }
    let span_of = |m: Modifier| {
        modifiers
            .iter()
            .position(|&x| x == m)
            .and_then(|i| spans.get(i).copied())
            .unwrap_or(key.span)
    };
    if failed {
        return None;
    }
    let keyword = field.is_empty();
    let problems = check_chain(&modifiers, keyword);
    if let Some(problem) = problems.first() {
        let at = match problem {
            ChainProblem::Duplicate(i)
            | ChainProblem::Illegal(i, _)
            | ChainProblem::FlagWithoutRe(i)
            | ChainProblem::Conflict(_, i) => spans.get(*i).copied().unwrap_or(key.span),
        };
        let (code, message) = match problem {
            ChainProblem::Duplicate(i) => (
                codes::DUPLICATE_MODIFIER,
                format!("modifier `{}` is applied twice", modifiers[*i]),
            ),
            ChainProblem::Conflict(a, b) => (
                codes::CONFLICTING_MODIFIERS,
                format!(
                    "modifiers `{}` and `{}` cannot be combined",
                    modifiers[*a], modifiers[*b]
                ),
            ),
            ChainProblem::Illegal(_, why) => (codes::ILLEGAL_MODIFIER_CHAIN, why.clone()),
            ChainProblem::FlagWithoutRe(i) => (
                codes::REGEX_FLAG_WITHOUT_RE,
                format!("regex flag `{}` needs `re` before it", modifiers[*i]),
            ),
        };
        let d = ctx
            .diag(code, at, message)
            .with_label(format!("in `{key_text}`"));
        ctx.report(d);
        return None;
    }
    let has = |m: Modifier| modifiers.contains(&m);
    let link = if has(Modifier::All) {
        Link::All
    } else {
        Link::Any
    };
    let value_nodes: Vec<&Node> = match &value.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![value],
    };
    if value_nodes.is_empty() {
        ctx.error(
            codes::EMPTY_IDENTIFIER,
            value.span,
            format!("`{key_text}` has an empty list of values"),
        );
        return None;
    }
    if link == Link::All && value_nodes.len() == 1 {
        let d = ctx
            .diag(
                codes::ALL_SINGLE_VALUE,
                span_of(Modifier::All),
                format!("`all` in `{key_text}` has a single value"),
            )
            .with_help("`all` combines several values with AND; remove it or add values");
        ctx.report(d);
    }
    let positional = modifiers.iter().any(|m| m.is_position());
    if link == Link::All
        && !keyword
        && !positional
        && !has(Modifier::Re)
        && !has(Modifier::Cidr)
        && !has(Modifier::FieldRef)
        && value_nodes.len() > 1
    {
        let wildcards = value_nodes.iter().any(|n| {
            n.as_str()
                .is_some_and(|s| Pattern::parse(s).has_wildcards())
        });
        if !wildcards {
            let d = ctx
                .diag(codes::ALL_WITHOUT_CONTAINS, span_of(Modifier::All), format!("`{key_text}` requires one value to equal several different strings"))
                .with_help("this holds only through an array field; use a value list (OR) or `contains|all`");
            ctx.report(d);
        }
    }
    if has(Modifier::Base64Offset) && !has(Modifier::Contains) {
        let d = ctx
            .diag(
                codes::BASE64OFFSET_WITHOUT_CONTAINS,
                span_of(Modifier::Base64Offset),
                "`base64offset` without `contains`",
            )
            .with_help("write `base64offset|contains`");
        ctx.report(d);
    }
    if has(Modifier::Windash) && link == Link::All {
        let d = ctx
            .diag(
                codes::WINDASH_WITH_ALL,
                span_of(Modifier::Windash),
                "`windash` combined with `all`",
            )
            .with_help("each value matches with any dash variant, and all values must match; check that is what is meant, or split the item");
        ctx.report(d);
    }
    // A keyword list cannot hold `null` at all (S416, reported per value).
    let null = value_nodes.iter().find(|n| n.kind == NodeKind::Null);
    if let (Some(null), false) = (null, keyword || value_nodes.len() < 2) {
        let d = ctx
            .diag(
                codes::NULL_IN_LIST,
                null.span,
                "`null` is mixed into a list of values",
            )
            .with_help("put `null` in its own identifier");
        ctx.report(d);
    }
    let mut values = Vec::new();
    let mut ok = true;
    for node in value_nodes {
        match lower_value(node, &modifiers, keyword, ctx) {
            Some(alternatives) => values.push(ValueTest {
                span: node.span,
                alternatives,
            }),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    Some(FieldTest {
        field: (!keyword).then_some(field),
        span: key.span,
        link,
        negated: has(Modifier::Neq),
        modifiers,
        values,
    })
}

/// Offset of `text` (a scalar's value) inside the file, when the scalar is
/// written exactly as its value (plain) or as it inside one pair of quotes.
fn text_offset(text: &str, node: &Node, ctx: &Ctx<'_>) -> Option<usize> {
    let raw = ctx.source.slice(node.span);
    if raw == text {
        return Some(node.span.start);
    }
    let quoted = raw.len() >= 2 && (raw.starts_with('\'') || raw.starts_with('"'));
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    (quoted && inner == text).then_some(node.span.start + 1)
}

fn number_of(node: &Node) -> Option<Number> {
    match &node.kind {
        NodeKind::Int { value, text } => Some(Number {
            value: *value as f64,
            text: text.clone(),
        }),
        NodeKind::Float { value, text } => Some(Number {
            value: *value,
            text: text.clone(),
        }),
        _ => None,
    }
}

fn lower_value(
    node: &Node,
    mods: &[Modifier],
    keyword: bool,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<Test>> {
    use Modifier::*;
    let first = mods.first().copied();
    let type_error = |ctx: &mut Ctx<'_>, m: &str, expected: &str| {
        let d = ctx
            .diag(
                codes::MODIFIER_VALUE_TYPE,
                node.span,
                format!("`{m}` needs {expected}, found {}", node.kind_name()),
            )
            .with_label(format!("expected {expected}"));
        ctx.report(d);
    };
    if matches!(node.kind, NodeKind::Seq(_) | NodeKind::Map(_)) {
        let d = ctx
            .diag(codes::INVALID_DETECTION_ITEM, node.span, format!("a value cannot be {}", node.kind_name()))
            .with_help("values are strings, numbers, booleans or null; for nested fields use a dotted name such as `requestParameters.bucketName`");
        ctx.report(d);
        return None;
    }
    match first {
        Some(Exists) => {
            return match node.kind {
                NodeKind::Bool(b) => Some(vec![Test::Exists(b)]),
                _ => {
                    type_error(ctx, "exists", "`true` or `false`");
                    None
                }
            };
        }
        Some(Re) => {
            let Some(pattern) = node
                .as_str()
                .map(str::to_string)
                .or_else(|| node.scalar_text())
            else {
                type_error(ctx, "re", "a regular expression string");
                return None;
            };
            let flags = RegexFlags {
                ignore_case: mods.contains(&IgnoreCase),
                multiline: mods.contains(&Multiline),
                dot_all: mods.contains(&DotAll),
            };
            // Validate the syntax only: compiling automata for every `re` value
            // of a catalog costs more than loading it; the matcher compiles later.
            if let Err(err) = regex_syntax::ParserBuilder::new()
                .case_insensitive(flags.ignore_case)
                .multi_line(flags.multiline)
                .dot_matches_new_line(flags.dot_all)
                .build()
                .parse(&pattern)
            {
                let detail = err.to_string();
                let last = detail
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                let d = ctx
                    .diag(
                        codes::INVALID_REGEX,
                        node.span,
                        format!("invalid regular expression: {last}"),
                    )
                    .with_label("does not compile");
                ctx.report(d);
                return None;
            }
            return Some(vec![Test::Regex { pattern, flags }]);
        }
        Some(Cidr) => {
            let Some(text) = node.as_str() else {
                type_error(ctx, "cidr", "a network such as `10.0.0.0/8`");
                return None;
            };
            return match parse_cidr(text) {
                Some((addr, prefix)) => Some(vec![Test::Cidr { addr, prefix }]),
                None => {
                    let d = ctx
                        .diag(
                            codes::INVALID_CIDR,
                            node.span,
                            format!("`{text}` is not an IPv4 or IPv6 network"),
                        )
                        .with_help("write a network such as `10.0.0.0/8` or `2001:db8::/32`");
                    ctx.report(d);
                    None
                }
            };
        }
        _ => {}
    }
    let comparison = mods
        .iter()
        .copied()
        .find(|m| m.is_comparison())
        .map(|m| match m {
            Lt => super::CmpOp::Lt,
            Lte => super::CmpOp::Lte,
            Gt => super::CmpOp::Gt,
            _ => super::CmpOp::Gte,
        });
    let time_part = mods
        .iter()
        .copied()
        .find(|m| m.is_time_part())
        .map(|m| match m {
            Minute => TimePart::Minute,
            Hour => TimePart::Hour,
            Day => TimePart::Day,
            Week => TimePart::Week,
            Month => TimePart::Month,
            _ => TimePart::Year,
        });
    if comparison.is_some() || time_part.is_some() {
        let Some(number) = number_of(node) else {
            let name = mods
                .iter()
                .find(|m| m.is_comparison() || m.is_time_part())
                .map(|m| m.name())
                .unwrap_or("lt");
            let mut d = ctx.diag(
                codes::NON_NUMERIC_COMPARISON,
                node.span,
                format!("`{name}` needs a number, found {}", node.kind_name()),
            );
            if node
                .as_str()
                .is_some_and(|s| s.trim().parse::<f64>().is_ok())
            {
                d = d.with_help("write the number without quotes");
            }
            ctx.report(d);
            return None;
        };
        return Some(vec![match time_part {
            Some(part) => {
                if number.value.fract() != 0.0 {
                    let name = mods
                        .iter()
                        .find(|m| m.is_time_part())
                        .map(|m| m.name())
                        .unwrap_or("hour");
                    ctx.error(
                        codes::NON_NUMERIC_COMPARISON,
                        node.span,
                        format!("`{name}` needs a whole number, found `{}`", number.text),
                    );
                    return None;
                }
                Test::TimePart {
                    part,
                    op: comparison.unwrap_or(super::CmpOp::Eq),
                    value: number.value as i64,
                }
            }
            None => Test::Compare {
                op: comparison.unwrap_or(super::CmpOp::Eq),
                value: number,
            },
        }]);
    }
    let cased = mods.contains(&Cased);
    let position = if mods.contains(&Contains) {
        Position::Contains
    } else if mods.contains(&StartsWith) {
        Position::StartsWith
    } else if mods.contains(&EndsWith) {
        Position::EndsWith
    } else {
        Position::Equals
    };
    if mods.contains(&FieldRef) {
        let Some(name) = node.scalar_text() else {
            type_error(ctx, "fieldref", "a field name");
            return None;
        };
        if name.contains(['*', '?']) {
            let d = ctx.diag(
                codes::MODIFIER_VALUE_TYPE,
                node.span,
                format!("`fieldref` takes a field name without wildcards, found `{name}`"),
            );
            ctx.report(d);
            return None;
        }
        return Some(vec![Test::FieldRef {
            field: name,
            position,
            cased,
        }]);
    }
    let transforms = mods.iter().any(|m| !matches!(m, All | Neq | Cased));
    let start = match &node.kind {
        NodeKind::Null => {
            if transforms || cased {
                type_error(
                    ctx,
                    mods.iter()
                        .find(|m| !matches!(m, All | Neq))
                        .map(|m| m.name())
                        .unwrap_or("modifier"),
                    "a string",
                );
                return None;
            }
            if keyword {
                ctx.error(
                    codes::MODIFIER_VALUE_TYPE,
                    node.span,
                    "a keyword cannot be `null`",
                );
                return None;
            }
            return Some(vec![Test::Null]);
        }
        NodeKind::Bool(b) if !transforms && !keyword => return Some(vec![Test::Bool(*b)]),
        NodeKind::Int { .. } | NodeKind::Float { .. } if !transforms && !keyword && !cased => {
            return number_of(node).map(|n| vec![Test::Number(n)]);
        }
        NodeKind::Str(s) => {
            lint_string(node, s, mods, keyword, ctx);
            Pattern::parse(s)
        }
        _ => Pattern::literal(&node.scalar_text().unwrap_or_default()),
    };
    // Once the file is over its bound, expanding another value is wasted work.
    let expands = mods
        .iter()
        .any(|m| matches!(m, Windash | Base64Offset | Expand));
    if expands && *ctx.variants > MAX_FILE_VARIANTS {
        file_too_large(node, ctx);
        return None;
    }
    let mut work = vec![Work::Text(start)];
    for &m in mods {
        work = match apply(m, work, node, ctx)? {
            w if w.len() > MAX_VARIANTS => {
                let d = ctx
                    .diag(
                        codes::EXPANSION_TOO_LARGE,
                        node.span,
                        format!("value expands into more than {MAX_VARIANTS} variants under `{m}`"),
                    )
                    .with_help("split the value into several smaller ones");
                ctx.report(d);
                return None;
            }
            w => w,
        };
    }
    let mut tests: Vec<Test> = Vec::new();
    // Up to MAX_VARIANTS patterns: deduplicate by hash, not pairwise.
    let mut seen = HashSet::new();
    for w in work {
        let mut pattern = w.into_pattern();
        // A keyword is a substring search over the event's values (docs/semantics.md).
        if keyword && position == Position::Equals {
            pattern = pattern.contains();
        }
        if seen.insert(pattern.clone()) {
            tests.push(Test::Text { pattern, cased });
        }
    }
    *ctx.variants = ctx.variants.saturating_add(tests.len().saturating_sub(1));
    if tests.len() > 1 && *ctx.variants > MAX_FILE_VARIANTS {
        file_too_large(node, ctx);
        return None;
    }
    Some(tests)
}

fn file_too_large(node: &Node, ctx: &mut Ctx<'_>) {
    let d = ctx
        .diag(
            codes::EXPANSION_TOO_LARGE,
            node.span,
            format!(
                "the values of this file expand into more than {MAX_FILE_VARIANTS} variants together"
            ),
        )
        .with_help("split the rule into several files, or match fewer variants");
    ctx.report(d);
}

fn lint_string(node: &Node, s: &str, mods: &[Modifier], keyword: bool, ctx: &mut Ctx<'_>) {
    // An escaped wildcard is "probably a path mistake" when it sits where a
    // path separator would (after a path character or at the start) in a
    // value that uses single backslashes as separators elsewhere: `\\*.bak`
    // in `C:\\Users\\*.bak` meant "backslash, then anything".
    let raw_wildcard_escape = {
        let b = s.as_bytes();
        let mut i = 0;
        let mut escapes = Vec::new();
        let mut separators = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                match b.get(i + 1) {
                    Some(b'\\') => i += 2,
                    Some(b'*' | b'?') => {
                        escapes.push(i);
                        i += 2;
                    }
                    _ => {
                        separators += 1;
                        i += 1;
                    }
                }
            } else {
                i += 1;
            }
        }
        let path_like = |at: usize| {
            at == 0
                || b.get(at - 1).is_some_and(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, b':' | b'%' | b'$' | b'_' | b'-' | b')')
                })
        };
        escapes.iter().any(|&at| {
            let star = b.get(at + 1) == Some(&b'*');
            path_like(at) && (separators > 0 || (at == 0 && star))
        })
    };
    if raw_wildcard_escape && !mods.contains(&Modifier::Re) {
        let d = ctx
            .diag(
                codes::ESCAPED_WILDCARD,
                node.span,
                format!("`{s}` contains an escaped wildcard, which matches a literal `*` or `?`"),
            )
            .with_help(
                "if the backslash is a path separator followed by a wildcard, write `\\\\*`",
            );
        ctx.report(d);
    }
    if Pattern::parse(s).pieces().windows(1).count() > 0 && s.contains("**") && !s.contains("\\**")
    {
        ctx.error(
            codes::DOUBLE_WILDCARD,
            node.span,
            format!("`{s}` contains `**`, which means the same as `*`"),
        );
    }
    let plain = !mods.iter().any(|m| {
        m.is_position()
            || matches!(
                m,
                Modifier::Base64
                    | Modifier::Base64Offset
                    | Modifier::Windash
                    | Modifier::Expand
                    | Modifier::Utf16
                    | Modifier::Utf16Le
                    | Modifier::Utf16Be
                    | Modifier::Wide
            )
    });
    if plain
        && !keyword
        && node.quoted
        && !s.is_empty()
        && s.len() < 19
        && s.bytes().all(|b| b.is_ascii_digit())
        && !(s.len() > 1 && s.starts_with('0'))
    {
        let d = ctx
            .diag(
                codes::NUMBER_AS_STRING,
                node.span,
                format!("number `{s}` is written as a string"),
            )
            .with_help(format!(
                "write `{s}` without quotes; sigil compares both forms alike"
            ));
        ctx.report(d);
    }
}

fn literal_bytes(w: &Work, m: Modifier, node: &Node, ctx: &mut Ctx<'_>) -> Option<Vec<u8>> {
    match w {
        Work::Bytes(b) => Some(b.clone()),
        Work::Text(p) => match p.as_literal() {
            Some(s) => Some(s.into_bytes()),
            None => {
                let d = ctx
                    .diag(
                        codes::MODIFIER_VALUE_TYPE,
                        node.span,
                        format!("`{m}` cannot encode a value with wildcards or placeholders"),
                    )
                    .with_help("escape a literal `*` or `?` as `\\*` or `\\?`");
                ctx.report(d);
                None
            }
        },
    }
}

fn apply(m: Modifier, work: Vec<Work>, node: &Node, ctx: &mut Ctx<'_>) -> Option<Vec<Work>> {
    use Modifier::*;
    let mut out = Vec::with_capacity(work.len());
    for w in work {
        match m {
            Contains | StartsWith | EndsWith => {
                let p = w.into_pattern();
                out.push(Work::Text(match m {
                    Contains => p.contains(),
                    StartsWith => p.ends_any(),
                    _ => p.starts_any(),
                }));
            }
            Windash => {
                let p = w.into_pattern();
                let variants = windash(&p);
                if variants.len() > MAX_VARIANTS {
                    return Some(vec![Work::Text(p); MAX_VARIANTS + 1]);
                }
                out.extend(variants.into_iter().map(Work::Text));
            }
            Base64 => {
                let b = literal_bytes(&w, m, node, ctx)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(b);
                out.push(Work::Text(Pattern::literal(&encoded)));
            }
            Base64Offset => {
                let b = literal_bytes(&w, m, node, ctx)?;
                for v in base64_offsets(&b) {
                    out.push(Work::Text(Pattern::literal(&v)));
                }
            }
            Utf16Le | Wide | Utf16Be | Utf16 => {
                let b = literal_bytes(&w, m, node, ctx)?;
                let text = String::from_utf8_lossy(&b).into_owned();
                let mut bytes = Vec::new();
                if m == Utf16 {
                    bytes.extend([0xFF, 0xFE]);
                }
                for unit in text.encode_utf16() {
                    let pair = if m == Utf16Be {
                        unit.to_be_bytes()
                    } else {
                        unit.to_le_bytes()
                    };
                    bytes.extend(pair);
                }
                out.push(Work::Bytes(bytes));
            }
            Expand => {
                let p = w.into_pattern();
                out.extend(expand(&p, node, ctx)?.into_iter().map(Work::Text));
            }
            _ => out.push(w),
        }
        if out.len() > MAX_VARIANTS {
            return Some(out);
        }
    }
    Some(out)
}

/// pySigma's reading of `windash`: each `-` or `/` that starts a word (not
/// preceded by a word character, followed by one) varies over five dashes.
fn windash(p: &Pattern) -> Vec<Pattern> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let mut variants = vec![Vec::<Piece>::new()];
    let pieces = p.pieces();
    for (pi, piece) in pieces.iter().enumerate() {
        let Piece::Literal(s) = piece else {
            for v in &mut variants {
                v.push(piece.clone());
            }
            continue;
        };
        let chars: Vec<char> = s.chars().collect();
        let mut segment = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev_word = if i == 0 {
                // a wildcard before counts as a non-word character
                pi > 0 && matches!(pieces.get(pi - 1), Some(Piece::Literal(_)))
            } else {
                is_word(chars[i - 1])
            };
            let next_word = chars.get(i + 1).is_some_and(|&n| is_word(n));
            if matches!(c, '-' | '/') && !prev_word && next_word {
                let mut next = Vec::with_capacity(variants.len() * 5);
                for v in &variants {
                    for d in DASHES {
                        let mut v = v.clone();
                        v.push(Piece::Literal(format!("{segment}{d}")));
                        next.push(v);
                    }
                }
                segment.clear();
                variants = next;
                if variants.len() > MAX_VARIANTS {
                    return vec![p.clone(); MAX_VARIANTS + 1];
                }
            } else {
                segment.push(c);
            }
        }
        for v in &mut variants {
            v.push(Piece::Literal(segment.clone()));
        }
    }
    variants.into_iter().map(Pattern::from_pieces).collect()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The three Base64 encodings of `b` at byte offsets 0, 1 and 2, trimmed of
/// the characters that depend on neighbouring bytes (pySigma's algorithm).
pub fn base64_offsets(b: &[u8]) -> Vec<String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let start_trim = [0usize, 2, 3];
    let end_trim = [0usize, 3, 2];
    let mut out = Vec::new();
    for i in 0..3 {
        let mut padded = vec![b' '; i];
        padded.extend_from_slice(b);
        let encoded = engine.encode(&padded);
        let tail = end_trim[(b.len() + i) % 3];
        let end = encoded.len().saturating_sub(tail);
        let v = encoded.get(start_trim[i]..end).unwrap_or("").to_string();
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn expand(p: &Pattern, node: &Node, ctx: &mut Ctx<'_>) -> Option<Vec<Pattern>> {
    // First find `%name%` inside literal pieces; `\%` is a literal percent sign.
    let mut pieces = Vec::new();
    for piece in p.pieces() {
        let Piece::Literal(s) = piece else {
            pieces.push(piece.clone());
            continue;
        };
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek() == Some(&'%') {
                lit.push('%');
                chars.next();
            } else if c == '%' {
                let mut name = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '%' {
                        closed = true;
                        break;
                    }
                    name.push(n);
                }
                if closed && !name.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                    pieces.push(Piece::Placeholder(name));
                } else {
                    lit.push('%');
                    lit.push_str(&name);
                    if closed {
                        lit.push('%');
                    }
                }
            } else {
                lit.push(c);
            }
        }
        pieces.push(Piece::Literal(lit));
    }
    let pattern = Pattern::from_pieces(pieces);
    let mut results = vec![Vec::<Piece>::new()];
    let configured = ctx.config.placeholders().is_some();
    for piece in pattern.pieces() {
        match piece {
            Piece::Placeholder(name) => match ctx.config.placeholder(name) {
                Some(values) => {
                    let mut next = Vec::new();
                    for r in &results {
                        for v in values {
                            let mut r = r.clone();
                            r.extend(Pattern::parse(v).pieces().iter().cloned());
                            next.push(r);
                        }
                    }
                    if next.len() > MAX_VARIANTS {
                        return Some(vec![pattern.clone(); MAX_VARIANTS + 1]);
                    }
                    results = next;
                }
                None => {
                    let mut d = ctx
                        .diag(codes::UNRESOLVED_PLACEHOLDER, node.span, format!("placeholder `%{name}%` has no configured value"))
                        .with_help("give its values in a placeholder file: `sigil check --placeholders FILE` (YAML: name: [values])");
                    if !configured {
                        // Without a table the rule stays symbolic: backends that
                        // must resolve it refuse it then (docs/diagnostics.md, S409).
                        d = d.with_severity(crate::diag::Severity::Warning);
                    }
                    ctx.report(d);
                    for r in &mut results {
                        r.push(piece.clone());
                    }
                }
            },
            other => {
                for r in &mut results {
                    r.push(other.clone());
                }
            }
        }
    }
    Some(results.into_iter().map(Pattern::from_pieces).collect())
}

/// Parses `addr/prefix` (a bare address is a host network).
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse::<u8>().ok()?
        }
        None => max,
    };
    (prefix <= max).then_some((addr, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_offsets_match_pysigma() {
        assert_eq!(base64_offsets(b"http"), vec!["aHR0c", "h0dH", "odHRw"]);
    }

    #[test]
    fn windash_varies_word_start_dashes_only() {
        let v = windash(&Pattern::parse(" -enc "));
        assert_eq!(v.len(), 5);
        assert!(v.contains(&Pattern::parse(" /enc ")));
        assert!(v.contains(&Pattern::parse(" \u{2015}enc ")));
        // a dash inside a word stays
        assert_eq!(windash(&Pattern::parse("a-b")).len(), 1);
        // ten flags would be 5^10 variants: refused, not built
        let many = " -a -b -c -d -e -f -g -h -i -j";
        assert!(windash(&Pattern::parse(many)).len() > MAX_VARIANTS);
    }

    #[test]
    fn cidr_parsing() {
        assert!(parse_cidr("10.0.0.0/8").is_some());
        assert!(parse_cidr("2001:db8::/32").is_some());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0/8").is_none());
        assert!(parse_cidr("10.0.0.1").is_some());
        assert!(parse_cidr("10.0.0.0/").is_none());
    }
}
