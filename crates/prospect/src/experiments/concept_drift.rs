//! Concept drift (Song et al. 2024): a network pretrained on Fashion-MNIST keeps learning
//! while the mapping from images to labels changes every 64 iterations. The paper reports PC
//! tracking the changing mapping with lower error than BP.
//!
//! The default protocol (our first reading of the authors' `nature_concept_drift`): 784-32-32-10
//! sigmoid MLP, `mu = W f(x)`, no bias, Xavier-uniform init, pretrained per seed by backprop
//! with Adam (lr 0.001, batch 60; Adam is the authors' CIFAR pretraining, not this one's) on
//! the whole training set; then 120 training examples per class, batch 32, and
//! every 64 iterations (an iteration is one pass over those examples) classes 5–9 are randomly
//! permuted among themselves (classes 0–4 keep their labels), starting at iteration 0; test
//! error on 100 test examples per class under the current mapping after every iteration;
//! squared error summed over the batch, SGD, PC with T = 128 and node rate 0.1 halved on
//! energy rise; the learning rate is chosen per rule by the mean test error over all iterations.
//!
//! `--protocol authors` ([`Protocol::Authors`]) follows their code (`base.yaml` after
//! `pre-FashionMNIST.yaml`) instead: one pretrained network shared by every seed and both
//! rules, pretrained by backprop with **SGD** (lr 0.01, summed squared loss, batch 60, 64
//! epochs, **±1 targets**); the drift phase starts from the pretrained subset and labels, and
//! after the training of every iteration `64 b` classes 5–9 are re-permuted and new subsets of
//! 120 training and 100 test images per class are drawn, with ±1 targets from then on (their
//! rebuilt loaders drop `target_min`); 3000 iterations; PC with their `PCTrainer` (T = 128
//! energy evaluations, node rate 0.1 halved after a step that did not lower the energy); no
//! learning-rate selection: Fig. 4g is the mean test error over all iterations per rate, Fig. 4f
//! the curves at lr 0.01 (theirs: PC 0.29 vs BP 0.40). With `--pretrained FILE`
//! ([`Settings::pretrained`], [`load_pretrained`]) the shared network is read from a file
//! instead, e.g. the checkpoint their drift runs load (`scripts/authors-checkpoint.py`
//! converts it).

use super::util::{self, label, mean, paper_learner, paper_net, pct, Cell, Learner, METHODS};
use super::{Claim, Panel, Protocol, Report, Series, Settings, Table, Verdict};
use crate::data::{self, Dataset, Split};
use crate::error::Result;
use crate::layers::{Activation, Init};
use crate::net::Net;
use crate::optim::{OptimConfig, Reduction};
use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Iterations between changes of the label mapping.
pub const PERIOD: usize = 64;
/// The paper's learning-rate grid.
pub const PAPER_LRS: [f64; 5] = [0.1, 0.05, 0.01, 0.005, 0.001];
/// The default (quick) grid: the values of the paper's grid around both rules' optima in a
/// one-seed scan of the paper's grid at the default settings (README, "Reproducing the paper", Protocol).
pub const QUICK_LRS: [f64; 3] = [0.01, 0.005, 0.001];

/// The label mapping of block `block`: classes 0–4 fixed, 5–9 permuted (seeded).
pub fn mapping(seed: u64, block: usize) -> Vec<u32> {
    let mut m: Vec<u32> = (0..10).collect();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(7_777_777).wrapping_add(block as u64));
    m[5..].shuffle(&mut rng);
    m
}

/// The learning rate of the paper's Fig. 4f curves.
pub const PAPER_LR: f64 = 0.01;
/// The paper's Fig. 4f values at [`PAPER_LR`]: mean test error over all iterations (BP, PC).
pub const PAPER_SCORE: (f64, f64) = (0.40, 0.29);

/// The authors' pretrained network: 784-32-32-10 sigmoid, Xavier-uniform (seed 0), trained by
/// backprop with SGD (lr 0.01, summed squared loss, batch 60) on ±1 targets for `epochs`
/// epochs of the whole training set.
///
/// # Errors
/// Shape errors only (the data are Fashion-MNIST's).
pub fn authors_pretrained(train: &Dataset, epochs: usize) -> Result<Net<f32>> {
    pretrained_at(train, epochs, 0.01)
}

