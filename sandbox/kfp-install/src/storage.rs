//! Where KFP keeps its state: MySQL (the API server's runs and pipelines, MLMD's metadata)
//! and SeaweedFS (artifacts and logs, through its S3 gateway on the `seaweedfs` service's
//! port 9000, where KFP's MinIO used to be).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, ExecAction, Lifecycle, LifecycleHandler, PodSpec, Probe,
    SecretEnvSource,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::images;
use crate::names::{ARTIFACT_SECRET, MYSQL_SECRET, PIPELINE_BUCKET};
use crate::object::KubeObject;
use crate::parts::{
    claim, claim_volume, deployment, env, http_probe, meta, pod_security, ports, resources,
    restricted, secret, service, service_account, string_map, strings, Rollout, PULL_POLICY,
};

pub fn objects() -> Vec<KubeObject> {
    vec![
        KubeObject::new(secret(
            MYSQL_SECRET,
            &[("username", "root"), ("password", "")],
        )),
        KubeObject::new(secret(
            ARTIFACT_SECRET,
            &[("accesskey", "minio"), ("secretkey", "minio123")],
        )),
        KubeObject::new(service_account("mysql")),
        KubeObject::new(claim("mysql-pv-claim", "20Gi")),
        KubeObject::new(service("mysql", ("app", "mysql"), &[("", 3306, 3306)])),
        KubeObject::new(mysql()),
        KubeObject::new(service_account("seaweedfs")),
        KubeObject::new(claim("seaweedfs-pvc", "20Gi")),
        KubeObject::new(service(
            "seaweedfs",
            ("app", "seaweedfs"),
            &[
                ("http-iam", 8111, 8111),
                ("http-s3", 8333, 8333),
                ("http-s3-compat", 9000, 8333),
                ("http-master", 9333, 9333),
                ("grpc-master", 19333, 19333),
                ("grpc-filer", 18888, 18888),
                ("http-filer", 8888, 8888),
            ],
        )),
        KubeObject::new(seaweedfs_network_policy()),
        KubeObject::new(seaweedfs()),
    ]
}

