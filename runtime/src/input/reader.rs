//! Streaming reader of one input: decompression (gzip by magic bytes), a bounded buffer, and the
//! structural scanner; hands out batches of whole records.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use super::inflate;
use super::scan::{self, Scanner, Span};
use super::{BufferPool, Damage, InputSource, MAX_RECORD_BYTES, READ_SIZE};

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Read past a batch's target, to find the end of the record that
/// straddles it: CloudTrail records are a few KiB.
const STRADDLE: usize = 64 << 10;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One record of a [`Batch`]: `data[start..end]` is exactly the record's JSON text (an object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSpan {
    /// Offset of the record's first byte (`{`) in [`Batch::data`].
    pub start: usize,
    /// Offset just after the record's last byte (`}`) in [`Batch::data`].
    pub end: usize,
    /// 0-based index of the record within its file (`source.record`).
    pub index: u64,
    /// 1-based line where the record starts (`source.line`).
    pub line: u64,
    /// Absolute offset of the record's first byte in the (decompressed) stream.
    pub offset: u64,
    /// False for a line taken whole without being checked (see
    /// [`RecordReader::line_records`]), or an object taken whole inside an
    /// envelope (see [`RecordReader::container_records`]): the caller must
    /// validate it.
    pub checked: bool,
    /// For an object taken whole inside an envelope, the depth of the array
    /// holding it (1 or 2), else 0: see [`rescan_unchecked`].
    pub envelope: u8,
}

/// Whole records read from one input. `data` may also hold bytes between and around the records
/// (whitespace, the `{"Records":[` envelope, skipped garbage): use the spans.
#[derive(Debug, Default)]
pub struct Batch {
    /// Raw decompressed input bytes holding the records.
    pub data: Vec<u8>,
    /// In input order.
    pub records: Vec<RecordSpan>,
    /// Damage found since the previous batch, in input order.
    pub damage: Vec<Damage>,
    /// Decompressed bytes read from the input since the previous batch (the sum over all batches
    /// is the decompressed size of the input).
    pub bytes_in: u64,
    /// Raw (possibly compressed) bytes read from the file or stdin since the previous batch.
    pub raw_bytes_in: u64,
    /// The reader's record size limit (for [`rescan_unchecked`]).
    pub max_record_bytes: u64,
}

impl Batch {
    /// The JSON text of record `i` of this batch.
    pub fn record(&self, i: usize) -> Option<&[u8]> {
        let span = self.records.get(i)?;
        self.data.get(span.start..span.end)
    }
}

fn span_in(s: Span, base: u64) -> RecordSpan {
    RecordSpan {
        start: s.start.saturating_sub(base) as usize,
        end: s.end.saturating_sub(base) as usize,
        index: s.index,
        line: s.line,
        offset: s.start,
        checked: s.checked,
        envelope: s.envelope,
    }
}

/// A record handed out unchecked (`span.checked` false: a line taken whole,
/// see [`RecordReader::line_records`], or an envelope's object, see
/// [`RecordReader::container_records`]) that the caller found not to be one
/// valid object, read again as the strict reader reads it. Returns the
/// records found (spans in `data`, checked) and whether they supersede the
/// batch's later records too, in which case the caller stops there.
///
/// A line is scanned by itself: a line holding several concatenated
/// objects yields several records, with consecutive indexes from the
/// line's own. An envelope's object is scanned with the rest of the input,
/// which is the rest of `data` (the reader takes such objects whole only
/// then): the damage in `damage` at or after the object came from the
/// first reading and is dropped. The damage found is added to `damage`.
pub fn rescan_unchecked(
    file: &str,
    batch: (&[u8], u64),
    span: &RecordSpan,
    damage: &mut Vec<Damage>,
) -> (Vec<RecordSpan>, bool) {
    let (data, max_record_bytes) = batch;
    let at = (span.offset, span.line, span.index);
    let (records, found, rest) = if span.envelope > 0 {
        damage.retain(|d| d.offset < span.offset);
        let bytes = data.get(span.start..).unwrap_or(&[]);
        let (records, found) =
            scan::rescan_envelope(file, bytes, at, span.envelope, max_record_bytes);
        (records, found, true)
    } else {
        let bytes = data.get(span.start..span.end).unwrap_or(&[]);
        let (records, found) = scan::rescan_line(file, bytes, at);
        (records, found, false)
    };
    damage.extend(found);
    let base = span.offset - span.start as u64;
    (
        records.into_iter().map(|s| span_in(s, base)).collect(),
        rest,
    )
}

