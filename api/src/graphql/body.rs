//! Reading a GraphQL request from a POST body: JSON, or a multipart upload (the GraphQL multipart
//! request spec) read under limits that hold *while the body streams in*.
//!
//! Every JSON a client sends (a JSON body, the multipart `operations` part, a GET request's
//! `variables`, a WebSocket message) is held to [`JsonLimits`] before it is parsed: parsed into
//! GraphQL values, a JSON document takes far more memory than its text (a 60 MiB list of zeros
//! took 3.5 GB), so both its size and the number of values in it are bounded.
//!
//! Multipart:
//!
//! - the parts come in the spec's order — `operations`, then `map`, then the files — so the map
//!   is known before any file arrives;
//! - `map` may name at most `max_files` files, and only a file the map names is accepted (once);
//!   anything else ends the request before it is written anywhere;
//! - each file is spooled to an anonymous temporary file, and refused as soon as it passes
//!   `max_file_bytes`.
//!
//! async-graphql's own reader spools every part with a file name before it looks at the map and
//! counts no files, so a body of thousands of tiny parts held thousands of descriptors. Errors
//! are ours (`BAD_USER_INPUT`, the field at fault where there is one), never the parser's text.

use crate::error::AppError;
use async_graphql::UploadValue;
use axum::body::Body;
use futures::{StreamExt, TryStreamExt};
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

/// What a request's JSON may be: a document is at most `graphql_max_query_bytes` (32 KiB by
/// default) and an honest request's variables are a few dozen values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Largest JSON text, in bytes.
    pub max_bytes: usize,
    /// Most JSON values (scalars, lists and objects) in it, counted before it is parsed.
    pub max_values: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_values: 10_000,
        }
    }
}

impl JsonLimits {
    /// Refuses `json` when it is over either limit; `field` names where it came from. Linear,
    /// and stops counting past the limit.
    pub fn check(&self, field: &str, json: &[u8]) -> Result<(), AppError> {
        if json.len() > self.max_bytes {
            return Err(AppError::over_limit(
                field,
                "maxJsonBytes",
                format!(
                    "{field} is {} bytes of JSON; at most {} are accepted",
                    json.len(),
                    self.max_bytes
                ),
            ));
        }
        if count_json_values(json, self.max_values) > self.max_values {
            return Err(AppError::over_limit(
                field,
                "maxJsonValues",
                format!(
                    "{field} holds more than {} JSON values; send fewer",
                    self.max_values
                ),
            ));
        }
        Ok(())
    }
}

/// An upper bound of the number of values in a JSON text: one, plus one per `[`, `{` and `,`
/// outside strings (each element or member after the first follows a comma; each list or
/// object is a value of its own). Stops once past `max`. Malformed text is counted the same
/// way; the parser refuses it afterwards.
fn count_json_values(json: &[u8], max: usize) -> usize {
    let mut count = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => {
                count += 1;
                if count > max {
                    return count;
                }
            }
            _ => {}
        }
    }
    count
}

/// How a POST body is read: the upload limits for multipart bodies, the JSON limits for JSON.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub upload: UploadLimits,
    pub json: JsonLimits,
    /// The HTTP body limit (enforced by a layer around every route; named here for its error).
    pub body_bytes: usize,
}

/// Why a body is not a GraphQL request we take.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body passed a size limit (the JSON limit for a JSON body, the HTTP body limit for an
    /// upload): HTTP 413 with this error.
    #[error("{0}")]
    TooLarge(AppError),
    #[error(transparent)]
    Refused(#[from] AppError),
}

fn bad(message: impl Into<String>) -> BodyError {
    BodyError::Refused(AppError::bad_input("body", message))
}

/// A GET request's GraphQL request, from its query string (`query`, `operationName`,
/// `variables` and `extensions` as URL-encoded JSON), as the GraphQL-over-HTTP spec names them.
/// (async-graphql's own reader expects `operation_name`, so a client's `operationName` was
/// silently ignored.) Errors name the parameter at fault.
pub fn from_query_string(
    query_string: &str,
    limits: &JsonLimits,
) -> Result<async_graphql::Request, AppError> {
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (key, value) in form_urlencoded::parse(query_string.as_bytes()) {
        let slot = match key.as_ref() {
            "query" => &mut query,
            "operationName" | "operation_name" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(AppError::bad_input(key.as_ref(), "is given more than once"));
        }
    }
    let query = query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| AppError::bad_input("query", "a GET request needs `query=<document>`"))?;
    let json = |field: &str, text: Option<String>| -> Result<Option<serde_json::Value>, AppError> {
        text.filter(|t| !t.is_empty())
            .map(|t| {
                limits.check(field, t.as_bytes())?;
                serde_json::from_str::<serde_json::Value>(&t)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .ok_or_else(|| AppError::bad_input(field, "must be a JSON object"))
            })
            .transpose()
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(variables) = json("variables", variables)? {
        request = request.variables(async_graphql::Variables::from_json(variables));
    }
    if let Some(serde_json::Value::Object(map)) = json("extensions", extensions)? {
        for (key, value) in map {
            let value = async_graphql::Value::from_json(value)
                .map_err(|_| AppError::bad_input("extensions", "must be a JSON object"))?;
            request.extensions.insert(key, value);
        }
    }
    if let Some(name) = operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    Ok(request)
}

