//! Correlation windows: the pure, deterministic core that turns base-rule
//! matches into correlation alerts (SIGMA-SPEC §8).
//!
//! The caller extracts, for every record matched by a rule a correlation
//! references, one [`Event`] (event time, group-by values, aggregated value)
//! and pushes it into a [`Collector`] (or hands them all to [`evaluate`]).
//! Memory: the collector keeps each event as a 40-byte `Compact` whose group
//! tuple and value are interned in tables shared by all correlations; past
//! its budget it sorts the events into runs in an anonymous temporary file
//! (`spill`) and empties the tables, so what it holds does not grow with
//! the input. Evaluation streams each group in order (in memory, or from
//! the k-way merge of the runs) and holds only the open window.
//!
//! Semantics (each is covered by a unit test below):
//!
//! - Order independence: events are first sorted by (group, time_ms,
//!   tiebreak, input, record, value) — in memory, or into runs merged in
//!   the same order; nothing afterwards looks at the order the caller
//!   supplied, so the alerts do not depend on file order, thread count, how
//!   the input was split, or whether events were spilled. `tiebreak` is a
//!   content hash: it only fixes the order of the records listed in an
//!   alert; windows and conditions never depend on it (see Steps).
//! - Groups: each distinct group-by tuple is evaluated independently.
//!   (Events missing a group-by field are dropped by the caller.)
//! - Sliding windows over event time, exclusive edge: a window of timespan T
//!   holds events strictly less than T apart; two events exactly T apart are
//!   never in one window. Windows are not aligned to clock boundaries, so a
//!   burst straddling a minute/hour boundary is found.
//! - Steps: per group, the events with the same event time form one step.
//!   Steps are visited in time order; the window ends with the current step
//!   (all its events) and starts at the earliest event less than T before
//!   it (two pointers). The condition is checked once per step, after all
//!   of its events, never among them: the order of events with the same
//!   time (their content hash) changes no alert, for any type. This is
//!   SQL's `RANGE ... CURRENT ROW` frame, which includes the row's peers.
//! - One record counts once: for event_count and value_*, if the same
//!   record (same `RecordRef`, time_ms and tiebreak) arrives as several
//!   events of one group (it matched several referenced rules), only the
//!   first in sorted order (lowest `input`) is kept. An event standing for
//!   an inner correlation's alert carries its own tiebreak, so it is not
//!   merged with a base match of the same record. temporal/temporal_ordered keep all of them,
//!   since each carries a different rule.
//! - Values per type:
//!   - event_count: number of events in the window;
//!   - value_count: number of DISTINCT `value` strings (exact, byte-wise
//!     comparison) in the window; events whose value is None add nothing;
//!   - value_sum: sum of the values that parse (trimmed) as finite f64; other
//!     values add nothing; an empty sum is 0;
//!   - value_avg: that sum divided by the number of events that contributed;
//!     with no numeric value in the window there is no average and no alert;
//!   - temporal: number of distinct `input`s (referenced rules) in the window;
//!   - temporal_ordered: length of the longest prefix of the rule list whose
//!     rules matched in list order inside the window (see below);
//!   - value_percentile: Err(Unsupported) — the spec leaves it undefined.
//! - Condition: all `ops` AND-ed, applied as `value <op> bound`. For
//!   temporal and temporal_ordered an empty `ops` means `gte inputs`, i.e. all
//!   referenced rules (equal to `eq inputs` since the value cannot exceed the
//!   number of rules); for the other types an empty `ops` is an error.
//! - Alerts and re-arm: when the condition holds for the window ending with
//!   the current step, ONE alert is emitted (group, start = time of the first
//!   event in the window, end = the step's time, value, records = the
//!   window's records, each once). The group then re-arms: the next alert may
//!   only use events of later steps (the window start is reset past the
//!   alerting step). A burst therefore gives one alert, and a second burst
//!   after it gives a second alert. The rule is applied literally for
//!   lt/lte/eq/neq too: e.g. `event_count lt 5` fires on the first step
//!   (window of its events), then again on the next step, and so on.
//! - temporal_ordered: input 0 must occur, then input 1, ..., each at a
//!   strictly later time than the previous one (events with the same time
//!   are not ordered with respect to each other, whatever their hash, and
//!   never chain), first to last less than T apart.
//!   Each event is used at most once: within one chain, a record fills at
//!   most one stage (when a rule is listed twice the caller passes one event
//!   per listed position; stages are filled from the previous state, last to
//!   first, so one record cannot fill two stages); across alerts, the re-arm
//!   rule drops every event up to the alerting one. Among possible chains
//!   the one with the latest start is kept (greedy, optimal for the window).
//!   Alert: start = first chain event, end = current event time, records =
//!   the chain's records (value 0, possible only with lt/lte/eq/neq: start =
//!   end = current time, records = the current step's records). Events with
//!   the same time are processed as one step and the re-arm happens after
//!   that step. Events whose input is not below `inputs` are ignored.
//! - Output: alerts sorted by (end_ms, group, start_ms), then value and
//!   records for a total order.
//! - timespan_ms must be positive, else Err(Unsupported).

mod spill;

use std::cmp::Ordering;
use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rayon::iter::{IntoParallelIterator, IntoParallelRefIterator, ParallelIterator};
use rayon::slice::ParallelSliceMut;
use sigil_compiler::rule::{CmpOp, CorrelationType};

use spill::{Spill, SpilledRef, SpilledValue, SpilledValueRef};

/// Where a contributing record came from, so a responder can pivot to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordRef {
    /// Index of the input source (file).
    pub source: usize,
    /// Record number within the source.
    pub record: u64,
    /// Line number within the source.
    pub line: u64,
}

/// One base-rule match, as seen by a correlation.
#[derive(Debug, Clone)]
pub struct Event {
    /// eventTime in epoch milliseconds.
    pub time_ms: i64,
    /// Stable content hash of the record (not file order); breaks time ties.
    pub tiebreak: u64,
    /// Index of the referenced rule in the correlation's `rules` list.
    pub input: usize,
    /// Group-by values (events missing a group field never reach here).
    pub group: Vec<String>,
    /// value_count: the field's text; value_sum/value_avg: numeric text;
    /// None = no value.
    pub value: Option<String>,
    /// The record this event came from.
    pub record: RecordRef,
}

/// An event as the collector takes it: the group tuple already encoded.
struct EventRef<'a> {
    time_ms: i64,
    tiebreak: u64,
    input: usize,
    group: &'a [u8],
    /// The group's hash by the collector's interner.
    group_hash: u64,
    value: Option<&'a [u8]>,
    record: RecordRef,
}

/// Events of many records for the collector, their texts packed in one
/// buffer: a worker thread fills a batch and the collector, on the thread
/// that writes output, reads it without an allocation or a free per event.
#[derive(Debug, Default)]
pub struct EventBatch {
    texts: Vec<u8>,
    events: Vec<PackedEvent>,
}

#[derive(Debug)]
struct PackedEvent {
    correlation: usize,
    time_ms: i64,
    tiebreak: u64,
    input: usize,
    /// The group tuple, encoded as the collector interns it.
    group: (u32, u32),
    value: Option<(u32, u32)>,
    record: RecordRef,
}

/// One event's fields for [`EventBatch::push`].
#[derive(Debug, Clone, Copy)]
pub struct EventFields {
    /// The correlation fed.
    pub correlation: usize,
    /// As [`Event::time_ms`].
    pub time_ms: i64,
    /// As [`Event::tiebreak`].
    pub tiebreak: u64,
    /// As [`Event::input`].
    pub input: usize,
    /// As [`Event::record`].
    pub record: RecordRef,
}

impl EventBatch {
    /// Adds an event: its group-by values, and its value's parts (several
    /// `value_count` fields count distinct tuples: the parts are joined;
    /// `None` when the event has no value).
    pub fn push<'t>(
        &mut self,
        fields: EventFields,
        group: impl IntoIterator<Item = &'t str>,
        value: Option<&[std::borrow::Cow<'_, str>]>,
    ) {
        let at = |texts: &Vec<u8>| texts.len() as u32;
        let start = at(&self.texts);
        for g in group {
            encode_group_value(&mut self.texts, g);
        }
        let group = (start, at(&self.texts));
        let value = value.map(|parts| {
            let start = at(&self.texts);
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    self.texts.extend_from_slice("\u{1f}".as_bytes());
                }
                self.texts.extend_from_slice(part.as_bytes());
            }
            (start, at(&self.texts))
        });
        self.events.push(PackedEvent {
            correlation: fields.correlation,
            time_ms: fields.time_ms,
            tiebreak: fields.tiebreak,
            input: fields.input,
            group,
            value,
            record: fields.record,
        });
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn text(&self, (start, end): (u32, u32)) -> &[u8] {
        self.texts.get(start as usize..end as usize).unwrap_or(&[])
    }
}

/// What the correlation computes.
#[derive(Debug, Clone)]
pub struct CorrelationSpec {
    /// The correlation type.
    pub kind: CorrelationType,
    /// Window length in milliseconds (must be positive).
    pub timespan_ms: i64,
    /// Condition operators, AND-ed; empty for temporal types = all rules.
    pub ops: Vec<(CmpOp, f64)>,
    /// Number of referenced rules.
    pub inputs: usize,
}

/// One correlation hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The group-by values.
    pub group: Vec<String>,
    /// Time of the first event in the window (or chain).
    pub start_ms: i64,
    /// Time of the event that completed the window.
    pub end_ms: i64,
    /// The computed value (count, distinct count, sum, average, rules).
    pub value: f64,
    /// Contributing records, each once, in event order.
    pub records: Vec<RecordRef>,
}

/// A correlation this engine cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unsupported {}

fn unsupported(reason: impl Into<String>) -> Unsupported {
    Unsupported {
        reason: reason.into(),
    }
}

