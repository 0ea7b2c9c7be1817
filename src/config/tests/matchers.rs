//! Process matchers: `match = [...]`, user and group names (the fake host
//! [`DISKS`] has the user alice, 1001, and the group staff, 50), patterns,
//! errors with their place and key, and matchers that earlier ones cover.

use super::*;

fn matchers<'a>(config: &'a Config, name: &str) -> &'a [ProcessMatcher] {
    &tenant(config, name).matchers
}

fn exact(text: &str) -> Option<TextPattern> {
    let pattern = TextPattern::exact_or_glob(text).expect("a valid pattern");
    assert!(pattern.is_exact(), "{text}");
    Some(pattern)
}

fn glob(text: &str) -> Option<TextPattern> {
    let pattern = TextPattern::exact_or_glob(text).expect("a valid pattern");
    assert!(!pattern.is_exact(), "{text}");
    Some(pattern)
}

fn regex(text: &str) -> Option<TextPattern> {
    Some(TextPattern::regex(text).expect("a valid regex"))
}

/// The example of the brief: every key, alone and together.
const EVERY_KEY: &str = r#"
[tenants.web]
cpu = { baseline = 1, burst = 2 }
match = [{ user = "alice" }, { uid = 1002 }, { group = "staff" }, { gid = 51 }, { comm = "nginx" }, { comm = "python*" }, { exe = "/usr/bin/*" }, { cmdline = "--role=(web|api)" }, { unit = "nginx.service" }, { user = "alice", comm = "python*" }]
"#;

#[test]
fn every_key_is_read_and_entries_keep_their_order() {
    let loaded = valid_on_disks(EVERY_KEY);
    // The last entry is alice's python processes, all of which the first,
    // all of alice's processes, matches already.
    assert_eq!(
        loaded.warnings,
        [
            "`tenants.web.match[9]` is covered by `tenants.web.match[0]`, so it never matches: \
          tenants and their matchers are tried in file order and the first match wins; remove it"
        ]
    );
    let web = tenant(&loaded.config, "web");
    assert!(!web.adopted);
    assert_eq!(web.cgroup, PathBuf::from("qosd.slice/web"));
    // A matcher with only the keys that `set` gives it.
    let with = |set: fn(&mut ProcessMatcher)| {
        let mut matcher = ProcessMatcher::default();
        set(&mut matcher);
        matcher
    };
    let expected = [
        with(|m| m.uid = Some(1001)),
        with(|m| m.uid = Some(1002)),
        with(|m| m.gid = Some(50)),
        with(|m| m.gid = Some(51)),
        with(|m| m.comm = exact("nginx")),
        with(|m| m.comm = glob("python*")),
        with(|m| m.exe = glob("/usr/bin/*")),
        with(|m| m.cmdline = regex("--role=(web|api)")),
        with(|m| m.unit = Some("nginx.service".to_owned())),
        with(|m| (m.uid, m.comm) = (Some(1001), glob("python*"))),
    ];
    assert_eq!(web.matchers, expected);
    // The patterns are compiled as the keys say.
    let python = web.matchers[5].comm.as_ref().expect("comm");
    assert!(python.matches("python3") && !python.matches("ipython"));
    let role = web.matchers[7].cmdline.as_ref().expect("cmdline");
    assert!(role.matches("/srv/app --role=api -v") && !role.matches("--role=db"));
    let exe = web.matchers[6].exe.as_ref().expect("exe");
    assert!(exe.matches("/usr/bin/python3") && !exe.matches("/usr/local/bin/python3"));
    // As config/qosd.toml says, `*` matches `/` too.
    assert!(exe.matches("/usr/bin/sub/tool"));
}

#[test]
fn one_matcher_may_hold_every_key() {
    let text = r#"
[tenants.web]
match = [{ user = "alice", group = "staff", comm = "nginx", exe = "/usr/sbin/nginx", cmdline = "-g daemon", unit = "nginx.service" }]
"#;
    let loaded = valid_on_disks(text);
    let all = &matchers(&loaded.config, "web")[0];
    assert_eq!(all.uid, Some(1001));
    assert_eq!(all.gid, Some(50));
    assert_eq!(all.comm, exact("nginx"));
    assert_eq!(all.exe, exact("/usr/sbin/nginx"));
    assert_eq!(all.cmdline, regex("-g daemon"));
    assert_eq!(all.unit.as_deref(), Some("nginx.service"));
}

