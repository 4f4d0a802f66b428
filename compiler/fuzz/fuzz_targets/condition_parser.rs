//! Raw bytes as a condition string.
//!
//! Invariants: `parse` never panics or hangs; when it succeeds, printing the
//! expression and parsing the text again succeeds and gives an equal
//! expression (`Expr`'s `PartialEq` ignores spans).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigil_compiler::syntax::condition::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = parse(text, &mut Vec::new()) {
        let printed = expr.to_string();
        match parse(&printed, &mut Vec::new()) {
            Ok(again) => assert_eq!(
                again, expr,
                "round trip changed the expression: {text:?} printed as {printed:?}"
            ),
            Err(e) => panic!("printed form {printed:?} of {text:?} does not parse: {e:?}"),
        }
    }
});
