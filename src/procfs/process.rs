//! One process as process classification sees it: real uid and gid, comm,
//! executable, command line, cgroup v2 path, and whether it is a kernel
//! thread. Read from `<root>/<pid>/{stat,status,cmdline,cgroup,exe}`.
//!
//! A process can exit between any two reads. That is normal on a live host:
//! a process that is gone (ENOENT, ESRCH) is `Ok(None)`, never an error.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use nix::errno::Errno;

use super::{ProcError, ProcFs, pid_stat};

/// PF_KTHREAD in the `flags` field of /proc/PID/stat (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Which parts of a process to read. Each costs one file (or a readlink),
/// about 10 µs on a VM, so a caller whose matchers never look at, say, the
/// executable asks for less. A part not read is `None` (or empty) in
/// [`ProcessInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessFields {
    /// comm alone (/proc/PID/comm): half the cost of stat, enough for a
    /// comm key that most processes fail.
    pub comm: bool,
    /// comm and the kernel thread flag (/proc/PID/stat). When `ids` is
    /// read too, status gives both on kernels that print `Kthread:` (6.x),
    /// and stat is not read.
    pub stat: bool,
    /// Real uid and gid (/proc/PID/status).
    pub ids: bool,
    /// readlink /proc/PID/exe.
    pub exe: bool,
    /// /proc/PID/cmdline.
    pub cmdline: bool,
    /// The `0::` line of /proc/PID/cgroup.
    pub cgroup: bool,
}

impl ProcessFields {
    pub const ALL: ProcessFields = ProcessFields {
        comm: true,
        stat: true,
        ids: true,
        exe: true,
        cmdline: true,
        cgroup: true,
    };
    pub const NONE: ProcessFields = ProcessFields {
        comm: false,
        stat: false,
        ids: false,
        exe: false,
        cmdline: false,
        cgroup: false,
    };

    /// The parts in `self` but not in `other`.
    pub fn without(self, other: ProcessFields) -> ProcessFields {
        ProcessFields {
            comm: self.comm && !other.comm,
            stat: self.stat && !other.stat,
            ids: self.ids && !other.ids,
            exe: self.exe && !other.exe,
            cmdline: self.cmdline && !other.cmdline,
            cgroup: self.cgroup && !other.cgroup,
        }
    }

    pub fn union(self, other: ProcessFields) -> ProcessFields {
        ProcessFields {
            comm: self.comm || other.comm,
            stat: self.stat || other.stat,
            ids: self.ids || other.ids,
            exe: self.exe || other.exe,
            cmdline: self.cmdline || other.cmdline,
            cgroup: self.cgroup || other.cgroup,
        }
    }

    pub fn is_empty(self) -> bool {
        self == ProcessFields::NONE
    }
}

impl Default for ProcessFields {
    fn default() -> Self {
        ProcessFields::ALL
    }
}

/// One process (thread group), as read from procfs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    /// /proc/PID/comm (as printed in /proc/PID/stat): at most 15 bytes.
    pub comm: String,
    /// PF_KTHREAD is set: a kernel thread, which never leaves the root cgroup.
    pub kernel_thread: bool,
    /// Real user id (first field of `Uid:` in /proc/PID/status).
    pub uid: Option<u32>,
    /// Real group id (first field of `Gid:`).
    pub gid: Option<u32>,
    /// The executable's path; `None` for kernel threads, zombies, or when it
    /// cannot be read. A binary replaced on disk reads as its old path (the
    /// kernel's " (deleted)" suffix is dropped).
    pub exe: Option<String>,
    /// Arguments joined by spaces; empty for kernel threads and zombies.
    pub cmdline: Option<String>,
    /// The cgroup v2 path (`0::/path`), e.g. `/system.slice/nginx.service`.
    /// `None` if the process is in no v2 hierarchy.
    pub cgroup: Option<String>,
}

impl ProcFs {
    /// PIDs of all processes: the numeric directories of the proc root
    /// (threads other than a group leader are not listed there).
    pub fn pids(&self) -> Result<Vec<u32>, ProcError> {
        let root = self.root();
        let entries = fs::read_dir(root).map_err(|source| ProcError::Read {
            path: root.to_owned(),
            source,
        })?;
        let mut pids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ProcError::Read {
                path: root.to_owned(),
                source,
            })?;
            if let Some(pid) = entry.file_name().to_str().and_then(parse_pid) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    /// Everything classification looks at. `Ok(None)` if the process is gone.
    pub fn read_process(&self, pid: u32) -> Result<Option<ProcessInfo>, ProcError> {
        self.read_process_fields(pid, ProcessFields::ALL)
    }

