//! /proc/net/dev and /proc/<pid>/net/dev: transmit counters per interface,
//! of qosd's network namespace or of a process's.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use super::{ProcError, ProcFs, read_parsed};

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

/// The 16 counters after `name:` in /proc/net/dev: 8 receive (bytes first),
/// then 8 transmit (bytes, packets, errs, drop, ...).
const NET_DEV_COUNTERS: usize = 16;
const NET_RX_BYTES: usize = 0;
const NET_TX_BYTES: usize = 8;
const NET_TX_PACKETS: usize = 9;
const NET_TX_DROP: usize = 11;

/// Two header lines, then `name: counters...` (older kernels print no
/// space after the colon, so split there, not on whitespace).
fn parse_net_dev(text: &str) -> Result<BTreeMap<String, NetDevStats>, String> {
    text.lines()
        .skip(2)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, counters) = line
                .split_once(':')
                .ok_or_else(|| format!("no `name:` in line {line:?}"))?;
            let counters: Vec<u64> = counters
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|error| format!("{error} in line {line:?}"))?;
            if counters.len() < NET_DEV_COUNTERS {
                return Err(format!(
                    "{} counters, expected {NET_DEV_COUNTERS}, in line {line:?}",
                    counters.len()
                ));
            }
            let stats = NetDevStats {
                received_bytes: counters[NET_RX_BYTES],
                transmitted_bytes: counters[NET_TX_BYTES],
                transmitted_packets: counters[NET_TX_PACKETS],
                transmit_drops: counters[NET_TX_DROP],
            };
            Ok((name.trim().to_owned(), stats))
        })
        .collect()
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
        assert!(parse_net_dev(&short).unwrap_err().contains("12 counters"));
        let garbled = NET_DEV_TEXT.replace("65432", "x");
        assert!(parse_net_dev(&garbled).unwrap_err().contains("up0"));
    }

    #[test]
    fn a_vanished_process_has_no_net_dev_rather_than_an_error() {
        let proc = ProcFs::at(tempfile::tempdir().unwrap().path());
        assert_eq!(proc.read_process_net_dev(4_000_000).unwrap(), None);
        assert_eq!(proc.in_other_network_namespace(4_000_000), None);
    }
}
