//! Scoring the nodes a pod fits (Kubernetes' score plugins): least allocated resources, and
//! spreading a controller's pods.

use super::pod_info::Resources;

/// The best score a plugin gives a node (Kubernetes' `MaxNodeScore`).
pub const MAX_NODE_SCORE: u64 = 100;
/// Plugin weights of Kubernetes' default profile: NodeResourcesFit 1, PodTopologySpread 2, so
/// spreading a ReplicaSet outweighs small differences in free resources.
const FIT_WEIGHT: u64 = 1;
const SPREAD_WEIGHT: u64 = 2;

/// A feasible node as scoring sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub allocatable: Resources,
    /// Scoring requests (with non-zero defaults) of the pods on the node, plus this pod's.
    pub requested: Resources,
    /// Pods of this pod's controller already on the node.
    pub siblings: u32,
}

/// `(allocatable - requested) * MAX / allocatable`, 0 when nothing is allocatable or it is
/// overcommitted.
fn least_requested(requested: u64, allocatable: u64) -> u64 {
    if allocatable == 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_NODE_SCORE / allocatable
}

/// NodeResourcesFit with the LeastAllocated strategy: CPU and memory weighted equally.
pub fn least_allocated(candidate: &Candidate) -> u64 {
    let cpu = least_requested(
        candidate.requested.milli_cpu,
        candidate.allocatable.milli_cpu,
    );
    let memory = least_requested(candidate.requested.memory, candidate.allocatable.memory);
    (cpu + memory) / 2
}

/// Spreading scores, normalized as Kubernetes' selector spreading does: the node with the most
/// siblings scores 0, one with none `MAX_NODE_SCORE`; all score the maximum when no node has any.
pub fn spread(siblings: &[u32]) -> Vec<u64> {
    let most = u64::from(siblings.iter().copied().max().unwrap_or(0));
    siblings
        .iter()
        .map(|&count| match most {
            0 => MAX_NODE_SCORE,
            most => MAX_NODE_SCORE * (most - u64::from(count)) / most,
        })
        .collect()
}

/// Each candidate's total score, in the same order.
pub fn scores(candidates: &[Candidate]) -> Vec<u64> {
    let siblings: Vec<u32> = candidates.iter().map(|c| c.siblings).collect();
    candidates
        .iter()
        .zip(spread(&siblings))
        .map(|(candidate, spread)| FIT_WEIGHT * least_allocated(candidate) + SPREAD_WEIGHT * spread)
        .collect()
}

/// The positions of the highest scores (ties all included).
pub fn best(scores: &[u64]) -> Vec<usize> {
    let top = scores.iter().copied().max();
    (0..scores.len())
        .filter(|&i| Some(scores[i]) == top)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(used_cpu: u64, used_memory: u64, siblings: u32) -> Candidate {
        Candidate {
            allocatable: Resources {
                milli_cpu: 4000,
                memory: 4 << 30,
            },
            requested: Resources {
                milli_cpu: used_cpu,
                memory: used_memory,
            },
            siblings,
        }
    }

    #[test]
    fn least_allocated_averages_the_free_share_of_cpu_and_memory() {
        assert_eq!(least_allocated(&candidate(0, 0, 0)), 100);
        assert_eq!(least_allocated(&candidate(1000, 0, 0)), (75 + 100) / 2);
        assert_eq!(least_allocated(&candidate(2000, 3 << 30, 0)), (50 + 25) / 2);
        assert_eq!(
            least_allocated(&candidate(8000, 8 << 30, 0)),
            0,
            "overcommitted"
        );
        let empty = Candidate {
            allocatable: Resources::default(),
            ..candidate(0, 0, 0)
        };
        assert_eq!(least_allocated(&empty), 0);
    }

    #[test]
    fn spreading_favours_nodes_with_fewer_siblings() {
        assert_eq!(spread(&[0, 0, 0]), [100, 100, 100]);
        assert_eq!(spread(&[1, 0, 0]), [0, 100, 100]);
        assert_eq!(spread(&[2, 1, 0]), [0, 50, 100]);
        assert_eq!(spread(&[]), Vec::<u64>::new());
    }

    #[test]
    fn spreading_outweighs_a_small_difference_in_free_resources() {
        let busier_but_empty_of_siblings = candidate(1000, 1 << 30, 0);
        let idle_with_a_sibling = candidate(100, 200 << 20, 1);
        let totals = scores(&[busier_but_empty_of_siblings, idle_with_a_sibling]);
        assert!(totals[0] > totals[1], "{totals:?}");
        assert_eq!(best(&totals), [0]);
    }

    #[test]
    fn the_emptier_node_wins_between_equals_in_spreading() {
        let totals = scores(&[candidate(2000, 0, 0), candidate(1000, 0, 0)]);
        assert_eq!(best(&totals), [1]);
    }

    #[test]
    fn ties_are_all_best() {
        assert_eq!(best(&[5, 9, 9, 1]), [1, 2]);
        assert!(best(&[]).is_empty());
    }
}
