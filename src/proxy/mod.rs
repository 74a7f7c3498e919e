//! The service proxy (DESIGN §6): a table of Services' addresses and their ready endpoints,
//! kept from the API through the controller runtime, that the node's router asks for cluster
//! IPs.

mod table;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use table::{Front, Pick, ServiceTable, load_balancer_ips};

use crate::api::Api;
use crate::controller_runtime::services::{self, ServiceState};

impl ServiceTable {
    /// Keeps the table in line with the API's Services and EndpointSlices until `shutdown`.
    pub async fn follow(self: Arc<Self>, api: Arc<Api>, shutdown: CancellationToken) {
        services::follow(api, shutdown, move |state: ServiceState<'_>| {
            self.set_service(state.namespace, state.name, state.service, state.slices);
        })
        .await;
    }
}
