//! `kfbox cluster`: the k3s node in Docker and its kubeconfig.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use kfbox_cli::{
    ClusterArgs, ClusterBundleArgs, ClusterCommand, ClusterUpArgs, DEFAULT_RUNTIME_BASE,
};
use kfbox_cluster::bundle::{self, BundleImage, Role};
use kfbox_cluster::kubeconfig::{for_host, merge_into};
use kfbox_cluster::node::{self, Gpus, NodeSpec, Privileges, GPU_NODE_IMAGE, K3S_IMAGE};
use kfbox_kfp_install::images::{same_image, RUNTIME};
use kfbox_kfp_install::readiness::{self, BundledImages, ComponentState};
use kfbox_kfp_install::{apply, InstallOptions};

use super::images::build_runtime_image;
use crate::exit::ExitStatus;
use crate::json::{ClusterStatus, KfpComponent};
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub async fn cluster(
    settings: &GlobalSettings,
    printer: &Printer,
    args: ClusterArgs,
) -> anyhow::Result<ExitStatus> {
    let name = checked_name(&args.name)?;
    match args.command {
        ClusterCommand::Up(args) => up(settings, printer, name, args).await,
        ClusterCommand::Bundle(args) => bundle(settings, printer, args).await,
        ClusterCommand::Status { json } => status(settings, printer, name, json).await,
        ClusterCommand::Kubeconfig { print } => kubeconfig(settings, printer, name, print),
        ClusterCommand::Down { keep_data } => down(printer, name, keep_data).await,
    }
}

/// A name Docker, Kubernetes and a path all accept: lowercase letters, digits and `-`.
pub(crate) fn checked_name(name: &str) -> anyhow::Result<&str> {
    let fits = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if fits {
        Ok(name)
    } else {
        Err(anyhow::anyhow!(
            "--name {name:?}: a cluster name is 1 to 32 lowercase letters, digits and `-`"
        ))
    }
}

