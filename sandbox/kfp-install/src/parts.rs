//! Small constructors for the pieces every component repeats: metadata, the restricted
//! security profile, environment variables, probes and RBAC rules. They keep the component
//! modules to what differs between components.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapKeySelector, ConfigMapVolumeSource, Container, ContainerPort,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, Secret, SecretKeySelector,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::names::NAMESPACE;
use crate::object::KubeObject;

/// The labels on every object kfbox installs: KFP's own application label, and the one that
/// tells kfbox's objects from anything a user adds to the namespace.
pub const PART_OF: (&str, &str) = ("application-crd-id", "kubeflow-pipelines");
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kfbox");

/// Labels, ConfigMap data and the like from literal pairs.
pub fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn common_labels(own: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = string_map(&[PART_OF, MANAGED_BY]);
    all.extend(string_map(own));
    all
}

/// Metadata of an object in the KFP namespace.
pub fn meta(name: &str, own_labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(NAMESPACE.to_owned()),
        labels: Some(common_labels(own_labels)),
        ..ObjectMeta::default()
    }
}

/// Metadata of a cluster-wide object (CRD, Namespace, PriorityClass).
pub fn cluster_meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(common_labels(&[])),
        ..ObjectMeta::default()
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Kubernetes' "restricted" pod security profile for one container: no privilege escalation,
/// no capabilities, a non-root user (the image's own when `user` is None), the runtime's
/// default seccomp filter.
pub fn restricted(user: Option<i64>, group: Option<i64>) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        run_as_user: user,
        run_as_group: group,
        capabilities: Some(Capabilities {
            drop: Some(strings(&["ALL"])),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

/// The pod-level half of the restricted profile; `fs_group` for pods that own a volume.
pub fn pod_security(fs_group: Option<i64>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default_seccomp()),
        fs_group,
        fs_group_change_policy: fs_group.map(|_| "OnRootMismatch".to_owned()),
        ..PodSecurityContext::default()
    }
}

pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn env_from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(source),
        ..EnvVar::default()
    }
}

/// A variable read from a key of a ConfigMap; `optional` ones may be absent.
pub fn env_config(name: &str, config_map: &str, key: &str, optional: bool) -> EnvVar {
    env_from(
        name,
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: config_map.to_owned(),
                key: key.to_owned(),
                optional: optional.then_some(true),
            }),
            ..EnvVarSource::default()
        },
    )
}

pub fn env_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    env_from(
        name,
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: None,
            }),
            ..EnvVarSource::default()
        },
    )
}

/// A variable from the pod's own metadata, e.g. `metadata.namespace`.
pub fn env_field(name: &str, path: &str) -> EnvVar {
    env_from(
        name,
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        },
    )
}

pub fn resources(cpu: &str, memory: &str, limits: Option<(&str, &str)>) -> ResourceRequirements {
    let amounts = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(amounts(cpu, memory)),
        limits: limits.map(|(cpu, memory)| amounts(cpu, memory)),
        ..ResourceRequirements::default()
    }
}

pub fn ports(list: &[(Option<&str>, i32)]) -> Vec<ContainerPort> {
    list.iter()
        .map(|(name, port)| ContainerPort {
            name: name.map(str::to_owned),
            container_port: *port,
            ..ContainerPort::default()
        })
        .collect()
}

/// A probe on an HTTP path; `failures` is how many misses it allows before acting.
pub fn http_probe(path: &str, port: i32, initial_delay: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: (initial_delay > 0).then_some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

pub fn tcp_probe(port_name: &str) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port_name.to_owned()),
            ..TCPSocketAction::default()
        }),
        initial_delay_seconds: Some(3),
        period_seconds: Some(5),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// An init container that holds the pod until `host:port` (from `address`) accepts
/// connections, so a component starts after what it needs instead of crash-looping
/// (kubeflow/pipelines#11355). It gives up after five minutes and says what it waited for.
pub fn wait_for(name: &str, address: Vec<EnvVar>) -> Container {
    const SCRIPT: &str = r#"tries=0
until nc -z -w 2 "$WAIT_HOST" "$WAIT_PORT"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "gave up: nothing answered on $WAIT_HOST:$WAIT_PORT for five minutes" >&2
    exit 1
  fi
  echo "waiting for $WAIT_HOST:$WAIT_PORT ($tries/60)"
  sleep 5
done
"#;
    Container {
        name: name.to_owned(),
        image: Some(crate::images::ALPINE.to_owned()),
        image_pull_policy: Some(PULL_POLICY.to_owned()),
        command: Some(strings(&["/bin/sh", "-ec"])),
        args: Some(vec![SCRIPT.to_owned()]),
        env: Some(address),
        resources: Some(resources("10m", "16Mi", Some(("100m", "64Mi")))),
        security_context: Some(restricted(Some(1000), None)),
        ..Container::default()
    }
}

