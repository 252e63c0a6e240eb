//! The API's JSON: resources as the v2beta1 API writes them (snake_case proto field names,
//! enum names, RFC 3339 times), built from the store's rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat};
use kfbox_store::{
    props, ApiRunRow, ExecutionRow, ExperimentRow, PipelineRow, PipelineVersionRow, RecurringRunRow,
};
use serde_json::{json, Map, Value};

/// Milliseconds since the epoch as RFC 3339; unset times are the epoch, as the backend writes
/// them.
pub fn time(ms: Option<i64>) -> String {
    DateTime::from_timestamp_millis(ms.unwrap_or(0))
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn experiment(row: &ExperimentRow) -> Value {
    json!({
        "experiment_id": row.experiment_id,
        "display_name": row.display_name,
        "description": row.description,
        "created_at": time(Some(row.created_at)),
        "namespace": "",
        "storage_state": row.storage_state,
        "last_run_created_at": time(row.last_run_created_at),
    })
}

pub fn pipeline(row: &PipelineRow) -> Value {
    json!({
        "pipeline_id": row.pipeline_id,
        "display_name": row.display_name,
        "name": row.name,
        "description": row.description,
        "created_at": time(Some(row.created_at)),
        "namespace": "",
    })
}

pub fn pipeline_version(row: &PipelineVersionRow) -> Value {
    json!({
        "pipeline_id": row.pipeline_id,
        "pipeline_version_id": row.pipeline_version_id,
        "display_name": row.display_name,
        "name": row.name,
        "description": row.description,
        "created_at": time(Some(row.created_at)),
        "pipeline_spec": serde_json::from_str::<Value>(&row.pipeline_spec).unwrap_or(Value::Null),
    })
}

/// A run. `canceling`: a terminate was asked and the run has not ended yet. `executions`:
/// the run's executions for `run_details` (only `get` sends them).
pub fn run(
    row: &ApiRunRow,
    canceling: bool,
    spec: Option<&str>,
    executions: Option<&[ExecutionRow]>,
) -> Value {
    let run = &row.run;
    let state = match run.state.as_str() {
        "RUNNING" if canceling => "CANCELING",
        other => other,
    };
    let mut out = json!({
        "experiment_id": row.fields.experiment_id.clone().unwrap_or_default(),
        "run_id": run.run_id,
        "display_name": run.display_name,
        // Not in the upstream resource (its UI reads the spec); kfbox's lists show it.
        "pipeline_name": run.pipeline_name,
        "storage_state": row.storage_state,
        "description": row.fields.description,
        "runtime_config": serde_json::from_str::<Value>(&row.fields.runtime_config)
            .unwrap_or_else(|_| json!({})),
        "service_account": row.fields.service_account,
        "created_at": time(Some(run.created_at)),
        "scheduled_at": time(Some(run.created_at)),
        "finished_at": time(run.finished_at),
        "state": state,
    });
    let object = out.as_object_mut().expect("an object");
    if let Some(version) = &row.fields.pipeline_version_id {
        object.insert("pipeline_version_id".into(), json!(version));
        object.insert(
            "pipeline_version_reference".into(),
            json!({
                "pipeline_id": row.fields.pipeline_id.clone().unwrap_or_default(),
                "pipeline_version_id": version,
            }),
        );
    }
    if let Some(spec) = spec.filter(|s| !s.is_empty()) {
        if let Ok(spec) = serde_json::from_str::<Value>(spec) {
            object.insert("pipeline_spec".into(), spec);
        }
    }
    if let Some(recurring) = &row.fields.recurring_run_id {
        object.insert("recurring_run_id".into(), json!(recurring));
    }
    if let Some(error) = &run.error {
        object.insert("error".into(), json!({ "code": 2, "message": error }));
    }
    let mut history =
        vec![json!({ "update_time": time(Some(run.created_at)), "state": "RUNNING" })];
    if let Some(finished) = run.finished_at {
        history.push(json!({ "update_time": time(Some(finished)), "state": run.state }));
    }
    object.insert("state_history".into(), Value::Array(history));
    if let Some(executions) = executions {
        object.insert(
            "run_details".into(),
            json!({
                "pipeline_context_id": "",
                "pipeline_run_context_id": run.context_id.to_string(),
                "task_details": task_details(&run.run_id, executions),
            }),
        );
    }
    out
}

/// The API's task state for kfbox's finer task state.
fn task_state(execution: &ExecutionRow) -> &'static str {
    match execution.text(props::STATE).unwrap_or(execution.state) {
        "RUNNING" => "RUNNING",
        "SUCCEEDED" | "COMPLETE" | "CACHED" => "SUCCEEDED",
        "SKIPPED" => "SKIPPED",
        "CANCELED" => "CANCELED",
        "FAILED" => "FAILED",
        _ => "PENDING",
    }
}