/// Why a correlation produced no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The correlation cannot be evaluated (its definition).
    Unsupported(Unsupported),
    /// Its events could not be spilled to or read back from the temporary
    /// file (an I/O error: disk full, no temporary directory, ...).
    Spill(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unsupported(u) => f.write_str(&u.reason),
            Failure::Spill(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Failure {}

fn spill_failure(e: std::io::Error) -> Failure {
    Failure::Spill(format!(
        "cannot spill correlation events to a temporary file (set TMPDIR to a writable directory with free space, or raise --correlation-memory): {e}"
    ))
}

/// Evaluates one correlation over the matches of its referenced rules, in
/// memory.
///
/// Deterministic: the result does not depend on the order of `events`.
pub fn evaluate(spec: &CorrelationSpec, events: Vec<Event>) -> Result<Vec<Alert>, Unsupported> {
    let mut c = Collector::new(vec![spec.clone()], u64::MAX);
    for e in events {
        c.push(0, e);
    }
    c.finish(0).map_err(|f| match f {
        Failure::Unsupported(u) => u,
        Failure::Spill(s) => unsupported(s),
    })
}

/// The condition operators of a valid spec (empty = all rules for the
/// temporal types), or why the spec cannot run.
fn validate(spec: &CorrelationSpec) -> Result<Vec<(CmpOp, f64)>, Unsupported> {
    if spec.timespan_ms <= 0 {
        return Err(unsupported(format!(
            "correlation timespan must be positive, got {} ms",
            spec.timespan_ms
        )));
    }
    let temporal = matches!(
        spec.kind,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    if spec.kind == CorrelationType::ValuePercentile {
        return Err(unsupported(
            "correlation type value_percentile is not supported: its meaning is undefined in the \
             Sigma specification",
        ));
    }
    if temporal && spec.inputs == 0 {
        return Err(unsupported(format!(
            "{} correlation references no rules",
            spec.kind.as_str()
        )));
    }
    if spec.ops.is_empty() {
        if !temporal {
            return Err(unsupported(format!(
                "{} correlation has no condition",
                spec.kind.as_str()
            )));
        }
        Ok(vec![(CmpOp::Gte, spec.inputs as f64)])
    } else {
        Ok(spec.ops.clone())
    }
}

/// "No value" in [`Compact::value`]; "position in `Tables::wide`" in
/// [`Compact::source`].
const NONE: u32 = u32::MAX;

/// A window event as kept in memory: 40 bytes, whatever the group-by values
/// and the aggregated value (those are interned in [`Tables`]).
#[derive(Debug, Clone, Copy)]
struct Compact {
    time_ms: i64,
    tiebreak: u64,
    /// Id in `Tables::groups`.
    group: u32,
    /// value_count: id in `Tables::values`; value_sum/value_avg: index in
    /// `Tables::numbers`; NONE = no value.
    value: u32,
    /// The record's source, record number and line; when one of them does
    /// not fit in 32 bits, `source` is NONE and `record` indexes
    /// `Tables::wide`.
    source: u32,
    record: u32,
    line: u32,
    /// Index of the referenced rule.
    input: u32,
}

/// Grows a vector by a quarter (at least `min`) when it is full, so the
/// unused tail of a large array stays small.
fn reserve_quarter<T>(v: &mut Vec<T>, min: usize) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 4).max(min));
    }
}

/// Bytes `reserve_quarter` would add to a full array of `len` items.
fn quarter_growth(len: usize, min: usize, item: usize) -> u64 {
    ((len / 4).max(min) * item) as u64
}

/// The part of a hash an interner's slot keeps beside an id.
const HASH_HIGH: u64 = 0xffff_ffff_0000_0000;

/// Byte strings numbered in order of first appearance, kept in one arena:
/// 24 to 40 bytes per string besides its text (an end offset, and two to
/// four 8-byte slots: the table is at most half full, and doubles).
#[derive(Default)]
struct Interner {
    /// The texts, back to back.
    arena: Vec<u8>,
    /// End offset in `arena` of each text, by id.
    ends: Vec<u64>,
    /// Hash table, linear probing: 0 = empty, else the high half of the
    /// text's hash over its id + 1, so that a probe past another text
    /// rarely reads that text (with a million groups, it would miss the
    /// caches twice: its end offset, then its bytes).
    slots: Vec<u64>,
    /// Randomly keyed: the texts are group-by values from the logs, and
    /// with a hash known in advance crafted values could all collide,
    /// making every intern a walk through the whole table. foldhash rather
    /// than SipHash: its random seed is what defeats crafted collisions
    /// when the attacker cannot watch the process (a scan shows nothing of
    /// its hash order), at a third of SipHash's cost per group value.
    hasher: foldhash::fast::RandomState,
}

impl Interner {
    fn hash(&self, text: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(text)
    }
}

impl Interner {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 8 + self.slots.capacity() * 8
    }

    fn intern(&mut self, text: &[u8]) -> u32 {
        self.intern_hashed(text, self.hash(text))
    }

    /// Starts loading the table slot for a text of hash `hash`, to be
    /// interned a few events later: group tables outgrow the caches (a
    /// million access keys), and a miss per event was most of interning.
    fn prefetch(&self, hash: u64) {
        if self.slots.is_empty() {
            return;
        }
        let i = hash as usize & (self.slots.len() - 1);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: a prefetch does not access memory (it cannot fault),
            // and the address is inside `slots` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(i).cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// As [`Interner::intern`], with `hash` from [`Interner::hash`].
    fn intern_hashed(&mut self, text: &[u8], hash: u64) -> u32 {
        if (self.ends.len() + 1) * 2 > self.slots.len() {
            self.rehash((self.slots.len() * 2).max(64));
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        let high = hash & HASH_HIGH;
        loop {
            match self.slots[i] {
                0 => break,
                slot if slot & HASH_HIGH == high && self.get(slot as u32 - 1) == text => {
                    return slot as u32 - 1;
                }
                _ => i = (i + 1) & mask,
            }
        }
        let id = self.ends.len() as u32;
        self.slots[i] = high | u64::from(id + 1);
        if self.arena.capacity() - self.arena.len() < text.len() {
            let want = (self.arena.len() / 4).max(text.len()).max(4096);
            self.arena.reserve_exact(want);
        }
        self.arena.extend_from_slice(text);
        reserve_quarter(&mut self.ends, 512);
        self.ends.push(self.arena.len() as u64);
        id
    }

    /// Forgets every text, keeping the allocations for reuse.
    fn clear(&mut self) {
        self.arena.clear();
        self.ends.clear();
        self.slots.fill(0);
    }

    fn rehash(&mut self, size: usize) {
        self.slots = vec![0; size];
        let mask = size - 1;
        for id in 0..self.ends.len() as u32 {
            let hash = self.hash(self.get(id));
            let mut i = hash as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (hash & HASH_HIGH) | u64::from(id + 1);
        }
    }

    fn get(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = match id {
            0 => 0,
            _ => self.ends.get(id - 1).copied().unwrap_or(0) as usize,
        };
        let end = self.ends.get(id).copied().unwrap_or(0) as usize;
        self.arena.get(start..end).unwrap_or(&[])
    }
}

/// Group-by tuple as bytes: each value as a 4-byte length then its text.
fn encode_group(values: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.iter().map(|v| v.len() + 4).sum());
    for v in values {
        encode_group_value(&mut out, v);
    }
    out
}

fn encode_group_value(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

fn decode_group(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let mut n = [0u8; 4];
        n.copy_from_slice(&bytes[..4]);
        let n = (u32::from_le_bytes(n) as usize).min(bytes.len() - 4);
        out.push(String::from_utf8_lossy(&bytes[4..4 + n]).into_owned());
        bytes = &bytes[4 + n..];
    }
    out
}

/// What compact events refer to; shared by the correlations of a
/// [`Collector`] (several usually group by the same field).
#[derive(Default)]
struct Tables {
    groups: Interner,
    values: Interner,
    numbers: Vec<f64>,
    wide: Vec<RecordRef>,
}

impl Tables {
    /// New, empty tables that hash as these do.
    fn emptied(&self) -> Tables {
        Tables {
            groups: Interner {
                hasher: self.groups.hasher.clone(),
                ..Interner::default()
            },
            values: Interner {
                hasher: self.values.hasher.clone(),
                ..Interner::default()
            },
            ..Tables::default()
        }
    }

    fn bytes(&self) -> usize {
        self.groups.bytes()
            + self.values.bytes()
            + self.numbers.capacity() * std::mem::size_of::<f64>()
            + self.wide.capacity() * std::mem::size_of::<RecordRef>()
    }

    /// Builds the compact form of one event, interning what it refers to.
    fn compact(
        &mut self,
        time_ms: i64,
        tiebreak: u64,
        input: u32,
        group: (&[u8], u64),
        value: SpilledValueRef<'_>,
        at: RecordRef,
    ) -> Compact {
        let group = self.groups.intern_hashed(group.0, group.1);
        let value = match value {
            SpilledValueRef::None => NONE,
            SpilledValueRef::Text(t) => self.values.intern(t),
            SpilledValueRef::Number(bits) => {
                self.numbers.push(f64::from_bits(bits));
                (self.numbers.len() - 1) as u32
            }
        };
        let narrow = (
            u32::try_from(at.source).ok().filter(|&s| s != NONE),
            u32::try_from(at.record).ok(),
            u32::try_from(at.line).ok(),
        );
        let (source, record, line) = match narrow {
            (Some(s), Some(r), Some(l)) => (s, r, l),
            _ => {
                self.wide.push(at);
                (NONE, (self.wide.len() - 1) as u32, 0)
            }
        };
        Compact {
            time_ms,
            tiebreak,
            group,
            value,
            source,
            record,
            line,
            input,
        }
    }

    fn pos(&self, e: &Compact) -> RecordRef {
        if e.source == NONE {
            self.wide
                .get(e.record as usize)
                .copied()
                .unwrap_or(RecordRef {
                    source: usize::MAX,
                    record: u64::MAX,
                    line: u64::MAX,
                })
        } else {
            RecordRef {
                source: e.source as usize,
                record: u64::from(e.record),
                line: u64::from(e.line),
            }
        }
    }

    /// Forgets every entry, keeping the allocations for reuse.
    fn clear(&mut self) {
        self.groups.clear();
        self.values.clear();
        self.numbers.clear();
        self.wide.clear();
    }

    /// Each group id's place in the byte order of the group tuples.
    fn group_ranks(&self) -> Vec<u32> {
        let mut by_bytes: Vec<u32> = (0..self.groups.len() as u32).collect();
        by_bytes.sort_unstable_by(|&a, &b| self.groups.get(a).cmp(self.groups.get(b)));
        let mut rank = vec![0u32; by_bytes.len()];
        for (r, &g) in by_bytes.iter().enumerate() {
            rank[g as usize] = r as u32;
        }
        rank
    }

    fn number(&self, e: &Compact) -> Option<f64> {
        (e.value != NONE)
            .then(|| self.numbers.get(e.value as usize).copied())
            .flatten()
    }
}

/// The tables as one correlation type reads them.
#[derive(Clone, Copy)]
struct View<'a> {
    t: &'a Tables,
    kind: CorrelationType,
}

impl<'a> View<'a> {
    fn pos(&self, e: &Compact) -> RecordRef {
        self.t.pos(e)
    }

    /// value_sum / value_avg: the event's number (other types have none).
    fn number(&self, e: &Compact) -> Option<f64> {
        match self.kind {
            CorrelationType::ValueSum | CorrelationType::ValueAvg => self.t.number(e),
            _ => None,
        }
    }

