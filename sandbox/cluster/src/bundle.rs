//! The offline bundle: every image a cluster needs, saved on a connected machine and carried to
//! one without network. Layout of the directory:
//!
//! ```text
//! manifest.json                 references, image ids, sizes, archives
//! node/<image>.tar.zst          the k3s node image, loaded into Docker by `cluster up`
//! k3s/<image>.tar.zst           mounted where k3s imports archives at boot
//! ```
//!
//! Archives are `docker save` tars compressed with zstd in a window of at most 2^25 bytes: k3s
//! refuses larger windows when it decompresses them.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// The pinned list kfbox bundles (`images/cluster-images.txt`).
const PINNED: &str = include_str!("../../../images/cluster-images.txt");
/// k3s decompresses with a window of at most 2^25 bytes (`--long=25`).
pub const ZSTD_WINDOW_LOG: u32 = 25;
const ZSTD_LEVEL: i32 = 9;
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The k3s node image: loaded into Docker.
    Node,
    /// Imported by k3s from the bundle at boot.
    Cluster,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleImage {
    pub role: Role,
    pub reference: String,
}

/// kfbox's pinned list.
pub fn pinned_images() -> Vec<BundleImage> {
    parse_image_list(PINNED, "images/cluster-images.txt").expect("the pinned list parses")
}

/// `ROLE REFERENCE` per line; `#` starts a comment.
pub fn parse_image_list(text: &str, origin: &str) -> Result<Vec<BundleImage>, ClusterError> {
    let mut images = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let role = match words.as_slice() {
            ["node", _] => Role::Node,
            ["cluster", _] => Role::Cluster,
            _ => {
                return Err(ClusterError::ImageList {
                    origin: origin.to_owned(),
                    line: number + 1,
                    text: line.to_owned(),
                })
            }
        };
        images.push(BundleImage {
            role,
            reference: words[1].to_owned(),
        });
    }
    Ok(images)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub images: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub role: Role,
    pub reference: String,
    /// Docker's image id (`sha256:...`).
    pub id: String,
    /// The `docker save` archive's size, uncompressed.
    pub size: u64,
    /// The compressed archive, relative to the bundle directory.
    pub archive: String,
    pub compressed_size: u64,
}

impl Manifest {
    pub fn node(&self) -> Option<&ManifestEntry> {
        self.images.iter().find(|i| i.role == Role::Node)
    }
}

/// Where k3s should find the bundle's archives.
pub fn k3s_dir(bundle: &Path) -> PathBuf {
    bundle.join("k3s")
}

/// Saves every image into `dir` (pulling those not here) and writes the manifest last, so a
/// directory with a manifest is a whole bundle. `progress` hears about each image.
pub async fn write_bundle(
    docker: &Docker,
    dir: &Path,
    images: &[BundleImage],
    progress: impl Fn(&str),
) -> Result<Manifest, ClusterError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ClusterError::Io { path, source }
    };
    for sub in ["node", "k3s"] {
        fs_err::create_dir_all(dir.join(sub)).map_err(io(&dir.join(sub)))?;
    }
    let mut entries = Vec::new();
    for image in images {
        if !kfbox_docker::has_image(docker, &image.reference).await {
            progress(&format!("pulling {}", image.reference));
            pull(docker, &image.reference).await?;
        }
        let id = docker
            .inspect_image(&image.reference)
            .await?
            .id
            .unwrap_or_default();
        progress(&format!("saving {}", image.reference));
        let sub = match image.role {
            Role::Node => "node",
            Role::Cluster => "k3s",
        };
        let archive = format!("{sub}/{}.tar.zst", file_name(&image.reference));
        let tar = dir.join(format!("{archive}.partial.tar"));
        kfbox_docker::save_images(docker, &tar, std::slice::from_ref(&image.reference)).await?;
        let size = fs_err::metadata(&tar).map_err(io(&tar))?.len();
        let target = dir.join(&archive);
        let (tar_for_task, target_for_task) = (tar.clone(), target.clone());
        tokio::task::spawn_blocking(move || compress(&tar_for_task, &target_for_task))
            .await
            .expect("compression does not panic")?;
        fs_err::remove_file(&tar).map_err(io(&tar))?;
        let compressed_size = fs_err::metadata(&target).map_err(io(&target))?.len();
        entries.push(ManifestEntry {
            role: image.role,
            reference: image.reference.clone(),
            id,
            size,
            archive,
            compressed_size,
        });
    }
    let manifest = Manifest {
        version: 1,
        images: entries,
    };
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serializes");
    fs_err::write(&path, text).map_err(io(&path))?;
    Ok(manifest)
}

