//! YAML 1.2 events from `saphyr-parser` built into [`Node`]s with byte spans.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan};

use crate::diag::{codes, Diagnostic, Diagnostics};
use crate::source::{Source, Span};

/// A rule file larger than this is refused (DESIGN.md limits).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// A single scalar longer than this is refused.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// YAML nesting deeper than this is refused.
pub const MAX_DEPTH: usize = 64;
/// Alias expansion may not create more nodes than this in one file (not per
/// document, or a file of many small documents would multiply it).
const MAX_ALIAS_NODES: usize = 100_000;

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The root node (a mapping for every valid Sigma document).
    pub root: Node,
    /// Index of the document within its file (0-based).
    pub index: usize,
    /// True when a value of the document was dropped (nested too deep or too
    /// long) and replaced by a null: the error is reported, and the document
    /// must not be lowered as if the null had been written.
    pub damaged: bool,
    /// True when the YAML stage reported an error in this document (a
    /// duplicate key): it is still lowered, to report every problem, but not
    /// used.
    pub has_errors: bool,
}

/// A YAML node with the span of its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: NodeKind,
    /// Where it was written.
    pub span: Span,
    /// True for quoted and block scalars: their text is never typed as a
    /// number, boolean or null.
    pub quoted: bool,
}

/// The value of a [`Node`], typed by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A decimal integer; `text` keeps how it was written.
    Int {
        /// The value.
        value: i64,
        /// The source text.
        text: String,
    },
    /// A float; `text` keeps how it was written.
    Float {
        /// The value.
        value: f64,
        /// The source text.
        text: String,
    },
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar as text (strings, numbers and booleans), for places where
    /// Sigma treats every scalar as a string.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int { text, .. } | NodeKind::Float { text, .. } => Some(text.clone()),
            NodeKind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The string, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Looks a key up in a mapping node, returning key and value nodes.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar_text().as_deref() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// A short English name of the node's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int { .. } => "an integer",
            NodeKind::Float { .. } => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    fn weight(&self) -> usize {
        match &self.kind {
            NodeKind::Seq(items) => 1 + items.iter().map(Node::weight).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.weight() + v.weight())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: usize,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        start: usize,
        anchor: usize,
    },
}

/// Parses every YAML document of a source. Never panics; problems go to `diags`
/// and the documents completed before a fatal YAML error are still returned.
pub fn parse(source: &Arc<Source>, diags: &mut Diagnostics) -> Vec<Document> {
    let text = source.text();
    if text.len() > MAX_FILE_BYTES {
        diags.push(
            Diagnostic::new(
                codes::FILE_TOO_LARGE,
                format!(
                    "rule file is {} bytes, over the {} byte limit",
                    text.len(),
                    MAX_FILE_BYTES
                ),
            )
            .at(source, Span::point(0)),
        );
        return Vec::new();
    }
    let errors_before = diags.error_count();
    let mut builder = Builder {
        source,
        diags,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        skip_depth: 0,
        alias_budget: MAX_ALIAS_NODES,
        too_deep_reported: false,
        damaged: false,
        has_errors: false,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_event() {
            None => break,
            Some(Ok((event, span))) => {
                if !builder.on_event(event, span) {
                    break;
                }
            }
            Some(Err(err)) => {
                let mark = err.marker();
                let at = source.offset_of(mark.line(), mark.col());
                let span = Span::new(at, next_char_end(text, at));
                if let Some(d) = builder.syntax_error(err.info(), span) {
                    builder.diags.push(d);
                }
                break;
            }
        }
    }
    let mut docs = builder.docs;
    // An empty document (a trailing `---`, or `---` twice) holds nothing to
    // check; it keeps its index so later documents are still numbered as written.
    docs.retain(|d| d.root.kind != NodeKind::Null);
    if docs.is_empty() && diags.error_count() == errors_before {
        diags.push(
            Diagnostic::new(codes::EMPTY_FILE, "file holds no YAML document")
                .at(source, Span::point(0)),
        );
    }
    docs
}

fn next_char_end(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|rest| rest.chars().next())
        .map(|c| at + c.len_utf8())
        .unwrap_or(at)
}

