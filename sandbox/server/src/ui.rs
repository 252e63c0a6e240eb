//! The web UI: a single page built from `embedded/ui` (see its README) and compiled into the
//! binary, so serving it needs no files and no network. It needs no token to load: it holds
//! no data, and asks for the token when the API does.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::Server;

struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    bytes: include_bytes!("../../../embedded/ui/dist/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    bytes: include_bytes!("../../../embedded/ui/dist/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    bytes: include_bytes!("../../../embedded/ui/dist/app.css"),
    content_type: "text/css; charset=utf-8",
};

/// What the page may do: load only its own script and styles, talk only to this server, show
/// artifact HTML only in frames without scripts (the frames say so too).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; frame-src 'self' blob:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { serve(&INDEX, &h) }))
        .route(
            "/index.html",
            get(|h: HeaderMap| async move { serve(&INDEX, &h) }),
        )
        .route(
            "/assets/app.js",
            get(|h: HeaderMap| async move { serve(&SCRIPT, &h) }),
        )
        .route(
            "/assets/app.css",
            get(|h: HeaderMap| async move { serve(&STYLE, &h) }),
        )
}

/// A strong validator per build: the browser revalidates each load and gets 304s.
fn etag(asset: &Asset) -> String {
    // FNV-1a: stable across builds and processes, unlike the std hasher.
    let hash = asset.bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let tag = etag(asset);
    let headers = [
        (header::ETAG, HeaderValue::from_str(&tag).expect("hex")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.bytes,
    )
        .into_response()
}
