//! Accounts: roles, the stored user and its view, and the checks on sign-up input.

use crate::error::{Error, Result};
use crate::time::{serde_ts, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Attendee,
    Facilitator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Attendee => "attendee",
            Role::Facilitator => "facilitator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "attendee" => Some(Role::Attendee),
            "facilitator" => Some(Role::Facilitator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A stored account. `password_hash` is persisted but never part of [`User::view`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// Bumped by every password change; a refresh-token family lives only while the epoch it
    /// was created under is current. Items from before sessions have none: 0.
    #[serde(default)]
    pub session_epoch: u64,
}

impl User {
    pub fn view(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "email": self.email, "role": self.role })
    }
}

pub fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(Error::validation("email", "must be a valid email address"))
    }
}

pub fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > 100 {
        return Err(Error::validation("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_string())
}

pub fn validate_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(Error::validation("password", "must be 8 to 128 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@@x.io", "ann@x..io"] {
            assert!(normalize_email(bad).is_err(), "{bad} accepted");
        }
    }
}
