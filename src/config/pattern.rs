//! Text patterns of process matchers: an exact string, a shell glob, or a
//! regular expression, compiled once when the file is read.

use std::fmt;

use globset::{Glob, GlobMatcher};
use regex::Regex;

/// A compiled pattern that remembers how it was written (for messages, and
/// so configurations compare by what the file says).
#[derive(Clone)]
pub struct TextPattern {
    source: String,
    compiled: Compiled,
}

#[derive(Clone)]
enum Compiled {
    Exact,
    Glob(GlobMatcher),
    Regex(Regex),
}

impl TextPattern {
    /// An exact string unless it has glob characters (`*`, `?`, `[`).
    pub fn exact_or_glob(source: &str) -> Result<Self, String> {
        let compiled = if source.contains(['*', '?', '[']) {
            let glob =
                Glob::new(source).map_err(|error| format!("invalid glob {source:?}: {error}"))?;
            Compiled::Glob(glob.compile_matcher())
        } else {
            Compiled::Exact
        };
        Ok(TextPattern {
            source: source.to_owned(),
            compiled,
        })
    }

    pub fn regex(source: &str) -> Result<Self, String> {
        let regex = Regex::new(source).map_err(|error| {
            format!(
                "invalid regular expression {source:?}: {}",
                one_line(&error)
            )
        })?;
        Ok(TextPattern {
            source: source.to_owned(),
            compiled: Compiled::Regex(regex),
        })
    }

    pub fn matches(&self, text: &str) -> bool {
        match &self.compiled {
            Compiled::Exact => self.source == text,
            Compiled::Glob(glob) => glob.is_match(text),
            Compiled::Regex(regex) => regex.is_match(text),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern is a plain string (matches only itself).
    pub fn is_exact(&self) -> bool {
        matches!(self.compiled, Compiled::Exact)
    }
}

/// The regex crate draws a syntax error over several lines (the pattern, a
/// caret, then `error: what`); a diagnostic is one line, so keep the what.
fn one_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().rev().find(|line| !line.trim().is_empty());
    match last {
        Some(line) if text.contains('\n') => line.trim().trim_start_matches("error: ").to_owned(),
        _ => text,
    }
}

impl PartialEq for TextPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.is_exact() == other.is_exact()
    }
}

impl fmt::Debug for TextPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "{:?}", self.source)
    }
}

impl fmt::Display for TextPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_glob_and_regex_patterns_match_as_written() {
        let exact = TextPattern::exact_or_glob("nginx").unwrap();
        assert!(exact.matches("nginx") && !exact.matches("nginx2"));
        let glob = TextPattern::exact_or_glob("/usr/bin/py*").unwrap();
        assert!(glob.matches("/usr/bin/python3") && !glob.matches("/usr/sbin/python3"));
        let regex = TextPattern::regex("--role=(web|api)").unwrap();
        assert!(regex.matches("server --role=api --port 80") && !regex.matches("server --role=db"));
    }

    #[test]
    fn invalid_patterns_say_what_is_wrong() {
        assert!(
            TextPattern::exact_or_glob("a[b")
                .unwrap_err()
                .contains("invalid glob")
        );
        assert_eq!(
            TextPattern::regex("(").unwrap_err(),
            r#"invalid regular expression "(": unclosed group"#
        );
    }
}
