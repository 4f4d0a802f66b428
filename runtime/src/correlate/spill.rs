//! Sorted runs of window events in an anonymous temporary file, and their
//! k-way merge (an external sort).
//!
//! A run is self-contained: every event carries its group-by tuple and its
//! value as bytes, not as ids of the in-memory tables, so a store can forget
//! its tables after a spill. Runs are sorted by [`Spilled`]'s order, which is
//! a total order on event content (never on arrival order), so the merge
//! yields the same sequence whatever order the events were pushed in.
//!
//! The file comes from `tempfile::tempfile()`: it has no name (on Unix it is
//! unlinked at once), so it disappears when the store is dropped, even if
//! the process is killed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use super::RecordRef;

/// The value of a spilled event, as the correlation type keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SpilledValue {
    None,
    /// value_count: the field's text.
    Text(Box<[u8]>),
    /// value_sum / value_avg: the parsed number's bits.
    Number(u64),
}

/// One event in a run. The derived order (field order) is the run order:
/// group tuple, time, tiebreak, input, record, value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Spilled {
    /// The encoded group-by tuple (see `encode_group`).
    pub group: Box<[u8]>,
    pub time_ms: i64,
    pub tiebreak: u64,
    pub input: u32,
    pub record: RecordRef,
    pub value: SpilledValue,
}

/// Runs merged into one when a level holds this many, so a scan never has
/// more than `FAN - 1` runs per level (and a handful of levels) to merge.
const FAN: usize = 16;

/// Runs of similar size, in one anonymous file.
struct Level {
    file: File,
    /// (start, end) byte offsets of each run.
    runs: Vec<(u64, u64)>,
    len: u64,
}

impl Level {
    fn new() -> io::Result<Level> {
        Ok(Level {
            file: tempfile::tempfile()?,
            runs: Vec::new(),
            len: 0,
        })
    }

    /// Appends one run written by `write`.
    fn append(
        &mut self,
        write: impl FnOnce(&mut Counting<BufWriter<&File>>) -> io::Result<()>,
    ) -> io::Result<()> {
        let start = self.len;
        let mut w = Counting {
            inner: BufWriter::with_capacity(64 << 10, &self.file),
            written: 0,
        };
        write(&mut w)?;
        w.flush()?;
        self.len += w.written;
        self.runs.push((start, self.len));
        Ok(())
    }
}

/// The runs of one store: level 0 holds runs written from memory; when a
/// level holds `FAN` runs they are merged into one run of the next level
/// and the level's file is dropped (a tiered external sort: each event is
/// rewritten about log_FAN(spills) times).
pub(super) struct Spill {
    levels: Vec<Option<Level>>,
    /// Runs and bytes written from memory.
    runs: usize,
    bytes: u64,
}

fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    let n = u32::try_from(b.len())
        .map_err(|_| io::Error::other("a group or value longer than 4 GiB"))?;
    w.write_all(&n.to_le_bytes())?;
    w.write_all(b)
}

fn put_event(w: &mut impl Write, e: &SpilledRef<'_>) -> io::Result<()> {
    put_bytes(w, e.group)?;
    w.write_all(&e.time_ms.to_le_bytes())?;
    w.write_all(&e.tiebreak.to_le_bytes())?;
    w.write_all(&e.input.to_le_bytes())?;
    w.write_all(&(e.record.source as u64).to_le_bytes())?;
    w.write_all(&e.record.record.to_le_bytes())?;
    w.write_all(&e.record.line.to_le_bytes())?;
    match e.value {
        SpilledValueRef::None => w.write_all(&[0]),
        SpilledValueRef::Text(t) => {
            w.write_all(&[1])?;
            put_bytes(w, t)
        }
        SpilledValueRef::Number(bits) => {
            w.write_all(&[2])?;
            w.write_all(&bits.to_le_bytes())
        }
    }
}

/// Counts what passes through, so run offsets are known without seeking.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Read buffer per run for `runs` runs within `memory` bytes.
fn per_run(memory: u64, runs: usize) -> usize {
    (memory / runs.max(1) as u64).clamp(4 << 10, 256 << 10) as usize
}

impl Spill {
    pub fn new() -> io::Result<Spill> {
        Ok(Spill {
            levels: vec![Some(Level::new()?)],
            runs: 0,
            bytes: 0,
        })
    }

