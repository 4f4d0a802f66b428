//! Helpers shared by the integration tests that replay the data-only
//! semantics corpus (`tests/semantics/*.jsonl`).

/// The full CloudTrail rule text around a case's `detection` section.
pub fn rule_text(name: &str, detection: &str) -> String {
    let mut text = format!(
        "title: '{}'\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n",
        name.replace('\'', "''")
    );
    for line in detection.lines() {
        if !line.trim().is_empty() {
            text.push_str("    ");
            text.push_str(line);
        }
        text.push('\n');
    }
    text
}
