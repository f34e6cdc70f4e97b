//! The image pipeline: what an uploaded file becomes before anyone else sees it.
//!
//! 1. The type comes from the bytes (magic numbers), never from the file name or a header: JPEG,
//!    PNG, GIF and WebP are accepted, anything else is refused.
//! 2. The header's dimensions *and the bytes its pixels would take* (width × height × bytes per
//!    pixel of its colour type: 3 for 8-bit RGB, 8 for 16-bit RGBA) are checked before any pixel
//!    is decoded, and the decoder runs under allocation limits: a decompression bomb (enormous
//!    dimensions in a small file, or a small one-colour PNG of 16-bit pixels) is refused without
//!    allocating its pixels.
//! 3. The EXIF orientation is applied to the pixels; then nothing but pixels survives: the output
//!    is encoded from scratch, so EXIF (GPS coordinates included — anglers guard their spots),
//!    XMP, ICC and comments are gone.
//! 4. The image is fitted inside 600×800 without upscaling (Lanczos3), a 200 px thumbnail is
//!    made, and both are encoded as JPEG at quality 75, or PNG when the image has transparency.
//!
//! Memory is bounded by construction: the decoded pixels (at most `max_decoded_bytes`) are the only
//! full-size buffer. The transparency check reads them in place, a large image is first averaged
//! down to twice the display size in one pass (no full-height floating-point intermediate, as a
//! direct Lanczos3 resize would make), and the EXIF orientation is applied to the display-sized
//! result, not to the full image.
//!
//! Everything here is synchronous CPU work: callers run it off the async runtime
//! (`tokio::task::spawn_blocking`), bounded.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest display size (fits inside, aspect kept, never upscaled).
pub const DISPLAY_MAX: (u32, u32) = (600, 800);
/// Thumbnail: fits inside this square.
pub const THUMBNAIL_MAX: u32 = 200;
pub const JPEG_QUALITY: u8 = 75;

/// Bounds on what a file may claim before it is decoded.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// Width × height.
    pub max_pixels: u64,
    /// Bytes the decoded pixels may take (width × height × bytes per pixel), checked from the
    /// header; the decoder's own allocations are capped at twice this.
    pub max_decoded_bytes: u64,
}

impl Default for DecodeLimits {
    /// Generous for phone photos (a 108 MP sensor is 12000 × 9000: 324 MB of 8-bit RGB), far below
    /// a bomb. 16-bit RGBA (8 bytes a pixel) is admitted up to about 50 MP.
    fn default() -> Self {
        Self {
            max_width: 12_000,
            max_height: 12_000,
            max_pixels: 120_000_000,
            max_decoded_bytes: 384 * 1024 * 1024,
        }
    }
}

/// The formats accepted on upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
}

impl InputFormat {
    /// From the first bytes of a file (12 are enough).
    pub fn sniff(head: &[u8]) -> Option<Self> {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Self::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Self::Gif),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(Self::Webp),
            _ => None,
        }
    }

    /// Whether the file's structure reaches its end marker.
    fn is_complete(self, file: &[u8]) -> bool {
        fn last(file: &[u8], marker: [u8; 2]) -> Option<usize> {
            file.windows(2).rposition(|w| w == marker)
        }
        match self {
            // Entropy-coded data never contains FF D9 (FF is stuffed), so an EOI after the last
            // start-of-scan means the last scan is whole.
            Self::Jpeg => {
                matches!((last(file, [0xFF, 0xDA]), last(file, [0xFF, 0xD9])), (Some(sos), Some(eoi)) if eoi > sos)
            }
            Self::Png => file
                .windows(12)
                .any(|w| w == [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]),
            Self::Gif => file.last() == Some(&0x3B),
            Self::Webp => file
                .get(4..8)
                .and_then(|size| size.try_into().ok())
                .map(u32::from_le_bytes)
                .is_some_and(|size| (size as usize).saturating_add(8) <= file.len()),
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Gif => ImageFormat::Gif,
            Self::Webp => ImageFormat::WebP,
        }
    }
}

/// Why a file was refused. Every variant is the uploader's problem (a user error), except none.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessError {
    #[error("not a JPEG, PNG, GIF or WebP image")]
    UnsupportedType,
    #[error(
        "the image is {width}×{height} pixels; at most {max_width}×{max_height}, {max_pixels} pixels and {max_decoded_mib} MiB of decoded pixels are accepted"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
        max_decoded_mib: u64,
    },
    #[error("the image is corrupt or truncated ({0})")]
    Corrupt(String),
}

