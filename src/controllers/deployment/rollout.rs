//! The rolling-update arithmetic, without I/O: how far `maxSurge` and `maxUnavailable` let a
//! rollout go in one step, and how a change of `replicas` mid-rollout is spread over the
//! ReplicaSets (Kubernetes' `rolling.go`, `sync.go` `scale` and `deployment/util`).

use serde_json::Value;

/// One ReplicaSet as the arithmetic sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

/// `maxSurge` and `maxUnavailable` resolved against the desired replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_surge: i32,
    pub max_unavailable: i32,
}

/// What one rolling-update step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Scale the new ReplicaSet to this size.
    ScaleNew(i32),
    /// Scale the old ReplicaSets (oldest first, as given) to these sizes.
    ScaleOld(Vec<i32>),
    /// Nothing to do until pods become available.
    Wait,
}

/// An int-or-percent field against `total`: percentages round up for a surge and down for
/// unavailability, as Kubernetes' `GetScaledValueFromIntOrPercent`. A malformed value is 0.
pub fn resolve(value: &Value, total: i32, round_up: bool) -> i32 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0).clamp(0, i32::MAX as i64) as i32,
        Value::String(text) => {
            let Some(percent) = crate::api::kinds::percent(text) else {
                return 0;
            };
            let scaled = i64::from(percent) * i64::from(total.max(0));
            let value = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            value.min(i32::MAX as i64) as i32
        }
        _ => 0,
    }
}

/// The limits of a Deployment's `spec.strategy` for `desired` replicas (Kubernetes'
/// `ResolveFenceposts`, `MaxSurge`, `MaxUnavailable`): both 0 for Recreate; when both
/// resolve to 0 one pod may be unavailable; no more may be unavailable than are desired.
pub fn limits(strategy: &Value, desired: i32) -> Limits {
    if strategy["type"].as_str().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Limits {
            max_surge: 0,
            max_unavailable: 0,
        };
    }
    let rolling = &strategy["rollingUpdate"];
    let max_surge = resolve(&rolling["maxSurge"], desired, true);
    let mut max_unavailable = resolve(&rolling["maxUnavailable"], desired, false);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    Limits {
        max_surge,
        max_unavailable: max_unavailable.min(desired.max(0)),
    }
}

/// One step of a rolling update: first scale the new ReplicaSet up as far as the surge allows;
/// when it cannot grow, scale old ones down as far as availability allows — unhealthy pods
/// first, then the oldest ReplicaSets (`rolloutRolling`).
pub fn rolling_step(desired: i32, limits: Limits, new: Size, old: &[Size]) -> Step {
    let old_total: i32 = old.iter().map(|s| s.replicas).sum();
    let wanted = new_size(desired, limits, new.replicas, old_total);
    if wanted != new.replicas {
        return Step::ScaleNew(wanted);
    }
    let sizes = old_sizes(desired, limits, new, old);
    if sizes.iter().zip(old).any(|(size, rs)| *size != rs.replicas) {
        Step::ScaleOld(sizes)
    } else {
        Step::Wait
    }
}

/// The new ReplicaSet's next size (`reconcileNewReplicaSet`, `NewRSNewReplicas`).
pub fn new_size(desired: i32, limits: Limits, new: i32, old_total: i32) -> i32 {
    if new >= desired {
        return desired;
    }
    let most = desired + limits.max_surge;
    let current = new + old_total;
    if current >= most {
        return new;
    }
    new + (most - current).min(desired - new)
}

/// The old ReplicaSets' next sizes, oldest first (`reconcileOldReplicaSets`).
pub fn old_sizes(desired: i32, limits: Limits, new: Size, old: &[Size]) -> Vec<i32> {
    let mut sizes: Vec<i32> = old.iter().map(|s| s.replicas).collect();
    let old_total: i32 = sizes.iter().sum();
    if old_total == 0 {
        return sizes;
    }
    let all = old_total + new.replicas;
    let min_available = desired - limits.max_unavailable;
    let new_unavailable = new.replicas - new.available;
    let max_scaled_down = all - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return sizes;
    }
    // Pods that are not available anyway go first: removing them costs no availability.
    let mut cleaned = 0;
    for (size, rs) in sizes.iter_mut().zip(old) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = *size - rs.available.min(*size);
        if *size == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(max_scaled_down - cleaned);
        *size -= down;
        cleaned += down;
    }
    // Then available ones, as far as the minimum availability allows.
    let available: i32 = new.available
        + old
            .iter()
            .zip(&sizes)
            .map(|(rs, size)| rs.available.min(*size))
            .sum::<i32>();
    let mut to_scale_down = (available - min_available).max(0);
    for size in sizes.iter_mut() {
        if to_scale_down == 0 {
            break;
        }
        let down = (*size).min(to_scale_down);
        *size -= down;
        to_scale_down -= down;
    }
    sizes
}

