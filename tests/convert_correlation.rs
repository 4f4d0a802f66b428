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

/// The correlation's query for `target` with the default mapping and no time range.
fn export(corr: &ir::CorrelationIr, program: &ir::Program, target: Target) -> backend::Out {
    backend::convert_correlation(
        corr,
        program,
        target,
        &Mapping::default(),
        &Default::default(),
    )
}

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
    let query = export(corr, &program, Target::Splunk).expect("SPL for event_count");
    assert!(
        query.contains(
            "| stats count as sigil_n by userIdentity.accessKeyId _time | sort 0 _time | streamstats time_window=600s sum(sigil_n) as event_count min(_time) as window_start by userIdentity.accessKeyId"
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
    let sql_query = export(corr, &program, Target::Athena).expect("SQL for event_count");
    let sql = dir.join("q.sql");
    // Only the ids: the window's timestamps need pytz to reach Python.
    std::fs::write(
        &sql,
        format!("SELECT eventid FROM (\n{sql_query}\n) sigil_q"),
    )
    .expect("sql");
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

// ---------------------------------------------------------------------------
// A generic differential harness: rules written to a directory, synthetic
// records, and for each of `sigil scan`, the exported SPL and the exported
// SQL the first window of every group that fires: group value →
// (window start, window end) as `HH:MM:SS`. The matcher reports one alert per
// burst and the exports one row per window end that meets the condition, so
// the first alert of a group is compared with the group's earliest row.

use std::collections::BTreeMap;

type Fired = BTreeMap<String, (String, String)>;

const TEMPLATE_DAY: &str = "2026-11-21";

/// One record at 04:00:00 + `secs`; `key` is the access key (the group),
/// `agent` the userAgent, `error` the errorCode.
fn rec(
    key: Option<&str>,
    name: &str,
    secs: u64,
    id: &str,
    agent: Option<&str>,
    error: Option<&str>,
) -> String {
    let t = 4 * 3600 + secs;
    let mut ui = serde_json::json!({
        "type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/u",
        "accountId": "111122223333", "userName": "u",
    });
    if let Some(k) = key {
        ui["accessKeyId"] = k.into();
    }
    let mut v = serde_json::json!({
        "eventVersion": "1.09", "userIdentity": ui,
        "eventTime": format!("{TEMPLATE_DAY}T{:02}:{:02}:{:02}Z", t / 3600, t / 60 % 60, t % 60),
        "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.77", "requestParameters": null, "responseElements": null,
        "eventID": id, "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
    });
    if let Some(a) = agent {
        v["userAgent"] = a.into();
    }
    if let Some(e) = error {
        v["errorCode"] = e.into();
    }
    v.to_string()
}

fn hms_of_epoch(secs: &str) -> String {
    let s: f64 = secs.parse().unwrap_or_else(|_| panic!("epoch {secs}"));
    let s = s as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `…THH:MM:SS…` or `… HH:MM:SS…` → `HH:MM:SS`.
fn hms(ts: &str) -> String {
    ts.get(11..19)
        .unwrap_or_else(|| panic!("time {ts}"))
        .to_string()
}

fn keep_first(out: &mut Fired, group: String, start: String, end: String) {
    let e = out.entry(group).or_insert((start.clone(), end.clone()));
    if end < e.1 {
        *e = (start, end);
    }
}

struct Run {
    matcher: Fired,
    spl: Fired,
    athena: Fired,
    spl_query: String,
    sql_query: String,
}

/// Runs the correlation titled `title` of the rules `texts` over `lines`
/// three ways. `group` is the group-by name.
fn differential(
    python: &Path,
    tag: &str,
    texts: &[(&str, &str)],
    title: &str,
    group: &str,
    lines: &[String],
) -> Run {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("sigil-corr-{tag}-{}", std::process::id()));
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("dir");
    for (name, text) in texts {
        std::fs::write(rules.join(name), text).expect("rule");
    }
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines.join("\n") + "\n").expect("events");
    let catalog = Catalog::load(std::slice::from_ref(&rules), &Config::default());
    let (program, _) = ir::from_catalog(&catalog);
    let corr = program
        .correlations
        .iter()
        .find(|c| c.info.title == title)
        .unwrap_or_else(|| panic!("correlation {title}"));
    let spl_query =
        export(corr, &program, Target::Splunk).unwrap_or_else(|e| panic!("SPL for {title}: {e:?}"));
    let sql_query =
        export(corr, &program, Target::Athena).unwrap_or_else(|e| panic!("SQL for {title}: {e:?}"));

    let scan = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["scan", "--format", "jsonl", "--rules"])
        .arg(&rules)
        .arg(&events)
        .output()
        .expect("sigil scan");
    let mut matcher = Fired::new();
    for l in String::from_utf8_lossy(&scan.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("jsonl");
        if v["rule"]["title"] != title {
            continue;
        }
        let c = &v["correlation"];
        let g = c["group"][group]
            .as_str()
            .unwrap_or_else(|| panic!("group in {v}"));
        keep_first(
            &mut matcher,
            g.to_string(),
            hms(c["window"]["start"].as_str().expect("start")),
            hms(c["window"]["end"].as_str().expect("end")),
        );
    }

    let spl = dir.join("q.spl");
    std::fs::write(&spl, &spl_query).expect("query");
    let out = Command::new(python)
        .arg(root.join("../shared/spl-oracle/spl_eval.py"))
        .arg(&spl)
        .arg(&events)
        .arg("--rows")
        .output()
        .expect("spl_eval");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "spl_eval output: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut spl_fired = Fired::new();
    for r in v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {v}\n{spl_query}"))
    {
        let g = r[group].as_str().unwrap_or_else(|| panic!("group in {r}"));
        keep_first(
            &mut spl_fired,
            g.to_string(),
            hms_of_epoch(r["window_start"].as_str().expect("window_start")),
            hms_of_epoch(r["_time"].as_str().expect("_time")),
        );
    }

    let sql = dir.join("q.sql");
    // The window's timestamps as text (a TIMESTAMPTZ needs pytz to reach
    // Python); the query itself is unchanged inside.
    // event_count keeps the table's columns (`SELECT *`): the group is the
    // column itself; the self-join names it after the group-by.
    let q = if sql_query.starts_with("SELECT *") {
        format!("{} AS {}", group.to_lowercase(), quoted_sql(group))
    } else {
        quoted_sql(group)
    };
    std::fs::write(
        &sql,
        format!("SELECT {q}, CAST(window_start AS VARCHAR) AS window_start, CAST(window_end AS VARCHAR) AS window_end\nFROM (\n{sql_query}\n) sigil_q"),
    )
    .expect("sql");
    let athena = Command::new(python)
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
    assert_eq!(r["status"], "ok", "{r}\n{sql_query}");
    let cols: Vec<&str> = r["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("columns: {r}"))
        .iter()
        .map(|c| c.as_str().unwrap_or(""))
        .collect();
    let at = |n: &str| {
        cols.iter()
            .position(|c| *c == n)
            .unwrap_or_else(|| panic!("column {n} in {cols:?}"))
    };
    let (gi, si, ei) = (at(group), at("window_start"), at("window_end"));
    let mut athena_fired = Fired::new();
    for row in r["rows"].as_array().expect("rows") {
        keep_first(
            &mut athena_fired,
            row[gi].as_str().expect("group").to_string(),
            hms(row[si].as_str().expect("start")),
            hms(row[ei].as_str().expect("end")),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        matcher,
        spl: spl_fired,
        athena: athena_fired,
        spl_query,
        sql_query,
    }
}

fn quoted_sql(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn shuffle(lines: &mut [String]) {
    // Deterministic out-of-order input.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..lines.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lines.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// A firing group and its first window: (group, start, end), `hh:mm:ss`.
type Window<'a> = (&'a str, &'a str, &'a str);

fn expect(run: &Run, want: &[Window]) {
    let want: Fired = want
        .iter()
        .map(|(g, s, e)| (g.to_string(), (s.to_string(), e.to_string())))
        .collect();
    assert_eq!(run.matcher, want, "matcher");
    assert_eq!(run.spl, want, "exported SPL: {}", run.spl_query);
    assert_eq!(run.athena, want, "exported SQL: {}", run.sql_query);
}

const DENIED: &str = "title: Denied\nname: t_denied\nstatus: test\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {errorCode: AccessDenied}\n  condition: sel\nlevel: low\n";
const CREATE_USER: &str = "title: Create user\nname: t_create\nstatus: test\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: CreateUser}\n  condition: sel\nlevel: low\n";
const CREATE_KEY: &str = "title: Create key\nname: t_key\nstatus: test\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: CreateAccessKey}\n  condition: sel\nlevel: low\n";

const KEY: &str = "userIdentity.accessKeyId";
const BYTES: &str = "additionalEventData.bytesTransferredOut";

#[test]
fn value_count_exports_fire_for_the_same_groups_and_windows_as_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    let corr = "title: Agents\nname: t_vc\nstatus: test\ncorrelation:\n  type: value_count\n  rules: [t_denied]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\n  condition: {gt: 2, field: userAgent}\nlevel: high\n";
    let d = Some("AccessDenied");
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |key: Option<&str>, secs: u64, agent: Option<&str>, error: Option<&str>| {
        n += 1;
        lines.push(rec(
            key,
            "ListUsers",
            secs,
            &format!("id-{n}"),
            agent,
            error,
        ));
    };
    // A: a, b, a, c inside 3 minutes: fires when c arrives.
    for (t, a) in [(0, "a"), (60, "b"), (120, "a"), (180, "c")] {
        add(Some("KA"), t, Some(a), d);
    }
    // B: a, b, c with a and c exactly 600 s apart, then b again: never 3.
    for (t, a) in [(0, "a"), (300, "b"), (600, "c"), (610, "b")] {
        add(Some("KB"), t, Some(a), d);
    }
    // C: threshold - 1: many events, two agents.
    for t in 0..12 {
        add(
            Some("KC"),
            900 + t * 10,
            Some(["a", "b"][t as usize % 2]),
            d,
        );
    }
    // D: straddling 05:00:00.
    for (t, a) in [(3540, "a"), (3580, "b"), (3620, "c")] {
        add(Some("KD"), t, Some(a), d);
    }
    // E: missing values add nothing; a third agent on a record the base rule
    // does not match adds nothing either.
    add(Some("KE"), 0, Some("a"), d);
    add(Some("KE"), 10, None, d);
    add(Some("KE"), 20, Some("b"), d);
    add(Some("KE"), 30, None, d);
    add(Some("KE"), 40, Some("c"), None);
    // F: three agents in the same second (tied times).
    for a in ["a", "b", "c"] {
        add(Some("KF"), 7200, Some(a), d);
    }
    // No access key: joins no group.
    for (t, a) in [(0, "a"), (10, "b"), (20, "c")] {
        add(None, t, Some(a), d);
    }
    shuffle(&mut lines);
    let run = differential(
        &python,
        "vc",
        &[("denied.yml", DENIED), ("vc.yml", corr)],
        "Agents",
        KEY,
        &lines,
    );
    assert!(
        run.sql_query.contains("count(DISTINCT w.sigil_value)"),
        "{}",
        run.sql_query
    );
    expect(
        &run,
        &[
            ("KA", "04:00:00", "04:03:00"),
            ("KD", "04:59:00", "05:00:20"),
            ("KF", "06:00:00", "06:00:00"),
        ],
    );
}

#[test]
fn temporal_exports_fire_for_the_same_groups_and_windows_as_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    let corr = "title: Persistence\nname: t_tmp\nstatus: test\ncorrelation:\n  type: temporal\n  rules: [t_create, t_denied, t_key]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\nlevel: high\n";
    let d = Some("AccessDenied");
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |key: Option<&str>, name: &str, secs: u64, error: Option<&str>| {
        n += 1;
        lines.push(rec(key, name, secs, &format!("id-{n}"), Some("cli"), error));
    };
    // A: the three rules in reverse order.
    add(Some("KA"), "CreateAccessKey", 0, None);
    add(Some("KA"), "ListUsers", 100, d);
    add(Some("KA"), "CreateUser", 200, None);
    // B: first and last exactly 600 s apart.
    add(Some("KB"), "CreateUser", 0, None);
    add(Some("KB"), "ListUsers", 300, d);
    add(Some("KB"), "CreateAccessKey", 600, None);
    // C: two of the three rules, many times.
    for t in 0..6 {
        add(
            Some("KC"),
            ["CreateUser", "CreateAccessKey"][t as usize % 2],
            60 * t,
            None,
        );
    }
    // D: straddling 05:00:00.
    add(Some("KD"), "CreateUser", 3590, None);
    add(Some("KD"), "ListUsers", 3600, d);
    add(Some("KD"), "CreateAccessKey", 3610, None);
    // E: one record matches two rules.
    add(Some("KE"), "CreateUser", 0, d);
    add(Some("KE"), "CreateAccessKey", 10, None);
    // F: all in one second.
    add(Some("KF"), "CreateUser", 7200, None);
    add(Some("KF"), "ListUsers", 7200, d);
    add(Some("KF"), "CreateAccessKey", 7200, None);
    // No access key.
    add(None, "CreateUser", 0, None);
    add(None, "ListUsers", 1, d);
    add(None, "CreateAccessKey", 2, None);
    shuffle(&mut lines);
    let run = differential(
        &python,
        "tmp",
        &[
            ("denied.yml", DENIED),
            ("create.yml", CREATE_USER),
            ("key.yml", CREATE_KEY),
            ("tmp.yml", corr),
        ],
        "Persistence",
        KEY,
        &lines,
    );
    assert!(
        run.spl_query.starts_with("| multisearch [search "),
        "{}",
        run.spl_query
    );
    expect(
        &run,
        &[
            ("KA", "04:00:00", "04:03:20"),
            ("KD", "04:59:50", "05:00:10"),
            ("KE", "04:00:00", "04:00:10"),
            ("KF", "06:00:00", "06:00:00"),
        ],
    );
}

/// `temporal_ordered` on both backends: the rules in list order at strictly
/// increasing times (rules matched in the same second never chain), the
/// latest-starting chain, one record filling one stage, a rule listed twice,
/// and a partial condition (`gte: 2`).
#[test]
fn temporal_ordered_exports_match_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    let corr = |title: &str, rules: &str, cond: &str| {
        format!("title: {title}\nname: t_{}\nstatus: test\ncorrelation:\n  type: temporal_ordered\n  rules: [{rules}]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\n{cond}level: high\n", title.to_lowercase())
    };
    let d = Some("AccessDenied");
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |key: Option<&str>, name: &str, secs: u64, error: Option<&str>| {
        n += 1;
        lines.push(rec(key, name, secs, &format!("id-{n}"), Some("cli"), error));
    };
    // A: in order.
    add(Some("KA"), "CreateUser", 0, None);
    add(Some("KA"), "ListUsers", 100, d);
    add(Some("KA"), "CreateAccessKey", 200, None);
    // B: in reverse order.
    add(Some("KB"), "CreateAccessKey", 0, None);
    add(Some("KB"), "ListUsers", 100, d);
    add(Some("KB"), "CreateUser", 200, None);
    // C: the first two in the same second: not in order.
    add(Some("KC"), "CreateUser", 0, None);
    add(Some("KC"), "ListUsers", 0, d);
    add(Some("KC"), "CreateAccessKey", 100, None);
    // D: two starts: the later one is reported.
    add(Some("KD"), "CreateUser", 0, None);
    add(Some("KD"), "CreateUser", 200, None);
    add(Some("KD"), "ListUsers", 300, d);
    add(Some("KD"), "CreateAccessKey", 400, None);
    // E: first and last exactly 600 s apart.
    add(Some("KE"), "CreateUser", 0, None);
    add(Some("KE"), "ListUsers", 300, d);
    add(Some("KE"), "CreateAccessKey", 600, None);
    // F: straddling 05:00:00.
    add(Some("KF"), "CreateUser", 3590, None);
    add(Some("KF"), "ListUsers", 3600, d);
    add(Some("KF"), "CreateAccessKey", 3610, None);
    // G: one record matching the first two rules fills one stage; a later
    // denial completes the chain.
    add(Some("KG"), "CreateUser", 0, d);
    add(Some("KG"), "CreateAccessKey", 10, None);
    add(Some("KG"), "ListUsers", 20, d);
    add(Some("KG"), "CreateAccessKey", 30, None);
    // H: the last two in the same second, then the last again.
    add(Some("KH"), "CreateUser", 0, None);
    add(Some("KH"), "ListUsers", 100, d);
    add(Some("KH"), "CreateAccessKey", 100, None);
    add(Some("KH"), "CreateAccessKey", 150, None);
    // No access key.
    add(None, "CreateUser", 0, None);
    add(None, "ListUsers", 1, d);
    add(None, "CreateAccessKey", 2, None);
    shuffle(&mut lines);
    let rules = [
        ("denied.yml", DENIED),
        ("create.yml", CREATE_USER),
        ("key.yml", CREATE_KEY),
    ];
    // (label, title, stages, condition, the windows that fire).
    let cases: [(&str, &str, &str, &str, &[Window]); 5] = [
        (
            "ord",
            "Chain",
            "t_create, t_denied, t_key",
            "",
            &[
                ("KA", "04:00:00", "04:03:20"),
                ("KD", "04:03:20", "04:06:40"),
                ("KF", "04:59:50", "05:00:10"),
                ("KG", "04:00:00", "04:00:30"),
                ("KH", "04:00:00", "04:02:30"),
            ],
        ),
        // The first two stages: KB never (its denial follows no creation), KC
        // not at 0 (the same second).
        (
            "ord2",
            "Two",
            "t_create, t_denied, t_key",
            "  condition: {gte: 2}\n",
            &[
                ("KA", "04:00:00", "04:01:40"),
                ("KD", "04:03:20", "04:05:00"),
                ("KE", "04:00:00", "04:05:00"),
                ("KF", "04:59:50", "05:00:00"),
                ("KG", "04:00:00", "04:00:20"),
                ("KH", "04:00:00", "04:01:40"),
            ],
        ),
        // Other conditions test the number of leading stages chained at each
        // step: `eq: 2` first holds where `gte: 2` does; `lt: 1` holds at a
        // step with no fresh chain: KB's first (a key), and KE's last (its
        // creation exactly 600 s before has left the window).
        (
            "ord-eq",
            "Eq",
            "t_create, t_denied, t_key",
            "  condition: {eq: 2}\n",
            &[
                ("KA", "04:00:00", "04:01:40"),
                ("KD", "04:03:20", "04:05:00"),
                ("KE", "04:00:00", "04:05:00"),
                ("KF", "04:59:50", "05:00:00"),
                ("KG", "04:00:00", "04:00:20"),
                ("KH", "04:00:00", "04:01:40"),
            ],
        ),
        (
            "ord-lt",
            "None",
            "t_create, t_denied, t_key",
            "  condition: {lt: 1}\n",
            &[
                ("KB", "04:00:00", "04:00:00"),
                ("KE", "04:10:00", "04:10:00"),
            ],
        ),
        // A rule listed twice: two denials, then a key; one record never fills
        // both denial stages.
        (
            "ord3",
            "Twice",
            "t_denied, t_denied, t_key",
            "",
            &[("KG", "04:00:00", "04:00:30")],
        ),
    ];
    for (label, title, stages, condition, want) in cases {
        let rule = corr(title, stages, condition);
        let mut all = rules.to_vec();
        all.push(("o.yml", &rule));
        let run = differential(&python, label, &all, title, KEY, &lines);
        if label == "ord" {
            assert!(
                run.spl_query
                    .contains("streamstats current=f time_window=600s"),
                "{}",
                run.spl_query
            );
        }
        expect(&run, want);
    }
}

