//! Robustness: the checker and the planner never panic and always finish, whatever the
//! input: arbitrary text, and the example packs and stdlib modules with tokens deleted,
//! duplicated, swapped or cut short.

use dsl_syntax::mutate::{Mutation, mutate};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../../../packs/inbox_triage/inbox_triage.gx"),
    include_str!("../../../packs/support_ticket_routing/support_ticket_routing.gx"),
    include_str!("../../../packs/research_brief/research_brief.gx"),
    include_str!("../../../packs/lead_qualification/lead_qualification.gx"),
    include_str!("../../../stdlib/mail.gx"),
];

fn exercise(source: &str) {
    let analysis = dsl_check::check(source, &dsl_check::NoFiles);
    for diagnostic in &analysis.diagnostics {
        assert!(
            diagnostic.span.end as usize <= source.len(),
            "span out of bounds: {diagnostic:?}"
        );
        assert!(diagnostic.code.starts_with("GX"), "{diagnostic:?}");
    }
    let plan = dsl_check::lower(&analysis);
    assert!(
        !(plan.is_some() && analysis.has_errors()),
        "a plan despite errors"
    );
}

fn mutation() -> impl Strategy<Value = Mutation> {
    any::<(u8, usize, usize)>().prop_map(|(kind, a, b)| Mutation::from_parts(kind, a, b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_packs_never_panic(seed in 0..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..8)) {
        exercise(&mutate(SEEDS[seed], &mutations));
    }

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,300}") {
        exercise(&source);
    }
}

#[test]
fn ten_thousand_errors_are_reported_without_blow_up() {
    let mut source = String::from("pack many {\n  language \"0.1\"\n  flow {\n");
    for i in 0..10_000 {
        source.push_str(&format!("    step s{i} = count(missing_{i})\n"));
    }
    source.push_str("  }\n}\n");
    let analysis = dsl_check::check(&source, &dsl_check::NoFiles);
    let errors = analysis.diagnostics.iter().filter(|d| d.is_error()).count();
    assert!(errors >= 10_000, "{errors} errors");
}
