//! The memory controller: memory.min/low/high/max (limits in bytes or
//! "max"), memory.current, memory.stat and memory.events.

use std::fmt;
use std::str::FromStr;

use super::flat_keyed::{FlatKeyed, FlatKeyedError};
use super::{Group, Result, file};

const MEMORY_MIN: &str = "memory.min";
const MEMORY_LOW: &str = "memory.low";
const MEMORY_HIGH: &str = "memory.high";
const MEMORY_MAX: &str = "memory.max";
const MEMORY_CURRENT: &str = "memory.current";
const MEMORY_STAT: &str = "memory.stat";
const MEMORY_EVENTS: &str = "memory.events";

/// The unlimited value of a knob.
const MAX: &str = "max";

/// memory.stat keys qosd reads.
const ANON: &str = "anon";
const FILE: &str = "file";

/// memory.events keys qosd reads.
const EVENT_LOW: &str = "low";
const EVENT_HIGH: &str = "high";
const EVENT_MAX: &str = "max";
const EVENT_OOM_KILL: &str = "oom_kill";

/// What is wrong with a memory knob's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryValueError {
    #[error("expected a number of bytes or \"{MAX}\", got {text:?}")]
    NotALimit { text: String },
}

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
            MemoryKnob::Min => MEMORY_MIN,
            MemoryKnob::Low => MEMORY_LOW,
            MemoryKnob::High => MEMORY_HIGH,
            MemoryKnob::Max => MEMORY_MAX,
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
            MemoryLimit::Unlimited => formatter.write_str(MAX),
        }
    }
}

impl FromStr for MemoryLimit {
    type Err = MemoryValueError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text.trim() {
            MAX => Ok(MemoryLimit::Unlimited),
            number => {
                number
                    .parse()
                    .map(MemoryLimit::Bytes)
                    .map_err(|_| MemoryValueError::NotALimit {
                        text: text.to_owned(),
                    })
            }
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
    group.read_parsed(knob.file(), str::parse)
}

pub fn write_limit(group: &Group, knob: MemoryKnob, limit: MemoryLimit) -> Result<()> {
    file::write(&group.path().join(knob.file()), &limit.to_string())
}

/// memory.current: bytes charged to the group now.
pub fn read_current(group: &Group) -> Result<u64> {
    group.read_parsed(MEMORY_CURRENT, file::number)
}

/// The part of memory.stat qosd reports: anonymous memory and page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStat {
    pub anon: u64,
    pub file: u64,
}

pub fn read_stat(group: &Group) -> Result<MemoryStat> {
    group.read_parsed(MEMORY_STAT, parse_stat)
}

fn parse_stat(content: &str) -> std::result::Result<MemoryStat, FlatKeyedError> {
    let stat = FlatKeyed::parse(content, [ANON, FILE])?;
    Ok(MemoryStat {
        anon: stat.required(ANON)?,
        file: stat.required(FILE)?,
    })
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
            (EVENT_LOW, self.low),
            (EVENT_HIGH, self.high),
            (EVENT_MAX, self.max),
            (EVENT_OOM_KILL, self.oom_kill),
        ]
    }
}

pub fn read_events(group: &Group) -> Result<MemoryEvents> {
    group.read_parsed(MEMORY_EVENTS, parse_events)
}

fn parse_events(content: &str) -> std::result::Result<MemoryEvents, FlatKeyedError> {
    let events = FlatKeyed::parse(content, [EVENT_LOW, EVENT_HIGH, EVENT_MAX, EVENT_OOM_KILL])?;
    Ok(MemoryEvents {
        low: events.required(EVENT_LOW)?,
        high: events.required(EVENT_HIGH)?,
        max: events.required(EVENT_MAX)?,
        oom_kill: events.required(EVENT_OOM_KILL)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeTree;

    #[test]
    fn limits_read_and_write_as_bytes_or_max() {
        let (tree, group) = FakeTree::with_group("t", &[]);
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
        let (_tree, group) = FakeTree::with_group("t", &[("memory.max", "lots\n")]);
        let error = read_limit(&group, MemoryKnob::Max).unwrap_err().to_string();
        assert!(
            error.contains("memory.max") && error.contains("lots"),
            "{error}"
        );
    }

    #[test]
    fn stat_and_events_take_their_keys_and_require_them() {
        let files = [
            ("memory.stat", "anon 1000\nfile 2000\nkernel 5\nshmem 0\n"),
            (
                "memory.events",
                "low 0\nhigh 7\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("memory.current", "123456\n"),
        ];
        let (_tree, group) = FakeTree::with_group("t", &files);
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
        let (_broken, group) = FakeTree::with_group("t", &[("memory.stat", "anon 5\n")]);
        let error = read_stat(&group).unwrap_err().to_string();
        assert!(error.contains("file is missing"), "{error}");
    }

    #[test]
    fn limits_are_written_in_whole_pages() {
        assert_eq!(page_aligned(314_572_800), 314_572_800);
        assert_eq!(page_aligned(4097), 4096);
    }
}
