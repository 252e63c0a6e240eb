//! A container's resource settings (`resources` in the IR), as numbers.
//!
//! The SDK writes each limit twice: the old float fields (`cpuLimit` in cores, `memoryLimit` in
//! GB) and the Kubernetes quantity strings (`resourceCpuLimit: "500m"`, `resourceMemoryLimit:
//! "1Gi"`) that the backend now reads. The strings win, as in the backend; requests are only
//! scheduling hints on a cluster and mean nothing on one machine.

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// CPU cores a step may use.
    pub cpu_limit: Option<f64>,
    /// Bytes of memory a step may use.
    pub memory_limit: Option<u64>,
    pub accelerator: Option<Accelerator>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accelerator {
    /// `set_accelerator_type`'s value (`NVIDIA_TESLA_T4`, `nvidia.com/gpu`, `TPU_V3`...); none
    /// when only a count was set (`set_gpu_limit`), which means NVIDIA GPUs as on a cluster.
    pub kind: Option<String>,
    pub count: u32,
}

impl Accelerator {
    /// Whether NVIDIA GPUs satisfy this request: the backend maps every type that does not name
    /// another vendor to `nvidia.com/gpu`.
    pub fn wants_nvidia(&self) -> bool {
        match &self.kind {
            None => true,
            Some(kind) => {
                let kind = kind.to_ascii_lowercase();
                !(kind.contains("tpu") || kind.contains("amd") || kind.contains("intel"))
            }
        }
    }

    pub fn describe(&self) -> String {
        let unit = if self.count == 1 { "GPU" } else { "GPUs" };
        match &self.kind {
            Some(kind) => format!("{} {unit} of type {kind}", self.count),
            None => format!("{} {unit}", self.count),
        }
    }
}

impl Resources {
    /// Read `resources`; a value that is a placeholder (set from a pipeline parameter) is left
    /// unset, since only a cluster resolves those.
    pub fn from_ir(resources: Option<&Value>) -> Result<Self, String> {
        let Some(resources) = resources.and_then(Value::as_object) else {
            return Ok(Self::default());
        };
        let text = |key: &str| -> Option<String> {
            match resources.get(key)? {
                Value::String(s) if s.contains("{{") => None,
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let float = |key: &str| resources.get(key).and_then(Value::as_f64);
        let cpu_limit = match text("resourceCpuLimit") {
            Some(q) => Some(parse_quantity(&q).ok_or_else(|| {
                format!("`resourceCpuLimit` `{q}` is not a CPU quantity (e.g. `2`, `500m`)")
            })?),
            None => float("cpuLimit"),
        };
        let memory_limit = match text("resourceMemoryLimit") {
            Some(q) => Some(parse_quantity(&q).ok_or_else(|| {
                format!("`resourceMemoryLimit` `{q}` is not a memory quantity (e.g. `512M`, `2Gi`)")
            })? as u64),
            None => float("memoryLimit").map(|gb| (gb * 1e9) as u64),
        };
        let accelerator = match resources.get("accelerator").and_then(Value::as_object) {
            None => None,
            Some(accelerator) => {
                let field = |names: &[&str]| {
                    names.iter().find_map(|n| match accelerator.get(*n)? {
                        Value::String(s) if !s.is_empty() && !s.contains("{{") => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                };
                let count = match field(&["resourceCount", "count"]) {
                    Some(c) => c
                        .parse::<u32>()
                        .map_err(|_| format!("accelerator count `{c}` is not a whole number"))?,
                    None => 0,
                };
                (count > 0).then(|| Accelerator {
                    kind: field(&["resourceType", "type"]),
                    count,
                })
            }
        };
        Ok(Self {
            cpu_limit,
            memory_limit,
            accelerator,
        })
    }
}

/// A Kubernetes quantity (`500m`, `2`, `1.5`, `512M`, `1Gi`, `1e9`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("m", 1e-3),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, scale) = suffixes
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((text, 1.0));
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_follow_kubernetes_suffixes() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("512M"), Some(512e6));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("1e9"), Some(1e9));
        assert_eq!(parse_quantity("12Q"), None);
        assert_eq!(parse_quantity("-1"), None);
    }

    #[test]
    fn strings_win_over_floats_and_gpu_limits_have_no_type() {
        let sdk = json!({
            "accelerator": {"count": "1", "resourceCount": "1", "resourceType": "NVIDIA_TESLA_T4", "type": "NVIDIA_TESLA_T4"},
            "cpuLimit": 2.0, "memoryLimit": 0.512,
            "resourceCpuLimit": "1500m", "resourceMemoryLimit": "512Mi"
        });
        let r = Resources::from_ir(Some(&sdk)).unwrap();
        assert_eq!(r.cpu_limit, Some(1.5));
        assert_eq!(r.memory_limit, Some(512 * 1024 * 1024));
        let a = r.accelerator.unwrap();
        assert_eq!((a.kind.as_deref(), a.count), (Some("NVIDIA_TESLA_T4"), 1));
        assert!(a.wants_nvidia());

        let gpu_limit =
            json!({"accelerator": {"count": "2", "resourceCount": "2"}, "cpuLimit": 1.0});
        let r = Resources::from_ir(Some(&gpu_limit)).unwrap();
        assert_eq!(r.cpu_limit, Some(1.0));
        assert_eq!(r.accelerator.unwrap().kind, None);

        let tpu = json!({"accelerator": {"resourceType": "TPU_V3", "resourceCount": "8"}});
        assert!(!Resources::from_ir(Some(&tpu))
            .unwrap()
            .accelerator
            .unwrap()
            .wants_nvidia());

        let bad = json!({"resourceMemoryLimit": "lots"});
        assert!(Resources::from_ir(Some(&bad))
            .unwrap_err()
            .contains("`lots`"));
        let placeholder =
            json!({"resourceCpuLimit": "{{$.inputs.parameters['pipelinechannel--cpu']}}"});
        assert_eq!(
            Resources::from_ir(Some(&placeholder)).unwrap().cpu_limit,
            None
        );
    }
}
