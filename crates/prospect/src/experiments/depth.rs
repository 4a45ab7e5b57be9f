//! Deep narrow networks (Song et al. 2024): width-64 LeakyReLU MLPs of increasing depth
//! trained on 60 Fashion-MNIST examples per class. The paper reports that PC's test error
//! grows much less with depth than BP's.
//!
//! Protocol of the authors' code (`nature_search_depth`): `mu = W f(x)`, no bias, Xavier-normal
//! init, squared error summed over the batch, SGD, batch 60, 64 epochs, PC with T = 128 and
//! node rate 0.1 halved when the energy rises; the learning rate is chosen per rule and depth
//! from a grid by the mean test error over training (the score reported here).

use super::util::{self, mean, paper_learner, paper_net, pct, Cell, METHODS};
use super::{Claim, Panel, Report, Settings, Verdict};
use crate::data::Split;
use crate::error::Result;
use crate::layers::{Activation, Init};

/// Hidden width.
pub const WIDTH: usize = 64;
/// The paper's learning-rate grid.
pub const PAPER_LRS: [f64; 13] =
    [5.0, 1.0, 0.5, 0.1, 0.05, 0.01, 0.005, 0.001, 5e-4, 1e-4, 5e-5, 1e-5, 5e-6];
/// The default (quick) grid: the decades 1 … 0.001 of the paper's grid, which bracket both
/// rules' optima at depths 2 and 15 in a one-seed scan at the default settings (BP 0.001 and
/// 0.005, PC 0.001 and ≥ 0.5; see docs/repro.md).
pub const QUICK_LRS: [f64; 4] = [1.0, 0.1, 0.01, 0.001];

/// Runs the experiment.
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command if Fashion-MNIST is missing.
pub fn run(s: &Settings) -> Result<Report> {
    let depths: Vec<usize> = s.pick(vec![2, 8, 15], vec![1, 2, 4, 6, 8, 10, 12, 14, 15]);
    let seeds = s.seeds(2, 3);
    let epochs = s.pick(12, 64);
    let steps = 128;
    let gamma = 0.1;
    let (batch, per_class) = (60, 60);
    let lrs: Vec<f64> = s.lrs(&QUICK_LRS, &PAPER_LRS);
    let train_all = util::fashion(Split::Train)?;
    let test = util::tensors(&util::fashion(Split::Test)?);
    let cells = util::grid(
        s,
        depths.len(),
        seeds,
        &|_, _| lrs.clone(),
        &|c| format!("depth {}", depths[c]),
        &|m, c, lr, k| {
            let d = depths[c];
            let train = train_all.per_class(per_class, 1000 + k)?;
            let mut sizes = vec![WIDTH; d + 1];
            sizes[0] = 784;
            sizes[d] = 10;
            let net = paper_net(&sizes, Activation::LeakyRelu(0.01), Init::XavierNormal, k)?;
            let mut l = paper_learner(net, METHODS[m], steps, gamma, lr)?;
            util::curve(&mut l, &train, &test, batch, epochs, 2000 + k)
        },
        &|c: &Vec<f64>| mean(c),
    )?;
    let table = util::curve_table(&cells, "depth", |c| depths[c].to_string(), "epoch");
    let scores =
        |cell: &Cell<Vec<f64>>| -> Vec<f64> { cell.best_runs().iter().map(|c| mean(c)).collect() };
    let finals = |cell: &Cell<Vec<f64>>| -> Vec<f64> {
        cell.best_runs().iter().map(|c| *c.last().unwrap_or(&f64::NAN)).collect()
    };
    let xs: Vec<f64> = depths.iter().map(|&d| d as f64).collect();
    let by_depth = util::per_condition(&cells, &xs, scores);
    let last = depths.len() - 1;
    let epochs_x: Vec<f64> = (1..=epochs).map(|e| e as f64).collect();
    let curves = util::best_curves(&cells, last, &epochs_x);
    let (b0, p0) = (scores(&cells[0][0]), scores(&cells[1][0]));
    let (bl, pl) = (scores(&cells[0][last]), scores(&cells[1][last]));
    let (gb, gp) = (mean(&bl) - mean(&b0), mean(&pl) - mean(&p0));
    let claims = vec![
        Claim::new(
            format!("mean test error, depth {}", depths[0]),
            "similar",
            format!("BP {} / PC {}", pct(&b0), pct(&p0)),
            None,
        ),
        Claim::new(
            format!("mean test error, depth {}", depths[last]),
            "PC well below BP",
            format!("BP {} / PC {}", pct(&bl), pct(&pl)),
            Verdict::less(&pl, &bl),
        ),
        Claim::new(
            format!("error growth, depth {} → {}", depths[0], depths[last]),
            "PC's much smaller than BP's (< half)",
            format!("BP {:+.1} pts / PC {:+.1} pts", 100.0 * gb, 100.0 * gp),
            Some(gp < 0.5 * gb),
        ),
        Claim::new(
            format!("final test error, depth {}", depths[last]),
            "-",
            format!("BP {} / PC {}", pct(&finals(&cells[0][last])), pct(&finals(&cells[1][last]))),
            None,
        ),
    ];
    Ok(Report {
        grids: Vec::new(),
        name: "depth".into(),
        title: "Deep narrow networks: test error vs depth".into(),
        setup: format!(
            "MLPs 784-{WIDTH}-...-{WIDTH}-10, LeakyReLU(0.01), mu = W f(x), no bias, Xavier-normal \
             init; depth = weight layers {depths:?}; {per_class} Fashion-MNIST examples per class, \
             batch {batch}, {epochs} epochs, SGD on the summed squared error, lr chosen per rule \
             and depth from {lrs:?} by the mean test error over epochs (selected: BP {} / PC {}); \
             PC: T = {steps}, gamma = {gamma} halved on energy rise; full test set; {seeds} seeds",
            util::selected_lrs(&cells, 0),
            util::selected_lrs(&cells, 1)
        ),
        claims,
        table,
        panels: vec![
            Panel {
                title: "Mean test error over training vs depth".into(),
                x_label: "depth (weight layers)".into(),
                y_label: "mean test error".into(),
                series: by_depth,
                ..Default::default()
            },
            Panel {
                title: format!("Test error during training, depth {}", depths[last]),
                x_label: "epoch".into(),
                y_label: "test error".into(),
                series: curves,
                ..Default::default()
            },
        ],
        notes: vec![],
    })
}
