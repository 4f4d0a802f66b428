//! Lazy field extraction from one JSON record.
//!
//! One pass over the record's bytes tokenises (and so validates) all of it,
//! but decodes only the values at the paths some rule reads: the paths are
//! interned in a [`PathTrie`], and the walk descends only into keys on the
//! trie. Values keep their raw JSON text, so numbers compare by the text the
//! record wrote and objects by their compact text in record order — the
//! semantics every backend shares (docs/semantics.md). Arrays anywhere on a
//! path fan out: each element is a value of the path.

use std::borrow::Cow;

#[cfg(target_arch = "x86_64")]
use crate::bytes::Avx2;
use crate::bytes::{Portable, StringSearch};

#[cfg(target_arch = "x86_64")]
mod structural;

/// Deepest nesting a record may have.
pub const MAX_DEPTH: usize = 512;

/// Field paths, interned as a trie of keys.
#[derive(Debug, Clone, Default)]
pub struct PathTrie {
    nodes: Vec<TrieNode>,
    paths: usize,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    /// (tag of the key, the key, child node). Most keys of a record are on
    /// no rule's path: the tag turns almost every rejection into one
    /// integer comparison instead of a byte comparison per child.
    children: Vec<(u64, Box<[u8]>, usize)>,
    /// The children by a hash of their tags: a key is looked up with a
    /// multiplication and, almost always, one probe, however many children
    /// there are (a linear scan of the root's dozen, its exit unpredictable,
    /// cost more than the rest of the lookup).
    slots: TagSlots,
    terminal: Option<usize>,
}

/// An open-addressing table of a node's children by tag, at most a
/// quarter full: each slot is 0 or 1 + the index of the first child with
/// a tag, probed from `(tag * MULTIPLIER) >> shift` onwards.
#[derive(Debug, Clone)]
struct TagSlots {
    shift: u32,
    slots: Box<[u32]>,
}

impl Default for TagSlots {
    fn default() -> Self {
        TagSlots {
            shift: 60,
            slots: vec![0; 16].into_boxed_slice(),
        }
    }
}

impl TagSlots {
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

    fn build(children: &[(u64, Box<[u8]>, usize)]) -> TagSlots {
        let bits = (children.len() * 4)
            .next_power_of_two()
            .trailing_zeros()
            .max(4);
        let mut table = TagSlots {
            shift: 64 - bits,
            slots: vec![0; 1 << bits].into_boxed_slice(),
        };
        for (i, (tag, ..)) in children.iter().enumerate() {
            let mask = table.slots.len() - 1;
            let mut at = table.home(*tag);
            loop {
                match table.slots[at] {
                    0 => {
                        table.slots[at] = i as u32 + 1;
                        break;
                    }
                    // An earlier child has this tag: lookups find that one first.
                    s if children[s as usize - 1].0 == *tag => break,
                    _ => at = (at + 1) & mask,
                }
            }
        }
        table
    }

    #[inline(always)]
    fn home(&self, tag: u64) -> usize {
        (tag.wrapping_mul(Self::MULTIPLIER) >> self.shift) as usize
    }

    /// The index of the first child with tag `tag`.
    #[inline(always)]
    fn first(&self, tag: u64, children: &[(u64, Box<[u8]>, usize)]) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut at = self.home(tag);
        loop {
            let i = (*self.slots.get(at)? as usize).checked_sub(1)?;
            if children.get(i)?.0 == tag {
                return Some(i);
            }
            at = (at + 1) & mask;
        }
    }
}

/// The key's length and its first seven bytes, packed.
#[inline]
fn key_tag(key: &[u8]) -> u64 {
    let head = match key.first_chunk::<8>() {
        Some(first) => u64::from_le_bytes(*first),
        // Byte by byte: a copy of a variable length into an array that is
        // then read whole stalls on store forwarding, which once cost a
        // third of the walk.
        None => key
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    };
    (head & 0x00ff_ffff_ffff_ffff) | ((key.len().min(255) as u64) << 56)
}

/// Whether two keys with equal tags are equal: past the tag's seven bytes,
/// keys up to 23 bytes compare as one or two words (most CloudTrail keys
/// are 8–20 bytes; a call to `memcmp` for them cost more than the
/// comparison).
#[inline(always)]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    // Equal tags: the same first seven bytes, and the same length below 255.
    match a.len() {
        0..=7 => true,
        8..=15 => a.last_chunk::<8>() == b.last_chunk::<8>(),
        16..=23 => a.last_chunk::<16>() == b.last_chunk::<16>(),
        _ => a == b,
    }
}

impl PathTrie {
    /// An empty trie.
    pub fn new() -> Self {
        PathTrie {
            nodes: vec![TrieNode::default()],
            paths: 0,
        }
    }

