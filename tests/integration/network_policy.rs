//! NetworkPolicy in the pod network: enforced at connect time against the pod a Service
//! connection reaches, default-deny shapes closing and allow rules opening exactly what they
//! name, and `kubectl` serving and refusing policies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use serde_json::{Value, json};
use wasmkube::api::Api;
use wasmkube::api::kinds::{DEPLOYMENTS, NAMESPACES, NETWORK_POLICIES, PODS, SERVICES};
use wasmkube::api::logs::LogOptions;
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::cluster_ip::{echo_deployment, web_service};
use crate::kubectl::{kubectl, row};
use crate::load_balancer::{HttpClient, get, ingress, load_balancer};
use crate::pod_network::with_client;
use crate::support::{PodBuilder, eventually, wait_for_event};

/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

/// The last line container `container` of pod `namespace/name` logged; `None` before one.
async fn last_line(api: &Arc<Api>, namespace: &str, name: &str, container: &str) -> Option<String> {
    let options = LogOptions {
        container: Some(container.into()),
        ..Default::default()
    };
    let mut chunks = api.pod_logs(namespace, name, &options).await.ok()?;
    let mut text = String::new();
    while let Some(chunk) = chunks.recv().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.lines().last().map(str::to_string)
}

/// Waits until every container of the client pod in `front` logs a last line starting with
/// what `expect` gives for it (`ANSWERED`: any line but an error).
async fn until_clients(api: &Arc<Api>, what: &str, expect: &[(&str, &str)]) {
    eventually(CONVERGE, what, || async {
        for (container, start) in expect {
            let line = last_line(api, "front", "client", container).await?;
            let seen = match *start {
                ANSWERED => !line.starts_with("error:"),
                start => line.starts_with(start),
            };
            if !seen {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// What `until_clients` expects of a TCP call answered (the echo's body, whatever it says).
const ANSWERED: &str = "";

/// An http-echo Deployment and Service, both named `name`, in namespace `back`.
fn echo_app(api: &Arc<Api>, name: &str) {
    let mut deployment = echo_deployment(1);
    deployment["metadata"]["name"] = json!(name);
    deployment["spec"]["selector"]["matchLabels"]["app"] = json!(name);
    deployment["spec"]["template"]["metadata"]["labels"]["app"] = json!(name);
    api.create(&DEPLOYMENTS, Some("back"), deployment).unwrap();
    let mut service = web_service(json!({"selector": {"app": name}}));
    service["metadata"]["name"] = json!(name);
    api.create(&SERVICES, Some("back"), service).unwrap();
}

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn a_default_deny_policy_stops_connections_to_another_namespace_and_an_allow_rule_opens_what_it_names()
 {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    for (name, team) in [("front", "web"), ("back", "data")] {
        let namespace = json!({"metadata": {"name": name, "labels": {"team": team}}});
        api.create(&NAMESPACES, None, namespace).unwrap();
    }
    echo_app(api, "web");
    echo_app(api, "other");
    let mut client = PodBuilder::named("client")
        .namespace("front")
        .restart_policy("Never");
    let every = ["--count", "0", "--every", "100"];
    for (container, target) in [
        ("http", "http://web.back/"),
        ("tcp", "web.back.svc.cluster.local:80"),
        ("other", "http://other.back/"),
    ] {
        let mut args = [&every[..], &[target]].concat();
        if container == "tcp" {
            args.push("GET / HTTP/1.0\r\n\r");
        }
        client = with_client(client, container, &args);
    }
    api.create(&PODS, Some("front"), client.build()).unwrap();
    let open = [("http", "200 "), ("tcp", ANSWERED), ("other", "200 ")];
    until_clients(api, "both services answering the client", &open).await;

    let deny = policy(
        "default-deny-egress",
        json!({"podSelector": {}, "policyTypes": ["Egress"]}),
    );
    api.create(&NETWORK_POLICIES, Some("front"), deny).unwrap();
    let denied = [
        ("http", "error: ErrorCode::HttpRequestDenied"),
        ("tcp", "error: connect web.back.svc.cluster.local:80"),
        ("other", "error: ErrorCode::HttpRequestDenied"),
    ];
    until_clients(api, "the client's connections denied", &denied).await;
    let event = wait_for_event(api, "front", "client", "NetworkDenied").await;
    assert!(event.contains("NetworkPolicies"), "{event}");

    let allow = policy(
        "to-web",
        json!({"podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "data"}},
            "podSelector": {"matchLabels": {"app": "web"}}}],
            "ports": [{"protocol": "TCP", "port": 8080}]}]}),
    );
    api.create(&NETWORK_POLICIES, Some("front"), allow).unwrap();
    let opened = [
        ("http", "200 "),
        ("tcp", ANSWERED),
        ("other", "error: ErrorCode::HttpRequestDenied"),
    ];
    until_clients(api, "web open again and other still closed", &opened).await;

    // Ingress: the receiving namespace closes itself; the client's egress allows, still denied.
    let deny = policy(
        "default-deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    api.create(&NETWORK_POLICIES, Some("back"), deny).unwrap();
    let closed = [
        ("http", "error: ErrorCode::HttpRequestDenied"),
        ("other", "error: ErrorCode::HttpRequestDenied"),
    ];
    until_clients(api, "back closed to ingress", &closed).await;
    let allow = policy(
        "from-front",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}]}),
    );
    api.create(&NETWORK_POLICIES, Some("back"), allow).unwrap();
    until_clients(api, "web admitting front again", &opened).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_reaches_an_external_name_services_host_and_no_other_outside_address() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    // The "outside" host: a listener of the test on the host's loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(b"hello from outside\n").await;
        }
    });
    let service = json!({"metadata": {"name": "outside"},
        "spec": {"type": "ExternalName", "externalName": "localhost"}});
    api.create(&SERVICES, Some("default"), service).unwrap();
    let by_name = format!("outside:{port}");
    let by_address = format!("127.0.0.1:{port}");
    let mut client = PodBuilder::named("client").restart_policy("Never");
    for (container, target) in [
        ("external", by_name.as_str()),
        ("loopback", by_address.as_str()),
        ("world", "192.0.2.1:80"),
    ] {
        client = with_client(
            client,
            container,
            &["--count", "0", "--every", "100", target],
        );
    }
    api.create(&PODS, Some("default"), client.build()).unwrap();
    let expect = [
        ("external", "hello from outside"),
        // The pod's own loopback, where nothing listens: not the host's.
        ("loopback", "error: connect 127.0.0.1"),
        ("world", "error: connect 192.0.2.1:80"),
    ];
    eventually(CONVERGE, "the client's three calls", || async {
        for (container, start) in expect {
            let line = last_line(api, "default", "client", container).await?;
            line.starts_with(start).then_some(())?;
        }
        Some(())
    })
    .await;
    let event = wait_for_event(api, "default", "client", "NetworkDenied").await;
    assert!(event.contains("192.0.2.1:80"), "{event}");
    cluster.shutdown().await;
}

