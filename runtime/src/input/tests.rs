#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::*;

/// (record text, index, line)
type Rec = (String, u64, u64);

#[derive(Debug, PartialEq)]
struct All {
    recs: Vec<Rec>,
    damage: Vec<Damage>,
    batches: usize,
}

fn collect(mut r: RecordReader, target: usize) -> All {
    let mut all = All {
        recs: Vec::new(),
        damage: Vec::new(),
        batches: 0,
    };
    while let Some(batch) = r.next_batch(target) {
        all.batches += 1;
        for span in &batch.records {
            let text = std::str::from_utf8(&batch.data[span.start..span.end]).unwrap();
            all.recs.push((text.to_string(), span.index, span.line));
        }
        all.damage.extend(batch.damage);
    }
    assert!(r.next_batch(target).is_none(), "None is sticky");
    all
}

fn reader(bytes: &[u8]) -> RecordReader {
    RecordReader::from_reader("t", Cursor::new(bytes.to_vec())).unwrap()
}

fn split(bytes: &[u8]) -> All {
    collect(reader(bytes), 1 << 20)
}

fn rec(text: &str, index: u64, line: u64) -> Rec {
    (text.to_string(), index, line)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Summary of damage for compact assertions: (offset, line, record).
fn places(d: &[Damage]) -> Vec<(u64, u64, Option<u64>)> {
    d.iter().map(|d| (d.offset, d.line, d.record)).collect()
}

// ---------------------------------------------------------------------------------------------
// Accepted layouts

#[test]
fn records_file_with_three_records() {
    let r0 = r#"{"eventName":"A","n":1}"#;
    let r1 = r#"{"eventName":"B","x":{"y":[1,2,{"z":null}]},"s":"]}\"{["}"#;
    let r2 = r#"{"eventName":"C"}"#;
    let text = format!(r#"{{"Records":[{r0},{r1},{r2}]}}"#);
    let all = split(text.as_bytes());
    assert_eq!(all.recs, vec![rec(r0, 0, 1), rec(r1, 1, 1), rec(r2, 2, 1)]);
    assert!(all.damage.is_empty());
}

#[test]
fn pretty_printed_records_file_has_lines() {
    let text = "{\n  \"Records\": [\n    {\n      \"eventName\": \"A\"\n    },\n    {\"eventName\": \"B\"},\n    {\"eventName\": \"C\"}\n  ]\n}\n";
    let all = split(text.as_bytes());
    assert_eq!(
        all.recs,
        vec![
            rec("{\n      \"eventName\": \"A\"\n    }", 0, 3),
            rec("{\"eventName\": \"B\"}", 1, 6),
            rec("{\"eventName\": \"C\"}", 2, 7),
        ]
    );
    assert!(all.damage.is_empty());
}

#[test]
fn ndjson_with_crlf_line_ends() {
    let all = split(b"{\"a\":1}\r\n{\"b\":2}\r\n\r\n{\"c\":\"x\\r\\n\"}\r\n");
    assert_eq!(
        all.recs,
        vec![
            rec(r#"{"a":1}"#, 0, 1),
            rec(r#"{"b":2}"#, 1, 2),
            rec(r#"{"c":"x\r\n"}"#, 2, 4)
        ]
    );
    assert!(all.damage.is_empty());
}

#[test]
fn top_level_array_of_records() {
    let all = split(b"[{\"a\":1},\n {\"b\":[2]} ]\n[]\n[{\"c\":3}]");
    assert_eq!(
        all.recs,
        vec![
            rec(r#"{"a":1}"#, 0, 1),
            rec(r#"{"b":[2]}"#, 1, 2),
            rec(r#"{"c":3}"#, 2, 4)
        ]
    );
    assert!(all.damage.is_empty());
}

#[test]
fn single_object_and_concatenated_objects() {
    let all = split(br#"{"a":{"Records":[1]}}{"b":2} {"c":3}"#);
    assert_eq!(
        all.recs,
        vec![
            rec(r#"{"a":{"Records":[1]}}"#, 0, 1),
            rec(r#"{"b":2}"#, 1, 1),
            rec(r#"{"c":3}"#, 2, 1)
        ]
    );
    assert!(all.damage.is_empty());
}

#[test]
fn records_key_anywhere_at_top_level_only() {
    // "Records" after other keys; a nested "Records" is just data; keys after the array ignored.
    let all = split(br#"{"x":{"Records":[{"no":1}]},"Records":[{"a":1},{"b":2}],"y":[{"no":2}]}"#);
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"b":2}"#, 1, 1)]
    );
    assert!(all.damage.is_empty());
    // "Records" that is not an array: the object is a record.
    let all = split(br#"{"Records":5,"a":1}"#);
    assert_eq!(all.recs, vec![rec(r#"{"Records":5,"a":1}"#, 0, 1)]);
    // An envelope inside a top-level array is a record (only top-level objects are envelopes).
    let all = split(br#"[{"Records":[{"a":1}]}]"#);
    assert_eq!(all.recs, vec![rec(r#"{"Records":[{"a":1}]}"#, 0, 1)]);
    // An empty Records array: nothing, and no damage.
    let all = split(br#"{"Records":[]}"#);
    assert!(all.recs.is_empty() && all.damage.is_empty());
    // Two envelopes in one file: indexes go on counting.
    let all = split(b"{\"Records\":[{\"a\":1}]}\n{\"Records\":[{\"b\":1}]}\n");
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"b":1}"#, 1, 2)]
    );
}

#[test]
fn utf8_bom_is_skipped() {
    let mut r = reader("\u{feff}{\"a\":\"é\"}\n{\"b\":2}".as_bytes());
    let batch = r.next_batch(1 << 20).unwrap();
    assert_eq!(batch.records[0].start, 3);
    assert_eq!(batch.record(0).unwrap(), "{\"a\":\"é\"}".as_bytes());
    assert_eq!(batch.records.len(), 2);
    assert!(batch.damage.is_empty());
    // A BOM alone is an empty file.
    assert_eq!(split(b"\xEF\xBB\xBF").batches, 0);
}

#[test]
fn valid_json_is_accepted() {
    let text = r#"{"a":-0.5e+10,"b":[true,false,null,0,-0,1E5,2.25e-3],"c":"\u00e9\"\\\/\b\f\n\r\t","d":{},"e":[],"f":{"g":[[{}]]}}"#;
    let all = split(text.as_bytes());
    assert_eq!(all.recs, vec![rec(text, 0, 1)]);
    assert!(all.damage.is_empty());
}

/// One-line objects the JSON grammar rejects.
const BAD_JSON: &[&str] = &[
    r#"{"a":01}"#,
    r#"{"a":1.}"#,
    r#"{"a":-}"#,
    r#"{"a":1e}"#,
    r#"{"a":"\x"}"#,
    r#"{"a":"\u12g4"}"#,
    r#"{"a" 1}"#,
    r#"{"a":1,}"#,
    r#"{"a":[1,]}"#,
    r#"{"a":tru}"#,
    r#"{"a":nul}"#,
    r#"{,}"#,
    r#"{"a":1]"#,
    r#"{"a":[1}}"#,
    "{\"a\":\"tab\there\"}",
    r#"{1:2}"#,
    r#"{"a":+1}"#,
    r#"{"a":.5}"#,
];

#[test]
fn invalid_json_is_rejected() {
    let bad = BAD_JSON;
    for b in bad {
        let text = format!("{b}\n{{\"ok\":1}}\n");
        let all = split(text.as_bytes());
        assert_eq!(all.recs, vec![rec(r#"{"ok":1}"#, 1, 2)], "{b}");
        assert_eq!(all.damage.len(), 1, "{b}: {:?}", all.damage);
        assert_eq!(
            (all.damage[0].line, all.damage[0].record),
            (1, Some(0)),
            "{b}"
        );
        assert!(all.damage[0].reason.contains("invalid JSON"), "{b}");
    }
}

// ---------------------------------------------------------------------------------------------
// Files, gzip, discovery

#[test]
fn gzip_file_is_detected_by_magic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let doc = br#"{"Records":[{"a":1},{"b":2}]}"#;
    let gz = dir.path().join("x.json.gz");
    fs::write(&gz, gzip(doc)).unwrap();
    let misnamed_gz = dir.path().join("y.json");
    fs::write(&misnamed_gz, gzip(doc)).unwrap();
    let plain_gz = dir.path().join("z.json.gz");
    fs::write(&plain_gz, doc).unwrap();
    for path in [&gz, &misnamed_gz, &plain_gz] {
        let r = RecordReader::open(&InputSource::File(path.clone())).unwrap();
        assert_eq!(r.display_name(), path.display().to_string());
        assert_eq!(r.is_gzip(), path != &plain_gz);
        let all = collect(r, 1 << 20);
        assert_eq!(
            all.recs,
            vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"b":2}"#, 1, 1)]
        );
        assert!(all.damage.is_empty());
    }
    // Concatenated gzip members are one stream.
    let mut two = gzip(b"{\"a\":1}\n");
    two.extend(gzip(b"{\"b\":2}\n"));
    let all = split(&two);
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"b":2}"#, 1, 2)]
    );
}

/// A small gzip file is decompressed in one call; whatever the file holds,
/// the records and the damage are exactly what streaming it gives.
#[test]
fn a_gzip_file_decompressed_whole_reads_as_when_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let (ndjson, _) = many_records(3_000);
    let records_doc = br#"{"Records":[{"a":1},{"b":2},{"c":[1,2,3]}]}"#.to_vec();
    let damaged = b"{\"a\":1}\n{\"b\":\n{\"c\":3}\n".to_vec();
    let mut two_members = gzip(b"{\"a\":1}\n");
    two_members.extend(gzip(b"{\"b\":2}\n"));
    let whole = gzip(&ndjson);
    let truncated = whole[..whole.len() / 2].to_vec();
    let mut wrong_size = gzip(&records_doc);
    let n = wrong_size.len();
    wrong_size[n - 4..].copy_from_slice(&7u32.to_le_bytes());
    let mut trailing = gzip(&records_doc);
    trailing.extend_from_slice(b"garbage");
    // More than one read and one batch (1 MiB each here) decompressed: read
    // from a buffer of its own.
    let (large, _) = many_records(60_000);
    assert!(large.len() > READ_SIZE);
    let cases: [(&str, Vec<u8>); 8] = [
        ("ndjson", whole),
        ("large", gzip(&large)),
        ("records", gzip(&records_doc)),
        ("damaged", gzip(&damaged)),
        ("two-members", two_members),
        ("truncated", truncated),
        ("wrong-size", wrong_size),
        ("trailing", trailing),
    ];
    for (label, bytes) in cases {
        let path = dir.path().join(format!("{label}.json.gz"));
        fs::write(&path, &bytes).unwrap();
        let name = path.display().to_string();
        let opened = RecordReader::open(&InputSource::File(path.clone())).unwrap();
        assert!(opened.is_gzip(), "{label}");
        let streamed = RecordReader::from_reader(name, fs::File::open(&path).unwrap()).unwrap();
        let (a, b) = (collect(opened, 1 << 20), collect(streamed, 1 << 20));
        assert_eq!(a.recs, b.recs, "{label}");
        assert_eq!(a.damage, b.damage, "{label}");
    }
}

#[test]
fn batch_counts_bytes() {
    let text = b"{\"a\":1}\n{\"b\":2}\n";
    let gz = gzip(text);
    let mut r = reader(&gz);
    let mut bytes_in = 0;
    let mut raw = 0;
    while let Some(b) = r.next_batch(1) {
        bytes_in += b.bytes_in;
        raw += b.raw_bytes_in;
    }
    assert_eq!(bytes_in, text.len() as u64);
    assert_eq!(raw, gz.len() as u64);
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let err = RecordReader::open(&InputSource::File("/nonexistent/x.json".into()))
        .err()
        .unwrap();
    assert_eq!(err.file, "/nonexistent/x.json");
    assert!(err.reason.contains("cannot open"));
    let dir = tempfile::tempdir().unwrap();
    assert!(RecordReader::open(&InputSource::File(dir.path().to_path_buf())).is_err());
}

fn touch(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn discovery_of_an_s3_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let gz = gzip(br#"{"Records":[{"eventName":"X"}]}"#);
    let ct = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01";
    let day2 = touch(
        root,
        &format!("{ct}/02/123456789012_CloudTrail_us-east-1_20240102T0000Z_b.json.gz"),
        &gz,
    );
    let day1 = touch(root, &format!("{ct}/01/x.json.gz"), &gz);
    let day1b = touch(root, &format!("{ct}/01/y.ndjson"), b"{}\n");
    let digest = touch(
        root,
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/01/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T000000Z.json.gz",
        &gz,
    );
    let digest_name = touch(
        root,
        &format!("{ct}/01/123456789012_CloudTrail-Digest_x.json.gz"),
        &gz,
    );
    let insight = touch(
        root,
        "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/01/01/i.json.gz",
        &gz,
    );
    let readme = touch(root, "README.txt", b"hello");
    let explicit = touch(root, "elsewhere/notes.log", b"{\"a\":1}");
    let missing = root.join("missing.json");

    let d = discover(&[
        root.to_path_buf(),
        PathBuf::from("-"),
        explicit.clone(),
        day1.clone(), // already found under the directory
        digest.clone(),
        missing.clone(),
    ]);
    // Tree files sorted, then stdin, then the explicit file (read whatever its extension);
    // day1 is not read twice, the named digest is skipped, the missing path is an error.
    assert_eq!(
        d.sources,
        vec![
            InputSource::File(day1),
            InputSource::File(day1b),
            InputSource::File(day2),
            InputSource::Stdin,
            InputSource::File(explicit.clone()),
        ]
    );
    let skipped: Vec<(PathBuf, &str)> = d.skipped.clone();
    assert!(skipped.contains(&(digest.clone(), "CloudTrail digest file")));
    assert!(skipped.contains(&(digest_name, "CloudTrail digest file")));
    assert!(skipped.contains(&(insight, "CloudTrail Insights file")));
    assert!(skipped.iter().any(|(p, _)| p == &readme));
    assert!(
        skipped.iter().any(|(p, _)| p == &explicit),
        "not a log name under a dir"
    );
    assert_eq!(
        skipped.iter().filter(|(p, _)| p == &digest).count(),
        2,
        "the digest is skipped under the tree and when named"
    );
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].file, missing.display().to_string());

    // Every source found reads without damage.
    for s in d.sources.iter().filter(|s| **s != InputSource::Stdin) {
        let all = collect(RecordReader::open(s).unwrap(), 1 << 20);
        assert!(all.damage.is_empty(), "{s:?}");
        assert_eq!(all.recs.len(), 1, "{s:?}");
    }
}

#[test]
fn discovery_order_is_sorted_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for rel in [
        "b/2.json",
        "a.json",
        "b/1.jsonl",
        "a/z.ndjson.gz",
        "C.JSON",
        "x.gz",
        "y.json.bak",
    ] {
        touch(root, rel, b"{}");
    }
    let d = discover(&[root.to_path_buf()]);
    let names: Vec<String> = d
        .sources
        .iter()
        .map(|s| match s {
            InputSource::File(p) => p.strip_prefix(root).unwrap().display().to_string(),
            InputSource::Stdin => "-".into(),
        })
        .collect();
    assert_eq!(
        names,
        ["C.JSON", "a/z.ndjson.gz", "a.json", "b/1.jsonl", "b/2.json"]
    );
    assert_eq!(d.skipped.len(), 2); // x.gz, y.json.bak
}

// ---------------------------------------------------------------------------------------------
// Batching

fn many_records(n: usize) -> (Vec<u8>, Vec<String>) {
    let mut text = Vec::new();
    let mut recs = Vec::new();
    for i in 0..n {
        let r = format!(
            r#"{{"eventName":"E{i}","n":{i},"s":"{}"}}"#,
            "x".repeat(i % 37)
        );
        text.extend_from_slice(r.as_bytes());
        text.push(b'\n');
        recs.push(r);
    }
    (text, recs)
}

#[test]
fn batching_gives_the_same_records_as_one_batch() {
    let (text, recs) = many_records(2000);
    let one = split(&text);
    assert_eq!(one.batches, 1);
    assert_eq!(one.recs.len(), 2000);
    for (i, (t, index, line)) in one.recs.iter().enumerate() {
        assert_eq!((t, *index, *line), (&recs[i], i as u64, i as u64 + 1));
    }
    for target in [1, 100, 4096] {
        let small = collect(reader(&text), target);
        assert!(small.batches > 1, "target {target}");
        assert_eq!(small.recs, one.recs, "target {target}");
        assert!(small.damage.is_empty());
    }
    // Records envelope, gzip, split across batches.
    let doc = format!("{{\"Records\":[{}]}}", recs.join(","));
    let gz = gzip(doc.as_bytes());
    let one = collect(reader(&gz), 1 << 30);
    let small = collect(reader(&gz), 1000);
    assert_eq!(one.batches, 1);
    assert!(small.batches > 10);
    assert_eq!(one.recs, small.recs);
    assert_eq!(one.recs.len(), 2000);
    assert_eq!(one.recs[1999], (recs[1999].clone(), 1999, 1));
}

/// Every input below, read in pieces of 1..=13 bytes with tiny batches, gives exactly what it
/// gives when read at once: split points never matter.
#[test]
fn split_points_never_matter() {
    let long_key = format!(
        r#"{{"pad":"{}","Records":[{{"a":1}},{{"b":"{}"}},{{"c":3}}]}}"#,
        "p".repeat(40),
        "y".repeat(40)
    );
    let inputs: Vec<Vec<u8>> = vec![
        br#"{"Records":[{"a":1},{"b":{"c":[1,2]}},3,{"d":"\u00e9\""}]}"#.to_vec(),
        b"\xEF\xBB\xBF{\"a\":1}\r\n{\"b\":2}\r\nxyz\n{\"c\" 3}\n{\"d\":4}\n[{\"e\":5}]".to_vec(),
        long_key.into_bytes(),
        b"{\"a\":\"\xff\"}\n{\"b\":true}\n{\"c\":-1.5e3}{\"d\":null} 12 \"s\" {\"e\":{}}".to_vec(),
        b"{\"Records\":[{\"a\":1},\n{\"b\":2,,},\n{\"c\":3},\n{\"d\":4}\n]}\n".to_vec(),
        b"{\"Records\":[{\"a\":1},{\"b\":".to_vec(),
        format!("{}\n{{\"a\":1}}", "[".repeat(600)).into_bytes(),
    ];
    for (n, input) in inputs.iter().enumerate() {
        for max in [usize::MAX, 30] {
            let reference = collect(reader(input).with_max_record_bytes(max), 1 << 20);
            for read_size in 1..=13 {
                for target in [1, 7, 1 << 20] {
                    let got = collect(
                        reader(input)
                            .with_read_size(read_size)
                            .with_max_record_bytes(max),
                        target,
                    );
                    assert_eq!(
                        (&got.recs, &got.damage),
                        (&reference.recs, &reference.damage),
                        "input {n}, max {max}, read_size {read_size}, target {target}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damage

#[test]
fn empty_input_gives_nothing() {
    for text in [&b""[..], b"\n\n  \r\n\t"] {
        let mut r = reader(text);
        assert!(r.next_batch(1 << 20).is_none());
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.json");
    fs::write(&p, b"").unwrap();
    let mut r = RecordReader::open(&InputSource::File(p)).unwrap();
    assert!(r.next_batch(1 << 20).is_none());
}

#[test]
fn invalid_ndjson_line_is_skipped_and_scan_resynchronises() {
    let all = split(b"{\"a\":1}\n{\"b\": }\n{\"c\":3}\n");
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"c":3}"#, 2, 3)]
    );
    assert_eq!(places(&all.damage), vec![(14, 2, Some(1))]);
    assert_eq!(all.damage[0].file, "t");
    assert!(all.damage[0].reason.contains("skipped to the next line"));
    // An unterminated string ends at the newline; the next line is read.
    let all = split(b"{\"a\":\"abc\n{\"c\":3}\n");
    assert_eq!(all.recs, vec![rec(r#"{"c":3}"#, 1, 2)]);
    assert_eq!(places(&all.damage), vec![(9, 1, Some(0))]);
}

#[test]
fn garbage_between_records() {
    let all = split(b"{\"a\":1}\nxyz garbage\n{\"b\":2} junk\n, ]\n{\"c\":3}");
    assert_eq!(
        all.recs,
        vec![
            rec(r#"{"a":1}"#, 0, 1),
            rec(r#"{"b":2}"#, 2, 3),
            rec(r#"{"c":3}"#, 4, 5)
        ]
    );
    // xyz and junk take record indexes (1 and 3); stray punctuation does not.
    assert_eq!(
        places(&all.damage),
        vec![(8, 2, Some(1)), (28, 3, Some(3)), (33, 4, None)]
    );
}

#[test]
fn records_that_are_not_objects() {
    let text = br#"{"Records":[{"a":1},3,"x",[{"no":1}],null,{"b":2}]}"#;
    let all = split(text);
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"b":2}"#, 5, 1)]
    );
    assert_eq!(
        places(&all.damage),
        vec![
            (20, 1, Some(1)),
            (22, 1, Some(2)),
            (26, 1, Some(3)),
            (37, 1, Some(4))
        ]
    );
    assert!(all.damage[0]
        .reason
        .contains("not a JSON object (found a number)"));
    assert!(all.damage[2].reason.contains("found an array"));
    // Top-level scalars.
    let all = split(b"3\n\"x\"\n{\"a\":1}\ntrue");
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 2, 3)]);
    assert_eq!(
        places(&all.damage),
        vec![(0, 1, Some(0)), (2, 2, Some(1)), (14, 4, Some(3))]
    );
}

#[test]
fn invalid_utf8_inside_a_record() {
    let all = split(b"{\"a\":\"ok\"}\n{\"b\":\"\xff\xfe\"}\n{\"c\":\"\xc3\xa9\"}\n");
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":"ok"}"#, 0, 1), rec(r#"{"c":"é"}"#, 2, 3)]
    );
    assert_eq!(places(&all.damage), vec![(11, 2, Some(1))]);
    assert!(all.damage[0].reason.contains("invalid UTF-8 at byte 6"));
}

#[test]
fn hundred_megabyte_line_is_skipped_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.ndjson");
    {
        let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        f.write_all(b"{\"a\":1}\n{\"big\":[\"").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"]}\n{\"c\":3}\n").unwrap();
    }
    let mut r = RecordReader::open(&InputSource::File(path)).unwrap();
    let mut recs = Vec::new();
    let mut damage = Vec::new();
    let mut peak_batch = 0;
    while let Some(batch) = r.next_batch(4 << 20) {
        peak_batch = peak_batch.max(batch.data.capacity());
        for (i, s) in batch.records.iter().enumerate() {
            recs.push((batch.record(i).unwrap().to_vec(), s.index, s.line));
        }
        damage.extend(batch.damage);
    }
    assert_eq!(
        recs,
        vec![(b"{\"a\":1}".to_vec(), 0, 1), (b"{\"c\":3}".to_vec(), 2, 3)]
    );
    assert_eq!(places(&damage), vec![(8, 2, Some(1))]);
    assert!(
        damage[0].reason.contains("exceeds the limit"),
        "{}",
        damage[0]
    );
    let bound = MAX_RECORD_BYTES + 3 * READ_SIZE;
    assert!(r.peak_buffer <= bound, "buffer grew to {}", r.peak_buffer);
    assert!(peak_batch <= bound + (4 << 20), "batch of {peak_batch}");
}

#[test]
fn oversized_record_inside_records_array_is_skipped_structurally() {
    let text = format!(
        r#"{{"Records":[{{"a":1}},{{"big":"{}","n":[1,{{}}]}},{{"c":3}}]}}"#,
        "y".repeat(5000)
    );
    let all = collect(
        reader(text.as_bytes())
            .with_max_record_bytes(100)
            .with_read_size(64),
        10,
    );
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"c":3}"#, 2, 1)]
    );
    assert_eq!(places(&all.damage), vec![(20, 1, Some(1))]);
}

#[test]
fn nesting_deeper_than_the_limit() {
    let text = format!("{}\n{{\"a\":1}}\n", "[".repeat(10_000));
    let all = split(text.as_bytes());
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 1, 2)]);
    // The 513th bracket is the error (the first is a top-level array, the second its record 0).
    assert_eq!(places(&all.damage), vec![(512, 1, Some(0))]);
    assert!(all.damage[0].reason.contains("nesting deeper than 512"));
    // 512 levels are fine (here: an array, not an object, so a record of the wrong kind).
    let text = format!("{}1{}\n{{\"a\":1}}", "[".repeat(512), "]".repeat(512));
    let all = split(text.as_bytes());
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 1, 2)]);
    assert_eq!(places(&all.damage), vec![(1, 1, Some(0))]);
    assert!(all.damage[0].reason.contains("not a JSON object"));
    // Objects nested too deep.
    let text = format!("{}1\n{{\"a\":1}}\n", "{\"k\":".repeat(10_000));
    let all = split(text.as_bytes());
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 1, 2)]);
    assert_eq!(places(&all.damage), vec![(2560, 1, Some(0))]);
}

#[test]
fn unterminated_values_at_end_of_file() {
    let all = split(b"{\"a\":1}\n{\"b\":\"abc");
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 0, 1)]);
    // Reported at the end of input.
    assert_eq!(places(&all.damage), vec![(17, 2, Some(1))]);
    assert!(all.damage[0].reason.contains("unterminated string"));
    let all = split(b"{\"a\":1}\n{\"b\":{\"c\":1}");
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 0, 1)]);
    assert_eq!(places(&all.damage), vec![(20, 2, Some(1))]);
    assert!(all.damage[0].reason.contains("unclosed"));
    let all = split(b"{\"a\":tr");
    assert!(all.damage[0].reason.contains("incomplete value"));
    // A complete top-level number at EOF is a (non-object) value, not a truncation.
    let all = split(b"{\"a\":1}\n42");
    assert_eq!(all.damage.len(), 1);
    assert!(all.damage[0].reason.contains("not a JSON object"));
}

