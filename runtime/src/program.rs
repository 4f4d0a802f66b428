//! A matcher program built once per rule set from the IR: field paths
//! interned in one trie, regular expressions compiled, exact-value sets
//! hashed, and an Aho-Corasick prefilter over every rule's necessary literals.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use sigil_compiler::ir::{self, literals, Check, Expr, RuleInfo, StrKind, StrMatch};
use sigil_compiler::rule::{CmpOp, LogSource, Position, TimePart};

use crate::choice::{Chooser, Way};
use crate::json::{self, Extracted, JsonError, PathTrie, Val};
use crate::text;

/// Hashing for the sets built once from the rules and looked up with
/// record values (event names, `field: [many values]`). A lookup never
/// inserts, so record values cannot degrade these tables, and SipHash's
/// protection against crafted keys buys nothing here; it cost 1–2 % of a
/// scan. A multiply-rotate over words, as rustc's own tables use.
type RuleSetHash = std::hash::BuildHasherDefault<WordHasher>;

#[derive(Default)]
struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        // The tail byte by byte: a variable-length copy into a word would
        // stall on store forwarding.
        let tail = words.remainder();
        if !tail.is_empty() {
            self.add(
                tail.iter()
                    .rev()
                    .fold(0, |acc, &b| (acc << 8) | u64::from(b)),
            );
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Which rules run on the input, by logsource.
#[derive(Debug, Clone)]
pub struct InputLogSource {
    /// e.g. `aws`.
    pub product: Option<String>,
    /// e.g. `cloudtrail`.
    pub service: Option<String>,
    /// e.g. none for CloudTrail.
    pub category: Option<String>,
}

impl Default for InputLogSource {
    /// CloudTrail: `product: aws, service: cloudtrail`.
    fn default() -> Self {
        InputLogSource {
            product: Some("aws".into()),
            service: Some("cloudtrail".into()),
            category: None,
        }
    }
}

impl InputLogSource {
    /// A rule fits when every logsource field it sets equals the input's.
    pub fn fits(&self, rule: &LogSource) -> bool {
        let ok = |r: &Option<String>, mine: &Option<String>| match r {
            None => true,
            Some(v) => mine.as_deref() == Some(v.as_str()),
        };
        ok(&rule.product, &self.product)
            && ok(&rule.service, &self.service)
            && ok(&rule.category, &self.category)
    }
}

/// A rule that could not be built.
#[derive(Debug, Clone)]
pub struct BuildProblem {
    /// The rule's title.
    pub rule: String,
    /// Where it came from.
    pub origin: String,
    /// What went wrong.
    pub message: String,
}

/// The compiled rule set.
#[derive(Debug)]
pub struct Program {
    rules: Vec<CompiledRule>,
    trie: PathTrie,
    prefilter: Option<AhoCorasick>,
    /// Whether the prefilter must search overlapping matches.
    overlapping: bool,
    /// Rules to evaluate on every record (no necessary literal).
    always: Vec<usize>,
    /// Every rule not in the `eventName` table: what a parsed record is
    /// evaluated against besides the rules its parsed `eventName` selects.
    undispatched: Vec<usize>,
    /// For each prefilter pattern, the rules it admits.
    by_pattern: Vec<Vec<usize>>,
    patterns: Vec<String>,
    /// Rules that require `eventName` to be one of some values, by the
    /// lower-cased value: looked up from the raw record, no parsing.
    by_event_name: HashMap<String, Vec<usize>, RuleSetHash>,
    /// Every rule in `by_event_name`, for records where the raw lookup is
    /// not safe.
    dispatched: Vec<usize>,
    event_name_key: memchr::memmem::Finder<'static>,
    /// The trie path of `eventName`, when rules are dispatched on it.
    event_name_path: Option<usize>,
    /// Some rule searches keywords (so a walk may need every leaf).
    keywords_possible: bool,
    skipped_logsource: usize,
}

#[derive(Debug)]
struct CompiledRule {
    info: RuleInfo,
    ir_index: usize,
    standalone: bool,
    node: Node,
    keywords: bool,
}

#[derive(Debug)]
enum Node {
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Test {
        path: Option<usize>,
        check: Box<CCheck>,
        label: String,
    },
}

#[derive(Debug)]
enum CCheck {
    Null,
    Exists,
    Str(StrMatch),
    /// `contains`, its searcher built once rather than per value.
    Contains {
        finder: Box<memchr::memmem::Finder<'static>>,
        cased: bool,
    },
    StrIn {
        set: HashSet<String, RuleSetHash>,
        cased: bool,
    },
    Num {
        value: f64,
        text: String,
    },
    Bool(bool),
    Regex {
        re: regex::Regex,
        /// A literal every match contains: a text without it is rejected
        /// by a substring search, far cheaper than the regex (SigmaHQ's
        /// `.+:assumed-role/aws:.+` runs on most CloudTrail records).
        required: Option<Box<memchr::memmem::Finder<'static>>>,
    },
    Cidr {
        addr: std::net::IpAddr,
        prefix: u8,
    },
    Cmp {
        op: CmpOp,
        value: f64,
    },
    TimePart {
        part: TimePart,
        op: CmpOp,
        value: i64,
    },
    FieldRef {
        other: usize,
        position: Position,
        cased: bool,
    },
}

impl Program {
    /// Builds the program for the rules whose logsource fits the input.
    pub fn build(program: &ir::Program, input: &InputLogSource) -> (Program, Vec<BuildProblem>) {
        let mut trie = PathTrie::new();
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        let mut skipped = 0;
        let mut patterns: Vec<String> = Vec::new();
        let mut by_pattern: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut by_event_name: HashMap<String, Vec<usize>, RuleSetHash> = HashMap::default();
        let mut dispatched = Vec::new();
        for (ir_index, rule) in program.rules.iter().enumerate() {
            if !input.fits(&rule.logsource) {
                skipped += 1;
                continue;
            }
            let mut keywords = false;
            let node = match compile(&rule.expr, &mut trie, &mut keywords) {
                Ok(n) => n,
                Err(message) => {
                    problems.push(BuildProblem {
                        rule: rule.info.title.clone(),
                        origin: rule.info.origin.clone(),
                        message,
                    });
                    continue;
                }
            };
            let index = rules.len();
            if let Some(names) = event_names(&rule.expr) {
                for name in names {
                    let list = by_event_name.entry(name).or_default();
                    if !list.contains(&index) {
                        list.push(index);
                    }
                }
                dispatched.push(index);
            } else {
                match literals::required(&rule.expr) {
                    None => always.push(index),
                    Some(lits) => {
                        for lit in lits {
                            // Lowercase, as the prefilter searches (the
                            // IR gives them so; this keeps it true here).
                            let lit = lit.to_ascii_lowercase();
                            let id = match patterns.iter().position(|p| *p == lit) {
                                Some(id) => id,
                                None => {
                                    patterns.push(lit);
                                    by_pattern.push(Vec::new());
                                    patterns.len() - 1
                                }
                            };
                            if !by_pattern[id].contains(&index) {
                                by_pattern[id].push(index);
                            }
                        }
                    }
                }
            }
            rules.push(CompiledRule {
                info: rule.info.clone(),
                ir_index,
                standalone: rule.standalone,
                node,
                keywords,
            });
        }
        let overlapping = !overlap_free(&patterns);
        let prefilter = if patterns.is_empty() || !always.is_empty() {
            // With a rule to evaluate on every record, every record is
            // parsed anyway, and evaluating the prefiltered rules costs less
            // than scanning for their literals.
            always.extend(by_pattern.drain(..).flatten());
            always.sort_unstable();
            always.dedup();
            patterns.clear();
            None
        } else if overlapping {
            // Overlapping literals need an overlapping search (a full DFA,
            // the fastest automaton for it) so none hides another.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&patterns)
                .ok()
        } else {
            // No literal can overlap another, so a plain leftmost search
            // (which uses the SIMD prefilters) still reports every literal
            // that occurs.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostFirst)
                .build(&patterns)
                .ok()
        };
        if prefilter.is_none() && !patterns.is_empty() {
            // Could not build the automaton: evaluate those rules always.
            always.extend(by_pattern.drain(..).flatten());
            always.sort_unstable();
            always.dedup();
        }
        let mut undispatched: Vec<usize> = always
            .iter()
            .chain(by_pattern.iter().flatten())
            .copied()
            .collect();
        undispatched.sort_unstable();
        undispatched.dedup();
        let event_name_path =
            (!dispatched.is_empty()).then(|| trie.intern(&["eventName".to_string()]));
        let keywords_possible = rules.iter().any(|r: &CompiledRule| r.keywords);
        (
            Program {
                rules,
                trie,
                event_name_path,
                keywords_possible,
                prefilter,
                overlapping,
                always,
                undispatched,
                by_pattern,
                patterns,
                by_event_name,
                dispatched,
                event_name_key: memchr::memmem::Finder::new(b"\"eventName\"").into_owned(),
                skipped_logsource: skipped,
            },
            problems,
        )
    }

    /// How rules are dispatched: by `eventName` table, by literal prefilter,
    /// or evaluated on every record (for `sigil scan --plan`).
    pub fn plan(&self) -> String {
        let mut out = format!(
            "{} rules: {} dispatched by eventName ({} names), {} by literal prefilter ({} literals), {} on every record\n",
            self.rules.len(),
            self.dispatched.len(),
            self.by_event_name.len(),
            self.by_pattern.iter().flatten().collect::<HashSet<_>>().len(),
            self.by_pattern.len(),
            self.always.len()
        );
        let (nodes, widest) = self.trie.shape();
        out.push_str(&format!(
            "  {} field paths read, {} trie nodes, at most {} keys under one node\n",
            self.trie.len(),
            nodes,
            widest
        ));
        let mut lits: Vec<(usize, &Vec<usize>)> = self.by_pattern.iter().enumerate().collect();
        if self.overlapping {
            out.push_str("  (literals overlap: overlapping search)\n");
        }
        lits.sort_by_key(|(i, _)| *i);
        for (i, rules) in lits {
            let pattern = self
                .prefilter
                .as_ref()
                .map(|_| self.patterns.get(i).cloned().unwrap_or_default())
                .unwrap_or_default();
            let names: Vec<&str> = rules
                .iter()
                .map(|&r| self.rules[r].info.title.as_str())
                .collect();
            out.push_str(&format!("  literal {pattern:?}: {}\n", names.join("; ")));
        }
        for &r in &self.always {
            out.push_str(&format!("  every record: {}\n", self.rules[r].info.title));
        }
        out
    }

    /// Also extracts the dotted `path` from every record the matcher parses,
    /// so that a caller can read it after [`Matcher::matches`] reported a
    /// rule, without parsing the record again (correlation fields). Returns
    /// the id to give [`Matcher::first_text`].
    pub fn read_also(&mut self, path: &str) -> usize {
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        self.trie.intern(&segments)
    }

    /// Rules in the program.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Rules left out because their logsource does not fit the input.
    pub fn skipped_logsource(&self) -> usize {
        self.skipped_logsource
    }

    /// The IR index (into `ir::Program::rules`) of rule `i`.
    pub fn ir_index(&self, i: usize) -> usize {
        self.rules[i].ir_index
    }

    /// The rule for an IR index, if it is in the program.
    pub fn by_ir_index(&self, ir_index: usize) -> Option<usize> {
        self.rules.iter().position(|r| r.ir_index == ir_index)
    }

    /// Whether matches of rule `i` are reported on their own (not only fed
    /// to correlations).
    pub fn standalone(&self, i: usize) -> bool {
        self.rules[i].standalone
    }

    /// Metadata of rule `i`.
    pub fn info(&self, i: usize) -> &RuleInfo {
        &self.rules[i].info
    }

    /// Per-thread scratch space for matching.
    pub fn matcher(&self) -> Matcher<'_> {
        Matcher {
            program: self,
            extracted: Extracted::default(),
            candidate: vec![false; self.rules.len()],
            list: Vec::new(),
            validated: false,
            folds: RefCell::default(),
            choice: Chooser::default(),
            dispatch: Dispatch::Measured,
            folded: String::new(),
            lowered: Vec::new(),
        }
    }
}

