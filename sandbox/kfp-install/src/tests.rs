//! The install checked as a whole, the way a reviewer of a manifest would: what it contains,
//! that every name one object uses is defined by another, that selectors select, and that
//! every image is pinned and in the offline bundle.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::components::COMPONENTS;
use crate::images;
use crate::install::{objects, InstallOptions};
use crate::names::{GRPC_SERVICE, NAMESPACE, PIPELINE_BUCKET};
use crate::object::{to_yaml, KubeObject};

/// The install with everything it can hold (the GPU device plugin and the package index too).
fn all_objects() -> Vec<KubeObject> {
    objects(InstallOptions {
        gpus: true,
        package_index: true,
    })
}

fn by_kind(objects: &[KubeObject], kind: &str) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o.kind() == kind)
        .map(|o| o.body.clone())
        .collect()
}

fn names(objects: &[KubeObject], kind: &str) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o.kind() == kind)
        .map(|o| o.name.clone())
        .collect()
}

/// Each workload's pod template (Deployments and the device plugin's DaemonSet).
fn pod_specs(objects: &[KubeObject]) -> Vec<(String, Value)> {
    let mut workloads = by_kind(objects, "Deployment");
    workloads.extend(by_kind(objects, "DaemonSet"));
    workloads
        .into_iter()
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_owned(),
                d["spec"]["template"]["spec"].clone(),
            )
        })
        .collect()
}

fn containers(pod: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for field in ["initContainers", "containers"] {
        all.extend(pod[field].as_array().cloned().unwrap_or_default());
    }
    all
}

#[test]
fn the_install_holds_what_v2_uses_and_nothing_v2_does_not() {
    let count = |objects: &[KubeObject]| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for object in objects {
            *counts.entry(object.kind().to_owned()).or_default() += 1;
        }
        counts
    };
    let objects = objects(InstallOptions::default());
    let mut expected: BTreeMap<String, usize> = [
        ("ConfigMap", 7),
        ("CustomResourceDefinition", 9),
        ("Deployment", 9),
        ("Namespace", 1),
        ("NetworkPolicy", 1),
        ("PersistentVolumeClaim", 2),
        ("PriorityClass", 1),
        ("Role", 7),
        ("RoleBinding", 7),
        ("Secret", 2),
        ("Service", 6),
        ("ServiceAccount", 9),
    ]
    .into_iter()
    .map(|(kind, n)| (kind.to_owned(), n))
    .collect();
    assert_eq!(count(&objects), expected);
    // With GPUs and offline, the device plugin and the package index too, and nothing else.
    expected.insert("DaemonSet".to_owned(), 1);
    *expected.get_mut("Deployment").unwrap() += 1;
    *expected.get_mut("Service").unwrap() += 1;
    assert_eq!(count(&all_objects()), expected);
    let deployments = names(&objects, "Deployment");
    for unused in [
        "metadata-writer",
        "cache-server",
        "cache-deployer-deployment",
        "ml-pipeline-viewer-crd",
        "ml-pipeline-visualizationserver",
    ] {
        assert!(!deployments.contains(unused), "{unused} is not used by v2");
    }
    // Each workload is a component the user is told about, and each component is installed
    // (the optional ones when asked for).
    let titled = |optional: bool| -> BTreeSet<String> {
        COMPONENTS
            .iter()
            .filter(|c| optional || !c.optional)
            .map(|c| c.deployment.to_owned())
            .collect()
    };
    assert_eq!(deployments, titled(false));
    assert_eq!(names(&all_objects(), "Deployment"), titled(true));
    // No object twice.
    let labels: BTreeSet<String> = objects.iter().map(KubeObject::label).collect();
    assert_eq!(labels.len(), objects.len());
}

#[test]
fn objects_are_applied_after_what_they_need() {
    let objects = all_objects();
    assert_eq!(objects[0].label(), format!("Namespace/{NAMESPACE}"));
    let first_deployment = objects
        .iter()
        .position(|o| o.kind() == "Deployment")
        .unwrap();
    assert!(objects[first_deployment..]
        .iter()
        .all(|o| matches!(o.kind(), "Deployment" | "DaemonSet")));
    let last_crd = objects
        .iter()
        .rposition(|o| o.kind() == "CustomResourceDefinition")
        .unwrap();
    assert!(objects[..last_crd]
        .iter()
        .all(|o| matches!(o.kind(), "Namespace" | "CustomResourceDefinition")));
    for object in &objects {
        let namespace = object.body["metadata"]["namespace"].as_str();
        assert_eq!(namespace, object.namespace.as_deref(), "{}", object.label());
        // Everything of KFP is in its namespace; only the GPU device plugin is in kube-system.
        if let Some(namespace) = namespace {
            let expected = if object.kind() == "DaemonSet" {
                "kube-system"
            } else {
                NAMESPACE
            };
            assert_eq!(namespace, expected, "{}", object.label());
        }
        assert_eq!(object.body["kind"], object.kind());
        assert_eq!(
            object.body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kfbox"
        );
    }
}

