//! ML Metadata: the gRPC store server the driver and launcher record executions and
//! artifacts in (database `metadb` in MySQL), and the Envoy proxy that lets the UI speak
//! gRPC-web to it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::images;
use crate::names::{GRPC_PORT, GRPC_SERVICE, INSTALL_CONFIG, MYSQL_SECRET};
use crate::object::KubeObject;
use crate::parts::{
    config_map, config_volume, deployment, env_config, env_secret, pod_security, ports, restricted,
    service, service_account, strings, tcp_probe, wait_for, Rollout, PULL_POLICY,
};

/// Envoy's configuration: gRPC-web (with CORS) on 9090 to the store's gRPC on 8080, no
/// stream timeout (the UI's lineage pages hold streams open), its admin page on 9901.
const ENVOY_CONFIG: &str = include_str!("../../../embedded/cluster/metadata-envoy.yaml");

pub fn objects() -> Vec<KubeObject> {
    let grpc = ("component", "metadata-grpc-server");
    let envoy = ("component", "metadata-envoy");
    vec![
        KubeObject::new(service_account("metadata-grpc-server")),
        KubeObject::new(config_map(
            "metadata-grpc-configmap",
            &[
                ("METADATA_GRPC_SERVICE_HOST", GRPC_SERVICE),
                ("METADATA_GRPC_SERVICE_PORT", &GRPC_PORT.to_string()),
            ],
        )),
        KubeObject::new(service(
            GRPC_SERVICE,
            grpc,
            &[("grpc-api", GRPC_PORT, GRPC_PORT)],
        )),
        KubeObject::new(grpc_server(grpc)),
        KubeObject::new(config_map(
            "metadata-envoy-configmap",
            &[("envoy-config.yaml", ENVOY_CONFIG)],
        )),
        KubeObject::new(service(
            "metadata-envoy-service",
            envoy,
            &[("md-envoy", 9090, 9090)],
        )),
        KubeObject::new(envoy_proxy(envoy)),
    ]
}

fn grpc_server(selector: (&str, &str)) -> Deployment {
    let database = vec![
        env_config("WAIT_HOST", INSTALL_CONFIG, "mysqlHost", false),
        env_config("WAIT_PORT", INSTALL_CONFIG, "mysqlPort", false),
    ];
    deployment(
        "metadata-grpc-deployment",
        selector,
        Rollout::Rolling,
        &[],
        PodSpec {
            service_account_name: Some("metadata-grpc-server".to_owned()),
            security_context: Some(pod_security(None)),
            init_containers: Some(vec![wait_for("wait-for-database", database)]),
            containers: vec![Container {
                name: "container".to_owned(),
                image: Some(images::METADATA_GRPC.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                command: Some(strings(&["/bin/metadata_store_server"])),
                args: Some(vec![
                    format!("--grpc_port={GRPC_PORT}"),
                    "--mysql_config_database=$(MYSQL_DATABASE)".to_owned(),
                    "--mysql_config_host=$(MYSQL_HOST)".to_owned(),
                    "--mysql_config_port=$(MYSQL_PORT)".to_owned(),
                    "--mysql_config_user=$(DBCONFIG_USER)".to_owned(),
                    "--mysql_config_password=$(DBCONFIG_PASSWORD)".to_owned(),
                    "--enable_database_upgrade=true".to_owned(),
                    "--grpc_channel_arguments=grpc.max_metadata_size=16384,grpc.max_receive_message_length=104857600,grpc.max_send_message_length=104857600".to_owned(),
                ]),
                env: Some(vec![
                    env_secret("DBCONFIG_USER", MYSQL_SECRET, "username"),
                    env_secret("DBCONFIG_PASSWORD", MYSQL_SECRET, "password"),
                    env_config("MYSQL_DATABASE", INSTALL_CONFIG, "mlmdDb", false),
                    env_config("MYSQL_HOST", INSTALL_CONFIG, "mysqlHost", false),
                    env_config("MYSQL_PORT", INSTALL_CONFIG, "mysqlPort", false),
                ]),
                ports: Some(ports(&[(Some("grpc-api"), GRPC_PORT)])),
                liveness_probe: Some(tcp_probe("grpc-api")),
                readiness_probe: Some(tcp_probe("grpc-api")),
                security_context: Some(restricted(Some(1000), Some(0))),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
    )
}

fn envoy_proxy(selector: (&str, &str)) -> Deployment {
    let (config, config_mount) =
        config_volume("envoy-config", "metadata-envoy-configmap", "/etc/envoy");
    deployment(
        "metadata-envoy-deployment",
        selector,
        Rollout::Rolling,
        &[("sidecar.istio.io/inject", "false")],
        PodSpec {
            security_context: Some(pod_security(None)),
            containers: vec![Container {
                name: "container".to_owned(),
                image: Some(images::METADATA_ENVOY.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                args: Some(strings(&["/etc/envoy/envoy-config.yaml"])),
                ports: Some(ports(&[
                    (Some("md-envoy"), 9090),
                    (Some("envoy-admin"), 9901),
                ])),
                volume_mounts: Some(vec![config_mount]),
                security_context: Some(restricted(Some(1000), Some(0))),
                ..Container::default()
            }],
            volumes: Some(vec![config]),
            ..PodSpec::default()
        },
    )
}