async fn up(
    settings: &GlobalSettings,
    printer: &Printer,
    name: &str,
    args: ClusterUpArgs,
) -> anyhow::Result<ExitStatus> {
    let config = settings.load_config()?;
    let bundle = match &args.bundle {
        Some(dir) => {
            let dir = fs_err::canonicalize(dir)
                .ok()
                .filter(|d| d.is_dir())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--bundle {}: not a directory (give the one `kfbox cluster bundle` wrote)",
                        dir.display()
                    )
                })?;
            let manifest = bundle::read_manifest(&dir)?;
            Some((dir, manifest))
        }
        None => None,
    };
    let spec = NodeSpec {
        name: name.to_owned(),
        image: args.image.clone().unwrap_or_else(|| {
            if args.gpus.is_some() {
                GPU_NODE_IMAGE
            } else {
                K3S_IMAGE
            }
            .to_owned()
        }),
        api_port: args.api_port,
        gpus: args.gpus.as_deref().map(parse_gpus).transpose()?,
        bundle: bundle.as_ref().map(|(dir, _)| bundle::k3s_dir(dir)),
        privileges: if config.cluster.drop_capabilities.is_empty() {
            Privileges::Privileged
        } else {
            Privileges::AllCapabilitiesBut(config.cluster.drop_capabilities.clone())
        },
        home: settings.home.path().to_owned(),
    };
    let options = InstallOptions {
        gpus: spec.gpus.is_some(),
        // A bundle means no network: with kfbox's runtime image in it, steps' pip uses its
        // wheels.
        package_index: bundle.as_ref().is_some_and(|(_, manifest)| {
            manifest
                .images
                .iter()
                .any(|image| same_image(&image.reference, RUNTIME))
        }),
    };
    if bundle.is_some() && !options.package_index && !args.no_kfp {
        printer.warning(&format!(
            "the bundle has no {RUNTIME}: offline, steps whose SDK prelude runs `pip install` will fail (`kfbox cluster bundle` without --no-runtime carries it)"
        ));
    }
    if args.dry_run {
        return dry_run(printer, &spec, options, args.json);
    }
    let started = Instant::now();
    let docker = kfbox_docker::connect().await?;
    if let Some((dir, node)) = bundle
        .as_ref()
        .and_then(|(dir, manifest)| manifest.node().map(|node| (dir, node)))
        .filter(|(_, node)| same_image(&node.reference, &spec.image))
    {
        if !kfbox_docker::has_image(&docker, &spec.image).await {
            printer.note(&format!("loading {} from the bundle...", node.reference));
            let scratch = tempfile::tempdir_in(settings.home.path())
                .context("cannot make a scratch directory in KFBOX_HOME")?;
            bundle::load_node_image(&docker, dir, node, scratch.path()).await?;
        }
    }
    printer.note(&format!(
        "starting the k3s node {} ({})...",
        spec.container_name(),
        spec.image
    ));
    let timeout = Duration::from_secs(args.timeout);
    let ready = node::up(&docker, &spec, timeout).await?;
    let kubeconfig = for_host(&ready.kubeconfig, name, &ready.api_server)?;
    let path = settings.home.cluster_kubeconfig(name);
    kfbox_paths::create_private_dir_all(path.parent().expect("a file in a directory"))
        .with_context(|| format!("cannot create {}", path.display()))?;
    kfbox_paths::write_private_file(&path, kubeconfig.as_bytes())?;
    printer.note(&format!(
        "k3s is ready after {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        if ready.created {
            "new node"
        } else {
            "existing node, data kept"
        }
    ));
    if !args.no_kfp {
        let bundled = bundle.as_ref().map(|(_, manifest)| {
            manifest
                .images
                .iter()
                .map(|image| image.reference.clone())
                .collect::<BundledImages>()
        });
        install_kfp(
            printer,
            &kubeconfig,
            options,
            bundled.as_ref(),
            timeout.saturating_sub(started.elapsed()),
        )
        .await?;
    }
    printer.data(&format!(
        "Kubernetes API: {}\nkubeconfig: {}\n  kubectl --kubeconfig {} get nodes\n  kfbox cluster kubeconfig   # merge context `{name}` into ~/.kube/config",
        ready.api_server,
        path.display(),
        path.display()
    ));
    if !args.no_kfp {
        printer.data(&kfp_usage(name, &path));
    }
    Ok(ExitStatus::Success)
}

/// What `up` would create. The node is a Docker container, not a Kubernetes object, so the
/// YAML shows it as comments and the rest stays a stream `kubectl apply -f -` accepts.
fn dry_run(
    printer: &Printer,
    spec: &NodeSpec,
    options: InstallOptions,
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let node = serde_json::json!({
        "container": spec.container_name(),
        "volume": spec.volume_name(),
        "body": spec.container_body(),
    });
    let objects = kfbox_kfp_install::objects(options);
    if json {
        let plan = serde_json::json!({
            "node": node,
            "objects": objects.iter().map(|o| &o.body).collect::<Vec<_>>(),
        });
        printer.data(&serde_json::to_string_pretty(&plan)?);
        return Ok(ExitStatus::Success);
    }
    let node_lines: String = serde_yaml::to_string(&node)?
        .lines()
        .map(|line| format!("#   {line}\n"))
        .collect();
    printer.data(
        format!(
            "# The k3s node, a Docker container:\n{node_lines}# Kubeflow Pipelines {} for v2: {} objects, applied in this order.\n{}",
            kfbox_kfp_install::images::KFP_VERSION,
            objects.len(),
            kfbox_kfp_install::to_yaml(&objects)
        )
        .trim_end(),
    );
    Ok(ExitStatus::Success)
}

/// Applies the install and reports each component as it becomes ready, or why it waits.
async fn install_kfp(
    printer: &Printer,
    kubeconfig: &str,
    options: InstallOptions,
    bundled: Option<&BundledImages>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = apply::client(kubeconfig).await?;
    let objects = kfbox_kfp_install::objects(options);
    printer.note(&format!(
        "installing Kubeflow Pipelines {} ({} objects, server-side apply)...",
        kfbox_kfp_install::images::KFP_VERSION,
        objects.len()
    ));
    apply::apply(&client, &objects, |_| {}).await?;
    readiness::wait_until_ready(&client, timeout, bundled, |state, elapsed| {
        printer.note(&component_line(state, elapsed));
    })
    .await?;
    Ok(())
}