#[test]
fn every_image_is_pinned_never_pulled_when_present_and_in_the_bundle_list() {
    let objects = all_objects();
    let mut used = BTreeSet::new();
    for (deployment, pod) in pod_specs(&objects) {
        for container in containers(&pod) {
            let image = container["image"].as_str().unwrap().to_owned();
            assert!(
                !image.ends_with(":latest") && image.rsplit('/').next().unwrap().contains(':'),
                "{deployment}: {image} is not pinned"
            );
            assert_eq!(
                container["imagePullPolicy"], "IfNotPresent",
                "{deployment}: {image}"
            );
            used.insert(image);
        }
    }
    // The run-time images the API server and Argo put into every step's pods.
    let yaml = to_yaml(&objects);
    for runtime in [images::DRIVER, images::LAUNCHER, images::ARGOEXEC] {
        assert!(yaml.contains(runtime), "{runtime} is not configured");
        used.insert(runtime.to_owned());
    }
    let mut listed: BTreeSet<String> = include_str!("../../../images/cluster-images.txt")
        .lines()
        .filter_map(|line| line.strip_prefix("cluster "))
        .map(|reference| reference.trim().to_owned())
        .collect();
    // kfbox's runtime image is built, not pulled: `kfbox cluster bundle` adds it to the list.
    listed.insert(images::RUNTIME.to_owned());
    let missing: Vec<_> = used.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "not in images/cluster-images.txt: {missing:?}"
    );
    // The rest of the list is k3s's own system images and the steps' default base image.
    let rest: Vec<_> = listed
        .difference(&used)
        .filter(|r| !r.starts_with("docker.io/rancher/") && *r != "docker.io/library/python:3.11")
        .collect();
    assert!(
        rest.is_empty(),
        "bundled but not used by the install: {rest:?}"
    );
}

#[test]
fn selectors_select_the_pods_they_are_meant_for() {
    let objects = all_objects();
    let mut deployments = by_kind(&objects, "Deployment");
    deployments.extend(by_kind(&objects, "DaemonSet"));
    let matches = |selector: &Value, labels: &Value| {
        let selector = selector.as_object().unwrap();
        !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    };
    for d in &deployments {
        let name = &d["metadata"]["name"];
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        assert!(
            matches(&d["spec"]["selector"]["matchLabels"], labels),
            "{name}"
        );
        // Selectors must not overlap, or one Deployment adopts another's pods.
        let overlapping = deployments
            .iter()
            .filter(|other| {
                matches(
                    &d["spec"]["selector"]["matchLabels"],
                    &other["spec"]["template"]["metadata"]["labels"],
                )
            })
            .count();
        assert_eq!(overlapping, 1, "{name}");
    }
    for s in by_kind(&objects, "Service") {
        let selected: Vec<_> = deployments
            .iter()
            .filter(|d| {
                matches(
                    &s["spec"]["selector"],
                    &d["spec"]["template"]["metadata"]["labels"],
                )
            })
            .collect();
        assert_eq!(
            selected.len(),
            1,
            "Service/{} selects {}",
            s["metadata"]["name"],
            selected.len()
        );
        // Each port it forwards to is one the pods listen on.
        let pod = &selected[0]["spec"]["template"]["spec"];
        let listening: BTreeSet<i64> = containers(pod)
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .map(|p| p["containerPort"].as_i64().unwrap())
            .collect();
        for port in s["spec"]["ports"].as_array().unwrap() {
            let target = port["targetPort"].as_i64().unwrap();
            // SeaweedFS's gRPC filer port is opened by the filer without being declared.
            if target != 18888 {
                assert!(
                    listening.contains(&target),
                    "Service/{}: port {target}",
                    s["metadata"]["name"]
                );
            }
        }
    }
    for policy in by_kind(&objects, "NetworkPolicy") {
        let selector = &policy["spec"]["podSelector"]["matchLabels"];
        assert!(deployments
            .iter()
            .any(|d| matches(selector, &d["spec"]["template"]["metadata"]["labels"])));
    }
}

