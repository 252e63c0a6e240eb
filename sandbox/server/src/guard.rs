//! What a web browser may ask of this server. kfbox runs code by design, and its default server
//! answers on loopback without a token, so any page the user opens is a potential client: a
//! page must not start runs (a cross-site request) nor read the API through a name of its own
//! (DNS rebinding). As Jupyter and other local servers do:
//!
//! - `Host` must name this machine's loopback (`localhost`, `127.0.0.1`, `[::1]`), the address
//!   kfbox listens on, or a name in `server.allowed_hosts`. Beyond loopback every request needs
//!   the token, which no foreign page has, so any name is accepted there unless
//!   `allowed_hosts` is set.
//! - A state-changing request (anything but GET and HEAD) from a browser must come from kfbox's
//!   own page (its `Origin` is the server itself) or from an origin in
//!   `server.allowed_origins`; requests without an `Origin` are from programs (`kfp.Client`,
//!   curl), unless the browser's `Sec-Fetch-Site` says it is cross-site.
//! - Bodies are JSON (`application/json`), or multipart on the upload routes: the content types
//!   a page can send without asking the server first (`text/plain`, forms) are refused (415).

use axum::http::{header, HeaderMap, Method, StatusCode};
use std::net::{IpAddr, SocketAddr};

use crate::error::{ApiError, Code};

/// Which requests a browser may make: the listen address and what `kfbox.toml` adds.
#[derive(Debug, Clone, Default)]
pub struct BrowserPolicy {
    /// Host names (without port) requests may use besides loopback and the listen address;
    /// `*` allows any.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may change state, besides kfbox's own.
    pub allowed_origins: Vec<String>,
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(Code::PermissionDenied, message)
}