/// Gzip files of at most this size are read whole and decompressed in one
/// call, when they say they decompress to at most [`INFLATE_WHOLE_SIZE`]:
/// CloudTrail's files are far smaller. Together the two bound what a reader
/// holds for a file at once (each reader thread reads one file at a time).
const INFLATE_WHOLE_COMPRESSED: u64 = 8 << 20;
/// See [`INFLATE_WHOLE_COMPRESSED`].
const INFLATE_WHOLE_SIZE: usize = 32 << 20;

/// A gzip file of at most [`INFLATE_WHOLE_COMPRESSED`] bytes, read whole;
/// `None` for a larger one (streamed from the file instead). Leaves the file
/// at an unspecified position.
fn read_small(file: &mut File) -> Option<Vec<u8>> {
    let len = file.metadata().ok()?.len();
    if !(18..=INFLATE_WHOLE_COMPRESSED).contains(&len) {
        return None;
    }
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut compressed = Vec::with_capacity(len as usize);
    file.read_to_end(&mut compressed).ok()?;
    Some(compressed)
}

/// Reads up to the two bytes of the gzip magic (fewer at end of input).
fn read_magic(reader: &mut impl Read, name: &str) -> Result<Vec<u8>, Damage> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match reader.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Damage::whole_file(name, format!("cannot read: {e}"))),
        }
    }
    Ok(magic[..got].to_vec())
}

/// Counts the raw bytes read from the underlying file or stream.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Streams one input and splits it into records; see the module docs.
///
/// Memory is bounded by the batch size, [`MAX_RECORD_BYTES`] (or the limit set with
/// [`RecordReader::with_max_record_bytes`]), a few [`READ_SIZE`] buffers, and for a small
/// gzip file decompressed whole, its compressed and decompressed bytes (at most 8 and
/// 32 MiB).
pub struct RecordReader {
    name: String,
    src: Box<dyn Read + Send>,
    /// A small gzip file read whole, not yet decompressed.
    pending_gzip: Option<Vec<u8>>,
    gzip: bool,
    /// Raw bytes read, for compressed input (otherwise raw = decompressed bytes).
    raw_count: Option<Arc<AtomicU64>>,
    raw_reported: u64,
    /// `buf[0]` is at absolute offset `base` of the decompressed stream.
    buf: Vec<u8>,
    base: u64,
    scanner: Scanner,
    bytes_since: u64,
    eof: bool,
    started: bool,
    finished: bool,
    read_error: Option<String>,
    capacity_hint: usize,
    /// The target size of the batch being read.
    batch_target: usize,
    pool: Option<Arc<BufferPool>>,
    read_size: usize,
    #[cfg(test)]
    pub(crate) peak_buffer: usize,
}

impl Drop for RecordReader {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give(std::mem::take(&mut self.buf));
        }
    }
}

impl RecordReader {
    /// Opens a file or standard input. Gzip is detected by its magic bytes (`1f 8b`), whatever
    /// the file name; concatenated gzip members are read as one stream.
    pub fn open(source: &InputSource) -> Result<RecordReader, Damage> {
        let name = source.display_name();
        match source {
            InputSource::File(path) => {
                let mut file = File::open(path)
                    .map_err(|e| Damage::whole_file(&name, format!("cannot open: {e}")))?;
                if file.metadata().is_ok_and(|m| m.is_dir()) {
                    return Err(Damage::whole_file(&name, "is a directory"));
                }
                let magic = read_magic(&mut file, &name)?;
                if magic == GZIP_MAGIC {
                    if let Some(compressed) = read_small(&mut file) {
                        return Ok(RecordReader::assemble_gzip_in_memory(name, compressed));
                    }
                }
                // A regular file is rewound rather than chained behind the sniffed bytes, so
                // plain files are read straight into the buffer (no wrapper in between).
                if file.seek(SeekFrom::Start(0)).is_ok() {
                    Ok(RecordReader::assemble(
                        name,
                        Vec::new(),
                        file,
                        magic == GZIP_MAGIC,
                    ))
                } else {
                    Ok(RecordReader::assemble(
                        name,
                        magic.clone(),
                        file,
                        magic == GZIP_MAGIC,
                    ))
                }
            }
            InputSource::Stdin => RecordReader::from_reader(name, io::stdin()),
        }
    }

