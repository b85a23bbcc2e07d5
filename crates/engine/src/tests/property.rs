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
