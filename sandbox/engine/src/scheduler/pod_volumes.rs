//! A step's volumes and environment from the namespace (`mount_pvc`, `use_secret_as_*`,
//! `use_config_map_as_*`, `empty_dir_mount`, `add_ephemeral_volume`): names resolved when the
//! task is about to start ([`name_volumes`]), then the claims' directories found, the objects
//! read and their files written ([`prepare`]). Whatever keeps a pod from starting on a
//! cluster (a missing claim, a missing required Secret or key) fails the task before it starts.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use kfbox_namespace::NamespaceError;
use kfbox_spec::ir::TaskSpec;
use kfbox_spec::pod_volumes::{NameSource, ObjectSource, ObjectTarget, ObjectUse, ScratchMount};
use kfbox_step::{VolumeMount, VolumeSource};
use serde_json::Value;

use super::context::{Inputs, Outcome, Run};
use super::inputs::source_value;

/// The executor's volume settings with their names resolved.
#[derive(Debug, Default)]
pub(super) struct NamedVolumes {
    /// (claim, mount path)
    pvcs: Vec<(String, String)>,
    objects: Vec<(ObjectUse, String)>,
    scratch: Vec<ScratchMount>,
}

/// What a step gets from its volume settings.
#[derive(Debug, Default)]
pub(super) struct PodMounts {
    pub(super) volumes: Vec<VolumeMount>,
    pub(super) env: Vec<(String, String)>,
    /// The values of the Secrets it reads, kept out of its log.
    pub(super) masked: Vec<String>,
}

impl NamedVolumes {
    /// The claims the step mounts, for its cache fingerprint.
    pub(super) fn pvc_names(&self) -> Vec<String> {
        self.pvcs.iter().map(|(name, _)| name.clone()).collect()
    }
}

pub(super) fn name_volumes(
    run: &Run,
    task: &TaskSpec,
    label: &str,
    scope: &Inputs,
    siblings: &HashMap<String, Outcome>,
) -> Result<NamedVolumes, String> {
    let volumes = run.pipeline.platform.pod_volumes(label)?;
    // None: an optional setting whose name is not given (an optional pipeline input left
    // out), which the driver leaves out of the pod.
    let name_of =
        |source: &NameSource, optional: bool, what: String| -> Result<Option<String>, String> {
            match source_value(run, task, source, scope, siblings, optional) {
                Ok(Some(Value::String(name))) if !name.is_empty() => Ok(Some(name)),
                Ok(None) if optional => Ok(None),
                Ok(Some(Value::String(_))) if optional => Ok(None),
                Ok(other) => Err(format!(
                    "{what}: the name is {}, not a name",
                    other.map_or_else(|| "missing".to_owned(), |v| v.to_string())
                )),
                Err(e) => Err(format!("{what}: {e}")),
            }
        };
    let mut named = NamedVolumes::default();
    for pvc in volumes.pvcs {
        if let Some(name) = name_of(&pvc.name, false, format!("mount_pvc at {}", pvc.mount_path))? {
            named.pvcs.push((name, pvc.mount_path));
        }
    }
    for object in volumes.objects {
        let what = format!("use_{}_as_{}", object.source.helper(), target_word(&object));
        if let Some(name) = name_of(&object.name, object.optional, what)? {
            named.objects.push((object, name));
        }
    }
    named.scratch = volumes.scratch;
    Ok(named)
}

fn target_word(object: &ObjectUse) -> &'static str {
    match object.target {
        ObjectTarget::Env(_) => "env",
        ObjectTarget::Volume { .. } => "volume",
    }
}

/// Where a task's Secret and ConfigMap files and scratch space live while it runs.
pub(super) fn private_dir(task_dir: &Path) -> PathBuf {
    task_dir.join("pod-volumes")
}

