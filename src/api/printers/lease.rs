//! A lease's columns: who holds it.

use super::{Column, Columns, age, text};

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("HOLDER"),
        Column::standard("AGE"),
    ],
    cells: |object, now| {
        vec![
            text(object, "/metadata/name"),
            text(object, "/spec/holderIdentity"),
            age(object, now),
        ]
    },
};