    /// Like [`ProcFs::read_process`], reading only the parts in `fields`.
    pub fn read_process_fields(
        &self,
        pid: u32,
        fields: ProcessFields,
    ) -> Result<Option<ProcessInfo>, ProcError> {
        let mut info = ProcessInfo {
            pid,
            ..ProcessInfo::default()
        };
        Ok(self.fill_process(&mut info, fields)?.map(|_| info))
    }

    /// Reads the parts in `fields` of process `info.pid` into `info`, for a
    /// caller that reads only what it turns out to need. Returns the parts
    /// now in `info` (status may have given stat's part too), or `None` if
    /// the process is gone.
    pub fn fill_process(
        &self,
        info: &mut ProcessInfo,
        fields: ProcessFields,
    ) -> Result<Option<ProcessFields>, ProcError> {
        let dir = self.root().join(info.pid.to_string());
        let (mut have_comm, mut have_stat) = (false, false);
        if fields.ids {
            let path = dir.join("status");
            let Some(status) = read_live(&path)? else {
                return Ok(None);
            };
            let status =
                parse_status(&status).map_err(|reason| ProcError::Parse { path, reason })?;
            info.uid = Some(status.uid);
            info.gid = Some(status.gid);
            if let Some(name) = status.name {
                info.comm = name;
                have_comm = true;
                if let Some(kernel_thread) = status.kernel_thread {
                    info.kernel_thread = kernel_thread;
                    have_stat = true;
                }
            }
        }
        if fields.stat && !have_stat {
            let path = dir.join("stat");
            let Some(stat) = read_live(&path)? else {
                return Ok(None);
            };
            let (comm, flags) =
                parse_stat(&stat).map_err(|reason| ProcError::Parse { path, reason })?;
            info.comm = comm;
            info.kernel_thread = flags & PF_KTHREAD != 0;
            (have_comm, have_stat) = (true, true);
        }
        if fields.comm && !have_comm {
            let Some(comm) = read_live(&dir.join("comm"))? else {
                return Ok(None);
            };
            info.comm = String::from_utf8_lossy(&comm)
                .trim_end_matches('\n')
                .to_owned();
            have_comm = true;
        }
        if fields.cgroup {
            let Some(cgroup) = read_live(&dir.join("cgroup"))? else {
                return Ok(None);
            };
            info.cgroup = parse_cgroup_v2(&cgroup);
        }
        if fields.cmdline {
            let Some(cmdline) = read_live(&dir.join("cmdline"))? else {
                return Ok(None);
            };
            info.cmdline = Some(join_cmdline(&cmdline));
        }
        if fields.exe {
            // Fails for kernel threads (ENOENT), zombies and, without
            // CAP_SYS_PTRACE, other users' processes (EACCES): no executable.
            info.exe = fs::read_link(dir.join("exe"))
                .ok()
                .map(|target| exe_path(&target));
        }
        Ok(Some(ProcessFields {
            comm: fields.comm || have_comm,
            stat: fields.stat || have_stat,
            ..fields
        }))
    }
}

