//! Data the benchmarks start from, written straight through the store (what the sagas leave
//! behind), so that seeding does not dominate a run.

use fishapp_domain::board::PostDraft;
use fishapp_domain::media::ImageOwner;
use fishapp_store::media::{self, NewImage};
use fishapp_store::{board, chat};
use serde_json::json;

/// An OPEN trip of `owner` with `max_apply` seats and its room (the owner its one member), the
/// `n`-th of a series (titles, spot types, prefectures and fish vary with `n`); (post id, room
/// id).
pub(crate) async fn open_post(
    pool: &sqlx::PgPool,
    owner: i64,
    max_apply: i32,
    n: usize,
) -> (i64, i64) {
    let id = board::reserve_post_id(pool).await.expect("a post id");
    let fields: PostDraft = serde_json::from_value(json!({
        "title": format!("Seeded {n}"),
        "content": "Seeded for the benchmark.",
        "fishing_spot_type_id": 1 + (n % 4) as i16,
        "prefecture_id": 1 + (n % 47) as i16,
        "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meeting_at": chrono::Utc::now() + chrono::Duration::days(1 + (n % 30) as i64),
        "max_apply": max_apply,
        "fish_type_ids": [1 + (n % 40) as i16, 50 + (n % 40) as i16],
    }))
    .expect("a valid draft");
    board::insert_pending(pool, id, owner, &fields)
        .await
        .expect("the post");
    let room = chat::create_room(pool, id, owner)
        .await
        .expect("the room")
        .id;
    board::publish(pool, id).await.expect("published");
    (id, room)
}

/// `count` 600×450 JPEG images of a post (records only: the bytes are not read by listings).
pub(crate) async fn post_images(pool: &sqlx::PgPool, post_id: i64, count: usize) {
    for n in 0..count {
        let image = uuid::Uuid::new_v4();
        let key = format!("images/{image}/display.jpg");
        media::insert_image(
            pool,
            &NewImage {
                id: image,
                owner: Some(ImageOwner::Post(post_id)),
                display_key: &key,
                thumbnail_key: &key,
                content_type: "image/jpeg",
                width: 600,
                height: 450,
                bytes: 50_000 + n as i64,
                original_name: "seed.jpg",
                uploader_id: None,
            },
        )
        .await
        .expect("an image record");
    }
}
