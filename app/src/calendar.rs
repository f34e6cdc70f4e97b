//! A trip in the calendar its members use: an iCalendar event (RFC 5545) behind a link that
//! only members get (`Post.calendarUrl`). A calendar app cannot send a sign-in, so the link
//! carries a token of its own: signed with the ID-token key, for one member and one trip, valid
//! until some weeks after the meeting, and worth nothing else. Membership is checked again on
//! every read: a member who withdrew gets nothing more from an old link.

use crate::account::tokens::TokenKeys;
use crate::error::AppError;
use chrono::{DateTime, Duration, Utc};
use fishapp_domain::board::{ApplicationStatus, PostStatus};
use fishapp_store::Database;
use fishapp_store::board::{self as store, PostRow};
use std::sync::Arc;

/// How long after the meeting a link still works (calendar apps poll it for changes).
const LINK_OUTLIVES_MEETING: Duration = Duration::days(30);

#[derive(Debug, Clone)]
pub struct CalendarSettings {
    /// What the API's links start with, as clients reach it (`http_public_url`).
    pub api_url: String,
    /// The front end's page of a trip, with `{id}` for its id: the event's URL.
    pub post_url: String,
}

#[derive(Clone)]
pub struct Calendar {
    db: Database,
    keys: TokenKeys,
    settings: Arc<CalendarSettings>,
}

impl Calendar {
    pub fn new(db: Database, keys: TokenKeys, settings: CalendarSettings) -> Self {
        Self {
            db,
            keys,
            settings: Arc::new(settings),
        }
    }

    /// The link to `post`'s event for `user_id`, who must be one of its members (the caller
    /// knows: the organiser, or an applicant holding a seat).
    pub fn link(&self, user_id: i64, post: &PostRow) -> Result<String, AppError> {
        let now = Utc::now();
        let token = self
            .keys
            .issue_calendar(
                user_id,
                post.id,
                now,
                post.meeting_at.max(now) + LINK_OUTLIVES_MEETING,
            )
            .map_err(AppError::internal)?;
        Ok(format!(
            "{}/trips/{}.ics?token={token}",
            self.settings.api_url.trim_end_matches('/'),
            post.id
        ))
    }

    /// The event of trip `post_id` for the holder of `token`: UNAUTHENTICATED for a token that
    /// is not a valid calendar token, NOT_FOUND for another trip's token, a trip that is gone or
    /// a holder who is no longer a member.
    pub async fn event(&self, post_id: i64, token: &str) -> Result<String, AppError> {
        let claims = self
            .keys
            .verify_calendar(token)
            .map_err(|_| AppError::Unauthenticated("not a valid calendar link".to_owned()))?;
        let missing = || AppError::NotFound(format!("no trip {post_id} for this link"));
        let user_id: i64 = claims.sub.parse().map_err(|_| missing())?;
        if claims.post != post_id {
            return Err(missing());
        }
        let post = store::post_by_id(self.db.pool(), post_id)
            .await?
            .filter(|p| p.status.is_public())
            .ok_or_else(missing)?;
        let member = post.user_id == user_id
            || store::application_of(self.db.pool(), post_id, user_id)
                .await?
                .is_some_and(|a| a.status == ApplicationStatus::Applied);
        if !member {
            return Err(missing());
        }
        Ok(ics(&post, &self.settings, Utc::now()))
    }
}

/// The trip as an iCalendar object with one event.
fn ics(post: &PostRow, settings: &CalendarSettings, now: DateTime<Utc>) -> String {
    let host = settings
        .api_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|host| !host.is_empty())
        .unwrap_or("fishapp");
    let url = settings.post_url.replace("{id}", &post.id.to_string());
    let place = format!(
        "https://www.google.com/maps/search/?api=1&query=Google&query_place_id={}",
        post.meeting_place_id
    );
    let status = match post.status {
        PostStatus::Deleting => "CANCELLED",
        _ => "CONFIRMED",
    };
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Fishapp//Trips//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:trip-{}@{host}", post.id),
        format!("DTSTAMP:{}", utc(now)),
        format!("LAST-MODIFIED:{}", utc(post.updated_at)),
        format!("DTSTART:{}", utc(post.meeting_at)),
        format!("SUMMARY:{}", text(&post.title)),
        format!("DESCRIPTION:{}", text(&post.content)),
        format!("LOCATION:{}", text(&place)),
        format!("URL:{url}"),
        format!("STATUS:{status}"),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    lines.iter().map(|line| fold(line)).collect()
}

/// A UTC date-time in iCalendar's form (`20270109T200000Z`).
fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value escaped (RFC 5545 3.3.11): backslash, semicolon, comma and line breaks.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded at 75 octets (RFC 5545 3.1: CRLF and a space continue it), never
/// inside a UTF-8 character, and ended with CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> PostRow {
        let at = DateTime::parse_from_rfc3339("2027-01-09T20:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        PostRow {
            id: 12,
            user_id: 1,
            title: "Bass; at dawn, 朝".to_owned(),
            content: "Meet at the pier.\nBring a rod\\net.".to_owned(),
            fishing_spot_type_id: 1,
            prefecture_id: 13,
            meeting_place_id: "ChIJ51cu8IcbXWARiRtXIothAS4".to_owned(),
            meeting_at: at,
            max_apply: 3,
            apply_count: 1,
            status: PostStatus::Open,
            approval_required: false,
            requests_closed: false,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn an_event_names_the_trip_its_time_place_and_page() {
        let settings = CalendarSettings {
            api_url: "https://api.example.com:8443/".to_owned(),
            post_url: "https://fishapp.example.com/posts/{id}".to_owned(),
        };
        let ics = ics(&post(), &settings, post().created_at);
        let unfolded = ics.replace("\r\n ", "");
        for line in [
            "BEGIN:VEVENT",
            "UID:trip-12@api.example.com",
            "DTSTART:20270109T200000Z",
            "SUMMARY:Bass\\; at dawn\\, 朝",
            "DESCRIPTION:Meet at the pier.\\nBring a rod\\\\net.",
            "URL:https://fishapp.example.com/posts/12",
            "STATUS:CONFIRMED",
        ] {
            assert!(
                unfolded.split("\r\n").any(|l| l == line),
                "{line} missing in {ics}"
            );
        }
        assert!(unfolded.contains("query_place_id=ChIJ51cu8IcbXWARiRtXIothAS4"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn long_lines_fold_at_75_octets_between_characters() {
        let line = format!("SUMMARY:{}", "釣".repeat(40));
        let folded = fold(&line);
        for part in folded.trim_end_matches("\r\n").split("\r\n") {
            assert!(part.len() <= 75, "{} octets: {part}", part.len());
        }
        assert_eq!(folded.replace("\r\n ", "").trim_end(), line);
    }
}
