//! `artifact synth` (for benchmarks): a seeded synthetic dataset with the schema of the
//! authors' `dataset.csv` (UTF-8 BOM, same columns, `@@` lists, parallel Component / Root
//! Cause(s)), every value drawn from a taxonomy file, so it passes the `clean` stage.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use engine::exit;
use serde_json::Value;

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

fn labels(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["label"].as_str().map(str::to_string))
        .collect()
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn run(_g: &Global, a: &SynthArgs) -> Result<i32> {
    let text = std::fs::read_to_string(&a.taxonomy)
        .with_context(|| format!("cannot read {}", a.taxonomy.display()))?;
    let tax = engine::spec::Node::parse(&text)
        .map_err(|(l, m)| anyhow!("{}:{}:{}: {m}", a.taxonomy.display(), l.line, l.col))?
        .to_json();
    let engines: Vec<(String, String)> = tax["engines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["label"].as_str().unwrap_or_default().to_string(),
                e["repo"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let phases = labels(&tax["phases"]);
    let symptoms = labels(&tax["symptoms"]);
    let subtypes = labels(&tax["token_subtypes"]["values"]);
    let needs = tax["token_subtypes"]["requires_symptom"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let components = labels(&tax["components"]);
    let causes: Vec<String> = tax["root_causes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| labels(&c["leaves"]))
        .collect();
    if engines.is_empty()
        || phases.is_empty()
        || symptoms.is_empty()
        || components.is_empty()
        || causes.is_empty()
    {
        return Err(anyhow!(
            "{}: missing engines, phases, symptoms, components or root causes",
            a.taxonomy.display()
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
