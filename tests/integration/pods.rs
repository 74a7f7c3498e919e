//! Pods on the embedded node: shared volumes, exit codes, restarts, limits, init containers.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wasmkube::api::kinds::{NAMESPACES, PODS};
use wasmkube::api::{DeleteOptions, ListOptions};
use wasmkube::testing::Cluster;

use crate::support::{
    PodBuilder, container_status, eventually, phase, pod_logs, wait_for_event, wait_for_pod,
};

fn terminated(pod: &Value, container: &str) -> Value {
    container_status(pod, container)["state"]["terminated"].clone()
}

#[tokio::test]
async fn containers_of_a_pod_share_an_empty_dir_that_other_pods_cannot_see() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mount = json!([{"name": "shared", "mountPath": "/shared"}]);
    let pod = PodBuilder::named("pair")
        .restart_policy("Never")
        .empty_dir("shared")
        .container(
            "a",
            &["write", "/shared/note", "hello-from-a", "sleep", "5000"],
        )
        .with("volumeMounts", mount.clone())
        .container("b", &["sleep", "300", "read", "/shared/note"])
        .with("volumeMounts", mount.clone())
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(api, "default", "pair", "b to finish", |p| {
        terminated(p, "b").is_object()
    })
    .await;
    assert_eq!(
        pod_logs(&cluster, "default", "pair", "b").await.trim(),
        "hello-from-a"
    );

    api.create(&NAMESPACES, None, json!({"metadata": {"name": "other"}}))
        .unwrap();
    let stranger = PodBuilder::named("stranger")
        .namespace("other")
        .restart_policy("Never")
        .empty_dir("shared")
        .container("c", &["read", "/shared/note"])
        .with("volumeMounts", mount)
        .build();
    api.create(&PODS, Some("other"), stranger).unwrap();
    let done = wait_for_pod(api, "other", "stranger", "stranger to fail", |p| {
        phase(p) == "Failed"
    })
    .await;
    assert_eq!(terminated(&done, "c")["exitCode"], 1);
    cluster.shutdown().await;
}

#[tokio::test]
async fn exit_codes_map_to_reasons_and_phases_per_restart_policy() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let never = PodBuilder::named("never")
        .restart_policy("Never")
        .container("c", &["exit", "3"])
        .build();
    let on_failure = PodBuilder::named("onfailure")
        .restart_policy("OnFailure")
        .container("c", &["print", "ok"])
        .build();
    api.create(&PODS, Some("default"), never).unwrap();
    api.create(&PODS, Some("default"), on_failure).unwrap();

    let failed = wait_for_pod(api, "default", "never", "phase Failed", |p| {
        phase(p) == "Failed"
    })
    .await;
    assert_eq!(terminated(&failed, "c")["exitCode"], 3);
    assert_eq!(terminated(&failed, "c")["reason"], "Error");
    let succeeded = wait_for_pod(api, "default", "onfailure", "phase Succeeded", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    assert_eq!(terminated(&succeeded, "c")["reason"], "Completed");
    assert_eq!(container_status(&succeeded, "c")["restartCount"], 0);
    cluster.shutdown().await;
}

