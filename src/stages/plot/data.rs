//! From a long-format CSV table to the dense grid a chart draws: categories and series in order
//! of first appearance, one number per (category, series) pair, missing pairs as 0.

use std::collections::HashMap;

use crate::stages::csvtab::Table;

/// A dense table of values: `cells[c][r]` is the value of column category `cols[c]` and row
/// category `rows[r]` (the series of a bar chart, the rows of a heatmap).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    pub cols: Vec<String>,
    pub rows: Vec<String>,
    pub cells: Vec<Vec<f64>>,
}

/// The CSV columns a grid reads: the categories, the rows as `(column, param key)` (`None`
/// for a bar chart without series) and the values.
type Columns<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str);

/// Builds the grid. `file` names the CSV in messages.
pub fn grid(table: &Table, file: &str, (x, row, value): Columns<'_>) -> Result<Grid, String> {
    let find = |name: &str, key: &str| {
        (table.col(name)).map_err(|e| format!("{file}: {e}; `{key}` names it"))
    };
    let xi = find(x, "x")?;
    let ri = row.map(|(name, key)| find(name, key)).transpose()?;
    let vi = find(value, "value")?;
    if table.rows.is_empty() {
        return Err(format!("{file}: the table has a header but no data rows"));
    }
    // The index of `name` among `names` (through `at`), appended when new: order of first
    // appearance. A label holding a control character is an error: SVG (XML) cannot hold
    // most of them, and a label is one line of text.
    type Index = HashMap<String, usize>;
    let index = |names: &mut Vec<String>, at: &mut Index, name: &str, col: &str, line: usize| {
        if let Some(&i) = at.get(name) {
            return Ok(i);
        }
        if let Some(c) = name.chars().find(|c| unprintable(*c)) {
            return Err(format!(
                "{file}: row {line}, column {col:?}: {name:?} holds U+{:04X}, which a chart \
                 label cannot hold (a label is one line of printable text)",
                u32::from(c)
            ));
        }
        names.push(name.to_string());
        at.insert(name.to_string(), names.len() - 1);
        Ok(names.len() - 1)
    };
    let (mut g, mut cols, mut rows) = (Grid::default(), Index::new(), Index::new());
    // (col, row) -> the CSV row that set it and its value.
    let mut seen: HashMap<(usize, usize), (usize, f64)> = HashMap::new();
    for (i, rec) in table.rows.iter().enumerate() {
        let line = i + 2; // the header is row 1
        let cell = |j: usize| rec.get(j).map_or("", String::as_str);
        let c = index(&mut g.cols, &mut cols, cell(xi), x, line)?;
        let r = match row {
            Some((name, _)) => index(&mut g.rows, &mut rows, ri.map_or("", cell), name, line)?,
            None => index(&mut g.rows, &mut rows, "", "", line)?,
        };
        let v = parse_number(cell(vi))
            .map_err(|why| format!("{file}: row {line}, column {value:?}: {why}"))?;
        if let Some((first, _)) = seen.insert((c, r), (line, v)) {
            let what = match row {
                Some((name, _)) => format!("{x}={:?}, {name}={:?}", g.cols[c], g.rows[r]),
                None => format!("{x}={:?}", g.cols[c]),
            };
            return Err(format!(
                "{file}: rows {first} and {line} both give a value for {what} (aggregate the data first)"
            ));
        }
    }
    g.cells = vec![vec![0.0; g.rows.len()]; g.cols.len()];
    for ((c, r), (_, v)) in seen {
        g.cells[c][r] = v;
    }
    Ok(g)
}

/// A character a chart label cannot hold: a control character (XML forbids most of them) or
/// one of XML's two non-characters.
pub fn unprintable(c: char) -> bool {
    c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// Largest magnitude a chart draws. Beyond it an axis cannot be laid out (its ticks and
/// labels would not fit any canvas; 1e300 made the layout allocate without bound and panic),
/// and f64 no longer holds every integer (2^53 is about 9e15).
pub const MAX_ABS: f64 = 1e15;

/// Smallest largest magnitude of a value axis (or colour bar): below it the axis' ticks would
/// be finer than the 1e-9 its ends are rounded to.
pub const MIN_LARGEST: f64 = 1e-6;

fn parse_number(raw: &str) -> Result<f64, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("empty value (expected a number)".into());
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= MAX_ABS => Ok(v),
        Ok(v) if v.is_finite() => Err(format!(
            "{raw:?} is too large to draw (at most 1e15 in absolute value; check the data or \
             scale the column, e.g. to thousands)"
        )),
        Ok(_) => Err(format!("{raw:?} is not a finite number")),
        Err(_) => Err(format!("{raw:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grid of `csv` with `x` as categories, `row` (if any) as series, `n` as values.
    fn grid_of(csv: &str, x: &str, row: Option<&str>) -> Result<Grid, String> {
        let t = Table::parse(csv.as_bytes()).expect("valid CSV");
        let row = row.map(|r| (r, "series"));
        grid(&t, "f.csv", (x, row, "n"))
    }

    #[test]
    fn first_appearance_order_and_missing_pairs_are_zero() {
        let g = grid_of("e,s,n\nb,y,1\nb,x,2\na,x,3\n", "e", Some("s")).expect("grid");
        assert_eq!(g.cols, vec!["b", "a"]);
        assert_eq!(g.rows, vec!["y", "x"]);
        assert_eq!(g.cells, vec![vec![1.0, 2.0], vec![0.0, 3.0]]);
    }

    #[test]
    fn errors_name_the_row_and_the_columns() {
        let csv = "e,s,n\nb,y,1\nb,x,lots\n";
        let e = grid_of(csv, "e", Some("s")).unwrap_err();
        assert_eq!(e, "f.csv: row 3, column \"n\": \"lots\" is not a number");
        let e = grid_of(csv, "engine", None).unwrap_err();
        assert!(e.contains("no column \"engine\" (columns: e, s, n)"), "{e}");
        let e = grid_of(csv, "e", Some("kind")).unwrap_err();
        assert!(
            e.contains("no column \"kind\" (columns: e, s, n); `series`"),
            "{e}"
        );
        let e = grid_of("e,n\na,1\na,2\n", "e", None).unwrap_err();
        let want = "f.csv: rows 2 and 3 both give a value for e=\"a\" (aggregate the data first)";
        assert_eq!(e, want);
        let e = grid_of("e,n\na,\n", "e", None).unwrap_err();
        assert!(e.contains("row 2, column \"n\": empty value"), "{e}");
    }
}
