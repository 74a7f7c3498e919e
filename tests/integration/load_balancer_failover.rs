//! A load balancer under a steady load while one of two agents is killed: requests may fail
//! only while the cluster has not yet noticed, and none once the replacements are ready.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmkube::api::kinds::{DEPLOYMENTS, NODES, SERVICES};
use wasmkube::testing::Cluster;

use crate::census::{is_ready, live_pods};
use crate::cluster_ip::echo_deployment;
use crate::deployments::wait_for_rollout;
use crate::load_balancer::{ingress, load_balancer};
use crate::processes::start_agent;
use crate::support::eventually;
use crate::termination::{Tally, steady_load};

const AGENTS: [&str; 2] = ["edge-1", "edge-2"];
/// How long the load goes on once the replacements are ready.
const AFTER_RECOVERY: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_agents_fails_requests_only_until_its_pods_are_replaced() {
    let cluster = Cluster::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (url, token) = (cluster.api_url(), cluster.node_token());
    let mut agents: Vec<_> = AGENTS
        .iter()
        .map(|name| start_agent(&url, &token, name, &root.path().join(name)))
        .collect();
    let api = cluster.api().clone();
    eventually(Duration::from_secs(30), "both agents Ready", || async {
        let ready = |name| api.get(&NODES, None, name).is_ok_and(|n| is_ready(&n));
        AGENTS.iter().all(|name| ready(name)).then_some(())
    })
    .await;
    api.create(&DEPLOYMENTS, Some("default"), echo_deployment(3))
        .unwrap();
    api.create(&SERVICES, Some("default"), load_balancer(8080))
        .unwrap();
    wait_for_rollout(&api, 3).await;
    let nodes: Vec<String> = live_pods(&api).into_iter().map(|(node, _)| node).collect();
    assert!(
        nodes.iter().any(|n| n == AGENTS[1]),
        "a replica on {}: {nodes:?}",
        AGENTS[1]
    );
    let url = format!(
        "http://{}/",
        SocketAddr::new(ingress(&cluster, "web").await, 8080)
    );

    let (tally, done) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let load = tokio::spawn(steady_load(url, tally.clone(), done.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    agents[1].kill_9();
    let killed = Instant::now();
    let recovered = eventually(
        Duration::from_secs(60),
        "3 ready replicas elsewhere",
        || {
            let pods = live_pods(&api);
            let elsewhere = pods
                .iter()
                .filter(|(n, run)| n != AGENTS[1] && *run)
                .count();
            let available = api
                .get(&DEPLOYMENTS, Some("default"), "web")
                .is_ok_and(|d| d["status"]["availableReplicas"] == 3);
            std::future::ready((elsewhere == 3 && pods.len() == 3 && available).then(Instant::now))
        },
    )
    .await;
    tokio::time::sleep(AFTER_RECOVERY).await;
    done.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let failures = tally.failures.lock().unwrap().clone();
    let after: Vec<&String> = failures
        .iter()
        .filter(|(when, _)| *when > recovered)
        .map(|(_, why)| why)
        .collect();
    eprintln!(
        "{} of {} requests failed; the replacements were ready {:.1} s after the kill",
        failures.len(),
        tally.sent.load(Ordering::Relaxed),
        (recovered - killed).as_secs_f64()
    );
    assert!(
        after.is_empty(),
        "{} requests failed after the replacements were ready, first: {:?}",
        after.len(),
        &after[..after.len().min(5)]
    );
    drop(agents);
    cluster.shutdown().await;
}
