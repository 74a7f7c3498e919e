//! Lease (`coordination.k8s.io/v1`): node heartbeats, one Lease per node in
//! [`NODE_LEASE_NAMESPACE`], renewed by its agent and read by the node lifecycle controller.

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

use super::resource::Resource;
use super::strategy::{Admission, Strategy, encode, schema_of};
use crate::api::error::{ApiResult, Cause};
use crate::api::printers;

pub static LEASES: Resource = Resource {
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    plural: "leases",
    singular: "lease",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &LeaseRules,
    printer: &printers::lease::COLUMNS,
};

/// Where nodes' heartbeat Leases live.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Kubernetes' `ValidateLeaseSpec`: a positive duration, no negative transitions.
struct LeaseRules;

impl Strategy for LeaseRules {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let lease: Lease = admission.decode()?;
        let spec = lease.spec.as_ref();
        if let Some(duration) = spec
            .and_then(|s| s.lease_duration_seconds)
            .filter(|d| *d <= 0)
        {
            admission.causes.push(Cause::invalid(
                "spec.leaseDurationSeconds",
                duration,
                "must be greater than 0",
            ));
        }
        if let Some(transitions) = spec.and_then(|s| s.lease_transitions).filter(|t| *t < 0) {
            admission.causes.push(Cause::invalid(
                "spec.leaseTransitions",
                transitions,
                "must be greater than or equal to 0",
            ));
        }
        encode(&lease)
    }

    fn schema(&self) -> Value {
        schema_of::<Lease>()
    }
}
