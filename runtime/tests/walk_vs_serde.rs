//! The field walk's verdict on a record — one valid JSON object or not —
//! agrees with serde_json's on thousands of byte-level mutations of real
//! CloudTrail records. (Where the CPU has AVX2 that is the walk over a
//! structural index; its agreement with the byte walk is tested in
//! `json.rs`.) The walk decides what a scan reports as damage, so
//! it must neither accept what is not JSON nor refuse what is.

use sigil_runtime::json;

#[path = "support/real_records.rs"]
mod real_records;
use real_records::{mutants, real_records};

/// serde_json's verdict, or `None` when it is not comparable (its
/// recursion limit, or an unpaired surrogate escape, which JSON's grammar
/// allows and serde_json refuses).
fn serde_verdict(bytes: &[u8]) -> Option<bool> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => Some(v.is_object()),
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("recursion limit") || msg.contains("surrogate") {
                None
            } else {
                Some(false)
            }
        }
    }
}

#[test]
fn walk_and_serde_json_agree_on_mutated_records() {
    let records = real_records();
    assert!(records.len() > 50, "{} records", records.len());
    let bytes = [
        b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b' ', b'\n', b'0', b'-', b'e', b'.', b'u',
        b'n', b't', b'f', 0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xe9, 0xff,
    ];
    let (mut compared, mut valid, mut invalid) = (0, 0, 0);
    let cases = mutants(&records, 30_000, 0x0123_4567_89ab_cdef, &bytes, false);
    for (round, r) in cases.iter().enumerate() {
        let Some(expected) = serde_verdict(r) else {
            continue;
        };
        let got = json::validate(r).is_ok();
        assert_eq!(
            got,
            expected,
            "round {round}: {}",
            String::from_utf8_lossy(r)
        );
        compared += 1;
        if got {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // Both verdicts occur often enough for the comparison to mean something.
    assert!(
        compared > 25_000 && valid > 2_000 && invalid > 10_000,
        "{compared} {valid} {invalid}"
    );
}
