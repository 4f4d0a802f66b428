//! Raw bytes as one rule file: load, lower and link it, explain every
//! document, and resolve every diagnostic's position.
//!
//! Invariant: no panic, no hang, no unbounded memory, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigil_compiler::{catalog::Catalog, explain::explain, Config};

fuzz_target!(|data: &[u8]| {
    let catalog = Catalog::from_bytes("fuzz.yml", data, &Config::default());
    for doc in catalog.documents() {
        let _ = explain(doc, &catalog);
    }
    for d in catalog.diagnostics().iter() {
        let _ = d.range();
    }
});