#[test]
fn inexact_correlations_are_refused_on_both_backends() {
    let corr = |ty: &str, cond: &str| {
        format!("title: C\nname: c\nstatus: test\ncorrelation:\n  type: {ty}\n  rules: [t_denied, t_create]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\n{cond}level: high\n")
    };
    let chained = "title: Outer\nname: outer\nstatus: test\ncorrelation:\n  type: event_count\n  rules: [c]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 1h\n  condition: {gte: 2}\nlevel: high\n";
    let aliased = "title: C\nname: c\nstatus: test\ncorrelation:\n  type: value_sum\n  rules: [t_denied, t_create]\n  group-by: [actor]\n  aliases:\n    actor:\n      t_denied: userIdentity.accessKeyId\n      t_create: userIdentity.userName\n  timespan: 10m\n  condition: {gte: 3, field: additionalEventData.bytesTransferredOut}\nlevel: high\n".to_string();
    let cases = [
        (aliased, "C", "several rules with group-by aliases"),
        (corr("temporal", ""), "Outer", "another correlation"),
    ];
    for (text, title, why) in &cases {
        let mut texts = vec![
            ("d.yml", DENIED),
            ("c.yml", CREATE_USER),
            ("x.yml", text.as_str()),
        ];
        if *title == "Outer" {
            texts.push(("o.yml", chained));
        }
        let catalog = Catalog::from_texts(&texts, &Config::default());
        let (program, _) = ir::from_catalog(&catalog);
        let c = program
            .correlations
            .iter()
            .find(|c| c.info.title == *title)
            .unwrap_or_else(|| panic!("{title} in {text}"));
        for target in [Target::Splunk, Target::Athena] {
            let e = export(c, &program, target).expect_err(text);
            assert_eq!(e.code, "S500", "{text}");
            assert!(
                e.message.contains(why),
                "{target:?}: {} does not say {why}",
                e.message
            );
        }
    }
}

