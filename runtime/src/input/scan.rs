//! The structural scanner: a resumable byte-level state machine over a stream of top-level JSON
//! values, which validates the JSON grammar (not UTF-8, which is checked per record), tracks
//! depth with an explicit counter and a bit stack, and reports record spans and damage in
//! absolute offsets of the (decompressed) stream.
//!
//! The scanner never holds input bytes itself; the reader owns the buffer and passes it in on
//! every call together with the absolute offset of its first byte. [`Scanner::keep_from`] tells the
//! reader which bytes it still needs.

use memchr::memchr;

#[cfg(target_arch = "x86_64")]
use crate::bytes::Avx2;
use crate::bytes::{Portable, StringSearch};

use super::{Damage, MAX_DEPTH};

/// A record found: absolute byte range in the stream, index within the file, 1-based line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u64,
    pub end: u64,
    pub index: u64,
    pub line: u64,
    /// The grammar and UTF-8 were checked (false: a line taken whole, see
    /// `line_records`, or an object taken whole inside an envelope, see
    /// `container_records`).
    pub checked: bool,
    /// For an object taken whole inside an envelope: the depth of the array
    /// holding it (1: a top-level array; 2: the `Records` array of an
    /// envelope object); 0 otherwise.
    pub envelope: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

impl Num {
    fn can_end(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A value is expected: at top level, after `:`, after `,` in an array.
    Value,
    /// After `[`: a value or `]`.
    ValueOrClose,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object: a key.
    Key,
    /// After a key.
    Colon,
    /// After a value inside a container.
    CommaOrClose,
    Str,
    StrEsc,
    /// Inside `\uXXXX`: how many hex digits are still expected.
    StrHex(u8),
    Num(Num),
    /// Inside `true`/`false`/`null`: which literal, how many bytes matched.
    Lit(u8, u8),
    /// After an error: discarding bytes up to the next newline.
    Skip,
}

/// What the current top-level value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Top {
    /// Nothing open, or a top-level scalar.
    None,
    /// An object that is (for now) a record candidate.
    Object,
    /// A top-level array: its elements are records.
    Array,
    /// An object with a `"Records": [...]` member: that array's elements are records.
    RecordsObject,
}

const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

pub(crate) struct Scanner {
    file: String,
    /// Absolute offset of the next byte to look at.
    pub(crate) pos: u64,
    /// 1-based line of `pos`.
    line: u64,
    state: State,
    str_is_key: bool,
    /// The current string is a key directly inside a top-level object (a "Records" candidate).
    key_track: bool,
    key_start: u64,
    last_key_records: bool,
    depth: u32,
    /// Bit `d` set: the container at depth `d + 1` is an object.
    stack: [u64; (MAX_DEPTH as usize).div_ceil(64)],
    top: Top,
    in_records_array: bool,
    in_record: bool,
    rec_start: u64,
    rec_line: u64,
    rec_index: u64,
    rec_first: u8,
    /// A string of the record in progress holds a non-ASCII byte (UTF-8 must be checked).
    rec_non_ascii: bool,
    rec_depth: u32,
    /// The record in progress is over the size limit: its bytes are not kept.
    discarding: bool,
    next_index: u64,
    max_record: u64,
    /// An error happened inside a container document (`{"Records":[...]}` or `[...]`); the lines
    /// after it are fragments of that document, so further errors are only counted.
    container_damaged: bool,
    suppressed: u64,
    suppressed_at: (u64, u64),
    pub(crate) records: Vec<Span>,
    pub(crate) damage: Vec<Damage>,
    /// Take a line that is one `{...}` whole, without checking it (see
    /// [`Scanner::set_line_records`]).
    line_records: bool,
    /// Where the last line taken whole ended (so a line start is known even
    /// when the buffer begins there); 0 at the start of the stream.
    line_taken_until: u64,
    /// Take an envelope's objects whole (see [`Scanner::set_container_records`]).
    container_records: bool,
    /// The buffer fed holds the rest of the input, and no record in it ends
    /// at the batch's target: set by the reader before each feed.
    pub(crate) whole_rest: bool,
}

