//! What `apply` sends, recorded by a local HTTP listener: no Kubernetes API server can run on
//! the test machines (tests/cluster-e2e.sh applies to a real k3s), so this pins the part kfbox
//! decides: one server-side apply PATCH per object, at the object's own REST path, as field
//! manager `kfbox` with `force`, carrying the object unchanged, in apply order.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use kfbox_kfp_install::{apply, objects, InstallOptions};

#[derive(Debug, Clone)]
struct Request {
    method: Method,
    path: String,
    query: String,
    content_type: String,
    body: serde_json::Value,
}

async fn serve(refuse: Option<&'static str>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let recorder = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let recorder = recorder.clone();
            async move {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let path = uri.path().to_owned();
                recorder.lock().unwrap().push(Request {
                    method,
                    path: path.clone(),
                    query: uri.query().unwrap_or_default().to_owned(),
                    content_type: headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned(),
                    body: body.clone(),
                });
                if refuse.is_some_and(|p| path.ends_with(p)) {
                    let status = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                        "status": "Failure", "reason": "Invalid", "code": 422,
                        "message": "Deployment.apps \"ml-pipeline\" is invalid: spec.template: bad"});
                    return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(status)).into_response();
                }
                // The API server answers an apply with the object as stored.
                axum::Json(body).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn client(url: &str) -> kube::Client {
    let config = kube::Config::new(url.parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn every_object_is_one_forced_server_side_apply_at_its_own_path() {
    let (url, seen) = serve(None).await;
    let objects = objects(InstallOptions {
        gpus: true,
        package_index: true,
    });
    let mut applied = Vec::new();
    apply::apply(&client(&url), &objects, |o| applied.push(o.label()))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), objects.len());
    assert_eq!(applied.len(), objects.len());
    for (object, request) in objects.iter().zip(&seen) {
        assert_eq!(request.method, Method::PATCH, "{}", object.label());
        assert_eq!(request.content_type, "application/apply-patch+yaml");
        assert!(
            request.query.contains("fieldManager=kfbox"),
            "{}",
            request.query
        );
        assert!(request.query.contains("force=true"), "{}", request.query);
        assert_eq!(
            request.body,
            object.body,
            "{} is sent unchanged",
            object.label()
        );
    }
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    for expected in [
        "/api/v1/namespaces/kubeflow",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/workflows.argoproj.io",
        "/apis/scheduling.k8s.io/v1/priorityclasses/workflow-controller",
        "/api/v1/namespaces/kubeflow/serviceaccounts/pipeline-runner",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/kubeflow/roles/ml-pipeline",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/kubeflow/rolebindings/argo-binding",
        "/api/v1/namespaces/kubeflow/configmaps/pipeline-install-config",
        "/api/v1/namespaces/kubeflow/secrets/mysql-secret",
        "/api/v1/namespaces/kubeflow/persistentvolumeclaims/mysql-pv-claim",
        "/api/v1/namespaces/kubeflow/services/ml-pipeline",
        "/apis/networking.k8s.io/v1/namespaces/kubeflow/networkpolicies/seaweedfs",
        "/apis/apps/v1/namespaces/kubeflow/deployments/ml-pipeline",
        "/apis/apps/v1/namespaces/kube-system/daemonsets/nvidia-device-plugin-daemonset",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:#?}");
    }
    assert_eq!(
        paths[0], "/api/v1/namespaces/kubeflow",
        "the namespace comes first"
    );
}

#[tokio::test]
async fn a_refused_object_is_named_and_stops_the_apply() {
    let (url, seen) = serve(Some("/deployments/ml-pipeline")).await;
    let objects = objects(InstallOptions {
        gpus: true,
        package_index: true,
    });
    let error = apply::apply(&client(&url), &objects, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("refused Deployment/ml-pipeline"), "{error}");
    assert!(error.contains("spec.template: bad"), "{error}");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.last().unwrap().path,
        "/apis/apps/v1/namespaces/kubeflow/deployments/ml-pipeline"
    );
    assert!(seen.len() < objects.len());
}
