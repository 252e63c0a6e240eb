use std::process::Command;

/// One NVIDIA GPU as `nvidia-smi` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub memory_mib: u64,
    pub driver_version: String,
}

/// What this machine has; empty when there is no NVIDIA driver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub gpus: Vec<Gpu>,
    /// Why nothing was found, when `nvidia-smi` exists but failed.
    pub problem: Option<String>,
}

const QUERY: &str = "--query-gpu=index,uuid,name,memory.total,driver_version";

/// Ask `nvidia-smi`. Without it there are no GPUs to hand out; with a broken driver the
/// inventory is empty and `problem` says what `nvidia-smi` printed.
pub fn detect() -> Inventory {
    let query = Command::new("nvidia-smi")
        .args([QUERY, "--format=csv,noheader,nounits"])
        .output();
    let output = match query {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Inventory::default(),
        Err(e) => {
            return Inventory {
                problem: Some(format!("cannot run nvidia-smi: {e}")),
                ..Inventory::default()
            }
        }
    };
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        return Inventory {
            problem: Some(format!("nvidia-smi failed: {}", said.trim())),
            ..Inventory::default()
        };
    }
    let gpus = match parse_gpu_query(&String::from_utf8_lossy(&output.stdout)) {
        Ok(gpus) => gpus,
        Err(problem) => {
            return Inventory {
                problem: Some(problem),
                ..Inventory::default()
            }
        }
    };
    Inventory {
        gpus,
        problem: None,
    }
}

/// The highest CUDA version the driver supports, from `nvidia-smi`'s banner (a second call,
/// so only `kfbox doctor` pays for it).
pub fn cuda_version() -> Option<String> {
    let output = Command::new("nvidia-smi").output().ok()?;
    parse_cuda_version(&String::from_utf8_lossy(&output.stdout))
}

/// Lines of `index, uuid, name, memory.total, driver_version` (csv, noheader, nounits).
fn parse_gpu_query(text: &str) -> Result<Vec<Gpu>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, uuid, name, memory, driver] = fields[..] else {
                return Err(format!("unexpected nvidia-smi line `{line}`"));
            };
            Ok(Gpu {
                index: index
                    .parse()
                    .map_err(|_| format!("unexpected GPU index `{index}` from nvidia-smi"))?,
                uuid: uuid.to_owned(),
                name: name.to_owned(),
                // `[N/A]` on some virtual GPUs.
                memory_mib: memory.parse().unwrap_or(0),
                driver_version: driver.to_owned(),
            })
        })
        .collect()
}

/// The `CUDA Version: 12.4` of `nvidia-smi`'s banner.
fn parse_cuda_version(text: &str) -> Option<String> {
    let rest = &text[text.find("CUDA Version:")? + "CUDA Version:".len()..];
    let version: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!version.is_empty()).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lines_become_gpus() {
        let text = "0, GPU-5a1c9e2f-0d9b-4a39-8b5e-1f6e2f1b7c11, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n\
                    1, GPU-77d0c1aa-1b2c-4d5e-9f00-aabbccddeeff, NVIDIA H100 80GB HBM3, [N/A], 550.54.15\n";
        let gpus = parse_gpu_query(text).unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(gpus[0].memory_mib, 81559);
        assert_eq!(gpus[1].index, 1);
        assert_eq!(gpus[1].memory_mib, 0);
        assert!(parse_gpu_query("garbage").is_err());
    }

    #[test]
    fn cuda_version_comes_from_the_banner() {
        let banner =
            "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |";
        assert_eq!(parse_cuda_version(banner).as_deref(), Some("12.4"));
        assert_eq!(parse_cuda_version("no driver"), None);
    }
}
