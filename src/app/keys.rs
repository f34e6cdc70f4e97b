//! The ID tokens' signing keys: from configuration (an inline PEM or a key file, created on a
//! developer's first run), `fishapp keygen`, and the accounts' settings that carry them.

use crate::config::Config;
use anyhow::Context;
use fishapp_app::AuthSettings;
use fishapp_app::account::EmailChangeSettings;
use fishapp_app::account::limits::LoginLimits;
use fishapp_app::account::tokens::{TokenKeys, generate_private_key_pem};
use std::time::Duration;

/// What to do when the signing key file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// `fishapp dev`: create one (kept in the stack's data folder by default).
    Generate,
    /// Production roles: refuse to start (replicas must share one key).
    Refuse,
}

/// The ID-token keys from configuration: the inline PEM, else the key file.
pub fn token_keys(config: &Config, missing: MissingKey) -> anyhow::Result<TokenKeys> {
    let private_pem = match &config.accounts.jwt_private_key_pem {
        Some(pem) => pem.clone(),
        None => read_or_create_key(&config.accounts.jwt_private_key_file, missing)?,
    };
    let previous = config
        .accounts
        .jwt_previous_public_key_files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| {
                format!(
                    "jwt_previous_public_key_files: cannot read {}",
                    path.display()
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    TokenKeys::new(
        &private_pem,
        &previous,
        &config.accounts.jwt_issuer,
        &config.accounts.jwt_audience,
        Duration::from_secs(config.accounts.id_token_ttl_secs),
    )
    .context("jwt signing key")
}

fn read_or_create_key(path: &std::path::Path, missing: MissingKey) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing == MissingKey::Generate => {
            let pem = generate_private_key_pem();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_private(path, &pem).with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a development key for signing ID tokens");
            Ok(pem)
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "no ID-token signing key at {} (FISHAPP_JWT_PRIVATE_KEY_FILE); `fishapp dev` creates one for development",
                path.display()
            )
        }),
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// `fishapp keygen`: a new Ed25519 signing key written to `out` (mode 0600, never over an
/// existing file); its public key (SPKI PEM) goes to stdout, for `jwt_previous_public_key_files`
/// during a rotation. With `if_missing`, an existing file is kept and its public key printed.
pub fn keygen(out: &std::path::Path, if_missing: bool) -> anyhow::Result<()> {
    let pem = match std::fs::read_to_string(out) {
        Ok(existing) if if_missing => existing,
        Ok(_) => anyhow::bail!("{} exists; a key is never overwritten", out.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pem = generate_private_key_pem();
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_private(out, &pem).with_context(|| format!("cannot write {}", out.display()))?;
            pem
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", out.display())),
    };
    print!(
        "{}",
        fishapp_app::account::tokens::public_key_pem(&pem)
            .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", out.display()))?
    );
    Ok(())
}

pub fn auth_settings(config: &Config, keys: TokenKeys) -> AuthSettings {
    AuthSettings {
        keys,
        refresh_token_ttl: Duration::from_secs(config.accounts.refresh_token_ttl_secs),
        max_sign_ins_per_user: config.accounts.sign_in_max_per_user,
        login_limits: LoginLimits {
            failures_before_delay: config.accounts.login_failures_before_delay,
            max_delay: Duration::from_secs(config.accounts.login_max_delay_secs),
            max_failures_per_ip: config.accounts.login_max_failures_per_ip,
            window: Duration::from_secs(config.accounts.login_failure_window_secs),
        },
        password_hashing_concurrency: config.accounts.password_hashing_concurrency,
        password_hashing_nice: config.accounts.password_hashing_nice,
        redis_key_prefix: config.connections.redis_key_prefix.clone(),
        max_sign_ups_per_ip_per_hour: config.accounts.sign_up_max_per_ip_per_hour,
        max_password_changes_per_hour: config.accounts.password_change_max_per_hour,
        email_change: EmailChangeSettings {
            confirm_url: config.accounts.email_change_confirm_url.clone(),
            ttl: Duration::from_secs(config.accounts.email_change_ttl_secs),
            max_per_day: config.accounts.email_change_max_per_day,
        },
    }
}
