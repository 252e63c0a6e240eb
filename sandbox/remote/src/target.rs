use url::Url;

use crate::error::RemoteError;

/// A KFP endpoint: the address its API and UI are served under, and the bearer token to send.
#[derive(Debug, Clone)]
pub struct Target {
    base: Url,
    token: Option<String>,
}

impl Target {
    /// `http(s)://HOST[:PORT][/PATH]`; the API lives under `PATH/apis/v2beta1`.
    pub fn parse(given: &str, token: Option<String>) -> Result<Self, RemoteError> {
        let bad = || RemoteError::BadTarget {
            given: given.to_owned(),
        };
        let mut base = Url::parse(given).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https")
            || base.host_str().is_none()
            || base.query().is_some()
            || !base.username().is_empty()
        {
            return Err(bad());
        }
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// The address as given, without a trailing slash.
    pub fn address(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// An API path, e.g. `runs/ID`, under this endpoint.
    pub(crate) fn api(&self, path: &str) -> Url {
        self.base
            .join(&format!("apis/v2beta1/{path}"))
            .expect("a relative path joins onto an http(s) base")
    }

    /// The run's page in the endpoint's UI (KFP's and kfbox's use the same route).
    pub fn run_page(&self, run_id: &str) -> String {
        format!("{}/#/runs/details/{run_id}", self.address())
    }
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
            target.run_page("abc"),
            "https://kfp.example.com/pipeline/#/runs/details/abc"
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
    fn an_empty_token_is_no_token() {
        let target = Target::parse("http://localhost:1", Some(String::new())).unwrap();
        assert_eq!(target.token(), None);
    }
}
