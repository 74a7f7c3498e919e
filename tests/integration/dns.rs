//! Cluster DNS on a real cluster: real UDP and TCP queries (and `dig` when it is installed)
//! for ClusterIP, headless, SRV, ExternalName and `kubernetes.default` records, following
//! Services and EndpointSlices as they change.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use wasmkube::api::kinds::{ENDPOINT_SLICES, SERVICES};
use wasmkube::testing::Cluster;

use crate::support::{eventually, run_command};

const LIMIT: Duration = Duration::from_secs(10);

fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new();
    message.set_id(7).set_recursion_desired(true);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message.to_vec().unwrap()
}

async fn ask_udp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query(name, kind), server).await.unwrap();
    let mut buffer = vec![0; 4096];
    let received = tokio::time::timeout(LIMIT, socket.recv(&mut buffer))
        .await
        .expect("the DNS server answers over UDP")
        .unwrap();
    Message::from_vec(&buffer[..received]).unwrap()
}

async fn ask_tcp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let request = query(name, kind);
    stream.write_u16(request.len() as u16).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let answer = async {
        let length = stream.read_u16().await.unwrap();
        let mut buffer = vec![0; usize::from(length)];
        stream.read_exact(&mut buffer).await.unwrap();
        buffer
    };
    let buffer = tokio::time::timeout(LIMIT, answer)
        .await
        .expect("the DNS server answers over TCP");
    Message::from_vec(&buffer).unwrap()
}

/// The answers as text: `10.96.0.1`, `0 100 80 web.default.svc.cluster.local.`, a CNAME's
/// target.
fn answers(message: &Message) -> Vec<String> {
    let mut texts: Vec<String> = message
        .answers()
        .iter()
        .map(|r| match r.data() {
            RData::A(ip) => ip.to_string(),
            RData::CNAME(target) => target.to_string(),
            RData::SRV(srv) => format!("{} {}", srv.port(), srv.target()),
            other => format!("{other:?}"),
        })
        .collect();
    texts.sort();
    texts
}

fn create(cluster: &Cluster, resource: &'static wasmkube::api::Resource, object: Value) -> Value {
    cluster
        .api()
        .create(resource, Some("default"), object)
        .unwrap()
}

