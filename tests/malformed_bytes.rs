//! Malformed input that cannot live in a `.yml` case file of the diagnostics
//! suite (which is read as UTF-8): raw bytes, oversized and pathologically
//! nested files. Every test asserts the code and the position of each
//! diagnostic, and that loading returns instead of panicking.

use sigil_compiler::catalog::Catalog;
use sigil_compiler::Config;

/// `(code, line, column)` of every diagnostic, in position order; (0, 0)
/// for a diagnostic without a position.
fn codes(catalog: &Catalog) -> Vec<(String, usize, usize)> {
    catalog
        .diagnostics()
        .clone()
        .into_sorted()
        .iter()
        .map(|d| {
            let (line, col) = d.range().map(|(s, _)| (s.line, s.column)).unwrap_or((0, 0));
            (d.code().id.to_string(), line, col)
        })
        .collect()
}

fn load(bytes: &[u8]) -> Catalog {
    Catalog::from_bytes("bytes.yml", bytes, &Config::default())
}

fn want(items: &[(&str, usize, usize)]) -> Vec<(String, usize, usize)> {
    items
        .iter()
        .map(|(c, l, k)| (c.to_string(), *l, *k))
        .collect()
}

const RULE: &str = "title: Trail stopped\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName: StopLogging\n    condition: selection\n";

#[test]
fn valid_rule_loads_cleanly() {
    let c = load(RULE.as_bytes());
    assert_eq!(codes(&c), want(&[]));
    assert_eq!(c.rules().count(), 1);
}

#[test]
fn latin1_byte_is_reported_at_its_character_column() {
    // line 3: `description: é caf` then a Latin-1 `é` (0xE9): the column counts
    // the two-byte UTF-8 `é` before it as one character.
    let mut bytes = b"title: Latin-1 file\nlevel: high\ndescription: \xc3\xa9 caf".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b"\nlogsource: {product: aws}\n");
    let c = load(&bytes);
    assert_eq!(codes(&c), want(&[("S101", 3, 19)]));
    let d = c.diagnostics().iter().next().expect("one diagnostic");
    assert!(d.message().contains("0xe9"), "{}", d.message());
    assert_eq!(c.documents().count(), 0);
}

#[test]
fn invalid_utf8_after_bom_is_reported_without_the_bom() {
    let mut bytes = b"\xEF\xBB\xBFtitle: ".to_vec();
    bytes.extend_from_slice(&[0xFF, 0xFE]);
    bytes.push(b'\n');
    let c = load(&bytes);
    assert_eq!(codes(&c), want(&[("S101", 1, 8)]));
}

#[test]
fn truncated_multibyte_sequence_at_end_of_file() {
    // `é` cut after its first byte at the very end of the file
    let mut bytes = RULE.as_bytes().to_vec();
    bytes.extend_from_slice(b"author: Jos\xc3");
    let c = load(&bytes);
    assert_eq!(codes(&c), want(&[("S101", 9, 12)]));
}

#[test]
fn utf16_file_is_not_utf8() {
    // a rule saved as UTF-16 LE with BOM: the BOM itself is invalid UTF-8
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "title: x\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let c = load(&bytes);
    assert_eq!(codes(&c), want(&[("S101", 1, 1)]));
}

#[test]
fn five_mib_file_is_refused_before_parsing() {
    let mut text = String::from(RULE);
    while text.len() < 5 * 1024 * 1024 {
        text.push_str("# padding to make the file larger than the limit\n");
    }
    let c = load(text.as_bytes());
    assert_eq!(codes(&c), want(&[("S102", 1, 1)]));
    assert_eq!(c.documents().count(), 0);
}

#[test]
fn file_just_under_the_limit_is_read() {
    let mut text = String::from(RULE);
    let pad = "# padding\n";
    while text.len() + pad.len() <= 4 * 1024 * 1024 {
        text.push_str(pad);
    }
    let c = load(text.as_bytes());
    assert_eq!(codes(&c), want(&[]));
    assert_eq!(c.rules().count(), 1);
}

