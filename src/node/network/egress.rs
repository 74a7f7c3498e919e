//! The egress listener: where guests' sockets connect to reach pods of other nodes.
//!
//! A guest socket is a real OS socket, so it must connect to a real address; without
//! iptables there is no transparent redirect. Instead the socket layer opens the tunnel to the
//! other node first (so a refusal there reaches the guest as `connection-refused`), files the
//! tunnel under the socket's own address, and connects the socket here. Accepting, the
//! listener finds the tunnel by the peer address and splices the two.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::NetworkError;
use super::tunnel::TunnelStream;

/// How long a tunnel waits for its guest socket to connect before it is dropped.
const UNCLAIMED_FOR: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<SocketAddr, (TunnelStream, Instant)>>>;

/// The node's egress listener and the tunnels waiting for their sockets.
pub struct Egress {
    address: SocketAddr,
    pending: Pending,
}

impl Egress {
    /// Listens on `ip` (the node's own loopback address) until `shutdown`.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(ip: Ipv4Addr, shutdown: CancellationToken) -> Result<Egress, NetworkError> {
        let wanted = SocketAddr::from((ip, 0));
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|source| NetworkError::Egress {
                address: wanted,
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| NetworkError::Egress {
                address: wanted,
                source,
            })?;
        let pending = Pending::default();
        tokio::spawn(accept_loop(listener, pending.clone(), shutdown));
        Ok(Egress { address, pending })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Files `stream` for the guest socket bound at `from`, which connects next.
    pub fn expect(&self, from: SocketAddr, stream: TunnelStream) {
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (_, filed)| now.duration_since(*filed) < UNCLAIMED_FOR);
        pending.insert(from, (stream, now));
    }
}

async fn accept_loop(listener: TcpListener, pending: Pending, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (mut socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                crate::http_limits::after_failed_accept("egress", &error).await;
                continue;
            }
        };
        let claimed = pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer);
        // A connection nobody filed a tunnel for is not a guest's: drop it.
        let Some((mut tunnel, _)) = claimed else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let (up, down) = (super::tunnel::SPLICE_BUFFER, super::tunnel::SPLICE_BUFFER);
            let _ =
                tokio::io::copy_bidirectional_with_sizes(&mut socket, &mut tunnel, up, down).await;
        });
    }
}
