//! Athena SQL (Trino dialect, Athena engine 3) over the AWS-documented
//! CloudTrail table.
//!
//! Every predicate is made two-valued with `COALESCE(…, FALSE)`, so `NOT`
//! keeps rows whose columns are NULL (semantics 2.2). Strings compare through
//! `lower()` unless `cased`; wildcards become `LIKE … ESCAPE '\'` with `%`
//! and `_` escaped; `?` becomes `_` (exactly one character).

use crate::ir::{Check, GlobPiece, Pred, RuleIr, StrKind};
use crate::rule::{CmpOp, Position, TimePart};

use super::mapping::{AthenaMapping, ColumnKind};
use super::spl::{caseless_literal, int38, int_cmp_alternatives, EXACT_DOUBLE};
use super::{Backend, Options, Out, Unsupported};

/// Numeric text as the matcher reads it, to the very end (`\z`: `$` in
/// Trino's regexes also accepts a final newline).
const NUMERIC_RE: &str = concat!("^", super::number_syntax!(), "\\z");

/// Integer text the matcher compares exactly (as `i128`).
const INT38_RE: &str = "^-?[0-9]{1,38}\\z";

/// `TRY_CAST(x AS DOUBLE)` is finite (`1e400` is no number to the matcher;
/// the cast gives infinity).
fn finite(d: &str) -> String {
    format!("{d} BETWEEN -1.7976931348623157E308 AND 1.7976931348623157E308")
}

#[path = "athena_correlation.rs"]
mod correlation;

/// Output shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AthenaFormat {
    /// `SELECT …`.
    Plain,
    /// `CREATE OR REPLACE VIEW … AS SELECT …`.
    View,
}

/// The Athena backend.
pub struct Athena<'a> {
    /// Table and columns.
    pub mapping: &'a AthenaMapping,
    /// Time range.
    pub options: Options,
    /// Output shape.
    pub format: AthenaFormat,
}

/// Where a record path lives in the table.
enum Place {
    /// A column or struct field; `kind` says what it holds.
    Column(String, ColumnKind),
    /// Below a JSON-text column through declared arrays: `hops` are the JSON
    /// paths of the arrays (each relative to the previous element), `leaf`
    /// the path of the value inside the last element.
    JsonArrays {
        column: String,
        hops: Vec<String>,
        leaf: String,
    },
    /// `json_extract_scalar(column, '$.a.b')`.
    Json {
        /// The JSON-text column.
        column: String,
        /// The JSON path below it.
        path: String,
    },
    /// A field of the elements of an array of structs.
    Element { array: String, field: String },
}

/// A SQL string literal.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether `lower(col) LIKE pattern` could differ from the matcher, which
/// matches each character of the value by its own lowercase: where
/// lower-casing lengthens a character (`İ` → `i̇`), `_` would take one half
/// of it, and a wildcard could start or end between the halves (a literal
/// ending in `i` before a wildcard, or starting with U+0307 after one).
fn lengthening_sensitive(pieces: &[GlobPiece]) -> bool {
    let wild = |g: Option<&GlobPiece>| matches!(g, Some(GlobPiece::AnyRun | GlobPiece::AnyChar));
    pieces.iter().enumerate().any(|(i, g)| match g {
        GlobPiece::AnyChar => true,
        GlobPiece::AnyRun => false,
        GlobPiece::Lit(s) => {
            (s.ends_with('i') && wild(pieces.get(i + 1)))
                || (s.starts_with('\u{307}') && i > 0 && wild(pieces.get(i - 1)))
        }
    })
}

fn like_pattern(pieces: &[GlobPiece]) -> String {
    let mut out = String::new();
    for p in pieces {
        match p {
            GlobPiece::Lit(s) => {
                for c in s.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            GlobPiece::AnyRun => out.push('%'),
            GlobPiece::AnyChar => out.push('_'),
        }
    }
    out
}

/// A key that can sit in a bracketed JSON path (`$["x-amz-acl"]`).
fn json_key_ok(seg: &str) -> bool {
    !seg.is_empty()
        && seg
            .chars()
            .all(|c| !c.is_control() && !matches!(c, '"' | '\\' | '\'' | '[' | ']'))
}

/// A key that can be written after a dot (`$.bucketName`).
fn json_ident(seg: &str) -> bool {
    let mut cs = seg.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn cmp_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
        CmpOp::Eq => "=",
        CmpOp::Neq => "<>",
    }
}

