//! The memory controller: memory.min/low/high/max (limits in bytes or
//! "max"), memory.current, memory.stat and memory.events.

use std::fmt;
use std::str::FromStr;

use super::{Group, Result, file};

const MEMORY_CURRENT: &str = "memory.current";
const MEMORY_STAT: &str = "memory.stat";
const MEMORY_EVENTS: &str = "memory.events";

/// The four knobs, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryKnob {
    /// Protected from reclaim, whatever happens.
    Min,
    /// Protected unless nothing else is left to reclaim.
    Low,
    /// Above it the group is throttled and reclaimed.
    High,
    /// The hard cap: the OOM killer acts above it.
    Max,
}

impl MemoryKnob {
    pub const ALL: [MemoryKnob; 4] = [
        MemoryKnob::Min,
        MemoryKnob::Low,
        MemoryKnob::High,
        MemoryKnob::Max,
    ];

    pub fn file(self) -> &'static str {
        match self {
            MemoryKnob::Min => "memory.min",
            MemoryKnob::Low => "memory.low",
            MemoryKnob::High => "memory.high",
            MemoryKnob::Max => "memory.max",
        }
    }

    /// The kernel's value in a new group: no protection, no limit.
    pub fn default_value(self) -> MemoryLimit {
        match self {
            MemoryKnob::Min | MemoryKnob::Low => MemoryLimit::Bytes(0),
            MemoryKnob::High | MemoryKnob::Max => MemoryLimit::Unlimited,
        }
    }
}

/// A memory knob's value: bytes, or "max".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    Bytes(u64),
    Unlimited,
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryLimit::Bytes(bytes) => write!(formatter, "{bytes}"),
            MemoryLimit::Unlimited => formatter.write_str("max"),
        }
    }
}

impl FromStr for MemoryLimit {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.trim() {
            "max" => Ok(MemoryLimit::Unlimited),
            number => number
                .parse()
                .map(MemoryLimit::Bytes)
                .map_err(|_| format!("expected a number of bytes or \"max\", got {text:?}")),
        }
    }
}

/// The kernel keeps memory limits in whole pages, rounding down what is
/// written: reading back "314572800" after writing it holds only on a page
/// multiple. qosd writes page multiples so that what it reads back is what
/// it wrote (anything else would look like drift every time).
pub const PAGE_BYTES: u64 = 4096;

pub fn page_aligned(bytes: u64) -> u64 {
    bytes - bytes % PAGE_BYTES
}

pub fn read_limit(group: &Group, knob: MemoryKnob) -> Result<MemoryLimit> {
    let content = group.read_often(knob.file())?;
    content
        .parse()
        .map_err(|reason| file::parse_error(&group.path().join(knob.file()), content, reason))
}

pub fn write_limit(group: &Group, knob: MemoryKnob, limit: MemoryLimit) -> Result<()> {
    file::write(&group.path().join(knob.file()), &limit.to_string())
}

/// memory.current: bytes charged to the group now.
pub fn read_current(group: &Group) -> Result<u64> {
    file::parse_number(
        &group.path().join(MEMORY_CURRENT),
        group.read_often(MEMORY_CURRENT)?,
    )
}

/// The part of memory.stat qosd reports: anonymous memory and page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStat {
    pub anon: u64,
    pub file: u64,
}

pub fn read_stat(group: &Group) -> Result<MemoryStat> {
    let content = group.read_often(MEMORY_STAT)?;
    let keys = read_keys(&content, &["anon", "file"]);
    match keys {
        Ok([anon, file]) => Ok(MemoryStat { anon, file }),
        Err(reason) => Err(file::parse_error(
            &group.path().join(MEMORY_STAT),
            content,
            reason,
        )),
    }
}

/// memory.events: how often the group hit each boundary (cumulative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEvents {
    /// Reclaimed although below memory.low (protection was not enough).
    pub low: u64,
    /// Went above memory.high and was throttled.
    pub high: u64,
    /// Reached memory.max.
    pub max: u64,
    /// Processes the OOM killer killed in the group.
    pub oom_kill: u64,
}

