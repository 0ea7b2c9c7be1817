//! The raw schema: what the TOML file may contain, before units, ranges and
//! cross-checks are validated. Fields keep their spans so later errors can
//! point at them.
//!
//! Lists whose entries are checked one by one (`[[host.disks]]`,
//! `[[host.links]]`, a tenant's `disk`, `net` and `match`) are named in their
//! table as untyped values, so serde accepts the key and suggests it for a
//! typo, and decoded entry by entry with [`decode_list`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::IoDimension;
use super::diagnostics::{Diagnostics, Span, join_key, unknown_key_message};

/// The whole file. Sections that failed to decode are left out and
/// `complete` is false, so cross-checks (totals, overlaps) are skipped rather
/// than reported on partial data.
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub agent: RawAgent,
    pub host: RawHost,
    /// `[[host.disks]]`, decoded entry by entry (so one bad entry, or a typo
    /// elsewhere in `[host]`, hides nothing), without the entries that failed.
    pub disks: Vec<Listed<RawDiskCapacity>>,
    /// False when some `[[host.disks]]` entry failed to decode: then the
    /// declared devices are unknown, and checking the tenants' disks against
    /// them would only add noise.
    pub disks_decoded: bool,
    /// `[[host.links]]`, decoded entry by entry like the disks.
    pub links: Vec<Listed<RawLinkCapacity>>,
    /// False when some `[[host.links]]` entry failed to decode (see
    /// `disks_decoded`).
    pub links_decoded: bool,
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
    pub reserved_memory: Option<Spanned<MemorySize>>,
    /// `[[host.disks]]`, decoded on its own into [`RawConfig::disks`]; named
    /// here so that serde accepts it and suggests it for a typo.
    #[expect(dead_code, reason = "only the key's name is used")]
    pub disks: Option<IgnoredAny>,
    /// `[[host.links]]`, decoded on its own into [`RawConfig::links`].
    #[expect(dead_code, reason = "only the key's name is used")]
    pub links: Option<IgnoredAny>,
}

/// One `[tenants.NAME]` table with its name. `body` is `None` when the table
/// did not decode (that error is already recorded); the name is still checked.
/// `disk` and `net` are decoded entry by entry, apart from the body.
#[derive(Debug)]
pub(super) struct RawTenantEntry {
    pub name: Spanned<String>,
    pub body: Option<RawTenant>,
    /// The entries of `disk = [...]` that decoded.
    pub disk: Vec<Listed<RawDiskContract>>,
    /// The entries of `net = [...]` that decoded.
    pub net: Vec<Listed<RawNetContract>>,
    /// The entries of `match = [...]` that decoded.
    pub matchers: Vec<Listed<RawMatcher>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a tenant table such as `[tenants.web]` with `cgroup` or `match`, and `cpu`, `disk`, `net` and `memory` keys"
)]
pub(super) struct RawTenant {
    pub cgroup: Option<Spanned<PathText>>,
    pub cpu: Option<Spanned<RawContract>>,
    /// `memory = { baseline = "1GiB", burst = "2GiB", limit = "3GiB" }`.
    pub memory: Option<Spanned<RawMemoryContract>>,
    /// Per-device `disk = [{ device = ..., read_bps = {...} }]`, decoded on
    /// its own into [`RawTenantEntry::disk`].
    #[expect(dead_code, reason = "only the key's name is used")]
    pub disk: Option<IgnoredAny>,
    /// Per-interface `net = [{ interface = ..., egress = {...} }]`, decoded
    /// on its own into [`RawTenantEntry::net`].
    #[expect(dead_code, reason = "only the key's name is used")]
    pub net: Option<IgnoredAny>,
    /// Process matchers `match = [{ user = "alice" }, ...]`, decoded on
    /// their own into [`RawTenantEntry::matchers`]; the span is the list's.
    #[serde(rename = "match")]
    pub match_processes: Option<Spanned<IgnoredAny>>,
}

/// One entry of a tenant's `match = [...]`: every key it has must hold.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a matcher table such as `{ user = "alice" }` or `{ comm = "nginx" }`, with any of `user`, `uid`, `group`, `gid`, `comm`, `exe`, `cmdline` and `unit`"#
)]
pub(super) struct RawMatcher {
    pub user: Option<Spanned<UserText>>,
    pub uid: Option<Spanned<IdNumber>>,
    pub group: Option<Spanned<GroupText>>,
    pub gid: Option<Spanned<IdNumber>>,
    pub comm: Option<Spanned<PatternText>>,
    pub exe: Option<Spanned<PatternText>>,
    pub cmdline: Option<Spanned<PatternText>>,
    pub unit: Option<Spanned<UnitText>>,
}