    fn value(&self, e: &Compact) -> SpilledValueRef<'a> {
        if e.value == NONE {
            return SpilledValueRef::None;
        }
        match self.kind {
            CorrelationType::ValueCount => SpilledValueRef::Text(self.t.values.get(e.value)),
            CorrelationType::ValueSum | CorrelationType::ValueAvg => SpilledValueRef::Number(
                self.t
                    .numbers
                    .get(e.value as usize)
                    .copied()
                    .unwrap_or(0.0)
                    .to_bits(),
            ),
            _ => SpilledValueRef::None,
        }
    }

    /// The order within a group: time, tiebreak, input, record, value —
    /// content only, never arrival order.
    fn cmp_in_group(&self, a: &Compact, b: &Compact) -> Ordering {
        a.time_ms
            .cmp(&b.time_ms)
            .then(a.tiebreak.cmp(&b.tiebreak))
            .then(a.input.cmp(&b.input))
            .then_with(|| self.pos(a).cmp(&self.pos(b)))
            .then_with(|| self.value(a).cmp(&self.value(b)))
    }
}

/// The window events of one correlation: compact events in memory
/// (referring to the collector's shared [`Tables`]) and, once memory ran
/// short, sorted runs in temporary files.
struct Store {
    spec: CorrelationSpec,
    events: Vec<Compact>,
    spill: Option<Spill>,
    failed: Option<Failure>,
}

impl Store {
    fn new(spec: CorrelationSpec) -> Store {
        Store {
            spec,
            events: Vec::new(),
            spill: None,
            failed: None,
        }
    }

    fn view<'a>(&self, t: &'a Tables) -> View<'a> {
        View {
            t,
            kind: self.spec.kind,
        }
    }

    fn push(&mut self, t: &mut Tables, e: EventRef<'_>) {
        let value = match self.spec.kind {
            CorrelationType::ValueCount => {
                e.value.map_or(SpilledValueRef::None, SpilledValueRef::Text)
            }
            CorrelationType::ValueSum | CorrelationType::ValueAvg => {
                numeric(e.value.and_then(|v| std::str::from_utf8(v).ok()))
                    .map_or(SpilledValueRef::None, |v| {
                        SpilledValueRef::Number(v.to_bits())
                    })
            }
            _ => SpilledValueRef::None,
        };
        let input = u32::try_from(e.input).unwrap_or(u32::MAX);
        let group = (e.group, e.group_hash);
        let c = t.compact(e.time_ms, e.tiebreak, input, group, value, e.record);
        reserve_quarter(&mut self.events, EVENTS_MIN);
        self.events.push(c);
    }

    /// Writes the events in memory as one sorted run and forgets them (the
    /// caller then resets the tables). On an I/O error the store fails and
    /// keeps nothing.
    fn spill(&mut self, t: &Tables, rank: &[u32]) {
        if self.events.is_empty() || self.failed.is_some() {
            return;
        }
        let result = self.write_run(t, rank);
        // The array is kept for the next events (the collector frees it when
        // memory stays over budget): refilling it allocates nothing.
        self.events.clear();
        if let Err(e) = result {
            self.events = Vec::new();
            self.failed = Some(spill_failure(e));
            self.spill = None;
        }
    }

    /// `rank`: each group id's place in the byte order of the groups, so
    /// every run has the same group order.
    fn write_run(&mut self, t: &Tables, rank: &[u32]) -> std::io::Result<()> {
        if self.spill.is_none() {
            self.spill = Some(Spill::new()?);
        }
        let v = self.view(t);
        let key = |e: &Compact| rank.get(e.group as usize).copied().unwrap_or(u32::MAX);
        self.events
            .sort_unstable_by(|a, b| key(a).cmp(&key(b)).then_with(|| v.cmp_in_group(a, b)));
        let run = self.events.iter().map(|e| SpilledRef {
            group: t.groups.get(e.group),
            time_ms: e.time_ms,
            tiebreak: e.tiebreak,
            input: e.input,
            record: t.pos(e),
            value: v.value(e),
        });
        match self.spill.as_mut() {
            Some(s) => s.write_run(run),
            None => Ok(()),
        }
    }

    /// Evaluates the correlation over every event pushed (the last ones in
    /// memory, referring to `t`); `memory` bounds the merge's read buffers.
    fn finish(mut self, t: &Tables, memory: u64) -> Result<Vec<Alert>, Failure> {
        let ops = validate(&self.spec).map_err(Failure::Unsupported)?;
        if let Some(f) = self.failed.take() {
            return Err(f);
        }
        let mut alerts = Vec::new();
        let params = Params {
            kind: self.spec.kind,
            span: self.spec.timespan_ms,
            stages: self.spec.inputs,
            ops: &ops,
        };
        if self.spill.is_none() {
            let v = self.view(t);
            // Equal events are identical in every field, so an unstable
            // sort is deterministic. In parallel: this runs after the scan,
            // when the workers are idle, and was half of the time spent
            // after it.
            self.events.par_sort_unstable_by(|a, b| {
                a.group.cmp(&b.group).then_with(|| v.cmp_in_group(a, b))
            });
            // Groups are independent: the workers evaluate a share each
            // (the alerts are sorted below, so the split does not show).
            let shares = split_at_groups(&self.events, rayon::current_num_threads());
            let found: Vec<Vec<Alert>> = shares
                .par_iter()
                .map(|&share| {
                    let mut alerts = Vec::new();
                    let mut eval = GroupEval::new(&params);
                    for group in share.chunk_by(|a, b| a.group == b.group) {
                        let name = t.groups.get(group[0].group);
                        for e in group {
                            let item = Item {
                                time_ms: e.time_ms,
                                tiebreak: e.tiebreak,
                                input: e.input,
                                pos: t.pos(e),
                                key: (e.value != NONE
                                    && params.kind == CorrelationType::ValueCount)
                                    .then_some(e.value),
                                number: v.number(e),
                            };
                            eval.push(&params, name, item, &mut alerts);
                        }
                        eval.end(&params, name, &mut alerts);
                    }
                    alerts
                })
                .collect();
            alerts = found.concat();
        } else {
            if !self.events.is_empty() {
                self.spill(t, &t.group_ranks());
            }
            if let Some(f) = self.failed.take() {
                return Err(f);
            }
            let Some(spill) = self.spill.take() else {
                return Ok(alerts);
            };
            // Merge the runs: each group's events arrive consecutively, in
            // order, and only the open window is kept.
            let mut merge = spill.merge(memory).map_err(spill_failure)?;
            let mut eval = GroupEval::new(&params);
            let mut current: Option<Box<[u8]>> = None;
            while let Some(e) = merge.next().map_err(spill_failure)? {
                if current.as_deref() != Some(&e.group[..]) {
                    if let Some(name) = &current {
                        eval.end(&params, name, &mut alerts);
                    }
                    current = Some(e.group.clone());
                }
                let (key, number) = match e.value {
                    SpilledValue::None => (None, None),
                    SpilledValue::Text(t) => (Some(t), None),
                    SpilledValue::Number(bits) => (None, Some(f64::from_bits(bits))),
                };
                let item = Item {
                    time_ms: e.time_ms,
                    tiebreak: e.tiebreak,
                    input: e.input,
                    pos: e.record,
                    key,
                    number,
                };
                let name = current.as_deref().unwrap_or(&[]);
                eval.push(&params, name, item, &mut alerts);
            }
            if let Some(name) = &current {
                eval.end(&params, name, &mut alerts);
            }
        }
        alerts.sort_by(cmp_alerts);
        Ok(alerts)
    }
}

/// Smallest growth of an event array (events).
const EVENTS_MIN: usize = 1024;

/// How much was spilled to temporary files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpillStats {
    /// Sorted runs written.
    pub runs: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Collects the window events of several correlations within one memory
/// budget, then evaluates each correlation.
///
/// Events are kept compactly in memory (40 bytes each, plus the distinct
/// group-by tuples and values once). When the memory held would exceed the
/// budget, every correlation's events are sorted and written as one run
/// to its anonymous temporary files, and the events and shared tables are
/// forgotten; evaluation then merges the runs (an external sort). The result is the same with or without
/// spilling, and does not depend on the order of pushes.
pub struct Collector {
    stores: Vec<Option<Store>>,
    tables: Tables,
    budget: u64,
    spilled: SpillStats,
}

impl Collector {
    /// One store per spec; `budget` bounds the bytes of events and tables
    /// held in memory over all of them (`u64::MAX`: never spill).
    pub fn new(specs: Vec<CorrelationSpec>, budget: u64) -> Collector {
        Collector {
            stores: specs.into_iter().map(|s| Some(Store::new(s))).collect(),
            tables: Tables::default(),
            budget,
            spilled: SpillStats::default(),
        }
    }

    /// Bytes of events and tables held in memory.
    pub fn memory(&self) -> u64 {
        let events: usize = self
            .stores
            .iter()
            .flatten()
            .map(|s| s.events.capacity() * std::mem::size_of::<Compact>())
            .sum();
        (events + self.tables.bytes()) as u64
    }

    /// What was spilled so far.
    pub fn spilled(&self) -> SpillStats {
        self.spilled
    }

    /// Adds one event of correlation `ci` (ignored once it was finished or
    /// failed).
    pub fn push(&mut self, ci: usize, e: Event) {
        let group = encode_group(&e.group);
        self.push_ref(
            ci,
            EventRef {
                time_ms: e.time_ms,
                tiebreak: e.tiebreak,
                input: e.input,
                group: &group,
                group_hash: self.tables.groups.hash(&group),
                value: e.value.as_deref().map(str::as_bytes),
                record: e.record,
            },
        );
    }

    /// Adds every event of a batch, in the batch's order.
    pub fn push_batch(&mut self, batch: &EventBatch) {
        // Each event's group slot is loaded this many events ahead.
        const AHEAD: usize = 8;
        let hash = |tables: &Tables, e: &PackedEvent| tables.groups.hash(batch.text(e.group));
        let mut ahead = [0u64; AHEAD];
        for (slot, e) in ahead.iter_mut().zip(&batch.events) {
            *slot = hash(&self.tables, e);
            self.tables.groups.prefetch(*slot);
        }
        for (i, e) in batch.events.iter().enumerate() {
            let group_hash = ahead[i % AHEAD];
            if let Some(later) = batch.events.get(i + AHEAD) {
                ahead[i % AHEAD] = hash(&self.tables, later);
                self.tables.groups.prefetch(ahead[i % AHEAD]);
            }
            self.push_ref(
                e.correlation,
                EventRef {
                    time_ms: e.time_ms,
                    tiebreak: e.tiebreak,
                    input: e.input,
                    group: batch.text(e.group),
                    group_hash,
                    value: e.value.map(|v| batch.text(v)),
                    record: e.record,
                },
            );
        }
    }

    fn push_ref(&mut self, ci: usize, e: EventRef<'_>) {
        let Some(store) = self.stores.get(ci).and_then(Option::as_ref) else {
            return;
        };
        if store.failed.is_some() {
            return;
        }
        // Spill before a growth of the event array would pass the budget,
        // and before ids could run out of 32 bits.
        let len = store.events.len();
        let growth = if len == store.events.capacity() {
            quarter_growth(len, EVENTS_MIN, std::mem::size_of::<Compact>())
        } else {
            0
        };
        let ids = self.tables.groups.len().max(self.tables.values.len());
        if self.memory().saturating_add(growth) > self.budget
            || ids.max(len).max(self.tables.numbers.len()) >= (u32::MAX - 1) as usize
        {
            self.spill_all();
        }
        if let Some(store) = self.stores[ci].as_mut() {
            store.push(&mut self.tables, e);
        }
        if self.memory() > self.budget {
            self.spill_all();
        }
    }

