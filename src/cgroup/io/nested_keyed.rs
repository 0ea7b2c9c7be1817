//! Nested-keyed files, as the kernel's cgroup-v2.rst names the format: a
//! device a line, then its `key=value` pairs (io.stat, io.max).

use std::collections::BTreeMap;

use super::{DeviceNumber, IoValueError};

/// The values of `keys` on one line, in that order; `None` where absent.
pub(super) type Values<'a, const N: usize> = [Option<&'a str>; N];

/// Parses every non-empty line of `content`; `to_value` turns a device's
/// values into what the caller keeps, `None` to leave the device out. A
/// device kept twice is an error.
pub(super) fn parse_devices<T, const N: usize>(
    content: &str,
    keys: &[&'static str; N],
    to_value: impl Fn(DeviceNumber, Values<N>) -> Result<Option<T>, IoValueError>,
) -> Result<BTreeMap<DeviceNumber, T>, IoValueError> {
    let mut devices = BTreeMap::new();
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let (device, values) = parse_line(line, keys)?;
        let Some(value) = to_value(device, values)? else {
            continue;
        };
        if devices.insert(device, value).is_some() {
            return Err(IoValueError::RepeatedDevice { device });
        }
    }
    Ok(devices)
}

/// Splits `MAJ:MIN key=value ...` into the device and the values of `keys`
/// (in that order); unknown keys are skipped, a repeated key is an error.
fn parse_line<'a, const N: usize>(
    line: &'a str,
    keys: &[&'static str; N],
) -> Result<(DeviceNumber, Values<'a, N>), IoValueError> {
    let mut fields = line.split_whitespace();
    let first = fields.next().unwrap_or_default();
    let device: DeviceNumber = first.parse().map_err(|source| IoValueError::Device {
        source,
        line: line.to_owned(),
    })?;
    let mut values = [None; N];
    for field in fields {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| IoValueError::NotKeyValue {
                device,
                field: field.to_owned(),
            })?;
        let Some(index) = keys.iter().position(|k| *k == key) else {
            continue;
        };
        if values[index].replace(value).is_some() {
            let key = keys[index];
            return Err(IoValueError::RepeatedKey { device, key });
        }
    }
    Ok((device, values))
}

/// Every one of `keys` must have a value; each is parsed with `parse`.
pub(super) fn required<T: Copy + Default, const N: usize>(
    device: DeviceNumber,
    keys: &[&'static str; N],
    values: Values<N>,
    parse: fn(DeviceNumber, &str) -> Result<T, IoValueError>,
) -> Result<[T; N], IoValueError> {
    let missing: Vec<&'static str> = keys
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| *key)
        .collect();
    if !missing.is_empty() {
        return Err(IoValueError::MissingKeys {
            device,
            keys: missing,
        });
    }
    let mut parsed = [T::default(); N];
    for (slot, value) in parsed.iter_mut().zip(values.into_iter().flatten()) {
        *slot = parse(device, value)?;
    }
    Ok(parsed)
}

pub(super) fn number(device: DeviceNumber, value: &str) -> Result<u64, IoValueError> {
    value.parse().map_err(|_| IoValueError::NotANumber {
        device,
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_every_device(_: DeviceNumber, _: Values<1>) -> Result<Option<()>, IoValueError> {
        Ok(Some(()))
    }

    #[test]
    fn blank_content_is_no_devices() {
        for content in ["", "\n", " \n\n"] {
            let devices = parse_devices(content, &["rbytes"], keep_every_device).unwrap();
            assert!(devices.is_empty(), "{content:?}");
        }
    }
}
