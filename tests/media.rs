//! Uploads over GraphQL multipart: avatars, processed and served; bad files refused with nothing
//! kept.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{TestApp, error_code};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};
use std::io::Cursor;

const SIGN_UP: &str = "mutation($input: CreateUserInput!) {
  createUser(input: $input) {
    user { id image { id name ownerId ownerType url thumbnailUrl width height contentType } }
    tokenPair { idToken }
  }
}";

fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// Noise: PNG cannot compress it, so the file is about width × height × 3 bytes.
fn noise_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let image = RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        Rgb([r, g, b])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

fn input(email: &str) -> Value {
    json!({ "input": { "email": email, "password": "a-long-enough-secret", "name": "avatar", "sex": "MALE", "introduction": "hi", "image": null } })
}

fn email() -> String {
    format!("media-{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn sign_up_with(app: &TestApp, email: &str, name: &str, bytes: Vec<u8>) -> Value {
    app.graphql_multipart(
        None,
        SIGN_UP,
        input(email),
        vec![("variables.input.image", name, bytes)],
    )
    .await
}

#[tokio::test]
async fn an_avatar_is_processed_stored_and_served() {
    let app = TestApp::spawn().await;
    let body = sign_up_with(
        &app,
        &email(),
        "holiday.png",
        picture(900, 1200, ImageFormat::Png),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let user = &body["data"]["createUser"]["user"];
    let image = &user["image"];
    assert_eq!(
        (image["width"].as_i64(), image["height"].as_i64()),
        (Some(600), Some(800)),
        "{body}"
    );
    assert_eq!(image["contentType"], "image/jpeg");
    assert_eq!(image["ownerType"], "USER");
    // `ownerId: Int!` as the original's; the user's id is an `ID` (a string).
    assert_eq!(
        image["ownerId"].as_i64().map(|n| n.to_string()).as_deref(),
        user["id"].as_str()
    );
    assert!(
        !image["name"].as_str().unwrap().contains("holiday"),
        "the uploader's file name is not published"
    );

    for (field, max_side) in [("url", 800), ("thumbnailUrl", 200)] {
        let url = image[field].as_str().unwrap();
        assert!(url.starts_with("/media/images/"), "{url}");
        let response = app.http.get(app.url(url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let served = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert!(served.width().max(served.height()) <= max_side, "{field}");
    }
}

#[tokio::test]
async fn every_accepted_format_works_as_an_avatar() {
    let app = TestApp::spawn().await;
    for (format, name) in [
        (ImageFormat::Jpeg, "a.jpg"),
        (ImageFormat::Png, "a.png"),
        (ImageFormat::Gif, "a.gif"),
        (ImageFormat::WebP, "a.webp"),
    ] {
        let body = sign_up_with(&app, &email(), name, picture(64, 48, format)).await;
        assert!(body["errors"].is_null(), "{format:?}: {body}");
        assert_eq!(body["data"]["createUser"]["user"]["image"]["width"], 64);
    }
}

#[tokio::test]
async fn bad_files_are_refused_naming_the_field_and_nothing_is_kept() {
    let app = TestApp::spawn_with(|c| c.media.media_max_file_bytes = 50_000).await;
    let jpeg = picture(300, 200, ImageFormat::Jpeg);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "notes.jpg",
            b"just some text, named like a photo".to_vec(),
            "not a JPEG, PNG, GIF or WebP",
        ),
        (
            "cut.jpg",
            jpeg[..jpeg.len() / 2].to_vec(),
            "corrupt or truncated",
        ),
        ("huge.png", noise_png(200, 200), "bytes are accepted"),
    ];
    for (name, bytes, says) in cases {
        let address = email();
        let body = sign_up_with(&app, &address, name, bytes).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "image", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(name) && message.contains(says),
            "{message}"
        );
        // No account was created: the address is still free.
        let again = app.graphql_as(None, SIGN_UP, input(&address)).await;
        assert!(again["errors"].is_null(), "{again}");
    }
    assert!(
        app.media_files().is_empty(),
        "left behind: {:?}",
        app.media_files()
    );
}

/// Two sign-ups for one address at once: both may pass the check before either is written, so
/// the loser can fail at the insert with its avatar already stored — which is then deleted.
#[tokio::test]
async fn a_sign_up_that_loses_the_race_for_its_email_keeps_no_avatar() {
    let app = TestApp::spawn().await;
    let lone = sign_up_with(
        &app,
        &email(),
        "lone.png",
        picture(100, 100, ImageFormat::Png),
    )
    .await;
    assert!(lone["errors"].is_null(), "{lone}");
    let per_avatar = app.media_files().len();
    let address = email();
    let (a, b) = tokio::join!(
        sign_up_with(&app, &address, "a.png", picture(100, 100, ImageFormat::Png)),
        sign_up_with(&app, &address, "b.png", picture(120, 100, ImageFormat::Png)),
    );
    let (winner, loser) = if a["errors"].is_null() {
        (a, b)
    } else {
        (b, a)
    };
    assert!(winner["errors"].is_null(), "{winner}");
    assert_eq!(
        loser["errors"][0]["extensions"]["field"], "email",
        "{loser}"
    );
    assert_eq!(
        app.media_files().len(),
        2 * per_avatar,
        "only the two accounts' avatars remain: {:?}",
        app.media_files()
    );
}

#[tokio::test]
async fn replacing_an_avatar_deletes_the_old_one_after_storing_the_new() {
    let app = TestApp::spawn().await;
    let body = sign_up_with(
        &app,
        &email(),
        "first.png",
        picture(100, 100, ImageFormat::Png),
    )
    .await;
    let token = body["data"]["createUser"]["tokenPair"]["idToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_url = body["data"]["createUser"]["user"]["image"]["url"]
        .as_str()
        .unwrap()
        .to_owned();

    let update = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { image { url width } } } }";
    let body = app
        .graphql_multipart(
            Some(&token),
            update,
            json!({ "input": { "image": null } }),
            vec![(
                "variables.input.image",
                "second.png",
                picture(300, 150, ImageFormat::Png),
            )],
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let new_url = body["data"]["updateUser"]["user"]["image"]["url"]
        .as_str()
        .unwrap();
    assert_ne!(new_url, old_url);
    assert_eq!(body["data"]["updateUser"]["user"]["image"]["width"], 300);
    assert_eq!(
        app.http
            .get(app.url(new_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url(&old_url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.media_files().len(),
        2,
        "one display and one thumbnail: {:?}",
        app.media_files()
    );

    // A bad replacement leaves the current avatar alone.
    let body = app
        .graphql_multipart(
            Some(&token),
            update,
            json!({ "input": { "image": null } }),
            vec![("variables.input.image", "x.gif", b"GIF89a".to_vec())],
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        app.http
            .get(app.url(new_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_sign_up_that_cannot_succeed_is_refused_before_its_avatar_is_looked_at() {
    let app = TestApp::spawn().await;
    // A bad email and a file that is no image: the email is named, because the fields are
    // checked before the avatar is processed.
    let mut bad = input("not-an-email");
    bad["input"]["image"] = Value::Null;
    let body = app
        .graphql_multipart(
            None,
            SIGN_UP,
            bad,
            vec![(
                "variables.input.image",
                "notes.jpg",
                b"no image at all".to_vec(),
            )],
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "email", "{body}");
    // An email already registered: refused the same way, nothing stored.
    let taken = email();
    assert!(app.graphql_as(None, SIGN_UP, input(&taken)).await["errors"].is_null());
    let body = sign_up_with(&app, &taken, "me.png", picture(100, 100, ImageFormat::Png)).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "email", "{body}");
    assert!(app.media_files().is_empty(), "{:?}", app.media_files());
}
