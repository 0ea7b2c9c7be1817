//! Plain types of the network side: tc handles, what a link holds now (as
//! netlink reports it), and the counters of one class.

use std::fmt;

/// A tc handle or class id, `major:minor` (both 16 bits, printed in hex as
/// tc does: `1:10` is 0x0001_0010, and a qdisc's `10:` is 0x0010_0000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u32);

impl Handle {
    /// The parent of a root qdisc (TC_H_ROOT).
    pub const ROOT: Handle = Handle(0xFFFF_FFFF);

    pub const fn new(major: u16, minor: u16) -> Self {
        Handle(((major as u32) << 16) | minor as u32)
    }

    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub const fn minor(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        if *self == Handle::ROOT {
            return formatter.write_str("root");
        }
        match self.minor() {
            0 => write!(formatter, "{:x}:", self.major()),
            minor => write!(formatter, "{:x}:{minor:x}", self.major()),
        }
    }
}

/// One qdisc on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdiscState {
    pub handle: Handle,
    pub parent: Handle,
    pub kind: String,
}

/// Cumulative counters of one class, as the kernel keeps them (they restart
/// at zero when the class is made again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassCounters {
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
}

/// One class on a link. Rates are in bytes per second, as HTB holds them;
/// `rate`, `ceil` and `quantum` are 0 for classes that are not HTB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassState {
    pub handle: Handle,
    pub parent: Handle,
    pub kind: String,
    pub rate: u64,
    pub ceil: u64,
    pub quantum: u32,
    pub counters: ClassCounters,
}

/// Everything on a link's egress: its qdiscs and classes. `None` from a read
/// means the interface does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkState {
    pub qdiscs: Vec<QdiscState>,
    pub classes: Vec<ClassState>,
}

impl LinkState {
    pub fn class(&self, handle: Handle) -> Option<&ClassState> {
        self.classes.iter().find(|class| class.handle == handle)
    }

    pub fn qdisc_under(&self, parent: Handle) -> Option<&QdiscState> {
        self.qdiscs.iter().find(|qdisc| qdisc.parent == parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_print_like_tc() {
        assert_eq!(Handle::new(1, 0x10).to_string(), "1:10");
        assert_eq!(Handle::new(0x10, 0).to_string(), "10:");
        assert_eq!(Handle::ROOT.to_string(), "root");
        assert_eq!(Handle::new(1, 0xffff).minor(), 0xffff);
    }
}
