//! Units as operators write them: cores ("500m", 1.5), durations ("1s"),
//! byte rates ("50MiB/s"), IOs per second (2000), bit rates ("100Mbit/s")
//! and memory sizes ("1GiB").

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::schema::Quantity;
use super::{BitsPerSecond, BytesPerSecond, Cores, IoDimension};

/// Why a CPU quantity was refused; the message says which forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CoresError(String);

const CORES_FORMS: &str = r#"write a number of cores (1.5, 2 or "1.5") or millicores ("500m")"#;

impl Cores {
    /// A number of cores: finite and not negative.
    pub fn new(cores: f64) -> Result<Cores, CoresError> {
        let shown = |cores: f64| cores.to_string();
        finite_and_not_negative(cores, "a CPU quantity", &shown).map_err(CoresError)?;
        // `-0.0 + 0.0` is `0.0`: never show "-0.0 cores".
        Ok(Cores(cores + 0.0))
    }
}

/// A quantity (`what`, such as "a byte rate") must be a finite number, and
/// not negative; `shown` writes it as the error shows it.
fn finite_and_not_negative(
    value: f64,
    what: &str,
    shown: &dyn Fn(f64) -> String,
) -> Result<(), String> {
    if !value.is_finite() {
        return Err(format!(
            "{what} must be a finite number, not {}",
            shown(value)
        ));
    }
    if value < 0.0 {
        return Err(format!("{what} must not be negative, got {}", shown(value)));
    }
    Ok(())
}

impl FromStr for Cores {
    type Err = CoresError;

    /// "1.5" and "2" are cores, "500m" is millicores (Kubernetes' notation).
    fn from_str(text: &str) -> Result<Cores, CoresError> {
        let trimmed = text.trim();
        let (number, divisor) = match trimmed.strip_suffix('m') {
            Some(millicores) => (millicores.trim_end(), 1000.0),
            None => (trimmed, 1.0),
        };
        let invalid = || CoresError(format!("invalid CPU quantity {text:?}: {CORES_FORMS}"));
        // Rust also parses "inf" and "NaN"; `Cores::new` refuses them.
        let value: f64 = number.parse().map_err(|_| invalid())?;
        Cores::new(value / divisor)
    }
}

impl fmt::Display for Cores {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(&format_cores(self.0))
    }
}

/// A quantity as the file writes it: a plain number in the base unit (cores,
/// bytes or bits per second), checked by `from_number`, or a string with a
/// unit, parsed by `T`'s `FromStr`.
pub(super) fn parse_quantity<T: FromStr>(
    quantity: &Quantity,
    from_number: fn(f64) -> Result<T, T::Err>,
) -> Result<T, T::Err> {
    match quantity {
        Quantity::Number(number) => from_number(*number),
        Quantity::Text(text) => text.parse(),
    }
}

const MIN_INTERVAL: Duration = Duration::from_millis(250);
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// A control-loop tick between [`MIN_INTERVAL`] and [`MAX_INTERVAL`] (the
/// error message spells them as DESIGN.md does, "60s" rather than "1m"):
/// shorter ticks cost CPU for noise, longer ones react too late.
pub(super) fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text.trim()).map_err(|error| {
        format!(r#"invalid duration {text:?} ({error}); write it like "1s", "500ms" or "2m""#)
    })?;
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(format!(
            "{} is out of range: the interval must be between 250ms and 60s",
            format_duration(interval)
        ));
    }
    Ok(interval)
}

pub(super) fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Cores with one to three decimals ("2.0", "1.5", "0.125"), so they read as
/// quantities next to whole CPU counts.
pub(super) fn format_cores(cores: f64) -> String {
    let mut text = format_number(cores);
    if !text.contains('.') && cores.is_finite() {
        text.push_str(".0");
    }
    text
}

