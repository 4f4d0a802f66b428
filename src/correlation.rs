//! Correlations in `sigil scan` and `sigil test`: base-rule matches become window events
//! (time, group values, aggregated value, record position), kept per
//! correlation until the input ends; then each correlation is evaluated —
//! chained ones over the alerts of the correlations they refer to — and the
//! alerts are rendered. Events are kept compactly by a
//! [`Collector`] within a memory budget (`--correlation-memory`); past it they
//! are spilled as sorted runs to a temporary file and merged at the end, so
//! memory does not grow with the input (docs/correlations.md).

use std::borrow::Cow;

use sigil_compiler::ir::{CorrelationInput, CorrelationIr};
use sigil_runtime::correlate::{
    Alert, Collector, CorrelationSpec, Event, EventBatch, EventFields, Failure, RecordRef,
    SpillStats,
};
use sigil_runtime::json::escape_json;
use sigil_runtime::text::parse_time_ms;
use sigil_runtime::{Matcher, Program};

/// What to extract from a record that matched a base rule, per correlation input.
pub struct Feed {
    pub correlation: usize,
    pub input: usize,
    /// Ids of the paths the matcher extracts for this feed
    /// ([`Program::read_also`]): eventTime, eventID, then the group fields,
    /// then the value fields.
    paths: Vec<usize>,
    groups: usize,
    values: usize,
}

/// The correlations of a scan and, per program rule, the feeds it supplies.
pub struct Plan {
    pub correlations: Vec<CorrelationIr>,
    pub by_rule: Vec<Vec<Feed>>,
    pub rule_json: Vec<String>,
}

/// Events dropped because a field they need was missing.
#[derive(Default, Clone, Copy)]
pub struct Dropped {
    pub no_time: u64,
    pub no_group: u64,
}

impl Plan {
    /// The feeds of `correlations`; their fields are added to what
    /// `program` extracts, so a matched record is parsed once.
    pub fn new(correlations: &[CorrelationIr], program: &mut Program) -> Plan {
        let mut by_rule: Vec<Vec<Feed>> = (0..program.rule_count()).map(|_| Vec::new()).collect();
        for (ci, c) in correlations.iter().enumerate() {
            for (k, input) in c.inputs.iter().enumerate() {
                let CorrelationInput::Rule(ir_index) = input else {
                    continue;
                };
                let Some(p) = program.by_ir_index(*ir_index) else {
                    continue;
                };
                let mut paths = vec!["eventTime".to_string(), "eventID".to_string()];
                paths.extend(
                    c.group_fields
                        .iter()
                        .map(|per_input| per_input.get(k).cloned().unwrap_or_default()),
                );
                paths.extend(c.value_fields.iter().cloned());
                by_rule[p].push(Feed {
                    correlation: ci,
                    input: k,
                    paths: paths.iter().map(|p| program.read_also(p)).collect(),
                    groups: c.group_fields.len(),
                    values: c.value_fields.len(),
                });
            }
        }
        let rule_json = correlations
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.info.id, "title": c.info.title, "level": c.info.level,
                    "tags": c.info.tags, "author": c.info.author,
                })
                .to_string()
            })
            .collect();
        Plan {
            correlations: correlations.to_vec(),
            by_rule,
            rule_json,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }
}

/// Default of `--correlation-memory`: bytes of window events kept in memory
/// before they are spilled to temporary files.
pub const DEFAULT_MEMORY: u64 = 256 << 20;

/// Parses a memory size: a number of bytes with an optional binary suffix
/// (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`; case-insensitive, `B` optional).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 256M, 1G or 65536"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("`{text}` is not a size such as 256M, 1G or 65536")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

fn spec(c: &CorrelationIr) -> CorrelationSpec {
    CorrelationSpec {
        kind: c.kind,
        timespan_ms: (c.timespan_secs as i64).saturating_mul(1000),
        ops: c.ops.clone(),
        inputs: c.inputs.len(),
    }
}

/// Where the window events of a plan's correlations go, within `memory` bytes.
pub fn collector(plan: &Plan, memory: u64) -> Collector {
    Collector::new(plan.correlations.iter().map(spec).collect(), memory)
}

