//! Library side of the `sigil` command line: output rendering shared by the
//! binary and its tests. Rule logic lives in `sigil-compiler`.

pub mod correlation;
pub mod fixtures;
pub mod render;
