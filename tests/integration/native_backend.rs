//! A native HTTP server in the test (or bench) process, for the proxy to reach outside the
//! pod network.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Serves HTTP/1.1 on a loopback port, answering every request 200 with `body`.
pub async fn native_backend(body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let service = service_fn(move |_| async move {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    body.as_bytes(),
                ))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    address
}
