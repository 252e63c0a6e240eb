//! A package index inside the cluster, for nodes without network: the SDK's prelude
//! (`pip install kfp==X` before a lightweight component) finds the wheels kfbox's runtime image
//! carries, served by that image's own Python. Every step's pod is pointed at it through
//! Argo's template defaults (see `argo.rs`), so compiled pipelines need no change.

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::images;
use crate::names::{NAMESPACE, PACKAGE_INDEX, PACKAGE_INDEX_PORT};
use crate::object::KubeObject;
use crate::parts::{
    deployment, env, http_probe, pod_security, ports, resources, restricted, service, Rollout,
    PULL_POLICY,
};

/// Where the runtime image keeps its wheels (images/runtime/Dockerfile).
const WHEELS: &str = "/opt/kfbox-wheels";

pub fn objects() -> Vec<KubeObject> {
    let selector = ("app", PACKAGE_INDEX);
    let server = deployment(
        PACKAGE_INDEX,
        selector,
        Rollout::Rolling,
        &[],
        PodSpec {
            security_context: Some(pod_security(None)),
            automount_service_account_token: Some(false),
            containers: vec![Container {
                name: "index".to_owned(),
                image: Some(images::RUNTIME.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                // A directory listing is a page of links: what pip's --find-links reads.
                command: Some(vec![
                    "python3".to_owned(),
                    "-m".to_owned(),
                    "http.server".to_owned(),
                    PACKAGE_INDEX_PORT.to_string(),
                    "--directory".to_owned(),
                    WHEELS.to_owned(),
                ]),
                ports: Some(ports(&[(Some("http"), PACKAGE_INDEX_PORT)])),
                readiness_probe: Some(http_probe("/", PACKAGE_INDEX_PORT, 2, 5)),
                resources: Some(resources("10m", "32Mi", None)),
                security_context: Some(restricted(Some(1000), Some(0))),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
    );
    vec![
        KubeObject::new(service(
            PACKAGE_INDEX,
            selector,
            &[("http", PACKAGE_INDEX_PORT, PACKAGE_INDEX_PORT)],
        )),
        KubeObject::new(server),
    ]
}

/// What every step's pip is told: no public index, the cluster's wheels instead (plain
/// HTTP inside the cluster, so the host is trusted by name).
pub fn pip_environment() -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let host = format!("{PACKAGE_INDEX}.{NAMESPACE}.svc.cluster.local");
    vec![
        env("PIP_NO_INDEX", "1"),
        env(
            "PIP_FIND_LINKS",
            &format!("http://{host}:{PACKAGE_INDEX_PORT}/"),
        ),
        env("PIP_TRUSTED_HOST", &host),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_is_pointed_at_the_index_service() {
        let vars = pip_environment();
        let value = |name: &str| {
            vars.iter()
                .find(|v| v.name == name)
                .and_then(|v| v.value.clone())
                .unwrap()
        };
        assert_eq!(
            value("PIP_FIND_LINKS"),
            "http://kfbox-package-index.kubeflow.svc.cluster.local:8080/"
        );
        assert!(value("PIP_FIND_LINKS").contains(&value("PIP_TRUSTED_HOST")));
        assert_eq!(value("PIP_NO_INDEX"), "1");
    }
}
