//! The README as a user follows it: every command line it shows names a
//! script, test, benchmark or subcommand that exists (`.ci/run` runs one of
//! them), its configuration example validates, and no relative link in any
//! Markdown file of the repository leaves it or points at a missing file or
//! heading.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use clap::Parser;
use regex::Regex;

/// Programs the README may run that are not in the repository. A new one
/// belongs here only if its command line works as root on a fresh Debian
/// machine.
const SYSTEM_PROGRAMS: &[&str] = &["cargo", "dpkg", "install", "journalctl", "systemctl"];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repository().join("README.md")).unwrap()
}

/// A fenced code block: its info string (`sh`, `toml`, ...) and its lines.
struct Block {
    info: String,
    lines: Vec<String>,
}

/// The fenced code blocks of `markdown`, and the text outside them.
fn split_fences(markdown: &str) -> (Vec<Block>, Vec<String>) {
    let (mut blocks, mut prose) = (Vec::new(), Vec::new());
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (open.take(), fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    lines: Vec::new(),
                })
            }
            (None, None) => prose.push(line.to_owned()),
            (Some(block), Some(_)) => blocks.push(block),
            (Some(mut block), None) => {
                block.lines.push(line.to_owned());
                open = Some(block);
            }
        }
    }
    (blocks, prose)
}

/// The command lines of the README's `sh` blocks, without comments, as words.
fn command_lines() -> Vec<Vec<String>> {
    let (blocks, _) = split_fences(&readme());
    let comment = Regex::new(r"(^|\s)#.*$").unwrap();
    blocks
        .iter()
        .filter(|block| block.info == "sh")
        .flat_map(|block| &block.lines)
        .map(|line| comment.replace(line, "").into_owned())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .filter(|words: &Vec<String>| !words.is_empty())
        .collect()
}