    /// Writes the events of every correlation as one run each and resets
    /// the tables.
    fn spill_all(&mut self) {
        let before = self.spill_totals();
        let rank = self.tables.group_ranks();
        for s in self.stores.iter_mut().flatten() {
            s.spill(&self.tables, &rank);
        }
        self.tables.clear();
        if self.memory() > self.budget {
            // Kept capacity alone passes the budget: free it.
            for s in self.stores.iter_mut().flatten() {
                s.events = Vec::new();
            }
            // Hashes already computed for coming events stay valid.
            self.tables = self.tables.emptied();
        }
        let after = self.spill_totals();
        self.spilled.runs += after.runs.saturating_sub(before.runs);
        self.spilled.bytes += after.bytes.saturating_sub(before.bytes);
    }

    fn spill_totals(&self) -> SpillStats {
        let mut t = SpillStats::default();
        for sp in self
            .stores
            .iter()
            .flatten()
            .filter_map(|s| s.spill.as_ref())
        {
            t.runs += sp.runs() as u64;
            t.bytes += sp.bytes();
        }
        t
    }

    /// The I/O error that stopped correlation `ci`, if any.
    pub fn failure(&self, ci: usize) -> Option<&Failure> {
        self.stores
            .get(ci)
            .and_then(Option::as_ref)
            .and_then(|s| s.failed.as_ref())
    }

    /// Evaluates correlation `ci` over all its events and frees them. Its
    /// later pushes are ignored.
    pub fn finish(&mut self, ci: usize) -> Result<Vec<Alert>, Failure> {
        self.finish_many(&[ci]).pop().unwrap_or(Ok(Vec::new()))
    }

    /// [`Collector::finish`] for each of `cis`, side by side: answers in the
    /// order of `cis`. The correlations are independent once their events
    /// are in, and one at a time the second core sat idle through the
    /// serial steps of each sort.
    pub fn finish_many(&mut self, cis: &[usize]) -> Vec<Result<Vec<Alert>, Failure>> {
        let mut stores = Vec::with_capacity(cis.len());
        for &ci in cis {
            let Some(mut store) = self.stores.get_mut(ci).and_then(Option::take) else {
                stores.push(None);
                continue;
            };
            if let Some(sp) = &store.spill {
                // The final run, counted here.
                let before = (sp.runs() as u64, sp.bytes());
                if !store.events.is_empty() {
                    store.spill(&self.tables, &self.tables.group_ranks());
                }
                if let Some(sp) = &store.spill {
                    self.spilled.runs += (sp.runs() as u64).saturating_sub(before.0);
                    self.spilled.bytes += sp.bytes().saturating_sub(before.1);
                }
            }
            stores.push(Some(store));
        }
        // Read buffers of the merges: a quarter of the budget at most (but
        // at least 4 KiB per run), shared by the merges that run together.
        let merging = stores
            .iter()
            .flatten()
            .filter(|s| s.spill.is_some())
            .count()
            .max(1) as u64;
        let memory = (self.budget / 4).min(64 << 20) / merging;
        let tables = &self.tables;
        stores
            .into_par_iter()
            .map(|store| match store {
                Some(store) => store.finish(tables, memory),
                None => Ok(Vec::new()),
            })
            .collect()
    }
}

/// `events` (sorted by group) in about `shares` slices of whole groups.
fn split_at_groups(events: &[Compact], shares: usize) -> Vec<&[Compact]> {
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..shares.max(1) {
        let mut cut = (events.len() * k / shares).max(start);
        while cut > 0 && cut < events.len() && events[cut].group == events[cut - 1].group {
            cut += 1;
        }
        if cut > start && cut < events.len() {
            out.push(&events[start..cut]);
            start = cut;
        }
    }
    out.push(&events[start..]);
    out
}

fn cmp_alerts(a: &Alert, b: &Alert) -> Ordering {
    a.end_ms
        .cmp(&b.end_ms)
        .then_with(|| a.group.cmp(&b.group))
        .then(a.start_ms.cmp(&b.start_ms))
        .then_with(|| a.value.total_cmp(&b.value))
        .then_with(|| a.records.cmp(&b.records))
}

fn holds(ops: &[(CmpOp, f64)], value: f64) -> bool {
    !value.is_nan() && ops.iter().all(|&(op, bound)| op.holds(value, bound))
}

/// `later - earlier >= span`, without overflow.
fn too_far(earlier: i64, later: i64, span: i64) -> bool {
    i128::from(later) - i128::from(earlier) >= i128::from(span)
}

fn numeric(value: Option<&str>) -> Option<f64> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Records, each once, in order.
fn unique_records(records: impl Iterator<Item = RecordRef>) -> Vec<RecordRef> {
    let mut seen = HashSet::new();
    records.filter(|r| seen.insert(*r)).collect()
}

/// One window event as evaluation needs it. `K` identifies a value_count
/// value (an interned id in memory, the text when merging spilled runs).
struct Item<K> {
    time_ms: i64,
    tiebreak: u64,
    input: u32,
    pos: RecordRef,
    /// value_count: the value; None = no value.
    key: Option<K>,
    /// value_sum / value_avg: the number; None = no number.
    number: Option<f64>,
}

/// What every group of one correlation is evaluated with.
struct Params<'a> {
    kind: CorrelationType,
    span: i64,
    stages: usize,
    ops: &'a [(CmpOp, f64)],
}

/// The evaluation of one group at a time: items arrive in group order
/// (time, tiebreak, input, record, value); only the open window (or, for
/// temporal_ordered, the best chains and the current step) is kept, so
/// memory does not grow with the group.
enum GroupEval<K> {
    Windowed(Box<Windowed<K>>),
    Ordered(Ordered),
}

impl<K: std::hash::Hash + Eq + Clone> GroupEval<K> {
    fn new(p: &Params<'_>) -> Self {
        if p.kind == CorrelationType::TemporalOrdered {
            GroupEval::Ordered(Ordered {
                best: vec![None; p.stages],
                step: Vec::new(),
            })
        } else {
            GroupEval::Windowed(Box::new(Windowed {
                window: VecDeque::new(),
                agg: Window::new(p.kind),
                block: None,
                block_records: HashSet::new(),
                step: None,
            }))
        }
    }

    /// The next item of the group `group` (encoded tuple).
    fn push(&mut self, p: &Params<'_>, group: &[u8], item: Item<K>, out: &mut Vec<Alert>) {
        match self {
            GroupEval::Windowed(w) => w.push(p, group, item, out),
            GroupEval::Ordered(o) => {
                if o.step.first().is_some_and(|s| s.time_ms != item.time_ms) {
                    o.step_done(p, group, out);
                }
                o.step.push(Link {
                    time_ms: item.time_ms,
                    tiebreak: item.tiebreak,
                    input: item.input,
                    pos: item.pos,
                });
            }
        }
    }

    /// The group ended; resets for the next one.
    fn end(&mut self, p: &Params<'_>, group: &[u8], out: &mut Vec<Alert>) {
        match self {
            GroupEval::Windowed(w) => {
                if let Some(now) = w.step.take() {
                    w.step_done(p, group, now, out);
                }
                w.window.clear();
                w.agg.clear();
                w.block = None;
                w.block_records = HashSet::new();
            }
            GroupEval::Ordered(o) => {
                if !o.step.is_empty() {
                    o.step_done(p, group, out);
                }
                o.best.iter_mut().for_each(|c| *c = None);
            }
        }
    }
}

/// event_count, value_count, value_sum, value_avg, temporal.
struct Windowed<K> {
    window: VecDeque<Item<K>>,
    agg: Window<K>,
    /// (time, tiebreak) of the current block of tied items, and the records
    /// seen in it: one record counts once (except for temporal), and its
    /// repeats are always in the same block.
    block: Option<(i64, u64)>,
    block_records: HashSet<RecordRef>,
    /// The time of the current step (the items with the same time), whose
    /// window has not been evaluated yet.
    step: Option<i64>,
}

impl<K: std::hash::Hash + Eq + Clone> Windowed<K> {
    /// Adds an item; when it starts a new time step, the previous step is
    /// evaluated first (the condition is checked after a whole step, never
    /// among events with the same time).
    fn push(&mut self, p: &Params<'_>, group: &[u8], item: Item<K>, out: &mut Vec<Alert>) {
        let now = item.time_ms;
        if self.step != Some(now) {
            if let Some(prev) = self.step {
                self.step_done(p, group, prev, out);
            }
            self.step = Some(now);
            while let Some(first) = self.window.front() {
                if !too_far(first.time_ms, now, p.span) {
                    break;
                }
                self.agg.pop(first);
                self.window.pop_front();
            }
        }
        if p.kind != CorrelationType::Temporal {
            let block = (item.time_ms, item.tiebreak);
            if self.block != Some(block) {
                self.block = Some(block);
                if self.block_records.capacity() > 64 {
                    self.block_records = HashSet::new();
                } else {
                    self.block_records.clear();
                }
            }
            if !self.block_records.insert(item.pos) {
                return;
            }
        }
        self.agg.push(&item);
        self.window.push_back(item);
    }

    /// The step at `now` is complete: applies the condition to the window
    /// ending with it.
    fn step_done(&mut self, p: &Params<'_>, group: &[u8], now: i64, out: &mut Vec<Alert>) {
        let Some(value) = self.agg.value() else {
            return;
        };
        if holds(p.ops, value) {
            out.push(Alert {
                group: decode_group(group),
                start_ms: self.window.front().map_or(now, |e| e.time_ms),
                end_ms: now,
                value,
                records: unique_records(self.window.iter().map(|e| e.pos)),
            });
            // Re-arm: only events after the alerting step.
            self.window.clear();
            self.agg.clear();
        }
    }
}

/// An event in a temporal_ordered chain or step.
#[derive(Clone, Copy)]
struct Link {
    time_ms: i64,
    tiebreak: u64,
    input: u32,
    pos: RecordRef,
}

/// A partial temporal_ordered chain: the events filling stages 0..=s.
#[derive(Clone)]
struct Chain {
    items: Vec<Link>,
}

impl Chain {
    /// The first event's place in group order.
    fn start(&self) -> (i64, u64, u32, RecordRef) {
        let f = &self.items[0];
        (f.time_ms, f.tiebreak, f.input, f.pos)
    }
}

/// temporal_ordered.
struct Ordered {
    /// best[s]: among chains filling stages 0..=s from earlier steps, the
    /// one with the latest start (the best for any later completion).
    best: Vec<Option<Chain>>,
    /// The events of the current step (the same event time).
    step: Vec<Link>,
}

