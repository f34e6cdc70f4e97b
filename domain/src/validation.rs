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

/// Declares a text value type: trimmed, then `MIN..=MAX` characters. Names, introductions, post
/// titles and contents are all this shape; only their bounds differ.
#[macro_export]
macro_rules! trimmed_text {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            /// A value Fishapp recorded itself (a row, a workflow history), taken as it was:
            /// rules are checked where values enter, and may have tightened since.
            pub fn from_record(recorded: String) -> Self {
                Self(recorded)
            }

            pub fn parse(field: &str, raw: &str) -> Result<Self, $crate::validation::Invalid> {
                let text = raw.trim();
                $crate::validation::check_length(field, text, Self::MIN_CHARS, Self::MAX_CHARS)?;
                Ok(Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}
