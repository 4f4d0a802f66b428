//! Loading and checking the whole SigmaHQ corpus (3,780 files), and
//! converting the catalog to both export targets.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use sigil_compiler::backend::{self, Mapping, Options, Target};
use sigil_compiler::{catalog::Catalog, ir, Config};

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
    // The shipped catalog plus every SigmaHQ CloudTrail rule to both targets
    // (load and lowering included), as docs/backends.md reports.
    let rules = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules"),
        corpus.join("rules/cloud/aws/cloudtrail"),
    ];
    group.bench_function("convert_catalog_both_targets", |b| {
        b.iter(|| {
            let catalog = Catalog::load(&rules, &Config::default());
            let (program, _) = ir::from_catalog(&catalog);
            let mapping = Mapping::default();
            let mut converted = 0;
            for r in &program.rules {
                for t in [Target::Splunk, Target::Athena] {
                    converted += usize::from(
                        backend::convert_rule(r, t, &mapping, &Options::default(), false).is_ok(),
                    );
                }
            }
            converted
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
