//! The netlink proc connector: the kernel multicasts an event for every
//! fork, exec, uid/gid change, comm change and exit (as libcgroup's
//! cgrulesengd uses it). [`ProcEvents`] subscribes and decodes them;
//! `classify::events` acts on them.
//!
//! The connector needs CAP_NET_ADMIN, a kernel with CONFIG_PROC_EVENTS, and
//! qosd in the initial PID and user namespaces (the kernel reports PIDs of
//! the initial namespace and ignores subscriptions from others). Opening it
//! checks all of that: the kernel acknowledges a subscription it accepts.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::RcvBuf;

use super::{NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, encode_message, messages, read};

/// include/uapi/linux/connector.h: the proc connector's id and group.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// struct cn_msg: id {idx, val}, seq, ack, len (u16), flags (u16).
const CN_MSG_LEN: usize = 20;
const CN_MSG_ACK_OFFSET: usize = 12;
const CN_MSG_DATA_LEN_OFFSET: usize = 16;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;

/// struct proc_event: what, cpu, timestamp_ns, then the event's union.
const EVENT_DATA: usize = 16;
const PROC_EVENT_NONE: u32 = 0x0;
const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_UID: u32 = 0x4;
const PROC_EVENT_GID: u32 = 0x40;
const PROC_EVENT_COMM: u32 = 0x200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// How long the kernel has to acknowledge the subscription.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a blocked receive wakes up, so its caller can see whether it
/// should stop.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Room for a burst of events (a fork bomb sends three per process, each
/// taking about 1 KiB of socket memory). Forced past rmem_max when
/// CAP_NET_ADMIN allows.
const RECEIVE_BUFFER_BYTES: usize = 8 << 20;

/// Why the proc connector cannot be used; the agent then falls back to
/// periodic rescans of /proc.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(
        "cannot open a netlink proc connector socket: {0} (a kernel without \
         CONFIG_CONNECTOR, or qosd outside the initial network namespace)"
    )]
    Socket(Errno),
    #[error(
        "cannot join the proc connector's multicast group: {0} \
         (qosd needs CAP_NET_ADMIN)"
    )]
    Bind(Errno),
    #[error("cannot subscribe to process events: {0}")]
    Subscribe(Errno),
    #[error(
        "the kernel refused the subscription to process events: {0} \
         (qosd needs CAP_NET_ADMIN in the initial user namespace)"
    )]
    Refused(Errno),
    #[error(
        "the kernel did not acknowledge the subscription to process events within {ACK_TIMEOUT:?}: \
         the kernel lacks CONFIG_PROC_EVENTS, or qosd runs outside the initial PID or user \
         namespace (a container), where the proc connector reports nothing"
    )]
    NoAck,
}

/// One event of interest. PIDs are those of the initial PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        tgid: u32,
    },
    Uid {
        tgid: u32,
    },
    Gid {
        tgid: u32,
    },
    Comm {
        tgid: u32,
    },
    Exit {
        pid: u32,
        tgid: u32,
    },
    /// An acknowledgement of a (un)subscription: the `ack` field of the
    /// request plus one (the kernel numbers `seq` itself), and the kernel's
    /// errno (0: accepted).
    Ack {
        ack: u32,
        errno: u32,
    },
    Other {
        what: u32,
    },
}

