//! Correlation exports to SPL, and the rules both backends share about what
//! a correlation export can say exactly (docs/backends.md, "Correlations").
//!
//! The matcher (`runtime/src/correlate.rs`) evaluates, per group, the window
//! that ends at every event, events sorted by (eventTime, FNV-1a hash of
//! eventID); a window holds events less than the timespan apart. A group
//! fires iff some window meets the condition (the first alert is never
//! affected by re-arming), so an export is exact on the set of firing groups
//! and on the first alert's window when:
//!
//! - the value cannot decrease as a window grows by an event (count, distinct
//!   count, distinct rules) and the condition is `gt`/`gte`: then the order
//!   of events with the same eventTime does not matter, and a window holding
//!   all of them (SPL's last tied event, SQL's RANGE frame) is one of the
//!   matcher's windows with the largest value;
//! - or the value at each position is the same in any order of tied events:
//!   `event_count` (any condition), where the k-th of n tied events counts
//!   the earlier events plus k.
//!
//! Everything else is refused with the reason ([`kind_refusal`]).

use crate::backend::{Backend, Out, Unsupported};
use crate::ir::{CorrelationInput, CorrelationIr, Expr, RuleIr};
use crate::rule::{CmpOp, CorrelationType};

use super::Splunk;

/// The detection rules a correlation counts, or the refusal for a
/// correlation over another correlation.
pub(crate) fn input_rules<'r>(
    c: &CorrelationIr,
    rules: &'r [RuleIr],
) -> Result<Vec<&'r RuleIr>, Unsupported> {
    c.inputs
        .iter()
        .map(|i| match i {
            CorrelationInput::Rule(r) => Ok(&rules[*r]),
            CorrelationInput::Correlation(_) => Err(Unsupported::construct(
                "a correlation over another correlation is not exported: the matcher turns each \
                 inner alert (one per burst, the group re-armed after the alerting event) into \
                 an event at its window's end, and that re-arm is a sequential scan per group \
                 which neither streamstats nor SQL window functions express exactly",
            )),
        })
        .collect()
}

/// `event_count` over several rules: one rule matching what any of them
/// matches, so a record that matches several counts once, as in the matcher.
/// Only when every rule takes the group-by values from the same fields (no
/// aliases): otherwise one record may count in two groups.
pub(crate) fn merged_rules(c: &CorrelationIr, inputs: &[&RuleIr]) -> Result<RuleIr, Unsupported> {
    if inputs.len() == 1 {
        return Ok(inputs[0].clone());
    }
    if c.group_fields
        .iter()
        .any(|fields| fields.iter().any(|f| f != &fields[0]))
    {
        return Err(Unsupported::construct(
            "`event_count` over several rules with group-by aliases is not exported: a record \
             that matches several of the rules counts once per group it joins",
        ));
    }
    let mut merged = inputs[0].clone();
    merged.expr = Expr::Or(inputs.iter().map(|r| r.expr.clone()).collect());
    Ok(merged)
}

/// The refusal for correlation types and conditions no backend exports
/// exactly; `Ok` for the ones left to the backend.
pub(crate) fn kind_refusal(c: &CorrelationIr) -> Result<(), Unsupported> {
    let tie = "the matcher evaluates the window ending at every event and orders events with \
               the same eventTime by an FNV-1a hash of their eventID";
    match c.kind {
        CorrelationType::ValueSum | CorrelationType::ValueAvg => {
            Err(Unsupported::construct(format!(
                "`{}` correlations are not exported: {tie}, so a sum (with negative values) or an \
             average over a window that ends among tied events depends on that order; Splunk \
             (no FNV-1a, its own order for ties) and a SQL RANGE window (all tied events at \
             once) would fire for other groups",
                c.kind.as_str()
            )))
        }
        CorrelationType::TemporalOrdered => Err(Unsupported::construct(format!(
            "`temporal_ordered` correlations are not exported: {tie}, chains the rules in list \
             order strictly increasing in that order, uses each event for at most one stage \
             and re-arms the group after each alert; the order of tied events cannot be \
             reproduced and the chain is a sequential scan neither streamstats nor SQL window \
             functions express exactly"
        ))),
        CorrelationType::ValuePercentile => Err(Unsupported::construct(
            "`value_percentile` is undefined in the Sigma specification and not run by sigil",
        )),
        CorrelationType::ValueCount | CorrelationType::Temporal => {
            if c.ops.is_empty() && c.kind == CorrelationType::ValueCount {
                return Err(Unsupported::construct("a correlation without a condition"));
            }
            if let Some((op, _)) = c
                .ops
                .iter()
                .find(|(op, _)| !matches!(op, CmpOp::Gt | CmpOp::Gte))
            {
                return Err(Unsupported::construct(format!(
                    "`{}` with a `{}` condition is not exported: only `gt`/`gte` conditions are \
                     exact, since {tie} and a window ending among tied events then holds a \
                     value that depends on that order",
                    c.kind.as_str(),
                    op.as_str()
                )));
            }
            Ok(())
        }
        CorrelationType::EventCount => Ok(()),
    }
}