/// Scratch buffers for matching records one at a time.
pub struct Matcher<'p> {
    program: &'p Program,
    extracted: Extracted,
    candidate: Vec<bool>,
    list: Vec<usize>,
    validated: bool,
    folds: RefCell<Folds>,
    /// Whether raw dispatch or parsing every record is cheaper on this input.
    choice: Chooser,
    dispatch: Dispatch,
    /// A parsed `eventName`, folded for the table lookup.
    folded: String,
    /// The record with ASCII letters lowered, for the literal prefilter.
    lowered: Vec<u8>,
}

/// How a matcher finds the rules a record is a candidate for, when no rule
/// must see every record. Both ways give the same verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Whichever of the two measures cheaper on the input (the default).
    Measured,
    /// From the raw record: the `eventName` table and the literal
    /// prefilter; a record with no candidate is not parsed for its fields.
    Raw,
    /// By parsing every record and looking its `eventName` up.
    Parsed,
}

impl Matcher<'_> {
    /// Declares that records given to [`Matcher::matches`] are already known
    /// to be valid JSON (the record reader checks every record's grammar),
    /// so fields no rule reads are skipped instead of tokenised.
    pub fn assume_valid_json(mut self) -> Self {
        self.validated = true;
        self
    }

    /// Fixes how candidate rules are found (for tests and measurements;
    /// the default measures which way is cheaper).
    pub fn dispatch(mut self, how: Dispatch) -> Self {
        self.dispatch = how;
        self
    }

    /// The indices of the rules `record` matches, ascending, into `out`.
    /// Returns the record as text when the matcher read it (whenever some
    /// rule was a candidate, so whenever `out` is not empty): its UTF-8 is
    /// checked, and the caller need not check it again.
    pub fn matches<'r>(
        &mut self,
        record: &'r [u8],
        out: &mut Vec<usize>,
    ) -> Result<Option<&'r str>, JsonError> {
        self.matches_as(record, self.validated, out)
    }

    /// As [`Matcher::matches`] for a record nothing has validated yet (a line
    /// the reader took whole): its UTF-8 and its whole grammar are checked in
    /// the same pass that extracts the fields.
    pub fn matches_unchecked<'r>(
        &mut self,
        record: &'r [u8],
        out: &mut Vec<usize>,
    ) -> Result<Option<&'r str>, JsonError> {
        self.matches_as(record, false, out)
    }

    fn matches_as<'r>(
        &mut self,
        record: &'r [u8],
        validated: bool,
        out: &mut Vec<usize>,
    ) -> Result<Option<&'r str>, JsonError> {
        out.clear();
        let p = self.program;
        if !p.always.is_empty() {
            // Every record is parsed for those rules anyway.
            let verdict = self.evaluate_parsed(record, validated, out).map(Some);
            return self.checked(verdict, out);
        }
        let (way, timed) = match self.dispatch {
            Dispatch::Measured => self.choice.next(),
            Dispatch::Raw => (Way::First, false),
            Dispatch::Parsed => (Way::Second, false),
        };
        let started = timed.then(Instant::now);
        let verdict = match way {
            Way::First => self.dispatch_raw(record, validated, out),
            Way::Second => self.evaluate_parsed(record, validated, out).map(Some),
        };
        if let Some(started) = started {
            self.choice.spent(started.elapsed());
        }
        self.checked(verdict, out)
    }

    /// Finds the candidate rules from the raw record (the `eventName` table
    /// and the literal prefilter) and parses the record only if there is
    /// one, or to validate it.
    fn dispatch_raw<'r>(
        &mut self,
        record: &'r [u8],
        validated: bool,
        out: &mut Vec<usize>,
    ) -> Result<Option<&'r str>, JsonError> {
        let p = self.program;
        self.list.clear();
        let bypass =
            (p.prefilter.is_some() || !p.dispatched.is_empty()) && bypass_prefilter(record);
        if bypass {
            self.list.extend(0..p.rules.len());
        } else {
            if !p.dispatched.is_empty() {
                match raw_event_name(record, &p.event_name_key) {
                    RawEventName::Absent => {}
                    RawEventName::Value(name) => {
                        if let Some(rules) = p.by_event_name.get(text::fold(name).as_ref()) {
                            self.list.extend_from_slice(rules);
                        }
                    }
                    RawEventName::Unsure => self.list.extend_from_slice(&p.dispatched),
                }
            }
            if let Some(ac) = &p.prefilter {
                // The literals are ASCII and lowercase: searching them in
                // the record with ASCII letters lowered finds what an
                // ASCII-case-insensitive search would, but with the SIMD
                // searchers (a case-insensitive automaton fell back to a
                // rare-byte scan that cost more than parsing the record).
                self.lowered.clear();
                self.lowered.extend_from_slice(record);
                self.lowered.make_ascii_lowercase();
                let (candidate, list) = (&mut self.candidate, &mut self.list);
                let mut admit = |pattern: usize| {
                    for &r in &p.by_pattern[pattern] {
                        if !candidate[r] {
                            candidate[r] = true;
                            list.push(r);
                        }
                    }
                };
                if p.overlapping {
                    ac.find_overlapping_iter(&self.lowered)
                        .for_each(|m| admit(m.pattern().as_usize()));
                } else {
                    ac.find_iter(&self.lowered)
                        .for_each(|m| admit(m.pattern().as_usize()));
                }
                for &r in &self.list {
                    self.candidate[r] = false;
                }
            }
        }
        if self.list.is_empty() {
            if !validated {
                json::validate_using(record, &mut self.extracted)?;
            }
            return Ok(None);
        }
        self.evaluate(record, validated, out).map(Some)
    }

    /// Voids the verdicts on a damaged record.
    fn checked<T>(
        &self,
        verdict: Result<T, JsonError>,
        out: &mut Vec<usize>,
    ) -> Result<T, JsonError> {
        if verdict.is_err() {
            // Verdicts on a damaged record are void.
            out.clear();
        }
        verdict
    }

    /// Extracts the record's fields and evaluates the candidate rules;
    /// returns the record's text.
    fn evaluate<'r>(
        &mut self,
        record: &'r [u8],
        validated: bool,
        out: &mut Vec<usize>,
    ) -> Result<&'r str, JsonError> {
        let p = self.program;
        self.list.sort_unstable();
        self.list.dedup();
        let leaves = self.list.iter().any(|&r| p.rules[r].keywords);
        let ascii = json::extract_with(record, &p.trie, leaves, validated, &mut self.extracted)?;
        let text = text_of(record, ascii)?;
        self.evaluate_extracted(text, ascii.is_some(), out);
        Ok(text)
    }

    /// Evaluates the candidate rules over the fields already extracted from
    /// `record`, whose UTF-8 is checked (so values are plain slices of it).
    /// `ascii`: the walk found the record ASCII, so each value is.
    fn evaluate_extracted(&mut self, record: &str, ascii: bool, out: &mut Vec<usize>) {
        let p = self.program;
        self.folds.get_mut().reset(&self.extracted);
        let ctx = Ctx {
            record,
            ascii,
            ex: &self.extracted,
            folds: &self.folds,
        };
        for &r in &self.list {
            if eval(&p.rules[r].node, &ctx, &mut None) {
                out.push(r);
            }
        }
    }

    /// Parses the record and evaluates every rule not dispatched by
    /// `eventName`, and the rules its parsed `eventName` selects (when some
    /// rule runs on every record, or when this is cheaper than raw
    /// dispatch: every record is parsed anyway, and the parsed value spares
    /// searching the raw record for the key).
    fn evaluate_parsed<'r>(
        &mut self,
        record: &'r [u8],
        validated: bool,
        out: &mut Vec<usize>,
    ) -> Result<&'r str, JsonError> {
        let p = self.program;
        let ascii = json::extract_with(
            record,
            &p.trie,
            p.keywords_possible,
            validated,
            &mut self.extracted,
        )?;
        let text = text_of(record, ascii)?;
        self.list.clear();
        self.list.extend_from_slice(&p.undispatched);
        let names = p
            .event_name_path
            .and_then(|id| self.extracted.values.get(id));
        for v in names.into_iter().flatten() {
            let Some(name) = v.text_in(text) else {
                continue;
            };
            self.folded.clear();
            text::fold_into(&name, &mut self.folded);
            if let Some(rules) = p.by_event_name.get(self.folded.as_str()) {
                self.list.extend_from_slice(rules);
            }
        }
        self.list.sort_unstable();
        self.list.dedup();
        self.evaluate_extracted(text, ascii.is_some(), out);
        Ok(text)
    }

    /// After [`Matcher::matches`] reported at least one rule for `record`
    /// (so the record was parsed): the text of the first non-null value at
    /// path `id` (from [`Program::read_also`]).
    /// `record` is the record's text ([`json::record_text`]), so that values
    /// are slices of it with no UTF-8 check each.
    pub fn first_text<'r>(&self, record: &'r str, id: usize) -> Option<Cow<'r, str>> {
        self.extracted
            .values
            .get(id)?
            .iter()
            .find_map(|v| v.text_in(record))
    }

    /// Evaluates one rule and explains the verdict: which tests held and
    /// which failed, on what values.
    pub fn explain(
        &mut self,
        record: &[u8],
        rule: usize,
    ) -> Result<(bool, Vec<String>), JsonError> {
        let p = self.program;
        json::extract(record, &p.trie, true, &mut self.extracted)?;
        let record = json::record_text(record)?;
        self.folds.get_mut().reset(&self.extracted);
        let ctx = Ctx {
            record,
            ascii: false,
            ex: &self.extracted,
            folds: &self.folds,
        };
        let mut trace = Some(Vec::new());
        let Some(r) = p.rules.get(rule) else {
            return Ok((false, Vec::new()));
        };
        let verdict = eval(&r.node, &ctx, &mut trace);
        Ok((verdict, trace.unwrap_or_default()))
    }
}

