//! The field-mapping layer between the IR and a backend's text: which
//! column (Athena) or field name (Splunk) holds a record path, and the
//! target's table / base search. Defaults describe AWS CloudTrail as AWS
//! documents its Athena table and as the Splunk Add-on for AWS extracts it;
//! a user's YAML mapping file overrides them (format in `docs/backends.md`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::diag::{codes, Diagnostic, Diagnostics};
use crate::source::Source;
use crate::syntax::{self as yaml, Node, NodeKind};

/// How an Athena column holds a record path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// A string column (or a string field of a struct).
    Scalar,
    /// A struct: only `exists` / `null` can be asked of it as a whole.
    Struct,
    /// A string column holding a JSON object's compact text; paths below it
    /// are read with `json_extract_scalar`.
    JsonText,
    /// `array<struct<...>>`: the listed sub-fields are read per element.
    StructArray(Vec<(String, String)>),
}

/// The Athena side of a mapping.
#[derive(Debug, Clone)]
pub struct AthenaMapping {
    /// Table name (may be qualified: `db.table`).
    pub table: String,
    /// Record path → (SQL expression, kind).
    pub columns: BTreeMap<String, (String, ColumnKind)>,
    /// Optional partition predicate with `{since}` / `{until}` placeholders
    /// (`yyyy/MM/dd` dates), added when `--since`/`--until` are given.
    pub partition_filter: Option<String>,
    /// The column holding the ISO-8601 event time.
    pub time_column: String,
    /// Record paths below JSON-text columns that hold arrays (read as
    /// `ARRAY(JSON)` and tested with `any_match`).
    pub arrays: Vec<String>,
    /// Record paths below JSON-text columns known to hold a scalar (or null)
    /// with no array on the way. A value test on any other path below a
    /// JSON-text column could meet an undeclared array or an object, which
    /// `json_extract_scalar` does not see, so it is refused (S500).
    pub scalars: Vec<String>,
}

/// The Splunk side of a mapping.
#[derive(Debug, Clone)]
pub struct SplunkMapping {
    /// The base search (`sourcetype=aws:cloudtrail`).
    pub base: String,
    /// Record path → Splunk field name, for renames.
    pub fields: BTreeMap<String, String>,
    /// Record paths known to hold arrays (they get `{}`).
    pub arrays: Vec<String>,
    /// Record paths known to hold objects (Splunk has no field for them).
    pub objects: Vec<String>,
    /// Record paths known never to hold arrays. Any other path segment may
    /// be an array, so search terms also try the `{}` spelling there.
    pub fixed: Vec<String>,
    /// Record paths declared to hold a scalar (string, number, boolean),
    /// null, or an array of scalars: never an object, never an array of
    /// arrays (on the way either), and never spelled by a record key that
    /// contains a dot. Only these (and renamed `fields`) are tested: at any
    /// other path Splunk's extraction can differ from the record's value
    /// (an object has no field, `a{}{}` for nested arrays, a key `a.b`
    /// flattens like the path `a.b`), so a test there is refused (S500).
    pub scalars: Vec<String>,
    /// Cron schedule of saved searches.
    pub cron: String,
}

/// A complete mapping for both backends.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Athena.
    pub athena: AthenaMapping,
    /// Splunk.
    pub splunk: SplunkMapping,
}

