//! A small in-memory CSV table (header + string cells) for kinds that read small result files
//! (`plot`, `table`) and for writing deterministic CSV (also of polars frames, [`write_csv`]).

use std::path::Path;

use engine::kind::StageError;
use polars::prelude::*;

/// A CSV file held as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads a CSV file with a header row (a UTF-8 BOM is skipped).
    pub fn read(path: &Path) -> anyhow::Result<Table> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> anyhow::Result<Table> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let header = rdr.headers()?.iter().map(str::to_string).collect();
        let mut rows = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| anyhow::anyhow!("row {}: {e}", i + 2))?;
            rows.push(rec.iter().map(str::to_string).collect());
        }
        Ok(Table { header, rows })
    }

    /// Index of a column, or an error naming the columns that exist.
    pub fn col(&self, name: &str) -> anyhow::Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            anyhow::anyhow!("no column {name:?} (columns: {})", self.header.join(", "))
        })
    }

    /// CSV bytes with LF line endings and minimal quoting.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(&self.header).expect("write to memory");
        for r in &self.rows {
            w.write_record(r).expect("write to memory");
        }
        w.into_inner().expect("flush to memory")
    }
}

/// Where a CSV's quoted cell opens and is never closed: `(row, line)` of its opening quote
/// (header = row 1, lines from 1), following RFC 4180 (a quote only opens at the start of a
/// cell; `""` inside a quoted cell is a literal quote).
pub fn unclosed_quote(bytes: &[u8]) -> Option<(u64, u64)> {
    let (mut row, mut line) = (1u64, 1u64);
    let mut open: Option<(u64, u64)> = None;
    let mut at_cell_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match open {
            Some(_) => {
                if b == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        i += 1;
                    } else {
                        open = None;
                    }
                } else if b == b'\n' {
                    line += 1;
                }
            }
            None => match b {
                b'"' if at_cell_start => open = Some((row, line)),
                b',' => {
                    at_cell_start = true;
                    i += 1;
                    continue;
                }
                b'\n' => {
                    row += 1;
                    line += 1;
                    at_cell_start = true;
                    i += 1;
                    continue;
                }
                _ => {}
            },
        }
        at_cell_start = b == b'\r' && at_cell_start;
        i += 1;
    }
    open
}

/// The problem behind a polars CSV read error, in terms of the file: an unclosed quote or a row
/// with more or fewer cells than the header, with its row and line and how to fix it. polars'
/// own messages name no row and give advice for its Python API (`truncate_ragged_lines`,
/// `infer_schema_length`); this reads the file again with the `csv` crate to find the row, and
/// falls back to polars' first paragraph without the advice.
pub fn explain_polars_csv_error(e: &dyn std::fmt::Display, path: &Path) -> String {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(io) => return format!("cannot read the file: {io}"),
    };
    if let Some(why) = diagnose(&bytes) {
        return why;
    }
    let msg = e.to_string();
    let first = msg.split("\n\n").next().unwrap_or(&msg).trim();
    let mut s: String = first.chars().take(300).collect();
    if s.len() < first.len() {
        s.push_str("...");
    }
    s
}

/// A structural problem of CSV bytes (see [`explain_polars_csv_error`]), if any.
pub fn diagnose(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some((row, line)) = unclosed_quote(bytes) {
        let newlines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let lines = newlines + u64::from(!bytes.ends_with(b"\n"));
        let rest = lines.saturating_sub(line);
        return Some(format!(
            "row {row} (line {line}): a quoted cell opens here and is never closed, so the rest \
             of the file ({rest} more line(s)) would be read as one value. Close the quote; a \
             quote inside a quoted cell is written twice (\"\")"
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let width = match rdr.headers() {
        Ok(h) => h.len(),
        Err(e) => return Some(format!("the header row cannot be read: {e}")),
    };
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return Some(format!("{e}")),
        };
        if rec.len() != width {
            let (row, line) = rec
                .position()
                .map_or((0, 0), |p| (p.record() + 1, p.line()));
            let fix = if rec.len() > width {
                "a value holding a `,` must be quoted (\"a, b\"), or remove the extra cells"
            } else {
                "add the missing cells (an empty cell is written as nothing between two commas)"
            };
            return Some(format!(
                "row {row} (line {line}) has {} cell(s) but the header has {width}: {fix}",
                rec.len()
            ));
        }
    }
    None
}

/// Writes a frame as CSV: header, LF line endings, nulls as empty cells, no BOM. A float that
/// is not finite (`NaN`, `inf`, e.g. from a division by zero) is written as an empty cell too,
/// like a null: `docs/data.md` promises an empty percentage when the whole is 0.
pub fn write_csv(
    df: &mut DataFrame,
    path: &Path,
    float_decimals: Option<usize>,
) -> Result<(), StageError> {
    null_non_finite(df)?;
    let mut f = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    CsvWriter::new(&mut f)
        .include_header(true)
        .with_line_terminator("\n".into())
        .with_float_precision(float_decimals)
        .finish(df)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Replaces `NaN` and infinite floats by nulls (only columns holding one are rebuilt).
fn null_non_finite(df: &mut DataFrame) -> PolarsResult<()> {
    let mut fixed = Vec::new();
    for c in df.columns() {
        let s = c.as_materialized_series();
        let ca = match s.dtype() {
            DataType::Float64 => s.f64()?.clone(),
            DataType::Float32 => s.cast(&DataType::Float64)?.f64()?.clone(),
            _ => continue,
        };
        if ca.iter().flatten().all(f64::is_finite) {
            continue;
        }
        let cleaned: Float64Chunked = ca.iter().map(|v| v.filter(|x| x.is_finite())).collect();
        let cleaned = cleaned.into_series().cast(s.dtype())?;
        fixed.push((c.name().clone(), cleaned.with_name(c.name().clone())));
    }
    for (name, series) in fixed {
        df.replace(name.as_str(), Column::from(series))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_bom_and_quotes() {
        let t = Table::parse(b"\xEF\xBB\xBFa,b\n1,\"x, y\"\n").unwrap();
        assert_eq!(t.header, vec!["a", "b"]);
        assert_eq!(t.rows, vec![vec!["1".to_string(), "x, y".to_string()]]);
        assert_eq!(t.to_csv(), b"a,b\n1,\"x, y\"\n");
    }
}
