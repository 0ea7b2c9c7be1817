//! A shaper that keeps links and the table in memory, for tests of the
//! reconcile loop: it builds exactly what it is asked to, can have things
//! broken behind its back, and can fail like a host without `tc`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::plan::{self, LinkPlan};
use super::shaper::{Invocations, ShapeError, Shaper};
use super::types::{ClassState, Handle, LinkState, QdiscState};

/// The fake kernel, shared between the shaper (owned by the agent) and the
/// test that pokes at it.
#[derive(Debug, Default)]
pub struct FakeKernel {
    pub links: HashMap<String, LinkState>,
    /// The last ruleset loaded, if the table exists.
    pub table: Option<String>,
    pub invocations: Invocations,
    /// Every command fails with this, as on a host without the binary.
    pub failure: Option<ShapeError>,
}

impl FakeKernel {
    /// An interface with nothing on it.
    pub fn add_link(&mut self, interface: &str) {
        self.links
            .insert(interface.to_owned(), LinkState::default());
    }

    /// Sends `bytes` through a class, as traffic would.
    pub fn send(&mut self, interface: &str, class: Handle, bytes: u64) {
        let link = self.links.get_mut(interface).expect("no such fake link");
        if let Some(class) = link.classes.iter_mut().find(|c| c.handle == class) {
            class.counters.bytes += bytes;
            class.counters.packets += bytes.div_ceil(1500);
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeShaper {
    pub kernel: Arc<Mutex<FakeKernel>>,
}

impl FakeShaper {
    fn kernel(&self) -> std::sync::MutexGuard<'_, FakeKernel> {
        self.kernel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run(&mut self, tool: fn(&mut Invocations) -> &mut u64) -> Result<(), ShapeError> {
        let mut kernel = self.kernel();
        *tool(&mut kernel.invocations) += 1;
        kernel.failure.clone().map_or(Ok(()), Err)
    }
}

impl Shaper for FakeShaper {
    fn observe(&mut self, interface: &str) -> Result<Option<LinkState>, ShapeError> {
        Ok(self.kernel().links.get(interface).cloned())
    }

    fn apply_link(&mut self, plan: &LinkPlan, _observed: &LinkState) -> Result<(), ShapeError> {
        self.run(|invocations| &mut invocations.tc)?;
        let mut kernel = self.kernel();
        let Some(link) = kernel.links.get_mut(&plan.interface) else {
            let detail = format!("Cannot find device \"{}\"", plan.interface);
            return Err(ShapeError::Failed {
                command: "tc -batch -",
                detail,
            });
        };
        *link = build(plan, link);
        Ok(())
    }

    fn remove_link(&mut self, interface: &str) -> Result<(), ShapeError> {
        self.run(|invocations| &mut invocations.tc)?;
        if let Some(link) = self.kernel().links.get_mut(interface) {
            *link = LinkState::default();
        }
        Ok(())
    }

    fn apply_table(&mut self, plans: &[LinkPlan]) -> Result<(), ShapeError> {
        self.run(|invocations| &mut invocations.nft)?;
        self.kernel().table = Some(plan::nft_ruleset(plans));
        Ok(())
    }

    fn table_intact(&mut self) -> Result<bool, ShapeError> {
        Ok(self.kernel().table.is_some())
    }

    fn remove_table(&mut self) -> Result<(), ShapeError> {
        self.run(|invocations| &mut invocations.nft)?;
        self.kernel().table = None;
        Ok(())
    }

    fn invocations(&self) -> Invocations {
        self.kernel().invocations
    }
}

/// What the kernel holds after `tc_batch(plan)`: classes that existed keep
/// their counters, as `replace` does.
pub(super) fn build(plan: &LinkPlan, before: &LinkState) -> LinkState {
    let mut after = LinkState::default();
    let qdisc = |handle, parent, kind: &str| QdiscState {
        handle,
        parent,
        kind: kind.to_owned(),
    };
    after
        .qdiscs
        .push(qdisc(plan::ROOT_QDISC, Handle::ROOT, "htb"));
    for (class, rate, ceil, quantum) in plan.classes() {
        let parent = if class == plan::LINK_CLASS {
            Handle::ROOT
        } else {
            plan::LINK_CLASS
        };
        let counters = before.class(class).map(|c| c.counters).unwrap_or_default();
        let quantum = if quantum == 0 { 200_000 } else { quantum };
        let kind = "htb".to_owned();
        after.classes.push(ClassState {
            handle: class,
            parent,
            kind,
            rate,
            ceil,
            quantum,
            counters,
        });
    }
    for leaf in plan.leaves() {
        after.qdiscs.push(qdisc(
            Handle::new(leaf.minor(), 0),
            leaf,
            plan::LEAF_QDISC_KIND,
        ));
    }
    after
}