impl Ordered {
    fn step_done(&mut self, p: &Params<'_>, group: &[u8], out: &mut Vec<Alert>) {
        let (span, stages) = (p.span, p.stages);
        let step = std::mem::take(&mut self.step);
        let Some(first) = step.first() else {
            return;
        };
        let now = first.time_ms;
        let fresh = |c: &Chain| !too_far(c.items[0].time_ms, now, span);

        // One occurrence per record in this step, with the stages it can fill.
        let mut occurrences: Vec<(RecordRef, usize, Vec<usize>)> = Vec::new();
        for (k, e) in step.iter().enumerate() {
            if e.input as usize >= stages {
                continue;
            }
            match occurrences.iter_mut().find(|o| o.0 == e.pos) {
                Some(o) => o.2.push(e.input as usize),
                None => occurrences.push((e.pos, k, vec![e.input as usize])),
            }
        }
        // Every update reads only the state before this step, so nothing in
        // the step chains onto itself (strict order), and stages are visited
        // last to first so one record cannot fill two stages of a chain.
        let mut updates: Vec<(usize, Chain)> = Vec::new();
        for (_, index, inputs) in &mut occurrences {
            inputs.sort_unstable();
            inputs.dedup();
            for &s in inputs.iter().rev() {
                let chain = if s == 0 {
                    Chain {
                        items: vec![step[*index]],
                    }
                } else {
                    match &self.best[s - 1] {
                        Some(prev) if fresh(prev) => {
                            let mut items = prev.items.clone();
                            items.push(step[*index]);
                            Chain { items }
                        }
                        _ => continue,
                    }
                };
                updates.push((s, chain));
            }
        }
        for (s, chain) in updates {
            let better = match &self.best[s] {
                None => true,
                Some(old) => chain.start() > old.start(),
            };
            if better {
                self.best[s] = Some(chain);
            }
        }

        // Fresh stages form a prefix: a fresh chain for s has a fresh prefix
        // for s - 1, and best[s - 1] starts no earlier.
        let done = self
            .best
            .iter()
            .take_while(|c| c.as_ref().is_some_and(fresh))
            .count();
        if holds(p.ops, done as f64) {
            let (start_ms, records) = match done.checked_sub(1).and_then(|s| self.best[s].as_ref())
            {
                Some(chain) => (
                    chain.items[0].time_ms,
                    unique_records(chain.items.iter().map(|l| l.pos)),
                ),
                None => (now, unique_records(step.iter().map(|l| l.pos))),
            };
            out.push(Alert {
                group: decode_group(group),
                start_ms,
                end_ms: now,
                value: done as f64,
                records,
            });
            // Re-arm: only events after this step.
            self.best.iter_mut().for_each(|c| *c = None);
        }
        self.step = step;
        self.step.clear();
    }
}

/// A FIFO of (sum, count) pairs whose total is kept without ever
/// subtracting (two-stack queue), so removing a huge value from the window
/// cannot leave rounding residue behind.
#[derive(Default)]
struct SumQueue {
    /// Newest elements, raw.
    back: Vec<(f64, u64)>,
    /// Aggregate of `back`.
    back_total: (f64, u64),
    /// Oldest elements; each entry holds the aggregate of itself and every
    /// entry below it (the top is the oldest element).
    front: Vec<(f64, u64)>,
}

impl SumQueue {
    fn push(&mut self, value: Option<f64>) {
        let item = value.map_or((0.0, 0), |v| (v, 1));
        self.back.push(item);
        self.back_total = (self.back_total.0 + item.0, self.back_total.1 + item.1);
    }

    fn pop(&mut self) {
        if self.front.is_empty() {
            let mut total = (0.0, 0);
            while let Some(item) = self.back.pop() {
                total = (total.0 + item.0, total.1 + item.1);
                self.front.push(total);
            }
            self.back_total = (0.0, 0);
        }
        self.front.pop();
    }

    fn total(&self) -> (f64, u64) {
        let front = self.front.last().copied().unwrap_or((0.0, 0));
        (front.0 + self.back_total.0, front.1 + self.back_total.1)
    }

    fn clear(&mut self) {
        *self = SumQueue::default();
    }
}

/// The incremental aggregate of one window for the non-ordered types.
struct Window<K> {
    kind: CorrelationType,
    len: usize,
    distinct: HashMap<K, usize>,
    sums: SumQueue,
    rules: HashMap<u32, usize>,
}

impl<K: std::hash::Hash + Eq + Clone> Window<K> {
    fn new(kind: CorrelationType) -> Self {
        Window {
            kind,
            len: 0,
            distinct: HashMap::new(),
            sums: SumQueue::default(),
            rules: HashMap::new(),
        }
    }

    fn push(&mut self, e: &Item<K>) {
        self.len += 1;
        match self.kind {
            CorrelationType::ValueCount => {
                if let Some(k) = &e.key {
                    match self.distinct.get_mut(k) {
                        Some(n) => *n += 1,
                        None => {
                            self.distinct.insert(k.clone(), 1);
                        }
                    }
                }
            }
            CorrelationType::ValueSum | CorrelationType::ValueAvg => self.sums.push(e.number),
            CorrelationType::Temporal => *self.rules.entry(e.input).or_insert(0) += 1,
            _ => {}
        }
    }

    fn pop(&mut self, e: &Item<K>) {
        self.len -= 1;
        match self.kind {
            CorrelationType::ValueCount => {
                if let Some(k) = &e.key {
                    decrement(&mut self.distinct, k);
                }
            }
            CorrelationType::ValueSum | CorrelationType::ValueAvg => self.sums.pop(),
            CorrelationType::Temporal => decrement(&mut self.rules, &e.input),
            _ => {}
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.distinct.clear();
        self.sums.clear();
        self.rules.clear();
    }

    /// The window's value; None when it has none (average of nothing).
    fn value(&self) -> Option<f64> {
        match self.kind {
            CorrelationType::EventCount => Some(self.len as f64),
            CorrelationType::ValueCount => Some(self.distinct.len() as f64),
            CorrelationType::ValueSum => Some(self.sums.total().0),
            CorrelationType::ValueAvg => {
                let (sum, n) = self.sums.total();
                (n > 0).then(|| sum / n as f64)
            }
            CorrelationType::Temporal => Some(self.rules.len() as f64),
            CorrelationType::ValuePercentile | CorrelationType::TemporalOrdered => None,
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_split_whole_and_every_event_kept() {
        let event = |group| Compact {
            time_ms: 0,
            tiebreak: 0,
            group,
            value: NONE,
            source: 0,
            record: 0,
            line: 0,
            input: 0,
        };
        let layouts: [&[u32]; 6] = [
            &[],
            &[1],
            &[1, 1, 1, 1],
            &[1, 2, 3, 4, 5, 6, 7],
            &[1, 1, 1, 1, 1, 2],
            &[1, 2, 2, 2, 2, 2, 2, 2, 3, 3],
        ];
        for groups in layouts {
            let events: Vec<Compact> = groups.iter().map(|&g| event(g)).collect();
            for shares in 1..6 {
                let split = split_at_groups(&events, shares);
                assert!(split.len() <= shares.max(1), "{groups:?} in {shares}");
                let rejoined: Vec<u32> = split
                    .iter()
                    .flat_map(|s| s.iter().map(|e| e.group))
                    .collect();
                assert_eq!(rejoined, groups, "{shares} shares");
                for pair in split.windows(2) {
                    let (Some(last), Some(first)) = (pair[0].last(), pair[1].first()) else {
                        panic!("an empty share of {groups:?} in {shares}");
                    };
                    assert_ne!(last.group, first.group, "{groups:?} in {shares}");
                }
            }
        }
        // Many small groups are shared out evenly.
        let events: Vec<Compact> = (0..1000).map(event).collect();
        assert!(split_at_groups(&events, 2).iter().all(|s| s.len() == 500));
    }
    use std::borrow::Cow;

    const MIN: i64 = 60_000;
    /// 2026-11-22T04:00:00Z.
    const HOUR_MARK: i64 = 1_795_320_000_000;

    fn rec(n: u64) -> RecordRef {
        RecordRef {
            source: (n % 3) as usize,
            record: n,
            line: n + 1,
        }
    }

    fn ev(n: u64, time_ms: i64, user: &str, input: usize, value: Option<&str>) -> Event {
        Event {
            time_ms,
            tiebreak: n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            input,
            group: vec![user.to_string()],
            value: value.map(str::to_string),
            record: rec(n),
        }
    }

    fn spec(
        kind: CorrelationType,
        timespan_ms: i64,
        ops: &[(CmpOp, f64)],
        inputs: usize,
    ) -> CorrelationSpec {
        CorrelationSpec {
            kind,
            timespan_ms,
            ops: ops.to_vec(),
            inputs,
        }
    }

    fn cmp_events(a: &Event, b: &Event) -> Ordering {
        a.group
            .cmp(&b.group)
            .then(a.time_ms.cmp(&b.time_ms))
            .then(a.tiebreak.cmp(&b.tiebreak))
            .then(a.input.cmp(&b.input))
            .then(a.record.cmp(&b.record))
            .then_with(|| a.value.cmp(&b.value))
    }

    fn burst(spec_: &CorrelationSpec, events: Vec<Event>) -> Vec<Alert> {
        evaluate(spec_, events).unwrap()
    }

    fn count_gte(n: f64) -> CorrelationSpec {
        spec(CorrelationType::EventCount, 5 * MIN, &[(CmpOp::Gte, n)], 1)
    }

    /// `n` events of `user`, evenly `step_ms` apart from `start`.
    fn series(first: u64, n: u64, start: i64, step_ms: i64, user: &str) -> Vec<Event> {
        (0..n)
            .map(|k| ev(first + k, start + k as i64 * step_ms, user, 0, None))
            .collect()
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn shuffle<T>(&mut self, items: &mut [T]) {
            for k in (1..items.len()).rev() {
                let j = self.below(k as u64 + 1) as usize;
                items.swap(k, j);
            }
        }
    }

    #[test]
    fn nineteen_in_five_minutes_is_a_near_miss() {
        let events = series(0, 19, HOUR_MARK, 10_000, "alice");
        assert!(burst(&count_gte(20.0), events).is_empty());
    }

    #[test]
    fn twenty_over_six_minutes_is_a_near_miss() {
        // 19 gaps of 6 min / 19: any 20 consecutive span 6 minutes.
        let events = series(0, 20, HOUR_MARK, 6 * MIN / 19, "alice");
        assert!(burst(&count_gte(20.0), events).is_empty());
    }

    #[test]
    fn twenty_by_two_users_is_a_near_miss() {
        let mut events = series(0, 10, HOUR_MARK, 5_000, "alice");
        events.extend(series(10, 10, HOUR_MARK + 2_500, 5_000, "bob"));
        assert!(burst(&count_gte(20.0), events).is_empty());
    }

    #[test]
    fn twenty_by_one_user_shuffled_alerts() {
        let mut events = series(0, 20, HOUR_MARK, 10_000, "alice");
        let ordered_alerts = burst(&count_gte(20.0), events.clone());
        XorShift(7).shuffle(&mut events);
        let alerts = burst(&count_gte(20.0), events);
        assert_eq!(alerts, ordered_alerts);
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.group, vec!["alice".to_string()]);
        assert_eq!(a.value, 20.0);
        assert_eq!((a.start_ms, a.end_ms), (HOUR_MARK, HOUR_MARK + 190_000));
        let expected: Vec<RecordRef> = (0..20).map(rec).collect();
        assert_eq!(a.records, expected);
    }

    #[test]
    fn burst_straddling_an_hour_boundary_alerts() {
        // 20 events from 03:58 to 04:01:10, across the 04:00 mark.
        let events = series(0, 20, HOUR_MARK - 2 * MIN, 10_000, "alice");
        let alerts = burst(&count_gte(20.0), events);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].start_ms < HOUR_MARK && alerts[0].end_ms > HOUR_MARK);
    }

