//! Graceful termination behind a Service: a deleted pod leaves the endpoints, runs its
//! `preStop` hooks and finishes its requests in flight before it stops, within its grace
//! period; so rollouts under load through the load balancer fail no request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use wasmkube::api::Part;
use wasmkube::api::kinds::{DEPLOYMENTS, PODS, SERVICES};
use wasmkube::api::objects::DeleteOptions;
use wasmkube::api::patch::PatchType;
use wasmkube::testing::Cluster;

use crate::census::is_ready;
use crate::cluster_ip::{echo_deployment, web_pods};
use crate::deployments::wait_for_rollout;
use crate::load_balancer::{HttpClient, get, ingress, load_balancer};
use crate::pod_network::with_echo;
use crate::support::{PodBuilder, eventually, wait_for_event};

const CONVERGE: Duration = Duration::from_secs(60);
/// The steady load of the acceptance: requests per second through the load balancer.
const LOAD_PER_SECOND: u64 = 200;
const CLIENTS: u64 = 4;

/// Requests sent by a load and the ones that failed: when, and why.
#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub failures: Mutex<Vec<(Instant, String)>>,
}

impl Tally {
    fn fail(&self, why: String) {
        self.failures.lock().unwrap().push((Instant::now(), why));
    }
}

/// Sends `LOAD_PER_SECOND` requests a second to `url` from `CLIENTS` keep-alive clients until
/// `done`: half of them POSTs, which the proxy never sends twice, so only a pod that finishes
/// what it took keeps them from failing.
pub async fn steady_load(url: String, tally: Arc<Tally>, done: Arc<AtomicBool>) {
    let period = Duration::from_micros(1_000_000 * CLIENTS / LOAD_PER_SECOND);
    let clients = (0..CLIENTS).map(|client| {
        let (url, tally, done) = (url.clone(), tally.clone(), done.clone());
        let method = if client % 2 == 0 {
            Method::GET
        } else {
            Method::POST
        };
        tokio::spawn(async move {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            let mut ticks = tokio::time::interval(period);
            while !done.load(Ordering::Relaxed) {
                ticks.tick().await;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let request = Request::builder().method(method.clone()).uri(&url);
                let answer = client.request(request.body(Empty::new()).unwrap());
                match tokio::time::timeout(Duration::from_secs(10), answer).await {
                    Ok(Ok(response)) if response.status() == 200 => {}
                    Ok(Ok(response)) => {
                        let status = response.status();
                        let body = response.into_body().collect().await.map(|b| b.to_bytes());
                        tally.fail(format!("{method} {status}: {body:?}"));
                    }
                    other => tally.fail(format!("{method}: {other:?}")),
                }
            }
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rollouts_under_a_steady_load_through_the_load_balancer_fail_no_request() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&DEPLOYMENTS, Some("default"), echo_deployment(3))
        .unwrap();
    api.create(&SERVICES, Some("default"), load_balancer(8080))
        .unwrap();
    web_pods(api, 3).await;
    wait_for_rollout(api, 3).await;
    let url = format!(
        "http://{}/",
        SocketAddr::new(ingress(&cluster, "web").await, 8080)
    );

    let (tally, done) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let load = tokio::spawn(steady_load(url, tally.clone(), done.clone()));
    let started = Instant::now();
    for rollout in 1..=10 {
        let restarted = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": format!("rollout-{rollout}")}}}}});
        api.patch(
            &DEPLOYMENTS,
            Some("default"),
            "web",
            &restarted,
            PatchType::Merge,
            Part::Main,
        )
        .unwrap();
        wait_for_rollout(api, 3).await;
    }
    // The last old pods finish terminating under the load too.
    web_pods(api, 3).await;
    done.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let sent = tally.sent.load(Ordering::Relaxed);
    let failures: Vec<String> = tally
        .failures
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.1.clone())
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{sent} requests in {seconds:.1} s over ten rollouts");
    assert!(
        sent >= 100,
        "{sent} requests in {seconds:.1} s: the load did not run"
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed over ten rollouts ({seconds:.1} s), first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// A pod of two HTTP containers behind a LoadBalancer on 8080: `web` sleeps `sleep` seconds in
/// its preStop hook, `side` (port 8081) has a preStop httpGet that the component fails.
fn terminating_pod(sleep: i64, grace: i64) -> serde_json::Value {
    let mut pod = with_echo(PodBuilder::named("web"))
        .with(
            "lifecycle",
            json!({"preStop": {"sleep": {"seconds": sleep}}}),
        )
        .container("side", &[])
        .with("image", json!(crate::support::sample("http-echo.wasm")))
        .with("ports", json!([{"name": "side", "containerPort": 8081}]))
        .with(
            "lifecycle",
            json!({"preStop": {"httpGet": {"path": "/status/500", "port": "side"}}}),
        )
        .build();
    pod["metadata"]["labels"] = json!({"app": "web"});
    pod["spec"]["terminationGracePeriodSeconds"] = json!(grace);
    pod
}

/// Waits until both containers of pod `web` run (a container still starting has no hook
/// to run yet).
async fn both_running(api: &wasmkube::api::Api) {
    eventually(CONVERGE, "pod web ready", || async {
        is_ready(&api.get(&PODS, Some("default"), "web").ok()?).then_some(())
    })
    .await;
}

/// Waits until pod `web` is gone; how long after `deleted`.
async fn gone_after(api: &wasmkube::api::Api, deleted: Instant) -> Duration {
    eventually(CONVERGE, "the pod gone", || async {
        api.get(&PODS, Some("default"), "web")
            .is_err()
            .then_some(())
    })
    .await;
    deleted.elapsed()
}

#[tokio::test]
async fn a_deleted_pod_runs_its_pre_stop_hooks_and_finishes_its_request_in_flight_then_goes() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&PODS, Some("default"), terminating_pod(1, 30))
        .unwrap();
    api.create(&SERVICES, Some("default"), load_balancer(8080))
        .unwrap();
    both_running(api).await;
    let address = SocketAddr::new(ingress(&cluster, "web").await, 8080);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let ready = format!("http://{address}/");
    eventually(CONVERGE, "the pod answering", || async {
        matches!(get(&client, &ready).await, Some((200, _))).then_some(())
    })
    .await;

    let slow = format!("http://{address}/delay/1500");
    let in_flight = tokio::spawn(async move { get(&client, &slow).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let deleted = Instant::now();
    api.delete(&PODS, Some("default"), "web", &DeleteOptions::default())
        .unwrap();
    let answer = in_flight.await.unwrap();
    assert_eq!(
        answer,
        Some((200, "delayed\n".to_string())),
        "the request in flight"
    );

    let event = wait_for_event(api, "default", "web", "FailedPreStopHook").await;
    assert!(event.contains("PreStopHook failed"), "{event}");
    let took = gone_after(api, deleted).await;
    assert!(
        took >= Duration::from_secs(1),
        "gone after {took:?}, before its 1 s preStop sleep was over"
    );
}

#[tokio::test]
async fn a_shorter_grace_on_delete_cuts_a_pre_stop_hook_short() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&PODS, Some("default"), terminating_pod(25, 30))
        .unwrap();
    both_running(api).await;
    let deleted = Instant::now();
    let one_second = DeleteOptions {
        grace_period_seconds: Some(1),
        ..Default::default()
    };
    api.delete(&PODS, Some("default"), "web", &one_second)
        .unwrap();
    let took = gone_after(api, deleted).await;
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(20),
        "gone after {took:?}: a 1 s grace, a 25 s preStop sleep"
    );
}
