//! The API through its router, without a socket or a process (`tower::ServiceExt::oneshot`):
//! error shapes, the token, what browsers may ask, paging and filters, path confinement, the
//! route table, and a run started and finished through the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use kfbox_gpu::{GpuPlan, GpuPolicy};
use kfbox_server::{router, BrowserPolicy, LabBoard, Launcher, Server, ServerOptions, ROUTES};
use kfbox_spec::LoadedPipeline;
use kfbox_step::events::EventSink;
use kfbox_step::{Executor, ExecutorError, Step, StepExit};
use kfbox_store::Store;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Every step succeeds at once.
struct Succeed;

#[async_trait]
impl Executor for Succeed {
    async fn run(
        &self,
        _step: &Step,
        _events: &EventSink,
        _cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        Ok(StepExit::Exited(0))
    }

    fn shares_host_files(&self, _step: &Step) -> bool {
        true
    }
}

struct SucceedLauncher;

#[async_trait]
impl Launcher for SucceedLauncher {
    async fn executor(&self, _pipeline: &LoadedPipeline) -> Result<Arc<dyn Executor>, String> {
        Ok(Arc::new(Succeed))
    }
}

struct Api {
    home: tempfile::TempDir,
    app: Router,
}

fn api_with(token: Option<&str>) -> Api {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&home.path().join("kfbox.sqlite")).unwrap());
    let options = ServerOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
        token: token.map(str::to_owned),
        runs_dir: home.path().join("runs"),
        namespace: kfbox_namespace::Namespace::new(home.path()),
        parallelism: 4,
        gpus: GpuPlan::new(Vec::new(), false, GpuPolicy::Prefer),
        reuse_cache: true,
        browser: BrowserPolicy::default(),
        lab: LabBoard::default(),
    };
    let server = Server::new(options, store, Arc::new(SucceedLauncher)).unwrap();
    Api {
        home,
        app: router(server),
    }
}

fn api() -> Api {
    api_with(None)
}

impl Api {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(request(Method::GET, uri, None)).await
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(request(Method::POST, uri, Some(body))).await
    }
}

/// A request as a program sends it: `Host: localhost`, JSON bodies.
fn request(method: Method, uri: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost:8888");
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// The upstream error body: `error`, `code`, `message`, `details`.
fn assert_error_shape(body: &Value, code: i64, message_part: &str) {
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(message_part), "{message}");
    assert_eq!(body["error"], body["message"]);
    assert!(body["details"].is_array(), "{body}");
}

