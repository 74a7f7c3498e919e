//! A namespace's columns: its phase.

use super::{Column, Columns, age, text};

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("STATUS"),
        Column::standard("AGE"),
    ],
    cells: |object, now| {
        vec![
            text(object, "/metadata/name"),
            text(object, "/status/phase"),
            age(object, now),
        ]
    },
};
