//! Errors as the Kubeflow Pipelines API server answers them: an HTTP status and a JSON body
//! with the gRPC code, as grpc-gateway writes a `google.rpc.Status` (plus the older `error`
//! field that v1 clients read).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kfbox_store::StoreError;
use serde_json::json;

/// gRPC status codes the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
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

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == Code::Internal {
            tracing::error!("internal error: {}", self.message);
        }
        let body = json!({
            "error": self.message,
            "code": self.code as i32,
            "message": self.message,
            "details": [],
        });
        (self.code.status(), axum::Json(body)).into_response()
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
