//! The one table of diagnostic codes. Values are explicit and never reused; a
//! retired code keeps its row with `retired: true`.
//!
//! `docs/diagnostics.md` is generated from this table (see the `diagnostics_doc`
//! test), so every entry carries its documentation in fixed parts.

use super::Severity;

/// A stable diagnostic code and its documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    /// The stable identifier, e.g. `S402`.
    pub id: &'static str,
    /// Problem-named identifier, e.g. `undefined-identifier`.
    pub name: &'static str,
    /// Severity the code carries unless the emitter says otherwise.
    pub severity: Severity,
    /// One line: what triggers it.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// A minimal bad example (YAML or condition text).
    pub example: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

macro_rules! codes {
    ($( $konst:ident = $id:literal $name:literal $sev:ident {
        summary: $summary:literal, why: $why:literal, example: $example:literal, fix: $fix:literal $(,)?
    } )*) => {
        $(
            #[doc = $summary]
            pub const $konst: Code = Code {
                id: $id, name: $name, severity: Severity::$sev,
                summary: $summary, why: $why, example: $example, fix: $fix,
            };
        )*
        /// Every code, in code order.
        pub const ALL: &[Code] = &[$($konst),*];
    };
}

codes! {
    // S1xx: reading the file and its YAML
    YAML_SYNTAX = "S100" "yaml-syntax" Error {
        summary: "the file is not well-formed YAML",
        why: "nothing in the file can be read until the YAML parses",
        example: "title: [unclosed",
        fix: "correct the YAML at the position shown; quote values that contain `: ` or start with `[`, `{`, `*`, `&`, `!`, `%` or `@`",
    }
    NOT_UTF8 = "S101" "invalid-utf8" Error {
        summary: "the file is not valid UTF-8",
        why: "Sigma rules are UTF-8 text; other encodings would silently change the values the rule compares",
        example: "title: caf\\xe9 (Latin-1 byte)",
        fix: "re-save the file as UTF-8",
    }
    FILE_TOO_LARGE = "S102" "file-too-large" Error {
        summary: "the rule file is larger than 4 MiB",
        why: "a rule file that large is almost certainly not a rule; the limit keeps a stray file from exhausting memory",
        example: "a 10 MB log file saved with a .yml name",
        fix: "split the file or move it out of the rule directory",
    }
    NESTING_TOO_DEEP = "S103" "nesting-too-deep" Error {
        summary: "the YAML nests deeper than 64 levels",
        why: "no Sigma rule needs such depth, and unbounded depth is a way to crash a loader",
        example: "detection: {a: {b: {c: ... 65 levels}}}",
        fix: "flatten the structure",
    }
    EMPTY_FILE = "S104" "empty-file" Warning {
        summary: "the file holds no YAML document",
        why: "an empty rule file in a catalog is usually a mistake",
        example: "(an empty file, or only comments)",
        fix: "add the rule or delete the file",
    }
    DUPLICATE_KEY = "S105" "duplicate-key" Error {
        summary: "a mapping holds the same key twice",
        why: "YAML forbids duplicate keys and loaders silently keep one of them, so half of what was written would be ignored",
        example: "detection:\n  sel:\n    eventName: A\n    eventName: B",
        fix: "merge the values into a list, or use `field|contains|all:` or two identifiers",
    }
    ALIAS = "S106" "yaml-alias" Error {
        summary: "a YAML alias is undefined or expands too far",
        why: "aliases that expand exponentially (\"billion laughs\") would exhaust memory",
        example: "a: &x [*x, *x]",
        fix: "write the values out, or reduce the alias nesting",
    }
    YAML11_BOOLEAN = "S107" "yaml11-boolean" Warning {
        summary: "an unquoted `yes`/`no`/`on`/`off` is a string in YAML 1.2 but a boolean in YAML 1.1 tools",
        why: "sigil reads YAML 1.2 (the string); other Sigma tools may read a boolean, so the rule means different things in different tools",
        example: "detection:\n  sel:\n    enabled: yes",
        fix: "quote the value (`'yes'`) or write `true`/`false`",
    }
    VALUE_TOO_LONG = "S108" "value-too-long" Error {
        summary: "a single value is longer than 64 KiB",
        why: "values that long are not search terms and slow every backend",
        example: "CommandLine|contains: '<70,000 characters>'",
        fix: "shorten the value or match a distinctive part of it",
    }
    IO_ERROR = "S109" "io-error" Error {
        summary: "the file or directory could not be read",
        why: "an unreadable rule would otherwise be skipped without notice",
        example: "a rule file without read permission",
        fix: "check the path and permissions",
    }
    YAML_TAG = "S110" "yaml-tag" Warning {
        summary: "an explicit YAML tag (`!foo`, `!!binary`) is ignored",
        why: "Sigma values are plain scalars; a tag may mean something to another tool that sigil does not honour",
        example: "eventName: !!str StopLogging",
        fix: "remove the tag",
    }

    // S2xx: rule schema
    UNKNOWN_DOCUMENT = "S200" "unknown-document-kind" Error {
        summary: "a document has none of `detection`, `correlation` or `filter`",
        why: "sigil cannot tell whether the document is a rule, a correlation or a filter",
        example: "title: my rule\nlogsource: {product: aws}",
        fix: "add the `detection` (rule), `correlation` or `filter` section",
    }
    MISSING_FIELD = "S201" "missing-field" Error {
        summary: "a mandatory field is missing",
        why: "the specification requires it; without `title`, `logsource`, `detection` or `condition` the rule cannot be run or reported",
        example: "detection:\n  sel: {eventName: StopLogging}\n  condition: sel",
        fix: "add the field named in the message",
    }
    WRONG_TYPE = "S202" "wrong-type" Error {
        summary: "a field holds the wrong kind of YAML value",
        why: "a list where a string is expected (or the reverse) cannot be read as the author meant",
        example: "title: [a, b]",
        fix: "write the value in the shape the message names",
    }
    MALFORMED_ID = "S203" "malformed-id" Error {
        summary: "`id` (or a referenced id) is not a UUID",
        why: "ids key correlations, filters and `related` entries; the specification requires a UUID",
        example: "id: my-rule-1",
        fix: "generate a UUID (v4), e.g. with `uuidgen`",
    }
    MALFORMED_DATE = "S204" "malformed-date" Error {
        summary: "`date` or `modified` is not a valid `YYYY-MM-DD` date",
        why: "Sigma v2 dates are ISO dates; `2024/01/31` was v1 syntax and `2024-02-30` does not exist",
        example: "date: 2024/01/31",
        fix: "write `date: 2024-01-31`",
    }
    MALFORMED_TAG = "S205" "malformed-tag" Warning {
        summary: "a tag does not have the form `namespace.value` in lower case, or its namespace is unknown",
        why: "tags drive ATT&CK mapping and catalog filtering; a malformed tag is silently lost there",
        example: "tags:\n  - T1562",
        fix: "write `attack.t1562`; namespaces are attack, car, cve, d3fend, detection, stp, tlp",
    }
    INVALID_LEVEL = "S206" "invalid-level" Error {
        summary: "`level` is not one of informational, low, medium, high, critical",
        why: "the level sets alert severity in every backend",
        example: "level: severe",
        fix: "use one of the five levels",
    }
    INVALID_STATUS = "S207" "invalid-status" Error {
        summary: "`status` is not one of stable, test, experimental, deprecated, unsupported",
        why: "the status decides whether a rule is deployed",
        example: "status: production",
        fix: "use one of the five statuses",
    }
    INVALID_RELATED = "S208" "invalid-related" Error {
        summary: "a `related` entry lacks `id` or has an unknown `type`",
        why: "related links trace rule history; v1's `obsoletes` became `obsolete` in v2",
        example: "related:\n  - id: 5f0c...\n    type: obsoletes",
        fix: "use type derived, obsolete, merged, renamed or similar",
    }
    FIELD_TOO_LONG = "S209" "field-too-long" Warning {
        summary: "`title` or `name` is longer than 256 characters (or `description` longer than 65,535)",
        why: "the specification bounds these fields and SIEMs truncate them",
        example: "title: <300 characters>",
        fix: "shorten the text",
    }
    LOGSOURCE_VALUE = "S210" "logsource-value" Warning {
        summary: "a logsource value is not lower case with `_`, `.` or `-`",
        why: "logsource values are matched exactly against the configured input mapping",
        example: "logsource:\n  product: AWS",
        fix: "write `product: aws`",
    }
    EMPTY_IDENTIFIER = "S211" "empty-identifier" Error {
        summary: "a search identifier has an empty body",
        why: "an empty map or list selects nothing (or everything, depending on the tool)",
        example: "detection:\n  sel: {}\n  condition: sel",
        fix: "add field tests or remove the identifier",
    }
    INVALID_DETECTION_ITEM = "S212" "invalid-detection-item" Error {
        summary: "a detection item has a shape Sigma does not define",
        why: "a map nested as a field value, or a list inside a value list, has no meaning in Sigma",
        example: "sel:\n  requestParameters:\n    bucketName: x",
        fix: "use a dotted field name: `requestParameters.bucketName: x`",
    }
    CONFLICTING_DOCUMENT = "S213" "conflicting-document-kind" Error {
        summary: "a document has more than one of `detection`, `correlation`, `filter`",
        why: "a document is a rule, a correlation or a filter, never two at once",
        example: "detection: ...\ncorrelation: ...",
        fix: "split it into separate YAML documents with `---`",
    }
    UNKNOWN_KEY = "S214" "unknown-key" Warning {
        summary: "an unknown key inside a `correlation` or `filter` section, or a misspelt top-level field",
        why: "the key is ignored, which is rarely what the author meant",
        example: "correlation:\n  type: event_count\n  groupby: [x]",
        fix: "check the spelling (`group-by`)",
    }
    LEGACY_TIMEFRAME = "S215" "legacy-timeframe" Error {
        summary: "`detection.timeframe` is Sigma v1 syntax",
        why: "v2 expresses time windows only in correlation rules",
        example: "detection:\n  timeframe: 5m",
        fix: "move the window into a correlation rule's `timespan`",
    }
    DUPLICATE_LIST_ENTRY = "S216" "duplicate-list-entry" Warning {
        summary: "`tags`, `references`, `fields` or `falsepositives` repeats an entry",
        why: "the specification requires unique entries",
        example: "tags: [attack.t1078, attack.t1078]",
        fix: "remove the duplicate",
    }
    INVALID_NAME = "S217" "invalid-name" Error {
        summary: "`name` is empty or contains whitespace",
        why: "names are used as references in correlations",
        example: "name: my rule",
        fix: "use a name such as `my_rule`",
    }
    UNKNOWN_CORRELATION_TYPE = "S220" "unknown-correlation-type" Error {
        summary: "`correlation.type` is not a Sigma correlation type",
        why: "the type decides what the window computes",
        example: "correlation:\n  type: count",
        fix: "use event_count, value_count, value_sum, value_avg, value_percentile, temporal or temporal_ordered",
    }
    MALFORMED_TIMESPAN = "S221" "malformed-timespan" Error {
        summary: "`timespan` is not a positive number followed by s, m, h or d",
        why: "the window length must be exact",
        example: "timespan: 5 minutes",
        fix: "write `timespan: 5m`",
    }
    MALFORMED_CORRELATION_CONDITION = "S222" "malformed-correlation-condition" Error {
        summary: "the correlation `condition` is not a map of gt/gte/lt/lte/eq/neq to numbers (plus `field`)",
        why: "the threshold decides when a correlation fires",
        example: "condition: '> 5'",
        fix: "write `condition: {gte: 5}`",
    }
    CORRELATION_FIELD = "S223" "correlation-field" Error {
        summary: "a correlation lacks `rules`, `timespan` or the `field` its type needs, or has a `field` it cannot use",
        why: "value_count, value_sum, value_avg and value_percentile aggregate a field; the others do not",
        example: "correlation:\n  type: value_count\n  condition: {gte: 5}",
        fix: "add `condition.field`",
    }

    // S3xx: condition grammar
    CONDITION_SYNTAX = "S300" "condition-syntax" Error {
        summary: "the condition is not well-formed",
        why: "the condition decides which identifiers must hold; a malformed one cannot be read",
        example: "condition: sel and or filter",
        fix: "conditions combine identifiers with and, or, not, parentheses and `1 of`/`all of`",
    }
    UNBALANCED_PARENTHESES = "S301" "unbalanced-parentheses" Error {
        summary: "a parenthesis in the condition is not closed or not opened",
        why: "the grouping the author meant cannot be known",
        example: "condition: (sel and not filter",
        fix: "add the missing parenthesis",
    }
    EMPTY_CONDITION = "S302" "empty-condition" Error {
        summary: "the condition is empty",
        why: "an empty condition selects nothing",
        example: "condition: ''",
        fix: "name the identifiers to combine",
    }
    LEGACY_AGGREGATION = "S303" "legacy-aggregation" Error {
        summary: "the condition uses the Sigma v1 aggregation pipe (`| count() by x > 5`)",
        why: "Sigma v2 replaced aggregations with correlation rules; sigil shows the equivalent one",
        example: "condition: sel | count() by userIdentity.arn > 5",
        fix: "move the aggregation into a correlation rule (the help shows it)",
    }
    LEGACY_NEAR = "S304" "legacy-near" Error {
        summary: "the condition uses the Sigma v1 `near` operator",
        why: "Sigma v2 expresses `near` with a `temporal` correlation rule",
        example: "condition: sel | near other",
        fix: "write a `temporal` correlation over the two rules",
    }
    INVALID_QUANTIFIER = "S305" "invalid-quantifier" Error {
        summary: "`of` is preceded by something other than `1`, `any` or `all`",
        why: "Sigma defines only `1 of`/`any of` (at least one) and `all of`",
        example: "condition: 2 of sel*",
        fix: "use `1 of`, `any of` or `all of`",
    }
    INVALID_CHARACTER = "S306" "invalid-condition-character" Error {
        summary: "the condition contains a character no token starts with",
        why: "identifiers are letters, digits, `_`, `-`, `.` and `*` in patterns",
        example: "condition: sel && filter",
        fix: "use `and`, `or`, `not`",
    }
    CONDITION_TOO_DEEP = "S307" "condition-too-deep" Error {
        summary: "the condition nests deeper than 64 levels",
        why: "no rule needs it, and unbounded nesting could exhaust the stack",
        example: "condition: ((((((...))))))",
        fix: "flatten the condition",
    }
    UPPERCASE_OPERATOR = "S308" "uppercase-operator" Warning {
        summary: "a condition operator is not written in lower case",
        why: "the specification writes operators in lower case; other tools may read `AND` as an identifier",
        example: "condition: sel AND NOT filter",
        fix: "write `sel and not filter`",
    }
    QUANTIFIER_WITHOUT_PATTERN = "S309" "of-without-pattern" Error {
        summary: "`1 of`/`all of` is not followed by `them` or an identifier pattern",
        why: "the quantifier needs identifiers to range over",
        example: "condition: 1 of",
        fix: "write `1 of selection_*` or `1 of them`",
    }

    // S4xx: meaning
    UNKNOWN_MODIFIER = "S400" "unknown-modifier" Error {
        summary: "a field uses a modifier Sigma does not define",
        why: "an unknown modifier cannot be applied; guessing would change what the rule selects",
        example: "eventName|contain: Stop",
        fix: "use a modifier of the specification (the help suggests the closest one)",
    }
    ILLEGAL_MODIFIER_CHAIN = "S401" "illegal-modifier-chain" Error {
        summary: "modifiers are combined in an order or set the specification does not allow",
        why: "`re`, `cidr` and `exists` work on the raw value and must stand first; `contains` and `startswith` cannot both apply",
        example: "sourceIPAddress|contains|cidr: 10.0.0.0/8",
        fix: "reorder or remove modifiers as the message says",
    }
    UNDEFINED_IDENTIFIER = "S402" "undefined-identifier" Error {
        summary: "the condition names an identifier that is not defined under `detection`",
        why: "the condition can never be evaluated",
        example: "condition: selection and not filter_admin",
        fix: "define the identifier or correct its spelling",
    }
    UNUSED_IDENTIFIER = "S403" "unused-identifier" Warning {
        summary: "an identifier is defined under `detection` but no condition uses it",
        why: "usually a filter that was meant to be applied and silently is not",
        example: "filter: {...}\ncondition: selection",
        fix: "use it in the condition (`selection and not filter`) or remove it",
    }
    PATTERN_MATCHES_NOTHING = "S404" "pattern-matches-nothing" Error {
        summary: "a `1 of`/`all of` pattern matches no identifier",
        why: "the quantifier would range over nothing; pySigma silently drops it, which changes the rule",
        example: "condition: 1 of selection_*   # but only `sel_a` exists",
        fix: "correct the pattern or the identifier names",
    }
    ALL_SINGLE_VALUE = "S405" "all-single-value" Warning {
        summary: "the `all` modifier is used with a single value",
        why: "`all` links several values with AND; with one value it does nothing",
        example: "CommandLine|contains|all: 'x'",
        fix: "remove `all`, or give it the values it should combine",
    }
    ALL_WITHOUT_CONTAINS = "S406" "all-without-contains" Warning {
        summary: "`all` on a field without `contains`, `startswith`, `endswith` or wildcards",
        why: "one field value cannot equal two different strings; it can only hold through an array",
        example: "eventName|all: [A, B]",
        fix: "use a value list (OR) or `contains|all`",
    }
    INVALID_REGEX = "S407" "invalid-regex" Error {
        summary: "a `re` value is not a valid regular expression",
        why: "the rule cannot be compiled to any backend",
        example: "userAgent|re: '(unclosed'",
        fix: "correct the expression; backslashes in double-quoted YAML must be doubled",
    }
    INVALID_CIDR = "S408" "invalid-cidr" Error {
        summary: "a `cidr` value is not an IPv4 or IPv6 network",
        why: "the network test cannot be built",
        example: "sourceIPAddress|cidr: 10.0.0.0/33",
        fix: "write a network such as `10.0.0.0/8` or `2001:db8::/32`",
    }
    UNRESOLVED_PLACEHOLDER = "S409" "unresolved-placeholder" Error {
        summary: "an `expand` placeholder has no configured value",
        why: "the specification requires a tool to reject a rule whose placeholder it cannot resolve; a guess would widen or narrow the rule",
        example: "sourceIPAddress|expand: '%corp_ranges%'",
        fix: "supply the placeholder in the placeholder file (`--placeholders FILE`)",
    }
    DUPLICATE_ID = "S410" "duplicate-id" Error {
        summary: "two documents carry the same `id`",
        why: "ids key references; a duplicate makes them ambiguous and output unattributable",
        example: "two rule files both with `id: 5f0c...`",
        fix: "give one of them a new UUID",
    }
    NUMBER_AS_STRING = "S411" "number-as-string" Warning {
        summary: "a number is written as a quoted string",
        why: "the specification suggests unquoted numbers; quoted digits read as text to some backends",
        example: "EventID: '4624'",
        fix: "write `EventID: 4624`",
    }
    NON_NUMERIC_COMPARISON = "S412" "non-numeric-comparison" Error {
        summary: "`lt`, `lte`, `gt`, `gte` or a time-part modifier is given a value that is not a number",
        why: "numeric comparison needs a number",
        example: "bytes|gt: 'many'",
        fix: "write a number",
    }
    ESCAPED_WILDCARD = "S413" "escaped-wildcard" Warning {
        summary: "a value contains `\\*` or `\\?`, which is a literal `*` or `?`, not a backslash and a wildcard",
        why: "in Windows paths `\\*.bak` looks like \"a backslash then anything\" but Sigma reads a literal `*.bak`",
        example: "Image|endswith: '\\*.exe'",
        fix: "write `\\\\*` for a backslash followed by a wildcard, or keep `\\*` if a literal asterisk is meant",
    }
    DUPLICATE_MODIFIER = "S414" "duplicate-modifier" Error {
        summary: "the same modifier appears twice on one field",
        why: "applying a modifier twice has no defined meaning",
        example: "CommandLine|contains|contains: x",
        fix: "remove the repeat",
    }
    CONFLICTING_MODIFIERS = "S415" "conflicting-modifiers" Error {
        summary: "modifiers that cannot apply together",
        why: "e.g. `contains` and `startswith` each decide where the value sits",
        example: "x|contains|startswith: a",
        fix: "keep one of them",
    }
    MODIFIER_VALUE_TYPE = "S416" "modifier-value-type" Error {
        summary: "a modifier is given a value of a kind it cannot take",
        why: "`exists` takes a boolean; `re`, `cidr`, `fieldref` and `base64` take strings; `fieldref` and `base64` take no wildcards",
        example: "userAgent|exists: 'yes'",
        fix: "give the value the modifier expects",
    }
    EXPANSION_TOO_LARGE = "S417" "expansion-too-large" Error {
        summary: "a value would expand into more than 4,096 variants, or the values of one file into more than 65,536",
        why: "windash and base64offset multiply values; the bounds keep one rule file from exhausting memory",
        example: "CommandLine|windash|contains: '-a -b -c -d -e -f'",
        fix: "split the value, or match fewer flags at once",
    }
    NULL_IN_LIST = "S418" "null-in-list" Warning {
        summary: "`null` is mixed into a list of values",
        why: "the specification asks for null in its own identifier; mixing it in is easy to misread",
        example: "errorCode: [null, AccessDenied]",
        fix: "move `null` into its own identifier",
    }
    ALL_OF_THEM = "S419" "all-of-them" Warning {
        summary: "`all of them` (or `them`) ranges over a single identifier or is discouraged",
        why: "`them` silently changes meaning when identifiers are added",
        example: "condition: all of them",
        fix: "name the identifiers or use a pattern",
    }
    DANGLING_REFERENCE = "S420" "dangling-reference" Error {
        summary: "a correlation or filter refers to a rule id or name that no loaded document has",
        why: "the correlation or filter cannot work without the rule",
        example: "correlation:\n  rules: [failed_login]",
        fix: "load the rule as well, or correct the reference",
    }
    AMBIGUOUS_REFERENCE = "S421" "ambiguous-reference" Error {
        summary: "a reference matches more than one document",
        why: "sigil cannot tell which rule is meant",
        example: "two rules with `name: failed_login`",
        fix: "make names unique or refer by id",
    }
    REFERENCE_CYCLE = "S422" "reference-cycle" Error {
        summary: "correlations refer to each other in a cycle",
        why: "a cycle can never be evaluated",
        example: "corr_a refers to corr_b, corr_b to corr_a",
        fix: "break the cycle",
    }
    DUPLICATE_NAME = "S423" "duplicate-name" Error {
        summary: "two documents carry the same `name`",
        why: "names must be unique; references by name become ambiguous",
        example: "two rules with `name: failed_login`",
        fix: "rename one of them",
    }
    FILTER_WITHOUT_NOT = "S424" "filter-without-not" Warning {
        summary: "a filter's condition has no `not`",
        why: "a filter's condition is AND-ed to the rule (as pySigma does), so without `not` it restricts the rule instead of excluding events",
        example: "filter:\n  condition: selection",
        fix: "write `condition: not selection` to exclude what the selection describes",
    }
    FILTER_LOGSOURCE = "S425" "filter-logsource-mismatch" Warning {
        summary: "a filter names a rule whose logsource it does not cover",
        why: "such a filter is not applied to that rule",
        example: "filter logsource product: windows, rule logsource product: aws",
        fix: "align the filter's logsource with the rule's",
    }
    BASE64OFFSET_WITHOUT_CONTAINS = "S426" "base64offset-without-contains" Warning {
        summary: "`base64offset` is not followed by `contains`",
        why: "the offset variants are trimmed fragments; they only make sense as substrings",
        example: "x|base64offset: http",
        fix: "write `x|base64offset|contains: http`",
    }
    WINDASH_WITH_ALL = "S427" "windash-with-all" Warning {
        summary: "`windash` is combined with `all`",
        why: "the dash variants are OR-ed within each value; combined with `all` the rule is easy to misread",
        example: "CommandLine|windash|contains|all: ['-a', '-b']",
        fix: "check the rule does what is meant, or split it",
    }
    ALIAS_REFERENCE = "S428" "invalid-alias" Error {
        summary: "a correlation alias maps a rule that the correlation does not reference",
        why: "the alias could never take a value",
        example: "aliases:\n  user:\n    other_rule: userName",
        fix: "map only rules listed in `rules`",
    }
    MODIFIER_ALIAS = "S429" "modifier-alias" Warning {
        summary: "`ignorecase`, `multiline` or `dotall` is pySigma's alias, not the specification's",
        why: "other tools may reject it",
        example: "x|re|ignorecase: abc",
        fix: "write `i`, `m` or `s`",
    }
    REGEX_FLAG_WITHOUT_RE = "S430" "regex-flag-without-re" Error {
        summary: "`i`, `m` or `s` is used without `re`",
        why: "the flags configure a regular expression",
        example: "x|i: abc",
        fix: "write `x|re|i: abc`",
    }
    FILTER_ON_CORRELATION = "S431" "filter-on-correlation" Warning {
        summary: "a filter names a correlation rule",
        why: "filters apply to detection rules only (as in pySigma); the correlation is left unchanged",
        example: "filter:\n  rules: [my_correlation]",
        fix: "name the correlation's base rules instead",
    }
    DOUBLE_WILDCARD = "S432" "double-wildcard" Warning {
        summary: "a value contains `**`",
        why: "two adjacent `*` mean the same as one; it is usually a typo",
        example: "CommandLine: '**whoami*'",
        fix: "use one `*`",
    }

    // S5xx: what a backend cannot express
    UNSUPPORTED = "S500" "unsupported" Error {
        summary: "the target cannot express this construct exactly",
        why: "sigil never emits a query that selects something different from what the rule means",
        example: "value_percentile correlation",
        fix: "rewrite the rule without the construct; when the message names a path whose shape is unknown, declare it in a mapping file (`splunk.scalars`, `athena.scalars`, `athena.arrays`) if the log source guarantees it; or use another target",
    }
    UNMAPPED_FIELD = "S501" "unmapped-field" Error {
        summary: "the target's table or index has no place for a field the rule tests",
        why: "field names are case-sensitive JSON paths; guessing a column (`eventname` for `eventName`) would select different records",
        example: "eventname: StopLogging   # CloudTrail writes eventName",
        fix: "spell the field as the record does, or map it in a mapping file (`sigil convert --mapping`)",
    }
    MAPPING_FILE = "S502" "bad-mapping-file" Error {
        summary: "a backend mapping file cannot be read or has an unknown key or a wrong type",
        why: "a mapping that is half understood would export queries over the wrong columns",
        example: "athena:\n  tabel: logs",
        fix: "follow the mapping file format in docs/backends.md",
    }

    // S9xx: bugs in sigil
    INTERNAL = "S900" "internal-error" Error {
        summary: "an internal invariant of sigil broke",
        why: "this is a bug in sigil, not in the rule",
        example: "(none)",
        fix: "report it with the rule that triggers it",
    }
}

