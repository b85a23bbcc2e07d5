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
    /// Reads a CSV file with a header row (a UTF-8 BOM is skipped); errors name it `shown` (its
    /// path in the project).
    pub fn read(path: &Path, shown: &str) -> anyhow::Result<Table> {
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
        Self::parse(&bytes).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
    }

    /// Parses CSV bytes with a header row. A quoted cell never closed, or a row with more or
    /// fewer cells than the header, is an error naming its row and line ([`diagnose`]): the
    /// `csv` crate would read an unclosed quote to the end of the file as one value.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Table> {
        if let Some(problem) = diagnose(bytes) {
            anyhow::bail!("{problem}");
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let header: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
        for (i, h) in header.iter().enumerate() {
            if header[..i].contains(h) {
                anyhow::bail!("column {h:?} appears twice in the header");
            }
        }
        let mut rows = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| match e.kind() {
                csv::ErrorKind::Utf8 { .. } => {
                    anyhow::anyhow!("row {}: not UTF-8 text (save the file as UTF-8)", i + 2)
                }
                _ => anyhow::anyhow!("row {}: {e}", i + 2),
            })?;
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

/// The shape of CSV bytes, fed in pieces: the header's width, the first row of another width,
/// and a quoted cell that is never closed (RFC 4180: a quote opens only at the start of a cell,
/// `""` inside a quoted cell is a literal quote; blank lines are skipped; header = row 1).
///
/// Hand-written because no library reports both in one streamed pass: the `csv` crate reads an
/// unclosed quote to the end of the file without an error, and polars names no row and does not
/// count the cells of columns it was not asked for.
#[derive(Debug)]
pub struct Shape {
    state: State,
    /// Rows ended so far (blank lines not counted), the current line (from 1) and the line
    /// where the current row starts.
    rows: u64,
    line: u64,
    start: u64,
    /// Cells of the current row so far minus one (its delimiters), and whether it has a byte.
    commas: usize,
    content: bool,
    width: Option<usize>,
    /// Row and line where the open quoted cell starts.
    opened: (u64, u64),
    /// The first row whose width differs: row, line, cells.
    ragged: Option<(u64, u64, usize)>,
    last: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Outside quotes; whether at the start of a cell.
    Plain(bool),
    Quoted,
    /// A quote inside a quoted cell: closes it unless another quote follows.
    QuoteInQuoted,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            state: State::Plain(true),
            rows: 0,
            line: 1,
            start: 1,
            commas: 0,
            content: false,
            width: None,
            opened: (0, 0),
            ragged: None,
            last: b'\n',
        }
    }
}

impl Shape {
    /// Reads the next piece of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            // A whole line without quotes, from a row's start: its cells are its commas plus
            // one, counted in one vectorised pass (most lines of most tables).
            if self.state == State::Plain(true) && self.commas == 0 && !self.content {
                let rest = &bytes[i..];
                if let Some(n) = memchr::memchr(b'\n', rest)
                    && memchr::memchr(b'"', &rest[..n]).is_none()
                {
                    let line = &rest[..n];
                    self.commas = line.iter().filter(|b| **b == b',').count();
                    self.content = line.iter().any(|b| *b != b',' && *b != b'\r');
                    self.end_row();
                    self.line += 1;
                    self.start = self.line;
                    i += n + 1;
                    continue;
                }
            }
            self.byte(bytes[i]);
            i += 1;
        }
        if let Some(&l) = bytes.last() {
            self.last = l;
        }
    }

    fn byte(&mut self, b: u8) {
        match self.state {
            State::Quoted => match b {
                b'"' => self.state = State::QuoteInQuoted,
                b'\n' => self.line += 1,
                _ => {}
            },
            State::QuoteInQuoted if b == b'"' => self.state = State::Quoted,
            State::QuoteInQuoted | State::Plain(_) => {
                let at_start = self.state == State::Plain(true);
                self.state = match b {
                    b'"' if at_start => {
                        self.opened = (self.rows + 1, self.line);
                        self.content = true;
                        State::Quoted
                    }
                    b',' => {
                        self.commas += 1;
                        State::Plain(true)
                    }
                    b'\n' => {
                        self.end_row();
                        self.line += 1;
                        self.start = self.line;
                        State::Plain(true)
                    }
                    b'\r' => State::Plain(at_start),
                    _ => {
                        self.content = true;
                        State::Plain(false)
                    }
                };
            }
        }
    }

    fn end_row(&mut self) {
        if self.content || self.commas > 0 {
            self.rows += 1;
            let cells = self.commas + 1;
            match self.width {
                None => self.width = Some(cells),
                Some(w) if w != cells && self.ragged.is_none() => {
                    self.ragged = Some((self.rows, self.start, cells));
                }
                Some(_) => {}
            }
        }
        self.commas = 0;
        self.content = false;
    }

    /// After the last piece: what is wrong with the file's shape, in its terms, if anything.
    pub fn problem(mut self) -> Option<String> {
        if self.state == State::Quoted {
            let (row, line) = self.opened;
            let lines = self.line - u64::from(self.last == b'\n');
            return Some(format!(
                "row {row} (line {line}): a quoted cell opens here and is never closed, so the rest \
                 of the file ({} more line(s)) would be read as one value. Close the quote; a \
                 quote inside a quoted cell is written twice (\"\")",
                lines.saturating_sub(line)
            ));
        }
        self.end_row();
        let (row, line, cells) = self.ragged?;
        let width = self.width.unwrap_or(0);
        let fix = if cells > width {
            "a value holding a `,` must be quoted (\"a, b\"), or remove the extra cells"
        } else {
            "add the missing cells (an empty cell is written as nothing between two commas)"
        };
        Some(format!(
            "row {row} (line {line}) has {cells} cell(s) but the header has {width}: {fix}"
        ))
    }
}