/// The SPL condition on the computed value `name`, the default of the
/// temporal types being "all referenced rules".
fn conditions(c: &CorrelationIr, name: &str) -> Result<Vec<String>, Unsupported> {
    let mut conds = Vec::new();
    for (op, v) in &c.ops {
        let o = match op {
            CmpOp::Eq => "==",
            op => op.symbol(),
        };
        conds.push(format!("{name}{o}{v}"));
    }
    if conds.is_empty() {
        if c.kind == CorrelationType::Temporal {
            conds.push(format!("{name}>={}", c.inputs.len()));
        } else {
            return Err(Unsupported::construct("a correlation without a condition"));
        }
    }
    Ok(conds)
}

fn bare_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_alphabetic())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
}

impl Splunk<'_> {
    /// A correlation over detection rules: the rules' searches (one, or a
    /// `multisearch` tagging each event with its rule), sorted ascending by
    /// time, then `streamstats time_window` (a sliding window whose events
    /// are less than the timespan apart, the matcher's boundary) per group,
    /// and the threshold applied to the window ending at each event. Every
    /// returned event ends a window that meets the condition, with
    /// `window_start` the time of the window's first event; the matcher
    /// reports one alert per burst, so the firing groups and the first
    /// window of each agree, the number of rows does not.
    pub fn correlation(&self, c: &CorrelationIr, rules: &[RuleIr]) -> Out {
        let mut inputs = input_rules(c, rules)?;
        kind_refusal(c)?;
        let merged;
        let (agg, name) =
            match c.kind {
                CorrelationType::EventCount => {
                    merged = merged_rules(c, &inputs)?;
                    inputs = vec![&merged];
                    ("count".to_string(), "event_count")
                }
                CorrelationType::ValueCount => match c.value_fields.as_slice() {
                    [f] => (format!("dc({})", self.stats_field(f)?), "value_count"),
                    _ => return Err(Unsupported::construct(
                        "`value_count` over several fields (distinct tuples) is not exported to \
                         SPL: streamstats `dc` takes one field",
                    )),
                },
                CorrelationType::Temporal => ("dc(sigil_rule)".to_string(), "temporal"),
                other => {
                    return Err(Unsupported::construct(format!(
                        "`{}` correlations are not exported to SPL",
                        other.as_str()
                    )))
                }
            };
        let mut by = Vec::new();
        let mut evals: Vec<Vec<String>> = vec![Vec::new(); inputs.len()];
        for (gi, fields) in c.group_fields.iter().enumerate() {
            let first = &fields[0];
            if fields.iter().all(|f| f == first) {
                by.push(self.stats_field(first)?);
                continue;
            }
            // Aliases: each rule's field under the group-by name.
            let alias = &c.group_by[gi];
            if !bare_name(alias) || alias.starts_with("sigil_") {
                return Err(Unsupported::field(format!(
                    "the group-by alias `{alias}` cannot be written as a bare Splunk field name"
                )));
            }
            for (k, f) in fields.iter().enumerate() {
                evals[k].push(format!("{alias}={}", self.where_field(f)?));
            }
            by.push(alias.clone());
        }
        if c.kind == CorrelationType::Temporal {
            for (k, e) in evals.iter_mut().enumerate() {
                e.push(format!("sigil_rule=\"{k}\""));
            }
        }
        let mut searches = Vec::new();
        for (r, e) in inputs.iter().zip(&evals) {
            let q = self.convert(r)?;
            searches.push(if e.is_empty() {
                q
            } else {
                format!("{q} | eval {}", e.join(", "))
            });
        }
        let source = if searches.len() == 1 {
            searches.remove(0)
        } else {
            let subs: Vec<String> = searches.iter().map(|s| format!("[search {s}]")).collect();
            format!("| multisearch {}", subs.join(" "))
        };
        let by = if by.is_empty() {
            String::new()
        } else {
            format!(" by {}", by.join(" "))
        };
        let conds = conditions(c, name)?;
        Ok(format!(
            "{source} | sort 0 _time | streamstats time_window={}s {agg} as {name} min(_time) as window_start{by} | where {}",
            c.timespan_secs,
            conds.join(" AND ")
        ))
    }

    /// A field name for `stats`/`streamstats` arguments: scalar, bare.
    fn stats_field(&self, path: &str) -> Result<String, Unsupported> {
        let n = self.name_of(path)?;
        if !self.mapping.fields.contains_key(path) && !n.contains("{}") {
            let segs: Vec<&str> = path.split('.').collect();
            for i in 0..segs.len() {
                let prefix = segs[..=i].join(".");
                if !self.mapping.fixed.contains(&prefix) {
                    return Err(Unsupported::construct(format!(
                        "`{path}`: `{prefix}` may hold an array in some records (Splunk then names the field `{prefix}{{}}`, which `streamstats` would not see, while the matcher takes the first value); declare the path under `splunk.fixed` (never an array) in the mapping file"
                    )));
                }
            }
        }
        if n.contains("{}") {
            return Err(Unsupported::construct(format!(
                "`{path}` is a multivalue field; grouping or counting by it is not exact in streamstats"
            )));
        }
        if !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        {
            return Err(Unsupported::field(format!(
                "`{path}` cannot be written as a bare Splunk field name"
            )));
        }
        Ok(n)
    }
}