    /// Interns a path given as its keys; returns its id.
    pub fn intern(&mut self, segments: &[String]) -> usize {
        let mut node = 0;
        for seg in segments {
            let key = seg.as_bytes();
            let next = self.child(node, key);
            node = match next {
                Some(n) => n,
                None => {
                    self.nodes.push(TrieNode::default());
                    let n = self.nodes.len() - 1;
                    let parent = &mut self.nodes[node];
                    parent.children.push((key_tag(key), key.into(), n));
                    parent.slots = TagSlots::build(&parent.children);
                    n
                }
            };
        }
        match self.nodes[node].terminal {
            Some(id) => id,
            None => {
                let id = self.paths;
                self.paths += 1;
                self.nodes[node].terminal = Some(id);
                id
            }
        }
    }

    /// Nodes, and the most keys any one node has (for the dispatch plan).
    pub fn shape(&self) -> (usize, usize) {
        let widest = self.nodes.iter().map(|n| n.children.len()).max();
        (self.nodes.len(), widest.unwrap_or(0))
    }

    /// Number of interned paths.
    pub fn len(&self) -> usize {
        self.paths
    }

    /// True when no path is interned.
    pub fn is_empty(&self) -> bool {
        self.paths == 0
    }

    // Inlined into both walks: a call per key cost 8 % of a scan.
    #[inline(always)]
    fn child(&self, node: usize, key: &[u8]) -> Option<usize> {
        let tag = key_tag(key);
        let node = self.nodes.get(node)?;
        let first = node.slots.first(tag, &node.children)?;
        let (_, k, n) = &node.children[first];
        if same_key(k, key) {
            return Some(*n);
        }
        // Keys that share a tag (same length, same first seven bytes).
        node.children[first + 1..]
            .iter()
            .find(|(t, k, _)| *t == tag && same_key(k, key))
            .map(|(_, _, n)| *n)
    }
}

/// A value found at a path, as a byte range of the record (so extraction
/// buffers can be reused across records without borrowing them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    /// A string: the bytes between the quotes, escapes not yet decoded.
    Str {
        /// Start of the content.
        start: u32,
        /// End of the content.
        end: u32,
        /// Whether it holds a backslash escape.
        escaped: bool,
    },
    /// A number as written.
    Num {
        /// Start.
        start: u32,
        /// End.
        end: u32,
    },
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object: its whole raw text.
    Obj {
        /// Start (`{`).
        start: u32,
        /// End (after `}`).
        end: u32,
    },
}

impl Val {
    /// The value's text for string matching: strings decoded, numbers and
    /// booleans as written, objects as compact JSON; `None` for null.
    pub fn text<'r>(&self, record: &'r [u8]) -> Option<Cow<'r, str>> {
        let slice = |s: u32, e: u32| record.get(s as usize..e as usize).unwrap_or(&[]);
        match *self {
            Val::Str {
                start,
                end,
                escaped: false,
            } => Some(utf8(slice(start, end))),
            Val::Str {
                start,
                end,
                escaped: true,
            } => Some(Cow::Owned(unescape(slice(start, end)))),
            Val::Num { start, end } => Some(utf8(slice(start, end))),
            Val::Bool(true) => Some(Cow::Borrowed("true")),
            Val::Bool(false) => Some(Cow::Borrowed("false")),
            Val::Null => None,
            Val::Obj { start, end } => Some(Cow::Owned(compact(slice(start, end)))),
        }
    }
}

impl Val {
    /// As [`Val::text`] for a record already known to be valid UTF-8: plain
    /// strings and numbers are slices of it, with no UTF-8 check per value.
    #[inline]
    pub fn text_in<'r>(&self, record: &'r str) -> Option<Cow<'r, str>> {
        match *self {
            Val::Str {
                start,
                end,
                escaped: false,
            }
            | Val::Num { start, end } => Some(Cow::Borrowed(
                record.get(start as usize..end as usize).unwrap_or(""),
            )),
            _ => self.text(record.as_bytes()),
        }
    }
}

/// Text of valid UTF-8 without copying; invalid sequences (which the record
/// reader reports as damage before they get here) become U+FFFD.
#[inline]
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset within the record.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Values per interned path, reused across records.
#[derive(Debug, Default)]
pub struct Extracted {
    /// `values[path id]`.
    pub values: Vec<Vec<Val>>,
    /// Every scalar leaf (for keywords), when requested.
    pub leaves: Vec<Val>,
    /// A string of the record holds a non-ASCII byte (set only when the
    /// record was not validated before): its UTF-8 must still be checked.
    pub non_ascii: bool,
    /// The walk's stack of open containers, kept for the next record.
    frames: Vec<Frame>,
    /// The record's structural index, kept for the next record.
    #[cfg(target_arch = "x86_64")]
    index: Vec<u32>,
}

impl Extracted {
    /// Clears for a trie with `paths` paths.
    pub fn reset(&mut self, paths: usize) {
        self.values.resize_with(paths, Vec::new);
        self.values.iter_mut().for_each(Vec::clear);
        self.leaves.clear();
        self.non_ascii = false;
    }
}

