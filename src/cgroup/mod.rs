//! A thin typed cgroup v2 layer, rooted at a path so tests can use a fake tree.
//! One file (io: a folder) per controller; every error carries the path (and the
//! value written, or the content that did not parse) and a typed reason;
//! a read never fails into zero.

pub mod cpu;
mod error;
#[cfg(test)]
pub mod fake;
mod file;
mod flat_keyed;
pub mod io;
pub mod memory;
pub mod pressure;
mod tree;
pub mod trigger;

pub use error::{CgroupError, Result, Syntax, SyntaxError, ValueError};
pub use flat_keyed::FlatKeyedError;
pub use tree::{Controller, Group, Hierarchy};
