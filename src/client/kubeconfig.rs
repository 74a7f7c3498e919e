//! kubectl-compatible kubeconfig files: written by `up`, read by every client command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a kubeconfig could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("cannot read kubeconfig {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write kubeconfig {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid kubeconfig {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("invalid kubeconfig {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// What a client needs from the current context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeconfigContext {
    pub server: String,
    /// PEM of the CA(s) to trust for an `https://` server, from `certificate-authority-data`
    /// or the `certificate-authority` file.
    pub certificate_authority: Option<String>,
    pub token: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Config {
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    current_context: String,
    #[serde(default)]
    preferences: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(flatten)]
    item: T,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cluster {
    cluster: ClusterInfo,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterInfo {
    server: String,
    /// Base64 of the CA's PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<String>,
    /// A PEM file, relative to the kubeconfig's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_authority: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct User {
    #[serde(default)]
    user: UserInfo,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, rename = "tokenFile", skip_serializing_if = "Option::is_none")]
    token_file: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Context {
    context: ContextInfo,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ContextInfo {
    cluster: String,
    #[serde(default)]
    user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
}

/// Writes a kubeconfig with one cluster (trusting `ca_pem`, when given, as
/// `certificate-authority-data`), one admin user and one current context, all named after
/// `cluster_name`, readable only by its owner (mode 0600). Replaces the file atomically.
///
/// # Errors
/// When the directory cannot be created or the file written.
pub fn write(
    path: &Path,
    server_url: &str,
    ca_pem: Option<&str>,
    token: &str,
    cluster_name: &str,
) -> Result<(), KubeconfigError> {
    use base64::Engine as _;
    let user = format!("{cluster_name}-admin");
    let config = Config {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![Named {
            name: cluster_name.into(),
            item: Cluster {
                cluster: ClusterInfo {
                    server: server_url.into(),
                    certificate_authority_data: ca_pem
                        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                    certificate_authority: None,
                },
            },
        }],
        users: vec![Named {
            name: user.clone(),
            item: User {
                user: UserInfo {
                    token: Some(token.into()),
                    token_file: None,
                },
            },
        }],
        contexts: vec![Named {
            name: cluster_name.into(),
            item: Context {
                context: ContextInfo {
                    cluster: cluster_name.into(),
                    user,
                    namespace: None,
                },
            },
        }],
        current_context: cluster_name.into(),
        preferences: BTreeMap::new(),
    };
    let text = serde_yaml::to_string(&config).expect("a kubeconfig always serializes");
    crate::atomic_file::write_private(path, text.as_bytes()).map_err(|source| {
        KubeconfigError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Reads the current context of a kubeconfig: its cluster's server, its user's token
/// (`token` or `tokenFile`) and its namespace.
///
/// # Errors
/// When the file cannot be read or parsed, or the current context, its cluster or its
/// user is missing.
pub fn load(path: &Path) -> Result<KubeconfigContext, KubeconfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| KubeconfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let config: Config = serde_yaml::from_str(&text).map_err(|source| KubeconfigError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| KubeconfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let context = match config.current_context.as_str() {
        "" if config.contexts.len() == 1 => &config.contexts[0].item.context,
        "" => return Err(invalid("current-context is not set".into())),
        name => find(&config.contexts, name)
            .map(|c| &c.context)
            .ok_or_else(|| invalid(format!("context \"{name}\" does not exist")))?,
    };
    let cluster = find(&config.clusters, &context.cluster)
        .ok_or_else(|| invalid(format!("cluster \"{}\" does not exist", context.cluster)))?;
    if cluster.cluster.server.is_empty() {
        return Err(invalid(format!(
            "cluster \"{}\" has no server",
            context.cluster
        )));
    }
    let token = match find(&config.users, &context.user) {
        Some(User {
            user: UserInfo {
                token: Some(token), ..
            },
        }) => Some(token.clone()),
        Some(User {
            user:
                UserInfo {
                    token_file: Some(file),
                    ..
                },
        }) => Some(read_token_file(path, file)?),
        _ => None,
    };
    let certificate_authority = certificate_authority(path, &cluster.cluster)?;
    Ok(KubeconfigContext {
        server: cluster.cluster.server.clone(),
        certificate_authority,
        token,
        namespace: context.namespace.clone().filter(|ns| !ns.is_empty()),
    })
}

fn find<'a, T>(items: &'a [Named<T>], name: &str) -> Option<&'a T> {
    items
        .iter()
        .find(|item| item.name == name)
        .map(|item| &item.item)
}

/// The CA PEM of a cluster entry: `certificate-authority-data` (base64), else the
/// `certificate-authority` file (relative to the kubeconfig's directory, as kubectl reads it).
fn certificate_authority(
    kubeconfig: &Path,
    cluster: &ClusterInfo,
) -> Result<Option<String>, KubeconfigError> {
    use base64::Engine as _;
    if let Some(data) = cluster
        .certificate_authority_data
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        let compact: String = data.split_whitespace().collect();
        let pem = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| KubeconfigError::Invalid {
                path: kubeconfig.to_path_buf(),
                message: "certificate-authority-data is not base64 of a PEM certificate".into(),
            })?;
        return Ok(Some(pem));
    }
    match cluster
        .certificate_authority
        .as_deref()
        .filter(|f| !f.is_empty())
    {
        Some(file) => {
            let path = kubeconfig.parent().unwrap_or(Path::new(".")).join(file);
            std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|source| KubeconfigError::Read { path, source })
        }
        None => Ok(None),
    }
}

