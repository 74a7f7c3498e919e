//! A NetworkPolicy's columns, as kubectl's `printNetworkPolicy` fills them.

use super::workload::selector_text;
use super::{Column, Columns, age, text};

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("POD-SELECTOR"),
        Column::standard("AGE"),
    ],
    cells: |object, now| {
        vec![
            text(object, "/metadata/name"),
            // An empty selector (every pod of the namespace) reads `<none>`, as kubectl's.
            selector_text(object.pointer("/spec/podSelector")),
            age(object, now),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::super::{Printer, test_now};
    use super::*;
    use serde_json::json;

    #[test]
    fn a_policy_row_shows_its_pod_selector() {
        let policy = json!({"metadata": {"name": "db", "creationTimestamp": "2024-01-09T23:00:00Z"},
            "spec": {"podSelector": {"matchLabels": {"role": "db"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}}});
        let all = json!({"metadata": {"name": "deny", "creationTimestamp": "2024-01-09T23:00:00Z"},
            "spec": {"podSelector": {}}});
        let now = test_now();
        assert_eq!(
            COLUMNS.cells(&policy, now),
            ["db", "role=db,tier in (a,b)", "60m"]
        );
        assert_eq!(COLUMNS.cells(&all, now), ["deny", "<none>", "60m"]);
    }
}
