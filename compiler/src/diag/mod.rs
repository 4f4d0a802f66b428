//! Diagnostics as data: every user-facing problem is a [`Diagnostic`] with a
//! stable [`Code`], a severity, a primary span and optional help. The CLI renders
//! them; this crate never prints.

pub mod codes;

use std::fmt;
use std::sync::Arc;

pub use codes::Code;

use crate::source::{LineCol, Source, Span};

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a check.
    Note,
    /// Questionable but usable.
    Warning,
    /// The rule (or file) cannot be used as written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A secondary location ("first defined here").
#[derive(Debug, Clone)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub message: String,
    /// The file it points into, when not the primary file.
    pub source: Option<Arc<Source>>,
}

/// One problem in one place.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    code: Code,
    severity: Severity,
    message: String,
    source: Option<Arc<Source>>,
    span: Option<Span>,
    label: Option<String>,
    help: Vec<String>,
    secondary: Vec<Label>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            source: None,
            span: None,
            label: None,
            help: Vec::new(),
            secondary: Vec::new(),
        }
    }

    /// Points the diagnostic at a span of a source.
    pub fn at(mut self, source: &Arc<Source>, span: Span) -> Self {
        self.source = Some(Arc::clone(source));
        self.span = Some(span);
        self
    }

    /// Names the file only (no position known).
    pub fn in_file(mut self, source: &Arc<Source>) -> Self {
        self.source = Some(Arc::clone(source));
        self
    }

    /// A short label under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    /// A secondary location.
    pub fn with_secondary(
        mut self,
        source: &Arc<Source>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
            source: Some(Arc::clone(source)),
        });
        self
    }

    /// Overrides the code's default severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The stable code.
    pub fn code(&self) -> Code {
        self.code
    }
    /// The severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }
    /// The one-sentence message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The source the diagnostic points into.
    pub fn source(&self) -> Option<&Arc<Source>> {
        self.source.as_ref()
    }
    /// The primary span.
    pub fn span(&self) -> Option<Span> {
        self.span
    }
    /// The caret label.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }
    /// The help lines.
    pub fn help(&self) -> &[String] {
        &self.help
    }
    /// Secondary locations.
    pub fn secondary(&self) -> &[Label] {
        &self.secondary
    }
    /// Start and end (exclusive) positions, when the diagnostic has a span.
    pub fn range(&self) -> Option<(LineCol, LineCol)> {
        let (source, span) = (self.source.as_ref()?, self.span?);
        Some((source.line_col(span.start), source.line_col(span.end)))
    }
    /// The file path, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.source.as_ref().map(|s| s.path())
    }
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A collector handed down the stages.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }
    /// All collected, in order of discovery.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
    /// Number collected.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// True when none were collected.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// True when any is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }
    /// Moves all out, sorted by file and position.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            let ka = (a.path().map(|p| p.to_path_buf()), a.span.map(|s| s.start));
            let kb = (b.path().map(|p| p.to_path_buf()), b.span.map(|s| s.start));
            ka.cmp(&kb)
        });
        self.items
    }
    /// Appends another collector.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}
