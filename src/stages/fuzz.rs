//! Property tests: the readers of user files (vocabularies, the claims file, the raw CSV of
//! `validate` and the CSV helpers) get random bytes and must return an error or a value, never
//! panic. Inputs are either arbitrary bytes or a valid file with random edits (so the tests
//! reach past the first parse error).

use std::path::Path;

use proptest::prelude::*;

use super::csvtab;
use super::validate;

/// Cases per property (each file-based case writes a file and reads it back).
const CASES: u32 = 512;

/// The paper's `validate` schema, parsed once (parsing the whole pipeline per case was 95 % of
/// this file's test time: 40 s for 512 cases).
static SCHEMA: std::sync::LazyLock<(
    validate::Params,
    std::collections::BTreeMap<String, validate::Vocab>,
)> = std::sync::LazyLock::new(validate::tests::paper_schema);

fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Arbitrary bytes, bytes from a CSV/YAML-ish alphabet, or `base` with random edits and a
/// random truncation.
fn bytes_like(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> = b"\"\',:;@-#[]{}|>&*!%\n\r\t aZ09.\xEF\xBB\xBF\xFF\x00".to_vec();
    let n = base.len().max(1);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(prop::sample::select(alphabet.clone()), 0..600),
        (
            prop::collection::vec((0..n, prop::sample::select(alphabet)), 0..12),
            0..=n,
        )
            .prop_map(move |(edits, keep)| {
                let mut b = base.clone();
                for (i, c) in edits {
                    if i < b.len() {
                        b[i] = c;
                    }
                }
                b.truncate(keep);
                b
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The vocabulary reader (`vocab::parse` / `load`) on random bytes.
    #[test]
    fn vocabulary_reader_never_panics(b in bytes_like(fixture("tests/fixtures/validate/taxonomy.yaml"))) {
        let _ = validate::vocab::parse(&String::from_utf8_lossy(&b), "taxonomy.yaml");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("taxonomy.yaml");
        std::fs::write(&p, &b).expect("write");
        let _ = validate::vocab::load(&p, "taxonomy.yaml");
    }

    /// The claims file reader on random bytes.
    #[test]
    fn claims_reader_never_panics(b in bytes_like(fixture("data/claims.yaml"))) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("claims.yaml");
        std::fs::write(&p, &b).expect("write");
        let _ = super::claims::read_claims(&p);
    }

    /// The CSV readers of `validate` (the row checks and the diagnosis of a broken file) and
    /// the small CSV reader of `plot` / `table` / `claims`, on random bytes.
    #[test]
    fn csv_readers_never_panic(b in bytes_like(fixture("tests/fixtures/validate/bad.csv"))) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("raw.csv");
        std::fs::write(&p, &b).expect("write");
        let (params, vocabs) = &*SCHEMA;
        let log = dir.path().join("problems.csv");
        let _ = validate::rows::check_file(&p, params, vocabs, None, Some(&log));
        let _ = csvtab::diagnose(&b);
        let _ = csvtab::Table::parse(&b);
        let _ = super::aggregate::read_table(&p);
    }
}
