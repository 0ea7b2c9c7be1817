//! Reads a link's qdiscs and classes from the kernel (rtnetlink): one dump
//! each, no process started, so a tick that finds nothing changed runs no
//! `tc` at all. Writing stays with `tc` (see `net::shaper`), which knows how
//! to build HTB classes.

use nix::libc;

use super::{NLM_F_DUMP, NetlinkSocket, RequestError, attribute, read};
use crate::net::types::{ClassCounters, ClassState, Handle, LinkState, QdiscState};

const RTM_GETQDISC: u16 = 38;
const RTM_GETTCLASS: u16 = 42;
/// struct tcmsg: family, 3 bytes of padding, ifindex, handle, parent, info.
const TCMSG_LEN: usize = 20;
const TCMSG_IFINDEX_OFFSET: usize = 4;
const TCMSG_HANDLE_OFFSET: usize = 8;
const TCMSG_PARENT_OFFSET: usize = 12;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_STATS2: u16 = 7;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TCA_STATS_PKT64: u16 = 8;
const TCA_HTB_PARMS: u16 = 1;
const TCA_HTB_RATE64: u16 = 6;
const TCA_HTB_CEIL64: u16 = 7;
/// Offsets in struct tc_htb_opt: two tc_ratespec of 12 bytes (the rate in
/// bytes/s is their last u32), then buffer, cbuffer and quantum.
const HTB_RATE_OFFSET: usize = 8;
const HTB_CEIL_OFFSET: usize = 20;
const HTB_QUANTUM_OFFSET: usize = 32;
/// Offsets in struct gnet_stats_queue: qlen, backlog, drops, requeues, overlimits.
const QUEUE_DROPS_OFFSET: usize = 8;
const QUEUE_OVERLIMITS_OFFSET: usize = 16;

impl NetlinkSocket {
    /// Every qdisc of every interface, with its interface index: the kernel
    /// dumps them all whatever the request names, so one dump serves all
    /// links.
    pub fn qdiscs(&mut self) -> Result<Vec<(u32, QdiscState)>, RequestError> {
        let replies = self.request(RTM_GETQDISC, NLM_F_DUMP, &tcmsg(0))?;
        Ok(replies
            .iter()
            .filter_map(|payload| Some((interface_of(payload)?, parse_qdisc(payload)?)))
            .collect())
    }

    /// The classes on `interface` with its qdiscs (picked from `qdiscs`),
    /// or `None` if there is no such interface.
    pub fn link_state(
        &mut self,
        interface: &str,
        qdiscs: &[(u32, QdiscState)],
    ) -> Result<Option<LinkState>, RequestError> {
        let Some(index) = interface_index(interface) else {
            return Ok(None);
        };
        let classes = self.request(RTM_GETTCLASS, NLM_F_DUMP, &tcmsg(index))?;
        Ok(Some(LinkState {
            qdiscs: qdiscs
                .iter()
                .filter(|(on, _)| *on == index)
                .map(|(_, qdisc)| qdisc.clone())
                .collect(),
            classes: classes
                .iter()
                .filter(|payload| interface_of(payload) == Some(index))
                .filter_map(|payload| parse_class(payload))
                .collect(),
        }))
    }
}

fn interface_index(interface: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(interface).ok()
}

fn tcmsg(index: u32) -> [u8; TCMSG_LEN] {
    let mut message = [0u8; TCMSG_LEN];
    message[0] = libc::AF_UNSPEC as u8;
    message[TCMSG_IFINDEX_OFFSET..TCMSG_HANDLE_OFFSET]
        .copy_from_slice(&(index as i32).to_ne_bytes());
    message
}

/// The interface index of a tcmsg (an int in the kernel's struct).
fn interface_of(payload: &[u8]) -> Option<u32> {
    read::<i32>(payload, TCMSG_IFINDEX_OFFSET).map(|index| index as u32)
}

fn parse_qdisc(payload: &[u8]) -> Option<QdiscState> {
    let attributes = payload.get(TCMSG_LEN..)?;
    Some(QdiscState {
        handle: Handle(read(payload, TCMSG_HANDLE_OFFSET)?),
        parent: Handle(read(payload, TCMSG_PARENT_OFFSET)?),
        kind: kind(attributes),
    })
}

fn parse_class(payload: &[u8]) -> Option<ClassState> {
    let attributes = payload.get(TCMSG_LEN..)?;
    let kind = kind(attributes);
    let mut class = ClassState {
        handle: Handle(read(payload, TCMSG_HANDLE_OFFSET)?),
        parent: Handle(read(payload, TCMSG_PARENT_OFFSET)?),
        kind,
        rate: 0,
        ceil: 0,
        quantum: 0,
        counters: attribute(attributes, TCA_STATS2)
            .map(parse_counters)
            .unwrap_or_default(),
    };
    if class.kind == "htb"
        && let Some(options) = attribute(attributes, TCA_OPTIONS)
    {
        read_htb_options(options, &mut class);
    }
    Some(class)
}

fn kind(attributes: &[u8]) -> String {
    attribute(attributes, TCA_KIND)
        .map(|value| {
            String::from_utf8_lossy(value.split(|b| *b == 0).next().unwrap_or(&[])).into_owned()
        })
        .unwrap_or_default()
}

/// A u64 attribute's value.
fn u64_attribute(attributes: &[u8], wanted: u16) -> Option<u64> {
    attribute(attributes, wanted).and_then(|value| read(value, 0))
}

