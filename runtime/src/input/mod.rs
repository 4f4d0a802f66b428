//! The input layer of the matcher: finding CloudTrail log files and splitting them into records.
//!
//! * [`discover`] turns the command line's INPUT paths (files, directories, `-`) into an ordered
//!   list of [`InputSource`]s, skipping CloudTrail digest and Insights files.
//! * [`RecordReader`] streams one source (plain or gzip, detected by magic bytes) and hands out
//!   [`Batch`]es of whole records: the raw bytes plus exact byte spans of each record, so the
//!   matcher can parse each record and copy it to the output verbatim.
//!
//! Splitting is done by one structural JSON scanner (strings, escapes, numbers, literals and an
//! explicit depth counter; no recursion) that validates the JSON grammar while it goes. Damage —
//! invalid JSON, garbage, non-object records, invalid UTF-8, oversized records, nesting deeper
//! than [`MAX_DEPTH`], truncated or corrupt gzip — is reported as [`Damage`] with the file, the
//! byte offset in the decompressed stream and the line, and the scan goes on. Memory is bounded by
//! the batch size plus [`MAX_RECORD_BYTES`] plus a few read buffers, whatever the file size.
//!
//! The accepted inputs and the damage rules are described for users in `docs/input.md`.

mod discover;
mod inflate;
mod pool;
mod reader;
mod scan;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub use discover::{discover, Discovery};
pub use pool::BufferPool;
pub use reader::{rescan_unchecked, Batch, RecordReader, RecordSpan};

/// A record (one JSON object) larger than this is damage: it is skipped while streaming, without
/// being buffered.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Containers nested deeper than this (counting every `{` and `[` from the top of the document,
/// including a `{"Records":[` envelope) are damage.
pub const MAX_DEPTH: u32 = 512;

/// Size of one read from the (decompressed) input.
pub const READ_SIZE: usize = 1 << 20;

/// One input: a file, or standard input (`-` on the command line).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InputSource {
    /// A file (plain or gzip).
    File(PathBuf),
    /// Standard input (plain or gzip).
    Stdin,
}

impl InputSource {
    /// Named as JSON Lines (`.jsonl`, `.ndjson`, either gzipped): read with
    /// [`RecordReader::line_records`].
    pub fn is_line_delimited(&self) -> bool {
        let InputSource::File(path) = self else {
            return false;
        };
        let name = path.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        name.ends_with(".jsonl") || name.ends_with(".ndjson")
    }

    /// The name used in `source.file` of the output and in damage reports: the path as given
    /// (or as found under a directory given), `-` for standard input.
    pub fn display_name(&self) -> String {
        match self {
            InputSource::File(p) => p.display().to_string(),
            InputSource::Stdin => "-".to_string(),
        }
    }
}

/// Damage found in the input: something that was skipped. The scan goes on after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The input's display name (see [`InputSource::display_name`]).
    pub file: String,
    /// Byte offset in the decompressed stream: where the damaged record starts for damage of a
    /// whole record (not an object, too large, invalid UTF-8), otherwise the offending byte.
    /// 0 for errors about a whole file (cannot open, missing path).
    pub offset: u64,
    /// 1-based line of `offset`; 0 for errors about a whole file.
    pub line: u64,
    /// The 0-based index of the damaged record within its file, when the damage is in a place
    /// where a record was expected (see `docs/input.md` for how indexes are counted).
    pub record: Option<u64>,
    /// Human-readable description, saying what was skipped.
    pub reason: String,
}

impl Damage {
    pub(crate) fn whole_file(file: impl Into<String>, reason: impl Into<String>) -> Damage {
        Damage {
            file: file.into(),
            offset: 0,
            line: 0,
            record: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}:{} (byte {}", self.file, self.line, self.offset)?;
            if let Some(r) = self.record {
                write!(f, ", record {r}")?;
            }
            write!(f, "): {}", self.reason)
        }
    }
}
