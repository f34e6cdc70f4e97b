//! Who an image belongs to — the one vocabulary the store, the activities, the sagas' inputs and
//! the GraphQL `OwnerType` share.

use serde::{Deserialize, Serialize};

/// The kind of thing that owns an image; stored (and sent over GraphQL) as the original API's
/// `OwnerType`: `POST`, `USER`, `MESSAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerType {
    Post,
    User,
    Message,
}

impl OwnerType {
    pub const fn as_str(self) -> &'static str {
        match self {
            OwnerType::Post => "POST",
            OwnerType::User => "USER",
            OwnerType::Message => "MESSAGE",
        }
    }

    pub fn from_stored(stored: &str) -> Option<Self> {
        [OwnerType::Post, OwnerType::User, OwnerType::Message]
            .into_iter()
            .find(|kind| kind.as_str() == stored)
    }
}

/// One owner of images: its kind and id. Serialized as `{"Post": 42}` in saga histories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageOwner {
    Post(i64),
    User(i64),
    Message(i64),
}

impl ImageOwner {
    pub const fn kind(self) -> OwnerType {
        match self {
            ImageOwner::Post(_) => OwnerType::Post,
            ImageOwner::User(_) => OwnerType::User,
            ImageOwner::Message(_) => OwnerType::Message,
        }
    }

    pub const fn id(self) -> i64 {
        match self {
            ImageOwner::Post(id) | ImageOwner::User(id) | ImageOwner::Message(id) => id,
        }
    }

    pub const fn new(kind: OwnerType, id: i64) -> Self {
        match kind {
            OwnerType::Post => ImageOwner::Post(id),
            OwnerType::User => ImageOwner::User(id),
            OwnerType::Message => ImageOwner::Message(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_through_their_stored_and_recorded_forms() {
        for owner in [
            ImageOwner::Post(1),
            ImageOwner::User(2),
            ImageOwner::Message(3),
        ] {
            let kind = OwnerType::from_stored(owner.kind().as_str());
            assert_eq!(kind.map(|k| ImageOwner::new(k, owner.id())), Some(owner));
        }
        assert_eq!(OwnerType::from_stored("post"), None);
        // The form saga histories hold.
        assert_eq!(
            serde_json::to_value(ImageOwner::Post(42)).unwrap(),
            serde_json::json!({ "Post": 42 })
        );
    }
}
