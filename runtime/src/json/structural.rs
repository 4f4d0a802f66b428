//! The field walk over a structural index (simdjson's two stages).
//!
//! Stage one classifies 64 bytes at a time with AVX2: it finds the quotes
//! that open and close strings (escapes resolved with carry arithmetic, the
//! inside of strings with a carry-less multiply), rejects control bytes
//! inside strings and bad escapes, and writes the positions of the bytes
//! the grammar turns on — brackets, `:` and `,` outside strings, the quote
//! that opens each string and the first byte of every other scalar. Stage
//! two walks those positions with the trie, as the byte walk does, but never
//! searches a string for its end: the next position is past it.
//!
//! On CloudTrail records, whose strings are short and many, the byte walk
//! spent most of its time deciding where each string ends. Here that is
//! branch-free work over whole blocks, and the walk takes one step per
//! token.
//!
//! The index walk only ever decides "valid, with these values" or "not
//! valid": the byte walk runs again on a record it rejects and reports the
//! error, so both report the same offset and reason, and a difference
//! between the two walks could only make a record slower, never change a
//! verdict (`indexed_walk_agrees_with_the_byte_walk` checks they agree).

use super::{Extracted, Frame, PathTrie, Val, MAX_DEPTH};

/// Records longer than this are walked byte by byte: the index holds a
/// `u32` per structural byte, and one record's index must stay small.
pub(super) const INDEXED_MAX: usize = 1 << 18;

/// What stage one learnt about the record besides its index.
pub(super) struct Summary {
    /// Some byte is ≥ 0x80: the record's UTF-8 must still be checked.
    pub non_ascii: bool,
    /// Some byte is a backslash: strings may hold escapes.
    pub backslash: bool,
}

/// Proof that this CPU has what stage one is compiled for.
#[derive(Clone, Copy)]
pub(super) struct Simd(());

impl Simd {
    /// (std caches the answers, so asking per record costs a few loads.)
    #[inline]
    pub(super) fn detect() -> Option<Simd> {
        let has = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("popcnt");
        has.then_some(Simd(()))
    }
}

/// Stage one: fills `index` with the record's structural positions, then
/// `b.len()` as a sentinel. `None` when the record cannot be valid JSON
/// (an unterminated string, a control byte in a string, a bad escape).
pub(super) fn index(b: &[u8], index: &mut Vec<u32>, _: Simd) -> Option<Summary> {
    debug_assert!(b.len() <= INDEXED_MAX);
    // SAFETY: a `Simd` exists only where the CPU has every feature needed.
    unsafe { index_avx2(b, index) }
}

const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