/// Looks a code up by its id (`S402`).
pub fn by_id(id: &str) -> Option<Code> {
    ALL.iter().copied().find(|c| c.id == id)
}

/// The diagnostics index as Markdown (`docs/diagnostics.md` is this text).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Diagnostic codes\n\n\
         Generated from `compiler/src/diag/codes.rs` by the `diagnostics_doc` test \
         (`UPDATE_DOCS=1 cargo test -p sigil-compiler --test diagnostics_doc` rewrites it).\n\n\
         Codes are grouped by stage and never reused: S1xx reading and YAML, S2xx rule \
         schema, S3xx condition grammar, S4xx meaning, S5xx what a backend cannot express, \
         S9xx bugs in sigil. Every diagnostic names its file, line and column.\n\n\
         | code | name | severity | summary |\n|---|---|---|---|\n",
    );
    for c in ALL {
        out.push_str(&format!(
            "| [{}](#{}) | `{}` | {} | {} |\n",
            c.id,
            c.id.to_lowercase(),
            c.name,
            c.severity,
            c.summary.replace('|', "\\|")
        ));
    }
    for c in ALL {
        out.push_str(&format!(
            "\n## {}\n\n`{}` · default severity **{}**\n\n**Triggered by:** {}.\n\n**Why it matters:** {}.\n\n**Example:**\n\n```yaml\n{}\n```\n\n**Fix:** {}.\n",
            c.id, c.name, c.severity, c.summary, c.why, c.example, c.fix
        ));
    }
    out
}