#[test]
fn names_resolve_with_the_facts_given() {
    let text = "[tenants.a]\nmatch = [{ user = \"alice\", group = \"staff\" }]\n";
    for facts in [DISKS, crate::testing::FakeHost::facts()] {
        let config = parse_on(text, facts).expect("alice and staff").config;
        let matcher = &matchers(&config, "a")[0];
        assert_eq!((matcher.uid, matcher.gid), (Some(1001), Some(50)));
    }
    // Ids need no lookup: they may name users that do not exist (yet).
    let config =
        valid_on_disks("[tenants.a]\nmatch = [{ uid = 0 }, { gid = 4294967294 }]\n").config;
    assert_eq!(matchers(&config, "a")[0].uid, Some(0));
    assert_eq!(matchers(&config, "a")[1].gid, Some(4_294_967_294));
}

#[test]
fn unknown_users_and_groups_are_errors_that_name_them() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ user = \"bob\" }]\n",
        "2:19",
        "tenants.web.match[0].user",
        "no user named bob on the fake host (`getent passwd` lists them; `uid = N` matches an id that has no name)",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"x\" }, { group = \"ops\" }]\n",
        "2:36",
        "tenants.web.match[1].group",
        "no group named ops on the fake host (`getent group` lists them",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ user = \"1001\" }]\n",
        "2:19",
        "tenants.web.match[0].user",
        "no user named 1001 on the fake host; to match the user id 1001, write `uid = 1001`",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ group = \"\" }]\n",
        "2:20",
        "tenants.web.match[0].group",
        "a group name must not be empty",
    );
}

#[test]
fn the_real_lookups_name_what_they_cannot_find() {
    let this_host = parse_on(
        "[tenants.a]\nmatch = [{ user = \"qosd-no-such-user\" }]\n",
        TWO_CPUS,
    );
    let rendered = this_host.expect_err("an unknown user").rendered;
    assert!(
        rendered.contains("no user named qosd-no-such-user on this host"),
        "{rendered}"
    );
}

#[test]
fn a_user_or_group_is_named_once() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ user = \"alice\", uid = 1001 }]\n",
        "2:34",
        "tenants.web.match[0].uid",
        "`user` and `uid` both name the process's user: write one or the other",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ gid = 50, group = \"staff\" }]\n",
        "2:18",
        "tenants.web.match[0].gid",
        "`group` and `gid` both name the process's group: write one or the other",
    );
}

#[test]
fn ids_are_whole_numbers_in_range() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ uid = -1 }]\n",
        "2:18",
        "tenants.web.match[0].uid",
        "a user id is a whole number from 0 to 4294967294, got -1",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ gid = 4294967295 }]\n",
        "2:18",
        "tenants.web.match[0].gid",
        "a group id is a whole number from 0 to 4294967294, got 4294967295",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ uid = \"1001\" }]\n",
        "2:18",
        "tenants.web.match[0].uid",
        "expected a whole number id such as 1001",
    );
}

#[test]
fn an_entry_needs_a_key_and_only_known_keys() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"a\" }, {}]\n",
        "2:26",
        "tenants.web.match[1]",
        "a matcher needs at least one key (`user` or `uid`, `group` or `gid`, `comm`, `exe`, `cmdline`, `unit`); an empty one would match every process",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ usr = \"alice\" }]\n",
        "2:12",
        "tenants.web.match[0].usr",
        "unknown key, did you mean `user`?",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [\"alice\"]\n",
        "2:10",
        "tenants.web.match[0]",
        "expected a matcher table such as `{ user = \"alice\" }`",
    );
    error_on_disks(
        "[tenants.web]\nmatch = { user = \"alice\" }\n",
        "2:9",
        "tenants.web.match",
        "expected a list of process matchers, such as `match = [{ user = \"alice\" }, { comm = \"nginx\" }]`",
    );
}