impl MemoryEvents {
    /// (name, count), the names as in the file.
    pub fn named(&self) -> [(&'static str, u64); 4] {
        [
            ("low", self.low),
            ("high", self.high),
            ("max", self.max),
            ("oom_kill", self.oom_kill),
        ]
    }
}

pub fn read_events(group: &Group) -> Result<MemoryEvents> {
    let content = group.read_often(MEMORY_EVENTS)?;
    match read_keys(&content, &["low", "high", "max", "oom_kill"]) {
        Ok([low, high, max, oom_kill]) => Ok(MemoryEvents {
            low,
            high,
            max,
            oom_kill,
        }),
        Err(reason) => Err(file::parse_error(
            &group.path().join(MEMORY_EVENTS),
            content,
            reason,
        )),
    }
}

/// The values of `wanted` in a flat-keyed file (`key value` lines); each
/// must be there and be a number.
fn read_keys<const N: usize>(
    content: &str,
    wanted: &[&str; N],
) -> std::result::Result<[u64; N], String> {
    let mut values = [None; N];
    for line in content.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        if let Some(index) = wanted.iter().position(|w| *w == key) {
            let number = value
                .trim()
                .parse()
                .map_err(|_| format!("{key} is not a number: {value:?}"))?;
            values[index] = Some(number);
        }
    }
    let mut found = [0; N];
    for (index, value) in values.into_iter().enumerate() {
        found[index] = value.ok_or_else(|| format!("{} is missing", wanted[index]))?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cgroup::fake::FakeTree;

    fn tree_with(files: &[(&str, &str)]) -> (FakeTree, Group) {
        let tree = FakeTree::new();
        tree.add_group("t");
        for (name, content) in files {
            tree.write(&format!("t/{name}"), content);
        }
        let group = tree.hierarchy().group(Path::new("t"));
        (tree, group)
    }

    #[test]
    fn limits_read_and_write_as_bytes_or_max() {
        let (tree, group) = tree_with(&[]);
        assert_eq!(
            read_limit(&group, MemoryKnob::Min).unwrap(),
            MemoryLimit::Bytes(0)
        );
        assert_eq!(
            read_limit(&group, MemoryKnob::High).unwrap(),
            MemoryLimit::Unlimited
        );
        write_limit(&group, MemoryKnob::Min, MemoryLimit::Bytes(314_572_800)).unwrap();
        assert_eq!(tree.read("t/memory.min"), "314572800");
        write_limit(&group, MemoryKnob::High, MemoryLimit::Unlimited).unwrap();
        assert_eq!(tree.read("t/memory.high"), "max");
    }

    #[test]
    fn a_garbled_limit_is_an_error_naming_the_file_not_zero() {
        let (_tree, group) = tree_with(&[("memory.max", "lots\n")]);
        let error = read_limit(&group, MemoryKnob::Max).unwrap_err().to_string();
        assert!(
            error.contains("memory.max") && error.contains("lots"),
            "{error}"
        );
    }

    #[test]
    fn stat_and_events_take_their_keys_and_require_them() {
        let stat = "anon 1000\nfile 2000\nkernel 5\nshmem 0\n";
        let events = "low 0\nhigh 7\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n";
        let files = [
            ("memory.stat", stat),
            ("memory.events", events),
            ("memory.current", "123456\n"),
        ];
        let (_tree, group) = tree_with(&files);
        assert_eq!(
            read_stat(&group).unwrap(),
            MemoryStat {
                anon: 1000,
                file: 2000
            }
        );
        let read = read_events(&group).unwrap();
        assert_eq!((read.high, read.max, read.oom_kill), (7, 1, 1));
        assert_eq!(read_current(&group).unwrap(), 123_456);
        let (_broken, group) = tree_with(&[("memory.stat", "anon 5\n")]);
        let error = read_stat(&group).unwrap_err().to_string();
        assert!(error.contains("file is missing"), "{error}");
    }

    #[test]
    fn limits_are_written_in_whole_pages() {
        assert_eq!(page_aligned(314_572_800), 314_572_800);
        assert_eq!(page_aligned(4097), 4096);
    }
}