async fn pull(docker: &Docker, reference: &str) -> Result<(), ClusterError> {
    let options = CreateImageOptionsBuilder::default()
        .from_image(reference)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(step) = stream.next().await {
        step.map_err(|e| ClusterError::Pull {
            reference: reference.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// A reference as a file name: `ghcr.io/kubeflow/kfp-driver:2.17.0` ->
/// `ghcr.io_kubeflow_kfp-driver_2.17.0`.
fn file_name(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn compress(from: &Path, to: &Path) -> Result<(), ClusterError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ClusterError::Io { path, source }
    };
    let mut input = BufReader::new(fs_err::File::open(from).map_err(io(from))?);
    let partial = to.with_extension("zst.partial");
    let output = BufWriter::new(fs_err::File::create(&partial).map_err(io(&partial))?);
    let mut encoder = zstd::Encoder::new(output, ZSTD_LEVEL).map_err(io(&partial))?;
    encoder
        .window_log(ZSTD_WINDOW_LOG)
        .and_then(|()| encoder.long_distance_matching(true))
        .map_err(io(&partial))?;
    std::io::copy(&mut input, &mut encoder).map_err(io(&partial))?;
    encoder.finish().map_err(io(&partial))?;
    fs_err::rename(&partial, to).map_err(io(to))
}

/// The manifest of the bundle at `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ClusterError> {
    let path = dir.join(MANIFEST);
    let text = fs_err::read_to_string(&path).map_err(|_| ClusterError::NotABundle {
        dir: dir.to_owned(),
    })?;
    serde_json::from_str(&text).map_err(|e| ClusterError::BadManifest {
        path,
        reason: e.to_string(),
    })
}

/// Loads the bundle's node image into Docker, through a decompressed copy in `scratch`.
pub async fn load_node_image(
    docker: &Docker,
    dir: &Path,
    node: &ManifestEntry,
    scratch: &Path,
) -> Result<(), ClusterError> {
    let archive = dir.join(&node.archive);
    let tar = scratch.join("node-image.tar");
    let (from, to) = (archive.clone(), tar.clone());
    tokio::task::spawn_blocking(move || decompress(&from, &to))
        .await
        .expect("decompression does not panic")?;
    let loaded = kfbox_docker::load_images(docker, &tar).await;
    let _ = fs_err::remove_file(&tar);
    loaded?;
    Ok(())
}

fn decompress(from: &Path, to: &Path) -> Result<(), ClusterError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ClusterError::Io { path, source }
    };
    let input = BufReader::new(fs_err::File::open(from).map_err(io(from))?);
    let mut decoder = zstd::Decoder::new(input).map_err(io(from))?;
    // As k3s reads them: a bundle that needs a larger window would fail there too.
    decoder.window_log_max(ZSTD_WINDOW_LOG).map_err(io(from))?;
    let mut output = BufWriter::new(fs_err::File::create(to).map_err(io(to))?);
    std::io::copy(&mut decoder, &mut output).map_err(io(from))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_list_has_one_node_and_the_run_time_images() {
        let images = pinned_images();
        let nodes: Vec<_> = images.iter().filter(|i| i.role == Role::Node).collect();
        assert_eq!(nodes.len(), 1);
        assert_eq!(
            nodes[0].reference,
            format!("docker.io/{}", crate::node::K3S_IMAGE)
        );
        for needed in [
            "ghcr.io/kubeflow/kfp-driver:2.17.0",
            "ghcr.io/kubeflow/kfp-launcher:2.17.0",
            "quay.io/argoproj/argoexec:v4.0.5",
        ] {
            assert!(images.iter().any(|i| i.reference == needed), "{needed}");
        }
        // Pinned: no image without a tag or with `latest`.
        for image in &images {
            let tag = image.reference.rsplit('/').next().unwrap().split_once(':');
            assert!(
                tag.is_some_and(|(_, t)| t != "latest"),
                "{}",
                image.reference
            );
        }
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = parse_image_list("node a\nbogus b c\n", "list.txt").unwrap_err();
        assert!(error.to_string().contains("list.txt:2"), "{error}");
    }

    #[test]
    fn archives_round_trip_within_k3s_window() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("a.tar");
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        fs_err::write(&original, &data).unwrap();
        let packed = dir.path().join("a.tar.zst");
        compress(&original, &packed).unwrap();
        let back = dir.path().join("b.tar");
        decompress(&packed, &back).unwrap();
        assert_eq!(fs_err::read(&back).unwrap(), data);
        assert_eq!(
            file_name("ghcr.io/kubeflow/kfp-driver:2.17.0"),
            "ghcr.io_kubeflow_kfp-driver_2.17.0"
        );
    }
}
