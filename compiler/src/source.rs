//! Rule text as loaded from disk, with the line index every diagnostic needs.

use std::path::{Path, PathBuf};

/// A byte range into one [`Source`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span covering `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// An empty span at `at`.
    pub fn point(at: usize) -> Self {
        Span { start: at, end: at }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// [`Source`] records the byte offset of every `CHAR_STEP`-th character, so
/// converting between character columns and byte offsets walks at most this
/// many characters however long the line (a one-line YAML flow collection
/// yields thousands of positions on one line).
const CHAR_STEP: usize = 64;

/// One loaded rule file: its path, its text and where its lines start.
#[derive(Debug, Clone)]
pub struct Source {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
    /// Character index of each line start.
    line_chars: Vec<usize>,
    /// Byte offset of characters 0, `CHAR_STEP`, 2 × `CHAR_STEP`, ...
    char_marks: Vec<usize>,
}

/// A 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Source {
    /// Wraps already-decoded text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        let mut line_chars = vec![0];
        let mut char_marks = Vec::new();
        for (n, (i, c)) in text.char_indices().enumerate() {
            if n % CHAR_STEP == 0 {
                char_marks.push(i);
            }
            if c == '\n' {
                line_starts.push(i + 1);
                line_chars.push(n + 1);
            }
        }
        Source {
            path: path.into(),
            text,
            line_starts,
            line_chars,
            char_marks,
        }
    }

    /// The file's path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text a span covers, or `""` if the span does not fit the text.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// Line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        // An offset inside a character counts as the line start.
        let chars = match self.text.get(line_start..offset) {
            Some(_) => self
                .char_index(offset)
                .saturating_sub(self.line_chars.get(line_idx).copied().unwrap_or(0)),
            None => 0,
        };
        LineCol {
            line: line_idx + 1,
            column: chars + 1,
        }
    }

    /// Index of the character starting at byte `offset` (a char boundary).
    fn char_index(&self, offset: usize) -> usize {
        let Some(step) = self
            .char_marks
            .partition_point(|&m| m <= offset)
            .checked_sub(1)
        else {
            return 0;
        };
        let mark = self.char_marks.get(step).copied().unwrap_or(0);
        let within = self.text.get(mark..offset).map_or(0, |s| s.chars().count());
        step * CHAR_STEP + within
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }

    /// Byte offset of a 1-based line and a 0-based character column, as YAML
    /// parsers report positions in characters.
    pub fn offset_of(&self, line: usize, char_col: usize) -> usize {
        let Some(&first) = self.line_chars.get(line.wrapping_sub(1)) else {
            return self.text.len();
        };
        let index = first.saturating_add(char_col);
        let Some(&mark) = self.char_marks.get(index / CHAR_STEP) else {
            return self.text.len();
        };
        self.text
            .get(mark..)
            .and_then(|rest| rest.char_indices().nth(index % CHAR_STEP))
            .map_or(self.text.len(), |(i, _)| mark + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let s = Source::new("a.yml", "ab\né x\n");
        assert_eq!(s.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(s.line_col(3), LineCol { line: 2, column: 1 });
        // `x` sits after the two-byte `é` and a space
        assert_eq!(s.line_col(6), LineCol { line: 2, column: 3 });
        assert_eq!(s.offset_of(2, 2), 6);
        assert_eq!(s.line_text(2), "é x");
        assert_eq!(s.line_text(9), "");
    }
}