#[test]
fn every_bad_entry_is_reported() {
    let rendered = errors_on(
        "[tenants.a]\nmatch = [{ user = \"bob\" }, { cmdline = \"(\" }, { nope = 1 }]\n[tenants.b]\nmatch = [{ comm = \"a[\" }]\n",
        DISKS,
    );
    let keys: Vec<&str> = rendered
        .lines()
        .filter_map(|line| line.split('`').nth(1))
        .collect();
    assert_eq!(
        keys,
        [
            "tenants.a.match[0].user",
            "tenants.a.match[1].cmdline",
            "tenants.a.match[2].nope",
            "tenants.b.match[0].comm"
        ],
        "{rendered}"
    );
}

#[test]
fn invalid_patterns_name_the_tenant_and_key() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"nginx\" }, { cmdline = \"--role=(web\" }]\n",
        "2:42",
        "tenants.web.match[1].cmdline",
        r#"invalid regular expression "--role=(web": unclosed group"#,
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"py[thon\" }]\n",
        "2:19",
        "tenants.web.match[0].comm",
        r#"invalid glob "py[thon": "#,
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ exe = \"/usr/bin/[a\" }]\n",
        "2:18",
        "tenants.web.match[0].exe",
        r#"invalid glob "/usr/bin/[a": "#,
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ cmdline = \"\" }]\n",
        "2:22",
        "tenants.web.match[0].cmdline",
        "an empty regular expression matches every process",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"\" }]\n",
        "2:19",
        "tenants.web.match[0].comm",
        "a process name must not be empty",
    );
}

#[test]
fn patterns_that_could_never_match_are_errors() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"a-very-long-daemon\" }]\n",
        "2:19",
        "tenants.web.match[0].comm",
        r#"the kernel keeps only the first 15 bytes of a process name, so "a-very-long-daemon" never matches: write "a-very-long-dae""#,
    );
    // 15 bytes is the longest name, and a glob may be longer.
    valid_on_disks(
        "[tenants.web]\nmatch = [{ comm = \"a-very-long-dae\" }, { comm = \"a-very-long-dae*\" }]\n",
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ exe = \"nginx\" }]\n",
        "2:18",
        "tenants.web.match[0].exe",
        r#"`exe` is matched against the executable's absolute path (/proc/PID/exe), so "nginx" never matches: write a path such as "/usr/bin/nginx" or a glob such as "*/nginx""#,
    );
    valid_on_disks("[tenants.web]\nmatch = [{ exe = \"*/nginx\" }]\n");
}

#[test]
fn a_unit_is_one_name() {
    error_on_disks(
        "[tenants.web]\nmatch = [{ unit = \"system.slice/nginx.service\" }]\n",
        "2:19",
        "tenants.web.match[0].unit",
        r#""system.slice/nginx.service" is not a unit name: `unit` names one systemd unit or slice"#,
    );
    error_on_disks(
        "[tenants.web]\nmatch = [{ unit = \"\" }]\n",
        "2:19",
        "tenants.web.match[0].unit",
        "a unit name must not be empty",
    );
    let config = valid_on_disks("[tenants.web]\nmatch = [{ unit = \"user-1001.slice\" }]\n").config;
    assert_eq!(
        matchers(&config, "web")[0].unit.as_deref(),
        Some("user-1001.slice")
    );
}

#[test]
fn a_tenant_adopts_a_cgroup_or_matches_processes_not_both() {
    error_on_disks(
        "[tenants.web]\ncgroup = \"web.slice\"\nmatch = [{ comm = \"nginx\" }]\n",
        "3:9",
        "tenants.web.match",
        "matched processes are moved into a group qosd owns (qosd.slice/web); adopt a cgroup or match processes, not both",
    );
    // Even an empty list: the key says the tenant's processes are matched.
    error_on_disks(
        "[tenants.web]\nmatch = []\ncgroup = \"web.slice\"\n",
        "2:9",
        "tenants.web.match",
        "adopt a cgroup or match processes, not both",
    );
}

