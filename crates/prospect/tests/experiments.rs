//! The qualitative claims of the reproduction experiments, at small scale and fixed seeds.
//! (The Fashion-MNIST experiments are too slow for the test suite; see docs/repro.md.)

use prospect::experiments::{
    self, interference, linear_equilibrium, reverse_diff, target_alignment, zil_equivalence,
    Verdict,
};
use prospect::{Convention, EnergyKind};

#[test]
fn interference_bp_drags_output_a_and_pc_does_not() {
    let bp = interference::trajectory("bp", 20).unwrap();
    let pc = interference::trajectory("pc", 20).unwrap();
    let low = |t: &[(f64, f64)]| t.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    eprintln!("BP A: {:?}", bp.iter().map(|p| p.0).collect::<Vec<_>>());
    eprintln!("PC A: {:?}", pc.iter().map(|p| p.0).collect::<Vec<_>>());
    assert!((bp[1].0 - 0.8).abs() < 1e-9, "BP's first update gives A = 0.8, got {}", bp[1].0);
    assert!(low(&bp) < 0.8, "BP's lowest A {}", low(&bp));
    assert!(low(&pc) > 0.9, "PC's lowest A {}", low(&pc));
    // both learn output B
    assert!(bp[20].1 < 0.1 && pc[20].1 < 0.1, "B: BP {} PC {}", bp[20].1, pc[20].1);
}

#[test]
fn target_alignment_pc_beats_bp_in_deep_nets() {
    for depth in [10, 15] {
        let mean = |m: &str| {
            (0..3).map(|k| target_alignment::alignment(m, depth, k, 512).unwrap()).sum::<f64>()
                / 3.0
        };
        let (bp, pc) = (mean("bp"), mean("pc"));
        eprintln!("depth {depth}: BP {bp:.3} PC {pc:.3}");
        assert!(pc > bp, "depth {depth}: PC {pc} vs BP {bp}");
    }
}

#[test]
fn zil_equals_bp_and_breaking_a_condition_breaks_it() {
    for conv in [Convention::Wf, Convention::Fw] {
        for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
            let g = zil_equivalence::gaps::<f64>("zil", conv, out, 1).unwrap();
            let worst = g.iter().map(|l| l.max_abs).fold(0.0, f64::max);
            assert!(worst < 1e-10, "{conv:?} {out:?}: f64 gap {worst:e}");
            let g = zil_equivalence::gaps::<f32>("zil", conv, out, 1).unwrap();
            let worst = g.iter().map(|l| l.rel).fold(0.0, f64::max);
            assert!(worst < 1e-5, "{conv:?} {out:?}: f32 relative gap {worst:e}");
        }
        for v in &zil_equivalence::VARIANTS[1..] {
            let g = zil_equivalence::gaps::<f64>(v, conv, EnergyKind::Gaussian, 1).unwrap();
            let worst = g.iter().map(|l| l.rel).fold(0.0, f64::max);
            assert!(worst > 1e-3, "{conv:?} {v}: relative gap only {worst:e}");
        }
    }
}

#[test]
fn inference_reaches_the_closed_form_linear_equilibrium() {
    for depth in [2, 4, 6] {
        let c = linear_equilibrium::convergence(depth, 8, 0, 4000).unwrap();
        let last = *c.last().unwrap();
        eprintln!("depth {depth}: start {:.2e} end {last:.2e}", c[0]);
        assert!(c[0] > 1e-3, "forward init should not already be at equilibrium");
        assert!(last < 1e-8, "depth {depth}: max |x_T - x*| = {last:e}");
    }
}

#[test]
fn registry_runs_the_quick_experiments_and_rejects_unknown_names() {
    let r = experiments::run("interference", false, None).unwrap();
    assert!(!r.table.rows.is_empty() && !r.panels.is_empty());
    assert!(r.claims.iter().all(|c| c.verdict == Verdict::Yes), "{}", r.claims_text());
    assert!(r.table.to_csv().starts_with("method,update,output_a,output_b\n"));
    let e = experiments::run("nope", false, None).unwrap_err().to_string();
    assert!(e.contains("interference") && e.contains("linear-equilibrium"), "{e}");
    assert_eq!(experiments::EXPERIMENTS.len(), 20);
}

/// Z-IL on the levelled skip MLP and unrolled RNN equals BP on the original graphs (f64 to
/// 1e-10, f32 to 1e-5 relative), with one step per level and the identity nodes expected.
#[test]
fn reverse_diff_zil_on_levelled_dags_equals_bp() {
    for (g, steps, ids) in [("skip-mlp", 4, 5), ("rnn-unrolled-4", 5, 3)] {
        for conv in [Convention::Wf, Convention::Fw] {
            for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
                let spec = reverse_diff::graph(g, conv, out);
                let gap = reverse_diff::compare::<f64>(&spec, 3).unwrap();
                assert!(gap.max_abs < 1e-10, "{g} {conv:?} {out:?}: f64 gap {:e}", gap.max_abs);
                assert_eq!((gap.steps, gap.identity_nodes), (steps, ids), "{g}");
                let gap = reverse_diff::compare::<f32>(&spec, 3).unwrap();
                assert!(gap.rel < 1e-5, "{g} {conv:?} {out:?}: f32 relative gap {:e}", gap.rel);
            }
        }
    }
    let r = experiments::run("reverse-diff", false, Some(1)).unwrap();
    assert!(r.claims.iter().all(|c| c.verdict == Verdict::Yes), "{}", r.claims_text());
}

/// Data efficiency scores the small sizes on a test set capped at the training size per class
/// (the authors' loaders): `n` images of every class up to 600 per class, one fixed draw; the
/// whole test set above.
#[test]
fn data_efficiency_caps_the_test_set_of_the_small_sizes() {
    use prospect::data::{self, Split};
    use prospect::experiments::data_efficiency::{test_set, CAPPED_UP_TO};
    let d = data::load("digits", Split::Train, None).unwrap();
    let capped = test_set(&d, 60).unwrap();
    assert_eq!(capped.len(), 60 * d.num_classes);
    for c in 0..d.num_classes as u32 {
        assert_eq!(capped.labels.iter().filter(|&&l| l == c).count(), 60, "class {c}");
    }
    assert_eq!(test_set(&d, 60).unwrap().x, capped.x, "the same draw for every rule and seed");
    assert_eq!(CAPPED_UP_TO, 600);
    let whole = test_set(&d, 3000).unwrap();
    assert_eq!((whole.len(), &whole.x), (d.len(), &d.x));
}
