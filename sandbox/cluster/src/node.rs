//! The k3s node: one privileged container running `rancher/k3s` as k3d runs it (tmpfs `/run`,
//! a named volume for state, the API server published on 127.0.0.1 only), found again by name
//! and labels, ready when k3s logs its ready line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, DeviceRequest, HostConfig,
    HostConfigCgroupnsModeEnum, Mount, MountType, PortBinding, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// The k3s release kfbox's cluster runs (k3d 5.9's default).
pub const K3S_IMAGE: &str = "rancher/k3s:v1.35.5-k3s1";
/// The same release on NVIDIA's CUDA base with the container toolkit, as
/// `kfbox images build-gpu-node` builds it from images/k3s-gpu; `--gpus` uses it by default.
pub const GPU_NODE_IMAGE: &str = "kfbox/k3s-gpu:v1.35.5-k3s1";
/// Where k3s keeps its state: the data volume.
pub const STATE_DIR: &str = "/var/lib/rancher/k3s";
/// Where k3s imports image archives from at boot (and watches afterwards).
pub const IMAGES_DIR: &str = "/var/lib/rancher/k3s/agent/images";
/// Where k3s writes its kubeconfig (`K3S_KUBECONFIG_OUTPUT`).
pub const KUBECONFIG_IN_NODE: &str = "/output/kubeconfig.yaml";
/// What k3s logs once its API server and controllers are up.
pub const READY_LINE: &str = "k3s is up and running";
const API_PORT: &str = "6443/tcp";
/// k3s components kfbox's cluster does without: KFP needs no ingress or load balancer, and
/// nothing reads metrics.
const DISABLED: &str = "--disable=traefik,servicelb,metrics-server";

/// Labels on everything kfbox makes for a cluster, so that `down` and a later `up` find it.
pub const LABEL_CLUSTER: &str = "io.kfbox.cluster";
pub const LABEL_HOME: &str = "io.kfbox.home";
/// The node container's lines kept for an error.
const LAST_LINES: usize = 25;

/// How the node gets the kernel rights k3s needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Privileges {
    /// `--privileged`, as k3d runs nodes.
    Privileged,
    /// Every capability but these, with AppArmor and seccomp off: for hosts whose capability
    /// bounding set makes `--privileged` fail (runc: "unable to apply caps").
    AllCapabilitiesBut(Vec<String>),
}

/// GPUs passed to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gpus {
    All,
    Count(u32),
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The cluster's name (`kfbox` unless told otherwise).
    pub name: String,
    pub image: String,
    /// The host port on 127.0.0.1 for the API server; 0 picks a free one.
    pub api_port: u16,
    pub gpus: Option<Gpus>,
    /// A directory of image archives (`kfbox cluster bundle`) mounted where k3s imports them.
    pub bundle: Option<PathBuf>,
    pub privileges: Privileges,
    /// The KFBOX_HOME that owns the cluster (a label).
    pub home: PathBuf,
}

impl NodeSpec {
    pub fn container_name(&self) -> String {
        container_name(&self.name)
    }

