//! Reads a link's qdiscs and classes (rtnetlink) and the nftables ruleset
//! generation (nfnetlink) straight from the kernel: one request each, no
//! process started, so a tick that finds nothing changed runs no `tc` or
//! `nft` at all. Writing stays with `tc` and `nft` (see `shaper`), which know
//! how to build HTB classes and nftables rules; reading needs only a few
//! fixed-layout structures.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::sockopt::ReceiveTimeout;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket,
};
use nix::sys::time::TimeVal;

use super::types::{ClassCounters, ClassState, Handle, LinkState, QdiscState};

const NLMSG_HEADER_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;

const RTM_GETQDISC: u16 = 38;
const RTM_GETTCLASS: u16 = 42;
/// struct tcmsg: family, 3 bytes of padding, ifindex, handle, parent, info.
const TCMSG_LEN: usize = 20;
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

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
/// struct nfgenmsg: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

const RECEIVE_BUFFER: usize = 64 * 1024;
const RECEIVE_TIMEOUT_SECONDS: i64 = 2;

/// A netlink socket of one protocol, opened on first use.
pub struct NetlinkSocket {
    protocol: SockProtocol,
    socket: Option<OwnedFd>,
    sequence: u32,
}

impl NetlinkSocket {
    pub fn route() -> Self {
        Self::new(SockProtocol::NetlinkRoute)
    }

    pub fn netfilter() -> Self {
        Self::new(SockProtocol::NetlinkNetFilter)
    }

    fn new(protocol: SockProtocol) -> Self {
        NetlinkSocket {
            protocol,
            socket: None,
            sequence: 0,
        }
    }

    /// Sends one request and returns the payloads of the replies (without
    /// their netlink headers) of the given type, until the dump is done or,
    /// for a request that is not a dump, the first reply.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let fd = self.open()?;
        self.sequence = self.sequence.wrapping_add(1);
        let message = encode_message(kind, NLM_F_REQUEST | flags, self.sequence, body);
        sendto(fd, &message, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
        let dump = flags & NLM_F_DUMP != 0;
        let mut replies = Vec::new();
        let mut buffer = vec![0u8; RECEIVE_BUFFER];
        loop {
            let received = recv(fd, &mut buffer, MsgFlags::empty())?;
            for (header, payload) in messages(&buffer[..received]) {
                if header.sequence != self.sequence {
                    continue; // a late answer to an earlier, failed request
                }
                match header.kind {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let errno = read_i32(payload, 0).unwrap_or(0);
                        if errno != 0 {
                            return Err(io::Error::from_raw_os_error(-errno));
                        }
                        return Ok(replies);
                    }
                    _ => replies.push(payload.to_vec()),
                }
                if !dump {
                    return Ok(replies);
                }
            }
        }
    }

    fn open(&mut self) -> io::Result<i32> {
        if self.socket.is_none() {
            let socket = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                self.protocol,
            )?;
            // The kernel always answers; if it ever did not, the tick must
            // fail rather than hang until the watchdog kills qosd.
            let timeout = TimeVal::new(RECEIVE_TIMEOUT_SECONDS, 0);
            setsockopt(&socket, ReceiveTimeout, &timeout)?;
            self.socket = Some(socket);
        }
        Ok(self.socket.as_ref().map_or(-1, |socket| socket.as_raw_fd()))
    }

    /// Every qdisc of every interface, with its interface index: the kernel
    /// dumps them all whatever the request names, so one dump serves all
    /// links.
    pub fn qdiscs(&mut self) -> io::Result<Vec<(u32, QdiscState)>> {
        let replies = self.request(RTM_GETQDISC, NLM_F_DUMP, &tcmsg(0))?;
        Ok(replies
            .iter()
            .filter_map(|payload| Some((read_i32(payload, 4)? as u32, parse_qdisc(payload)?)))
            .collect())
    }

    /// The classes on `interface` with its qdiscs (picked from `qdiscs`),
    /// or `None` if there is no such interface.
    pub fn link_state(
        &mut self,
        interface: &str,
        qdiscs: &[(u32, QdiscState)],
    ) -> io::Result<Option<LinkState>> {
        let Some(index) = interface_index(interface) else {
            return Ok(None);
        };
        let classes = self.request(RTM_GETTCLASS, NLM_F_DUMP, &tcmsg(index))?;
        let on_link = |payload: &&Vec<u8>| read_i32(payload, 4) == Some(index as i32);
        Ok(Some(LinkState {
            qdiscs: qdiscs
                .iter()
                .filter(|(on, _)| *on == index)
                .map(|(_, qdisc)| qdisc.clone())
                .collect(),
            classes: classes
                .iter()
                .filter(on_link)
                .filter_map(|p| parse_class(p))
                .collect(),
        }))
    }

    /// The nftables ruleset generation: it changes whenever any table of any
    /// program changes, so an unchanged value means our table is as we left it.
    pub fn nftables_generation(&mut self) -> io::Result<u32> {
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
        let replies = self.request(kind, 0, &[0u8; NFGENMSG_LEN])?;
        replies
            .first()
            .and_then(|payload| {
                attributes(payload.get(NFGENMSG_LEN..)?).find(|(kind, _)| *kind == NFTA_GEN_ID)
            })
            .and_then(|(_, value)| value.get(..4))
            .map(|bytes| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no generation in the reply"))
    }
}