/// The shapes of the Kubernetes docs' NetworkPolicy page.
const DOCS_EXAMPLES: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all
spec:
  podSelector: {}
  ingress:
  - {}
  egress:
  - {}
  policyTypes:
  - Ingress
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
      podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 32000
      endPort: 32768
"#;

#[tokio::test]
async fn kubectl_applies_the_docs_policies_lists_them_and_refuses_bad_ones_naming_fields() {
    let cluster = Cluster::start().await.unwrap();
    let applied = kubectl(&cluster, &["apply", "-f", "-"], Some(DOCS_EXAMPLES)).await;
    assert!(applied.success, "{}", applied.stderr);
    let table = kubectl(&cluster, &["get", "networkpolicies"], None)
        .await
        .stdout;
    let ours = wasmkube(&cluster, &["get", "netpol"], None).await.stdout;
    for table in [&table, &ours] {
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["NAME", "POD-SELECTOR", "AGE"], "{table}");
        assert_eq!(
            row(table, "test-network-policy").unwrap()[1],
            "role=db",
            "{table}"
        );
        assert_eq!(
            row(table, "default-deny-egress").unwrap()[1],
            "<none>",
            "{table}"
        );
    }
    let bad = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: bad\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Outgress]\n  egress:\n  - to:\n    - ipBlock:\n        cidr: 10.0.0.0/40\n    ports:\n    - port: 70000\n    - port: 90\n      endPort: 80\n";
    let refused = kubectl(&cluster, &["apply", "-f", "-"], Some(bad)).await;
    assert!(!refused.success, "{}", refused.stdout);
    for field in [
        "spec.egress[0].to[0].ipBlock.cidr",
        "spec.egress[0].ports[0].port",
        "spec.egress[0].ports[1].endPort",
        "spec.policyTypes[1]",
    ] {
        assert!(
            refused.stderr.contains(field),
            "{field}: {}",
            refused.stderr
        );
    }
    let names = kubectl(&cluster, &["get", "netpol", "bad", "-o", "name"], None).await;
    assert!(!names.success, "nothing was created: {}", names.stdout);
    cluster.shutdown().await;
}

/// Clients of the proxy come from outside the cluster: a default-deny ingress policy shuts
/// them out of its pods (a 403 that says why, at the load balancer and the node port alike)
/// and an `ipBlock` of their addresses lets them in again.
#[tokio::test]
async fn ingress_policies_apply_to_clients_of_load_balancers_and_node_ports() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&DEPLOYMENTS, Some("default"), echo_deployment(2))
        .unwrap();
    let service = api
        .create(&SERVICES, Some("default"), load_balancer(8080))
        .unwrap();
    let node_port = service["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;
    let address = ingress(&cluster, "web").await;
    let urls = [
        format!("http://{}/", SocketAddr::new(address, 8080)),
        format!(
            "http://{}/",
            SocketAddr::new(cluster.proxy().node_ip, node_port)
        ),
    ];
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let until = |status: u16| {
        let (client, urls) = (&client, &urls);
        async move {
            for url in urls {
                eventually(CONVERGE, &format!("{status} at {url}"), || async {
                    let (seen, body) = get(client, url).await?;
                    (seen == status).then_some(body)
                })
                .await;
            }
        }
    };
    until(200).await;

    let deny = policy(
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    api.create(&NETWORK_POLICIES, Some("default"), deny)
        .unwrap();
    until(403).await;
    let (_, body) = get(&client, &urls[0]).await.unwrap();
    assert!(
        body.contains("service default/web: the network policies of its pods refuse 127."),
        "{body}"
    );

    let allow = policy(
        "from-loopback",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "127.0.0.0/8"}}],
                     "ports": [{"port": 8080}]}]}),
    );
    api.create(&NETWORK_POLICIES, Some("default"), allow)
        .unwrap();
    until(200).await;
    cluster.shutdown().await;
}
