//! The matcher's hot path: every SigmaHQ CloudTrail rule plus the shipped
//! catalog over the real CloudTrail records in `../shared/corpus/cloudtrail-real`.
//! Throughput is reported in bytes, so the figure compares with the
//! parse-only ceiling of `../shared/bench`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sigil_compiler::{catalog::Catalog, ir, Config};
use sigil_runtime::{InputLogSource, Program};

fn records() -> Vec<Vec<u8>> {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cloudtrail-real");
    let mut out = Vec::new();
    for dir in [
        "panther-analysis",
        "otrf-security-datasets",
        "cloudtrail2sightings",
        "elastic-integrations",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
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

fn bench(c: &mut Criterion) {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let rules = [
        manifest.join("../../shared/corpus/sigmahq/rules/cloud/aws/cloudtrail"),
        manifest.join("../rules"),
    ];
    let catalog = Catalog::load(&rules, &Config::default());
    let (ir, _) = ir::from_catalog(&catalog);
    let (program, _) = Program::build(&ir, &InputLogSource::default());
    let records = records();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("matcher");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("cloudtrail_real_all_rules", |b| {
        let mut m = program.matcher();
        let mut hits = Vec::new();
        b.iter(|| {
            let mut n = 0;
            for r in &records {
                if m.matches(r, &mut hits).is_ok() {
                    n += hits.len();
                }
            }
            n
        })
    });
    group.bench_function("validate_only", |b| {
        b.iter(|| {
            records
                .iter()
                .filter(|r| sigil_runtime::json::validate(r).is_ok())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
