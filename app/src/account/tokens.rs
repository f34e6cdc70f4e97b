//! ID tokens (signed JWTs) and refresh tokens (opaque random values).
//!
//! ID tokens are EdDSA (Ed25519) JWTs, and verification accepts EdDSA only: `alg: none`, HS256
//! "signed" with the public key and every other algorithm are refused before any key is used.
//! Each token names its key (`kid`, derived from the public key), so several verification keys
//! can be active during a rotation; all of them are published at `/.well-known/jwks.json`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM: {0}")]
    Private(String),
    #[error("not an Ed25519 public key in SPKI PEM: {0}")]
    Public(String),
}

/// The claims of an ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The refresh-token family (sign-in) the token was issued for, so that ending the sign-in
    /// ends its ID tokens too.
    pub fid: Uuid,
}

/// The claims of a calendar link's token: it lets a calendar app read one trip's event for one
/// member, and nothing else (its audience is not an ID token's, so neither passes for the other).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalendarClaims {
    pub iss: String,
    pub aud: String,
    /// The member's user id.
    pub sub: String,
    /// The trip (post id).
    pub post: i64,
    pub iat: i64,
    pub exp: i64,
}

/// A freshly issued ID token.
pub struct IssuedIdToken {
    pub token: String,
    pub claims: IdClaims,
}

struct VerificationKey {
    key: DecodingKey,
    public: [u8; 32],
}

/// Signing key, verification keys, and the rules tokens are issued and checked by.
#[derive(Clone)]
pub struct TokenKeys {
    inner: Arc<Inner>,
}

struct Inner {
    kid: String,
    signing: EncodingKey,
    verification: HashMap<String, VerificationKey>,
    issuer: String,
    audience: String,
    id_token_ttl: Duration,
}

/// A key id: the first 16 characters of the base64url SHA-256 of the public key. Stable, so every
/// replica derives the same id from the same key, and nothing needs configuring.
fn key_id(public: &[u8; 32]) -> String {
    let digest = Sha256::digest(public);
    URL_SAFE_NO_PAD.encode(digest)[..16].to_owned()
}

/// A new Ed25519 private key as PKCS#8 PEM (for `fishapp dev` and tests).
pub fn generate_private_key_pem() -> String {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .expect("an Ed25519 key always encodes")
}

/// The public half of a private key PEM, as SPKI PEM (to hand to other verifiers).
pub fn public_key_pem(private_pem: &str) -> Result<String, KeyError> {
    let key =
        SigningKey::from_pkcs8_pem(private_pem).map_err(|e| KeyError::Private(e.to_string()))?;
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Public(e.to_string()))
}

