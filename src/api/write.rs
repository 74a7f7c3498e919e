//! What a client asks of a write besides the object (the query parameters of create, update,
//! patch and delete): a dry run, the field manager, field validation, and for server-side
//! apply whether to force conflicts; and what a write answers besides the object: warnings.

use serde_json::Value;

use super::error::{ApiError, ApiResult, Cause};
use super::field_validation::{self, FieldValidation};
use super::kinds::Resource;

/// Kubernetes' limit on a field manager's name.
const MAX_MANAGER_LENGTH: usize = 128;

/// How a write is carried out.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: admitted and answered, not stored.
    pub dry_run: bool,
    /// Who is writing, for `metadata.managedFields`; none for in-process writers.
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    /// The `duplicate field "path"` problems found while parsing the body.
    pub duplicate_fields: Vec<String>,
    /// Server-side apply takes fields other managers own instead of reporting conflicts.
    pub force: bool,
}

/// A write's outcome: the object as stored (or as it would be, on a dry run) and the warnings
/// for the client.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

impl WriteOptions {
    /// Options from query parameters (`dryRun`, `fieldManager`, `fieldValidation`, `force`).
    ///
    /// # Errors
    /// 400 for an unsupported `dryRun` or `fieldValidation`, 422 for a bad `fieldManager`.
    pub fn parse(
        dry_run: Option<&str>,
        field_manager: Option<&str>,
        field_validation: Option<&str>,
        force: bool,
    ) -> ApiResult<Self> {
        let dry_run = match dry_run.unwrap_or("") {
            "" => false,
            "All" => true,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                )));
            }
        };
        let field_manager = field_manager.filter(|m| !m.is_empty());
        if let Some(manager) = field_manager
            .filter(|m| m.len() > MAX_MANAGER_LENGTH || m.chars().any(|c| c.is_control()))
        {
            return Err(ApiError::Invalid {
                kind: "PatchOptions".into(),
                name: String::new(),
                causes: vec![Cause::invalid(
                    "fieldManager",
                    manager,
                    "must be at most 128 printable characters",
                )],
            });
        }
        Ok(Self {
            dry_run,
            field_manager: field_manager.map(str::to_string),
            field_validation: FieldValidation::parse(field_validation)?,
            duplicate_fields: Vec::new(),
            force,
        })
    }

    /// Checks `value`, an object of `resource`, for unknown fields (and the body's duplicate
    /// fields); returns the warnings to send.
    ///
    /// # Errors
    /// 400 when validation is Strict and a field is unknown or repeated.
    pub fn check_fields(&self, resource: &Resource, value: &Value) -> ApiResult<Vec<String>> {
        if self.field_validation == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let mut problems = self.duplicate_fields.clone();
        problems.extend(field_validation::unknown_fields(resource, value));
        self.field_validation.judge(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_parse_and_bad_ones_are_refused() {
        let options =
            WriteOptions::parse(Some("All"), Some("kubectl"), Some("Strict"), true).unwrap();
        assert!(options.dry_run && options.force);
        assert_eq!(options.field_manager.as_deref(), Some("kubectl"));
        assert_eq!(options.field_validation, FieldValidation::Strict);
        let bad_dry_run = WriteOptions::parse(Some("Some"), None, None, false).unwrap_err();
        assert_eq!(bad_dry_run.code(), 400);
        let long = "m".repeat(129);
        let bad_manager = WriteOptions::parse(None, Some(&long), None, false).unwrap_err();
        assert_eq!(bad_manager.code(), 422);
    }
}