#[test]
fn an_empty_list_is_a_warning() {
    let loaded = valid_on_disks("[tenants.web]\ncpu = { baseline = 1, burst = 1 }\nmatch = []\n");
    assert_eq!(
        loaded.warnings,
        ["`tenants.web.match` is empty: no process is moved into tenant `web`"]
    );
    assert!(tenant(&loaded.config, "web").matchers.is_empty());
}

/// The warnings of a valid file whose tenants all have a cpu contract.
fn warnings_of(text: &str) -> Vec<String> {
    valid_on_disks(text).warnings
}

#[test]
fn a_matcher_covered_by_an_earlier_one_is_a_warning_naming_both() {
    let cases = [
        // Identical, in the same tenant.
        (
            "[tenants.a]\nmatch = [{ comm = \"nginx\" }, { user = \"alice\" }, { comm = \"nginx\" }]\n",
            "`tenants.a.match[2]` is covered by `tenants.a.match[0]`, so it never matches: tenants and their matchers are tried in file order and the first match wins; remove it",
        ),
        // A subset of the keys, in an earlier tenant; a user by name is its id.
        (
            "[tenants.a]\nmatch = [{ unit = \"x.service\" }, { exe = \"/bin/x\" }, { uid = 1001 }]\n[tenants.b]\nmatch = [{ user = \"alice\", comm = \"x\" }]\n",
            "`tenants.b.match[0]` is covered by `tenants.a.match[2]`, so it never matches: tenants and their matchers are tried in file order and the first match wins; remove it, narrow the earlier matcher, or declare tenant `b` before tenant `a`",
        ),
        // An earlier glob comm matches a later exact comm.
        (
            "[tenants.a]\nmatch = [{ comm = \"python*\" }]\n[tenants.b]\nmatch = [{ comm = \"python3\", gid = 50 }]\n",
            "`tenants.b.match[0]` is covered by `tenants.a.match[0]`",
        ),
        // Likewise for exe, with the other keys equal.
        (
            "[tenants.a]\nmatch = [{ exe = \"/usr/bin/*\", user = \"alice\" }]\n[tenants.b]\nmatch = [{ uid = 1001, exe = \"/usr/bin/perl\" }]\n",
            "`tenants.b.match[0]` is covered by `tenants.a.match[0]`",
        ),
        // Identical globs and regexes.
        (
            "[tenants.a]\nmatch = [{ cmdline = \"--role=web\", comm = \"py*\" }]\n[tenants.b]\nmatch = [{ comm = \"py*\", cmdline = \"--role=web\" }]\n",
            "`tenants.b.match[0]` is covered by `tenants.a.match[0]`",
        ),
    ];
    for (text, expected) in cases {
        let warnings = warnings_of(text);
        let covered: Vec<&String> = warnings.iter().filter(|w| w.contains("covered")).collect();
        assert_eq!(covered.len(), 1, "{text}\n{warnings:#?}");
        assert!(covered[0].starts_with(expected), "{text}\n{warnings:#?}");
    }
}

#[test]
fn matchers_that_reach_other_processes_are_not_covered() {
    let texts = [
        // Different values.
        "[tenants.a]\nmatch = [{ user = \"alice\" }]\n[tenants.b]\nmatch = [{ uid = 1002 }]\n",
        // The later one is broader.
        "[tenants.a]\nmatch = [{ user = \"alice\", comm = \"x\" }]\n[tenants.b]\nmatch = [{ user = \"alice\" }]\n",
        // A glob that does not match the exact name.
        "[tenants.a]\nmatch = [{ comm = \"python*\" }]\n[tenants.b]\nmatch = [{ comm = \"perl\" }]\n",
        // An exact name does not cover a glob that contains it.
        "[tenants.a]\nmatch = [{ comm = \"python\" }]\n[tenants.b]\nmatch = [{ comm = \"python*\" }]\n",
        // The same text in another key.
        "[tenants.a]\nmatch = [{ comm = \"nginx\" }]\n[tenants.b]\nmatch = [{ unit = \"nginx\" }]\n",
        // A regex is compared as written, not as a glob.
        "[tenants.a]\nmatch = [{ cmdline = \"web\" }]\n[tenants.b]\nmatch = [{ cmdline = \"--role=web\" }]\n",
        // A later glob that the earlier exact name matches is broader.
        "[tenants.a]\nmatch = [{ exe = \"/usr/bin/python3\" }]\n[tenants.b]\nmatch = [{ exe = \"/usr/bin/*\" }]\n",
    ];
    for text in texts {
        let warnings = warnings_of(text);
        assert!(
            warnings.iter().all(|w| !w.contains("covered")),
            "{text}\n{warnings:#?}"
        );
    }
}