/// Reads the request from a POST body with the given content type.
pub async fn read(
    content_type: Option<&str>,
    body: Body,
    limits: BodyLimits,
) -> Result<async_graphql::Request, BodyError> {
    let boundary = content_type.and_then(|ct| multer::parse_boundary(ct).ok());
    match boundary {
        Some(boundary) => read_multipart(body, boundary, limits).await,
        None => read_json(content_type, body, &limits).await,
    }
}

fn is_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

async fn read_json(
    content_type: Option<&str>,
    body: Body,
    body_limits: &BodyLimits,
) -> Result<async_graphql::Request, BodyError> {
    let limits = &body_limits.json;
    if let Some(ct) = content_type {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let refused = bad(format!(
                "unsupported content type {essence:?}: send application/json, or \
                 multipart/form-data for uploads"
            ));
            return Err(drained(body, refused).await);
        }
    }
    // Kept up to the JSON limit; past it the rest is read and dropped (see `drained`).
    let mut bytes = Vec::new();
    let mut over = false;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| read_error(&e, body_limits.body_bytes))?;
        if over || bytes.len() + chunk.len() > limits.max_bytes {
            over = true;
            bytes = Vec::new();
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if over {
        return Err(too_large("maxJsonBytes", limits.max_bytes));
    }
    parse_operations(&bytes, limits, "body")
}

/// A body over the limit named `limit` (`maxJsonBytes`, `maxBodyBytes`) of `bytes`.
fn too_large(limit: &'static str, bytes: usize) -> BodyError {
    BodyError::TooLarge(AppError::over_limit(
        "body",
        limit,
        format!("the request body is over {bytes} bytes"),
    ))
}

fn read_error(error: &axum::Error, body_bytes: usize) -> BodyError {
    if is_too_large(error) {
        too_large("maxBodyBytes", body_bytes)
    } else {
        bad("the request body could not be read")
    }
}

/// `refused`, once the rest of the body has been read and dropped. A request refused before its
/// body is read would otherwise be answered while the client is still sending, and the
/// connection closed on unread data: the client's TCP stack then sees a reset and often loses
/// the answer. Draining costs bandwidth, never memory (nothing is kept), and stops at the HTTP
/// body limit.
async fn drained(body: Body, refused: BodyError) -> BodyError {
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        if chunk.is_err() {
            break;
        }
    }
    refused
}

/// One GraphQL request (batches are not served) from JSON bytes, held to `limits` and then
/// read straight into the request (no intermediate JSON tree: this runs for every POST).
fn parse_operations(
    bytes: &[u8],
    limits: &JsonLimits,
    field: &str,
) -> Result<async_graphql::Request, BodyError> {
    if bytes.len() > limits.max_bytes {
        return Err(too_large("maxJsonBytes", limits.max_bytes));
    }
    limits.check(field, bytes)?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(bad("batched requests are not served: send one operation"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // A wrong type can show before a syntax error further on; the syntax error is the one
        // to report. (Only a refused body pays for the second read.)
        let syntax = match e.classify() {
            serde_json::error::Category::Data => {
                serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err()
            }
            _ => Some(e),
        };
        match syntax {
            Some(e) => bad(format!(
                "not a JSON GraphQL request (line {}, column {})",
                e.line(),
                e.column()
            )),
            None => bad(
                "not a GraphQL request: expected {\"query\": …, \"variables\": …, \"operationName\": …}",
            ),
        }
    })
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

async fn read_multipart(
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
    use super::*;

    const LIMITS: BodyLimits = BodyLimits {
        upload: UploadLimits {
            max_file_bytes: 100,
            max_files: 2,
        },
        json: JsonLimits {
            max_bytes: 1024,
            max_values: 50,
        },
        body_bytes: 1 << 20,
    };

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

    #[tokio::test]
    async fn json_bodies_are_checked_with_our_words() {
        for (ct, body, says) in [
            (Some("text/plain"), "{}", "unsupported content type"),
            (
                Some("application/json"),
                "{\"query\": 1",
                "not a JSON GraphQL request",
            ),
            (
                Some("application/json"),
                "[{\"query\": \"{ a }\"}]",
                "batched",
            ),
            (
                Some("application/json"),
                "{\"variables\": 1}",
                "not a GraphQL request",
            ),
            (
                Some("application/json"),
                "{\"query\": 1}",
                "not a GraphQL request",
            ),
            (Some("application/json"), " \n [1]", "batched"),
            (
                Some("application/json"),
                "{\"query\": \"{ a }\"} trailing",
                "not a JSON GraphQL request",
            ),
        ] {
            match read(ct, Body::from(body), LIMITS).await {
                Err(BodyError::Refused(e)) => {
                    assert!(e.to_string().contains(says), "{body}: {e}")
                }
                other => panic!("{body}: {:?}", other.map(|_| ())),
            }
        }
        let ok = read(
            Some("application/json"),
            Body::from("{\"query\": \"{ a }\"}"),
            LIMITS,
        )
        .await
        .expect("read");
        assert_eq!(ok.query, "{ a }");
    }
}