/// Walks `record`, filling `out` with the values at the trie's paths (and all
/// leaves when `leaves` is true). The record must be one JSON object.
pub fn extract(
    record: &[u8],
    trie: &PathTrie,
    leaves: bool,
    out: &mut Extracted,
) -> Result<(), JsonError> {
    extract_with(record, trie, leaves, false, out).map(drop)
}

/// As [`extract`]; with `validated` true the record is known to be valid JSON
/// (the record reader checked its grammar), so subtrees no rule reads are
/// skipped by bracket counting instead of being tokenised.
///
/// Returns the record as text when the walk proved it ASCII (it tokenised
/// every byte and no string held a byte ≥ 0x80), which spares the caller a
/// UTF-8 check; `None` leaves that check to the caller.
pub fn extract_with<'r>(
    record: &'r [u8],
    trie: &PathTrie,
    leaves: bool,
    validated: bool,
    out: &mut Extracted,
) -> Result<Option<&'r str>, JsonError> {
    if record.len() > u32::MAX as usize {
        return Err(JsonError {
            offset: 0,
            reason: "record larger than 4 GiB",
        });
    }
    out.reset(trie.len());
    #[cfg(target_arch = "x86_64")]
    if let Some(text) = extract_indexed(record, trie, leaves, validated, out) {
        return Ok(text);
    }
    extract_bytewise(record, trie, leaves, validated, out)
}

/// [`extract_with`] by the byte walk, which also says where a record that
/// is not valid breaks. `out` must be reset.
fn extract_bytewise<'r>(
    record: &'r [u8],
    trie: &PathTrie,
    leaves: bool,
    validated: bool,
    out: &mut Extracted,
) -> Result<Option<&'r str>, JsonError> {
    let mut w = Walker {
        b: record,
        pos: 0,
        trie,
        out,
        leaves,
        skip: validated && !leaves,
        seen: 0,
    };
    w.ws();
    if w.peek() != Some(b'{') {
        return Err(w.err("record is not a JSON object"));
    }
    w.run()?;
    w.ws();
    if w.pos != record.len() {
        return Err(w.err("trailing characters after the record"));
    }
    w.out.non_ascii = w.seen & 0x8080_8080_8080_8080 != 0;
    if w.skip || w.out.non_ascii {
        return Ok(None);
    }
    debug_assert!(record.is_ascii());
    // SAFETY: outside strings the walk accepts only ASCII bytes (whitespace,
    // punctuation, literals, digits), and `seen` holds every string byte the
    // walk passed over, none of them ≥ 0x80: the record is ASCII, so UTF-8.
    Ok(Some(unsafe { std::str::from_utf8_unchecked(record) }))
}

/// The walk over a structural index, where the CPU has what it needs:
/// `Some` with [`extract_with`]'s answer when the record is valid, `None`
/// (and `out` reset) when it is not, or is too long to index, so that the
/// byte walk decides, and reports the error.
#[cfg(target_arch = "x86_64")]
#[inline]
fn extract_indexed<'r>(
    record: &'r [u8],
    trie: &PathTrie,
    leaves: bool,
    validated: bool,
    out: &mut Extracted,
) -> Option<Option<&'r str>> {
    if record.len() > structural::INDEXED_MAX {
        return None;
    }
    let simd = structural::Simd::detect()?;
    let mut index = std::mem::take(&mut out.index);
    let skip = validated && !leaves;
    let summary = structural::index(record, &mut index, simd)
        .filter(|s| structural::walk(record, &index, trie, out, leaves, skip, s.backslash));
    out.index = index;
    let Some(summary) = summary else {
        out.reset(trie.len());
        return None;
    };
    out.non_ascii = summary.non_ascii;
    if out.non_ascii {
        return Some(None);
    }
    debug_assert!(record.is_ascii());
    // SAFETY: stage one looked at every byte of the record, and none is
    // ≥ 0x80: the record is ASCII, so UTF-8.
    Some(Some(unsafe { std::str::from_utf8_unchecked(record) }))
}

