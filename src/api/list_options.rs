//! `ListOptions`: what a list or watch asks for, read and checked from the query as
//! kube-apiserver's `ValidateListOptions` checks it.

use serde_json::Value;

use super::error::{ApiError, ApiResult, Cause};
use super::kinds::Resource;
use super::selectors::{FieldSelector, LabelSelector};
use crate::store::Revision;

/// What a list or watch asks for.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// For a watch: stream changes after this revision; `None` starts with the current state.
    pub resource_version: Option<Revision>,
    /// For a watch (`sendInitialEvents`): start with the current state as `ADDED` events closed
    /// by a BOOKMARK annotated `k8s.io/initial-events-end`. Unset: the state only when no
    /// `resource_version` is given, and no closing BOOKMARK.
    pub send_initial_events: Option<bool>,
    /// For a watch (`allowWatchBookmarks`): periodic BOOKMARK events carrying the progress.
    pub bookmarks: bool,
    /// For a list (`resourceVersionMatch=Exact`): the state at exactly `resource_version`,
    /// which only the current state can serve here (the store keeps no snapshots).
    pub exact: bool,
}

impl ListOptions {
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// Reads the options of a list (`watch` false) or watch of `resource` from the query
    /// parameters `param` finds.
    ///
    /// # Errors
    /// 400 for a selector or version that does not parse; 422 naming the parameter for
    /// combinations Kubernetes refuses (`sendInitialEvents` on a list, or without
    /// `resourceVersionMatch=NotOlderThan` and `allowWatchBookmarks`).
    pub fn from_query<'a>(
        resource: &Resource,
        watch: bool,
        param: impl Fn(&str) -> Option<&'a str>,
    ) -> ApiResult<Self> {
        let send_initial_events = match param("sendInitialEvents") {
            None => None,
            Some(text) => Some(boolean("sendInitialEvents", text)?),
        };
        let bookmarks = match param("allowWatchBookmarks") {
            None => false,
            Some(text) => boolean("allowWatchBookmarks", text)?,
        };
        let version = param("resourceVersion").unwrap_or("");
        let version_match = param("resourceVersionMatch").unwrap_or("");
        let causes = version_causes(
            watch,
            version,
            version_match,
            send_initial_events,
            bookmarks,
        );
        if !causes.is_empty() {
            return Err(ApiError::Invalid {
                kind: "ListOptions.meta.k8s.io".into(),
                name: String::new(),
                causes,
            });
        }
        Ok(Self {
            labels: LabelSelector::parse(param("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(param("fieldSelector").unwrap_or(""), resource)?,
            resource_version: parse_resource_version(Some(version))?,
            send_initial_events,
            bookmarks,
            exact: !watch && version_match == "Exact",
        })
    }
}

fn boolean(name: &str, text: &str) -> ApiResult<bool> {
    match text {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::BadRequest(format!(
            "{name}: invalid value {text:?}, expected true or false"
        ))),
    }
}

/// What Kubernetes refuses in the combination of `resourceVersion`, `resourceVersionMatch`,
/// `sendInitialEvents` and `allowWatchBookmarks`.
fn version_causes(
    watch: bool,
    version: &str,
    version_match: &str,
    send_initial_events: Option<bool>,
    bookmarks: bool,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    if !["", "NotOlderThan", "Exact"].contains(&version_match) {
        let allowed = ["Exact", "NotOlderThan"];
        causes.push(Cause::unsupported(
            "resourceVersionMatch",
            version_match,
            &allowed,
        ));
    }
    match (watch, send_initial_events.is_some()) {
        (false, true) => causes.push(Cause::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        )),
        (true, true) => {
            if version_match != "NotOlderThan" {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                causes.push(Cause::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
        }
        (true, false) if !version_match.is_empty() => causes.push(Cause::forbidden(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        )),
        (false, false) if !version_match.is_empty() && version.is_empty() => {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        (false, false) if version_match == "Exact" && version == "0" => {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        _ => {}
    }
    causes
}

/// Parses `?resourceVersion=`: empty and `0` mean "from the current state".
pub fn parse_resource_version(text: Option<&str>) -> ApiResult<Option<Revision>> {
    match text {
        None | Some("") | Some("0") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion: {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::PODS;

    fn read(watch: bool, query: &[(&str, &str)]) -> ApiResult<ListOptions> {
        ListOptions::from_query(&PODS, watch, |name| {
            query.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        })
    }

    fn refused_fields(watch: bool, query: &[(&str, &str)]) -> Vec<String> {
        match read(watch, query) {
            Err(ApiError::Invalid { causes, .. }) => causes.into_iter().map(|c| c.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn a_watch_list_as_client_go_sends_it_is_accepted() {
        let options = read(
            true,
            &[
                ("sendInitialEvents", "true"),
                ("resourceVersionMatch", "NotOlderThan"),
                ("allowWatchBookmarks", "true"),
            ],
        )
        .unwrap();
        assert_eq!(options.send_initial_events, Some(true));
        assert!(options.bookmarks);
        assert_eq!(options.resource_version, None);
    }

    #[test]
    fn send_initial_events_without_its_companions_names_each_missing_one() {
        let fields = refused_fields(true, &[("sendInitialEvents", "true")]);
        assert_eq!(fields, ["resourceVersionMatch", "allowWatchBookmarks"]);
        let fields = refused_fields(false, &[("sendInitialEvents", "true")]);
        assert_eq!(fields, ["sendInitialEvents"]);
    }

    #[test]
    fn version_matches_are_refused_where_kubernetes_refuses_them() {
        let fields = refused_fields(false, &[("resourceVersionMatch", "NotOlderThan")]);
        assert_eq!(fields, ["resourceVersionMatch"]);
        let fields = refused_fields(true, &[("resourceVersionMatch", "NotOlderThan")]);
        assert_eq!(fields, ["resourceVersionMatch"]);
        let fields = refused_fields(
            false,
            &[("resourceVersion", "0"), ("resourceVersionMatch", "Exact")],
        );
        assert_eq!(fields, ["resourceVersionMatch"]);
        let fields = refused_fields(
            false,
            &[("resourceVersion", "5"), ("resourceVersionMatch", "Newest")],
        );
        assert_eq!(fields, ["resourceVersionMatch"]);
        let list = read(
            false,
            &[("resourceVersion", "5"), ("resourceVersionMatch", "Exact")],
        );
        assert_eq!(list.unwrap().resource_version, Some(5));
    }

    #[test]
    fn a_flag_that_is_not_a_boolean_is_a_bad_request() {
        let error = read(true, &[("allowWatchBookmarks", "yes")]).unwrap_err();
        assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
    }
}
