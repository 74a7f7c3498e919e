//! API errors and their Kubernetes `Status` form.

use serde_json::{Value, json};

use crate::store;

/// One invalid field, as `details.causes[]` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// Path of the field, e.g. `spec.containers[0].image`.
    pub field: String,
    /// Kubernetes' reason type: `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    pub message: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: impl BadValue, why: &str) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {why}", value.render()),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl std::fmt::Display) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: \"{value}\""),
        }
    }

    pub fn unsupported(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        allowed: &[&str],
    ) -> Self {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Self {
            field: field.into(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                allowed.join(", ")
            ),
        }
    }

    pub fn forbidden(field: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {}", why.into()),
        }
    }
}

/// A refused value as Kubernetes prints it in a cause: strings quoted, numbers bare, other
/// values (a label map) as given.
pub trait BadValue {
    fn render(&self) -> String;
}

impl BadValue for str {
    fn render(&self) -> String {
        format!("\"{self}\"")
    }
}

impl BadValue for String {
    fn render(&self) -> String {
        self.as_str().render()
    }
}

impl<T: BadValue + ?Sized> BadValue for &T {
    fn render(&self) -> String {
        (**self).render()
    }
}

macro_rules! bare_values {
    ($($number:ty),*) => {$(
        impl BadValue for $number {
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

bare_values!(i32, i64, u32, u64, usize, bool);

/// A value printed as it is, unquoted (Go's `%#v` of a structure).
pub struct Bare(pub String);

impl BadValue for Bare {
    fn render(&self) -> String {
        self.0.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { resource: String, name: String },
    /// Server-side apply would change fields other managers own.
    #[error(
        "Apply failed with {} conflict{}: {summary}",
        causes.len(),
        if causes.len() == 1 { "" } else { "s" }
    )]
    ApplyConflict { summary: String, causes: Vec<Cause> },
    #[error("{kind} \"{name}\" is invalid: {}", summary(.causes))]
    Invalid {
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed patch that does not apply (a JSON patch's failed `test`).
    #[error("{0}")]
    UnprocessablePatch(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFoundPath(String),
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("request entity too large: limit is {limit} bytes")]
    TooLarge { limit: usize },
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Unsupported(String),
    /// The client accepts no media type this server answers in.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("Too many requests, please try again later.")]
    TooManyRequests,
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// The API server could not be reached (a remote node's view of an outage).
    #[error("the API server is unavailable: {0}")]
    Unavailable(String),
}

fn summary(causes: &[Cause]) -> String {
    causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect::<Vec<_>>()
        .join(", ")
}

fn causes_json(causes: &[Cause]) -> Vec<Value> {
    causes
        .iter()
        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
        .collect()
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NotFoundPath(_) => 404,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } | ApiError::UnprocessablePatch(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::TooLarge { .. } => 413,
            ApiError::Gone { .. } => 410,
            ApiError::Unauthorized => 401,
            ApiError::Unsupported(_) => 415,
            ApiError::NotAcceptable(_) => 406,
            ApiError::TooManyRequests => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NotFoundPath(_) => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::UnprocessablePatch(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::Gone { .. } => "Expired",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Unsupported(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::TooManyRequests => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
        }
    }

    /// The Kubernetes `Status` body for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name } => {
                Some(json!({"name": name, "kind": resource}))
            }
            ApiError::Invalid { kind, name, causes } => Some(json!({
                "name": name,
                "kind": kind,
                "causes": causes_json(causes),
            })),
            ApiError::ApplyConflict { causes, .. } => Some(json!({"causes": causes_json(causes)})),
            ApiError::TooManyRequests => Some(json!({"retryAfterSeconds": 1})),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }

    /// Translates a store error about `name` of `resource` (plural).
    pub fn from_store(error: store::Error, resource: &str, name: &str) -> Self {
        let (resource, name) = (resource.to_string(), name.to_string());
        match error {
            store::Error::AlreadyExists(_) => ApiError::AlreadyExists { resource, name },
            store::Error::NotFound(_) => ApiError::NotFound { resource, name },
            store::Error::Conflict { .. } => ApiError::Conflict { resource, name },
            store::Error::Compacted { requested, oldest } => ApiError::Gone { requested, oldest },
            store::Error::Backend(message) => ApiError::Internal(message),
            error @ store::Error::Stopped(_) => ApiError::Unavailable(error.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_names_each_field() {
        let error = ApiError::Invalid {
            kind: "Pod".into(),
            name: "web".into(),
            causes: vec![Cause::required("spec.containers[0].image")],
        };
        let status = error.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
        assert_eq!(
            status["message"],
            "Pod \"web\" is invalid: spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn a_stopped_store_answers_503_saying_why_and_what_recovers_it() {
        let stopped = store::Error::Stopped("committing revision 7 to disk failed".into());
        let status = ApiError::from_store(stopped, "pods", "web").to_status();
        assert_eq!(status["code"], 503);
        assert_eq!(status["reason"], "ServiceUnavailable");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("revision 7") && message.contains("restart"),
            "{message}"
        );
    }
}
