//! `GET /trips/<post id>.ics?token=…`: a trip's iCalendar event for a calendar app, which cannot
//! sign in: the link (`Post.calendarUrl`, members only) carries a token of its own. The query
//! string is never logged (request spans carry the path only).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fishapp_app::{AppError, Calendar};
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct Link {
    token: Option<String>,
}

pub(crate) async fn trip_event(
    State(calendar): State<Calendar>,
    Path(file): Path<String>,
    Query(link): Query<Link>,
) -> Response {
    let Some(post_id) = file
        .strip_suffix(".ics")
        .and_then(|id| id.parse::<i64>().ok())
    else {
        return (StatusCode::NOT_FOUND, "no such calendar\n").into_response();
    };
    let Some(token) = link.token.filter(|t| !t.is_empty() && t.len() <= 4096) else {
        return (StatusCode::UNAUTHORIZED, "the link has no token\n").into_response();
    };
    match calendar.event(post_id, &token).await {
        Ok(ics) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                // The event changes with the trip, and the link is personal.
                (header::CACHE_CONTROL, "private, no-cache"),
            ],
            ics,
        )
            .into_response(),
        Err(error) => {
            let status = match &error {
                AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => {
                    tracing::error!(error = %error, "a trip's calendar could not be served");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let message = match &error {
                AppError::Internal(_) => "internal error".to_owned(),
                other => other.to_string(),
            };
            (status, format!("{message}\n")).into_response()
        }
    }
}