/// The record's text: as the walk proved it ASCII, or checked for UTF-8.
fn text_of<'r>(record: &'r [u8], ascii: Option<&'r str>) -> Result<&'r str, JsonError> {
    ascii.map_or_else(|| json::record_text(record), Ok)
}

/// True when no literal can overlap another in a text (no literal contains
/// another, no suffix of one is a prefix of another): then a non-overlapping
/// search finds at least one occurrence of every literal that occurs.
fn overlap_free(patterns: &[String]) -> bool {
    for (i, a) in patterns.iter().enumerate() {
        for (j, b) in patterns.iter().enumerate() {
            if i == j {
                continue;
            }
            if a.contains(b.as_str()) {
                return false;
            }
            let max = a.len().min(b.len());
            if (1..max).any(|k| a.as_bytes()[a.len() - k..] == b.as_bytes()[..k]) {
                return false;
            }
        }
    }
    true
}

enum RawEventName<'r> {
    Absent,
    Value(&'r str),
    Unsure,
}

/// Reads the `eventName` string straight from the raw record. Safe only when
/// the key occurs exactly once: then, if the record has a top-level
/// `eventName`, this is it; if it has none, no dispatched rule can match
/// anyway. Anything unusual (a second occurrence, a non-string or escaped
/// value) answers `Unsure`, and every dispatched rule is evaluated.
fn raw_event_name<'r>(record: &'r [u8], key: &memchr::memmem::Finder<'_>) -> RawEventName<'r> {
    let Some(at) = key.find(record) else {
        return RawEventName::Absent;
    };
    let after = at + key.needle().len();
    if key.find(&record[after..]).is_some() {
        return RawEventName::Unsure;
    }
    let mut i = after;
    let skip_ws = |i: &mut usize| {
        while matches!(record.get(*i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if record.get(i) != Some(&b':') {
        // The text was a value, not a key: no key `eventName` exists.
        return RawEventName::Unsure;
    }
    i += 1;
    skip_ws(&mut i);
    if record.get(i) != Some(&b'"') {
        return RawEventName::Unsure;
    }
    let start = i + 1;
    let Some(len) = memchr::memchr2(b'"', b'\\', &record[start..]) else {
        return RawEventName::Unsure;
    };
    if record[start + len] != b'"' {
        return RawEventName::Unsure;
    }
    match std::str::from_utf8(&record[start..start + len]) {
        Ok(v) => RawEventName::Value(v),
        Err(_) => RawEventName::Unsure,
    }
}

/// The `eventName` values a rule requires (case-insensitively), when its
/// condition makes one of them necessary.
fn event_names(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Pred(ir::Pred {
            field: Some(f),
            check,
        }) if f.as_str() == "eventName" => match check {
            Check::Str(StrMatch {
                kind: ir::StrKind::Exact(v),
                cased: false,
            }) => Some(vec![v.clone()]),
            Check::StrIn {
                values,
                cased: false,
            } => Some(values.clone()),
            _ => None,
        },
        Expr::And(items) => items.iter().find_map(event_names),
        Expr::Or(items) => {
            let mut all = Vec::new();
            for i in items {
                all.extend(event_names(i)?);
            }
            Some(all)
        }
        _ => None,
    }
}

/// Records whose raw text may spell a literal differently from its decoded
/// value (escaped ordinary characters, or characters whose lowercase is
/// ASCII: KELVIN SIGN, LATIN CAPITAL I WITH DOT) skip the prefilter.
fn bypass_prefilter(record: &[u8]) -> bool {
    let mut finder = memchr::memchr3_iter(b'\\', 0xE2, 0xC4, record);
    finder.any(|i| {
        matches!(
            (record[i], record.get(i + 1), record.get(i + 2)),
            (b'\\', Some(b'u' | b'/'), _) | (0xE2, Some(0x84), Some(0xAA)) | (0xC4, Some(0xB0), _)
        )
    })
}

fn compile(expr: &Expr, trie: &mut PathTrie, keywords: &mut bool) -> Result<Node, String> {
    Ok(match expr {
        Expr::Const(b) => Node::Const(*b),
        Expr::And(items) => Node::And(
            items
                .iter()
                .map(|i| compile(i, trie, keywords))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(items) => Node::Or(
            items
                .iter()
                .map(|i| compile(i, trie, keywords))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Node::Not(Box::new(compile(inner, trie, keywords)?)),
        Expr::Pred(pred) => {
            let path = match &pred.field {
                Some(f) => Some(trie.intern(f.segments())),
                None => {
                    *keywords = true;
                    None
                }
            };
            let check = match &pred.check {
                Check::Null => CCheck::Null,
                Check::Exists => CCheck::Exists,
                Check::Str(StrMatch {
                    kind: StrKind::Contains(needle),
                    cased,
                }) => CCheck::Contains {
                    finder: Box::new(memchr::memmem::Finder::new(needle.as_bytes()).into_owned()),
                    cased: *cased,
                },
                Check::Str(m) => CCheck::Str(m.clone()),
                Check::StrIn { values, cased } => CCheck::StrIn {
                    set: values.iter().cloned().collect(),
                    cased: *cased,
                },
                Check::Num { value, text } => CCheck::Num {
                    value: *value,
                    text: text.clone(),
                },
                Check::Bool(b) => CCheck::Bool(*b),
                Check::Regex { pattern, flags } => CCheck::Regex {
                    re: regex::RegexBuilder::new(pattern)
                        .case_insensitive(flags.ignore_case)
                        .multi_line(flags.multiline)
                        .dot_matches_new_line(flags.dot_all)
                        .size_limit(1 << 24)
                        .build()
                        .map_err(|e| {
                            format!("regular expression `{pattern}` cannot be compiled: {e}")
                        })?,
                    required: crate::regex_literal::required(pattern, flags)
                        .map(|lit| Box::new(memchr::memmem::Finder::new(&lit).into_owned())),
                },
                Check::Cidr { addr, prefix } => CCheck::Cidr {
                    addr: *addr,
                    prefix: *prefix,
                },
                Check::Cmp { op, value } => CCheck::Cmp {
                    op: *op,
                    value: *value,
                },
                Check::TimePart { part, op, value } => CCheck::TimePart {
                    part: *part,
                    op: *op,
                    value: *value,
                },
                Check::FieldRef {
                    other,
                    position,
                    cased,
                } => CCheck::FieldRef {
                    other: trie.intern(other.segments()),
                    position: *position,
                    cased: *cased,
                },
            };
            let label = match &pred.field {
                Some(f) => format!("{f} {}", describe(&pred.check)),
                None => format!("keyword {}", describe(&pred.check)),
            };
            Node::Test {
                path,
                check: Box::new(check),
                label,
            }
        }
    })
}

fn describe(check: &Check) -> String {
    match check {
        Check::Null => "is null/absent".into(),
        Check::Exists => "exists".into(),
        Check::Str(m) => {
            let (what, s) = match &m.kind {
                ir::StrKind::Exact(s) => ("equals", s.clone()),
                ir::StrKind::Prefix(s) => ("starts with", s.clone()),
                ir::StrKind::Suffix(s) => ("ends with", s.clone()),
                ir::StrKind::Contains(s) => ("contains", s.clone()),
                ir::StrKind::Glob(p) => ("matches", format!("{p:?}")),
            };
            format!("{what} {s:?}{}", if m.cased { " (cased)" } else { "" })
        }
        Check::StrIn { values, .. } => format!("is one of {values:?}"),
        Check::Num { text, .. } => format!("equals {text}"),
        Check::Bool(b) => format!("equals {b}"),
        Check::Regex { pattern, .. } => format!("matches /{pattern}/"),
        Check::Cidr { addr, prefix } => format!("in {addr}/{prefix}"),
        Check::Cmp { op, value } => format!("{} {value}", op.symbol()),
        Check::TimePart { part, op, value } => format!("{part:?} {} {value}", op.symbol()),
        Check::FieldRef { other, .. } => format!("relates to field {other}"),
    }
}

struct Ctx<'r> {
    record: &'r str,
    /// The record is ASCII, so every slice of it is (an escaped string
    /// decodes to an owned text, which this says nothing about).
    ascii: bool,
    ex: &'r Extracted,
    folds: &'r RefCell<Folds>,
}

/// The case-folded text of each extracted value, computed on first use: a
/// record's `eventSource` or `userAgent` is tested by many rules, and folding
/// it once spares an allocation and a UTF-8 check per test.
#[derive(Default)]
struct Folds {
    /// `slots[path][value]`: where the folded text is in `arena`; a path's
    /// list is filled on its first fold in a record.
    slots: Vec<Vec<Fold>>,
    /// Paths whose list was filled for this record: only those are cleared
    /// for the next (a record has dozens of paths; a few are folded).
    filled: Vec<usize>,
    arena: String,
}

#[derive(Clone, Copy)]
enum Fold {
    Unknown,
    Null,
    At(u32, u32),
}

impl Folds {
    fn reset(&mut self, ex: &Extracted) {
        self.arena.clear();
        for p in self.filled.drain(..) {
            if let Some(slot) = self.slots.get_mut(p) {
                slot.clear();
            }
        }
        if self.slots.len() != ex.values.len() {
            self.slots.resize_with(ex.values.len(), Vec::new);
        }
    }
}

impl Ctx<'_> {
    /// Does `f` hold for the folded text of value `i` at `path`? False for null.
    fn with_folded(&self, path: usize, i: usize, v: &Val, f: impl FnOnce(&str) -> bool) -> bool {
        let mut folds = self.folds.borrow_mut();
        let Folds {
            slots,
            filled,
            arena,
        } = &mut *folds;
        let values = self.ex.values.get(path).map_or(0, Vec::len);
        let Some(list) = slots.get_mut(path) else {
            return v.text_in(self.record).is_some_and(|t| f(&text::fold(&t)));
        };
        if list.is_empty() && values > 0 {
            list.resize(values, Fold::Unknown);
            filled.push(path);
        }
        let Some(slot) = list.get_mut(i) else {
            return v.text_in(self.record).is_some_and(|t| f(&text::fold(&t)));
        };
        if let Fold::Unknown = slot {
            *slot = match v.text_in(self.record) {
                None => Fold::Null,
                Some(t) => {
                    let start = arena.len();
                    text::fold_into(&t, arena);
                    Fold::At(start as u32, arena.len() as u32)
                }
            };
        }
        match *slot {
            Fold::At(s, e) => f(&arena[s as usize..e as usize]),
            _ => false,
        }
    }

    /// As [`Ctx::any_folded`], but a value whose text is ASCII is tested by
    /// `ascii` on its text as it is, when `ascii` can decide without folding
    /// (ASCII text folds exactly as `eq_ignore_ascii_case` compares): most
    /// values, and folding them meant a copy each.
    fn any_text_ci(
        &self,
        path: Option<usize>,
        values: &[Val],
        folded: impl Fn(&str) -> bool,
        ascii: impl Fn(&str) -> Option<bool>,
    ) -> bool {
        values.iter().enumerate().any(|(i, v)| {
            if let Some(Cow::Borrowed(t)) = v.text_in(self.record) {
                if let Some(verdict) = (self.ascii || t.is_ascii()).then(|| ascii(t)).flatten() {
                    return verdict;
                }
            }
            match path {
                Some(p) => self.with_folded(p, i, v, &folded),
                None => v
                    .text_in(self.record)
                    .is_some_and(|t| folded(&text::fold(&t))),
            }
        })
    }

    /// Does `f` hold for the folded text of some value at `path`?
    fn any_folded(&self, path: Option<usize>, values: &[Val], f: impl Fn(&str) -> bool) -> bool {
        match path {
            Some(p) => values
                .iter()
                .enumerate()
                .any(|(i, v)| self.with_folded(p, i, v, &f)),
            None => values
                .iter()
                .any(|v| v.text_in(self.record).is_some_and(|t| f(&text::fold(&t)))),
        }
    }

    fn values(&self, path: Option<usize>) -> &[Val] {
        match path {
            Some(p) => self.ex.values.get(p).map(Vec::as_slice).unwrap_or(&[]),
            None => &self.ex.leaves,
        }
    }
}

fn eval(node: &Node, ctx: &Ctx<'_>, trace: &mut Option<Vec<String>>) -> bool {
    match node {
        Node::Const(b) => *b,
        #[allow(clippy::unnecessary_fold)] // explaining evaluates every operand
        Node::And(items) => {
            if trace.is_some() {
                // Explain every operand, not just up to the first failure.
                items.iter().fold(true, |acc, i| eval(i, ctx, trace) && acc)
            } else {
                items.iter().all(|i| eval(i, ctx, trace))
            }
        }
        #[allow(clippy::unnecessary_fold)]
        Node::Or(items) => {
            if trace.is_some() {
                items
                    .iter()
                    .fold(false, |acc, i| eval(i, ctx, trace) || acc)
            } else {
                items.iter().any(|i| eval(i, ctx, trace))
            }
        }
        Node::Not(inner) => !eval(inner, ctx, trace),
        Node::Test { path, check, label } => {
            let values = ctx.values(*path);
            let verdict = test(check, *path, values, ctx);
            if let Some(t) = trace {
                let shown: Vec<String> = values
                    .iter()
                    .take(5)
                    .map(|v| {
                        v.text_in(ctx.record)
                            .map(|s| format!("{s:?}"))
                            .unwrap_or_else(|| "null".into())
                    })
                    .collect();
                let seen = if path.is_none() {
                    format!("{} leaves", values.len())
                } else if shown.is_empty() {
                    "field absent".to_string()
                } else {
                    format!("value {}", shown.join(", "))
                };
                t.push(format!(
                    "{} {label}  ({seen})",
                    if verdict { "held: " } else { "failed:" }
                ));
            }
            verdict
        }
    }
}

fn test(check: &CCheck, path: Option<usize>, values: &[Val], ctx: &Ctx<'_>) -> bool {
    let record = ctx.record;
    match check {
        CCheck::Null => values.iter().all(|v| *v == Val::Null),
        CCheck::Exists => values.iter().any(|v| *v != Val::Null),
        CCheck::Str(m) if !m.cased && !matches!(m.kind, StrKind::Glob(_)) => ctx.any_text_ci(
            path,
            values,
            |t| text::str_match(m, t),
            |t| text::ascii_str_match(m, t),
        ),
        CCheck::StrIn { set, cased: false } => ctx.any_folded(path, values, |t| set.contains(t)),
        CCheck::Contains {
            finder,
            cased: false,
        } => ctx.any_folded(path, values, |t| finder.find(t.as_bytes()).is_some()),
        CCheck::Contains {
            finder,
            cased: true,
        } => values.iter().any(|v| {
            v.text_in(record)
                .is_some_and(|t| finder.find(t.as_bytes()).is_some())
        }),
        CCheck::Str(m) => values.iter().any(|v| {
            let Some(t) = v.text_in(record) else {
                return false;
            };
            text::matches(m, &t)
        }),
        CCheck::StrIn { set, cased } => values.iter().any(|v| {
            let Some(t) = v.text_in(record) else {
                return false;
            };
            if *cased {
                set.contains(t.as_ref())
            } else {
                set.contains(text::fold(&t).as_ref())
            }
        }),
        CCheck::Num {
            value,
            text: rule_text,
        } => values.iter().any(|v| match v {
            Val::Num { .. } | Val::Str { .. } => v.text_in(record).is_some_and(|t| {
                t.as_ref() == rule_text.as_str() || text::numbers_equal(&t, rule_text, *value)
            }),
            _ => false,
        }),
        CCheck::Bool(b) => values.iter().any(|v| match v {
            Val::Bool(x) => x == b,
            Val::Str { .. } => v
                .text_in(record)
                .is_some_and(|t| t.eq_ignore_ascii_case(if *b { "true" } else { "false" })),
            _ => false,
        }),
        CCheck::Regex { re, required } => values.iter().any(|v| {
            v.text_in(record).is_some_and(|t| {
                required
                    .as_ref()
                    .is_none_or(|lit| lit.find(t.as_bytes()).is_some())
                    && re.is_match(&t)
            })
        }),
        CCheck::Cidr { addr, prefix } => values.iter().any(|v| {
            matches!(v, Val::Str { .. })
                && v.text_in(record)
                    .is_some_and(|t| text::in_network(&t, *addr, *prefix))
        }),
        CCheck::Cmp { op, value } => values.iter().any(|v| {
            matches!(v, Val::Num { .. } | Val::Str { .. })
                && v.text_in(record)
                    .is_some_and(|t| text::compare_text(*op, &t, *value))
        }),
        CCheck::TimePart { part, op, value } => values.iter().any(|v| {
            matches!(v, Val::Str { .. })
                && v.text_in(record)
                    .and_then(|t| text::time_part(&t, *part))
                    .is_some_and(|n| op.holds(n as f64, *value as f64))
        }),
        CCheck::FieldRef {
            other,
            position,
            cased,
        } => {
            let others = ctx.values(Some(*other));
            values.iter().any(|v| {
                let Some(a) = v.text_in(record) else {
                    return false;
                };
                let a = if *cased {
                    a
                } else {
                    std::borrow::Cow::Owned(text::fold(&a).into_owned())
                };
                others.iter().any(|o| {
                    let Some(b) = o.text_in(record) else {
                        return false;
                    };
                    let b = if *cased {
                        b
                    } else {
                        std::borrow::Cow::Owned(text::fold(&b).into_owned())
                    };
                    match position {
                        Position::Equals => a == b,
                        Position::Contains => a.contains(b.as_ref()),
                        Position::StartsWith => a.starts_with(b.as_ref()),
                        Position::EndsWith => a.ends_with(b.as_ref()),
                    }
                })
            })
        }
    }
}
