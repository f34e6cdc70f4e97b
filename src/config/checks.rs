//! Checks the groups share: URL schemes, origins, positive numbers, names.

use super::keys::Invalid;
use url::Url;

pub(super) fn check_url(key: &'static str, value: &str, schemes: &[&str]) -> Result<Url, Invalid> {
    let url = Url::parse(value).map_err(|e| (key, format!("not a URL ({e})")))?;
    check_scheme(key, &url, schemes)?;
    Ok(url)
}

pub(super) fn check_scheme(key: &'static str, url: &Url, schemes: &[&str]) -> Result<(), Invalid> {
    if schemes.contains(&url.scheme()) {
        Ok(())
    } else {
        Err((
            key,
            format!(
                "scheme {:?} is not one of {}",
                url.scheme(),
                schemes.join(", ")
            ),
        ))
    }
}

pub(super) fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let url = Url::parse(origin).map_err(|e| format!("{origin:?} is not an origin ({e})"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && !origin.ends_with('/')
        && url.query().is_none();
    if bare {
        Ok(())
    } else {
        Err(format!(
            "{origin:?} is not an origin (scheme://host[:port], no path)"
        ))
    }
}

/// Every one of `values` is at least 1.
pub(super) fn at_least_one(values: &[(&'static str, u64)]) -> Result<(), Invalid> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err((key, "must be at least 1".to_owned())),
        None => Ok(()),
    }
}

/// Every one of `values` has more than white space.
pub(super) fn not_blank(values: &[(&'static str, &str)]) -> Result<(), Invalid> {
    match values.iter().find(|(_, value)| value.trim().is_empty()) {
        Some((key, _)) => Err((key, "must not be empty".to_owned())),
        None => Ok(()),
    }
}