/// Find, read and write what `named` asks for; files go under [`private_dir`], which
/// [`clean_up`] removes when the task ends.
pub(super) fn prepare(
    run: &Run,
    named: &NamedVolumes,
    task_dir: &Path,
) -> Result<PodMounts, String> {
    let mut mounts = PodMounts::default();
    let private = private_dir(task_dir);
    let mut targets: Vec<String> = Vec::new();
    let mut target = |path: &str, what: &dyn Fn() -> String| -> Result<PathBuf, String> {
        let checked = mount_target(path).map_err(|e| format!("{}: {e}", what()))?;
        if targets.iter().any(|t| t == path) {
            return Err(format!("{}: {path} is mounted twice", what()));
        }
        targets.push(path.to_owned());
        Ok(checked)
    };
    let volumes = run.options.namespace.volumes();
    for (name, mount_path) in &named.pvcs {
        let what = || format!("mount_pvc `{name}` at {mount_path}");
        let target = target(mount_path, &what)?;
        let dir = volumes
            .data_dir(name)
            .map_err(|e| format!("{}: {e}", what()))?;
        mounts.volumes.push(VolumeMount {
            target,
            source: VolumeSource::Dir(dir),
            read_only: false,
        });
    }
    for (index, (object, name)) in named.objects.iter().enumerate() {
        let what = || {
            format!(
                "use_{}_as_{} `{name}`",
                object.source.helper(),
                target_word(object)
            )
        };
        let objects = match object.source {
            ObjectSource::Secret => run.options.namespace.secrets(),
            ObjectSource::ConfigMap => run.options.namespace.config_maps(),
        };
        let data = match objects.read(name) {
            Ok(data) => data,
            // Kubernetes starts the pod without an optional object.
            Err(NamespaceError::NotFound { .. }) if object.optional => continue,
            Err(e) => return Err(format!("{}: {e}", what())),
        };
        let secret = object.source == ObjectSource::Secret;
        match &object.target {
            ObjectTarget::Env(pairs) => {
                for (key, variable) in pairs {
                    match data.get(key) {
                        Some(value) => {
                            if secret {
                                mounts.masked.push(value.clone());
                            }
                            mounts.env.push((variable.clone(), value.clone()));
                        }
                        None if object.optional => {}
                        None => {
                            return Err(format!(
                                "{}: it has no key `{key}` (for {variable}); its keys: {}",
                                what(),
                                data.keys().cloned().collect::<Vec<_>>().join(", ")
                            ))
                        }
                    }
                }
            }
            ObjectTarget::Volume { mount_path } => {
                let target = target(mount_path, &what)?;
                let dir = private.join(format!("object-{index}"));
                write_object_files(&dir, &data).map_err(|e| format!("{}: {e}", what()))?;
                if secret {
                    mounts.masked.extend(data.values().cloned());
                }
                mounts.volumes.push(VolumeMount {
                    target,
                    source: VolumeSource::Dir(dir),
                    read_only: true,
                });
            }
        }
    }
    for (index, scratch) in named.scratch.iter().enumerate() {
        let what = || format!("scratch volume at {}", scratch.mount_path);
        let target = target(&scratch.mount_path, &what)?;
        let dir = private.join(format!("scratch-{index}"));
        make_shared_dir(&dir, 0o777).map_err(|e| format!("{}: {e}", what()))?;
        let size_limit = match &scratch.size_limit {
            Some(text) => Some(
                kfbox_resources::parse_quantity(text)
                    .filter(|bytes| *bytes > 0.0)
                    .ok_or_else(|| format!("{}: size limit `{text}` is not a quantity", what()))?
                    as u64,
            ),
            None => None,
        };
        let source = if scratch.memory {
            VolumeSource::Memory { dir, size_limit }
        } else {
            VolumeSource::Dir(dir)
        };
        mounts.volumes.push(VolumeMount {
            target,
            source,
            read_only: false,
        });
    }
    // Longest values first, so that one value inside another is masked whole.
    mounts
        .masked
        .sort_by_key(|value| std::cmp::Reverse(value.len()));
    mounts.masked.dedup();
    Ok(mounts)
}

/// Remove what [`prepare`] wrote for the task: Secrets' files last no longer than the pod.
pub(super) fn clean_up(task_dir: &Path) {
    if let Err(e) = kfbox_paths::remove_under(task_dir, &private_dir(task_dir)) {
        tracing::warn!("cannot remove a task's volume files: {e}");
    }
}

/// A mount path as Kubernetes takes it: absolute, without `.` or `..`, not `/` itself.
fn mount_target(path: &str) -> Result<PathBuf, String> {
    let parsed = Path::new(path);
    let plain = parsed
        .components()
        .skip(1)
        .all(|c| matches!(c, Component::Normal(_)));
    if !parsed.is_absolute() || !plain || parsed.components().count() < 2 || path.contains(':') {
        return Err(format!(
            "mount path `{}` must be an absolute path below / without `.`, `..` or `:`",
            path.escape_default()
        ));
    }
    Ok(parsed.to_owned())
}

fn make_shared_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    fs_err::create_dir_all(dir)?;
    // Readable (or writable) by the user a step runs as (set_security_context), as a pod's
    // volumes are; the task directory above stays owner-only.
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// One file per key, as Kubernetes projects a Secret or ConfigMap.
fn write_object_files(
    dir: &Path,
    data: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<()> {
    make_shared_dir(dir, 0o755)?;
    for (key, value) in data {
        // Keys were checked when the object was set; a hand-edited file is checked again.
        let path = kfbox_paths::join_name(dir, key)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        fs_err::write(&path, value)?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}
