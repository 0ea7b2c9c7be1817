//! Tenants made of processes (`match = [...]`) in the agent: the classifier
//! in force, the proc connector listener that moves a new or re-exec'd
//! process at once, and the rescans of /proc that cover everything else (at
//! start-up, after lost events, and often when there is no connector).

use std::sync::{Arc, PoisonError, RwLock};

use tracing::{debug, info, warn};

use super::Agent;
use crate::classify::events::{self, Listener};
use crate::classify::{Classifier, Counters};
use crate::config::Config;
use crate::procfs::ProcFs;

/// With the proc connector, events move processes; a rescan now and then
/// only catches what no event announced (a process that changed its
/// command line in place, say).
const RESCAN_TICKS_WITH_EVENTS: u64 = 60;
/// Without it, rescans are the only way processes are found.
const RESCAN_TICKS_WITHOUT_EVENTS: u64 = 2;

pub(super) struct Classification {
    classifier: Arc<RwLock<Classifier>>,
    counters: Arc<Counters>,
    listener: Option<Listener>,
    /// Ticks until the next rescan (0: rescan now).
    rescan_in: u64,
    moves_exported: u64,
}

impl Classification {
    pub fn new(agent_config: &Config, hierarchy: &crate::cgroup::Hierarchy) -> Self {
        let counters = Arc::new(Counters::default());
        let classifier =
            Classifier::new(hierarchy.clone(), &agent_config.tenants, counters.clone());
        Classification {
            classifier: Arc::new(RwLock::new(classifier)),
            counters,
            listener: None,
            rescan_in: 0,
            moves_exported: 0,
        }
    }

    /// Follows new processes with the proc connector, if this host lets us;
    /// says plainly when it does not, and rescans more often instead.
    pub fn listen(&mut self, proc: &ProcFs) {
        if self.listener.is_some() || !self.active() {
            return;
        }
        match events::spawn_listener(self.classifier.clone(), proc.clone()) {
            Ok(listener) => {
                info!("following new processes with the proc connector");
                self.listener = Some(listener);
            }
            Err(error) => warn!(
                "cannot follow new processes with the proc connector ({error}); \
                 finding them by rescanning /proc every {RESCAN_TICKS_WITHOUT_EVENTS} ticks instead"
            ),
        }
    }

    /// A new configuration: a new classifier (the listener picks it up),
    /// and a rescan at the next tick.
    pub fn reloaded(
        &mut self,
        config: &Config,
        hierarchy: &crate::cgroup::Hierarchy,
        proc: &ProcFs,
    ) {
        let classifier = Classifier::new(hierarchy.clone(), &config.tenants, self.counters.clone());
        *self
            .classifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = classifier;
        self.rescan_in = 0;
        self.listen(proc);
    }

    fn active(&self) -> bool {
        self.classifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_active()
    }
}

impl Agent {
    /// Rescans /proc when due, and exports the moves and the tenants'
    /// process counts.
    pub(super) fn control_classification(&mut self) {
        let classification = &mut self.classification;
        // A dry run moves nothing (it only counts what is where).
        if classification.active() && !self.options.dry_run {
            let lost_events = classification.counters.take_rescan_request();
            if classification.rescan_in == 0 || lost_events {
                let classifier = classification
                    .classifier
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                match classifier.rescan(&self.proc) {
                    Ok(report) => {
                        debug!("rescanned /proc: {report:?}");
                        self.metrics.classification_rescans.inc();
                        let seconds = report.elapsed.as_secs_f64();
                        self.metrics.classification_rescan_seconds.inc_by(seconds);
                    }
                    Err(error) => warn!("cannot rescan /proc: {error}"),
                }
                classification.rescan_in = match classification.listener {
                    Some(_) => RESCAN_TICKS_WITH_EVENTS,
                    None => RESCAN_TICKS_WITHOUT_EVENTS,
                };
            }
            classification.rescan_in -= 1;
        }
        let moves = classification.counters.moves();
        let new_moves = moves - classification.moves_exported.min(moves);
        classification.moves_exported = moves;
        self.metrics.classification_moves.inc_by(new_moves);
        // Only tenants made of processes: reading every group's cgroup.procs
        // each tick would cost a third of a 100-tenant tick.
        let matched = self
            .tenants
            .iter()
            .filter(|t| t.ready && !t.tenant.matchers.is_empty());
        for state in matched {
            if let Ok(pids) = state.group.procs() {
                let gauge = self
                    .metrics
                    .tenant_processes
                    .with_label_values(&[&state.tenant.name]);
                gauge.set(pids.len() as f64);
            }
        }
    }
}
