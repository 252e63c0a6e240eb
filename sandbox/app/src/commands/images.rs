//! `kfbox images`: the runtime image, and images carried to machines without a registry.

use std::collections::HashMap;

use anyhow::Context;
use kfbox_cli::{ImagesArgs, ImagesBuildArgs, ImagesBuildGpuNodeArgs, ImagesCommand};
use kfbox_cluster::node::{GPU_NODE_IMAGE, K3S_IMAGE};
use kfbox_docker::BuildContext;
use kfbox_kfp_install::images::RUNTIME;
use kfbox_python::SDK_REQUIREMENT;

use crate::env_progress::EnvProgress;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

/// images/runtime/Dockerfile, built into kfbox so `kfbox images build` works from any directory.
const RUNTIME_DOCKERFILE: &str = include_str!("../../../../images/runtime/Dockerfile");
/// images/k3s-gpu/Dockerfile, for `kfbox images build-gpu-node`.
const GPU_NODE_DOCKERFILE: &str = include_str!("../../../../images/k3s-gpu/Dockerfile");

pub async fn images(
    settings: &GlobalSettings,
    printer: &Printer,
    args: ImagesArgs,
) -> anyhow::Result<ExitStatus> {
    let docker = kfbox_docker::connect().await?;
    let result = match args.command {
        ImagesCommand::Build(build) => {
            return build_runtime(settings, printer, &docker, build).await
        }
        ImagesCommand::BuildGpuNode(build) => return build_gpu_node(printer, &docker, build).await,
        ImagesCommand::Load { file } => {
            kfbox_docker::load_images(&docker, &file)
                .await
                .map(|loaded| {
                    for name in loaded {
                        printer.data(&format!("loaded {name}"));
                    }
                })
        }
        ImagesCommand::Save { file, images } => kfbox_docker::save_images(&docker, &file, &images)
            .await
            .map(|()| {
                printer.note(&format!("saved {} to {}", images.join(" "), file.display()));
            }),
    };
    result?;
    Ok(ExitStatus::Success)
}

async fn build_runtime(
    settings: &GlobalSettings,
    printer: &Printer,
    docker: &bollard::Docker,
    args: ImagesBuildArgs,
) -> anyhow::Result<ExitStatus> {
    build_runtime_image(settings, printer, docker, &args.base, &args.tag).await?;
    printer.data(&format!(
        "built {} and {RUNTIME} ({SDK_REQUIREMENT} on {})",
        args.tag, args.base
    ));
    Ok(ExitStatus::Success)
}

/// Builds the runtime image on `base` as `tag`, also named [`RUNTIME`]: the pinned name, by
/// the SDK it holds, that a cluster bundle carries and a component names as `base_image` on a
/// cluster (a `latest` tag would be pulled there).
pub(crate) async fn build_runtime_image(
    settings: &GlobalSettings,
    printer: &Printer,
    docker: &bollard::Docker,
    base: &str,
    tag: &str,
) -> anyhow::Result<()> {
    // The SDK's wheels are made on the host, from PyPI or pip's cache, with a managed pip: the
    // build itself needs no network.
    let wheels = tempfile::tempdir().context("cannot create a temporary directory")?;
    let envs = settings.python_envs();
    let progress = EnvProgress::new(settings, printer, "");
    let made = {
        let dir = wheels.path().to_owned();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            envs.collect_wheels(&dir, &[SDK_REQUIREMENT.to_owned()], &|update| {
                progress.update(update)
            })?;
            Ok(())
        })
        .await?
    };
    made?;
    let mut context = BuildContext::default();
    context.add("Dockerfile", RUNTIME_DOCKERFILE.as_bytes().to_vec());
    for entry in fs_err::read_dir(wheels.path())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        context.add(format!("wheels/{name}"), fs_err::read(&path)?);
    }
    let build_args = HashMap::from([
        ("BASE".to_owned(), base.to_owned()),
        ("KFP_REQUIREMENT".to_owned(), SDK_REQUIREMENT.to_owned()),
    ]);
    printer.note(&format!("building {tag} on {base}"));
    kfbox_docker::build_image(docker, context, tag, &build_args, |line| {
        printer.note(line);
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}\nhint: the base image needs python3 with its venv module; without a registry, `images/base/build.sh` makes one from Debian's packages and `--base kfbox/base:bookworm` uses it", kfbox_step::error_chain(&e)))?;
    if tag != RUNTIME {
        kfbox_docker::tag_image(docker, tag, RUNTIME).await?;
    }
    Ok(())
}

/// The GPU node image: the pinned k3s on NVIDIA's CUDA base with the container toolkit.
async fn build_gpu_node(
    printer: &Printer,
    docker: &bollard::Docker,
    args: ImagesBuildGpuNodeArgs,
) -> anyhow::Result<ExitStatus> {
    let tag = args.tag.as_deref().unwrap_or(GPU_NODE_IMAGE);
    let mut context = BuildContext::default();
    context.add("Dockerfile", GPU_NODE_DOCKERFILE.as_bytes().to_vec());
    let build_args = HashMap::from([
        ("K3S_IMAGE".to_owned(), K3S_IMAGE.to_owned()),
        ("CUDA_IMAGE".to_owned(), args.cuda_base.clone()),
    ]);
    printer.note(&format!(
        "building {tag}: {K3S_IMAGE} on {} with the NVIDIA container toolkit",
        args.cuda_base
    ));
    kfbox_docker::build_image(docker, context, tag, &build_args, |line| {
        printer.note(line);
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{}\nhint: the build pulls {K3S_IMAGE} and {} and installs from nvidia.github.io: run it on a connected machine, then `kfbox images save` / `load` to carry the image",
            kfbox_step::error_chain(&e),
            args.cuda_base
        )
    })?;
    printer.data(&format!(
        "built {tag}\n  kfbox cluster up --gpus all{}",
        if tag == GPU_NODE_IMAGE {
            String::new()
        } else {
            format!(" --image {tag}")
        }
    ));
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_images_pinned_name_is_the_sdk_it_holds() {
        let version = SDK_REQUIREMENT.trim_start_matches("kfp==");
        assert_eq!(RUNTIME, format!("kfbox/runtime:kfp-{version}"));
    }
}