/// `{ baseline, burst, weight }` of the CPU. The quantities stay untyped
/// (number or string) so the unit is parsed, and its errors collected, during
/// validation.
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

/// A tenant's `memory = { baseline, burst, limit?, protection? }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a memory contract table such as `{ baseline = "1GiB", burst = "2GiB" }`"#
)]
pub(super) struct RawMemoryContract {
    pub baseline: Spanned<MemorySize>,
    pub burst: Spanned<MemorySize>,
    pub limit: Option<Spanned<MemorySize>>,
    pub protection: Option<Spanned<ProtectionText>>,
    /// Refused during validation with the reason: memory has no weight.
    /// Any value is read, so that the reason is what the operator sees.
    pub weight: Option<Spanned<IgnoredAny>>,
}

/// One `[[host.disks]]` entry: a device and its capacity per dimension.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a `[[host.disks]]` table with a `device` and its capacities, such as `{ device = "/dev/vda", read_bps = "50MiB/s" }`"#
)]
pub(super) struct RawDiskCapacity {
    pub device: Spanned<DeviceText>,
    pub read_bps: Option<Spanned<ByteRate>>,
    pub write_bps: Option<Spanned<ByteRate>>,
    pub read_iops: Option<Spanned<IoRate>>,
    pub write_iops: Option<Spanned<IoRate>>,
}

/// `$view` of the field of `$raw` that `$dimension` names (`read_bps`, ...):
/// the fields of bytes and of IOs have different types, so no generic
/// function can pick one.
macro_rules! dimension_field {
    ($raw:expr, $dimension:expr, $view:ident) => {
        match $dimension {
            IoDimension::ReadBps => $view(&$raw.read_bps),
            IoDimension::WriteBps => $view(&$raw.write_bps),
            IoDimension::ReadIops => $view(&$raw.read_iops),
            IoDimension::WriteIops => $view(&$raw.write_iops),
        }
    };
}

impl RawDiskCapacity {
    /// The capacity of `dimension` as written, and its span.
    pub fn capacity(&self, dimension: IoDimension) -> Option<(&Quantity, Span)> {
        fn view<Q: AsRef<Quantity>>(field: &Option<Spanned<Q>>) -> Option<(&Quantity, Span)> {
            field
                .as_ref()
                .map(|field| (field.get_ref().as_ref(), field.span()))
        }
        dimension_field!(self, dimension, view)
    }
}

/// One entry of a tenant's `disk = [...]`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a disk contract table such as `{ device = "/dev/vda", read_bps = { baseline = "20MiB/s", burst = "50MiB/s" } }`"#
)]
pub(super) struct RawDiskContract {
    pub device: Spanned<DeviceText>,
    pub read_bps: Option<Spanned<RawDiskLimit<ByteRate>>>,
    pub write_bps: Option<Spanned<RawDiskLimit<ByteRate>>>,
    pub read_iops: Option<Spanned<RawDiskLimit<IoRate>>>,
    pub write_iops: Option<Spanned<RawDiskLimit<IoRate>>>,
    pub weight: Option<Spanned<Weight>>,
}

/// `{ baseline, burst }` of one dimension of a disk contract.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a contract table such as `{ baseline = "20MiB/s", burst = "50MiB/s" }` (bytes per second) or `{ baseline = 500, burst = 2000 }` (IOPS)"#
)]
pub(super) struct RawDiskLimit<Q> {
    pub baseline: Spanned<Q>,
    pub burst: Spanned<Q>,
    /// Refused during validation with a hint: a disk entry has one weight,
    /// written next to its `device`.
    pub weight: Option<Spanned<Weight>>,
}

