//! Chat's use cases: a trip's room as its members see it, writing a message (text or one image),
//! and following a room live. Only the room's members (the trip's owner and its applicants) may
//! do any of it; everyone else is told the room does not exist.

pub mod live;
pub mod presence;

use crate::account::Viewer;
use crate::board::MutationKey;
use crate::cache::WindowLimiter;
use crate::error::AppError;
use crate::media::{Media, Upload};
use fishapp_domain::chat::MessageBody;
use fishapp_store::Database;
use fishapp_store::chat::{self as store, MessagePage, MessageRow, NewMessage, RoomRow, Sent};
use futures::Stream;
use live::{LiveChat, RoomEvent};
use presence::{Presence, Present};
use std::collections::VecDeque;
use tokio::sync::broadcast::error::RecvError;

/// Messages per page of `Room.messages`, unless asked, and at most.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 100;
/// Messages read per statement while a subscription catches up.
const CATCH_UP_PAGE: i64 = 200;

/// What a message says: text, or one image.
pub enum Content {
    Text(MessageBody),
    Image(Upload),
}

#[derive(Clone)]
pub struct Chat {
    db: Database,
    media: Media,
    live: LiveChat,
    presence: Presence,
    limiter: WindowLimiter,
}

impl Chat {
    pub fn new(
        db: Database,
        media: Media,
        live: LiveChat,
        presence: Presence,
        limiter: WindowLimiter,
    ) -> Self {
        Self {
            db,
            media,
            live,
            presence,
            limiter,
        }
    }