#[test]
fn records_file_truncated_inside_the_array() {
    let all = split(br#"{"Records":[{"a":1},{"b":2},{"c":{"d":"#);
    assert_eq!(
        all.recs,
        vec![rec(r#"{"a":1}"#, 0, 1), rec(r#"{"b":2}"#, 1, 1)]
    );
    assert_eq!(places(&all.damage), vec![(38, 1, Some(2))]);
    assert!(all.damage[0].reason.contains("record 2 is truncated"));
    let all = split(br#"{"Records":[{"a":1},"#);
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 0, 1)]);
    assert!(all.damage[0].reason.contains("Records array is truncated"));
    assert_eq!(all.damage[0].record, None);
}

#[test]
fn damaged_element_in_a_multiline_records_file() {
    // Best effort: resynchronise at the next line; the records that follow on their own lines
    // are recovered with their array index, and the fragments of the document are not reported
    // one by one but counted in a final damage entry.
    let text = b"{\"Records\":[{\"a\":1},\n{\"b\":2,,},\n{\"c\":3},\n{\"d\":4}\n]}\n";
    let all = split(text);
    assert_eq!(
        all.recs,
        vec![
            rec(r#"{"a":1}"#, 0, 1),
            rec(r#"{"c":3}"#, 2, 3),
            rec(r#"{"d":4}"#, 3, 4)
        ]
    );
    assert_eq!(places(&all.damage), vec![(28, 2, Some(1)), (39, 3, None)]);
    assert!(all.damage[1].reason.starts_with("2 further error(s)"));
    // On one line (the CloudTrail delivery format) the rest of the line is lost.
    let all = split(br#"{"Records":[{"a":1},{"b":2,,},{"c":3}]}"#);
    assert_eq!(all.recs, vec![rec(r#"{"a":1}"#, 0, 1)]);
    assert_eq!(places(&all.damage), vec![(27, 1, Some(1))]);
}

fn generated_ndjson(n: usize) -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..n {
        // Varied, poorly compressible content so the gzip stream is long.
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        writeln!(
            text,
            r#"{{"eventID":"{h:016x}-{i}","eventName":"Describe{}","n":{i}}}"#,
            h % 977
        )
        .unwrap();
    }
    text
}

#[test]
fn truncated_gzip_keeps_the_records_before_the_truncation() {
    let text = generated_ndjson(20_000);
    let gz = gzip(&text);
    let truncated = &gz[..gz.len() / 2];
    let all = split(truncated);
    let complete = split(&text);
    assert!(all.recs.len() > 1000, "kept {}", all.recs.len());
    assert!(all.recs.len() < complete.recs.len());
    if let Some(i) = (0..all.recs.len()).find(|&i| all.recs[i] != complete.recs[i]) {
        panic!(
            "record {i}: {:?} != {:?}; damage {:?}",
            all.recs[i], complete.recs[i], all.damage
        );
    }
    assert_eq!(all.damage.len(), 1, "{:?}", all.damage);
    let d = &all.damage[0];
    assert!(d.reason.contains("gzip stream truncated or corrupt"), "{d}");
    // Reported where decompression stopped, in decompressed offsets and lines.
    let last = all.recs.last().unwrap();
    assert!(d.line >= last.2 && d.line <= last.2 + 1, "{d}");
    assert!(d.offset > 0 && d.offset < text.len() as u64);
    // Corrupt (not just truncated) data is reported too; deflate has no per-block checksum, so
    // the damage may only be detected later (at the CRC check at the latest), after some garbled
    // bytes were decoded: those surface as damage too or, if still valid JSON, as records.
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let all = split(&corrupt);
    assert!(
        all.damage.iter().any(|d| d.reason.contains("gzip")),
        "{:?}",
        all.damage
    );
    assert!(all.recs.len() > 1000);
    assert!(all.recs[..1000] == complete.recs[..1000]);
}

#[test]
fn damage_offsets_are_in_the_decompressed_stream() {
    let all = split(&gzip(b"{\"a\":1}\n{bad}\n{\"c\":3}\n"));
    assert_eq!(all.recs.len(), 2);
    assert_eq!(places(&all.damage), vec![(9, 2, Some(1))]);
}

#[test]
fn damage_displays_file_line_and_offset() {
    let all = split(b"{\"a\":1}\n3\n");
    assert_eq!(
        all.damage[0].to_string(),
        "t:2 (byte 8, record 1): record is not a JSON object (found a number); skipped"
    );
}

// ---------------------------------------------------------------------------------------------
// Throughput: cargo test --release -p sigil-runtime input::tests::throughput -- --ignored
// --nocapture, with SIGIL_INPUT_BENCH=/path/to/file

#[test]
#[ignore]
fn throughput() {
    let Ok(path) = std::env::var("SIGIL_INPUT_BENCH") else {
        eprintln!("set SIGIL_INPUT_BENCH to a file or directory");
        return;
    };
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let found = discover(&[PathBuf::from(&path)]);
        for (p, why) in found.skipped.iter().take(5) {
            eprintln!("  skipped {}: {why}", p.display());
        }
        let (mut records, mut damage, mut bytes, mut raw) = (0u64, 0usize, 0u64, 0u64);
        for source in &found.sources {
            let mut r = RecordReader::open(source).unwrap();
            while let Some(b) = r.next_batch(4 << 20) {
                records += b.records.len() as u64;
                damage += b.damage.len();
                bytes += b.bytes_in;
                raw += b.raw_bytes_in;
                for d in b.damage.iter().take(5) {
                    eprintln!("  {d}");
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{} files, {records} records, {damage} damage, {:.1} MB ({:.1} MB raw) in {secs:.3}s: \
             {:.0} MB/s, {:.0} records/s",
            found.sources.len(),
            bytes as f64 / 1e6,
            raw as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            records as f64 / secs
        );
    }
}

#[test]
fn reader_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<RecordReader>();
    assert_send::<Batch>();
    assert_send::<Discovery>();
}

// ---------------------------------------------------------------------------------------------
// Line records: lines taken whole and validated by their parser must give exactly what the
// strict reader gives.

/// Reads with `line_records` and `container_records` as asked and a record size limit of
/// `max_record`, validating each unchecked record as the matcher does (UTF-8, then the grammar)
/// and rescanning those that fail, as `sigil scan` does: a line by itself, an envelope's object
/// with the rest of the input. Also gives how many lines and envelope objects were taken whole.
fn split_unchecked(
    bytes: &[u8],
    target: usize,
    (lines, envelopes): (bool, bool),
    max_record: usize,
) -> (All, usize) {
    let mut r = reader(bytes)
        .line_records(lines)
        .container_records(envelopes)
        .with_max_record_bytes(max_record);
    let mut all = All {
        recs: Vec::new(),
        damage: Vec::new(),
        batches: 0,
    };
    let mut taken_whole = 0;
    while let Some(batch) = r.next_batch(target) {
        all.batches += 1;
        let mut found = batch.damage;
        let mut push = |span: &RecordSpan| {
            let text = std::str::from_utf8(&batch.data[span.start..span.end]).unwrap();
            all.recs.push((text.to_string(), span.index, span.line));
        };
        for span in &batch.records {
            let bytes = &batch.data[span.start..span.end];
            if span.checked {
                push(span);
                continue;
            }
            taken_whole += 1;
            let valid = std::str::from_utf8(bytes).is_ok() && crate::json::validate(bytes).is_ok();
            if valid {
                push(span);
                continue;
            }
            let data = (&batch.data[..], batch.max_record_bytes);
            let (records, rest_superseded) = rescan_unchecked("t", data, span, &mut found);
            records.iter().for_each(&mut push);
            if rest_superseded {
                break;
            }
        }
        found.sort_by_key(|d| (d.line, d.offset));
        all.damage.extend(found);
    }
    (all, taken_whole)
}

fn split_lines(bytes: &[u8], target: usize) -> (All, usize) {
    split_unchecked(bytes, target, (true, false), MAX_RECORD_BYTES)
}

fn line_inputs() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = vec![
        b"{\"a\":1}\n{\"b\": }\n{\"c\":3}\n".to_vec(),
        b"{\"a\":\"abc\n{\"c\":3}\n".to_vec(),
        b"{\"a\":1}\nxyz garbage\n{\"b\":2} junk\n, ]\n{\"c\":3}".to_vec(),
        b"3\n\"x\"\n{\"a\":1}\ntrue".to_vec(),
        b"{\"a\":\"ok\"}\n{\"b\":\"\xff\xfe\"}\n{\"c\":\"\xc3\xa9\"}\n".to_vec(),
        b"{\"a\":1}\r\n{\"b\":2}  \r\n\r\n  {\"c\":3}\n".to_vec(),
        b"{\"a\":1}{\"b\":2}\n".to_vec(),
        b"{\"e\":5}}\n{\"f\":6}\n".to_vec(),
        b"{\"a\":1}\n{\"Records\":[{\"b\":2},{\"c\":3}]}\n{\"d\":{\"Records\":1}}\n".to_vec(),
        b"{\"x\":1,\"Records\":[{\"b\":2}]}\n{\"Records\":1}\n{\"Records\":{\"a\":1}}\n".to_vec(),
        b"{\"Rec\\u006frds\":[{\"b\":2}]}\n{\"a\":[{\"Records\":[{\"c\":1}]}]}\n".to_vec(),
        b"{\"Records\":[]}\n{\"Records\":[{\"b\":2},{\"c\":}]}\n{\"d\":4}\n".to_vec(),
        b"{\n  \"a\": 1\n}\n{\"b\":2}\n{\"c\":\n3}\n".to_vec(),
        b"{\"a\":1}\n{\"b\":\"abc".to_vec(),
        b"\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}\n".to_vec(),
        b"{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":\"\\u00e9\\\"\"}\n{\"x\":1.5e-3,\"y\":[]}\n"
            .to_vec(),
    ];
    for b in BAD_JSON {
        inputs.push(format!("{b}\n{{\"ok\":1}}\n").into_bytes());
    }
    let deep = |n: usize| format!("{}1{}\n{{\"a\":1}}\n", "{\"k\":".repeat(n), "}".repeat(n));
    inputs.push(deep(511).into_bytes());
    inputs.push(deep(512).into_bytes());
    inputs.push(deep(513).into_bytes());
    inputs.push(generated_ndjson(2_000));
    inputs
}

#[test]
fn line_records_give_exactly_what_the_strict_reader_gives() {
    let mut taken = 0;
    for input in line_inputs() {
        let strict = split(&input);
        for target in [1, 64, 1 << 20] {
            let (lines, whole) = split_lines(&input, target);
            taken += whole;
            assert_eq!(
                (&lines.recs, &lines.damage),
                (&strict.recs, &strict.damage),
                "target {target}: {}",
                String::from_utf8_lossy(&input[..input.len().min(200)])
            );
        }
    }
    // The fast path was taken (not every line fell back to the state machine).
    assert!(taken > 6_000, "{taken} lines taken whole");
}

#[test]
fn line_records_number_concatenated_objects_from_their_line() {
    // The one difference from the strict reader: a line holding several
    // objects takes one index when it is handed out, so its objects are
    // numbered from the line's own index and may repeat the next line's.
    let input = b"{\"a\":1}{\"b\":2}\n{\"c\":3} {\"d\":4}\n{\"e\":5}\n";
    let (lines, whole) = split_lines(input, 1 << 20);
    assert_eq!(whole, 3);
    assert!(lines.damage.is_empty());
    assert_eq!(
        lines.recs,
        vec![
            rec(r#"{"a":1}"#, 0, 1),
            rec(r#"{"b":2}"#, 1, 1),
            rec(r#"{"c":3}"#, 1, 2),
            rec(r#"{"d":4}"#, 2, 2),
            rec(r#"{"e":5}"#, 2, 3)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Envelope objects: records inside `{"Records":[...]}` or a top-level array, taken whole and
// validated by their parser, must give exactly what the strict reader gives.

fn envelope_inputs() -> Vec<Vec<u8>> {
    let records: Vec<String> = String::from_utf8(generated_ndjson(40))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let one_line = format!("{{\"Records\":[{}]}}", records.join(","));
    // Records printed over several lines each, as a pretty printer writes them.
    let multi_line: Vec<String> = records
        .iter()
        .map(|r| {
            r.replace("\",\"", "\",\n      \"")
                .replace('{', "{\n      ")
        })
        .collect();
    let pretty = format!(
        "{{\n  \"Records\": [\n    {}\n  ]\n}}\n",
        multi_line.join(",\n    ")
    );
    let mut inputs: Vec<Vec<u8>> = vec![
        one_line.clone().into_bytes(),
        pretty.clone().into_bytes(),
        format!("[{}]", records.join(", ")).into_bytes(),
        format!("{one_line}\n{one_line}\n").into_bytes(),
        b"{\"x\":1,\"Records\":[{\"a\":1},{\"b\":\"}]\\\"{[\"}],\"y\":[{\"c\":1}]}".to_vec(),
        b"{\"Records\":[{\"a\":1},2,\"s\",{\"b\":2},[{\"c\":3}],null,{\"d\":4}]}".to_vec(),
        b"{\"Records\":[]}\n[]\n[{}]\n{\"Records\":[{}]}".to_vec(),
        b"{\"Records\":[{\"a\":1}{\"b\":2},{\"c\":3}]}\n{\"Records\":[{\"d\":4}]}".to_vec(),
        b"{\"Records\":[{\"a\":1},{\"b\":2}".to_vec(),
        b"{\"Records\":[{\"a\":1},{\"b\":\"2".to_vec(),
        b"{\"Records\":[{\"a\":1},{\"b\":2}]".to_vec(),
        b"{\"Records\":[{\"a\":1},{\"b\":2}]} trailing\n{\"Records\":[{\"c\":3}]}".to_vec(),
        b"{\"Records\":[{\"a\":\"\xff\"},{\"b\":\"\xc3\xa9\"},{\"c\":3}]}".to_vec(),
        b"{\"Records\":[{\"a\":\"x\ny\"},{\"b\":2}]}\n{\"Records\":[{\"c\":3}]}".to_vec(),
        b"{\"Records\":[{\"a\":1}}],\"b\":2}\n[{\"c\":3}]".to_vec(),
        b"{\"Records\":[{\"a\":1]},{\"b\":2}]}".to_vec(),
        b"{\"Records\":[{\"a\":\"\\\\\"},{\"b\":\"\\\\\\\"\"},{\"c\":\"\\q\"},{\"d\":4}]}".to_vec(),
        b"xx\n{\"Records\":[{\"a\":1},{\"b\":}]}\n{\"Records\":[{\"c\":3},{\"d\":}]}".to_vec(),
        // As JSON Lines, a line of two objects is numbered from the line.
        b"{\"Records\":[{\"a\":1},{\"b\":}]}\n{\"c\":3}{\"d\":4}\n{\"e\":5}\n".to_vec(),
        format!(
            "{{\"Records\":[{{\"big\":\"{}\"}},{{\"a\":1}}]}}",
            "x".repeat(5_000)
        )
        .into_bytes(),
    ];
    for b in BAD_JSON {
        inputs.push(format!("{{\"Records\":[{{\"ok\":0}},{b},{{\"ok\":1}}]}}").into_bytes());
        inputs.push(format!("[{b},\n{{\"ok\":1}}]\n{{\"Records\":[{{\"ok\":2}}]}}").into_bytes());
    }
    // Records nesting up to the limit, counted from the document's root.
    let deep = |n: usize| format!("{}1{}", "{\"k\":".repeat(n), "}".repeat(n));
    for n in [509, 510, 511, 512] {
        inputs.push(format!("{{\"Records\":[{{\"a\":1}},{}]}}", deep(n)).into_bytes());
        inputs.push(format!("[{},{{\"a\":1}}]", deep(n)).into_bytes());
    }
    // Mutants of the one-line and pretty envelopes: a byte replaced,
    // removed or doubled.
    let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
    let alphabet = b"{}[]\",:\\ \nax1\xff";
    for base in [one_line.as_bytes(), pretty.as_bytes()] {
        for _ in 0..300 {
            let mut m = base.to_vec();
            let at = (next() % m.len() as u64) as usize;
            match next() % 3 {
                0 => m[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                1 => {
                    m.remove(at);
                }
                _ => m.insert(at, m[at]),
            }
            inputs.push(m);
        }
    }
    inputs
}

#[test]
fn envelope_records_give_exactly_what_the_strict_reader_gives() {
    let mut taken = 0;
    for input in envelope_inputs() {
        // As JSON Lines the reference is the reader with line records alone,
        // which differs from the strict reader only in numbering a line of
        // several objects (`line_records_number_concatenated_objects_from_their_line`).
        let strict = collect(reader(&input).with_max_record_bytes(4_000), 1 << 20);
        let as_lines = split_unchecked(&input, 1 << 20, (true, false), 4_000).0;
        for target in [1, 64, 1 << 20] {
            for lines in [false, true] {
                let (envelopes, whole) = split_unchecked(&input, target, (lines, true), 4_000);
                if !lines {
                    // Only envelope objects are taken whole then.
                    taken += whole;
                }
                let expected = if lines { &as_lines } else { &strict };
                assert_eq!(
                    (&envelopes.recs, &envelopes.damage),
                    (&expected.recs, &expected.damage),
                    "target {target}, lines {lines}: {}",
                    String::from_utf8_lossy(&input[..input.len().min(300)])
                );
            }
        }
    }
    // The fast path was taken (not every object fell back to the state machine).
    assert!(taken > 20_000, "{taken} objects taken whole");
}