/// Adds the window event for one base-rule match to `batch`, or counts why
/// not. `matcher` has just reported the feed's rule for `record` (the
/// record's text, as [`Matcher::matches`] returned it), so the record's
/// fields are already extracted.
pub fn event(
    feed: &Feed,
    matcher: &Matcher<'_>,
    record: &str,
    at: RecordRef,
    dropped: &mut Dropped,
    batch: &mut EventBatch,
) {
    // Path order: time, tie-break key, group-by fields, value fields.
    let text = |i: usize| {
        feed.paths
            .get(i)
            .and_then(|&id| matcher.first_text(record, id))
    };
    let Some(time_ms) = text(0).as_deref().and_then(parse_time_ms) else {
        dropped.no_time += 1;
        return;
    };
    // Most correlations group by one field: its value is kept apart so that
    // an event allocates no list (this runs for most records).
    let mut first: Option<Cow<'_, str>> = None;
    let mut more: Vec<Cow<'_, str>> = Vec::new();
    for i in 0..feed.groups {
        match (text(2 + i), &first) {
            (Some(v), None) => first = Some(v),
            (Some(v), Some(_)) => more.push(v),
            (None, _) => {
                // An event missing a group-by field joins no group.
                dropped.no_group += 1;
                return;
            }
        }
    }
    // Several value_count fields count distinct tuples; a missing one leaves
    // the event without a value.
    let value: Option<Vec<Cow<'_, str>>> = (feed.values > 0)
        .then(|| {
            (0..feed.values)
                .map(|i| text(2 + feed.groups + i))
                .collect()
        })
        .flatten();
    let tiebreak = match text(1) {
        Some(key) => fnv1a(key.as_bytes()),
        None => fnv1a(record.as_bytes()),
    };
    batch.push(
        EventFields {
            correlation: feed.correlation,
            time_ms,
            tiebreak,
            input: feed.input,
            record: at,
        },
        first.iter().chain(&more).map(|g| g.as_ref()),
        value.as_deref(),
    );
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The alerts of one correlation, with its index.
pub struct Fired {
    pub correlation: usize,
    pub alerts: Vec<Alert>,
}

/// The alerts of every correlation that ran, and how the events were kept.
pub struct Evaluated {
    pub fired: Vec<Fired>,
    /// Correlations that failed because their events could not be spilled.
    pub spill_failures: usize,
    pub spilled: SpillStats,
}

/// Evaluates every correlation (inner ones first, as the IR orders them).
pub fn evaluate(plan: &Plan, mut events: Collector, problems: &mut Vec<String>) -> Evaluated {
    let mut fired: Vec<Fired> = Vec::new();
    let mut spill_failures = 0;
    // Correlations over base rules only are evaluated together, first;
    // those over other correlations then take their inner alerts in order.
    let over_rules: Vec<usize> = (0..plan.correlations.len())
        .filter(|&ci| {
            !plan.correlations[ci]
                .inputs
                .iter()
                .any(|i| matches!(i, CorrelationInput::Correlation(_)))
        })
        .collect();
    let mut finished: Vec<Option<Result<Vec<Alert>, Failure>>> =
        (0..plan.correlations.len()).map(|_| None).collect();
    for (ci, result) in over_rules.iter().zip(events.finish_many(&over_rules)) {
        finished[*ci] = Some(result);
    }
    for (ci, c) in plan.correlations.iter().enumerate() {
        if let Some(result) = finished[ci].take() {
            record(ci, c, result, &mut fired, &mut spill_failures, problems);
            continue;
        }
        for (k, input) in c.inputs.iter().enumerate() {
            let CorrelationInput::Correlation(j) = input else {
                continue;
            };
            let Some(inner) = fired.iter().find(|f| f.correlation == *j) else {
                continue;
            };
            let inner_c = &plan.correlations[*j];
            for a in &inner.alerts {
                // An inner alert is an event at its window's end, grouped by
                // the outer group-by names it shares with the inner one.
                let group: Option<Vec<String>> = c
                    .group_fields
                    .iter()
                    .map(|per_input| {
                        let name = per_input.get(k)?;
                        let pos = inner_c.group_by.iter().position(|g| g == name)?;
                        a.group.get(pos).cloned()
                    })
                    .collect();
                let Some(group) = group else { continue };
                let Some(&last) = a.records.last() else {
                    continue;
                };
                events.push(
                    ci,
                    Event {
                        time_ms: a.end_ms,
                        tiebreak: fnv1a(
                            format!("{:?}{}{}", a.group, a.start_ms, a.end_ms).as_bytes(),
                        ),
                        input: k,
                        group,
                        value: None,
                        record: last,
                    },
                );
            }
        }
        let result = events.finish(ci);
        record(ci, c, result, &mut fired, &mut spill_failures, problems);
    }
    Evaluated {
        fired,
        spill_failures,
        spilled: events.spilled(),
    }
}

/// Keeps a correlation's alerts, or says why it could not run.
fn record(
    ci: usize,
    c: &CorrelationIr,
    result: Result<Vec<Alert>, Failure>,
    fired: &mut Vec<Fired>,
    spill_failures: &mut usize,
    problems: &mut Vec<String>,
) {
    match result {
        Ok(alerts) => fired.push(Fired {
            correlation: ci,
            alerts,
        }),
        Err(e) => {
            if matches!(e, Failure::Spill(_)) {
                *spill_failures += 1;
            }
            problems.push(format!("correlation `{}` cannot run: {e}", c.info.title));
        }
    }
}

fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = sigil_compiler::time::civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if millis == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
    }
}

