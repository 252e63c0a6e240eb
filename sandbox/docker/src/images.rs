//! Moving images to machines without a registry (`docker save`/`load`) and building kfbox's
//! runtime image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{
    BuildImageOptionsBuilder, ImportImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::daemon::DockerError;

pub async fn has_image(docker: &Docker, image: &str) -> bool {
    docker.inspect_image(image).await.is_ok()
}

/// Gives `image` a second name, `name` (`REPOSITORY:TAG`), as `docker tag` does.
pub async fn tag_image(docker: &Docker, image: &str, name: &str) -> Result<(), DockerError> {
    // A colon after the last slash starts the tag; one before it is a registry's port.
    let (repo, tag) = name
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .unwrap_or((name, "latest"));
    docker
        .tag_image(
            image,
            Some(TagImageOptionsBuilder::new().repo(repo).tag(tag).build()),
        )
        .await?;
    Ok(())
}

/// Load a `docker save` archive; returns what the daemon said it loaded.
pub async fn load_images(docker: &Docker, file: &Path) -> Result<Vec<String>, DockerError> {
    let io = |source| DockerError::Io {
        path: file.to_owned(),
        source,
    };
    let body = fs_err::tokio::read(file).await.map_err(io)?;
    let options = ImportImageOptionsBuilder::new().quiet(true).build();
    let mut stream = docker.import_image(options, bollard::body_full(Bytes::from(body)), None);
    let mut loaded = Vec::new();
    while let Some(info) = stream.next().await {
        let info = info?;
        if let Some(error) = info.error_detail.and_then(|e| e.message) {
            return Err(DockerError::Build(format!(
                "{} is not an image archive Docker can load: {error}",
                file.display()
            )));
        }
        if let Some(line) = info.stream {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("Loaded image: ") {
                loaded.push(name.to_owned());
            } else if let Some(id) = line.strip_prefix("Loaded image ID: ") {
                loaded.push(id.to_owned());
            }
        }
    }
    Ok(loaded)
}

/// Write `images` into one `docker save` archive at `file` (written beside, then renamed, so
/// a failed save leaves no half archive).
pub async fn save_images(
    docker: &Docker,
    file: &Path,
    images: &[String],
) -> Result<(), DockerError> {
    for image in images {
        if !has_image(docker, image).await {
            return Err(DockerError::Build(format!(
                "image `{image}` is not on this machine (`docker images` lists what is)"
            )));
        }
    }
    let partial: PathBuf = file.with_extension("partial");
    let io = |source| DockerError::Io {
        path: partial.clone(),
        source,
    };
    let mut out = fs_err::tokio::File::create(&partial).await.map_err(io)?;
    let names: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut stream = docker.export_images(&names);
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    drop(out);
    fs_err::tokio::rename(&partial, file)
        .await
        .map_err(|source| DockerError::Io {
            path: file.to_owned(),
            source,
        })
}

/// Files of a build context, by path inside it.
#[derive(Debug, Default)]
pub struct BuildContext {
    files: Vec<(String, Vec<u8>)>,
}

impl BuildContext {
    pub fn add(&mut self, path: impl Into<String>, contents: Vec<u8>) {
        self.files.push((path.into(), contents));
    }

    fn into_tar(self) -> Result<Vec<u8>, std::io::Error> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, contents.as_slice())?;
        }
        builder.into_inner()
    }
}

/// `docker build` of `context` (with its `Dockerfile`), tagged `tag`; `progress` gets the
/// build's output lines.
pub async fn build_image(
    docker: &Docker,
    context: BuildContext,
    tag: &str,
    build_args: &HashMap<String, String>,
    mut progress: impl FnMut(&str),
) -> Result<(), DockerError> {
    let tar = context.into_tar().map_err(|source| DockerError::Io {
        path: PathBuf::from("<build context>"),
        source,
    })?;
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(build_args)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(Bytes::from(tar))));
    while let Some(info) = stream.next().await {
        let info = info.map_err(|e| DockerError::Build(format!("building {tag}: {e}")))?;
        if let Some(error) = info.error_detail.and_then(|e| e.message) {
            return Err(DockerError::Build(format!("building {tag}: {error}")));
        }
        if let Some(line) = info.stream {
            for line in line.lines().filter(|l| !l.trim().is_empty()) {
                progress(line);
            }
        }
    }
    Ok(())
}
