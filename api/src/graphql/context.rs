//! What every resolver may know about the request: the caller's credentials (verified lazily,
//! once) and the client address. Guards live here so that every context's
//! resolvers check access the same way.

use crate::account::{Accounts, Viewer};
use crate::error::ApiError;
use async_graphql::Context;
use std::net::IpAddr;
use tokio::sync::OnceCell;

pub(crate) struct RequestContext {
    /// The raw `Authorization: Bearer …` value, if any: an ID token for most operations, a
    /// refresh token for refreshIDToken and logout.
    pub bearer: Option<String>,
    pub client_ip: IpAddr,
    viewer: OnceCell<Result<Viewer, String>>,
}

impl RequestContext {
    pub(crate) fn new(bearer: Option<String>, client_ip: IpAddr) -> Self {
        Self {
            bearer,
            client_ip,
            viewer: OnceCell::new(),
        }
    }
}

/// Guards, on the resolver's context.
pub(crate) trait Guards {
    fn request(&self) -> &RequestContext;
    fn accounts(&self) -> &Accounts;
    /// The signed-in caller, or UNAUTHENTICATED.
    async fn viewer(&self) -> Result<Viewer, ApiError>;
    /// The signed-in caller if the request carries a valid ID token; anonymous otherwise (for
    /// public fields whose visibility depends on who asks).
    async fn viewer_if_any(&self) -> Option<Viewer>;
}

impl Guards for Context<'_> {
    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }

    fn accounts(&self) -> &Accounts {
        self.data_unchecked::<Accounts>()
    }

    async fn viewer(&self) -> Result<Viewer, ApiError> {
        let request = self.request();
        let Some(token) = request.bearer.as_deref() else {
            return Err(ApiError::Unauthenticated(
                "sign in first: no ID token in the Authorization header".to_owned(),
            ));
        };
        // Verified once per request, however many fields ask. An unavailable denylist is not
        // cached as a verdict: it is returned as it is.
        let verdict = request
            .viewer
            .get_or_try_init(|| async {
                match self.accounts().authenticate(token).await {
                    Ok(viewer) => Ok(Ok(viewer)),
                    Err(ApiError::Unauthenticated(message)) => Ok(Err(message)),
                    Err(other) => Err(other),
                }
            })
            .await?;
        verdict.clone().map_err(ApiError::Unauthenticated)
    }

    async fn viewer_if_any(&self) -> Option<Viewer> {
        self.request().bearer.as_ref()?;
        self.viewer().await.ok()
    }
}