/// The shared network loaded from a safetensors file instead of pretrained: a 784-32-32-10
/// sigmoid MLP without biases, tensors `edges.{0,1,2}.weight` (`[d_out, d_in]`), as
/// `scripts/authors-checkpoint.py --safetensors` writes the authors' `pre_model-*.pth`.
///
/// # Errors
/// [`crate::Error::Checkpoint`] naming the file and the tensor on a missing, extra or misshapen
/// tensor or a corrupt file; [`crate::Error::Io`] if it cannot be read.
pub fn load_pretrained(path: &std::path::Path) -> Result<Net<f32>> {
    let mut net = paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierUniform, 0)?;
    crate::checkpoint::load_model(path, &mut net)?;
    Ok(net)
}

/// [`authors_pretrained`] at learning rate `lr`.
fn pretrained_at(train: &Dataset, epochs: usize, lr: f64) -> Result<Net<f32>> {
    let net = paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierUniform, 0)?;
    let opt = OptimConfig { reduction: Reduction::Sum, ..OptimConfig::sgd(lr) };
    let mut pre = Learner::new(net, "bp", &Default::default(), opt)?;
    pre.target_min = -1.0;
    for e in 0..epochs {
        pre.epoch(train, 60, 7000 + e as u64)?;
    }
    Ok(pre.net)
}

/// One drift phase of the authors' protocol from the shared pretrained `pre`: the test error
/// after each of `iterations` iterations for rule `method` at `lr`, seed `k`.
fn authors_run(
    pre: &Net<f32>,
    (train_all, test_all): (&Dataset, &Dataset),
    method: &str,
    lr: f64,
    k: u64,
    iterations: usize,
) -> Result<Vec<f64>> {
    let inference = util::pctrainer_inference(128, 0.1, 0.5);
    let mut l = util::authors_learner(pre.clone(), method, &inference, lr)?;
    // period b: its mapping and fresh subsets (classes stay raw; the mapping relabels)
    type Period = (Dataset, (Tensor<f32>, Tensor<f32>), Vec<u32>);
    let draw = |b: usize| -> Result<Period> {
        let map = mapping(k, b);
        let mix = 100_000 * (k + 1) + b as u64;
        let train = train_all.per_class(120, 1000 + mix)?;
        let test = test_all.per_class(100, 2000 + mix)?;
        let mapped: Vec<u32> = test.labels.iter().map(|&c| map[c as usize]).collect();
        let x = Tensor::from_vec(test.len(), test.features(), test.x.clone());
        let y = Tensor::from_vec(test.len(), 10, data::one_hot(&mapped, 10));
        Ok((train, (x, y), map))
    };
    // iteration 0 trains on the pretraining's labels (0/1 targets, identity mapping)
    let mut train = train_all.per_class(120, 1000 + 100_000 * (k + 1) + 99_999)?;
    let mut map: Vec<u32> = (0..10).collect();
    let mut test = (Tensor::zeros(0, 0), Tensor::zeros(0, 0));
    let mut out = Vec::with_capacity(iterations);
    for it in 0..iterations {
        let order = data::permutation(train.len(), 9000 + 10_000 * k + it as u64);
        for idx in order.chunks(32) {
            l.step(&train, idx, Some(&map))?;
        }
        if it % PERIOD == 0 {
            (train, test, map) = draw(it / PERIOD)?;
            l.target_min = -1.0;
        }
        out.push(l.test_error(&test.0, &test.1)?);
    }
    Ok(out)
}

