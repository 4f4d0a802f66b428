//! sigil-runtime: runs compiled rule programs over JSON events.
//!
//! A [`Program`] is built once per rule set from the compiler's IR (the
//! runtime never sees YAML). Each record is matched in three steps: its
//! candidate rules are found, from its raw bytes (an `eventName` table and
//! an Aho-Corasick pass for necessary literals) or from its parsed
//! `eventName`, whichever measures cheaper on the input; one pass over the
//! record extracts only the fields those rules read ([`json`]); the rules
//! are evaluated on those values.
//!
//! ```
//! use sigil_compiler::{catalog::Catalog, ir, Config};
//! use sigil_runtime::{InputLogSource, Program};
//! let rule = "title: t\nlogsource: {product: aws, service: cloudtrail}\n\
//! detection:\n  sel: {eventName: StopLogging}\n  condition: sel\n";
//! let catalog = Catalog::from_texts(&[("r.yml", rule)], &Config::default());
//! let (ir, _) = ir::from_catalog(&catalog);
//! let (program, _) = Program::build(&ir, &InputLogSource::default());
//! let mut matcher = program.matcher();
//! let mut hits = Vec::new();
//! matcher.matches(br#"{"eventName":"StopLogging"}"#, &mut hits).unwrap();
//! assert_eq!(hits, vec![0]);
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod bytes;
mod choice;
pub mod correlate;
pub mod input;
pub mod json;
mod program;
mod regex_literal;
pub mod text;

pub use program::{BuildProblem, Dispatch, InputLogSource, Matcher, Program};

/// A xorshift generator for the unit tests' random cases: the same cases on
/// every run, from `seed`.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