    pub fn volume_name(&self) -> String {
        volume_name(&self.name)
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_CLUSTER.to_owned(), self.name.clone()),
            (LABEL_HOME.to_owned(), self.home.display().to_string()),
        ])
    }

    /// The container as Docker is asked to create it (also what `--dry-run` prints).
    pub fn container_body(&self) -> ContainerCreateBody {
        let mut args: Vec<String> = vec![
            "server".into(),
            DISABLED.into(),
            "--tls-san=127.0.0.1".into(),
            "--https-listen-port=6443".into(),
        ];
        if self.gpus.is_some() {
            // KFP cannot set a pod's runtimeClassName, so GPU pods need NVIDIA's runtime as the
            // node's default.
            args.push("--default-runtime=nvidia".into());
        }
        let mut mounts = vec![Mount {
            target: Some(STATE_DIR.into()),
            source: Some(self.volume_name()),
            typ: Some(MountType::VOLUME),
            ..Mount::default()
        }];
        if let Some(bundle) = &self.bundle {
            mounts.push(Mount {
                target: Some(IMAGES_DIR.into()),
                source: Some(bundle.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Mount::default()
            });
        }
        let (privileged, cap_add, cap_drop, security_opt) = match &self.privileges {
            Privileges::Privileged => (Some(true), None, None, None),
            Privileges::AllCapabilitiesBut(dropped) => (
                None,
                Some(vec!["ALL".to_owned()]),
                Some(dropped.clone()),
                Some(vec![
                    "apparmor=unconfined".to_owned(),
                    "seccomp=unconfined".to_owned(),
                ]),
            ),
        };
        let device_requests = self.gpus.map(|gpus| {
            vec![DeviceRequest {
                driver: Some("nvidia".into()),
                count: Some(match gpus {
                    Gpus::All => -1,
                    Gpus::Count(n) => i64::from(n),
                }),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..DeviceRequest::default()
            }]
        });
        let port = if self.api_port == 0 {
            String::new()
        } else {
            self.api_port.to_string()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some(self.container_name()),
            // k3s runs as PID 1 in a cgroup namespace of its own (it then evacuates its own
            // cgroup, which k3d's init scripts do for it); mounts must propagate to pods.
            entrypoint: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "mount --make-rshared / && exec /bin/k3s \"$@\"".into(),
                "k3s".into(),
            ]),
            cmd: Some(args),
            env: Some(vec![
                format!("K3S_KUBECONFIG_OUTPUT={KUBECONFIG_IN_NODE}"),
                "K3S_KUBECONFIG_MODE=600".into(),
            ]),
            labels: Some(self.labels()),
            exposed_ports: Some(vec![API_PORT.to_owned()]),
            host_config: Some(HostConfig {
                privileged,
                cap_add,
                cap_drop,
                security_opt,
                cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
                tmpfs: Some(HashMap::from([
                    ("/run".to_owned(), String::new()),
                    ("/var/run".to_owned(), String::new()),
                ])),
                mounts: Some(mounts),
                port_bindings: Some(HashMap::from([(
                    API_PORT.to_owned(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(port),
                    }]),
                )])),
                device_requests,
                // Docker would restart a node that crashes while booting, again and again:
                // `up` sets `unless-stopped` once the node is ready.
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        }
    }
}

pub fn container_name(cluster: &str) -> String {
    format!("kfbox-cluster-{cluster}")
}

pub fn volume_name(cluster: &str) -> String {
    format!("kfbox-cluster-{cluster}-data")
}

/// A running, ready node.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyNode {
    pub container: String,
    /// `https://127.0.0.1:PORT`.
    pub api_server: String,
    /// The kubeconfig k3s wrote, as it wrote it.
    #[serde(skip)]
    pub kubeconfig: String,
    /// Whether this call created the node (else it was started again or already running).
    pub created: bool,
}

/// Creates the node (or starts the stopped one, keeping its data) and waits until k3s is ready.
pub async fn up(
    docker: &Docker,
    spec: &NodeSpec,
    ready_within: Duration,
) -> Result<ReadyNode, ClusterError> {
    let container = spec.container_name();
    let existing = docker.inspect_container(&container, None).await.ok();
    if let Some(existing) = &existing {
        let differences = differences(existing, spec);
        if !differences.is_empty() {
            return Err(ClusterError::Changed {
                container,
                differences: differences.join(", "),
            });
        }
    }
    let created = existing.is_none();
    if created {
        if !kfbox_docker::has_image(docker, &spec.image).await {
            if spec.image == GPU_NODE_IMAGE {
                return Err(ClusterError::MissingGpuImage {
                    image: spec.image.clone(),
                });
            }
            return Err(ClusterError::MissingImage {
                image: spec.image.clone(),
            });
        }
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(spec.volume_name()),
                labels: Some(spec.labels()),
                ..VolumeCreateRequest::default()
            })
            .await?;
        let options = CreateContainerOptionsBuilder::default()
            .name(&container)
            .build();
        docker
            .create_container(Some(options), spec.container_body())
            .await?;
    }
    let running = existing
        .as_ref()
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.running)
        .unwrap_or(false);
    if !running {
        docker.start_container(&container, None).await?;
    }
    wait_until_ready(docker, &container, ready_within).await?;
    docker
        .update_container(
            &container,
            ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..ContainerUpdateBody::default()
            },
        )
        .await?;
    let api_server = format!(
        "https://127.0.0.1:{}",
        published_port(docker, &container).await?
    );
    let kubeconfig = read_kubeconfig(docker, &container).await?;
    Ok(ReadyNode {
        container,
        api_server,
        kubeconfig,
        created,
    })
}