    #[test]
    fn window_edge_is_exclusive() {
        let s = spec(
            CorrelationType::EventCount,
            300_000,
            &[(CmpOp::Gte, 2.0)],
            1,
        );
        let apart = |gap| {
            vec![
                ev(1, HOUR_MARK, "a", 0, None),
                ev(2, HOUR_MARK + gap, "a", 0, None),
            ]
        };
        assert!(burst(&s, apart(300_000)).is_empty());
        let alerts = burst(&s, apart(299_999));
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].start_ms, alerts[0].end_ms),
            (HOUR_MARK, HOUR_MARK + 299_999)
        );
    }

    #[test]
    fn one_alert_per_burst_then_rearm() {
        // 30 events in one burst: one alert (at the 20th); the 10 after it
        // do not reach 20 again. A second burst an hour later alerts again.
        let mut events = series(0, 30, HOUR_MARK, 5_000, "alice");
        events.extend(series(100, 20, HOUR_MARK + 60 * MIN, 5_000, "alice"));
        let alerts = burst(&count_gte(20.0), events);
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].end_ms, HOUR_MARK + 19 * 5_000);
        assert_eq!(alerts[0].records.len(), 20);
        assert_eq!(alerts[1].start_ms, HOUR_MARK + 60 * MIN);
        assert_eq!(alerts[1].records[0], rec(100));
    }

    #[test]
    fn rearm_uses_only_later_events() {
        // 40 events in one window: two alerts, disjoint records.
        let events = series(0, 40, HOUR_MARK, 1_000, "alice");
        let alerts = burst(&count_gte(20.0), events);
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[1].records, (20..40).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn lt_fires_on_the_first_event() {
        let s = spec(CorrelationType::EventCount, 5 * MIN, &[(CmpOp::Lt, 5.0)], 1);
        let alerts = burst(&s, series(0, 3, HOUR_MARK, 1_000, "a"));
        // Each event alone is a window of 1 after re-arm.
        assert_eq!(alerts.len(), 3);
        assert!(alerts
            .iter()
            .all(|a| a.value == 1.0 && a.records.len() == 1));
    }

    #[test]
    fn range_condition_is_anded() {
        let s = spec(
            CorrelationType::EventCount,
            5 * MIN,
            &[(CmpOp::Gt, 2.0), (CmpOp::Lte, 3.0)],
            1,
        );
        let alerts = burst(&s, series(0, 10, HOUR_MARK, 1_000, "a"));
        assert!(alerts.iter().all(|a| a.value == 3.0));
        assert_eq!(alerts.len(), 3);
    }

    #[test]
    fn same_record_counts_once() {
        // A record matching two referenced rules arrives twice.
        let s = spec(
            CorrelationType::EventCount,
            5 * MIN,
            &[(CmpOp::Gte, 2.0)],
            2,
        );
        let events = vec![
            ev(1, HOUR_MARK, "a", 0, None),
            ev(1, HOUR_MARK, "a", 1, None),
        ];
        assert!(burst(&s, events.clone()).is_empty());
        let mut more = events;
        more.push(ev(2, HOUR_MARK + 1, "a", 1, None));
        assert_eq!(burst(&s, more)[0].records, vec![rec(1), rec(2)]);
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let s = spec(
            CorrelationType::ValueCount,
            5 * MIN,
            &[(CmpOp::Gte, 3.0)],
            1,
        );
        let v = |n, t, x| ev(n, HOUR_MARK + t, "key", 0, x);
        // Repeats and None do not count.
        let near = vec![
            v(1, 0, Some("b1")),
            v(2, 1, Some("b1")),
            v(3, 2, Some("b2")),
            v(4, 3, None),
            v(5, 4, Some("b2")),
            v(6, 5, Some("b1")),
        ];
        assert!(burst(&s, near.clone()).is_empty());
        let mut hit = near;
        hit.push(v(7, 6, Some("b3")));
        let alerts = burst(&s, hit);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].value, 3.0);
        assert_eq!(alerts[0].records.len(), 7);
        // A value leaving the window stops counting.
        let expired = vec![
            v(1, 0, Some("b1")),
            v(2, 5 * MIN, Some("b2")),
            v(3, 5 * MIN + 1, Some("b3")),
        ];
        assert!(burst(&s, expired).is_empty());
    }

    #[test]
    fn value_sum_and_avg_ignore_non_numeric() {
        let v = |n, t, x: &str| ev(n, HOUR_MARK + t, "a", 0, Some(x));
        let events = vec![
            v(1, 0, "12"),
            v(2, 1, "abc"),
            v(3, 2, " 20.5 "),
            v(4, 3, "NaN"),
            v(5, 4, "inf"),
            ev(6, HOUR_MARK + 5, "a", 0, None),
            v(7, 6, "-2.5"),
        ];
        // Running sums 12, 32.5, 30.
        let sum = spec(CorrelationType::ValueSum, 5 * MIN, &[(CmpOp::Eq, 30.0)], 1);
        let alerts = burst(&sum, events.clone());
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].value, 30.0);
        assert_eq!(alerts[0].end_ms, HOUR_MARK + 6);
        // Averages over the numeric values only: 12, 16.25, then 30 / 3.
        let avg = spec(CorrelationType::ValueAvg, 5 * MIN, &[(CmpOp::Eq, 10.0)], 1);
        let alerts = burst(&avg, events[2..].to_vec());
        assert!(alerts.is_empty(), "20.5 alone, then (20.5 - 2.5) / 2");
        let alerts = burst(&avg, events);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].value, 10.0);
        // No numeric value: no average, no alert, even for neq.
        let neq = spec(CorrelationType::ValueAvg, 5 * MIN, &[(CmpOp::Neq, 1.0)], 1);
        assert!(burst(&neq, vec![v(1, 0, "x")]).is_empty());
    }

    #[test]
    fn value_sum_window_slides_without_residue() {
        let s = spec(CorrelationType::ValueSum, 1_000, &[(CmpOp::Eq, 0.1)], 1);
        let v = |n, t, x: &str| ev(n, HOUR_MARK + t, "a", 0, Some(x));
        let alerts = burst(&s, vec![v(1, 0, "1e20"), v(2, 1, "3"), v(3, 2_000, "0.1")]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].value, 0.1);
    }

    #[test]
    fn temporal_any_order() {
        let s = spec(CorrelationType::Temporal, 5 * MIN, &[], 3);
        let e = |n, t, input| ev(n, HOUR_MARK + t, "u", input, None);
        let events = vec![e(1, 0, 2), e(2, 10, 0), e(3, 20, 0), e(4, 30, 1)];
        let alerts = burst(&s, events);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].value, 3.0);
        assert_eq!(alerts[0].end_ms, HOUR_MARK + 30);
        // Missing one rule: no alert; out of window: no alert.
        assert!(burst(&s, vec![e(1, 0, 2), e(2, 10, 0)]).is_empty());
        assert!(burst(&s, vec![e(1, 0, 2), e(2, 10, 0), e(3, 5 * MIN, 1)]).is_empty());
    }

    fn login(n: u64, t: i64, input: usize) -> Event {
        ev(n, HOUR_MARK + t * 1_000, "root", input, None)
    }

    #[test]
    fn temporal_ordered_success_before_failures_is_a_near_miss() {
        // rules: [failed login, successful login]
        let s = spec(CorrelationType::TemporalOrdered, 5 * MIN, &[], 2);
        let events = vec![
            login(1, 0, 1),
            login(2, 10, 0),
            login(3, 20, 0),
            login(4, 30, 0),
        ];
        assert!(burst(&s, events).is_empty());
    }

    #[test]
    fn temporal_ordered_failures_then_success_alerts() {
        let s = spec(CorrelationType::TemporalOrdered, 5 * MIN, &[], 2);
        let mut events = vec![
            login(1, 0, 0),
            login(2, 10, 0),
            login(3, 20, 0),
            login(4, 30, 1),
        ];
        XorShift(3).shuffle(&mut events);
        let alerts = burst(&s, events);
        assert_eq!(alerts.len(), 1);
        // The latest-starting chain: last failure, then success.
        assert_eq!(alerts[0].records, vec![rec(3), rec(4)]);
        assert_eq!(
            (alerts[0].start_ms, alerts[0].end_ms),
            (HOUR_MARK + 20_000, HOUR_MARK + 30_000)
        );
        assert_eq!(alerts[0].value, 2.0);
        // Too far apart: no alert.
        assert!(burst(&s, vec![login(1, 0, 0), login(2, 300, 1)]).is_empty());
        // Same time cannot be ordered, whatever the tiebreaks.
        let mut tied = login(2, 0, 1);
        tied.tiebreak = login(1, 0, 0).tiebreak;
        assert!(burst(&s, vec![login(1, 0, 0), tied]).is_empty());
        for (a, b) in [(1, u64::MAX), (u64::MAX, 1)] {
            let (mut first, mut second) = (login(1, 0, 0), login(2, 0, 1));
            (first.tiebreak, second.tiebreak) = (a, b);
            assert!(burst(&s, vec![first, second]).is_empty(), "{a} {b}");
        }
    }

    #[test]
    fn temporal_ordered_ties_are_one_step() {
        // rules: [a, b, c]; b and c at the same second cannot both follow a
        // in order; a later c completes the chain with the latest a.
        let s = spec(CorrelationType::TemporalOrdered, 5 * MIN, &[], 3);
        let tied = vec![login(1, 0, 0), login(2, 10, 1), login(3, 10, 2)];
        assert!(burst(&s, tied.clone()).is_empty());
        let mut more = tied;
        more.extend([login(4, 10, 0), login(5, 20, 2)]);
        let alerts = burst(&s, more);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].records, vec![rec(1), rec(2), rec(5)]);
        assert_eq!(alerts[0].start_ms, HOUR_MARK);
    }

    #[test]
    fn events_with_the_same_time_are_one_step_for_every_type() {
        // Two records in the same millisecond: +10 and -10. Whichever
        // record hashes first, the window holds both or neither.
        let v = |n, x: &str| ev(n, HOUR_MARK, "a", 0, Some(x));
        let sum = spec(CorrelationType::ValueSum, MIN, &[(CmpOp::Gte, 10.0)], 1);
        let avg = spec(CorrelationType::ValueAvg, MIN, &[(CmpOp::Gte, 10.0)], 1);
        for tiebreaks in [(1, 2), (2, 1)] {
            let (mut a, mut b) = (v(1, "10"), v(2, "-10"));
            (a.tiebreak, b.tiebreak) = tiebreaks;
            assert!(burst(&sum, vec![a.clone(), b.clone()]).is_empty());
            assert!(burst(&avg, vec![a.clone(), b.clone()]).is_empty());
            // A third record a second later: sum 10, one alert over all.
            let c = ev(3, HOUR_MARK + 1_000, "a", 0, Some("10"));
            let alerts = burst(&sum, vec![a, b, c]);
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].records.len(), 3);
            assert_eq!((alerts[0].start_ms, alerts[0].value), (HOUR_MARK, 10.0));
        }
        // event_count eq 2 over three tied records: the step holds three.
        let eq = spec(CorrelationType::EventCount, MIN, &[(CmpOp::Eq, 2.0)], 1);
        let three: Vec<Event> = (1..=3).map(|n| ev(n, HOUR_MARK, "a", 0, None)).collect();
        assert!(burst(&eq, three.clone()).is_empty());
        // value_count lt 2: the step holds two values.
        let vc = spec(CorrelationType::ValueCount, MIN, &[(CmpOp::Lt, 2.0)], 1);
        assert!(burst(&vc, vec![v(1, "x"), v(2, "y")]).is_empty());
        // lt fires once per step, with all of the step's records.
        let lt = spec(CorrelationType::EventCount, MIN, &[(CmpOp::Lt, 5.0)], 1);
        let alerts = burst(&lt, three);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].value, 3.0);
    }

    #[test]
    fn temporal_ordered_rule_listed_twice_uses_each_event_once() {
        // rules: [failed, failed, success]; a failure is passed once per
        // listed position (inputs 0 and 1).
        let s = spec(CorrelationType::TemporalOrdered, 5 * MIN, &[], 3);
        let fail = |n, t| vec![login(n, t, 0), login(n, t, 1)];
        let one: Vec<Event> = fail(1, 0).into_iter().chain([login(9, 30, 2)]).collect();
        assert!(
            burst(&s, one).is_empty(),
            "one failure cannot fill two stages"
        );
        let two: Vec<Event> = fail(1, 0)
            .into_iter()
            .chain(fail(2, 10))
            .chain([login(9, 30, 2)])
            .collect();
        let alerts = burst(&s, two);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].records, vec![rec(1), rec(2), rec(9)]);
        // Re-arm: a second success right after reuses nothing.
        let reuse: Vec<Event> = fail(1, 0)
            .into_iter()
            .chain(fail(2, 10))
            .chain([login(9, 30, 2), login(10, 40, 2)])
            .collect();
        assert_eq!(burst(&s, reuse).len(), 1);
    }

    #[test]
    fn temporal_ordered_partial_condition() {
        // gte 2 of 3 stages: fires once stage 0 then stage 1 occurred.
        let s = spec(
            CorrelationType::TemporalOrdered,
            5 * MIN,
            &[(CmpOp::Gte, 2.0)],
            3,
        );
        let alerts = burst(&s, vec![login(1, 0, 1), login(2, 10, 0), login(3, 20, 1)]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].records, vec![rec(2), rec(3)]);
    }

    #[test]
    fn unsupported_and_invalid_specs() {
        let p = spec(
            CorrelationType::ValuePercentile,
            MIN,
            &[(CmpOp::Lte, 1.0)],
            1,
        );
        assert!(evaluate(&p, Vec::new())
            .unwrap_err()
            .reason
            .contains("value_percentile"));
        assert!(evaluate(
            &spec(CorrelationType::EventCount, 0, &[(CmpOp::Gte, 1.0)], 1),
            Vec::new()
        )
        .is_err());
        assert!(evaluate(&spec(CorrelationType::EventCount, MIN, &[], 1), Vec::new()).is_err());
        assert!(evaluate(&spec(CorrelationType::Temporal, MIN, &[], 0), Vec::new()).is_err());
    }

    #[test]
    fn alerts_sorted_by_end_then_group() {
        let mut events = series(0, 2, HOUR_MARK + 10, 1, "zed");
        events.extend(series(10, 2, HOUR_MARK, 11, "amy"));
        events.extend(series(20, 2, HOUR_MARK + 5, 6, "bob"));
        let alerts = burst(
            &spec(CorrelationType::EventCount, MIN, &[(CmpOp::Gte, 2.0)], 1),
            events,
        );
        let keys: Vec<(i64, &str)> = alerts
            .iter()
            .map(|a| (a.end_ms - HOUR_MARK, a.group[0].as_str()))
            .collect();
        assert_eq!(keys, vec![(11, "amy"), (11, "bob"), (11, "zed")]);
        assert_eq!(alerts[0].start_ms, HOUR_MARK);
    }

    #[test]
    fn interner_numbers_texts_once() {
        let mut i = Interner::default();
        let texts: Vec<Vec<u8>> = (0..5_000u32)
            .map(|n| format!("arn:aws:sts::1:assumed-role/r/{}", n % 3_000).into_bytes())
            .chain([Vec::new(), b"\xff\x00".to_vec()])
            .collect();
        let ids: Vec<u32> = texts.iter().map(|t| i.intern(t)).collect();
        assert_eq!(i.len(), 3_002);
        for (t, &id) in texts.iter().zip(&ids) {
            assert_eq!(i.get(id), &t[..]);
            assert_eq!(i.intern(t), id);
        }
        assert_eq!(ids[3_000], 0, "the 3000th is the first again");
        // The bound before slots held half the hash, plus the 4 bytes per
        // slot that widening them added.
        let widened = i.slots.capacity() * 4;
        assert!(
            i.bytes() < 3_002 * (40 + 24) + widened,
            "{} bytes",
            i.bytes()
        );
    }

    #[test]
    fn a_kept_event_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Compact>(), 40);
    }

    #[test]
    fn group_tuples_and_wide_positions_survive_interning_and_spilling() {
        let s = spec(CorrelationType::EventCount, MIN, &[(CmpOp::Gte, 2.0)], 1);
        let huge = RecordRef {
            source: 7,
            record: u64::from(u32::MAX) + 5,
            line: u64::MAX,
        };
        let mut events = Vec::new();
        for (n, group) in [
            vec!["a\u{1f}b".to_string()],
            vec!["a".to_string(), "b".to_string()],
            vec![String::new(), "ab".to_string()],
            vec!["é".to_string(), String::new()],
        ]
        .into_iter()
        .enumerate()
        {
            for k in 0..2u64 {
                let mut e = ev(n as u64 * 10 + k, HOUR_MARK + k as i64, "x", 0, None);
                e.group = group.clone();
                if k == 1 {
                    e.record = RecordRef { source: n, ..huge };
                }
                events.push(e);
            }
        }
        let alerts = burst(&s, events.clone());
        assert_eq!(alerts.len(), 4, "four groups, none merged");
        let groups: HashSet<Vec<String>> = alerts.iter().map(|a| a.group.clone()).collect();
        assert!(groups.contains(&vec!["a".to_string(), "b".to_string()]));
        assert!(groups.contains(&vec!["é".to_string(), String::new()]));
        assert!(alerts
            .iter()
            .all(|a| a.records[1].record == huge.record && a.records[1].line == u64::MAX));
        let mut c = Collector::new(vec![s], 0);
        for e in events {
            c.push(0, e);
        }
        assert_eq!(c.finish(0).unwrap(), alerts);
    }

    #[test]
    fn thousands_of_spills_are_merged_in_levels() {
        // No group-by: one group of 3,000 events, one run per event.
        let s = spec(CorrelationType::ValueCount, MIN, &[(CmpOp::Gte, 5.0)], 1);
        let mut events: Vec<Event> = (0..3_000u64)
            .map(|n| {
                let mut e = ev(n, HOUR_MARK + (n as i64 * 7_919) % (30 * MIN), "", 0, None);
                e.group = Vec::new();
                e.value = Some((n % 11).to_string());
                e
            })
            .collect();
        let expected = burst(&s, events.clone());
        assert!(expected.len() > 10);
        XorShift(11).shuffle(&mut events);
        let mut c = Collector::new(vec![s], 0);
        for e in events {
            c.push(0, e);
        }
        assert_eq!(c.spilled().runs, 3_000);
        let pending = c.stores[0]
            .as_ref()
            .and_then(|st| st.spill.as_ref())
            .map_or(0, |sp| sp.pending_runs());
        // 3,000 = 11 * 256 + 11 * 16 + 8: at most 15 runs per level.
        assert_eq!(pending, 11 + 11 + 8, "runs left to merge");
        assert_eq!(c.finish(0).unwrap(), expected);
    }

    #[test]
    fn one_budget_is_shared_by_correlations() {
        let count = spec(
            CorrelationType::EventCount,
            5 * MIN,
            &[(CmpOp::Gte, 20.0)],
            1,
        );
        let distinct = spec(
            CorrelationType::ValueCount,
            5 * MIN,
            &[(CmpOp::Gte, 3.0)],
            1,
        );
        let events: Vec<Event> = (0..2_000u64)
            .map(|n| {
                let user = ["alice", "bob", "carol", "dave"][(n % 4) as usize];
                let value = (n % 7).to_string();
                ev(
                    n,
                    HOUR_MARK + (n as i64 * 7_919) % (60 * MIN),
                    user,
                    0,
                    Some(&value),
                )
            })
            .collect();
        let expected = [
            burst(&count, events.clone()),
            burst(&distinct, events.clone()),
        ];
        assert!(!expected[0].is_empty() && !expected[1].is_empty());
        let budget = 16 << 10;
        let mut c = Collector::new(vec![count, distinct], budget);
        for e in events {
            c.push(0, e.clone());
            c.push(1, e);
            assert!(c.memory() <= budget, "{} over {budget}", c.memory());
        }
        assert!(c.spilled().runs >= 4);
        assert_eq!(c.finish(0).unwrap(), expected[0]);
        assert_eq!(c.finish(1).unwrap(), expected[1]);
        assert!(c.failure(0).is_none());
    }

    #[test]
    fn correlations_finished_together_alert_as_one_at_a_time() {
        let specs = [
            count_gte(20.0),
            spec(
                CorrelationType::ValueCount,
                5 * MIN,
                &[(CmpOp::Gte, 3.0)],
                1,
            ),
            spec(CorrelationType::Temporal, 5 * MIN, &[], 2),
        ];
        let events: Vec<Event> = (0..3_000u64)
            .map(|n| {
                let user = ["alice", "bob", "carol"][(n % 3) as usize];
                let value = (n % 5).to_string();
                let time = HOUR_MARK + (n as i64 * 4_729) % (60 * MIN);
                ev(n, time, user, (n % 2) as usize, Some(&value))
            })
            .collect();
        // In memory, and spilled (each finish then merges its own runs).
        for budget in [u64::MAX, 16 << 10] {
            let collect = || {
                let mut c = Collector::new(specs.to_vec(), budget);
                for e in &events {
                    for (ci, s) in specs.iter().enumerate() {
                        let mut e = e.clone();
                        e.input %= s.inputs;
                        c.push(ci, e);
                    }
                }
                c
            };
            let mut apart = collect();
            let expected: Vec<Vec<Alert>> = (0..specs.len())
                .map(|ci| apart.finish(ci).unwrap())
                .collect();
            assert!(expected.iter().all(|a| !a.is_empty()), "every spec alerts");
            let mut together = collect();
            // Out of order, and with an index that has no correlation.
            let got = together.finish_many(&[2, 0, 7, 1]);
            assert_eq!(got.len(), 4);
            let got: Vec<Vec<Alert>> = got.into_iter().map(Result::unwrap).collect();
            assert_eq!(got[0], expected[2]);
            assert_eq!(got[1], expected[0]);
            assert!(got[2].is_empty());
            assert_eq!(got[3], expected[1]);
            assert_eq!(together.spilled(), apart.spilled(), "budget {budget}");
            // Finished correlations take no more events.
            assert_eq!(together.finish(0).unwrap(), Vec::new());
        }
    }

    /// Naive reference for the windowed types: recompute each window.
    fn reference(s: &CorrelationSpec, events: &[Event]) -> Vec<Alert> {
        let mut sorted = events.to_vec();
        sorted.sort_by(cmp_events);
        let mut out = Vec::new();
        for group in sorted.chunk_by(|a, b| a.group == b.group) {
            let mut seen = HashSet::new();
            let group: Vec<&Event> = group
                .iter()
                .filter(|e| {
                    s.kind == CorrelationType::Temporal
                        || seen.insert((e.record, e.time_ms, e.tiebreak))
                })
                .collect();
            let mut armed_from = 0;
            for j in 0..group.len() {
                // The window is evaluated once per step: at its last event.
                if group
                    .get(j + 1)
                    .is_some_and(|n| n.time_ms == group[j].time_ms)
                {
                    continue;
                }
                let w: Vec<&Event> = group[armed_from..=j]
                    .iter()
                    .copied()
                    .filter(|e| group[j].time_ms - e.time_ms < s.timespan_ms)
                    .collect();
                let nums: Vec<f64> = w
                    .iter()
                    .filter_map(|e| numeric(e.value.as_deref()))
                    .collect();
                let value = match s.kind {
                    CorrelationType::EventCount => w.len() as f64,
                    CorrelationType::ValueCount => w
                        .iter()
                        .filter_map(|e| e.value.as_deref())
                        .collect::<HashSet<_>>()
                        .len() as f64,
                    CorrelationType::ValueSum => nums.iter().sum(),
                    CorrelationType::ValueAvg if nums.is_empty() => continue,
                    CorrelationType::ValueAvg => nums.iter().sum::<f64>() / nums.len() as f64,
                    _ => w.iter().map(|e| e.input).collect::<HashSet<_>>().len() as f64,
                };
                if s.ops.iter().all(|&(op, b)| op.holds(value, b)) {
                    out.push(Alert {
                        group: group[j].group.clone(),
                        start_ms: w[0].time_ms,
                        end_ms: group[j].time_ms,
                        value,
                        records: {
                            let mut seen = HashSet::new();
                            w.iter()
                                .map(|e| e.record)
                                .filter(|r| seen.insert(*r))
                                .collect()
                        },
                    });
                    armed_from = j + 1;
                }
            }
        }
        out.sort_by(cmp_alerts);
        out
    }

    /// Naive reference for temporal_ordered: at every step, recompute from
    /// scratch the latest start of an in-order chain per prefix length.
    /// Compares (group, start, end, value); records depend on tie choices.
    fn reference_ordered(
        s: &CorrelationSpec,
        events: &[Event],
    ) -> Vec<(Vec<String>, i64, i64, f64)> {
        let ops = if s.ops.is_empty() {
            vec![(CmpOp::Gte, s.inputs as f64)]
        } else {
            s.ops.clone()
        };
        let mut sorted = events.to_vec();
        sorted.sort_by(cmp_events);
        let mut out = Vec::new();
        for group in sorted.chunk_by(|a, b| a.group == b.group) {
            let key = |e: &Event| e.time_ms;
            let mut armed_from = 0;
            let mut i = 0;
            while i < group.len() {
                let now = key(&group[i]);
                while i < group.len() && key(&group[i]) == now {
                    i += 1;
                }
                let w: Vec<&Event> = group[armed_from..i]
                    .iter()
                    .filter(|e| now - e.time_ms < s.timespan_ms && e.input < s.inputs)
                    .collect();
                // start[x][st]: latest start time of a chain whose stage st is w[x].
                let mut start: Vec<Vec<Option<i64>>> = vec![vec![None; s.inputs]; w.len()];
                for x in 0..w.len() {
                    let st = w[x].input;
                    start[x][st] = if st == 0 {
                        Some(w[x].time_ms)
                    } else {
                        (0..x)
                            .filter(|&y| w[y].input == st - 1 && key(w[y]) < key(w[x]))
                            .filter_map(|y| start[y][st - 1])
                            .max()
                    };
                }
                let best = |st: usize| (0..w.len()).filter_map(|x| start[x][st]).max();
                let done = (0..s.inputs).take_while(|&st| best(st).is_some()).count();
                if ops.iter().all(|&(op, b)| op.holds(done as f64, b)) {
                    let start_ms = done.checked_sub(1).and_then(best).unwrap_or(now);
                    out.push((group[i - 1].group.clone(), start_ms, now, done as f64));
                    armed_from = i;
                }
            }
        }
        out.sort_by(|a, b| {
            (a.2, &a.0, a.1)
                .cmp(&(b.2, &b.0, b.1))
                .then(a.3.total_cmp(&b.3))
        });
        out
    }

    fn random_events(rng: &mut XorShift, inputs: u64) -> Vec<Event> {
        let n = rng.below(60);
        let mut events = Vec::new();
        for k in 0..n {
            let user = ["alice", "bob", "carol"][rng.below(3) as usize];
            // Coarse times force ties; tiebreak sometimes collides too.
            let time = HOUR_MARK + rng.below(40) as i64 * 7_500;
            let value = match rng.below(5) {
                0 => None,
                1 => Some("x".to_string()),
                v => Some((v * 3).to_string()),
            };
            let mut e = ev(k, time, user, rng.below(inputs) as usize, None);
            e.value = value;
            if rng.below(4) == 0 {
                e.tiebreak = 42;
            }
            events.push(e.clone());
            if rng.below(6) == 0 {
                // The same record again, for another referenced rule.
                e.input = rng.below(inputs) as usize;
                events.push(e);
            }
        }
        events
    }

    #[test]
    fn order_independence_property() {
        let mut rng = XorShift(0x5EED_1234_ABCD_0001);
        let kinds = [
            CorrelationType::EventCount,
            CorrelationType::ValueCount,
            CorrelationType::ValueSum,
            CorrelationType::ValueAvg,
            CorrelationType::Temporal,
            CorrelationType::TemporalOrdered,
        ];
        let conditions: [&[(CmpOp, f64)]; 4] = [
            &[(CmpOp::Gte, 3.0)],
            &[(CmpOp::Lt, 2.0)],
            &[(CmpOp::Gt, 1.0), (CmpOp::Lte, 6.0)],
            &[(CmpOp::Neq, 9.0)],
        ];
        let mut fired = 0;
        let mut chains = 0;
        for round in 0..300 {
            let inputs = 1 + rng.below(3);
            let events = random_events(&mut rng, inputs);
            let kind = kinds[round % kinds.len()];
            let ops = conditions[(round / kinds.len()) % conditions.len()];
            let s = spec(kind, 2 * MIN, ops, inputs as usize);
            let alerts = evaluate(&s, events.clone()).unwrap();
            fired += alerts.len();
            if kind == CorrelationType::TemporalOrdered {
                chains += alerts.iter().filter(|a| a.value >= 2.0).count();
            }
            let mut shuffled = events.clone();
            rng.shuffle(&mut shuffled);
            assert_eq!(evaluate(&s, shuffled).unwrap(), alerts, "round {round}");
            shuffled = events.clone();
            shuffled.reverse();
            assert_eq!(
                evaluate(&s, shuffled).unwrap(),
                alerts,
                "round {round} reversed"
            );
            // Spilling (a tiny budget: runs of one event or a few) must not
            // change anything either.
            for budget in [0, 400] {
                let mut c = Collector::new(vec![s.clone()], budget);
                let mut shuffled = events.clone();
                rng.shuffle(&mut shuffled);
                for e in shuffled {
                    c.push(0, e);
                }
                let alerts_spilled = c.finish(0).unwrap();
                if budget == 0 && events.len() > 1 {
                    assert!(
                        c.spilled().runs > 1,
                        "round {round}: budget {budget} spills"
                    );
                }
                assert_eq!(alerts_spilled, alerts, "round {round} spilled at {budget}");
            }
            // Events packed in batches, as `sigil scan`'s workers hand them
            // over, are the same events.
            let mut c = Collector::new(vec![s.clone()], u64::MAX);
            for chunk in events.chunks(7) {
                let mut batch = EventBatch::default();
                for e in chunk {
                    let value = e.value.as_deref().map(|v| [Cow::Borrowed(v)]);
                    let fields = EventFields {
                        correlation: 0,
                        time_ms: e.time_ms,
                        tiebreak: e.tiebreak,
                        input: e.input,
                        record: e.record,
                    };
                    batch.push(
                        fields,
                        e.group.iter().map(String::as_str),
                        value.as_ref().map(|v| &v[..]),
                    );
                }
                assert_eq!(batch.len(), chunk.len());
                c.push_batch(&batch);
            }
            assert_eq!(c.finish(0).unwrap(), alerts, "round {round} from batches");
            if kind == CorrelationType::TemporalOrdered {
                let summary: Vec<_> = alerts
                    .iter()
                    .map(|a| (a.group.clone(), a.start_ms, a.end_ms, a.value))
                    .collect();
                assert_eq!(
                    reference_ordered(&s, &events),
                    summary,
                    "round {round} reference"
                );
            } else {
                assert_eq!(reference(&s, &events), alerts, "round {round} reference");
            }
        }
        assert!(
            fired > 300,
            "the random cases must exercise alerts, got {fired}"
        );
        assert!(
            chains > 20,
            "temporal_ordered chains must occur, got {chains}"
        );
    }
}