/// One encoded rendition.
#[derive(Debug, Clone)]
pub struct Rendition {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// What an upload becomes.
#[derive(Debug, Clone)]
pub struct Processed {
    pub display: Rendition,
    pub thumbnail: Rendition,
}

/// Runs the whole pipeline on one file (at most the upload cap, 10 MiB by default: holding it is
/// fine; its decoded pixels are what the limits bound).
pub fn process(file: &[u8], limits: DecodeLimits) -> Result<Processed, ProcessError> {
    let format = InputFormat::sniff(file).ok_or(ProcessError::UnsupportedType)?;
    // Lenient decoders fill a truncated image with grey and call it done; a cut-off upload is
    // the uploader's to fix, so each format's end marker must be there.
    if !format.is_complete(file) {
        return Err(ProcessError::Corrupt(
            "the file ends before the image does".to_owned(),
        ));
    }

    let mut reader = ImageReader::with_format(Cursor::new(file), format.image_format());
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_decoded_bytes.saturating_mul(2));
    reader.limits(decoder_limits);

    // Reading the header alone: no pixel is decoded before the dimensions pass.
    let mut decoder = reader.into_decoder().map_err(|e| refuse(e, limits))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    let decoded_bytes = pixels * u64::from(decoder.color_type().bytes_per_pixel());
    if width > limits.max_width
        || height > limits.max_height
        || pixels > limits.max_pixels
        || decoded_bytes > limits.max_decoded_bytes
    {
        return Err(too_large(width, height, limits));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(|e| refuse(e, limits))?;
    let transparent = has_transparency(&image);

    // Fitted before it is turned, so that turning copies only the display-sized image: a
    // quarter turn swaps the box the unturned image must fit.
    use image::metadata::Orientation::{Rotate90, Rotate90FlipH, Rotate270, Rotate270FlipH};
    let (max_w, max_h) = match orientation {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (DISPLAY_MAX.1, DISPLAY_MAX.0),
        _ => DISPLAY_MAX,
    };
    let mut display = fit_within(&image, max_w, max_h);
    drop(image);
    display.apply_orientation(orientation);
    let thumbnail = fit_within(&display, THUMBNAIL_MAX, THUMBNAIL_MAX);
    Ok(Processed {
        display: encode(&display, transparent)?,
        thumbnail: encode(&thumbnail, transparent)?,
    })
}

fn too_large(width: u32, height: u32, limits: DecodeLimits) -> ProcessError {
    ProcessError::TooLarge {
        width,
        height,
        max_width: limits.max_width,
        max_height: limits.max_height,
        max_pixels: limits.max_pixels,
        max_decoded_mib: limits.max_decoded_bytes / (1024 * 1024),
    }
}

fn refuse(error: image::ImageError, limits: DecodeLimits) -> ProcessError {
    match error {
        image::ImageError::Limits(_) => too_large(0, 0, limits),
        image::ImageError::Unsupported(_) => ProcessError::UnsupportedType,
        other => ProcessError::Corrupt(other.to_string()),
    }
}

/// Scales down to fit inside `max_w`×`max_h`, keeping the aspect ratio; never scales up. An
/// image more than twice the target is first averaged down to twice the target (a box filter in
/// one pass, whose only buffer is its output), then resampled with Lanczos3 from there: the
/// result of Lanczos3, without the full-height floating-point buffer it makes on a large image.
fn fit_within(image: &DynamicImage, max_w: u32, max_h: u32) -> DynamicImage {
    let (width, height) = (image.width(), image.height());
    if width <= max_w && height <= max_h {
        return image.clone();
    }
    let (new_w, new_h) = fitted(width, height, max_w, max_h);
    if width > 2 * new_w && height > 2 * new_h {
        image
            .thumbnail_exact(2 * new_w, 2 * new_h)
            .resize_exact(new_w, new_h, FilterType::Lanczos3)
    } else {
        image.resize_exact(new_w, new_h, FilterType::Lanczos3)
    }
}

/// The size `DynamicImage::resize` gives: the aspect ratio kept, rounded, at least 1.
fn fitted(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let ratio = (f64::from(max_w) / f64::from(width)).min(f64::from(max_h) / f64::from(height));
    let side = |n: u32| ((f64::from(n) * ratio).round() as u32).max(1);
    (side(width), side(height))
}

/// Whether any pixel is not fully opaque (an alpha channel that is all opaque does not count),
/// read in place: no copy of the image.
fn has_transparency(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageLumaA8(i) => i.pixels().any(|p| p.0[1] < u8::MAX),
        DynamicImage::ImageRgba8(i) => i.pixels().any(|p| p.0[3] < u8::MAX),
        DynamicImage::ImageLumaA16(i) => i.pixels().any(|p| p.0[1] < u16::MAX),
        DynamicImage::ImageRgba16(i) => i.pixels().any(|p| p.0[3] < u16::MAX),
        DynamicImage::ImageRgba32F(i) => i.pixels().any(|p| p.0[3] < 1.0),
        _ => false,
    }
}

