//! Argo Workflows v4.0.5, namespaced, as KFP 2.17.0 configures it: the workflow controller,
//! its RBAC and configuration, and Argo's CRDs in their schema-less ("minimal") form.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};

use crate::images;
use crate::names::{NAMESPACE, PIPELINE_BUCKET};
use crate::object::KubeObject;
use crate::parts::{
    account_with_role, cluster_meta, config_map, deployment, env, env_field, ports, resources,
    restricted, role, rule, strings, Rollout, PULL_POLICY,
};

const SERVICE_ACCOUNT: &str = "argo";
const PRIORITY_CLASS: &str = "workflow-controller";
const CONFIG_MAP: &str = "workflow-controller-configmap";

/// `package_index`: point every step's pip at the cluster's own index.
pub fn objects(package_index: bool) -> Vec<KubeObject> {
    let mut objects: Vec<KubeObject> = crds().into_iter().map(KubeObject::new).collect();
    objects.extend([
        KubeObject::new(PriorityClass {
            metadata: cluster_meta(PRIORITY_CLASS),
            value: 1_000_000,
            ..PriorityClass::default()
        }),
        KubeObject::new(controller_config(package_index)),
        KubeObject::new(controller()),
    ]);
    objects.extend(account_with_role(
        SERVICE_ACCOUNT,
        controller_role(),
        "argo-binding",
    ));
    objects
}

/// One of Argo's CRDs in the "minimal" form KFP installs: nothing below `spec` and `status`
/// is validated by the API server (the controller checks workflows itself).
struct Crd {
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    cluster_wide: bool,
    status: bool,
}

const CRDS: [Crd; 8] = [
    Crd {
        kind: "ClusterWorkflowTemplate",
        plural: "clusterworkflowtemplates",
        short_names: &["clusterwftmpl", "cwft"],
        cluster_wide: true,
        status: false,
    },
    Crd {
        kind: "CronWorkflow",
        plural: "cronworkflows",
        short_names: &["cwf", "cronwf"],
        cluster_wide: false,
        status: true,
    },
    Crd {
        kind: "WorkflowArtifactGCTask",
        plural: "workflowartifactgctasks",
        short_names: &["wfat"],
        cluster_wide: false,
        status: true,
    },
    Crd {
        kind: "WorkflowEventBinding",
        plural: "workfloweventbindings",
        short_names: &["wfeb"],
        cluster_wide: false,
        status: false,
    },
    Crd {
        kind: "Workflow",
        plural: "workflows",
        short_names: &["wf"],
        cluster_wide: false,
        status: true,
    },
    Crd {
        kind: "WorkflowTaskResult",
        plural: "workflowtaskresults",
        short_names: &[],
        cluster_wide: false,
        status: false,
    },
    Crd {
        kind: "WorkflowTaskSet",
        plural: "workflowtasksets",
        short_names: &["wfts"],
        cluster_wide: false,
        status: true,
    },
    Crd {
        kind: "WorkflowTemplate",
        plural: "workflowtemplates",
        short_names: &["wftmpl"],
        cluster_wide: false,
        status: false,
    },
];

fn crds() -> Vec<CustomResourceDefinition> {
    CRDS.iter().map(crd).collect()
}