fn mysql() -> Deployment {
    let (data, data_mount) = claim_volume(
        "mysql-persistent-storage",
        "mysql-pv-claim",
        "/var/lib/mysql",
    );
    deployment(
        "mysql",
        ("app", "mysql"),
        Rollout::Recreate,
        &[],
        PodSpec {
            service_account_name: Some("mysql".to_owned()),
            security_context: Some(pod_security(Some(999))),
            containers: vec![Container {
                name: "mysql".to_owned(),
                image: Some(images::MYSQL.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                // KFP's Go and MLMD's C++ clients log in with the native password method.
                args: Some(strings(&[
                    "--datadir",
                    "/var/lib/mysql",
                    "--authentication-policy=mysql_native_password",
                    "--mysql-native-password=ON",
                    "--disable-log-bin",
                ])),
                env: Some(vec![env("MYSQL_ALLOW_EMPTY_PASSWORD", "true")]),
                ports: Some(ports(&[(Some("mysql"), 3306)])),
                volume_mounts: Some(vec![data_mount]),
                resources: Some(resources("100m", "800Mi", None)),
                security_context: Some(restricted(Some(999), Some(999))),
                ..Container::default()
            }],
            volumes: Some(vec![data]),
            ..PodSpec::default()
        },
    )
}

/// Run once the server is up: the pipeline bucket, and an S3 identity with the credentials
/// of `mlpipeline-minio-artifact` (in the environment as `$accesskey`/`$secretkey`). The
/// marker file is what the startup probe waits for.
const SEAWEEDFS_SETUP: &str = r#"set -u
ready=""
for i in $(seq 1 60); do
  if wget -q --spider http://127.0.0.1:8333/status; then ready=yes; break; fi
  sleep 2
done
[ -n "$ready" ] || { echo "SeaweedFS's S3 gateway did not answer within two minutes" >&2; exit 1; }
for i in $(seq 1 5); do
  echo "s3.bucket.create --name BUCKET" | weed shell >/dev/null 2>&1 || true
  if echo "s3.bucket.list" | weed shell 2>/dev/null | grep -q BUCKET; then break; fi
  [ "$i" -lt 5 ] || { echo "could not create the bucket BUCKET" >&2; exit 1; }
  sleep 5
done
for i in $(seq 1 5); do
  if echo "s3.configure -user kubeflow-admin -access_key $accesskey -secret_key $secretkey -actions Admin -apply" | weed shell >/dev/null 2>&1; then break; fi
  [ "$i" -lt 5 ] || { echo "could not configure the S3 identity" >&2; exit 1; }
  sleep 5
done
touch /tmp/initialization-complete
"#;

fn seaweedfs() -> Deployment {
    let setup = SEAWEEDFS_SETUP.replace("BUCKET", PIPELINE_BUCKET);
    let (data, data_mount) = claim_volume("data", "seaweedfs-pvc", "/data");
    deployment(
        "seaweedfs",
        ("app", "seaweedfs"),
        Rollout::Recreate,
        &[],
        PodSpec {
            service_account_name: Some("seaweedfs".to_owned()),
            security_context: Some(pod_security(Some(1000))),
            containers: vec![Container {
                name: "seaweedfs".to_owned(),
                image: Some(images::SEAWEEDFS.to_owned()),
                image_pull_policy: Some(PULL_POLICY.to_owned()),
                args: Some(strings(&[
                    "server",
                    "-dir=/data",
                    "-s3",
                    "-iam",
                    "-filer",
                    "-master.volumePreallocate=false",
                ])),
                env_from: Some(vec![EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: ARTIFACT_SECRET.to_owned(),
                        ..SecretEnvSource::default()
                    }),
                    ..EnvFromSource::default()
                }]),
                lifecycle: Some(Lifecycle {
                    post_start: Some(LifecycleHandler {
                        exec: Some(ExecAction {
                            command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), setup]),
                        }),
                        ..LifecycleHandler::default()
                    }),
                    ..Lifecycle::default()
                }),
                ports: Some(ports(&[
                    (None, 8333),
                    (None, 8111),
                    (None, 9333),
                    (None, 19333),
                    (None, 8888),
                ])),
                startup_probe: Some(Probe {
                    exec: Some(ExecAction {
                        command: Some(vec![
                            "/bin/sh".to_owned(),
                            "-c".to_owned(),
                            format!(
                                "test -f /tmp/initialization-complete && echo s3.bucket.list | weed shell | grep -q {PIPELINE_BUCKET}"
                            ),
                        ]),
                    }),
                    initial_delay_seconds: Some(10),
                    period_seconds: Some(5),
                    timeout_seconds: Some(10),
                    failure_threshold: Some(24),
                    ..Probe::default()
                }),
                readiness_probe: Some(Probe {
                    failure_threshold: Some(3),
                    timeout_seconds: Some(5),
                    ..http_probe("/status", 8333, 5, 10)
                }),
                liveness_probe: Some(Probe {
                    failure_threshold: Some(3),
                    timeout_seconds: Some(10),
                    ..http_probe("/status", 8333, 30, 30)
                }),
                volume_mounts: Some(vec![data_mount]),
                resources: Some(resources("64m", "256Mi", None)),
                security_context: Some(restricted(Some(1000), Some(1000))),
                ..Container::default()
            }],
            volumes: Some(vec![data]),
            ..PodSpec::default()
        },
    )
}

/// Only pods of the namespace reach the S3 port; the master, filer and IAM ports are for the
/// server itself. (KFP's multi-user rules for profile namespaces and Istio do not apply to a
/// single-user install.)
fn seaweedfs_network_policy() -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta("seaweedfs", &[]),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(string_map(&[("app", "seaweedfs")])),
                ..LabelSelector::default()
            }),
            policy_types: Some(strings(&["Ingress"])),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(LabelSelector::default()),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(8333)),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}
