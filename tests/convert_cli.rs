//! `sigil convert` end to end: formats, the JSON contract, diagnostics and
//! `--fail-on-unsupported`.

use std::process::Command;

fn sigil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sigil");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_rule(dir: &std::path::Path, name: &str, detection: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("title: {name}\nid: 5f0c3a52-8a57-4c1e-9f5e-0f4a4c7b9d{:02}\nlevel: high\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}", name.len()),
    )
    .expect("write rule");
    path.display().to_string()
}

#[test]
fn json_contract_and_unsupported_rules() {
    let dir = std::env::temp_dir().join(format!("sigil-convert-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = write_rule(
        &dir,
        "good.yml",
        "  sel: {eventName: StopLogging}\n  condition: sel\n",
    );
    let bad = write_rule(
        &dir,
        "bad.yml",
        "  sel: {eventname: StopLogging}\n  condition: sel\n",
    );
    let (code, out, err) = sigil(&[
        "convert", "--target", "athena", "--format", "json", &good, &bad,
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let ok = lines
        .iter()
        .find(|l| l["rule"]["title"] == "good.yml")
        .expect("good");
    assert_eq!(ok["target"], "athena");
    assert!(ok["query"]
        .as_str()
        .expect("query")
        .contains("lower(eventname) = 'stoplogging'"));
    assert_eq!(ok["rule"]["level"], "high");
    let no = lines
        .iter()
        .find(|l| l["rule"]["title"] == "bad.yml")
        .expect("bad");
    assert_eq!(no["error"]["code"], "S501");
    assert!(no.get("query").is_none());
    assert!(err.contains("S501"), "{err}");
    assert!(
        err.contains("athena: 1 rules converted, 1 unsupported"),
        "{err}"
    );
    let (code, _, _) = sigil(&[
        "convert",
        "--target",
        "athena",
        "--fail-on-unsupported",
        &good,
        &bad,
    ]);
    assert_eq!(code, 1);
    let (code, out, _) = sigil(&[
        "convert",
        "--target",
        "splunk",
        "--format",
        "savedsearches",
        &good,
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("[sigil - good.yml]\nsearch = sourcetype=\"aws:cloudtrail\" eventName=\"stoplogging\" | where (isnotnull('eventName') AND (\"_\".lower('eventName'))==\"_stoplogging\")\n"), "{out}");
    assert!(out.contains("alert.severity = 5\n"));
    let (code, out, _) = sigil(&["convert", "--target", "athena", "--format", "view", &good]);
    assert_eq!(code, 0);
    assert!(
        out.contains("CREATE OR REPLACE VIEW sigil_5f0c3a52_"),
        "{out}"
    );
    let (code, _, _) = sigil(&["convert", "--target", "splunk", "--format", "view", &good]);
    assert_eq!(code, 2);
    let (code, out, err) = sigil(&[
        "convert",
        "--target",
        "splunk",
        "--since",
        "2024-01-15T00:00:00Z",
        "--until",
        "2024-01-16",
        &good,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("sourcetype=\"aws:cloudtrail\" earliest=1705276800 latest=1705363200 eventName=\"stoplogging\""),
        "{out}"
    );
    let (code, _, err) = sigil(&[
        "convert",
        "--target",
        "splunk",
        "--since",
        "yesterday",
        &good,
    ]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn time_range_restricts_the_events_correlations_count() {
    let rules = [
        "rules/aws/cloudtrail/cloudtrail_api_access_denied_burst.yml",
        "rules/aws/cloudtrail/cloudtrail_api_call_access_denied.yml",
    ];
    let converted = |target: &str, since: Option<&str>| {
        let mut args = vec!["convert", "--target", target, "--format", "json"];
        if let Some(s) = since {
            args.extend(["--since", s]);
        }
        args.extend(rules);
        let (code, out, err) = sigil(&args);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| {
                v["rule"]["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("Burst of Denied")
            })
            .and_then(|v| v["query"].as_str().map(str::to_string))
            .expect("the correlation's query")
    };
    let athena = converted("athena", Some("2024-01-15T00:00:00Z"));
    assert!(
        athena.contains(
            "from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp('2024-01-15T00:00:00Z')"
        ),
        "{athena}"
    );
    assert!(!converted("athena", None).contains("2024-01-15"));
    let splunk = converted("splunk", Some("2024-01-15T00:00:00Z"));
    assert!(splunk.contains("earliest=1705276800"), "{splunk}");
    assert!(!converted("splunk", None).contains("earliest="));
}
