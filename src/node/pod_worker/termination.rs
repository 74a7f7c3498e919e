//! A deleted pod's graceful termination, in the kubelet's order: its `preStop` hooks run while
//! it leaves the Services' endpoints, then its HTTP containers finish the requests in flight,
//! all within the grace period. What still runs after that is stopped.
//!
//! A WASI command has no signal to catch, so where a process would get SIGTERM a command
//! container is stopped (as a process that exits on it); an HTTP container's SIGTERM is its
//! drain.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Stop, Worker};
use crate::events::EventType;
use crate::node::pod_status::ContainerState;
use crate::node::probes::Hook;

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// The longest a terminating pod waits to leave its Services' endpoints. The endpoints
/// controller and the proxy take milliseconds; much longer means they are not running, and
/// the pod does not wait out its whole grace period for them.
const LEAVING_SERVICES_AT_MOST: Duration = Duration::from_secs(2);
/// After a pod has left its Services, how long requests routed to it just before still have
/// to arrive: a connection the drain closed as idle could otherwise meet a request already
/// on its way (the keep-alive race), which a proxy may not send again.
const ROUTED_REQUESTS_ARRIVE_WITHIN: Duration = Duration::from_millis(250);
/// A grace no clock can add (a manifest's `10000000000000`) is taken as this long.
const LONGEST_GRACE: Duration = Duration::from_secs(100 * 365 * 86_400);

impl Stop {
    /// The stop a pod object marked for deletion asks for: its `deletionGracePeriodSeconds`,
    /// or its spec's `terminationGracePeriodSeconds`.
    pub fn deletion(pod: &Value) -> Stop {
        let seconds = pod["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64());
        let grace = seconds.map_or(DEFAULT_GRACE, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        });
        Stop::Delete { grace }
    }
}

impl Worker {
    /// Winds the pod down until it is done or its grace is over; returns why it stops in the
    /// end (a force delete or the node's shutdown may cut the grace short).
    pub(super) async fn terminate_gracefully(
        self: &Arc<Self>,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> Stop {
        let drain = &self.shared.net.drain;
        let wind_down = async {
            tokio::join!(self.run_pre_stop_hooks(), self.leave_services());
            drain.start();
            drain.finished().await;
        };
        tokio::select! {
            () = wind_down => {}
            () = grace_over(stop) => {}
        }
        drain.start();
        let last = *stop.borrow();
        last.unwrap_or(Stop::Gone)
    }

    /// Runs the `preStop` hook of every running app container, side by side; a hook that
    /// fails is a `FailedPreStopHook` event and termination goes on.
    async fn run_pre_stop_hooks(&self) {
        let running: Vec<&Container> = {
            let record = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
            let spec = self.pod.spec.as_ref();
            let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
            containers
                .iter()
                .enumerate()
                .filter(|(index, _)| {
                    record
                        .app
                        .get(*index)
                        .is_some_and(|c| matches!(c.state, ContainerState::Running { .. }))
                })
                .map(|(_, container)| container)
                .collect()
        };
        let hooks = running
            .into_iter()
            .map(|container| self.pre_stop(container));
        futures::future::join_all(hooks).await;
    }

    async fn pre_stop(&self, container: &Container) {
        let Some(hook) = Hook::pre_stop(container) else {
            return;
        };
        let outcome = match hook {
            Ok(Hook::Sleep(pause)) => {
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Ok(Hook::Check(check)) => self.run_check(&check, container, LONGEST_GRACE).await,
            Err(why) => Err(why),
        };
        if let Err(why) = outcome {
            let message = format!("PreStopHook failed: {why}");
            let name = Some(container.name.as_str());
            self.event(name, EventType::Warning, "FailedPreStopHook", &message);
        }
    }

    /// Waits until the node's Services send no new connection to the pod (at most
    /// [`LEAVING_SERVICES_AT_MOST`]), then for what they sent just before to arrive.
    async fn leave_services(&self) {
        let network = self.shared.net.node();
        let ip = self.shared.net.address.pod_ip.into();
        if !network.service_sends_to(ip) {
            return;
        }
        let _ = tokio::time::timeout(
            LEAVING_SERVICES_AT_MOST,
            network.until_no_service_sends_to(ip),
        )
        .await;
        tokio::time::sleep(ROUTED_REQUESTS_ARRIVE_WITHIN).await;
    }
}

/// Ends when the grace period of the pod's deletion is over, or when a more urgent stop
/// (see [`super::PodHandle::stop`]) leaves it none.
async fn grace_over(stop: &mut watch::Receiver<Option<Stop>>) {
    let started = Instant::now();
    let Some(Stop::Delete { grace }) = *stop.borrow_and_update() else {
        return;
    };
    let mut deadline = grace_end(started, grace).unwrap_or(started);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(Stop::Delete { grace }) = *stop.borrow_and_update() else {
                    return;
                };
                // A shorter grace counts from when it was asked for.
                let asked = grace_end(Instant::now(), grace).unwrap_or(deadline);
                deadline = deadline.min(asked);
            }
        }
    }
}

/// When a grace asked for at `asked` ends (at most [`LONGEST_GRACE`] later).
fn grace_end(asked: Instant, grace: Duration) -> Option<Instant> {
    asked.checked_add(grace.min(LONGEST_GRACE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_grace_of_a_deletion_is_the_objects_then_the_specs_then_thirty_seconds() {
        let grace = |pod: Value| match Stop::deletion(&pod) {
            Stop::Delete { grace } => grace.as_secs(),
            other => panic!("{other:?}"),
        };
        let spec = json!({"terminationGracePeriodSeconds": 5});
        assert_eq!(
            grace(json!({"metadata": {"deletionGracePeriodSeconds": 2}, "spec": spec})),
            2
        );
        assert_eq!(grace(json!({"metadata": {}, "spec": spec})), 5);
        assert_eq!(grace(json!({"metadata": {}})), 30);
        assert_eq!(
            grace(json!({"metadata": {"deletionGracePeriodSeconds": -1}})),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_grace_or_a_force_delete_cuts_the_grace_short_and_no_grace_overflows() {
        let delete = |seconds| Stop::Delete {
            grace: Duration::from_secs(seconds),
        };
        let (tx, mut rx) = watch::channel(Some(delete(u64::MAX)));
        let started = Instant::now();
        let over = tokio::spawn(async move { grace_over(&mut rx).await });
        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send_replace(Some(delete(5)));
        over.await.unwrap();
        assert_eq!(
            started.elapsed().as_secs(),
            15,
            "5 s counted from the shorter ask"
        );

        let (tx, mut rx) = watch::channel(Some(delete(30)));
        let started = Instant::now();
        let over = tokio::spawn(async move { grace_over(&mut rx).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send_replace(Some(Stop::Gone));
        over.await.unwrap();
        assert_eq!(
            started.elapsed().as_secs(),
            1,
            "a force delete ends it at once"
        );
    }
}