pub(crate) fn check(
    policy: &BrowserPolicy,
    listen: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
) -> Result<(), ApiError> {
    let text =
        |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = text(header::HOST);
    if let Some(host) = host {
        if !host_allowed(policy, listen, host) {
            return Err(forbidden(format!(
                "this kfbox answers to localhost, 127.0.0.1 and [::1], not to `{}` (a web page reaching it under another name); if you put kfbox behind that name on purpose, add it to `server.allowed_hosts` in kfbox.toml",
                host.escape_default()
            )));
        }
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    match text(header::ORIGIN) {
        Some(origin) => {
            if !origin_allowed(policy, origin, host) {
                return Err(forbidden(format!(
                    "a page from `{}` may not change anything on this kfbox; only kfbox's own page can (add the origin to `server.allowed_origins` in kfbox.toml to allow it)",
                    origin.escape_default()
                )));
            }
        }
        None => {
            let site = text(header::HeaderName::from_static("sec-fetch-site"));
            if matches!(site, Some("cross-site" | "same-site")) {
                return Err(forbidden(
                    "a request from another site may not change anything on this kfbox".into(),
                ));
            }
        }
    }
    let essence = text(header::CONTENT_TYPE).map(|t| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let upload = path.ends_with("/upload") || path.ends_with("/upload_version");
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some("multipart/form-data") if upload => Ok(()),
        None if !has_body(headers) => Ok(()),
        other => Err(ApiError::new(
            Code::InvalidArgument,
            format!(
                "request bodies are `application/json`{}, not `{}`",
                if upload {
                    " or `multipart/form-data`"
                } else {
                    ""
                },
                other.unwrap_or("(none)").escape_default()
            ),
        )
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The name in a `Host` value, without its port (`[::1]:8888` -> `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn host_allowed(policy: &BrowserPolicy, listen: SocketAddr, host: &str) -> bool {
    let name = host_name(host);
    let configured = policy
        .allowed_hosts
        .iter()
        .any(|h| h == "*" || h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(host));
    if configured {
        return true;
    }
    if !listen.ip().is_loopback() && policy.allowed_hosts.is_empty() {
        return true;
    }
    let ip = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    name.eq_ignore_ascii_case("localhost")
        || ip.is_some_and(|ip| ip.is_loopback() || ip == listen.ip())
}

fn origin_allowed(policy: &BrowserPolicy, origin: &str, host: Option<&str>) -> bool {
    if policy
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // The server's own page: the origin is the scheme and the host the request was sent to
    // (https when kfbox is behind a TLS proxy).
    host.is_some_and(|host| {
        ["http://", "https://"]
            .iter()
            .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:8888".parse().unwrap()
    }

    fn status(
        policy: &BrowserPolicy,
        method: Method,
        pairs: &[(&'static str, &str)],
    ) -> Option<u16> {
        check(
            policy,
            loopback(),
            &method,
            &headers(pairs),
            "/apis/v2beta1/runs",
        )
        .err()
        .map(|e| e.status().as_u16())
    }

    #[test]
    fn foreign_hosts_and_cross_site_writes_are_refused() {
        let policy = BrowserPolicy::default();
        let own = [
            ("host", "127.0.0.1:8888"),
            ("origin", "http://127.0.0.1:8888"),
            ("content-type", "application/json"),
        ];
        assert_eq!(status(&policy, Method::POST, &own), None);
        for host in ["localhost:8888", "[::1]:8888", "127.0.0.1", "LOCALHOST:1"] {
            assert_eq!(
                status(&policy, Method::GET, &[("host", host)]),
                None,
                "{host}"
            );
        }
        assert_eq!(
            status(&policy, Method::GET, &[("host", "evil.example:8888")]),
            Some(403)
        );
        assert_eq!(
            status(&policy, Method::GET, &[("host", "127.0.0.1.evil.example")]),
            Some(403)
        );
        let refused: [&[(&'static str, &str)]; 5] = [
            &[
                ("host", "127.0.0.1:8888"),
                ("origin", "http://evil.example"),
                ("content-type", "application/json"),
            ],
            &[
                ("host", "127.0.0.1:8888"),
                ("origin", "null"),
                ("content-type", "application/json"),
            ],
            &[
                ("host", "127.0.0.1:8888"),
                ("origin", "http://localhost:8888"),
                ("content-type", "application/json"),
            ],
            &[("host", "127.0.0.1:8888"), ("sec-fetch-site", "cross-site")],
            &[
                ("host", "127.0.0.1:8888"),
                ("origin", "http://127.0.0.1:9999"),
            ],
        ];
        for request in refused {
            assert_eq!(
                status(&policy, Method::POST, request),
                Some(403),
                "{request:?}"
            );
        }
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let request = [("host", "127.0.0.1:8888"), ("content-type", content_type)];
            assert_eq!(
                status(&policy, Method::POST, &request),
                Some(415),
                "{content_type}"
            );
        }
        // A program's POST without a body (terminate, archive) needs no content type.
        assert_eq!(
            status(&policy, Method::POST, &[("host", "127.0.0.1:8888")]),
            None
        );
        assert_eq!(
            status(
                &policy,
                Method::POST,
                &[("host", "127.0.0.1:8888"), ("content-length", "5")]
            ),
            Some(415)
        );
        assert_eq!(
            status(
                &policy,
                Method::DELETE,
                &[
                    ("host", "localhost:8888"),
                    ("origin", "http://localhost:8888")
                ]
            ),
            None
        );
    }

    #[test]
    fn configured_hosts_and_origins_are_allowed() {
        let policy = BrowserPolicy {
            allowed_hosts: vec!["kfbox.lan".into()],
            allowed_origins: vec!["https://notebooks.lan/".into()],
        };
        let request = [
            ("host", "kfbox.lan:8888"),
            ("origin", "https://notebooks.lan"),
            ("content-type", "application/json"),
        ];
        assert_eq!(status(&policy, Method::POST, &request), None);
        let wide: SocketAddr = "0.0.0.0:8888".parse().unwrap();
        let any = BrowserPolicy::default();
        assert!(check(
            &any,
            wide,
            &Method::GET,
            &headers(&[("host", "laptop.local:8888")]),
            "/"
        )
        .is_ok());
        assert!(check(
            &policy,
            wide,
            &Method::GET,
            &headers(&[("host", "laptop.local:8888")]),
            "/"
        )
        .is_err());
        let upload = headers(&[
            ("host", "127.0.0.1:8888"),
            ("content-type", "multipart/form-data; boundary=x"),
        ]);
        assert!(check(
            &any,
            loopback(),
            &Method::POST,
            &upload,
            "/apis/v2beta1/pipelines/upload"
        )
        .is_ok());
    }
}