/// A number with at most three decimals and no trailing zeros ("2", "0.9").
pub(super) fn format_number(value: f64) -> String {
    let text = format!("{:.3}", value + 0.0);
    if !text.contains('.') {
        return text;
    }
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Why a byte rate or a bit rate was refused; the message says which forms
/// are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateError(String);

const RATE_FORMS: &str = r#"write bytes per second as "50MiB/s", "500M/s" or "1.5GiB/s" (K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti powers of 1024), or as a number of bytes per second without quotes, such as 52428800"#;

/// Unit prefixes, largest first: `k`, `M`, `G`, `T` are powers of 1000,
/// `Ki`, `Mi`, `Gi`, `Ti` powers of 1024. Byte rates, bit rates and memory
/// sizes are all read and shown with these.
const PREFIXES: [(&str, u64); 8] = [
    ("Ti", 1 << 40),
    ("T", 1_000_000_000_000),
    ("Gi", 1 << 30),
    ("G", 1_000_000_000),
    ("Mi", 1 << 20),
    ("M", 1_000_000),
    ("Ki", 1 << 10),
    ("k", 1000),
];

/// [`PREFIXES`] and then none (`""`, 1): the order displays try them in.
fn prefixes_then_none() -> impl Iterator<Item = (&'static str, u64)> {
    PREFIXES.into_iter().chain([("", 1)])
}

/// `Ki`, `Mi`, `Gi`, `Ti`: powers of 1024.
fn is_binary(prefix: &str) -> bool {
    prefix.ends_with('i')
}

/// The multiplier of `prefix`, one of [`PREFIXES`] or none. `K` reads as
/// `k`, as it is commonly written; with `any_case` every prefix reads
/// without regard to case, as tc reads them ("100mbit" is "100Mbit").
fn prefix_multiplier(prefix: &str, any_case: bool) -> Option<f64> {
    let same = |name: &str| {
        name == prefix || ((any_case || name == "k") && name.eq_ignore_ascii_case(prefix))
    };
    let found = prefixes_then_none().find(|(name, _)| same(name));
    found.map(|(_, size)| size as f64)
}

/// `number` (as written) times the multiplier of `prefix` (see
/// [`prefix_multiplier`]); `None` when either is not valid.
fn scaled(number: &str, prefix: &str, any_case: bool) -> Option<f64> {
    let multiplier = prefix_multiplier(prefix, any_case)?;
    let value: f64 = number.parse().ok()?;
    Some(value * multiplier)
}

/// Why `text` is not a `what` ("byte rate"): `why`, then the `forms` that
/// are accepted.
fn invalid_message(what: &str, text: &str, why: &str, forms: &str) -> String {
    format!("invalid {what} {text:?}: {why}{forms}")
}

/// `text` cut where its number ends: the number, and the unit after it
/// without the spaces between (`"50 MiB/s"` gives `"50"` and `"MiB/s"`).
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    (number, unit.trim_start())
}

impl BytesPerSecond {
    /// A number of bytes per second: finite and not negative.
    pub fn new(bytes_per_second: f64) -> Result<BytesPerSecond, RateError> {
        finite_and_not_negative(bytes_per_second, "a byte rate", &format_number)
            .map_err(RateError)?;
        Ok(BytesPerSecond(bytes_per_second + 0.0))
    }
}

impl FromStr for BytesPerSecond {
    type Err = RateError;

    /// A number, an optional space, an optional prefix (K, M, G, T or Ki, Mi,
    /// Gi, Ti), an optional `B`, and `/s`: "50MiB/s", "500M/s", "1000B/s".
    fn from_str(text: &str) -> Result<BytesPerSecond, RateError> {
        let invalid = |why: &str| RateError(invalid_message("byte rate", text, why, RATE_FORMS));
        let trimmed = text.trim();
        if is_zero(trimmed) {
            return Ok(BytesPerSecond(0.0));
        }
        let Some(amount) = trimmed.strip_suffix("/s") else {
            let why = if trimmed.parse::<f64>().is_ok() {
                "a rate written as a string needs a unit and `/s`; "
            } else {
                "a rate ends in `/s`; "
            };
            return Err(invalid(why));
        };
        let (number, unit) = split_number(amount);
        if unit.ends_with('b') || unit.ends_with("bit") {
            return Err(invalid("`b` and `bit` are bits; qosd counts bytes (`B`); "));
        }
        let prefix = unit.strip_suffix('B').unwrap_or(unit);
        let bytes = scaled(number, prefix, false).ok_or_else(|| invalid(""))?;
        BytesPerSecond::new(bytes)
    }
}

impl fmt::Display for BytesPerSecond {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(&format_bytes_per_second(self.0))
    }
}

/// A byte rate in the largest unit of its size, binary or SI, that shows it
/// exactly with at most three decimals ("20 MiB/s", "500 MB/s", "1.5 GiB/s",
/// "512 B/s"); a rate that neither shows exactly is rounded in the binary
/// unit ("1.333 MiB/s").
pub fn format_bytes_per_second(bytes_per_second: f64) -> String {
    format_rate(bytes_per_second, "B", byte_rate_prefix)
}