const SCALARS: &[&str] = &[
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestID",
    "eventID",
    "readOnly",
    "eventType",
    "apiVersion",
    "recipientAccountId",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "eventCategory",
    "sessionCredentialFromConsole",
    "userIdentity.type",
    "userIdentity.principalId",
    "userIdentity.arn",
    "userIdentity.accountId",
    "userIdentity.invokedBy",
    "userIdentity.accessKeyId",
    "userIdentity.userName",
    "userIdentity.onBehalfOf.userId",
    "userIdentity.onBehalfOf.identityStoreArn",
    "userIdentity.sessionContext.attributes.mfaAuthenticated",
    "userIdentity.sessionContext.attributes.creationDate",
    "userIdentity.sessionContext.sessionIssuer.type",
    "userIdentity.sessionContext.sessionIssuer.principalId",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.sessionContext.sessionIssuer.accountId",
    "userIdentity.sessionContext.sessionIssuer.userName",
    "userIdentity.sessionContext.ec2RoleDelivery",
    "userIdentity.sessionContext.webIdFederationData.federatedProvider",
    "addendum.reason",
    "addendum.updatedFields",
    "addendum.originalRequestId",
    "addendum.originalEventId",
    "tlsDetails.tlsVersion",
    "tlsDetails.cipherSuite",
    "tlsDetails.clientProvidedHostHeader",
];

const STRUCTS: &[&str] = &[
    "userIdentity",
    "userIdentity.onBehalfOf",
    "userIdentity.sessionContext",
    "userIdentity.sessionContext.attributes",
    "userIdentity.sessionContext.sessionIssuer",
    "userIdentity.sessionContext.webIdFederationData",
    "addendum",
    "tlsDetails",
];

const JSON_TEXT: &[&str] = &[
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
    "edgeDeviceDetails",
];

/// Arrays CloudTrail writes below its JSON-text columns.
const DEFAULT_ARRAYS: &[&str] = &[
    "requestParameters.instancesSet.items",
    "responseElements.instancesSet.items",
    "requestParameters.ipPermissions.items",
    "requestParameters.ipPermissions.items.ipRanges.items",
    "requestParameters.ipPermissions.items.ipv6Ranges.items",
    "requestParameters.createVolumePermission.add.items",
    "requestParameters.createVolumePermission.remove.items",
    "requestParameters.launchPermission.add.items",
    "requestParameters.launchPermission.remove.items",
];

/// Paths the SigmaHQ CloudTrail rules test that CloudTrail writes as arrays
/// of strings (or strings), declared scalars for Splunk only: Athena's
/// `json_extract_scalar` does not fan out through them.
const SPLUNK_EXTRA_SCALARS: &[&str] = &[
    "managementEvent",
    "resources.ARN",
    "resources.accountId",
    "resources.type",
    "requestParameters.x-amz-acl",
    "requestParameters.layers",
    "requestParameters.containerDefinitions.command",
];

/// Scalars CloudTrail writes below its JSON-text columns (AWS CloudTrail
/// record contents; the request and response fields the rules test).
const DEFAULT_JSON_SCALARS: &[&str] = &[
    "requestParameters.attribute",
    "requestParameters.bucketName",
    "requestParameters.enable",
    "requestParameters.policyArn",
    "requestParameters.policyDocument",
    "requestParameters.policyName",
    "requestParameters.roleArn",
    "requestParameters.userName",
    "requestParameters.instancesSet.items.instanceId",
    "requestParameters.ipPermissions.items.ipRanges.items.cidrIp",
    "requestParameters.ipPermissions.items.ipv6Ranges.items.cidrIpv6",
    "requestParameters.createVolumePermission.add.items.group",
    "requestParameters.createVolumePermission.add.items.userId",
    "requestParameters.createVolumePermission.remove.items.group",
    "requestParameters.createVolumePermission.remove.items.userId",
    "requestParameters.launchPermission.add.items.group",
    "requestParameters.launchPermission.add.items.userId",
    "requestParameters.launchPermission.remove.items.group",
    "requestParameters.launchPermission.remove.items.userId",
    "responseElements.ConsoleLogin",
    "responseElements.publiclyAccessible",
    "responseElements.pendingModifiedValues.masterUserPassword",
    "additionalEventData.MFAUsed",
    "additionalEventData.bytesTransferredOut",
];

