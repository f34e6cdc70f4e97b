//! A real SMTP server for tests, and reading what a mail says.

use super::*;

/// A real SMTP server for a test (Python's aiosmtpd, which `scripts/stack tools` installs),
/// keeping every mail it receives in a Maildir of its own; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    maildir: std::path::PathBuf,
    _child: tokio::process::Child,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let port = free_port().await;
        let maildir = std::env::temp_dir().join(format!(
            "fishapp-test-maildir-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let child = tokio::process::Command::new("aiosmtpd")
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd starts (scripts/stack tools installs it)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not listen within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            port,
            maildir,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far, as its raw text (headers and body).
    pub fn mails(&self) -> Vec<String> {
        let mut mails = Vec::new();
        for folder in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(folder)) {
                for entry in entries.flatten() {
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        mails.push(text);
                    }
                }
            }
        }
        mails
    }

    /// The mails to `address`, waiting up to `within` for at least `count` of them.
    pub async fn mails_to(&self, address: &str, count: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let to: Vec<String> = self
                .mails()
                .into_iter()
                .filter(|m| {
                    m.lines()
                        .any(|l| l.eq_ignore_ascii_case(&format!("To: {address}")))
                })
                .collect();
            if to.len() >= count || tokio::time::Instant::now() > deadline {
                return to;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.maildir).ok();
    }
}

/// The decoded text of a raw mail's body (7bit/8bit as it is, base64 or quoted-printable
/// decoded), for reading what a mail says.
pub fn mail_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let encoding = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-transfer-encoding")
                .then(|| value.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("a base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let mut bytes = Vec::new();
            let mut rest = joined.as_bytes();
            while let Some((&b, tail)) = rest.split_first() {
                let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
                if let (b'=', Some(Ok(byte))) = (b, hex.map(|h| u8::from_str_radix(h, 16))) {
                    bytes.push(byte);
                    rest = &tail[2..];
                    continue;
                }
                bytes.push(b);
                rest = tail;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    }
}