/// What the existing node was made with that `spec` asks otherwise: a container's image,
/// mounts and devices are fixed when it is created.
fn differences(
    existing: &bollard::models::ContainerInspectResponse,
    spec: &NodeSpec,
) -> Vec<String> {
    let mut differences = Vec::new();
    let image = existing
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    if image != spec.image {
        differences.push(format!("image {image} (asked: {})", spec.image));
    }
    let bundle = existing
        .mounts
        .iter()
        .flatten()
        .find(|m| m.destination.as_deref() == Some(IMAGES_DIR))
        .and_then(|m| m.source.clone())
        .map(PathBuf::from);
    if bundle != spec.bundle {
        let shown = |b: &Option<PathBuf>| {
            b.as_ref()
                .map_or("none".to_owned(), |p| p.display().to_string())
        };
        differences.push(format!(
            "bundle {} (asked: {})",
            shown(&bundle),
            shown(&spec.bundle)
        ));
    }
    let had_gpus = existing
        .host_config
        .as_ref()
        .and_then(|h| h.device_requests.as_ref())
        .is_some_and(|d| !d.is_empty());
    if had_gpus != spec.gpus.is_some() {
        differences.push(format!(
            "GPUs {} (asked: {})",
            if had_gpus { "passed" } else { "none" },
            if spec.gpus.is_some() {
                "passed"
            } else {
                "none"
            }
        ));
    }
    differences
}

/// Follows the node's log from its latest start until the ready line; a node that stops first
/// or stays silent too long is reported with its last lines.
async fn wait_until_ready(
    docker: &Docker,
    container: &str,
    within: Duration,
) -> Result<(), ClusterError> {
    let started = docker
        .inspect_container(container, None)
        .await?
        .state
        .and_then(|s| s.started_at)
        .and_then(|t| unix_seconds(&t))
        .unwrap_or(0);
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(i32::try_from(started).unwrap_or(0))
        .build();
    let mut logs = docker.logs(container, Some(options));
    let deadline = tokio::time::Instant::now() + within;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            line = logs.next() => match line {
                Some(Ok(output)) => {
                    if String::from_utf8_lossy(&output.into_bytes()).contains(READY_LINE) {
                        return Ok(());
                    }
                }
                // The log ends when the container stops: the poll below says how.
                Some(Err(_)) | None => tokio::time::sleep(Duration::from_millis(200)).await,
            },
            _ = poll.tick() => {
                let inspected = docker.inspect_container(container, None).await?;
                let state = inspected.state.unwrap_or_default();
                let exited = state.running != Some(true)
                    || state.restarting == Some(true)
                    || inspected.restart_count.unwrap_or(0) > 0;
                if exited {
                    let _ = docker
                        .stop_container(container, None::<bollard::query_parameters::StopContainerOptions>)
                        .await;
                    return Err(ClusterError::Crashed {
                        container: container.to_owned(),
                        code: state.exit_code.unwrap_or_default(),
                        last_lines: last_lines(docker, container, started).await,
                    });
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(ClusterError::NotReady {
                        container: container.to_owned(),
                        seconds: within.as_secs(),
                        last_lines: last_lines(docker, container, started).await,
                    });
                }
            }
        }
    }
}

/// The node's last lines since `started`, read afresh: the followed stream may lag behind.
async fn last_lines(docker: &Docker, container: &str, started: i64) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .since(i32::try_from(started).unwrap_or(0))
        .tail(&LAST_LINES.to_string())
        .build();
    let mut logs = docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(Ok(output)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&output.into_bytes()));
    }
    text.trim_end().to_owned()
}

/// RFC 3339 as Docker writes it, to whole seconds since the epoch.
fn unix_seconds(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp())
}

/// The host port Docker bound the API server to (on 127.0.0.1).
pub async fn published_port(docker: &Docker, container: &str) -> Result<u16, ClusterError> {
    let inspected = docker.inspect_container(container, None).await?;
    inspected
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(API_PORT).cloned().flatten())
        .and_then(|bindings| {
            bindings
                .into_iter()
                .find(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
        })
        .and_then(|b| b.host_port)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| ClusterError::Kubeconfig {
            what: format!(
                "has no API server address: {container} publishes no {API_PORT} on 127.0.0.1"
            ),
        })
}

/// The kubeconfig k3s wrote inside the node, copied out as Docker archives it.
async fn read_kubeconfig(docker: &Docker, container: &str) -> Result<String, ClusterError> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(KUBECONFIG_IN_NODE)
        .build();
    let mut archive = Vec::new();
    let mut stream = docker.download_from_container(container, Some(options));
    while let Some(chunk) = stream.next().await {
        archive.extend_from_slice(&chunk?);
    }
    let mut tar = tar::Archive::new(archive.as_slice());
    let unreadable = |e: std::io::Error| ClusterError::Kubeconfig {
        what: format!("in {container} cannot be read: {e}"),
    };
    let mut entries = tar.entries().map_err(unreadable)?;
    let mut entry = entries
        .next()
        .ok_or_else(|| ClusterError::Kubeconfig {
            what: format!("is missing from {container} ({KUBECONFIG_IN_NODE})"),
        })?
        .map_err(unreadable)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).map_err(unreadable)?;
    Ok(text)
}