#[test]
fn event_count_over_two_rules_counts_a_record_once_and_matches_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    let corr = "title: Busy\nname: t_ec\nstatus: test\ncorrelation:\n  type: event_count\n  rules: [t_create, t_denied]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\n  condition: {gte: 3}\nlevel: high\n";
    let d = Some("AccessDenied");
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |key: Option<&str>, name: &str, secs: u64, error: Option<&str>| {
        n += 1;
        lines.push(rec(key, name, secs, &format!("id-{n}"), Some("cli"), error));
    };
    // A: three events of either rule within two minutes.
    add(Some("KA"), "CreateUser", 0, None);
    add(Some("KA"), "ListUsers", 60, d);
    add(Some("KA"), "CreateUser", 120, None);
    // B: a record matching both rules counts once: 2 events, no alert.
    add(Some("KB"), "CreateUser", 0, d);
    add(Some("KB"), "CreateUser", 60, None);
    // C: first and last exactly 600 s apart.
    for t in [0, 300, 600] {
        add(Some("KC"), "CreateUser", t, None);
    }
    // D: straddling 05:00:00.
    for t in [3590, 3600, 3610] {
        add(Some("KD"), "CreateUser", t, None);
    }
    // E: three in one second.
    for _ in 0..3 {
        add(Some("KE"), "CreateUser", 7200, None);
    }
    // F: a record neither rule matches does not count.
    add(Some("KF"), "CreateUser", 0, None);
    add(Some("KF"), "ListUsers", 10, None);
    add(Some("KF"), "CreateUser", 20, None);
    // No access key.
    for t in [0, 1, 2] {
        add(None, "CreateUser", t, None);
    }
    shuffle(&mut lines);
    let run = differential(
        &python,
        "ec",
        &[
            ("denied.yml", DENIED),
            ("create.yml", CREATE_USER),
            ("ec.yml", corr),
        ],
        "Busy",
        KEY,
        &lines,
    );
    expect(
        &run,
        &[
            ("KA", "04:00:00", "04:02:00"),
            ("KD", "04:59:50", "05:00:10"),
            ("KE", "06:00:00", "06:00:00"),
        ],
    );
}

