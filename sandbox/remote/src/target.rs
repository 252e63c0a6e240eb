use url::Url;

use crate::error::RemoteError;

/// A KFP endpoint: the address its API is served under, how to authenticate, and what to tell
/// the user about it.
#[derive(Debug, Clone)]
pub struct Target {
    base: Url,
    token: Option<String>,
    tls: Option<ClientTls>,
    /// Where the endpoint's UI shows a run, when it can be opened in a browser as is.
    ui: Option<Url>,
    /// What the user calls it, e.g. the address, or "cluster `kfbox`".
    shown: String,
    /// What to check when it does not answer.
    down_hint: String,
}

/// Mutual TLS as a kubeconfig describes it: the server's CA and the client's certificate and
/// key (PEM, certificate first).
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    pub identity_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.write_str("ClientTls { .. }")
    }
}

impl Target {
    /// `http(s)://HOST[:PORT][/PATH]`; the API lives under `PATH/apis/v2beta1`.
    pub fn parse(given: &str, token: Option<String>) -> Result<Self, RemoteError> {
        let base = http_base(given).ok_or_else(|| RemoteError::BadTarget {
            given: given.to_owned(),
        })?;
        let shown = base.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            ui: Some(base.clone()),
            base,
            token: token.filter(|t| !t.is_empty()),
            tls: None,
            shown,
            down_hint: "is the endpoint up? (`kfbox status` for kfbox up's own)".to_owned(),
        })
    }

    /// A KFP API server reached through a Kubernetes API server's service proxy
    /// (`/api/v1/namespaces/NS/services/SERVICE:PORT/proxy/`), authenticated with the
    /// kubeconfig's client certificate: nothing is published on the host for it.
    pub fn kubernetes_service(
        api_server: &str,
        namespace: &str,
        service: &str,
        tls: ClientTls,
        shown: String,
        down_hint: String,
    ) -> Result<Self, RemoteError> {
        let bad = || RemoteError::BadTarget {
            given: api_server.to_owned(),
        };
        let base = http_base(api_server)
            .ok_or_else(bad)?
            .join(&format!(
                "api/v1/namespaces/{namespace}/services/{service}/proxy/"
            ))
            .map_err(|_| bad())?;
        Ok(Self {
            base,
            token: None,
            tls: Some(tls),
            ui: None,
            shown,
            down_hint,
        })
    }

    /// What the user calls the endpoint.
    pub fn address(&self) -> &str {
        &self.shown
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub(crate) fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    pub(crate) fn down_hint(&self) -> &str {
        &self.down_hint
    }

    /// An API path, e.g. `runs/ID`, under this endpoint.
    pub(crate) fn api(&self, path: &str) -> Url {
        self.base
            .join(&format!("apis/v2beta1/{path}"))
            .expect("a relative path joins onto an http(s) base")
    }

    /// The run's page in the endpoint's UI (KFP's and kfbox's use the same route); none when
    /// the UI is not reachable from a browser as the API is.
    pub fn run_page(&self, run_id: &str) -> Option<String> {
        self.ui.as_ref().map(|ui| {
            format!(
                "{}/#/runs/details/{run_id}",
                ui.as_str().trim_end_matches('/')
            )
        })
    }
}

/// An http(s) address with a host and nothing but a path, ending in `/` so paths join under it.
fn http_base(given: &str) -> Option<Url> {
    let mut base = Url::parse(given).ok()?;
    if !matches!(base.scheme(), "http" | "https")
        || base.host_str().is_none()
        || base.query().is_some()
        || !base.username().is_empty()
    {
        return None;
    }
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_go_under_the_given_prefix() {
        let target = Target::parse("https://kfp.example.com/pipeline", None).unwrap();
        assert_eq!(
            target.api("runs/abc").as_str(),
            "https://kfp.example.com/pipeline/apis/v2beta1/runs/abc"
        );
        assert_eq!(
            target.run_page("abc").as_deref(),
            Some("https://kfp.example.com/pipeline/#/runs/details/abc")
        );
        let local = Target::parse("http://127.0.0.1:8888/", None).unwrap();
        assert_eq!(
            local.api("healthz").as_str(),
            "http://127.0.0.1:8888/apis/v2beta1/healthz"
        );
        assert_eq!(local.address(), "http://127.0.0.1:8888");
    }

    #[test]
    fn only_plain_http_addresses_are_targets() {
        for given in [
            "cluster.example.com",
            "ftp://kfp.example.com",
            "http://",
            "http://user:pw@kfp.example.com",
            "http://kfp.example.com/?x=1",
            "file:///etc/passwd",
        ] {
            let error = Target::parse(given, None).unwrap_err();
            assert!(
                matches!(error, RemoteError::BadTarget { .. }),
                "{given}: {error}"
            );
        }
    }

    #[test]
    fn a_kubernetes_service_is_reached_through_the_api_servers_proxy() {
        let tls = ClientTls {
            ca_pem: Vec::new(),
            identity_pem: Vec::new(),
        };
        let target = Target::kubernetes_service(
            "https://127.0.0.1:6443",
            "kubeflow",
            "ml-pipeline:8888",
            tls,
            "cluster `kfbox`".to_owned(),
            "kfbox cluster status".to_owned(),
        )
        .unwrap();
        assert_eq!(
            target.api("runs").as_str(),
            "https://127.0.0.1:6443/api/v1/namespaces/kubeflow/services/ml-pipeline:8888/proxy/apis/v2beta1/runs"
        );
        assert_eq!(target.run_page("abc"), None);
        assert_eq!(target.address(), "cluster `kfbox`");
        assert_eq!(format!("{:?}", target.tls().unwrap()), "ClientTls { .. }");
    }

    #[test]
    fn an_empty_token_is_no_token() {
        let target = Target::parse("http://localhost:1", Some(String::new())).unwrap();
        assert_eq!(target.token(), None);
    }
}