#[test]
fn each_covered_matcher_is_reported_once_with_the_first_that_covers_it() {
    let warnings = warnings_of(
        "[tenants.a]\nmatch = [{ comm = \"x*\" }, { comm = \"xy*\" }]\n[tenants.b]\nmatch = [{ comm = \"xy*\" }, { comm = \"xyz\" }]\n",
    );
    let covered: Vec<&str> = warnings
        .iter()
        .filter(|w| w.contains("covered"))
        .map(|w| w.split(", so").next().unwrap_or_default())
        .collect();
    assert_eq!(
        covered,
        [
            "`tenants.b.match[0]` is covered by `tenants.a.match[1]`",
            "`tenants.b.match[1]` is covered by `tenants.a.match[0]`",
        ],
        "{warnings:#?}"
    );
}

#[test]
fn summary_lists_each_tenants_matchers_in_order() {
    let text = r#"
[tenants.web]
cpu = { baseline = 1, burst = 2 }
match = [{ comm = "nginx" }, { user = "alice", cmdline = "--role=(web|api)" }]
[tenants.batch]
cpu = { baseline = 0.5, burst = 2 }
match = [{ group = "staff", exe = "/usr/bin/*" }, { unit = "batch.service" }]
"#;
    let summary = valid_on_disks(text).config.summary();
    let lines: Vec<&str> = summary.lines().collect();
    assert!(lines[4].ends_with(", 4 process matchers"), "{summary}");
    let header = lines
        .iter()
        .position(|line| line.contains("MATCH"))
        .expect("a matcher table");
    assert_eq!(
        lines[header..],
        [
            "  TENANT  MATCH     PROCESSES (first match wins, in this order)",
            r#"  web     match[0]  { comm = "nginx" }"#,
            r#"  web     match[1]  { uid = 1001, cmdline = "--role=(web|api)" }"#,
            r#"  batch   match[0]  { gid = 50, exe = "/usr/bin/*" }"#,
            r#"  batch   match[1]  { unit = "batch.service" }"#,
        ],
        "{summary}"
    );
    // Without matchers there is no table.
    assert!(!valid(EXAMPLE).config.summary().contains("MATCH"));
}

/// The example's commented-out `match` line, uncommented, is valid on the
/// fake host (user alice).
#[test]
fn the_example_match_configuration_is_valid_when_uncommented() {
    // Not the `match = [{ KEY = VALUE, ... }]` that documents the keys.
    let config = example_uncommented(&["match = [{ user = \""], 1, DISKS);
    let batch = matchers(&config, "batch");
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].uid, Some(1001));
}

#[test]
fn a_matcher_that_would_capture_pid_1_or_qosd_is_refused() {
    let rendered = errors_on(
        "[tenants.ops]\nmatch = [{ comm = \"nginx\" }, { uid = 0 }, { exe = \"/usr/bin/q*\" }]\n",
        crate::testing::FakeHost::facts(),
    );
    assert!(
        rendered.contains("`tenants.ops.match[1]`: this matcher would capture PID 1 (systemd, pid 1), which qosd never moves"),
        "{rendered}"
    );
    assert!(
        rendered.contains(
            "`tenants.ops.match[2]`: this matcher would capture qosd itself (qosd, pid 4242)"
        ),
        "{rendered}"
    );
    assert!(!rendered.contains("match[0]"), "{rendered}");
}
