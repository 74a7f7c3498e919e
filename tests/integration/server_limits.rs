//! The API server under careless and hostile clients: slow headers, piles of idle
//! connections, a handler that panics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wasmkube::api::kinds::{Admission, Resource, Strategy};
use wasmkube::api::printers::NAME_AND_AGE;
use wasmkube::client::ListParams;
use wasmkube::testing::Cluster;

/// A TLS connection to the cluster's API that has sent nothing yet.
async fn tls_connection(cluster: &Cluster) -> TlsStream<TcpStream> {
    let config = wasmkube::tls::client_config(&cluster.ca_pem()).unwrap();
    let address: SocketAddr = cluster
        .api_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let stream = TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::from(address.ip());
    TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_sending_headers_a_byte_a_second_is_cut_off() {
    let cluster = Cluster::start().await.unwrap();
    let mut connection = tls_connection(&cluster).await;
    let head = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ";
    let dripped = tokio::time::timeout(Duration::from_secs(30), async {
        for byte in head.iter().cycle() {
            if connection.write_all(&[*byte]).await.is_err() {
                return;
            }
            let mut answer = [0u8; 512];
            tokio::select! {
                read = connection.read(&mut answer) => {
                    // Closed (or a 408) is the cut-off.
                    if matches!(read, Ok(0) | Err(_)) || answer.starts_with(b"HTTP/1.1 408") {
                        return;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
    .await;
    assert!(
        dripped.is_ok(),
        "still connected after 30 s of dripped headers"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_stop_clients() {
    let cluster = Cluster::start().await.unwrap();
    let address: SocketAddr = cluster
        .api_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(address).await.unwrap());
    }
    let mut idle_tls = Vec::new();
    for _ in 0..500 {
        idle_tls.push(tls_connection(&cluster).await);
    }
    let client = cluster.client();
    let namespaces = tokio::time::timeout(
        Duration::from_secs(10),
        client.list("/api/v1/namespaces", &ListParams::default()),
    )
    .await
    .expect("an answer while a thousand connections idle")
    .unwrap();
    assert!(namespaces["items"].as_array().unwrap().len() >= 3);
    let kubectl = crate::kubectl::kubectl(&cluster, &["get", "namespaces"], None).await;
    assert!(kubectl.success, "{}", kubectl.stderr);
    drop((idle, idle_tls));
    cluster.shutdown().await;
}

/// A kind whose admission panics: a stand-in for a bug met on one request.
struct Panicking;

impl Strategy for Panicking {
    fn admit(&self, _admission: &mut Admission<'_>) -> wasmkube::api::ApiResult<Value> {
        panic!("a bug in admission");
    }

    fn schema(&self) -> Value {
        json!({"type": "object"})
    }
}

static GADGETS: Resource = Resource {
    group: "example.com",
    version: "v1",
    kind: "Gadget",
    plural: "gadgets",
    singular: "gadget",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &Panicking,
    printer: &NAME_AND_AGE,
};

#[tokio::test]
async fn a_handler_that_panics_answers_500_and_the_server_goes_on() {
    let cluster = Cluster::start().await.unwrap();
    cluster.api().registry().register(&GADGETS).unwrap();
    let client = cluster.client();
    let gadget = json!({"metadata": {"name": "g"}});
    let error = client
        .create(&GADGETS.path(Some("default"), None), &gadget)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(500));
    assert!(error.to_string().contains("a bug in admission"), "{error}");
    client.get("/api/v1/namespaces/default").await.unwrap();
    cluster.shutdown().await;
}