impl Default for Mapping {
    fn default() -> Self {
        let mut columns = BTreeMap::new();
        for p in SCALARS {
            columns.insert(p.to_string(), (p.to_lowercase(), ColumnKind::Scalar));
        }
        for p in STRUCTS {
            columns.insert(p.to_string(), (p.to_lowercase(), ColumnKind::Struct));
        }
        for p in JSON_TEXT {
            columns.insert(p.to_string(), (p.to_lowercase(), ColumnKind::JsonText));
        }
        columns.insert(
            "resources".to_string(),
            (
                "resources".to_string(),
                ColumnKind::StructArray(vec![
                    ("ARN".to_string(), "arn".to_string()),
                    ("accountId".to_string(), "accountid".to_string()),
                    ("type".to_string(), "type".to_string()),
                ]),
            ),
        );
        Mapping {
            athena: AthenaMapping {
                table: "cloudtrail_logs".to_string(),
                columns,
                partition_filter: None,
                time_column: "eventtime".to_string(),
                arrays: DEFAULT_ARRAYS.iter().map(|s| s.to_string()).collect(),
                scalars: DEFAULT_JSON_SCALARS.iter().map(|s| s.to_string()).collect(),
            },
            splunk: SplunkMapping {
                base: "sourcetype=\"aws:cloudtrail\"".to_string(),
                fields: BTreeMap::new(),
                arrays: std::iter::once("resources")
                    .chain(DEFAULT_ARRAYS.iter().copied())
                    .map(str::to_string)
                    .collect(),
                objects: ["userIdentity", "userIdentity.sessionContext"]
                    .iter()
                    .chain(JSON_TEXT)
                    .chain(STRUCTS)
                    .map(|s| s.to_string())
                    .collect(),
                cron: "*/15 * * * *".to_string(),
                fixed: SCALARS
                    .iter()
                    .chain(&["managementEvent", "insightDetails", "eventContext"])
                    .chain(STRUCTS)
                    .chain(JSON_TEXT)
                    .chain(
                        DEFAULT_JSON_SCALARS
                            .iter()
                            .filter(|p| !p.contains(".items.")),
                    )
                    .chain(&["responseElements.pendingModifiedValues"])
                    .map(|s| s.to_string())
                    .collect(),
                scalars: SCALARS
                    .iter()
                    .chain(DEFAULT_JSON_SCALARS)
                    .chain(SPLUNK_EXTRA_SCALARS)
                    .map(|s| s.to_string())
                    .collect(),
            },
        }
    }
}

fn mapping_error(source: &Arc<Source>, node: &Node, msg: String) -> Diagnostic {
    Diagnostic::new(codes::MAPPING_FILE, msg).at(source, node.span)
}

fn str_map(
    source: &Arc<Source>,
    node: &Node,
    diags: &mut Diagnostics,
) -> Vec<(String, String, Node)> {
    let mut out = Vec::new();
    match &node.kind {
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                match (k.scalar_text(), v.as_str()) {
                    (Some(k), Some(v2)) => out.push((k, v2.to_string(), v.clone())),
                    _ => diags.push(mapping_error(
                        source,
                        v,
                        "expected `path: name` with string values".to_string(),
                    )),
                }
            }
        }
        _ => diags.push(mapping_error(
            source,
            node,
            format!("expected a mapping, found {}", node.kind_name()),
        )),
    }
    out
}

fn str_list(source: &Arc<Source>, node: &Node, diags: &mut Diagnostics) -> Vec<String> {
    match &node.kind {
        NodeKind::Seq(items) => items
            .iter()
            .filter_map(|i| {
                let s = i.as_str().map(str::to_string);
                if s.is_none() {
                    diags.push(mapping_error(source, i, "expected a string".to_string()));
                }
                s
            })
            .collect(),
        _ => {
            diags.push(mapping_error(
                source,
                node,
                format!("expected a list, found {}", node.kind_name()),
            ));
            Vec::new()
        }
    }
}