/// A selectorless headless Service `db` whose user-written slice lists two ready pods, one
/// named `db-0`, and one that is not ready.
fn headless_db(cluster: &Cluster) {
    create(
        cluster,
        &SERVICES,
        json!({"metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
    );
    create(
        cluster,
        &ENDPOINT_SLICES,
        json!({
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.244.1.6"], "conditions": {"ready": true}},
            {"addresses": ["10.244.1.7"], "conditions": {"ready": false}},
        ]}),
    );
}

#[tokio::test]
async fn cluster_dns_answers_every_record_kind_over_udp_and_tcp() {
    let cluster = Cluster::start().await.unwrap();
    let dns = cluster.dns_addr();
    let web = create(
        &cluster,
        &SERVICES,
        json!({"metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80}]}}),
    );
    let ip = web["spec"]["clusterIP"].as_str().unwrap().to_string();
    headless_db(&cluster);
    create(
        &cluster,
        &SERVICES,
        json!({"metadata": {"name": "search"},
        "spec": {"type": "ExternalName", "externalName": "search.example.com"}}),
    );

    let a = eventually(LIMIT, "web's A record", || async {
        let answer = ask_udp(dns, "web.default.svc.cluster.local.", RecordType::A).await;
        (answer.response_code() == ResponseCode::NoError && !answer.answers().is_empty())
            .then_some(answer)
    })
    .await;
    assert_eq!(answers(&a), [ip]);
    assert!(a.authoritative());
    let srv = ask_tcp(
        dns,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(answers(&srv), ["80 web.default.svc.cluster.local."]);
    assert_eq!(
        srv.additionals().len(),
        1,
        "the SRV target's address comes along"
    );

    let kubernetes = ask_udp(dns, "kubernetes.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&kubernetes), ["10.96.0.1"]);
    let headless = eventually(LIMIT, "db's ready pods", || async {
        let answer = ask_udp(dns, "db.default.svc.cluster.local.", RecordType::A).await;
        (answer.answers().len() == 2).then_some(answer)
    })
    .await;
    assert_eq!(answers(&headless), ["10.244.1.5", "10.244.1.6"]);
    let pod = ask_udp(dns, "db-0.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&pod), ["10.244.1.5"]);
    let srv = ask_udp(
        dns,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(
        answers(&srv),
        [
            "5432 10-244-1-6.db.default.svc.cluster.local.",
            "5432 db-0.db.default.svc.cluster.local."
        ]
    );
    let alias = eventually(LIMIT, "the ExternalName's CNAME", || async {
        let answer = ask_udp(dns, "search.default.svc.cluster.local.", RecordType::A).await;
        (!answer.answers().is_empty()).then_some(answer)
    })
    .await;
    assert_eq!(answers(&alias), ["search.example.com."]);

    let unknown = ask_tcp(dns, "nothing.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(unknown.response_code(), ResponseCode::NXDomain);
    let outside = ask_udp(dns, "example.com.", RecordType::A).await;
    assert_eq!(outside.response_code(), ResponseCode::Refused);
    let no_v6 = ask_udp(dns, "web.default.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(
        (no_v6.response_code(), no_v6.answers().len()),
        (ResponseCode::NoError, 0)
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn dns_follows_endpoint_changes_and_deleted_services() {
    let cluster = Cluster::start().await.unwrap();
    let dns = cluster.dns_addr();
    headless_db(&cluster);
    eventually(LIMIT, "db's two ready pods", || async {
        let answer = ask_udp(dns, "db.default.svc.cluster.local.", RecordType::A).await;
        (answer.answers().len() == 2).then_some(())
    })
    .await;
    let api = cluster.api();
    let mut slice = api.get(&ENDPOINT_SLICES, Some("default"), "db-1").unwrap();
    slice["endpoints"][2]["conditions"]["ready"] = json!(true);
    api.update(
        &ENDPOINT_SLICES,
        Some("default"),
        "db-1",
        slice,
        wasmkube::api::Part::Main,
    )
    .unwrap();
    eventually(LIMIT, "the pod turned ready answers", || async {
        let answer = ask_udp(dns, "db.default.svc.cluster.local.", RecordType::A).await;
        (answers(&answer) == ["10.244.1.5", "10.244.1.6", "10.244.1.7"]).then_some(())
    })
    .await;
    api.delete(&SERVICES, Some("default"), "db", &Default::default())
        .unwrap();
    eventually(LIMIT, "the deleted Service's name gone", || async {
        let answer = ask_tcp(dns, "db.default.svc.cluster.local.", RecordType::A).await;
        (answer.response_code() == ResponseCode::NXDomain).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn dig_resolves_a_service_over_udp_and_tcp() {
    let Some(dig) = ["/usr/bin/dig", "/bin/dig"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("dig is not installed: the hickory-proto queries above cover the wire format");
        return;
    };
    let cluster = Cluster::start().await.unwrap();
    let dns = cluster.dns_addr();
    let web = create(
        &cluster,
        &SERVICES,
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    );
    let ip = web["spec"]["clusterIP"].as_str().unwrap().to_string();
    let port = dns.port().to_string();
    for transport in ["+notcp", "+tcp"] {
        let args = [
            "@127.0.0.1",
            "-p",
            &port,
            transport,
            "+short",
            "+time=2",
            "web.default.svc.cluster.local",
        ];
        let found = eventually(LIMIT, "dig's answer", || async {
            let output = run_command(tokio::process::Command::new(dig), &args, None).await;
            (output.success && output.stdout.trim() == ip).then_some(output)
        })
        .await;
        assert_eq!(found.stdout.trim(), ip);
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn disabling_dns_leaves_its_port_closed() {
    let cluster = Cluster::start_with(|config| config.disabled = vec!["dns".into()])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(cluster.dns_addr()).await.is_err());
    cluster.shutdown().await;
}
