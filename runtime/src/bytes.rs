//! Byte scanning shared by the record reader and the field extractor.

/// How strings are searched: the portable word-at-a-time search, or 32
/// bytes at a time with AVX2, inlined into a walk compiled for AVX2.
pub(crate) trait StringSearch: Copy {
    /// Index of the first `"`, `\` or control byte (< 0x20) in `s`, or
    /// `s.len()`. ORs the bytes looked at into `seen` (its 0x80 bits tell
    /// whether any byte before the match was non-ASCII; bytes after the
    /// match may be included, which only costs a needless UTF-8 check).
    fn find_special(self, s: &[u8], seen: &mut u64) -> usize;
}

#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl StringSearch for Portable {
    #[inline(always)]
    fn find_special(self, s: &[u8], seen: &mut u64) -> usize {
        find_string_special_swar(s, seen)
    }
}

/// Proof that this CPU has AVX2: made only by [`Avx2::detect`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// (std caches the answer, so asking per record costs a load.)
    pub(crate) fn detect() -> Option<Avx2> {
        std::arch::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl StringSearch for Avx2 {
    #[inline(always)]
    fn find_special(self, s: &[u8], seen: &mut u64) -> usize {
        // SAFETY: an `Avx2` exists only where AVX2 was detected.
        unsafe { find_string_special_avx2_inline(s, seen) }
    }
}

/// 32 bytes per step (most CloudTrail strings end within the first step,
/// where the portable search needs four), for inlining into a caller
/// compiled for AVX2 (the field walk, the record reader's scanner), where a
/// call per string would cost more than the search.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn find_string_special_avx2_inline(s: &[u8], seen: &mut u64) -> usize {
    use std::arch::x86_64::*;
    // SAFETY (every intrinsic below): the caller guarantees AVX2.
    unsafe {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let control_max = _mm256_set1_epi8(0x1f);
        let mut i = 0;
        while i + 32 <= s.len() {
            // `i + 32 <= s.len()`, and the load is unaligned.
            let x = _mm256_loadu_si256(s.as_ptr().add(i).cast());
            let special = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, backslash)),
                // Unsigned x <= 0x1f exactly when min(x, 0x1f) == x.
                _mm256_cmpeq_epi8(_mm256_min_epu8(x, control_max), x),
            );
            let mask = _mm256_movemask_epi8(special) as u32;
            if _mm256_movemask_epi8(x) != 0 {
                *seen |= 0x80;
            }
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 32;
        }
        i + find_string_special_swar(&s[i..], seen)
    }
}

