//! A GraphQL multipart request (the GraphQL multipart request spec), read under limits that hold
//! while the body streams in:
//!
//! - the parts come in the spec's order — `operations`, then `map`, then the files — so the map
//!   is known before any file arrives;
//! - `map` may name at most `max_files` files, and only a file the map names is accepted (once);
//!   anything else ends the request before it is written anywhere;
//! - each file is spooled to an anonymous temporary file, and refused as soon as it passes
//!   `max_file_bytes`.
//!
//! async-graphql's own reader spools every part with a file name before it looks at the map and
//! counts no files, so a body of thousands of tiny parts held thousands of descriptors.

use super::{BodyError, BodyLimits, JsonLimits, bad, is_too_large, parse_operations, too_large};
use crate::error::AppError;
use async_graphql::UploadValue;
use axum::body::Body;
use futures::TryStreamExt;
use std::collections::HashMap;
use std::io::{Seek, Write};

/// Upload limits (from the media configuration).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Most files in one request (and most variable paths in its `map`: a file is one upload
    /// variable, and each path names one).
    pub max_files: usize,
}

/// The field a file's variable path names, as the media checks name it:
/// `variables.input.images.2` → `images.2`, `variables.input.image` → `image`.
fn file_field(path: &str) -> &str {
    path.strip_prefix("variables.input.")
        .or_else(|| path.strip_prefix("variables."))
        .unwrap_or(path)
}

/// The list a file belongs to, as the count checks name it: `variables.input.images.2` →
/// `input.images`.
fn list_field(path: &str) -> &str {
    path.strip_prefix("variables.")
        .unwrap_or(path)
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('.')
}

pub(super) async fn read_multipart(
    body: Body,
    boundary: String,
    body_limits: BodyLimits,
) -> Result<async_graphql::Request, BodyError> {
    let (limits, json_limits) = (body_limits.upload, body_limits.json);
    let body_bytes = body_limits.body_bytes;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new().per_field(limits.max_file_bytes.max(json_limits.max_bytes as u64)),
    );
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let multipart_error = |e: multer::Error| match e {
        multer::Error::StreamReadFailed(source) if is_too_large(source.as_ref()) => {
            too_large("maxBodyBytes", body_bytes)
        }
        _ => bad("malformed multipart body"),
    };

    let mut operations = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files: Vec<(Vec<String>, UploadValue)> = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match (name.as_str(), &operations, &map) {
            ("operations", None, None) => {
                let bytes = small_part(field, "operations", &json_limits).await?;
                operations = Some(parse_operations(&bytes, &json_limits, "operations")?);
            }
            ("map", Some(_), None) => {
                let bytes = small_part(field, "map", &json_limits).await?;
                json_limits.check("map", &bytes)?;
                let parsed: HashMap<String, Vec<String>> = serde_json::from_slice(&bytes)
                    .map_err(|_| bad("the `map` part is not a JSON object of path lists"))?;
                if parsed.len() > limits.max_files {
                    let field = parsed
                        .values()
                        .flatten()
                        .next()
                        .map_or("map", |p| list_field(p))
                        .to_owned();
                    return Err(BodyError::Refused(AppError::bad_input(
                        field,
                        format!(
                            "{} files sent; at most {} per request",
                            parsed.len(),
                            limits.max_files
                        ),
                    )));
                }
                if parsed.values().any(Vec::is_empty) {
                    return Err(bad("the `map` part names a file with no variable path"));
                }
                // Each path is an upload variable set to its own handle on the file: thousands
                // of paths for one file held thousands of descriptors.
                let paths: usize = parsed.values().map(Vec::len).sum();
                if paths > limits.max_files {
                    return Err(BodyError::Refused(AppError::over_limit(
                        "map",
                        "maxUploadPaths",
                        format!(
                            "the `map` part names {paths} variable paths; at most {} per request",
                            limits.max_files
                        ),
                    )));
                }
                map = Some(parsed);
            }
            (_, Some(_), Some(expected)) => {
                let Some(paths) = expected.get(&name).cloned() else {
                    return Err(bad(format!(
                        "multipart part {name:?} is not named in `map` (or came twice)"
                    )));
                };
                let filename = field.file_name().unwrap_or(&name).to_owned();
                let content_type = field.content_type().map(ToString::to_string);
                let at = file_field(&paths[0]).to_owned();
                let mut file =
                    tempfile::tempfile().map_err(|e| BodyError::Refused(AppError::internal(e)))?;
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(|e| match e {
                    multer::Error::FieldSizeExceeded { .. } => {
                        BodyError::Refused(too_big(&at, &filename, limits.max_file_bytes))
                    }
                    other => multipart_error(other),
                })? {
                    size += chunk.len() as u64;
                    if size > limits.max_file_bytes {
                        return Err(BodyError::Refused(too_big(
                            &at,
                            &filename,
                            limits.max_file_bytes,
                        )));
                    }
                    file.write_all(&chunk)
                        .map_err(|e| BodyError::Refused(AppError::internal(e)))?;
                }
                file.rewind()
                    .map_err(|e| BodyError::Refused(AppError::internal(e)))?;
                if let Some(map) = map.as_mut() {
                    map.remove(&name);
                }
                files.push((
                    paths,
                    UploadValue {
                        filename,
                        content_type,
                        content: file,
                    },
                ));
            }
            _ => {
                return Err(bad(
                    "multipart parts must come as `operations`, then `map`, then the files",
                ));
            }
        }
    }
    let mut request =
        operations.ok_or_else(|| bad("the multipart body has no `operations` part"))?;
    let map = map.ok_or_else(|| bad("the multipart body has no `map` part"))?;
    if let Some(missing) = map.keys().next() {
        return Err(bad(format!(
            "file {missing:?} is named in `map` but was not sent"
        )));
    }
    for (paths, upload) in files {
        for path in &paths[1..] {
            let copy = upload
                .try_clone()
                .map_err(|e| BodyError::Refused(AppError::internal(e)))?;
            request.set_upload(path, copy);
        }
        request.set_upload(&paths[0], upload);
    }
    Ok(request)
}