/// What `kfbox cluster status` reports of the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    pub container: String,
    pub image: String,
    /// Docker's state: running, exited, restarting...
    pub state: String,
    pub api_server: Option<String>,
    pub data_volume: Option<String>,
}

pub async fn state(docker: &Docker, cluster: &str) -> Result<Option<NodeState>, ClusterError> {
    let container = container_name(cluster);
    let Ok(inspected) = docker.inspect_container(&container, None).await else {
        return Ok(None);
    };
    let running = inspected
        .state
        .as_ref()
        .and_then(|s| s.running)
        .unwrap_or(false);
    let state = inspected
        .state
        .as_ref()
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let api_server = if running {
        published_port(docker, &container)
            .await
            .ok()
            .map(|port| format!("https://127.0.0.1:{port}"))
    } else {
        None
    };
    let volume = volume_name(cluster);
    let data_volume = docker.inspect_volume(&volume).await.ok().map(|_| volume);
    Ok(Some(NodeState {
        container,
        image: inspected.config.and_then(|c| c.image).unwrap_or_default(),
        state,
        api_server,
        data_volume,
    }))
}

/// What `down` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Removed {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
}

/// Removes every container of the cluster and, unless `keep_data`, its volumes; removing what
/// is already gone is not an error.
pub async fn down(
    docker: &Docker,
    cluster: &str,
    keep_data: bool,
) -> Result<Removed, ClusterError> {
    let filter = HashMap::from([(
        "label".to_owned(),
        vec![format!("{LABEL_CLUSTER}={cluster}")],
    )]);
    let mut removed = Removed::default();
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await?;
    for container in containers {
        let Some(id) = container.id else { continue };
        let name = container
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_else(|| id.clone());
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match docker.remove_container(&id, Some(options)).await {
            Ok(()) => removed.containers.push(name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !keep_data {
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await?;
        for volume in volumes.volumes.unwrap_or_default() {
            match docker
                .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => removed.volumes.push(volume.name),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(removed)
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodeSpec {
        NodeSpec {
            name: "kfbox".into(),
            image: K3S_IMAGE.into(),
            api_port: 0,
            gpus: None,
            bundle: None,
            privileges: Privileges::Privileged,
            home: "/home/me/.local/share/kfbox".into(),
        }
    }

    #[test]
    fn the_node_is_built_as_k3d_builds_one() {
        let body = spec().container_body();
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.privileged, Some(true));
        let tmpfs = host.tmpfs.as_ref().unwrap();
        assert!(tmpfs.contains_key("/run") && tmpfs.contains_key("/var/run"));
        let binding = &host.port_bindings.as_ref().unwrap()[API_PORT]
            .as_ref()
            .unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        let args = body.cmd.as_ref().unwrap();
        assert!(args.contains(&DISABLED.to_owned()), "{args:?}");
        assert!(body
            .env
            .as_ref()
            .unwrap()
            .contains(&format!("K3S_KUBECONFIG_OUTPUT={KUBECONFIG_IN_NODE}")));
        assert_eq!(body.labels.as_ref().unwrap()[LABEL_CLUSTER], "kfbox");
        assert!(host.device_requests.is_none());
    }

    #[test]
    fn gpus_become_device_requests_and_the_nvidia_runtime() {
        let mut spec = spec();
        spec.gpus = Some(Gpus::Count(2));
        let body = spec.container_body();
        let request = &body
            .host_config
            .as_ref()
            .unwrap()
            .device_requests
            .as_ref()
            .unwrap()[0];
        assert_eq!(request.count, Some(2));
        assert_eq!(request.capabilities, Some(vec![vec!["gpu".to_owned()]]));
        assert!(body
            .cmd
            .unwrap()
            .contains(&"--default-runtime=nvidia".to_owned()));
        spec.gpus = Some(Gpus::All);
        let body = spec.container_body();
        assert_eq!(
            body.host_config.unwrap().device_requests.unwrap()[0].count,
            Some(-1)
        );
    }

    #[test]
    fn docker_times_convert_to_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2026-12-01T02:03:04.123456789Z"),
            Some(1_796_090_584)
        );
        assert_eq!(unix_seconds("garbage"), None);
    }
}
