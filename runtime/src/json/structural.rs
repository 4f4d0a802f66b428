//! The field walk over a structural index (simdjson's two stages).
//!
//! Stage one classifies 64 bytes at a time (AVX2, or AVX-512 where the CPU
//! has it): it finds the quotes that open and close strings (escapes
//! resolved with carry arithmetic, the inside of strings with a carry-less
//! multiply), rejects control bytes inside strings and bad escapes, and
//! writes the positions of the bytes the grammar turns on — brackets, `:`
//! and `,` outside strings, the quote that opens each string and the first
//! byte of every other scalar. Stage two walks those positions with the
//! trie, as the byte walk does, but never searches a string for its end:
//! the next position is past it.
//!
//! On CloudTrail records, whose strings are short and many, the byte walk
//! spent most of its time deciding where each string ends. Here that is
//! branch-free work over whole blocks, and the walk takes one step per
//! token.
//!
//! The index walk only ever decides "valid, with these values" or "not
//! valid": the byte walk runs again on a record it refuses and reports the
//! error, so damage is reported with the byte walk's offset and reason
//! (`indexed_walk_agrees_with_the_byte_walk` checks that the two walks
//! agree on verdicts and values).

use super::{escape_len, is_ws, number_end, Extracted, Frame, PathTrie, Val, MAX_DEPTH};

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

/// Which stage one this CPU runs: the one for AVX2, or the one for
/// AVX-512 (64 bytes per instruction, comparisons straight into bit masks,
/// and positions written sixteen at a time by compressing a byte vector).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Simd {
    Avx2,
    Avx512,
}

impl Simd {
    /// The best this CPU has, found once (it is asked for every record).
    #[inline]
    pub(super) fn detect() -> Option<Simd> {
        static BEST: std::sync::OnceLock<Option<Simd>> = std::sync::OnceLock::new();
        *BEST.get_or_init(Self::best)
    }

    fn best() -> Option<Simd> {
        use std::arch::is_x86_feature_detected as has;
        let base = has!("pclmulqdq") && has!("bmi1") && has!("popcnt");
        if base && has!("avx512f") && has!("avx512bw") && has!("avx512vbmi2") {
            Some(Simd::Avx512)
        } else if base && has!("avx2") {
            Some(Simd::Avx2)
        } else {
            None
        }
    }
}

/// Stage one: fills `index` with the record's structural positions, then
/// `b.len()` as a sentinel. `None` when the record cannot be valid JSON
/// (an unterminated string, a control byte in a string, a bad escape).
pub(super) fn index(b: &[u8], index: &mut Vec<u32>, simd: Simd) -> Option<Summary> {
    debug_assert!(b.len() <= INDEXED_MAX);
    // At most one position per byte, plus the sentinel, plus the slack the
    // unconditional writes of a block's positions run into.
    index.clear();
    index.reserve(b.len() + 72);
    // SAFETY: `detect` made `simd` only where the CPU has every feature
    // the function is compiled for.
    unsafe {
        match simd {
            Simd::Avx2 => index_avx2(b, index),
            Simd::Avx512 => index_avx512(b, index),
        }
    }
}

const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// One bit per byte of a 64-byte block, for each class stage one needs.
struct Classes {
    backslashes: u64,
    quotes: u64,
    /// Bytes ≤ 0x1f.
    control: u64,
    whitespace: u64,
    /// `{ } [ ] : ,` (and control bytes that look like them; stage two
    /// reads the byte itself, and rejects those).
    operators: u64,
    /// Bytes ≥ 0x80.
    high: u64,
}

// Whitespace by the low nibble (bytes ≥ 0x80 look up 0): a byte is
// whitespace when the table gives it back; the other entries are chosen to
// match no byte with that low nibble.
const WS_TABLE: [u8; 16] = [
    b' ', 100, 100, 100, 17, 100, 113, 2, 100, b'\t', b'\n', 112, 100, b'\r', 100, 100,
];
// Operators by the low nibble: `[` and `]` OR 0x20 are `{` and `}`.
const OP_TABLE: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':', b'{', b',', b'}', 0, 0];

/// JSON's string rules block by block — which bytes a backslash escapes,
/// which bytes are inside strings — and what of them carries from one
/// block to the next. Shared by stage one and [`value_end`].
#[derive(Default)]
struct Strings {
    /// The next block's first byte is escaped (0 or 1).
    escaped_next: u64,
    /// All ones when the block ends inside a string.
    in_string: u64,
}

