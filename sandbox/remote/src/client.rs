use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use kfbox_step::error_chain;

use crate::error::RemoteError;
use crate::model::{is_unset_time, NewRun, RemoteRun};
use crate::target::Target;

/// Talks to one KFP endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    target: Target,
}

impl Client {
    /// A client for `target`; fails only when its certificates cannot be read.
    pub fn new(target: Target) -> Result<Self, RemoteError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("kfbox/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = target.tls() {
            let bad = |reason: String| RemoteError::BadCredentials {
                target: target.address().to_owned(),
                reason,
            };
            let ca = reqwest::Certificate::from_pem(&tls.ca_pem)
                .map_err(|e| bad(format!("the CA certificate: {}", error_chain(&e))))?;
            let identity = reqwest::Identity::from_pem(&tls.identity_pem)
                .map_err(|e| bad(format!("the client certificate: {}", error_chain(&e))))?;
            // Only the cluster's own CA: its API server is no public site.
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca)
                .identity(identity);
        }
        let http = builder.build().map_err(|e| RemoteError::BadCredentials {
            target: target.address().to_owned(),
            reason: error_chain(&e),
        })?;
        Ok(Self { http, target })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether the endpoint answers as a KFP API, before anything is sent to it.
    pub async fn check(&self) -> Result<(), RemoteError> {
        let _: Value = self.call(Method::GET, "healthz", None::<&()>).await?;
        Ok(())
    }

    pub async fn create_run(&self, run: &NewRun) -> Result<RemoteRun, RemoteError> {
        self.call(Method::POST, "runs", Some(run)).await.map(tidy)
    }

    pub async fn get_run(&self, run_id: &str) -> Result<RemoteRun, RemoteError> {
        self.call(Method::GET, &format!("runs/{run_id}"), None::<&()>)
            .await
            .map(tidy)
    }

    pub async fn terminate_run(&self, run_id: &str) -> Result<(), RemoteError> {
        let _: Value = self
            .call(
                Method::POST,
                &format!("runs/{run_id}:terminate"),
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, RemoteError> {
        let url = self.target.api(path);
        let shown = url.to_string();
        let mut request = self.http.request(method, url);
        if let Some(token) = self.target.token() {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(body) => request.json(body),
            // KFP's gateway and kfbox both take an empty JSON object for bodiless POSTs.
            None => request.header(reqwest::header::CONTENT_TYPE, "application/json"),
        };
        let unreachable = |error: reqwest::Error| RemoteError::Unreachable {
            url: shown.clone(),
            reason: error_chain(&error),
            hint: self.target.down_hint().to_owned(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            let message = error_message(&text);
            return Err(
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    RemoteError::Unauthorized {
                        url: shown,
                        status: status.as_u16(),
                        message,
                    }
                } else {
                    RemoteError::Refused {
                        url: shown,
                        status: status.as_u16(),
                        message,
                    }
                },
            );
        }
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text).map_err(|error| RemoteError::NotKfp {
            url: shown,
            reason: error.to_string(),
        })
    }
}

/// Epoch times are the API's "unset".
fn tidy(mut run: RemoteRun) -> RemoteRun {
    let clear = |time: &mut Option<String>| {
        if time.as_deref().is_some_and(is_unset_time) {
            *time = None;
        }
    };
    clear(&mut run.created_at);
    clear(&mut run.finished_at);
    if let Some(details) = &mut run.run_details {
        for task in &mut details.task_details {
            clear(&mut task.start_time);
            clear(&mut task.end_time);
        }
    }
    run
}

/// The message of a KFP error body (`{"error", "code", "message"}`), else the text itself.
fn error_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    field("message")
        .or_else(|| field("error"))
        .unwrap_or_else(|| {
            let text = text.trim();
            if text.is_empty() {
                "(no message)".to_owned()
            } else {
                text.chars().take(500).collect()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfp_error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"error":"x","code":5,"message":"run abc not found"}"#),
            "run abc not found"
        );
        assert_eq!(error_message(r#"{"error":"bad spec"}"#), "bad spec");
        assert_eq!(error_message("  "), "(no message)");
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_says_where() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let target = Target::parse(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let error = Client::new(target).unwrap().check().await.unwrap_err();
        assert!(matches!(error, RemoteError::Unreachable { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("127.0.0.1:{port}/apis/v2beta1/healthz")),
            "{error}"
        );
    }
}
