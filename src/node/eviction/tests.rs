//! The eviction verdicts, in the kubelet's words and order, and the headroom before the next.

use serde_json::json;

use super::*;

const MIB: u64 = 1024 * 1024;

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
}

fn usage(volumes: &[(&str, u64)], logs: &[(&str, u64)]) -> PodUsage {
    let owned = |list: &[(&str, u64)]| list.iter().map(|(n, b)| (n.to_string(), *b)).collect();
    PodUsage {
        volumes: owned(volumes),
        logs: owned(logs),
    }
}

fn limited() -> Pod {
    pod(json!({
        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "10Mi"}}, {"name": "free", "emptyDir": {}}],
        "containers": [
            {"name": "a", "resources": {"limits": {"ephemeral-storage": "50Mi"}}},
            {"name": "b", "resources": {"limits": {"ephemeral-storage": "50Mi"}}},
        ],
    }))
}

#[test]
fn an_empty_dir_past_its_size_limit_is_named_with_its_limit() {
    let verdict = verdict(&limited(), &usage(&[("data", 11 * MIB)], &[]));
    assert_eq!(
        verdict.as_deref(),
        Some("Usage of EmptyDir volume \"data\" exceeds the limit \"10Mi\".")
    );
    assert_eq!(
        verdict_of(&[("data", 10 * MIB)], &[]),
        None,
        "at the limit is within it"
    );
}

fn verdict_of(volumes: &[(&str, u64)], logs: &[(&str, u64)]) -> Option<String> {
    verdict(&limited(), &usage(volumes, logs))
}

#[test]
fn the_pods_total_counts_every_volume_and_log_against_its_containers_limits() {
    assert_eq!(
        verdict_of(&[("data", 5 * MIB), ("free", 90 * MIB)], &[("a", 10 * MIB)]).as_deref(),
        Some("Pod ephemeral local storage usage exceeds the total limit of containers 100Mi.")
    );
}

#[test]
fn a_container_whose_logs_pass_its_own_limit_is_named() {
    assert_eq!(
        verdict_of(&[], &[("b", 51 * MIB)]).as_deref(),
        Some("Container b exceeded its local ephemeral storage limit \"50Mi\".")
    );
}

#[test]
fn a_pod_without_limits_is_never_evicted_for_its_own_usage() {
    let free =
        pod(json!({"volumes": [{"name": "d", "emptyDir": {}}], "containers": [{"name": "c"}]}));
    assert_eq!(
        verdict(&free, &usage(&[("d", 1 << 40)], &[("c", 1 << 30)])),
        None
    );
    assert_eq!(headroom(&free, &usage(&[], &[])), MEASURE_AFTER_UNLIMITED);
}

#[test]
fn headroom_is_the_nearest_limit_and_never_zero() {
    let pod = limited();
    assert_eq!(headroom(&pod, &usage(&[("data", 4 * MIB)], &[])), 6 * MIB);
    assert_eq!(headroom(&pod, &usage(&[("free", 98 * MIB)], &[])), 2 * MIB);
    assert_eq!(headroom(&pod, &usage(&[("data", 10 * MIB)], &[])), 1);
}

#[test]
fn quantities_use_the_largest_binary_suffix_that_divides() {
    assert_eq!(format_bytes(100 * MIB), "100Mi");
    assert_eq!(format_bytes(3 << 30), "3Gi");
    assert_eq!(format_bytes(1536), "1536");
    assert_eq!(format_bytes(2048), "2Ki");
    assert_eq!(format_bytes(0), "0");
}

#[test]
fn pressure_changes_only_when_it_turns() {
    let pressure = DiskPressure::default();
    assert_eq!(pressure.condition(), None);
    pressure.set(false);
    let first = pressure.condition().unwrap();
    pressure.set(false);
    assert_eq!(pressure.condition().unwrap(), first);
    pressure.set(true);
    assert!(pressure.condition().unwrap().0);
}

#[test]
fn measuring_a_pod_counts_its_volumes_and_each_containers_logs() {
    let dir = tempfile::tempdir().unwrap();
    let pod = limited();
    std::fs::create_dir_all(dir.path().join("volumes/data")).unwrap();
    std::fs::write(dir.path().join("volumes/data/f"), vec![1u8; 1 << 20]).unwrap();
    std::fs::create_dir_all(dir.path().join("logs/a")).unwrap();
    std::fs::write(dir.path().join("logs/a/0.log"), vec![1u8; 1 << 18]).unwrap();
    let measured = PodUsage::measure(dir.path(), &pod);
    assert!(measured.volumes.contains(&("free".to_string(), 0)));
    let data = measured
        .volumes
        .iter()
        .find(|(n, _)| n == "data")
        .unwrap()
        .1;
    assert!(data >= 1 << 20, "{data}");
    assert!(measured.logs_of("a") >= 1 << 18);
    assert_eq!(measured.logs_of("b"), 0);
}
