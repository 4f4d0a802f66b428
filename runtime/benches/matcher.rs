//! The matcher's hot path: every SigmaHQ CloudTrail rule plus the shipped
//! catalog over the real CloudTrail records in `../shared/corpus/cloudtrail-real`.
//! Throughput is reported in bytes, so the figure compares with the
//! parse-only ceiling of `../shared/bench`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sigil_compiler::{catalog::Catalog, ir, Config};
use sigil_runtime::{InputLogSource, Program};

#[path = "../tests/support/real_records.rs"]
mod real_records;

fn bench(c: &mut Criterion) {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let rules = [
        manifest.join("../../shared/corpus/sigmahq/rules/cloud/aws/cloudtrail"),
        manifest.join("../rules"),
    ];
    let catalog = Catalog::load(&rules, &Config::default());
    let (ir, _) = ir::from_catalog(&catalog);
    let (program, _) = Program::build(&ir, &InputLogSource::default());
    let records = real_records::real_records();
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
