//! Compiler configuration supplied by the caller (never read from the
//! environment by this crate).

use std::collections::BTreeMap;

/// Options that change how rules are lowered.
#[derive(Debug, Clone, Default)]
pub struct Config {
    placeholders: Option<BTreeMap<String, Vec<String>>>,
}

impl Config {
    /// Values for `expand` placeholders, keyed by name without `%`. Names are
    /// matched case-insensitively (the corpus writes `%Known_Location%` and
    /// `%KNOWN_LOCATION%`). Once a table is given, a placeholder missing from
    /// it is an error; without a table placeholders stay symbolic and only
    /// backends that must resolve them reject the rule.
    pub fn with_placeholders(mut self, table: BTreeMap<String, Vec<String>>) -> Self {
        self.placeholders = Some(
            table
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
        );
        self
    }

    /// The placeholder table, if one was given.
    pub fn placeholders(&self) -> Option<&BTreeMap<String, Vec<String>>> {
        self.placeholders.as_ref()
    }

    /// Values of one placeholder.
    pub fn placeholder(&self, name: &str) -> Option<&[String]> {
        self.placeholders
            .as_ref()?
            .get(&name.to_lowercase())
            .map(Vec::as_slice)
    }
}

/// Reads a placeholder file: a YAML mapping of placeholder name to a value or
/// a list of values. Problems are returned as diagnostics.
pub fn load_placeholders(
    source: &std::sync::Arc<crate::source::Source>,
    diags: &mut crate::diag::Diagnostics,
) -> Option<BTreeMap<String, Vec<String>>> {
    use crate::syntax::NodeKind;
    let docs = crate::syntax::parse(source, diags);
    let doc = docs.first()?;
    let NodeKind::Map(entries) = &doc.root.kind else {
        diags.push(
            crate::diag::Diagnostic::new(
                crate::diag::codes::WRONG_TYPE,
                "a placeholder file must be a mapping of name to values",
            )
            .at(source, doc.root.span),
        );
        return None;
    };
    let mut table = BTreeMap::new();
    for (k, v) in entries {
        let Some(name) = k.scalar_text() else {
            continue;
        };
        let values = match &v.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| i.scalar_text()).collect(),
            _ => v.scalar_text().into_iter().collect(),
        };
        table.insert(name.trim_matches('%').to_string(), values);
    }
    Some(table)
}