fn crd(crd: &Crd) -> CustomResourceDefinition {
    let singular = crd.kind.to_lowercase();
    let mut properties = BTreeMap::from([
        ("apiVersion".to_owned(), typed("string")),
        ("kind".to_owned(), typed("string")),
        ("metadata".to_owned(), typed("object")),
    ]);
    // A task result carries its fields at the top level, not under spec or status.
    let (fields, required): (&[(&str, JSONSchemaProps)], &[&str]) =
        if crd.kind == "WorkflowTaskResult" {
            (
                &[
                    ("message", typed("string")),
                    ("phase", typed("string")),
                    ("progress", typed("string")),
                    ("outputs", open_object()),
                ],
                &["metadata"],
            )
        } else if crd.status {
            (
                &[("spec", open_object()), ("status", open_object())],
                &["metadata", "spec"],
            )
        } else {
            (&[("spec", open_object())], &["metadata", "spec"])
        };
    properties.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    CustomResourceDefinition {
        metadata: cluster_meta(&format!("{}.argoproj.io", crd.plural)),
        spec: CustomResourceDefinitionSpec {
            group: "argoproj.io".to_owned(),
            names: CustomResourceDefinitionNames {
                kind: crd.kind.to_owned(),
                list_kind: Some(format!("{}List", crd.kind)),
                plural: crd.plural.to_owned(),
                singular: Some(singular),
                short_names: (!crd.short_names.is_empty()).then(|| strings(crd.short_names)),
                ..CustomResourceDefinitionNames::default()
            },
            scope: if crd.cluster_wide {
                "Cluster"
            } else {
                "Namespaced"
            }
            .to_owned(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1alpha1".to_owned(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(JSONSchemaProps {
                        type_: Some("object".to_owned()),
                        properties: Some(properties),
                        required: Some(strings(required)),
                        ..JSONSchemaProps::default()
                    }),
                }),
                // Workflows keep status in the main resource (the controller writes both);
                // the task sets and artifact GC tasks have a status subresource.
                subresources: (crd.status && crd.kind != "Workflow").then(|| {
                    CustomResourceSubresources {
                        status: Some(CustomResourceSubresourceStatus(serde_json::Value::Object(
                            serde_json::Map::new(),
                        ))),
                        ..CustomResourceSubresources::default()
                    }
                }),
                additional_printer_columns: (crd.kind == "Workflow").then(workflow_columns),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        ..CustomResourceDefinition::default()
    }
}

fn typed(type_: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        type_: Some(type_.to_owned()),
        ..JSONSchemaProps::default()
    }
}

/// An object whose fields the API server keeps as sent (replaced whole by an update).
fn open_object() -> JSONSchemaProps {
    JSONSchemaProps {
        x_kubernetes_preserve_unknown_fields: Some(true),
        x_kubernetes_map_type: Some("atomic".to_owned()),
        ..typed("object")
    }
}

/// What `kubectl get workflows` shows.
fn workflow_columns() -> Vec<CustomResourceColumnDefinition> {
    let column = |name: &str, type_: &str, path: &str, format: Option<&str>| {
        CustomResourceColumnDefinition {
            name: name.to_owned(),
            type_: type_.to_owned(),
            json_path: path.to_owned(),
            format: format.map(str::to_owned),
            ..CustomResourceColumnDefinition::default()
        }
    };
    vec![
        column("Status", "string", ".status.phase", None),
        column("Age", "date", ".status.startedAt", Some("date-time")),
        column("Message", "string", ".status.message", None),
    ]
}

fn controller_role() -> k8s_openapi::api::rbac::v1::Role {
    let all = [
        "get", "list", "watch", "update", "patch", "delete", "create",
    ];
    role(
        "argo-role",
        vec![
            rule(
                &["coordination.k8s.io"],
                &["leases"],
                &["create", "get", "update"],
            ),
            rule(&[""], &["pods", "pods/exec"], &all),
            rule(&[""], &["configmaps"], &["get", "watch", "list"]),
            rule(
                &[""],
                &[
                    "persistentvolumeclaims",
                    "persistentvolumeclaims/finalizers",
                ],
                &["create", "update", "delete", "get"],
            ),
            rule(
                &["argoproj.io"],
                &[
                    "workflows",
                    "workflows/finalizers",
                    "workflowtasksets",
                    "workflowtasksets/finalizers",
                    "workflowartifactgctasks",
                ],
                &all,
            ),
            rule(
                &["argoproj.io"],
                &["workflowtemplates", "workflowtemplates/finalizers"],
                &["get", "list", "watch"],
            ),
            rule(
                &["argoproj.io"],
                &["workflowtaskresults"],
                &["list", "watch", "deletecollection"],
            ),
            rule(&[""], &["serviceaccounts"], &["get", "list"]),
            rule(&[""], &["secrets"], &["get"]),
            rule(
                &["argoproj.io"],
                &["cronworkflows", "cronworkflows/finalizers"],
                &["get", "list", "watch", "update", "patch", "delete"],
            ),
            rule(&[""], &["events"], &["create", "patch"]),
            rule(
                &["policy"],
                &["poddisruptionbudgets"],
                &["create", "get", "delete"],
            ),
        ],
    )
}

