//! The qualitative claims of the reproduction experiments, at small scale and fixed seeds.
//! (The Fashion-MNIST experiments are too slow for the test suite; see the README's "Reproducing the paper".)

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

/// The authors' continual mapping: class `c` on unit `perm(c) mod 5`, a permutation per seed
/// (every unit holds two of the ten classes), applied to train and test labels alike.
#[test]
fn continual_authors_units_are_a_seeded_permutation_mod_5() {
    use prospect::data::{self, Split};
    use prospect::experiments::continual::{authors_units, map_to_units};
    let mut distinct = std::collections::HashSet::new();
    for seed in 0..8 {
        let u = authors_units(seed);
        assert_eq!(u, authors_units(seed), "seeded");
        for unit in 0..5 {
            assert_eq!(u.iter().filter(|&&v| v == unit).count(), 2, "seed {seed}: {u:?}");
        }
        distinct.insert(u);
    }
    assert!(distinct.len() >= 6, "the mapping should change with the seed: {distinct:?}");
    let d = data::load("digits", Split::Train, None).unwrap();
    let u = authors_units(3);
    let task = [5u32, 6, 7, 8, 9];
    let m = map_to_units(&d, &task, &u);
    assert_eq!(m.num_classes, 5);
    let counts = d.class_counts();
    assert_eq!(m.len(), task.iter().map(|&c| counts[c as usize]).sum::<usize>());
    // the examples keep their order: the k-th kept example of class c is labelled u[c]
    let kept: Vec<u32> = d.labels.iter().copied().filter(|l| task.contains(l)).collect();
    let want: Vec<u32> = kept.iter().map(|&c| u[c as usize]).collect();
    assert_eq!(m.labels, want);
}

/// A zero-precision output unit (the authors' `[:, 0:-1]` loss) carries no error: BP and PC
/// (with the authors' inference) make the same update whatever that unit's target is, and a
/// different one when a kept unit's target changes, or when the unit is not left out.
#[test]
fn a_zero_precision_output_unit_carries_no_error_in_bp_or_pc() {
    use prospect::energy::DiagGaussian;
    use prospect::experiments::continual::authors_inference;
    use prospect::learn::{self, Batch};
    use prospect::{Activation, MlpSpec, Net, OptimConfig, Tensor, WeightOptim, Workspace};
    let x = Tensor::from_fn(3, 4, |i, j| ((i * 4 + j) as f64 * 0.37).sin());
    let y = Tensor::from_fn(3, 5, |i, j| if j == i { 1.0 } else { 0.0 });
    let with = |i: usize, j: usize, v: f64| {
        let mut t = y.clone();
        t.row_mut(i)[j] = v;
        t
    };
    let mut spec = MlpSpec::new(&[4, 6, 5], Activation::Sigmoid, Convention::Wf);
    spec.bias = false;
    for rule in ["bp", "pc"] {
        let step = |drop: bool, t: &Tensor<f64>| {
            let mut net: Net<f64> = Net::mlp(&spec, 1).unwrap();
            if drop {
                net.set_output_energy(Box::new(DiagGaussian::first(4, 5)));
            }
            let mut opt = WeightOptim::new(OptimConfig::sgd(0.5), &net).unwrap();
            let mut ws = Workspace::new(&net, 3);
            let mut r = learn::build::<f64>(rule, &authors_inference()).unwrap();
            r.train_batch(&mut net, &mut opt, Batch { x: &x, y: t, index: 0 }, &mut ws).unwrap();
            let mut w = Vec::new();
            for l in &net.layers {
                l.for_each_param(&mut |_, p| w.extend_from_slice(p.data()));
            }
            w
        };
        let base = step(true, &y);
        assert_eq!(base, step(true, &with(0, 4, 1.0)), "{rule}: unit 4's target moved the weights");
        assert_ne!(base, step(true, &with(0, 3, 1.0)), "{rule}: unit 3's target did nothing");
        assert_ne!(step(false, &y), step(false, &with(0, 4, 1.0)), "{rule}: no teeth");
    }
}

/// `--protocol authors` runs only where an experiment has one, and stores its cells apart.
#[test]
fn the_authors_protocol_is_refused_where_there_is_none() {
    use prospect::experiments::{Protocol, Settings};
    let s = Settings { protocol: Protocol::Authors, ..Default::default() };
    let e = experiments::run_with("interference", &s).unwrap_err().to_string();
    assert!(e.contains("protocol") && e.contains("continual"), "{e}");
    let s = Settings { cells: Some("c".into()), ..s };
    assert_eq!(s.cell_dir("continual").unwrap(), std::path::Path::new("c/continual-quick-authors"));
    let ours = Settings { protocol: Protocol::Ours, ..s };
    assert_eq!(ours.cell_dir("continual").unwrap(), std::path::Path::new("c/continual-quick"));
}

/// `--pretrained` is refused outside concept drift's authors' protocol (before any work), and
/// its cells are stored apart from the pretraining run's, by the file's contents.
#[test]
fn a_pretrained_network_is_for_authors_concept_drift_only_and_its_cells_stay_apart() {
    use prospect::experiments::{Protocol, Settings};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    std::fs::write(&a, b"one").unwrap();
    std::fs::write(&b, b"two").unwrap();
    let s = Settings { pretrained: Some(a.clone()), ..Default::default() };
    for (name, protocol) in [("concept-drift", Protocol::Ours), ("continual", Protocol::Authors)] {
        let e = experiments::run_with(name, &Settings { protocol, ..s.clone() }).unwrap_err();
        assert!(e.to_string().contains("pretrained"), "{name}: {e}");
    }
    // a bad file stops the run with the file's name (before any data is read or cell is run)
    let e = experiments::run_with(
        "concept-drift",
        &Settings { protocol: Protocol::Authors, ..s.clone() },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("a.safetensors") && e.contains("safetensors file"), "{e}");
    let s = Settings { protocol: Protocol::Authors, cells: Some("c".into()), ..s };
    let da = s.cell_dir("concept-drift").unwrap();
    let db = Settings { pretrained: Some(b), ..s.clone() }.cell_dir("concept-drift").unwrap();
    let plain = Settings { pretrained: None, ..s.clone() }.cell_dir("concept-drift").unwrap();
    assert_eq!(plain, std::path::Path::new("c/concept-drift-quick-authors"));
    assert!(da.to_string_lossy().starts_with("c/concept-drift-quick-authors-pretrained-"));
    assert!(da != db && da != plain, "{da:?} {db:?}");
    assert_eq!(da, s.cell_dir("concept-drift").unwrap(), "the name is a function of the file");
}

/// The authors' continual score reads only the first 84 epochs of both tasks.
#[test]
fn continual_authors_score_reads_the_first_84_epochs() {
    use prospect::experiments::continual::{early_score, AUTHORS_SCORE_EPOCHS};
    assert_eq!(AUTHORS_SCORE_EPOCHS, 84);
    let curve = |a: f64, b: f64| (0..160).map(|e| if e < 84 { a } else { b }).collect::<Vec<_>>();
    let c = [curve(0.2, 0.9), curve(0.4, 0.0)];
    assert!((early_score(&c, 84) - 0.3).abs() < 1e-12);
    assert!((early_score(&c, 160) - (0.2 * 84.0 + 0.9 * 76.0 + 0.4 * 84.0) / 320.0).abs() < 1e-12);
    assert!((early_score(&[vec![0.5; 10], vec![0.1; 10]], 84) - 0.3).abs() < 1e-12);
}
