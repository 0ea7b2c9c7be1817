//! /proc/net/dev and /proc/<pid>/net/dev: transmit counters per interface,
//! of qosd's network namespace or of a process's.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use procfs_core::FromRead;
use procfs_core::net::{DeviceStatus, InterfaceDeviceStatus};

use super::{ProcError, ProcFs, crate_reason, read_parsed};

const NET_DEV: &str = "net/dev";

/// Cumulative transmit counters of one interface in /proc/net/dev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetDevStats {
    pub received_bytes: u64,
    pub transmitted_bytes: u64,
    pub transmitted_packets: u64,
    pub transmit_drops: u64,
}

impl ProcFs {
    /// /proc/net/dev: the counters of every interface of qosd's network
    /// namespace, by name.
    pub fn read_net_dev(&self) -> Result<BTreeMap<String, NetDevStats>, ProcError> {
        self.read_parsed(NET_DEV, parse_net_dev)
    }

    /// /proc/<pid>/net/dev: the interfaces of `pid`'s network namespace (a
    /// container's own). `Ok(None)` when the process is gone, which is normal.
    pub fn read_process_net_dev(
        &self,
        pid: u32,
    ) -> Result<Option<BTreeMap<String, NetDevStats>>, ProcError> {
        let path = self.root.join(pid.to_string()).join(NET_DEV);
        match read_parsed(&path, parse_net_dev) {
            Ok(stats) => Ok(Some(stats)),
            Err(ProcError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether `pid` lives in another network namespace than qosd; `None`
    /// when the process is gone.
    pub fn in_other_network_namespace(&self, pid: u32) -> Option<bool> {
        let namespace = |dir: &Path| fs::read_link(dir.join("ns/net")).ok();
        let theirs = namespace(&self.root.join(pid.to_string()))?;
        Some(namespace(&self.root.join("self")).is_none_or(|ours| ours != theirs))
    }
}

/// Two header lines, then `name: counters...`, 8 receive counters (bytes
/// first) then 8 transmit (bytes, packets, errs, drop, ...). procfs-core
/// splits at whitespace, so it needs the space after the colon that kernels
/// print since the 2.6 series. Read every tick: the whole file is parsed
/// once, and only a file that fails is parsed again line by line, to name
/// the line.
fn parse_net_dev(text: &str) -> Result<BTreeMap<String, NetDevStats>, String> {
    match InterfaceDeviceStatus::from_read(text.as_bytes()) {
        Ok(InterfaceDeviceStatus(interfaces)) => Ok(interfaces
            .into_iter()
            .map(|(name, device)| (name, stats(&device)))
            .collect()),
        Err(error) => Err(first_bad_line(text).unwrap_or_else(|| crate_reason(error))),
    }
}

fn stats(device: &DeviceStatus) -> NetDevStats {
    NetDevStats {
        received_bytes: device.recv_bytes,
        transmitted_bytes: device.sent_bytes,
        transmitted_packets: device.sent_packets,
        transmit_drops: device.sent_drop,
    }
}

/// Why the first interface line that fails does, with the line.
fn first_bad_line(text: &str) -> Option<String> {
    text.lines()
        .skip(2)
        .filter(|line| !line.trim().is_empty())
        .find_map(|line| {
            let reason = parse_interface_line(line).err()?;
            Some(format!("{reason} in line {line:?}"))
        })
}

/// One interface's line. procfs-core parses lines only as part of a whole
/// file (its line parser is private), so the line goes in behind two empty
/// header lines: an error then names its line, which a whole-file parse
/// cannot tell.
fn parse_interface_line(line: &str) -> Result<DeviceStatus, String> {
    let file = "\n\n".as_bytes().chain(line.as_bytes());
    let InterfaceDeviceStatus(interfaces) =
        InterfaceDeviceStatus::from_read(file).map_err(crate_reason)?;
    interfaces
        .into_values()
        .next()
        .ok_or_else(|| "no interface".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV_TEXT: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    4200      42    0    0    0     0          0         0     4200      42    0    0    0     0       0          0
  up0: 1000 10 0 0 0 0 0 0 987654321 65432 0 7 0 0 0 0
";

    #[test]
    fn net_dev_gives_transmit_counters_by_interface() {
        let stats = parse_net_dev(NET_DEV_TEXT).unwrap();
        let up0 = stats["up0"];
        assert_eq!(
            (
                up0.transmitted_bytes,
                up0.transmitted_packets,
                up0.transmit_drops
            ),
            (987654321, 65432, 7)
        );
        assert_eq!(
            (up0.received_bytes, stats["lo"].transmitted_bytes),
            (1000, 4200)
        );
    }

    #[test]
    fn a_short_or_garbled_net_dev_line_is_an_error_naming_it() {
        let short = NET_DEV_TEXT.replace(" 0 0 0 0\n", "\n");
        let error = parse_net_dev(&short).unwrap_err();
        assert!(error.contains("a field is missing"), "{error}");
        assert!(error.contains("up0"), "{error}");
        let garbled = NET_DEV_TEXT.replace("65432", "x");
        let error = parse_net_dev(&garbled).unwrap_err();
        // "65432" is in the bytes too: the first bad value is "987x1".
        assert!(error.contains("987x1: Failed to convert"), "{error}");
        assert!(error.contains("up0"), "{error}");
    }

    #[test]
    fn a_vanished_process_has_no_net_dev_rather_than_an_error() {
        let proc = ProcFs::at(tempfile::tempdir().unwrap().path());
        assert_eq!(proc.read_process_net_dev(4_000_000).unwrap(), None);
        assert_eq!(proc.in_other_network_namespace(4_000_000), None);
    }
}
