//! Errors as the Kubeflow Pipelines API server answers them: an HTTP status and a JSON body
//! with the gRPC code, as grpc-gateway writes a `google.rpc.Status` (plus the older `error`
//! field that v1 clients read).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kfbox_store::StoreError;

use crate::model::Status;

/// gRPC status codes the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unauthenticated = 16,
}

impl Code {
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidArgument | Self::FailedPrecondition => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists => StatusCode::CONFLICT,
            Self::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// The HTTP status, where it is not the one the gRPC code maps to (415 for a body of the
    /// wrong type).
    status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
        }
    }

    pub fn with_status(self, status: StatusCode) -> Self {
        Self {
            status: Some(status),
            ..self
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    fn body(self) -> Status {
        Status {
            code: self.code as i32,
            error: self.message.clone(),
            message: self.message,
            details: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(self.code.status())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == Code::Internal {
            tracing::error!("internal error: {}", self.message);
        }
        let status = self.status();
        (status, axum::Json(self.body())).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let code = match &error {
            StoreError::RunNotFound(_)
            | StoreError::NotFound { .. }
            | StoreError::ArtifactNotFound(_) => Code::NotFound,
            StoreError::Exists { .. } => Code::AlreadyExists,
            StoreError::BadPageToken(_)
            | StoreError::UnknownField { .. }
            | StoreError::BadFilter(_)
            | StoreError::AmbiguousRun { .. } => Code::InvalidArgument,
            StoreError::RunActive(_) | StoreError::Precondition(_) => Code::FailedPrecondition,
            StoreError::NewerSchema { .. }
            | StoreError::MlmdSchema { .. }
            | StoreError::Sqlite(_)
            | StoreError::Files { .. } => Code::Internal,
        };
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self::new(code, message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Errors axum answers by itself (a malformed multipart or query, a wrong method, a body too
/// large) get the API's error body too, with their own status.
pub(crate) async fn uniform_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::Unimplemented,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        s if s.is_server_error() => Code::Internal,
        _ => Code::InvalidArgument,
    };
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    (status, axum::Json(ApiError::new(code, message).body())).into_response()
}
