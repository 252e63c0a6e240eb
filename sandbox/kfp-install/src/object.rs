//! One object of the install, typed while it is built and erased to JSON for rendering and
//! server-side apply, which sends every object through the same dynamic client.

use std::any::TypeId;

use kube::core::ApiResource;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct KubeObject {
    /// The API group, version, kind and plural the object is sent to.
    pub resource: ApiResource,
    /// The namespace it lives in; none for cluster-wide objects.
    pub namespace: Option<String>,
    pub name: String,
    /// The object as the API server receives it, `apiVersion` and `kind` included.
    pub body: serde_json::Value,
}

impl KubeObject {
    pub fn new<K>(object: K) -> Self
    where
        K: kube::Resource<DynamicType = ()> + k8s_openapi::Resource + Serialize,
        <K as k8s_openapi::Resource>::Scope: 'static,
    {
        let name = object
            .meta()
            .name
            .clone()
            .expect("every object of the install is built with a name");
        let body = serde_json::to_value(&object)
            .expect("typed Kubernetes objects always serialize to JSON");
        let namespaced = TypeId::of::<<K as k8s_openapi::Resource>::Scope>()
            == TypeId::of::<k8s_openapi::NamespaceResourceScope>();
        let namespace = object.meta().namespace.clone();
        assert_eq!(
            namespaced,
            namespace.is_some(),
            "{name}: a namespaced object is built with its namespace, a cluster-wide one without"
        );
        Self {
            resource: ApiResource::erase::<K>(&()),
            namespace,
            name,
            body,
        }
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// `Kind/name`, as kubectl names an object.
    pub fn label(&self) -> String {
        format!("{}/{}", self.resource.kind, self.name)
    }
}

/// The order objects are applied in: what others refer to first (the namespace, the CRDs,
/// the accounts and configuration pods mount), the workloads last.
pub(crate) fn apply_rank(kind: &str) -> usize {
    const ORDER: [&str; 13] = [
        "Namespace",
        "CustomResourceDefinition",
        "PriorityClass",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Service",
        "NetworkPolicy",
        "Deployment",
        "DaemonSet",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

/// The objects as one YAML stream (`kubectl apply -f -` reads it).
pub fn to_yaml(objects: &[KubeObject]) -> String {
    objects
        .iter()
        .map(|object| {
            let text =
                serde_yaml::to_string(&object.body).expect("JSON values always serialize to YAML");
            format!("---\n{text}")
        })
        .collect()
}
