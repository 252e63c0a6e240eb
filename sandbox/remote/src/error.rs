use thiserror::Error;

#[derive(Debug, Error)]
pub enum RemoteError {
    #[error("`{given}` is not a KFP endpoint: give its address as http://HOST[:PORT][/PATH] or https://...")]
    BadTarget { given: String },
    #[error("cannot reach the KFP API at {url}: {reason}\n  hint: {hint}")]
    Unreachable {
        url: String,
        reason: String,
        hint: String,
    },
    #[error("cannot use the client certificate or CA for {target}: {reason}")]
    BadCredentials { target: String, reason: String },
    #[error("{url} refused the request ({status}): {message}\n  hint: the endpoint wants a token: pass --target-token or set KFBOX_TARGET_TOKEN")]
    Unauthorized {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} answered {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} answered with something that is not the KFP v2beta1 API: {reason}")]
    NotKfp { url: String, reason: String },
}
