//! sigil-compiler: Sigma rule text to a typed, checked rule AST.
//!
//! The pipeline runs one way: [`source`] (text and line index) → [`syntax`]
//! (spanned YAML nodes, condition tokens) → [`rule`] (typed rules, every user
//! error reported as a [`diag::Diagnostic`]) → [`catalog`] (many files:
//! references, filters, duplicate ids).
//!
//! ```
//! use sigil_compiler::{catalog::Catalog, Config};
//! let text = "title: Trail stopped\nlogsource: {product: aws, service: cloudtrail}\n\
//! detection:\n  sel: {eventName: StopLogging}\n  condition: sel\n";
//! let catalog = Catalog::from_texts(&[("stop.yml", text)], &Config::default());
//! assert!(!catalog.diagnostics().has_errors());
//! assert_eq!(catalog.rules().count(), 1);
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
// Unit tests state their expectations with `unwrap`; library code may not.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod catalog;
pub mod diag;
pub mod explain;
pub mod ir;
pub mod rule;
pub mod source;
pub mod syntax;
pub mod time;

mod config;
pub use config::{load_placeholders, Config};