fn num_lit(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:e}")
    }
}

impl Athena<'_> {
    /// The refusal for a test below a JSON-text column whose path the
    /// mapping does not declare a scalar.
    fn undeclared(&self, path: &str) -> Unsupported {
        Unsupported::construct(format!(
            "`{path}` lies below a JSON-text column and may hold an array or an object, \
             which `json_extract_scalar` does not see; declare it under `athena.scalars` \
             (or `athena.arrays`) in the mapping file if it holds a scalar"
        ))
    }

    fn place(&self, path: &str) -> Result<Place, Unsupported> {
        let cols = &self.mapping.columns;
        if let Some((col, kind)) = cols.get(path) {
            return Ok(Place::Column(col.clone(), kind.clone()));
        }
        // The longest mapped prefix decides.
        let segs: Vec<&str> = path.split('.').collect();
        for cut in (1..segs.len()).rev() {
            let prefix = segs[..cut].join(".");
            let rest = &segs[cut..];
            let Some((col, kind)) = cols.get(&prefix) else {
                continue;
            };
            return match kind {
                ColumnKind::JsonText => {
                    if let Some(bad) = rest.iter().find(|s| !json_key_ok(s)) {
                        return Err(Unsupported::field(format!(
                            "`{path}`: the key `{bad}` below the JSON-text column `{col}` cannot be written as a JSON path"
                        )));
                    }
                    // Split the sub-path at declared arrays: each becomes a
                    // level of `any_match` over `ARRAY(JSON)`.
                    let mut hops = Vec::new();
                    let mut jp = String::from("$");
                    for (i, seg) in rest.iter().enumerate() {
                        if json_ident(seg) {
                            jp.push('.');
                            jp.push_str(seg);
                        } else {
                            jp.push_str(&format!("[\"{seg}\"]"));
                        }
                        let full = format!("{prefix}.{}", rest[..=i].join("."));
                        if self.mapping.arrays.contains(&full) {
                            hops.push(std::mem::replace(&mut jp, String::from("$")));
                        }
                    }
                    if hops.is_empty() {
                        Ok(Place::Json {
                            column: col.clone(),
                            path: jp,
                        })
                    } else {
                        Ok(Place::JsonArrays {
                            column: col.clone(),
                            hops,
                            leaf: jp,
                        })
                    }
                }
                ColumnKind::StructArray(fields) if rest.len() == 1 => {
                    match fields.iter().find(|(json, _)| json == rest[0]) {
                        Some((_, f)) => Ok(Place::Element {
                            array: col.clone(),
                            field: f.clone(),
                        }),
                        None => Err(Unsupported::field(format!(
                            "`{path}`: the elements of `{col}` have no field `{}` (field names are case-sensitive)",
                            rest[0]
                        ))),
                    }
                }
                _ => Err(Unsupported::field(format!(
                    "`{path}`: the table `{}` has no column for it (field names are case-sensitive JSON paths)",
                    self.mapping.table
                ))),
            };
        }
        Err(Unsupported::field(format!(
            "`{path}`: the table `{}` has no column for it (field names are case-sensitive JSON paths)",
            self.mapping.table
        )))
    }

    /// A two-valued test of `check` on the string expression `v`.
    fn test(&self, v: &str, check: &Check, path: &str) -> Out {
        let low = |cased: bool| {
            if cased {
                v.to_string()
            } else {
                format!("lower({v})")
            }
        };
        let t = match check {
            Check::Null => format!("{v} IS NULL"),
            Check::Exists => format!("{v} IS NOT NULL"),
            Check::Str(m) => {
                let l = low(m.cased);
                match &m.kind {
                    StrKind::Exact(s) => format!("{l} = {}", sql_str(s)),
                    StrKind::Prefix(s) => format!(
                        "{l} LIKE {} ESCAPE '\\'",
                        sql_str(&like_pattern(&[
                            GlobPiece::Lit(s.clone()),
                            GlobPiece::AnyRun
                        ]))
                    ),
                    StrKind::Suffix(s) => format!(
                        "{l} LIKE {} ESCAPE '\\'",
                        sql_str(&like_pattern(&[
                            GlobPiece::AnyRun,
                            GlobPiece::Lit(s.clone())
                        ]))
                    ),
                    StrKind::Contains(s) => format!(
                        "{l} LIKE {} ESCAPE '\\'",
                        sql_str(&like_pattern(&[
                            GlobPiece::AnyRun,
                            GlobPiece::Lit(s.clone()),
                            GlobPiece::AnyRun
                        ]))
                    ),
                    StrKind::Glob(pieces) if !m.cased && lengthening_sensitive(pieces) => {
                        // On the original text, each literal character the
                        // class of those whose lowercase it is: `_` after
                        // `lower()` would count `İ` (`i̇`) as two characters.
                        let mut body = String::from("(?s)^");
                        for g in pieces {
                            match g {
                                GlobPiece::Lit(s) => body.push_str(&caseless_literal(s)),
                                GlobPiece::AnyRun => body.push_str(".*"),
                                GlobPiece::AnyChar => body.push('.'),
                            }
                        }
                        body.push_str("\\z");
                        format!("regexp_like({v}, {})", sql_str(&body))
                    }
                    StrKind::Glob(pieces) => {
                        format!("{l} LIKE {} ESCAPE '\\'", sql_str(&like_pattern(pieces)))
                    }
                }
            }
            Check::StrIn { values, cased } => {
                let l = low(*cased);
                let vals: Vec<String> = values.iter().map(|s| sql_str(s)).collect();
                format!("{l} IN ({})", vals.join(", "))
            }
            Check::Num { value, text } => {
                let double = format!(
                    "regexp_like({v}, {}) AND TRY_CAST({v} AS DOUBLE) = {}",
                    sql_str(NUMERIC_RE),
                    num_lit(*value)
                );
                match int38(text) {
                    // Integers beyond 2^53 compare exactly, by their digits.
                    Some(b) if value.abs() >= EXACT_DOUBLE => format!(
                        "({v} = {} OR (regexp_like({v}, {i}) AND regexp_like({v}, {})) OR (NOT regexp_like({v}, {i}) AND {double}))",
                        sql_str(text),
                        sql_str(&format!("^{}\\z", int_cmp_alternatives(CmpOp::Eq, b))),
                        i = sql_str(INT38_RE),
                    ),
                    _ => format!("({v} = {} OR ({double}))", sql_str(text)),
                }
            }
            Check::Bool(b) => format!("lower({v}) = {}", sql_str(&b.to_string())),
            Check::Regex { pattern, flags } => {
                format!("regexp_like({v}, {})", sql_str(&flags.inline(pattern)))
            }
            Check::Cidr { addr, prefix } => format!(
                "contains({}, TRY_CAST({v} AS IPADDRESS))",
                sql_str(&super::masked_network(*addr, *prefix))
            ),
            Check::Cmp { op, value } => {
                let double = format!(
                    "regexp_like({v}, {}) AND {} AND TRY_CAST({v} AS DOUBLE) {} {}",
                    sql_str(NUMERIC_RE),
                    finite(&format!("TRY_CAST({v} AS DOUBLE)")),
                    cmp_sql(*op),
                    num_lit(*value)
                );
                if value.fract() == 0.0 && value.abs() >= EXACT_DOUBLE && value.abs() < 1e38 {
                    // The matcher compares integer text with an integral
                    // bound exactly; a double cannot beyond 2^53.
                    let b = *value as i128;
                    let int = if *op == CmpOp::Neq {
                        format!(
                            "NOT regexp_like({v}, {})",
                            sql_str(&format!("^{}\\z", int_cmp_alternatives(CmpOp::Eq, b)))
                        )
                    } else {
                        format!(
                            "regexp_like({v}, {})",
                            sql_str(&format!("^{}\\z", int_cmp_alternatives(*op, b)))
                        )
                    };
                    format!(
                        "((regexp_like({v}, {i}) AND {int}) OR (NOT regexp_like({v}, {i}) AND {double}))",
                        i = sql_str(INT38_RE),
                    )
                } else {
                    format!("({double})")
                }
            }
            Check::TimePart { part, op, value } => {
                let date = "^[0-9]{4}-[0-9]{2}-[0-9]{2}";
                let time = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}";
                let (guard, expr) = match part {
                    TimePart::Year => (date, format!("TRY_CAST(substr({v}, 1, 4) AS INTEGER)")),
                    TimePart::Month => (date, format!("TRY_CAST(substr({v}, 6, 2) AS INTEGER)")),
                    TimePart::Day => (date, format!("TRY_CAST(substr({v}, 9, 2) AS INTEGER)")),
                    TimePart::Week => (date, format!("week(TRY_CAST(substr({v}, 1, 10) AS DATE))")),
                    TimePart::Hour => (time, format!("TRY_CAST(substr({v}, 12, 2) AS INTEGER)")),
                    TimePart::Minute => (time, format!("TRY_CAST(substr({v}, 15, 2) AS INTEGER)")),
                };
                format!(
                    "(regexp_like({v}, {}) AND {expr} {} {value})",
                    sql_str(guard),
                    cmp_sql(*op)
                )
            }
            Check::FieldRef {
                other,
                position,
                cased,
            } => {
                let o = match self.place(other.as_str())? {
                    Place::Column(c, ColumnKind::Scalar | ColumnKind::JsonText) => c,
                    Place::Json { column, path } => {
                        if !self.mapping.scalars.iter().any(|s| s == other.as_str()) {
                            return Err(self.undeclared(other.as_str()));
                        }
                        format!("json_extract_scalar({column}, {})", sql_str(&path))
                    }
                    _ => {
                        return Err(Unsupported::construct(format!(
                        "`{path}|fieldref: {other}`: the other field is not a single string column"
                    )))
                    }
                };
                let (a, b) = if *cased {
                    (v.to_string(), o)
                } else {
                    (format!("lower({v})"), format!("lower({o})"))
                };
                match position {
                    Position::Equals => format!("{a} = {b}"),
                    Position::Contains => format!("strpos({a}, {b}) > 0"),
                    Position::StartsWith => format!("strpos({a}, {b}) = 1"),
                    Position::EndsWith => format!("strpos(reverse({a}), reverse({b})) = 1"),
                }
            }
        };
        Ok(t)
    }

    /// The `--since`/`--until` predicates (and the partition filter they
    /// imply), as conditions to AND with a query's own.
    pub(crate) fn time_range(&self) -> Vec<String> {
        let mut conds = Vec::new();
        let tc = &self.mapping.time_column;
        if let Some(s) = &self.options.since {
            conds.push(format!(
                "from_iso8601_timestamp({tc}) >= from_iso8601_timestamp({})",
                sql_str(s)
            ));
        }
        if let Some(u) = &self.options.until {
            conds.push(format!(
                "from_iso8601_timestamp({tc}) < from_iso8601_timestamp({})",
                sql_str(u)
            ));
        }
        if let Some(pf) = &self.mapping.partition_filter {
            if self.options.since.is_some() || self.options.until.is_some() {
                let d = |t: &Option<String>, dflt: &str| {
                    t.as_deref()
                        .map(|t| t.chars().take(10).collect::<String>().replace('-', "/"))
                        .unwrap_or_else(|| dflt.to_string())
                };
                conds.push(format!(
                    "({})",
                    pf.replace("{since}", &d(&self.options.since, "0000/00/00"))
                        .replace("{until}", &d(&self.options.until, "9999/99/99"))
                ));
            }
        }
        conds
    }
}

