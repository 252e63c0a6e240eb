//! One attempt of a container step: outputs cleared, GPUs and a parallelism slot taken, the
//! executor run, and how it ended classified as final or worth retrying.

use std::path::Path;
use std::time::Duration;

use kfbox_spec::ir::ComponentSpec;
use serde_json::{Map, Value};

use kfbox_gpu::{Admission, ProductSelector};
use kfbox_step::events::RunEvent;
use kfbox_step::{ExecutorError, Step, StepExit};

use super::context::{Artifacts, Run};
use super::outputs::collect_outputs;
use super::step_input::ExecutorInput;

pub(super) enum AttemptError {
    Canceled,
    Retriable(String),
    Final(String),
}

pub(super) fn backoff_delay(retry: &kfbox_spec::ir::RetryPolicy, attempt: u32) -> Duration {
    let parse = |s: &Option<String>, default: f64| -> f64 {
        s.as_deref()
            .and_then(|d| d.trim_end_matches('s').parse::<f64>().ok())
            .unwrap_or(default)
    };
    let base = parse(&retry.backoff_duration, 0.0);
    let cap = parse(&retry.backoff_max_duration, 3600.0);
    let factor = retry.backoff_factor.unwrap_or(2.0).max(1.0);
    let seconds = (base * factor.powi(attempt as i32 - 1)).min(cap).max(0.0);
    Duration::from_secs_f64(seconds)
}

pub(super) async fn run_attempt(
    run: &Run,
    step: &Step,
    input: &ExecutorInput<'_>,
    component: &ComponentSpec,
) -> Result<(Map<String, Value>, Artifacts), AttemptError> {
    let io = |path: &Path, e: std::io::Error| {
        AttemptError::Final(format!("preparing {}: {e}", path.display()))
    };
    // Stale outputs of a failed attempt must not pass for this attempt's.
    for (_, file) in &input.output_parameters {
        let _ = fs_err::remove_file(file);
        if let Some(dir) = file.parent() {
            fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
    }
    let _ = fs_err::remove_file(&input.output_file);
    for list in input.outputs.values() {
        for artifact in list {
            let path = Path::new(&artifact.uri);
            if let Some(dir) = path.parent() {
                fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
        }
    }
    for dir in [
        step.work_dir.as_path(),
        step.log_path.parent().unwrap_or(Path::new(".")),
    ] {
        fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut step = step.clone();
    let gpus = &run.options.gpus;
    let lease = match &step.resources.accelerator {
        None => None,
        Some(accelerator) => {
            // One machine with several kinds of GPU: a node selector on a GPU product label
            // chooses among them, as it chooses a node on a cluster.
            let product = component.executor_label.as_deref().and_then(|label| {
                ProductSelector::from_node_selector(&run.pipeline.platform.node_selector(label))
            });
            match gpus.admit(
                accelerator.count,
                accelerator.wants_nvidia(),
                &accelerator.describe(),
                product.as_ref(),
            ) {
                Admission::Refuse(e) => return Err(AttemptError::Final(e)),
                Admission::Without(warning) => {
                    warn(run, &step, warning);
                    None
                }
                // GPUs first, then a parallelism slot: a step waiting for a GPU must not hold
                // a slot that a CPU step could use.
                Admission::Wait {
                    count,
                    among,
                    warning,
                } => {
                    warn(run, &step, warning);
                    tokio::select! {
                        lease = gpus.slots.acquire(count, &among) => Some(lease),
                        _ = run.cancel.cancelled() => return Err(AttemptError::Canceled),
                    }
                }
            }
        }
    };
    if let Some(lease) = &lease {
        step.gpus = Some(lease.gpus.clone());
    } else if gpus.slots.exclusive() {
        // GPUs are slots: a step that asked for none sees none, as on a cluster.
        step.gpus = Some(Vec::new());
    }
    let permit = tokio::select! {
        permit = run.options.step_slots.acquire() => permit.expect("slots open"),
        _ = run.cancel.cancelled() => return Err(AttemptError::Canceled),
    };
    // `set_timeout`: past its deadline the step is stopped, as a pod past its
    // activeDeadlineSeconds is, and the attempt fails saying so.
    let deadline = component
        .executor_label
        .as_deref()
        .and_then(|label| run.pipeline.platform.active_deadline(label));
    let stop = run.cancel.child_token();
    let timer = deadline.map(|limit| {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            stop.cancel();
        })
    });
    let exit = run.executor.run(&step, &run.events, &stop).await;
    if let Some(timer) = timer {
        timer.abort();
    }
    drop(permit);
    drop(lease);
    if let (Some(limit), Ok(StepExit::Canceled)) = (deadline, &exit) {
        if !run.cancel.is_cancelled() {
            return Err(AttemptError::Retriable(format!(
                "the step ran past its deadline of {} s (set_timeout: activeDeadlineSeconds) and was stopped",
                limit.as_secs()
            )));
        }
    }
    match exit {
        Ok(StepExit::Exited(0)) => {
            let host_files = run.executor.shares_host_files(&step);
            collect_outputs(input, component, &run.options.run_dir, host_files)
                .map_err(AttemptError::Retriable)
        }
        Ok(StepExit::Canceled) => Err(AttemptError::Canceled),
        Ok(failed) => Err(AttemptError::Retriable(
            failed
                .failure(&step)
                .expect("only a success has no failure"),
        )),
        Err(e @ (ExecutorError::NeedsContainerRuntime { .. } | ExecutorError::Unrunnable(_))) => {
            Err(AttemptError::Final(e.to_string()))
        }
        Err(e) => Err(AttemptError::Retriable(kfbox_step::error_chain(&e))),
    }
}

/// A GPU admission's warning, naming the task.
fn warn(run: &Run, step: &Step, warning: Option<String>) {
    if let Some(warning) = warning {
        run.events.send(RunEvent::Warning(format!(
            "task `{}` {warning}",
            step.task_path
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfbox_spec::ir::RetryPolicy;

    #[test]
    fn backoff_grows_by_factor_and_stops_at_the_cap() {
        let retry = RetryPolicy {
            max_retry_count: 5,
            backoff_duration: Some("1s".into()),
            backoff_factor: Some(2.0),
            backoff_max_duration: Some("3s".into()),
        };
        assert_eq!(backoff_delay(&retry, 1), Duration::from_secs(1));
        assert_eq!(backoff_delay(&retry, 2), Duration::from_secs(2));
        assert_eq!(backoff_delay(&retry, 3), Duration::from_secs(3));
    }
}