impl Strings {
    /// The bytes of the block escaped by a backslash: in a run of
    /// backslashes every other one escapes the next byte, counted from the
    /// run's start (the subtraction carries through each run).
    #[inline(always)]
    fn escaped(&mut self, backslashes: u64) -> u64 {
        if backslashes == 0 {
            return std::mem::take(&mut self.escaped_next);
        }
        let unescaped = backslashes & !self.escaped_next;
        let codes = ((unescaped << 1) | ODD_BITS).wrapping_sub(unescaped) ^ ODD_BITS;
        let escaped = codes ^ (backslashes | self.escaped_next);
        self.escaped_next = (codes & backslashes) >> 63;
        escaped
    }

    /// The bytes inside a string, given the block's unescaped quotes: from
    /// each opening quote up to, not including, its closing quote (a prefix
    /// XOR of the quotes, by carry-less multiply).
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ.
    #[inline(always)]
    unsafe fn inside(&mut self, quotes: u64) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees PCLMULQDQ.
        let prefix = unsafe {
            let q = _mm_set_epi64x(0, quotes as i64);
            _mm_cvtsi128_si64(_mm_clmulepi64_si128(q, _mm_set1_epi8(-1), 0)) as u64
        };
        let in_string = prefix ^ self.in_string;
        self.in_string = ((in_string as i64) >> 63) as u64;
        in_string
    }

    /// No string is left open and the last byte escapes nothing.
    fn closed(&self) -> bool {
        self.in_string == 0 && self.escaped_next == 0
    }
}

/// Movemask of two 32-byte comparisons: one bit per byte of 64.
///
/// # Safety
/// The CPU must have AVX2.
#[inline(always)]
unsafe fn avx2_bits(lo: std::arch::x86_64::__m256i, hi: std::arch::x86_64::__m256i) -> u64 {
    use std::arch::x86_64::_mm256_movemask_epi8;
    // SAFETY: the caller guarantees AVX2.
    let (lo, hi) = unsafe { (_mm256_movemask_epi8(lo), _mm256_movemask_epi8(hi)) };
    lo as u32 as u64 | ((hi as u32 as u64) << 32)
}

/// What carries from one block to the next, and what stage one learns on
/// the way.
#[derive(Default)]
struct Carry {
    strings: Strings,
    /// The block's last byte is part of an unquoted scalar (0 or 1).
    scalar: u64,
    any_backslash: u64,
    control_in_string: u64,
    high: u64,
}

impl Carry {
    /// The structural bits of the block at `start`, or `None` when one of
    /// its escapes is not JSON.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ.
    #[inline(always)]
    unsafe fn block(&mut self, b: &[u8], start: usize, c: Classes) -> Option<u64> {
        self.high |= c.high;
        // A branch, not `|= (backslashes != 0)`: most blocks have none, and
        // the flag computed on every block made validation 6 % slower.
        if c.backslashes != 0 {
            self.any_backslash = 1;
        }
        let escaped = self.strings.escaped(c.backslashes);
        if escaped != 0 && !escapes_valid(b, start, escaped) {
            return None;
        }
        let quotes = c.quotes & !escaped;
        // SAFETY: the caller guarantees PCLMULQDQ.
        let in_string = unsafe { self.strings.inside(quotes) };
        self.control_in_string |= c.control & in_string;
        // A string's bytes after its opening quote, closing quote included.
        let string_tail = in_string ^ quotes;
        // A scalar starts at a byte that is neither an operator nor
        // whitespace and does not continue another (a quote never does).
        let scalar = !(c.operators | c.whitespace);
        let unquoted = scalar & !quotes;
        let continues = (unquoted << 1) | self.scalar;
        self.scalar = unquoted >> 63;
        Some((c.operators | (scalar & !continues)) & !string_tail)
    }

    /// After the last block: ends `index` with the sentinel (`b_len`) after
    /// its `written` positions and gives the summary, or `None` when a
    /// string is left open or holds a control byte, or the last byte
    /// escapes nothing.
    ///
    /// # Safety
    /// `written + 1` must be within the capacity, and the first `written`
    /// positions written.
    #[inline(always)]
    unsafe fn finish(&self, index: &mut Vec<u32>, written: usize, b_len: usize) -> Option<Summary> {
        if !self.strings.closed() || self.control_in_string != 0 {
            return None;
        }
        // SAFETY: as the caller guarantees.
        unsafe {
            *index.as_mut_ptr().add(written) = b_len as u32;
            index.set_len(written + 1);
        }
        Some(Summary {
            non_ascii: self.high != 0,
            backslash: self.any_backslash != 0,
        })
    }
}