    /// Reads from any byte stream (plain or gzip, sniffed like [`RecordReader::open`]); `name`
    /// is used in damage reports and as [`RecordReader::display_name`].
    pub fn from_reader(
        name: impl Into<String>,
        mut reader: impl Read + Send + 'static,
    ) -> Result<RecordReader, Damage> {
        let name = name.into();
        let magic = read_magic(&mut reader, &name)?;
        let gzip = magic == GZIP_MAGIC;
        Ok(RecordReader::assemble(name, magic, reader, gzip))
    }

    /// A small gzip file, read whole: decompressed in one call on the first
    /// read ([`RecordReader::start_gzip`]).
    fn assemble_gzip_in_memory(name: String, compressed: Vec<u8>) -> RecordReader {
        let mut reader = RecordReader::assemble(name, Vec::new(), io::empty(), false);
        reader.gzip = true;
        reader.raw_count = Some(Arc::new(AtomicU64::new(0)));
        reader.pending_gzip = Some(compressed);
        reader
    }

    /// Decompresses a gzip file held in memory: in one call to libdeflate
    /// when it is exactly one member — straight into the batch's buffer when
    /// it fits a read or the batch, else into a buffer read from like a
    /// file — and
    /// otherwise (several members, trailing bytes, damage, a large size) by
    /// streaming it with flate2, which reads every member and reports damage
    /// at the exact point where decompression fails.
    fn start_gzip(&mut self, compressed: Vec<u8>) {
        let count = self.raw_count.clone().unwrap_or_default();
        let len = compressed.len() as u64;
        // This runs on the first read, with nothing buffered yet. A file
        // that fits a batch is decompressed into the batch's buffer whole:
        // then the batch holds the rest of the input, and the records of
        // its envelope can be taken whole (`container_records`).
        let into_batch = self.read_size.max(self.batch_target);
        let fits_batch = self.buf.is_empty()
            && inflate::stated_size(&compressed).is_some_and(|n| n <= into_batch);
        if fits_batch {
            if inflate::gzip_one_member_into(&compressed, into_batch, &mut self.buf) {
                count.store(len, Ordering::Relaxed);
                self.bytes_since += self.buf.len() as u64;
                self.eof = true;
                return;
            }
        } else if let Some(data) = inflate::gzip_one_member(&compressed, INFLATE_WHOLE_SIZE) {
            count.store(len, Ordering::Relaxed);
            self.src = Box::new(Cursor::new(data));
            return;
        }
        let raw = Counting {
            inner: Cursor::new(compressed),
            count,
        };
        self.src = Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            256 << 10,
            raw,
        )));
    }

    /// `prefix`: bytes already read from `reader` (the sniffed magic), to be read first.
    fn assemble(
        name: String,
        prefix: Vec<u8>,
        reader: impl Read + Send + 'static,
        gzip: bool,
    ) -> RecordReader {
        let (src, raw_count): (Box<dyn Read + Send>, _) = if gzip {
            let count = Arc::new(AtomicU64::new(prefix.len() as u64));
            let raw = Counting {
                inner: reader,
                count: Arc::clone(&count),
            };
            let stream = Cursor::new(prefix).chain(raw);
            let decoder = MultiGzDecoder::new(BufReader::with_capacity(256 << 10, stream));
            (Box::new(decoder), Some(count))
        } else if prefix.is_empty() {
            // Raw bytes are the decompressed bytes: no counting wrapper needed.
            (Box::new(reader), None)
        } else {
            (Box::new(Cursor::new(prefix).chain(reader)), None)
        };
        RecordReader {
            scanner: Scanner::new(name.clone(), MAX_RECORD_BYTES as u64),
            name,
            src,
            pending_gzip: None,
            gzip,
            raw_count,
            raw_reported: 0,
            buf: Vec::new(),
            base: 0,
            bytes_since: 0,
            eof: false,
            started: false,
            finished: false,
            read_error: None,
            capacity_hint: 2 * READ_SIZE,
            batch_target: 0,
            pool: None,
            read_size: READ_SIZE,
            #[cfg(test)]
            peak_buffer: 0,
        }
    }

    /// Line-delimited input (JSON Lines): a line that is `{...}` is handed
    /// out whole, unchecked (`RecordSpan::checked` false), so that the
    /// caller validates it in the same pass that parses it instead of the
    /// reader scanning it twice. A caller that finds such a line invalid
    /// calls [`rescan_unchecked`] for exactly what the strict reader reports.
    pub fn line_records(mut self, on: bool) -> RecordReader {
        self.scanner.set_line_records(on);
        self
    }

    /// Objects that are records inside an envelope (`{"Records":[...]}`, or
    /// a top-level array) are handed out whole, unchecked
    /// (`RecordSpan::checked` false, `RecordSpan::envelope` set), when the
    /// batch holds the rest of the input — as it does for a CloudTrail
    /// file — so that the caller validates each in the pass that parses it
    /// instead of the reader scanning it byte by byte first. A caller that
    /// finds one invalid calls [`rescan_unchecked`] for exactly what the
    /// strict reader reports from there on.
    pub fn container_records(mut self, on: bool) -> RecordReader {
        self.scanner.set_container_records(on);
        self
    }

    /// Takes batch buffers from `pool` (give each [`Batch::data`] back to it
    /// when done with the batch).
    pub fn buffers_from(mut self, pool: Arc<BufferPool>) -> RecordReader {
        self.pool = Some(pool);
        self
    }

    /// Sets the record size limit (default [`MAX_RECORD_BYTES`]).
    pub fn with_max_record_bytes(mut self, max: usize) -> RecordReader {
        self.scanner.set_max_record(max as u64);
        self
    }

    /// Tests: read in tiny pieces to exercise every split point.
    #[cfg(test)]
    pub(crate) fn with_read_size(mut self, n: usize) -> RecordReader {
        self.read_size = n.max(1);
        self
    }

    /// The name used in damage reports and `source.file`.
    pub fn display_name(&self) -> &str {
        &self.name
    }

    /// Whether the input is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Whether the input has been read to its end: the batch last handed
    /// out was its last.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next batch of whole records, about `target_bytes` of data (a record is never split
    /// across batches, so a batch may be larger by up to one record). A batch may hold only
    /// damage and no records. `None` at the end of input.
    pub fn next_batch(&mut self, target_bytes: usize) -> Option<Batch> {
        if self.finished {
            return None;
        }
        let target = target_bytes.max(1);
        self.capacity_hint = target.saturating_add(2 * self.read_size).min(256 << 20);
        self.batch_target = target;
        loop {
            if !self.started {
                if self.buf.len() < BOM.len() && !self.eof {
                    self.fill_up_to(self.read_size);
                    continue;
                }
                if self.buf.starts_with(BOM) {
                    self.scanner.pos = self.base + BOM.len() as u64;
                }
                self.started = true;
            }
            let stop_at = self.base + target as u64;
            // A read error ends the input early, and is reported in place
            // of what is left open: only a clean end makes the rest whole.
            self.scanner.whole_rest = self.eof
                && self.read_error.is_none()
                && self.base + (self.buf.len() as u64) < stop_at;
            if self.scanner.feed(&self.buf, self.base, stop_at) {
                return Some(self.cut());
            }
            if self.eof {
                let quiet = match self.read_error.take() {
                    Some(reason) => {
                        self.scanner.report_read_error(reason);
                        true
                    }
                    None => false,
                };
                self.scanner.finish(&self.buf, self.base, quiet);
                self.finished = true;
                let batch = self.cut();
                if batch.records.is_empty() && batch.damage.is_empty() {
                    return None;
                }
                return Some(batch);
            }
            if self.make_room() {
                return Some(self.cut());
            }
            // Read up to the target and a little past it, for the record
            // that straddles it: what is read past that record is copied
            // into the next batch's buffer (reading a whole READ_SIZE
            // there copied half of every 2 MiB batch).
            let have = self.base + self.buf.len() as u64;
            let want = match stop_at.checked_sub(have) {
                Some(short) if short > 0 => short as usize + STRADDLE,
                _ => self.read_size,
            };
            self.fill_up_to(want);
        }
    }

    /// Drops bytes that are no longer needed before reading more. Returns true when finished
    /// records hold the buffer and a batch must be handed out first.
    fn make_room(&mut self) -> bool {
        let keep = self.scanner.keep_from();
        if let Some(last) = self.scanner.records.last() {
            // Records are pending: they must stay in one contiguous buffer. If much is droppable
            // behind them (an oversized record or garbage being skipped), hand them out now.
            return keep.saturating_sub(last.end) >= self.read_size as u64;
        }
        let prefix = keep.saturating_sub(self.base) as usize;
        let tail = self.buf.len().saturating_sub(prefix);
        if prefix > 0 && (prefix >= tail || prefix >= self.read_size) {
            self.buf.drain(..prefix.min(self.buf.len()));
            self.base = keep;
        }
        false
    }

    /// Reads up to `want` more bytes, and at most [`READ_SIZE`].
    fn fill_up_to(&mut self, want: usize) {
        let ask = want.clamp(1, self.read_size);
        if self.buf.capacity() == 0 {
            if let Some(pool) = &self.pool {
                // A file's first buffer: reused too (an S3 tree is a thousand small files).
                self.buf = pool.take(self.capacity_hint);
            }
        }
        if let Some(compressed) = self.pending_gzip.take() {
            self.start_gzip(compressed);
            if self.eof {
                #[cfg(test)]
                {
                    self.peak_buffer = self.peak_buffer.max(self.buf.capacity());
                }
                return;
            }
        }
        let old = self.buf.len();
        // Exact: doubling a buffer that holds a 16 MiB record would double the memory bound.
        self.buf.reserve_exact(ask);
        let result = (&mut self.src).take(ask as u64).read_to_end(&mut self.buf);
        let n = self.buf.len() - old;
        self.bytes_since += n as u64;
        #[cfg(test)]
        {
            self.peak_buffer = self.peak_buffer.max(self.buf.capacity());
        }
        match result {
            Ok(_) => {
                if n < ask {
                    self.eof = true;
                }
            }
            Err(e) => {
                self.eof = true;
                let consumed = self.base + self.buf.len() as u64;
                self.read_error = Some(if self.gzip {
                    format!(
                        "gzip stream truncated or corrupt after {consumed} decompressed bytes \
                         ({e}); the rest of the file is skipped"
                    )
                } else {
                    format!("read error ({e}); the rest of the input is skipped")
                });
            }
        }
    }

    /// Hands out everything up to the scanner's `keep_from` as a batch.
    fn cut(&mut self) -> Batch {
        let keep = self.scanner.keep_from();
        let cut_at = (keep.saturating_sub(self.base) as usize).min(self.buf.len());
        let tail_len = self.buf.len() - cut_at;
        let capacity = self.capacity_hint.max(tail_len + self.read_size);
        let mut tail = match &self.pool {
            Some(pool) => pool.take(capacity),
            None => Vec::with_capacity(capacity),
        };
        tail.extend_from_slice(&self.buf[cut_at..]);
        self.buf.truncate(cut_at);
        let data = std::mem::replace(&mut self.buf, tail);
        let base = self.base;
        let records = self
            .scanner
            .records
            .drain(..)
            .map(|s| span_in(s, base))
            .collect();
        self.base = base + cut_at as u64;
        let bytes_in = std::mem::take(&mut self.bytes_since);
        let raw = match &self.raw_count {
            Some(count) => count.load(Ordering::Relaxed),
            None => self.raw_reported + bytes_in,
        };
        let batch = Batch {
            data,
            records,
            damage: std::mem::take(&mut self.scanner.damage),
            bytes_in,
            raw_bytes_in: raw.saturating_sub(self.raw_reported),
            max_record_bytes: self.scanner.max_record(),
        };
        self.raw_reported = raw;
        batch
    }
}