fn parse_pid(name: &str) -> Option<u32> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// Reads a file of a process; `None` if the process is gone.
fn read_live(path: &Path) -> Result<Option<Vec<u8>>, ProcError> {
    match read_proc_file(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if is_gone(&error) => Ok(None),
        Err(source) => Err(ProcError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// open + read, without `fs::read`'s statx (procfs sizes are 0 anyway) and
/// its extra read for the end of file: a /proc file hands over all it has
/// up to the buffer's size, so a short read is the end. Saves a third of
/// the cost of a read.
fn read_proc_file(path: &Path) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 4096;
    let mut file = fs::File::open(path)?;
    let mut bytes = vec![0; CHUNK];
    let mut length = 0;
    loop {
        match file.read(&mut bytes[length..]) {
            Ok(n) => {
                length += n;
                if length < bytes.len() {
                    break;
                }
                bytes.resize(length + CHUNK, 0);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    bytes.truncate(length);
    Ok(bytes)
}

/// ENOENT: the /proc/PID directory is gone; ESRCH: the process exited
/// while its file was open.
pub(crate) fn is_gone(error: &io::Error) -> bool {
    let errno = error.raw_os_error();
    errno == Some(Errno::ENOENT as i32) || errno == Some(Errno::ESRCH as i32)
}

/// comm and the flags of /proc/PID/stat.
fn parse_stat(bytes: &[u8]) -> Result<(String, u64), String> {
    let text = String::from_utf8_lossy(bytes);
    let (comm, [flags]) = pid_stat::parse_stat(&text, [pid_stat::FLAGS])?;
    Ok((comm.to_owned(), flags))
}

/// What classification takes from /proc/PID/status.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    uid: u32,
    gid: u32,
    /// `Name:`, unless the kernel escaped it (a backslash: read stat).
    name: Option<String>,
    /// `Kthread:` (kernels since 6.x print it).
    kernel_thread: Option<bool>,
}

/// The real ids (first number of the `Uid:` and `Gid:` lines), and the
/// name and kernel thread flag when they can stand in for stat.
fn parse_status(bytes: &[u8]) -> Result<Status, String> {
    let text = String::from_utf8_lossy(bytes);
    let value = |key: &str| text.lines().find_map(|line| line.strip_prefix(key));
    let first = |key: &str| -> Result<u32, String> {
        let line = value(key).ok_or_else(|| format!("no {key} line"))?;
        let number = line.split_whitespace().next().unwrap_or("");
        number
            .parse()
            .map_err(|_| format!("{key} {number:?} is not a number"))
    };
    Ok(Status {
        uid: first("Uid:")?,
        gid: first("Gid:")?,
        // "Name:\t" then the escaped name (tabs, newlines, backslashes and
        // quotes come as \t, \n, \\, \").
        name: value("Name:")
            .map(|name| name.strip_prefix('\t').unwrap_or(name))
            .filter(|name| !name.contains('\\'))
            .map(str::to_owned),
        kernel_thread: value("Kthread:").map(|flag| flag.trim() == "1"),
    })
}

/// The path of the `0::/path` line; on a hybrid host the v1 lines
/// (`4:memory:/...`) are skipped.
fn parse_cgroup_v2(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// NUL-separated arguments (with a trailing NUL) joined by single spaces.
fn join_cmdline(bytes: &[u8]) -> String {
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    String::from_utf8_lossy(trimmed).replace('\0', " ")
}

fn exe_path(target: &Path) -> String {
    let text = target.to_string_lossy();
    text.strip_suffix(" (deleted)").unwrap_or(&text).to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A process in a fake proc tree.
    pub(crate) struct FakeProcess<'a> {
        pub pid: u32,
        pub comm: &'a str,
        pub uid: u32,
        pub gid: u32,
        pub exe: Option<&'a str>,
        pub cmdline: &'a [&'a str],
        pub cgroup: &'a str,
        pub kernel_thread: bool,
    }

    impl Default for FakeProcess<'_> {
        fn default() -> Self {
            FakeProcess {
                pid: 100,
                comm: "app",
                uid: 1001,
                gid: 1001,
                exe: Some("/usr/bin/app"),
                cmdline: &["/usr/bin/app", "--serve"],
                cgroup: "/user.slice/user-1001.slice/session-1.scope",
                kernel_thread: false,
            }
        }
    }

    /// Writes the process's files as the kernel shows them.
    pub(crate) fn add_process(root: &Path, process: &FakeProcess) {
        let dir = root.join(process.pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        let flags = if process.kernel_thread {
            PF_KTHREAD | 0x40
        } else {
            0x0040_0100
        };
        fs::write(
            dir.join("stat"),
            format!(
                "{} ({}) S 1 {} {} 0 -1 {flags} 120 0 0 0 3 1 0 0 20 0 1 0 24 9000000 300 \
                 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
                process.pid, process.comm, process.pid, process.pid
            ),
        )
        .unwrap();
        fs::write(dir.join("comm"), format!("{}\n", process.comm)).unwrap();
        fs::write(
            dir.join("status"),
            format!(
                "Name:\t{}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{pid}\n\
                 PPid:\t1\nUid:\t{uid}\t0\t0\t0\nGid:\t{gid}\t0\t0\t0\nThreads:\t1\n",
                process.comm,
                pid = process.pid,
                uid = process.uid,
                gid = process.gid
            ),
        )
        .unwrap();
        let mut cmdline = process.cmdline.join("\0");
        if !cmdline.is_empty() {
            cmdline.push('\0');
        }
        fs::write(dir.join("cmdline"), cmdline).unwrap();
        fs::write(
            dir.join("cgroup"),
            format!("1:name=systemd:/\n0::{}\n", process.cgroup),
        )
        .unwrap();
        if let Some(exe) = process.exe {
            symlink(exe, dir.join("exe")).unwrap();
        }
    }

    fn fake(process: &FakeProcess) -> (tempfile::TempDir, ProcFs) {
        let dir = tempfile::tempdir().unwrap();
        add_process(dir.path(), process);
        let proc = ProcFs::at(dir.path());
        (dir, proc)
    }

    #[test]
    fn reads_ids_comm_exe_cmdline_and_cgroup() {
        let (_dir, proc) = fake(&FakeProcess::default());
        let info = proc.read_process(100).unwrap().unwrap();
        assert_eq!(
            info,
            ProcessInfo {
                pid: 100,
                comm: "app".into(),
                kernel_thread: false,
                uid: Some(1001),
                gid: Some(1001),
                exe: Some("/usr/bin/app".into()),
                cmdline: Some("/usr/bin/app --serve".into()),
                cgroup: Some("/user.slice/user-1001.slice/session-1.scope".into()),
            }
        );
    }

    #[test]
    fn real_ids_are_the_first_fields_of_status() {
        let status = b"Name:\tsu\nUid:\t1001\t0\t0\t0\nGid:\t50\t0\t0\t0\n";
        assert_eq!(
            parse_status(status),
            Ok(Status {
                uid: 1001,
                gid: 50,
                name: Some("su".into()),
                kernel_thread: None
            })
        );
        let error = |text: &[u8]| parse_status(text).unwrap_err();
        assert!(error(b"Name:\tx\nGid:\t1\n").contains("Uid:"));
        assert!(error(b"Uid:\tx\nGid:\t1\n").contains("\"x\""));
    }

    #[test]
    fn status_stands_in_for_stat_on_kernels_with_kthread() {
        let (dir, proc) = fake(&FakeProcess {
            comm: "a b",
            ..FakeProcess::default()
        });
        let status = dir.path().join("100/status");
        let text = fs::read_to_string(&status).unwrap();
        fs::write(&status, format!("{text}Kthread:\t0\n")).unwrap();
        fs::remove_file(dir.path().join("100/stat")).unwrap();
        let fields = ProcessFields {
            stat: true,
            ids: true,
            ..ProcessFields::NONE
        };
        let info = proc.read_process_fields(100, fields).unwrap().unwrap();
        assert_eq!((info.comm.as_str(), info.uid), ("a b", Some(1001)));
        // An escaped name (here a tab) needs stat, which is gone: vanished.
        let escaped = "Name:\ta\\tb\nUid:\t0\nGid:\t0\nKthread:\t1\n";
        fs::write(&status, escaped).unwrap();
        assert_eq!(proc.read_process_fields(100, fields).unwrap(), None);
        let parsed = parse_status(escaped.as_bytes()).unwrap();
        assert_eq!((parsed.name, parsed.kernel_thread), (None, Some(true)));
    }

    /// A comm key reads /proc/PID/comm alone, or takes the name from status
    /// when the ids are read anyway; never stat, which costs twice as much.
    #[test]
    fn comm_alone_reads_the_comm_file_not_stat() {
        let (dir, proc) = fake(&FakeProcess {
            comm: "a (b) c",
            ..FakeProcess::default()
        });
        fs::remove_file(dir.path().join("100/stat")).unwrap();
        let comm = ProcessFields {
            comm: true,
            ..ProcessFields::NONE
        };
        let mut info = ProcessInfo {
            pid: 100,
            ..ProcessInfo::default()
        };
        let filled = proc.fill_process(&mut info, comm).unwrap().unwrap();
        assert_eq!((info.comm.as_str(), filled), ("a (b) c", comm));
        fs::remove_file(dir.path().join("100/comm")).unwrap();
        let with_ids = ProcessFields { ids: true, ..comm };
        let info = proc.read_process_fields(100, with_ids).unwrap().unwrap();
        assert_eq!((info.comm.as_str(), info.uid), ("a (b) c", Some(1001)));
        assert_eq!(
            proc.read_process_fields(100, comm).unwrap(),
            None,
            "without the comm file (or status) the process is gone"
        );
    }

    #[test]
    fn comm_with_spaces_and_parentheses() {
        let process = FakeProcess {
            comm: "a) b (c) S 1",
            ..FakeProcess::default()
        };
        let (_dir, proc) = fake(&process);
        let info = proc.read_process(100).unwrap().unwrap();
        assert_eq!(info.comm, "a) b (c) S 1");
        assert!(!info.kernel_thread);
    }

    #[test]
    fn kernel_thread_from_the_flags_field() {
        let process = FakeProcess {
            pid: 2,
            comm: "kthreadd",
            uid: 0,
            gid: 0,
            exe: None,
            cmdline: &[],
            cgroup: "/",
            kernel_thread: true,
        };
        let (_dir, proc) = fake(&process);
        let info = proc.read_process(2).unwrap().unwrap();
        assert!(info.kernel_thread);
        assert_eq!(info.exe, None);
        assert_eq!(info.cmdline.as_deref(), Some(""));
        assert_eq!(info.cgroup.as_deref(), Some("/"));
        // A line from a real 6.1 kernel: flags 0x208040 has PF_KTHREAD.
        let line = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 24 0 0";
        assert_eq!(parse_stat(line), Ok(("kthreadd".into(), 2129984)));
    }

    #[test]
    fn a_garbled_stat_is_an_error_naming_the_file() {
        let (dir, proc) = fake(&FakeProcess::default());
        fs::write(dir.path().join("100/stat"), "100 (app S 1").unwrap();
        let error = proc.read_process(100).unwrap_err().to_string();
        assert!(error.contains("100/stat"), "{error}");
        fs::write(dir.path().join("100/stat"), "100 (app) S 1 2").unwrap();
        assert!(proc.read_process(100).is_err());
    }

    #[test]
    fn a_vanished_process_is_none() {
        let (dir, proc) = fake(&FakeProcess::default());
        assert_eq!(proc.read_process(4_000_000).unwrap(), None);
        // Gone between the reads of stat and cgroup.
        fs::remove_file(dir.path().join("100/cgroup")).unwrap();
        assert_eq!(proc.read_process(100).unwrap(), None);
    }

    #[test]
    fn only_the_fields_asked_for_are_read() {
        let (dir, proc) = fake(&FakeProcess::default());
        fs::remove_file(dir.path().join("100/status")).unwrap();
        let fields = ProcessFields::ALL.without(ProcessFields {
            ids: true,
            exe: true,
            ..ProcessFields::NONE
        });
        let info = proc.read_process_fields(100, fields).unwrap().unwrap();
        assert_eq!((info.uid, info.gid, info.exe), (None, None, None));
        assert_eq!(info.comm, "app");
        let cgroup_only = ProcessFields {
            cgroup: true,
            ..ProcessFields::NONE
        };
        let info = proc.read_process_fields(100, cgroup_only).unwrap().unwrap();
        assert_eq!((info.comm.as_str(), info.cmdline), ("", None));
        assert!(info.cgroup.is_some());
    }

    #[test]
    fn no_v2_line_is_no_cgroup_and_a_deleted_binary_keeps_its_path() {
        assert_eq!(parse_cgroup_v2(b"4:memory:/x\n1:name=systemd:/\n"), None);
        assert_eq!(parse_cgroup_v2(b"0::/a b/c\n").as_deref(), Some("/a b/c"));
        assert_eq!(
            exe_path(Path::new("/usr/bin/app (deleted)")),
            "/usr/bin/app"
        );
        assert_eq!(join_cmdline(b"sh\0-c\0echo hi\0"), "sh -c echo hi");
        assert_eq!(join_cmdline(b""), "");
    }

    #[test]
    fn pids_are_the_numeric_directories() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1", "42", "self", "sys", "7x"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        fs::write(dir.path().join("stat"), "").unwrap();
        let mut pids = ProcFs::at(dir.path()).pids().unwrap();
        pids.sort_unstable();
        assert_eq!(pids, [1, 42]);
    }

    #[test]
    fn this_hosts_processes_read() {
        let proc = ProcFs::default();
        let pids = proc.pids().unwrap();
        assert!(!pids.is_empty());
        let me = proc.read_process(std::process::id()).unwrap().unwrap();
        assert!(!me.kernel_thread);
        assert!(me.exe.is_some() && me.cmdline.is_some());
        for pid in pids {
            proc.read_process(pid).unwrap();
        }
    }
}
