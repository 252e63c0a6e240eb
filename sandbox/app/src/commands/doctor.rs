//! `kfbox doctor`: what this machine offers kfbox, and what is missing.

use std::path::Path;

use kfbox_cli::DoctorArgs;

use crate::env_progress::EnvProgress;
use crate::exit::ExitStatus;
use crate::json::{Check, DockerReport, DoctorReport, GpuDevice, GpuReport, PortReport};
use crate::printer::Printer;
use crate::settings::GlobalSettings;

/// Ports kfbox serves on by default: the API and UI, then JupyterLab.
const PORTS: [u16; 2] = [8888, 8889];

pub async fn doctor(
    settings: &GlobalSettings,
    printer: &Printer,
    args: DoctorArgs,
) -> anyhow::Result<ExitStatus> {
    let (inventory, cuda_version) = tokio::task::spawn_blocking(|| {
        let inventory = kfbox_gpu::detect();
        let cuda = if inventory.gpus.is_empty() {
            None
        } else {
            kfbox_gpu::cuda_version()
        };
        (inventory, cuda)
    })
    .await?;
    let report = DoctorReport {
        kfbox: env!("CARGO_PKG_VERSION").into(),
        home: settings.home.display().to_string(),
        free_disk_bytes: free_disk(settings.home.path()),
        python: python_check(settings, printer).await,
        docker: docker_report().await,
        gpus: GpuReport {
            count: inventory.gpus.len(),
            cuda_version,
            devices: inventory
                .gpus
                .iter()
                .map(|g| GpuDevice {
                    // nvidia-smi is the only source of GPUs kfbox reads.
                    vendor: "NVIDIA".into(),
                    index: g.index,
                    name: g.name.clone(),
                    memory_mib: g.memory_mib,
                    driver_version: g.driver_version.clone(),
                    uuid: g.uuid.clone(),
                })
                .collect(),
            problem: inventory.problem.clone(),
        },
        ports: {
            let ours = crate::instance::running_addresses(settings);
            PORTS
                .iter()
                .map(|&port| {
                    let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
                    let kfbox = (!free)
                        .then(|| {
                            ours.iter()
                                .find(|(_, url)| url_port(url) == Some(port))
                                .map(|(what, _)| what.clone())
                        })
                        .flatten();
                    PortReport { port, free, kfbox }
                })
                .collect()
        },
    };
    if args.json {
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        printer.data(&render(&report));
    }
    Ok(ExitStatus::Success)
}

fn render(report: &DoctorReport) -> String {
    let mark = |ok: bool| if ok { "ok  " } else { "--  " };
    let mut out = format!("kfbox {}\n", report.kfbox);
    let disk = report.free_disk_bytes.map_or_else(
        || "unknown".to_owned(),
        |b| format!("{:.1} GB free", b as f64 / 1e9),
    );
    out += &format!("{}home     {} ({disk})\n", mark(true), report.home);
    out += &format!(
        "{}python   {}\n",
        mark(report.python.ok),
        report.python.detail
    );
    let d = &report.docker;
    out += &format!("{}docker   {}\n", mark(d.ok), d.detail);
    if d.ok {
        out += &format!(
            "    runtimes {}; NVIDIA runtime {}; CDI NVIDIA devices {}\n",
            d.runtimes.join(", "),
            if d.nvidia_runtime { "yes" } else { "no" },
            if d.cdi_nvidia { "yes" } else { "no" }
        );
    }
    let g = &report.gpus;
    if g.devices.is_empty() {
        let why = g.problem.clone().unwrap_or_else(|| {
            "no NVIDIA GPU (nvidia-smi not found or lists none); GPU requests follow --gpu".into()
        });
        out += &format!("{}gpus     {why}\n", mark(false));
    } else {
        out += &format!(
            "{}gpus     {} (CUDA {})\n",
            mark(true),
            g.count,
            g.cuda_version.as_deref().unwrap_or("unknown")
        );
        for gpu in &g.devices {
            out += &format!(
                "    {}: {}, {} MiB, driver {}\n",
                gpu.index, gpu.name, gpu.memory_mib, gpu.driver_version
            );
        }
    }
    for port in &report.ports {
        let state = match (&port.kfbox, port.free) {
            (Some(what), _) => format!("used by {what}"),
            (None, true) => "free".to_owned(),
            (None, false) => "in use by another program (`kfbox up --listen 127.0.0.1:PORT` and `--lab-port PORT` choose others)".to_owned(),
        };
        out += &format!(
            "{}port     127.0.0.1:{} {state}\n",
            mark(port.free || port.kfbox.is_some()),
            port.port
        );
    }
    out.pop();
    out
}

