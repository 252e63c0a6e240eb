//! What a web page may ask of the local server: nothing that changes state.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::served::{get, request, Served};
use crate::common::wait_for;

use super::*;

/// A run that would leave `marker` behind if it ran.
fn marker_run(marker: &Path) -> Value {
    let spec = shell_pipeline(
        "uninvited",
        "step",
        json!({}),
        &["sh", "-c", &format!("touch {}", marker.display())],
    );
    json!({"display_name": "uninvited", "pipeline_spec": spec})
}

#[test]
fn cross_site_requests_cannot_start_runs() {
    let served = Served::start("127.0.0.1", &[]);
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("ran");
    let run = marker_run(&marker).to_string();
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let evil = "Origin: http://evil.example";
    let refused = [
        // A "simple" request: a page's form or fetch without a CORS preflight.
        (
            "text/plain from a foreign page",
            vec![evil, "Content-Type: text/plain"],
        ),
        (
            "JSON from a foreign page",
            vec![evil, "Content-Type: application/json"],
        ),
        (
            "text/plain without an origin",
            vec!["Content-Type: text/plain"],
        ),
        (
            "a form post",
            vec!["Content-Type: application/x-www-form-urlencoded"],
        ),
        (
            "an opaque origin",
            vec!["Origin: null", "Content-Type: application/json"],
        ),
        (
            "a cross-site fetch without an origin",
            vec![
                "Sec-Fetch-Site: cross-site",
                "Content-Type: application/json",
            ],
        ),
    ];
    for (what, headers) in refused {
        let (code, body) = request(
            &served.url,
            "POST",
            "/apis/v2beta1/runs",
            &headers,
            run.as_bytes(),
        )
        .unwrap();
        assert!(code == 403 || code == 415, "{what}: {code} {body}");
        assert!(
            body.contains("\"code\""),
            "{what}: the API's error body: {body}"
        );
    }
    // What a DNS-rebinding page needs: the API answering under a foreign name.
    let rebound = format!("Host: evil.example:{port}");
    let (code, body) = request(&served.url, "GET", "/apis/v2beta1/runs", &[&rebound], b"").unwrap();
    assert_eq!(code, 403, "{body}");
    // A multipart upload from a foreign page.
    let boundary = "kfboxboundary";
    let spec = marker_run(&marker)["pipeline_spec"].to_string();
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; filename=\"p.json\"\r\nContent-Type: application/json\r\n\r\n{spec}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("Content-Type: multipart/form-data; boundary={boundary}");
    let (code, body) = request(
        &served.url,
        "POST",
        "/apis/v2beta1/pipelines/upload?name=evil",
        &[evil, &content_type],
        multipart.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(!marker.exists(), "a refused request ran its step");
    assert!(recorded_runs(served.home()).is_empty());
    let (_, pipelines) = get(&served.url, "/apis/v2beta1/pipelines", None).unwrap();
    assert!(!pipelines.contains("evil"), "{pipelines}");

    // The same requests from kfbox's own page, or from a client that is no browser, work.
    let own = format!("Origin: http://127.0.0.1:{port}");
    let (code, body) = request(
        &served.url,
        "POST",
        "/apis/v2beta1/pipelines/upload?name=own",
        &[&own, &content_type],
        multipart.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let local = format!("Host: localhost:{port}");
    let local_origin = format!("Origin: http://localhost:{port}");
    let (code, body) = request(
        &served.url,
        "POST",
        "/apis/v2beta1/runs",
        &[&local_origin, &local, "Content-Type: application/json"],
        run.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    wait_for("the invited run's step", Duration::from_secs(60), || {
        marker.exists()
    });
}

#[test]
fn empty_query_values_are_ignored() {
    let served = Served::start("127.0.0.1", &[]);
    for path in [
        "/apis/v2beta1/runs?page_size=&page_token=&sort_by=&filter=",
        "/apis/v2beta1/experiments?page_size=",
        "/apis/v2beta1/pipelines?page_size=&namespace=",
    ] {
        let (code, body) = get(&served.url, path, None).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
    }
}
