//! The whole HTTP surface: the API routes of the route table, the UI, and the layers every
//! request passes (browser guard, token, uniform errors, body limit).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

use crate::error::{self, ApiError, Code};
use crate::guard;
use crate::routes::ROUTES;
use crate::state::Server;
use crate::ui;

/// The largest request body: an uploaded or inline pipeline (as large as `kfbox run` reads),
/// and room for the request around it.
const MAX_BODY: usize = kfbox_spec::limits::MAX_PIPELINE_BYTES as usize + (1 << 20);

/// The path axum matches for a route of the table: custom methods (`{id}:verb`) share their
/// resource's path, and their handler reads the verb.
fn matched_path(path: &str) -> &str {
    match path.rfind('}') {
        Some(end) if path[end..].contains(':') => &path[..=end],
        _ => path,
    }
}

/// The methods one path answers, as the table's entries for it add up.
struct PathRoutes<'a> {
    path: &'a str,
    methods: Vec<&'a str>,
    router: MethodRouter<Arc<Server>>,
}

/// The API as the route table declares it: one method router per path.
fn api_routes() -> Router<Arc<Server>> {
    let mut paths: Vec<PathRoutes<'_>> = Vec::new();
    for route in ROUTES {
        let path = matched_path(route.path);
        match paths.iter_mut().find(|p| p.path == path) {
            // Custom methods of one resource share one POST handler.
            Some(entry) if entry.methods.contains(&route.method) => {}
            Some(entry) => {
                entry.router = std::mem::take(&mut entry.router).merge((route.handler)());
                entry.methods.push(route.method);
            }
            None => paths.push(PathRoutes {
                path,
                methods: vec![route.method],
                router: (route.handler)(),
            }),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |api, p| api.route(p.path, p.router))
}

/// Every route kfbox answers, over `server`.
pub fn router(server: Arc<Server>) -> Router {
    let api = api_routes()
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            require_token,
        ));
    ui::routes()
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            browser_guard,
        ))
        .layer(axum::middleware::from_fn(error::uniform_errors))
        // Compiled pipelines with many components run to megabytes.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

async fn unknown_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no API route answers {method} {}; see /apis/v2beta1/openapi.json",
        uri.path()
    ))
}

/// With a token configured, every request must carry it as a bearer token.
async fn require_token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &server.options.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.trim().as_bytes(), token.as_bytes()) {
            return ApiError::new(
                Code::Unauthenticated,
                "this kfbox server needs a token: send `Authorization: Bearer TOKEN` (kfp.Client(existing_token=TOKEN)); `kfbox up` printed it",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Compare without stopping at the first difference, so timing tells nothing of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a web browser may ask (see `guard.rs`).
pub(crate) async fn browser_guard(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Response {
    let policy = &server.options.browser;
    match guard::check(
        policy,
        server.options.listen,
        request.method(),
        request.headers(),
        request.uri().path(),
    ) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}
