//! Data efficiency (Song et al. 2024): a 784-32-32-10 sigmoid MLP trained on 60 … 6000
//! Fashion-MNIST examples per class. The paper reports PC ahead of BP with little data and
//! BP catching up as data grows.
//!
//! Protocol of the authors' code (`nature_small-arch-small-data`): `mu = W f(x)`, no bias,
//! Xavier-uniform init, squared error summed over the batch, SGD, batch 60, 64 epochs, PC with
//! their `PCTrainer` (T = 64 energy evaluations, node rate 1.0 halved after each step whose
//! energy did not fall); the learning rate is chosen per rule and
//! size from a grid by the minimum test error over epochs (the score reported here). As in
//! their loaders (`bp-il.yaml`), the test set of the small sizes (60, 300, 600 per class) is
//! capped at the same number of images per class ([`test_set`]).

use super::util::{self, paper_net, Cell, METHODS};
use super::{Panel, Report, Settings, Verdict};
use crate::data::{Dataset, Split};
use crate::error::Result;
use crate::layers::{Activation, Init};

/// The paper's learning-rate grid.
pub const PAPER_LRS: [f64; 17] = [
    0.1, 0.075, 0.05, 0.025, 0.01, 0.0075, 0.005, 0.0025, 0.001, 0.00075, 0.0005, 0.00025, 0.0001,
    0.000075, 0.00005, 0.000025, 0.00001,
];
/// The default (quick) grid: the values of the paper's grid around both rules' optima in a
/// one-seed scan of the paper's grid at the default settings (README, "Reproducing the paper", Protocol).
pub const QUICK_LRS: [f64; 3] = [0.01, 0.005, 0.0025];

/// Largest training size per class whose test set is capped to the same size per class.
pub const CAPPED_UP_TO: usize = 600;

/// The test set of a run with `n` training images per class: `n` images of every class (one
/// fixed draw, the same for every rule, rate and seed) up to [`CAPPED_UP_TO`], else all of it.
///
/// # Errors
/// [`crate::Error::Data`] if a class has fewer than `n` test images.
pub fn test_set(test: &Dataset, n: usize) -> Result<Dataset> {
    if n <= CAPPED_UP_TO {
        Ok(test.per_class(n, 3000)?)
    } else {
        Ok(test.clone())
    }
}

/// The paper's Fig. 4h values: (examples per class, BP, PC) test error.
pub const PAPER: [(usize, f64, f64); 2] = [(60, 0.268, 0.248), (3000, 0.138, 0.150)];

/// Runs the experiment.
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command if Fashion-MNIST is missing.
pub fn run(s: &Settings) -> Result<Report> {
    let sizes: Vec<usize> = s.pick(vec![60, 300, 600], vec![60, 300, 600, 3000, 6000]);
    let seeds = s.seeds(2, 3);
    let epochs = s.pick(16, 64);
    let (t_evals, gamma, batch) = (64, 1.0, 60);
    let inference = util::pctrainer_inference(t_evals, gamma, 0.5);
    let lrs: Vec<f64> = s.lrs(&QUICK_LRS, &PAPER_LRS);
    let train_all = util::fashion(Split::Train)?;
    let test_all = util::fashion(Split::Test)?;
    let tests: Vec<_> = sizes
        .iter()
        .map(|&n| Ok(util::tensors(&test_set(&test_all, n)?)))
        .collect::<Result<_>>()?;
    let min = |c: &Vec<f64>| c.iter().copied().fold(f64::INFINITY, f64::min);
    let cells = util::grid(
        s,
        sizes.len(),
        seeds,
        &|_, _| lrs.clone(),
        &|c| format!("{} per class", sizes[c]),
        &|m, c, lr, k| {
            let train = train_all.per_class(sizes[c], 1000 + k)?;
            let net = paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierUniform, k)?;
            let mut l = util::authors_learner(net, METHODS[m], &inference, lr)?;
            util::curve(&mut l, &train, &tests[c], batch, epochs, 2000 + k)
        },
        &min,
    )?;
    let table = util::curve_table(&cells, "per_class", |c| sizes[c].to_string(), "epoch");
    let scores = |cell: &Cell<Vec<f64>>| -> Vec<f64> { cell.best_runs().iter().map(min).collect() };
    let xs: Vec<f64> = sizes.iter().map(|&n| n as f64).collect();
    let series = util::per_condition(&cells, &xs, scores);
    let mut claims = util::gap_claims(
        &cells,
        scores,
        |c| format!("min test error, {} per class", sizes[c]),
        "BP catches up (gap smaller)",
    );
    for (c, claim) in claims.iter_mut().enumerate() {
        if sizes[c] >= 3000 {
            // the authors' figure: BP ahead from 3000 per class up
            claim.paper = "BP < PC".into();
            claim.verdict = Verdict::less(&scores(&cells[0][c]), &scores(&cells[1][c]));
        }
        if let Some(&(_, bp, pc)) = PAPER.iter().find(|p| p.0 == sizes[c]) {
            claim.paper = format!(
                "{}; Fig. 4h: BP {:.1} % / PC {:.1} %",
                claim.paper,
                100.0 * bp,
                100.0 * pc
            );
        }
    }
    Ok(Report {
        grids: Vec::new(),
        name: "data-efficiency".into(),
        title: "Data efficiency: test error vs training-set size".into(),
        setup: format!(
            "784-32-32-10 sigmoid MLP, mu = W f(x), no bias, Xavier-uniform init; {sizes:?} \
             Fashion-MNIST examples per class, batch {batch}, {epochs} epochs, SGD on the summed \
             squared error, lr chosen per rule and size from {lrs:?} by the minimum test error \
             over epochs (selected: BP {} / PC {}); PC: T = {t_evals} energy evaluations, gamma = \
             {gamma} halved after each step whose energy did not fall; test set capped at the training size per class up to \
             {CAPPED_UP_TO} per class, whole above; {seeds} seeds",
            util::selected_lrs(&cells, 0),
            util::selected_lrs(&cells, 1)
        ),
        claims,
        table,
        panels: vec![Panel {
            title: "Minimum test error vs examples per class".into(),
            x_label: "training examples per class".into(),
            y_label: "min test error".into(),
            log_x: true,
            series,
            ..Default::default()
        }],
        notes: vec![],
    })
}