struct Builder<'a> {
    source: &'a Arc<Source>,
    diags: &'a mut Diagnostics,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Document>,
    /// While > 0 we are inside a collection that exceeded [`MAX_DEPTH`] and
    /// drop events until it closes.
    skip_depth: usize,
    alias_budget: usize,
    too_deep_reported: bool,
    /// A value of the document being built was replaced by a stand-in.
    damaged: bool,
    /// An error was reported in the document being built.
    has_errors: bool,
}

impl Builder<'_> {
    /// The diagnostic for a parser error at `span`, with a hint for the
    /// mistakes that produce saphyr's less obvious messages; `None` when the
    /// error only repeats one already reported.
    fn syntax_error(&self, info: &str, span: Span) -> Option<Diagnostic> {
        if info.contains("unknown anchor") {
            return Some(Diagnostic::new(codes::ALIAS, "alias refers to an unknown anchor")
                .at(self.source, span)
                .with_label("no `&anchor` of this name is defined before it")
                .with_help("define the anchor (`&name`) before the alias, or write the value out; a value starting with `*` must be quoted"));
        }
        if info.contains("recursion limit exceeded") {
            // saphyr's own bound on flow nesting (far above ours); its scanner
            // may hit it before the builder sees the collections.
            return (!self.too_deep_reported).then(|| {
                Diagnostic::new(
                    codes::NESTING_TOO_DEEP,
                    format!("YAML nests deeper than {MAX_DEPTH} levels"),
                )
                .at(self.source, span)
                .with_label("the YAML parser gave up here")
            });
        }
        let mut d = Diagnostic::new(codes::YAML_SYNTAX, format!("invalid YAML: {info}"))
            .at(self.source, span)
            .with_label("the YAML parser stopped here");
        if info.contains("unknown escape character") {
            d = d.with_help("inside double quotes a backslash starts an escape; write Windows paths in single quotes ('C:\\Windows') or double each backslash");
        } else if info.contains("quoted scalar") {
            d = d.with_help("a quoted value runs until its closing quote; check that the quote opened here is closed");
        } else if info.contains("tabs") {
            d = d.with_help("indent with spaces; YAML does not allow tabs in indentation");
        } else if info.contains("mapping values are not allowed") {
            d = d.with_help("quote a value that contains `: `, e.g. `title: 'a: b'`");
        }
        // An error inside a flow collection opened on an earlier line is most
        // often that collection left unclosed.
        let open = self.stack.iter().rev().find_map(|frame| {
            let (Frame::Seq { start, .. } | Frame::Map { start, .. }) = frame;
            let c = self.source.text().as_bytes().get(*start).copied()?;
            matches!(c, b'[' | b'{').then_some((*start, c))
        });
        if let Some((start, c)) = open {
            if self.source.line_col(start).line < self.source.line_col(span.start).line {
                let close = if c == b'[' { ']' } else { '}' };
                d = d.with_secondary(
                    self.source,
                    Span::new(start, start + 1),
                    format!(
                        "`{}` opened here is not closed with `{close}`",
                        char::from(c)
                    ),
                );
            }
        }
        Some(d)
    }

    fn span(&self, span: YamlSpan) -> Span {
        let start = self.source.offset_of(span.start.line(), span.start.col());
        let end = self.source.offset_of(span.end.line(), span.end.col());
        Span::new(start, end)
    }

    /// Returns false to stop parsing.
    fn on_event(&mut self, event: Event<'_>, yspan: YamlSpan) -> bool {
        let span = self.span(yspan);
        if self.skip_depth > 0 {
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skip_depth += 1,
                Event::SequenceEnd | Event::MappingEnd => {
                    self.skip_depth -= 1;
                    if self.skip_depth == 0 {
                        // Stand in a null for the dropped collection so the
                        // surrounding structure stays well-formed.
                        self.push_node(Node {
                            kind: NodeKind::Null,
                            span,
                            quoted: false,
                        });
                    }
                }
                _ => {}
            }
            return true;
        }
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                self.anchors.clear();
                self.damaged = false;
                self.has_errors = false;
            }
            Event::DocumentEnd => {}
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(tag) = tag {
                    if !tag.is_yaml_core_schema() || tag.suffix == "binary" {
                        // Show the tag as written: `!!binary`, not its expanded URI.
                        let handle = if tag.is_yaml_core_schema() {
                            "!!"
                        } else {
                            tag.handle.as_str()
                        };
                        self.diags.push(
                            Diagnostic::new(
                                codes::YAML_TAG,
                                format!("YAML tag `{handle}{}` is ignored", tag.suffix),
                            )
                            .at(self.source, span),
                        );
                    }
                }
                if value.len() > MAX_VALUE_BYTES {
                    self.diags.push(
                        Diagnostic::new(
                            codes::VALUE_TOO_LONG,
                            format!(
                                "value is {} bytes, over the {} byte limit",
                                value.len(),
                                MAX_VALUE_BYTES
                            ),
                        )
                        .at(self.source, Span::new(span.start, span.start + 1)),
                    );
                    self.damaged = true;
                    let node = Node {
                        kind: NodeKind::Null,
                        span,
                        quoted: false,
                    };
                    self.push_node(node);
                    return true;
                }
                let quoted = !matches!(style, ScalarStyle::Plain);
                let kind = if quoted {
                    NodeKind::Str(value.into_owned())
                } else {
                    self.resolve_plain(&value, span)
                };
                let node = Node { kind, span, quoted };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_node(node);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    if !self.too_deep_reported {
                        self.too_deep_reported = true;
                        self.diags.push(
                            Diagnostic::new(
                                codes::NESTING_TOO_DEEP,
                                format!("YAML nests deeper than {MAX_DEPTH} levels"),
                            )
                            .at(self.source, Span::new(span.start, span.start + 1))
                            .with_label("this collection is too deep"),
                        );
                    }
                    self.skip_depth = 1;
                    self.damaged = true;
                    return true;
                }
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        items: Vec::new(),
                        start: span.start,
                        anchor,
                    }
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        pending_key: None,
                        start: span.start,
                        anchor,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return true;
                };
                let (kind, start, anchor) = match frame {
                    Frame::Seq {
                        items,
                        start,
                        anchor,
                    } => (NodeKind::Seq(items), start, anchor),
                    Frame::Map {
                        entries,
                        start,
                        anchor,
                        ..
                    } => {
                        self.check_duplicate_keys(&entries);
                        (NodeKind::Map(entries), start, anchor)
                    }
                };
                let end = match &kind {
                    NodeKind::Seq(items) => items.last().map(|n| n.span.end),
                    NodeKind::Map(entries) => entries.last().map(|(_, v)| v.span.end),
                    _ => None,
                }
                .unwrap_or(span.end)
                .max(span.end.min(self.source.text().len()));
                let node = Node {
                    kind,
                    span: Span::new(start, end.max(start)),
                    quoted: false,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_node(node);
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    self.diags.push(
                        Diagnostic::new(codes::ALIAS, "alias refers to an unknown anchor")
                            .at(self.source, span),
                    );
                    return false;
                };
                let weight = node.weight();
                if weight > self.alias_budget {
                    self.diags.push(
                        Diagnostic::new(
                            codes::ALIAS,
                            format!(
                                "aliases expand to more than {MAX_ALIAS_NODES} nodes in one file"
                            ),
                        )
                        .at(self.source, span),
                    );
                    return false;
                }
                self.alias_budget -= weight;
                let mut node = node;
                node.span = span;
                self.push_node(node);
            }
        }
        true
    }

    fn resolve_plain(&mut self, text: &str, span: Span) -> NodeKind {
        match text {
            "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
            "true" | "True" | "TRUE" => return NodeKind::Bool(true),
            "false" | "False" | "FALSE" => return NodeKind::Bool(false),
            _ => {}
        }
        if matches!(
            text,
            "yes" | "Yes" | "YES" | "no" | "No" | "NO" | "on" | "On" | "ON" | "off" | "Off" | "OFF"
        ) {
            self.diags.push(
                Diagnostic::new(
                    codes::YAML11_BOOLEAN,
                    format!("`{text}` is read as the string \"{text}\", not as a boolean"),
                )
                .at(self.source, span)
                .with_help(format!(
                    "quote it (`'{text}'`) to keep the string, or write `true`/`false`"
                )),
            );
            return NodeKind::Str(text.to_string());
        }
        if is_decimal_int(text) {
            if let Ok(value) = text.parse::<i64>() {
                return NodeKind::Int {
                    value,
                    text: text.to_string(),
                };
            }
        }
        if is_float(text) {
            if let Ok(value) = text.parse::<f64>() {
                return NodeKind::Float {
                    value,
                    text: text.to_string(),
                };
            }
        }
        // Hexadecimal and octal forms (`0x40810000`) stay strings: Sigma compares
        // values as text, and turning them into decimal would change that text.
        NodeKind::Str(text.to_string())
    }

    fn check_duplicate_keys(&mut self, entries: &[(Node, Node)]) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (key, _) in entries {
            let Some(text) = key.scalar_text() else {
                continue;
            };
            if let Some(first) = seen.get(&text) {
                self.has_errors = true;
                self.diags.push(
                    Diagnostic::new(codes::DUPLICATE_KEY, format!("duplicate key `{text}`"))
                        .at(self.source, key.span)
                        .with_label("second definition")
                        .with_secondary(self.source, *first, "first defined here")
                        .with_help(
                            "YAML keeps only one of them; merge the values into a list or use two identifiers",
                        ),
                );
            } else {
                seen.insert(text, key.span);
            }
        }
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                let index = self.docs.len();
                self.docs.push(Document {
                    root: node,
                    index,
                    damaged: self.damaged,
                    has_errors: self.has_errors,
                });
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