    /// Bytes written from memory so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Runs written from memory so far.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Appends one run; `events` must already be in run order.
    pub fn write_run<'a>(
        &mut self,
        events: impl Iterator<Item = SpilledRef<'a>>,
    ) -> io::Result<()> {
        if self.levels[0].is_none() {
            self.levels[0] = Some(Level::new()?);
        }
        let Some(level) = self.levels[0].as_mut() else {
            return Ok(());
        };
        let before = level.len;
        level.append(|w| {
            for e in events {
                put_event(w, &e)?;
            }
            Ok(())
        })?;
        self.bytes += level.len - before;
        self.runs += 1;
        self.cascade()
    }

    /// Merges every full level into one run of the next.
    fn cascade(&mut self) -> io::Result<()> {
        let mut k = 0;
        while k < self.levels.len() {
            if self.levels[k].as_ref().is_some_and(|l| l.runs.len() >= FAN) {
                let Some(full) = self.levels[k].take() else {
                    break;
                };
                if k + 1 == self.levels.len() {
                    self.levels.push(None);
                }
                if self.levels[k + 1].is_none() {
                    self.levels[k + 1] = Some(Level::new()?);
                }
                let mut merge = merge_runs(std::slice::from_ref(&full), 4 << 20)?;
                if let Some(next) = self.levels[k + 1].as_mut() {
                    next.append(|w| {
                        while let Some(e) = merge.next()? {
                            put_event(
                                w,
                                &SpilledRef {
                                    group: &e.group,
                                    time_ms: e.time_ms,
                                    tiebreak: e.tiebreak,
                                    input: e.input,
                                    record: e.record,
                                    value: match &e.value {
                                        SpilledValue::None => SpilledValueRef::None,
                                        SpilledValue::Text(t) => SpilledValueRef::Text(t),
                                        SpilledValue::Number(b) => SpilledValueRef::Number(*b),
                                    },
                                },
                            )?;
                        }
                        Ok(())
                    })?;
                }
                // `full` (and its file) is dropped here.
            }
            k += 1;
        }
        Ok(())
    }

    /// Runs waiting to be merged, over all levels.
    #[cfg(test)]
    pub fn pending_runs(&self) -> usize {
        self.levels.iter().flatten().map(|l| l.runs.len()).sum()
    }

    /// Merges every run into one stream in run order. `memory` bounds the
    /// read buffers (4 KiB to 256 KiB per run).
    pub fn merge(&self, memory: u64) -> io::Result<Merge<'_>> {
        let levels: Vec<&Level> = self.levels.iter().flatten().collect();
        merge_runs_refs(&levels, memory)
    }
}

fn merge_runs(levels: &[Level], memory: u64) -> io::Result<Merge<'_>> {
    let refs: Vec<&Level> = levels.iter().collect();
    merge_runs_refs(&refs, memory)
}

fn merge_runs_refs<'a>(levels: &[&'a Level], memory: u64) -> io::Result<Merge<'a>> {
    let count: usize = levels.iter().map(|l| l.runs.len()).sum();
    let per_run = per_run(memory, count);
    let mut readers = Vec::with_capacity(count);
    let mut heap = BinaryHeap::with_capacity(count);
    for level in levels {
        for &(start, end) in &level.runs {
            let mut r = RunReader {
                file: &level.file,
                pos: start,
                end,
                buf: Vec::with_capacity(per_run),
                at: 0,
                cap: per_run,
            };
            if let Some(e) = r.next()? {
                heap.push(Reverse((e, readers.len())));
            }
            readers.push(r);
        }
    }
    Ok(Merge { readers, heap })
}

/// A borrowed event to write.
pub(super) struct SpilledRef<'a> {
    pub group: &'a [u8],
    pub time_ms: i64,
    pub tiebreak: u64,
    pub input: u32,
    pub record: RecordRef,
    pub value: SpilledValueRef<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SpilledValueRef<'a> {
    None,
    Text(&'a [u8]),
    Number(u64),
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

struct RunReader<'a> {
    file: &'a File,
    /// File offset of the end of `buf`.
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    /// Read position in `buf`.
    at: usize,
    cap: usize,
}

impl RunReader<'_> {
    /// Makes `n` bytes available at `self.at`, or reports a truncated run.
    fn need(&mut self, n: usize) -> io::Result<()> {
        if self.buf.len() - self.at >= n {
            return Ok(());
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let want = n.max(self.cap);
        while self.buf.len() < want && self.pos < self.end {
            let old = self.buf.len();
            let take = (want - old).min((self.end - self.pos) as usize);
            self.buf.resize(old + take, 0);
            let got = read_at(self.file, &mut self.buf[old..], self.pos)?;
            self.buf.truncate(old + got);
            if got == 0 {
                break;
            }
            self.pos += got as u64;
        }
        if self.buf.len() < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a correlation spill file ended early",
            ));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        self.need(n)?;
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u64(&mut self) -> io::Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    fn bytes(&mut self) -> io::Result<Box<[u8]>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.into())
    }

    fn next(&mut self) -> io::Result<Option<Spilled>> {
        if self.at == self.buf.len() && self.pos >= self.end {
            return Ok(None);
        }
        let group = self.bytes()?;
        let time_ms = self.u64()? as i64;
        let tiebreak = self.u64()?;
        let input = self.u32()?;
        let source = usize::try_from(self.u64()?)
            .map_err(|_| io::Error::other("a spilled source index does not fit"))?;
        let record = RecordRef {
            source,
            record: self.u64()?,
            line: self.u64()?,
        };
        let value = match self.take(1)?[0] {
            0 => SpilledValue::None,
            1 => SpilledValue::Text(self.bytes()?),
            2 => SpilledValue::Number(self.u64()?),
            _ => return Err(io::Error::other("a correlation spill file is corrupt")),
        };
        Ok(Some(Spilled {
            group,
            time_ms,
            tiebreak,
            input,
            record,
            value,
        }))
    }
}

/// The merged stream of all runs.
pub(super) struct Merge<'a> {
    readers: Vec<RunReader<'a>>,
    heap: BinaryHeap<Reverse<(Spilled, usize)>>,
}

impl Merge<'_> {
    /// The next event in run order, or None at the end.
    pub fn next(&mut self) -> io::Result<Option<Spilled>> {
        let Some(Reverse((e, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(next) = self.readers[i].next()? {
            self.heap.push(Reverse((next, i)));
        }
        Ok(Some(e))
    }
}