/// A dimension's `{ baseline, burst }` as written, with spans.
pub(super) struct DiskLimitView<'a> {
    /// The whole `{ ... }` table.
    pub span: Span,
    pub baseline: (&'a Quantity, Span),
    pub burst: (&'a Quantity, Span),
    pub weight: Option<Span>,
}

impl RawDiskContract {
    /// The contract of `dimension` as written, if any.
    pub fn limit(&self, dimension: IoDimension) -> Option<DiskLimitView<'_>> {
        fn view<Q: AsRef<Quantity>>(
            field: &Option<Spanned<RawDiskLimit<Q>>>,
        ) -> Option<DiskLimitView<'_>> {
            let field = field.as_ref()?;
            let limit = field.get_ref();
            Some(DiskLimitView {
                span: field.span(),
                baseline: (limit.baseline.get_ref().as_ref(), limit.baseline.span()),
                burst: (limit.burst.get_ref().as_ref(), limit.burst.span()),
                weight: limit.weight.as_ref().map(Spanned::span),
            })
        }
        dimension_field!(self, dimension, view)
    }
}

/// One `[[host.links]]` entry: an interface and its egress capacity.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a `[[host.links]]` table with an `interface` and its capacity, such as `{ interface = "eth0", egress = "1Gbit/s" }`"#
)]
pub(super) struct RawLinkCapacity {
    pub interface: Spanned<InterfaceText>,
    pub egress: Spanned<BitRate>,
}

/// One entry of a tenant's `net = [...]`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a net contract table such as `{ interface = "eth0", egress = { baseline = "100Mbit/s", burst = "1Gbit/s" } }`"#
)]
pub(super) struct RawNetContract {
    pub interface: Spanned<InterfaceText>,
    pub egress: Spanned<RawEgressLimit>,
    pub weight: Option<Spanned<Weight>>,
    /// The host-side veth of the tenant's own network namespace.
    pub veth: Option<Spanned<InterfaceText>>,
}

/// `{ baseline, burst }` of a net contract's egress.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a contract table such as `{ baseline = "100Mbit/s", burst = "1Gbit/s" }`"#
)]
pub(super) struct RawEgressLimit {
    pub baseline: Spanned<BitRate>,
    pub burst: Spanned<BitRate>,
    /// Refused during validation with a hint: a net entry's weight is
    /// written next to its `interface`.
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
        deserializer.deserialize_any(QuantityVisitor {
            expecting: r#"a number or a string such as "1.5" or "500m""#,
        })
    }
}

/// Reads a [`Quantity`]; `expecting` is what a type error says to write.
struct QuantityVisitor {
    expecting: &'static str,
}

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
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

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
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

/// Declares a [`Quantity`] field type with its own type error, so a boolean
/// where a byte rate belongs is not answered with an example in cores.
macro_rules! quantity_field {
    ($name:ident, $expecting:literal) => {
        #[derive(Debug, Clone, PartialEq)]
        pub(super) struct $name(pub Quantity);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let visitor = QuantityVisitor {
                    expecting: $expecting,
                };
                deserializer.deserialize_any(visitor).map($name)
            }
        }

        impl AsRef<Quantity> for $name {
            fn as_ref(&self) -> &Quantity {
                &self.0
            }
        }
    };
}

quantity_field!(
    ByteRate,
    r#"a byte rate such as "50MiB/s" or a number of bytes per second"#
);
quantity_field!(
    MemorySize,
    r#"a memory size such as "1GiB" or a whole number of bytes"#
);
quantity_field!(IoRate, "a whole number of IOs per second such as 2000");
quantity_field!(
    BitRate,
    r#"a bit rate such as "100Mbit/s" or a number of bits per second"#
);

