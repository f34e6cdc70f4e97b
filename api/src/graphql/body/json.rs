//! How much JSON a request may send, checked before it is parsed.

use crate::error::AppError;

/// What a request's JSON may be: a document is at most `graphql_max_query_bytes` (32 KiB by
/// default) and an honest request's variables are a few dozen values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Largest JSON text, in bytes.
    pub max_bytes: usize,
    /// Most JSON values (scalars, lists and objects) in it, counted before it is parsed.
    pub max_values: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_values: 10_000,
        }
    }
}

impl JsonLimits {
    /// Refuses `json` when it is over either limit; `field` names where it came from. Linear,
    /// and stops counting past the limit.
    pub fn check(&self, field: &str, json: &[u8]) -> Result<(), AppError> {
        if json.len() > self.max_bytes {
            return Err(AppError::over_limit(
                field,
                "maxJsonBytes",
                format!(
                    "{field} is {} bytes of JSON; at most {} are accepted",
                    json.len(),
                    self.max_bytes
                ),
            ));
        }
        if count_json_values(json, self.max_values) > self.max_values {
            return Err(AppError::over_limit(
                field,
                "maxJsonValues",
                format!(
                    "{field} holds more than {} JSON values; send fewer",
                    self.max_values
                ),
            ));
        }
        Ok(())
    }
}

/// An upper bound of the number of values in a JSON text: one, plus one per `[`, `{` and `,`
/// outside strings (each element or member after the first follows a comma; each list or
/// object is a value of its own). Stops once past `max`. Malformed text is counted the same
/// way; the parser refuses it afterwards.
fn count_json_values(json: &[u8], max: usize) -> usize {
    let mut count = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => {
                count += 1;
                if count > max {
                    return count;
                }
            }
            _ => {}
        }
    }
    count
}
