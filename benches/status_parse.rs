//! Why qosd keeps its own /proc/PID/status reader (procfs/process.rs) while
//! procfs-core parses the host-wide files: the same status file read and
//! parsed both ways, beside the read alone. A rescan reads one status file
//! per process that has a uid or gid key, so at 5,000 processes each µs here
//! is 5 ms a rescan (issue 5: at most 50 ms).
//!
//! Two files, this benchmark's own status: a copy on tmpfs, where the read
//! costs least and the parse shows, and the live /proc/PID/status,
//! regenerated on every read as in a rescan. Then procfs-core's parse alone,
//! of the text in memory (qosd's parser is private: its parse is its row
//! less `read_only`).
//!
//!   cargo bench --bench status_parse

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use procfs_core::FromRead;
use procfs_core::process::Status;
use qosd::procfs::{ProcFs, ProcessFields};

/// The ids alone: status is the one file read.
const IDS: ProcessFields = ProcessFields {
    ids: true,
    ..ProcessFields::NONE
};

fn status_path(root: &Path, pid: u32) -> PathBuf {
    root.join(pid.to_string()).join("status")
}

fn status_parse(c: &mut Criterion) {
    let pid = std::process::id();
    let copy = tempfile::tempdir_in(qosd::testing::tmpfs_dir()).expect("tempdir");
    let live_status = status_path(Path::new("/proc"), pid);
    let copied_status = status_path(copy.path(), pid);
    std::fs::create_dir_all(copied_status.parent().expect("a pid directory")).expect("mkdir");
    std::fs::copy(&live_status, &copied_status).expect("copy status");
    for (file, root) in [("tmpfs_copy", copy.path()), ("proc", Path::new("/proc"))] {
        let proc = ProcFs::at(root);
        let mut group = c.benchmark_group(format!("status_parse/{file}"));
        // One read into a 4 KiB buffer, as qosd's reader does for a file
        // under 4 KiB: what both ways pay before parsing.
        group.bench_function("read_only", |b| {
            b.iter(|| {
                let mut bytes = vec![0; 4096];
                let length = File::open(status_path(root, pid))
                    .and_then(|mut status| status.read(&mut bytes))
                    .expect("read status");
                bytes.truncate(length);
                bytes
            })
        });
        group.bench_function("qosd", |b| {
            b.iter(|| {
                let info = proc.read_process_fields(pid, IDS).expect("read status");
                info.expect("this process is alive").uid
            })
        });
        group.bench_function("procfs_core", |b| {
            b.iter(|| {
                let status = File::open(status_path(root, pid)).expect("open status");
                Status::from_read(status).expect("parse status").ruid
            })
        });
        group.finish();
    }
    // procfs-core's parse alone, of text already in memory.
    let text = std::fs::read(&copied_status).expect("read the copy");
    c.bench_function("status_parse/in_memory/procfs_core", |b| {
        b.iter(|| {
            Status::from_read(text.as_slice())
                .expect("parse status")
                .ruid
        })
    });
}

criterion_group!(benches, status_parse);
criterion_main!(benches);
