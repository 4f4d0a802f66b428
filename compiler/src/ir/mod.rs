//! The IR: span-free, normalised predicates per rule. Backends (the runtime
//! matcher, SPL, Athena SQL) consume only this.
//!
//! `from_catalog` lowers every usable detection rule; [`optimize`] runs the
//! passes (one file each): flattening and constant folding, then grouping of
//! exact values per field into sets. [`literals`] derives the cheap necessary
//! conditions the matcher uses to skip records before evaluating a rule.

mod build;
pub mod literals;
mod optimize;

use std::fmt;
use std::net::IpAddr;

pub use build::{from_catalog, from_rule, identifier_exprs};
pub use optimize::optimize;

use crate::rule::{CmpOp, CorrelationType, LogSource, Position, RegexFlags, TimePart};

/// Every rule of a catalog, ready for a backend.
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// Detection rules.
    pub rules: Vec<RuleIr>,
    /// Correlation rules, each after the correlations it refers to.
    pub correlations: Vec<CorrelationIr>,
}

/// What a correlation counts: the matches of a detection rule, or the alerts
/// of another correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationInput {
    /// Index into [`Program::rules`].
    Rule(usize),
    /// Index into [`Program::correlations`] (always an earlier one).
    Correlation(usize),
}

/// One correlation rule, its references resolved.
#[derive(Debug, Clone)]
pub struct CorrelationIr {
    /// What output needs to name it.
    pub info: RuleInfo,
    /// What the window computes.
    pub kind: CorrelationType,
    /// The referenced rules, in the order written.
    pub inputs: Vec<CorrelationInput>,
    /// Group-by names as written (aliases allowed); empty = one group.
    pub group_by: Vec<String>,
    /// For each group-by name and input: the field that input's events carry
    /// (the alias mapping, or the name itself).
    pub group_fields: Vec<Vec<String>>,
    /// Window length in seconds.
    pub timespan_secs: u64,
    /// Threshold operators (AND-ed); empty for temporal types = all inputs.
    pub ops: Vec<(CmpOp, f64)>,
    /// The aggregated field(s) for value_* types.
    pub value_fields: Vec<String>,
    /// Whether the referenced rules also alert on their own.
    pub generate: bool,
}

/// One detection rule.
#[derive(Debug, Clone)]
pub struct RuleIr {
    /// What output needs to name the rule.
    pub info: RuleInfo,
    /// Where its events come from.
    pub logsource: LogSource,
    /// When the rule matches an event.
    pub expr: Expr,
    /// Whether a match is reported on its own: false for a rule that only
    /// feeds correlations without `generate: true`.
    pub standalone: bool,
}

/// Rule metadata carried into results (the Detection Rule License requires
/// the author to travel with every match).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleInfo {
    /// UUID.
    pub id: Option<String>,
    /// Unique name.
    pub name: Option<String>,
    /// Title.
    pub title: String,
    /// `informational` ... `critical`.
    pub level: Option<String>,
    /// `stable`, `test`, ...
    pub status: Option<String>,
    /// Tags as written.
    pub tags: Vec<String>,
    /// Authors.
    pub author: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Fields to show.
    pub fields: Vec<String>,
    /// Known false positives.
    pub falsepositives: Vec<String>,
    /// References.
    pub references: Vec<String>,
    /// `file` or `file#N`.
    pub origin: String,
}

/// A boolean expression over predicates.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Always true or always false.
    Const(bool),
    /// Every operand holds.
    And(Vec<Expr>),
    /// Some operand holds.
    Or(Vec<Expr>),
    /// The operand does not hold (two-valued: a missing field makes a
    /// positive test false, so its negation true).
    Not(Box<Expr>),
    /// A test on one field, or a keyword over the whole event.
    Pred(Pred),
}

/// A dotted JSON path, split once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Splits `userIdentity.arn` at dots.
    pub fn new(text: &str) -> Self {
        FieldPath {
            text: text.to_string(),
            segments: text.split('.').map(str::to_string).collect(),
        }
    }
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// The keys, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A predicate: a check applied to the values at a path (any value may
/// satisfy it: arrays on the path fan out), or to every leaf (keywords).
#[derive(Debug, Clone, PartialEq)]
pub struct Pred {
    /// The field; `None` for a keyword over all leaves.
    pub field: Option<FieldPath>,
    /// What is checked.
    pub check: Check,
}

/// What a predicate checks on a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// No non-null value at the path (absent, or JSON null).
    Null,
    /// Some non-null value at the path.
    Exists,
    /// The value's text matches.
    Str(StrMatch),
    /// The value's text is one of these (exact); sorted, deduplicated.
    StrIn {
        /// The values (lower-cased unless `cased`).
        values: Vec<String>,
        /// Case-sensitive.
        cased: bool,
    },
    /// Equal to a number (numerically for numbers and numeric strings).
    Num {
        /// The value.
        value: f64,
        /// As written in the rule.
        text: String,
    },
    /// Equal to a boolean (the JSON boolean or its text).
    Bool(bool),
    /// A regular expression, unanchored.
    Regex {
        /// As written.
        pattern: String,
        /// Flags.
        flags: RegexFlags,
    },
    /// Inside an IP network.
    Cidr {
        /// Network address.
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// A numeric comparison.
    Cmp {
        /// Operator.
        op: CmpOp,
        /// Bound.
        value: f64,
    },
    /// A part of a timestamp compared with a number.
    TimePart {
        /// Which part.
        part: TimePart,
        /// Operator.
        op: CmpOp,
        /// Number.
        value: i64,
    },
    /// Compared with another field of the same event.
    FieldRef {
        /// The other field.
        other: FieldPath,
        /// Equality or position.
        position: Position,
        /// Case-sensitive.
        cased: bool,
    },
}

/// A string match; literal text is lower-cased (Unicode) unless `cased`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StrMatch {
    /// The shape.
    pub kind: StrKind,
    /// Case-sensitive.
    pub cased: bool,
}

/// The shape of a string match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StrKind {
    /// Whole value equals.
    Exact(String),
    /// Value starts with.
    Prefix(String),
    /// Value ends with.
    Suffix(String),
    /// Value contains.
    Contains(String),
    /// Wildcards anywhere.
    Glob(Vec<GlobPiece>),
}

/// A piece of a general wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GlobPiece {
    /// Literal text.
    Lit(String),
    /// `*`.
    AnyRun,
    /// `?`.
    AnyChar,
}

impl Expr {
    /// Every predicate, in order.
    pub fn preds(&self) -> Vec<&Pred> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Pred>) {
            match e {
                Expr::Const(_) => {}
                Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| walk(i, out)),
                Expr::Not(inner) => walk(inner, out),
                Expr::Pred(p) => out.push(p),
            }
        }
        walk(self, &mut out);
        out
    }
}

/// Lower-cases the way every backend must: Unicode simple lowercase.
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}
