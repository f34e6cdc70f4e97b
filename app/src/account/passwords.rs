//! Password hashing: argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1), stored as a
//! PHC string. Hashing is CPU-heavy by design, so it runs on threads of its own, fewer than the
//! cores and at a lower priority (see [`crate::cpu::CpuPool`]): a flood of logins queues here
//! instead of starving the async runtime.

use crate::cpu::CpuPool;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;

const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing was cancelled")]
    Cancelled,
    #[error("cannot start the password hashing threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// The outcome of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Wrong,
    /// Right; `rehash` when the stored hash used other parameters than today's.
    Right {
        rehash: bool,
    },
}

#[derive(Clone)]
pub struct Passwords {
    pool: Arc<CpuPool>,
    /// A real hash of a random password, verified against when the email is unknown so that an
    /// unknown email costs as much time as a wrong password (no account enumeration by timing).
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    /// `concurrency` hashes at most at once (0: one core fewer than the machine has, at least
    /// one — the core left over keeps serving everything else during a login flood; see
    /// docs/benchmarks.md for what that buys), on threads at `nice` (0: the process's own
    /// priority).
    pub async fn new(concurrency: usize, nice: i32) -> Result<Self, PasswordError> {
        let pool = CpuPool::new("argon2", crate::cpu::cpu_permits(concurrency), nice)?;
        let dummy = uuid::Uuid::new_v4().to_string();
        let mut passwords = Self {
            pool: Arc::new(pool),
            dummy_hash: Arc::from(""),
        };
        passwords.dummy_hash = Arc::from(passwords.hash(&dummy).await?);
        Ok(passwords)
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        self.off_runtime(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
    }

    /// Checks `password` against `stored` (a PHC string), or against the dummy hash when there is
    /// no stored hash (unknown account) — always `Wrong` then, after the same work.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verdict, PasswordError> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        self.off_runtime(move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| PasswordError::Hash(e.to_string()))?;
            let right = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(if right && known {
                Verdict::Right {
                    rehash: !uses_current_parameters(&parsed),
                }
            } else {
                Verdict::Wrong
            })
        })
        .await
    }

    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        self.pool
            .run(work)
            .await
            .map_err(|_| PasswordError::Cancelled)?
    }
}

fn uses_current_parameters(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13 as u32)
        && params.m_cost() == M_COST_KIB
        && params.t_cost() == T_COST
        && params.p_cost() == P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let passwords = Passwords::new(2, 10).await.unwrap();
        let hash = passwords.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            passwords
                .verify("correct horse battery", Some(&hash))
                .await
                .unwrap(),
            Verdict::Right { rehash: false }
        );
        assert_eq!(
            passwords.verify("wrong", Some(&hash)).await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            passwords.verify("anything", None).await.unwrap(),
            Verdict::Wrong
        );
    }

    #[tokio::test]
    async fn old_parameters_ask_for_a_rehash() {
        let passwords = Passwords::new(1, 10).await.unwrap();
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"fishing-trip-2026", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            passwords
                .verify("fishing-trip-2026", Some(&weak))
                .await
                .unwrap(),
            Verdict::Right { rehash: true }
        );
    }
}
