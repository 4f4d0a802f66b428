//! Correlations end to end through `sigil scan`: the near misses of the
//! destruction, account-takeover and exfiltration patterns, and order
//! independence — the same records shuffled across files and thread counts
//! give identical alerts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dir(name: &str) -> PathBuf {
    // Tests run in parallel threads of one process: a counter keeps dirs apart.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("sigil-corr-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rec(time: &str, arn: &str, name: &str, extra: &str) -> String {
    let source = match name {
        "TerminateInstances" => "ec2.amazonaws.com",
        "GetObject" => "s3.amazonaws.com",
        _ => "signin.amazonaws.com",
    };
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"{arn}"}},"eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","eventID":"{name}-{arn}-{time}"{extra}}}"#
    )
}

fn at(base_s: i64, offset_ms: i64) -> String {
    let t = base_s * 1000 + offset_ms;
    let (s, ms) = (t / 1000, t % 1000);
    let (h, m, sec) = (s / 3600 % 24, s / 60 % 60, s % 60);
    format!("2024-03-01T{h:02}:{m:02}:{sec:02}.{ms:03}Z")
}

/// `n` terminations by `arn`, evenly spread over `span_ms`, starting at `start_s`.
fn terminations(n: i64, arn: &str, start_s: i64, span_ms: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            rec(
                &at(start_s, i * span_ms / n.max(1)),
                arn,
                "TerminateInstances",
                "",
            )
        })
        .collect()
}

/// Runs `sigil scan ARGS --rules <this suite's rules> INPUT`, with `TMPDIR`
/// set when `tmpdir` is given.
fn scan(input: &Path, args: &[&str], tmpdir: Option<&Path>) -> Output {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/correlation/rules.yml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigil"));
    cmd.arg("scan")
        .args(args)
        .arg("--rules")
        .arg(&rules)
        .arg(input);
    if let Some(tmp) = tmpdir {
        cmd.env("TMPDIR", tmp);
    }
    cmd.output().unwrap()
}

/// Scans `files` (each a list of lines) and returns the correlation alerts'
/// JSON lines, sorted, with file names removed (so different splits compare).
fn alerts(files: &[Vec<String>], threads: usize) -> Vec<String> {
    let threads = threads.to_string();
    let args = ["-q", "--format", "jsonl", "--threads", &threads];
    let out = scan(&write_files(files), &args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    without_positions(&String::from_utf8(out.stdout).unwrap())
}

/// The correlation alerts of a scan's output, sorted, each with its record
/// positions replaced by their number: positions depend on how the records
/// were split into files; compare the rest.
fn without_positions(stdout: &str) -> Vec<String> {
    let mut alerts: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("\"correlation\""))
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let n = v["correlation"]["records"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            v["correlation"]["records"] = serde_json::json!(n);
            v.to_string()
        })
        .collect();
    alerts.sort();
    alerts
}

fn titles(alerts: &[String]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            let v: serde_json::Value = serde_json::from_str(a).unwrap();
            v["rule"]["title"].as_str().unwrap().to_string()
        })
        .collect()
}

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";

#[test]
fn twenty_terminations_in_five_minutes_fire_once() {
    let a = alerts(&[terminations(20, ALICE, 36_000, 240_000)], 1);
    assert_eq!(titles(&a), vec!["Mass EC2 termination by one principal"]);
    let v: serde_json::Value = serde_json::from_str(&a[0]).unwrap();
    assert_eq!(v["correlation"]["type"], "event_count");
    assert_eq!(v["correlation"]["group"]["userIdentity.arn"], ALICE);
    assert_eq!(v["correlation"]["value"], 20);
    assert_eq!(v["correlation"]["records"], 20);
}

#[test]
fn near_misses_do_not_fire() {
    // 19 in 5 minutes
    assert!(alerts(&[terminations(19, ALICE, 36_000, 200_000)], 1).is_empty());
    // 20 spread over 6 minutes: no 5-minute window holds 20
    assert!(alerts(&[terminations(20, ALICE, 36_000, 380_000)], 1).is_empty());
    // 20 by two users
    let mut two = terminations(10, ALICE, 36_000, 100_000);
    two.extend(terminations(10, BOB, 36_000, 100_000));
    assert!(alerts(&[two], 1).is_empty());
}

#[test]
fn a_burst_across_an_hour_boundary_is_found() {
    // 10:58:30 .. 11:01:30
    let a = alerts(
        &[terminations(20, ALICE, 10 * 3600 + 58 * 60 + 30, 180_000)],
        1,
    );
    assert_eq!(a.len(), 1);
}

