//! Netlink, as qosd speaks it to the kernel: what every protocol shares
//! here (the message header, attributes, the error message, the socket
//! calls), and one module per protocol beside it:
//!
//! - [`route`]: a link's qdiscs and classes (rtnetlink), read every tick.
//! - [`netfilter`]: the nftables ruleset generation (nfnetlink).
//! - [`connector`]: process events (the proc connector), which the
//!   classifier follows.
//!
//! Each needs only a few fixed-layout structures, read and written here
//! directly.

pub mod connector;
pub mod netfilter;
pub mod route;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::sockopt::ReceiveTimeout;
use nix::sys::socket::{MsgFlags, NetlinkAddr, bind, recv, sendto, setsockopt};
use nix::sys::time::{TimeVal, TimeValLike};

/// struct nlmsghdr: length (u32), type (u16), flags (u16), sequence (u32),
/// port id (u32).
pub const HEADER_LEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_DUMP: u16 = 0x300;

/// Room for one datagram of replies or events.
const RECEIVE_BUFFER: usize = 64 * 1024;
/// The kernel always answers a request; if it ever did not, the tick must
/// fail rather than hang until the watchdog kills qosd.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a netlink socket of `protocol` (`NETLINK_ROUTE`, ...). Through
/// libc, as nix's `SockProtocol` lacks `NETLINK_CONNECTOR`; netlink treats
/// `SOCK_RAW` and `SOCK_DGRAM` alike.
pub fn open(protocol: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = Errno::result(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes a receive on `socket` give up (EAGAIN) after `timeout`.
pub fn set_receive_timeout(socket: &OwnedFd, timeout: Duration) -> Result<(), Errno> {
    let timeout = TimeVal::microseconds(timeout.as_micros() as i64);
    setsockopt(socket, ReceiveTimeout, &timeout)
}

/// Joins the multicast `groups`. Port 0: the kernel picks one (the
/// process's PID may be taken by another netlink socket of qosd).
pub fn join(socket: &OwnedFd, groups: u32) -> Result<(), Errno> {
    bind(socket.as_raw_fd(), &NetlinkAddr::new(0, groups))
}

/// Sends `message` to the kernel.
pub fn send(socket: &OwnedFd, message: &[u8]) -> Result<(), Errno> {
    let kernel = NetlinkAddr::new(0, 0);
    sendto(socket.as_raw_fd(), message, &kernel, MsgFlags::empty()).map(drop)
}

/// Receives one datagram into `buffer`; returns its length.
pub fn receive(socket: &OwnedFd, buffer: &mut [u8]) -> Result<usize, Errno> {
    recv(socket.as_raw_fd(), buffer, MsgFlags::empty())
}

/// One message: the header, then `body`.
pub fn encode_message(kind: u16, flags: u16, sequence: u32, body: &[u8]) -> Vec<u8> {
    let length = (HEADER_LEN + body.len()) as u32;
    let mut message = Vec::with_capacity(length as usize);
    message.extend_from_slice(&length.to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&sequence.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    message.extend_from_slice(body);
    message
}

/// What qosd reads of a message's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub sequence: u32,
}

/// The messages in one datagram, with their payloads, up to the first one
/// that is truncated or malformed.
pub fn messages(mut buffer: &[u8]) -> impl Iterator<Item = (Header, &[u8])> {
    std::iter::from_fn(move || {
        let length = read::<u32>(buffer, 0)? as usize;
        if length < HEADER_LEN || length > buffer.len() {
            return None;
        }
        let header = Header {
            kind: read(buffer, 4)?,
            sequence: read(buffer, 8)?,
        };
        let payload = &buffer[HEADER_LEN..length];
        buffer = buffer.get(align(length)..).unwrap_or(&[]);
        Some((header, payload))
    })
}

/// The errno of an NLMSG_ERROR message; `None` for an acknowledgement
/// (error 0).
pub fn error_of(payload: &[u8]) -> Option<Errno> {
    match read::<i32>(payload, 0).unwrap_or(0) {
        0 => None,
        negative => Some(Errno::from_raw(-negative)),
    }
}

/// The attributes (type, value) in `buffer`, nested ones left packed.
pub fn attributes(mut buffer: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let length = read::<u16>(buffer, 0)? as usize;
        if length < 4 || length > buffer.len() {
            return None;
        }
        // The top bits flag nesting and byte order; the type is the rest.
        let kind = read::<u16>(buffer, 2)? & 0x3FFF;
        let value = &buffer[4..length];
        buffer = buffer.get(align(length)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

/// The value of the first attribute of type `wanted`.
pub fn attribute(buffer: &[u8], wanted: u16) -> Option<&[u8]> {
    attributes(buffer)
        .find(|(kind, _)| *kind == wanted)
        .map(|(_, value)| value)
}

/// Messages and attributes start on 4-byte boundaries.
pub fn align(length: usize) -> usize {
    length.next_multiple_of(4)
}

/// An integer as netlink carries it: in the host's byte order.
pub trait NativeInteger: Sized {
    fn from_native(bytes: &[u8]) -> Option<Self>;
}

macro_rules! native_integers {
    ($($integer:ty),*) => {$(
        impl NativeInteger for $integer {
            fn from_native(bytes: &[u8]) -> Option<Self> {
                Some(<$integer>::from_ne_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}

native_integers!(u16, u32, i32, u64);

/// The integer at `offset` of `buffer`; `None` past its end.
pub fn read<T: NativeInteger>(buffer: &[u8], offset: usize) -> Option<T> {
    T::from_native(buffer.get(offset..offset + size_of::<T>())?)
}

/// Why a request to the kernel failed, by the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot open a netlink socket: {0}")]
    Open(Errno),
    #[error("cannot set the receive timeout of a netlink socket: {0}")]
    ReceiveTimeout(Errno),
    #[error("cannot send the request: {0}")]
    Send(Errno),
    #[error("cannot receive the reply: {0}")]
    Receive(Errno),
    #[error("the kernel refused the request: {0}")]
    Refused(Errno),
    #[error("the reply holds no {0}")]
    Incomplete(&'static str),
}

/// A socket for requests to the kernel in one protocol, opened on first
/// use. [`route`] and [`netfilter`] give it their requests.
pub struct NetlinkSocket {
    protocol: libc::c_int,
    socket: Option<OwnedFd>,
    sequence: u32,
    /// Kept between requests: a dump runs every tick for every link.
    buffer: Vec<u8>,
}

impl NetlinkSocket {
    /// For the requests of [`route`].
    pub fn route() -> Self {
        Self::new(libc::NETLINK_ROUTE)
    }

    /// For the requests of [`netfilter`].
    pub fn netfilter() -> Self {
        Self::new(libc::NETLINK_NETFILTER)
    }

    fn new(protocol: libc::c_int) -> Self {
        NetlinkSocket {
            protocol,
            socket: None,
            sequence: 0,
            buffer: vec![0; RECEIVE_BUFFER],
        }
    }

    /// Sends one request and returns the payloads of the replies (without
    /// their netlink headers), until the dump is done or, for a request
    /// that is not a dump, the first reply.
    fn request(
        &mut self,
        kind: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<Vec<Vec<u8>>, RequestError> {
        let socket = match self.socket.take() {
            Some(socket) => socket,
            None => open_for_requests(self.protocol)?,
        };
        let socket = self.socket.insert(socket);
        self.sequence = self.sequence.wrapping_add(1);
        let message = encode_message(kind, NLM_F_REQUEST | flags, self.sequence, body);
        send(socket, &message).map_err(RequestError::Send)?;
        let dump = flags & NLM_F_DUMP != 0;
        let mut replies = Vec::new();
        loop {
            let received = receive(socket, &mut self.buffer).map_err(RequestError::Receive)?;
            for (header, payload) in messages(&self.buffer[..received]) {
                if header.sequence != self.sequence {
                    continue; // a late answer to an earlier, failed request
                }
                match header.kind {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        return match error_of(payload) {
                            Some(errno) => Err(RequestError::Refused(errno)),
                            None => Ok(replies),
                        };
                    }
                    _ => replies.push(payload.to_vec()),
                }
                if !dump {
                    return Ok(replies);
                }
            }
        }
    }
}

fn open_for_requests(protocol: libc::c_int) -> Result<OwnedFd, RequestError> {
    let socket = open(protocol).map_err(RequestError::Open)?;
    set_receive_timeout(&socket, REQUEST_TIMEOUT).map_err(RequestError::ReceiveTimeout)?;
    Ok(socket)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An attribute as the kernel packs it: length, type, value, padding.
    pub fn encode_attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(value);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }

    /// The first answer of a test against the host's kernel; `None`, said
    /// as a skip, where netlink is unavailable (a sandbox).
    pub fn skip_unless_answered<T>(first: Result<T, RequestError>) -> Option<T> {
        first
            .inspect_err(|error| eprintln!("skipped: netlink unavailable here: {error}"))
            .ok()
    }

    #[test]
    fn walks_every_message_of_a_datagram_and_stops_at_a_truncated_one() {
        let mut datagram = encode_message(40, 0, 5, &[1; 21]);
        datagram.resize(align(datagram.len()), 0);
        datagram.extend(encode_message(NLMSG_DONE, 0, 5, &[0; 4]));
        let kinds: Vec<u16> = messages(&datagram).map(|(header, _)| header.kind).collect();
        assert_eq!(kinds, [40, NLMSG_DONE]);
        let payloads: Vec<usize> = messages(&datagram)
            .map(|(_, payload)| payload.len())
            .collect();
        assert_eq!(payloads, [21, 4], "padding is no part of a payload");
        let truncated = &datagram[..datagram.len() - 2];
        assert_eq!(messages(truncated).count(), 1);
    }

    #[test]
    fn finds_an_attribute_past_others_and_masks_the_nesting_flag() {
        let mut attributes = encode_attribute(1, b"htb\0");
        attributes.extend(encode_attribute(2 | 0x8000, &[7; 5]));
        attributes.extend(encode_attribute(3, &[9; 4]));
        assert_eq!(attribute(&attributes, 2), Some(&[7u8; 5][..]));
        assert_eq!(attribute(&attributes, 3), Some(&[9u8; 4][..]));
        assert_eq!(attribute(&attributes, 4), None);
        assert_eq!(attribute(&attributes[..attributes.len() - 1], 3), None);
    }

    #[test]
    fn an_error_message_carries_a_negative_errno_and_zero_acknowledges() {
        assert_eq!(
            error_of(&(-(Errno::EPERM as i32)).to_ne_bytes()),
            Some(Errno::EPERM)
        );
        assert_eq!(error_of(&0i32.to_ne_bytes()), None);
    }

    #[test]
    fn integers_read_in_the_hosts_byte_order_and_not_past_the_end() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(read::<u16>(&bytes, 6), Some(u16::from_ne_bytes([7, 8])));
        assert_eq!(read::<u64>(&bytes, 0), Some(u64::from_ne_bytes(bytes)));
        assert_eq!(read::<u32>(&bytes, 5), None);
    }
}