/// Where the object that opens at `b[0]` closes, found block by block as
/// stage one finds strings: its length and how many of its bytes are
/// `\n`. `None` when it does not close within `b`, nests deeper than
/// `max_depth`, or the CPU has no stage one. The object is not validated.
pub(crate) fn object_end(b: &[u8], max_depth: u64) -> Option<(usize, u64)> {
    if b.first() != Some(&b'{') {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    return structural::value_end(b, max_depth);
    #[cfg(not(target_arch = "x86_64"))]
    return {
        let _ = max_depth;
        None
    };
}

/// Checks that `record` is one well-formed JSON object, extracting nothing.
pub fn validate(record: &[u8]) -> Result<(), JsonError> {
    validate_using(record, &mut Extracted::default())
}

/// As [`validate`], walking with `scratch`'s buffers (its extracted values
/// are cleared), so that validating record after record allocates nothing.
pub fn validate_using(record: &[u8], scratch: &mut Extracted) -> Result<(), JsonError> {
    static EMPTY: std::sync::OnceLock<PathTrie> = std::sync::OnceLock::new();
    let trie = EMPTY.get_or_init(PathTrie::new);
    extract(record, trie, false, scratch)?;
    check_utf8(record, scratch.non_ascii)
}

/// The UTF-8 check of a record whose grammar a walk has just validated;
/// `non_ascii` is what the walk reported (an ASCII record needs no check).
pub fn check_utf8(record: &[u8], non_ascii: bool) -> Result<(), JsonError> {
    if !non_ascii {
        return Ok(());
    }
    record_text(record).map(drop)
}

/// The record as text, or where its UTF-8 breaks.
pub fn record_text(record: &[u8]) -> Result<&str, JsonError> {
    if crate::bytes::is_ascii(record) {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(record) });
    }
    std::str::from_utf8(record).map_err(|e| JsonError {
        offset: e.valid_up_to(),
        reason: "invalid UTF-8",
    })
}

/// JSON's whitespace.
#[inline(always)]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// Where a number's grammar that starts at `p` ends, or where it breaks.
#[inline(always)]
fn number_end(b: &[u8], mut p: usize) -> Result<usize, usize> {
    let digits = |p: &mut usize| {
        let s = *p;
        while let Some(b'0'..=b'9') = b.get(*p) {
            *p += 1;
        }
        *p > s
    };
    if b.get(p) == Some(&b'-') {
        p += 1;
    }
    if b.get(p) == Some(&b'0') {
        p += 1;
    } else if !digits(&mut p) {
        return Err(p);
    }
    if b.get(p) == Some(&b'.') {
        p += 1;
        if !digits(&mut p) {
            return Err(p);
        }
    }
    if let Some(b'e' | b'E') = b.get(p) {
        p += 1;
        if let Some(b'+' | b'-') = b.get(p) {
            p += 1;
        }
        if !digits(&mut p) {
            return Err(p);
        }
    }
    Ok(p)
}

/// How many bytes the escape whose backslash precedes `b[at]` takes after
/// the backslash, or why it is not JSON.
#[inline(always)]
fn escape_len(b: &[u8], at: usize) -> Result<usize, &'static str> {
    match b.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(1),
        Some(b'u') => {
            let hex = b.get(at + 1..at + 5).unwrap_or(&[]);
            if hex.len() == 4 && hex.iter().all(u8::is_ascii_hexdigit) {
                Ok(5)
            } else {
                Err("invalid \\u escape")
            }
        }
        _ => Err("invalid escape"),
    }
}

/// Keeps `v` as a value of the path that ends at trie node `node`, if any
/// path ends there.
#[inline(always)]
fn keep_value(trie: &PathTrie, out: &mut Extracted, node: Option<usize>, v: Val) {
    if let Some(id) = node
        .and_then(|n| trie.nodes.get(n))
        .and_then(|n| n.terminal)
    {
        if let Some(slot) = out.values.get_mut(id) {
            slot.push(v);
        }
    }
}

struct Walker<'a, 't, 'o> {
    b: &'a [u8],
    pos: usize,
    trie: &'t PathTrie,
    out: &'o mut Extracted,
    leaves: bool,
    /// Skip unread subtrees without tokenising (input already validated).
    skip: bool,
    /// The bytes of strings looked at, OR-ed (high bits: non-ASCII seen).
    seen: u64,
}

/// An open object or array during the walk: the trie node its values are
/// at (None when no rule reads below it).
#[derive(Debug, Clone, Copy)]
enum Frame {
    Object { node: Option<usize>, start: u32 },
    Array { node: Option<usize> },
}

/// What the walk expects next.
enum Expect {
    /// A value at this trie node.
    Value(Option<usize>),
    /// A key of the innermost object.
    Key,
    /// `,` or the close of the innermost container.
    After,
}

/// The walk compiled for AVX2, so that the string search inlines into it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn walk_avx2(w: &mut Walker<'_, '_, '_>, search: Avx2) -> Result<(), JsonError> {
    w.walk(search)
}

