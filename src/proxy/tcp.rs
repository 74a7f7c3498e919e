//! What a listener does with a connection that does not speak HTTP: which one it is (the
//! port's `appProtocol`, else the client's first bytes), and the per-connection splice to an
//! endpoint.
//!
//! With no `appProtocol`, a connection whose first bytes are an HTTP/1 request line's method
//! and space (or the HTTP/2 preface, `PRI * ...`) is HTTP; any other first byte makes it TCP.
//! A client that sends nothing within [`SNIFF_WINDOW`] is taken for one of a protocol where
//! the server speaks first (SMTP, MySQL, ...), and spliced: its server's greeting comes that
//! much late, which `appProtocol: tcp` on the port avoids.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::serve::{Tried, Upstream};
use super::table::{AppProtocol, Pick};

/// How long a client may stay silent before its connection is taken for TCP.
pub const SNIFF_WINDOW: Duration = Duration::from_millis(250);

/// The longest method looked for (`MKCALENDAR` has 10 letters; room for extensions).
const LONGEST_METHOD: usize = 20;

/// How a connection is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carry {
    /// Per request, by the HTTP proxy.
    Http,
    /// Per connection, bytes as they come.
    Tcp,
}

/// How the connection `stream` to `upstream` is carried: as the port says, else as its
/// first bytes (peeked, so they stay for whoever carries it) say.
pub async fn carry_of(stream: &TcpStream, upstream: &Upstream) -> Carry {
    match upstream.table.protocol(upstream.front) {
        Some(AppProtocol::Tcp) => Carry::Tcp,
        // Not a Service (any more): the HTTP proxy tells the client so.
        Some(AppProtocol::Http) | None => Carry::Http,
        Some(AppProtocol::Unset) => sniff(stream).await,
    }
}

async fn sniff(stream: &TcpStream) -> Carry {
    let deadline = Instant::now() + SNIFF_WINDOW;
    let mut first = [0u8; LONGEST_METHOD + 1];
    let mut seen = 0;
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut first)).await;
        let Ok(Ok(read)) = peeked else {
            // Silent (or failed): a server-speaks-first protocol, or nothing to lose.
            return Carry::Tcp;
        };
        if let Some(carry) = carry_by_first_bytes(&first[..read], read == 0) {
            return carry;
        }
        if read == seen {
            // `peek` returns at once while bytes wait unread: let more arrive.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen = read;
    }
}

/// HTTP when `first` opens with a method (capital letters) and a space; TCP on any other
/// byte, or when the client closed (`ended`); `None` while it cannot tell yet.
pub fn carry_by_first_bytes(first: &[u8], ended: bool) -> Option<Carry> {
    for (i, byte) in first.iter().enumerate() {
        match byte {
            b'A'..=b'Z' if i < LONGEST_METHOD => {}
            b' ' if i > 0 => return Some(Carry::Http),
            _ => return Some(Carry::Tcp),
        }
    }
    ended.then_some(Carry::Tcp)
}

/// Splices `stream` from `client` to an endpoint of the upstream, trying the next one while
/// connects fail, until either side closes or `stop`; with none reachable the client is
/// closed on.
pub async fn splice(
    mut stream: TcpStream,
    client: SocketAddr,
    upstream: &Upstream,
    stop: &CancellationToken,
) {
    let mut tried = Tried::default();
    let (endpoint, mut to, _in_flight) = loop {
        let (endpoint, in_flight) = match upstream.pick(client.ip(), &mut tried) {
            (Pick::Endpoint(endpoint), in_flight) => (endpoint, in_flight),
            (pick, _) => {
                tracing::debug!(?pick, ?tried, service = upstream.service, %client, "no endpoint for a connection");
                return;
            }
        };
        match upstream.backends.connect(endpoint).await {
            Ok(to) => break (endpoint, to, in_flight),
            Err(error) => {
                tracing::debug!(%error, %endpoint, service = upstream.service, "trying another endpoint");
                tried.endpoints.push(endpoint);
            }
        }
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut stream, &mut to) => {
            if let Err(error) = copied {
                tracing::debug!(%error, %endpoint, %client, "a spliced connection failed");
            }
        }
        () = stop.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_and_the_h2_preface_are_http_and_other_first_bytes_tcp() {
        for http in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST ",
            b"MKCALENDAR /x",
            b"PRI * HTTP/2.0",
        ] {
            assert_eq!(
                carry_by_first_bytes(http, false),
                Some(Carry::Http),
                "{http:?}"
            );
        }
        for tcp in [
            &b"PING\r\n"[..],
            b"get key\r\n",
            b"\x16\x03\x01",
            b" GET",
            b"\x00",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ ",
        ] {
            assert_eq!(
                carry_by_first_bytes(tcp, false),
                Some(Carry::Tcp),
                "{tcp:?}"
            );
        }
    }

    #[test]
    fn a_partial_method_waits_for_more_unless_the_client_closed() {
        assert_eq!(carry_by_first_bytes(b"", false), None);
        assert_eq!(carry_by_first_bytes(b"GE", false), None);
        assert_eq!(carry_by_first_bytes(b"GE", true), Some(Carry::Tcp));
        assert_eq!(carry_by_first_bytes(b"", true), Some(Carry::Tcp));
    }
}
