//! The public HTTP listener: addresses, bodies, browsers, proxies, shutdown.

use super::checks::{at_least_one, check_origin, check_url};
use super::keys::{Invalid, config_group};
use super::serde_lists::list_or_comma_separated;
use std::net::SocketAddr;
use std::time::Duration;

config_group! {
    pub struct Http {
        title: "HTTP",
        about: "The API's listener (`fishapp serve`, `fishapp dev`) and what it accepts.",
        http_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)),
            "where the API listens (port 0: any free port)";
        http_public_url: String = "http://127.0.0.1:8080".to_owned(),
            "the API's address as its clients reach it (`https://api.example.com`): absolute links the API hands out start with it (a trip's calendar link)";
        http_metrics_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8083)),
            "where the API (`serve`, `dev`) serves `/metrics` and `/healthz` for scrapers; never on the public port";
        http_body_limit_bytes: usize = 64 * 1024 * 1024,
            "largest request body (uploads); larger gets 413";
        #[serde(deserialize_with = "list_or_comma_separated")]
        cors_allowed_origins: Vec<String> = vec![
            "http://localhost:3000".to_owned(),
            "http://127.0.0.1:3000".to_owned(),
        ],
            "browser origins allowed (comma-separated; `*` for any)";
        #[serde(deserialize_with = "list_or_comma_separated")]
        trusted_proxies: Vec<String> = Vec::new(),
            "addresses or CIDR networks (comma-separated) whose `X-Forwarded-For` is believed: when the TCP peer is one, the client is the right-most address in the header that is not one. Empty: the header is ignored (anyone can send it). Per-client limits count IPv4 addresses one by one and IPv6 clients by their /64";
        shutdown_grace_secs: u64 = 30,
            "how long in-flight requests may finish after SIGTERM";
        readiness_timeout_ms: u64 = 2_000,
            "bound on each `/readyz` dependency check";
    }
}

impl Http {
    fn check(&self) -> Result<(), Invalid> {
        if self.http_body_limit_bytes < 1024 {
            return Err(("http_body_limit_bytes", "must be at least 1024".to_owned()));
        }
        at_least_one(&[("readiness_timeout_ms", self.readiness_timeout_ms)])?;
        check_url("http_public_url", &self.http_public_url, &["http", "https"])?;
        fishapp_api::client_address::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|m| ("trusted_proxies", m))?;
        for origin in &self.cors_allowed_origins {
            check_origin(origin).map_err(|m| ("cors_allowed_origins", m))?;
        }
        Ok(())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn readiness_timeout(&self) -> Duration {
        Duration::from_millis(self.readiness_timeout_ms)
    }
}