#[test]
fn temporal_with_aliases_matches_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    // The key's owner is named in `userName` on CreateAccessKey records.
    let corr = "title: Aliased\nname: t_alias\nstatus: test\ncorrelation:\n  type: temporal\n  rules: [t_create, t_key]\n  group-by: [actor]\n  aliases:\n    actor:\n      t_create: userIdentity.accessKeyId\n      t_key: userIdentity.userName\n  timespan: 10m\nlevel: high\n";
    let lines = vec![
        // Every record's userName is `u`. Actor u: CreateUser under key u,
        // then CreateAccessKey by user u (under key zz): fires.
        rec(Some("u"), "CreateUser", 0, "id-1", None, None),
        rec(Some("zz"), "CreateAccessKey", 30, "id-2", None, None),
        // Actor v: CreateUser under key v twice, no CreateAccessKey by user v.
        rec(Some("v"), "CreateUser", 100, "id-3", None, None),
        rec(Some("v"), "CreateUser", 200, "id-4", None, None),
    ];
    let run = differential(
        &python,
        "alias",
        &[
            ("create.yml", CREATE_USER),
            ("key.yml", CREATE_KEY),
            ("alias.yml", corr),
        ],
        "Aliased",
        "actor",
        &lines,
    );
    assert!(run.spl_query.contains("actor="), "{}", run.spl_query);
    expect(&run, &[("u", "04:00:00", "04:00:30")]);
    // temporal_ordered with the same aliases: creation then key fires for u;
    // key then creation fires for nobody.
    for (rules, want) in [
        ("t_create, t_key", &[("u", "04:00:00", "04:00:30")][..]),
        ("t_key, t_create", &[][..]),
    ] {
        let ordered = corr
            .replace("type: temporal", "type: temporal_ordered")
            .replace("rules: [t_create, t_key]", &format!("rules: [{rules}]"));
        let run = differential(
            &python,
            "alias-ord",
            &[
                ("create.yml", CREATE_USER),
                ("key.yml", CREATE_KEY),
                ("alias.yml", &ordered),
            ],
            "Aliased",
            "actor",
            &lines,
        );
        expect(&run, want);
    }
}

