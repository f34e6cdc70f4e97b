//! The GraphiQL IDE, served from the binary: pinned production builds of GraphiQL and React
//! (api/assets/graphiql/, refreshed by scripts/vendor-graphiql) and a page that loads nothing
//! from elsewhere, under a Content-Security-Policy that would refuse it if it tried. Mounted only
//! when `graphql_ide` is on (by default in `fishapp dev`, not in `fishapp serve`).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the assets are served; the page names them under it.
pub(crate) const ASSETS_PATH: &str = "/graphiql";

/// Same-origin scripts, styles, fonts and connections only. Inline styles are allowed because
/// React sets style attributes; inline scripts are not (the page has none).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../assets/graphiql/index.html");

/// (file name, content type, bytes) of every asset the page loads.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "fishapp.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/fishapp.js"),
    ),
    (
        "fishapp.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/fishapp.css"),
    ),
];

/// The IDE's page.
pub(crate) fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        PAGE,
    )
        .into_response()
}

/// One asset by file name; 404 for anything else.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Not content-addressed: a day, then the browser asks again.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        *bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_served_assets() {
        let referenced: Vec<&str> = PAGE
            .split(['"', '\''])
            .filter(|part| part.starts_with(ASSETS_PATH))
            .collect();
        assert_eq!(referenced.len(), ASSETS.len(), "{referenced:?}");
        for path in referenced {
            let name = path
                .strip_prefix(ASSETS_PATH)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(path);
            assert!(
                ASSETS.iter().any(|(file, _, _)| *file == name),
                "{name} is referenced but not served"
            );
        }
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
    }
}
