//! Flat-keyed files, as the kernel's cgroup-v2.rst names the format: one
//! `key value` pair a line (cpu.stat, memory.stat, memory.events).

/// What is wrong with a flat-keyed file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlatKeyedError {
    #[error("{key} is not a number: {value:?}")]
    NotANumber { key: &'static str, value: String },
    #[error("{key} is missing")]
    Missing { key: &'static str },
}

/// The numbers of the keys asked for; each is `None` while absent.
pub(crate) struct FlatKeyed<const N: usize> {
    keys: [&'static str; N],
    values: [Option<u64>; N],
}

impl<const N: usize> FlatKeyed<N> {
    /// Reads the values of `keys` from `content`; other keys are skipped (the
    /// kernel adds keys over time), and a key asked for must hold a number.
    pub(crate) fn parse(content: &str, keys: [&'static str; N]) -> Result<Self, FlatKeyedError> {
        let mut values = [None; N];
        for line in content.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let Some(index) = keys.iter().position(|wanted| *wanted == key) else {
                continue;
            };
            let number = value
                .trim()
                .parse()
                .map_err(|_| FlatKeyedError::NotANumber {
                    key: keys[index],
                    value: value.to_owned(),
                })?;
            values[index] = Some(number);
        }
        Ok(FlatKeyed { keys, values })
    }

    /// The value of `key`, which must be in the file.
    pub(crate) fn required(&self, key: &'static str) -> Result<u64, FlatKeyedError> {
        self.get(key).ok_or(FlatKeyedError::Missing { key })
    }

    /// The value of `key`, or 0 when the file does not have it.
    pub(crate) fn or_zero(&self, key: &'static str) -> u64 {
        self.get(key).unwrap_or(0)
    }

    fn get(&self, key: &'static str) -> Option<u64> {
        let index = self.keys.iter().position(|known| *known == key)?;
        self.values[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 2] = ["anon", "file"];

    #[test]
    fn takes_the_keys_asked_for_and_skips_the_rest() {
        let values = FlatKeyed::parse("anon 1000\nkernel x\nfile 2000\nshmem\n", KEYS).unwrap();
        assert_eq!(values.required("anon"), Ok(1000));
        assert_eq!(values.or_zero("file"), 2000);
    }

    #[test]
    fn absent_keys_are_missing_or_zero() {
        let values = FlatKeyed::parse("anon 5\n", KEYS).unwrap();
        assert_eq!(
            values.required("file"),
            Err(FlatKeyedError::Missing { key: "file" })
        );
        assert_eq!(values.or_zero("file"), 0);
    }

    #[test]
    fn a_value_that_is_not_a_number_is_an_error() {
        let error = FlatKeyed::parse("anon 12x\n", KEYS).err().unwrap();
        assert_eq!(error.to_string(), "anon is not a number: \"12x\"");
    }
}
