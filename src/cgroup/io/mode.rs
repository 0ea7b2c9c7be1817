//! Which weight-based controller serves a device: iocost when `io.cost.qos`
//! enables it, else BFQ when the device's scheduler is BFQ.

use std::path::Path;

use super::{DeviceNumber, IoWeightMode};
use crate::cgroup::file;

/// Root only: iocost's per-device switch.
const IO_COST_QOS: &str = "io.cost.qos";
const IOCOST_ENABLED: &str = "enable=1";

/// `<sys>/dev/block/MAJ:MIN/queue/scheduler`, e.g. `mq-deadline kyber [bfq] none`.
const SYS_DEV_BLOCK: &str = "dev/block";
const QUEUE_SCHEDULER: &str = "queue/scheduler";
const BFQ_SELECTED: &str = "[bfq]";

/// iocost when `<hierarchy_root>/io.cost.qos` has `enable=1` for `device`;
/// else BFQ when `<sys_root>/dev/block/MAJ:MIN/queue/scheduler` selects
/// `[bfq]`; else none. A file that is missing or unreadable counts as "not
/// that mode": qosd then holds the device with io.max alone, which is safe.
pub fn weight_mode(hierarchy_root: &Path, device: DeviceNumber, sys_root: &Path) -> IoWeightMode {
    if iocost_enabled(hierarchy_root, device) {
        IoWeightMode::IoCost
    } else if bfq_selected(sys_root, device) {
        IoWeightMode::Bfq
    } else {
        IoWeightMode::None
    }
}

/// `8:16 enable=1 ctrl=auto rpct=0.00 ...`
fn iocost_enabled(hierarchy_root: &Path, device: DeviceNumber) -> bool {
    let Ok(content) = file::read(&hierarchy_root.join(IO_COST_QOS)) else {
        return false;
    };
    let name = device.to_string();
    content.lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some(name.as_str()) && fields.any(|f| f == IOCOST_ENABLED)
    })
}

fn bfq_selected(sys_root: &Path, device: DeviceNumber) -> bool {
    let path = sys_root
        .join(SYS_DEV_BLOCK)
        .join(device.to_string())
        .join(QUEUE_SCHEDULER);
    file::read(&path).is_ok_and(|content| content.split_whitespace().any(|s| s == BFQ_SELECTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeTree;
    use crate::cgroup::io::fixtures::{SDA, VDA};

    /// A fake `/sys` with `dev/block/<device>/queue/scheduler`.
    fn fake_sys(device: &str, scheduler: &str) -> tempfile::TempDir {
        let sys = tempfile::tempdir().unwrap();
        let queue = sys.path().join("dev/block").join(device).join("queue");
        std::fs::create_dir_all(&queue).unwrap();
        std::fs::write(queue.join("scheduler"), scheduler).unwrap();
        sys
    }

    #[test]
    fn weight_mode_iocost_when_enabled_for_the_device() {
        let tree = FakeTree::new();
        tree.write(
            "io.cost.qos",
            "8:16 enable=0 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n\
             8:0 enable=1 ctrl=user rpct=95.00 rlat=10000 wpct=95.00 wlat=20000 min=50.00 max=150.00\n",
        );
        let sys = fake_sys("8:0", "mq-deadline kyber [bfq] none\n");
        assert_eq!(
            weight_mode(tree.path(), SDA, sys.path()),
            IoWeightMode::IoCost
        );
        let sdb = DeviceNumber {
            major: 8,
            minor: 16,
        };
        assert_eq!(
            weight_mode(tree.path(), sdb, sys.path()),
            IoWeightMode::None
        );
    }

    #[test]
    fn weight_mode_bfq_when_the_scheduler_is_bfq() {
        let tree = FakeTree::new();
        let sys = fake_sys("254:0", "mq-deadline kyber [bfq] none\n");
        assert_eq!(weight_mode(tree.path(), VDA, sys.path()), IoWeightMode::Bfq);
    }

    #[test]
    fn weight_mode_none_otherwise() {
        let tree = FakeTree::new();
        let available_only = fake_sys("254:0", "[mq-deadline] kyber bfq none\n");
        assert_eq!(
            weight_mode(tree.path(), VDA, available_only.path()),
            IoWeightMode::None
        );
        let nothing = tempfile::tempdir().unwrap();
        assert_eq!(
            weight_mode(nothing.path(), VDA, nothing.path()),
            IoWeightMode::None
        );
    }
}
