//! Query backends: IR → Splunk SPL and Athena SQL text.
//!
//! A backend sees only the IR ([`crate::ir`]) and a field [`mapping`]. It
//! walks the expression through the named hooks of [`Backend`]; a construct
//! it cannot express exactly is a [`Unsupported`] error (diagnostic code,
//! message), never a wider or narrower query. The semantics every backend
//! honours are listed in `docs/semantics.md`; how each realises them is in
//! `docs/backends.md`.

pub mod athena;
pub mod mapping;
pub mod spl;

use crate::diag::{codes, Code};
use crate::ir::{Expr, Pred, RuleInfo, RuleIr};

pub use mapping::Mapping;

/// Why a rule has no query on a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    /// `S500`, `S501`, ... (the id of a [`Code`]).
    pub code: &'static str,
    /// What cannot be expressed, and why.
    pub message: String,
}

impl Unsupported {
    /// An S500 error.
    pub fn construct(message: impl Into<String>) -> Self {
        Unsupported {
            code: codes::UNSUPPORTED.id,
            message: message.into(),
        }
    }
    /// The diagnostic code.
    pub fn diag_code(&self) -> Code {
        codes::by_id(self.code).unwrap_or(codes::UNSUPPORTED)
    }
    /// An S501 error.
    pub fn field(message: impl Into<String>) -> Self {
        Unsupported {
            code: codes::UNMAPPED_FIELD.id,
            message: message.into(),
        }
    }
}

/// Result of a hook.
pub type Out = Result<String, Unsupported>;

/// Options shared by the backends.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Inclusive lower bound on the event time (ISO-8601 text).
    pub since: Option<String>,
    /// Exclusive upper bound on the event time (ISO-8601 text).
    pub until: Option<String>,
}

/// A query backend. `convert` walks the IR through the hooks; each hook
/// returns target text for one node, already parenthesised so that callers
/// can combine it without knowing the target's precedence rules.
pub trait Backend {
    /// `splunk`, `athena`.
    fn name(&self) -> &'static str;
    /// A constant.
    fn const_bool(&self, value: bool) -> Out;
    /// All of `parts` hold. Every group is parenthesised: SPL's search gives
    /// OR precedence over AND, so precedence is never left to the target.
    fn and(&self, parts: Vec<String>) -> Out {
        Ok(format!("({})", parts.join(" AND ")))
    }
    /// Some of `parts` holds.
    fn or(&self, parts: Vec<String>) -> Out {
        Ok(format!("({})", parts.join(" OR ")))
    }
    /// `inner` does not hold (two-valued: true where `inner`'s fields are
    /// missing, since every hook's result is already TRUE/FALSE, never NULL).
    fn not(&self, inner: String) -> Out {
        Ok(format!("(NOT {inner})"))
    }
    /// One predicate.
    fn pred(&self, pred: &Pred) -> Out;
    /// The condition text → the whole query for a rule.
    fn finish(&self, rule: &RuleIr, condition: String) -> Out;

    /// The expression walk (overridable).
    fn expr(&self, e: &Expr) -> Out {
        match e {
            Expr::Const(b) => self.const_bool(*b),
            Expr::And(items) => {
                let parts = items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Result<_, _>>()?;
                self.and(parts)
            }
            Expr::Or(items) => {
                let parts = items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Result<_, _>>()?;
                self.or(parts)
            }
            Expr::Not(inner) => {
                let inner = self.expr(inner)?;
                self.not(inner)
            }
            Expr::Pred(p) => self.pred(p),
        }
    }

    /// The query for one rule.
    fn convert(&self, rule: &RuleIr) -> Out {
        let cond = self.expr(&rule.expr)?;
        self.finish(rule, cond)
    }
}

/// The `rule` object of machine-readable output (DESIGN.md contract).
pub fn rule_json(info: &RuleInfo) -> serde_json::Value {
    serde_json::json!({
        "id": info.id,
        "title": info.title,
        "level": info.level,
        "tags": info.tags,
        "author": info.author,
    })
}

/// One `convert --format json` line.
pub fn json_line(info: &RuleInfo, target: &str, result: &Out) -> serde_json::Value {
    match result {
        Ok(q) => serde_json::json!({"rule": rule_json(info), "target": target, "query": q}),
        Err(e) => serde_json::json!({
            "rule": rule_json(info),
            "target": target,
            "error": {"code": e.code, "message": e.message},
        }),
    }
}

