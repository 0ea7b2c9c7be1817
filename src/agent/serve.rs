//! The daemon's loop: ticks, probes, PSI wake-ups, SIGHUP reloads and
//! status clients, until SIGTERM or SIGINT; systemd is told when it is
//! ready, alive and stopping.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info};

use super::wakeups::Sampled;
use super::{Agent, status};
use crate::metrics::WAKEUP_TICK;

/// The signals the daemon acts on.
pub(super) struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> std::io::Result<Self> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

impl Agent {
    pub(super) async fn serve_until_stopped(
        &mut self,
        mut signals: Signals,
        status: Option<status::StatusSocket>,
    ) {
        let (mut ticker, mut prober) = new_tickers(Instant::now(), self.config.agent.interval);
        self.start_wakeups();
        notify(&[NotifyState::Ready]);
        info!(
            "qosd running: {} tenants, tick {:?}, metrics on http://{}/metrics",
            self.tenants.len(),
            self.config.agent.interval,
            self.config.agent.metrics_listen
        );
        // A wake-up tick (`woken`, `released`) restarts the schedule from it,
        // so the rates of the next ticks span whole intervals, and no tick or
        // probe of the old schedule comes in between.
        loop {
            let pending = self.wakeups.pending_at();
            tokio::select! {
                _ = ticker.tick() => {
                    self.tick();
                    self.count_wakeup(WAKEUP_TICK);
                    if let Some(at) = self.released(Sampled::Tick) {
                        (ticker, prober) = new_tickers(at, self.config.agent.interval);
                    }
                    // Pinged from the loop itself: a hung tick means no ping,
                    // and systemd restarts us.
                    notify(&[NotifyState::Watchdog]);
                }
                _ = sleep_until(pending), if pending.is_some() => {
                    self.wakeup_tick();
                    notify(&[NotifyState::Watchdog]);
                }
                _ = prober.tick() => {
                    self.probe();
                    if let Some(at) = self.released(Sampled::Probe) {
                        (ticker, prober) = new_tickers(at, self.config.agent.interval);
                    }
                }
                id = self.wakeups.next() => {
                    if let Some(at) = self.woken(id) {
                        (ticker, prober) = new_tickers(at, self.config.agent.interval);
                    }
                }
                _ = signals.hangup.recv() => {
                    let interval = self.config.agent.interval;
                    self.reload();
                    if self.config.agent.interval != interval {
                        (ticker, prober) = new_tickers(Instant::now(), self.config.agent.interval);
                    }
                }
                client = async {
                    match &status {
                        Some(socket) => socket.accept().await,
                        None => std::future::pending().await,
                    }
                } => status::answer(client, &self.status_report()),
                _ = signals.terminate.recv() => break,
                _ = signals.interrupt.recv() => break,
            }
        }
        notify(&[NotifyState::Stopping]);
        for controller in &mut self.controllers {
            controller.stop(self.options.cleanup);
        }
        info!("qosd stopping; limits stay in place");
    }
}

/// The tick, and the probe halfway between two ticks (`Agent::probe`), on a
/// schedule that starts at `start`: the first tick comes one interval after
/// it (the caller has just ticked, or will tick then).
fn new_tickers(
    start: Instant,
    interval: Duration,
) -> (tokio::time::Interval, tokio::time::Interval) {
    let start = tokio::time::Instant::from_std(start);
    let every = |first: Duration| {
        let mut ticker = tokio::time::interval_at(start + first, interval);
        // After a slow tick, carry on at the normal pace rather than catching
        // up with a burst of ticks whose rates would be meaningless.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    };
    (every(interval), every(interval / 2))
}

/// Sleeps until `at`; `None` never comes (its branch is disabled anyway).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Tells systemd; a no-op when not run by systemd (NOTIFY_SOCKET unset).
fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        debug!("sd_notify failed: {error}");
    }
}
