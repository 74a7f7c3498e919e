//! Text layout for kubectl-style output: aligned tables as Go's tabwriter makes them.

/// Aligned columns as Go's tabwriter lays them out for kubectl: each column as wide as its
/// widest cell plus `padding`, at least `min_width`; the last column is not padded. Widths
/// are remembered across calls so rows printed later (`get -w`) line up with the first.
#[derive(Clone, Debug)]
pub struct Table {
    widths: Vec<usize>,
    padding: usize,
    min_width: usize,
}

impl Table {
    /// The layout of `kubectl get`.
    pub fn new() -> Table {
        Table {
            widths: Vec::new(),
            padding: 3,
            min_width: 6,
        }
    }

    /// The tighter layout of `kubectl describe` sections.
    pub fn compact() -> Table {
        Table {
            widths: Vec::new(),
            padding: 2,
            min_width: 0,
        }
    }

    /// Renders `rows` as lines, each ending in `\n`.
    pub fn render(&mut self, rows: &[Vec<String>]) -> String {
        for row in rows {
            for (index, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                let width = (cell.chars().count() + self.padding).max(self.min_width);
                match self.widths.get_mut(index) {
                    Some(known) => *known = (*known).max(width),
                    None => self.widths.push(width),
                }
            }
        }
        let mut out = String::new();
        for row in rows {
            for (index, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if index + 1 < row.len() {
                    let pad = self.widths[index].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Aligns tab-separated lines as Go's tabwriter does for `kubectl describe`: consecutive
/// lines with tabs are aligned together; a line without a tab ends the block.
pub fn tabwrite(text: &str) -> String {
    let mut out = String::new();
    let mut block: Vec<Vec<String>> = Vec::new();
    let flush = |block: &mut Vec<Vec<String>>, out: &mut String| {
        if !block.is_empty() {
            out.push_str(&Table::compact().render(block));
            block.clear();
        }
    };
    for line in text.lines() {
        if line.contains('\t') {
            block.push(line.split('\t').map(str::to_string).collect());
        } else {
            flush(&mut block, &mut out);
            out.push_str(line);
            out.push('\n');
        }
    }
    flush(&mut block, &mut out);
    out
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_like_kubectl() {
        let mut table = Table::new();
        let rows = vec![
            vec![
                "NAME".into(),
                "READY".into(),
                "STATUS".into(),
                "RESTARTS".into(),
                "AGE".into(),
            ],
            vec![
                "demo".into(),
                "2/2".into(),
                "Running".into(),
                "0".into(),
                "5s".into(),
            ],
            vec![
                "a-longer-name".into(),
                "0/1".into(),
                "CrashLoopBackOff".into(),
                "3 (12s ago)".into(),
                "3m2s".into(),
            ],
        ];
        assert_eq!(
            table.render(&rows),
            "NAME            READY   STATUS             RESTARTS      AGE\n\
             demo            2/2     Running            0             5s\n\
             a-longer-name   0/1     CrashLoopBackOff   3 (12s ago)   3m2s\n"
        );
        // Later rows keep the widths already printed.
        assert_eq!(
            table.render(&[vec![
                "x".into(),
                "1/1".into(),
                "Running".into(),
                "0".into(),
                "1s".into()
            ]]),
            "x               1/1     Running            0             1s\n"
        );
    }

    #[test]
    fn narrow_columns_get_the_minimum_width() {
        let rows = vec![vec!["ab".into(), "c".into()]];
        assert_eq!(Table::new().render(&rows), "ab    c\n");
        assert_eq!(Table::compact().render(&rows), "ab  c\n");
    }

    #[test]
    fn tabwrite_aligns_blocks_separated_by_plain_lines() {
        let text = "Name:\tdemo\nService Account:\tdefault\nContainers:\n  a:\n    Image:\tx.wasm\n    Ready:\tTrue\n";
        assert_eq!(
            tabwrite(text),
            "Name:             demo\nService Account:  default\nContainers:\n  a:\n    Image:  x.wasm\n    Ready:  True\n"
        );
    }
}
