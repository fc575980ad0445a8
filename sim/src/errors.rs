//! Twilio's error body: `{"code", "message", "more_info", "status"}`, with the HTTP status
//! repeated inside the body as Twilio does.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to the client; every non-2xx response of the simulator is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u32,
    message: &'a str,
    more_info: String,
    status: u16,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 20001: a parameter is missing or malformed.
    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 20001, message)
    }

    /// 20003: Basic auth missing or wrong.
    pub fn authentication(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, 20003, message)
    }

    /// 20403: authenticated, but this credential may not use this API (a restricted key on the
    /// REST API v2010). Not from Twilio's OpenAPI documents, which declare no 403: the code and
    /// its message "Forbidden" are from Twilio's error pages.
    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, 20403, "Forbidden")
    }

    /// 20404 for a path or resource that does not exist (for this account).
    pub fn not_found(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 20004: the path exists but not with this HTTP method.
    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            20004,
            format!("Method not allowed: {method}"),
        )
    }

    /// 20429 with `Retry-After: 1`.
    pub fn too_many_requests() -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
        }
    }

    /// 20500 (injected fault).
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "An internal server error has occurred",
        )
    }

    /// 20503 (injected fault).
    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service is unavailable. Please try again",
        )
    }

    /// 63100: WhatsApp-level validation error.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            63100,
            format!("Validation error: {}", message.into()),
        )
    }

    /// 63110: the number is registered on WhatsApp elsewhere.
    pub fn already_registered(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 63110, message)
    }

    /// 63114: verification codes or attempts exhausted.
    pub fn too_many_codes() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            63114,
            "Too many verification codes requested; wait before requesting another",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            more_info: more_info(self.code),
            status: self.status.as_u16(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

/// Twilio's documentation page for an error code.
pub fn more_info(code: u32) -> String {
    format!("https://www.twilio.com/docs/errors/{code}")
}
