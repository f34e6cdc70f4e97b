//! What every resolver may know about the request: the caller's credentials (verified lazily,
//! once) and the client address. Guards live here so that every context's
//! resolvers check access the same way.

use crate::error::AppError;
use crate::error::GqlError;
use crate::graphql::streams::StreamPermit;
use async_graphql::Context;
use fishapp_app::account::{Accounts, Viewer};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::net::IpAddr;
use std::time::Duration;
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
    async fn viewer(&self) -> Result<Viewer, AppError>;
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

    async fn viewer(&self) -> Result<Viewer, AppError> {
        let request = self.request();
        let Some(token) = request.bearer.as_deref() else {
            return Err(AppError::Unauthenticated(
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
                    Err(AppError::Unauthenticated(message)) => Ok(Err(message)),
                    Err(other) => Err(other),
                }
            })
            .await?;
        verdict.clone().map_err(AppError::Unauthenticated)
    }

    async fn viewer_if_any(&self) -> Option<Viewer> {
        self.request().bearer.as_ref()?;
        self.viewer().await.ok()
    }
}

/// How often a live subscription asks whether its ID token was revoked (logout, a password
/// change): a revoked token stops receiving within this long.
pub(crate) const REVOCATION_CHECK: Duration = Duration::from_secs(10);

/// A subscription's items for as long as the caller's sign-in holds. The stream ends with
/// UNAUTHENTICATED when the ID token it was opened with expires, or within [`REVOCATION_CHECK`]
/// of its revocation — a WebSocket outlives any one token, and must not keep serving a token that
/// no longer works over HTTP.
/// The stream holds `permit` (its place under the subscription caps) until it is dropped.
pub(crate) fn while_signed_in<T: Send + 'static>(
    ctx: &Context<'_>,
    viewer: &Viewer,
    permit: StreamPermit,
    items: BoxStream<'static, async_graphql::Result<T>>,
) -> BoxStream<'static, async_graphql::Result<T>> {
    let accounts = ctx.accounts().clone();
    let token = ctx.request().bearer.clone();
    let expires_in = u64::try_from(viewer.claims.exp - chrono::Utc::now().timestamp()).unwrap_or(0);
    let ended = async move {
        let expiry = tokio::time::sleep(Duration::from_secs(expires_in));
        tokio::pin!(expiry);
        let start = tokio::time::Instant::now() + REVOCATION_CHECK;
        let mut checks = tokio::time::interval_at(start, REVOCATION_CHECK);
        loop {
            tokio::select! {
                () = &mut expiry => {
                    return AppError::Unauthenticated(
                        "the ID token expired; subscribe again with a fresh one".to_owned(),
                    );
                }
                _ = checks.tick() => {
                    let Some(token) = token.as_deref() else { continue };
                    if let Err(AppError::Unauthenticated(message)) = accounts.authenticate(token).await {
                        return AppError::Unauthenticated(message);
                    }
                }
            }
        }
    };
    let state = (items, Box::pin(ended), false, permit);
    futures::stream::unfold(state, |(mut items, mut ended, over, permit)| async move {
        if over {
            return None;
        }
        tokio::select! {
            item = items.next() => item.map(|item| (item, (items, ended, false, permit))),
            why = &mut ended => Some((Err(why.extend()), (items, ended, true, permit))),
        }
    })
    .boxed()
}