/// Each 64-byte block of `b` in turn (the last one padded with spaces,
/// which change nothing), as a pointer to its bytes and its offset.
#[inline(always)]
fn blocks(b: &[u8], mut each: impl FnMut(*const u8, usize) -> Option<()>) -> Option<()> {
    let mut tail = [b' '; 64];
    let mut start = 0;
    while start < b.len() {
        let block = if b.len() - start >= 64 {
            // In bounds: 64 bytes from `start` lie within `b`.
            b[start..].as_ptr()
        } else {
            tail[..b.len() - start].copy_from_slice(&b[start..]);
            tail.as_ptr()
        };
        each(block, start)?;
        start += 64;
    }
    Some(())
}

/// Where the object or array that opens at `b[0]` closes: its length and
/// how many of its bytes are `\n`; `None` when it does not close within
/// `b`, or nests deeper than `max_depth` (the opening bracket is depth 1).
/// Strings are told apart as stage one tells them (escapes, then quotes);
/// nothing else is checked, so whoever takes the value must validate it.
pub(super) fn value_end(b: &[u8], max_depth: u64) -> Option<(usize, u64)> {
    // Every `Simd` has AVX2, PCLMULQDQ and POPCNT.
    Simd::detect()?;
    // SAFETY: as above.
    unsafe { value_end_avx2(b, max_depth) }
}

#[target_feature(enable = "avx2,pclmulqdq,bmi1,popcnt")]
unsafe fn value_end_avx2(b: &[u8], max_depth: u64) -> Option<(usize, u64)> {
    use avx2_bits as bits;
    use std::arch::x86_64::*;
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let newline = _mm256_set1_epi8(b'\n' as i8);
    // `[` and `]` OR 0x20 are `{` and `}`, and no other byte is.
    let x20 = _mm256_set1_epi8(0x20);
    let open = _mm256_set1_epi8(b'{' as i8);
    let close = _mm256_set1_epi8(b'}' as i8);
    let mut strings = Strings::default();
    let (mut depth, mut newlines) = (0u64, 0u64);
    let mut end = None;
    blocks(b, |block, start| {
        // SAFETY: a block is 64 readable bytes; the loads are unaligned.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(block.cast()),
                _mm256_loadu_si256(block.add(32).cast()),
            )
        };
        let backslashes = bits(
            _mm256_cmpeq_epi8(lo, backslash),
            _mm256_cmpeq_epi8(hi, backslash),
        );
        let escaped = strings.escaped(backslashes);
        let quotes = bits(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote)) & !escaped;
        // SAFETY: PCLMULQDQ is enabled for this function.
        let in_string = unsafe { strings.inside(quotes) };
        let (lo20, hi20) = (_mm256_or_si256(lo, x20), _mm256_or_si256(hi, x20));
        let opens = bits(_mm256_cmpeq_epi8(lo20, open), _mm256_cmpeq_epi8(hi20, open)) & !in_string;
        let closes = bits(
            _mm256_cmpeq_epi8(lo20, close),
            _mm256_cmpeq_epi8(hi20, close),
        ) & !in_string;
        let lines = bits(
            _mm256_cmpeq_epi8(lo, newline),
            _mm256_cmpeq_epi8(hi, newline),
        );
        let (n_open, n_close) = (
            u64::from(opens.count_ones()),
            u64::from(closes.count_ones()),
        );
        if n_close < depth && depth + n_open <= max_depth {
            // The value cannot close in this block, nor nest too deep.
            depth = depth + n_open - n_close;
            newlines += u64::from(lines.count_ones());
            return Some(());
        }
        let mut brackets = opens | closes;
        while brackets != 0 {
            let k = brackets.trailing_zeros();
            if opens >> k & 1 == 1 {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
            } else {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    let through = u64::MAX >> (63 - k);
                    newlines += u64::from((lines & through).count_ones());
                    end = Some(start + k as usize + 1);
                    return None;
                }
            }
            brackets &= brackets - 1;
        }
        newlines += u64::from(lines.count_ones());
        Some(())
    });
    end.map(|end| (end, newlines))
}