fn encode(image: &DynamicImage, transparent: bool) -> Result<Rendition, ProcessError> {
    let mut bytes = Vec::new();
    let content_type = if transparent {
        image
            .to_rgba8()
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|e| ProcessError::Corrupt(e.to_string()))?;
        "image/png"
    } else {
        JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
            .encode_image(&image.to_rgb8())
            .map_err(|e| ProcessError::Corrupt(e.to_string()))?;
        "image/jpeg"
    };
    Ok(Rendition {
        bytes,
        content_type,
        width: image.width(),
        height: image.height(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn photo(width: u32, height: u32) -> RgbImage {
        // Left half red, right half blue: orientation is visible in the output.
        RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 20, 220])
            }
        })
    }

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    fn run(bytes: &[u8]) -> Result<Processed, ProcessError> {
        process(bytes, DecodeLimits::default())
    }

    #[test]
    fn every_accepted_format_comes_out_fitted_and_re_encoded() {
        let big = DynamicImage::ImageRgb8(photo(1200, 900));
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ] {
            let out = run(&encoded(&big, format)).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(
                (out.display.width, out.display.height),
                (600, 450),
                "{format:?}"
            );
            assert_eq!(out.display.content_type, "image/jpeg", "{format:?}");
            assert_eq!(
                InputFormat::sniff(&out.display.bytes),
                Some(InputFormat::Jpeg)
            );
            assert_eq!(
                (out.thumbnail.width, out.thumbnail.height),
                (200, 150),
                "{format:?}"
            );
        }
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let out = run(&encoded(
            &DynamicImage::ImageRgb8(photo(120, 80)),
            ImageFormat::Png,
        ))
        .unwrap();
        assert_eq!((out.display.width, out.display.height), (120, 80));
        assert_eq!((out.thumbnail.width, out.thumbnail.height), (120, 80));
    }

    #[test]
    fn transparency_keeps_png_and_opaque_alpha_does_not() {
        let clear =
            RgbaImage::from_fn(64, 64, |x, _| Rgba([0, 0, 0, if x < 32 { 0 } else { 255 }]));
        let out = run(&encoded(&DynamicImage::ImageRgba8(clear), ImageFormat::Png)).unwrap();
        assert_eq!(out.display.content_type, "image/png");
        let opaque = RgbaImage::from_pixel(64, 64, Rgba([10, 20, 30, 255]));
        let out = run(&encoded(
            &DynamicImage::ImageRgba8(opaque),
            ImageFormat::Png,
        ))
        .unwrap();
        assert_eq!(out.display.content_type, "image/jpeg");
    }

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(
            run(b"%PDF-1.7 not an image at all").unwrap_err(),
            ProcessError::UnsupportedType
        );
        assert_eq!(run(b"").unwrap_err(), ProcessError::UnsupportedType);
        // A BMP header, and a JPEG's name on an SVG's bytes.
        assert_eq!(
            run(b"BM6\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00(\x00").unwrap_err(),
            ProcessError::UnsupportedType
        );
        assert_eq!(
            run(b"<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap_err(),
            ProcessError::UnsupportedType
        );
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors_not_panics() {
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ] {
            let bytes = encoded(&DynamicImage::ImageRgb8(photo(300, 200)), format);
            for cut in [13, 40, bytes.len() / 2, bytes.len() - 3] {
                let result = run(&bytes[..cut]);
                assert!(
                    matches!(
                        result,
                        Err(ProcessError::Corrupt(_) | ProcessError::UnsupportedType)
                    ),
                    "{format:?} cut at {cut} of {} was accepted",
                    bytes.len()
                );
            }
        }
        let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xE0];
        garbage.extend(std::iter::repeat_n(0x42, 5000));
        assert!(matches!(run(&garbage), Err(ProcessError::Corrupt(_))));
    }

    /// A real PNG whose header claims 100000 × 100000 pixels: 30 GB of pixels in a few bytes.
    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        let mut png = encoded(&DynamicImage::ImageRgb8(photo(1, 1)), ImageFormat::Png);
        // IHDR: length (4) + "IHDR" (4) at offset 8, then width and height, then 5 bytes, CRC.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        match run(&png) {
            Err(ProcessError::TooLarge { .. }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Within each side's limit but too many pixels in all.
        let limits = DecodeLimits {
            max_pixels: 100,
            ..DecodeLimits::default()
        };
        let small_but_many = encoded(&DynamicImage::ImageRgb8(photo(20, 20)), ImageFormat::Png);
        assert!(matches!(
            process(&small_but_many, limits),
            Err(ProcessError::TooLarge {
                width: 20,
                height: 20,
                ..
            })
        ));
    }

    /// The decoded size counts the colour type: 16-bit RGBA takes 8 bytes a pixel, so a small
    /// one-colour PNG of many such pixels is refused by its header, while the same dimensions in
    /// 8-bit RGB pass.
    #[test]
    fn decoded_bytes_are_bounded_by_the_header() {
        let limits = DecodeLimits {
            max_decoded_bytes: 64 * 64 * 4,
            ..DecodeLimits::default()
        };
        let deep = DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
            64,
            64,
            image::Rgba([1u16, 2, 3, u16::MAX]),
        ));
        assert!(matches!(
            process(&encoded(&deep, ImageFormat::Png), limits),
            Err(ProcessError::TooLarge {
                width: 64,
                height: 64,
                ..
            })
        ));
        let shallow = DynamicImage::ImageRgb8(photo(64, 64));
        assert!(process(&encoded(&shallow, ImageFormat::Png), limits).is_ok());
    }

    /// A large image goes through the two-step fit and comes out exactly where `resize` would
    /// put it, transparency kept.
    #[test]
    fn a_large_image_is_fitted_to_the_exact_size() {
        let big = DynamicImage::ImageRgba8(image::ImageBuffer::from_fn(2_500, 1_700, |x, _| {
            image::Rgba([(x % 256) as u8, 0, 0, if x == 0 { 0 } else { 255 }])
        }));
        let out = run(&encoded(&big, ImageFormat::Png)).expect("processed");
        let expected = big.resize(600, 800, FilterType::Lanczos3);
        assert_eq!(
            (out.display.width, out.display.height),
            (expected.width(), expected.height())
        );
        assert_eq!(out.display.content_type, "image/png");
    }

    /// A JPEG with an EXIF block: orientation 6 (rotate 90° clockwise to view) and a GPS IFD.
    fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
        let jpeg = encoded(
            &DynamicImage::ImageRgb8(photo(width, height)),
            ImageFormat::Jpeg,
        );
        // TIFF, little endian: IFD0 with Orientation (0x0112) = 6 and GPSInfo (0x8825) -> GPS IFD
        // with GPSLatitudeRef (0x0001) = "N".
        let mut tiff: Vec<u8> = b"II*\0".to_vec();
        tiff.extend(8u32.to_le_bytes()); // IFD0 at 8
        tiff.extend(2u16.to_le_bytes()); // two entries
        tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation SHORT 1 = 6
        tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0]); // GPSInfo LONG 1 = offset
        tiff.extend(38u32.to_le_bytes()); // GPS IFD at 38
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        tiff.extend(1u16.to_le_bytes()); // GPS IFD: one entry
        tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]); // GPSLatitudeRef ASCII 2 = "N"
        tiff.extend(0u32.to_le_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(&tiff);
        let length = u16::try_from(app1.len() + 2).unwrap();
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend(length.to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]); // the encoder's JPEG without its SOI
        out
    }

    #[test]
    fn orientation_is_applied_and_every_bit_of_metadata_is_gone() {
        let input = jpeg_with_exif(400, 300);
        assert!(
            input.windows(4).any(|w| w == b"Exif"),
            "the fixture carries EXIF"
        );
        let out = run(&input).unwrap();
        // Rotated: 400×300 landscape becomes 300×400 portrait.
        assert_eq!((out.display.width, out.display.height), (300, 400));
        // After a 90° clockwise turn the red left half is on top.
        let decoded = image::load_from_memory(&out.display.bytes)
            .unwrap()
            .to_rgb8();
        let top = decoded.get_pixel(150, 20).0;
        let bottom = decoded.get_pixel(150, 380).0;
        assert!(top[0] > 150 && top[2] < 100, "top should be red: {top:?}");
        assert!(
            bottom[2] > 150 && bottom[0] < 100,
            "bottom should be blue: {bottom:?}"
        );
        for rendition in [&out.display, &out.thumbnail] {
            let bytes = &rendition.bytes;
            assert!(!bytes.windows(4).any(|w| w == b"Exif"), "EXIF survived");
            assert!(
                !bytes.windows(2).any(|w| w == [0xFF, 0xE1]),
                "an APP1 segment survived"
            );
            let mut decoder = ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .unwrap()
                .into_decoder()
                .unwrap();
            assert_eq!(decoder.exif_metadata().unwrap(), None);
        }
    }
}
