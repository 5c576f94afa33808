//! Errors as the server answers them: JSON `{code, code_number, message}` with the
//! HTTP status that matches the code, and the gRPC status of seed 000's table.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Code, Error};

/// An error on its way to an HTTP client.
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status of each code (docs/admin.md).
pub(crate) fn status_of(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body of an error.
pub(crate) fn body(e: &Error) -> serde_json::Value {
    json!({
        "code": e.code().name(),
        "code_number": e.code() as i32,
        "message": e.message(),
    })
}

/// A response with `status` and the JSON of `e` (for a status no code gives, 405).
pub(crate) fn respond(status: StatusCode, e: &Error) -> Response {
    (status, Json(body(e))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        respond(status_of(self.0.code()), &self.0)
    }
}

/// The gRPC status of a core error.
pub(crate) fn grpc_status(e: &Error) -> tonic::Status {
    let code = match e.code() {
        Code::InvalidArgument => tonic::Code::InvalidArgument,
        Code::NotFound => tonic::Code::NotFound,
        Code::ResourceExhausted => tonic::Code::ResourceExhausted,
        Code::FailedPrecondition => tonic::Code::FailedPrecondition,
        Code::Unavailable => tonic::Code::Unavailable,
        Code::Timeout => tonic::Code::DeadlineExceeded,
        Code::Cancelled => tonic::Code::Cancelled,
        Code::Unauthenticated => tonic::Code::Unauthenticated,
        Code::PermissionDenied => tonic::Code::PermissionDenied,
        _ => tonic::Code::Internal,
    };
    tonic::Status::new(code, e.message().to_string())
}