/// A record of the base rule `t_denied` with `additionalEventData.
/// bytesTransferredOut` set to `value` (a JSON number or string; None: no
/// such field).
fn sized(key: Option<&str>, secs: u64, id: &str, value: Option<serde_json::Value>) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&rec(key, "GetObject", secs, id, None, Some("AccessDenied")))
            .expect("record");
    if let Some(x) = value {
        v["additionalEventData"] = serde_json::json!({ "bytesTransferredOut": x });
    }
    v.to_string()
}

/// `value_sum` and `value_avg` on both backends: negative values, values
/// with the same eventTime (a step: +100 and -100 in one second never make
/// a window of +100 alone, whichever eventID hashes first), numbers written
/// as JSON strings with spaces, non-numeric and out-of-range values (they
/// add nothing), records without the field, without the group.
#[test]
fn value_sum_and_value_avg_exports_match_the_matcher() {
    let Some(python) = python() else {
        return;
    };
    let corr = |title: &str, ty: &str, cond: &str| {
        format!("title: {title}\nname: t_{ty}\nstatus: test\ncorrelation:\n  type: {ty}\n  rules: [t_denied]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\n  condition: {{{cond}, field: additionalEventData.bytesTransferredOut}}\nlevel: high\n")
    };
    let j = |x: i64| serde_json::Value::from(x);
    let s = |x: &str| serde_json::Value::from(x);
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |key: Option<&str>, secs: u64, value: Option<serde_json::Value>| {
        n += 1;
        lines.push(sized(key, secs, &format!("id-{n}"), value));
    };
    // A: 40, 30, 50 within two minutes.
    add(Some("KA"), 0, Some(j(40)));
    add(Some("KA"), 60, Some(j(30)));
    add(Some("KA"), 120, Some(j(50)));
    // B: 60 and 60 exactly 600 s apart, then -10.
    add(Some("KB"), 0, Some(j(60)));
    add(Some("KB"), 600, Some(j(60)));
    add(Some("KB"), 610, Some(j(-10)));
    // C: +100 and -100 in one second, then 50.
    add(Some("KC"), 7200, Some(j(100)));
    add(Some("KC"), 7200, Some(j(-100)));
    add(Some("KC"), 7210, Some(j(50)));
    // D: 60 and 60 in one second.
    add(Some("KD"), 10800, Some(j(60)));
    add(Some("KD"), 10800, Some(j(60)));
    // E: non-numeric, a string with spaces, no field, out of range, then 40
    // and -5 in one second.
    add(Some("KE"), 0, Some(s("abc")));
    add(Some("KE"), 10, Some(s(" 70 ")));
    add(Some("KE"), 20, None);
    add(Some("KE"), 30, Some(s("1e400")));
    add(Some("KE"), 40, Some(j(40)));
    add(Some("KE"), 40, Some(s("-5")));
    // F: straddling 05:00:00.
    add(Some("KF"), 3590, Some(j(50)));
    add(Some("KF"), 3610, Some(j(50)));
    // No access key.
    add(None, 0, Some(j(500)));
    shuffle(&mut lines);
    // Conditions other than gt/gte, in the last two: a sum below 50 (an
    // empty sum is 0: KE's first step, with no number, fires), an average
    // equal to 50 (KC's tied step averages 0, then 50 / 3; KB's last window
    // 50 / 2).
    let cases: [(&str, &str, &str, &[Window]); 4] = [
        (
            "Volume",
            "value_sum",
            "gte: 100",
            &[
                ("KA", "04:00:00", "04:02:00"),
                ("KD", "07:00:00", "07:00:00"),
                ("KE", "04:00:00", "04:00:40"),
                ("KF", "04:59:50", "05:00:10"),
            ],
        ),
        (
            "Average",
            "value_avg",
            "gte: 60",
            &[
                ("KB", "04:00:00", "04:00:00"),
                ("KD", "07:00:00", "07:00:00"),
                ("KE", "04:00:00", "04:00:10"),
            ],
        ),
        (
            "Low",
            "value_sum",
            "lt: 50",
            &[
                ("KA", "04:00:00", "04:00:00"),
                ("KC", "06:00:00", "06:00:00"),
                ("KE", "04:00:00", "04:00:00"),
            ],
        ),
        (
            "Fifty",
            "value_avg",
            "eq: 50",
            &[("KF", "04:59:50", "04:59:50")],
        ),
    ];
    for (title, ty, cond, want) in cases {
        let rule = corr(title, ty, cond);
        let tag = title.to_lowercase();
        let run = differential(
            &python,
            &tag,
            &[("denied.yml", DENIED), ("c.yml", &rule)],
            title,
            KEY,
            &lines,
        );
        expect(&run, want);
    }
}

