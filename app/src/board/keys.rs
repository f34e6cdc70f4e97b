//! The idempotency key of a mutation: the client's `clientMutationId`, or a fresh one.

use crate::error::AppError;
use uuid::Uuid;

/// A mutation's idempotency key: the caller's `clientMutationId`, or a fresh one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationKey {
    /// From the caller: an earlier request may have started the saga under it.
    Client(String),
    /// Made for this request: no saga can have it yet.
    Fresh(String),
}

impl MutationKey {
    /// `clientMutationId`: 1–64 of `A-Z a-z 0-9 - _ .`; none makes a fresh key.
    pub fn parse(field: &str, raw: Option<&str>) -> Result<Self, AppError> {
        match raw {
            None => Ok(MutationKey::Fresh(Uuid::new_v4().simple().to_string())),
            Some(key)
                if (1..=64).contains(&key.len())
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                Ok(MutationKey::Client(key.to_owned()))
            }
            Some(_) => Err(AppError::bad_input(
                field,
                "must be 1 to 64 of A-Z, a-z, 0-9, '-', '_' and '.'",
            )),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            MutationKey::Client(key) | MutationKey::Fresh(key) => key,
        }
    }

    /// The caller's own key, if it sent one.
    pub fn client_key(&self) -> Option<&str> {
        match self {
            MutationKey::Client(key) => Some(key),
            MutationKey::Fresh(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_keys_are_checked_or_made() {
        assert!(matches!(
            MutationKey::parse("k", None),
            Ok(MutationKey::Fresh(_))
        ));
        assert_eq!(
            MutationKey::parse("k", Some("retry-me.1_A")).ok(),
            Some(MutationKey::Client("retry-me.1_A".to_owned()))
        );
        for bad in ["", "has space", &"x".repeat(65)] {
            assert!(MutationKey::parse("k", Some(bad)).is_err(), "{bad:?}");
        }
    }
}
