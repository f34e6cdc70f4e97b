//! The lexical scan: how many tokens a document has and how deeply its brackets nest, counted
//! without parsing it (the parser recurses).

use super::QueryLimits;

/// What a lexical scan sees of a document.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Shape {
    pub(super) tokens: usize,
    pub(super) nesting: usize,
}

/// Counts the tokens of a GraphQL document (the spec's lexical grammar: punctuators, names,
/// numbers, strings and block strings; whitespace, commas and comments are ignored) and the
/// deepest bracket nesting. Linear; stops counting once past the limits, so a document far
/// over them costs no more than one at them. Characters outside the grammar count as one token
/// each (the parser rejects them).
pub(super) fn scan(query: &str, limits: &QueryLimits) -> Shape {
    let bytes = query.as_bytes();
    let (mut i, mut tokens, mut depth, mut nesting) = (0, 0, 0usize, 0);
    while i < bytes.len() && tokens <= limits.max_tokens && nesting <= limits.max_nesting {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                nesting = nesting.max(depth);
                i += 1;
            }
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote does not end the block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
            }
            // Punctuators (! $ & : = @ |) and anything else: one token each. A multi-byte UTF-8
            // character outside a string is not GraphQL; counting its bytes is still linear.
            _ => i += 1,
        }
        tokens += 1;
    }
    Shape { tokens, nesting }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits::default()
    }

    #[test]
    fn tokens_follow_the_lexical_grammar() {
        let shape = scan(
            r#"query Q($a: [Int!]) { f(s: "a \" b", b: """x "" y""", n: -1.5e3) # comment { { {
               ...on Q { g } }"#,
            &limits(),
        );
        // query Q ( $ a : [ Int ! ] ) { f ( s : "…" b : """…""" n : -1.5e3 ) ... on Q { g } }
        // (commas and the comment are not tokens)
        assert_eq!(shape.tokens, 31);
        assert_eq!(shape.nesting, 2);
    }

    #[test]
    fn scanning_stops_past_the_limits() {
        let limits = QueryLimits {
            max_tokens: 10,
            max_nesting: 5,
            ..limits()
        };
        assert_eq!(scan(&"a ".repeat(1_000), &limits).tokens, 11);
        assert_eq!(scan(&"{".repeat(1_000), &limits).nesting, 6);
    }
}