/// A rate in `unit`s per second, with the prefix that `choose` picks for its
/// value: "1.5 GiB/s". One that is not finite is shown as it is ("inf B/s").
fn format_rate(rate: f64, unit: &str, choose: fn(f64) -> (&'static str, u64)) -> String {
    let value = rate + 0.0;
    if !value.is_finite() {
        return format!("{value} {unit}/s");
    }
    let (prefix, size) = choose(value);
    format!("{} {prefix}{unit}/s", format_number(value / size as f64))
}

/// The largest prefix of the binary or SI family that is not more than a
/// byte rate (none for small ones) and shows it exactly with at most three
/// decimals; the binary one when neither does.
fn byte_rate_prefix(value: f64) -> (&'static str, u64) {
    let natural = |binary: bool| {
        let mut family = prefixes_then_none()
            .filter(|(prefix, _)| prefix.is_empty() || is_binary(prefix) == binary);
        let fits = family.find(|(_, size)| value.abs() >= *size as f64);
        fits.unwrap_or(("", 1))
    };
    let exact = |(_, size): &(&str, u64)| {
        let thousandths = value / *size as f64 * 1000.0;
        (thousandths - thousandths.round()).abs() <= 1e-9 * thousandths.abs().max(1.0)
    };
    let binary = natural(true);
    let si = natural(false);
    [binary, si].into_iter().find(exact).unwrap_or(binary)
}

/// IOs per second: a whole, non-negative TOML number (2000, or 2e3).
pub(super) fn parse_iops(quantity: &Quantity) -> Result<f64, String> {
    match quantity {
        Quantity::Number(iops) if !iops.is_finite() => {
            Err(format!("IOPS must be a finite number, not {iops}"))
        }
        Quantity::Number(iops) if *iops < 0.0 => Err(format!(
            "IOPS must not be negative, got {}",
            format_number(*iops)
        )),
        Quantity::Number(iops) if iops.fract() != 0.0 => Err(format!(
            "IOPS are a whole number of IOs per second, got {iops}"
        )),
        Quantity::Number(iops) => Ok(iops + 0.0),
        Quantity::Text(text) => {
            let hint = if text.trim().ends_with("/s") {
                " (a rate in bytes per second belongs in `read_bps` or `write_bps`)"
            } else {
                ""
            };
            Err(format!(
                "invalid IOPS {text:?}: write a whole number of IOs per second without quotes, such as 2000{hint}"
            ))
        }
    }
}

/// "2000 IOPS".
pub(super) fn format_iops(iops: f64) -> String {
    format!("{} IOPS", format_number(iops))
}

/// A value of `dimension` in its unit: bytes per second or IOPS.
pub(super) fn format_io(dimension: IoDimension, value: f64) -> String {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => format_bytes_per_second(value),
        IoDimension::ReadIops | IoDimension::WriteIops => format_iops(value),
    }
}

/// Parses a value of `dimension`: a byte rate or IOPS.
pub(super) fn parse_io(dimension: IoDimension, quantity: &Quantity) -> Result<f64, String> {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => {
            parse_quantity(quantity, BytesPerSecond::new)
                .map(BytesPerSecond::get)
                .map_err(|error| error.to_string())
        }
        IoDimension::ReadIops | IoDimension::WriteIops => parse_iops(quantity),
    }
}

const BIT_RATE_FORMS: &str = r#"write bits per second as "100Mbit/s", "1Gbit/s", "500kbit" or "10Mibit/s" (k, M, G, T are powers of 1000; Ki, Mi, Gi, Ti powers of 1024; `/s` is optional and tc's lowercase "100mbit" reads too), or as a number of bits per second without quotes, such as 100000000"#;

impl BitsPerSecond {
    /// A number of bits per second: finite and not negative.
    pub fn new(bits_per_second: f64) -> Result<BitsPerSecond, RateError> {
        finite_and_not_negative(bits_per_second, "a bit rate", &format_number)
            .map_err(RateError)?;
        Ok(BitsPerSecond(bits_per_second + 0.0))
    }
}

/// What a rate's unit counts, once its prefix is taken off.
enum RateUnit {
    Bits,
    /// `tc_bps` when written `bps`, which tc reads as bytes per second
    /// (and people often mean as bits).
    Bytes {
        tc_bps: bool,
    },
}

impl FromStr for BitsPerSecond {
    type Err = RateError;

