//! Sign-in: the ID-token keys and lifetimes, login throttling, sign-up, password and email
//! changes.

use super::checks::{at_least_one, not_blank};
use super::keys::{Invalid, config_group};
use super::serde_lists::paths_list_or_comma_separated;
use std::path::PathBuf;

config_group! {
    pub struct Accounts {
        title: "Accounts",
        about: "ID tokens, refresh tokens, and the limits on signing in, signing up and changing a password or an email address.",
        jwt_private_key_file: PathBuf = PathBuf::from(".stack/data/jwt/ed25519.pem"),
            "Ed25519 private key (PKCS#8 PEM) signing ID tokens; `fishapp dev` creates it (mode 0600) when missing, every other role refuses to start without it";
        jwt_private_key_pem: Option<String> = None,
            "the same key inline; wins over the file (secret: redacted in `config`)";
        #[serde(deserialize_with = "paths_list_or_comma_separated")]
        jwt_previous_public_key_files: Vec<PathBuf> = Vec::new(),
            "public keys (SPKI PEM, comma-separated paths) that still verify ID tokens during a key rotation";
        jwt_issuer: String = "fishapp".to_owned(),
            "`iss` of ID tokens, checked on every request";
        jwt_audience: String = "fishapp".to_owned(),
            "`aud` of ID tokens, checked on every request";
        id_token_ttl_secs: u64 = 3_600,
            "ID token lifetime (also how long denylist entries live)";
        refresh_token_ttl_secs: u64 = 10 * 24 * 3_600,
            "refresh token lifetime";
        sign_in_max_per_user: u32 = 50,
            "sign-ins (refresh-token families: one per login) one user may hold; a login beyond it deletes the user's sign-in refreshed longest ago (ended ones first), and that sign-in's ID tokens stop at once";
        sign_in_prune_interval_secs: u64 = 3_600,
            "how often each API process deletes the sign-ins that ended: those whose refresh tokens all expired, and those revoked more than a day ago";
        login_failures_before_delay: u32 = 5,
            "wrong passwords one client address may try on one account; each further try from that address waits 1 s, then 2, 4, … (`RATE_LIMITED` with `retryAfterSeconds`). Only that address is slowed: the owner signs in as usual from their own. A right password clears it";
        login_max_delay_secs: u64 = 15 * 60,
            "the longest of those waits";
        login_max_failures_per_ip: u32 = 100,
            "failed logins per client address (any account) per window (generous: offices and carrier NAT share addresses)";
        login_failure_window_secs: u64 = 15 * 60,
            "that window, from the address's first failure; also how long an account+address record lives after its last wait";
        sign_up_max_per_ip_per_hour: u32 = 20,
            "sign-ups one client address may make per hour; more is `RATE_LIMITED` (checked, with every field and the email's availability, before an avatar is processed)";
        password_change_max_per_hour: u32 = 10,
            "`updatePassword` attempts (right or wrong) one user may make per hour, so a stolen ID token cannot guess the old password at length";
        password_hashing_concurrency: usize = 0,
            "argon2 hashes computed at once; the rest queue, and the spare core keeps serving other requests. A hash whose request was cancelled (the client went away) keeps its permit until it is done, so abandoned requests cannot start more hashes than the cores",
            shown "`0` (cores − 1, at least 1)";
        password_hashing_nice: i32 = 10,
            "the hashing threads' scheduling priority (Unix nice, 0 to 19): at 10 the kernel gives a core to the API's own threads first whenever both want it, so a login flood does not delay other requests; 0 runs them like every other thread";
        email_change_confirm_url: String = "http://localhost:3000/confirm-email?token={token}".to_owned(),
            "the link an email-change mail carries (`{token}` is replaced): a front-end page that calls `confirmEmailChange`";
        email_change_ttl_secs: u64 = 24 * 3_600,
            "how long an email change can be confirmed";
        email_change_max_per_day: u32 = 5,
            "email changes one user may request per day; more is `RATE_LIMITED`";
    }
}

impl Accounts {
    fn check(&self) -> Result<(), Invalid> {
        at_least_one(&[
            ("id_token_ttl_secs", self.id_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("sign_in_max_per_user", self.sign_in_max_per_user.into()),
            (
                "sign_in_prune_interval_secs",
                self.sign_in_prune_interval_secs,
            ),
            ("login_failure_window_secs", self.login_failure_window_secs),
            (
                "login_failures_before_delay",
                self.login_failures_before_delay.into(),
            ),
            ("login_max_delay_secs", self.login_max_delay_secs),
            (
                "login_max_failures_per_ip",
                self.login_max_failures_per_ip.into(),
            ),
            ("email_change_ttl_secs", self.email_change_ttl_secs),
            (
                "email_change_max_per_day",
                self.email_change_max_per_day.into(),
            ),
        ])?;
        if !(0..=19).contains(&self.password_hashing_nice) {
            return Err(("password_hashing_nice", "must be 0 to 19".to_owned()));
        }
        not_blank(&[
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
        ])?;
        if !self.email_change_confirm_url.contains("{token}") {
            return Err((
                "email_change_confirm_url",
                "must contain {token}, where the confirmation token goes".to_owned(),
            ));
        }
        Ok(())
    }
}
