//! Collects errors and warnings while a file is checked, and renders errors
//! like a compiler: `path:line:col: error: `dotted.key`: message`.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

/// Byte offsets into the configuration text, as `toml` reports them.
pub(super) type Span = Range<usize>;

#[derive(Debug)]
struct Diagnostic {
    span: Option<Span>,
    /// The full dotted key, e.g. `tenants.web.cpu.baseline`.
    key: Option<String>,
    message: String,
}

/// Every problem found in one file. Checking goes on after an error so the
/// operator sees all of them at once instead of fixing one per `qosd check`.
#[derive(Debug, Default)]
pub(super) struct Diagnostics {
    errors: Vec<Diagnostic>,
    warnings: Vec<String>,
}

impl Diagnostics {
    pub(super) fn error(&mut self, key: &str, span: Option<Span>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            span,
            key: Some(key.to_owned()),
            message: message.into(),
        });
    }

    /// The value of `result`, or `None` once its error is recorded at `key`
    /// and `span`.
    pub(super) fn ok_or_record<T, E: fmt::Display>(
        &mut self,
        key: &str,
        span: Span,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.error(key, Some(span), error.to_string());
                None
            }
        }
    }

    pub(super) fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    pub(super) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub(super) fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// A TOML syntax error: the document has no reliable keys yet, so it names
    /// only the place (and the offending text where that helps).
    pub(super) fn syntax_error(&mut self, error: &toml::de::Error, text: &str) {
        let span = error.span();
        let offending = span.clone().and_then(|span| text.get(span));
        let message = match offending {
            Some(key) if error.message() == "duplicate key" && !key.is_empty() => {
                format!("duplicate key `{key}`")
            }
            _ => error.message().to_owned(),
        };
        self.errors.push(Diagnostic {
            span,
            key: None,
            message,
        });
    }

    /// A serde error from decoding part of `document`. The dotted key is found
    /// from the error's span, because `toml` does not expose its key path.
    pub(super) fn decode_error(&mut self, error: &toml::de::Error, document: &DeTable) {
        let span = error.span();
        let key = span
            .as_ref()
            .and_then(|span| key_path_at(document, span.start));
        self.errors.push(Diagnostic {
            span,
            key,
            message: reword_serde_message(error.message()),
        });
    }

    /// All errors, one per line, in the order they appear in the file.
    pub(super) fn render_errors(&self, text: &str, origin: &Path) -> String {
        let mut errors: Vec<&Diagnostic> = self.errors.iter().collect();
        // Errors without a place go last; `sort_by_key` is stable, so errors at
        // the same place keep the order in which they were found.
        errors.sort_by_key(|error| error.span.as_ref().map_or(usize::MAX, |span| span.start));
        let mut lines: Vec<String> = errors
            .iter()
            .map(|error| render_one(error, text, origin))
            .collect();
        lines.dedup();
        lines.join("\n")
    }
}

fn render_one(error: &Diagnostic, text: &str, origin: &Path) -> String {
    let place = match &error.span {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!("{}:{line}:{column}", origin.display())
        }
        None => origin.display().to_string(),
    };
    match &error.key {
        Some(key) => format!("{place}: error: `{key}`: {}", error.message),
        None => format!("{place}: error: {}", error.message),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// Appends `child` to a dotted key, quoting it when it is not a bare TOML key
/// (a tenant named `"web app"` is shown as `tenants."web app"`).
pub(super) fn join_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        key_segment(child)
    } else {
        format!("{parent}.{}", key_segment(child))
    }
}

fn key_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// The dotted key of the deepest key or value in `table` that contains `offset`.
/// Children are searched before their parent's span, and every table is
/// searched, because a table made by a `[header]` has a span that does not
/// cover its keys.
pub(super) fn key_path_at(table: &DeTable, offset: usize) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let name = key.get_ref().as_ref();
        if key.span().contains(&offset) {
            return Some(join_key("", name));
        }
        if let Some(inner) = value_path_at(value.get_ref(), offset) {
            return Some(format!("{}{inner}", join_key("", name)));
        }
        value.span().contains(&offset).then(|| join_key("", name))
    })
}

/// The path below a value, starting with `.key` or `[index]`.
fn value_path_at(value: &DeValue, offset: usize) -> Option<String> {
    match value {
        DeValue::Table(table) => key_path_at(table, offset).map(|path| format!(".{path}")),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            let inner = value_path_at(item.get_ref(), offset);
            match inner {
                Some(inner) => Some(format!("[{index}]{inner}")),
                None => item.span().contains(&offset).then(|| format!("[{index}]")),
            }
        }),
        _ => None,
    }
}

/// The close known key an operator probably meant, if any.
pub(super) fn suggest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    // About one typo per three characters, as rustc and cargo allow.
    let allowed = (unknown.chars().count() / 3).max(1);
    known
        .iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(
                &unknown.to_ascii_lowercase(),
                &candidate.to_ascii_lowercase(),
            );
            (distance, *candidate)
        })
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

pub(super) fn unknown_key_message(unknown: &str, known: &[&str]) -> String {
    match suggest(unknown, known) {
        Some(close) => format!("unknown key, did you mean `{close}`?"),
        None if known.is_empty() => "unknown key".to_owned(),
        None => format!("unknown key (expected one of {})", quoted_list(known)),
    }
}

fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    quoted.join(", ")
}

/// Serde speaks of Rust fields; an operator edits TOML keys.
fn reword_serde_message(message: &str) -> String {
    let quoted = backquoted_words(message);
    if message.starts_with("unknown field")
        && let Some((unknown, known)) = quoted.split_first()
    {
        return unknown_key_message(unknown, known);
    }
    if message.starts_with("missing field")
        && let Some(missing) = quoted.first()
    {
        return format!("missing required key `{missing}`");
    }
    message.to_owned()
}

/// The words between backquotes: serde writes field names as `name`.
fn backquoted_words(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}