/// Appends one alert, a line of the JSON-lines contract of DESIGN.md, to
/// `out`. `files` are the input names already escaped for JSON: an alert
/// can list hundreds of records, and escaping a name per record was most
/// of the time spent writing alerts.
pub fn alert_json(plan: &Plan, ci: usize, a: &Alert, files: &[String], out: &mut String) {
    use std::fmt::Write;
    let c = &plan.correlations[ci];
    // Writing into a `String` cannot fail.
    let _ = write!(
        out,
        "{{\"rule\":{},\"correlation\":{{\"type\":\"{}\",\"group\":{{",
        plan.rule_json[ci],
        c.kind.as_str()
    );
    for (i, (k, v)) in c.group_by.iter().zip(&a.group).enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(out, "{comma}\"{}\":\"{}\"", escape_json(k), escape_json(v));
    }
    let _ = write!(
        out,
        "}},\"window\":{{\"start\":\"{}\",\"end\":\"{}\"}},\"value\":",
        iso(a.start_ms),
        iso(a.end_ms)
    );
    if a.value.fract() == 0.0 && a.value.abs() < 1e15 {
        let _ = write!(out, "{}", a.value as i64);
    } else {
        let _ = write!(out, "{}", a.value);
    }
    out.push_str(",\"records\":[");
    for (i, r) in a.records.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let file = files.get(r.source).map(String::as_str).unwrap_or("-");
        let _ = write!(
            out,
            "{comma}{{\"file\":\"{file}\",\"record\":{},\"line\":{}}}",
            r.record, r.line
        );
    }
    out.push_str("]}}\n");
}

/// One alert as a table row (same columns as detections).
pub fn alert_row(plan: &Plan, ci: usize, a: &Alert) -> (String, String, String, String) {
    let c = &plan.correlations[ci];
    let group: Vec<String> = c
        .group_by
        .iter()
        .zip(&a.group)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (
        iso(a.end_ms),
        c.info.title.clone(),
        c.info.level.clone().unwrap_or_else(|| "-".into()),
        format!(
            "{} {} = {} [{}]",
            c.kind.as_str(),
            group.join(" "),
            a.value,
            iso(a.start_ms)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::iso;

    #[test]
    fn memory_sizes() {
        use super::parse_memory;
        assert_eq!(parse_memory("65536"), Ok(65536));
        assert_eq!(parse_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_memory("256MiB"), Ok(256 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("4 KB"), Ok(4096));
        assert_eq!(parse_memory("0"), Ok(0));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("12X").is_err());
        assert!(parse_memory("-1").is_err());
        assert!(parse_memory("99999999999T").is_err());
    }

    #[test]
    fn iso_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_706_739_303_500), "2024-01-31T22:15:03.500Z");
    }
}
