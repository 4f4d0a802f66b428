//! Correlation exports to SPL, and the rules both backends share about what
//! a correlation export can say exactly (docs/backends.md, "Correlations").
//!
//! The matcher (`runtime/src/correlate.rs`) evaluates, per group, the window
//! that ends with every *step* (all events with the same eventTime); a
//! window holds events less than the timespan apart. A group fires iff some
//! step's window meets the condition (the first alert is never affected by
//! re-arming), so an export is exact on the set of firing groups and on the
//! first alert's window when it computes the value of every step's window:
//! SQL's RANGE frame (peers included), or SPL's `stats … by <group> _time`
//! (one row per step) followed by `streamstats time_window` over the steps.
//! The order of events with the same eventTime matters for no type.
//!
//! What is refused, with the reason: [`kind_refusal`], [`input_rules`],
//! [`merged_rules`].

use crate::backend::spl::with_time_range;
use crate::backend::{Backend, Options, Out, Unsupported};
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

/// `event_count`, `value_sum`, `value_avg` over several rules: one rule
/// matching what any of them matches, so a record that matches several
/// counts once, as in the matcher.
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
        return Err(Unsupported::construct(format!(
            "`{}` over several rules with group-by aliases is not exported: a record that \
             matches several of the rules counts once per group it joins",
            c.kind.as_str()
        )));
    }
    let mut merged = inputs[0].clone();
    merged.expr = Expr::Or(inputs.iter().map(|r| r.expr.clone()).collect());
    Ok(merged)
}

/// The refusal for correlation types no backend exports exactly; `Ok` for
/// the ones left to the backend.
pub(crate) fn kind_refusal(c: &CorrelationIr) -> Result<(), Unsupported> {
    match c.kind {
        CorrelationType::ValuePercentile => Err(Unsupported::construct(
            "`value_percentile` is undefined in the Sigma specification and not run by sigil",
        )),
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => Ok(()),
        _ if c.ops.is_empty() => Err(Unsupported::construct("a correlation without a condition")),
        _ => Ok(()),
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
        if matches!(
            c.kind,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        ) {
            conds.push(format!("{name}>={}", c.inputs.len()));
        } else {
            return Err(Unsupported::construct("a correlation without a condition"));
        }
    }
    Ok(conds)
}

/// `temporal_ordered` in SPL: one row per step with a flag per stage whose
/// rule matched in it, then per stage s the latest start of a chain ending
/// at each step: stage 0 starts at the step itself; stage s takes the
/// largest stage s − 1 start among the earlier steps of the window
/// (`streamstats current=f`: the current step is excluded, so the stages
/// need strictly increasing times) and keeps it while it is less than the
/// timespan before the step. The matcher's value at a step is the number
/// of leading stages whose latest chain starts less than the timespan
/// before it: the latest start per stage over the window (`streamstats`,
/// current step included), counted while inside it; the alert's start is
/// that of the last counted stage (none: the step's own time).
fn ordered(c: &CorrelationIr, source: &str, by_step: &str, by_group: &str) -> Out {
    let n = c.inputs.len();
    let span = c.timespan_secs;
    let flags: Vec<String> = (0..n)
        .map(|s| format!("max(sigil_r{s}) as sigil_r{s}"))
        .collect();
    let mut q = format!(
        "{source} | stats {} by {by_step} | sort 0 _time | eval sigil_c0=if(sigil_r0==1, _time, null())",
        flags.join(" ")
    );
    for s in 1..n {
        q.push_str(&format!(
            " | streamstats current=f time_window={span}s max(sigil_c{p}) as sigil_p{s}{by_group} | eval sigil_c{s}=if(sigil_r{s}==1 AND sigil_p{s}>_time-{span}, sigil_p{s}, null())",
            p = s - 1
        ));
    }
    let latest: Vec<String> = (0..n)
        .map(|s| format!("max(sigil_c{s}) as sigil_m{s}"))
        .collect();
    let done: Vec<String> = (0..n)
        .map(|s| format!("if(sigil_m{s}>_time-{span}, 1, 0)"))
        .collect();
    let mut start = "_time".to_string();
    for s in 0..n {
        start = format!("if(temporal_ordered=={}, sigil_m{s}, {start})", s + 1);
    }
    let conds = conditions(c, "temporal_ordered")?;
    q.push_str(&format!(
        " | streamstats time_window={span}s {}{by_group} | eval temporal_ordered={} | where {} | eval window_start={start}",
        latest.join(" "),
        done.join("+"),
        conds.join(" AND ")
    ));
    Ok(q)
}

fn bare_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_alphabetic())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
}

