//! Chat: what a message may say.

crate::trimmed_text! {
    /// A message's text: 1–1000 characters after trimming.
    MessageBody, 1, 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_trimmed_and_bounded() {
        assert_eq!(MessageBody::parse("body", "  hi ").unwrap().as_str(), "hi");
        assert_eq!(
            MessageBody::parse("input.body", "   ").unwrap_err().field,
            "input.body"
        );
        let longest = "魚".repeat(1000);
        assert!(MessageBody::parse("body", &longest).is_ok());
        assert!(MessageBody::parse("body", &format!("{longest}x")).is_err());
    }
}