impl Backend for Athena<'_> {
    fn name(&self) -> &'static str {
        "athena"
    }

    fn const_bool(&self, value: bool) -> Out {
        Ok(if value { "TRUE" } else { "FALSE" }.to_string())
    }

    fn pred(&self, pred: &Pred) -> Out {
        let Some(field) = &pred.field else {
            return Err(Unsupported::construct(
                "keywords (values without a field) search every string, number and boolean leaf; \
                 the Athena table keeps objects as JSON text whose keys would also match",
            ));
        };
        let path = field.as_str();
        match self.place(path)? {
            Place::Column(col, ColumnKind::Scalar | ColumnKind::JsonText) => {
                let t = self.test(&col, &pred.check, path)?;
                Ok(format!("COALESCE({t}, FALSE)"))
            }
            Place::Json { column, path: jp } => {
                let e = format!("json_extract_scalar({column}, {})", sql_str(&jp));
                // `exists`/`null` also see objects and arrays, which have no
                // scalar text: an object (even `{}`) is a value; an array is
                // one when some element is not null (semantics 1.8, 2.6).
                let j = format!("json_extract({column}, {})", sql_str(&jp));
                let present = format!(
                    "({e} IS NOT NULL OR COALESCE(json_format({j}) LIKE '{{%', FALSE) \
                     OR COALESCE(any_match(TRY_CAST({j} AS ARRAY(JSON)), x0 -> json_format(x0) <> 'null'), FALSE))"
                );
                match pred.check {
                    // A direct key of the column's object is never behind an
                    // array; deeper ones are unless declared scalars.
                    Check::Exists | Check::Null
                        if path.split('.').count() > 2
                            && !self.mapping.scalars.iter().any(|s| s == path) =>
                    {
                        Err(self.undeclared(path))
                    }
                    Check::Exists => Ok(present),
                    Check::Null => Ok(format!("(NOT {present})")),
                    _ if !self.mapping.scalars.iter().any(|s| s == path) => {
                        Err(self.undeclared(path))
                    }
                    _ => {
                        let t = self.test(&e, &pred.check, path)?;
                        Ok(format!("COALESCE({t}, FALSE)"))
                    }
                }
            }
            Place::JsonArrays { column, hops, leaf } => {
                if !self.mapping.scalars.iter().any(|s| s == path) {
                    return Err(self.undeclared(path));
                }
                let (check, negate) = match &pred.check {
                    Check::Null => (&Check::Exists, true),
                    Check::FieldRef { .. } => {
                        return Err(Unsupported::construct(format!(
                            "`{path}|fieldref` through a JSON array"
                        )))
                    }
                    c => (c, false),
                };
                let last = format!("x{}", hops.len());
                let v = format!("json_extract_scalar({last}, {})", sql_str(&leaf));
                let mut t = format!("COALESCE({}, FALSE)", self.test(&v, check, path)?);
                for (i, hop) in hops.iter().enumerate().rev() {
                    let src = if i == 0 {
                        column.clone()
                    } else {
                        format!("x{i}")
                    };
                    t = format!(
                        "COALESCE(any_match(TRY_CAST(json_extract({src}, {}) AS ARRAY(JSON)), x{} -> {t}), FALSE)",
                        sql_str(hop),
                        i + 1
                    );
                }
                Ok(if negate { format!("(NOT {t})") } else { t })
            }
            Place::Column(col, ColumnKind::Struct | ColumnKind::StructArray(_)) => {
                let present = if matches!(
                    self.mapping.columns.get(path),
                    Some((_, ColumnKind::StructArray(_)))
                ) {
                    // An empty array, or one of nulls, holds no value (semantics 1.8).
                    format!("COALESCE(any_match({col}, r -> r IS NOT NULL), FALSE)")
                } else {
                    format!("({col} IS NOT NULL)")
                };
                match pred.check {
                    Check::Null => Ok(format!("(NOT {present})")),
                    Check::Exists => Ok(present),
                    _ => Err(Unsupported::construct(format!(
                        "`{path}` is an object or array column; a string test on its compact JSON text cannot be written over the struct"
                    ))),
                }
            }
            Place::Element { array, field } => {
                let v = format!("r.{field}");
                match &pred.check {
                    Check::Null => Ok(format!(
                        "(NOT COALESCE(any_match({array}, r -> r.{field} IS NOT NULL), FALSE))"
                    )),
                    Check::FieldRef { .. } => Err(Unsupported::construct(format!(
                        "`{path}|fieldref` through the array `{array}`"
                    ))),
                    check => {
                        let t = self.test(&v, check, path)?;
                        Ok(format!(
                            "COALESCE(any_match({array}, r -> COALESCE({t}, FALSE)), FALSE)"
                        ))
                    }
                }
            }
        }
    }

    fn finish(&self, rule: &RuleIr, condition: String) -> Out {
        let mut conds = vec![condition];
        conds.extend(self.time_range());
        let select = format!(
            "SELECT *\nFROM {}\nWHERE {}",
            self.mapping.table,
            conds.join("\n  AND ")
        );
        Ok(match self.format {
            AthenaFormat::Plain => select,
            AthenaFormat::View => format!(
                "CREATE OR REPLACE VIEW {} AS\n{select}",
                view_name(&rule.info)
            ),
        })
    }
}

/// The view name of a rule: `sigil_` and its id/name/title, lower-case.
pub fn view_name(info: &crate::ir::RuleInfo) -> String {
    format!(
        "sigil_{}",
        super::rule_slug(info).to_lowercase().replace('-', "_")
    )
}
