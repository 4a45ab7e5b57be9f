//! Online learning (Song et al. 2024): a 784-32-32-10 sigmoid MLP on Fashion-MNIST trained
//! with batch size 1 and with larger batches. The paper reports PC learning better than BP
//! online (batch size 1), with the gap closing as batches grow.
//!
//! Protocol of the authors' code (`nature_none_batch_new_analysis`): `mu = W f(x)`, no bias,
//! Xavier-uniform init, squared error summed over the batch, SGD; an "iteration" is 200 batches
//! from a fresh shuffle of the training set, followed by a test evaluation; 64 iterations;
//! PC with T = 64 and node rate 0.1 halved on energy rise; the learning rate is chosen per rule
//! and batch size from a per-batch-size grid by the mean test error over iterations.

use super::util::{self, label, mean, paper_learner, paper_net, pct, Cell, METHODS};
use super::{Claim, Panel, Report, Series, Settings, Table, Verdict};
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
/// one-seed scan of 0.001…0.3 at the default settings (see docs/repro.md).
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
    let mut table =
        Table::new(&["method", "batch_size", "lr", "seed", "selected", "iteration", "test_error"]);
    for (m, row) in cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            for (i, runs) in cell.runs.iter().enumerate() {
                for (k, curve) in runs.iter().enumerate() {
                    for (e, err) in curve.iter().enumerate() {
                        table.push(vec![
                            METHODS[m].into(),
                            batches[c].to_string(),
                            cell.lrs[i].to_string(),
                            k.to_string(),
                            (i == cell.best).to_string(),
                            (e + 1).to_string(),
                            format!("{err:.4}"),
                        ]);
                    }
                }
            }
        }
    }
    let scores =
        |cell: &Cell<Vec<f64>>| -> Vec<f64> { cell.best_runs().iter().map(|c| mean(c)).collect() };
    let xs: Vec<f64> = batches.iter().map(|&b| b as f64).collect();
    let by_batch: Vec<Series> = (0..METHODS.len())
        .map(|m| {
            let v: Vec<Vec<f64>> = cells[m].iter().map(scores).collect();
            Series::from_seeds(label(METHODS[m]), xs.clone(), &v)
        })
        .collect();
    let it_x: Vec<f64> = (1..=iterations).map(|e| (e * BATCHES_PER_ITERATION) as f64).collect();
    let curves: Vec<Series> = (0..METHODS.len())
        .map(|m| {
            let runs = cells[m][0].best_runs();
            let vals: Vec<Vec<f64>> =
                (0..iterations).map(|e| runs.iter().map(|c| c[e]).collect()).collect();
            Series::from_seeds(label(METHODS[m]), it_x.clone(), &vals)
        })
        .collect();
    let gap = |c: usize| mean(&scores(&cells[0][c])) - mean(&scores(&cells[1][c]));
    let last = batches.len() - 1;
    let mut claims = Vec::new();
    for (c, b) in batches.iter().enumerate() {
        let (bp, pc) = (scores(&cells[0][c]), scores(&cells[1][c]));
        let (paper, holds) = if c == 0 {
            ("PC < BP", Verdict::less(&pc, &bp))
        } else if c == last {
            ("gap smaller than at batch size 1", Some(gap(c) < gap(0)).into())
        } else {
            ("-", Verdict::Info)
        };
        claims.push(Claim::new(
            format!("mean test error, batch size {b}"),
            paper,
            format!("BP {} / PC {} (gap {:+.1} pts)", pct(&bp), pct(&pc), 100.0 * gap(c)),
            holds,
        ));
    }
    let lr_of = |m: usize| -> String {
        cells[m].iter().map(|c| format!("{}", c.lr())).collect::<Vec<_>>().join("/")
    };
    Ok(Report {
        name: "online".into(),
        title: "Online learning: batch size 1 vs larger batches".into(),
        setup: format!(
            "784-32-32-10 sigmoid MLP, mu = W f(x), no bias, Xavier-uniform init; Fashion-MNIST \
             (all 60000), batch sizes {batches:?}, {iterations} iterations of \
             {BATCHES_PER_ITERATION} batches, SGD on the summed squared error, lr chosen per rule \
             and batch size by the mean test error over iterations (selected: BP {} / PC {}); \
             PC: T = {steps}, gamma = {gamma} halved on energy rise; full test set; {seeds} seeds",
            lr_of(0),
            lr_of(1)
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
