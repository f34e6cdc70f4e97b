//! The image pipeline: what an uploaded file becomes before anyone else sees it.
//!
//! 1. The type comes from the bytes (magic numbers), never from the file name or a header: JPEG,
//!    PNG, GIF and WebP are accepted, anything else is refused.
//! 2. The header's dimensions are checked before any pixel is decoded, and the decoder runs under
//!    allocation limits: a decompression bomb (enormous dimensions in a small file) is refused
//!    without allocating its pixels.
//! 3. The EXIF orientation is applied to the pixels; then nothing but pixels survives: the output
//!    is encoded from scratch, so EXIF (GPS coordinates included — anglers guard their spots),
//!    XMP, ICC and comments are gone.
//! 4. The image is fitted inside 600×800 without upscaling (Lanczos3), a 200 px thumbnail is
//!    made, and both are encoded as JPEG at quality 75, or PNG when the image has transparency.
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
    /// Bytes the decoder may allocate.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// Generous for phone photos (a 108 MP sensor is 12000 × 9000), far below a bomb.
    fn default() -> Self {
        Self {
            max_width: 12_000,
            max_height: 12_000,
            max_pixels: 120_000_000,
            max_alloc: 1024 * 1024 * 1024,
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
        "the image is {width}×{height} pixels; at most {max_width}×{max_height} and {max_pixels} pixels are accepted"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
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
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);

    // Reading the header alone: no pixel is decoded before the dimensions pass.
    let mut decoder = reader.into_decoder().map_err(|e| refuse(e, limits))?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(too_large(width, height, limits));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| refuse(e, limits))?;
    image.apply_orientation(orientation);

    let transparent = has_transparency(&image);
    let display = fit_within(&image, DISPLAY_MAX.0, DISPLAY_MAX.1);
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
    }
}

fn refuse(error: image::ImageError, limits: DecodeLimits) -> ProcessError {
    match error {
        image::ImageError::Limits(_) => too_large(0, 0, limits),
        image::ImageError::Unsupported(_) => ProcessError::UnsupportedType,
        other => ProcessError::Corrupt(other.to_string()),
    }
}

/// Scales down to fit inside `max_w`×`max_h`, keeping the aspect ratio; never scales up.
fn fit_within(image: &DynamicImage, max_w: u32, max_h: u32) -> DynamicImage {
    if image.width() <= max_w && image.height() <= max_h {
        image.clone()
    } else {
        image.resize(max_w, max_h, FilterType::Lanczos3)
    }
}

/// Whether any pixel is not fully opaque (an alpha channel that is all 255 does not count).
fn has_transparency(image: &DynamicImage) -> bool {
    image.color().has_alpha() && image.to_rgba8().pixels().any(|p| p.0[3] < u8::MAX)
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