fn interface_index(interface: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(interface).ok()
}

fn encode_message(kind: u16, flags: u16, sequence: u32, body: &[u8]) -> Vec<u8> {
    let length = (NLMSG_HEADER_LEN + body.len()) as u32;
    let mut message = Vec::with_capacity(length as usize);
    message.extend_from_slice(&length.to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&sequence.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    message.extend_from_slice(body);
    message
}

fn tcmsg(index: u32) -> [u8; TCMSG_LEN] {
    let mut message = [0u8; TCMSG_LEN];
    message[0] = nix::libc::AF_UNSPEC as u8;
    message[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    message
}

struct MessageHeader {
    kind: u16,
    sequence: u32,
}

/// The messages in one datagram, with their payloads.
fn messages(mut buffer: &[u8]) -> impl Iterator<Item = (MessageHeader, &[u8])> {
    std::iter::from_fn(move || {
        let length = read_u32(buffer, 0)? as usize;
        if length < NLMSG_HEADER_LEN || length > buffer.len() {
            return None;
        }
        let header = MessageHeader {
            kind: read_u16(buffer, 4)?,
            sequence: read_u32(buffer, 8)?,
        };
        let payload = &buffer[NLMSG_HEADER_LEN..length];
        buffer = buffer.get(align(length)..).unwrap_or(&[]);
        Some((header, payload))
    })
}

/// The attributes (type, value) in `buffer`, nested ones left packed.
fn attributes(mut buffer: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let length = read_u16(buffer, 0)? as usize;
        if length < 4 || length > buffer.len() {
            return None;
        }
        // The top bits flag nesting and byte order; the type is the rest.
        let kind = read_u16(buffer, 2)? & 0x3FFF;
        let value = &buffer[4..length];
        buffer = buffer.get(align(length)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

fn attribute(buffer: &[u8], wanted: u16) -> Option<&[u8]> {
    attributes(buffer)
        .find(|(kind, _)| *kind == wanted)
        .map(|(_, value)| value)
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn parse_qdisc(payload: &[u8]) -> Option<QdiscState> {
    let attributes = payload.get(TCMSG_LEN..)?;
    Some(QdiscState {
        handle: Handle(read_u32(payload, 8)?),
        parent: Handle(read_u32(payload, 12)?),
        kind: kind(attributes),
    })
}

fn parse_class(payload: &[u8]) -> Option<ClassState> {
    let attributes = payload.get(TCMSG_LEN..)?;
    let kind = kind(attributes);
    let mut class = ClassState {
        handle: Handle(read_u32(payload, 8)?),
        parent: Handle(read_u32(payload, 12)?),
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

/// Rates above 4 GiB/s do not fit the u32 of tc_ratespec and come in
/// TCA_HTB_RATE64/CEIL64 instead.
fn read_htb_options(options: &[u8], class: &mut ClassState) {
    if let Some(parameters) = attribute(options, TCA_HTB_PARMS) {
        class.rate = read_u32(parameters, HTB_RATE_OFFSET).unwrap_or(0).into();
        class.ceil = read_u32(parameters, HTB_CEIL_OFFSET).unwrap_or(0).into();
        class.quantum = read_u32(parameters, HTB_QUANTUM_OFFSET).unwrap_or(0);
    }
    if let Some(rate) = attribute(options, TCA_HTB_RATE64).and_then(|value| read_u64(value, 0)) {
        class.rate = rate;
    }
    if let Some(ceil) = attribute(options, TCA_HTB_CEIL64).and_then(|value| read_u64(value, 0)) {
        class.ceil = ceil;
    }
}

/// gnet_stats_basic holds bytes (u64) and packets (u32); newer kernels add
/// the packets as a u64 in TCA_STATS_PKT64.
fn parse_counters(stats: &[u8]) -> ClassCounters {
    let mut counters = ClassCounters::default();
    if let Some(basic) = attribute(stats, TCA_STATS_BASIC) {
        counters.bytes = read_u64(basic, 0).unwrap_or(0);
        counters.packets = read_u32(basic, 8).unwrap_or(0).into();
    }
    if let Some(packets) = attribute(stats, TCA_STATS_PKT64).and_then(|value| read_u64(value, 0)) {
        counters.packets = packets;
    }
    if let Some(queue) = attribute(stats, TCA_STATS_QUEUE) {
        counters.drops = read_u32(queue, QUEUE_DROPS_OFFSET).unwrap_or(0).into();
        counters.overlimits = read_u32(queue, QUEUE_OVERLIMITS_OFFSET).unwrap_or(0).into();
    }
    counters
}

fn read_u16(buffer: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        buffer.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn read_u32(buffer: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        buffer.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

fn read_i32(buffer: &[u8], offset: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(
        buffer.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

fn read_u64(buffer: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(
        buffer.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(value);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }

    fn htb_class(handle: u32, rate: u32, ceil: u32, bytes: u64, drops: u32) -> Vec<u8> {
        let mut payload = tcmsg(7).to_vec();
        payload[8..12].copy_from_slice(&handle.to_ne_bytes());
        payload[12..16].copy_from_slice(&0x0001_0001u32.to_ne_bytes());
        payload.extend(attr(TCA_KIND, b"htb\0"));
        let mut parameters = vec![0u8; 44];
        parameters[HTB_RATE_OFFSET..HTB_RATE_OFFSET + 4].copy_from_slice(&rate.to_ne_bytes());
        parameters[HTB_CEIL_OFFSET..HTB_CEIL_OFFSET + 4].copy_from_slice(&ceil.to_ne_bytes());
        parameters[HTB_QUANTUM_OFFSET..HTB_QUANTUM_OFFSET + 4]
            .copy_from_slice(&1514u32.to_ne_bytes());
        payload.extend(attr(
            TCA_OPTIONS | 0x8000,
            &attr(TCA_HTB_PARMS, &parameters),
        ));
        let mut basic = bytes.to_ne_bytes().to_vec();
        basic.extend_from_slice(&42u32.to_ne_bytes());
        basic.extend_from_slice(&[0; 4]);
        let mut queue = vec![0u8; 20];
        queue[QUEUE_DROPS_OFFSET..QUEUE_DROPS_OFFSET + 4].copy_from_slice(&drops.to_ne_bytes());
        queue[QUEUE_OVERLIMITS_OFFSET..QUEUE_OVERLIMITS_OFFSET + 4]
            .copy_from_slice(&9u32.to_ne_bytes());
        let mut stats = attr(TCA_STATS_BASIC, &basic);
        stats.extend(attr(TCA_STATS_QUEUE, &queue));
        payload.extend(attr(TCA_STATS2 | 0x8000, &stats));
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
    fn walks_every_message_of_a_datagram_and_stops_at_a_truncated_one() {
        let mut datagram = encode_message(40, 0, 5, &htb_class(0x0001_0010, 1, 2, 3, 4));
        datagram.extend(encode_message(NLMSG_DONE, 0, 5, &[0; 4]));
        let kinds: Vec<u16> = messages(&datagram).map(|(header, _)| header.kind).collect();
        assert_eq!(kinds, [40, NLMSG_DONE]);
        let truncated = &datagram[..datagram.len() - 2];
        assert_eq!(messages(truncated).count(), 1);
    }

    #[test]
    fn a_class_without_options_or_stats_reads_as_zero_not_an_error() {
        let mut payload = tcmsg(7).to_vec();
        payload.extend(attr(TCA_KIND, b"fq_codel\0"));
        let class = parse_class(&payload).unwrap();
        assert_eq!((class.kind.as_str(), class.rate), ("fq_codel", 0));
        assert!(parse_class(&payload[..10]).is_none());
    }

    #[test]
    fn the_loopback_link_reads_on_a_real_kernel() {
        // Every Linux host has `lo`; its state must read (an empty or
        // noqueue qdisc list), and an unknown interface must read as absent.
        let mut socket = NetlinkSocket::route();
        let qdiscs = match socket.qdiscs() {
            Ok(qdiscs) => qdiscs,
            Err(error) => return eprintln!("netlink unavailable here: {error}"),
        };
        assert!(socket.link_state("lo", &qdiscs).unwrap().is_some());
        assert_eq!(socket.link_state("qosd-nosuch0", &qdiscs).unwrap(), None);
    }
}