    /// A number, an optional space, an optional prefix (k, M, G, T or Ki, Mi,
    /// Gi, Ti, in any case), `bit`, and an optional `/s`: "100Mbit/s",
    /// "1gbit", "1500bit/s". A byte rate ("10MB/s", "10MiB/s", tc's "10mbps")
    /// is refused with the same rate in bits as a hint.
    fn from_str(text: &str) -> Result<BitsPerSecond, RateError> {
        let invalid = |why: &str| RateError(invalid_message("bit rate", text, why, BIT_RATE_FORMS));
        let trimmed = text.trim();
        let amount = trimmed.strip_suffix("/s").unwrap_or(trimmed);
        let (number, unit) = split_number(amount);
        if is_zero(amount) {
            return Ok(BitsPerSecond(0.0));
        }
        if unit.is_empty() {
            let why = if number.parse::<f64>().is_ok() {
                "a rate written as a string needs a unit such as `Mbit`; "
            } else {
                ""
            };
            return Err(invalid(why));
        }
        let lowercase = unit.to_ascii_lowercase();
        let (prefix, counted) = if let Some(prefix) = lowercase.strip_suffix("bit") {
            (prefix.to_owned(), RateUnit::Bits)
        } else if let Some(prefix) = lowercase.strip_suffix("bps") {
            (prefix.to_owned(), RateUnit::Bytes { tc_bps: true })
        } else if let Some(prefix) = unit.strip_suffix('B') {
            let prefix = prefix.to_ascii_lowercase();
            (prefix, RateUnit::Bytes { tc_bps: false })
        } else if let Some(prefix) = ["bytes", "byte"]
            .iter()
            .find_map(|bytes| lowercase.strip_suffix(bytes))
        {
            (prefix.to_owned(), RateUnit::Bytes { tc_bps: false })
        } else if lowercase.ends_with('b') {
            return Err(invalid(
                "write `bit` in full, since `b` is easily read as bytes; ",
            ));
        } else {
            return Err(invalid(""));
        };
        let amount = scaled(number, &prefix, true).ok_or_else(|| invalid(""))?;
        match counted {
            RateUnit::Bits => BitsPerSecond::new(amount),
            RateUnit::Bytes { tc_bps } => {
                let spelled = |bits: f64| {
                    BitsPerSecond::new(bits)
                        .ok()
                        .filter(|bits| bits.get() > 0.0)
                        .map(|bits| bits.to_string().replace(' ', ""))
                };
                let example = spelled(amount * 8.0).unwrap_or_else(|| "80Mbit/s".into());
                let mut message = format!(
                    "invalid bit rate {text:?}: that is a byte rate, but network rates are in \
                     bits, e.g. {example:?} (8 bits per byte)"
                );
                if tc_bps && let Some(as_bits) = spelled(amount) {
                    message.push_str(&format!(
                        "; tc reads `bps` as bytes per second: write {as_bits:?} if you meant bits"
                    ));
                }
                Err(RateError(message))
            }
        }
    }
}

impl fmt::Display for BitsPerSecond {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(&format_bits_per_second(self.0))
    }
}

/// A bit rate in the largest unit that shows it as a whole number, as tc
/// does ("100 Mbit/s", "1 Gbit/s", "1500 bit/s", "10 Mibit/s"); a rate that is
/// not a whole number of bits is shown in the largest SI unit of its size,
/// with at most three decimals ("1.333 kbit/s").
pub fn format_bits_per_second(bits_per_second: f64) -> String {
    format_rate(bits_per_second, "bit", bit_rate_prefix)
}

/// The largest prefix in which a bit rate is a whole number; for a rate
/// that is not a whole number of bits, the largest SI prefix not more than
/// it (or none).
fn bit_rate_prefix(value: f64) -> (&'static str, u64) {
    let whole = |(_, size): &(&str, u64)| {
        let count = value / *size as f64;
        (count - count.round()).abs() <= 1e-12 * count.abs().max(1.0) && count.round() != 0.0
    };
    let largest_si = || {
        let mut si = prefixes_then_none().filter(|(prefix, _)| !is_binary(prefix));
        si.find(|(_, size)| value.abs() >= *size as f64)
    };
    let found = prefixes_then_none().find(whole).or_else(largest_si);
    found.unwrap_or(("", 1))
}

/// Why a memory size was refused; the message says which forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SizeError(String);

const SIZE_FORMS: &str = r#"write a size as "1GiB", "300MiB" or "1.5GiB" (Ki, Mi, Gi, Ti, with or without B, are powers of 1024; K, M, G, T, with or without B, powers of 1000; B is bytes), or as a whole number of bytes without quotes, such as 1073741824"#;

