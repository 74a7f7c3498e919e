//! One node's node ports: a listener on the node's address at each node port its Service
//! table holds, opened and closed as the table changes. Every node runs this (kube-proxy's
//! part), so a NodePort Service answers on each node's address.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::backends::Backends;
use super::serve::{Upstream, serve};
use super::table::{Front, ServiceTable};
use crate::api::kinds::SERVICES;
use crate::client::control_plane::ControlPlane;
use crate::events::{EventType, Recorder};

/// Where a node's node ports listen and whom to tell when one cannot.
pub struct NodePorts {
    pub node_ip: IpAddr,
    pub table: Arc<ServiceTable>,
    pub backends: Arc<Backends>,
    /// Reads the Service a Warning event is about.
    pub plane: ControlPlane,
    pub recorder: Recorder,
}

impl NodePorts {
    /// Keeps a listener at each node port of the table until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut changes = self.table.changes();
        let mut open: HashMap<u16, (String, CancellationToken)> = HashMap::new();
        // A port that could not be bound is tried again at the next change, and told once.
        let mut warned: HashSet<(u16, String)> = HashSet::new();
        loop {
            let wanted: HashMap<u16, String> = (self.table.fronts().into_iter())
                .filter_map(|(front, service)| match front {
                    Front::NodePort(port) => Some((port, service)),
                    Front::Address(_) => None,
                })
                .collect();
            open.retain(|port, (service, stop)| {
                let keep = wanted.get(port) == Some(service);
                if !keep {
                    tracing::info!(port, service, "closing a node port");
                    stop.cancel();
                }
                keep
            });
            warned.retain(|(port, service)| wanted.get(port) == Some(service));
            for (port, service) in wanted {
                if open.contains_key(&port) {
                    continue;
                }
                match self.listen(port, &service, &shutdown).await {
                    Ok(stop) => {
                        open.insert(port, (service, stop));
                    }
                    Err(error) => {
                        if warned.insert((port, service.clone())) {
                            self.warn(port, &service, &error).await;
                        }
                    }
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Binds the node port and serves it until the returned token or `shutdown` is cancelled.
    async fn listen(
        &self,
        port: u16,
        service: &str,
        shutdown: &CancellationToken,
    ) -> std::io::Result<CancellationToken> {
        let bind = SocketAddr::new(self.node_ip, port);
        let listener = TcpListener::bind(bind).await?;
        tracing::info!(%bind, service, "listening on a node port");
        let stop = shutdown.child_token();
        let upstream = Upstream {
            front: Front::NodePort(port),
            service: service.to_string(),
            table: self.table.clone(),
            backends: self.backends.clone(),
        };
        tokio::spawn(serve(listener, upstream, stop.clone()));
        Ok(stop)
    }

    /// A Warning event on the Service whose node port cannot be listened on.
    async fn warn(&self, port: u16, service: &str, error: &std::io::Error) {
        let message = format!(
            "cannot listen on node port {}: {error}",
            SocketAddr::new(self.node_ip, port)
        );
        tracing::warn!(service, "{message}");
        let Some((namespace, name)) = service.split_once('/') else {
            return;
        };
        if let Ok(object) = self.plane.get(&SERVICES, Some(namespace), name).await {
            (self.recorder).record(&object, None, EventType::Warning, "ListenFailed", &message);
        }
    }
}
