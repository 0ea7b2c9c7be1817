//! The raw schema: what the TOML file may contain, before units, ranges and
//! cross-checks are validated. Fields keep their spans so later errors can
//! point at them.
//!
//! Keys that DESIGN.md describes but this version does not implement yet
//! (`memory`, `disk`, `net`, `match`, `host.disks`, `host.links`) are part of
//! the schema as untyped values: that way validation can say "not supported
//! yet" instead of "unknown key", and implementing one later means giving its
//! field a real type here.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostics::{Diagnostics, join_key, unknown_key_message};

/// The whole file. Sections that failed to decode are left out and
/// `complete` is false, so cross-checks (totals, overlaps) are skipped rather
/// than reported on partial data.
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub agent: RawAgent,
    pub host: RawHost,
    pub tenants: Vec<RawTenantEntry>,
    pub complete: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an `[agent]` table")]
pub(super) struct RawAgent {
    pub interval: Option<Spanned<DurationText>>,
    pub cgroup_root: Option<Spanned<PathText>>,
    pub parent: Option<Spanned<PathText>>,
    pub metrics_listen: Option<Spanned<AddressText>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[host]` table")]
pub(super) struct RawHost {
    pub reserved_cpu: Option<Spanned<Quantity>>,
    pub contention_threshold: Option<Spanned<Fraction>>,
    pub allow_overcommit: Option<Spanned<bool>>,
    /// Not implemented yet: `[[host.disks]]` device capacities.
    pub disks: Option<Spanned<toml::Value>>,
    /// Not implemented yet: `[[host.links]]` interface capacities.
    pub links: Option<Spanned<toml::Value>>,
}

/// One `[tenants.NAME]` table with its name. `body` is `None` when the table
/// did not decode (that error is already recorded); the name is still checked.
#[derive(Debug)]
pub(super) struct RawTenantEntry {
    pub name: Spanned<String>,
    pub body: Option<RawTenant>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a tenant table such as `[tenants.web]` with `cgroup` and `cpu` keys"
)]
pub(super) struct RawTenant {
    pub cgroup: Option<Spanned<PathText>>,
    pub cpu: Option<Spanned<RawContract>>,
    /// Not implemented yet: `memory = { baseline = "1GiB", burst = "2GiB" }`.
    pub memory: Option<Spanned<toml::Value>>,
    /// Not implemented yet: per-device `disk = [{ device = ..., read_bps = {...} }]`.
    pub disk: Option<Spanned<toml::Value>>,
    /// Not implemented yet: per-interface `net = [{ interface = ..., egress = {...} }]`.
    pub net: Option<Spanned<toml::Value>>,
    /// Not implemented yet: classify processes by user or command.
    #[serde(rename = "match")]
    pub match_processes: Option<Spanned<toml::Value>>,
}

/// `{ baseline, burst, weight }` of any resource. The quantities stay untyped
/// (number or string) so the unit is parsed, and its errors collected, during
/// validation; memory and disk contracts will reuse this shape.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a contract table such as `{ baseline = 1.5, burst = 2.0 }`"
)]
pub(super) struct RawContract {
    pub baseline: Spanned<Quantity>,
    pub burst: Spanned<Quantity>,
    pub weight: Option<Spanned<Weight>>,
}

/// A quantity as written: a TOML number or a string with a unit ("500m").
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Quantity {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(r#"a number or a string such as "1.5" or "500m""#)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Quantity, E> {
        Ok(Quantity::Number(value as f64))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Quantity, E> {
        Ok(Quantity::Number(value as f64))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Quantity, E> {
        Ok(Quantity::Number(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Quantity, E> {
        Ok(Quantity::Text(value.to_owned()))
    }
}

/// Declares a string field type whose type error says what the string should
/// look like (serde alone would say "expected a string").
macro_rules! text_field {
    ($name:ident, $expecting:literal) => {
        #[derive(Debug, Clone, PartialEq)]
        pub(super) struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl Visitor<'_> for TextVisitor {
                    type Value = $name;
                    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                        formatter.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name(value.to_owned()))
                    }
                }
                deserializer.deserialize_str(TextVisitor)
            }
        }
    };
}

/// Declares a number field type (integer or float) with its own type error.
macro_rules! number_field {
    ($name:ident, $expecting:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub(super) struct $name(pub f64);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct NumberVisitor;
                impl Visitor<'_> for NumberVisitor {
                    type Value = $name;
                    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                        formatter.write_str($expecting)
                    }
                    fn visit_i64<E: de::Error>(self, value: i64) -> Result<$name, E> {
                        Ok($name(value as f64))
                    }
                    fn visit_u64<E: de::Error>(self, value: u64) -> Result<$name, E> {
                        Ok($name(value as f64))
                    }
                    fn visit_f64<E: de::Error>(self, value: f64) -> Result<$name, E> {
                        Ok($name(value))
                    }
                }
                deserializer.deserialize_any(NumberVisitor)
            }
        }
    };
}

text_field!(DurationText, r#"a duration string such as "1s" or "500ms""#);
text_field!(PathText, "a path string");
text_field!(
    AddressText,
    r#"an address string such as "127.0.0.1:9477" or "[::1]:9477""#
);
number_field!(Fraction, "a number between 0 and 1 such as 0.9");
number_field!(Weight, "a positive number such as 2");

const TOP_LEVEL_KEYS: &[&str] = &["agent", "host", "tenants"];

/// Parses `text` and decodes every section, recording every error. `None`
/// means a syntax error: the document is not TOML and nothing was decoded.
pub(super) fn parse_document(text: &str, diagnostics: &mut Diagnostics) -> Option<RawConfig> {
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The recovered tree may be missing whole tables, so checking it would
        // only add confusing follow-on errors.
        for error in &syntax_errors {
            diagnostics.syntax_error(error, text);
        }
        return None;
    }
    Some(decode_document(document.get_ref(), diagnostics))
}

fn decode_document(document: &DeTable, diagnostics: &mut Diagnostics) -> RawConfig {
    let errors_before = diagnostics.error_count();
    let mut raw = RawConfig::default();
    for (key, value) in document.iter() {
        match key.get_ref().as_ref() {
            "agent" => raw.agent = decode(value, document, diagnostics).unwrap_or_default(),
            "host" => raw.host = decode(value, document, diagnostics).unwrap_or_default(),
            "tenants" => raw.tenants = decode_tenants(value, document, diagnostics),
            unknown => unknown_top_level_key(unknown, key, value.get_ref(), diagnostics),
        }
    }
    raw.complete = diagnostics.error_count() == errors_before;
    raw
}

/// Decodes one part of the document with serde; on failure records the error
/// (with the dotted key found from its span) and returns `None`.
fn decode<T: DeserializeOwned>(
    value: &Spanned<DeValue>,
    document: &DeTable,
    diagnostics: &mut Diagnostics,
) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value.clone()))
        .map_err(|error| diagnostics.decode_error(&error, document))
        .ok()
}

/// Each tenant is decoded on its own, so one bad tenant does not hide another.
fn decode_tenants(
    tenants: &Spanned<DeValue>,
    document: &DeTable,
    diagnostics: &mut Diagnostics,
) -> Vec<RawTenantEntry> {
    let DeValue::Table(table) = tenants.get_ref() else {
        let message = "expected a table of tenants, such as `[tenants.web]`";
        diagnostics.error("tenants", Some(tenants.span()), message);
        return Vec::new();
    };
    table
        .iter()
        .map(|(name, body)| RawTenantEntry {
            name: Spanned::new(name.span(), name.get_ref().to_string()),
            body: decode(body, document, diagnostics),
        })
        .collect()
}

fn unknown_top_level_key(
    unknown: &str,
    key: &Spanned<toml::de::DeString>,
    value: &DeValue,
    diagnostics: &mut Diagnostics,
) {
    let mut message = unknown_key_message(unknown, TOP_LEVEL_KEYS);
    // `[web]` instead of `[tenants.web]` is an easy slip; say where tenants go.
    if value.is_table() && message.starts_with("unknown key (") {
        message = format!("unknown section; a tenant is declared as `[tenants.{unknown}]`");
    }
    diagnostics.error(&join_key("", unknown), Some(key.span()), message);
}
