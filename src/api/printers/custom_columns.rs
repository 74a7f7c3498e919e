//! The columns a CustomResourceDefinition declares (`additionalPrinterColumns`): NAME, then
//! each column's JSONPath value formatted by its type — a `date` as an age, as kubectl shows
//! it — or NAME and AGE when it declares none.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::jsonpath::{self, Template};
use super::{Column, Printer, age, since, text};

/// One declared column.
pub struct DeclaredColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub kind: String,
    pub path: Template,
    pub priority: u8,
}

/// The printer of one served version of a custom resource.
pub struct CustomColumns {
    columns: Vec<Column>,
    declared: Vec<DeclaredColumn>,
}

impl CustomColumns {
    pub fn new(declared: Vec<DeclaredColumn>) -> Self {
        let mut columns = vec![Column::standard("NAME")];
        if declared.is_empty() {
            columns.push(Column::standard("AGE"));
        }
        columns.extend(declared.iter().map(|c| Column {
            name: c.name.to_uppercase().into(),
            priority: c.priority,
        }));
        Self { columns, declared }
    }
}

impl Printer for CustomColumns {
    fn columns(&self) -> &[Column] {
        &self.columns
    }

    fn cells(&self, object: &Value, now: Timestamp) -> Vec<String> {
        let mut cells = vec![text(object, "/metadata/name")];
        if self.declared.is_empty() {
            cells.push(age(object, now));
        }
        for column in &self.declared {
            let values = column.path.values(object);
            let cell = match (column.kind.as_str(), values.first()) {
                (_, None) => "<none>".to_string(),
                ("date", Some(value)) => since(value.as_str().and_then(|t| t.parse().ok()), now),
                _ => values
                    .iter()
                    .map(|v| jsonpath::text(v))
                    .collect::<Vec<_>>()
                    .join(","),
            };
            cells.push(cell);
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_now;
    use super::*;
    use serde_json::json;

    #[test]
    fn declared_columns_follow_name_and_dates_read_as_ages() {
        let printer = CustomColumns::new(vec![
            DeclaredColumn {
                name: "Size".into(),
                kind: "integer".into(),
                path: Template::parse(".spec.size").unwrap(),
                priority: 0,
            },
            DeclaredColumn {
                name: "Age".into(),
                kind: "date".into(),
                path: Template::parse(".metadata.creationTimestamp").unwrap(),
                priority: 0,
            },
            DeclaredColumn {
                name: "Owner".into(),
                kind: "string".into(),
                path: Template::parse(".spec.owner").unwrap(),
                priority: 1,
            },
        ]);
        let names: Vec<&str> = printer.columns().iter().map(|c| c.name.as_ref()).collect();
        assert_eq!(names, ["NAME", "SIZE", "AGE", "OWNER"]);
        let widget = json!({"metadata": {"name": "w", "creationTimestamp": "2024-01-09T23:59:00Z"},
                            "spec": {"size": 3}});
        assert_eq!(
            printer.cells(&widget, test_now()),
            ["w", "3", "60s", "<none>"]
        );
        let plain = CustomColumns::new(Vec::new());
        assert_eq!(plain.cells(&widget, test_now()), ["w", "60s"]);
    }
}
