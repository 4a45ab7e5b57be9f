//! Deep narrow networks (Song et al. 2024): width-64 LeakyReLU MLPs of increasing depth
//! trained on 60 Fashion-MNIST examples per class. The paper reports that PC's test error
//! grows much less with depth than BP's.
//!
//! Protocol of the authors' code (`nature_search_depth/base-focus`): `mu = W f(x)`, no bias,
//! Xavier-normal init, squared error summed over the batch, SGD, batch 60, 64 epochs, PC with
//! their `PCTrainer` (T = 128 energy evaluations, node rate 0.1 halved after each step whose
//! energy did not fall); the learning rate is chosen per rule and depth from their grid by the
//! mean test error over training (the score reported here). The claim tested is theirs as
//! their figure shows it: PC below BP at every depth ≥ 2, the gap wider at the deepest net
//! than at depth 2 (their Fig. 3h: depth 2 PC 29.7 / BP 32.0 %, depth 15 PC 41.7 / BP 53.3 %).

use super::util::{self, mean, paper_net, pct, Cell, METHODS};
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
/// 0.005, PC 0.001 and ≥ 0.5; see the README's "Reproducing the paper", Protocol).
pub const QUICK_LRS: [f64; 4] = [1.0, 0.1, 0.01, 0.001];

/// The paper's Fig. 3h values: (depth, BP, PC) mean test error at the best rate.
pub const PAPER: [(usize, f64, f64); 2] = [(2, 0.320, 0.297), (15, 0.533, 0.417)];

/// Runs the experiment.
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command if Fashion-MNIST is missing.
pub fn run(s: &Settings) -> Result<Report> {
    let depths: Vec<usize> = s.pick(vec![2, 8, 15], vec![1, 2, 4, 6, 8, 10, 12, 14, 15]);
    let seeds = s.seeds(2, 3);
    let epochs = s.pick(12, 64);
    let (t_evals, gamma) = (128, 0.1);
    let inference = util::pctrainer_inference(t_evals, gamma, 0.5);
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
            let mut l = util::authors_learner(net, METHODS[m], &inference, lr)?;
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
    let paper = |d: usize| {
        PAPER.iter().find(|p| p.0 == d).map_or("-".to_string(), |p| {
            format!("BP {:.1} % / PC {:.1} %", 100.0 * p.1, 100.0 * p.2)
        })
    };
    let gap = |c: usize| mean(&scores(&cells[0][c])) - mean(&scores(&cells[1][c]));
    // the first depth with a hidden layer: depth 1 is a linear-readout net where PC = BP
    let first = depths.iter().position(|&d| d >= 2).unwrap_or(0);
    let mut claims: Vec<Claim> = (0..depths.len())
        .map(|c| {
            let (b, p) = (scores(&cells[0][c]), scores(&cells[1][c]));
            let verdict = if depths[c] >= 2 { Verdict::less(&p, &b) } else { Verdict::Info };
            Claim::new(
                format!("mean test error, depth {}", depths[c]),
                if depths[c] >= 2 {
                    format!("PC < BP; {}", paper(depths[c]))
                } else {
                    "-".to_string()
                },
                format!("BP {} / PC {} (gap {:+.1} pts)", pct(&b), pct(&p), 100.0 * gap(c)),
                verdict,
            )
        })
        .collect();
    let (pg2, pg15) = (PAPER[0].1 - PAPER[0].2, PAPER[1].1 - PAPER[1].2);
    claims.push(Claim::new(
        format!("BP - PC gap, depth {} → {}", depths[first], depths[last]),
        format!("wider with depth: {:+.1} → {:+.1} pts (depth 2 → 15)", 100.0 * pg2, 100.0 * pg15),
        format!("{:+.1} → {:+.1} pts", 100.0 * gap(first), 100.0 * gap(last)),
        Some(gap(last) > gap(first)),
    ));
    let (gb, gp) = (
        mean(&scores(&cells[0][last])) - mean(&scores(&cells[0][first])),
        mean(&scores(&cells[1][last])) - mean(&scores(&cells[1][first])),
    );
    claims.push(Claim::new(
        format!("error growth, depth {} → {}", depths[first], depths[last]),
        format!(
            "BP {:+.1} / PC {:+.1} pts (depth 2 → 15)",
            100.0 * (PAPER[1].1 - PAPER[0].1),
            100.0 * (PAPER[1].2 - PAPER[0].2)
        ),
        format!("BP {:+.1} pts / PC {:+.1} pts", 100.0 * gb, 100.0 * gp),
        None,
    ));
    claims.push(Claim::new(
        format!("final test error, depth {}", depths[last]),
        "-",
        format!("BP {} / PC {}", pct(&finals(&cells[0][last])), pct(&finals(&cells[1][last]))),
        None,
    ));
    Ok(Report {
        grids: Vec::new(),
        name: "depth".into(),
        title: "Deep narrow networks: test error vs depth".into(),
        setup: format!(
            "MLPs 784-{WIDTH}-...-{WIDTH}-10, LeakyReLU(0.01), mu = W f(x), no bias, Xavier-normal \
             init; depth = weight layers {depths:?}; {per_class} Fashion-MNIST examples per class, \
             batch {batch}, {epochs} epochs, SGD on the summed squared error, lr chosen per rule \
             and depth from {lrs:?} by the mean test error over epochs (selected: BP {} / PC {}); \
             PC: T = {t_evals} energy evaluations, gamma = {gamma} halved after each step whose \
             energy did not fall; full test set; {seeds} seeds",
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
