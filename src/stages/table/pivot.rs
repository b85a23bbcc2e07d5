//! The `pivot` filter: long rows (`engine, symptom, n`) -> a matrix with totals.
//!
//! ```text
//! {% set p = symptoms | pivot(row="symptom", col="engine", value="n") %}
//! ```
//!
//! Arguments (keyword):
//! - `row` (required): column whose values become the matrix rows.
//! - `col` (required): column whose values become the matrix columns.
//! - `value` (optional): numeric column summed into each cell (several input rows with the same
//!   row/col pair add up). Without it each input row counts 1, so the cells are row counts.
//! - `row_order`, `col_order` (optional lists): keys to put first, in that order; keys absent
//!   from the data still appear (all zero); keys not listed follow in first-appearance order.
//! - `sort_rows`, `sort_cols` (optional): `"total_desc"`, `"total_asc"` or `"key"`; stable, so
//!   ties keep the order above.
//!
//! Result (a map):
//! - `row_keys`, `col_keys`: lists of strings, in order (first appearance unless changed).
//! - `rows`: one `{key, cells, total}` per row key; `cells` is aligned with `col_keys`.
//! - `cols`: one `{key, total}` per column key; `col_totals`: the totals alone, aligned.
//! - `total`: the grand total.
//! - `cell`: nested map for lookup, `p.cell[row_key][col_key]`.
//!
//! Missing cells are 0. Numbers are integers when every summed value is an integer, otherwise
//! floats (then every cell and total is a float).

use std::collections::{BTreeMap, HashMap};

use tera::{Error, Kwargs, State, TeraResult, Value};

use super::latex::{Num, kwarg, show, to_num};

