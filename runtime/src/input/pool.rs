//! Byte buffers passed around and back between the readers, the matcher's workers and the
//! output writer. A fresh multi-megabyte buffer per batch costs fresh pages, which the kernel
//! zeroes on first touch — about 15 % of a scan's time before buffers were reused.

use std::sync::Mutex;

/// A bounded free list of byte buffers.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept for reuse; more are freed. Batches in flight are bounded by the scan, so this
/// only has to cover the buffers one round of batches uses.
const KEEP: usize = 32;

/// A buffer grown this large (by an oversized line) is freed rather than kept.
const MAX_KEPT_CAPACITY: usize = 64 << 20;

impl BufferPool {
    /// An empty buffer with at least `capacity` bytes of room, reused when one is free.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        let mut buf = reused.unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    /// Hands a buffer back for reuse.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > MAX_KEPT_CAPACITY {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.free.lock() {
            if free.len() < KEEP {
                free.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_empty_and_bounded() {
        let pool = BufferPool::default();
        let mut a = pool.take(100);
        a.extend_from_slice(b"data");
        let at = a.as_ptr();
        pool.give(a);
        let b = pool.take(10);
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), at, "the same allocation comes back");
        for _ in 0..KEEP + 10 {
            pool.give(vec![0; 8]);
        }
        assert_eq!(pool.free.lock().unwrap().len(), KEEP);
        pool.give(Vec::with_capacity(MAX_KEPT_CAPACITY + 1));
        assert_eq!(pool.free.lock().unwrap().len(), KEEP);
    }
}