/// A group-by path that may hold an array in some records: the matcher takes
/// its first value, `streamstats … by` and `json_extract_scalar` would not
/// see it, so both backends refuse until the mapping declares the path.
#[test]
fn group_by_paths_that_may_be_arrays_are_refused() {
    let corr = "title: C\nname: c\nstatus: test\ncorrelation:\n  type: event_count\n  rules: [t_denied]\n  group-by: [requestParameters.policy.name]\n  timespan: 10m\n  condition: {gte: 2}\nlevel: high\n";
    let catalog = Catalog::from_texts(&[("d.yml", DENIED), ("c.yml", corr)], &Config::default());
    let (program, _) = ir::from_catalog(&catalog);
    let c = &program.correlations[0];
    for (target, why) in [
        (Target::Splunk, "splunk.fixed"),
        (Target::Athena, "athena.scalars"),
    ] {
        let e = export(c, &program, target).expect_err("refused");
        assert_eq!(e.code, "S500");
        assert!(e.message.contains(why), "{target:?}: {}", e.message);
    }
}

/// `event_count` with an `eq` condition: the matcher applies it to the window
/// ending with every step (all events of one time at once), so a group with
/// three events in one second does not fire (its window holds three, never
/// two); both exports count the same way.
#[test]
fn event_count_eq_matches_the_matcher_on_both_backends() {
    let Some(python) = python() else {
        return;
    };
    let corr = "title: Two\nname: t_two\nstatus: test\ncorrelation:\n  type: event_count\n  rules: [t_create]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 10m\n  condition: {eq: 2}\nlevel: high\n";
    let mut lines = Vec::new();
    let mut n = 0;
    let mut add = |key: &str, secs: u64| {
        n += 1;
        lines.push(rec(
            Some(key),
            "CreateUser",
            secs,
            &format!("id-{n}"),
            None,
            None,
        ));
    };
    // A: one event, never two.
    add("KA", 0);
    // B: two events a minute apart.
    add("KB", 0);
    add("KB", 60);
    // C: three in one second: the step's window holds three, not two.
    for _ in 0..3 {
        add("KC", 600);
    }
    // F: one, then two in one second: the second step's window holds three.
    add("KF", 1200);
    add("KF", 1210);
    add("KF", 1210);
    // G: two in one second, then a third a minute later: two, then three.
    add("KG", 1800);
    add("KG", 1800);
    add("KG", 1860);
    // D: two events exactly 600 s apart: windows of one.
    add("KD", 0);
    add("KD", 600);
    // E: straddling 05:00:00.
    add("KE", 3590);
    add("KE", 3610);
    shuffle(&mut lines);
    let run = differential(
        &python,
        "eq",
        &[("create.yml", CREATE_USER), ("two.yml", corr)],
        "Two",
        KEY,
        &lines,
    );
    expect(
        &run,
        &[
            ("KB", "04:00:00", "04:01:00"),
            ("KE", "04:59:50", "05:00:10"),
            ("KG", "04:30:00", "04:30:00"),
        ],
    );
}

