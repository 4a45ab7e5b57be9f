//! Online learning (Song et al. 2024): a 784-32-32-10 sigmoid MLP on Fashion-MNIST trained
//! with batch size 1 and with larger batches. The paper reports PC learning better than BP
//! online (batch size 1), with the gap closing as batches grow.
//!
//! Protocol of the authors' code (`nature_none_batch_new_analysis`): `mu = W f(x)`, no bias,
//! Xavier-uniform init, squared error summed over the batch, SGD; an "iteration" is 200 batches
//! from a fresh shuffle of the training set, followed by a test evaluation; 64 iterations;
//! PC with T = 64 and node rate 0.1 halved on energy rise; the learning rate is chosen per rule
//! and batch size from a per-batch-size grid by the mean test error over iterations.

use super::util::{self, mean, paper_learner, paper_net, Cell, METHODS};
use super::{Panel, Report, Settings};
use crate::data::{self, Split};
use crate::error::Result;
use crate::layers::{Activation, Init};

/// Batches per iteration (between test evaluations).
pub const BATCHES_PER_ITERATION: usize = 200;

/// The paper's learning-rate grid for batch size `b`.
pub fn paper_lrs(b: usize) -> Vec<f64> {
    match b {
        1 => vec![0.05, 0.10, 0.15, 0.20, 0.25, 0.30],
        8 => vec![0.01, 0.025, 0.05, 0.10],
        16 => vec![0.0075, 0.01, 0.025, 0.05],
        32 => vec![0.005, 0.0075, 0.01, 0.025, 0.05],
        _ => vec![0.001, 0.0025, 0.005, 0.0075, 0.01],
    }
}

/// The default (quick) grid for batch size `b`: three values around both rules' optima in a
/// one-seed scan of 0.001…0.3 at the default settings (README, "Reproducing the paper", Protocol).
pub fn quick_lrs(b: usize) -> Vec<f64> {
    match b {
        1 => vec![0.2, 0.1, 0.05],
        8 => vec![0.05, 0.025, 0.01],
        _ => vec![0.01, 0.005, 0.0025],
    }
}

/// Runs the experiment.
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command if Fashion-MNIST is missing.
pub fn run(s: &Settings) -> Result<Report> {
    let batches: Vec<usize> = s.pick(vec![1, 8, 64], vec![1, 8, 16, 32, 64]);
    let seeds = s.seeds(2, 3);
    let iterations = s.pick(16, 64);
    let steps = 64;
    let gamma = 0.1;
    let train = util::fashion(Split::Train)?;
    let test = util::tensors(&util::fashion(Split::Test)?);
    let cells = util::grid(
        s,
        batches.len(),
        seeds,
        &|_, c| s.lrs(&quick_lrs(batches[c]), &paper_lrs(batches[c])),
        &|c| format!("batch {}", batches[c]),
        &|m, c, lr, k| {
            let b = batches[c];
            let net = paper_net(&[784, 32, 32, 10], Activation::Sigmoid, Init::XavierUniform, k)?;
            let mut l = paper_learner(net, METHODS[m], steps, gamma, lr)?;
            let mut out = Vec::with_capacity(iterations);
            for it in 0..iterations {
                let order = data::permutation(train.len(), 3000 + 1000 * k + it as u64);
                for idx in order.chunks(b).take(BATCHES_PER_ITERATION) {
                    l.step(&train, idx, None)?;
                }
                out.push(l.test_error(&test.0, &test.1)?);
            }
            Ok(out)
        },
        &|c: &Vec<f64>| mean(c),
    )?;
    let table = util::curve_table(&cells, "batch_size", |c| batches[c].to_string(), "iteration");
    let scores =
        |cell: &Cell<Vec<f64>>| -> Vec<f64> { cell.best_runs().iter().map(|c| mean(c)).collect() };
    let xs: Vec<f64> = batches.iter().map(|&b| b as f64).collect();
    let by_batch = util::per_condition(&cells, &xs, scores);
    let it_x: Vec<f64> = (1..=iterations).map(|e| (e * BATCHES_PER_ITERATION) as f64).collect();
    let curves = util::best_curves(&cells, 0, &it_x);
    let claims = util::gap_claims(
        &cells,
        scores,
        |c| format!("mean test error, batch size {}", batches[c]),
        "gap smaller than at batch size 1",
    );
    Ok(Report {
        grids: Vec::new(),
        name: "online".into(),
        title: "Online learning: batch size 1 vs larger batches".into(),
        setup: format!(
            "784-32-32-10 sigmoid MLP, mu = W f(x), no bias, Xavier-uniform init; Fashion-MNIST \
             (all 60000), batch sizes {batches:?}, {iterations} iterations of \
             {BATCHES_PER_ITERATION} batches, SGD on the summed squared error, lr chosen per rule \
             and batch size by the mean test error over iterations (selected: BP {} / PC {}); \
             PC: T = {steps}, gamma = {gamma} halved on energy rise; full test set; {seeds} seeds",
            util::selected_lrs(&cells, 0),
            util::selected_lrs(&cells, 1)
        ),
        claims,
        table,
        panels: vec![
            Panel {
                title: "Mean test error over training".into(),
                x_label: "batch size".into(),
                y_label: "mean test error".into(),
                log_x: true,
                series: by_batch,
                ..Default::default()
            },
            Panel {
                title: format!("Test error during training, batch size {}", batches[0]),
                x_label: "batches trained".into(),
                y_label: "test error".into(),
                series: curves,
                ..Default::default()
            },
        ],
        notes: vec![],
    })
}