text_field!(DurationText, r#"a duration string such as "1s" or "500ms""#);
text_field!(PathText, "a path string");
text_field!(
    DeviceText,
    r#"a device string such as "/dev/vda" or "254:0" (MAJ:MIN)"#
);
text_field!(ProtectionText, r#"a protection string, "hard" or "soft""#);
text_field!(InterfaceText, r#"a network interface name such as "eth0""#);
text_field!(
    AddressText,
    r#"an address string such as "127.0.0.1:9477" or "[::1]:9477""#
);
text_field!(UserText, r#"a user name string such as "alice""#);
text_field!(GroupText, r#"a group name string such as "staff""#);
text_field!(
    PatternText,
    r#"a pattern string such as "nginx" or "python*""#
);
text_field!(
    UnitText,
    r#"a systemd unit or slice name string such as "nginx.service""#
);
number_field!(Fraction, "a number between 0 and 1 such as 0.9");
number_field!(Weight, "a positive number such as 2");

/// A user or group id as written: any whole number, so a negative or too
/// large one is refused during validation with the range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct IdNumber(pub i128);

impl<'de> Deserialize<'de> for IdNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = IdNumber;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a whole number id such as 1001")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<IdNumber, E> {
                Ok(IdNumber(value.into()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<IdNumber, E> {
                Ok(IdNumber(value.into()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

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
    let mut raw = RawConfig {
        disks_decoded: true,
        links_decoded: true,
        ..RawConfig::default()
    };
    for (key, value) in document.iter() {
        match key.get_ref().as_ref() {
            "agent" => raw.agent = decode(value, document, diagnostics).unwrap_or_default(),
            "host" => {
                raw.host = decode(value, document, diagnostics).unwrap_or_default();
                let disks = decode_list(value, "disks", "host.disks", document, diagnostics);
                (raw.disks, raw.disks_decoded) = disks;
                let links = decode_list(value, "links", "host.links", document, diagnostics);
                (raw.links, raw.links_decoded) = links;
            }
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
        .map(|(name, body)| {
            let key = join_key("tenants", name.get_ref());
            let (disk_key, net_key) = (join_key(&key, "disk"), join_key(&key, "net"));
            let match_key = join_key(&key, "match");
            RawTenantEntry {
                name: Spanned::new(name.span(), name.get_ref().to_string()),
                body: decode(body, document, diagnostics),
                disk: decode_list(body, "disk", &disk_key, document, diagnostics).0,
                net: decode_list(body, "net", &net_key, document, diagnostics).0,
                matchers: decode_list(body, "match", &match_key, document, diagnostics).0,
            }
        })
        .collect()
}

/// An entry of a list with its index in the file's list (entries that did
/// not decode are left out, so this is not always its index in the `Vec`).
#[derive(Debug)]
pub(super) struct Listed<T> {
    pub index: usize,
    pub entry: Spanned<T>,
}

/// What to write instead of something that is not a list.
trait ListOf {
    const EXPECTING: &'static str;
}

impl ListOf for RawDiskCapacity {
    const EXPECTING: &'static str = r#"expected a list of disks: declare each in its own `[[host.disks]]` table (double brackets) with `device = "/dev/vda"` and its capacities"#;
}

impl ListOf for RawDiskContract {
    const EXPECTING: &'static str = r#"expected a list of disk contracts, one per device, such as `disk = [{ device = "/dev/vda", read_bps = { baseline = "20MiB/s", burst = "50MiB/s" } }]`"#;
}

impl ListOf for RawLinkCapacity {
    const EXPECTING: &'static str = r#"expected a list of links: declare each in its own `[[host.links]]` table (double brackets) with `interface = "eth0"` and its capacity, such as `egress = "1Gbit/s"`"#;
}

impl ListOf for RawNetContract {
    const EXPECTING: &'static str = r#"expected a list of net contracts, one per interface, such as `net = [{ interface = "eth0", egress = { baseline = "100Mbit/s", burst = "1Gbit/s" } }]`"#;
}

impl ListOf for RawMatcher {
    const EXPECTING: &'static str = r#"expected a list of process matchers, such as `match = [{ user = "alice" }, { comm = "nginx" }]`"#;
}

/// Decodes the array at `table.name` (when `table` is a table that has it)
/// entry by entry, so each bad entry gets its own error and hides nothing.
/// Returns the entries that decoded, and whether all did. A `table` that is
/// not a table is left to the decoding of the whole table to report.
fn decode_list<T: DeserializeOwned + ListOf>(
    table: &Spanned<DeValue>,
    name: &str,
    key: &str,
    document: &DeTable,
    diagnostics: &mut Diagnostics,
) -> (Vec<Listed<T>>, bool) {
    let DeValue::Table(table) = table.get_ref() else {
        return (Vec::new(), true);
    };
    let Some(list) = table.get(name) else {
        return (Vec::new(), true);
    };
    let DeValue::Array(items) = list.get_ref() else {
        diagnostics.error(key, Some(list.span()), T::EXPECTING);
        return (Vec::new(), false);
    };
    let decoded: Vec<Listed<T>> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let entry = decode(item, document, diagnostics)?;
            let entry = Spanned::new(item.span(), entry);
            Some(Listed { index, entry })
        })
        .collect();
    let complete = decoded.len() == items.len();
    (decoded, complete)
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
