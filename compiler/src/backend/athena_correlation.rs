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

/// The largest finite double, as a Trino DOUBLE literal.
const MAX: &str = "1.7976931348623157E308";

/// Unicode White_Space, the characters Rust's `str::trim` removes around a
/// value before the matcher parses it as a number (Java regex syntax).
const WHITE_SPACE: &str =
    r"[\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]";

impl Athena<'_> {
    /// A correlation over detection rules. Rows whose time does not parse or
    /// whose group fields are NULL join no group. `event_count`,
    /// `value_sum` and `value_avg` are window functions over the rules'
    /// records with a RANGE frame (a step's peers included, as the matcher
    /// evaluates a window after all events of one time); `value_count` and
    /// `temporal` a self-join of the rules' events (`UNION ALL`, one branch
    /// per rule, tagged with its position) on the group and on the window
    /// `end - timespan < time <= end`, with `count(DISTINCT …)`: Trino has no
    /// DISTINCT window aggregates. Each returned row ends a window that
    /// meets the condition, with the window's start and end.
    pub fn correlation(&self, c: &CorrelationIr, rules: &[RuleIr]) -> Out {
        let inputs = input_rules(c, rules)?;
        kind_refusal(c)?;
        let mut conds = Vec::new();
        let value = match c.kind {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::ValueSum => "value_sum",
            CorrelationType::ValueAvg => "value_avg",
            _ => "temporal",
        };
        for (op, v) in &c.ops {
            conds.push((*op, num_lit(*v)));
        }
        if conds.is_empty() {
            if !matches!(
                c.kind,
                CorrelationType::Temporal | CorrelationType::TemporalOrdered
            ) {
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
        match c.kind {
            CorrelationType::TemporalOrdered => self.ordered(c, &inputs, &cond("temporal_ordered")),
            CorrelationType::EventCount | CorrelationType::ValueSum | CorrelationType::ValueAvg => {
                self.windowed(c, &merged_rules(c, &inputs)?, value, &cond(value))
            }
            _ => self.joined(c, &inputs, value, &cond),
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

    /// The matcher's value at each step: window functions over a RANGE
    /// frame, which holds the row's peers (the events of its step) and the
    /// events less than the timespan before it (inclusive, so bounded at the
    /// timespan minus one millisecond, the timestamp's precision).
    /// `value_sum`/`value_avg` read the value as the matcher does: a decimal
    /// number, white space around it allowed (anything else, and numbers
    /// beyond the range of a double, add nothing); an empty sum is 0, an
    /// average of nothing is NULL (no row).
    fn windowed(&self, c: &CorrelationIr, input: &RuleIr, value: &str, cond: &str) -> Out {
        let mut groups = Vec::new();
        for fields in &c.group_fields {
            groups.push(self.scalar(&fields[0], "group-by")?);
        }
        let ts = self.time();
        let mut wh = vec![self.expr(&input.expr)?, format!("{ts} IS NOT NULL")];
        wh.extend(self.time_range());
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
        let (from, agg) = match c.kind {
            CorrelationType::ValueSum | CorrelationType::ValueAvg => {
                let [f] = c.value_fields.as_slice() else {
                    return Err(Unsupported::construct(format!(
                        "`{}` needs exactly one value field",
                        c.kind.as_str()
                    )));
                };
                let v = self.scalar(f, "value field")?;
                let number = format!(
                    "TRY_CAST(regexp_extract({v}, '^{WHITE_SPACE}*([+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?){WHITE_SPACE}*$', 1) AS DOUBLE)"
                );
                let from = format!(
                    "(\n    SELECT *, IF({number} BETWEEN -{MAX} AND {MAX}, {number}) AS sigil_number\n    FROM {}\n    WHERE {}\n  )",
                    self.mapping.table,
                    wh.join("\n      AND "),
                );
                let agg = if c.kind == CorrelationType::ValueSum {
                    format!("coalesce(sum(sigil_number) OVER {window}, 0)")
                } else {
                    format!("sum(sigil_number) OVER {window} / count(sigil_number) OVER {window}")
                };
                (from, agg)
            }
            _ => (
                format!("{}\n  WHERE {}", self.mapping.table, wh.join("\n    AND ")),
                format!("count(*) OVER {window}"),
            ),
        };
        Ok(format!(
            "SELECT *\nFROM (\n  SELECT *,\n    {agg} AS {value},\n    min({ts}) OVER {window} AS window_start,\n    {ts} AS window_end\n  FROM {from}\n)\nWHERE {cond}"
        ))
    }

    /// The rules' events, one `UNION ALL` branch per rule: time, group
    /// fields under `sigil_g<i>`, and what `extra` adds for rule k.
    fn branches(
        &self,
        c: &CorrelationIr,
        inputs: &[&RuleIr],
        extra: &dyn Fn(usize) -> Result<String, Unsupported>,
    ) -> Out {
        let ts = self.time();
        let mut branches = Vec::new();
        for (k, rule) in inputs.iter().enumerate() {
            let mut cols = vec![format!("{ts} AS sigil_time")];
            let mut wh = vec![self.expr(&rule.expr)?, format!("{ts} IS NOT NULL")];
            wh.extend(self.time_range());
            for (gi, fields) in c.group_fields.iter().enumerate() {
                let g = self.scalar(&fields[k], "group-by")?;
                cols.push(format!("{g} AS sigil_g{gi}"));
                wh.push(format!("{g} IS NOT NULL"));
            }
            cols.push(extra(k)?);
            branches.push(format!(
                "  SELECT {}\n  FROM {}\n  WHERE {}",
                cols.join(", "),
                self.mapping.table,
                wh.join("\n    AND ")
            ));
        }
        Ok(branches.join("\n  UNION ALL\n"))
    }

    /// `temporal_ordered`: the rules' events, one row per step (group and
    /// time) with a flag per stage whose rule matched in it, then per stage
    /// s the latest start of a chain ending at each step: stage 0 starts at
    /// the step; stage s takes the largest stage s − 1 start over the
    /// earlier steps of the window (a RANGE frame ending one millisecond
    /// before the step: the stages need strictly increasing times) and keeps
    /// it while it is less than the timespan before the step. The value at
    /// a step is the number of leading stages whose latest start over the
    /// window (RANGE frame, the step included) is less than the timespan
    /// before it; the window starts at the last counted stage's start (none:
    /// at the step).
    fn ordered(&self, c: &CorrelationIr, inputs: &[&RuleIr], cond: &str) -> Out {
        let n = inputs.len();
        let events = self.branches(c, inputs, &|r| Ok(format!("{r} AS sigil_rule")))?;
        let groups: Vec<String> = (0..c.group_by.len())
            .map(|gi| format!("sigil_g{gi}"))
            .collect();
        let mut keys = groups.clone();
        keys.push("sigil_time".to_string());
        let flags: Vec<String> = (0..n)
            .map(|s| format!("max(IF(sigil_rule = {s}, 1)) AS sigil_r{s}"))
            .collect();
        let partition = if groups.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {} ", groups.join(", "))
        };
        let ms = c.timespan_secs.saturating_mul(1000).saturating_sub(1);
        let span = c.timespan_secs;
        let preceding = format!("INTERVAL '{}.{:03}' SECOND PRECEDING", ms / 1000, ms % 1000);
        let mut ctes = vec![
            format!("sigil_events AS (\n{events}\n)"),
            format!(
                "sigil_steps AS (\n  SELECT {}, {}\n  FROM sigil_events\n  GROUP BY {}\n)",
                keys.join(", "),
                flags.join(", "),
                keys.join(", ")
            ),
            "sigil_s0 AS (\n  SELECT *, IF(sigil_r0 = 1, sigil_time) AS sigil_c0\n  FROM sigil_steps\n)"
                .to_string(),
        ];
        for s in 1..n {
            let p = s - 1;
            ctes.push(format!(
                "sigil_s{s} AS (\n  SELECT *, IF(sigil_r{s} = 1 AND sigil_p{s} > sigil_time - INTERVAL '{span}' SECOND, sigil_p{s}) AS sigil_c{s}\n  FROM (\n    SELECT *, max(sigil_c{p}) OVER ({partition}ORDER BY sigil_time RANGE BETWEEN {preceding} AND INTERVAL '0.001' SECOND PRECEDING) AS sigil_p{s}\n    FROM sigil_s{p}\n  )\n)",
            ));
        }
        let latest: Vec<String> = (0..n)
            .map(|s| {
                format!(
                    "max(sigil_c{s}) OVER ({partition}ORDER BY sigil_time RANGE BETWEEN {preceding} AND CURRENT ROW) AS sigil_m{s}"
                )
            })
            .collect();
        ctes.push(format!(
            "sigil_latest AS (\n  SELECT *, {}\n  FROM sigil_s{}\n)",
            latest.join(",\n    "),
            n - 1
        ));
        let done: Vec<String> = (0..n)
            .map(|s| format!("IF(sigil_m{s} > sigil_time - INTERVAL '{span}' SECOND, 1, 0)"))
            .collect();
        ctes.push(format!(
            "sigil_done AS (\n  SELECT *, {} AS temporal_ordered\n  FROM sigil_latest\n)",
            done.join(" + ")
        ));
        let start: Vec<String> = (0..n)
            .rev()
            .map(|s| format!("WHEN {} THEN sigil_m{s}", s + 1))
            .collect();
        let mut out_cols: Vec<String> = c
            .group_by
            .iter()
            .enumerate()
            .map(|(gi, name)| format!("sigil_g{gi} AS {}", quoted(name)))
            .collect();
        out_cols.push(format!(
            "CASE temporal_ordered {} ELSE sigil_time END AS window_start",
            start.join(" ")
        ));
        out_cols.push("sigil_time AS window_end".to_string());
        out_cols.push("temporal_ordered".to_string());
        Ok(format!(
            "WITH {}\nSELECT {}\nFROM sigil_done\nWHERE {cond}\nORDER BY window_end",
            ctes.join(",\n"),
            out_cols.join(", ")
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
        let value_col = |k: usize| -> Result<String, Unsupported> {
            if c.kind != CorrelationType::ValueCount {
                return Ok(format!("{k} AS sigil_rule"));
            }
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
            Ok(format!("{v} AS sigil_value"))
        };
        let branches = self.branches(c, inputs, &value_col)?;
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
            "WITH sigil_events AS (\n{branches}\n)\nSELECT {}\nFROM sigil_events e\nJOIN sigil_events w\n  ON {}\nGROUP BY {}\nHAVING {}\nORDER BY window_end",
            out_cols.join(", "),
            on.join("\n  AND "),
            keys.join(", "),
            cond(agg)
        ))
    }
}