/// Runs the experiment.
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command if Fashion-MNIST is missing.
pub fn run(s: &Settings) -> Result<Report> {
    let seeds = s.seeds(2, 3);
    let blocks = s.pick(3, 47);
    let iterations = blocks * PERIOD;
    let pretrain_epochs = s.pick(2, 64);
    let (per_class, test_per_class, batch, steps, gamma) = (120, 100, 32, 128, 0.1);
    let authors = s.protocol == Protocol::Authors;
    let (blocks, iterations) = if authors {
        let it = s.pick(10 * PERIOD, 3000);
        (it.div_ceil(PERIOD), it)
    } else {
        (blocks, iterations)
    };
    let pretrain_epochs = if authors { s.pick(16, 64) } else { pretrain_epochs };
    let lrs: Vec<f64> =
        if authors { s.lrs(&[PAPER_LR], &PAPER_LRS) } else { s.lrs(&QUICK_LRS, &PAPER_LRS) };
    // a network loaded from --pretrained replaces the pretraining (read first: a bad file
    // stops the run before anything else)
    let loaded = match &s.pretrained {
        Some(path) => Some(load_pretrained(path)?),
        None => None,
    };
    let train_all = util::fashion(Split::Train)?;
    let test_all = util::fashion(Split::Test)?;
    let test = test_all.per_class(test_per_class, 99)?;
    let x_test = Tensor::from_vec(test.len(), test.features(), test.x.clone());
    // the shared pretrained network, made by the first cell that needs it (a count or a
    // merge of stored cells does not pretrain)
    let pre: std::sync::Mutex<Option<Net<f32>>> = std::sync::Mutex::new(loaded);
    let pretrained = || -> Result<Net<f32>> {
        let mut slot = pre.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(authors_pretrained(&train_all, pretrain_epochs)?);
        }
        Ok(slot.as_ref().expect("just set").clone())
    };
    let cells = util::grid(
        s,
        1,
        seeds,
        &|_, _| lrs.clone(),
        &|_| "drift".into(),
        &|m, _, lr, k| {
            if authors {
                let pre = pretrained()?;
                return authors_run(&pre, (&train_all, &test_all), METHODS[m], lr, k, iterations);
            }
            // pretraining: backprop with Adam on the whole training set
            let net = paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierUniform, k)?;
            let mut pre = Learner::new(net, "bp", &Default::default(), OptimConfig::adam(0.001))?;
            for e in 0..pretrain_epochs {
                pre.epoch(&train_all, 60, 7000 + 100 * k + e as u64)?;
            }
            let train = train_all.per_class(per_class, 1000 + k)?;
            let mut l = paper_learner(pre.net, METHODS[m], steps, gamma, lr)?;
            let mut out = Vec::with_capacity(iterations);
            for it in 0..iterations {
                let map = mapping(k, it / PERIOD);
                let order = data::permutation(train.len(), 9000 + 10_000 * k + it as u64);
                for idx in order.chunks(batch) {
                    l.step(&train, idx, Some(&map))?;
                }
                let mapped: Vec<u32> = test.labels.iter().map(|&c| map[c as usize]).collect();
                let y = Tensor::from_vec(test.len(), 10, data::one_hot(&mapped, 10));
                out.push(l.test_error(&x_test, &y)?);
            }
            Ok(out)
        },
        &|c: &Vec<f64>| mean(c),
    )?;
    let mut table =
        Table::new(&["method", "lr", "seed", "selected", "iteration", "block", "test_error"]);
    for (m, row) in cells.iter().enumerate() {
        let cell = &row[0];
        for (i, runs) in cell.runs.iter().enumerate() {
            for (k, c) in runs.iter().enumerate() {
                for (it, e) in c.iter().enumerate() {
                    table.push(vec![
                        METHODS[m].into(),
                        cell.lrs[i].to_string(),
                        k.to_string(),
                        (i == cell.best).to_string(),
                        (it + 1).to_string(),
                        (it / PERIOD).to_string(),
                        format!("{e:.4}"),
                    ]);
                }
            }
        }
    }
    let xs: Vec<f64> = (1..=iterations).map(|e| e as f64).collect();
    // the authors' Fig. 4f: both rules at lr 0.01 (when in the grid), no selection
    let at_lr = |cell: &Cell<Vec<f64>>, lr: f64| cell.lrs.iter().position(|&x| x == lr);
    let paper_i = |m: usize| at_lr(&cells[m][0], PAPER_LR).filter(|_| authors);
    let shown = |m: usize| paper_i(m).unwrap_or(cells[m][0].best);
    let over_time: Vec<Series> = (0..METHODS.len())
        .map(|m| {
            let runs = &cells[m][0].runs[shown(m)];
            let vals: Vec<Vec<f64>> =
                (0..iterations).map(|e| runs.iter().map(|r| r[e]).collect()).collect();
            Series::from_seeds(label(METHODS[m]), xs.clone(), &vals)
        })
        .collect();
    // error against iterations since the last change, averaged over blocks (per seed)
    let since: Vec<Series> = (0..METHODS.len())
        .map(|m| {
            let runs = &cells[m][0].runs[shown(m)];
            let vals: Vec<Vec<f64>> = (0..PERIOD)
                .map(|p| {
                    runs.iter()
                        .map(|c| {
                            let at: Vec<f64> = (0..blocks)
                                .filter_map(|b| c.get(b * PERIOD + p).copied())
                                .collect();
                            mean(&at)
                        })
                        .collect()
                })
                .collect();
            Series::from_seeds(label(METHODS[m]), (1..=PERIOD).map(|p| p as f64).collect(), &vals)
        })
        .collect();
    let score =
        |cell: &Cell<Vec<f64>>| -> Vec<f64> { cell.best_runs().iter().map(|c| mean(c)).collect() };
    let first = |cell: &Cell<Vec<f64>>| -> Vec<f64> {
        cell.best_runs()
            .iter()
            .map(|c| {
                mean(
                    &(0..blocks)
                        .flat_map(|b| c[b * PERIOD..b * PERIOD + 8].to_vec())
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    };
    let (bp, pc) = (&cells[0][0], &cells[1][0]);
    let claims = if authors {
        authors_claims(&cells, iterations)
    } else {
        vec![
            Claim::new(
                "mean test error over all iterations",
                "PC < BP",
                format!("BP {} / PC {}", pct(&score(bp)), pct(&score(pc))),
                Verdict::less(&score(pc), &score(bp)),
            ),
            Claim::new(
                "mean test error in the first 8 iterations after a change",
                "PC < BP",
                format!("BP {} / PC {}", pct(&first(bp)), pct(&first(pc))),
                Verdict::less(&first(pc), &first(bp)),
            ),
        ]
    };
    let mut notes = Vec::new();
    if authors {
        let pre = pretrained()?;
        let (x, y) = util::tensors(&test_all);
        let origin = match &s.pretrained {
            Some(p) => format!("loaded from {}", p.display()),
            None => format!("{pretrain_epochs} epochs of BP + SGD on +-1 targets"),
        };
        notes.push(format!(
            "The shared pretrained network ({origin}) has {:.1} % test error on the whole \
             Fashion-MNIST test set before the drift.",
            100.0 * util::error_rate(&pre, &x, &y)?
        ));
    }
    let start = match &s.pretrained {
        Some(p) => format!("one network loaded from {}", p.display()),
        None => format!(
            "Xavier-uniform init, one network pretrained by BP + SGD (lr 0.01, summed squared \
             loss, batch 60, +-1 targets) for {pretrain_epochs} epochs on all of Fashion-MNIST"
        ),
    };
    let setup = if authors {
        format!(
            "the authors' protocol: 784-32-32-10 sigmoid MLP, mu = W f(x), no bias, {start}, \
             shared by every seed and rule; then batch {batch}, {iterations} iterations (passes); \
             after the training of every iteration 64 b, classes 5-9 are re-permuted and fresh \
             subsets of {per_class} training and 100 test images per class drawn, +-1 targets \
             from then on; SGD on the summed squared error at each of {lrs:?} (no selection; \
             curves at lr {PAPER_LR}); PC: T = 128 energy evaluations, gamma = {gamma} halved \
             after each step that did not lower the energy; {seeds} seeds"
        )
    } else {
        format!(
            "784-32-32-10 sigmoid MLP, mu = W f(x), no bias, Xavier-uniform init, pretrained by \
             BP + Adam (lr 0.001, batch 60) for {pretrain_epochs} epochs on all of Fashion-MNIST; \
             then {per_class} examples per class, batch {batch}, {iterations} iterations (passes) \
             with classes 5-9 re-permuted every {PERIOD}; SGD on the summed squared error, lr \
             chosen per rule from {lrs:?} by the mean test error (selected: BP {} / PC {}); PC: \
             T = {steps}, gamma = {gamma} halved on energy rise; test error on {test_per_class} \
             test images per class; {seeds} seeds",
            bp.lr(),
            pc.lr()
        )
    };
    Ok(Report {
        grids: Vec::new(),
        name: if authors { "concept-drift-authors" } else { "concept-drift" }.into(),
        title: "Concept drift: labels of classes 5-9 permuted every 64 iterations".into(),
        setup,
        claims,
        table,
        panels: vec![
            Panel {
                title: if authors {
                    format!("Test error over time at lr {PAPER_LR} (Fig. 4f)")
                } else {
                    "Test error over time".into()
                },
                x_label: format!("iteration (mapping changes every {PERIOD})"),
                y_label: "test error".into(),
                series: over_time,
                ..Default::default()
            },
            Panel {
                title: "Test error after a change (mean over changes)".into(),
                x_label: "iterations since the mapping changed".into(),
                y_label: "test error".into(),
                series: since,
                ..Default::default()
            },
        ]
        .into_iter()
        .chain(if authors { per_lr_panel(&cells, iterations) } else { None })
        .collect(),
        notes,
    })
}

/// The authors' Fig. 4g: each rule's mean test error over all iterations against the learning
/// rate (mean ± std over seeds; no selection); none for a grid of one rate.
fn per_lr_panel(cells: &[Vec<Cell<Vec<f64>>>], iterations: usize) -> Option<Panel> {
    if cells[0][0].lrs.len() < 2 {
        return None;
    }
    let series = (0..METHODS.len())
        .map(|m| {
            let cell = &cells[m][0];
            let vals: Vec<Vec<f64>> =
                cell.runs.iter().map(|runs| per_seed(runs, 0, iterations)).collect();
            Series::from_seeds(label(METHODS[m]), cell.lrs.clone(), &vals)
        })
        .collect();
    Some(Panel {
        title: "Mean test error over all iterations per learning rate (Fig. 4g)".into(),
        x_label: "learning rate".into(),
        y_label: "mean test error".into(),
        log_x: true,
        series,
        ..Default::default()
    })
}

/// Each seed's mean test error over iterations `from..to` (clipped to its run).
fn per_seed(runs: &[Vec<f64>], from: usize, to: usize) -> Vec<f64> {
    runs.iter().map(|c| mean(&c[from.min(c.len())..to.min(c.len())])).collect()
}

/// The authors' claims: at lr 0.01 PC's mean test error over all iterations below BP's
/// (Fig. 4f), every other rate's numbers (Fig. 4g), and when the curves separate.
fn authors_claims(cells: &[Vec<Cell<Vec<f64>>>], iterations: usize) -> Vec<Claim> {
    let (bp, pc) = (&cells[0][0], &cells[1][0]);
    let mut claims = Vec::new();
    for (i, &lr) in bp.lrs.iter().enumerate() {
        let (b, p) = (per_seed(&bp.runs[i], 0, iterations), per_seed(&pc.runs[i], 0, iterations));
        let headline = lr == PAPER_LR;
        claims.push(Claim::new(
            format!(
                "mean test error over all iterations, lr {lr} ({})",
                if headline { "Fig. 4f" } else { "Fig. 4g" }
            ),
            if headline {
                format!(
                    "PC < BP: BP {:.0} % / PC {:.0} %",
                    100.0 * PAPER_SCORE.0,
                    100.0 * PAPER_SCORE.1
                )
            } else {
                "-".to_string()
            },
            format!("BP {} / PC {}", pct(&b), pct(&p)),
            if headline { Verdict::less(&p, &b) } else { Verdict::Info },
        ));
    }
    if let Some(i) = bp.lrs.iter().position(|&x| x == PAPER_LR) {
        // both rules of a seed start from the same network and see the same drift
        claims.push(util::paired_claim(
            format!("paired per seed at lr {PAPER_LR}: PC - BP of that score (observation)"),
            &per_seed(&pc.runs[i], 0, iterations),
            &per_seed(&bp.runs[i], 0, iterations),
        ));
        let split = (5 * PERIOD).min(iterations);
        let gap = |from: usize, to: usize| {
            mean(&per_seed(&bp.runs[i], from, to)) - mean(&per_seed(&pc.runs[i], from, to))
        };
        claims.push(Claim::new(
            format!("BP - PC gap at lr {PAPER_LR}: iterations 1-{split} / after"),
            "the curves separate after ~300-500 iterations",
            if split < iterations {
                format!(
                    "{:+.1} / {:+.1} pts",
                    100.0 * gap(0, split),
                    100.0 * gap(split, iterations)
                )
            } else {
                format!(
                    "{:+.1} pts (run too short to see a later separation)",
                    100.0 * gap(0, split)
                )
            },
            None,
        ));
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 784-feature images of 10 classes: class c lights pixels `78c .. 78c + 8` (plus noise).
    fn toy(n_per_class: usize, seed: u64) -> Dataset {
        let mut x = Vec::new();
        let mut labels = Vec::new();
        let noise = data::permutation(784 * 10 * n_per_class, seed);
        for c in 0..10u32 {
            for i in 0..n_per_class {
                let k = (c as usize * n_per_class + i) * 784;
                x.extend((0..784).map(|j| {
                    let on = j / 78 == c as usize && j % 78 < 8;
                    (if on { 1.0 } else { 0.0 }) + 0.02 * (noise[k + j] % 100) as f32 / 100.0
                }));
                labels.push(c);
            }
        }
        Dataset::new("toy", x, labels, [1, 28, 28], 10).unwrap()
    }

    /// Catches: a pretraining that depends on anything but its data (it is shared by every
    /// seed and rule), and targets that are not ±1 (0/1 one-hots leave the other outputs
    /// near 0 instead of pushing them to -1).
    #[test]
    fn authors_pretraining_is_shared_and_uses_plus_minus_one_targets() {
        let d = toy(20, 1);
        // (the toy's 8 bright pixels per class need a smaller rate than Fashion-MNIST's 0.01)
        let a = pretrained_at(&d, 100, 0.001).unwrap();
        let b = pretrained_at(&d, 100, 0.001).unwrap();
        let mut wa = Vec::new();
        let mut wb = Vec::new();
        for (la, lb) in a.layers.iter().zip(&b.layers) {
            la.for_each_param(&mut |_, p| wa.extend_from_slice(p.data()));
            lb.for_each_param(&mut |_, p| wb.extend_from_slice(p.data()));
        }
        assert_eq!(wa, wb, "the pretrained network must be one for every run");
        let x = Tensor::from_vec(d.len(), 784, d.x.clone());
        let mu = a.predict(&x).unwrap();
        let (mut off, mut n) = (0.0, 0);
        for r in 0..d.len() {
            for (j, &v) in mu.row(r).iter().enumerate() {
                if j != d.labels[r] as usize {
                    off += v as f64;
                    n += 1;
                }
            }
        }
        let off = off / n as f64;
        assert!(off < -0.5, "non-target outputs should approach -1, mean {off}");
        let err = util::error_rate(&a, &x, &util::tensors(&d).1).unwrap();
        assert!(err < 0.2, "the pretrained network should classify its data, error {err}");
    }

    /// Catches: a loaded network that is not the file's (e.g. the fresh seed-0 init kept, or
    /// tensors put into the wrong layer), and a file of another shape accepted.
    #[test]
    fn a_loaded_pretrained_network_is_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pre.safetensors");
        let net =
            paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierNormal, 7).unwrap();
        crate::checkpoint::save_model(&path, &net, &Default::default()).unwrap();
        let params = |n: &Net<f32>| {
            let mut all = Vec::new();
            for l in &n.layers {
                l.for_each_param(&mut |_, p| all.push(p.data().to_vec()));
            }
            all
        };
        let loaded = load_pretrained(&path).unwrap();
        assert_eq!(params(&loaded), params(&net));
        let fresh = paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierUniform, 0);
        assert_ne!(params(&loaded), params(&fresh.unwrap()));
        // and it computes what the file's network computes
        let x = Tensor::from_vec(2, 784, (0..2 * 784).map(|i| (i % 7) as f32 / 7.0).collect());
        assert_eq!(loaded.predict(&x).unwrap().data(), net.predict(&x).unwrap().data());
        let other = paper_net(&[784, 32, 10], Activation::Sigmoid, Init::XavierNormal, 7).unwrap();
        crate::checkpoint::save_model(&path, &other, &Default::default()).unwrap();
        let e = load_pretrained(&path).unwrap_err().to_string();
        assert!(e.contains("pre.safetensors") && e.contains("edges.1.weight"), "{e}");
    }

    /// Catches: the paired row subtracting the wrong way round, pairing across seeds, or
    /// counting the seeds where PC is higher.
    #[test]
    fn the_paired_row_is_pc_minus_bp_per_seed() {
        let cell = |runs: Vec<Vec<f64>>| Cell { lrs: vec![PAPER_LR], runs: vec![runs], best: 0 };
        let bp = cell(vec![vec![0.4, 0.4], vec![0.3, 0.3], vec![0.5, 0.5]]);
        let pc = cell(vec![vec![0.3, 0.3], vec![0.35, 0.35], vec![0.2, 0.2]]);
        let claims = authors_claims(&[vec![bp], vec![pc]], 2);
        let row = claims.iter().find(|c| c.what.starts_with("paired")).expect("a paired row");
        // differences -0.1, +0.05, -0.3: mean -11.7 pts, PC lower in 2 of 3
        assert!(
            row.ours.starts_with("-11.7 ± ") && row.ours.ends_with("PC lower in 2 of 3 seeds"),
            "{}",
            row.ours
        );
    }

    /// Catches: Fig. 4g's points taken from the wrong rate, rule or span, or without seeds.
    #[test]
    fn the_fig_4g_panel_is_each_rates_mean_over_iterations() {
        let cell = |runs: Vec<Vec<Vec<f64>>>| Cell { lrs: vec![0.05, 0.01], runs, best: 1 };
        // two rates x two seeds x three iterations; the third iteration lies past the span
        let bp = cell(vec![
            vec![vec![0.2, 0.4, 9.0], vec![0.4, 0.6, 9.0]],
            vec![vec![0.1, 0.1, 9.0], vec![0.3, 0.3, 9.0]],
        ]);
        let pc = cell(vec![
            vec![vec![0.5, 0.5, 9.0], vec![0.5, 0.5, 9.0]],
            vec![vec![0.0, 0.2, 9.0], vec![0.2, 0.2, 9.0]],
        ]);
        let one =
            |c: &Cell<Vec<f64>>| Cell { lrs: vec![0.01], runs: vec![c.runs[1].clone()], best: 0 };
        assert!(per_lr_panel(&[vec![one(&bp)], vec![one(&pc)]], 2).is_none(), "one rate: no panel");
        let p = per_lr_panel(&[vec![bp], vec![pc]], 2).expect("two rates: a panel");
        assert!(p.log_x && p.title.contains("4g"));
        assert_eq!((p.x_label.as_str(), p.y_label.as_str()), ("learning rate", "mean test error"));
        let (b, c) = (&p.series[0], &p.series[1]);
        assert_eq!((b.label.as_str(), c.label.as_str()), ("BP", "PC"));
        assert_eq!(b.x, vec![0.05, 0.01]);
        let close = |a: &[f64], e: &[f64]| a.iter().zip(e).all(|(a, e)| (a - e).abs() < 1e-12);
        // BP: seeds 0.3 / 0.5 at 0.05, 0.1 / 0.3 at 0.01; PC: 0.5 / 0.5, 0.1 / 0.2
        assert!(close(&b.mean, &[0.4, 0.2]), "{:?}", b.mean);
        assert!(close(&c.mean, &[0.5, 0.15]), "{:?}", c.mean);
        assert!(b.hi[0] > b.mean[0] && c.hi[0] == c.mean[0], "{:?} {:?}", b.hi, c.hi);
    }

    /// Catches: the drift phase not changing the mapping every period, or changing it off
    /// schedule: with lr 0 the test error only moves when a new mapping and subset are drawn.
    #[test]
    fn authors_drift_redraws_after_the_training_of_every_64th_iteration() {
        let d = toy(130, 2);
        let pre = pretrained_at(&d, 100, 0.001).unwrap();
        let errs = authors_run(&pre, (&d, &d), "bp", 0.0, 3, 2 * PERIOD + 1).unwrap();
        for b in 0..3 {
            let period = &errs[b * PERIOD..((b + 1) * PERIOD).min(errs.len())];
            assert!(period.iter().all(|&e| e == period[0]), "period {b}: {period:?}");
        }
        assert!(errs[PERIOD] != errs[PERIOD - 1] || errs[2 * PERIOD] != errs[2 * PERIOD - 1]);
    }
}