fn too_big(field: &str, filename: &str, max: u64) -> AppError {
    AppError::bad_input(
        field,
        format!("{filename:?} is larger than {max} bytes; at most {max} bytes are accepted"),
    )
}

/// A JSON part (`operations`, `map`), read no further than the JSON limit.
async fn small_part(
    mut field: multer::Field<'static>,
    what: &str,
    limits: &JsonLimits,
) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|_| bad(format!("the `{what}` part could not be read")))?
    {
        if bytes.len() + chunk.len() > limits.max_bytes {
            return Err(BodyError::Refused(AppError::over_limit(
                what,
                "maxJsonBytes",
                format!("the `{what}` part is over {} bytes", limits.max_bytes),
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::{read, tests::LIMITS};
    use super::*;

    fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Body) {
        let boundary = "XbOuNdArYx";
        let mut body = Vec::new();
        for (name, filename, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                         Content-Type: image/png\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (
            format!("multipart/form-data; boundary={boundary}"),
            Body::from(body),
        )
    }

    const OPS: &[u8] =
        br#"{"query":"mutation($a: Upload, $b: Upload) { x }","variables":{"a":null,"b":null}}"#;

    async fn refused(parts: &[(&str, Option<&str>, &[u8])]) -> String {
        let (ct, body) = multipart(parts);
        match read(Some(&ct), body, LIMITS).await {
            Ok(_) => panic!("accepted"),
            Err(BodyError::Refused(e)) => e.to_string(),
            Err(BodyError::TooLarge(_)) => "too large".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_well_formed_upload_is_read() {
        let (ct, body) = multipart(&[
            ("operations", None, OPS),
            (
                "map",
                None,
                br#"{"0": ["variables.a"], "1": ["variables.b"]}"#,
            ),
            ("0", Some("a.png"), b"first"),
            ("1", Some("b.png"), b"second"),
        ]);
        let request = read(Some(&ct), body, LIMITS).await.expect("read");
        assert_eq!(request.uploads.len(), 2);
    }

    #[tokio::test]
    async fn abuse_is_refused_before_it_is_written() {
        let map = br#"{"0": ["variables.a"]}"#;
        for (case, parts, says) in [
            (
                "too many files",
                vec![
                    ("operations", None, OPS),
                    (
                        "map",
                        None,
                        &br#"{"0":["variables.a"],"1":["variables.b"],"2":["variables.c"]}"#[..],
                    ),
                ],
                "at most 2",
            ),
            (
                "a part not in the map",
                vec![
                    ("operations", None, OPS),
                    ("map", None, &map[..]),
                    ("9", Some("x.png"), &b"x"[..]),
                ],
                "not named in `map`",
            ),
            (
                "a file before the map",
                vec![("operations", None, OPS), ("0", Some("x.png"), &b"x"[..])],
                "must come as",
            ),
            (
                "a file twice",
                vec![
                    ("operations", None, OPS),
                    ("map", None, &map[..]),
                    ("0", Some("x.png"), &b"x"[..]),
                    ("0", Some("x.png"), &b"x"[..]),
                ],
                "not named in `map`",
            ),
            (
                "a missing file",
                vec![("operations", None, OPS), ("map", None, &map[..])],
                "was not sent",
            ),
            (
                "an oversized file",
                vec![
                    ("operations", None, OPS),
                    ("map", None, &map[..]),
                    ("0", Some("big.png"), &[7u8; 101][..]),
                ],
                "larger than 100 bytes",
            ),
            (
                "operations that are not JSON",
                vec![("operations", None, &b"{nope"[..])],
                "not a JSON GraphQL request",
            ),
            (
                "a map that is not a map",
                vec![("operations", None, OPS), ("map", None, &b"[1]"[..])],
                "not a JSON object",
            ),
        ] {
            let message = refused(&parts).await;
            assert!(message.contains(says), "{case}: {message}");
        }
    }
}
