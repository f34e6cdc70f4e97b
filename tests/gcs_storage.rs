//! The Google Cloud Storage backend, through the `google-cloud-storage` crate, against
//! fake-gcs-server (`scripts/stack up fake-gcs`; `FAKE_GCS_URL` names it). Each test uses a bucket
//! of its own and deletes it afterwards.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::TestApp;
use fishapp::config::MediaBackend;
use fishapp_media::{Gcs, GcsCredentials, GcsSettings, GcsUrls, ObjectStore, StorageError};
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::json;
use std::io::Cursor;
use std::time::Duration;

fn emulator() -> String {
    std::env::var("FAKE_GCS_URL").expect(
        "FAKE_GCS_URL names fake-gcs-server: run `scripts/stack up fake-gcs` and \
         `eval \"$(scripts/stack env)\"` (scripts/test does both)",
    )
}

/// A bucket of the test's own on the emulator, deleted (objects first) when dropped.
struct Bucket {
    name: String,
    http: reqwest::Client,
}

impl Bucket {
    async fn create() -> Self {
        let name = format!("fishapp-test-{}", uuid::Uuid::new_v4().simple());
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{}/storage/v1/b", emulator()))
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("fake-gcs-server answers (scripts/stack up fake-gcs)");
        assert!(response.status().is_success(), "{response:?}");
        Self { name, http }
    }