impl ProcEvent {
    /// The process to classify at once, if any.
    pub fn changed_process(&self) -> Option<u32> {
        match *self {
            ProcEvent::Exec { tgid }
            | ProcEvent::Uid { tgid }
            | ProcEvent::Gid { tgid }
            | ProcEvent::Comm { tgid } => Some(tgid),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The socket overran (ENOBUFS): events were lost, rescan /proc.
    #[error("process events were lost: the socket's receive buffer overran")]
    Overrun,
    #[error("cannot receive process events: {0}")]
    Io(Errno),
}

/// A subscription to the proc connector. Dropping it unsubscribes.
#[derive(Debug)]
pub struct ProcEvents {
    socket: OwnedFd,
    buffer: Vec<u8>,
    sequence: u32,
}

impl ProcEvents {
    /// Opens the socket, joins the proc connector's group, subscribes and
    /// waits for the kernel's acknowledgement.
    pub fn open() -> Result<Self, ConnectorError> {
        let socket = super::open(libc::NETLINK_CONNECTOR).map_err(ConnectorError::Socket)?;
        super::join(&socket, CN_IDX_PROC).map_err(ConnectorError::Bind)?;
        set_receive_buffer(&socket);
        super::set_receive_timeout(&socket, POLL_INTERVAL).map_err(ConnectorError::Subscribe)?;
        let mut events = ProcEvents {
            socket,
            buffer: vec![0; super::RECEIVE_BUFFER],
            // Tells our acknowledgement apart from another listener's.
            sequence: std::process::id().rotate_left(16),
        };
        let seq = events
            .send_operation(PROC_CN_MCAST_LISTEN)
            .map_err(ConnectorError::Subscribe)?;
        events.wait_for_ack(seq)?;
        Ok(events)
    }

    fn wait_for_ack(&mut self, seq: u32) -> Result<(), ConnectorError> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        while Instant::now() < deadline {
            let events = match self.receive() {
                Ok(events) => events,
                Err(ReceiveError::Overrun) => continue,
                Err(ReceiveError::Io(errno)) => return Err(ConnectorError::Subscribe(errno)),
            };
            for event in events {
                match event {
                    ProcEvent::Ack { ack, errno } if ack == seq.wrapping_add(1) => {
                        return match errno {
                            0 => Ok(()),
                            errno => Err(ConnectorError::Refused(Errno::from_raw(errno as i32))),
                        };
                    }
                    _ => {}
                }
            }
        }
        Err(ConnectorError::NoAck)
    }

    /// Sends PROC_CN_MCAST_LISTEN or _IGNORE; returns the message's sequence.
    fn send_operation(&mut self, operation: u32) -> Result<u32, Errno> {
        self.sequence = self.sequence.wrapping_add(1);
        super::send(&self.socket, &encode_operation(self.sequence, operation))?;
        Ok(self.sequence)
    }

    /// The events of one datagram; empty after [`POLL_INTERVAL`] without any.
    pub fn receive(&mut self) -> Result<Vec<ProcEvent>, ReceiveError> {
        match super::receive(&self.socket, &mut self.buffer) {
            Ok(length) => Ok(parse_datagram(&self.buffer[..length])),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(Vec::new()),
            Err(Errno::ENOBUFS) => Err(ReceiveError::Overrun),
            Err(errno) => Err(ReceiveError::Io(errno)),
        }
    }
}

impl Drop for ProcEvents {
    fn drop(&mut self) {
        // Kernels before 6.6 count listeners globally: give ours back.
        let _ = self.send_operation(PROC_CN_MCAST_IGNORE);
    }
}

/// SO_RCVBUFFORCE (past net.core.rmem_max, with CAP_NET_ADMIN), else
/// SO_RCVBUF up to rmem_max.
fn set_receive_buffer(socket: &OwnedFd) {
    let size = RECEIVE_BUFFER_BYTES as libc::c_int;
    // SAFETY: a c_int option value of the right size.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        let _ = setsockopt(socket, RcvBuf, &RECEIVE_BUFFER_BYTES);
    }
}

/// A cn_msg to the proc connector holding `data`.
fn encode_cn_msg(seq: u32, data: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(CN_MSG_LEN + data.len());
    message.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    message.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    message.extend_from_slice(&seq.to_ne_bytes());
    // Echoed plus one in the acknowledgement: tells ours from another's.
    message.extend_from_slice(&seq.to_ne_bytes());
    message.extend_from_slice(&(data.len() as u16).to_ne_bytes());
    message.extend_from_slice(&0u16.to_ne_bytes()); // flags
    message.extend_from_slice(data);
    message
}

/// A netlink message of a cn_msg holding the u32 `operation`.
fn encode_operation(seq: u32, operation: u32) -> Vec<u8> {
    encode_message(
        NLMSG_DONE,
        0,
        seq,
        &encode_cn_msg(seq, &operation.to_ne_bytes()),
    )
}

/// Every proc connector event in one datagram (usually one); anything
/// malformed or from another connector is skipped.
pub fn parse_datagram(datagram: &[u8]) -> Vec<ProcEvent> {
    messages(datagram)
        .filter(|(header, _)| header.kind != NLMSG_NOOP && header.kind != NLMSG_ERROR)
        .filter_map(|(_, message)| parse_cn_msg(message))
        .collect()
}

