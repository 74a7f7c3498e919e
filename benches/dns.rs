//! Cluster DNS under 1,000 Services × 3 endpoints; prints a table to compare run to run.
//!
//! `cargo bench --bench dns` (release build). Budgets (issue #11): DNS answers p99 < 1 ms with
//! 1,000 services × 3 endpoints; endpoint change → DNS updated p99 < 100 ms. On a whole
//! in-process cluster, over real UDP on loopback:
//! - answers: 5,000 A queries for random headless Services (three A records each), one after
//!   the other;
//! - endpoint change: 100 EndpointSlice updates giving an endpoint a new address, each timed
//!   from the API call until a query answers the new address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use rand::Rng;
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use wasmkube::api::Part;
use wasmkube::api::kinds::{ENDPOINT_SLICES, SERVICES};
use wasmkube::testing::Cluster;

mod support;
use support::{header, p50_p99, percentile, row};

fn micros(duration: Duration) -> String {
    format!("{} µs", duration.as_micros())
}

const SERVICE_COUNT: usize = 1000;
const QUERIES: usize = 5000;
const CHANGES: usize = 100;
const NS: Option<&str> = Some("default");

fn slice(service: usize, last_octet: u8) -> Value {
    let endpoints: Vec<Value> = (0..3u8)
        .map(|e| {
            let ip = format!(
                "10.{}.{}.{}",
                1 + service / 250,
                service % 250,
                last_octet + e
            );
            json!({"addresses": [ip], "conditions": {"ready": true}})
        })
        .collect();
    json!({"metadata": {"name": format!("s{service}-1"), "labels": {"kubernetes.io/service-name": format!("s{service}")}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": endpoints})
}

async fn ask(socket: &UdpSocket, server: SocketAddr, name: &str) -> Vec<String> {
    let mut message = Message::new();
    message.set_id(rand::rng().random());
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buffer = vec![0; 4096];
    let received = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buffer))
        .await
        .expect("the DNS server answers")
        .unwrap();
    let answer = Message::from_vec(&buffer[..received]).unwrap();
    answer
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(ip) => Some(ip.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let server = cluster.dns_addr();
    for s in 0..SERVICE_COUNT {
        let service = json!({"metadata": {"name": format!("s{s}")},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}});
        api.create(&SERVICES, NS, service).unwrap();
        api.create(&ENDPOINT_SLICES, NS, slice(s, 1)).unwrap();
    }
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let last = format!("s{}.default.svc.cluster.local.", SERVICE_COUNT - 1);
    let loaded = Instant::now();
    while ask(&socket, server, &last).await.len() != 3 {
        assert!(
            loaded.elapsed() < Duration::from_secs(60),
            "DNS never caught up"
        );
    }
    let mut answers = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let name = format!(
            "s{}.default.svc.cluster.local.",
            rand::rng().random_range(0..SERVICE_COUNT)
        );
        let started = Instant::now();
        let found = ask(&socket, server, &name).await;
        answers.push(started.elapsed());
        assert_eq!(found.len(), 3, "{name}");
    }
    answers.sort();
    let mut changes = Vec::with_capacity(CHANGES);
    for c in 0..CHANGES {
        let s = c * (SERVICE_COUNT / CHANGES);
        let mut current = api.get(&ENDPOINT_SLICES, NS, &format!("s{s}-1")).unwrap();
        current["endpoints"] = slice(s, 100)["endpoints"].clone();
        let wanted = current["endpoints"][0]["addresses"][0]
            .as_str()
            .unwrap()
            .to_string();
        let name = format!("s{s}.default.svc.cluster.local.");
        let started = Instant::now();
        api.update(
            &ENDPOINT_SLICES,
            NS,
            &format!("s{s}-1"),
            current,
            Part::Main,
        )
        .unwrap();
        while !ask(&socket, server, &name).await.contains(&wanted) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name} never changed"
            );
        }
        changes.push(started.elapsed());
    }
    changes.sort();
    header();
    row(
        "DNS answer (1,000 svc × 3 endpoints) p50",
        micros(percentile(&answers, 0.5)),
        "",
    );
    row(
        "DNS answer (1,000 svc × 3 endpoints) p99",
        micros(percentile(&answers, 0.99)),
        "< 1 ms",
    );
    p50_p99("endpoint change → DNS updated", &changes, "< 100 ms");
    cluster.shutdown().await;
}