    /// An object's metadata, as the JSON API gives it.
    async fn metadata(&self, object: &str) -> serde_json::Value {
        let object = object.replace('/', "%2F");
        self.http
            .get(format!(
                "{}/storage/v1/b/{}/o/{object}",
                emulator(),
                self.name
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Names of every object in the bucket.
    async fn objects(&self) -> Vec<String> {
        let listing: serde_json::Value = self
            .http
            .get(format!("{}/storage/v1/b/{}/o", emulator(), self.name))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listing["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|o| o["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread and a client
        // of our own (the test's client's connections belong to the blocked runtime).
        let _ = std::thread::spawn(move || {
            let http = reqwest::Client::new();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let base = format!("{}/storage/v1/b/{name}", emulator());
                let listing: serde_json::Value = match http.get(format!("{base}/o")).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => return,
                };
                for item in listing["items"].as_array().into_iter().flatten() {
                    let object = item["name"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('/', "%2F");
                    let _ = http.delete(format!("{base}/o/{object}")).send().await;
                }
                let _ = http.delete(base).send().await;
            });
        })
        .join();
    }
}

fn settings(bucket: &Bucket, credentials: GcsCredentials, urls: GcsUrls) -> GcsSettings {
    GcsSettings {
        bucket: bucket.name.clone(),
        prefix: "deployment-a/".to_owned(),
        endpoint: Some(emulator()),
        credentials,
        urls,
    }
}

/// The store as the emulator is used: no credentials, public URLs.
async fn anonymous_public(bucket: &Bucket) -> Gcs {
    Gcs::connect(settings(
        bucket,
        GcsCredentials::Anonymous,
        GcsUrls::Public { base_url: None },
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn objects_are_put_read_and_deleted_idempotently() {
    let bucket = Bucket::create().await;
    let store = anonymous_public(&bucket).await;
    let key = "images/0190a1b2/display.jpg";

    assert!(!store.exists(key).await.unwrap());
    store.put(key, b"one".to_vec(), "image/jpeg").await.unwrap();
    store.put(key, b"two".to_vec(), "image/jpeg").await.unwrap();
    assert!(store.exists(key).await.unwrap());
    assert_eq!(
        bucket.objects().await,
        ["deployment-a/images/0190a1b2/display.jpg"],
        "one object, under the prefix"
    );

    let url = store.url(key).await.unwrap();
    assert_eq!(
        url,
        format!(
            "{}/{}/deployment-a/images/0190a1b2/display.jpg",
            emulator(),
            bucket.name
        )
    );
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"two");
    let metadata = bucket
        .metadata("deployment-a/images/0190a1b2/display.jpg")
        .await;
    // The content type is sent too (in the upload's metadata part), but fake-gcs-server reads it
    // from the media part's header, which the crate leaves empty; real GCS takes the metadata.
    assert_eq!(
        metadata["cacheControl"],
        "public, max-age=31536000, immutable"
    );

    store.delete(key).await.unwrap();
    store.delete(key).await.unwrap(); // already gone: still success
    assert!(!store.exists(key).await.unwrap());
    assert!(bucket.objects().await.is_empty());
}

#[tokio::test]
async fn a_bad_key_is_refused_before_any_request() {
    let bucket = Bucket::create().await;
    let store = anonymous_public(&bucket).await;
    for bad in ["../escape.jpg", "a//b", "UPPER.jpg"] {
        assert!(matches!(
            store.put(bad, b"x".to_vec(), "image/jpeg").await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            store.url(bad).await,
            Err(StorageError::InvalidKey(_))
        ));
    }
    assert!(bucket.objects().await.is_empty());
}

/// A throwaway service account key (a fresh RSA key, made by openssl), as a key file.
fn service_account_key_file(dir: &std::path::Path) -> std::path::PathBuf {
    let output = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl is installed");
    assert!(output.status.success());
    let key = json!({
        "type": "service_account",
        "project_id": "fishapp-test",
        "private_key_id": "test-key",
        "private_key": String::from_utf8(output.stdout).unwrap(),
        "client_email": "fishapp-test@fishapp-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let path = dir.join("service-account.json");
    std::fs::write(&path, key.to_string()).unwrap();
    path
}

#[tokio::test]
async fn a_private_bucket_gets_signed_urls_that_expire() {
    let bucket = Bucket::create().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = service_account_key_file(dir.path());
    // Objects go in anonymously (the emulator checks no tokens); URLs are signed with the key.
    let writer = anonymous_public(&bucket).await;
    let signer = Gcs::connect(settings(
        &bucket,
        GcsCredentials::ServiceAccountKeyFile(key_file),
        GcsUrls::Signed {
            ttl: Duration::from_secs(900),
        },
    ))
    .await
    .unwrap();
    let key = "images/0190a1b2/thumbnail.png";
    writer.put(key, b"png".to_vec(), "image/png").await.unwrap();

    let url = url::Url::parse(&signer.url(key).await.unwrap()).unwrap();
    assert_eq!(
        url.path(),
        format!(
            "/{}/deployment-a/images/0190a1b2/thumbnail.png",
            bucket.name
        )
    );
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["X-Goog-Algorithm"], "GOOG4-RSA-SHA256");
    assert_eq!(query["X-Goog-Expires"], "900");
    assert!(query["X-Goog-Credential"].starts_with("fishapp-test@"));
    assert_eq!(
        query["X-Goog-Signature"].len(),
        512,
        "an RSA-2048 signature, in hex"
    );
    // The emulator does not check signatures, but serves the object the URL names.
    let response = reqwest::get(url.as_str()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"png");
}

fn photo() -> Vec<u8> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::from_pixel(900, 600, image::Rgb([20, 90, 160])))
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
        .unwrap();
    bytes
}

#[tokio::test]
async fn avatars_live_in_the_bucket_when_the_app_is_configured_for_gcs() {
    let bucket = Bucket::create().await;
    let name = bucket.name.clone();
    let app = TestApp::spawn_with(|c| {
        c.media.media_storage = MediaBackend::Gcs;
        c.media.media_gcs_bucket = name;
        c.media.media_gcs_prefix = "avatars-test".to_owned();
        c.media.media_gcs_endpoint = Some(emulator());
        c.media.media_gcs_anonymous = true;
    })
    .await;
    let body = app
        .graphql_multipart(
            None,
            "mutation($input: CreateUserInput!) {
               createUser(input: $input) { user { image { url thumbnailUrl width } } }
             }",
            json!({ "input": {
                "email": format!("gcs-{}@example.com", uuid::Uuid::new_v4().simple()),
                "password": "a-long-enough-secret", "name": "gcs", "sex": "FEMALE",
                "introduction": "hi", "image": null } }),
            vec![("variables.input.image", "me.jpg", photo())],
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let image = &body["data"]["createUser"]["user"]["image"];
    assert_eq!(image["width"], 600);
    for field in ["url", "thumbnailUrl"] {
        let url = image[field].as_str().unwrap();
        assert!(
            url.starts_with(&format!(
                "{}/{}/avatars-test/images/",
                emulator(),
                bucket.name
            )),
            "{url}"
        );
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    }
    assert_eq!(bucket.objects().await.len(), 2, "display and thumbnail");
    assert!(app.media_files().is_empty(), "nothing on local disk");
}
