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

/// An HTTP/1.1 server connection builder with [`HEADER_READ_TIMEOUT`].
pub fn http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// An HTTP/1.1 and HTTP/2 server connection builder: [`HEADER_READ_TIMEOUT`] for HTTP/1.1;
/// HTTP/2 connections are pinged every [`HEADER_READ_TIMEOUT`] and closed when a ping goes
/// unanswered as long.
pub fn http1_and_2() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HEADER_READ_TIMEOUT)
        .keep_alive_timeout(HEADER_READ_TIMEOUT);
    builder
}
