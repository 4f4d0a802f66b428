//! The shipped catalog (`rules/`) in the test suite: every rule checks clean,
//! has fixtures, and its fixtures pass — through the same code as
//! `sigil test` (`sigil::fixtures::run`). Also: the README's first command
//! (a scan of `examples/`) finds the attack story.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sigil::fixtures::{self, CaseStatus, RuleStatus};
use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::Severity;
use sigil_compiler::Config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn catalog_checks_without_errors_or_warnings() {
    let catalog = Catalog::load(&[root().join("rules")], &Config::default());
    let problems: Vec<String> = catalog
        .diagnostics()
        .iter()
        .filter(|d| matches!(d.severity(), Severity::Error | Severity::Warning))
        .map(|d| format!("{:?}: {}", d.path(), d.message()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(catalog.documents().count() >= 40);
}

#[test]
fn every_rule_has_passing_fixtures() {
    let report = fixtures::run(&[root().join("rules")], &Config::default());
    assert!(report.io_errors.is_empty(), "{:?}", report.io_errors);
    assert!(report.orphans.is_empty(), "{:?}", report.orphans);
    let mut failures = Vec::new();
    for r in &report.rules {
        match r.status {
            RuleStatus::Pass => {}
            RuleStatus::NoFixtures => failures.push(format!("{}: no fixtures", r.file.display())),
            RuleStatus::Fail => {
                let mut msg = format!("{}:", r.file.display());
                for e in &r.errors {
                    msg.push_str(&format!("\n  {e}"));
                }
                for c in r.cases.iter().filter(|c| c.status == CaseStatus::Fail) {
                    msg.push_str(&format!(
                        "\n  case `{}` ({}): expected {}, got {}\n    {}",
                        c.name,
                        c.from,
                        c.expected,
                        c.actual,
                        c.explanation.join("\n    ")
                    ));
                }
                failures.push(msg);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_detection_rule_has_a_match_and_a_near_miss() {
    let report = fixtures::run(&[root().join("rules")], &Config::default());
    for r in &report.rules {
        let live: Vec<_> = r
            .cases
            .iter()
            .filter(|c| c.status != CaseStatus::Pending)
            .collect();
        assert!(
            live.iter().any(|c| c.expected == "match"),
            "{}: no case that must match",
            r.file.display()
        );
        if r.kind == "rule" {
            assert!(
                live.iter().any(|c| c.expected == "no match"),
                "{}: no near miss",
                r.file.display()
            );
        }
        if r.kind == "correlation" {
            assert!(
                r.cases
                    .iter()
                    .any(|c| c.name.starts_with("alert ") && c.status == CaseStatus::Pass),
                "{}: a correlation needs expected alerts",
                r.file.display()
            );
        }
    }
}

#[test]
fn a_failing_fixture_is_reported_with_the_record_and_an_explanation() {
    let dir = std::env::temp_dir().join(format!("sigil-catalog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("rules/aws/cloudtrail/cloudtrail_stop_logging.yml"),
        dir.join("r.yml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("r.tests"),
        "cases:\n  - name: wrong expectation\n    match: true\n    record: {\"eventSource\": \"cloudtrail.amazonaws.com\", \"eventName\": \"StartLogging\"}\n  - name: right\n    match: false\n    record:\n      eventSource: cloudtrail.amazonaws.com\n      eventName: StartLogging\n",
    )
    .unwrap();
    let report = fixtures::run(std::slice::from_ref(&dir), &Config::default());
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(report.rules.len(), 1);
    let r = &report.rules[0];
    assert_eq!(r.status, RuleStatus::Fail);
    let failed = &r.cases[0];
    assert_eq!(failed.status, CaseStatus::Fail);
    assert!(failed.record.as_deref().unwrap().contains("StartLogging"));
    assert!(
        failed.explanation.iter().any(|l| l.contains("eventName")),
        "{:?}",
        failed.explanation
    );
    assert_eq!(r.cases[1].status, CaseStatus::Pass);
}

/// The README's first command, as written there.
fn readme_first_command() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("README has a `cargo run --release -- ...` command");
    line.trim_start_matches("cargo run --release -- ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Runs `sigil ARGS` in the workspace root, stdin closed, killed after 120 s.
fn run_with_timeout(args: &[String]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            panic!("`sigil {}` did not finish within 120 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    (status, out, err)
}

#[test]
fn readme_first_command_shows_the_attack_story() {
    let mut args = readme_first_command();
    assert_eq!(args[0], "scan", "{args:?}");
    assert!(args.iter().any(|a| a.starts_with("examples")), "{args:?}");
    // JSON lines on stdout; one thread keeps the run small on shared CI.
    args.extend(["--format", "jsonl", "--threads", "1"].map(String::from));
    let (status, out, err) = run_with_timeout(&args);
    assert_eq!(status.code(), Some(0), "{err}");
    let result = err
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line: {err}"));
    assert!(result.contains(" damaged=0"), "{result}");
    let titles: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["rule"]["title"].as_str().map(str::to_string))
        .collect();
    assert!(!titles.is_empty(), "no detections: {err}");
    // One detection per stage of the story.
    for expected in [
        "GetCallerIdentity Called With an Access Key",
        "IAM User Created",
        "AdministratorAccess Attached to a User, Role or Group",
        "CloudTrail Logging Stopped or Trail Deleted",
        "GuardDuty Detector Deleted",
        "S3 Bucket Policy Grants Access to Everyone",
        "EBS Snapshot Shared With Another Account or Made Public",
        "AWS Quarantined a Compromised Access Key",
        // Correlations: account takeover, bulk reads, destruction.
        "Console Account Takeover - Failed Logins Then Success Without MFA",
        "High Volume of S3 Object Reads by One Principal",
        "Mass EC2 Instance Termination by One Principal",
    ] {
        assert!(
            titles.iter().any(|t| t == expected),
            "`{expected}` not detected in examples/; got {titles:?}"
        );
    }
}

#[test]
fn examples_tree_is_small_and_in_the_s3_layout() {
    let dir = root().join("examples/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21");
    let mut total = 0;
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert!(p.to_string_lossy().ends_with(".json.gz"), "{}", p.display());
        total += std::fs::metadata(&p).unwrap().len();
        files += 1;
    }
    assert!(files > 5);
    assert!(total < 200 * 1024, "examples/ is {total} bytes");
    assert!(Path::new(&root().join("examples/make_examples.py")).exists());
}

#[test]
fn sigil_test_cli_json_junit_and_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["test", "--format", "json", "rules/"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 40);
    for v in &lines {
        assert_eq!(v["status"], "pass", "{v}");
        assert!(
            v["rule"]["title"].is_string() && v["cases"].is_array(),
            "{v}"
        );
    }

    // A failing fixture: exit 1, JUnit failure with the explanation.
    let dir = std::env::temp_dir().join(format!("sigil-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("rules/aws/cloudtrail/cloudtrail_stop_logging.yml"),
        dir.join("r.yml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("rules/aws/cloudtrail/cloudtrail_stop_logging.yml"),
        dir.join("no_fixtures.yml"),
    )
    .unwrap();
    // Same id twice would be a check error; give the copy its own id.
    let text = std::fs::read_to_string(dir.join("no_fixtures.yml"))
        .unwrap()
        .replace(
            "3c5a1f0e-8d2b-4b6e-9a57-2f1d0c9e4b11",
            "0b6a44f2-3c1e-4d2a-8f5b-7e9d1c2a3b4c",
        );
    std::fs::write(dir.join("no_fixtures.yml"), text).unwrap();
    std::fs::write(
        dir.join("r.tests"),
        "cases:\n  - name: not a stop\n    match: true\n    record: {eventSource: cloudtrail.amazonaws.com, eventName: StartLogging}\n",
    )
    .unwrap();
    let junit = dir.join("junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .arg("test")
        .arg("--format")
        .arg("human")
        .arg("--junit")
        .arg(&junit)
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("StartLogging"),
        "{stdout}"
    );
    assert!(stdout.contains("failed: eventName"), "{stdout}");
    assert!(stdout.contains("NONE"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"expected match, got no match\">"),
        "{xml}"
    );
    assert!(xml.contains("<skipped message=\"no fixtures\"/>"), "{xml}");
    // --require-fixtures: the rule without fixtures fails too.
    std::fs::write(
        dir.join("r.tests"),
        "cases:\n  - name: a stop\n    match: true\n    record: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sigil"))
            .arg("test")
            .args(extra)
            .arg(&dir)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run(&[]), Some(0));
    assert_eq!(run(&["--require-fixtures"]), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sigil_coverage_lists_every_domain_action() {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["coverage", "--format", "json", "--fail-on-gaps", "rules/"])
        .current_dir(root())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["uncovered"], serde_json::json!([]), "{v}");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        v["attack"]["defense-evasion"]["T1562.008"].is_array(),
        "{v}"
    );
}

/// The expected alerts of correlation fixtures, checked with `sigil scan`
/// (which executes correlations) until `sigil test` evaluates them itself.
#[test]
fn correlation_fixture_alerts_match_what_scan_reports() {
    let dir = root().join("rules/aws/cloudtrail");
    let tmp = std::env::temp_dir().join(format!("sigil-corr-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("tests") {
            continue;
        }
        let fx = fixtures::load_fixtures(&path);
        if fx.alerts.is_empty() {
            continue;
        }
        assert!(fx.problems.is_empty(), "{:?}", fx.problems);
        let rule = std::fs::read_to_string(path.with_extension("yml")).unwrap();
        let title = rule
            .lines()
            .find_map(|l| l.strip_prefix("title: "))
            .unwrap()
            .to_string();
        let input = tmp.join(format!("{checked}.jsonl"));
        let mut body = Vec::new();
        for c in fx.cases.iter().filter(|c| c.expected) {
            body.extend_from_slice(&c.record);
            body.push(b'\n');
        }
        std::fs::write(&input, body).unwrap();
        let args: Vec<String> = vec![
            "scan".into(),
            input.display().to_string(),
            "--format".into(),
            "jsonl".into(),
            "--threads".into(),
            "1".into(),
            "--rules".into(),
            "rules/".into(),
        ];
        let (status, out, err) = run_with_timeout(&args);
        assert_eq!(status.code(), Some(0), "{err}");
        let mut got: Vec<(Vec<(String, String)>, u64)> = Vec::new();
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["rule"]["title"] != title.as_str() || v["correlation"].is_null() {
                continue;
            }
            let group: Vec<(String, String)> = v["correlation"]["group"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            got.push((group, v["correlation"]["value"].as_f64().unwrap() as u64));
        }
        let mut want: Vec<(Vec<(String, String)>, u64)> = fx
            .alerts
            .iter()
            .map(|a| {
                (
                    a.group
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    a.count.unwrap(),
                )
            })
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}: alerts of `{title}`", path.display());
        checked += 1;
    }
    std::fs::remove_dir_all(&tmp).ok();
    assert!(checked >= 6, "{checked} correlation fixtures checked");
}