impl TokenKeys {
    /// `private_pem` signs new tokens; its public key and every one of `extra_public_pems` verify.
    pub fn new(
        private_pem: &str,
        extra_public_pems: &[String],
        issuer: &str,
        audience: &str,
        id_token_ttl: std::time::Duration,
    ) -> Result<Self, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(private_pem)
            .map_err(|e| KeyError::Private(e.to_string()))?;
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::Private(e.to_string()))?;
        let own_public = signing.verifying_key().to_bytes();
        let mut publics = vec![own_public];
        for pem in extra_public_pems {
            let key = VerifyingKey::from_public_key_pem(pem)
                .map_err(|e| KeyError::Public(e.to_string()))?;
            publics.push(key.to_bytes());
        }
        let verification = publics
            .into_iter()
            .map(|public| {
                let x = URL_SAFE_NO_PAD.encode(public);
                let key = DecodingKey::from_ed_components(&x)
                    .map_err(|e| KeyError::Public(e.to_string()))?;
                Ok((key_id(&public), VerificationKey { key, public }))
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                kid: key_id(&own_public),
                signing: EncodingKey::from_ed_der(der.as_bytes()),
                verification,
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                id_token_ttl: Duration::from_std(id_token_ttl).unwrap_or(Duration::hours(1)),
            }),
        })
    }

    pub fn id_token_ttl(&self) -> Duration {
        self.inner.id_token_ttl
    }

    pub fn issue(
        &self,
        user_id: i64,
        family: Uuid,
        now: DateTime<Utc>,
    ) -> Result<IssuedIdToken, jsonwebtoken::errors::Error> {
        let claims = IdClaims {
            iss: self.inner.issuer.clone(),
            aud: self.inner.audience.clone(),
            sub: user_id.to_string(),
            iat: now.timestamp(),
            exp: (now + self.inner.id_token_ttl).timestamp(),
            jti: Uuid::new_v4(),
            fid: family,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.inner.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.inner.signing)?;
        Ok(IssuedIdToken { token, claims })
    }

    /// Checks signature, algorithm (EdDSA only), key id, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<IdClaims, jsonwebtoken::errors::Error> {
        self.decode(token, &self.inner.audience)
    }

    fn calendar_audience(&self) -> String {
        format!("{}:calendar", self.inner.audience)
    }

    /// A calendar link's token for `user_id` and trip `post_id`, valid until `expires`.
    pub fn issue_calendar(
        &self,
        user_id: i64,
        post_id: i64,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = CalendarClaims {
            iss: self.inner.issuer.clone(),
            aud: self.calendar_audience(),
            sub: user_id.to_string(),
            post: post_id,
            iat: now.timestamp(),
            exp: expires.timestamp(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.inner.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.inner.signing)
    }

    /// Checks a calendar link's token as [`TokenKeys::verify`] checks an ID token, against the
    /// calendar audience.
    pub fn verify_calendar(
        &self,
        token: &str,
    ) -> Result<CalendarClaims, jsonwebtoken::errors::Error> {
        self.decode(token, &self.calendar_audience())
    }

    fn decode<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<C, jsonwebtoken::errors::Error> {
        use jsonwebtoken::errors::ErrorKind;
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::EdDSA {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.inner.verification.get(kid))
            .ok_or(ErrorKind::InvalidKeyFormat)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(jsonwebtoken::decode::<C>(token, &key.key, &validation)?.claims)
    }

    /// The JSON Web Key Set of every verification key.
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<_> = self
            .inner
            .verification
            .iter()
            .map(|(kid, key)| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(key.public),
                })
            })
            .collect();
        keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        serde_json::json!({ "keys": keys })
    }
}

/// A new opaque token (a refresh token, an email confirmation): 256 random bits, base64url.
/// Only its hash is stored.
pub fn new_opaque_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for an opaque token. A plain SHA-256 is enough: the token has 256 bits of
/// entropy, so there is nothing to brute-force.
pub fn opaque_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    fn keys(pem: &str, extra: &[String]) -> TokenKeys {
        TokenKeys::new(
            pem,
            extra,
            "fishapp",
            "fishapp",
            StdDuration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn issue_and_verify() {
        let keys = keys(&generate_private_key_pem(), &[]);
        let family = Uuid::new_v4();
        let issued = keys.issue(42, family, Utc::now()).unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "42");
        assert_eq!(claims.fid, family);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn a_rotated_out_key_still_verifies_while_listed() {
        let old_pem = generate_private_key_pem();
        let old = keys(&old_pem, &[]);
        let token = old.issue(7, Uuid::new_v4(), Utc::now()).unwrap().token;
        let new_only = keys(&generate_private_key_pem(), &[]);
        assert!(new_only.verify(&token).is_err());
        let rotating = keys(
            &generate_private_key_pem(),
            &[public_key_pem(&old_pem).unwrap()],
        );
        assert_eq!(rotating.verify(&token).unwrap().sub, "7");
        assert_eq!(rotating.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn expired_tokens_fail() {
        let keys = keys(&generate_private_key_pem(), &[]);
        let token = keys
            .issue(1, Uuid::new_v4(), Utc::now() - Duration::hours(2))
            .unwrap()
            .token;
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn refresh_tokens_are_256_bits_and_distinct() {
        let a = new_opaque_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, new_opaque_token());
        assert_eq!(opaque_token_hash(&a).len(), 32);
    }

    #[test]
    fn calendar_tokens_and_id_tokens_never_pass_for_each_other() {
        let keys = keys(&generate_private_key_pem(), &[]);
        let now = Utc::now();
        let calendar = keys
            .issue_calendar(7, 12, now, now + Duration::days(30))
            .unwrap();
        let claims = keys.verify_calendar(&calendar).unwrap();
        assert_eq!((claims.sub.as_str(), claims.post), ("7", 12));
        assert!(keys.verify(&calendar).is_err());
        let id = keys.issue(7, Uuid::new_v4(), now).unwrap();
        assert!(keys.verify_calendar(&id.token).is_err());
        let expired = keys
            .issue_calendar(7, 12, now - Duration::days(2), now - Duration::days(1))
            .unwrap();
        assert!(keys.verify_calendar(&expired).is_err());
    }
}