/// The scanner compiled for AVX2, so that the string search inlines into it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn feed_avx2(s: &mut Scanner, search: Avx2, buf: &[u8], base: u64, stop_at: u64) -> bool {
    s.feed_with(search, buf, base, stop_at)
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Scans one unchecked line (see [`Scanner::set_line_records`]) strictly, as
/// the reader would have: its records (checked) and damage. `at` is where
/// the line starts in its stream: offset, line and record index.
pub(crate) fn rescan_line(
    file: &str,
    bytes: &[u8],
    at: (u64, u64, u64),
) -> (Vec<Span>, Vec<Damage>) {
    let (offset, line, index) = at;
    let mut scanner = Scanner::new(file.to_string(), u64::MAX);
    scanner.pos = offset;
    scanner.line = line;
    scanner.next_index = index;
    scanner.feed(bytes, offset, u64::MAX);
    scanner.finish(bytes, offset, false);
    (scanner.records, scanner.damage)
}

/// Scans strictly, from an object taken whole inside an envelope (see
/// [`Scanner::set_container_records`]) to the end of the input, as the
/// scanner would have scanned it: `bytes` run from the object's first byte
/// to the end of the input; `at` is where the object starts in the stream
/// (offset, line, record index); `envelope` is its span's.
pub(crate) fn rescan_envelope(
    file: &str,
    bytes: &[u8],
    at: (u64, u64, u64),
    envelope: u8,
    max_record: u64,
) -> (Vec<Span>, Vec<Damage>) {
    let (offset, line, index) = at;
    let mut scanner = Scanner::new(file.to_string(), max_record);
    scanner.pos = offset;
    scanner.line = line;
    scanner.next_index = index;
    // The state the object was taken in: inside a top-level array, or
    // inside the `Records` array of a top-level object.
    if envelope == 2 {
        scanner.top = Top::RecordsObject;
        scanner.push(offset, true);
        scanner.push(offset, false);
        scanner.in_records_array = true;
    } else {
        scanner.top = Top::Array;
        scanner.push(offset, false);
    }
    scanner.state = State::Value;
    scanner.feed(bytes, offset, u64::MAX);
    scanner.finish(bytes, offset, false);
    (scanner.records, scanner.damage)
}

impl Scanner {
    pub(crate) fn new(file: String, max_record: u64) -> Scanner {
        Scanner {
            file,
            pos: 0,
            line: 1,
            state: State::Value,
            str_is_key: false,
            key_track: false,
            key_start: 0,
            last_key_records: false,
            depth: 0,
            stack: [0; (MAX_DEPTH as usize).div_ceil(64)],
            top: Top::None,
            in_records_array: false,
            in_record: false,
            rec_start: 0,
            rec_line: 0,
            rec_index: 0,
            rec_first: 0,
            rec_non_ascii: false,
            rec_depth: 0,
            discarding: false,
            next_index: 0,
            max_record,
            container_damaged: false,
            suppressed: 0,
            suppressed_at: (0, 0),
            records: Vec::new(),
            damage: Vec::new(),
            line_records: false,
            line_taken_until: 0,
            container_records: false,
            whole_rest: false,
        }
    }

    /// Line-delimited input: a line that starts with `{`, ends with `}` and
    /// cannot be a `{"Records":[...]}` envelope is taken as one record
    /// without being scanned byte by byte; its span is marked unchecked, and
    /// whoever parses it must validate it (the matcher does so in the same
    /// pass that extracts fields) and fall back to [`rescan_line`] when it is
    /// not one valid object. Any other line goes through the state machine.
    pub(crate) fn set_line_records(&mut self, on: bool) {
        self.line_records = on;
    }

    /// An object that is a record inside an envelope (`{"Records":[...]}` or
    /// a top-level array) is taken whole, its end found by stage one's
    /// string rules, and marked unchecked: whoever parses it validates it
    /// and, when it is not one valid object, calls [`rescan_envelope`],
    /// which reads the rest of the input again from it as this scanner
    /// would have. So that the rest of the input is at hand then, this is
    /// done only while the buffer fed holds the rest of the input and the
    /// batch will not be cut in it ([`Scanner::whole_rest`]), not after a
    /// damaged container (whose later errors are only counted), and not in
    /// JSON Lines (where the scan again would have to take lines whole as
    /// well, numbering a line of several objects as `line_records` does).
    pub(crate) fn set_container_records(&mut self, on: bool) {
        self.container_records = on;
    }

