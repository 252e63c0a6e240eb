//! Kubeflow Pipelines' own components for v2: the API server, the persistence agent (which
//! reports workflow states back to the API), the scheduled-workflow controller (recurring
//! runs), the UI, the ScheduledWorkflow CRD, the install's configuration and the
//! `pipeline-runner` account every step runs as.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, Probe, ProjectedVolumeSource, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::rbac::v1::Subject;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};

use crate::images;
use crate::names::{
    ARTIFACT_SECRET, GRPC_PORT, GRPC_SERVICE, INSTALL_CONFIG, MYSQL_SECRET, NAMESPACE,
    PIPELINE_BUCKET,
};
use crate::object::KubeObject;
use crate::parts::{
    account_with_role, binding, cluster_meta, config_map, config_volume, deployment, env,
    env_config, env_field, env_secret, http_probe, named_rule, pod_security, ports, resources,
    restricted, role, rule, service, strings, wait_for, Rollout, PULL_POLICY,
};

const API_SERVICE: &str = "ml-pipeline";
const API_HTTP_PORT: i32 = 8888;

pub fn objects() -> Vec<KubeObject> {
    let version = images::KFP_VERSION;
    let mut objects = vec![
        KubeObject::new(scheduled_workflow_crd()),
        KubeObject::new(config_map(
            INSTALL_CONFIG,
            &[
                ("appName", "pipeline"),
                ("appVersion", version),
                ("dbType", "mysql"),
                ("mysqlHost", "mysql"),
                ("mysqlPort", "3306"),
                ("mlmdDb", "metadb"),
                ("pipelineDb", "mlpipeline"),
                ("bucketName", PIPELINE_BUCKET),
                // Empty: the launcher's default, minio://mlpipeline/v2/artifacts (SeaweedFS).
                ("defaultPipelineRoot", ""),
                ("autoUpdatePipelineDefaultVersion", "true"),
                ("cronScheduleTimezone", "UTC"),
                ("ConMaxLifeTime", "120s"),
                ("LOG_LEVEL", "info"),
                ("ARTIFACTS_PROXY_ENABLED", "false"),
                ("ARTIFACT_RETENTION_DAYS", "-1"),
                ("defaultSecurityContextRunAsUser", ""),
                ("defaultSecurityContextRunAsGroup", ""),
                ("defaultSecurityContextRunAsNonRoot", ""),
                ("defaultSecurityContextHostUsers", ""),
                ("BLOCK_V1_PIPELINES", "false"),
                ("V1_ALLOWED_NAMESPACES", ""),
            ],
        )),
        KubeObject::new(config_map("kfp-launcher", &[("defaultPipelineRoot", "")])),
        KubeObject::new(config_map(
            "kubeflow-pipelines-public",
            &[("kubeflow_pipelines_version", &format!("v{version}"))],
        )),
        KubeObject::new(role(
            "kubeflow-pipelines-public",
            vec![named_rule(
                "",
                "configmaps",
                &["kubeflow-pipelines-public"],
                &["get", "list", "watch"],
            )],
        )),
        KubeObject::new(binding(
            "kubeflow-pipelines-public",
            "kubeflow-pipelines-public",
            Subject {
                kind: "Group".to_owned(),
                api_group: Some("rbac.authorization.k8s.io".to_owned()),
                name: "system:authenticated".to_owned(),
                ..Subject::default()
            },
        )),
    ];
    objects.extend(api_server());
    objects.extend(persistence_agent());
    objects.extend(scheduled_workflow_controller());
    objects.extend(ui());
    objects.extend(pipeline_runner());
    objects
}

