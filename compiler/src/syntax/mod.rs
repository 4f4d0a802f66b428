//! The syntax stage: YAML text to a tree of spanned nodes, and condition text to
//! a spanned expression tree.
//!
//! All YAML reading in sigil happens here (see `docs/yaml-layer.md` for why the
//! layer is `saphyr-parser`'s event stream and not a serde deserializer): the
//! rest of the compiler sees only [`Node`]s, so the YAML crate can be swapped
//! without touching other stages.

pub mod condition;
mod yaml;

pub use yaml::{parse, Document, Node, NodeKind, MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUE_BYTES};
