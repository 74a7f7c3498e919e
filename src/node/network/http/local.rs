//! The node's HTTP containers as the service proxy beside them reaches them: by their pod's
//! loopback address and port, a request handed straight to the container's handler — no
//! connection, no second HTTP parse — for as long as the container takes new connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};

use http::{Request, Response};
use wasmtime_wasi_http::WasiBody;

/// A container's handler, counted as the container's own requests are (its pod's drain
/// waits for them).
pub type Handle = Arc<
    dyn Fn(Request<WasiBody>) -> Pin<Box<dyn Future<Output = Response<WasiBody>> + Send>>
        + Send
        + Sync,
>;

/// The node's serving HTTP containers, by the loopback address of each of their ports.
#[derive(Default)]
pub struct LocalHttpServers {
    serving: Mutex<HashMap<SocketAddr, (u64, Handle)>>,
    next: Mutex<u64>,
}

/// Holds a container's ports in the registry; dropping it takes them out.
pub struct Serving {
    servers: Weak<LocalHttpServers>,
    addresses: Vec<SocketAddr>,
    id: u64,
}

impl LocalHttpServers {
    /// Serves `addresses` by `handle` until the returned [`Serving`] is dropped.
    pub fn serve(self: &Arc<Self>, addresses: &[SocketAddr], handle: Handle) -> Serving {
        let id = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let mut serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        for address in addresses {
            serving.insert(*address, (id, handle.clone()));
        }
        Serving {
            servers: Arc::downgrade(self),
            addresses: addresses.to_vec(),
            id,
        }
    }

    /// The handler serving `address` (a pod's loopback address and port), if one does.
    pub fn at(&self, address: SocketAddr) -> Option<Handle> {
        let serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        serving.get(&address).map(|(_, handle)| handle.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let Some(servers) = self.servers.upgrade() else {
            return;
        };
        let mut serving = servers.serving.lock().unwrap_or_else(|p| p.into_inner());
        for address in &self.addresses {
            // A container of a newer pod may hold the address now: only ours goes.
            if serving.get(address).is_some_and(|(id, _)| *id == self.id) {
                serving.remove(address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::*;

    /// A handler answering `text`.
    fn answering(text: &'static str) -> Handle {
        Arc::new(move |_| {
            Box::pin(async move {
                let body = Full::new(Bytes::from(text)).map_err(|never| match never {});
                Response::new(body.boxed_unsync())
            })
        })
    }

    async fn answer_at(servers: &LocalHttpServers, address: SocketAddr) -> Option<Bytes> {
        let handle = servers.at(address)?;
        let body = Full::new(Bytes::new()).map_err(|never| match never {});
        let response = handle(Request::new(body.boxed_unsync())).await;
        Some(response.into_body().collect().await.ok()?.to_bytes())
    }

    #[tokio::test]
    async fn a_container_serves_its_ports_until_dropped_and_takes_only_its_own_out() {
        let servers = Arc::new(LocalHttpServers::default());
        let (http, admin): (SocketAddr, SocketAddr) = (
            "127.244.1.2:8080".parse().unwrap(),
            "127.244.1.2:9090".parse().unwrap(),
        );
        let old = servers.serve(&[http, admin], answering("old"));
        assert_eq!(answer_at(&servers, http).await.unwrap(), "old");
        assert_eq!(answer_at(&servers, admin).await.unwrap(), "old");
        // A new pod took the address before the old container's end was noticed.
        let new = servers.serve(&[http], answering("new"));
        drop(old);
        assert_eq!(answer_at(&servers, http).await.unwrap(), "new");
        assert!(
            servers.at(admin).is_none(),
            "the old container's other port is gone"
        );
        drop(new);
        assert!(servers.at(http).is_none());
    }
}