#[test]
fn order_and_split_do_not_matter() {
    let mut lines = terminations(25, ALICE, 36_000, 200_000);
    lines.extend(terminations(12, BOB, 36_100, 100_000));
    for (i, b) in ["b1", "b2", "b3"].iter().enumerate() {
        lines.push(rec(
            &at(40_000, i as i64 * 1000),
            ALICE,
            "GetObject",
            &format!(r#","requestParameters":{{"bucketName":"{b}"}}"#),
        ));
    }
    let one = alerts(&[lines.clone()], 1);
    assert_eq!(one.len(), 2, "{one:?}");
    // reversed, split over 7 files delivered out of order, two threads
    let mut rev = lines.clone();
    rev.reverse();
    let files: Vec<Vec<String>> = rev.chunks(6).map(<[String]>::to_vec).collect();
    assert_eq!(alerts(&files, 2), one);
    // interleaved split, one thread
    let odd: Vec<String> = lines.iter().step_by(2).cloned().collect();
    let even: Vec<String> = lines.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(alerts(&[even, odd], 1), one);
}

#[test]
fn failures_then_success_without_mfa_is_account_takeover() {
    let fail = |t: i64| {
        rec(
            &at(36_000, t),
            ALICE,
            "ConsoleLogin",
            r#","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"}"#,
        )
    };
    let ok = |t: i64| {
        rec(
            &at(36_000, t),
            ALICE,
            "ConsoleLogin",
            r#","responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"}"#,
        )
    };
    let a = alerts(&[vec![fail(0), fail(10_000), fail(20_000), ok(60_000)]], 1);
    assert_eq!(titles(&a), vec!["Failed logins then a login without MFA"]);
    // success before the failures: no alert
    assert!(alerts(&[vec![ok(0), fail(10_000), fail(20_000)]], 1).is_empty());
}

#[test]
fn base_rules_of_a_correlation_do_not_alert_alone() {
    let d = dir("generate");
    std::fs::write(
        d.join("x.jsonl"),
        terminations(3, ALICE, 36_000, 1000).join("\n"),
    )
    .unwrap();
    let out = scan(&d, &["-q", "--format", "jsonl"], None);
    assert!(
        String::from_utf8(out.stdout).unwrap().is_empty(),
        "generate: false keeps base matches quiet"
    );
}

#[test]
fn correlations_of_correlations_and_other_types() {
    // Two bursts of 20 terminations 20 minutes apart: two inner alerts, so
    // the chained correlation (>= 2 inner alerts in 1 h) fires once.
    let mut lines = terminations(20, ALICE, 36_000, 100_000);
    lines.extend(terminations(20, ALICE, 37_200, 100_000));
    let a = alerts(&[lines], 1);
    let t = titles(&a);
    assert_eq!(
        t.iter()
            .filter(|x| *x == "Mass EC2 termination by one principal")
            .count(),
        2,
        "{t:?}"
    );
    assert_eq!(
        t.iter()
            .filter(|x| *x == "Two mass terminations within an hour")
            .count(),
        1,
        "{t:?}"
    );

    // temporal: a failed login and an S3 read by bob, in either order.
    let fail = rec(
        &at(36_000, 60_000),
        BOB,
        "ConsoleLogin",
        r#","responseElements":{"ConsoleLogin":"Failure"}"#,
    );
    let get = |t: i64, bytes: u64| {
        rec(
            &at(36_000, t),
            BOB,
            "GetObject",
            &format!(
                r#","requestParameters":{{"bucketName":"b"}},"additionalEventData":{{"bytesTransferredOut":{bytes}}}"#
            ),
        )
    };
    let a = alerts(&[vec![get(0, 10), fail.clone()]], 1);
    assert!(
        titles(&a).contains(&"Login failure and S3 read by one principal".to_string()),
        "{a:?}"
    );
    // value_sum: 3 reads of 400 kB each exceed 1 MB; 2 do not.
    let a = alerts(
        &[vec![
            get(0, 400_000),
            get(1000, 400_000),
            get(2000, 400_000),
        ]],
        1,
    );
    assert!(
        titles(&a).contains(&"Large S3 transfer by one principal".to_string()),
        "{a:?}"
    );
    let a = alerts(&[vec![get(0, 400_000), get(1000, 400_000)]], 1);
    assert!(
        !titles(&a).contains(&"Large S3 transfer by one principal".to_string()),
        "{a:?}"
    );
}

/// Every correlation type of `rules.yml` with alerts: bursts, a chained
/// correlation, logins, reads with distinct buckets and byte counts.
fn every_type() -> Vec<String> {
    let mut lines = terminations(25, ALICE, 36_000, 200_000);
    lines.extend(terminations(20, ALICE, 37_200, 100_000));
    lines.extend(terminations(12, BOB, 36_100, 100_000));
    for (i, who) in [ALICE, BOB].iter().enumerate() {
        let base = 38_000 + i as i64 * 100;
        for t in [0, 10_000, 20_000] {
            lines.push(rec(
                &at(base, t),
                who,
                "ConsoleLogin",
                r#","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"}"#,
            ));
        }
        lines.push(rec(
            &at(base, 60_000),
            who,
            "ConsoleLogin",
            r#","responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"}"#,
        ));
        for k in 0..6 {
            lines.push(rec(
                &at(base, 70_000 + k * 1000),
                who,
                "GetObject",
                &format!(
                    r#","requestParameters":{{"bucketName":"b{}"}},"additionalEventData":{{"bytesTransferredOut":{}}}"#,
                    k % 4,
                    300_000 + k
                ),
            ));
        }
    }
    lines
}

/// Writes `files` (each a list of lines) into a new directory.
fn write_files(files: &[Vec<String>]) -> PathBuf {
    let d = dir(&format!("with-{}", files.len()));
    for (i, lines) in files.iter().enumerate() {
        std::fs::write(d.join(format!("part{i:03}.jsonl")), lines.join("\n")).unwrap();
    }
    d
}

/// Scans the directory `d` with extra options; (exit code, stdout, stderr).
fn scan_with(d: &Path, threads: usize, extra: &[&str]) -> (i32, String, String) {
    let threads = threads.to_string();
    let mut args = vec!["--format", "jsonl", "--threads", &threads];
    args.extend_from_slice(extra);
    let out = scan(d, &args, None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn spilling_to_disk_gives_the_same_alerts_byte_for_byte() {
    let lines = every_type();
    let one = write_files(std::slice::from_ref(&lines));
    let (code, in_memory, err) = scan_with(&one, 1, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("spilled"), "{err}");
    let t = titles(&in_memory.lines().map(str::to_string).collect::<Vec<_>>());
    for title in [
        "Mass EC2 termination by one principal",
        "Two mass terminations within an hour",
        "Failed logins then a login without MFA",
        "Distinct buckets read by one principal",
        "Login failure and S3 read by one principal",
        "Large S3 transfer by one principal",
    ] {
        assert!(t.iter().any(|x| x == title), "{title} must fire: {t:?}");
    }
    // A budget of 0 spills a run per event; 2K spills a few larger runs.
    // Same files, so even the record positions must be identical.
    for budget in ["0", "2K"] {
        let (code, spilled, err) = scan_with(&one, 2, &["--correlation-memory", budget]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("spilled to temporary files"), "{err}");
        assert!(
            spilled == in_memory,
            "--correlation-memory {budget}:\n{spilled}\nin memory:\n{in_memory}"
        );
    }
    // And spilling is order-independent too.
    let mut rev = lines;
    rev.reverse();
    let files: Vec<Vec<String>> = rev.chunks(9).map(<[String]>::to_vec).collect();
    let split = alerts(&files, 2);
    let (_, spilled_split, _) = scan_with(&write_files(&files), 2, &["--correlation-memory", "1K"]);
    assert_eq!(without_positions(&spilled_split), split);
}

#[test]
fn a_spill_that_cannot_be_written_is_a_clear_error() {
    let d = dir("no-tmp");
    std::fs::write(
        d.join("x.jsonl"),
        terminations(20, ALICE, 36_000, 1000).join("\n"),
    )
    .unwrap();
    let args = ["-q", "--format", "jsonl", "--correlation-memory", "0"];
    let out = scan(&d, &args, Some(&d.join("does-not-exist")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: correlation `Mass EC2 termination by one principal` cannot run: cannot spill correlation events to a temporary file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let bad = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["scan", "--correlation-memory", "lots"])
        .arg(&d)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a size"));
}

#[test]
fn spill_files_leave_nothing_behind() {
    let data = write_files(&[every_type()]);
    let tmp = dir("tmpdir");
    let out = scan(
        &data,
        &["--format", "count", "--correlation-memory", "0"],
        Some(&tmp),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("sorted runs"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