const ARGS: &[&str] = &[
    "row",
    "col",
    "value",
    "row_order",
    "col_order",
    "sort_rows",
    "sort_cols",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sort {
    TotalDesc,
    TotalAsc,
    Key,
}

fn sort_arg(kw: &Kwargs, name: &str) -> TeraResult<Option<Sort>> {
    match kwarg::<&str>("pivot", kw, name, "a string")? {
        None => Ok(None),
        Some("total_desc") => Ok(Some(Sort::TotalDesc)),
        Some("total_asc") => Ok(Some(Sort::TotalAsc)),
        Some("key") => Ok(Some(Sort::Key)),
        Some(other) => Err(Error::message(format!(
            "`pivot`: {name}={other:?} is not one of \"total_desc\", \"total_asc\", \"key\""
        ))),
    }
}

/// Keys in order: `order` first (duplicates are an error), then unseen keys by first appearance.
struct Keys {
    list: Vec<String>,
    index: HashMap<String, usize>,
}

impl Keys {
    fn new(order: Option<Vec<String>>, what: &str) -> TeraResult<Keys> {
        let mut k = Keys {
            list: Vec::new(),
            index: HashMap::new(),
        };
        for key in order.unwrap_or_default() {
            if k.index.contains_key(&key) {
                return Err(Error::message(format!(
                    "`pivot`: {key:?} appears twice in {what}"
                )));
            }
            k.slot(&key);
        }
        Ok(k)
    }

    fn slot(&mut self, key: &str) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        self.list.push(key.to_string());
        self.index.insert(key.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The order of `totals` after a sort (stable; `keys` breaks nothing, it sorts by key text).
fn permutation(keys: &[String], totals: &[Num], sort: Option<Sort>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    match sort {
        None => {}
        Some(Sort::Key) => idx.sort_by(|&a, &b| keys[a].cmp(&keys[b])),
        Some(Sort::TotalAsc) => {
            idx.sort_by(|&a, &b| totals[a].as_f64().total_cmp(&totals[b].as_f64()))
        }
        Some(Sort::TotalDesc) => {
            idx.sort_by(|&a, &b| totals[b].as_f64().total_cmp(&totals[a].as_f64()))
        }
    }
    idx
}

fn field<'a>(row: &'a Value, i: usize, col: &'a str) -> TeraResult<&'a Value> {
    let Some(map) = row.as_map() else {
        return Err(Error::message(format!(
            "`pivot`: item {} is a {}, not a row (pivot a data table, e.g. `rows | pivot(...)`)",
            i + 1,
            row.name()
        )));
    };
    map.get(&tera::value::Key::Str(col)).ok_or_else(|| {
        let mut cols: Vec<String> = map.keys().map(|k| k.to_string()).collect();
        cols.sort();
        Error::message(format!(
            "`pivot`: row {} has no column {col:?} (columns: {})",
            i + 1,
            cols.join(", ")
        ))
    })
}

fn key_text(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => format!("{v}"),
    }
}

/// See the module docs.
pub fn pivot(data: &[Value], kw: Kwargs, _: &State) -> TeraResult<Value> {
    let mut unknown: Vec<String> = kw
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !ARGS.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(Error::message(format!(
            "`pivot`: unknown argument(s) {} (expected: {})",
            unknown.join(", "),
            ARGS.join(", ")
        )));
    }
    let row_col = kw.must_get::<&str>("row")?;
    let col_col = kw.must_get::<&str>("col")?;
    let value_col = kwarg::<&str>("pivot", &kw, "value", "a column name")?;
    let order = |name: &str| Keys::new(kwarg("pivot", &kw, name, "a list of names")?, name);
    let (mut rows, mut cols) = (order("row_order")?, order("col_order")?);
    let sort_rows = sort_arg(&kw, "sort_rows")?;
    let sort_cols = sort_arg(&kw, "sort_cols")?;

    let mut cells: HashMap<(usize, usize), Num> = HashMap::new();
    let mut any_float = false;
    for (i, item) in data.iter().enumerate() {
        let r = rows.slot(&key_text(field(item, i, row_col)?));
        let c = cols.slot(&key_text(field(item, i, col_col)?));
        let x = match value_col {
            None => Num::Int(1),
            Some(vc) => {
                let v = field(item, i, vc)?;
                to_num(v, "pivot").map_err(|_| {
                    Error::message(format!(
                        "`pivot`: row {}: {vc} = {} is not a number",
                        i + 1,
                        show(v)
                    ))
                })?
            }
        };
        any_float |= matches!(x, Num::Float(_));
        let cell = cells.entry((r, c)).or_insert(Num::Int(0));
        *cell = cell.plus(x)?;
    }
    let zero = if any_float {
        Num::Float(0.0)
    } else {
        Num::Int(0)
    };
    let norm = |n: Num| if any_float { Num::Float(n.as_f64()) } else { n };
    let (nr, nc) = (rows.list.len(), cols.list.len());
    let mut matrix = vec![vec![zero; nc]; nr];
    for ((r, c), v) in cells {
        matrix[r][c] = norm(v);
    }
    let mut row_tot = vec![zero; nr];
    let mut col_tot = vec![zero; nc];
    let mut total = zero;
    for (r, line) in matrix.iter().enumerate() {
        for (c, &v) in line.iter().enumerate() {
            row_tot[r] = row_tot[r].plus(v)?;
            col_tot[c] = col_tot[c].plus(v)?;
            total = total.plus(v)?;
        }
    }
    let rp = permutation(&rows.list, &row_tot, sort_rows);
    let cp = permutation(&cols.list, &col_tot, sort_cols);

    let col_keys: Vec<Value> = cp
        .iter()
        .map(|&c| Value::from(cols.list[c].as_str()))
        .collect();
    let row_keys: Vec<Value> = rp
        .iter()
        .map(|&r| Value::from(rows.list[r].as_str()))
        .collect();
    let mut out_rows = Vec::with_capacity(nr);
    let mut lookup: BTreeMap<String, Value> = BTreeMap::new();
    for &r in &rp {
        let line: Vec<Value> = cp.iter().map(|&c| matrix[r][c].to_value()).collect();
        let by_col: BTreeMap<String, Value> = cp
            .iter()
            .map(|&c| (cols.list[c].clone(), matrix[r][c].to_value()))
            .collect();
        lookup.insert(rows.list[r].clone(), Value::from(by_col));
        let mut m: BTreeMap<&str, Value> = BTreeMap::new();
        m.insert("key", Value::from(rows.list[r].as_str()));
        m.insert("cells", Value::from(line));
        m.insert("total", row_tot[r].to_value());
        out_rows.push(Value::from(m));
    }
    let out_cols: Vec<Value> = cp
        .iter()
        .map(|&c| {
            let mut m: BTreeMap<&str, Value> = BTreeMap::new();
            m.insert("key", Value::from(cols.list[c].as_str()));
            m.insert("total", col_tot[c].to_value());
            Value::from(m)
        })
        .collect();
    let col_totals: Vec<Value> = cp.iter().map(|&c| col_tot[c].to_value()).collect();

    let mut out: BTreeMap<&str, Value> = BTreeMap::new();
    out.insert("row_keys", Value::from(row_keys));
    out.insert("col_keys", Value::from(col_keys));
    out.insert("rows", Value::from(out_rows));
    out.insert("cols", Value::from(out_cols));
    out.insert("col_totals", Value::from(col_totals));
    out.insert("total", total.to_value());
    out.insert("cell", Value::from(lookup));
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    fn long_rows() -> Vec<BTreeMap<&'static str, &'static str>> {
        [
            ("vllm", "crash", "5"),
            ("vllm", "hang", "2"),
            ("sglang", "crash", "3"),
            ("llama.cpp", "wrong output", "4"),
            ("sglang", "crash", "1"),
        ]
        .into_iter()
        .map(|(e, s, n)| {
            [("engine", e), ("symptom", s), ("n", n)]
                .into_iter()
                .collect()
        })
        .collect()
    }

    fn render(src: &str) -> tera::TeraResult<String> {
        let mut t = super::super::new_tera();
        t.add_raw_template("p.tex", src)?;
        let mut ctx = tera::Context::new();
        ctx.insert("rows", &long_rows());
        t.render("p.tex", &ctx)
    }

    const MATRIX: &str = "{% for r in p.rows %}{{ r.key }}:{% for v in r.cells %} {{ v }}{% endfor %} | {{ r.total }}\n{% endfor %}\
        cols: {{ p.col_keys | join(sep=\",\") }} | {{ p.col_totals | join(sep=\",\") }} | {{ p.total }}";

    #[test]
    fn pivots_sums_and_fills_missing_cells_with_zero() {
        let out = render(&format!(
            "{{% set p = rows | pivot(row=\"symptom\", col=\"engine\", value=\"n\") %}}{MATRIX}"
        ))
        .unwrap();
        assert_eq!(
            out,
            "crash: 5 4 0 | 9\nhang: 2 0 0 | 2\nwrong output: 0 0 4 | 4\n\
             cols: vllm,sglang,llama.cpp | 7,4,4 | 15"
        );
    }

    #[test]
    fn counts_rows_without_value_and_supports_lookup() {
        let out = render(
            "{% set p = rows | pivot(row=\"symptom\", col=\"engine\") %}\
             {{ p.cell[\"crash\"][\"sglang\"] }} {{ p.cell.hang.vllm }} {{ p.total }} {{ p.row_keys | length }}",
        )
        .unwrap();
        assert_eq!(out, "2 1 5 3");
    }

    #[test]
    fn orders_and_sorts() {
        let out = render(&format!(
            "{{% set p = rows | pivot(row=\"symptom\", col=\"engine\", value=\"n\", \
             col_order=[\"llama.cpp\", \"trt-llm\"], sort_rows=\"total_asc\") %}}{MATRIX}"
        ))
        .unwrap();
        assert_eq!(
            out,
            "hang: 0 0 2 0 | 2\nwrong output: 4 0 0 0 | 4\ncrash: 0 0 5 4 | 9\n\
             cols: llama.cpp,trt-llm,vllm,sglang | 4,0,7,4 | 15"
        );
        let out = render(&format!(
            "{{% set p = rows | pivot(row=\"symptom\", col=\"engine\", value=\"n\", \
             sort_rows=\"total_desc\", sort_cols=\"key\") %}}{MATRIX}"
        ))
        .unwrap();
        assert_eq!(
            out,
            "crash: 0 4 5 | 9\nwrong output: 4 0 0 | 4\nhang: 0 0 2 | 2\n\
             cols: llama.cpp,sglang,vllm | 4,4,7 | 15"
        );
    }

    #[test]
    fn float_values_make_every_number_a_float() {
        let mut t = super::super::new_tera();
        t.add_raw_template(
            "f.tex",
            "{% set p = rows | pivot(row=\"a\", col=\"b\", value=\"x\") %}\
             {% for r in p.rows %}{% for v in r.cells %}{{ v | fixed(digits=1) }};{% endfor %}{% endfor %}{{ p.total | fixed(digits=1) }}",
        )
        .unwrap();
        let mut ctx = tera::Context::new();
        let rows: Vec<BTreeMap<&str, &str>> = vec![
            [("a", "r1"), ("b", "c1"), ("x", "1.5")]
                .into_iter()
                .collect(),
            [("a", "r2"), ("b", "c2"), ("x", "2")].into_iter().collect(),
        ];
        ctx.insert("rows", &rows);
        assert_eq!(t.render("f.tex", &ctx).unwrap(), "1.5;0.0;0.0;2.0;3.5");
    }

    #[test]
    fn reports_missing_columns_bad_numbers_and_bad_arguments() {
        for (src, needle) in [
            (
                "{% set p = rows | pivot(row=\"symptom\", col=\"engin\") %}",
                "row 1 has no column \"engin\" (columns: engine, n, symptom)",
            ),
            (
                "{% set p = rows | pivot(row=\"symptom\", col=\"engine\", value=\"engine\") %}",
                "row 1: engine = \"vllm\" is not a number",
            ),
            (
                "{% set p = rows | pivot(row=\"symptom\", col=\"engine\", sort_rows=\"up\") %}",
                "sort_rows=\"up\" is not one of",
            ),
            (
                "{% set p = rows | pivot(row=\"symptom\", col=\"engine\", rows=1) %}",
                "unknown argument(s) rows",
            ),
            (
                "{% set p = rows | pivot(row=\"symptom\", col=\"engine\", col_order=[\"a\", \"a\"]) %}",
                "\"a\" appears twice in col_order",
            ),
            ("{% set p = rows | pivot(col=\"engine\") %}", "row"),
        ] {
            let e = render(src).unwrap_err().to_string();
            assert!(e.contains(needle), "{src}: {e}");
            assert!(e.contains("p.tex:1:"), "{src}: no location in {e}");
        }
    }
}
