//! End-to-end tests of the `sigil` binary: exit codes, output formats.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sigil")
}

fn temp_rule(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

const BAD: &str = "title: Bad\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName|contain: x\n  condition: sel and not filter\n";

#[test]
fn check_exit_codes() {
    assert_eq!(sigil(&["check", "rules"]).status.code(), Some(0));
    let bad = temp_rule("bad", BAD);
    assert_eq!(
        sigil(&["check", bad.to_str().unwrap()]).status.code(),
        Some(1)
    );
    assert_eq!(
        sigil(&["check", "/nonexistent/path/to/rules"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        sigil(&["check", "--format", "nonsense", "rules"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_json_has_the_contract_fields() {
    let bad = temp_rule("json", BAD);
    let out = sigil(&["check", "--format", "json", bad.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for d in &lines {
        for key in [
            "code",
            "severity",
            "message",
            "file",
            "line",
            "column",
            "end_line",
            "end_column",
            "help",
        ] {
            assert!(d.get(key).is_some(), "missing {key} in {d}");
        }
    }
    assert_eq!(lines[0]["code"], "S400");
    assert_eq!(lines[0]["line"], 5);
    assert_eq!(lines[1]["code"], "S402");
    assert_eq!(lines[1]["line"], 6);
    assert_eq!(lines[1]["column"], 26);
}

#[test]
fn check_sarif_is_code_scanning_shaped() {
    let bad = temp_rule("sarif", BAD);
    let out = sigil(&["check", "--format", "sarif", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules
        .iter()
        .any(|r| r["id"] == "S402" && r["shortDescription"]["text"].is_string()));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let r = &results[1];
    assert_eq!(r["ruleId"], "S402");
    assert_eq!(r["level"], "error");
    assert_eq!(
        rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "S402"
    );
    let region = &r["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 6);
    assert_eq!(region["startColumn"], 26);
    assert!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("sarif.yml")
    );
}

#[test]
fn check_human_shows_a_caret_snippet() {
    let bad = temp_rule("human", BAD);
    let out = sigil(&["check", "--format", "human", bad.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("error[S402]: condition refers to undefined identifier `filter`"),
        "{text}"
    );
    assert!(
        text.contains("6 |   condition: sel and not filter"),
        "{text}"
    );
    assert!(text.contains("^^^^^^"), "{text}");
}

#[test]
fn explain_prints_the_condition_tree() {
    let out = sigil(&[
        "explain",
        "rules/aws/cloudtrail/cloudtrail_stop_logging.yml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("explain_stop_logging", text);
}

#[test]
fn explain_makes_precedence_explicit() {
    let rule = temp_rule(
        "prec",
        "title: Precedence\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  a: {eventName: A}\n  b: {eventName: B}\n  filter_1: {userAgent|contains: x}\n  condition: a or b and not 1 of filter_*\n",
    );
    let out = sigil(&["explain", rule.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("condition: (a or (b and not 1 of filter_*))"),
        "{text}"
    );
}

#[test]
fn explain_event_says_which_test_failed() {
    let dir = std::env::temp_dir().join(format!("sigil-cli-{}-event", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("e.jsonl");
    std::fs::write(
        &events,
        "{\"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"StopLogging\"}\n{\"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"StartLogging\"}\n",
    )
    .unwrap();
    let out = sigil(&[
        "explain",
        "rules/aws/cloudtrail/cloudtrail_stop_logging.yml",
        "--event",
        events.to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("record 0 (line 1): CloudTrail Logging Stopped or Trail Deleted MATCHES"),
        "{text}"
    );
    assert!(
        text.contains(
            "record 1 (line 2): CloudTrail Logging Stopped or Trail Deleted does not match"
        ),
        "{text}"
    );
    assert!(
        text.contains("failed: eventName is one of") && text.contains("(value \"StartLogging\")"),
        "{text}"
    );
}

#[test]
fn scan_reports_damage_and_goes_on() {
    use std::io::Write as _;
    let dir = std::env::temp_dir().join(format!("sigil-cli-{}-damage", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventTime":"2024-01-01T00:00:00Z"}"#;
    // NDJSON with an invalid line, a non-object record and invalid UTF-8 in between.
    let mut ndjson = Vec::new();
    ndjson.extend_from_slice(format!("{good}\n{{\"eventName\": tru}}\n[1]\n").as_bytes());
    ndjson.extend_from_slice(b"{\"eventName\":\"\xff\xfe\"}\n");
    ndjson.extend_from_slice(format!("{good}\n").as_bytes());
    std::fs::write(dir.join("a.jsonl"), ndjson).unwrap();
    // A gzip file cut short after its first record.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(format!("{good}\n{good}\n{good}\n").as_bytes())
        .unwrap();
    let gz = enc.finish().unwrap();
    let cut = gz.len() - 12;
    std::fs::write(dir.join("b.jsonl.gz"), &gz[..cut]).unwrap();
    let out = sigil(&[
        "scan",
        "--format",
        "jsonl",
        "--rules",
        "rules",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let result = err.lines().find(|l| l.starts_with("RESULT ")).unwrap();
    assert!(!result.contains("damaged=0"), "{err}");
    assert!(err.contains("a.jsonl: line 2"), "{err}");
    assert!(err.contains("a.jsonl: line 3"), "{err}");
    assert!(err.contains("a.jsonl: line 4"), "{err}");
    assert!(err.contains("b.jsonl.gz"), "{err}");
    let detections = String::from_utf8(out.stdout).unwrap().lines().count();
    assert!(
        detections >= 2,
        "records around the damage are still scanned: {detections}"
    );
}

#[test]
fn json_lines_read_in_one_pass_scan_exactly_like_the_strict_reader() {
    // The same bytes as `x.jsonl` (lines handed whole to the matcher) and as
    // `x.log` (split and checked by the reader): same detections, damage and
    // counts, whatever the thread count.
    let dir = std::env::temp_dir().join(format!("sigil-cli-{}-lines", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = Vec::new();
    for i in 0..3000 {
        let name = ["StopLogging", "DeleteTrail", "ConsoleLogin", "GetObject"][i % 4];
        let line = match i % 500 {
            7 => "{\"eventName\": tru}".to_string(),
            8 => "{\"a\":1}{\"b\":2} x".to_string(),
            9 => "{\"eventName\":\"\\q\"}".to_string(),
            10 => "  {\"eventName\":\"StopLogging\"}".to_string(),
            11 => "{\n\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\"}"
                .to_string(),
            _ => format!(
                r#"{{"eventSource":"cloudtrail.amazonaws.com","eventName":"{name}","eventTime":"2024-01-01T00:{:02}:{:02}Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u{}"}},"n":{i}}}"#,
                i / 60 % 60,
                i % 60,
                i % 7
            ),
        };
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    text.extend_from_slice(b"{\"eventName\":\"\xff\"}\n");
    std::fs::write(dir.join("x.jsonl"), &text).unwrap();
    std::fs::write(dir.join("x.log"), &text).unwrap();
    let scan = |file: &str, threads: &str| {
        let out = sigil(&[
            "scan",
            "--format",
            "jsonl",
            "--threads",
            threads,
            "--rules",
            "rules",
            dir.join(file).to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8(out.stdout).unwrap().replace(file, "F");
        let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| {
                if l.starts_with("warning: skipped damaged input") {
                    return Some(l.replace(file, "F"));
                }
                // The RESULT line without its timings.
                let counts = l.strip_prefix("RESULT ")?.split(' ');
                let counts = counts.filter(|kv| {
                    !["seconds=", "eps=", "mbps="]
                        .iter()
                        .any(|t| kv.starts_with(t))
                });
                Some(counts.collect::<Vec<_>>().join(" "))
            })
            .collect();
        (stdout, stderr)
    };
    let strict = scan("x.log", "1");
    assert!(strict.0.lines().count() > 1000, "detections");
    // Three damaged lines in each block of 500, and the invalid UTF-8 at the end.
    let warnings = strict.1.iter().filter(|l| l.starts_with("warning")).count();
    assert_eq!(warnings, 3 * 6 + 1, "{:?}", strict.1);
    for threads in ["1", "2"] {
        assert_eq!(scan("x.jsonl", threads), strict, "threads {threads}");
    }
}
