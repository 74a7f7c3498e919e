//! Open files: a count per pod and one per node, so that no guest can take the descriptors the
//! process needs for its store, its API server and the other pods.

use std::collections::HashSet;
use std::sync::Arc;

use super::Budget;

/// A guest asked for more than a budget holds; raised as a trap, it ends the container with
/// this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("too many open files: the pod's limit of {0} open files was reached")]
    PodFiles(u64),
    #[error("too many open files: the node's limit of {0} open files for all pods was reached")]
    NodeFiles(u64),
}

/// The files one container holds open, drawn from its pod's and its node's budgets. Only
/// descriptors the guest opened count (a preopened directory is the node's, fixed per mount);
/// what the container still holds when it ends goes back.
#[derive(Debug)]
pub struct GuestFiles {
    pod: Arc<Budget>,
    node: Arc<Budget>,
    /// Resource-table reps of the descriptors opened through `open-at`; each holds one host
    /// descriptor until the guest drops it.
    opened: HashSet<u32>,
}

impl GuestFiles {
    pub fn new(pod: Arc<Budget>, node: Arc<Budget>) -> GuestFiles {
        GuestFiles {
            pod,
            node,
            opened: HashSet::new(),
        }
    }

    /// Takes one file from the pod's and the node's budgets, before opening it.
    ///
    /// # Errors
    /// Which budget is spent.
    pub fn reserve(&mut self) -> Result<(), LimitExceeded> {
        if !self.pod.take(1) {
            return Err(LimitExceeded::PodFiles(self.pod.limit));
        }
        if !self.node.take(1) {
            self.pod.give_back(1);
            return Err(LimitExceeded::NodeFiles(self.node.limit));
        }
        Ok(())
    }

    /// The open after [`reserve`](Self::reserve) failed: the file goes back.
    pub fn unreserve(&mut self) {
        self.pod.give_back(1);
        self.node.give_back(1);
    }

    /// The open after [`reserve`](Self::reserve) made descriptor `rep`.
    pub fn opened(&mut self, rep: u32) {
        if !self.opened.insert(rep) {
            // A rep is unique among live descriptors; a repeat means the old one was
            // dropped without us hearing of it, so this reservation is surplus.
            self.unreserve();
        }
    }

    /// The guest dropped descriptor `rep`: its file goes back if it was one the guest opened.
    pub fn closed(&mut self, rep: u32) {
        if self.opened.remove(&rep) {
            self.unreserve();
        }
    }
}

impl Drop for GuestFiles {
    fn drop(&mut self) {
        let held = self.opened.len() as u64;
        self.pod.give_back(held);
        self.node.give_back(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_containers_share_its_limit_and_get_files_back_when_they_end() {
        let pod = Budget::new(3);
        let node = Budget::new(100);
        let mut first = GuestFiles::new(pod.clone(), node.clone());
        let mut second = GuestFiles::new(pod.clone(), node.clone());
        for rep in 0..2 {
            first.reserve().unwrap();
            first.opened(rep);
        }
        second.reserve().unwrap();
        second.opened(7);
        assert_eq!(second.reserve(), Err(LimitExceeded::PodFiles(3)));
        first.closed(1);
        first.closed(99);
        assert_eq!(pod.used(), 2);
        drop(first);
        assert_eq!((pod.used(), node.used()), (1, 1));
        drop(second);
        assert_eq!((pod.used(), node.used()), (0, 0));
    }

    #[test]
    fn the_nodes_limit_holds_across_pods_and_a_refusal_takes_nothing() {
        let node = Budget::new(1);
        let mut a = GuestFiles::new(Budget::new(10), node.clone());
        let pod_b = Budget::new(10);
        let mut b = GuestFiles::new(pod_b.clone(), node.clone());
        a.reserve().unwrap();
        a.opened(1);
        assert_eq!(b.reserve(), Err(LimitExceeded::NodeFiles(1)));
        assert_eq!(pod_b.used(), 0, "a refused open takes nothing from its pod");
        assert_eq!(node.used(), 1);
    }
}
