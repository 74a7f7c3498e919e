//! A LimitRange's columns, as kubectl prints them: its name and when it was created.

use super::{Column, Columns, text};

pub static COLUMNS: Columns = Columns {
    columns: &[Column::standard("NAME"), Column::standard("CREATED AT")],
    cells: |object, _| {
        vec![
            text(object, "/metadata/name"),
            text(object, "/metadata/creationTimestamp"),
        ]
    },
};