#[tokio::test]
async fn always_restarts_a_failing_container_with_crash_loop_back_off() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("crashy")
        .container("c", &["print", "starting", "exit", "1"])
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let looping = wait_for_pod(
        api,
        "default",
        "crashy",
        "CrashLoopBackOff after restarts",
        |p| {
            let status = container_status(p, "c");
            status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && status["restartCount"].as_i64() >= Some(2)
        },
    )
    .await;
    assert_eq!(phase(&looping), "Running");
    assert_eq!(
        container_status(&looping, "c")["lastState"]["terminated"]["exitCode"],
        1
    );
    assert_eq!(container_status(&looping, "c")["ready"], false);
    wait_for_event(api, "default", "crashy", "BackOff").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_container_allocating_past_its_memory_limit_is_oom_killed() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("hungry")
        .restart_policy("Never")
        .container("c", &["alloc", "200"])
        .with("resources", json!({"limits": {"memory": "64Mi"}}))
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let done = wait_for_pod(api, "default", "hungry", "OOMKilled", |p| {
        terminated(p, "c").is_object()
    })
    .await;
    assert_eq!(terminated(&done, "c")["reason"], "OOMKilled");
    assert_eq!(phase(&done), "Failed");
    wait_for_event(api, "default", "hungry", "OOMKilled").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn init_containers_run_in_order_before_app_containers() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mount = json!([{"name": "work", "mountPath": "/work"}]);
    let mut pod = PodBuilder::named("ordered")
        .restart_policy("Never")
        .empty_dir("work")
        .init_container("first", &["append", "/work/order", "first"])
        .init_container("second", &["append", "/work/order", "second"])
        .container(
            "app",
            &["append", "/work/order", "app", "read", "/work/order"],
        )
        .with("volumeMounts", mount.clone())
        .build();
    for init in pod["spec"]["initContainers"].as_array_mut().unwrap() {
        init["volumeMounts"] = mount.clone();
    }
    api.create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(api, "default", "ordered", "Succeeded", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    assert_eq!(
        pod_logs(&cluster, "default", "ordered", "app").await,
        "first\nsecond\napp\n"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_failing_init_container_fails_the_pod_and_app_containers_never_start() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("blocked")
        .restart_policy("Never")
        .init_container("setup", &["exit", "4"])
        .container("app", &["print", "never"])
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let failed = wait_for_pod(api, "default", "blocked", "Failed", |p| {
        phase(p) == "Failed"
    })
    .await;
    assert!(container_status(&failed, "app")["state"]["waiting"].is_object());
    assert_eq!(
        failed["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        4
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn env_and_args_reach_the_guest_with_field_refs_resolved() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let env = json!([
        {"name": "GREETING", "value": "hi"},
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]);
    let pod = PodBuilder::named("envy")
        .restart_policy("Never")
        .container(
            "c",
            &[
                "env", "GREETING", "env", "MY_NAME", "env", "MY_NS", "env", "HOME",
            ],
        )
        .with("env", env)
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(api, "default", "envy", "Succeeded", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    assert_eq!(
        pod_logs(&cluster, "default", "envy", "c").await,
        "GREETING=hi\nMY_NAME=envy\nMY_NS=default\nHOME unset\n"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn deleting_a_running_pod_stops_it_removes_its_volumes_and_the_object() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("doomed")
        .empty_dir("scratch")
        .container("c", &["write", "/scratch/f", "x", "spin"])
        .with(
            "volumeMounts",
            json!([{"name": "scratch", "mountPath": "/scratch"}]),
        )
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let running = wait_for_pod(api, "default", "doomed", "Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let uid = running["metadata"]["uid"].as_str().unwrap().to_string();
    let pod_dir = cluster.data_dir().join("pods").join(&uid);
    eventually(Duration::from_secs(10), "volume dir", || async {
        pod_dir.join("volumes/scratch/f").exists().then_some(())
    })
    .await;
    let marked = api
        .delete(&PODS, Some("default"), "doomed", &DeleteOptions::default())
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    eventually(Duration::from_secs(10), "pod removed", || async {
        api.get(&PODS, Some("default"), "doomed")
            .is_err()
            .then_some(())
    })
    .await;
    assert!(!pod_dir.exists(), "pod directory is removed with the pod");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_component_that_does_not_compile_is_reported_and_retried() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let garbage = cluster.data_dir().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm not really").unwrap();
    let mut pod = PodBuilder::named("broken").container("c", &[]).build();
    pod["spec"]["containers"][0]["image"] = json!(garbage.to_str().unwrap());
    api.create(&PODS, Some("default"), pod).unwrap();
    let waiting = wait_for_pod(api, "default", "broken", "image pull error", |p| {
        container_status(p, "c")["state"]["waiting"]["reason"]
            .as_str()
            .is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    })
    .await;
    assert_eq!(phase(&waiting), "Pending");
    wait_for_event(api, "default", "broken", "Failed").await;
    cluster.shutdown().await;
}

/// A pod's first status waits briefly for its containers to start (one write instead of two
/// when they start at once), but no longer: while its component compiles, the pod reports its
/// addresses and start time. The watch sees every status written, in order.
#[tokio::test]
async fn a_pod_whose_component_compiles_reports_pending_with_its_addresses_meanwhile() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let from_now = ListOptions {
        resource_version: Some(api.current_revision()),
        ..ListOptions::default()
    };
    let stop = CancellationToken::new();
    let mut events = api
        .watch(&PODS, Some("default"), from_now, None, stop.clone())
        .unwrap();
    let pod = PodBuilder::named("compiling")
        .container("c", &["sleep", "600000"])
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.expect("the watch ended");
            if event.object["status"]["podIP"].is_string() {
                return event.object;
            }
        }
    })
    .await
    .expect("no status written within 20 s");
    stop.cancel();
    assert_eq!(phase(&first), "Pending", "{first}");
    let waiting = &container_status(&first, "c")["state"]["waiting"];
    assert_eq!(waiting["reason"], "ContainerCreating", "{first}");
    assert!(first["status"]["startTime"].is_string(), "{first}");
    assert!(first["status"]["hostIP"].is_string(), "{first}");
    let pulled = wait_for_event(api, "default", "compiling", "Pulled").await;
    assert!(pulled.contains("Successfully compiled"), "{pulled}");
    wait_for_pod(api, "default", "compiling", "Running", |p| {
        phase(p) == "Running"
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_second_pod_reuses_the_compiled_component() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    for name in ["first", "second"] {
        let pod = PodBuilder::named(name)
            .restart_policy("Never")
            .container("c", &["print", name])
            .build();
        api.create(&PODS, Some("default"), pod).unwrap();
        wait_for_pod(api, "default", name, "Succeeded", |p| {
            phase(p) == "Succeeded"
        })
        .await;
    }
    let pulled = wait_for_event(api, "default", "second", "Pulled").await;
    assert!(pulled.contains("already present"), "{pulled}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn following_a_log_streams_new_lines_and_ends_with_the_container() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("ticker")
        .restart_policy("Never")
        .container(
            "c",
            &[
                "print", "a", "sleep", "300", "print", "b", "sleep", "300", "print", "c",
            ],
        )
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(api, "default", "ticker", "Running", |p| {
        phase(p) == "Running" || phase(p) == "Succeeded"
    })
    .await;
    let options = wasmkube::api::logs::LogOptions {
        follow: true,
        ..Default::default()
    };
    let mut chunks = api.pod_logs("default", "ticker", &options).await.unwrap();
    let mut text = String::new();
    let collect = async {
        while let Some(chunk) = chunks.recv().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("follow ends when the container ends");
    assert_eq!(text, "a\nb\nc\n");
    cluster.shutdown().await;
}
