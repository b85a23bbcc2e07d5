//! The stage graph: dependencies derived from paths (an input that is another stage's output),
//! a deterministic topological order (Kahn's algorithm, ties broken by name), cycle reporting,
//! upstream/downstream closures, and DOT / Mermaid rendering.

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;

use crate::spec::Pipeline;

/// The DAG of a validated pipeline; stage `i` is `pipeline.stages[i]`.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `deps[i]`: stages whose outputs stage `i` reads (sorted, unique).
    pub deps: Vec<Vec<usize>>,
    /// `dependents[i]`: stages reading an output of stage `i` (sorted, unique).
    pub dependents: Vec<Vec<usize>>,
    /// A topological order; among ready stages, the smallest name first.
    pub order: Vec<usize>,
}

/// The graph has a cycle; `cycle` lists stage names, first repeated at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleError {
    pub cycle: Vec<String>,
}

impl std::fmt::Display for CycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the stages form a cycle: {}", self.cycle.join(" -> "))
    }
}
impl std::error::Error for CycleError {}

impl Plan {
    pub fn new(p: &Pipeline) -> Result<Plan, CycleError> {
        let producers = p.producers();
        let n = p.stages.len();
        let mut deps = vec![BTreeSet::new(); n];
        for (i, s) in p.stages.iter().enumerate() {
            for inp in &s.inputs {
                if let Some(&j) = producers.get(p.identity(&inp.path)) {
                    deps[i].insert(j);
                }
            }
        }
        let deps: Vec<Vec<usize>> = deps.into_iter().map(|s| s.into_iter().collect()).collect();
        let mut dependents = vec![Vec::new(); n];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                dependents[j].push(i);
            }
        }
        // Stages are sorted by name, so index order is name order.
        let mut indeg: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &d in &dependents[i] {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    ready.insert(d);
                }
            }
        }
        if order.len() < n {
            return Err(CycleError {
                cycle: find_cycle(&deps, &indeg)
                    .into_iter()
                    .map(|i| p.stages[i].name.clone())
                    .collect(),
            });
        }
        Ok(Plan {
            deps,
            dependents,
            order,
        })
    }

    /// `targets` and everything they (transitively) read from, as a sorted set.
    pub fn upstream(&self, targets: &[usize]) -> BTreeSet<usize> {
        closure(targets, &self.deps)
    }

    /// `targets` and everything that (transitively) reads from them.
    pub fn downstream(&self, targets: &[usize]) -> BTreeSet<usize> {
        closure(targets, &self.dependents)
    }

    /// Graphviz DOT, stages as boxes, edges labelled by nothing (paths are in the stages).
    pub fn dot(&self, p: &Pipeline) -> String {
        let mut s = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
        for st in &p.stages {
            let _ = writeln!(
                s,
                "  {:?} [label=\"{}\\n({})\"];",
                st.name, st.name, st.kind
            );
        }
        for (i, d) in self.deps.iter().enumerate() {
            for &j in d {
                let _ = writeln!(s, "  {:?} -> {:?};", p.stages[j].name, p.stages[i].name);
            }
        }
        s.push_str("}\n");
        s
    }

    /// A Mermaid flowchart.
    pub fn mermaid(&self, p: &Pipeline) -> String {
        let mut s = String::from("flowchart LR\n");
        for (i, st) in p.stages.iter().enumerate() {
            let _ = writeln!(s, "  s{i}[\"{} ({})\"]", st.name, st.kind);
        }
        for (i, d) in self.deps.iter().enumerate() {
            for &j in d {
                let _ = writeln!(s, "  s{j} --> s{i}");
            }
        }
        s
    }
}

fn closure(start: &[usize], edges: &[Vec<usize>]) -> BTreeSet<usize> {
    let mut seen: BTreeSet<usize> = start.iter().copied().collect();
    let mut queue: VecDeque<usize> = start.iter().copied().collect();
    while let Some(i) = queue.pop_front() {
        for &j in &edges[i] {
            if seen.insert(j) {
                queue.push_back(j);
            }
        }
    }
    seen
}

