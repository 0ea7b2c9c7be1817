//! The reconcile loop against the fake kernel: build once, then nothing
//! while nothing changes; repair and count what changes behind its back.

use super::fake::{FakeKernel, FakeShaper};
use super::plan::{DEFAULT_CLASS, TenantClass};
use super::*;

fn plan(ceil: u64) -> LinkPlan {
    LinkPlan {
        interface: "up0".into(),
        capacity: 5_000_000,
        tenants: vec![TenantClass {
            tenant: "api".into(),
            class: Handle::new(1, 0x10),
            rate: 3_125_000,
            ceil,
            quantum: 1514,
            cgroup: Some(("qosd.slice/api".into(), 7)),
            veth: None,
        }],
    }
}

fn network() -> (Network, FakeShaper) {
    let shaper = FakeShaper::default();
    shaper.kernel.lock().unwrap().add_link("up0");
    (Network::new(Box::new(shaper.clone()), false), shaper)
}

fn kernel(shaper: &FakeShaper) -> std::sync::MutexGuard<'_, FakeKernel> {
    shaper.kernel.lock().unwrap()
}

#[test]
fn builds_once_then_runs_nothing_while_nothing_changes() {
    let (mut network, shaper) = network();
    let first = network.reconcile(vec![plan(5_000_000)]);
    assert_eq!((first.writes, first.drift_corrections), (2, 0));
    for _ in 0..5 {
        let quiet = network.reconcile(vec![plan(5_000_000)]);
        assert_eq!(
            (quiet.writes, quiet.drift_corrections, quiet.failures),
            (0, 0, 0)
        );
    }
    assert_eq!(network.invocations(), Invocations { tc: 1, nft: 1 });
    assert!(
        kernel(&shaper)
            .table
            .as_deref()
            .unwrap()
            .contains("meta priority set 1:10")
    );
}

#[test]
fn a_deleted_qdisc_or_table_is_rebuilt_at_the_next_reconcile_and_counted() {
    let (mut network, shaper) = network();
    network.reconcile(vec![plan(5_000_000)]);
    kernel(&shaper)
        .links
        .insert("up0".into(), LinkState::default());
    let repaired = network.reconcile(vec![plan(5_000_000)]);
    assert_eq!((repaired.writes, repaired.drift_corrections), (1, 1));
    assert!(plan::differences(&plan(5_000_000), &kernel(&shaper).links["up0"]).is_empty());
    kernel(&shaper).table = None;
    let repaired = network.reconcile(vec![plan(5_000_000)]);
    assert_eq!((repaired.writes, repaired.drift_corrections), (1, 1));
    assert!(kernel(&shaper).table.is_some());
}

#[test]
fn a_new_contract_is_applied_without_counting_drift_and_counters_survive() {
    let (mut network, shaper) = network();
    network.reconcile(vec![plan(5_000_000)]);
    kernel(&shaper).send("up0", Handle::new(1, 0x10), 3000);
    let changed = network.reconcile(vec![plan(4_000_000)]);
    assert_eq!((changed.writes, changed.drift_corrections), (1, 0));
    assert_eq!(changed.traffic[0].delta.bytes, 3000);
    assert_eq!(
        kernel(&shaper).links["up0"]
            .class(Handle::new(1, 0x10))
            .unwrap()
            .ceil,
        4_000_000
    );
    kernel(&shaper).send("up0", Handle::new(1, 0x10), 1500);
    let later = network.reconcile(vec![plan(4_000_000)]);
    assert_eq!(
        (later.traffic[0].delta.bytes, later.traffic[0].delta.packets),
        (1500, 1)
    );
}

