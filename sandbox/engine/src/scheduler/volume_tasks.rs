//! `kfp.kubernetes.CreatePVC` and `DeletePVC`: the tasks a cluster's driver runs itself
//! (`argostub/createpvc`, `argostub/deletepvc`), here against the namespace's volumes. Inputs
//! are checked as the driver checks them.

use kfbox_namespace::Claim;
use kfbox_spec::ir::TaskSpec;
use serde_json::{Map, Value};

use crate::ledger::Draft;
use crate::model::{TaskKind, TaskState};

use super::context::{ended_record, now, Inputs, Outcome, Run};

/// The images the compiler gives these tasks; no such image exists.
pub(super) const CREATE_PVC_IMAGE: &str = "argostub/createpvc";
pub(super) const DELETE_PVC_IMAGE: &str = "argostub/deletepvc";

const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

pub(super) fn run_volume_task(
    run: &Run,
    task: &TaskSpec,
    image: &str,
    path: &str,
    inputs: &Inputs,
    draft: Draft,
) -> Outcome {
    let started_at = now();
    let result = if image == CREATE_PVC_IMAGE {
        create_pvc(run, inputs)
            .map(|name| Map::from_iter([("name".to_owned(), Value::String(name))]))
    } else {
        delete_pvc(run, inputs).map(|()| Map::new())
    };
    let mut outcome = match result {
        Ok(parameters) => Outcome {
            parameters,
            ..Outcome::empty(TaskState::Succeeded, None)
        },
        Err(e) => Outcome::empty(TaskState::Failed, Some(e)),
    };
    let record = ended_record(
        task,
        path,
        TaskKind::Container,
        &outcome,
        Some(started_at),
        1,
    );
    run.record(draft, record, &mut outcome, Vec::new());
    outcome
}

fn text<'a>(inputs: &'a Inputs, name: &str) -> Option<&'a str> {
    inputs
        .parameters
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn create_pvc(run: &Run, inputs: &Inputs) -> Result<String, String> {
    let fail = |why: String| format!("failed to create pvc: {why}");
    let access_modes: Vec<String> = match inputs.parameters.get("access_modes") {
        Some(Value::Array(modes)) if !modes.is_empty() => modes
            .iter()
            .map(|mode| match mode.as_str() {
                Some(mode) if ACCESS_MODES.contains(&mode) => Ok(mode.to_owned()),
                _ => Err(fail(format!(
                    "invalid access mode {mode}; use one of {}",
                    ACCESS_MODES.join(", ")
                ))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(fail("access_modes must be a non-empty list".into())),
    };
    let name = match (text(inputs, "pvc_name"), text(inputs, "pvc_name_suffix")) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "at most one of pvc_name and pvc_name_suffix can be non-empty".into(),
            ))
        }
        // The driver's names: a fresh UUID, followed by the suffix when one is given.
        (None, Some(suffix)) => format!("{}{suffix}", uuid::Uuid::new_v4()),
        (Some(name), None) => name.to_owned(),
        (None, None) => uuid::Uuid::new_v4().to_string(),
    };
    let size =
        text(inputs, "size").ok_or_else(|| fail("size must be a non-empty string".into()))?;
    if kfbox_resources::parse_quantity(size).is_none() {
        return Err(fail(format!(
            "invalid size `{size}` (a quantity such as 5Gi)"
        )));
    }
    let claim = Claim {
        name: name.clone(),
        size: Some(size.to_owned()),
        access_modes,
        storage_class: text(inputs, "storage_class_name").map(str::to_owned),
        created_at: now(),
        created_by_run: Some(run.options.run_id.clone()),
    };
    run.options
        .namespace
        .volumes()
        .create(&claim)
        .map_err(|e| fail(e.to_string()))?;
    Ok(name)
}

fn delete_pvc(run: &Run, inputs: &Inputs) -> Result<(), String> {
    let name = text(inputs, "pvc_name")
        .ok_or_else(|| "failed to delete pvc: pvc_name must be a non-empty string".to_owned())?;
    match run.options.namespace.volumes().delete(name) {
        Ok(true) => Ok(()),
        // As deleting a missing PVC: not found.
        Ok(false) => Err(format!("failed to delete pvc: volume `{name}` not found")),
        Err(e) => Err(format!("failed to delete pvc: {e}")),
    }
}