/// A word that names a path inside the repository: relative, under one of
/// its top-level entries, and not under `target/`, which a build makes.
fn repository_path(word: &str) -> Option<PathBuf> {
    let path = Path::new(word);
    let first = path.components().next()?;
    let top = match first {
        Component::Normal(top) if word.contains('/') && top != "target" => top,
        _ => return None,
    };
    repository()
        .join(top)
        .exists()
        .then(|| repository().join(path))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why a command line does not name something that exists, if it does not.
fn check_command(words: &[String]) -> Result<(), String> {
    let program = words[0].as_str();
    if program == "qosd" {
        qosd::cli::Cli::try_parse_from(words).map_err(|error| error.to_string())?;
    } else if program.contains('/') {
        let path = repository_path(program).ok_or("not a path in the repository")?;
        if !is_executable(&path) {
            return Err(format!("{} is not an executable file", path.display()));
        }
    } else if !SYSTEM_PROGRAMS.contains(&program) {
        return Err(format!(
            "`{program}` is neither qosd, a repository script nor a known system program"
        ));
    }
    if program == "cargo" {
        check_cargo_target(words)?;
    }
    for word in &words[1..] {
        if let Some(path) = repository_path(word).filter(|path| !path.exists()) {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(())
}

/// `cargo test --test NAME`, `--bench NAME` and `--example NAME` name a file.
fn check_cargo_target(words: &[String]) -> Result<(), String> {
    for pair in words.windows(2) {
        let folder = match pair[0].as_str() {
            "--test" => "tests",
            "--bench" => "benches",
            "--example" => "examples",
            _ => continue,
        };
        let file = repository().join(folder).join(format!("{}.rs", pair[1]));
        if !file.exists() {
            return Err(format!("{} does not exist", file.display()));
        }
    }
    Ok(())
}

#[test]
fn every_command_line_names_what_exists() {
    let lines = command_lines();
    assert!(
        lines.len() >= 10,
        "the README's sh blocks went missing: {lines:?}"
    );
    let failures: Vec<String> = lines
        .iter()
        .filter_map(|words| {
            let error = check_command(words).err()?;
            Some(format!("`{}`: {error}", words.join(" ")))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_quick_start_commands_are_there_and_ci_runs_the_test_command() {
    let lines: Vec<String> = command_lines().iter().map(|w| w.join(" ")).collect();
    for command in ["scripts/demo.sh", "scripts/test.sh"] {
        assert!(
            lines.iter().any(|l| l == command),
            "no `{command}` in the README"
        );
    }
    let ci = std::fs::read_to_string(repository().join(".ci/run")).unwrap();
    let exec = ci
        .lines()
        .find_map(|line| line.trim().strip_prefix("exec "))
        .expect(".ci/run execs a command");
    assert!(
        lines.iter().any(|l| l == exec.trim()),
        ".ci/run runs `{exec}`, which the README does not show"
    );
}

#[test]
fn a_command_that_does_not_exist_is_caught() {
    let words = |line: &str| -> Vec<String> { line.split(' ').map(str::to_owned).collect() };
    assert!(check_command(&words("scripts/demo.sh")).is_ok());
    assert!(check_command(&words("scripts/no-such-script.sh")).is_err());
    assert!(check_command(&words("qosd check --config config/qosd.toml")).is_ok());
    assert!(check_command(&words("qosd chekc")).is_err());
    assert!(check_command(&words("install -m 0644 systemd/gone.service /etc/")).is_err());
    assert!(check_command(&words("cargo test --test no_such_test")).is_err());
    assert!(check_command(&words("curl http://example.org")).is_err());
}

#[test]
fn the_configuration_example_validates() {
    let (blocks, _) = split_fences(&readme());
    let examples: Vec<&Block> = blocks.iter().filter(|b| b.info == "toml").collect();
    assert!(!examples.is_empty(), "the README shows no configuration");
    for block in examples {
        let text = block.lines.join("\n");
        let facts = qosd::testing::FakeHost::facts();
        if let Err(error) = qosd::config::parse(&text, Path::new("README.md"), &facts) {
            panic!("the README's configuration does not validate:\n{error}");
        }
    }
}

/// Every Markdown file of the repository, outside `target/` and `.git/`.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap_or_default();
        if name == "target" || name == ".git" {
            continue;
        }
        if path.is_dir() {
            markdown_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces
/// to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> HashSet<String> {
    let (_, prose) = split_fences(markdown);
    prose
        .iter()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect()
}

/// The link targets of `markdown`, outside code: `[text](target)`,
/// `![alt](target)` and `[label]: target`.
fn link_targets(markdown: &str) -> Vec<String> {
    let (_, prose) = split_fences(markdown);
    let code_span = Regex::new(r"`[^`]*`").unwrap();
    let inline = Regex::new(r#"\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)"#).unwrap();
    let reference = Regex::new(r"^\s*\[[^\]]+\]:\s*(\S+)").unwrap();
    let text = code_span.replace_all(&prose.join("\n"), "").into_owned();
    let mut targets: Vec<String> = inline
        .captures_iter(&text)
        .map(|c| c[1].to_owned())
        .collect();
    targets.extend(
        text.lines()
            .filter_map(|line| Some(reference.captures(line)?[1].to_owned())),
    );
    targets
}

/// Why a link from the file `from` does not resolve inside `root`, if it
/// does not. Web and mail links are not checked.
fn check_link(root: &Path, from: &Path, target: &str) -> Result<(), String> {
    if target.starts_with("http://")
        || target.starts_with("https://")
        || target.starts_with("mailto:")
    {
        return Ok(());
    }
    if target.contains("://") || target.starts_with('/') {
        return Err("not a relative link".to_owned());
    }
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        from.to_path_buf()
    } else {
        from.parent().unwrap().join(path)
    };
    let resolved = file
        .canonicalize()
        .map_err(|_| format!("{} does not exist", file.display()))?;
    if !resolved.starts_with(root.canonicalize().unwrap()) {
        return Err(format!("{} is outside the repository", resolved.display()));
    }
    if !fragment.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
        let text = std::fs::read_to_string(&resolved).unwrap();
        if !anchors(&text).contains(fragment) {
            return Err(format!("no heading #{fragment} in {}", resolved.display()));
        }
    }
    Ok(())
}

#[test]
fn every_relative_link_resolves_inside_the_repository() {
    let root = repository();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("docs/design.md")),
        "{files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            if let Err(error) = check_link(&root, file, &target) {
                failures.push(format!("{}: ({target}): {error}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_link_that_leaves_the_repository_or_misses_is_caught() {
    let root = repository();
    let readme = root.join("README.md");
    assert!(check_link(&root, &readme, "docs/design.md").is_ok());
    assert!(check_link(&root, &readme, "docs/design.md#module-map").is_ok());
    assert!(check_link(&root, &readme, "docs/design.md#no-such-heading").is_err());
    assert!(check_link(&root, &readme, "docs/no-such-file.md").is_err());
    assert!(check_link(&root, &readme, "../elsewhere/DESIGN.md").is_err());
    assert!(check_link(&root, &readme, "..").is_err());
    assert!(check_link(&root, &readme, "/etc/passwd").is_err());
    assert!(check_link(&root, &readme, "file:///etc/passwd").is_err());
    let targets = link_targets("[a](x.md) ![b](y.png \"t\") `[c](code.md)`\n[d]: z.md\n");
    assert_eq!(targets, ["x.md", "y.png", "z.md"]);
}
