//! Failures of API calls: the server's `Status` and the transport's errors.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use crate::client::kubeconfig::KubeconfigError;

/// A Kubernetes `Status` failure, flattened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...
    pub reason: String,
    pub message: String,
    /// `details.kind` and `details.name`, when the server named the object.
    pub kind: Option<String>,
    pub name: Option<String>,
    pub causes: Vec<StatusCause>,
}

/// One entry of `details.causes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCause {
    pub reason: String,
    pub field: String,
    pub message: String,
}

/// What went wrong talking to the API server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    #[error("Error from server ({}): {}", .0.reason, .0.full_message())]
    Api(Box<Status>),
    #[error("invalid request URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "The connection to the server {server} was refused - did you specify the right host or port?"
    )]
    ConnectionRefused { server: String },
    #[error("unable to connect to the server {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("the request to {url} timed out after {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("reading the response of {url}: {source}")]
    Body {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("decoding the response of {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl ClientError {
    /// The server's `Status`, when the server answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            ClientError::Api(status) => Some(status),
            _ => None,
        }
    }

    /// The HTTP status code the server answered with.
    pub fn code(&self) -> Option<u16> {
        self.status().map(|s| s.code)
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// 409 with reason `Conflict`: a stale resourceVersion.
    pub fn is_conflict(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 409 && s.reason == "Conflict")
    }

    pub fn is_already_exists(&self) -> bool {
        self.status().is_some_and(|s| s.reason == "AlreadyExists")
    }
}

impl Status {
    /// Reads a `Status` body; anything else gets the reason its HTTP code implies.
    pub fn from_response(code: StatusCode, body: &[u8]) -> Status {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        match parsed {
            Some(value) if value.get("kind").and_then(Value::as_str) == Some("Status") => {
                Status::from_value(&value, code.as_u16())
            }
            _ => {
                let text = String::from_utf8_lossy(body).trim().to_string();
                let message = if text.is_empty() {
                    format!(
                        "the server responded with the status code {} but did not return more information",
                        code.as_u16()
                    )
                } else if code == StatusCode::NOT_FOUND {
                    "the server could not find the requested resource".to_string()
                } else {
                    text
                };
                Status {
                    code: code.as_u16(),
                    reason: reason_for_code(code.as_u16()).to_string(),
                    message,
                    ..Status::default()
                }
            }
        }
    }

    /// Reads a `Status` object (also the `object` of a watch `ERROR` event).
    pub fn from_value(value: &Value, fallback_code: u16) -> Status {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let code = value
            .get("code")
            .and_then(Value::as_u64)
            .map_or(fallback_code, |c| c as u16);
        let details = value.get("details");
        let causes = details
            .and_then(|d| d.get("causes"))
            .and_then(Value::as_array)
            .map(|causes| {
                causes
                    .iter()
                    .map(|c| StatusCause {
                        reason: text(c.get("reason")),
                        field: text(c.get("field")),
                        message: text(c.get("message")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let reason = text(value.get("reason"));
        Status {
            code,
            reason: if reason.is_empty() {
                reason_for_code(code).to_string()
            } else {
                reason
            },
            message: text(value.get("message")),
            kind: details
                .and_then(|d| d.get("kind"))
                .and_then(Value::as_str)
                .map(str::to_string),
            name: details
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string),
            causes,
        }
    }

    /// The message, followed by each cause the message does not already spell out.
    pub fn full_message(&self) -> String {
        let mut message = self.message.clone();
        for cause in &self.causes {
            let line = match cause.field.as_str() {
                "" => cause.message.clone(),
                field => format!("{field}: {}", cause.message),
            };
            if !message.contains(&line) {
                message.push_str("\n* ");
                message.push_str(&line);
            }
        }
        message
    }
}

/// The `reason` Kubernetes gives each HTTP status code.
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_body_is_read_with_its_causes() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Pod \"x\" is invalid: spec.containers[0].image: Required value","reason":"Invalid","code":422,"details":{"name":"x","kind":"Pod","causes":[{"reason":"FieldValueRequired","field":"spec.containers[0].image","message":"Required value"},{"field":"metadata.name","message":"Too long"}]}}"#;
        let status = Status::from_response(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(status.code, 422);
        assert_eq!(status.reason, "Invalid");
        assert_eq!(status.name.as_deref(), Some("x"));
        assert_eq!(status.causes.len(), 2);
        assert_eq!(
            ClientError::Api(Box::new(status)).to_string(),
            "Error from server (Invalid): Pod \"x\" is invalid: spec.containers[0].image: Required value\n* metadata.name: Too long"
        );
    }

    #[test]
    fn non_status_bodies_get_the_reason_of_their_code() {
        let status = Status::from_response(StatusCode::NOT_FOUND, b"404 page not found");
        assert_eq!(status.reason, "NotFound");
        assert_eq!(
            status.message,
            "the server could not find the requested resource"
        );
        let status = Status::from_response(StatusCode::PAYLOAD_TOO_LARGE, b"");
        assert_eq!(status.reason, "RequestEntityTooLarge");
    }

    #[test]
    fn error_predicates_follow_reason_and_code() {
        let conflict = ClientError::Api(Box::new(Status {
            code: 409,
            reason: "Conflict".into(),
            ..Status::default()
        }));
        assert!(
            conflict.is_conflict() && !conflict.is_already_exists() && !conflict.is_not_found()
        );
        let exists = ClientError::Api(Box::new(Status {
            code: 409,
            reason: "AlreadyExists".into(),
            ..Status::default()
        }));
        assert!(exists.is_already_exists() && !exists.is_conflict());
    }
}
