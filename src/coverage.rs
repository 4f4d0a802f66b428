//! `sigil coverage`: the catalog's MITRE ATT&CK coverage (tactic → technique
//! → rules) and the DOMAIN.md actions that no rule detects.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::Diagnostics;
use sigil_compiler::syntax::{self, Node, NodeKind};

use crate::check::{config, EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE};
use sigil::render;

/// The API actions responders ask the catalog to cover (DOMAIN.md, "The
/// detection catalog responders ask for"): (eventName, group).
pub const DOMAIN_ACTIONS: &[(&str, &str)] = &[
    // Higher-fidelity actions.
    ("CreateTrustAnchor", "higher-fidelity"),
    ("CreateUser", "higher-fidelity"),
    ("CreateLoginProfile", "higher-fidelity"),
    ("UpdateLoginProfile", "higher-fidelity"),
    ("CreateAccessKey", "higher-fidelity"),
    ("AttachUserPolicy", "higher-fidelity"),
    ("DeleteTrail", "higher-fidelity"),
    ("PutEventSelectors", "higher-fidelity"),
    ("StopLogging", "higher-fidelity"),
    ("LeaveOrganization", "higher-fidelity"),
    ("DeleteFlowLogs", "higher-fidelity"),
    ("DeleteVpc", "higher-fidelity"),
    ("GetPasswordData", "higher-fidelity"),
    ("GetSecretValue", "higher-fidelity"),
    ("ModifyImageAttribute", "higher-fidelity"),
    // Common but significant.
    ("ConsoleLogin", "common-but-significant"),
    ("GetFederationToken", "common-but-significant"),
    ("StartSession", "common-but-significant"),
    ("GetAuthorizationToken", "common-but-significant"),
    ("CreateKeyPair", "common-but-significant"),
    ("CreateRole", "common-but-significant"),
    ("PutUserPolicy", "common-but-significant"),
    ("PutGroupPolicy", "common-but-significant"),
    ("CreateGroup", "common-but-significant"),
    ("AttachRolePolicy", "common-but-significant"),
    ("PutRolePolicy", "common-but-significant"),
    ("CreatePolicyVersion", "common-but-significant"),
    ("UpdateAssumeRolePolicy", "common-but-significant"),
    ("UpdateFunctionConfiguration", "common-but-significant"),
    ("ListSecrets", "common-but-significant"),
    ("ModifySnapshotAttribute", "common-but-significant"),
    ("PutBucketPolicy", "common-but-significant"),
    ("PutBucketAcl", "common-but-significant"),
    // Behaviours.
    ("DeleteDetector", "evasion"),
    ("GetCallerIdentity", "recon"),
    ("ListBuckets", "recon"),
    ("DescribeInstances", "recon"),
    ("AssumeRole", "lateral movement"),
    ("SendCommand", "lateral movement"),
    ("SendSSHPublicKey", "lateral movement"),
    ("AuthorizeSecurityGroupIngress", "lateral movement"),
    ("GetObject", "exfiltration"),
    ("TerminateInstances", "destruction"),
    ("AWSCompromisedKeyQuarantineV2", "containment"),
    ("AWSRevokeOlderSessions", "containment"),
];

/// ATT&CK tactic tags (`attack.<tactic>`) in kill-chain order.
const TACTICS: &[&str] = &[
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

fn scalars(node: &Node, out: &mut BTreeSet<String>) {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().for_each(|i| scalars(i, out)),
        NodeKind::Map(entries) => entries.iter().for_each(|(_, v)| scalars(v, out)),
        _ => {
            if let Some(t) = node.scalar_text() {
                out.insert(t.to_ascii_lowercase());
            }
        }
    }
}

/// The coverage of a catalog.
#[derive(Debug, Default)]
pub struct Coverage {
    /// tactic → technique (or `-`) → rule titles.
    pub attack: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// DOMAIN.md action → rule titles whose detection names it.
    pub actions: Vec<(&'static str, &'static str, Vec<String>)>,
    /// Rules with no ATT&CK tag.
    pub untagged: Vec<String>,
}

