//! Units as operators write them: cores ("500m", 1.5) and durations ("1s").

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::Cores;
use super::schema::Quantity;

/// Why a CPU quantity was refused; the message says which forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CoresError(String);

const CORES_FORMS: &str = r#"write a number of cores (1.5, 2 or "1.5") or millicores ("500m")"#;

impl Cores {
    /// A number of cores: finite and not negative.
    pub fn new(cores: f64) -> Result<Cores, CoresError> {
        if !cores.is_finite() {
            return Err(CoresError(format!(
                "a CPU quantity must be a finite number, not {cores}"
            )));
        }
        if cores < 0.0 {
            return Err(CoresError(format!(
                "a CPU quantity must not be negative, got {cores}"
            )));
        }
        // `-0.0 + 0.0` is `0.0`: never show "-0.0 cores".
        Ok(Cores(cores + 0.0))
    }
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

pub(super) fn parse_cores(quantity: &Quantity) -> Result<Cores, CoresError> {
    match quantity {
        Quantity::Number(cores) => Cores::new(*cores),
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