#[target_feature(enable = "avx2,pclmulqdq,bmi1,popcnt")]
unsafe fn index_avx2(b: &[u8], index: &mut Vec<u32>) -> Option<Summary> {
    use avx2_bits as bits;
    use std::arch::x86_64::*;
    // The same 16-byte table in both 128-bit lanes (`vpshufb` looks up
    // within a lane).
    #[inline(always)]
    unsafe fn both_lanes(table: &[u8; 16]) -> __m256i {
        _mm256_broadcastsi128_si256(_mm_loadu_si128(table.as_ptr().cast()))
    }

    let ws_table = both_lanes(&WS_TABLE);
    let op_table = both_lanes(&OP_TABLE);
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let control_max = _mm256_set1_epi8(0x1f);
    let x20 = _mm256_set1_epi8(0x20);
    let out = index.as_mut_ptr();
    let mut written = 0usize;
    let mut carry = Carry::default();
    blocks(b, |block, start| {
        // SAFETY: a block is 64 readable bytes; the loads are unaligned.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(block.cast()),
                _mm256_loadu_si256(block.add(32).cast()),
            )
        };
        let classes = Classes {
            backslashes: bits(
                _mm256_cmpeq_epi8(lo, backslash),
                _mm256_cmpeq_epi8(hi, backslash),
            ),
            quotes: bits(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote)),
            // Unsigned x <= 0x1f exactly when min(x, 0x1f) == x.
            control: bits(
                _mm256_cmpeq_epi8(_mm256_min_epu8(lo, control_max), lo),
                _mm256_cmpeq_epi8(_mm256_min_epu8(hi, control_max), hi),
            ),
            whitespace: bits(
                _mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_table, lo), lo),
                _mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_table, hi), hi),
            ),
            operators: bits(
                _mm256_cmpeq_epi8(_mm256_or_si256(lo, x20), _mm256_shuffle_epi8(op_table, lo)),
                _mm256_cmpeq_epi8(_mm256_or_si256(hi, x20), _mm256_shuffle_epi8(op_table, hi)),
            ),
            high: bits(lo, hi),
        };
        // SAFETY: PCLMULQDQ is enabled for this function.
        let mut structural = unsafe { carry.block(b, start, classes) }?;
        // Eight positions per step, past the count if need be: the slack
        // reserved takes the excess, which the next block (or the
        // sentinel) overwrites.
        let count = structural.count_ones() as usize;
        let base = start as u32;
        let mut i = 0;
        while i < count {
            for k in 0..8 {
                // One scalar store each: left to itself the compiler packs
                // the eight into a vector with inserts, which is slower.
                // SAFETY: within the capacity reserved (at most one
                // position per byte of `b`, plus 72).
                unsafe {
                    out.add(written + i + k)
                        .write_volatile(base + structural.trailing_zeros())
                };
                structural &= structural.wrapping_sub(1);
            }
            i += 8;
        }
        written += count;
        Some(())
    })?;
    // SAFETY: `written` positions are written, and the sentinel fits.
    unsafe { carry.finish(index, written, b.len()) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,pclmulqdq,bmi1,popcnt")]
unsafe fn index_avx512(b: &[u8], index: &mut Vec<u32>) -> Option<Summary> {
    use std::arch::x86_64::*;

    // The same 16-byte table in all four 128-bit lanes.
    #[inline(always)]
    unsafe fn all_lanes(table: &[u8; 16]) -> __m512i {
        _mm512_broadcast_i32x4(_mm_loadu_si128(table.as_ptr().cast()))
    }

    let ws_table = all_lanes(&WS_TABLE);
    let op_table = all_lanes(&OP_TABLE);
    let quote = _mm512_set1_epi8(b'"' as i8);
    let backslash = _mm512_set1_epi8(b'\\' as i8);
    let control_max = _mm512_set1_epi8(0x1f);
    let x20 = _mm512_set1_epi8(0x20);
    // Byte i holds i: compressed by a block's structural bits, they are the
    // positions within the block.
    let offsets: [u8; 64] = std::array::from_fn(|i| i as u8);
    // SAFETY: 64 readable bytes; the load is unaligned.
    let offsets = unsafe { _mm512_loadu_si512(offsets.as_ptr().cast()) };
    let out = index.as_mut_ptr();
    let mut written = 0usize;
    let mut carry = Carry::default();
    blocks(b, |block, start| {
        // SAFETY: a block is 64 readable bytes; the load is unaligned.
        let x = unsafe { _mm512_loadu_si512(block.cast()) };
        let classes = Classes {
            backslashes: _mm512_cmpeq_epi8_mask(x, backslash),
            quotes: _mm512_cmpeq_epi8_mask(x, quote),
            control: _mm512_cmple_epu8_mask(x, control_max),
            whitespace: _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(ws_table, x), x),
            operators: _mm512_cmpeq_epi8_mask(
                _mm512_or_si512(x, x20),
                _mm512_shuffle_epi8(op_table, x),
            ),
            high: _mm512_movepi8_mask(x),
        };
        // SAFETY: PCLMULQDQ is enabled for this function.
        let structural = unsafe { carry.block(b, start, classes) }?;
        let count = structural.count_ones() as usize;
        let packed = _mm512_maskz_compress_epi8(structural, offsets);
        let base = _mm512_set1_epi32(start as i32);
        // Sixteen positions per step, past the count if need be (see the
        // AVX2 version).
        let mut i = 0;
        while i < count {
            let bytes = match i {
                0 => _mm512_castsi512_si128(packed),
                16 => _mm512_extracti32x4_epi32::<1>(packed),
                32 => _mm512_extracti32x4_epi32::<2>(packed),
                _ => _mm512_extracti32x4_epi32::<3>(packed),
            };
            let positions = _mm512_add_epi32(_mm512_cvtepu8_epi32(bytes), base);
            // SAFETY: within the capacity reserved (at most one position
            // per byte of `b`, plus 72).
            unsafe { _mm512_storeu_si512(out.add(written + i).cast(), positions) };
            i += 16;
        }
        written += count;
        Some(())
    })?;
    // SAFETY: `written` positions are written, and the sentinel fits.
    unsafe { carry.finish(index, written, b.len()) }
}