/// Never pulled when present: a bundled image must not be fetched again, and none is `:latest`.
pub const PULL_POLICY: &str = "IfNotPresent";

/// How a Deployment replaces its pod: `Recreate` for those that own a ReadWriteOnce volume.
pub enum Rollout {
    Rolling,
    Recreate,
}

/// A one-replica Deployment whose pods carry `selector` (plus the common labels).
pub fn deployment(
    name: &str,
    selector: (&str, &str),
    rollout: Rollout,
    pod_labels: &[(&str, &str)],
    pod: PodSpec,
) -> Deployment {
    let mut template_labels = vec![selector];
    template_labels.extend_from_slice(pod_labels);
    Deployment {
        metadata: meta(name, &[selector]),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(string_map(&[selector])),
                ..LabelSelector::default()
            },
            strategy: match rollout {
                Rollout::Rolling => None,
                Rollout::Recreate => Some(DeploymentStrategy {
                    type_: Some("Recreate".to_owned()),
                    ..DeploymentStrategy::default()
                }),
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(common_labels(&template_labels)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// A ClusterIP Service for the pods labelled `selector`; ports are (name, port, target).
pub fn service(name: &str, selector: (&str, &str), list: &[(&str, i32, i32)]) -> Service {
    Service {
        metadata: meta(name, &[]),
        spec: Some(ServiceSpec {
            selector: Some(string_map(&[selector])),
            ports: Some(
                list.iter()
                    .map(|(port_name, port, target)| ServicePort {
                        name: (!port_name.is_empty()).then(|| (*port_name).to_owned()),
                        port: *port,
                        target_port: Some(IntOrString::Int(*target)),
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn service_account(name: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(name, &[]),
        ..ServiceAccount::default()
    }
}

pub fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

/// A rule on named objects only.
pub fn named_rule(group: &str, resource: &str, names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: Some(strings(names)),
        ..rule(&[group], &[resource], verbs)
    }
}

/// A service account with its role, bound by `binding_name`.
pub fn account_with_role(name: &str, role: Role, binding_name: &str) -> Vec<KubeObject> {
    let role_name = role
        .metadata
        .name
        .clone()
        .expect("roles are built with a name");
    vec![
        KubeObject::new(service_account(name)),
        KubeObject::new(role),
        KubeObject::new(role_binding(binding_name, &role_name, name)),
    ]
}

/// A ConfigMap as a volume, mounted read-only at `path`.
pub fn config_volume(name: &str, config_map: &str, path: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: name.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        read_only: Some(true),
        ..mount(name, path)
    };
    (volume, mount)
}

/// A claim as a volume, mounted read-write at `path`.
pub fn claim_volume(name: &str, claim: &str, path: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: name.to_owned(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_owned(),
            ..PersistentVolumeClaimVolumeSource::default()
        }),
        ..Volume::default()
    };
    (volume, mount(name, path))
}

pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

pub fn role(name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(name, &[]),
        rules: Some(rules),
    }
}

/// Binds `role` to a service account of the namespace.
pub fn role_binding(name: &str, role: &str, service_account: &str) -> RoleBinding {
    binding(
        name,
        role,
        Subject {
            kind: "ServiceAccount".to_owned(),
            name: service_account.to_owned(),
            namespace: Some(NAMESPACE.to_owned()),
            ..Subject::default()
        },
    )
}

pub fn binding(name: &str, role: &str, subject: Subject) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, &[]),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: role.to_owned(),
        },
        subjects: Some(vec![subject]),
    }
}

pub fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: meta(name, &[]),
        data: Some(string_map(data)),
        ..ConfigMap::default()
    }
}

pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: meta(name, &[]),
        string_data: Some(string_map(data)),
        ..Secret::default()
    }
}

/// A ReadWriteOnce claim; k3s's local-path provisioner backs it with a node directory and
/// ignores the size.
pub fn claim(name: &str, size: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(name, &[]),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(strings(&["ReadWriteOnce"])),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.to_owned()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
