//! Correlation exports to Athena SQL (Trino): window functions or a
//! self-join over `from_iso8601_timestamp(eventtime)`. What is exported, and
//! why it is exact, is decided with the SPL export
//! ([`crate::backend::spl::correlation`]).

use crate::backend::spl::correlation::{input_rules, kind_refusal, merged_rules};
use crate::backend::{Backend, Out, Unsupported};
use crate::ir::{CorrelationIr, RuleIr};
use crate::rule::{CmpOp, CorrelationType};

use super::{num_lit, sql_str, Athena, ColumnKind, Place};

/// A SQL identifier in double quotes.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Athena<'_> {
    /// A correlation over detection rules. Rows whose time does not parse or
    /// whose group fields are NULL join no group. `event_count` is window
    /// functions over the rules' records; `value_count` and `temporal` a
    /// self-join of the rules' events (`UNION ALL`, one branch per rule,
    /// tagged with its position) on the group and on the window
    /// `end - timespan < time <= end`, with `count(DISTINCT …)`: Trino has no
    /// DISTINCT window aggregates (`gt`/`gte` only: otherwise the value of a
    /// window ending among tied events depends on their order). Each
    /// returned row ends a window that meets the condition, with the
    /// window's start and end.
    pub fn correlation(&self, c: &CorrelationIr, rules: &[RuleIr]) -> Out {
        let inputs = input_rules(c, rules)?;
        kind_refusal(c)?;
        let mut conds = Vec::new();
        let value = match c.kind {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            _ => "temporal",
        };
        for (op, v) in &c.ops {
            conds.push((*op, num_lit(*v)));
        }
        if conds.is_empty() {
            if c.kind != CorrelationType::Temporal {
                return Err(Unsupported::construct("a correlation without a condition"));
            }
            conds.push((CmpOp::Gte, c.inputs.len().to_string()));
        }
        let cond = |lhs: &str| {
            conds
                .iter()
                .map(|(op, v)| format!("{lhs} {} {v}", op.symbol()))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        if c.kind == CorrelationType::EventCount {
            self.event_count(c, &merged_rules(c, &inputs)?, &cond(value))
        } else {
            self.joined(c, &inputs, value, &cond)
        }
    }

    /// A group-by or value field as one string expression.
    fn scalar(&self, f: &str, what: &str) -> Out {
        Ok(match self.place(f)? {
            Place::Column(col, ColumnKind::Scalar | ColumnKind::JsonText) => col,
            Place::Json { column, path } => {
                if !self.mapping.scalars.iter().any(|s| s == f) {
                    return Err(self.undeclared(f));
                }
                format!("json_extract_scalar({column}, {})", sql_str(&path))
            }
            _ => {
                return Err(Unsupported::construct(format!(
                    "{what} `{f}` is not a single string column"
                )))
            }
        })
    }

    fn time(&self) -> String {
        format!("TRY(from_iso8601_timestamp({}))", self.mapping.time_column)
    }

    /// The matcher's count at each event: a window ending at an event holds
    /// the events less than the timespan before it and, among events with
    /// the same time, those sorted before it (by a hash the query cannot
    /// compute). The k-th of n tied events therefore counts the earlier
    /// events plus k, whichever event is k-th: `count(*)` over a RANGE
    /// window (inclusive, so bounded at the timespan minus one millisecond,
    /// the timestamp's precision) minus the tied events plus `row_number()`
    /// among them. Exact for every condition.
    fn event_count(&self, c: &CorrelationIr, input: &RuleIr, cond: &str) -> Out {
        let mut groups = Vec::new();
        for fields in &c.group_fields {
            groups.push(self.scalar(&fields[0], "group-by")?);
        }
        let ts = self.time();
        let mut wh = vec![self.expr(&input.expr)?, format!("{ts} IS NOT NULL")];
        wh.extend(groups.iter().map(|g| format!("{g} IS NOT NULL")));
        let ms = c.timespan_secs.saturating_mul(1000).saturating_sub(1);
        let partition = if groups.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {} ", groups.join(", "))
        };
        let window = format!(
            "({partition}ORDER BY {ts} RANGE BETWEEN INTERVAL '{}.{:03}' SECOND PRECEDING AND CURRENT ROW)",
            ms / 1000,
            ms % 1000,
        );
        let tied: Vec<&str> = groups
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(ts.as_str()))
            .collect();
        let tied = format!("PARTITION BY {}", tied.join(", "));
        let order = match self.place("eventID") {
            Ok(Place::Column(col, ColumnKind::Scalar)) => format!(" ORDER BY {col}"),
            _ => String::new(),
        };
        Ok(format!(
            "SELECT *\nFROM (\n  SELECT *,\n    count(*) OVER {window}\n      - count(*) OVER ({tied})\n      + row_number() OVER ({tied}{order}) AS event_count,\n    min({ts}) OVER {window} AS window_start,\n    {ts} AS window_end\n  FROM {}\n  WHERE {}\n)\nWHERE {cond}",
            self.mapping.table,
            wh.join("\n    AND "),
        ))
    }

    /// `value_count` / `temporal`: the self-join.
    fn joined(
        &self,
        c: &CorrelationIr,
        inputs: &[&RuleIr],
        value: &str,
        cond: &dyn Fn(&str) -> String,
    ) -> Out {
        let ts = self.time();
        let mut branches = Vec::new();
        for (k, rule) in inputs.iter().enumerate() {
            let mut cols = vec![format!("{ts} AS sigil_time")];
            let mut wh = vec![self.expr(&rule.expr)?, format!("{ts} IS NOT NULL")];
            for (gi, fields) in c.group_fields.iter().enumerate() {
                let g = self.scalar(&fields[k], "group-by")?;
                cols.push(format!("{g} AS sigil_g{gi}"));
                wh.push(format!("{g} IS NOT NULL"));
            }
            if c.kind == CorrelationType::ValueCount {
                let vals = c
                    .value_fields
                    .iter()
                    .map(|f| self.scalar(f, "value field"))
                    .collect::<Result<Vec<_>, _>>()?;
                // Several fields: the matcher's distinct tuples, joined by
                // U+001F, with no value when one is missing.
                let v = match vals.as_slice() {
                    [v] => v.clone(),
                    _ => format!(
                        "IF({}, NULL, {})",
                        vals.iter()
                            .map(|v| format!("{v} IS NULL"))
                            .collect::<Vec<_>>()
                            .join(" OR "),
                        vals.join(" || chr(31) || ")
                    ),
                };
                cols.push(format!("{v} AS sigil_value"));
            } else {
                cols.push(format!("{k} AS sigil_rule"));
            }
            branches.push(format!(
                "  SELECT {}\n  FROM {}\n  WHERE {}",
                cols.join(", "),
                self.mapping.table,
                wh.join("\n    AND ")
            ));
        }
        let agg = if c.kind == CorrelationType::ValueCount {
            "count(DISTINCT w.sigil_value)"
        } else {
            "count(DISTINCT w.sigil_rule)"
        };
        let mut out_cols = Vec::new();
        let mut keys = Vec::new();
        let mut on = Vec::new();
        for (gi, name) in c.group_by.iter().enumerate() {
            out_cols.push(format!("e.sigil_g{gi} AS {}", quoted(name)));
            keys.push(format!("e.sigil_g{gi}"));
            on.push(format!("w.sigil_g{gi} = e.sigil_g{gi}"));
        }
        keys.push("e.sigil_time".to_string());
        on.push("w.sigil_time <= e.sigil_time".to_string());
        on.push(format!(
            "w.sigil_time > e.sigil_time - INTERVAL '{}' SECOND",
            c.timespan_secs
        ));
        out_cols.push("min(w.sigil_time) AS window_start".to_string());
        out_cols.push("e.sigil_time AS window_end".to_string());
        out_cols.push(format!("{agg} AS {value}"));
        Ok(format!(
            "WITH sigil_events AS (\n{}\n)\nSELECT {}\nFROM sigil_events e\nJOIN sigil_events w\n  ON {}\nGROUP BY {}\nHAVING {}\nORDER BY window_end",
            branches.join("\n  UNION ALL\n"),
            out_cols.join(", "),
            on.join("\n  AND "),
            keys.join(", "),
            cond(agg)
        ))
    }
}
