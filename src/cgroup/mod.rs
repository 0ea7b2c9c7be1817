//! A thin typed cgroup v2 layer, rooted at a path so tests can use a fake tree.
//! One file per controller; every error carries the path (and the value written);
//! a read never fails into zero.
//!
//! INTERFACE STUB — to be implemented (keep these public names and signatures).

pub mod cpu;
mod error;
pub mod pressure;
mod tree;

pub use error::{CgroupError, Result};
pub use tree::{Controller, Group, Hierarchy};
