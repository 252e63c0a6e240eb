//! `kfbox volumes`, `kfbox secrets`, `kfbox configmaps`.

use std::collections::BTreeMap;

use kfbox_cli::{from_file_entry, ObjectsArgs, ObjectsCommand, VolumesArgs, VolumesCommand};
use kfbox_namespace::{Claim, NamespaceError, ObjectKind, Objects};

use crate::exit::{ExitStatus, UsageError};
use crate::human;
use crate::json::{ObjectKeys, ObjectList, VolumeInfo, VolumeList};
use crate::printer::Printer;
use crate::settings::GlobalSettings;

/// Input the user can fix (a bad name or key, a missing or existing object) exits 2.
fn usage(error: NamespaceError) -> anyhow::Error {
    match error {
        NamespaceError::BadName { .. }
        | NamespaceError::Invalid { .. }
        | NamespaceError::Exists { .. }
        | NamespaceError::NotFound { .. } => UsageError::all([anyhow::Error::new(error)]).into(),
        other => other.into(),
    }
}

pub fn volumes(
    settings: &GlobalSettings,
    printer: &Printer,
    args: VolumesArgs,
) -> anyhow::Result<ExitStatus> {
    let volumes = settings.home.namespace().volumes();
    match args.command {
        VolumesCommand::List { json } => {
            let listed = volumes.list()?;
            if json {
                let list = VolumeList {
                    volumes: listed
                        .into_iter()
                        .map(|v| VolumeInfo {
                            name: v.claim.name,
                            size: v.claim.size,
                            access_modes: v.claim.access_modes,
                            storage_class: v.claim.storage_class,
                            created_at: v.claim.created_at,
                            created_by_run: v.claim.created_by_run,
                            used_bytes: v.used_bytes,
                            path: v.path.display().to_string(),
                        })
                        .collect(),
                };
                printer.data(&serde_json::to_string_pretty(&list)?);
            } else if listed.is_empty() {
                printer.note(
                    "No volumes. CreatePVC tasks make them; so does `kfbox volumes create NAME`.",
                );
            } else {
                let mut out = format!(
                    "{:<40}  {:>6}  {:>9}  {:<8}  {}\n",
                    "NAME", "SIZE", "USED", "RUN", "ACCESS MODES"
                );
                for v in listed {
                    let run = v.claim.created_by_run.unwrap_or_default();
                    out.push_str(&format!(
                        "{:<40}  {:>6}  {:>9}  {:<8}  {}\n",
                        human::fit(&v.claim.name, 40),
                        v.claim.size.unwrap_or_default(),
                        human::bytes(v.used_bytes),
                        &run[..run.len().min(8)],
                        v.claim.access_modes.join(",")
                    ));
                }
                printer.data(out.trim_end());
            }
        }
        VolumesCommand::Create {
            name,
            size,
            access_modes,
            storage_class,
        } => {
            if kfbox_resources::parse_quantity(&size).is_none() {
                return Err(UsageError::all([anyhow::anyhow!(
                    "--size `{size}` is not a quantity (e.g. 5Gi)"
                )])
                .into());
            }
            let claim = Claim {
                name: name.clone(),
                size: Some(size),
                access_modes,
                storage_class,
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                created_by_run: None,
            };
            let path = volumes.create(&claim).map_err(usage)?;
            printer.data(&format!("Created volume {name} ({})", path.display()));
        }
        VolumesCommand::Delete { names } => {
            let mut missing = Vec::new();
            for name in names {
                if volumes.delete(&name).map_err(usage)? {
                    printer.data(&format!("Deleted volume {name}"));
                } else {
                    missing.push(anyhow::anyhow!(
                        "no volume `{name}`; `kfbox volumes list` shows them"
                    ));
                }
            }
            if !missing.is_empty() {
                return Err(UsageError::all(missing).into());
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub fn objects(
    settings: &GlobalSettings,
    printer: &Printer,
    kind: ObjectKind,
    args: ObjectsArgs,
) -> anyhow::Result<ExitStatus> {
    let namespace = settings.home.namespace();
    let objects: Objects = match kind {
        ObjectKind::Secret => namespace.secrets(),
        ObjectKind::ConfigMap => namespace.config_maps(),
    };
    let noun = kind.noun();
    match args.command {
        ObjectsCommand::Set {
            name,
            entries,
            from_file,
        } => {
            let mut data = BTreeMap::new();
            let mut problems = Vec::new();
            for entry in &entries {
                match entry.split_once('=') {
                    Some((key, value)) => {
                        data.insert(key.to_owned(), value.to_owned());
                    }
                    // The entry may be a value typed in the wrong place: never echo it.
                    None => problems.push(anyhow::anyhow!(
                        "an entry is not KEY=VALUE (use --from-file KEY=PATH for a file)"
                    )),
                }
            }
            for entry in &from_file {
                let (key, path) = from_file_entry(entry);
                match fs_err::read_to_string(&path) {
                    Ok(value) => {
                        data.insert(key, value);
                    }
                    Err(e) => problems.push(anyhow::Error::new(e).context(format!(
                        "--from-file {entry}: cannot read the file (values must be UTF-8 text)"
                    ))),
                }
            }
            if data.is_empty() && problems.is_empty() {
                problems.push(anyhow::anyhow!(
                    "give KEY=VALUE pairs or --from-file [KEY=]PATH"
                ));
            }
            if !problems.is_empty() {
                return Err(UsageError::all(problems).into());
            }
            let keys: Vec<String> = data.keys().cloned().collect();
            objects.set(&name, data).map_err(usage)?;
            printer.data(&format!("Set {noun} {name}: {}", keys.join(", ")));
        }
        ObjectsCommand::List { json } => {
            let listed = objects.list()?;
            if json {
                let list = ObjectList {
                    objects: listed
                        .into_iter()
                        .map(|(name, keys)| ObjectKeys { name, keys })
                        .collect(),
                };
                printer.data(&serde_json::to_string_pretty(&list)?);
            } else if listed.is_empty() {
                printer.note(&format!(
                    "No {noun}s. Make one with `kfbox {} set NAME KEY=VALUE`.",
                    kind.command()
                ));
            } else {
                let mut out = format!("{:<40}  {}\n", "NAME", "KEYS");
                for (name, keys) in listed {
                    out.push_str(&format!(
                        "{:<40}  {}\n",
                        human::fit(&name, 40),
                        keys.join(", ")
                    ));
                }
                printer.data(out.trim_end());
            }
        }
        ObjectsCommand::Delete { names } => {
            let mut missing = Vec::new();
            for name in names {
                if objects.delete(&name).map_err(usage)? {
                    printer.data(&format!("Deleted {noun} {name}"));
                } else {
                    missing.push(anyhow::anyhow!(
                        "no {noun} `{name}`; `kfbox {} list` shows them",
                        kind.command()
                    ));
                }
            }
            if !missing.is_empty() {
                return Err(UsageError::all(missing).into());
            }
        }
    }
    Ok(ExitStatus::Success)
}
