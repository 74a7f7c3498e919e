//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), as client-go's typed
//! clients send them (`kubectl create`, `run`, `drain`): the `k8s\0` magic, then a
//! `runtime.Unknown` whose `typeMeta` names the kind and whose `raw` is the object, read into
//! the same JSON the other formats give by the generic decoder in `wire.rs`.

mod wire;

use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message as _;
use serde_json::Value;

use super::error::ApiError;
use super::types::Types;

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What starts every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the protobuf body does not start with the Kubernetes magic bytes")]
    NoMagic,
    #[error("the protobuf envelope (runtime.Unknown) cannot be decoded: {0}")]
    Envelope(#[from] prost::DecodeError),
    #[error("the protobuf body is encoded with {0:?}, which is not supported")]
    ContentEncoding(String),
    /// A kind with no protobuf type (a custom resource), as kube-apiserver refuses it.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (no protobuf type for {kind} in {api_version})"
    )]
    NoProtobufType { api_version: String, kind: String },
    #[error("the protobuf {message} cannot be decoded at {field}: {problem}")]
    Malformed {
        message: String,
        field: String,
        problem: String,
    },
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::NoProtobufType { .. } => ApiError::Unsupported(error.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

/// Whether a client that sent `accept` can read the JSON this server answers with: only one
/// that lists protobuf alone cannot (client-go's typed clients add `*/*` or JSON).
pub fn accepts_json(accept: Option<&str>) -> bool {
    accept.is_none_or(|accept| {
        accept
            .split(',')
            .map(|range| range.split(';').next().unwrap_or("").trim())
            .any(|media| media != MEDIA_TYPE)
    })
}

/// Decodes a protobuf body into the object's JSON form, `apiVersion` and `kind` included.
///
/// # Errors
/// `NoProtobufType` for a kind Kubernetes has no protobuf type for; the others for a body
/// that is not a well-formed Kubernetes protobuf object.
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    let envelope = body.strip_prefix(MAGIC).ok_or(Error::NoMagic)?;
    let unknown = Unknown::decode(envelope)?;
    let encoding = unknown.content_encoding.unwrap_or_default();
    if !encoding.is_empty() {
        return Err(Error::ContentEncoding(encoding));
    }
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let Some(message) = Types::get().of_kind(&api_version, &kind) else {
        return Err(Error::NoProtobufType { api_version, kind });
    };
    let mut object = wire::decode(message, &unknown.raw.unwrap_or_default())?;
    if let Some(fields) = object.as_object_mut() {
        fields.insert("apiVersion".into(), Value::String(api_version));
        fields.insert("kind".into(), Value::String(kind));
    }
    Ok(object)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    /// A body as client-go sends it: the magic and an Unknown around `raw`.
    pub(crate) fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &unknown.encode_to_vec()].concat()
    }

    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    fn container() -> core::Container {
        core::Container {
            name: Some("web".into()),
            image: Some("registry.example/web:1".into()),
            args: vec!["serve".into(), "-v".into()],
            ports: vec![core::ContainerPort {
                container_port: Some(8080),
                protocol: Some("TCP".into()),
                ..Default::default()
            }],
            resources: Some(core::ResourceRequirements {
                limits: [(
                    "memory".to_string(),
                    Quantity {
                        string: Some("64Mi".into()),
                    },
                )]
                .into(),
                ..Default::default()
            }),
            volume_mounts: vec![core::VolumeMount {
                name: Some("scratch".into()),
                mount_path: Some("/scratch".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// What `kubectl create deployment` sends, built with the prost types of k8s-pb.
    fn deployment() -> apps::Deployment {
        let labels: std::collections::BTreeMap<_, _> =
            [("app".to_string(), "web".to_string())].into();
        apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                labels: labels.clone(),
                creation_timestamp: Some(meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(0),
                }),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(2),
                selector: Some(meta::LabelSelector {
                    match_labels: labels.clone(),
                    ..Default::default()
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels,
                        ..Default::default()
                    }),
                    spec: Some(core::PodSpec {
                        containers: vec![container()],
                        volumes: vec![core::Volume {
                            name: Some("scratch".into()),
                            volume_source: Some(core::VolumeSource {
                                empty_dir: Some(core::EmptyDirVolumeSource::default()),
                                ..Default::default()
                            }),
                        }],
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: Some("RollingUpdate".into()),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_surge: Some(IntOrString {
                            r#type: Some(1),
                            int_val: None,
                            str_val: Some("25%".into()),
                        }),
                        max_unavailable: Some(IntOrString {
                            r#type: Some(0),
                            int_val: Some(-1),
                            str_val: None,
                        }),
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn a_deployment_from_a_typed_client_decodes_to_its_json() {
        let body = envelope("apps/v1", "Deployment", deployment().encode_to_vec());
        let object = decode(&body).unwrap();
        let expected = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": "2023-11-14T22:13:20Z"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web", "image": "registry.example/web:1", "args": ["serve", "-v"],
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "resources": {"limits": {"memory": "64Mi"}},
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                        }],
                        "volumes": [{"name": "scratch", "emptyDir": {}}],
                    },
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": -1}},
            },
        });
        assert_eq!(object, expected);
    }

    #[test]
    fn every_served_kind_decodes_from_its_prost_type() {
        let namespace = core::Namespace {
            metadata: Some(meta::ObjectMeta {
                name: Some("x".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            }),
            spec: Some(core::PodSpec {
                containers: vec![container()],
                ..Default::default()
            }),
            status: None,
        };
        let options = meta::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(meta::Preconditions {
                uid: Some("u".into()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let cases = [
            (
                "v1",
                "Namespace",
                namespace.encode_to_vec(),
                "/metadata/name",
                json!("x"),
            ),
            (
                "v1",
                "Pod",
                pod.encode_to_vec(),
                "/spec/containers/0/ports/0/containerPort",
                json!(8080),
            ),
            (
                "apps/v1",
                "Deployment",
                deployment().encode_to_vec(),
                "/spec/replicas",
                json!(2),
            ),
            (
                "v1",
                "DeleteOptions",
                options.encode_to_vec(),
                "/preconditions/uid",
                json!("u"),
            ),
        ];
        for (api_version, kind, raw, pointer, value) in cases {
            let object = decode(&envelope(api_version, kind, raw)).unwrap();
            assert_eq!(object.pointer(pointer), Some(&value), "{kind}: {object}");
        }
    }

    /// Every kind's message has its metadata at tag 1, as kube-apiserver's protobuf types do.
    #[test]
    fn every_built_in_kind_decodes_its_metadata() {
        let metadata = meta::ObjectMeta {
            name: Some("n".into()),
            ..Default::default()
        };
        let metadata = metadata.encode_to_vec();
        let raw = [
            &[0x0a, u8::try_from(metadata.len()).unwrap()][..],
            &metadata,
        ]
        .concat();
        for resource in crate::api::kinds::BUILT_IN {
            let body = envelope(&resource.api_version(), resource.kind, raw.clone());
            let object = decode(&body).unwrap_or_else(|e| panic!("{}: {e}", resource.kind));
            assert_eq!(object["metadata"]["name"], "n", "{}", resource.kind);
            assert_eq!(object["kind"], resource.kind);
        }
    }

    /// Go writes its non-pointer fields even when zero; JSON has nothing there.
    #[test]
    fn go_zero_strings_and_times_decode_as_absent() {
        let namespace = core::Namespace {
            metadata: Some(meta::ObjectMeta {
                name: Some("x".into()),
                namespace: Some(String::new()),
                creation_timestamp: Some(meta::Time::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = envelope("v1", "Namespace", namespace.encode_to_vec());
        assert_eq!(decode(&body).unwrap()["metadata"], json!({"name": "x"}));
    }

    #[test]
    fn json_answers_every_client_but_one_that_takes_protobuf_alone() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some(
            "application/vnd.kubernetes.protobuf, */*"
        )));
        assert!(accepts_json(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
        )));
        assert!(!accepts_json(Some("application/vnd.kubernetes.protobuf")));
        assert!(!accepts_json(Some(
            "application/vnd.kubernetes.protobuf;stream=watch"
        )));
    }

    #[test]
    fn a_body_without_the_magic_or_with_garbage_is_a_bad_request() {
        let no_magic = decode(b"{\"kind\":\"Pod\"}").unwrap_err();
        assert_eq!(ApiError::from(no_magic).code(), 400);
        let garbage = decode(b"k8s\0\xff\xff\xff").unwrap_err();
        assert_eq!(ApiError::from(garbage).code(), 400);
    }

    #[test]
    fn a_kind_without_a_protobuf_type_is_an_unsupported_media_type() {
        let body = envelope("example.com/v1", "Widget", Vec::new());
        let error = ApiError::from(decode(&body).unwrap_err());
        assert_eq!(error.code(), 415);
        assert!(error.to_string().contains("Widget"), "{error}");
    }
}