/// One ReplicaSet as proportional scaling sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scalable {
    pub replicas: i32,
    /// The `deployment.kubernetes.io/max-replicas` annotation: the Deployment's size plus surge
    /// when this ReplicaSet was last scaled.
    pub max_replicas: Option<i32>,
}

/// New sizes for the ReplicaSets of a Deployment resized mid-rollout (`sync.go` `scale`): the
/// difference between `desired + max_surge` and their total is spread in proportion to their
/// sizes (largest first), and what rounding leaves over goes to the largest. `sets` are oldest
/// first; `status_replicas` stands in for a missing annotation. Sizes come back in that order.
pub fn proportional(
    desired: i32,
    max_surge: i32,
    status_replicas: i32,
    sets: &[Scalable],
) -> Vec<i32> {
    let allowed = if desired > 0 { desired + max_surge } else { 0 };
    let total: i32 = sets.iter().map(|s| s.replicas).sum();
    let to_add = allowed - total;
    let mut sizes: Vec<i32> = sets.iter().map(|s| s.replicas).collect();
    if to_add == 0 || sets.is_empty() {
        return sizes;
    }
    // Largest first; on a tie the newer when growing, the older when shrinking.
    let mut order: Vec<usize> = (0..sets.len()).collect();
    order.sort_by(|&a, &b| {
        let by_size = sets[b].replicas.cmp(&sets[a].replicas);
        let by_age = if to_add > 0 { b.cmp(&a) } else { a.cmp(&b) };
        by_size.then(by_age)
    });
    let mut added = 0;
    for &i in &order {
        let share = proportion(sets[i], desired, max_surge, status_replicas, to_add, added);
        sizes[i] += share;
        added += share;
    }
    let first = order[0];
    sizes[first] = (sizes[first] + to_add - added).max(0);
    sizes
}