/// The problem behind a polars CSV read error, in terms of the file: an unclosed quote or a row
/// with more or fewer cells than the header, with its row and line and how to fix it. polars'
/// own messages name no row and give advice for its Python API (`truncate_ragged_lines`,
/// `infer_schema_length`); this reads the file again to find the row, and falls back to
/// polars' first paragraph without the advice.
pub fn explain_polars_csv_error(e: &dyn std::fmt::Display, path: &Path) -> String {
    match shape_problem(path) {
        Err(io) => return format!("cannot read the file: {io}"),
        Ok(Some(why)) => return why,
        Ok(None) => {}
    }
    let msg = e.to_string();
    let first = msg.split("\n\n").next().unwrap_or(&msg).trim();
    let mut s: String = first.chars().take(300).collect();
    if s.len() < first.len() {
        s.push_str("...");
    }
    s
}

/// A structural problem of CSV bytes (see [`Shape`]), if any. A UTF-8 BOM is skipped.
pub fn diagnose(bytes: &[u8]) -> Option<String> {
    let mut s = Shape::default();
    s.feed(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes));
    s.problem()
}

/// [`diagnose`] for a file, read in pieces (a table of any size is checked in constant memory).
pub fn shape_problem(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut s = Shape::default();
    let mut first = true;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(s.problem());
        }
        let piece = &buf[..n];
        let piece = match first {
            true => piece.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(piece),
            false => piece,
        };
        first = false;
        s.feed(piece);
    }
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
    fn the_shape_check_names_the_row_and_line() {
        let d = |b: &[u8]| diagnose(b).unwrap_or_default();
        assert!(
            d(b"a,b\nx,1\ny,2,3\n")
                .starts_with("row 3 (line 3) has 3 cell(s) but the header has 2: a value holding")
        );
        // Blank lines are skipped but counted as lines; CRLF is one line end.
        assert!(d(b"a,b\r\n\r\nx,1\r\n\ny\n").starts_with(
            "row 3 (line 5) has 1 cell(s) but the header has 2: add the missing cells"
        ));
        // A quoted cell may hold commas and line ends; the row starts where its first line does.
        assert!(d(b"a,b\n\"x,\ny\",1\nz\n").starts_with("row 3 (line 4) has 1 cell(s)"));
        assert!(d(b"a,b\nx,\"1\ny,2\n").starts_with("row 2 (line 2): a quoted cell opens here and is never closed, so the rest of the file (1 more line(s))"));
        assert_eq!(diagnose(b"\xEF\xBB\xBFa,b\n1,2\n\n\"x\"\"y\",\n3,4"), None);
        assert_eq!(diagnose(b""), None);
    }

    #[test]
    fn round_trip_with_bom_and_quotes() {
        let t = Table::parse(b"\xEF\xBB\xBFa,b\n1,\"x, y\"\n").unwrap();
        assert_eq!(t.header, vec!["a", "b"]);
        assert_eq!(t.rows, vec![vec!["1".to_string(), "x, y".to_string()]]);
        assert_eq!(t.to_csv(), b"a,b\n1,\"x, y\"\n");
    }

    /// The `csv` crate read an unclosed quote to the end of the file as one value: the `table`
    /// kind printed three rows as one, with exit 0. Shape problems are now errors.
    #[test]
    fn an_unclosed_quote_or_a_ragged_row_is_an_error_with_its_row() {
        let e = Table::parse(b"a\nx\n\"unclosed\ny\nz\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("row 3 (line 3): a quoted cell opens here and is never closed"),
            "{e}"
        );
        let e = Table::parse(b"a,b\n1,2\n3,4,5\n").unwrap_err().to_string();
        assert!(
            e.starts_with("row 3 (line 3) has 3 cell(s) but the header has 2"),
            "{e}"
        );
        let e = Table::parse(b"a\nok\n\xff\n").unwrap_err().to_string();
        assert_eq!(e, "row 3: not UTF-8 text (save the file as UTF-8)");
    }
}