/// A `tokenFile`, relative to the kubeconfig's directory as kubectl reads it.
fn read_token_file(kubeconfig: &Path, file: &str) -> Result<String, KubeconfigError> {
    let path = kubeconfig.parent().unwrap_or(Path::new(".")).join(file);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_string())
        .map_err(|source| KubeconfigError::Read { path, source })
}

/// Where the CLI finds its kubeconfig: the `--kubeconfig` flag, else the first path of
/// `KUBECONFIG`, else `<data-dir>/kubeconfig`.
pub fn resolve_path(
    flag: Option<&Path>,
    env: Option<&std::ffi::OsStr>,
    data_dir: &Path,
) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(first) =
        env.and_then(|list| std::env::split_paths(list).find(|p| !p.as_os_str().is_empty()))
    {
        return first;
    }
    data_dir.join("kubeconfig")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nxyz\n";

    #[test]
    fn written_kubeconfig_loads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kubeconfig");
        write(
            &path,
            "https://127.0.0.1:6443",
            Some(CA),
            "s3cret",
            "wasmkube",
        )
        .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(
            loaded,
            KubeconfigContext {
                server: "https://127.0.0.1:6443".into(),
                certificate_authority: Some(CA.into()),
                token: Some("s3cret".into()),
                namespace: None,
            }
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn written_kubeconfig_has_kubectls_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        write(&path, "https://127.0.0.1:6443", Some(CA), "t", "wasmkube").unwrap();
        let value: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(value["apiVersion"], "v1");
        assert_eq!(value["kind"], "Config");
        assert_eq!(value["current-context"], "wasmkube");
        assert_eq!(
            value["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            value["clusters"][0]["cluster"]["certificate-authority-data"],
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCnh5ego="
        );
        assert_eq!(value["contexts"][0]["context"]["user"], "wasmkube-admin");
        assert_eq!(value["users"][0]["user"]["token"], "t");
    }

    #[test]
    fn load_reads_the_current_context_of_a_kubectl_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(dir.path().join("tok"), "from-file\n").unwrap();
        std::fs::write(dir.path().join("ca.pem"), "PEM").unwrap();
        std::fs::write(
            &path,
            r#"apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "http://a:1"}
- name: b
  cluster: {server: "https://b:2", certificate-authority: ca.pem}
users:
- name: ua
  user: {token: ta}
- name: ub
  user: {tokenFile: tok}
contexts:
- name: ca
  context: {cluster: a, user: ua}
- name: cb
  context: {cluster: b, user: ub, namespace: team}
current-context: cb
"#,
        )
        .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.server, "https://b:2");
        assert_eq!(loaded.certificate_authority.as_deref(), Some("PEM"));
        assert_eq!(loaded.token.as_deref(), Some("from-file"));
        assert_eq!(loaded.namespace.as_deref(), Some("team"));
    }

    #[test]
    fn missing_context_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: nope\ncontexts: []\n",
        )
        .unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("context \"nope\" does not exist"),
            "{error}"
        );
    }

    #[test]
    fn path_resolution_prefers_flag_then_env_then_data_dir() {
        let data = Path::new("/d");
        assert_eq!(
            resolve_path(Some(Path::new("/f")), Some("/e".as_ref()), data),
            PathBuf::from("/f")
        );
        assert_eq!(
            resolve_path(None, Some("/e1:/e2".as_ref()), data),
            PathBuf::from("/e1")
        );
        assert_eq!(
            resolve_path(None, Some("".as_ref()), data),
            PathBuf::from("/d/kubeconfig")
        );
        assert_eq!(
            resolve_path(None, None, data),
            PathBuf::from("/d/kubeconfig")
        );
    }
}
