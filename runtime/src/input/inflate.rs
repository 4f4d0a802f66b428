//! Whole-file gzip decompression with libdeflate, for the small files
//! CloudTrail delivers (a few hundred kilobytes to a few megabytes): about
//! twice as fast as a streaming inflate. Anything else is streamed.

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// A libdeflate decompressor (its tables, about 32 KiB), reused per thread.
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Decompressor> {
        // SAFETY: allocation has no preconditions; null means it failed.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Decompressor)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `libdeflate_alloc_decompressor` and
        // is freed once, here.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// Decompresses `gz`, which must be exactly one gzip member whose trailer
/// says it decompresses to at most `limit` bytes. `None` when it is not (a
/// second member, trailing bytes, damage, a larger size): the caller then
/// streams the file, which reads every member and reports damage exactly.
pub(crate) fn gzip_one_member(gz: &[u8], limit: usize) -> Option<Vec<u8>> {
    let trailer = gz.last_chunk::<4>()?;
    // ISIZE: the decompressed size modulo 2^32.
    let size = u32::from_le_bytes(*trailer) as usize;
    if size > limit {
        return None;
    }
    let mut out = vec![0u8; size];
    thread_local! {
        static DECOMPRESSOR: Option<std::cell::RefCell<Decompressor>> =
            Decompressor::new().map(std::cell::RefCell::new);
    }
    let (consumed, written) = DECOMPRESSOR.with(|d| {
        let mut d = d.as_ref()?.try_borrow_mut().ok()?;
        let (mut consumed, mut written) = (0usize, 0usize);
        // SAFETY: the decompressor is live and used by this thread alone; the
        // input and output pointers and lengths describe live slices, which
        // libdeflate reads and writes only within.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                d.0.as_mut(),
                gz.as_ptr().cast(),
                gz.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut consumed,
                &mut written,
            )
        };
        (result == libdeflate_result_LIBDEFLATE_SUCCESS).then_some((consumed, written))
    })?;
    (consumed == gz.len() && written == size).then_some(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap_or_default();
        enc.finish().unwrap_or_default()
    }

    #[test]
    fn only_exactly_one_whole_member_is_decompressed_here() {
        let text = b"{\"a\":1}\n".repeat(1000);
        let one = gzip(&text);
        assert_eq!(gzip_one_member(&one, 1 << 20).as_deref(), Some(&text[..]));
        assert_eq!(
            gzip_one_member(&gzip(b""), 1 << 20).as_deref(),
            Some(&b""[..])
        );
        assert_eq!(
            gzip_one_member(&one, text.len() - 1),
            None,
            "over the limit"
        );
        let mut two = gzip(&text);
        two.extend(gzip(&text));
        assert_eq!(gzip_one_member(&two, 1 << 20), None, "a second member");
        let mut trailing = one.clone();
        trailing.extend_from_slice(&one[one.len() - 8..]);
        assert_eq!(gzip_one_member(&trailing, 1 << 20), None, "trailing bytes");
        assert_eq!(
            gzip_one_member(&one[..one.len() / 2], 1 << 20),
            None,
            "truncated"
        );
        let mut corrupt = one.clone();
        corrupt[one.len() / 2] ^= 0x55;
        assert_eq!(gzip_one_member(&corrupt, 1 << 20), None, "corrupt");
        assert_eq!(gzip_one_member(b"", 1 << 20), None);
    }
}
