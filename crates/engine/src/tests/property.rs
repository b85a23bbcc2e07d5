//! Property test: on random DAGs the order respects every edge and is the same every time.

use proptest::prelude::*;

use super::*;

fn dag_yaml(n: usize, edges: &[(usize, usize)]) -> String {
    let mut s = String::from("version: 1\nstages:\n");
    for i in 0..n {
        let mut inputs: Vec<String> = edges
            .iter()
            .filter(|(_, to)| *to == i)
            .map(|(from, _)| format!("o/s{from:02}.txt"))
            .collect();
        inputs.sort();
        inputs.dedup();
        s.push_str(&format!(
            "  s{i:02}:\n    kind: fake\n    inputs: [{}]\n    outputs: [o/s{i:02}.txt]\n",
            inputs.join(", ")
        ));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn topological_order_respects_edges(n in 1usize..24, raw in proptest::collection::vec((0usize..24, 0usize..24), 0..60)) {
        // Only edges from a lower to a higher index: always acyclic.
        let edges: Vec<(usize, usize)> = raw
            .into_iter()
            .map(|(a, b)| (a % n, b % n))
            .filter(|(a, b)| a < b)
            .collect();
        let p = Proj::new(&dag_yaml(n, &edges), &[]);
        let pipeline = p.pipeline();
        let plan = Plan::new(&pipeline).unwrap();
        let pos: Vec<usize> = {
            let mut v = vec![0; n];
            for (k, &i) in plan.order.iter().enumerate() { v[i] = k; }
            v
        };
        for (a, b) in &edges {
            prop_assert!(pos[*a] < pos[*b]);
        }
        let again = Plan::new(&p.pipeline()).unwrap();
        prop_assert_eq!(&plan.order, &again.order);
        // Single-threaded execution follows the plan order exactly.
        let (log, _) = p.run_with(&Options { jobs: 1, force: false }, &[]);
        let names: Vec<String> = plan.order.iter().map(|&i| pipeline.stages[i].name.clone()).collect();
        prop_assert_eq!(log, names);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// The workers of a parallel run, on random DAGs with failing stages: every stage gets
    /// exactly one result, none starts before all its upstream stages ended, a failing stage
    /// fails, every stage downstream of one is skipped, and every other stage runs.
    #[test]
    fn parallel_runs_respect_edges_and_failures(
        n in 1usize..24,
        raw in proptest::collection::vec((0usize..24, 0usize..24), 0..60),
        failing in proptest::collection::vec(0usize..24, 0..3),
        jobs in 1usize..6,
    ) {
        let edges: Vec<(usize, usize)> = raw
            .into_iter()
            .map(|(a, b)| (a % n, b % n))
            .filter(|(a, b)| a < b)
            .collect();
        let mut failing: Vec<usize> = failing.into_iter().map(|f| f % n).collect();
        failing.sort_unstable();
        failing.dedup();
        let mut yaml = dag_yaml(n, &edges);
        for f in &failing {
            let at = format!("outputs: [o/s{f:02}.txt]\n");
            yaml = yaml.replacen(&at, &format!("{at}    with: {{fail: true}}\n"), 1);
        }
        let p = Proj::new(&yaml, &[]);
        let (log, res) = p.run_with(&Options { jobs, force: false }, &[]);
        let names: Vec<String> = (0..n).map(|i| format!("s{i:02}")).collect();
        let mut got: Vec<&str> = res.iter().map(|r| r.stage.as_str()).collect();
        got.sort_unstable();
        prop_assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
        // Downstream of a failing stage (edges go from lower to higher indices).
        let mut doomed = vec![false; n];
        for i in 0..n {
            doomed[i] = edges.iter().any(|(a, b)| *b == i && (failing.contains(a) || doomed[*a]));
        }
        for (i, name) in names.iter().enumerate() {
            let st = status_of(&res, name);
            if doomed[i] {
                prop_assert!(matches!(st, Status::Skipped(_)), "{} ended {:?}", name, st);
            } else if failing.contains(&i) {
                prop_assert!(matches!(st, Status::Failed(_)), "{} ended {:?}", name, st);
            } else {
                prop_assert_eq!(st, &Status::Ran, "{}", name);
            }
        }
        // The fake kind logs a stage when it starts: after every upstream stage it ran.
        let pos = |s: &str| log.iter().position(|l| l == s);
        for (a, b) in &edges {
            if let Some(pb) = pos(&names[*b]) {
                let pa = pos(&names[*a]);
                prop_assert!(pa.is_some_and(|pa| pa < pb), "{} started before {} ran", names[*b], names[*a]);
            }
        }
    }
}