    /// Takes the object opening at `buf[i]` whole (see
    /// [`Scanner::set_container_records`]): the bytes it spans, or `None`
    /// when it must be scanned byte by byte (it does not close in the
    /// buffer, is over the size limit, or nests too deep).
    #[inline]
    fn envelope_object(&mut self, buf: &[u8], i: usize, base: u64) -> Option<usize> {
        let room = (buf.len() - i).min(usize::try_from(self.max_record).unwrap_or(usize::MAX));
        let depth_left = u64::from(MAX_DEPTH - self.depth);
        let (len, newlines) = crate::json::object_end(&buf[i..i + room], depth_left)?;
        let start = base + i as u64;
        self.records.push(Span {
            start,
            end: start + len as u64,
            index: self.next_index,
            line: self.line,
            checked: false,
            envelope: self.depth as u8,
        });
        self.next_index += 1;
        self.line += newlines;
        self.state = State::CommaOrClose;
        Some(len)
    }

    /// The line starting at `buf[i]` (a `{` at the start of a line, at top
    /// level), when it can be taken whole: its length without trailing
    /// blanks, and the length including its newline.
    #[inline]
    fn whole_line(&self, buf: &[u8], i: usize) -> Option<(usize, usize)> {
        let rest = &buf[i..];
        let nl = memchr(b'\n', rest)?;
        let mut len = nl;
        while len > 0 && matches!(rest[len - 1], b' ' | b'\t' | b'\r') {
            len -= 1;
        }
        let line = &rest[..len];
        (line.last() == Some(&b'}')
            && len as u64 <= self.max_record
            && !crate::bytes::contains_records_key(line))
        .then_some((len, nl + 1))
    }

    pub(crate) fn set_max_record(&mut self, max: u64) {
        self.max_record = max;
    }

    pub(crate) fn max_record(&self) -> u64 {
        self.max_record
    }

    /// The earliest absolute offset whose bytes are still needed (by a record in progress, or a
    /// top-level key that may be `"Records"`). Everything before it that is not part of a
    /// finished record may be dropped.
    pub(crate) fn keep_from(&self) -> u64 {
        let mut keep = self.pos;
        if self.in_record && self.rec_first == b'{' && !self.discarding {
            keep = keep.min(self.rec_start);
        }
        if self.state == State::Str
            && self.str_is_key
            && self.key_track
            && self.pos.saturating_sub(self.key_start) <= 8
        {
            keep = keep.min(self.key_start);
        }
        keep
    }