fn check_keys(source: &Arc<Source>, node: &Node, allowed: &[&str], diags: &mut Diagnostics) {
    if let NodeKind::Map(entries) = &node.kind {
        for (k, _) in entries {
            let key = k.scalar_text().unwrap_or_default();
            if !allowed.contains(&key.as_str()) {
                diags.push(mapping_error(
                    source,
                    k,
                    format!(
                        "unknown mapping key `{key}` (expected one of: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    } else {
        diags.push(mapping_error(
            source,
            node,
            format!("expected a mapping, found {}", node.kind_name()),
        ));
    }
}

fn is_sql_ident_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| {
            let mut cs = seg.chars();
            matches!(cs.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
                && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

impl Mapping {
    /// Reads a mapping file, starting from the CloudTrail defaults.
    pub fn from_file(path: &Path, diags: &mut Diagnostics) -> Mapping {
        match std::fs::read_to_string(path) {
            Ok(text) => Mapping::from_text(path, &text, diags),
            Err(e) => {
                diags.push(Diagnostic::new(
                    codes::MAPPING_FILE,
                    format!("cannot read mapping file {}: {e}", path.display()),
                ));
                Mapping::default()
            }
        }
    }

    /// Parses mapping text (see `docs/backends.md`), over the defaults.
    pub fn from_text(path: &Path, text: &str, diags: &mut Diagnostics) -> Mapping {
        let mut m = Mapping::default();
        let source = Arc::new(Source::new(path, text));
        let docs = yaml::parse(&source, diags);
        let Some(doc) = docs.first() else {
            return m;
        };
        let root = &doc.root;
        check_keys(&source, root, &["athena", "splunk"], diags);
        if let Some(a) = root.get("athena") {
            check_keys(
                &source,
                a,
                &[
                    "table",
                    "fields",
                    "json_columns",
                    "time_column",
                    "partition_filter",
                    "arrays",
                    "scalars",
                ],
                diags,
            );
            if let Some(t) = a.get("table").and_then(Node::as_str) {
                m.athena.table = t.to_string();
            }
            if let Some(t) = a.get("time_column").and_then(Node::as_str) {
                m.athena.time_column = t.to_string();
            }
            if let Some(f) = a.get("arrays") {
                m.athena.arrays.extend(str_list(&source, f, diags));
            }
            if let Some(f) = a.get("scalars") {
                m.athena.scalars.extend(str_list(&source, f, diags));
            }
            if let Some(t) = a.get("partition_filter").and_then(Node::as_str) {
                m.athena.partition_filter = Some(t.to_string());
            }
            for (key, kind) in [
                ("fields", ColumnKind::Scalar),
                ("json_columns", ColumnKind::JsonText),
            ] {
                if let Some(f) = a.get(key) {
                    for (p, col, node) in str_map(&source, f, diags) {
                        let col: String = col;
                        if !is_sql_ident_path(&col) {
                            diags.push(mapping_error(
                                &source,
                                &node,
                                format!("`{col}` is not a lower-case column path"),
                            ));
                            continue;
                        }
                        m.athena.columns.insert(p, (col, kind.clone()));
                    }
                }
            }
        }
        if let Some(s) = root.get("splunk") {
            check_keys(
                &source,
                s,
                &[
                    "base", "fields", "arrays", "objects", "fixed", "scalars", "cron",
                ],
                diags,
            );
            if let Some(t) = s.get("base").and_then(Node::as_str) {
                m.splunk.base = t.to_string();
            }
            if let Some(t) = s.get("cron").and_then(Node::as_str) {
                m.splunk.cron = t.to_string();
            }
            if let Some(f) = s.get("fields") {
                for (p, name, _) in str_map(&source, f, diags) {
                    m.splunk.fields.insert(p, name);
                }
            }
            if let Some(f) = s.get("arrays") {
                m.splunk.arrays.extend(str_list(&source, f, diags));
            }
            if let Some(f) = s.get("objects") {
                m.splunk.objects.extend(str_list(&source, f, diags));
            }
            if let Some(f) = s.get("fixed") {
                m.splunk.fixed.extend(str_list(&source, f, diags));
            }
            if let Some(f) = s.get("scalars") {
                m.splunk.scalars.extend(str_list(&source, f, diags));
            }
        }
        m
    }
}
