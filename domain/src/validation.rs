//! The one error every value type's `parse` returns.

use std::fmt;

/// Input that failed validation: the field at fault (as the client named it) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}

/// Checks a length in characters (not bytes: names are often Japanese).
pub fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let chars = value.chars().count();
    if !(min..=max).contains(&chars) {
        return Err(Invalid::new(
            field,
            format!("must be {min} to {max} characters long"),
        ));
    }
    Ok(())
}