#[tokio::test]
async fn unknown_routes_answer_in_the_api_error_shape() {
    let api = api();
    let (status, body) = api.get("/apis/v2beta1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&body, 5, "no API route answers GET /apis/v2beta1/nothing");
    let (status, body) = api.get("/apis/v2beta1/experiments/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&body, 5, "missing");
}

#[tokio::test]
async fn with_a_token_every_api_request_needs_it() {
    let api = api_with(Some("s3cret"));
    let (status, body) = api.get("/apis/v2beta1/experiments").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_shape(&body, 16, "needs a token");
    let mut wrong = request(Method::GET, "/apis/v2beta1/experiments", None);
    wrong
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer guess".parse().unwrap());
    assert_eq!(api.send(wrong).await.0, StatusCode::UNAUTHORIZED);
    let mut right = request(Method::GET, "/apis/v2beta1/experiments", None);
    right
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
    let (status, body) = api.send(right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["experiments"][0]["display_name"], "Default");
}

#[tokio::test]
async fn pages_of_other_sites_cannot_reach_or_change_anything() {
    let api = api();
    let mut rebinding = request(Method::GET, "/apis/v2beta1/runs", None);
    rebinding
        .headers_mut()
        .insert(header::HOST, "attacker.example".parse().unwrap());
    let (status, body) = api.send(rebinding).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_shape(&body, 7, "attacker.example");

    let mut foreign = request(
        Method::POST,
        "/apis/v2beta1/experiments",
        Some(json!({"display_name": "x"})),
    );
    foreign
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    let (status, body) = api.send(foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_shape(&body, 7, "evil.example");

    let form = Request::builder()
        .method(Method::POST)
        .uri("/apis/v2beta1/experiments")
        .header(header::HOST, "localhost:8888")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"display_name": "x"}"#))
        .unwrap();
    assert_eq!(api.send(form).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, listed) = api.get("/apis/v2beta1/experiments").await;
    assert_eq!(listed["total_size"], 1, "only Default: {listed}");
}

#[tokio::test]
async fn lists_page_by_token_and_filter_by_field() {
    let api = api();
    for name in ["alpha", "beta", "gamma", "delta"] {
        let (status, body) = api
            .post("/apis/v2beta1/experiments", json!({"display_name": name}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, first) = api
        .get("/apis/v2beta1/experiments?page_size=2&sort_by=display_name")
        .await;
    let names = |page: &Value| -> Vec<String> {
        page["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["display_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["Default", "alpha"]);
    let token = first["next_page_token"].as_str().unwrap();
    let (_, second) = api
        .get(&format!(
            "/apis/v2beta1/experiments?page_size=2&sort_by=display_name&page_token={token}"
        ))
        .await;
    assert_eq!(names(&second), ["beta", "delta"]);
    let filter =
        r#"{"predicates":[{"key":"display_name","operation":"EQUALS","string_value":"gamma"}]}"#;
    let (status, filtered) = api
        .get(&format!(
            "/apis/v2beta1/experiments?filter={}",
            filter
                .replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{filtered}");
    assert_eq!(names(&filtered), ["gamma"]);
}

#[tokio::test]
async fn bad_filters_and_bodies_name_what_is_wrong() {
    let api = api();
    let filter = "%7B%22predicates%22:[%7B%22key%22:%22colour%22,%22operation%22:%22EQUALS%22,%22string_value%22:%22x%22%7D]%7D";
    let (status, body) = api
        .get(&format!("/apis/v2beta1/experiments?filter={filter}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&body, 3, "no field `colour`");
    let (status, body) = api
        .post("/apis/v2beta1/experiments", json!(["not", "an", "object"]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&body, 3, "not a valid Experiment");
    let (status, body) = api
        .get("/apis/v2beta1/experiments?page_token=nonsense")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&body, 3, "nonsense");
}

#[tokio::test]
async fn file_routes_never_leave_the_run_directories() {
    let api = api();
    fs_err::write(api.home.path().join("secret.txt"), "do not serve").unwrap();
    for uri in [
        "/apis/v2beta1/runs/..%2F..%2Fsecret/nodes/x/artifacts/y:read",
        "/apis/v2beta1/runs/r/nodes/..%2F..%2F..%2Fsecret.txt/artifacts/y:read",
        "/apis/v2beta1/runs/r/nodes/x/artifacts/..:read",
        "/apis/v1alpha1/runs/r/nodes/..%2F..%2Fsecret.txt/log",
    ] {
        let (status, body) = api.get(uri).await;
        assert!(status.is_client_error(), "{uri}: {status} {body}");
        assert!(!body.to_string().contains("do not serve"), "{uri}: {body}");
    }
}

#[tokio::test]
async fn every_route_of_the_table_answers_and_is_documented() {
    let api = api();
    let (status, document) = api.get("/apis/v2beta1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for route in ROUTES {
        assert!(
            document["paths"][route.path][route.method].is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
        let uri = kfbox_server::openapi::path_parameters(route.path)
            .into_iter()
            .fold(route.path.to_owned(), |path, name| {
                path.replace(&format!("{{{name}}}"), "1")
            });
        let method: Method = route.method.to_uppercase().parse().unwrap();
        let body = (method == Method::POST).then(|| json!({}));
        let (_, answer) = api.send(request(method, &uri, body)).await;
        assert!(
            !answer.to_string().contains("no API route answers"),
            "{} {uri}: {answer}",
            route.method
        );
    }
}

#[tokio::test]
async fn a_run_created_through_the_api_executes_and_reads_back() {
    let api = api();
    let spec = json!({
        "pipelineInfo": {"name": "hello"},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.17.0",
        "components": {"comp-say": {"executorLabel": "exec-say"}},
        "deploymentSpec": {"executors": {"exec-say": {"container": {"image": "any", "command": ["true"]}}}},
        "root": {"dag": {"tasks": {"say": {"taskInfo": {"name": "say"}, "componentRef": {"name": "comp-say"}}}}},
    });
    let (status, run) = api
        .post(
            "/apis/v2beta1/runs",
            json!({"display_name": "through the router", "pipeline_spec": spec}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let id = run["run_id"].as_str().unwrap().to_owned();
    let mut state = Value::Null;
    for _ in 0..200 {
        let (_, run) = api.get(&format!("/apis/v2beta1/runs/{id}")).await;
        state = run["state"].clone();
        if state == "SUCCEEDED" {
            let tasks = run["run_details"]["task_details"].as_array().unwrap();
            assert!(tasks.iter().any(|t| t["display_name"] == "say"), "{run}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the run did not succeed: {state}");
}