/// Whether every byte of `s` is ASCII: 32 bytes a step with AVX2 (about
/// ten times std's word-at-a-time check on a CloudTrail record).
#[inline]
pub(crate) fn is_ascii(s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if s.len() >= 64 && Avx2::detect().is_some() {
        // SAFETY: AVX2 is present (checked at run time).
        return unsafe { is_ascii_avx2(s) };
    }
    s.is_ascii()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn is_ascii_avx2(s: &[u8]) -> bool {
    use std::arch::x86_64::*;
    let mut high = _mm256_setzero_si256();
    let mut chunks = s.chunks_exact(32);
    for chunk in &mut chunks {
        // SAFETY: the chunk is 32 bytes; the load is unaligned.
        let x = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
        high = _mm256_or_si256(high, x);
    }
    _mm256_movemask_epi8(high) == 0 && chunks.remainder().is_ascii()
}

/// The key of a CloudTrail envelope, `{"Records":[...]}`.
const RECORDS_KEY: &[u8; 9] = b"\"Records\"";

/// Whether `s` holds `"Records"` anywhere. With AVX2, 32 positions a step
/// are tested for `"R` and for the closing `"` eight bytes on, and only
/// those candidates are compared whole: memchr's general substring search
/// took 90 ns per CloudTrail record here, most of it on bytes already in
/// the cache, ≈5 % of a one-core scan of JSON Lines (64 positions a step
/// with AVX-512 measured the same as 32).
#[inline]
pub(crate) fn contains_records_key(s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if Avx2::detect().is_some() {
        // SAFETY: AVX2 is present (checked at run time).
        return unsafe { contains_records_key_avx2(s) };
    }
    memchr::memmem::find(s, RECORDS_KEY).is_some()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn contains_records_key_avx2(s: &[u8]) -> bool {
    use std::arch::x86_64::*;
    let quote = _mm256_set1_epi8(b'"' as i8);
    let r = _mm256_set1_epi8(b'R' as i8);
    let mut i = 0;
    // A step reads 32 bytes at `i`, `i + 1` and `i + 8`.
    while i + 40 <= s.len() {
        // SAFETY: `i + 8 + 32 <= s.len()`; the loads are unaligned.
        let (first, second, last) = unsafe {
            let at = s.as_ptr().add(i);
            (
                _mm256_loadu_si256(at.cast()),
                _mm256_loadu_si256(at.add(1).cast()),
                _mm256_loadu_si256(at.add(8).cast()),
            )
        };
        let candidates = _mm256_and_si256(
            _mm256_and_si256(
                _mm256_cmpeq_epi8(first, quote),
                _mm256_cmpeq_epi8(second, r),
            ),
            _mm256_cmpeq_epi8(last, quote),
        );
        let mut mask = _mm256_movemask_epi8(candidates) as u32;
        while mask != 0 {
            let at = i + mask.trailing_zeros() as usize;
            if s.get(at..at + RECORDS_KEY.len()) == Some(RECORDS_KEY) {
                return true;
            }
            mask &= mask - 1;
        }
        i += 32;
    }
    // Under 40 bytes left: a substring searcher costs more to build here
    // than this comparison per position.
    s[i..].windows(RECORDS_KEY.len()).any(|w| w == RECORDS_KEY)
}

fn find_string_special_swar(s: &[u8], seen: &mut u64) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut i = 0;
    for chunk in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        let x = u64::from_le_bytes(a);
        *seen |= x;
        let q = x ^ (LO * u64::from(b'"'));
        let bs = x ^ (LO * u64::from(b'\\'));
        // For each term the lowest set high bit marks a true match (borrows only propagate
        // upwards from a matching byte), so the lowest bit of the union is the first match.
        let m = ((q.wrapping_sub(LO) & !q)
            | (bs.wrapping_sub(LO) & !bs)
            | (x.wrapping_sub(LO * 0x20) & !x))
            & HI;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    for &b in chunks.remainder() {
        *seen |= u64::from(b);
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_check() {
        for len in [0, 31, 64, 65, 100, 1371] {
            let mut s = vec![b'a'; len];
            assert!(is_ascii(&s));
            for at in [0, len / 2, len.saturating_sub(1)] {
                if len > 0 {
                    s[at] = 0xc3;
                    assert!(!is_ascii(&s), "{len} {at}");
                    s[at] = b'a';
                }
            }
        }
    }

    /// The envelope key is found wherever it starts, whatever surrounds it,
    /// as memchr's substring search finds it.
    #[test]
    fn records_key_found_as_a_substring_search_finds_it() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15u64);
        // Near misses share the checked bytes with the key.
        let pieces: [&[u8]; 6] = [
            b"\"Records\"",
            b"\"Recordsx\"",
            b"\"Rxxxxxx\"",
            b"\"records\"",
            b"\"Record\"",
            b"\"R\"",
        ];
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut s: Vec<u8> = (0..len)
                .map(|_| [b'a', b'"', b'R', b's', b':'][(next() % 5) as usize])
                .collect();
            if next().is_multiple_of(2) {
                let piece = pieces[(next() % pieces.len() as u64) as usize];
                let at = (next() as usize) % (s.len() + 1);
                s.splice(at..at, piece.iter().copied());
            }
            let expected = memchr::memmem::find(&s, RECORDS_KEY).is_some();
            let text = String::from_utf8_lossy(&s);
            assert_eq!(contains_records_key(&s), expected, "{text:?}");
        }
    }

    /// Both searches find what a byte-by-byte search finds on every position and on
    /// whether a non-ASCII byte came before the match.
    #[test]
    fn both_searches_agree() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
        let alphabet = [b'a', b'"', b'\\', 0x01, 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xff];
        #[cfg(target_arch = "x86_64")]
        let avx2 = Avx2::detect();
        for _ in 0..20_000 {
            let len = (next() % 100) as usize;
            let special_odds = 1 + next() % 40;
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    if next().is_multiple_of(special_odds) {
                        alphabet[(next() % alphabet.len() as u64) as usize]
                    } else {
                        b'a' + (next() % 26) as u8
                    }
                })
                .collect();
            // Byte by byte: the first special byte, and whether a
            // non-ASCII byte comes before it.
            let at = s
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(s.len());
            let high = s[..at].iter().any(|&b| b >= 0x80);
            let check = |found: usize, seen: u64| {
                assert_eq!(found, at, "{s:?}");
                if high {
                    assert_ne!(seen & 0x8080_8080_8080_8080, 0, "{s:?}");
                }
            };
            let mut seen = 0;
            check(Portable.find_special(&s, &mut seen), seen);
            #[cfg(target_arch = "x86_64")]
            if let Some(avx2) = avx2 {
                let mut seen = 0;
                check(avx2.find_special(&s, &mut seen), seen);
            }
        }
    }
}
