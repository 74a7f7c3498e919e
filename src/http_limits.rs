//! What every HTTP server of the process (the API server, the proxy's listeners, the node's
//! port, HTTP components) allows a client: hyper's header-read timeout is off until a server
//! has a timer, so a client sending its head a byte a second, or a kept-alive connection never
//! used again, would hold a connection for ever. And what every listener does when an accept
//! fails.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

/// How long a client may take to send a request's head, counted from when the server is
/// ready for it: it also closes a kept-alive connection left idle this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long this process's HTTP clients (the proxy's connections to endpoints, guests'
/// outgoing requests) keep a connection idle for the next request: well below
/// [`HEADER_READ_TIMEOUT`], so a request seldom meets a connection its server is closing.
pub const CLIENT_IDLE: Duration = Duration::from_secs(4);

/// How long a listener waits after a failed accept (the process is out of file descriptors,
/// say) before it takes the next: retrying at once would spin a core until one is freed.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Logs a failed accept of `listener` and waits [`ACCEPT_BACKOFF`].
pub async fn after_failed_accept(listener: &str, error: &std::io::Error) {
    tracing::warn!(%error, listener, "accept failed");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// An HTTP/1.1 server connection builder with [`HEADER_READ_TIMEOUT`] that answers a client
/// which shut down its sending side once its request was out (`nc -N`, a raw TCP client):
/// hyper's default takes that end of input for a connection gone, and drops an answer not yet
/// written.
pub fn http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// An HTTP/1.1 and HTTP/2 server connection builder: for HTTP/1.1 as [`http1`] (the timeout,
/// and answers to half-closed connections);
/// HTTP/2 connections are pinged every [`HEADER_READ_TIMEOUT`] and closed when a ping goes
/// unanswered as long.
pub fn http1_and_2() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HEADER_READ_TIMEOUT)
        .keep_alive_timeout(HEADER_READ_TIMEOUT);
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What a client that half-closes after its request reads back from a server whose
    /// answer takes 50 ms, served by `serve`.
    async fn answer_after_half_close<S, F>(serve: S) -> String
    where
        S: FnOnce(tokio::net::TcpStream) -> F + Send + 'static,
        F: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream).await;
        });
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        let read = client.read_to_string(&mut answer);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .unwrap()
            .unwrap();
        answer
    }

    async fn late(
        _: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(hyper::Response::new(Full::new(Bytes::from("late"))))
    }

    #[tokio::test]
    async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
        let io = |stream| TokioIo::new(stream);
        let answers = [
            answer_after_half_close(move |stream| async move {
                let _ = http1().serve_connection(io(stream), service_fn(late)).await;
            })
            .await,
            answer_after_half_close(move |stream| async move {
                let _ = http1_and_2()
                    .serve_connection(io(stream), service_fn(late))
                    .await;
            })
            .await,
        ];
        for answer in answers {
            let answered = answer.starts_with("HTTP/1.0 200") && answer.ends_with("late");
            assert!(answered, "{answer:?}");
        }
    }
}