/// Recurring runs, as the API server creates them for the controller below.
fn scheduled_workflow_crd() -> CustomResourceDefinition {
    let open = || JSONSchemaProps {
        type_: Some("object".to_owned()),
        x_kubernetes_preserve_unknown_fields: Some(true),
        x_kubernetes_map_type: Some("atomic".to_owned()),
        ..JSONSchemaProps::default()
    };
    let typed = |t: &str| JSONSchemaProps {
        type_: Some(t.to_owned()),
        ..JSONSchemaProps::default()
    };
    CustomResourceDefinition {
        metadata: cluster_meta("scheduledworkflows.kubeflow.org"),
        spec: CustomResourceDefinitionSpec {
            group: "kubeflow.org".to_owned(),
            names: CustomResourceDefinitionNames {
                kind: "ScheduledWorkflow".to_owned(),
                list_kind: Some("ScheduledWorkflowList".to_owned()),
                plural: "scheduledworkflows".to_owned(),
                singular: Some("scheduledworkflow".to_owned()),
                short_names: Some(strings(&["swf"])),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".to_owned(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1beta1".to_owned(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(JSONSchemaProps {
                        type_: Some("object".to_owned()),
                        properties: Some(
                            [
                                ("apiVersion", typed("string")),
                                ("kind", typed("string")),
                                ("metadata", typed("object")),
                                ("spec", open()),
                                ("status", open()),
                            ]
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                        ),
                        required: Some(strings(&["spec", "status"])),
                        ..JSONSchemaProps::default()
                    }),
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        ..CustomResourceDefinition::default()
    }
}

fn install_config(name: &str, key: &str) -> EnvVar {
    env_config(name, INSTALL_CONFIG, key, false)
}

fn optional_install_config(name: &str, key: &str) -> EnvVar {
    env_config(name, INSTALL_CONFIG, key, true)
}

/// A pod that must not start before the API server answers.
fn wait_for_api_server() -> Container {
    wait_for(
        "wait-for-ml-pipeline",
        vec![
            env("WAIT_HOST", API_SERVICE),
            env("WAIT_PORT", &API_HTTP_PORT.to_string()),
        ],
    )
}

/// A controller that reports to the API server: it runs as its own account, starts once the
/// API server answers, and holds a token for it (audience `pipelines.kubeflow.org`, which
/// the API server checks). `extra` adds the container's own ports or resources.
fn api_client(name: &str, image: &str, environment: Vec<EnvVar>, extra: Container) -> Deployment {
    let token = format!("{}-sa-token", name.trim_start_matches("ml-pipeline-"));
    deployment(
        name,
        ("app", name),
        Rollout::Rolling,
        &[],
        PodSpec {
            service_account_name: Some(name.to_owned()),
            security_context: Some(pod_security(None)),
            init_containers: Some(vec![wait_for_api_server()]),
            containers: vec![Container {
                name: name.to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                env: Some(environment),
                volume_mounts: Some(vec![VolumeMount {
                    name: token.clone(),
                    mount_path: "/var/run/secrets/kubeflow/tokens".to_owned(),
                    ..VolumeMount::default()
                }]),
                security_context: Some(restricted(Some(1000), Some(0))),
                ..extra
            }],
            volumes: Some(vec![Volume {
                name: token.clone(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            path: token,
                            expiration_seconds: Some(3600),
                            audience: Some("pipelines.kubeflow.org".to_owned()),
                        }),
                        ..VolumeProjection::default()
                    }]),
                    ..ProjectedVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        },
    )
}

fn api_server() -> Vec<KubeObject> {
    let selector = ("app", API_SERVICE);
    let all = [
        "create", "get", "list", "watch", "update", "patch", "delete",
    ];
    let role = role(
        API_SERVICE,
        vec![
            rule(&[""], &["pods", "pods/log"], &["get", "list", "delete"]),
            rule(&["argoproj.io"], &["workflows"], &all),
            rule(
                &["kubeflow.org"],
                &["scheduledworkflows"],
                &["create", "get", "list", "update", "patch", "delete"],
            ),
            rule(
                &["kubeflow.org"],
                &["scheduledworkflows/finalizers"],
                &["update"],
            ),
            rule(
                &["pipelines.kubeflow.org"],
                &["pipelines"],
                &["get", "list", "watch"],
            ),
            rule(
                &["authorization.k8s.io"],
                &["subjectaccessreviews"],
                &["create"],
            ),
            rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
            named_rule("", "configmaps", &["kfp-launcher"], &["get"]),
        ],
    );
    let database = vec![
        install_config("WAIT_HOST", "mysqlHost"),
        install_config("WAIT_PORT", "mysqlPort"),
    ];
    let metadata = vec![
        env("WAIT_HOST", GRPC_SERVICE),
        env("WAIT_PORT", &GRPC_PORT.to_string()),
    ];
    let mut environment = vec![
        env("PUBLISH_LOGS", "true"),
        env("LOG_LEVEL", "info"),
        env("PIPELINE_LOG_LEVEL", "1"),
        install_config(
            "AUTO_UPDATE_PIPELINE_DEFAULT_VERSION",
            "autoUpdatePipelineDefaultVersion",
        ),
        env_field("POD_NAMESPACE", "metadata.namespace"),
        env("CLUSTER_DOMAIN", "cluster.local"),
        env("OBJECTSTORECONFIG_SECURE", "false"),
        install_config("OBJECTSTORECONFIG_BUCKETNAME", "bucketName"),
        env("OBJECTSTORECONFIG_HOST", &format!("seaweedfs.{NAMESPACE}")),
        env("OBJECTSTORECONFIG_PORT", "9000"),
        env_secret("OBJECTSTORECONFIG_ACCESSKEY", ARTIFACT_SECRET, "accesskey"),
        env_secret(
            "OBJECTSTORECONFIG_SECRETACCESSKEY",
            ARTIFACT_SECRET,
            "secretkey",
        ),
        install_config("DB_DRIVER_NAME", "dbType"),
        install_config("DBCONFIG_CONMAXLIFETIME", "ConMaxLifeTime"),
    ];
    // The API server reads the database settings under both prefixes (its generic and its
    // MySQL-specific configuration).
    for prefix in ["DBCONFIG", "DBCONFIG_MYSQLCONFIG"] {
        environment.extend([
            env_secret(&format!("{prefix}_USER"), MYSQL_SECRET, "username"),
            env_secret(&format!("{prefix}_PASSWORD"), MYSQL_SECRET, "password"),
            install_config(&format!("{prefix}_DBNAME"), "pipelineDb"),
            install_config(&format!("{prefix}_HOST"), "mysqlHost"),
            install_config(&format!("{prefix}_PORT"), "mysqlPort"),
        ]);
    }
    environment.extend([
        // Pinned here, or every step's pods would pull `:latest` at run time.
        env("V2_DRIVER_IMAGE", images::DRIVER),
        env("V2_LAUNCHER_IMAGE", images::LAUNCHER),
        env("COMPILED_PIPELINE_SPEC_PATCH", "{}"),
        optional_install_config(
            "DEFAULT_SECURITY_CONTEXT_RUN_AS_USER",
            "defaultSecurityContextRunAsUser",
        ),
        optional_install_config(
            "DEFAULT_SECURITY_CONTEXT_RUN_AS_GROUP",
            "defaultSecurityContextRunAsGroup",
        ),
        optional_install_config(
            "DEFAULT_SECURITY_CONTEXT_RUN_AS_NON_ROOT",
            "defaultSecurityContextRunAsNonRoot",
        ),
        optional_install_config(
            "DEFAULT_SECURITY_CONTEXT_HOST_USERS",
            "defaultSecurityContextHostUsers",
        ),
        optional_install_config("BLOCK_V1_PIPELINES", "BLOCK_V1_PIPELINES"),
        optional_install_config("V1_ALLOWED_NAMESPACES", "V1_ALLOWED_NAMESPACES"),
    ]);
    let health = "/apis/v1beta1/healthz";
    let deployment = deployment(
        API_SERVICE,
        selector,
        Rollout::Rolling,
        &[],
        PodSpec {
            service_account_name: Some(API_SERVICE.to_owned()),
            security_context: Some(pod_security(None)),
            init_containers: Some(vec![
                wait_for("wait-for-database", database),
                wait_for("wait-for-metadata-grpc", metadata),
            ]),
            containers: vec![Container {
                name: "ml-pipeline-api-server".to_owned(),
                image: Some(images::API_SERVER.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                env: Some(environment),
                ports: Some(ports(&[
                    (Some("http"), API_HTTP_PORT),
                    (Some("grpc"), 8887),
                ])),
                readiness_probe: Some(http_probe(health, API_HTTP_PORT, 3, 5)),
                liveness_probe: Some(http_probe(health, API_HTTP_PORT, 3, 5)),
                startup_probe: Some(Probe {
                    failure_threshold: Some(12),
                    ..http_probe(health, API_HTTP_PORT, 0, 5)
                }),
                resources: Some(resources("250m", "500Mi", None)),
                security_context: Some(restricted(Some(1000), Some(0))),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
    );
    let mut objects = account_with_role(API_SERVICE, role, API_SERVICE);
    objects.extend([
        KubeObject::new(service(
            API_SERVICE,
            selector,
            &[("http", API_HTTP_PORT, API_HTTP_PORT), ("grpc", 8887, 8887)],
        )),
        KubeObject::new(deployment),
    ]);
    objects
}

fn persistence_agent() -> Vec<KubeObject> {
    let name = "ml-pipeline-persistenceagent";
    let role = role(
        "ml-pipeline-persistenceagent-role",
        vec![
            rule(&["argoproj.io"], &["workflows"], &["get", "list", "watch"]),
            rule(
                &["kubeflow.org"],
                &["scheduledworkflows"],
                &["get", "list", "watch"],
            ),
            rule(
                &["pipelines.kubeflow.org"],
                &["scheduledworkflows", "workflows"],
                &["report"],
            ),
            rule(
                &["pipelines.kubeflow.org"],
                &["runs"],
                &["reportMetrics", "readArtifact"],
            ),
        ],
    );
    let deployment = api_client(
        name,
        images::PERSISTENCE_AGENT,
        vec![
            env_field("NAMESPACE", "metadata.namespace"),
            env("TTL_SECONDS_AFTER_WORKFLOW_FINISH", "86400"),
            env("NUM_WORKERS", "2"),
            env("LOG_LEVEL", "info"),
        ],
        Container {
            resources: Some(resources("120m", "500Mi", None)),
            ..Container::default()
        },
    );
    let mut objects = account_with_role(name, role, "ml-pipeline-persistenceagent-binding");
    objects.push(KubeObject::new(deployment));
    objects
}

fn scheduled_workflow_controller() -> Vec<KubeObject> {
    let name = "ml-pipeline-scheduledworkflow";
    let all = [
        "create", "get", "list", "watch", "update", "patch", "delete",
    ];
    let role = role(
        "ml-pipeline-scheduledworkflow-role",
        vec![
            rule(&["argoproj.io"], &["workflows"], &all),
            rule(
                &["kubeflow.org"],
                &["scheduledworkflows", "scheduledworkflows/finalizers"],
                &all,
            ),
            rule(&["pipelines.kubeflow.org"], &["runs"], &["create"]),
            rule(&[""], &["events"], &["create", "patch"]),
        ],
    );
    let deployment = api_client(
        name,
        images::SCHEDULED_WORKFLOW,
        vec![
            env("METRICS_PORT", "9090"),
            env("CLIENT_QPS", "10"),
            env("RESYNC_INTERVAL_SECONDS", "30"),
            env("CLIENT_BURST", "20"),
            env("LOG_LEVEL", "info"),
            env_field("NAMESPACE", "metadata.namespace"),
            install_config("CRON_SCHEDULE_TIMEZONE", "cronScheduleTimezone"),
        ],
        Container {
            ports: Some(ports(&[(Some("http"), 9090)])),
            ..Container::default()
        },
    );
    let mut objects = account_with_role(name, role, "ml-pipeline-scheduledworkflow-binding");
    objects.push(KubeObject::new(deployment));
    objects
}

fn ui() -> Vec<KubeObject> {
    let name = "ml-pipeline-ui";
    let selector = ("app", name);
    let role = role(
        name,
        vec![
            rule(&[""], &["pods", "pods/log"], &["get"]),
            rule(&[""], &["events"], &["list"]),
            rule(&[""], &["secrets", "configmaps"], &["get", "list"]),
            rule(&["argoproj.io"], &["workflows"], &["get", "list"]),
        ],
    );
    let health = "/apis/v1beta1/healthz";
    let (config, config_mount) =
        config_volume("config-volume", "ml-pipeline-ui-configmap", "/etc/config");
    let deployment = deployment(
        name,
        selector,
        Rollout::Rolling,
        &[],
        PodSpec {
            service_account_name: Some(name.to_owned()),
            security_context: Some(pod_security(None)),
            containers: vec![Container {
                name: name.to_owned(),
                image: Some(images::FRONTEND.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                env: Some(vec![
                    env(
                        "VIEWER_TENSORBOARD_POD_TEMPLATE_SPEC_PATH",
                        "/etc/config/viewer-pod-template.json",
                    ),
                    env_field("MINIO_NAMESPACE", "metadata.namespace"),
                    env_secret("MINIO_ACCESS_KEY", ARTIFACT_SECRET, "accesskey"),
                    env_secret("MINIO_SECRET_KEY", ARTIFACT_SECRET, "secretkey"),
                    env("ALLOW_CUSTOM_VISUALIZATIONS", "true"),
                    env_field("FRONTEND_SERVER_NAMESPACE", "metadata.namespace"),
                    env("ARGO_ARCHIVE_LOGS", "true"),
                    env("DISABLE_GKE_METADATA", "true"),
                    optional_install_config(
                        "ARTIFACTS_SERVICE_PROXY_ENABLED",
                        "ARTIFACTS_PROXY_ENABLED",
                    ),
                ]),
                ports: Some(ports(&[(None, 3000)])),
                readiness_probe: Some(http_probe(health, 3000, 3, 5)),
                liveness_probe: Some(http_probe(health, 3000, 3, 5)),
                volume_mounts: Some(vec![config_mount]),
                resources: Some(resources("10m", "70Mi", None)),
                security_context: Some(restricted(Some(1000), Some(0))),
                ..Container::default()
            }],
            volumes: Some(vec![config]),
            ..PodSpec::default()
        },
    );
    let mut objects = account_with_role(name, role, name);
    objects.extend([
        KubeObject::new(config_map(
            "ml-pipeline-ui-configmap",
            &[(
                "viewer-pod-template.json",
                r#"{"spec": {"serviceAccountName": "pipeline-runner"}}"#,
            )],
        )),
        KubeObject::new(service(name, selector, &[("http", 80, 3000)])),
        KubeObject::new(deployment),
    ]);
    objects
}

/// The account every step's pods run as (the API server sets it on each workflow).
fn pipeline_runner() -> Vec<KubeObject> {
    let name = "pipeline-runner";
    let role = role(
        name,
        vec![
            rule(&[""], &["secrets"], &["get"]),
            rule(&[""], &["configmaps"], &["get", "watch", "list"]),
            rule(
                &[""],
                &["persistentvolumes", "persistentvolumeclaims"],
                &["*"],
            ),
            rule(
                &["snapshot.storage.k8s.io"],
                &["volumesnapshots"],
                &["create", "delete", "get"],
            ),
            rule(
                &["argoproj.io"],
                &["workflows"],
                &["get", "list", "watch", "update", "patch"],
            ),
            rule(
                &[""],
                &["pods", "pods/exec", "pods/log", "services"],
                &["*"],
            ),
            rule(
                &["", "apps", "extensions"],
                &["deployments", "replicasets"],
                &["*"],
            ),
            rule(&["kubeflow.org"], &["*"], &["*"]),
            rule(&["batch"], &["jobs"], &["*"]),
            rule(
                &["argoproj.io"],
                &["workflowtaskresults"],
                &["create", "patch"],
            ),
        ],
    );
    account_with_role(name, role, "pipeline-runner-binding")
}
