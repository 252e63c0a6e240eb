//! Node selectors on a GPU product label: on a cluster they put a step on a node with that
//! kind of GPU; on one machine with several kinds, they choose among its GPUs.

/// Labels that name a node's GPU model: NVIDIA's GPU feature discovery writes the product name
/// with dashes for spaces (`NVIDIA-A100-SXM4-40GB`); GKE writes its accelerator names
/// (`nvidia-tesla-t4`, `nvidia-h100-80gb`).
pub const PRODUCT_LABELS: [&str; 2] =
    ["nvidia.com/gpu.product", "cloud.google.com/gke-accelerator"];

/// A node selector's demand for one GPU model, e.g. `nvidia.com/gpu.product=NVIDIA-L4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSelector {
    pub label: String,
    pub value: String,
}

impl ProductSelector {
    /// The selector's GPU product demand, when one of its labels names one.
    pub fn from_node_selector<'a>(
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Option<Self> {
        labels
            .into_iter()
            .find(|(label, _)| PRODUCT_LABELS.contains(&label.as_str()))
            .map(|(label, value)| Self {
                label: label.clone(),
                value: value.clone(),
            })
    }

    /// Whether a GPU `nvidia-smi` calls `name` is that product: every word of the label's
    /// value is a word of the name, brand words aside (`nvidia-tesla-t4` is a `Tesla T4`,
    /// `nvidia-a100-80gb` an `NVIDIA A100-SXM4-80GB`).
    pub fn matches(&self, name: &str) -> bool {
        let words = |text: &str| -> Vec<String> {
            text.split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_ascii_lowercase)
                .filter(|w| w != "nvidia" && w != "tesla")
                .collect()
        };
        let have = words(name);
        let want = words(&self.value);
        !want.is_empty() && want.iter().all(|w| have.contains(w))
    }
}

impl std::fmt::Display for ProductSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.label, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(label: &str, value: &str) -> ProductSelector {
        ProductSelector {
            label: label.into(),
            value: value.into(),
        }
    }

    #[test]
    fn feature_discovery_and_gke_names_match_nvidia_smi_names() {
        let gfd = selector(PRODUCT_LABELS[0], "NVIDIA-A100-SXM4-40GB");
        assert!(gfd.matches("NVIDIA A100-SXM4-40GB"));
        assert!(!gfd.matches("NVIDIA A100-SXM4-80GB"));
        let gke = selector(PRODUCT_LABELS[1], "nvidia-tesla-t4");
        assert!(gke.matches("Tesla T4"));
        assert!(!gke.matches("NVIDIA L4"));
        assert!(selector(PRODUCT_LABELS[1], "nvidia-h100-80gb").matches("NVIDIA H100 80GB HBM3"));
        assert!(selector(PRODUCT_LABELS[1], "nvidia-l4").matches("NVIDIA L4"));
        assert!(!selector(PRODUCT_LABELS[1], "nvidia").matches("NVIDIA L4"));
    }

    #[test]
    fn only_product_labels_make_a_selector() {
        let labels = [
            ("disktype".to_owned(), "ssd".to_owned()),
            (PRODUCT_LABELS[1].to_owned(), "nvidia-l4".to_owned()),
        ];
        let found = ProductSelector::from_node_selector(labels.iter().map(|(k, v)| (k, v)));
        assert_eq!(
            found.unwrap().to_string(),
            "cloud.google.com/gke-accelerator=nvidia-l4"
        );
        assert!(
            ProductSelector::from_node_selector(labels[..1].iter().map(|(k, v)| (k, v))).is_none()
        );
    }
}