fn parse_cn_msg(message: &[u8]) -> Option<ProcEvent> {
    if read::<u32>(message, 0)? != CN_IDX_PROC || read::<u32>(message, 4)? != CN_VAL_PROC {
        return None;
    }
    let ack = read(message, CN_MSG_ACK_OFFSET)?;
    let length = read::<u16>(message, CN_MSG_DATA_LEN_OFFSET)? as usize;
    let data = message.get(CN_MSG_LEN..CN_MSG_LEN + length)?;
    let what = read(data, 0)?;
    let field = |index: usize| read(data, EVENT_DATA + 4 * index);
    Some(match what {
        PROC_EVENT_NONE => ProcEvent::Ack {
            ack,
            errno: field(0)?,
        },
        PROC_EVENT_FORK => ProcEvent::Fork {
            parent_tgid: field(1)?,
            child_pid: field(2)?,
            child_tgid: field(3)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec { tgid: field(1)? },
        PROC_EVENT_UID => ProcEvent::Uid { tgid: field(1)? },
        PROC_EVENT_GID => ProcEvent::Gid { tgid: field(1)? },
        PROC_EVENT_COMM => ProcEvent::Comm { tgid: field(1)? },
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: field(0)?,
            tgid: field(1)?,
        },
        what => ProcEvent::Other { what },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::HEADER_LEN;

    /// A datagram of one event as the kernel sends it: a proc_event (what,
    /// cpu, timestamp, then `fields`) in a cn_msg in a netlink message.
    fn event_datagram(what: u32, seq: u32, fields: &[u32]) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(&what.to_ne_bytes());
        data.extend_from_slice(&3u32.to_ne_bytes()); // cpu
        data.extend_from_slice(&123_456u64.to_ne_bytes());
        for field in fields {
            data.extend_from_slice(&field.to_ne_bytes());
        }
        encode_message(NLMSG_DONE, 0, seq, &encode_cn_msg(seq, &data))
    }

    #[test]
    fn parses_the_events_we_act_on() {
        let exec = event_datagram(PROC_EVENT_EXEC, 0, &[201, 200]);
        assert_eq!(parse_datagram(&exec), [ProcEvent::Exec { tgid: 200 }]);
        let fork = event_datagram(PROC_EVENT_FORK, 0, &[10, 10, 11, 11]);
        assert_eq!(
            parse_datagram(&fork),
            [ProcEvent::Fork {
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 11
            }]
        );
        let uid = event_datagram(PROC_EVENT_UID, 0, &[5, 5, 1001, 1001]);
        let gid = event_datagram(PROC_EVENT_GID, 0, &[6, 6, 50, 50]);
        let mut comm_fields = vec![8, 7];
        comm_fields.extend([0x6c6c6568u32, 0x6f, 0, 0]);
        let comm = event_datagram(PROC_EVENT_COMM, 0, &comm_fields);
        let both: Vec<u8> = [uid, gid].concat();
        assert_eq!(
            parse_datagram(&both),
            [ProcEvent::Uid { tgid: 5 }, ProcEvent::Gid { tgid: 6 }]
        );
        assert_eq!(parse_datagram(&comm), [ProcEvent::Comm { tgid: 7 }]);
        assert_eq!(
            ProcEvent::Comm { tgid: 7 }.changed_process(),
            Some(7),
            "comm changes are classified"
        );
        let ack = event_datagram(PROC_EVENT_NONE, 77, &[1]);
        assert_eq!(parse_datagram(&ack), [ProcEvent::Ack { ack: 77, errno: 1 }]);
        let exit = event_datagram(PROC_EVENT_EXIT, 0, &[9, 9, 0, 17, 1, 1]);
        assert_eq!(parse_datagram(&exit), [ProcEvent::Exit { pid: 9, tgid: 9 }]);
        assert_eq!(ProcEvent::Exit { pid: 9, tgid: 9 }.changed_process(), None);
    }

    #[test]
    fn truncated_or_foreign_messages_are_skipped() {
        let exec = event_datagram(PROC_EVENT_EXEC, 0, &[201, 200]);
        assert!(parse_datagram(&exec[..exec.len() - 2]).is_empty());
        assert!(parse_datagram(&exec[..10]).is_empty());
        let mut foreign = exec.clone();
        foreign[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&7u32.to_ne_bytes());
        assert!(parse_datagram(&foreign).is_empty());
        // A cn_msg claiming more data than the message holds.
        let mut short = event_datagram(PROC_EVENT_EXEC, 0, &[1]);
        let data_length = HEADER_LEN + CN_MSG_DATA_LEN_OFFSET;
        short[data_length..data_length + 2].copy_from_slice(&64u16.to_ne_bytes());
        assert!(parse_datagram(&short).is_empty());
    }

    #[test]
    fn the_subscription_message_is_a_cn_msg_with_one_operation() {
        let message = encode_operation(9, PROC_CN_MCAST_LISTEN);
        assert_eq!(message.len(), 40);
        assert_eq!(read::<u32>(&message, 0), Some(40));
        assert_eq!(read::<u16>(&message, 4), Some(NLMSG_DONE));
        assert_eq!(read::<u32>(&message, 16), Some(CN_IDX_PROC));
        assert_eq!(read::<u32>(&message, 20), Some(CN_VAL_PROC));
        assert_eq!(read::<u32>(&message, 24), Some(9));
        assert_eq!(read::<u32>(&message, 28), Some(9), "ack, echoed plus one");
        assert_eq!(read::<u16>(&message, 32), Some(4));
        assert_eq!(read::<u32>(&message, 36), Some(PROC_CN_MCAST_LISTEN));
    }

    /// On a host where qosd may use the connector (root, initial
    /// namespaces), an exec of /bin/true is seen. Elsewhere: skipped.
    #[test]
    fn sees_the_exec_of_a_child_when_permitted() {
        let mut events = match ProcEvents::open() {
            Ok(events) => events,
            Err(error) => {
                eprintln!("skipped: proc connector unavailable here: {error}");
                return;
            }
        };
        let start = Instant::now();
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        let mut seen = None;
        while seen.is_none() && start.elapsed() < Duration::from_secs(5) {
            let received = events.receive().unwrap();
            if received.contains(&ProcEvent::Exec { tgid: pid }) {
                seen = Some(start.elapsed());
            }
        }
        let mut child = child;
        child.wait().unwrap();
        let latency = seen.expect("exec event of /bin/true within 5 s");
        eprintln!("exec event of pid {pid} after {latency:?}");
    }
}
