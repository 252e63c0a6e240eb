//! `kfbox cluster`: the k3s node in Docker and its kubeconfig.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kfbox_cli::{ClusterArgs, ClusterBundleArgs, ClusterCommand, ClusterUpArgs};
use kfbox_cluster::bundle::{self, BundleImage, Role};
use kfbox_cluster::kubeconfig::{for_host, merge_into};
use kfbox_cluster::node::{self, Gpus, NodeSpec, Privileges, K3S_IMAGE};

use crate::exit::ExitStatus;
use crate::json::ClusterStatus;
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
        ClusterCommand::Bundle(args) => bundle(printer, args).await,
        ClusterCommand::Status { json } => status(settings, printer, name, json).await,
        ClusterCommand::Kubeconfig { print } => kubeconfig(settings, printer, name, print),
        ClusterCommand::Down { keep_data } => down(printer, name, keep_data).await,
    }
}

/// A name Docker, Kubernetes and a path all accept: lowercase letters, digits and `-`.
fn checked_name(name: &str) -> anyhow::Result<&str> {
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
        image: args.image.clone().unwrap_or_else(|| K3S_IMAGE.to_owned()),
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
    if args.dry_run {
        let plan = serde_json::json!({
            "container": spec.container_name(),
            "volume": spec.volume_name(),
            "body": spec.container_body(),
        });
        printer.data(&serde_json::to_string_pretty(&plan)?);
        return Ok(ExitStatus::Success);
    }
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
    let started = std::time::Instant::now();
    let ready = node::up(&docker, &spec, Duration::from_secs(args.timeout)).await?;
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
    printer.data(&format!(
        "Kubernetes API: {}\nkubeconfig: {}\n  kubectl --kubeconfig {} get nodes\n  kfbox cluster kubeconfig   # merge context `{name}` into ~/.kube/config",
        ready.api_server,
        path.display(),
        path.display()
    ));
    Ok(ExitStatus::Success)
}

/// Docker's short and long names for one image are the same image.
fn same_image(a: &str, b: &str) -> bool {
    let short = |r: &str| {
        r.strip_prefix("docker.io/library/")
            .or_else(|| r.strip_prefix("docker.io/"))
            .unwrap_or(r)
            .to_owned()
    };
    short(a) == short(b)
}

async fn bundle(printer: &Printer, args: ClusterBundleArgs) -> anyhow::Result<ExitStatus> {
    let mut images = match &args.images {
        Some(file) => {
            let text = fs_err::read_to_string(file)?;
            bundle::parse_image_list(&text, &file.display().to_string())?
        }
        None => bundle::pinned_images(),
    };
    images.extend(args.add.iter().map(|reference| BundleImage {
        role: Role::Cluster,
        reference: reference.clone(),
    }));
    let docker = kfbox_docker::connect().await?;
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
    let report = ClusterStatus {
        cluster: name.to_owned(),
        node,
        kubeconfig: kubeconfig
            .exists()
            .then(|| kubeconfig.display().to_string()),
    };
    if json {
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        match &report.node {
            None => printer.data("no kfbox cluster here (`kfbox cluster up` starts one)"),
            Some(node) => printer.data(&format!(
                "node {}: {} ({})\nKubernetes API: {}\ndata volume: {}{}",
                node.container,
                node.state,
                node.image,
                node.api_server.as_deref().unwrap_or("-"),
                node.data_volume.as_deref().unwrap_or("none"),
                report
                    .kubeconfig
                    .as_deref()
                    .map(|k| format!("\nkubeconfig: {k}"))
                    .unwrap_or_default()
            )),
        }
    }
    Ok(if report.node.is_some() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
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