impl<'a> Walker<'a, '_, '_> {
    fn err(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn record(&mut self, node: Option<usize>, v: Val) {
        keep_value(self.trie, self.out, node, v);
    }

    /// Walks the record from its root object, which must be next: one loop
    /// with an explicit stack of open containers, so that the whole walk is
    /// one function the string search inlines into.
    fn run(&mut self) -> Result<(), JsonError> {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = Avx2::detect() {
            // SAFETY: `walk_avx2` needs AVX2, which `detect` found.
            return unsafe { walk_avx2(self, avx2) };
        }
        self.walk(Portable)
    }

    #[inline(always)]
    fn walk<S: StringSearch>(&mut self, search: S) -> Result<(), JsonError> {
        let mut stack = std::mem::take(&mut self.out.frames);
        stack.clear();
        let result = self.walk_with(search, &mut stack);
        self.out.frames = stack;
        result
    }

    #[inline(always)]
    fn walk_with<S: StringSearch>(
        &mut self,
        search: S,
        stack: &mut Vec<Frame>,
    ) -> Result<(), JsonError> {
        let mut next = Expect::Value(Some(0));
        loop {
            next = match next {
                Expect::Value(node) => self.value(search, node, stack)?,
                Expect::Key => {
                    let Some(&Frame::Object { node, .. }) = stack.last() else {
                        return Err(self.err("expected a key"));
                    };
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a key"));
                    }
                    let (raw, escaped) = self.string(search)?;
                    let child = match node {
                        Some(n) if escaped => self.trie.child(n, unescape(raw).as_bytes()),
                        Some(n) => self.trie.child(n, raw),
                        None => None,
                    };
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected `:`"));
                    }
                    self.pos += 1;
                    Expect::Value(child)
                }
                Expect::After => {
                    let Some(&top) = stack.last() else {
                        return Ok(());
                    };
                    self.ws();
                    match (top, self.peek()) {
                        (Frame::Object { .. }, Some(b',')) => {
                            self.pos += 1;
                            Expect::Key
                        }
                        (Frame::Array { node }, Some(b',')) => {
                            self.pos += 1;
                            // Elements sit at the same path: arrays fan out.
                            Expect::Value(node)
                        }
                        (Frame::Object { node, start }, Some(b'}')) => {
                            self.pos += 1;
                            stack.pop();
                            let v = Val::Obj {
                                start,
                                end: self.pos as u32,
                            };
                            self.record(node, v);
                            Expect::After
                        }
                        (Frame::Array { .. }, Some(b']')) => {
                            self.pos += 1;
                            stack.pop();
                            Expect::After
                        }
                        (Frame::Object { .. }, _) => return Err(self.err("expected `,` or `}`")),
                        (Frame::Array { .. }, _) => return Err(self.err("expected `,` or `]`")),
                    }
                }
            };
        }
    }

    /// One value at `node` (a trie node, or None when no rule reads below
    /// here): a scalar is read whole, a container is opened.
    #[inline(always)]
    fn value<S: StringSearch>(
        &mut self,
        search: S,
        node: Option<usize>,
        stack: &mut Vec<Frame>,
    ) -> Result<Expect, JsonError> {
        self.ws();
        let start = self.pos;
        match self.peek() {
            Some(open @ (b'{' | b'[')) => {
                // The root object is the first level, as the record reader counts.
                if stack.len() >= MAX_DEPTH {
                    return Err(self.err("nesting deeper than 512 levels"));
                }
                if node.is_none() && self.skip {
                    self.skip_container(search)?;
                    return Ok(Expect::After);
                }
                self.pos += 1;
                self.ws();
                if open == b'{' {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        let v = Val::Obj {
                            start: start as u32,
                            end: self.pos as u32,
                        };
                        self.record(node, v);
                        return Ok(Expect::After);
                    }
                    stack.push(Frame::Object {
                        node,
                        start: start as u32,
                    });
                    return Ok(Expect::Key);
                }
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Expect::After);
                }
                stack.push(Frame::Array { node });
                return Ok(Expect::Value(node));
            }
            Some(b'"') => {
                let (raw, escaped) = self.string(search)?;
                let end = self.pos - 1;
                let v = Val::Str {
                    start: (end - raw.len()) as u32,
                    end: end as u32,
                    escaped,
                };
                self.record(node, v);
                if self.leaves {
                    self.out.leaves.push(v);
                }
            }
            Some(b't') => self.literal(b"true", Val::Bool(true), node)?,
            Some(b'f') => self.literal(b"false", Val::Bool(false), node)?,
            Some(b'n') => self.literal(b"null", Val::Null, node)?,
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                let v = Val::Num {
                    start: start as u32,
                    end: self.pos as u32,
                };
                self.record(node, v);
                if self.leaves {
                    self.out.leaves.push(v);
                }
            }
            Some(_) => return Err(self.err("unexpected character")),
            None => return Err(self.err("unexpected end of record")),
        }
        Ok(Expect::After)
    }

    /// Skips a valid object or array: counts brackets outside strings.
    #[inline(always)]
    fn skip_container<S: StringSearch>(&mut self, search: S) -> Result<(), JsonError> {
        let mut depth = 0usize;
        while let Some(&c) = self.b.get(self.pos) {
            match c {
                b'"' => {
                    self.string(search)?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(self.err("unexpected end of record"))
    }

    #[inline(always)]
    fn literal(
        &mut self,
        word: &'static [u8],
        v: Val,
        node: Option<usize>,
    ) -> Result<(), JsonError> {
        if self.b.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(self.err("invalid literal"));
        }
        self.pos += word.len();
        self.record(node, v);
        if self.leaves && v != Val::Null {
            self.out.leaves.push(v);
        }
        Ok(())
    }

    #[inline(always)]
    fn number(&mut self) -> Result<(), JsonError> {
        match number_end(self.b, self.pos) {
            Ok(end) => {
                self.pos = end;
                Ok(())
            }
            Err(at) => {
                self.pos = at;
                Err(self.err("invalid number"))
            }
        }
    }

    /// At an opening quote: returns the raw content and whether it has escapes.
    #[inline(always)]
    fn string<S: StringSearch>(&mut self, search: S) -> Result<(&'a [u8], bool), JsonError> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let rest = self.b.get(self.pos..).unwrap_or(&[]);
            let i = search.find_special(rest, &mut self.seen);
            if i >= rest.len() {
                self.pos = self.b.len();
                return Err(self.err("unterminated string"));
            }
            self.pos += i;
            match rest[i] {
                b'"' => {
                    let raw = &self.b[start..self.pos];
                    self.pos += 1;
                    return Ok((raw, escaped));
                }
                b'\\' => {}
                _ => return Err(self.err("control character in string")),
            }
            escaped = true;
            match escape_len(self.b, self.pos + 1) {
                Ok(n) => self.pos += 1 + n,
                Err(reason) => return Err(self.err(reason)),
            }
        }
    }
}