/// Rates above 4 GiB/s do not fit the u32 of tc_ratespec and come in
/// TCA_HTB_RATE64/CEIL64 instead.
fn read_htb_options(options: &[u8], class: &mut ClassState) {
    if let Some(parameters) = attribute(options, TCA_HTB_PARMS) {
        let field = |offset| read::<u32>(parameters, offset).unwrap_or(0);
        class.rate = field(HTB_RATE_OFFSET).into();
        class.ceil = field(HTB_CEIL_OFFSET).into();
        class.quantum = field(HTB_QUANTUM_OFFSET);
    }
    if let Some(rate) = u64_attribute(options, TCA_HTB_RATE64) {
        class.rate = rate;
    }
    if let Some(ceil) = u64_attribute(options, TCA_HTB_CEIL64) {
        class.ceil = ceil;
    }
}

/// gnet_stats_basic holds bytes (u64) and packets (u32); newer kernels add
/// the packets as a u64 in TCA_STATS_PKT64.
fn parse_counters(stats: &[u8]) -> ClassCounters {
    let mut counters = ClassCounters::default();
    if let Some(basic) = attribute(stats, TCA_STATS_BASIC) {
        counters.bytes = read(basic, 0).unwrap_or(0);
        counters.packets = read::<u32>(basic, 8).unwrap_or(0).into();
    }
    if let Some(packets) = u64_attribute(stats, TCA_STATS_PKT64) {
        counters.packets = packets;
    }
    if let Some(queue) = attribute(stats, TCA_STATS_QUEUE) {
        let field = |offset| u64::from(read::<u32>(queue, offset).unwrap_or(0));
        counters.drops = field(QUEUE_DROPS_OFFSET);
        counters.overlimits = field(QUEUE_OVERLIMITS_OFFSET);
    }
    counters
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::tests::{encode_attribute, skip_unless_answered};

    fn htb_class(handle: u32, rate: u32, ceil: u32, bytes: u64, drops: u32) -> Vec<u8> {
        let mut payload = tcmsg(7).to_vec();
        payload[8..12].copy_from_slice(&handle.to_ne_bytes());
        payload[12..16].copy_from_slice(&0x0001_0001u32.to_ne_bytes());
        payload.extend(encode_attribute(TCA_KIND, b"htb\0"));
        let mut parameters = vec![0u8; 44];
        parameters[HTB_RATE_OFFSET..HTB_RATE_OFFSET + 4].copy_from_slice(&rate.to_ne_bytes());
        parameters[HTB_CEIL_OFFSET..HTB_CEIL_OFFSET + 4].copy_from_slice(&ceil.to_ne_bytes());
        parameters[HTB_QUANTUM_OFFSET..HTB_QUANTUM_OFFSET + 4]
            .copy_from_slice(&1514u32.to_ne_bytes());
        payload.extend(encode_attribute(
            TCA_OPTIONS | 0x8000,
            &encode_attribute(TCA_HTB_PARMS, &parameters),
        ));
        let mut basic = bytes.to_ne_bytes().to_vec();
        basic.extend_from_slice(&42u32.to_ne_bytes());
        basic.extend_from_slice(&[0; 4]);
        let mut queue = vec![0u8; 20];
        queue[QUEUE_DROPS_OFFSET..QUEUE_DROPS_OFFSET + 4].copy_from_slice(&drops.to_ne_bytes());
        queue[QUEUE_OVERLIMITS_OFFSET..QUEUE_OVERLIMITS_OFFSET + 4]
            .copy_from_slice(&9u32.to_ne_bytes());
        let mut stats = encode_attribute(TCA_STATS_BASIC, &basic);
        stats.extend(encode_attribute(TCA_STATS_QUEUE, &queue));
        payload.extend(encode_attribute(TCA_STATS2 | 0x8000, &stats));
        payload
    }

    #[test]
    fn reads_an_htb_class_with_its_counters() {
        let class = parse_class(&htb_class(0x0001_0010, 3_125_000, 5_000_000, 1 << 40, 3)).unwrap();
        assert_eq!(class.handle, Handle::new(1, 0x10));
        assert_eq!(class.parent, Handle::new(1, 1));
        assert_eq!(class.kind, "htb");
        assert_eq!(
            (class.rate, class.ceil, class.quantum),
            (3_125_000, 5_000_000, 1514)
        );
        let expected = ClassCounters {
            bytes: 1 << 40,
            packets: 42,
            drops: 3,
            overlimits: 9,
        };
        assert_eq!(class.counters, expected);
    }

    #[test]
    fn a_class_without_options_or_stats_reads_as_zero_not_an_error() {
        let mut payload = tcmsg(7).to_vec();
        payload.extend(encode_attribute(TCA_KIND, b"fq_codel\0"));
        let class = parse_class(&payload).unwrap();
        assert_eq!((class.kind.as_str(), class.rate), ("fq_codel", 0));
        assert!(parse_class(&payload[..10]).is_none());
    }

    #[test]
    fn the_loopback_link_reads_on_a_real_kernel() {
        // Every Linux host has `lo`; its state must read (an empty or
        // noqueue qdisc list), and an unknown interface must read as absent.
        let mut socket = NetlinkSocket::route();
        let Some(qdiscs) = skip_unless_answered(socket.qdiscs()) else {
            return;
        };
        assert!(socket.link_state("lo", &qdiscs).unwrap().is_some());
        assert_eq!(socket.link_state("qosd-nosuch0", &qdiscs).unwrap(), None);
    }
}
