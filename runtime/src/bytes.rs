//! Byte scanning shared by the record reader and the field extractor.

/// Index of the first `"`, `\` or control byte (< 0x20) in `s`, or `s.len()`. ORs the bytes
/// looked at into `seen` (its 0x80 bits tell whether any byte before the match was non-ASCII).
#[inline]
pub(crate) fn find_string_special(s: &[u8], seen: &mut u64) -> usize {
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
