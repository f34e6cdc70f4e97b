//! The `posts` listing's opaque `after` cursor: the sort it belongs to and the last post's
//! position, as base64 JSON. A cursor is refused under another sort or order. Lists keyed by one
//! number (notifications, reviews) use that number as their cursor.

use super::board::{PostOrderBy, PostSortBy};
use crate::error::AppError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use fishapp_store::board::Keyset;
use serde::{Deserialize, Serialize};

/// The cursor of a list keyed by one growing number (`endCursor` is the last item's number):
/// `after` as that number, BAD_USER_INPUT on `after` for anything else.
pub(crate) fn number_after(after: Option<&str>) -> Result<Option<i64>, AppError> {
    after
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| AppError::bad_input("after", "is not a cursor of this list"))
        })
        .transpose()
}

/// What an opaque `after` cursor holds: the sort it belongs to and the last post's position.
#[derive(Serialize, Deserialize)]
pub(crate) struct Cursor {
    pub(crate) s: PostSortBy,
    pub(crate) o: PostOrderBy,
    /// The sort column's value, in microseconds since the epoch.
    pub(crate) t: i64,
    pub(crate) i: i64,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub(crate) fn decode(
        raw: &str,
        sort: PostSortBy,
        order: PostOrderBy,
    ) -> Result<Keyset, AppError> {
        let bad = || AppError::bad_input("after", "is not a cursor of this listing");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.s != sort || cursor.o != order {
            return Err(bad());
        }
        Ok(Keyset {
            at: DateTime::<Utc>::from_timestamp_micros(cursor.t).ok_or_else(bad)?,
            id: cursor.i,
        })
    }
}
