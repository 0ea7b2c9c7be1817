//! What classification did over the agent's life, for its metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters shared by every classifier of an agent's life (they outlive a
/// reload) and the event listener. The agent exports `moves` as
/// `qosd_classification_moves_total`.
#[derive(Debug, Default)]
pub struct Counters {
    moves: AtomicU64,
    vanished: AtomicU64,
    events: AtomicU64,
    events_lost: AtomicU64,
    rescan_wanted: AtomicBool,
}

impl Counters {
    /// Processes moved into a tenant's group.
    pub fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }

    /// Processes that exited while being read or moved.
    pub fn vanished(&self) -> u64 {
        self.vanished.load(Ordering::Relaxed)
    }

    /// Proc connector events received.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Times the kernel dropped proc connector events (socket overrun).
    pub fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }

    /// True once after events were lost: the agent should rescan /proc.
    pub fn take_rescan_request(&self) -> bool {
        self.rescan_wanted.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn request_rescan(&self) {
        self.events_lost.fetch_add(1, Ordering::Relaxed);
        self.rescan_wanted.store(true, Ordering::Relaxed);
    }

    pub(super) fn count_move(&self) {
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_vanished(&self) {
        self.vanished.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }
}