fn component_line(state: &ComponentState, elapsed: Duration) -> String {
    let what = if state.ready {
        format!("ready after {:.0} s", elapsed.as_secs_f64())
    } else {
        format!("waiting: {}", state.reason)
    };
    format!("  {:<30} {what}", state.title)
}

async fn bundle(
    settings: &GlobalSettings,
    printer: &Printer,
    args: ClusterBundleArgs,
) -> anyhow::Result<ExitStatus> {
    let docker = kfbox_docker::connect().await?;
    let mut images = match &args.images {
        Some(file) => {
            let text = fs_err::read_to_string(file)?;
            bundle::parse_image_list(&text, &file.display().to_string())?
        }
        None => bundle::pinned_images(),
    };
    // kfbox's runtime image is made, not pulled: built here when missing, from PyPI's SDK.
    if args.images.is_none() && !args.no_runtime {
        if !kfbox_docker::has_image(&docker, RUNTIME).await {
            build_runtime_image(settings, printer, &docker, DEFAULT_RUNTIME_BASE, RUNTIME).await?;
        }
        images.push(BundleImage {
            role: Role::Cluster,
            reference: RUNTIME.to_owned(),
        });
    }
    images.extend(args.add.iter().map(|reference| BundleImage {
        role: Role::Cluster,
        reference: reference.clone(),
    }));
    let started = std::time::Instant::now();
    let manifest = bundle::write_bundle(&docker, &args.dir, &images, |what| {
        printer.note(&format!("{what}..."))
    })
    .await?;
    let size: u64 = manifest.images.iter().map(|i| i.compressed_size).sum();
    printer.data(&format!(
        "bundled {} images into {} ({:.1} MiB compressed) in {:.0} s\n  kfbox cluster up --bundle {}",
        manifest.images.len(),
        args.dir.display(),
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64(),
        args.dir.display()
    ));
    Ok(ExitStatus::Success)
}

fn parse_gpus(text: &str) -> anyhow::Result<Gpus> {
    if text == "all" {
        return Ok(Gpus::All);
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Gpus::Count(n)),
        _ => Err(anyhow::anyhow!(
            "--gpus {text}: expected `all` or a number of GPUs (1 or more)"
        )),
    }
}

