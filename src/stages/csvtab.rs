//! A small in-memory CSV table (header + string cells) for kinds that read small result files
//! (`plot`, `table`) and for writing deterministic CSV.

use std::path::Path;

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