/// One ReplicaSet's share of `to_add` (`GetProportion`, `getReplicaSetFraction`).
fn proportion(
    set: Scalable,
    desired: i32,
    max_surge: i32,
    status_replicas: i32,
    to_add: i32,
    added: i32,
) -> i32 {
    if set.replicas == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired == 0 {
        -set.replicas
    } else {
        let annotated = set.max_replicas.unwrap_or(status_replicas);
        if annotated <= 0 {
            return 0;
        }
        let scaled =
            f64::from(set.replicas) * f64::from(desired + max_surge) / f64::from(annotated);
        scaled.round() as i32 - set.replicas
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rolling(surge: Value, unavailable: Value) -> Value {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    #[test]
    fn percentages_round_surge_up_and_unavailability_down() {
        let limits = limits(&rolling(json!("25%"), json!("25%")), 10);
        assert_eq!(
            limits,
            Limits {
                max_surge: 3,
                max_unavailable: 2
            }
        );
        let limits = super::limits(&rolling(json!("10%"), json!("10%")), 5);
        assert_eq!(
            limits,
            Limits {
                max_surge: 1,
                max_unavailable: 0
            }
        );
        let limits = super::limits(&rolling(json!(0), json!("10%")), 5);
        assert_eq!(
            limits,
            Limits {
                max_surge: 0,
                max_unavailable: 1
            },
            "both 0: one may go"
        );
        let limits = super::limits(&rolling(json!(2), json!(7)), 3);
        assert_eq!(
            limits,
            Limits {
                max_surge: 2,
                max_unavailable: 3
            },
            "capped at replicas"
        );
        let limits = super::limits(&json!({"type": "Recreate"}), 3);
        assert_eq!(
            limits,
            Limits {
                max_surge: 0,
                max_unavailable: 0
            }
        );
        assert_eq!(resolve(&json!("bad"), 10, true), 0);
    }

    /// Issue 3's conformance figures: 10 replicas, surge 3, unavailable 2, a new template whose
    /// pods never become available.
    #[test]
    fn a_never_ready_rollout_of_ten_stops_at_eight_old_and_five_new() {
        let limits = Limits {
            max_surge: 3,
            max_unavailable: 2,
        };
        let old = Size {
            replicas: 10,
            available: 10,
        };
        assert_eq!(
            rolling_step(10, limits, Size::default(), &[old]),
            Step::ScaleNew(3)
        );
        let new = Size {
            replicas: 3,
            available: 0,
        };
        assert_eq!(
            rolling_step(10, limits, new, &[old]),
            Step::ScaleOld(vec![8])
        );
        let old = Size {
            replicas: 8,
            available: 8,
        };
        assert_eq!(rolling_step(10, limits, new, &[old]), Step::ScaleNew(5));
        let new = Size {
            replicas: 5,
            available: 0,
        };
        assert_eq!(rolling_step(10, limits, new, &[old]), Step::Wait);
    }

    #[test]
    fn scaling_the_stuck_rollout_to_thirty_gives_twenty_and_thirteen() {
        let sets = [
            Scalable {
                replicas: 8,
                max_replicas: Some(13),
            },
            Scalable {
                replicas: 5,
                max_replicas: Some(13),
            },
        ];
        assert_eq!(proportional(30, 3, 13, &sets), [20, 13]);
        // And back down: the surplus is taken proportionally too.
        let sets = [
            Scalable {
                replicas: 20,
                max_replicas: Some(33),
            },
            Scalable {
                replicas: 13,
                max_replicas: Some(33),
            },
        ];
        assert_eq!(proportional(10, 3, 33, &sets), [8, 5]);
        assert_eq!(proportional(0, 3, 33, &sets), [0, 0]);
    }

    #[test]
    fn leftovers_from_rounding_go_to_the_largest_replica_set() {
        let sets = [
            Scalable {
                replicas: 1,
                max_replicas: Some(3),
            },
            Scalable {
                replicas: 1,
                max_replicas: Some(3),
            },
            Scalable {
                replicas: 1,
                max_replicas: Some(3),
            },
        ];
        // 3 → 4: each share rounds to nothing, so the one more goes to the largest.
        let sizes = proportional(4, 0, 3, &sets);
        assert_eq!(sizes.iter().sum::<i32>(), 4);
        assert_eq!(sizes, [1, 1, 2], "a tie while growing favours the newest");
        let sizes = proportional(2, 0, 3, &sets);
        assert_eq!(sizes.iter().sum::<i32>(), 2);
        assert_eq!(
            sizes,
            [0, 1, 1],
            "a tie while shrinking takes from the oldest"
        );
    }

    #[test]
    fn unhealthy_old_pods_are_removed_before_available_ones() {
        let limits = Limits {
            max_surge: 1,
            max_unavailable: 1,
        };
        let new = Size {
            replicas: 1,
            available: 1,
        };
        let old = [
            Size {
                replicas: 2,
                available: 1,
            },
            Size {
                replicas: 1,
                available: 1,
            },
        ];
        // 4 pods, 2 must stay available: the unavailable old pod goes, then the oldest available.
        assert_eq!(
            rolling_step(3, limits, new, &old),
            Step::ScaleOld(vec![0, 1])
        );
    }

    #[test]
    fn a_new_replica_set_above_the_desired_size_is_scaled_down_first() {
        let limits = Limits {
            max_surge: 1,
            max_unavailable: 1,
        };
        let new = Size {
            replicas: 5,
            available: 5,
        };
        assert_eq!(rolling_step(3, limits, new, &[]), Step::ScaleNew(3));
    }

    /// Every small configuration, pods becoming available at once or never: each step keeps
    /// within `desired + maxSurge` pods and (when old pods were available) `desired -
    /// maxUnavailable` available ones, and a healthy rollout always completes.
    #[test]
    fn every_small_rollout_keeps_its_bounds_and_a_healthy_one_completes() {
        for desired in 0..=12 {
            for surge in 0..=4 {
                for unavailable in 0..=4 {
                    let strategy = rolling(json!(surge), json!(unavailable));
                    let limits = limits(&strategy, desired);
                    for healthy in [true, false] {
                        simulate(desired, limits, healthy);
                    }
                }
            }
        }
    }

    fn simulate(desired: i32, limits: Limits, healthy: bool) {
        let context = format!("{desired} replicas, {limits:?}, healthy: {healthy}");
        let mut new = Size::default();
        let mut old = vec![
            Size {
                replicas: desired / 2,
                available: desired / 2,
            },
            Size {
                replicas: desired - desired / 2,
                available: desired - desired / 2,
            },
        ];
        for _ in 0..100 {
            let step = rolling_step(desired, limits, new, &old);
            match step {
                Step::ScaleNew(n) => {
                    new.replicas = n;
                    new.available = if healthy { n } else { 0 };
                }
                Step::ScaleOld(sizes) => {
                    for (rs, size) in old.iter_mut().zip(sizes) {
                        assert!(size <= rs.replicas, "{context}: old sets only shrink");
                        rs.replicas = size;
                        rs.available = rs.available.min(size);
                    }
                }
                Step::Wait => break,
            }
            let total = new.replicas + old.iter().map(|s| s.replicas).sum::<i32>();
            let available = new.available + old.iter().map(|s| s.available).sum::<i32>();
            assert!(
                total <= desired + limits.max_surge,
                "{context}: {total} pods"
            );
            assert!(
                available >= desired - limits.max_unavailable,
                "{context}: only {available} available"
            );
        }
        if healthy {
            assert_eq!(new.replicas, desired, "{context}: new set complete");
            assert!(
                old.iter().all(|s| s.replicas == 0),
                "{context}: old sets gone"
            );
        } else {
            assert_eq!(
                rolling_step(desired, limits, new, &old),
                Step::Wait,
                "{context}"
            );
        }
    }
}
