//! Sending the install to the cluster: one server-side apply per object, as kfbox's field
//! manager, so a second `kfbox cluster up` updates in place and fields others set survive.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::error::InstallError;
use crate::object::KubeObject;

/// The field manager the API server records for what kfbox set.
pub const FIELD_MANAGER: &str = "kfbox";

/// A client for the cluster a kubeconfig (as `kfbox cluster up` writes it) points at.
pub async fn client(kubeconfig: &str) -> Result<Client, InstallError> {
    let parsed =
        Kubeconfig::from_yaml(kubeconfig).map_err(|e| InstallError::Kubeconfig(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| InstallError::Kubeconfig(e.to_string()))?;
    Client::try_from(config).map_err(|e| InstallError::Kubeconfig(e.to_string()))
}

fn api(client: &Client, object: &KubeObject) -> Api<DynamicObject> {
    match &object.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &object.resource),
        None => Api::all_with(client.clone(), &object.resource),
    }
}

/// Applies each object in order, calling `applied` after each one. Forced: kfbox owns the
/// fields it sets, even where an earlier `kubectl apply` set them.
pub async fn apply(
    client: &Client,
    objects: &[KubeObject],
    mut applied: impl FnMut(&KubeObject),
) -> Result<(), InstallError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        api(client, object)
            .patch(&object.name, &params, &Patch::Apply(&object.body))
            .await
            .map_err(|source| InstallError::Apply {
                object: object.label(),
                source,
            })?;
        applied(object);
    }
    Ok(())
}
