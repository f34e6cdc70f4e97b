//! Peak memory of the image pipeline on the worst images the default limits admit (and on the
//! one-colour 16-bit PNG that took a process to 1.48 GB before the decoded-bytes limit).
//!
//!     cargo run --release -p fishapp-media --example peak_rss
//!
//! Each image is written to a temporary file by a child process (making it needs its pixels in
//! memory), then processed by another child process of its own, which reports its peak resident
//! memory (`VmHWM`) before and after: the difference is the pipeline's. Prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example's failure is its panic

use fishapp_media::{DecodeLimits, process};
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, Rgba};
use std::path::Path;
use std::process::Command;

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The cases: name, width, height, colour type, format.
const CASES: &[(&str, u32, u32, &str, &str)] = &[
    (
        "8-bit RGB JPEG, 12000×9000 (a 108 MP phone photo)",
        12_000,
        9_000,
        "rgb8",
        "jpeg",
    ),
    (
        "8-bit RGB PNG, one colour, 10950×10950 (120 MP, the pixel limit)",
        10_950,
        10_950,
        "rgb8flat",
        "png",
    ),
    (
        "16-bit RGBA PNG, 7090×7090 (the decoded-bytes limit)",
        7_090,
        7_090,
        "rgba16",
        "png",
    ),
    (
        "16-bit RGBA PNG, 10950×10950 (the reported bomb)",
        10_950,
        10_950,
        "rgba16",
        "png",
    ),
];

fn make(path: &Path, width: u32, height: u32, kind: &str, format: &str) {
    let image = match kind {
        "rgb8flat" => {
            DynamicImage::ImageRgb8(ImageBuffer::from_pixel(width, height, Rgb([90, 140, 200])))
        }
        "rgb8" => DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
            Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 239) as u8])
        })),
        _ => DynamicImage::ImageRgba16(ImageBuffer::from_pixel(
            width,
            height,
            Rgba([40_000, 20_000, 10_000, u16::MAX]),
        )),
    };
    let format = if format == "png" {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    image.save_with_format(path, format).unwrap();
}

fn measure(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let before = peak_kib();
    let outcome = match process(&bytes, DecodeLimits::default()) {
        Ok(out) => format!("processed to {}×{}", out.display.width, out.display.height),
        Err(e) => format!("refused: {e}"),
    };
    let after = peak_kib();
    println!(
        "{}\t{}\t{}",
        bytes.len(),
        after.saturating_sub(before),
        outcome
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("make") => {
            let case = CASES[args[2].parse::<usize>().unwrap()];
            make(Path::new(&args[3]), case.1, case.2, case.3, case.4);
        }
        Some("measure") => measure(Path::new(&args[2])),
        _ => {
            let me = std::env::current_exe().unwrap();
            let dir = std::env::temp_dir().join(format!("fishapp-peak-rss-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            println!("| image | file | pipeline peak RSS | outcome |\n|---|---|---|---|");
            for (i, case) in CASES.iter().enumerate() {
                let path = dir.join(format!("case{i}"));
                let made = Command::new(&me)
                    .args(["make", &i.to_string(), path.to_str().unwrap()])
                    .status()
                    .unwrap();
                assert!(made.success());
                let out = Command::new(&me)
                    .args(["measure", path.to_str().unwrap()])
                    .output()
                    .unwrap();
                let line = String::from_utf8(out.stdout).unwrap();
                let mut fields = line.trim().splitn(3, '\t');
                let size: u64 = fields.next().unwrap().parse().unwrap();
                let peak: u64 = fields.next().unwrap().parse().unwrap();
                println!(
                    "| {} | {:.1} MB | {} MiB | {} |",
                    case.0,
                    size as f64 / 1e6,
                    peak / 1024,
                    fields.next().unwrap_or_default()
                );
                std::fs::remove_file(&path).ok();
            }
            std::fs::remove_dir_all(&dir).ok();
        }
    }
}