async fn status(
    settings: &GlobalSettings,
    printer: &Printer,
    name: &str,
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let docker = kfbox_docker::connect().await?;
    let node = node::state(&docker, name).await?;
    let kubeconfig = settings.home.cluster_kubeconfig(name);
    let components = match &node {
        None => Err("no node".to_owned()),
        Some(node) if node.state != "running" => Err(format!("the node is {}", node.state)),
        Some(_) => kfp_components(&kubeconfig).await,
    };
    let (kfp, kfp_error) = match components {
        Ok(states) => (Some(states), None),
        Err(error) => (None, Some(error)),
    };
    let report = ClusterStatus {
        cluster: name.to_owned(),
        node,
        kubeconfig: kubeconfig
            .exists()
            .then(|| kubeconfig.display().to_string()),
        kfp,
        kfp_error,
    };
    if json {
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        match &report.node {
            None => printer.data("no kfbox cluster here (`kfbox cluster up` starts one)"),
            Some(node) => printer.data(&format!(
                "node {}: {} ({})\nKubernetes API: {}\ndata volume: {}{}\n{}",
                node.container,
                node.state,
                node.image,
                node.api_server.as_deref().unwrap_or("-"),
                node.data_volume.as_deref().unwrap_or("none"),
                report
                    .kubeconfig
                    .as_deref()
                    .map(|k| format!("\nkubeconfig: {k}"))
                    .unwrap_or_default(),
                kfp_lines(&report)
            )),
        }
    }
    Ok(if report.node.is_some() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The components' states, or why they cannot be read; a silent API is given ten seconds.
async fn kfp_components(kubeconfig: &std::path::Path) -> Result<Vec<KfpComponent>, String> {
    let text = fs_err::read_to_string(kubeconfig).map_err(|e| e.to_string())?;
    let read = async {
        let client = apply::client(&text).await?;
        readiness::component_states(&client, None).await
    };
    let states = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| "the Kubernetes API did not answer within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(states
        .into_iter()
        .map(|s| KfpComponent {
            title: s.title.to_owned(),
            workload: s.workload.to_owned(),
            ready: s.ready,
            reason: (!s.ready).then_some(s.reason),
        })
        .collect())
}

fn kfp_lines(report: &ClusterStatus) -> String {
    let version = kfbox_kfp_install::images::KFP_VERSION;
    match (&report.kfp, &report.kfp_error) {
        (Some(components), _) => {
            let lines: Vec<String> = components
                .iter()
                .map(|c| {
                    format!(
                        "  {:<30} {}",
                        c.title,
                        match &c.reason {
                            None => "ready".to_owned(),
                            Some(reason) => format!("waiting: {reason}"),
                        }
                    )
                })
                .collect();
            format!(
                "Kubeflow Pipelines {version}:\n{}\n{}",
                lines.join("\n"),
                kfp_usage(
                    &report.cluster,
                    std::path::Path::new(report.kubeconfig.as_deref().unwrap_or("KUBECONFIG"))
                )
            )
        }
        (None, Some(error)) => format!("Kubeflow Pipelines: unknown ({error})"),
        (None, None) => String::new(),
    }
}

/// How to use the cluster's KFP: runs go through the Kubernetes API (nothing is published on
/// the host); the UI is one port-forward away.
fn kfp_usage(name: &str, kubeconfig: &std::path::Path) -> String {
    let target = if name == "kfbox" {
        "cluster".to_owned()
    } else {
        format!("cluster:{name}")
    };
    format!(
        "  kfbox run PIPELINE.yaml --target {target}\n  kubectl --kubeconfig {} -n {} port-forward svc/ml-pipeline-ui 8080:80   # the UI on http://127.0.0.1:8080",
        kubeconfig.display(),
        kfbox_kfp_install::NAMESPACE
    )
}

fn kubeconfig(
    settings: &GlobalSettings,
    printer: &Printer,
    name: &str,
    print: bool,
) -> anyhow::Result<ExitStatus> {
    let ours_path = settings.home.cluster_kubeconfig(name);
    let ours = fs_err::read_to_string(&ours_path).map_err(|_| {
        anyhow::anyhow!(
            "no kubeconfig at {}: `kfbox cluster up` writes it",
            ours_path.display()
        )
    })?;
    if print {
        printer.data(ours.trim_end());
        return Ok(ExitStatus::Success);
    }
    let target = user_kubeconfig()?;
    merge_into(&target, &ours)?;
    printer.data(&format!(
        "context `{name}` merged into {} and made current (other contexts kept)",
        target.display()
    ));
    Ok(ExitStatus::Success)
}

/// The first file of KUBECONFIG, as kubectl writes to it, else ~/.kube/config.
fn user_kubeconfig() -> anyhow::Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_ref()
        .and_then(|list| std::env::split_paths(list).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    let home = dirs::home_dir().context("no home directory: set KUBECONFIG")?;
    Ok(home.join(".kube").join("config"))
}

async fn down(printer: &Printer, name: &str, keep_data: bool) -> anyhow::Result<ExitStatus> {
    let docker = kfbox_docker::connect().await?;
    let removed = node::down(&docker, name, keep_data).await?;
    if removed.containers.is_empty() && removed.volumes.is_empty() {
        printer.data("no cluster to remove");
    } else {
        printer.data(&format!(
            "removed {}{}",
            removed.containers.join(", "),
            if removed.volumes.is_empty() {
                if keep_data {
                    " (data volume kept)".to_owned()
                } else {
                    String::new()
                }
            } else {
                format!(" and volume {}", removed.volumes.join(", "))
            }
        ));
    }
    Ok(ExitStatus::Success)
}
