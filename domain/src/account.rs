//! Account value types. Each parses and validates itself, so a value of one of these types is
//! valid by construction; a failure names the field at fault.

use crate::validation::{Invalid, check_length};
use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

/// An email address: trimmed, 3–254 characters, one `@` with a non-empty local part and a
/// dotted domain, no spaces. Compared case-insensitively (the store enforces uniqueness on the
/// lower-cased form); kept as typed for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim();
        check_length(field, email, 3, 254)?;
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(Invalid::new(field, "is not an email address"));
        };
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err(Invalid::new(field, "is not an email address"));
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and rate limits are keyed on.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A new password: 8–128 characters of any kind (a documented deviation from the original's
/// 6–72 ASCII letters and digits), and not one of the 10,000 most common passwords.
pub struct NewPassword(String);

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(field: &str, raw: &str) -> Result<Self, Invalid> {
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(Invalid::new(
                field,
                format!(
                    "must be {} to {} characters long",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ));
        }
        if COMMON_PASSWORDS.contains(raw.to_lowercase().as_str()) {
            return Err(Invalid::new(
                field,
                "is one of the most common passwords; choose another",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A password presented to be checked (at login, or as updatePassword's old password): never
/// longer than any password can be, so that no request hands megabytes to the hash.
pub struct PasswordAttempt<'a>(&'a str);

impl<'a> PasswordAttempt<'a> {
    pub fn parse(field: &str, raw: &'a str) -> Result<Self, Invalid> {
        if raw.chars().count() > NewPassword::MAX_CHARS {
            return Err(Invalid::new(
                field,
                format!(
                    "is longer than any password ({} characters at most)",
                    NewPassword::MAX_CHARS
                ),
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for PasswordAttempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordAttempt(…)")
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

crate::trimmed_text! {
    /// A display name: 1–10 characters after trimming.
    UserName, 1, 10
}

crate::trimmed_text! {
    /// A self-introduction: 1–1000 characters after trimming.
    Introduction, 1, 1000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// The stored and wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "MALE",
            Sex::Female => "FEMALE",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, Invalid> {
        match raw {
            "MALE" => Ok(Sex::Male),
            "FEMALE" => Ok(Sex::Female),
            _ => Err(Invalid::new(field, "must be MALE or FEMALE")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_attempt_is_never_longer_than_a_password() {
        assert!(PasswordAttempt::parse("password", &"x".repeat(128)).is_ok());
        assert!(PasswordAttempt::parse("password", "").is_ok());
        let long = "x".repeat(129);
        let refused = PasswordAttempt::parse("password", &long).err();
        assert_eq!(refused.map(|e| e.field), Some("password".to_owned()));
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "  Angler@Example.JP ", "x.y+tag@sub.example.com"] {
            assert!(Email::parse("email", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@b",
            "a@.com",
            "a@b..com",
            "a b@c.com",
            "a@b.com.",
        ] {
            let error = Email::parse("email", bad).expect_err(bad);
            assert_eq!(error.field, "email");
        }
        let email = Email::parse("email", " Angler@Example.JP").unwrap();
        assert_eq!(email.as_str(), "Angler@Example.JP");
        assert_eq!(email.normalized(), "angler@example.jp");
    }

    #[test]
    fn passwords_any_characters_8_to_128() {
        assert!(NewPassword::parse("password", "釣りに行こうよ友よ").is_ok());
        assert!(NewPassword::parse("password", "short7!").is_err());
        assert!(NewPassword::parse("password", &"x".repeat(129)).is_err());
        assert!(NewPassword::parse("password", &"y".repeat(128)).is_ok());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert_eq!(COMMON_PASSWORDS.len(), 10_000);
        for common in ["password", "PASSWORD1", "12345678", "baseball"] {
            let error = NewPassword::parse("password", common).expect_err(common);
            assert!(error.message.contains("common"), "{common}");
        }
    }

    #[test]
    fn names_and_introductions_count_characters_not_bytes() {
        assert!(UserName::parse("name", "釣り人太郎釣り人太郎").is_ok()); // 10 chars, 30 bytes
        assert!(UserName::parse("name", "釣り人太郎釣り人太郎!").is_err());
        assert!(UserName::parse("name", "   ").is_err());
        assert!(Introduction::parse("introduction", &"あ".repeat(1000)).is_ok());
        assert!(Introduction::parse("introduction", &"あ".repeat(1001)).is_err());
    }
}
