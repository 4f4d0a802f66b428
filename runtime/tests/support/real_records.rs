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

/// `count` byte-level mutants of `records`, drawn with xorshift from
/// `seed`: each is a record with one to three edits — a byte of `alphabet`
/// written over one or inserted, or a byte removed, or (with `truncate`)
/// everything from a byte on cut off.
#[allow(dead_code)] // not every file that includes this mutates
pub fn mutants(
    records: &[Vec<u8>],
    count: usize,
    seed: u64,
    alphabet: &[u8],
    truncate: bool,
) -> Vec<Vec<u8>> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let kinds = if truncate { 4 } else { 3 };
    (0..count)
        .map(|_| {
            let mut r = records[(next() as usize) % records.len()].clone();
            for _ in 0..1 + next() % 3 {
                if r.is_empty() {
                    break;
                }
                let at = (next() as usize) % r.len();
                let b = alphabet[(next() as usize) % alphabet.len()];
                match next() % kinds {
                    0 => r[at] = b,
                    1 => r.insert(at, b),
                    2 => {
                        r.remove(at);
                    }
                    _ => r.truncate(at),
                }
            }
            r
        })
        .collect()
}
