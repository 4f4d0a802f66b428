//! The real CloudTrail records of `../shared/corpus/cloudtrail-real`, one
//! per line of its normalised JSON Lines files, in a fixed order; shared by
//! the walk's tests and the matcher's benchmark.

use std::path::PathBuf;

/// Every record, in directory then file-name order.
pub fn real_records() -> Vec<Vec<u8>> {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cloudtrail-real");
    let mut out = Vec::new();
    for dir in [
        "panther-analysis",
        "otrf-security-datasets",
        "cloudtrail2sightings",
        "elastic-integrations",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for p in files {
            if p.to_string_lossy().ends_with(".normalized.ndjson") {
                let text = std::fs::read(&p).unwrap_or_default();
                out.extend(
                    text.split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(<[u8]>::to_vec),
                );
            }
        }
    }
    out
}
