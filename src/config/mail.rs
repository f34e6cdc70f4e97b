//! How mail leaves the process.

use super::checks::check_url;
use super::keys::{Invalid, config_group};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How mail leaves the process (`mail_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    Smtp,
    Directory,
    Off,
}

config_group! {
    pub struct Mail {
        title: "Mail",
        about: "The mails Fishapp sends: confirming an email change and telling the old address; confirming and sending notifications by e-mail.",
        mail_transport: Option<MailTransportKind> = None,
            "how mail leaves: `smtp` (`MAIL_SMTP_URL`), `directory` (one `.eml` file per mail in `MAIL_DIR`: development only) or `off` (email changes and notifications by e-mail are then `UNAVAILABLE`)",
            shown "unset: `directory` in `fishapp dev`, `off` otherwise";
        mail_smtp_url: Option<String> = None,
            "the SMTP server: `smtp://user:password@host:587?tls=required` (STARTTLS), `smtps://…:465` (TLS), `smtp://host:25` (plain, a relay on the same network); connections are pooled and opened with the first mail (secret: redacted in `config`)";
        mail_from: String = "Fishapp <no-reply@localhost>".to_owned(),
            "the sender of every mail";
        mail_dir: PathBuf = PathBuf::from(".stack/data/mail"),
            "where the `directory` transport writes mails";
    }
}

impl Mail {
    fn check(&self) -> Result<(), Invalid> {
        if self.mail_transport == Some(MailTransportKind::Smtp) {
            let url = self.mail_smtp_url.as_deref().unwrap_or_default();
            check_url("mail_smtp_url", url, &["smtp", "smtps"])?;
        }
        Ok(())
    }
}