/// Escapes a literal for a regular expression (PCRE / RE2 / Java common subset).
pub(crate) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{{{:02x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Numeric text as the matcher reads it (Rust's `f64` syntax without
/// `inf`/`NaN`: optional sign, `5`, `5.`, `.5`, exponent), unanchored; each
/// backend anchors it to the very end of the value in its regex dialect.
macro_rules! number_syntax {
    () => {
        "[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?"
    };
}
pub(crate) use number_syntax;

/// The `rule` tests in a file name friendly form.
pub fn rule_slug(info: &RuleInfo) -> String {
    let base = info
        .name
        .clone()
        .or_else(|| info.id.clone())
        .unwrap_or_else(|| info.title.clone());
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A query target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Splunk SPL.
    Splunk,
    /// Athena SQL.
    Athena,
}

impl Target {
    /// `splunk` / `athena`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Splunk => "splunk",
            Target::Athena => "athena",
        }
    }
}

/// Converts one correlation rule of `program`.
/// Converts one correlation; `options` (a time range) restrict the events
/// its rules feed it, as a scan of that range would.
pub fn convert_correlation(
    c: &crate::ir::CorrelationIr,
    program: &crate::ir::Program,
    target: Target,
    mapping: &Mapping,
    options: &Options,
) -> Out {
    match target {
        Target::Splunk => spl::Splunk {
            mapping: &mapping.splunk,
        }
        .correlation(c, &program.rules, options),
        Target::Athena => athena::Athena {
            mapping: &mapping.athena,
            options: options.clone(),
            format: athena::AthenaFormat::Plain,
        }
        .correlation(c, &program.rules),
    }
}

/// Converts one rule; `view` asks Athena for `CREATE OR REPLACE VIEW`.
pub fn convert_rule(
    rule: &RuleIr,
    target: Target,
    mapping: &Mapping,
    options: &Options,
    view: bool,
) -> Out {
    match target {
        Target::Splunk => {
            let q = spl::Splunk {
                mapping: &mapping.splunk,
            }
            .convert(rule)?;
            spl::with_time_range(q, &mapping.splunk.base, options)
        }
        Target::Athena => athena::Athena {
            mapping: &mapping.athena,
            options: options.clone(),
            format: if view {
                athena::AthenaFormat::View
            } else {
                athena::AthenaFormat::Plain
            },
        }
        .convert(rule),
    }
}

/// `addr/prefix` with the host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`).
pub(crate) fn masked_network(addr: std::net::IpAddr, prefix: u8) -> String {
    use std::net::IpAddr;
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            format!("{}/{prefix}", std::net::Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            format!("{}/{prefix}", std::net::Ipv6Addr::from(bits & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::Config;
    use std::path::Path;

    fn rule(detection: &str) -> RuleIr {
        let text = format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
        );
        let catalog = Catalog::from_texts(&[("t.yml", &text)], &Config::default());
        let (program, _) = crate::ir::from_catalog(&catalog);
        program.rules.into_iter().next().unwrap()
    }

    fn both(detection: &str) -> (Out, Out) {
        let r = rule(detection);
        let m = Mapping::default();
        let o = Options::default();
        (
            convert_rule(&r, Target::Splunk, &m, &o, false),
            convert_rule(&r, Target::Athena, &m, &o, false),
        )
    }

    #[test]
    fn wrong_case_field_is_unmapped_on_athena() {
        let (_, a) = both("  sel: {eventname: StopLogging}\n  condition: sel\n");
        assert_eq!(a.unwrap_err().code, "S501");
    }

    #[test]
    fn question_mark_never_widens() {
        let (s, a) = both("  sel: {userAgent: 'a?c'}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(!s.contains("a*c"), "{s}");
        assert!(s.contains("^[aA].[cC](?!.)"), "{s}");
        let a = a.unwrap();
        assert!(
            a.contains(r"regexp_like(useragent, '(?s)^[aA].[cC]\z')"),
            "{a}"
        );
        let (_, a) = both("  sel: {userAgent: 'a*c'}\n  condition: sel\n");
        assert!(a.unwrap().contains("LIKE 'a%c' ESCAPE"));
    }

    #[test]
    fn question_mark_is_one_character_of_the_original_text() {
        let (s, _) = both("  sel: {userAgent: '?stanbul'}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(!s.contains("lower("), "{s}");
        assert!(s.contains("^.[sS][tT]"), "{s}");
        let (s, _) = both("  sel: {userAgent: 'İ?k'}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(s.contains("(?:[iI]\u{307}|\u{130}).[kK\u{212a}]"), "{s}");
    }

    #[test]
    fn integers_beyond_2_53_compare_by_digits() {
        let (s, _) =
            both("  sel: {additionalEventData.bytesTransferredOut|gt: 9007199254740992}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(s.contains("900719925474099[3-9]"), "{s}");
        let (s, _) =
            both("  sel: {additionalEventData.bytesTransferredOut|gt: 7}\n  condition: sel\n");
        assert!(!s.unwrap().contains("[0-9]{1,38}"));
    }

    #[test]
    fn cidr_covers_ipv4_mapped_addresses() {
        let (s, _) = both("  sel: {sourceIPAddress|cidr: 10.1.2.3/8}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(s.contains(r#"cidrmatch("10.0.0.0/8", 'sourceIPAddress') OR cidrmatch("::ffff:10.0.0.0/104", 'sourceIPAddress')"#), "{s}");
    }

    #[test]
    fn undeclared_paths_are_refused_on_splunk() {
        let (s, _) =
            both("  sel: {requestParameters.bucketPolicy|exists: true}\n  condition: sel\n");
        let e = s.unwrap_err();
        assert_eq!(e.code, "S500");
        assert!(e.message.contains("splunk.scalars"), "{}", e.message);
        let mut d = crate::diag::Diagnostics::new();
        let m = Mapping::from_text(
            Path::new("m.yml"),
            "splunk:\n  scalars: [requestParameters.bucketPolicy]\n",
            &mut d,
        );
        assert!(!d.has_errors());
        let r = rule("  sel: {requestParameters.bucketPolicy|exists: true}\n  condition: sel\n");
        let q = convert_rule(&r, Target::Splunk, &m, &Options::default(), false).unwrap();
        assert!(q.contains("requestParameters.bucketPolicy=*"), "{q}");
        // Five segments that may be arrays: 32 spellings, refused rather
        // than searched under one.
        let mut d = crate::diag::Diagnostics::new();
        let m = Mapping::from_text(
            Path::new("m.yml"),
            "splunk:\n  scalars: [requestParameters.a.b.c.d.e]\n",
            &mut d,
        );
        let r = rule("  sel: {requestParameters.a.b.c.d.e: x}\n  condition: sel\n");
        let e = convert_rule(&r, Target::Splunk, &m, &Options::default(), false).unwrap_err();
        assert!(e.message.contains("32 spellings"), "{}", e.message);
    }

    #[test]
    fn literal_star_stays_literal() {
        let (s, a) = both("  sel: {userAgent: 'a\\*b'}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(s.contains("| where"), "{s}");
        assert!(s.contains(r#"=="_a*b""#), "{s}");
        assert!(a.unwrap().contains("= 'a*b'"));
    }

    #[test]
    fn not_keeps_missing_fields() {
        let (s, a) = both("  sel: {errorCode: Throttled}\n  condition: not sel\n");
        assert!(s.unwrap().contains("(NOT errorCode=\"throttled\")"));
        assert!(a.unwrap().contains("(NOT COALESCE("));
        // `i`/`s`: the search term would also take `ı`/`ſ`, so under `NOT`
        // only the exact `where` form (no prefilter).
        let (s, _) = both("  sel: {errorCode: AccessDenied}\n  condition: not sel\n");
        let s = s.unwrap();
        assert!(
            s.ends_with(
                r#"" | where (NOT (isnotnull('errorCode') AND ("_".lower('errorCode'))=="_accessdenied"))"#
            ),
            "{s}"
        );
    }

    #[test]
    fn wider_search_terms_stay_as_prefilters() {
        let (s, _) = both(
            "  a: {eventName: DeleteTrail}\n  b: {eventName: StopLogging}\n  condition: a or b\n",
        );
        let s = s.unwrap();
        assert!(
            s.contains(r#" (eventName="deletetrail" OR eventName="stoplogging") | where ("#),
            "{s}"
        );
        let (s, _) =
            both("  sel: {eventName: DeleteTrail, awsRegion: eu-west-1}\n  condition: sel\n");
        let s = s.unwrap();
        assert!(
            s.contains(r#" (eventName="deletetrail" AND awsRegion="eu-west-1") | where (isnotnull('eventName')"#),
            "{s}"
        );
    }

    #[test]
    fn percent_and_underscore_are_escaped() {
        let (_, a) = both("  sel: {userAgent|contains: '1%_x'}\n  condition: sel\n");
        assert!(a.unwrap().contains(r"LIKE '%1\%\_x%' ESCAPE '\'"));
    }

    #[test]
    fn mapping_file_overrides_and_rejects_unknown_keys() {
        let mut d = crate::diag::Diagnostics::new();
        let m = Mapping::from_text(
            Path::new("m.yml"),
            "athena:\n  table: db.ct\n  fields:\n    eventname: eventname\nsplunk:\n  base: index=aws\n",
            &mut d,
        );
        assert!(!d.has_errors());
        assert_eq!(m.athena.table, "db.ct");
        assert_eq!(m.splunk.base, "index=aws");
        let r = rule("  sel: {eventname: x}\n  condition: sel\n");
        let q = convert_rule(&r, Target::Athena, &m, &Options::default(), false).unwrap();
        assert!(q.contains("FROM db.ct"), "{q}");
        let mut d = crate::diag::Diagnostics::new();
        Mapping::from_text(Path::new("m.yml"), "athena:\n  tabel: x\n", &mut d);
        assert!(d.iter().any(|x| x.code().id == "S502"));
        let mut d = crate::diag::Diagnostics::new();
        Mapping::from_text(
            Path::new("m.yml"),
            "athena:\n  fields: {a: 'Bad Col'}\n",
            &mut d,
        );
        assert!(d.iter().any(|x| x.code().id == "S502"));
    }

    #[test]
    fn time_range_and_view() {
        let r = rule("  sel: {eventName: x}\n  condition: sel\n");
        let mut m = Mapping::default();
        m.athena.partition_filter = Some("\"timestamp\" BETWEEN '{since}' AND '{until}'".into());
        let o = Options {
            since: Some("2024-01-15T00:00:00Z".into()),
            until: Some("2024-01-16T00:00:00Z".into()),
        };
        let q = convert_rule(&r, Target::Athena, &m, &o, true).unwrap();
        assert!(q.starts_with("CREATE OR REPLACE VIEW sigil_"), "{q}");
        assert!(q.contains(
            "from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp('2024-01-15T00:00:00Z')"
        ));
        assert!(q.contains("BETWEEN '2024/01/15' AND '2024/01/16'"), "{q}");
    }

    #[test]
    fn splunk_time_range() {
        let r = rule("  sel: {eventName: x}\n  condition: sel\n");
        let o = Options {
            since: Some("2024-01-15T00:00:00Z".into()),
            until: Some("2024-01-16T01:00:00.250+01:00".into()),
        };
        let q = convert_rule(&r, Target::Splunk, &Mapping::default(), &o, false).unwrap();
        assert_eq!(
            q,
            r#"sourcetype="aws:cloudtrail" earliest=1705276800 latest=1705363200.250 eventName="x""#
        );
        let o = Options {
            since: Some("2024-01-15".into()),
            until: None,
        };
        let q = convert_rule(&r, Target::Splunk, &Mapping::default(), &o, false).unwrap();
        assert!(q.contains(" earliest=1705276800 "), "{q}");
        let o = Options {
            since: Some("yesterday".into()),
            until: None,
        };
        assert!(convert_rule(&r, Target::Splunk, &Mapping::default(), &o, false).is_err());
    }

    #[test]
    fn savedsearch_stanza() {
        let r = rule("  sel: {eventName: x}\n  condition: sel\n");
        let mut info = r.info.clone();
        info.level = Some("high".into());
        info.description = Some("two\nlines".into());
        let s = spl::saved_search(&info, "sourcetype=x", "*/5 * * * *", 0);
        assert!(s.starts_with("[sigil - t]\nsearch = sourcetype=x\n"), "{s}");
        assert!(s.contains("description = two \\\nlines\n"), "{s}");
        assert!(s.contains("alert.severity = 5\n"));
        assert!(s.contains("cron_schedule = */5 * * * *\n"));
        assert!(s.contains("dispatch.earliest_time = -15m\n"), "{s}");
        // A correlation looks back one window more, so a burst that ends in
        // the last 15 minutes is seen whole.
        let s = spl::saved_search(&info, "sourcetype=x", "*/5 * * * *", 3600);
        assert!(s.contains("dispatch.earliest_time = -4500s\n"), "{s}");
    }
}
