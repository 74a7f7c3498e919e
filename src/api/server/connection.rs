//! One client connection: the TLS handshake (or a 400 for plain HTTP) and HTTP/1 with the
//! timeouts that cut off slow and idle clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{Context, handle};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS connection (a handshake record); anything else is not TLS.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves one accepted connection until it closes or times out.
pub async fn serve(stream: TcpStream, peer: SocketAddr, context: Arc<Context>) {
    if let Some(stream) = handshake(stream, peer, &context.tls).await {
        serve_http(stream, context).await;
    }
}

/// Completes the TLS handshake within `HANDSHAKE_TIMEOUT`. A client speaking plain HTTP
/// gets a 400 saying so (as Go's servers answer) instead of a dropped connection.
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    tls: &TlsAcceptor,
) -> Option<TlsStream<TcpStream>> {
    let attempt = async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await.ok()? == 0 {
            return None;
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            tracing::debug!(%peer, "plain HTTP on the HTTPS port");
            refuse_plain_http(stream).await;
            return None;
        }
        tls.accept(stream)
            .await
            .inspect_err(|error| tracing::debug!(%peer, %error, "TLS handshake failed"))
            .ok()
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}

/// Reads the request head (so closing does not reset the connection before the client has
/// read the answer) and answers 400.
async fn refuse_plain_http(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let body = "Client sent an HTTP request to an HTTPS server.\n";
    let response = format!(
        "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve_http(stream: TlsStream<TcpStream>, context: Arc<Context>) {
    let service = service_fn(move |request| {
        let context = context.clone();
        async move { Ok::<_, Infallible>(handle(request, &context).await) }
    });
    let connection = crate::http_limits::http1().serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended with an error");
    }
}