    /// Scans `buf[self.pos - base..]`, where `buf[0]` is at absolute offset `base`. Returns true
    /// when it stopped early because a record ending at or after `stop_at` was completed.
    pub(crate) fn feed(&mut self, buf: &[u8], base: u64, stop_at: u64) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = Avx2::detect() {
            // SAFETY: `feed_avx2` needs AVX2, which `detect` found.
            return unsafe { feed_avx2(self, avx2, buf, base, stop_at) };
        }
        self.feed_with(Portable, buf, base, stop_at)
    }

    /// [`Scanner::feed`] with a string search; inlined into a caller compiled
    /// for the search's CPU features.
    #[inline(always)]
    fn feed_with<S: StringSearch>(
        &mut self,
        search: S,
        buf: &[u8],
        base: u64,
        stop_at: u64,
    ) -> bool {
        let n = buf.len();
        let mut i = self.pos.saturating_sub(base) as usize;
        let mut stopped = false;
        'scan: while i < n {
            let b = buf[i];
            let at = base + i as u64;
            match self.state {
                State::Str => {
                    // The hot path: stays here through `"key":"value","key":` chains and
                    // simple escapes, which is most of a CloudTrail record.
                    loop {
                        let mut seen = 0;
                        i += search.find_special(&buf[i..], &mut seen);
                        if seen & 0x8080_8080_8080_8080 != 0 {
                            self.rec_non_ascii = true;
                        }
                        let Some(&c) = buf.get(i) else { break };
                        let at = base + i as u64;
                        if c == b'\\' {
                            match buf.get(i + 1) {
                                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                                    i += 2;
                                    continue;
                                }
                                Some(b'u')
                                    if buf
                                        .get(i + 2..i + 6)
                                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                                {
                                    i += 6;
                                    continue;
                                }
                                _ => {
                                    i += 1;
                                    self.state = State::StrEsc;
                                    break;
                                }
                            }
                        }
                        if c != b'"' {
                            self.error(at, c, "control character inside a string");
                            i += 1;
                            break;
                        }
                        i += 1;
                        self.string_end(at, buf, base);
                        if self.state == State::Colon {
                            if buf.get(i) == Some(&b':') {
                                self.state = State::Value;
                                if buf.get(i + 1) == Some(&b'"') {
                                    self.value_start(base + i as u64 + 1, b'"');
                                    i += 2;
                                    continue;
                                }
                                i += 1;
                            }
                            break;
                        }
                        // After a value: `,"` starts the next key; closing brackets close.
                        while self.state == State::CommaOrClose {
                            match buf.get(i) {
                                Some(b',')
                                    if buf.get(i + 1) == Some(&b'"') && self.top_is_object() =>
                                {
                                    self.begin_key(base + i as u64 + 1);
                                    i += 2;
                                }
                                Some(&c @ (b'}' | b']')) => {
                                    let at = base + i as u64;
                                    let before = self.records.len();
                                    self.close(at, c, buf, base);
                                    i += 1;
                                    if self.records.len() > before && at + 1 >= stop_at {
                                        stopped = true;
                                        break 'scan;
                                    }
                                }
                                _ => break,
                            }
                        }
                        if self.state != State::Str {
                            break;
                        }
                    }
                }
                State::StrEsc => {
                    i += 1;
                    match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            self.state = State::Str
                        }
                        b'u' => self.state = State::StrHex(4),
                        _ => self.error(at, b, "invalid escape in a string"),
                    }
                }
                State::StrHex(k) => {
                    i += 1;
                    if b.is_ascii_hexdigit() {
                        self.state = if k <= 1 {
                            State::Str
                        } else {
                            State::StrHex(k - 1)
                        };
                    } else {
                        self.error(at, b, "invalid \\u escape in a string");
                    }
                }
                State::Num(s) => {
                    let next = match (s, b) {
                        (Num::Minus, b'0') => Some(Num::Zero),
                        (Num::Minus, b'1'..=b'9') | (Num::Int, b'0'..=b'9') => Some(Num::Int),
                        (Num::Zero | Num::Int, b'.') => Some(Num::Dot),
                        (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Some(Num::Exp),
                        (Num::Dot | Num::Frac, b'0'..=b'9') => Some(Num::Frac),
                        (Num::Exp, b'+' | b'-') => Some(Num::ExpSign),
                        (Num::Exp | Num::ExpSign | Num::ExpDigits, b'0'..=b'9') => {
                            Some(Num::ExpDigits)
                        }
                        _ => None,
                    };
                    match next {
                        Some(s) => {
                            self.state = State::Num(s);
                            i += 1;
                        }
                        // The byte after a number is looked at again in the new state.
                        None if s.can_end() => self.value_done(at, buf, base),
                        None => {
                            self.error(at, b, "malformed number");
                            i += 1;
                        }
                    }
                }
                State::Lit(which, matched) => {
                    i += 1;
                    let lit = LITERALS[usize::from(which)];
                    if lit.get(usize::from(matched)) == Some(&b) {
                        if usize::from(matched) + 1 == lit.len() {
                            self.value_done(at + 1, buf, base);
                        } else {
                            self.state = State::Lit(which, matched + 1);
                        }
                    } else {
                        self.error(at, b, "invalid literal");
                    }
                }
                State::Skip => match memchr(b'\n', &buf[i..]) {
                    Some(j) => {
                        i += j + 1;
                        self.line += 1;
                        self.state = State::Value;
                    }
                    None => i = n,
                },
                _ if is_ws(b) => {
                    i += 1;
                    if b == b'\n' {
                        self.line += 1;
                    }
                }
                State::Value
                    if self.line_records
                        && b == b'{'
                        && self.depth == 0
                        && (i > 0 && buf[i - 1] == b'\n' || at == self.line_taken_until) =>
                {
                    if let Some((len, advance)) = self.whole_line(buf, i) {
                        self.records.push(Span {
                            start: at,
                            end: at + len as u64,
                            index: self.next_index,
                            line: self.line,
                            checked: false,
                            envelope: 0,
                        });
                        self.next_index += 1;
                        self.line += 1;
                        self.top = Top::None;
                        i += advance;
                        self.line_taken_until = at + advance as u64;
                        if at + len as u64 >= stop_at {
                            stopped = true;
                            break;
                        }
                    } else {
                        i += 1;
                        self.value_start(at, b);
                    }
                }
                State::Value | State::ValueOrClose
                    if b == b'{'
                        && self.container_records
                        && !self.line_records
                        && self.whole_rest
                        && self.depth > 0
                        && !self.container_damaged
                        && self.suppressed == 0
                        && self.record_level() =>
                {
                    match self.envelope_object(buf, i, base) {
                        Some(len) => i += len,
                        None => {
                            i += 1;
                            self.value_start(at, b);
                        }
                    }
                }
                State::Value | State::ValueOrClose => {
                    i += 1;
                    if b == b']' && self.state == State::ValueOrClose {
                        let before = self.records.len();
                        self.close(at, b, buf, base);
                        if self.records.len() > before && at + 1 >= stop_at {
                            stopped = true;
                            break;
                        }
                    } else {
                        self.value_start(at, b);
                    }
                }
                State::KeyOrClose | State::Key => {
                    i += 1;
                    if b == b'"' {
                        self.begin_key(at);
                    } else if b == b'}' && self.state == State::KeyOrClose {
                        let before = self.records.len();
                        self.close(at, b, buf, base);
                        if self.records.len() > before && at + 1 >= stop_at {
                            stopped = true;
                            break;
                        }
                    } else {
                        self.error(at, b, "expected an object key");
                    }
                }
                State::Colon => {
                    i += 1;
                    if b == b':' {
                        self.state = State::Value;
                    } else {
                        self.error(at, b, "expected ':' after an object key");
                    }
                }
                State::CommaOrClose => {
                    i += 1;
                    match b {
                        b',' => {
                            self.state = if self.top_is_object() {
                                State::Key
                            } else {
                                State::Value
                            }
                        }
                        b'}' | b']' => {
                            let before = self.records.len();
                            self.close(at, b, buf, base);
                            if self.records.len() > before && at + 1 >= stop_at {
                                stopped = true;
                                break;
                            }
                        }
                        _ => self.error(at, b, "expected ',' or a closing bracket"),
                    }
                }
            }
        }
        self.pos = base + i as u64;
        if self.in_record
            && self.rec_first == b'{'
            && !self.discarding
            && self.pos.saturating_sub(self.rec_start) > self.max_record
        {
            self.discarding = true;
        }
        stopped
    }

    /// End of input. `quiet`: do not report an unfinished value (the input ended because of a
    /// read error that was already reported).
    pub(crate) fn finish(&mut self, buf: &[u8], base: u64, quiet: bool) {
        if let State::Num(s) = self.state {
            if s.can_end() {
                self.value_done(self.pos, buf, base);
            }
        }
        let what = match self.state {
            State::Skip => None,
            State::Str | State::StrEsc | State::StrHex(_) => Some("an unterminated string"),
            State::Num(_) | State::Lit(..) => Some("an incomplete value"),
            _ if self.depth > 0 => Some(if self.depth == 1 {
                "an unclosed object or array"
            } else {
                "unclosed objects or arrays"
            }),
            _ => None,
        };
        if let (Some(what), false) = (what, quiet) {
            let mut reason = format!("unexpected end of input in {what}");
            if self.in_record {
                reason.push_str(&format!(" (record {} is truncated)", self.rec_index));
            } else if self.in_records_array {
                reason.push_str(" (the Records array is truncated)");
            }
            let record = self.in_record.then_some(self.rec_index);
            self.report(self.pos, self.line, record, reason);
        }
        self.reset_top();
        self.state = State::Value;
        if self.suppressed > 0 {
            let (offset, line) = self.suppressed_at;
            let n = self.suppressed;
            self.damage.push(Damage {
                file: self.file.clone(),
                offset,
                line,
                record: None,
                reason: format!(
                    "{n} further error(s) after the damaged document were not reported \
                     separately (lines skipped while resynchronising)"
                ),
            });
            self.suppressed = 0;
        }
    }

    /// A read error ended the input; reported at the current scan position.
    pub(crate) fn report_read_error(&mut self, reason: String) {
        let record = self.in_record.then_some(self.rec_index);
        self.damage.push(Damage {
            file: self.file.clone(),
            offset: self.pos,
            line: self.line,
            record,
            reason,
        });
    }

    #[inline]
    fn begin_key(&mut self, at: u64) {
        self.state = State::Str;
        self.str_is_key = true;
        self.key_track = self.depth == 1 && matches!(self.top, Top::Object | Top::RecordsObject);
        self.key_start = at;
    }

    #[inline]
    fn top_is_object(&self) -> bool {
        match self.depth.checked_sub(1) {
            Some(d) => self.stack[(d / 64) as usize] >> (d % 64) & 1 == 1,
            None => false,
        }
    }

    fn record_level(&self) -> bool {
        match self.depth {
            0 => true,
            1 => self.top == Top::Array,
            2 => self.in_records_array,
            _ => false,
        }
    }

    fn value_start(&mut self, at: u64, b: u8) {
        if b == b'[' && self.last_key_records && self.depth == 1 {
            // `"Records": [` directly inside a top-level object: the object is an envelope, not a
            // record; the array's elements are the records.
            self.last_key_records = false;
            if self.top == Top::Object {
                self.in_record = false;
                self.discarding = false;
                self.next_index = self.next_index.saturating_sub(1);
            }
            self.top = Top::RecordsObject;
            if self.push(at, false) {
                self.in_records_array = true;
            }
            return;
        }
        self.last_key_records = false;
        // Every value (or garbage) where a record is expected takes a record index, except a
        // top-level `[` (an array of records) and stray punctuation, so that records recovered
        // after damage in a Records array keep their array index.
        let punctuation = matches!(b, b',' | b':' | b']' | b'}');
        if self.record_level() && !(self.depth == 0 && b == b'[') && !punctuation {
            self.in_record = true;
            self.rec_start = at;
            self.rec_line = self.line;
            self.rec_index = self.next_index;
            self.next_index += 1;
            self.rec_first = b;
            self.rec_non_ascii = false;
            self.rec_depth = self.depth;
            self.discarding = false;
        }
        if self.depth == 0 {
            self.top = match b {
                b'{' => Top::Object,
                b'[' => Top::Array,
                _ => Top::None,
            };
        }
        match b {
            b'{' => {
                self.push(at, true);
            }
            b'[' => {
                self.push(at, false);
            }
            b'"' => {
                self.state = State::Str;
                self.str_is_key = false;
            }
            b'-' => self.state = State::Num(Num::Minus),
            b'0' => self.state = State::Num(Num::Zero),
            b'1'..=b'9' => self.state = State::Num(Num::Int),
            b't' => self.state = State::Lit(0, 1),
            b'f' => self.state = State::Lit(1, 1),
            b'n' => self.state = State::Lit(2, 1),
            _ => self.error(at, b, "expected a JSON value"),
        }
    }

    /// Opens a container; false (and an error) when too deep.
    fn push(&mut self, at: u64, object: bool) -> bool {
        if self.depth >= MAX_DEPTH {
            let b = if object { b'{' } else { b'[' };
            self.error(at, b, &format!("nesting deeper than {MAX_DEPTH} levels"));
            return false;
        }
        let d = self.depth;
        let word = &mut self.stack[(d / 64) as usize];
        if object {
            *word |= 1 << (d % 64);
        } else {
            *word &= !(1 << (d % 64));
        }
        self.depth += 1;
        self.state = if object {
            State::KeyOrClose
        } else {
            State::ValueOrClose
        };
        true
    }

    fn close(&mut self, at: u64, b: u8, buf: &[u8], base: u64) {
        let object = b == b'}';
        if self.depth == 0 || self.top_is_object() != object {
            self.error(at, b, "mismatched closing bracket");
            return;
        }
        self.depth -= 1;
        if !object && self.depth == 1 && self.in_records_array {
            self.in_records_array = false;
        }
        self.value_done(at + 1, buf, base);
    }

    #[inline]
    fn string_end(&mut self, at: u64, buf: &[u8], base: u64) {
        if self.str_is_key {
            self.last_key_records = self.key_track
                && at.saturating_sub(self.key_start) == 8
                && self.key_start >= base
                && buf
                    .get((self.key_start - base + 1) as usize..at.saturating_sub(base) as usize)
                    .is_some_and(|k| k == b"Records");
            self.state = State::Colon;
        } else {
            self.value_done(at + 1, buf, base);
        }
    }

    /// A value ended at `end` (exclusive).
    #[inline]
    fn value_done(&mut self, end: u64, buf: &[u8], base: u64) {
        if self.depth == 0 {
            self.state = State::Value;
            self.top = Top::None;
        } else {
            self.state = State::CommaOrClose;
        }
        if self.in_record && self.depth == self.rec_depth {
            self.finish_record(end, buf, base);
        }
    }

    fn finish_record(&mut self, end: u64, buf: &[u8], base: u64) {
        self.in_record = false;
        let discarded = std::mem::take(&mut self.discarding);
        let (start, index, line) = (self.rec_start, self.rec_index, self.rec_line);
        let reason = if self.rec_first != b'{' {
            let kind = match self.rec_first {
                b'[' => "an array",
                b'"' => "a string",
                b't' | b'f' => "a boolean",
                b'n' => "null",
                _ => "a number",
            };
            format!("record is not a JSON object (found {kind}); skipped")
        } else if discarded || end.saturating_sub(start) > self.max_record {
            format!(
                "record of {} bytes exceeds the limit of {} bytes; skipped",
                end.saturating_sub(start),
                self.max_record
            )
        } else if !self.rec_non_ascii {
            // Only ASCII in strings, and the grammar allows nothing else outside them.
            self.records.push(Span {
                start,
                end,
                index,
                line,
                checked: true,
                envelope: 0,
            });
            return;
        } else {
            let bytes = start
                .checked_sub(base)
                .and_then(|s| buf.get(s as usize..end.saturating_sub(base) as usize));
            match bytes.map(std::str::from_utf8) {
                Some(Ok(_)) => {
                    self.records.push(Span {
                        start,
                        end,
                        index,
                        line,
                        checked: true,
                        envelope: 0,
                    });
                    return;
                }
                Some(Err(e)) => format!(
                    "invalid UTF-8 at byte {} of the record; skipped",
                    e.valid_up_to()
                ),
                // Cannot happen: the reader keeps the bytes of a record in progress.
                None => "record bytes were not retained (internal error); skipped".to_string(),
            }
        };
        self.report(start, line, Some(index), reason);
    }

    fn report(&mut self, offset: u64, line: u64, record: Option<u64>, reason: String) {
        if self.container_damaged {
            self.suppressed += 1;
            if self.suppressed == 1 {
                self.suppressed_at = (offset, line);
            }
            return;
        }
        self.damage.push(Damage {
            file: self.file.clone(),
            offset,
            line,
            record,
            reason,
        });
    }

    /// A syntax error at byte `b` (already consumed by the caller): report, then resynchronise at
    /// the next newline at depth 0.
    fn error(&mut self, at: u64, b: u8, what: &str) {
        let record = self.in_record.then_some(self.rec_index);
        let found = if b == b'\n' {
            "a newline".to_string()
        } else {
            describe_byte(b)
        };
        let context = if self.in_record {
            " inside a record"
        } else if matches!(self.top, Top::Array | Top::RecordsObject) {
            " inside the Records array"
        } else {
            ""
        };
        let reason =
            format!("invalid JSON{context}: {what} (found {found}); skipped to the next line");
        let in_container = matches!(self.top, Top::Array | Top::RecordsObject);
        self.report(at, self.line, record, reason);
        if in_container {
            self.container_damaged = true;
        }
        self.reset_top();
        if b == b'\n' {
            self.line += 1;
            self.state = State::Value;
        } else {
            self.state = State::Skip;
        }
    }

    fn reset_top(&mut self) {
        self.depth = 0;
        self.top = Top::None;
        self.in_records_array = false;
        self.in_record = false;
        self.discarding = false;
        self.last_key_records = false;
    }
}