/// Whether each escaped byte (bits of the block at `start`) is one JSON
/// allows after a backslash. Rare in CloudTrail outside policy documents.
#[cold]
fn escapes_valid(b: &[u8], start: usize, mut escaped: u64) -> bool {
    while escaped != 0 {
        let at = start + escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        if escape_len(b, at).is_err() {
            return false;
        }
    }
    true
}

/// Whether only whitespace lies between a scalar's end and the next
/// structural byte (anything else there is not JSON).
#[inline(always)]
fn only_ws(b: &[u8], end: usize, next: usize) -> bool {
    end == next
        || b.get(end..next)
            .is_some_and(|gap| gap.iter().all(|&c| is_ws(c)))
}

/// The closing quote of the string whose opening quote, at `open`, is the
/// structural before `next`: stage one leaves only whitespace between the
/// two. (Checked all the same, so that an index that broke that promise
/// would send the record to the byte walk instead of panicking.)
#[inline(always)]
fn closing_quote(b: &[u8], open: usize, next: usize) -> Option<usize> {
    let e = next.wrapping_sub(1);
    if e > open && b.get(e) == Some(&b'"') {
        // Compact JSON: nothing between the quote and the next structural.
        return Some(e);
    }
    closing_quote_before_blanks(b, open, next)
}

