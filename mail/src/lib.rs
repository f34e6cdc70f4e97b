//! Outgoing e-mail, through one transport chosen by configuration:
//!
//! - **SMTP** (lettre): the URL says how — `smtp://host:587?tls=required` (STARTTLS),
//!   `smtps://user:password@host:465` (TLS from the start), `smtp://host:25` (plain, for a relay
//!   on the same network); connections are pooled and opened on the first mail, never at start;
//! - **a directory**: each mail written as an `.eml` file, for development (read what would
//!   have been sent) — never for production;
//! - **off**: sending fails with [`MailError::Off`], so a feature that needs mail refuses clearly
//!   instead of pretending.
//!
//! No I/O of ours beyond the transport's; no knowledge of what the mail says (the callers write
//! their own texts). Nothing is retried here: a caller that must deliver keeps its own record.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How mail leaves the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// An SMTP server, by URL (its credentials included: a secret).
    Smtp { url: String },
    /// `.eml` files in this directory (development).
    Directory(PathBuf),
    /// No mail at all.
    Off,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: Transport,
    /// The sender: `Fishapp <no-reply@example.com>`.
    pub from: String,
    /// Longest an SMTP exchange may take.
    pub timeout: Duration,
}

/// One mail: plain text, to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("no mail transport is configured")]
    Off,
    #[error("not a mail address: {0:?}")]
    Address(String),
    #[error("the mail transport is misconfigured: {0}")]
    Settings(String),
    #[error("the mail could not be sent: {0}")]
    Send(String),
    /// The SMTP server refused this mail for good (its address, its content): sending it again
    /// will not help.
    #[error("the mail was refused: {0}")]
    Refused(String),
}

enum Sender {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Directory(AsyncFileTransport<Tokio1Executor>),
    Off,
}

/// The process's mail sender. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    sender: Arc<Sender>,
    from: Mailbox,
}

impl Mailer {
    /// Builds the transport without touching the network (SMTP connects with the first mail).
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        let from: Mailbox = settings.from.parse().map_err(|_| {
            MailError::Settings(format!("mail_from {:?} is not a mailbox", settings.from))
        })?;
        let sender = match &settings.transport {
            Transport::Smtp { url } => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // Never the URL itself in an error: it carries the password.
                    .map_err(|e| MailError::Settings(format!("mail_smtp_url: {}", kind_of(&e))))?;
                Sender::Smtp(builder.timeout(Some(settings.timeout)).build())
            }
            Transport::Directory(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    MailError::Settings(format!("cannot create {}: {e}", dir.display()))
                })?;
                Sender::Directory(AsyncFileTransport::new(dir))
            }
            Transport::Off => Sender::Off,
        };
        Ok(Self {
            sender: Arc::new(sender),
            from,
        })
    }

    /// Whether mail can be sent at all.
    pub fn is_on(&self) -> bool {
        !matches!(*self.sender, Sender::Off)
    }

    /// Sends `mail`, or says why not.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Address(mail.to.clone()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| MailError::Send(e.to_string()))?;
        match &*self.sender {
            Sender::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                if e.is_permanent() {
                    MailError::Refused(kind_of(&e))
                } else {
                    MailError::Send(kind_of(&e))
                }
            }),
            Sender::Directory(files) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Send(e.to_string())),
            Sender::Off => Err(MailError::Off),
        }
    }
}

/// An SMTP error in words that never repeat the URL (which may hold a password).
fn kind_of(error: &lettre::transport::smtp::Error) -> String {
    if error.is_permanent() {
        "the server refused the mail for good".to_owned()
    } else if error.is_transient() {
        "the server refused the mail for now".to_owned()
    } else if error.is_timeout() {
        "the server did not answer in time".to_owned()
    } else if error.is_client() {
        "the SMTP URL or its settings are not valid".to_owned()
    } else {
        "the connection to the SMTP server failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(transport: Transport) -> MailSettings {
        MailSettings {
            transport,
            from: "Fishapp <no-reply@example.com>".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_directory_transport_writes_one_file_per_mail() {
        let dir = std::env::temp_dir().join(format!("fishapp-mail-{}", std::process::id()));
        let mailer = Mailer::new(&settings(Transport::Directory(dir.clone()))).expect("a mailer");
        assert!(mailer.is_on());
        let mail = Mail {
            to: "angler@example.com".to_owned(),
            subject: "Hello".to_owned(),
            text: "A line of text".to_owned(),
        };
        mailer.send(&mail).await.expect("written");
        let files: Vec<_> = std::fs::read_dir(&dir).expect("the directory").collect();
        assert_eq!(files.len(), 1);
        let path = files[0].as_ref().expect("an entry").path();
        let text = std::fs::read_to_string(path).expect("the mail");
        assert!(text.contains("To: angler@example.com"), "{text}");
        assert!(text.contains("A line of text"), "{text}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn off_says_so_and_bad_settings_are_refused() {
        let off = Mailer::new(&settings(Transport::Off)).expect("a mailer");
        assert!(!off.is_on());
        let mail = Mail {
            to: "a@example.com".to_owned(),
            subject: "s".to_owned(),
            text: "t".to_owned(),
        };
        assert!(matches!(off.send(&mail).await, Err(MailError::Off)));
        let bad_from = MailSettings {
            from: "not a mailbox".to_owned(),
            ..settings(Transport::Off)
        };
        assert!(Mailer::new(&bad_from).is_err());
        let secret = "smtp://user:hunter2@[not a host";
        let refused = Mailer::new(&settings(Transport::Smtp {
            url: secret.to_owned(),
        }));
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            !message.is_empty() && !message.contains("hunter2"),
            "{message}"
        );
    }
}
