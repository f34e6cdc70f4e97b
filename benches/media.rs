//! Upload-and-process throughput for a 4 MB photo at concurrency 4, and the process's peak memory.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench media
//!
//! Runs the real application in-process (release build) against the local stack. Each upload is
//! a GraphQL multipart `updateUser` with a new avatar: streamed to a temporary file, checked,
//! decoded, oriented, resized to 600×800 and a thumbnail, re-encoded, written to the local object
//! store and recorded (the previous avatar deleted). Prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;

use common::TestApp;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const UPLOADS: usize = 40;
const CONCURRENCY: usize = 4;

/// A photo-like JPEG of about 4.3 MB: 3000 × 2250 (6.75 MP, a phone photo), textured so that it
/// does not compress to nothing.
fn photo() -> Vec<u8> {
    let mut state = 0x9e37_79b9_u32;
    let image = RgbImage::from_fn(3000, 2250, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state & 0x3f) as u8;
        Rgb([
            (x / 12) as u8 ^ noise,
            (y / 9) as u8 ^ noise,
            ((x + y) / 20) as u8 ^ noise,
        ])
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 85)
        .encode_image(&image)
        .unwrap();
    bytes
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let app = Arc::new(TestApp::spawn_with(|c| c.diagnostics.log_filter = "error".into()).await);
    let photo = Arc::new(photo());
    let megabytes = photo.len() as f64 / 1e6;
    let body = app
        .graphql_as(
            None,
            "mutation($i: CreateUserInput!) { createUser(input: $i) { tokenPair { idToken } } }",
            json!({ "i": { "email": format!("bench-{}@example.com", uuid::Uuid::new_v4().simple()), "password": "benchmark-password-42", "name": "bench", "sex": "MALE", "introduction": "bench" } }),
        )
        .await;
    let token: Arc<str> = body["data"]["createUser"]["tokenPair"]["idToken"]
        .as_str()
        .unwrap()
        .into();
    let update = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { image { width height } } } }";
    let rss_before = peak_rss_mib();

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (app, photo, token, next) =
                (app.clone(), photo.clone(), token.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < UPLOADS {
                    let body = app
                        .graphql_multipart(
                            Some(&token),
                            update,
                            json!({ "input": { "image": null } }),
                            vec![("variables.input.image", "photo.jpg", photo.to_vec())],
                        )
                        .await;
                    assert_eq!(
                        body["data"]["updateUser"]["user"]["image"]["width"], 600,
                        "{body}"
                    );
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| photo | {megabytes:.2} MB JPEG, 3000×2250 |");
    println!("| uploads | {UPLOADS} at concurrency {CONCURRENCY} |");
    println!(
        "| throughput | **{:.2} images/s**, {:.1} MB/s |",
        UPLOADS as f64 / seconds,
        UPLOADS as f64 * megabytes / seconds
    );
    println!(
        "| mean time per image (wall / uploads) | {:.0} ms |",
        seconds * 1e3 / UPLOADS as f64
    );
    println!(
        "| peak RSS before uploads / after | {rss_before:.0} MiB / {:.0} MiB |",
        peak_rss_mib()
    );
}