/// Computes coverage over the rules under `paths`.
pub fn compute(catalog: &Catalog) -> Coverage {
    let mut cov = Coverage::default();
    let mut values_by_rule: Vec<(String, BTreeSet<String>)> = Vec::new();
    for doc in catalog.documents() {
        let meta = doc.meta();
        let title = meta.title.clone();
        let tags: Vec<String> = meta.tags.iter().map(|t| t.to_string()).collect();
        let tactics: Vec<&str> = tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| TACTICS.contains(t))
            .collect();
        let techniques: Vec<String> = tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| t.starts_with('t') && t[1..].starts_with(|c: char| c.is_ascii_digit()))
            .map(|t| t.to_ascii_uppercase())
            .collect();
        if tactics.is_empty() && techniques.is_empty() {
            cov.untagged.push(title.clone());
        }
        let tactic_keys: Vec<String> = if tactics.is_empty() {
            vec!["(no tactic)".into()]
        } else {
            tactics.iter().map(|t| t.to_string()).collect()
        };
        for tactic in &tactic_keys {
            let entry = cov.attack.entry(tactic.clone()).or_default();
            if techniques.is_empty() {
                entry.entry("-".into()).or_default().insert(title.clone());
            }
            for tech in &techniques {
                entry.entry(tech.clone()).or_default().insert(title.clone());
            }
        }
        // The values the detection tests (event names, policy ARNs, ...).
        let mut values = BTreeSet::new();
        let mut diags = Diagnostics::new();
        let docs = syntax::parse(&meta.source, &mut diags);
        if let Some(d) = docs.get(meta.document) {
            if let Some(det) = d.root.get("detection") {
                scalars(det, &mut values);
            }
        }
        values_by_rule.push((title, values));
    }
    for (action, group) in DOMAIN_ACTIONS {
        let needle = action.to_ascii_lowercase();
        let rules: Vec<String> = values_by_rule
            .iter()
            .filter(|(_, vals)| {
                vals.iter().any(|v| {
                    // A value naming the action, or a long prefix of it
                    // (`AWSCompromisedKeyQuarantine` for ...V2).
                    v.contains(&needle)
                        || v.split(|c: char| !c.is_ascii_alphanumeric())
                            .any(|tok| tok.len() >= 12 && needle.starts_with(tok))
                })
            })
            .map(|(t, _)| t.clone())
            .collect();
        cov.actions.push((action, group, rules));
    }
    cov
}

/// Output formats of `coverage`.
#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq, Debug)]
pub enum CoverageFormat {
    /// Indented text.
    Human,
    /// One JSON object.
    Json,
}

pub fn run(paths: Vec<PathBuf>, format: Option<CoverageFormat>, fail_on_gaps: bool) -> u8 {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        CoverageFormat::Human
    } else {
        CoverageFormat::Json
    });
    let cfg = match config(None) {
        Ok(c) => c,
        Err(diags) => {
            let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
            return EXIT_USAGE;
        }
    };
    let paths = if paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        paths
    };
    let catalog = Catalog::load(&paths, &cfg);
    if catalog
        .diagnostics()
        .iter()
        .any(|d| d.code() == sigil_compiler::diag::codes::IO_ERROR)
    {
        let _ = render::human(&mut std::io::stderr().lock(), catalog.diagnostics().iter());
        return EXIT_USAGE;
    }
    let cov = compute(&catalog);
    let gaps: Vec<_> = cov
        .actions
        .iter()
        .filter(|(_, _, r)| r.is_empty())
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = match format {
        CoverageFormat::Human => human(&mut out, &cov),
        CoverageFormat::Json => {
            let attack: serde_json::Map<String, serde_json::Value> = cov
                .attack
                .iter()
                .map(|(tactic, techs)| (tactic.clone(), serde_json::json!(techs)))
                .collect();
            let actions: Vec<_> = cov
                .actions
                .iter()
                .map(|(a, g, r)| serde_json::json!({"action": a, "group": g, "rules": r}))
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({"attack": attack, "actions": actions,
                    "uncovered": gaps.iter().map(|(a, _, _)| a).collect::<Vec<_>>(),
                    "untagged": cov.untagged})
            )
        }
    };
    let _ = out.flush();
    eprintln!(
        "{} of {} DOMAIN.md actions covered; {} tactics, {} techniques",
        cov.actions.len() - gaps.len(),
        cov.actions.len(),
        cov.attack.len(),
        cov.attack
            .values()
            .flat_map(|t| t.keys())
            .filter(|k| k.as_str() != "-")
            .collect::<BTreeSet<_>>()
            .len()
    );
    if fail_on_gaps && !gaps.is_empty() {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

fn human(out: &mut impl Write, cov: &Coverage) -> std::io::Result<()> {
    writeln!(out, "ATT&CK coverage (tactic → technique → rules)")?;
    let order = |t: &str| TACTICS.iter().position(|x| *x == t).unwrap_or(usize::MAX);
    let mut tactics: Vec<_> = cov.attack.iter().collect();
    tactics.sort_by_key(|(t, _)| (order(t), t.to_string()));
    for (tactic, techs) in tactics {
        writeln!(out, "  {tactic}")?;
        for (tech, rules) in techs {
            writeln!(out, "    {tech}")?;
            for r in rules {
                writeln!(out, "      - {r}")?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "DOMAIN.md actions")?;
    for (action, group, rules) in &cov.actions {
        if rules.is_empty() {
            writeln!(out, "  MISSING  {action:<30} ({group})")?;
        } else {
            writeln!(
                out,
                "  ok       {action:<30} ({group}) {} rule(s)",
                rules.len()
            )?;
        }
    }
    if !cov.untagged.is_empty() {
        writeln!(out)?;
        writeln!(out, "Rules without ATT&CK tags")?;
        for t in &cov.untagged {
            writeln!(out, "  - {t}")?;
        }
    }
    Ok(())
}