#[target_feature(enable = "avx2,pclmulqdq,bmi1,popcnt")]
unsafe fn index_avx2(b: &[u8], index: &mut Vec<u32>) -> Option<Summary> {
    use std::arch::x86_64::*;

    // Movemask of two 32-byte comparisons: one bit per byte of 64.
    #[inline(always)]
    unsafe fn bits(lo: __m256i, hi: __m256i) -> u64 {
        let lo = _mm256_movemask_epi8(lo) as u32 as u64;
        let hi = _mm256_movemask_epi8(hi) as u32 as u64;
        lo | (hi << 32)
    }

    index.clear();
    // At most one position per byte, plus the sentinel, plus the slack the
    // unrolled writes below run into.
    index.reserve(b.len() + 72);
    let out = index.as_mut_ptr();
    let mut written = 0usize;

    // The same 16-byte table in both 128-bit lanes (`vpshufb` looks up
    // within a lane).
    #[inline(always)]
    unsafe fn both_lanes(table: &[u8; 16]) -> __m256i {
        let lane = _mm_loadu_si128(table.as_ptr().cast());
        _mm256_broadcastsi128_si256(lane)
    }

    // Looked up by the low nibble (bytes ≥ 0x80 look up 0): a byte is
    // whitespace when the table gives it back; the other entries are
    // chosen to match no byte with that low nibble.
    let ws_table = both_lanes(&[
        b' ', 100, 100, 100, 17, 100, 113, 2, 100, b'\t', b'\n', 112, 100, b'\r', 100, 100,
    ]);
    // `[` and `]` OR 0x20 are `{` and `}`. A control byte can pass for an
    // operator here (0x1a for `:`); stage two reads the byte itself, and
    // rejects it.
    let op_table = both_lanes(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':', b'{', b',', b'}', 0, 0]);
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let control_max = _mm256_set1_epi8(0x1f);
    let x20 = _mm256_set1_epi8(0x20);
    let all_ones = _mm_set1_epi8(-1);

    // Carried from block to block: the next byte is escaped; we are inside
    // a string (all ones); the last byte was part of a scalar.
    let mut escaped_next = 0u64;
    let mut in_string_carry = 0u64;
    let mut scalar_carry = 0u64;
    let mut high = _mm256_setzero_si256();
    let mut any_backslash = 0u64;
    let mut control_in_string = 0u64;
    let mut tail = [b' '; 64];

    let mut start = 0usize;
    while start < b.len() {
        let block: *const u8 = if b.len() - start >= 64 {
            b.as_ptr().add(start)
        } else {
            // Whitespace after the end changes nothing.
            tail[..b.len() - start].copy_from_slice(&b[start..]);
            tail.as_ptr()
        };
        let lo = _mm256_loadu_si256(block.cast());
        let hi = _mm256_loadu_si256(block.add(32).cast());
        high = _mm256_or_si256(high, _mm256_or_si256(lo, hi));

        let backslashes = bits(
            _mm256_cmpeq_epi8(lo, backslash),
            _mm256_cmpeq_epi8(hi, backslash),
        );
        let quotes = bits(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote));
        // Unsigned x <= 0x1f exactly when min(x, 0x1f) == x.
        let control = bits(
            _mm256_cmpeq_epi8(_mm256_min_epu8(lo, control_max), lo),
            _mm256_cmpeq_epi8(_mm256_min_epu8(hi, control_max), hi),
        );
        let whitespace = bits(
            _mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_table, lo), lo),
            _mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_table, hi), hi),
        );
        let operators = bits(
            _mm256_cmpeq_epi8(_mm256_or_si256(lo, x20), _mm256_shuffle_epi8(op_table, lo)),
            _mm256_cmpeq_epi8(_mm256_or_si256(hi, x20), _mm256_shuffle_epi8(op_table, hi)),
        );

        // The bytes escaped by a backslash: in a run of backslashes every
        // other one escapes the next byte, counted from the run's start
        // (the subtraction carries through each run).
        let escaped = if backslashes == 0 {
            let e = escaped_next;
            escaped_next = 0;
            e
        } else {
            any_backslash = 1;
            let unescaped = backslashes & !escaped_next;
            let codes = ((unescaped << 1) | ODD_BITS).wrapping_sub(unescaped) ^ ODD_BITS;
            let e = codes ^ (backslashes | escaped_next);
            escaped_next = (codes & backslashes) >> 63;
            e
        };
        if escaped != 0 && !escapes_valid(b, start, escaped) {
            return None;
        }

        let quotes = quotes & !escaped;
        // Inside a string: from its opening quote up to, not including, its
        // closing quote (a prefix XOR of the quotes).
        let prefix = _mm_clmulepi64_si128(_mm_set_epi64x(0, quotes as i64), all_ones, 0);
        let in_string = (_mm_cvtsi128_si64(prefix) as u64) ^ in_string_carry;
        in_string_carry = ((in_string as i64) >> 63) as u64;
        control_in_string |= control & in_string;
        // A string's bytes after its opening quote, closing quote included.
        let string_tail = in_string ^ quotes;

        // A scalar starts at a byte that is neither an operator nor
        // whitespace and does not continue another (a quote never does).
        let scalar = !(operators | whitespace);
        let unquoted = scalar & !quotes;
        let continues = (unquoted << 1) | scalar_carry;
        scalar_carry = unquoted >> 63;
        let mut structural = (operators | (scalar & !continues)) & !string_tail;

        // Write eight positions per step, past the count if need be: the
        // slack reserved above takes the excess, which the next block (or
        // the sentinel) overwrites.
        let count = structural.count_ones() as usize;
        let at = out.add(written);
        let base = start as u32;
        let mut i = 0;
        while i < count {
            for k in 0..8 {
                // One scalar store each: left to itself the compiler packs
                // the eight into a vector with inserts, which is slower.
                at.add(i + k)
                    .write_volatile(base + structural.trailing_zeros());
                structural &= structural.wrapping_sub(1);
            }
            i += 8;
        }
        written += count;
        start += 64;
    }
    if control_in_string != 0 || in_string_carry != 0 {
        return None;
    }
    *out.add(written) = b.len() as u32;
    // SAFETY: `written + 1` positions are initialised, within the capacity
    // reserved.
    index.set_len(written + 1);
    Some(Summary {
        non_ascii: _mm256_movemask_epi8(high) != 0,
        backslash: any_backslash != 0,
    })
}