#[test]
fn every_name_an_object_uses_is_defined() {
    let objects = all_objects();
    let config_maps: BTreeMap<String, Value> = by_kind(&objects, "ConfigMap")
        .into_iter()
        .map(|c| {
            (
                c["metadata"]["name"].as_str().unwrap().to_owned(),
                c["data"].clone(),
            )
        })
        .collect();
    let secrets: BTreeMap<String, Value> = by_kind(&objects, "Secret")
        .into_iter()
        .map(|s| {
            (
                s["metadata"]["name"].as_str().unwrap().to_owned(),
                s["stringData"].clone(),
            )
        })
        .collect();
    let accounts = names(&objects, "ServiceAccount");
    let claims = names(&objects, "PersistentVolumeClaim");
    let services = names(&objects, "Service");
    let priority_classes = names(&objects, "PriorityClass");
    for (deployment, pod) in pod_specs(&objects) {
        if let Some(account) = pod["serviceAccountName"].as_str() {
            assert!(
                accounts.contains(account),
                "{deployment}: account {account}"
            );
        }
        // Kubernetes' own classes exist on every cluster; the rest must be the install's.
        if let Some(class) = pod["priorityClassName"]
            .as_str()
            .filter(|c| !c.starts_with("system-"))
        {
            assert!(priority_classes.contains(class), "{deployment}: {class}");
        }
        let volumes: BTreeSet<&str> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                if let Some(cm) = v["configMap"]["name"].as_str() {
                    assert!(config_maps.contains_key(cm), "{deployment}: ConfigMap {cm}");
                }
                if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                    assert!(claims.contains(claim), "{deployment}: claim {claim}");
                }
                v["name"].as_str().unwrap()
            })
            .collect();
        for container in containers(&pod) {
            let cname = container["name"].as_str().unwrap();
            let here = format!("{deployment}/{cname}");
            for m in container["volumeMounts"].as_array().into_iter().flatten() {
                assert!(
                    volumes.contains(m["name"].as_str().unwrap()),
                    "{here}: mount {}",
                    m["name"]
                );
            }
            let mut defined = BTreeSet::new();
            for e in container["env"].as_array().into_iter().flatten() {
                defined.insert(e["name"].as_str().unwrap().to_owned());
                let from = &e["valueFrom"];
                let optional = |r: &Value| r["optional"].as_bool() == Some(true);
                if let Some(r) = from.get("configMapKeyRef").filter(|r| !optional(r)) {
                    let data = &config_maps[r["name"].as_str().unwrap()];
                    assert!(
                        data.get(r["key"].as_str().unwrap()).is_some(),
                        "{here}: {r}"
                    );
                }
                if let Some(r) = from.get("configMapKeyRef").filter(|r| optional(r)) {
                    assert!(
                        config_maps.contains_key(r["name"].as_str().unwrap()),
                        "{here}: {r}"
                    );
                }
                if let Some(r) = from.get("secretKeyRef") {
                    let data = &secrets[r["name"].as_str().unwrap()];
                    assert!(
                        data.get(r["key"].as_str().unwrap()).is_some(),
                        "{here}: {r}"
                    );
                }
                // A host the init containers wait for is one of the install's services.
                if e["name"] == "WAIT_HOST" {
                    let host = match e["value"].as_str() {
                        Some(host) => host.to_owned(),
                        None => {
                            let r = &from["configMapKeyRef"];
                            config_maps[r["name"].as_str().unwrap()][r["key"].as_str().unwrap()]
                                .as_str()
                                .unwrap()
                                .to_owned()
                        }
                    };
                    assert!(services.contains(&host), "{here}: waits for {host}");
                }
            }
            for source in container["envFrom"].as_array().into_iter().flatten() {
                if let Some(name) = source["secretRef"]["name"].as_str() {
                    assert!(secrets.contains_key(name), "{here}: envFrom {name}");
                }
            }
            // Kubernetes expands `$(VAR)` in arguments only for variables the container
            // defines (a shell's `$((...))` is not a name and passes through).
            for arg in container["args"].as_array().into_iter().flatten() {
                let arg = arg.as_str().unwrap();
                for part in arg.split("$(").skip(1) {
                    let var = part.split(')').next().unwrap();
                    let is_name = !var.is_empty()
                        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    assert!(
                        !is_name || defined.contains(var),
                        "{here}: $({var}) is not defined"
                    );
                }
            }
        }
    }
    let roles = names(&objects, "Role");
    for binding in by_kind(&objects, "RoleBinding") {
        let role = binding["roleRef"]["name"].as_str().unwrap();
        assert!(
            roles.contains(role),
            "{}: role {role}",
            binding["metadata"]["name"]
        );
        for subject in binding["subjects"].as_array().unwrap() {
            if subject["kind"] == "ServiceAccount" {
                assert!(accounts.contains(subject["name"].as_str().unwrap()));
            }
        }
    }
    // Every account a workload runs as has a role, and steps run as pipeline-runner.
    let bound: BTreeSet<String> = by_kind(&objects, "RoleBinding")
        .iter()
        .flat_map(|b| b["subjects"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    for account in [
        "ml-pipeline",
        "ml-pipeline-persistenceagent",
        "ml-pipeline-scheduledworkflow",
        "ml-pipeline-ui",
        "argo",
        "pipeline-runner",
    ] {
        assert!(bound.contains(account), "{account} has no role");
    }
}

#[test]
fn argo_stores_logs_in_the_installs_object_store() {
    let objects = all_objects();
    let config = by_kind(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "workflow-controller-configmap")
        .unwrap();
    let repository: serde_yaml::Value =
        serde_yaml::from_str(config["data"]["artifactRepository"].as_str().unwrap()).unwrap();
    assert_eq!(
        repository["s3"]["endpoint"].as_str(),
        Some("seaweedfs.kubeflow.svc:9000")
    );
    assert_eq!(repository["s3"]["bucket"].as_str(), Some(PIPELINE_BUCKET));
    assert!(repository["s3"]["keyFormat"]
        .as_str()
        .unwrap()
        .contains("{{workflow.name}}"));
    let executor: serde_yaml::Value =
        serde_yaml::from_str(config["data"]["executor"].as_str().unwrap()).unwrap();
    assert_eq!(executor["imagePullPolicy"].as_str(), Some("IfNotPresent"));
    // The envoy configuration is valid YAML pointing at the gRPC service.
    let envoy = by_kind(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "metadata-envoy-configmap")
        .unwrap();
    let envoy: serde_yaml::Value =
        serde_yaml::from_str(envoy["data"]["envoy-config.yaml"].as_str().unwrap()).unwrap();
    let endpoint = &envoy["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
        ["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    assert_eq!(endpoint["address"].as_str(), Some(GRPC_SERVICE));
}

#[test]
fn the_yaml_stream_holds_every_object_once() {
    let objects = all_objects();
    let yaml = to_yaml(&objects);
    assert_eq!(yaml.matches("\n---\n").count() + 1, objects.len());
    assert!(yaml.starts_with("---\n"));
}

#[test]
fn offline_every_steps_pip_is_pointed_at_the_clusters_package_index() {
    let defaults = |package_index: bool| -> serde_yaml::Value {
        let objects = objects(InstallOptions {
            gpus: false,
            package_index,
        });
        let config = by_kind(&objects, "ConfigMap")
            .into_iter()
            .find(|c| c["metadata"]["name"] == "workflow-controller-configmap")
            .unwrap();
        serde_yaml::from_str(config["data"]["workflowDefaults"].as_str().unwrap()).unwrap()
    };
    let online = defaults(false);
    assert!(online["spec"]["templateDefaults"]["container"].is_null());
    let offline = defaults(true);
    let template = &offline["spec"]["templateDefaults"];
    assert_eq!(template["retryStrategy"]["limit"].as_str(), Some("2"));
    let env: BTreeMap<String, String> = template["container"]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(env["PIP_NO_INDEX"], "1");
    // The address pip is given is the index's Service, on the port its pod serves.
    let objects = all_objects();
    let service = by_kind(&objects, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "kfbox-package-index")
        .unwrap();
    let port = service["spec"]["ports"][0]["port"].as_i64().unwrap();
    assert_eq!(
        env["PIP_FIND_LINKS"],
        format!("http://kfbox-package-index.{NAMESPACE}.svc.cluster.local:{port}/")
    );
    assert!(env["PIP_FIND_LINKS"].contains(&env["PIP_TRUSTED_HOST"]));
}

#[test]
fn nothing_refers_outside_the_cluster() {
    // KFP's own kustomizations pull Argo's bases from GitHub at render time; this install is
    // whole as built. The only addresses in it are the pod's own and the cluster's services.
    let yaml = to_yaml(&all_objects());
    for scheme in ["http://", "https://"] {
        for (at, _) in yaml.match_indices(scheme) {
            let address = &yaml[at + scheme.len()..];
            let host = address.split(['/', ':']).next().unwrap_or_default();
            assert!(
                host == "127.0.0.1" || host.ends_with(".svc.cluster.local"),
                "{scheme}{host} is outside the cluster"
            );
        }
    }
    assert!(!yaml.contains("github.com"));
}
