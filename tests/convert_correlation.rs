//! Correlation export against the matcher: the same records go to
//! `sigil scan`, through `../shared/spl-oracle/spl_eval.py` to the exported
//! search and through `../shared/oracle/athena_check.py` to the exported SQL; the groups that fire must be the same. The synthetic
//! data has a burst inside one window, a burst straddling a clock boundary
//! (found only by a sliding window), a burst exactly one timespan wide (not
//! a window: the boundary is exclusive) and a burst one event short.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sigil_compiler::backend::{self, Mapping, Target};
use sigil_compiler::catalog::Catalog;
use sigil_compiler::{ir, Config};

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIGIL_ORACLE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but SIGIL_ORACLE_PYTHON is unset: .ci/run must install the oracles");
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/oracle/.venv/bin/python");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("NOTICE: correlation export test skipped: set SIGIL_ORACLE_PYTHON");
        None
    }
}

fn event(key: &str, secs: u64, n: usize) -> String {
    let t = 4 * 3600 + secs;
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","accountId":"111122223333","accessKeyId":"{key}","userName":"u"}},"eventTime":"2026-11-21T{:02}:{:02}:{:02}Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.77","userAgent":"aws-cli/2.15.30","requestParameters":null,"responseElements":null,"errorCode":"AccessDenied","eventID":"{key}-{n}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#,
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[test]
fn event_count_exports_fire_for_the_same_groups_as_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rule = root.join("rules/aws/cloudtrail/cloudtrail_api_access_denied_burst.yml");
    let base = root.join("rules/aws/cloudtrail/cloudtrail_api_call_access_denied.yml");
    let catalog = Catalog::load(&[rule.clone(), base.clone()], &Config::default());
    let (program, _) = ir::from_catalog(&catalog);
    let corr = program
        .correlations
        .iter()
        .find(|c| c.info.title.starts_with("Burst of Denied"))
        .expect("burst correlation");
    let query = backend::convert_correlation(corr, &program, Target::Splunk, &Mapping::default())
        .expect("SPL for event_count");
    assert!(
        query.contains(
            "streamstats time_window=600s count as event_count by userIdentity.accessKeyId"
        ),
        "{query}"
    );

    let mut lines = Vec::new();
    // A: 10 events 60 s apart (span 540 s): fires.
    for i in 0..10 {
        lines.push(event("AKIAAAAAAAAAAAAAAAAA", 60 * i, i as usize));
    }
    // B: 10 events, first and last exactly 600 s apart: no window holds them.
    for i in 0..10u64 {
        let t = 7200 + if i == 9 { 600 } else { 66 * i };
        lines.push(event("AKIABBBBBBBBBBBBBBBB", t, i as usize));
    }
    // C: 9 events within a minute: one short.
    for i in 0..9u64 {
        lines.push(event("AKIACCCCCCCCCCCCCCCC", 3 * 3600 + i, i as usize));
    }
    // D: 10 events straddling 05:00:00 (5 before, 5 after), 30 s apart.
    for i in 0..10u64 {
        lines.push(event(
            "AKIADDDDDDDDDDDDDDDD",
            3600 - 150 + 30 * i,
            i as usize,
        ));
    }
    // Out of order in the file.
    lines.reverse();
    lines.swap(3, 17);
    let dir = std::env::temp_dir().join(format!("sigil-convert-corr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines.join("\n") + "\n").expect("events");
    let spl = dir.join("q.spl");
    std::fs::write(&spl, &query).expect("query");

    let scan = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["scan", "--format", "jsonl", "--rules"])
        .arg(&rule)
        .arg("--rules")
        .arg(&base)
        .arg(&events)
        .output()
        .expect("sigil scan");
    let mut matcher = BTreeSet::new();
    for l in String::from_utf8_lossy(&scan.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("jsonl");
        if let Some(g) = v["correlation"]["group"]["userIdentity.accessKeyId"].as_str() {
            matcher.insert(g.to_string());
        }
    }
    let out = Command::new(&python)
        .arg(root.join("../shared/spl-oracle/spl_eval.py"))
        .arg(&spl)
        .arg(&events)
        .arg("--rows")
        .output()
        .expect("spl_eval");
    // Athena: the exported window query on DuckDB via athena_check.py.
    let sql_query =
        backend::convert_correlation(corr, &program, Target::Athena, &Mapping::default())
            .expect("SQL for event_count");
    let sql = dir.join("q.sql");
    std::fs::write(&sql, &sql_query).expect("sql");
    let athena = Command::new(&python)
        .arg(root.join("../shared/oracle/athena_check.py"))
        .arg(&sql)
        .arg(&events)
        .output()
        .expect("athena_check");
    let a: serde_json::Value = serde_json::from_slice(&athena.stdout).unwrap_or_else(|e| {
        panic!(
            "athena_check output: {e}: {}",
            String::from_utf8_lossy(&athena.stderr)
        )
    });
    let r = &a["results"]["q.sql"];
    assert_eq!(r["status"], "ok", "{r}");
    let athena_groups: BTreeSet<String> = r["eventids"]
        .as_array()
        .expect("eventids")
        .iter()
        .filter_map(|id| id.as_str())
        .map(|id| id.split('-').next().unwrap_or("").to_string())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "spl_eval output: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let spl_groups: BTreeSet<String> = v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {v}"))
        .iter()
        .filter_map(|r| r["userIdentity.accessKeyId"].as_str().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = ["AKIAAAAAAAAAAAAAAAAA", "AKIADDDDDDDDDDDDDDDD"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(matcher, expected, "matcher");
    assert_eq!(spl_groups, expected, "exported SPL: {query}");
    assert_eq!(athena_groups, expected, "exported SQL: {sql_query}");
}
