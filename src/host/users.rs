//! User and group names of process matchers (`user = "alice"`,
//! `group = "staff"`), resolved to ids through the system's user database
//! (NSS: /etc/passwd, /etc/group, LDAP, ...) when the file is read.

use nix::unistd::{Group, User};

/// The uid of user `name` on this host; the error says why not ("no user
/// named bob on this host").
pub fn resolve_user_name(name: &str) -> Result<u32, String> {
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(format!("no user named {name} on this host")),
        Err(error) => Err(format!("cannot look up user {name}: {error}")),
    }
}

/// The gid of group `name` on this host; the error says why not ("no group
/// named ops on this host").
pub fn resolve_group_name(name: &str) -> Result<u32, String> {
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no group named {name} on this host")),
        Err(error) => Err(format!("cannot look up group {name}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_lookups_name_what_they_cannot_find() {
        assert_eq!(
            resolve_user_name("qosd-no-such-user"),
            Err("no user named qosd-no-such-user on this host".to_owned())
        );
        assert_eq!(
            resolve_group_name("qosd-no-such-group"),
            Err("no group named qosd-no-such-group on this host".to_owned())
        );
        // root is uid 0 and gid 0 wherever it is listed.
        if let Ok(uid) = resolve_user_name("root") {
            assert_eq!(uid, 0);
        }
    }
}
