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
        let _ = super::claims::read_claims(&p, "claims.yaml");
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

    /// The CSV shape check gives the same verdict however the file is cut into pieces (its
    /// whole-line fast path against its byte-by-byte path), and its verdict on a file is that
    /// on the bytes.
    #[test]
    fn the_shape_check_does_not_depend_on_how_the_file_is_read(
        b in prop::collection::vec(prop::sample::select(b"a,\"\n\r".to_vec()), 0..300),
        cut in 1usize..40,
    ) {
        let whole = csvtab::diagnose(&b);
        let mut s = csvtab::Shape::default();
        for piece in b.chunks(cut) {
            s.feed(piece);
        }
        prop_assert_eq!(&s.problem(), &whole);
        let mut s = csvtab::Shape::default();
        for byte in &b {
            s.feed(std::slice::from_ref(byte));
        }
        prop_assert_eq!(&s.problem(), &whole);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.csv");
        std::fs::write(&p, &b).expect("write");
        prop_assert_eq!(&csvtab::shape_problem(&p).expect("read"), &whole);
    }
}