/// Whether each escaped byte (bits of the block at `start`) is one JSON
/// allows after a backslash. Rare in CloudTrail outside policy documents.
#[cold]
fn escapes_valid(b: &[u8], start: usize, mut escaped: u64) -> bool {
    while escaped != 0 {
        let at = start + escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        match b.get(at) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
            Some(b'u') => {
                let hex = b.get(at + 1..at + 5).unwrap_or(&[]);
                if hex.len() != 4 || !hex.iter().all(u8::is_ascii_hexdigit) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

#[inline(always)]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// Whether only whitespace lies between a scalar's end and the next
/// structural byte (anything else there is not JSON).
#[inline(always)]
fn only_ws(b: &[u8], end: usize, next: usize) -> bool {
    end == next
        || b.get(end..next)
            .is_some_and(|gap| gap.iter().all(|&c| is_ws(c)))
}

/// The end of a number's grammar from `p`, or None when there is none.
#[inline(always)]
fn number_end(b: &[u8], mut p: usize) -> Option<usize> {
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
        return None;
    }
    if b.get(p) == Some(&b'.') {
        p += 1;
        if !digits(&mut p) {
            return None;
        }
    }
    if let Some(b'e' | b'E') = b.get(p) {
        p += 1;
        if let Some(b'+' | b'-') = b.get(p) {
            p += 1;
        }
        if !digits(&mut p) {
            return None;
        }
    }
    Some(p)
}

/// The closing quote of the string whose opening quote is the structural
/// before `next`: stage one leaves only whitespace between the two.
#[inline(always)]
fn closing_quote(b: &[u8], next: usize) -> usize {
    let mut e = next - 1;
    while is_ws(b[e]) {
        e -= 1;
    }
    debug_assert_eq!(b[e], b'"');
    e
}

/// Stage two over `index` (from [`index`]): fills `out` as the byte walk
/// does and returns true, or returns false when the record is not valid.
pub(super) fn walk(
    b: &[u8],
    index: &[u32],
    trie: &PathTrie,
    out: &mut Extracted,
    leaves: bool,
    skip: bool,
    backslash: bool,
) -> bool {
    let mut stack = std::mem::take(&mut out.frames);
    stack.clear();
    let valid = Walk {
        b,
        index,
        trie,
        out: &mut *out,
        leaves,
        skip,
        backslash,
    }
    .run(&mut stack)
    .is_some();
    out.frames = stack;
    valid
}

struct Walk<'a, 't, 'o> {
    b: &'a [u8],
    index: &'a [u32],
    trie: &'t PathTrie,
    out: &'o mut Extracted,
    leaves: bool,
    skip: bool,
    backslash: bool,
}

impl Walk<'_, '_, '_> {
    #[inline(always)]
    fn at(&self, k: usize) -> Option<usize> {
        self.index.get(k).map(|&p| p as usize)
    }

    #[inline(always)]
    fn record(&mut self, node: Option<usize>, v: Val) {
        super::keep_value(self.trie, self.out, node, v);
    }

    #[inline(always)]
    fn has_escape(&self, start: usize, end: usize) -> bool {
        self.backslash && memchr::memchr(b'\\', &self.b[start..end]).is_some()
    }

    /// `Some` when the record is one valid JSON object.
    ///
    /// One turn of the loop is a key (in an object), its value, and the
    /// separators and closes after it, in that order, so that the common
    /// path — key, string, comma — runs straight through, each branch
    /// predicted at its own site.
    #[inline(always)]
    fn run(&mut self, stack: &mut Vec<Frame>) -> Option<()> {
        let b = self.b;
        let len = b.len();
        let root = self.at(0)?;
        if b.get(root) != Some(&b'{') {
            return None;
        }
        // The innermost open container (kept here: every key needs it),
        // and whether the loop starts at a key or at a value.
        let mut open = Frame::Array { node: None };
        let mut at_key = false;
        let mut node = Some(0);
        let mut k = 0;
        loop {
            if at_key {
                let p = self.at(k)?;
                let colon = self.at(k + 1)?;
                if b.get(p) != Some(&b'"') || b.get(colon) != Some(&b':') {
                    return None;
                }
                node = match open {
                    Frame::Object { node: Some(n), .. } => {
                        let end = closing_quote(b, colon);
                        let raw = &b[p + 1..end];
                        if self.has_escape(p + 1, end) {
                            self.trie.child(n, super::unescape(raw).as_bytes())
                        } else {
                            self.trie.child(n, raw)
                        }
                    }
                    _ => None,
                };
                k += 2;
            }
            // A value at `node`.
            let p = self.at(k)?;
            let c = *b.get(p)?;
            k += 1;
            if c == b'"' {
                if node.is_some() || self.leaves {
                    let end = closing_quote(b, self.at(k)?);
                    let v = Val::Str {
                        start: p as u32 + 1,
                        end: end as u32,
                        escaped: self.has_escape(p + 1, end),
                    };
                    self.record(node, v);
                    if self.leaves {
                        self.out.leaves.push(v);
                    }
                }
            } else if c == b'{' || c == b'[' {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                if node.is_none() && self.skip {
                    k = self.skip_container(k - 1)?;
                } else {
                    let first = b.get(self.at(k)?).copied();
                    if c == b'{' && first != Some(b'}') {
                        open = Frame::Object {
                            node,
                            start: p as u32,
                        };
                        stack.push(open);
                        at_key = true;
                        continue;
                    }
                    if c == b'[' && first != Some(b']') {
                        open = Frame::Array { node };
                        stack.push(open);
                        at_key = false;
                        continue;
                    }
                    // Empty: `{}` is a value, `[]` holds none.
                    k += 1;
                    if c == b'{' {
                        let v = Val::Obj {
                            start: p as u32,
                            end: self.at(k - 1)? as u32 + 1,
                        };
                        self.record(node, v);
                        if stack.is_empty() {
                            break;
                        }
                    }
                }
            } else {
                self.scalar(c, p, node, self.at(k)?)?;
            }
            // Separators and closes up to the next key or value.
            loop {
                let p = self.at(k)?;
                let c = *b.get(p)?;
                k += 1;
                match (open, c) {
                    (Frame::Object { .. }, b',') => {
                        at_key = true;
                        break;
                    }
                    (Frame::Array { node: n }, b',') => {
                        node = n;
                        at_key = false;
                        break;
                    }
                    (Frame::Object { node: n, start }, b'}') => {
                        stack.pop();
                        let v = Val::Obj {
                            start,
                            end: p as u32 + 1,
                        };
                        self.record(n, v);
                        match stack.last() {
                            Some(&top) => open = top,
                            // Only the sentinel may follow the root object.
                            None => return (self.at(k)? == len).then_some(()),
                        }
                    }
                    (Frame::Array { .. }, b']') => {
                        stack.pop();
                        open = *stack.last()?;
                    }
                    _ => return None,
                }
            }
        }
        // The root object was `{}`.
        (self.at(k)? == len).then_some(())
    }

    /// A number, `true`, `false` or `null` at `p`, the next structural byte
    /// at `next`.
    #[inline(always)]
    fn scalar(&mut self, c: u8, p: usize, node: Option<usize>, next: usize) -> Option<()> {
        let b = self.b;
        let (v, end) = match c {
            b't' | b'f' | b'n' => {
                let (word, v): (&[u8], _) = match c {
                    b't' => (b"true", Val::Bool(true)),
                    b'f' => (b"false", Val::Bool(false)),
                    _ => (b"null", Val::Null),
                };
                if b.get(p..p + word.len()) != Some(word) {
                    return None;
                }
                (v, p + word.len())
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(b, p)?;
                let v = Val::Num {
                    start: p as u32,
                    end: end as u32,
                };
                (v, end)
            }
            _ => return None,
        };
        if !only_ws(b, end, next) {
            return None;
        }
        self.record(node, v);
        if self.leaves && v != Val::Null {
            self.out.leaves.push(v);
        }
        Some(())
    }

    /// From the open bracket at `k`, the index after its close (the record
    /// is known valid: brackets are counted, nothing is checked).
    #[inline(always)]
    fn skip_container(&self, mut k: usize) -> Option<usize> {
        let mut depth = 0usize;
        loop {
            match self.b.get(self.at(k)?)? {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(k + 1);
                    }
                }
                _ => {}
            }
            k += 1;
        }
    }
}
