//! Fixtures: pod builders, waiting with deadlines, and paths to the sample components.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{EVENTS, PODS};
use wasmkube::api::{Api, ListOptions};
use wasmkube::store::{SqliteOptions, SqliteStore};
pub use wasmkube::testing::eventually;

use crate::power_loss::Disk;

/// The exerciser component built by build.rs.
pub fn exerciser() -> String {
    sample("exerciser.wasm")
}

/// A sample component build.rs put in `wasm-samples/` (`client.wasm`, `http-echo.wasm`).
pub fn sample(file: &str) -> String {
    format!("{}/{file}", env!("WASMKUBE_SAMPLES_DIR"))
}

/// Builds Pod manifests: `PodBuilder::named("a").container("c", &["print", "hi"]).build()`.
pub struct PodBuilder {
    pod: Value,
}

impl PodBuilder {
    pub fn named(name: &str) -> Self {
        Self {
            pod: json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name},
                "spec": {"containers": [], "volumes": []},
            }),
        }
    }

    pub fn namespace(mut self, namespace: &str) -> Self {
        self.pod["metadata"]["namespace"] = json!(namespace);
        self
    }

    pub fn restart_policy(mut self, policy: &str) -> Self {
        self.pod["spec"]["restartPolicy"] = json!(policy);
        self
    }

    /// Adds a container running the exerciser with these steps.
    pub fn container(mut self, name: &str, steps: &[&str]) -> Self {
        let container = json!({"name": name, "image": exerciser(), "args": steps});
        self.pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(container);
        self
    }

    pub fn init_container(mut self, name: &str, steps: &[&str]) -> Self {
        let container = json!({"name": name, "image": exerciser(), "args": steps});
        let spec = &mut self.pod["spec"];
        if spec.get("initContainers").is_none() {
            spec["initContainers"] = json!([]);
        }
        spec["initContainers"]
            .as_array_mut()
            .unwrap()
            .push(container);
        self
    }

    /// Sets a field on the last container added (`"resources"`, `"volumeMounts"`, `"env"`...).
    pub fn with(mut self, field: &str, value: Value) -> Self {
        let containers = self.pod["spec"]["containers"].as_array_mut().unwrap();
        containers.last_mut().expect("add a container first")[field] = value;
        self
    }

    pub fn empty_dir(self, name: &str) -> Self {
        self.volume(json!({"name": name, "emptyDir": {}}))
    }

    /// Adds a volume as written (`{"name": .., "emptyDir": {"sizeLimit": ..}}`).
    pub fn volume(mut self, volume: Value) -> Self {
        self.pod["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .push(volume);
        self
    }

    pub fn build(self) -> Value {
        self.pod
    }
}

/// A Lease: a kind no controller acts on, for tests of the write path alone.
pub fn lease(name: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"holderIdentity": "test"},
    })
}

/// An object's `metadata.resourceVersion` as the number it is.
pub fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("a resourceVersion")
}

/// A bootstrapped API over a store on `disk` (a disk that can lose power).
pub fn api_on(disk: &Disk) -> Arc<Api> {
    let options = SqliteOptions {
        vfs: Some(disk.vfs()),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&disk.live("store.db"), options).unwrap();
    let api = Api::new(Arc::new(store));
    api.bootstrap().unwrap();
    api
}

/// Waits until the pod satisfies `predicate`; returns it.
pub async fn wait_for_pod(
    api: &Api,
    namespace: &str,
    name: &str,
    what: &str,
    predicate: impl Fn(&Value) -> bool,
) -> Value {
    eventually(Duration::from_secs(20), what, || async {
        api.get(&PODS, Some(namespace), name)
            .ok()
            .filter(|pod| predicate(pod))
    })
    .await
}

/// Everything container `container` of pod `namespace/name` has logged so far.
pub async fn pod_logs(
    cluster: &wasmkube::testing::Cluster,
    namespace: &str,
    name: &str,
    container: &str,
) -> String {
    let options = wasmkube::api::logs::LogOptions {
        container: Some(container.into()),
        ..Default::default()
    };
    let mut chunks = cluster
        .api()
        .pod_logs(namespace, name, &options)
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = chunks.recv().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// The state of container `name` (`{"running": ..}` etc.).
pub fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// Waits until an event about object `name` gives `reason`; returns its message. Events are
/// written in the background, so the change they explain may be visible before them.
pub async fn wait_for_event(api: &Api, namespace: &str, name: &str, reason: &str) -> String {
    let what = format!("a {reason} event about {name}");
    eventually(Duration::from_secs(20), &what, || async {
        let events = api
            .list(&EVENTS, Some(namespace), &ListOptions::default())
            .ok()?;
        let event = events["items"]
            .as_array()?
            .iter()
            .find(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)?;
        event["message"].as_str().map(str::to_string)
    })
    .await
}

/// What a command printed and whether it succeeded.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with `args`, feeding `stdin`, under a one-minute limit.
pub async fn run_command(
    mut command: tokio::process::Command,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the command");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not finish within a minute"))
        .unwrap();
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
