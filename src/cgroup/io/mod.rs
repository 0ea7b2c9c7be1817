//! The io controller: io.stat, io.max, io.weight and io.bfq.weight (and
//! io.pressure through `pressure`), and which weight-based controller a
//! device has. One file per file family.

mod device;
mod error;
mod max;
mod mode;
mod nested_keyed;
mod stat;
mod weight;

pub use device::DeviceNumber;
pub use error::IoValueError;
pub use max::{
    BPS_LIMIT_MAX, IOPS_LIMIT_MAX, IoMax, MAX_LIMIT_MIN, NoSuchDevice, read_max, write_max,
};
pub use mode::weight_mode;
pub use stat::{IoStat, read_stat};
pub use weight::{
    BFQ_WEIGHT_MAX, IoWeightMode, WEIGHT_MAX, WEIGHT_MIN, read_mode_weight, read_weight,
    write_mode_weight, write_weight,
};

/// Devices the tests of every io file use.
#[cfg(test)]
mod fixtures {
    use super::DeviceNumber;

    pub const SDA: DeviceNumber = DeviceNumber { major: 8, minor: 0 };
    pub const VDA: DeviceNumber = DeviceNumber {
        major: 254,
        minor: 0,
    };
}

#[cfg(test)]
mod tests {
    use crate::cgroup::fake::FakeTree;
    use crate::cgroup::pressure::{self, PressureResource};

    #[test]
    fn io_pressure_reads_through_the_pressure_module() {
        let psi = "some avg10=12.50 avg60=3.00 avg300=0.75 total=812345\n\
                   full avg10=10.00 avg60=2.50 avg300=0.50 total=700000\n";
        let (_tree, group) = FakeTree::with_group("web", &[("io.pressure", psi)]);
        let io = pressure::read(&group, PressureResource::Io).unwrap();
        assert_eq!(io.some.total_usec, 812_345);
        assert_eq!(io.full.unwrap().avg10, 10.0);
    }
}
