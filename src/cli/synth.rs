//! `artifact synth` (for benchmarks): a seeded synthetic dataset with the schema of the
//! authors' `dataset.csv` (UTF-8 BOM, same columns, `@@` lists, parallel Component / Root
//! Cause(s)), every value drawn from the vocabularies of a taxonomy file (the `validate`
//! format), so it passes the paper's `validate` stage.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use engine::exit;

use super::Global;

use super::error::Result;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// The taxonomy file to draw values from.
    #[arg(long, default_value = "data/taxonomy.yaml")]
    pub taxonomy: PathBuf,
    /// Number of bugs (rows).
    #[arg(long)]
    pub rows: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV.
    #[arg(short, long)]
    pub out: PathBuf,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, v: &'a [String]) -> &'a str {
        &v[self.below(v.len())]
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn run(_g: &Global, a: &SynthArgs) -> Result<i32> {
    let shown = a.taxonomy.display().to_string();
    let vocabs =
        crate::stages::validate::vocab::load(&a.taxonomy, &shown).map_err(|e| anyhow!(e))?;
    let find = |name: &str| vocabs.iter().find(|v| v.name == name);
    let written = |name: &str| -> Vec<String> {
        find(name)
            .map(|v| v.leaves().map(|n| n.written.clone()).collect())
            .unwrap_or_default()
    };
    let engines: Vec<(String, String)> = find("engine")
        .map(|v| {
            v.leaves()
                .map(|n| {
                    let repo = n.attrs.get("repo").and_then(|r| r.first()).cloned();
                    (n.written.clone(), repo.unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    let phases = written("phase");
    let symptoms = written("symptom");
    let subtypes = written("token_subtype");
    // The paper's rule (pipeline.yaml): a token subtype only on a bug with this symptom.
    let needs = "Unexpected Output".to_string();
    let components = written("component");
    let causes = written("root_cause");
    if engines.is_empty()
        || phases.is_empty()
        || symptoms.is_empty()
        || components.is_empty()
        || causes.is_empty()
    {
        return Err(anyhow!(
            "{shown}: needs the vocabularies engine (with a repo attribute), phase, symptom, component and root_cause"
        )
        .into());
    }
    let f = std::fs::File::create(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut w = std::io::BufWriter::new(f);
    w.write_all(
        b"\xEF\xBB\xBFURL,repo,Phase,Symptom(s),Unexpected Tokens,Component,Root Cause(s)\n",
    )?;
    let mut rng = Rng(a.seed);
    for i in 0..a.rows {
        let (label, repo) = &engines[rng.below(engines.len())];
        let mut syms = vec![rng.pick(&symptoms).to_string()];
        if rng.below(100) < 1 {
            let s2 = rng.pick(&symptoms).to_string();
            if s2 != syms[0] {
                syms.push(s2);
            }
        }
        let token = if syms.contains(&needs) && !subtypes.is_empty() && rng.below(100) < 80 {
            rng.pick(&subtypes).to_string()
        } else {
            String::new()
        };
        let k = if rng.below(100) < 13 { 2 } else { 1 };
        let comps: Vec<&str> = (0..k).map(|_| rng.pick(&components)).collect();
        let rcs: Vec<&str> = (0..k).map(|_| rng.pick(&causes)).collect();
        let row = [
            format!("https://github.com/{repo}/issues/{}", i + 1),
            label.clone(),
            rng.pick(&phases).to_string(),
            syms.join("@@"),
            token,
            comps.join("@@"),
            rcs.join("@@"),
        ];
        let line: Vec<String> = row.iter().map(|c| quote(c)).collect();
        writeln!(w, "{}", line.join(","))?;
    }
    w.flush()?;
    Ok(exit::OK)
}