/// Decodes JSON string escapes (input already validated by the walker).
pub fn unescape(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = raw.get(i + 1) else { break };
        i += 2;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let hex = |at: usize| -> Option<u32> {
            let h = std::str::from_utf8(raw.get(at..at + 4)?).ok()?;
            u32::from_str_radix(h, 16).ok()
        };
        let Some(unit) = hex(i) else { break };
        i += 4;
        let code = if (0xD800..0xDC00).contains(&unit)
            && raw.get(i) == Some(&b'\\')
            && raw.get(i + 1) == Some(&b'u')
        {
            match hex(i + 2) {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    i += 6;
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                }
                _ => unit,
            }
        } else {
            unit
        };
        let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Removes whitespace outside strings: the compact JSON text of a value, keys
/// in record order.
pub fn compact(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_str = false;
    let mut esc = false;
    for &c in raw {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
            out.push(c);
        } else if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(c);
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// The index walk's tests read real records; only x86-64 has that walk.
#[cfg(all(test, target_arch = "x86_64"))]
#[path = "../tests/support/real_records.rs"]
mod real_records;

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(paths: &[&str]) -> PathTrie {
        let mut t = PathTrie::new();
        for p in paths {
            t.intern(&p.split('.').map(str::to_string).collect::<Vec<_>>());
        }
        t
    }

    /// Lookups by tag slots find every key and nothing else, in nodes with
    /// keys that share a tag (same length, same first seven bytes), and
    /// with many keys.
    #[test]
    fn trie_lookups_by_tag_slots() {
        let mut wide: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        wide.extend(["abcdefgX1", "abcdefgY1", "abcdefgZ1"].map(String::from));
        // Keys of each length class `same_key` compares differently.
        let narrow: Vec<String> = [
            "eventName",
            "abcdefgX1",
            "abcdefgY1",
            "abcdefgX12",
            "requestParametersA",
            "requestParametersB",
            "Xequest",
            "requestParametersAndSomeMore1",
            "requestParametersAndSomeMore2",
        ]
        .map(String::from)
        .to_vec();
        // Enough keys for some to probe past their home slot.
        let crowded: Vec<String> = (0..200).map(|i| format!("key{i}")).collect();
        for keys in [wide, narrow, crowded] {
            let mut t = PathTrie::new();
            let ids: Vec<usize> = keys
                .iter()
                .map(|k| t.intern(&[k.clone(), "leaf".to_string()]))
                .collect();
            for (key, id) in keys.iter().zip(&ids) {
                let node = t.child(0, key.as_bytes()).expect(key);
                let leaf = t.child(node, b"leaf").expect(key);
                assert_eq!(t.nodes[leaf].terminal, Some(*id), "{key}");
            }
            for absent in [
                "abcdefgW1",
                "abcdefg",
                "eventNam",
                "k300",
                "",
                "leaf",
                "requestParametersC",
                "requestParametersAndSomeMore3",
            ] {
                assert_eq!(t.child(0, absent.as_bytes()), None, "{absent}");
            }
        }
    }

    #[test]
    fn extracts_nested_and_array_paths() {
        let rec = br#"{"a":{"b":"x\"y","n":36e2},"resources":[{"ARN":"r1"},{"ARN":"r2"},{"x":1}],"o":{"k": [1, 2]},"z":null}"#;
        let t = trie(&["a.b", "a.n", "resources.ARN", "o", "z", "missing"]);
        let mut out = Extracted::default();
        extract(rec, &t, false, &mut out).unwrap();
        assert_eq!(out.values[0][0].text(rec).unwrap(), "x\"y");
        assert_eq!(out.values[1][0].text(rec).unwrap(), "36e2");
        let arns: Vec<_> = out.values[2]
            .iter()
            .map(|v| v.text(rec).unwrap().into_owned())
            .collect();
        assert_eq!(arns, ["r1", "r2"]);
        assert_eq!(out.values[3][0].text(rec).unwrap(), r#"{"k":[1,2]}"#);
        assert_eq!(out.values[4], vec![Val::Null]);
        assert!(out.values[5].is_empty());
    }

    #[test]
    fn invalid_records_are_errors() {
        let t = trie(&["a"]);
        let mut out = Extracted::default();
        for bad in [
            &b"[1]"[..],
            b"{\"a\":tru}",
            b"{\"a\":1",
            b"{\"a\":\"x}",
            b"{\"a\":1} x",
            b"{\"a\":01x}",
            b"{\"a\":\"\\q\"}",
        ] {
            assert!(
                extract(bad, &t, false, &mut out).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(600), "]".repeat(600));
        assert!(extract(deep.as_bytes(), &t, false, &mut out).is_err());
    }

    #[test]
    fn unescape_handles_surrogates() {
        assert_eq!(unescape(br"\u00e9\ud83d\ude00\n"), "é😀\n");
    }

    /// The portable walk (for CPUs without AVX2) and the one this machine
    /// runs agree on every verdict, error position and extracted value.
    #[test]
    fn portable_walk_agrees_with_the_one_this_cpu_runs() {
        let t = trie(&["a", "a.b", "r.ARN", "s", "n", "o"]);
        let long = "x".repeat(100);
        let mut cases: Vec<Vec<u8>> = vec![
            format!(r#"{{"a":{{"b":"{long}"q"}},"r":[{{"ARN":"é{long}"}},{{"ARN":1}}],"s":"\u00e9","n":-1.5e3,"o":{{}}}}"#).into_bytes(),
            br#"{"a":[1,[2,{"b":null}]],"s":"tab	in"}"#.to_vec(),
            format!(r#"{{"s":"{long}\q"}}"#).into_bytes(),
            format!(r#"{{"s":"{long}"#).into_bytes(),
            br#"{"a":tru}"#.to_vec(),
            br#"{"a":{"b":1},"a":{"b":2}} "#.to_vec(),
        ];
        // Every prefix of the first record, and each byte replaced.
        let base = cases[0].clone();
        for n in 0..base.len() {
            cases.push(base[..n].to_vec());
            for b in [b'"', b'\\', b'{', b']', 0x01, 0xff] {
                let mut m = base.clone();
                m[n] = b;
                cases.push(m);
            }
        }
        for validated in [false, true] {
            for case in &cases {
                if validated && extract(case, &t, false, &mut Extracted::default()).is_err() {
                    continue;
                }
                let walk = |portable: bool| {
                    let mut out = Extracted::default();
                    out.reset(t.len());
                    let mut w = Walker {
                        b: case,
                        pos: 0,
                        trie: &t,
                        out: &mut out,
                        leaves: !validated,
                        skip: validated,
                        seen: 0,
                    };
                    let verdict = match portable {
                        true => w.walk(Portable),
                        false => w.run(),
                    };
                    // Both over-approximate differently past a string's end,
                    // which only matters for a record that is valid.
                    let non_ascii = verdict.is_ok() && w.seen & 0x8080_8080_8080_8080 != 0;
                    (verdict, w.pos, non_ascii, out.values, out.leaves)
                };
                assert_eq!(walk(true), walk(false), "{}", String::from_utf8_lossy(case));
            }
        }
    }

    /// The walk over a structural index and the byte walk agree on every
    /// record: the same verdict, and on a valid record the same values and
    /// leaves, with and without skipping, over real CloudTrail records (escapes,
    /// non-ASCII text, policy documents) and byte-level mutations of them.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn indexed_walk_agrees_with_the_byte_walk() {
        assert!(
            structural::Simd::detect().is_some(),
            "this test needs a CPU with AVX2 and CLMUL"
        );
        let mut records = super::real_records::real_records();
        assert!(records.len() > 50, "{} records", records.len());
        let long = "x".repeat(100);
        records.extend([
            format!(r#"{{"a":{{"b":"{long}\"q"}},"r":[{{"ARN":"é{long}"}},{{"ARN":1}}],"s":"\u00e9","n":-1.5e3,"o":{{}}}}"#).into_bytes(),
            br#" {"a":[1,[2,{"b":null}]],"s":"tab	in", "o" : { } , "n" : [ ] } "#.to_vec(),
            br#"{"a\u0062":{"b":"\\\"\\"},"\"":"\\\\","s":"\/\b\f\n\r\t\u12aF"}"#.to_vec(),
            br#"{}"#.to_vec(),
            b"{\"s\":\"".iter().chain(&[b'\\'; 70]).chain(b"\"}").copied().collect(),
        ]);
        let t = trie(&[
            "a",
            "a.b",
            "ab",
            "r.ARN",
            "s",
            "n",
            "o",
            "eventName",
            "userIdentity.type",
            "userIdentity.arn",
            "userIdentity.sessionContext.sessionIssuer.userName",
            "requestParameters",
            "requestParameters.policyDocument",
            "requestParameters.bucketName",
            "responseElements.credentials.accessKeyId",
            "resources.ARN",
            "errorCode",
            "tlsDetails",
        ]);
        let bytes = [
            b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b' ', b'\t', b'0', b'-', b'e', b'.',
            b'u', b'n', b't', b'f', b'/', 0x00, 0x1a, 0x1f, 0x80, 0xc3, 0xff,
        ];
        let mut cases = records.clone();
        cases.extend(super::real_records::mutants(
            &records,
            40_000,
            0x9e37_79b9_7f4a_7c15,
            &bytes,
            true,
        ));
        let (mut valid, mut invalid) = (0, 0);
        for case in &cases {
            // Skipping is for records known to be valid.
            let known_valid = {
                let mut scratch = Extracted::default();
                scratch.reset(t.len());
                extract_bytewise(case, &t, false, false, &mut scratch).is_ok()
            };
            for (leaves, validated) in [(false, false), (true, false), (false, true)] {
                if validated && !known_valid {
                    continue;
                }
                let mut expected = Extracted::default();
                expected.reset(t.len());
                let by_bytes = extract_bytewise(case, &t, leaves, validated, &mut expected);
                let mut got = Extracted::default();
                got.reset(t.len());
                let indexed = extract_indexed(case, &t, leaves, validated, &mut got);
                let text = String::from_utf8_lossy(case);
                match by_bytes {
                    Ok(_) => {
                        assert!(indexed.is_some(), "refused a valid record: {text}");
                        assert_eq!(got.values, expected.values, "{text}");
                        assert_eq!(got.leaves, expected.leaves, "{text}");
                        if !validated {
                            assert_eq!(got.non_ascii, expected.non_ascii, "{text}");
                        }
                        valid += 1;
                    }
                    Err(_) => {
                        assert!(indexed.is_none(), "accepted an invalid record: {text}");
                        invalid += 1;
                    }
                }
            }
        }
        assert!(valid > 20_000 && invalid > 20_000, "{valid} {invalid}");
    }
}

/// Picks a fixed set of fields out of records (for `--fields`, table columns).
#[derive(Debug, Clone)]
pub struct Projection {
    paths: Vec<String>,
    trie: PathTrie,
}

impl Projection {
    /// A projection of dotted paths.
    pub fn new(paths: &[String]) -> Self {
        let mut trie = PathTrie::new();
        for p in paths {
            let segments: Vec<String> = p.split('.').map(str::to_string).collect();
            trie.intern(&segments);
        }
        Projection {
            paths: paths.to_vec(),
            trie,
        }
    }

    /// The text of each path's first non-null value. `record` must be valid
    /// JSON — as every record the matcher has read is — so subtrees off the
    /// paths are skipped, not tokenised: this runs for every detection
    /// (table columns) and every correlation event.
    pub fn texts(&self, record: &[u8]) -> Vec<Option<String>> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Extracted> = std::cell::RefCell::default();
        }
        SCRATCH.with_borrow_mut(|ex| {
            if extract_with(record, &self.trie, false, true, ex).is_err() {
                return vec![None; self.paths.len()];
            }
            ex.values
                .iter()
                .map(|vals| {
                    vals.iter()
                        .find_map(|v| v.text(record).map(|t| t.into_owned()))
                })
                .collect()
        })
    }

    /// A compact JSON object `{"path": value, ...}` with each value's raw JSON
    /// (several values through arrays become a JSON array; absent paths are left out).
    pub fn json(&self, record: &[u8]) -> String {
        let mut ex = Extracted::default();
        let _ = extract(record, &self.trie, false, &mut ex);
        let mut out = String::from("{");
        let mut first = true;
        for (path, vals) in self.paths.iter().zip(&ex.values) {
            if vals.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(&escape_json(path));
            out.push_str("\":");
            let raw = |v: &Val| -> String {
                let slice = |s: u32, e: u32| record.get(s as usize..e as usize).unwrap_or(&[]);
                match *v {
                    Val::Str { start, end, .. } => {
                        format!("\"{}\"", String::from_utf8_lossy(slice(start, end)))
                    }
                    Val::Num { start, end } => {
                        String::from_utf8_lossy(slice(start, end)).into_owned()
                    }
                    Val::Bool(b) => b.to_string(),
                    Val::Null => "null".into(),
                    Val::Obj { start, end } => compact(slice(start, end)),
                }
            };
            if vals.len() == 1 {
                out.push_str(&raw(&vals[0]));
            } else {
                out.push('[');
                out.push_str(&vals.iter().map(raw).collect::<Vec<_>>().join(","));
                out.push(']');
            }
        }
        out.push('}');
        out
    }
}

/// Escapes text for a JSON string body.
pub fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