fn free_disk(home: &Path) -> Option<u64> {
    // The home may not exist yet: its nearest existing ancestor is on the same disk.
    let existing = home.ancestors().find(|p| p.exists())?;
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// The port of an `http://host:port/...` address.
fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// Python as kfbox uses it: the interpreter answers and kfbox's installer makes an environment
/// with it (fetching the installer the first time).
async fn python_check(settings: &GlobalSettings, printer: &Printer) -> Check {
    let python = settings.python.clone().unwrap_or_else(|| "python3".into());
    let envs = settings.python_envs();
    let progress = EnvProgress::new(settings, printer, "");
    let checked =
        tokio::task::spawn_blocking(move || envs.check(&|update| progress.update(update))).await;
    match checked {
        Ok(Ok(version)) => Check {
            ok: true,
            detail: format!(
                "{version} ({python}); uv {} made a test environment with it; environments under {}",
                kfbox_python::UV_VERSION,
                settings.home.python_dir().display()
            ),
        },
        Ok(Err(e)) => Check {
            ok: false,
            detail: format!("cannot make an environment with `{python}`: {e}"),
        },
        Err(e) => Check {
            ok: false,
            detail: e.to_string(),
        },
    }
}

async fn docker_report() -> DockerReport {
    let docker = match kfbox_docker::connect().await {
        Ok(docker) => docker,
        Err(e) => {
            return DockerReport {
                ok: false,
                detail: e.to_string().replace('\n', "; "),
                runtimes: Vec::new(),
                nvidia_runtime: false,
                cdi_nvidia: false,
            }
        }
    };
    let version = docker.version().await.ok();
    let info = docker.info().await.ok();
    let mut runtimes: Vec<String> = info
        .as_ref()
        .and_then(|i| i.runtimes.as_ref())
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    runtimes.sort();
    let cdi_dirs = info
        .as_ref()
        .and_then(|i| i.cdi_spec_dirs.clone())
        .unwrap_or_else(|| vec!["/etc/cdi".into(), "/var/run/cdi".into()]);
    let cdi_nvidia = cdi_dirs.iter().any(|dir| {
        fs_err::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                fs_err::read_to_string(e.path()).is_ok_and(|text| text.contains("nvidia.com/gpu"))
            })
        })
    });
    DockerReport {
        ok: true,
        detail: format!(
            "Docker {} (API {})",
            version
                .as_ref()
                .and_then(|v| v.version.clone())
                .unwrap_or_default(),
            version
                .as_ref()
                .and_then(|v| v.api_version.clone())
                .unwrap_or_default()
        ),
        nvidia_runtime: runtimes.iter().any(|r| r == "nvidia"),
        runtimes,
        cdi_nvidia,
    }
}

#[cfg(test)]
mod tests {
    use super::url_port;

    #[test]
    fn the_port_of_kfboxs_own_addresses_is_found() {
        assert_eq!(url_port("http://127.0.0.1:8888"), Some(8888));
        assert_eq!(
            url_port("http://127.0.0.1:8889/lab/tree/welcome.ipynb?token=ab:cd"),
            Some(8889)
        );
        assert_eq!(url_port("http://[::1]:9000/"), Some(9000));
        assert_eq!(url_port("http://localhost/"), None);
    }
}