fn is_decimal_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(text: &str) -> bool {
    // YAML 1.2 core: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Vec<Document>, Diagnostics) {
        let source = Arc::new(Source::new("t.yml", text));
        let mut diags = Diagnostics::new();
        let docs = parse(&source, &mut diags);
        (docs, diags)
    }

    #[test]
    fn scalars_follow_yaml_1_2_core() {
        let (docs, diags) = load("a: 1\nb: '1'\nc: yes\nd: 0x10\ne: 1.5\nf: ~\ng: true\n");
        let root = &docs[0].root;
        assert!(matches!(
            root.get("a").unwrap().kind,
            NodeKind::Int { value: 1, .. }
        ));
        assert_eq!(root.get("b").unwrap().kind, NodeKind::Str("1".into()));
        assert_eq!(root.get("c").unwrap().kind, NodeKind::Str("yes".into()));
        assert_eq!(root.get("d").unwrap().kind, NodeKind::Str("0x10".into()));
        assert!(matches!(
            root.get("e").unwrap().kind,
            NodeKind::Float { .. }
        ));
        assert_eq!(root.get("f").unwrap().kind, NodeKind::Null);
        assert_eq!(root.get("g").unwrap().kind, NodeKind::Bool(true));
        assert_eq!(diags.iter().next().unwrap().code().id, "S107");
    }

    #[test]
    fn spans_point_at_values() {
        let text = "title: hello\nlist:\n  - 'x y'\n";
        let source = Arc::new(Source::new("t.yml", text));
        let mut diags = Diagnostics::new();
        let docs = parse(&source, &mut diags);
        let title = docs[0].root.get("title").unwrap();
        assert_eq!(source.slice(title.span), "hello");
        let NodeKind::Seq(items) = &docs[0].root.get("list").unwrap().kind else {
            panic!()
        };
        assert_eq!(source.slice(items[0].span), "'x y'");
    }

    #[test]
    fn duplicate_keys_and_depth_are_reported() {
        let (_, diags) = load("a: 1\na: 2\n");
        assert_eq!(diags.iter().next().unwrap().code().id, "S105");
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let (_, diags) = load(&deep);
        assert!(diags.iter().any(|d| d.code().id == "S103"));
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let (_, diags) = load(&text);
        assert!(diags.iter().any(|d| d.code().id == "S106"));
    }

    #[test]
    fn multi_document_files() {
        let (docs, _) = load("a: 1\n---\nb: 2\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].index, 1);
    }
}
