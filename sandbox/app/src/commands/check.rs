//! `kfbox check`: load and validate a pipeline file as `kfbox run` would, run nothing, and
//! list what will not behave as written: locally (Kubernetes settings kfbox does not apply)
//! or on a KFP cluster (`--for cluster`).

use console::style;
use kfbox_cli::{CheckArgs, CheckFor};
use kfbox_cluster::portability::{cluster_findings, Finding};
use kfbox_spec::load_pipeline;

use crate::exit::ExitStatus;
use crate::human::{shown, shown_lines};
use crate::json::CheckReport;
use crate::printer::Printer;

pub fn check(printer: &Printer, args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let pipeline = load_pipeline(&args.pipeline)?;
    let spec = &pipeline.spec;
    let tasks = std::iter::once(&spec.root)
        .chain(spec.components.values())
        .filter_map(|c| c.dag.as_ref())
        .map(|dag| dag.tasks.len())
        .sum();
    let mut findings = cluster_findings(&pipeline);
    let target = match args.target {
        CheckFor::Local => {
            findings.retain(|f| f.kind.affects_local_runs());
            "local"
        }
        CheckFor::Cluster => "cluster",
    };
    let report = CheckReport {
        file: args.pipeline.display().to_string(),
        pipeline: spec.pipeline_info.name.clone(),
        target: target.to_owned(),
        tasks,
        findings,
    };
    if args.json {
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        printer.data(&render(&report));
    }
    Ok(ExitStatus::Success)
}

fn render(report: &CheckReport) -> String {
    let mut out = format!(
        "{}: pipeline {} is valid ({} tasks)\n",
        shown(&report.file),
        style(shown(&report.pipeline)).bold(),
        report.tasks
    );
    let place = if report.target == "cluster" {
        "on a cluster"
    } else {
        "in kfbox's local run"
    };
    if report.findings.is_empty() {
        out.push_str(&format!("Nothing behaves differently {place}."));
        return out;
    }
    // Executors that share a finding (every lightweight component has the same prelude) are
    // listed together.
    let mut groups: Vec<(&Finding, Vec<String>)> = Vec::new();
    for finding in &report.findings {
        let same = |f: &&Finding| {
            f.kind == finding.kind && f.message == finding.message && f.hint == finding.hint
        };
        match groups.iter_mut().find(|(f, _)| same(f)) {
            Some((_, whom_list)) => whom_list.push(whom(finding)),
            None => groups.push((finding, vec![whom(finding)])),
        }
    }
    let count = report.findings.len();
    out.push_str(&format!(
        "{count} {} differently {place}:\n",
        if count == 1 {
            "thing behaves"
        } else {
            "things behave"
        }
    ));
    for (finding, whom_list) in groups {
        out.push_str(&format!(
            "  {} {}\n      {}\n      {} {}\n",
            style(format!("{:<13}", finding.kind.label())).yellow(),
            style(shown(&whom_list.join(", "))).bold(),
            shown_lines(&finding.message),
            style("hint:").dim(),
            shown(&finding.hint)
        ));
    }
    out.trim_end().to_owned()
}

/// `exec-train (train, train-2)`, or `pipeline` for pipeline-wide findings.
fn whom(finding: &Finding) -> String {
    match &finding.executor {
        None => "pipeline".to_owned(),
        Some(executor) if finding.tasks.is_empty() => executor.clone(),
        Some(executor) => format!("{executor} ({})", finding.tasks.join(", ")),
    }
}
