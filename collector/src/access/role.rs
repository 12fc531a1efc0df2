//! Who may do what, pure: the three roles, the write scope, and the permission each API call
//! needs. The route table that maps calls to permissions is in `http/auth.rs`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A token's role. Ordered: each role may do everything the roles below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads: queries, series, `/metrics`, alerts, agents, analyses.
    Viewer,
    /// A viewer that may also acknowledge alerts and create or end silences.
    Operator,
    /// An operator that may also manage tokens, enrollment and revocation, compact the store,
    /// forget agents and read the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: want viewer, operator or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == text)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

/// What a token may do: its role, and whether it may push samples (the write scope, a flag
/// apart from the role so that a sender such as vmagent can hold a token that reads nothing
/// more than a viewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub write: bool,
}

/// What an API call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Reading anything but the audit log: any role.
    Read,
    /// Acknowledging and silencing: operator or admin.
    Operate,
    /// Tokens, enrollment, revocation, compaction, forgetting agents, the audit log: admin.
    Administer,
    /// Pushing samples (remote write): the write scope, whatever the role.
    Write,
}

impl Permission {
    /// Whether `grant` may make a call that needs this permission.
    pub fn allows(self, grant: Grant) -> bool {
        match self {
            Permission::Read => true,
            Permission::Operate => grant.role >= Role::Operator,
            Permission::Administer => grant.role >= Role::Admin,
            Permission::Write => grant.write,
        }
    }
}

impl fmt::Display for Permission {
    /// What a refusal says is needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Read => "any valid token",
            Permission::Operate => "the operator or admin role",
            Permission::Administer => "the admin role",
            Permission::Write => "a token with the write scope",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_do_what_the_roles_below_it_may_and_write_is_apart() {
        use Permission::*;
        let allowed = |role, write| {
            [Read, Operate, Administer, Write]
                .into_iter()
                .filter(|p| p.allows(Grant { role, write }))
                .collect::<Vec<_>>()
        };
        assert_eq!(allowed(Role::Viewer, false), [Read]);
        assert_eq!(allowed(Role::Operator, false), [Read, Operate]);
        assert_eq!(allowed(Role::Admin, false), [Read, Operate, Administer]);
        assert_eq!(allowed(Role::Viewer, true), [Read, Write]);
        assert_eq!(
            allowed(Role::Admin, true),
            [Read, Operate, Administer, Write]
        );
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn roles_read_and_print_by_name() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.name());
        }
        let error = "root".parse::<Role>().unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown role \"root\": want viewer, operator or admin"
        );
    }
}