#[test]
fn a_reload_that_removes_a_tenant_leaves_the_others_their_classes_and_counters() {
    let (mut network, shaper) = network();
    let mut two = plan(5_000_000);
    let mut bulk = two.tenants[0].clone();
    bulk.tenant = "bulk".into();
    bulk.class = Handle::new(1, 0x11);
    two.tenants.push(bulk.clone());
    network.reconcile(vec![two.clone()]);
    kernel(&shaper).send("up0", Handle::new(1, 0x10), 9_000);
    network.reconcile(vec![two]);
    // The new file lists bulk alone, so the plan numbers it 1:10.
    let mut bulk_alone = plan(5_000_000);
    bulk.class = Handle::new(1, 0x10);
    bulk_alone.tenants = vec![bulk];
    let reloaded = network.reconcile(vec![bulk_alone.clone()]);
    assert_eq!(
        reloaded.traffic.iter().map(|t| t.delta.bytes).sum::<u64>(),
        0
    );
    let link = kernel(&shaper).links["up0"].clone();
    assert!(
        link.class(Handle::new(1, 0x11)).is_some(),
        "bulk keeps 1:11"
    );
    assert!(
        link.class(Handle::new(1, 0x10)).is_none(),
        "api's class is gone"
    );
    // A tenant added later does not get a class that still had traffic.
    let mut api_again = plan(5_000_000).tenants[0].clone();
    api_again.tenant = "new".into();
    bulk_alone.tenants.push(api_again);
    network.reconcile(vec![bulk_alone]);
    assert!(
        kernel(&shaper).links["up0"]
            .class(Handle::new(1, 0x10))
            .is_some()
    );
}

#[test]
fn counters_of_a_class_made_again_start_over_instead_of_going_negative() {
    let before = ClassCounters {
        bytes: 9000,
        packets: 6,
        drops: 2,
        overlimits: 4,
    };
    let now = ClassCounters {
        bytes: 100,
        packets: 1,
        drops: 0,
        overlimits: 0,
    };
    assert_eq!(since(before, now), now);
}

#[test]
fn a_missing_binary_is_retried_every_few_ticks_and_other_work_goes_on() {
    let (mut network, shaper) = network();
    let missing = ShapeError::MissingBinary {
        binary: "tc",
        package: "iproute2",
    };
    kernel(&shaper).failure = Some(missing);
    let first = network.reconcile(vec![plan(5_000_000)]);
    assert_eq!(first.failures, 2);
    for _ in 1..RETRY_TICKS {
        assert_eq!(network.reconcile(vec![plan(5_000_000)]).failures, 0);
    }
    assert_eq!(network.invocations(), Invocations { tc: 1, nft: 1 });
    kernel(&shaper).failure = None;
    let recovered = network.reconcile(vec![plan(5_000_000)]);
    assert_eq!((recovered.writes, recovered.failures), (2, 0));
}

#[test]
fn a_missing_link_waits_for_it_and_a_removed_link_loses_the_tree() {
    let (mut network, shaper) = network();
    let mut other = plan(5_000_000);
    other.interface = "eth9".into();
    let first = network.reconcile(vec![plan(5_000_000), other.clone()]);
    assert_eq!((first.writes, first.failures), (2, 0));
    kernel(&shaper).add_link("eth9");
    assert_eq!(network.reconcile(vec![plan(5_000_000), other]).writes, 1);
    network.reconcile(vec![plan(5_000_000)]);
    assert!(kernel(&shaper).links["eth9"].qdiscs.is_empty());
    assert!(kernel(&shaper).links["up0"].class(DEFAULT_CLASS).is_some());
}

#[test]
fn a_dry_run_changes_nothing() {
    let shaper = FakeShaper::default();
    shaper.kernel.lock().unwrap().add_link("up0");
    let mut network = Network::new(Box::new(shaper.clone()), true);
    network.reconcile(vec![plan(5_000_000)]);
    let again = network.reconcile(vec![plan(5_000_000)]);
    assert_eq!(
        again.drift_corrections, 0,
        "what a dry run did not build is not drift"
    );
    assert_eq!(network.invocations(), Invocations::default());
    assert!(kernel(&shaper).links["up0"].qdiscs.is_empty());
}

#[test]
fn clean_up_removes_the_tree_and_the_table() {
    let (mut network, shaper) = network();
    network.reconcile(vec![plan(5_000_000)]);
    network.clean_up();
    assert!(kernel(&shaper).links["up0"].qdiscs.is_empty());
    assert!(kernel(&shaper).table.is_none());
}