/// Random records on a coarse time grid (ties and windows exactly one
/// timespan wide are common), three access keys and records without one,
/// values sometimes missing, negative, strings or non-numeric: every
/// exported type, with `gt`/`gte` and other conditions, agrees with the
/// matcher on the firing groups and each group's first window.
#[test]
fn random_records_fire_the_same_groups_and_windows_on_all_three() {
    let Some(python) = python() else {
        return;
    };
    let head = |title: &str, ty: &str, rules: &str| {
        format!("title: {title}\nname: {}\nstatus: test\ncorrelation:\n  type: {ty}\n  rules: [{rules}]\n  group-by: [userIdentity.accessKeyId]\n  timespan: 5m\n", title.to_lowercase())
    };
    let corrs = [
        (
            "Rany",
            format!(
                "{}  condition: {{gte: 3}}\nlevel: high\n",
                head("Rany", "event_count", "t_create, t_denied")
            ),
        ),
        (
            "Rtwo",
            format!(
                "{}  condition: {{eq: 2}}\nlevel: high\n",
                head("Rtwo", "event_count", "t_create")
            ),
        ),
        (
            "Rneq",
            format!(
                "{}  condition: {{neq: 1}}\nlevel: high\n",
                head("Rneq", "event_count", "t_key")
            ),
        ),
        (
            "Ragents",
            format!(
                "{}  condition: {{gt: 1, field: userAgent}}\nlevel: high\n",
                head("Ragents", "value_count", "t_denied")
            ),
        ),
        (
            "Rall",
            format!(
                "{}level: high\n",
                head("Rall", "temporal", "t_create, t_denied, t_key")
            ),
        ),
        (
            "Rtlt",
            format!(
                "{}  condition: {{lt: 2}}\nlevel: high\n",
                head("Rtlt", "temporal", "t_create, t_denied")
            ),
        ),
        (
            "Rvceq",
            format!(
                "{}  condition: {{eq: 2, field: userAgent}}\nlevel: high\n",
                head("Rvceq", "value_count", "t_denied")
            ),
        ),
        (
            "Rsum",
            format!(
                "{}  condition: {{gte: 40, field: {BYTES}}}\nlevel: high\n",
                head("Rsum", "value_sum", "t_denied")
            ),
        ),
        (
            "Rsum2",
            format!(
                "{}  condition: {{neq: 0, field: {BYTES}}}\nlevel: high\n",
                head("Rsum2", "value_sum", "t_create, t_denied")
            ),
        ),
        (
            "Rord",
            format!(
                "{}level: high\n",
                head("Rord", "temporal_ordered", "t_create, t_denied, t_key")
            ),
        ),
        (
            "Rord2",
            format!(
                "{}  condition: {{gt: 1}}\nlevel: high\n",
                head("Rord2", "temporal_ordered", "t_key, t_create, t_key")
            ),
        ),
        (
            "Rord3",
            format!(
                "{}  condition: {{neq: 1}}\nlevel: high\n",
                head("Rord3", "temporal_ordered", "t_denied, t_key")
            ),
        ),
        (
            "Ravg",
            format!(
                "{}  condition: {{gt: -10, lte: 10, field: {BYTES}}}\nlevel: high\n",
                head("Ravg", "value_avg", "t_denied")
            ),
        ),
    ];
    let mut x: u64 = 0x5EED_C0DE_1234_5678;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let (mut compared, mut fired) = (0, 0);
    let mut per_title: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..6 {
        let mut lines = Vec::new();
        for i in 0..(20 + next(25)) {
            let key = ["KA", "KB", "KC", ""][next(4) as usize];
            let name = ["CreateUser", "CreateAccessKey", "ListUsers"][next(3) as usize];
            let agent = ["a", "b", "c", ""][next(4) as usize];
            let error = next(2) == 0;
            let mut v: serde_json::Value = serde_json::from_str(&rec(
                (!key.is_empty()).then_some(key),
                name,
                30 * next(40),
                &format!("r{round}-{i}"),
                (!agent.is_empty()).then_some(agent),
                error.then_some("AccessDenied"),
            ))
            .expect("record");
            // The summed value: a number from -40 to 50, the same as a
            // string, non-numeric, or missing.
            let x = next(10) as i64 * 10 - 40;
            let bytes = match next(5) {
                0 => None,
                1 => Some(serde_json::json!(format!(" {x}"))),
                2 => Some(serde_json::json!("n/a")),
                _ => Some(serde_json::json!(x)),
            };
            if let Some(b) = bytes {
                v["additionalEventData"] = serde_json::json!({ "bytesTransferredOut": b });
            }
            lines.push(v.to_string());
        }
        for (title, text) in &corrs {
            let run = differential(
                &python,
                &format!("rnd{round}{title}"),
                &[
                    ("denied.yml", DENIED),
                    ("create.yml", CREATE_USER),
                    ("key.yml", CREATE_KEY),
                    ("c.yml", text),
                ],
                title,
                KEY,
                &lines,
            );
            assert_eq!(
                run.spl, run.matcher,
                "round {round} {title}: {}",
                run.spl_query
            );
            assert_eq!(
                run.athena, run.matcher,
                "round {round} {title}: {}",
                run.sql_query
            );
            compared += 1;
            fired += run.matcher.len();
            *per_title.entry(*title).or_insert(0) += run.matcher.len();
        }
    }
    assert_eq!(compared, 78);
    assert!(fired >= 78, "the random cases must fire, got {fired}");
    assert!(
        per_title.values().all(|&n| n > 0),
        "every correlation must fire somewhere: {per_title:?}"
    );
    eprintln!(
        "random correlation exports: {compared} comparisons, {fired} firing groups agree: {per_title:?}"
    );
}