/// One entry per task: the newest execution of each task path (a retried run has several).
pub fn latest_per_task(executions: &[ExecutionRow]) -> Vec<&ExecutionRow> {
    let mut newest: BTreeMap<&str, &ExecutionRow> = BTreeMap::new();
    for execution in executions {
        let path = execution.text(props::PATH).unwrap_or_default();
        match newest.get(path) {
            Some(seen) if seen.id > execution.id => {}
            _ => {
                newest.insert(path, execution);
            }
        }
    }
    let mut list: Vec<&ExecutionRow> = newest.into_values().collect();
    list.sort_by_key(|e| e.id);
    list
}

fn task_details(run_id: &str, executions: &[ExecutionRow]) -> Vec<Value> {
    let tasks = latest_per_task(executions);
    let mut children: HashMap<i64, Vec<Value>> = HashMap::new();
    for task in &tasks {
        if let Some(parent) = task.int(props::PARENT_DAG_ID) {
            children
                .entry(parent)
                .or_default()
                .push(json!({ "task_id": task.id.to_string() }));
        }
    }
    let artifacts = |events: &[(String, i64)]| -> Value {
        let mut by_name: Map<String, Value> = Map::new();
        for (name, id) in events {
            let entry = by_name
                .entry(name.clone())
                .or_insert_with(|| json!({ "artifact_ids": [] }));
            if let Some(list) = entry["artifact_ids"].as_array_mut() {
                list.push(json!(id.to_string()));
            }
        }
        Value::Object(by_name)
    };
    tasks
        .iter()
        .map(|task| {
            let name = task
                .text(props::TASK_NAME)
                .filter(|n| !n.is_empty())
                .or_else(|| task.text(props::DISPLAY_NAME))
                .unwrap_or_default();
            let path = task.text(props::PATH).unwrap_or_default();
            let mut detail = json!({
                "run_id": run_id,
                "task_id": task.id.to_string(),
                "display_name": if path.is_empty() { name } else { path },
                "create_time": task.text(props::STARTED_AT).or(task.text(props::FINISHED_AT)),
                "start_time": task.text(props::STARTED_AT),
                "end_time": task.text(props::FINISHED_AT),
                "state": task_state(task),
                "execution_id": task.id.to_string(),
                "inputs": artifacts(&task.inputs),
                "outputs": artifacts(&task.outputs),
                "parent_task_id": task.int(props::PARENT_DAG_ID).map(|p| p.to_string()),
                "child_tasks": children.remove(&task.id).unwrap_or_default(),
                "pod_name": "",
            });
            let object = detail.as_object_mut().expect("an object");
            object.retain(|_, v| !v.is_null());
            if let Some(error) = task.text(props::ERROR) {
                object.insert("error".into(), json!({ "code": 2, "message": error }));
            }
            detail
        })
        .collect()
}

pub fn recurring_run(row: &RecurringRunRow) -> Value {
    let mut body: Value = serde_json::from_str(&row.body).unwrap_or_else(|_| json!({}));
    let enabled = row.mode == "ENABLE";
    if let Some(object) = body.as_object_mut() {
        object.insert("recurring_run_id".into(), json!(row.recurring_run_id));
        object.insert("display_name".into(), json!(row.display_name));
        object.insert("mode".into(), json!(row.mode));
        object.insert(
            "status".into(),
            json!(if enabled { "ENABLED" } else { "DISABLED" }),
        );
        object.insert("created_at".into(), json!(time(Some(row.created_at))));
        object.insert("updated_at".into(), json!(time(Some(row.updated_at))));
        object.insert(
            "experiment_id".into(),
            json!(row.experiment_id.clone().unwrap_or_default()),
        );
        object.insert("namespace".into(), json!(""));
    }
    body
}
