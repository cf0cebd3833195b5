//! Built-in roles. Issue 3 turns these into a permission catalogue; for now
//! they decide who may see what in the shell.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Auditor,
    Engineer,
    Support,
    Sales,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Auditor, Role::Engineer, Role::Support, Role::Sales];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Engineer => "engineer",
            Role::Support => "support",
            Role::Sales => "sales",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Administrator",
            Role::Auditor => "Auditor",
            Role::Engineer => "Engineer",
            Role::Support => "Customer support",
            Role::Sales => "Sales",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
