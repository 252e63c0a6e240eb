//! `kfbox artifacts list|get` and `kfbox lineage`.

use kfbox_cli::{ArtifactArg, ArtifactsCommand, ArtifactsListArgs, LineageArgs};
use kfbox_engine::recorded::execution_state;
use kfbox_store::{props, ArtifactRow, ExecutionRow, LineageStep, RunSelector, Store};
use serde_json::Value;

use crate::exit::ExitStatus;
use crate::human;
use crate::json::{ArtifactList, ArtifactListing, ExecutionListing, LineageReport};
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub fn artifacts(
    settings: &GlobalSettings,
    printer: &Printer,
    command: ArtifactsCommand,
) -> anyhow::Result<ExitStatus> {
    let store = settings.open_store_for_reading(printer)?;
    match command {
        ArtifactsCommand::List(args) => list(&store, printer, args),
        ArtifactsCommand::Get(args) => get(&store, printer, args),
    }
}

/// The type without the `system.` prefix every KFP type carries.
fn short_type(type_name: &str) -> &str {
    type_name.strip_prefix("system.").unwrap_or(type_name)
}

fn short_id(run_id: Option<&str>) -> &str {
    run_id.map_or("", |r| &r[..r.len().min(8)])
}

fn listing(a: &ArtifactRow) -> ArtifactListing {
    ArtifactListing {
        id: a.id,
        type_name: a.type_name.clone(),
        name: a.display_name().to_owned(),
        uri: a.uri.clone(),
        run_id: a.run_id.clone(),
        created_at: human::rfc3339(a.created_at),
        metadata: a.metadata.clone(),
    }
}

fn list(store: &Store, printer: &Printer, args: ArtifactsListArgs) -> anyhow::Result<ExitStatus> {
    let run = args
        .run
        .map(|r| store.find_run(&RunSelector(r)))
        .transpose()?;
    let found = store.list_artifacts(run.as_ref(), args.limit as usize)?;
    if args.json {
        let list = ArtifactList {
            artifacts: found.iter().map(listing).collect(),
        };
        printer.data(&serde_json::to_string_pretty(&list)?);
        return Ok(ExitStatus::Success);
    }
    if found.is_empty() {
        printer.note("No artifacts recorded.");
        return Ok(ExitStatus::Success);
    }
    let now = chrono::Utc::now();
    let mut out = format!(
        "{:>6}  {:<21}  {:<20}  {:<8}  {}\n",
        "ID", "TYPE", "NAME", "RUN", "CREATED"
    );
    for a in &found {
        out.push_str(&format!(
            "{:>6}  {:<21}  {:<20}  {:<8}  {}\n",
            a.id,
            human::fit(short_type(&a.type_name), 21),
            human::fit(a.display_name(), 20),
            short_id(a.run_id.as_deref()),
            human::ago(a.created_at, now)
        ));
    }
    printer.data(out.trim_end());
    Ok(ExitStatus::Success)
}

fn get(store: &Store, printer: &Printer, args: ArtifactArg) -> anyhow::Result<ExitStatus> {
    let lineage = store.lineage(args.id)?;
    let a = &lineage.artifact;
    let producer = lineage.producers.first();
    if args.json {
        let detail = listing(a).with_producer(producer.map(execution));
        printer.data(&serde_json::to_string_pretty(&detail)?);
        return Ok(ExitStatus::Success);
    }
    let mut out = format!(
        "Artifact {}  {}  {}\n",
        a.id,
        human::shown(&a.type_name),
        human::shown(a.display_name())
    );
    out.push_str(&format!("  uri:      {}\n", human::shown(&a.uri)));
    out.push_str(&format!("  created:  {}\n", human::rfc3339(a.created_at)));
    if let Some(step) = producer {
        out.push_str(&format!("  produced by:\n    {}\n", describe(step)));
    }
    let metadata: Vec<(&String, &Value)> = a
        .metadata
        .iter()
        .filter(|(k, _)| *k != props::DISPLAY_NAME && *k != props::STORE_SESSION_INFO)
        .collect();
    if !metadata.is_empty() {
        out.push_str("  metadata:\n");
        for (key, value) in metadata {
            out.push_str(&format!("    {} = {value}\n", human::shown(key)));
        }
    }
    printer.data(out.trim_end());
    Ok(ExitStatus::Success)
}