#[test]
fn million_nested_flow_sequences() {
    let depth = 1_000_000;
    let text = format!(
        "title: x\ncustom: {}1{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let c = load(text.as_bytes());
    // The YAML scanner reads ahead through the opening brackets and stops at
    // its own flow-level bound (256) before any collection is built: one
    // S103 where it stopped.
    assert_eq!(codes(&c), want(&[("S103", 2, 8 + 256)]));
}

#[test]
fn two_hundred_nested_flow_sequences() {
    let depth = 200;
    let text = format!(
        "title: x
custom: {}1{}
",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let c = load(text.as_bytes());
    // the root mapping is level 1, so the 64th `[` (column 8 + 64) opens level 65
    assert_eq!(codes(&c), want(&[("S103", 2, 72)]));
}

#[test]
fn million_nested_flow_mappings_left_open() {
    let depth = 1_000_000;
    let text = format!("title: x\ncustom: {}\n", "{a: ".repeat(depth));
    let c = load(text.as_bytes());
    // The 64th `{` opens level 65; the scanner's own flow-level bound, hit
    // later, is the same problem and not reported again.
    assert_eq!(codes(&c), want(&[("S103", 2, 8 + 63 * 4 + 1)]));
}

#[test]
fn deeply_nested_block_mappings() {
    let mut text = String::from(RULE);
    text.push_str("custom:\n");
    for i in 0..200 {
        text.push_str(&" ".repeat(i + 1));
        text.push_str("k:\n");
    }
    text.push_str(&" ".repeat(201));
    text.push_str("leaf: 1\n");
    let c = load(text.as_bytes());
    // root is level 1, `custom`'s mapping level 2 (the first `k`): the 64th
    // `k` (line 9 + 64, indented 64) opens level 65
    assert_eq!(codes(&c), want(&[("S103", 73, 65)]));
    assert_eq!(c.documents().count(), 0);
}

fn rule_with_condition(condition: &str) -> String {
    format!("title: Deep condition\nlogsource:\n    product: aws\ndetection:\n    selection:\n        eventName: StopLogging\n    condition: {condition}\n")
}

#[test]
fn ten_thousand_nested_parentheses() {
    let n = 10_000;
    let condition = format!("{}selection{}", "(".repeat(n), ")".repeat(n));
    let c = load(rule_with_condition(&condition).as_bytes());
    // `condition: ` ends at column 16; the 65th `(` is the first past the limit
    assert_eq!(codes(&c), want(&[("S307", 7, 16 + 64)]));
}

#[test]
fn ten_thousand_unclosed_parentheses() {
    let condition = "(".repeat(10_000);
    let c = load(rule_with_condition(&condition).as_bytes());
    assert_eq!(codes(&c), want(&[("S307", 7, 16 + 64)]));
}

#[test]
fn ten_thousand_nots() {
    let condition = format!("{}selection", "not ".repeat(10_000));
    let c = load(rule_with_condition(&condition).as_bytes());
    assert_eq!(codes(&c), want(&[("S307", 7, 16 + 64 * 4)]));
}

#[test]
fn ten_thousand_closing_parentheses() {
    let condition = format!("selection{}", ")".repeat(10_000));
    let c = load(rule_with_condition(&condition).as_bytes());
    assert_eq!(codes(&c), want(&[("S301", 7, 16 + 9)]));
}

#[test]
fn missing_file_is_an_io_error_without_position() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/diagnostics/does-not-exist.yml");
    let c = Catalog::load(&[path], &Config::default());
    assert_eq!(codes(&c), want(&[("S109", 0, 0)]));
    let d = c.diagnostics().iter().next().expect("one diagnostic");
    assert!(d.path().is_some());
}

/// Every prefix of a rule, and the rule with each byte replaced, loads
/// without panicking and reports every problem with a position.
#[test]
fn truncated_and_corrupted_rules_never_panic() {
    let text = "title: Trail stopped\nid: 5f0c5e7e-1b1e-4d3b-9a3f-0f8a1c2b3d4e\nname: trail_stopped\ntags: [attack.t1562.008]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    selection:\n        eventName|contains|all: ['Stop', \"Log\"]\n        sourceIPAddress|cidr: 10.0.0.0/8\n    filter: {userAgent|re: '^aws-cli/.*$'}\n    condition: (selection and not filter) or 1 of sel*\n---\ntitle: Many\ncorrelation:\n    type: value_count\n    rules: [trail_stopped]\n    group-by: [userIdentity.arn]\n    timespan: 5m\n    condition: {gte: 5, field: sourceIPAddress}\n";
    let bytes = text.as_bytes();
    let check = |input: &[u8]| {
        let c = load(input);
        for d in c.diagnostics().iter() {
            if d.code().id != "S109" {
                assert!(d.range().is_some(), "{} has no position", d.code().id);
            }
        }
    };
    for end in 0..=bytes.len() {
        check(&bytes[..end]);
    }
    for i in 0..bytes.len() {
        for replacement in [b'[', b'{', b'\'', b'"', b'|', b'(', b'\t', b'*', b'&', 0xFF] {
            let mut corrupted = bytes.to_vec();
            corrupted[i] = replacement;
            check(&corrupted);
        }
    }
}

#[test]
fn alias_bomb_in_bytes_is_bounded() {
    let mut text = String::from("title: Laughs\nlogsource: {product: aws}\ndetection:\n    sel: {eventName: x}\n    condition: sel\nlol0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "lol{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let c = load(text.as_bytes());
    // Each alias of `a3` copies 11,111 nodes: with the 12,330 copied by
    // `lol1`..`lol3`, the 8th alias in `lol4` passes 100,000.
    assert_eq!(codes(&c), want(&[("S106", 10, 12 + 7 * 5)]));
}