impl Splunk<'_> {
    /// A correlation over detection rules: the rules' searches (one, or a
    /// `multisearch` tagging each event with its rule), then one row per
    /// step (`stats … by <group> _time`: the events of a group with the
    /// same time, the matcher's unit of evaluation) with what the step adds
    /// to a window, sorted ascending by time, then `streamstats
    /// time_window` over the steps (a sliding window whose events are less
    /// than the timespan apart, the matcher's boundary) per group, and the
    /// condition applied to the window ending with each step. Every
    /// returned row ends a window that meets the condition, with
    /// `window_start` the time of the window's first event; the matcher
    /// reports one alert per burst, so the firing groups and the first
    /// window of each agree, the number of rows does not.
    pub fn correlation(&self, c: &CorrelationIr, rules: &[RuleIr], options: &Options) -> Out {
        let mut inputs = input_rules(c, rules)?;
        kind_refusal(c)?;
        let merged;
        if matches!(
            c.kind,
            CorrelationType::EventCount | CorrelationType::ValueSum | CorrelationType::ValueAvg
        ) {
            merged = merged_rules(c, &inputs)?;
            inputs = vec![&merged];
        }
        // Per step (stats), over the window (streamstats), then the value.
        let (step, window, value, name) = match c.kind {
            CorrelationType::EventCount => (
                "count as sigil_n".to_string(),
                "sum(sigil_n) as event_count",
                None,
                "event_count",
            ),
            CorrelationType::ValueCount => match c.value_fields.as_slice() {
                [f] => (
                    format!("values({}) as sigil_v", self.stats_field(f)?),
                    "dc(sigil_v) as value_count",
                    None,
                    "value_count",
                ),
                _ => {
                    return Err(Unsupported::construct(
                        "`value_count` over several fields (distinct tuples) is not exported \
                         to SPL: `dc` takes one field",
                    ))
                }
            },
            CorrelationType::Temporal => (
                "values(sigil_rule) as sigil_rules".to_string(),
                "dc(sigil_rules) as temporal",
                None,
                "temporal",
            ),
            CorrelationType::ValueSum => (
                "sum(sigil_x) as sigil_s".to_string(),
                "sum(sigil_s) as sigil_sum",
                Some("value_sum=coalesce(sigil_sum, 0)"),
                "value_sum",
            ),
            CorrelationType::ValueAvg => (
                "sum(sigil_x) as sigil_s count(sigil_x) as sigil_c".to_string(),
                "sum(sigil_s) as sigil_sum sum(sigil_c) as sigil_count",
                Some("value_avg=if(sigil_count>0, sigil_sum/sigil_count, null())"),
                "value_avg",
            ),
            CorrelationType::TemporalOrdered => (String::new(), "", None, "temporal_ordered"),
            other => {
                return Err(Unsupported::construct(format!(
                    "`{}` correlations are not exported to SPL",
                    other.as_str()
                )))
            }
        };
        // value_sum / value_avg: the value as a number (`tonumber`: what
        // parses as a decimal number, spaces around it allowed, within the
        // range of a double; other values add nothing, as in the matcher).
        let number = match (c.kind, c.value_fields.as_slice()) {
            (CorrelationType::ValueSum | CorrelationType::ValueAvg, [f]) => {
                let n = format!("tonumber({})", self.where_field(f)?);
                Some(format!(
                    "sigil_x=if({n}>=-{MAX} AND {n}<={MAX}, {n}, null())",
                    MAX = format!("{:.0}", f64::MAX)
                ))
            }
            (CorrelationType::ValueSum | CorrelationType::ValueAvg, _) => {
                return Err(Unsupported::construct(format!(
                    "`{}` needs exactly one value field",
                    c.kind.as_str()
                )))
            }
            _ => None,
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
        if c.kind == CorrelationType::TemporalOrdered {
            for (k, e) in evals.iter_mut().enumerate() {
                e.push(format!("sigil_r{k}=1"));
            }
        }
        if let Some(n) = &number {
            for e in evals.iter_mut() {
                e.push(n.clone());
            }
        }
        let mut searches = Vec::new();
        for (r, e) in inputs.iter().zip(&evals) {
            let q = with_time_range(self.convert(r)?, &self.mapping.base, options)?;
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
        let by_group = if by.is_empty() {
            String::new()
        } else {
            format!(" by {}", by.join(" "))
        };
        let by_step = by
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("_time"))
            .collect::<Vec<_>>()
            .join(" ");
        if c.kind == CorrelationType::TemporalOrdered {
            return ordered(c, &source, &by_step, &by_group);
        }
        let conds = conditions(c, name)?;
        let value = value.map_or(String::new(), |v| format!(" | eval {v}"));
        Ok(format!(
            "{source} | stats {step} by {by_step} | sort 0 _time | streamstats time_window={}s {window} min(_time) as window_start{by_group}{value} | where {}",
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