/// A number of bytes: finite, not negative, whole once rounded down, and
/// within `u64`.
fn whole_bytes(bytes: f64, written: &str) -> Result<u64, SizeError> {
    let shown = |_| written.to_owned();
    finite_and_not_negative(bytes, "a memory size", &shown).map_err(SizeError)?;
    // 2^64 is exact as an f64; anything from there on does not fit.
    if bytes >= 18_446_744_073_709_551_616.0 {
        return Err(SizeError(format!(
            "{written} is too large for a memory size"
        )));
    }
    Ok(bytes.floor() as u64)
}

/// "0" (or "0.0"): zero needs no unit, as it is the same in all of them.
fn is_zero(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(|value| value == 0.0)
}

/// A memory size written as a string: a number, an optional space, and a
/// unit ("1GiB", "300MiB", "1.5G", "512 KiB", "4096B"). A fraction of the
/// unit is allowed and rounded down to whole bytes ("1.5KiB" is 1536). A
/// rate ("10MiB/s") is refused: memory sizes have no "/s".
pub fn parse_bytes(text: &str) -> Result<u64, SizeError> {
    let invalid = |why: &str| SizeError(invalid_message("memory size", text, why, SIZE_FORMS));
    let trimmed = text.trim();
    if let Some(size) = trimmed.strip_suffix("/s") {
        let size = size.trim_end();
        return Err(SizeError(format!(
            "invalid memory size {text:?}: that is a rate, but memory sizes have no \"/s\"; \
             write {size:?}"
        )));
    }
    let (number, unit) = split_number(trimmed);
    if is_zero(trimmed) {
        return Ok(0);
    }
    if unit.is_empty() {
        let why = if number.parse::<f64>().is_ok() {
            "a size written as a string needs a unit such as `MiB`; "
        } else {
            ""
        };
        return Err(invalid(why));
    }
    if unit.ends_with('b') || unit.ends_with("bit") {
        return Err(invalid(
            "`b` and `bit` are bits; memory is counted in bytes (`B`); ",
        ));
    }
    let prefix = unit.strip_suffix('B').unwrap_or(unit);
    let bytes = scaled(number, prefix, false).ok_or_else(|| invalid(""))?;
    whole_bytes(bytes, trimmed)
}

/// A memory size as the file writes it: a whole number of bytes, or a
/// string with a unit (see [`parse_bytes`]).
pub(super) fn parse_memory_size(quantity: &Quantity) -> Result<u64, SizeError> {
    match quantity {
        Quantity::Number(bytes) => {
            let written = format_number(*bytes);
            if bytes.is_finite() && *bytes >= 0.0 && bytes.fract() != 0.0 {
                return Err(SizeError(format!(
                    "a memory size written as a number is a whole number of bytes, got \
                     {written}; write a unit in a string for a fraction, such as \"1.5GiB\""
                )));
            }
            whole_bytes(*bytes, &written)
        }
        Quantity::Text(text) => parse_bytes(text),
    }
}

/// A memory size in the largest unit that shows it exactly: "2 GiB",
/// "300 MiB", "1.5 GiB" (at most three decimals, in the largest binary or
/// SI unit not more than the size), "1 GB", "4097 B".
pub fn format_bytes(bytes: u64) -> String {
    let value = u128::from(bytes);
    // Shown in `size` with at most three decimals, exactly.
    let exact = |size: u64| (value * 1000) % u128::from(size) == 0;
    // The largest prefix of the binary or SI family (which has plain bytes
    // too) that is not more than the size.
    let natural = |binary: bool| {
        let mut family = prefixes_then_none().filter(|(prefix, _)| is_binary(prefix) == binary);
        family.find(|(_, size)| bytes >= *size)
    };
    let decimal = [natural(true), natural(false)]
        .into_iter()
        .flatten()
        .find(|(_, size)| exact(*size));
    let (prefix, size) = decimal
        .or_else(|| {
            let whole = |(_, size): &(&str, u64)| bytes >= *size && bytes.is_multiple_of(*size);
            prefixes_then_none().find(whole)
        })
        .unwrap_or(("", 1));
    if bytes.is_multiple_of(size) {
        return format!("{} {prefix}B", bytes / size);
    }
    let thousandths = value * 1000 / u128::from(size);
    let decimals = format!("{:03}", thousandths % 1000);
    format!(
        "{}.{} {prefix}B",
        thousandths / 1000,
        decimals.trim_end_matches('0')
    )
}