/// Where Argo keeps logs and outputs (KFP's SeaweedFS, S3 on port 9000), how it runs its
/// executor (never pulled when present, restricted), and its workflow defaults: with
/// `package_index`, every container template (each step's pod) gets pip's settings for it.
fn controller_config(package_index: bool) -> k8s_openapi::api::core::v1::ConfigMap {
    let artifact_repository = format!(
        r#"archiveLogs: true
s3:
  endpoint: "seaweedfs.{NAMESPACE}.svc:9000"
  bucket: "{PIPELINE_BUCKET}"
  keyFormat: "private-artifacts/{{{{workflow.namespace}}}}/{{{{workflow.name}}}}/{{{{workflow.creationTimestamp.Y}}}}/{{{{workflow.creationTimestamp.m}}}}/{{{{workflow.creationTimestamp.d}}}}/{{{{pod.name}}}}"
  insecure: true
  accessKeySecret:
    name: mlpipeline-minio-artifact
    key: accesskey
  secretKeySecret:
    name: mlpipeline-minio-artifact
    key: secretkey
"#
    );
    let executor = format!(
        r#"imagePullPolicy: {PULL_POLICY}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  allowPrivilegeEscalation: false
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
"#
    );
    let mut workflow_defaults = r#"spec:
  ttlStrategy:
    secondsAfterCompletion: 3600
    secondsAfterSuccess: 3600
    secondsAfterFailure: 3600
  templateDefaults:
    retryStrategy:
      limit: '2'
      retryPolicy: OnError
"#
    .to_owned();
    if package_index {
        // Argo merges a default `container` into container templates only, env by name.
        workflow_defaults.push_str("    container:\n      env:\n");
        for var in crate::package_index::pip_environment() {
            workflow_defaults.push_str(&format!(
                "        - name: {}\n          value: \"{}\"\n",
                var.name,
                var.value.unwrap_or_default()
            ));
        }
    }
    config_map(
        CONFIG_MAP,
        &[
            ("artifactRepository", &artifact_repository),
            ("executor", &executor),
            ("workflowDefaults", &workflow_defaults),
        ],
    )
}

fn controller() -> k8s_openapi::api::apps::v1::Deployment {
    let selector = ("app", "workflow-controller");
    // The image's own non-root user; nothing is written but to mounted volumes.
    let security = SecurityContext {
        read_only_root_filesystem: Some(true),
        ..restricted(None, None)
    };
    deployment(
        "workflow-controller",
        selector,
        Rollout::Rolling,
        &[],
        PodSpec {
            priority_class_name: Some(PRIORITY_CLASS.to_owned()),
            service_account_name: Some(SERVICE_ACCOUNT.to_owned()),
            node_selector: Some(crate::parts::string_map(&[("kubernetes.io/os", "linux")])),
            security_context: Some(crate::parts::pod_security(None)),
            containers: vec![Container {
                name: "workflow-controller".to_owned(),
                image: Some(images::WORKFLOW_CONTROLLER.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                command: Some(strings(&["workflow-controller"])),
                args: Some(strings(&[
                    "--configmap",
                    CONFIG_MAP,
                    "--executor-image",
                    images::ARGOEXEC,
                    "--namespaced",
                ])),
                env: Some(vec![
                    env_field("LEADER_ELECTION_IDENTITY", "metadata.name"),
                    // Retried as transient: a node going away, not the step failing.
                    env(
                        "TRANSIENT_ERROR_PATTERN",
                        "(?i)(imminent node shutdown|node is shutting down|preempt|evict|spot|pod deleted)",
                    ),
                ]),
                ports: Some(ports(&[(Some("metrics"), 9090), (None, 6060)])),
                liveness_probe: Some(k8s_openapi::api::core::v1::Probe {
                    failure_threshold: Some(3),
                    timeout_seconds: Some(30),
                    ..crate::parts::http_probe("/healthz", 6060, 90, 60)
                }),
                resources: Some(resources("100m", "500Mi", None)),
                security_context: Some(security),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
    )
}
