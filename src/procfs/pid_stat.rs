//! /proc/PID/stat: the one line `pid (comm) state ppid ...` the kernel prints
//! for a process, read by classification (flags) and `qosd status --tenant`
//! (CPU time).

/// A field after the `)` closing comm, by position there (state is 0; add 3
/// for the field's number in proc(5)), named for errors.
pub(crate) struct StatField {
    name: &'static str,
    index: usize,
}

/// The process's PF_* flags (field 9).
pub(crate) const FLAGS: StatField = StatField {
    name: "flags",
    index: 6,
};
/// CPU time in user mode, in USER_HZ ticks (field 14).
pub(crate) const UTIME: StatField = StatField {
    name: "utime",
    index: 11,
};
/// CPU time in kernel mode, in USER_HZ ticks (field 15).
pub(crate) const STIME: StatField = StatField {
    name: "stime",
    index: 12,
};

/// comm, and the numbers of `fields`.
pub(crate) fn parse_stat<const N: usize>(
    text: &str,
    fields: [StatField; N],
) -> Result<(&str, [u64; N]), String> {
    let (comm, rest) = split_stat(text)?;
    let mut numbers = [0; N];
    for (number, field) in numbers.iter_mut().zip(&fields) {
        let name = field.name;
        let value = rest
            .split_whitespace()
            .nth(field.index)
            .ok_or_else(|| format!("fewer fields than {name} after comm"))?;
        *number = value
            .parse()
            .map_err(|_| format!("{name} {value:?} is not a number"))?;
    }
    Ok((comm, numbers))
}

/// Splits `pid (comm) state ppid ...` into comm and the fields after it:
/// comm may hold spaces and parentheses, so it runs from the first '(' to
/// the last ')'.
fn split_stat(text: &str) -> Result<(&str, &str), String> {
    let open = text.find('(').ok_or("no '(' before comm")?;
    let close = text.rfind(')').ok_or("no ')' after comm")?;
    if close < open {
        return Err("')' before '('".to_owned());
    }
    Ok((&text[open + 1..close], &text[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line from a real 6.1 kernel: flags 0x208040 has PF_KTHREAD.
    const KTHREADD: &str = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 24 0 0";

    #[test]
    fn fields_are_counted_after_comm() {
        assert_eq!(
            parse_stat(KTHREADD, [FLAGS, STIME]),
            Ok(("kthreadd", [2129984, 1]))
        );
        let spaced = "7 (a) b (c) S 1) R 1 1 1 0 -1 64 0 0 0 0 250 50 0 0";
        assert_eq!(
            parse_stat(spaced, [UTIME, STIME]),
            Ok(("a) b (c) S 1", [250, 50]))
        );
    }

    #[test]
    fn a_short_or_garbled_line_is_an_error_naming_the_field() {
        assert_eq!(
            parse_stat("100 (app) S 1 2", [FLAGS]),
            Err("fewer fields than flags after comm".to_owned())
        );
        assert_eq!(
            parse_stat("100 (app) S 1 1 1 0 -1 x", [FLAGS]),
            Err("flags \"x\" is not a number".to_owned())
        );
        assert!(parse_stat("100 (app S 1", [FLAGS]).is_err());
        assert!(parse_stat("100 )app( S 1", [FLAGS]).is_err());
    }
}
