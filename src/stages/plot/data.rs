//! From a long-format CSV table to the dense grid a chart draws: categories and series in order
//! of first appearance, one number per (category, series) pair, missing pairs as 0.

use std::collections::HashMap;

use crate::stages::csvtab::Table;

/// A dense table of values: `cells[c][r]` is the value of column category `cols[c]` and row
/// category `rows[r]` (the series of a bar chart, the rows of a heatmap).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub cols: Vec<String>,
    pub rows: Vec<String>,
    pub cells: Vec<Vec<f64>>,
}

/// Which CSV columns to read; `row` is `None` for a bar chart without series.
pub struct Columns<'a> {
    pub x: &'a str,
    pub row: Option<(&'a str, &'a str)>,
    pub value: &'a str,
}

/// Builds the grid. `file` names the CSV in messages; `cols.row` is `(column, param key)`.
pub fn grid(table: &Table, file: &str, cols: &Columns<'_>) -> Result<Grid, String> {
    let find = |name: &str, key: &str| {
        table
            .col(name)
            .map_err(|e| format!("{file}: {e}; `{key}` names it"))
    };
    let xi = find(cols.x, "x")?;
    let ri = match cols.row {
        Some((name, key)) => Some(find(name, key)?),
        None => None,
    };
    let vi = find(cols.value, "value")?;
    if table.rows.is_empty() {
        return Err(format!("{file}: the table has a header but no data rows"));
    }

    let mut col_index: HashMap<&str, usize> = HashMap::new();
    let mut row_index: HashMap<&str, usize> = HashMap::new();
    let mut out = Grid {
        cols: Vec::new(),
        rows: Vec::new(),
        cells: Vec::new(),
    };
    // (col, row) -> CSV row number that set it, to report duplicates.
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut points = Vec::with_capacity(table.rows.len());
    for (i, rec) in table.rows.iter().enumerate() {
        let line = i + 2; // the header is row 1
        let cell = |j: usize| rec.get(j).map(String::as_str).unwrap_or("");
        let xv = cell(xi);
        let c = *col_index.entry(xv).or_insert_with(|| {
            out.cols.push(xv.to_string());
            out.cols.len() - 1
        });
        let r = match ri {
            Some(j) => {
                let rv = cell(j);
                *row_index.entry(rv).or_insert_with(|| {
                    out.rows.push(rv.to_string());
                    out.rows.len() - 1
                })
            }
            None => {
                if out.rows.is_empty() {
                    out.rows.push(String::new());
                }
                0
            }
        };
        let raw = cell(vi);
        let v = parse_number(raw)
            .map_err(|why| format!("{file}: row {line}, column {:?}: {why}", cols.value))?;
        if let Some(first) = seen.insert((c, r), line) {
            let what = match cols.row {
                Some((name, _)) => {
                    format!("{}={:?}, {name}={:?}", cols.x, out.cols[c], out.rows[r])
                }
                None => format!("{}={:?}", cols.x, out.cols[c]),
            };
            return Err(format!(
                "{file}: rows {first} and {line} both give a value for {what} (aggregate the data first)"
            ));
        }
        points.push((c, r, v));
    }
    out.cells = vec![vec![0.0; out.rows.len()]; out.cols.len()];
    for (c, r, v) in points {
        out.cells[c][r] = v;
    }
    Ok(out)
}

/// Largest magnitude a chart draws. Beyond it an axis cannot be laid out (its ticks and
/// labels would not fit any canvas; 1e300 made the layout allocate without bound and panic),
/// and f64 no longer holds every integer (2^53 is about 9e15).
pub const MAX_ABS: f64 = 1e15;

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

    fn table(text: &str) -> Table {
        Table::parse(text.as_bytes()).expect("valid CSV")
    }

    #[test]
    fn first_appearance_order_and_missing_pairs_are_zero() {
        let t = table("e,s,n\nb,y,1\nb,x,2\na,x,3\n");
        let cols = Columns {
            x: "e",
            row: Some(("s", "series")),
            value: "n",
        };
        let g = grid(&t, "f.csv", &cols).expect("grid");
        assert_eq!(g.cols, vec!["b", "a"]);
        assert_eq!(g.rows, vec!["y", "x"]);
        assert_eq!(g.cells, vec![vec![1.0, 2.0], vec![0.0, 3.0]]);
    }

    #[test]
    fn errors_name_the_row_and_the_columns() {
        let t = table("e,s,n\nb,y,1\nb,x,lots\n");
        let cols = Columns {
            x: "e",
            row: Some(("s", "series")),
            value: "n",
        };
        let e = grid(&t, "f.csv", &cols).unwrap_err();
        assert_eq!(e, "f.csv: row 3, column \"n\": \"lots\" is not a number");

        let cols = Columns {
            x: "engine",
            row: None,
            value: "n",
        };
        let e = grid(&t, "f.csv", &cols).unwrap_err();
        assert!(e.contains("no column \"engine\" (columns: e, s, n)"), "{e}");

        let t = table("e,n\na,1\na,2\n");
        let cols = Columns {
            x: "e",
            row: None,
            value: "n",
        };
        let e = grid(&t, "f.csv", &cols).unwrap_err();
        assert!(
            e.contains("rows 2 and 3 both give a value for e=\"a\""),
            "{e}"
        );

        let t = table("e,n\na,\n");
        let e = grid(&t, "f.csv", &cols).unwrap_err();
        assert!(e.contains("row 2, column \"n\": empty value"), "{e}");
    }
}
