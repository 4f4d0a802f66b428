//! Loading and checking the whole SigmaHQ corpus (3,780 files).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use sigil_compiler::{catalog::Catalog, Config};

fn bench(c: &mut Criterion) {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sigmahq");
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.bench_function("sigmahq_corpus", |b| {
        b.iter(|| {
            let catalog = Catalog::load(std::slice::from_ref(&corpus), &Config::default());
            assert!(!catalog.diagnostics().has_errors());
            catalog.documents().count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