#[cold]
fn closing_quote_before_blanks(b: &[u8], open: usize, next: usize) -> Option<usize> {
    let mut e = next.checked_sub(1)?;
    while is_ws(*b.get(e)?) {
        e = e.checked_sub(1)?;
    }
    (e > open && b[e] == b'"').then_some(e)
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
                        let end = closing_quote(b, p, colon)?;
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
                    let end = closing_quote(b, p, self.at(k)?)?;
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
                let end = number_end(b, p).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage one byte by byte: what the block-wise versions must compute.
    fn reference(b: &[u8]) -> Option<(Vec<u32>, bool, bool)> {
        let is_ws = |c: u8| c < 0x80 && WS_TABLE[usize::from(c & 15)] == c;
        let is_op = |c: u8| c < 0x80 && OP_TABLE[usize::from(c & 15)] == c | 0x20;
        let mut index = Vec::new();
        let (mut in_string, mut escape_next, mut in_scalar) = (false, false, false);
        for (i, &c) in b.iter().enumerate() {
            let escaped = escape_next;
            escape_next = !escaped && c == b'\\';
            if escaped && !escapes_valid(b, i, 1) {
                return None;
            }
            let quote = c == b'"' && !escaped;
            // Inside a string: its opening quote up to its closing quote.
            let inside = in_string ^ quote;
            if inside && c <= 0x1f {
                return None;
            }
            let tail = inside ^ quote;
            let scalar = !is_op(c) && !is_ws(c);
            if (is_op(c) || scalar && !in_scalar) && !tail {
                index.push(i as u32);
            }
            in_scalar = scalar && !quote;
            in_string = inside;
        }
        if in_string || escape_next {
            return None;
        }
        index.push(b.len() as u32);
        Some((index, !b.is_ascii(), b.contains(&b'\\')))
    }

    /// Every stage one this CPU can run writes what the byte-by-byte
    /// reference does, for real records, mutants of them, and records made
    /// of the bytes stage one treats specially at every block boundary.
    #[test]
    fn stage_ones_agree_with_the_reference() {
        use std::arch::is_x86_feature_detected as has;
        let mut ways = Vec::new();
        if Simd::detect() == Some(Simd::Avx512) {
            ways.push(Simd::Avx512);
        }
        if has!("avx2") && has!("pclmulqdq") && has!("bmi1") && has!("popcnt") {
            ways.push(Simd::Avx2);
        }
        assert!(
            !ways.is_empty(),
            "this test needs a CPU with AVX2 and CLMUL"
        );
        let records = crate::json::real_records::real_records();
        let mut cases = crate::json::real_records::mutants(
            &records,
            20_000,
            0x2545_f491_4f6c_dd1d,
            b"\"\\{}[]:, \t\n0-tfnu/\x00\x1a\x1f\x80\xff",
            true,
        );
        cases.extend(records);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"\"\\{}[]:, \tatf0\x01\x1a\xc3";
        for _ in 0..20_000 {
            let len = (state % 200) as usize;
            let case: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            cases.push(case);
        }
        // Blocks with more structural bytes than one write step covers.
        let digits: Vec<String> = (0..300).map(|i| (i % 10).to_string()).collect();
        cases.push(format!("{{\"a\":[{}]}}", digits.join(",")).into_bytes());
        cases.push(format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200)).into_bytes());
        cases.push(format!("{{\"a\":[{}1]}}", "{},".repeat(100)).into_bytes());
        for case in &cases {
            let expected = reference(case);
            for &way in &ways {
                let mut got = Vec::new();
                let summary = index(case, &mut got, way);
                let got = summary.map(|s| (got, s.non_ascii, s.backslash));
                assert_eq!(
                    got,
                    expected,
                    "{way:?}: {:?}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    /// `value_end` byte by byte: a backslash escapes the next byte (in or
    /// out of strings, as stage one has it), an unescaped quote opens or
    /// closes a string, brackets outside strings are counted, newlines up
    /// to the end too.
    fn value_end_reference(b: &[u8], max_depth: u64) -> Option<(usize, u64)> {
        let (mut in_string, mut escaped, mut depth, mut newlines) = (false, false, 0u64, 0u64);
        for (i, &c) in b.iter().enumerate() {
            newlines += u64::from(c == b'\n');
            let this_escaped = std::mem::take(&mut escaped);
            match c {
                b'\\' if !this_escaped => escaped = true,
                b'"' if !this_escaped => in_string = !in_string,
                b'{' | b'[' if !in_string => {
                    depth += 1;
                    if depth > max_depth {
                        return None;
                    }
                }
                b'}' | b']' if !in_string => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some((i + 1, newlines));
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Where a value closes, and its newlines, as the byte-by-byte rules
    /// say: escapes (runs of backslashes, escaped quotes), brackets inside
    /// strings, values crossing 64-byte blocks, and the nesting limit.
    #[test]
    fn value_end_finds_where_a_value_closes() {
        if Simd::detect().is_none() {
            return;
        }
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
        let pieces: [&[u8]; 12] = [
            b"{", b"}", b"[", b"]", b"\"", b"\\", b"\\\"", b"\\\\", b"\n", b"a", b":", b",",
        ];
        let mut found = 0;
        for _ in 0..30_000 {
            let mut b = b"{".to_vec();
            for _ in 0..next() % 200 {
                b.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let max_depth = 1 + next() % 6;
            let expected = value_end_reference(&b, max_depth);
            found += usize::from(expected.is_some());
            assert_eq!(
                value_end(&b, max_depth),
                expected,
                "{:?}",
                String::from_utf8_lossy(&b)
            );
        }
        assert!(found > 3_000, "{found} values closed");
    }
}