/// Finds one cycle among the stages left with a positive in-degree; deterministic (smallest
/// index first). Returns it closed: `[a, b, c, a]`.
fn find_cycle(deps: &[Vec<usize>], indeg: &[usize]) -> Vec<usize> {
    let n = deps.len();
    let Some(start) = (0..n).find(|&i| indeg[i] > 0) else {
        return Vec::new();
    };
    // Walk dependency edges among the blocked stages until a stage repeats.
    let mut pos = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut cur = start;
    loop {
        if pos[cur] != usize::MAX {
            let mut cyc: Vec<usize> = path[pos[cur]..].to_vec();
            // Edges point from a stage to what it reads; print in data-flow order.
            cyc.reverse();
            // Start the printed cycle at its first stage by name.
            let m = (0..cyc.len()).min_by_key(|&k| cyc[k]).unwrap_or(0);
            cyc.rotate_left(m);
            let first = cyc[0];
            cyc.push(first);
            return cyc;
        }
        pos[cur] = path.len();
        path.push(cur);
        match deps[cur].iter().copied().find(|&d| indeg[d] > 0) {
            Some(d) => cur = d,
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Loc;
    use crate::spec::{Node, PathSpec, StageSpec};

    /// A pipeline from (name, inputs, outputs), without files or kinds: the plan reads paths only.
    fn pipeline(stages: &[(&str, &[&str], &[&str])]) -> Pipeline {
        let paths = |v: &[&str]| {
            v.iter()
                .map(|p| PathSpec {
                    path: p.to_string(),
                    loc: Loc::default(),
                    name: None,
                })
                .collect()
        };
        let mut stages: Vec<StageSpec> = stages
            .iter()
            .map(|(name, i, o)| StageSpec {
                name: name.to_string(),
                loc: Loc::default(),
                kind: "command".into(),
                description: None,
                inputs: paths(i),
                outputs: paths(o),
                with: Node::parse("{}").expect("yaml"),
                params: None,
            })
            .collect();
        stages.sort_by(|a, b| a.name.cmp(&b.name));
        Pipeline {
            root: ".".into(),
            file: "pipeline.yaml".into(),
            stages,
            aliases: Default::default(),
            placement: Default::default(),
            report: None,
            params: None,
        }
    }

    fn names(p: &Pipeline, v: impl IntoIterator<Item = usize>) -> Vec<&str> {
        v.into_iter().map(|i| p.stages[i].name.as_str()).collect()
    }

    #[test]
    fn order_follows_paths_and_breaks_ties_by_name() {
        // d reads b and c, which read a; z stands alone.
        let p = pipeline(&[
            ("d", &["b.txt", "c.txt"], &["d.txt"]),
            ("c", &["a.txt"], &["c.txt"]),
            ("z", &["src.txt"], &["z.txt"]),
            ("b", &["a.txt"], &["b.txt"]),
            ("a", &[], &["a.txt"]),
        ]);
        let plan = Plan::new(&p).expect("no cycle");
        assert_eq!(names(&p, plan.order.clone()), ["a", "b", "c", "d", "z"]);
        let d = p.stages.iter().position(|s| s.name == "d").unwrap();
        assert_eq!(names(&p, plan.deps[d].clone()), ["b", "c"]);
        assert_eq!(names(&p, plan.upstream(&[d])), ["a", "b", "c", "d"]);
        assert_eq!(names(&p, plan.downstream(&[0])), ["a", "b", "c", "d"]);
        let z = p.stages.iter().position(|s| s.name == "z").unwrap();
        assert_eq!(names(&p, plan.upstream(&[z])), ["z"]);
    }

    #[test]
    fn a_cycle_is_printed_whole() {
        let p = pipeline(&[
            ("a", &["c.txt"], &["a.txt"]),
            ("b", &["a.txt"], &["b.txt"]),
            ("c", &["b.txt"], &["c.txt"]),
            ("free", &[], &["f.txt"]),
        ]);
        let e = Plan::new(&p).expect_err("cycle");
        assert_eq!(e.cycle.first(), e.cycle.last());
        let mut members = e.cycle[..e.cycle.len() - 1].to_vec();
        members.sort();
        assert_eq!(members, ["a", "b", "c"]);
        assert!(e.to_string().starts_with("the stages form a cycle: "));
    }

    #[test]
    fn dot_and_mermaid_list_every_edge() {
        let p = pipeline(&[("a", &[], &["a.txt"]), ("b", &["a.txt"], &["b.txt"])]);
        let plan = Plan::new(&p).unwrap();
        assert!(plan.dot(&p).contains("\"a\" -> \"b\""), "{}", plan.dot(&p));
        assert!(plan.mermaid(&p).contains("-->"), "{}", plan.mermaid(&p));
    }
}