fn task_path(e: &ExecutionRow) -> &str {
    e.text(props::PATH).unwrap_or_default()
}

fn execution(step: &LineageStep) -> ExecutionListing {
    let e = &step.execution;
    ExecutionListing {
        execution_id: e.id,
        type_name: e.type_name.clone(),
        state: execution_state(e).as_str().to_owned(),
        run_id: e.run_id.clone(),
        task: task_path(e).to_owned(),
        used_as: step.name.clone(),
        cached_execution_id: e.text(props::CACHED_EXECUTION_ID).map(str::to_owned),
    }
}

/// One execution as a row of at most 74 columns: run, task path, the name it used, execution
/// id and state. The root execution (a run's own `--artifact` inputs) shows as `(pipeline)`;
/// executions written by other MLMD clients show their type instead of a run and task.
fn describe(step: &LineageStep) -> String {
    let e = &step.execution;
    let (run, task) = match (e.text(props::PATH), e.run_id.as_deref()) {
        (Some(""), Some(run)) => (short_id(Some(run)).to_owned(), "(pipeline)".to_owned()),
        (Some(path), Some(run)) => (short_id(Some(run)).to_owned(), path.to_owned()),
        _ => ("-".to_owned(), e.type_name.clone()),
    };
    format!(
        "run {run:<8}  {:<26}  {:<12}  #{} {}",
        human::fit_left(&task, 26),
        human::fit(&step.name, 12),
        e.id,
        execution_state(e).as_str()
    )
}

pub fn lineage(
    settings: &GlobalSettings,
    printer: &Printer,
    args: LineageArgs,
) -> anyhow::Result<ExitStatus> {
    let store = settings.open_store_for_reading(printer)?;
    let lineage = store.lineage(args.artifact)?;
    // The first OUTPUT event is the producer; later ones are cache hits that reused it.
    let (producer, reusers) = match lineage.producers.split_first() {
        Some((first, rest)) => (Some(first), rest),
        None => (None, &[][..]),
    };
    if args.json {
        let inputs = lineage
            .inputs
            .iter()
            .map(|(used_as, a)| listing(a).used_as(used_as.clone()))
            .collect();
        let report = LineageReport {
            artifact: listing(&lineage.artifact),
            produced_by: producer.map(execution),
            inputs,
            reused_by: reusers.iter().map(execution).collect(),
            consumed_by: lineage.consumers.iter().map(execution).collect(),
        };
        printer.data(&serde_json::to_string_pretty(&report)?);
        return Ok(ExitStatus::Success);
    }
    let a = &lineage.artifact;
    let mut out = format!(
        "Artifact {} ({}",
        a.id,
        human::shown(short_type(&a.type_name))
    );
    if !a.display_name().is_empty() {
        out.push_str(&format!(", `{}`", human::shown(a.display_name())));
    }
    out.push_str(&format!(")\n  {}\n", human::shown(&a.uri)));
    match producer {
        Some(step) => {
            out.push_str(&format!("Produced by:\n  {}\n", describe(step)));
            if lineage.inputs.is_empty() {
                out.push_str("  from no input artifacts\n");
            }
            for (name, input) in &lineage.inputs {
                let line = format!(
                    "  from `{name}`: artifact {} ({}, `{}`)",
                    input.id,
                    short_type(&input.type_name),
                    input.display_name()
                );
                out.push_str(&human::fit(&line, 80));
                out.push('\n');
            }
        }
        None => out
            .push_str("Produced by: nothing recorded (a run's input, or written outside kfbox)\n"),
    }
    if !reusers.is_empty() {
        out.push_str("Reused by (cache hits):\n");
        for step in reusers {
            out.push_str(&format!("  {}\n", describe(step)));
        }
    }
    if lineage.consumers.is_empty() {
        out.push_str("Consumed by: no task\n");
    } else {
        out.push_str("Consumed by:\n");
        for step in &lineage.consumers {
            out.push_str(&format!("  {}\n", describe(step)));
        }
    }
    printer.data(out.trim_end());
    Ok(ExitStatus::Success)
}