    /// The trip's room, for its members; NOT_FOUND for everyone else (as for no such trip).
    pub async fn room_of_post(&self, viewer: &Viewer, post_id: i64) -> Result<RoomRow, AppError> {
        store::room_of_post_for_member(self.db.pool(), post_id, viewer.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no chat room for trip {post_id}")))
    }

    /// The room, for its members; NOT_FOUND for everyone else.
    pub async fn room(&self, viewer: &Viewer, room_id: i64) -> Result<RoomRow, AppError> {
        store::room_of_member(self.db.pool(), room_id, viewer.user_id)
            .await?
            .ok_or_else(|| not_a_room(room_id))
    }

    pub async fn messages(
        &self,
        room_id: i64,
        page: MessagePage,
    ) -> Result<Vec<MessageRow>, AppError> {
        Ok(store::messages(self.db.pool(), room_id, page).await?)
    }

    /// Writes a message: the rate limit first, then the image (processed and stored, as every
    /// upload), then the message, its image row and its event in one transaction, which also
    /// checks the membership. A retry with the same `key` returns the message the first request
    /// wrote.
    pub async fn send(
        &self,
        viewer: &Viewer,
        room_id: i64,
        content: Content,
        key: &MutationKey,
    ) -> Result<MessageRow, AppError> {
        let user = viewer.user_id.to_string();
        self.limiter.check(&user).await?;
        let (body, image) = match content {
            Content::Text(body) => (Some(body), None),
            Content::Image(upload) => {
                // A non-member learns nothing more and costs no image processing. A text
                // message needs no such check of its own: the transaction's is the one that
                // counts, and one round trip fewer is the chat path's latency.
                self.room(viewer, room_id).await?;
                let image = self
                    .media
                    .ingest_by(viewer.user_id, "input.image", upload)
                    .await?;
                (None, Some(image))
            }
        };
        let written = store::add_message(
            self.db.pool(),
            NewMessage {
                room_id,
                user_id: viewer.user_id,
                body: body.as_ref().map(MessageBody::as_str),
                image: image.as_ref().map(|i| i.as_new(None, Some(viewer.user_id))),
                client_mutation_id: key.client_key(),
            },
        )
        .await;
        let recorded = matches!(written, Ok(Sent::New(_)));
        if let (false, Some(image)) = (recorded, &image) {
            self.media.discard(image).await;
        }
        match written? {
            Sent::New(message) | Sent::Replayed(message) => Ok(message),
            Sent::NotMember => Err(not_a_room(room_id)),
            Sent::RoomClosed => Err(AppError::Conflict(
                "this trip's chat is closed: the trip is being removed".to_owned(),
            )),
            Sent::KeyReused => Err(AppError::bad_input(
                "input.clientMutationId",
                "this key was used for a message in another room",
            )),
        }
    }

    /// The room's new messages, live, for a member: those after `after` (the last message the
    /// client saw; none: from now on), in order, each once. Ends with FORBIDDEN when the member
    /// leaves the room, NOT_FOUND when the room goes, UNAVAILABLE when the server shuts down.
    ///
    /// No gap, no duplicate: the live feed is joined *before* Postgres is asked what was missed,
    /// so a message is in the catch-up, in the feed, or in both — and ids (which grow in commit
    /// order within a room) drop the second copy. A subscriber that falls behind the feed's
    /// buffer catches up from Postgres the same way.
    pub async fn follow(
        &self,
        viewer: &Viewer,
        room_id: i64,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<MessageRow, AppError>> + use<>, AppError> {
        // Membership first: the live map holds only rooms someone may follow.
        self.room(viewer, room_id).await?;
        // "From now on" is "after the newest message before the feed was joined", read before
        // joining and then caught up like any `after`: a message that commits while the
        // subscription is being set up is newer than `last`, so it is delivered from Postgres
        // or from the feed, never dropped as an old copy.
        let last = match after {
            Some(id) => id,
            None => latest_message_id(&self.db, room_id).await?,
        };
        let feed = self.live.watch(room_id);
        // While it lasts, the room's new messages are not counted into the member's
        // notifications: they are reading them.
        let present = self.presence.enter(viewer.user_id, room_id).await?;
        // And the notification of what they missed in it is read: after `enter`, so a message
        // the notifier handles meanwhile is not counted into a new one.
        crate::notify::room_opened(&self.db, viewer.user_id, room_id).await?;
        let follower = Follower {
            db: self.db.clone(),
            room_id,
            user_id: viewer.user_id,
            feed,
            _present: present,
            last,
            catch_up: true,
            ready: VecDeque::new(),
            done: false,
        };
        Ok(futures::stream::unfold(
            follower,
            |mut follower| async move {
                let item = follower.next().await?;
                Some((item, follower))
            },
        ))
    }
}

/// One live subscription's state: the room's feed, the last message id delivered, and messages
/// read from Postgres but not delivered yet.
struct Follower {
    db: Database,
    room_id: i64,
    user_id: i64,
    feed: live::Watch,
    _present: Present,
    last: i64,
    catch_up: bool,
    ready: VecDeque<MessageRow>,
    done: bool,
}

impl Follower {
    /// The next message or the error that ends the stream; `None` after that.
    async fn next(&mut self) -> Option<Result<MessageRow, AppError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(message) = self.ready.pop_front() {
                self.last = message.id;
                return Some(Ok(message));
            }
            if self.catch_up {
                // A page at a time, each delivered before the next is read: a subscription that
                // resumes far back holds one page, not the room's history.
                match missed(&self.db, self.room_id, self.user_id, self.last).await {
                    Ok(page) => {
                        self.catch_up = page.len() as i64 == CATCH_UP_PAGE;
                        self.ready.extend(page);
                    }
                    Err(e) => return self.end(e),
                }
                continue;
            }
            match self.feed.recv().await {
                Ok(RoomEvent::Message(message)) if message.id > self.last => {
                    self.last = message.id;
                    return Some(Ok(message));
                }
                // A copy of a message the catch-up delivered already.
                Ok(RoomEvent::Message(_)) => {}
                Ok(RoomEvent::Left { user_id }) if user_id == self.user_id => {
                    return self.end(no_longer_a_member());
                }
                Ok(RoomEvent::Left { .. }) => {}
                Ok(RoomEvent::Deleted) => return self.end(not_a_room(self.room_id)),
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(
                        room_id = self.room_id,
                        skipped,
                        "a subscriber fell behind; catching up from Postgres"
                    );
                    self.catch_up = true;
                }
                Err(RecvError::Closed) => {
                    return self.end(AppError::Unavailable(
                        "the server is shutting down; subscribe again with your last message id"
                            .to_owned(),
                    ));
                }
            }
        }
    }

    fn end(&mut self, error: AppError) -> Option<Result<MessageRow, AppError>> {
        self.done = true;
        Some(Err(error))
    }
}

/// The next page of the room's messages after `after`, oldest first, if `user_id` is still a
/// member (read in one snapshot with the page: nothing written after a leave); a full page means
/// there may be more.
async fn missed(
    db: &Database,
    room_id: i64,
    user_id: i64,
    after: i64,
) -> Result<Vec<MessageRow>, AppError> {
    let page = MessagePage::After {
        after,
        limit: CATCH_UP_PAGE,
    };
    store::messages_of_member(db.pool(), room_id, user_id, page)
        .await?
        .ok_or_else(no_longer_a_member)
}

async fn latest_message_id(db: &Database, room_id: i64) -> Result<i64, AppError> {
    let newest = MessagePage::Newest {
        before: None,
        limit: 1,
    };
    let messages = store::messages(db.pool(), room_id, newest).await?;
    Ok(messages.last().map_or(0, |m| m.id))
}

fn no_longer_a_member() -> AppError {
    AppError::Forbidden("you are no longer a member of this room".to_owned())
}

fn not_a_room(room_id: i64) -> AppError {
    AppError::NotFound(format!("no chat room {room_id}"))
}
