//! Target alignment: after one weight update, how well does the change of the output point
//! at the target? `cos(y_after - y_before, y_target - y_before)` for deep linear networks.
//! Prospective configuration keeps it high at any depth; backprop's falls with depth.

use super::util::{cosine, label, par_map, pm, randn, METHODS};
use super::{Claim, Panel, Report, Series, Settings, Table};
use crate::error::Result;
use crate::infer::InferenceConfig;
use crate::layers::{Activation, Convention, Init};
use crate::learn::{self, Batch};
use crate::net::{MlpSpec, Net, Workspace};
use crate::optim::{OptimConfig, WeightOptim};

/// Width of every layer (input and output included).
pub const WIDTH: usize = 64;
/// Weight learning rate (the paper's).
pub const LR: f64 = 1e-3;
/// Node learning rate.
pub const GAMMA: f64 = 0.1;

/// Target alignment of one update of `method` on a linear net of `depth` weight layers,
/// width [`WIDTH`], one N(0, 1) input and N(0, 1) target drawn from `seed`, with `steps`
/// inference steps for PC.
///
/// # Errors
/// Engine errors (none expected).
pub fn alignment(method: &str, depth: usize, seed: u64, steps: usize) -> Result<f64> {
    let sizes = vec![WIDTH; depth + 1];
    let mut spec = MlpSpec::new(&sizes, Activation::Identity, Convention::Wf);
    spec.bias = false;
    spec.init = Init::XavierNormal;
    let mut net = Net::<f64>::mlp(&spec, seed)?;
    let x = randn::<f64>(1, WIDTH, 1.0, seed.wrapping_mul(7919).wrapping_add(1));
    let y = randn::<f64>(1, WIDTH, 1.0, seed.wrapping_mul(7919).wrapping_add(2));
    let inference =
        InferenceConfig { steps, gamma: GAMMA, halve_on_rise: true, ..Default::default() };
    let mut rule = learn::build::<f64>(method, &inference)?;
    let mut opt = WeightOptim::new(OptimConfig::sgd(LR), &net)?;
    let before = net.predict(&x)?;
    let mut ws = Workspace::new(&net, 1);
    rule.train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)?;
    let after = net.predict(&x)?;
    let change: Vec<f64> = after.data().iter().zip(before.data()).map(|(a, b)| a - b).collect();
    let wanted: Vec<f64> = y.data().iter().zip(before.data()).map(|(t, b)| t - b).collect();
    Ok(cosine(&change, &wanted))
}

/// Runs the experiment.
///
/// # Errors
/// Engine errors (none expected).
pub fn run(s: &Settings) -> Result<Report> {
    let depths: Vec<usize> = s.pick(vec![1, 2, 3, 5, 8, 10, 15, 20, 25], (1..=25).collect());
    let seeds = s.seeds(5, 20);
    let steps = 512;
    let jobs: Vec<(usize, usize, u64)> = (0..METHODS.len())
        .flat_map(|m| depths.iter().flat_map(move |&d| (0..seeds as u64).map(move |k| (m, d, k))))
        .collect();
    let out = par_map(&jobs, |&(m, d, k)| alignment(METHODS[m], d, k, steps));
    let mut table = Table::new(&["method", "depth", "seed", "alignment"]);
    let mut per = vec![vec![vec![]; depths.len()]; METHODS.len()];
    for (&(m, d, k), r) in jobs.iter().zip(out) {
        let a = r?;
        table.push(vec![METHODS[m].into(), d.to_string(), k.to_string(), format!("{a:.6}")]);
        let di = depths.iter().position(|&x| x == d).unwrap_or(0);
        per[m][di].push(a);
    }
    let xs: Vec<f64> = depths.iter().map(|&d| d as f64).collect();
    let series: Vec<Series> = METHODS
        .iter()
        .enumerate()
        .map(|(m, name)| Series::from_seeds(label(name), xs.clone(), &per[m]))
        .collect();
    let at = |m: usize, d: usize| depths.iter().position(|&x| x == d).map(|i| per[m][i].clone());
    let deep: Vec<usize> = depths.iter().copied().filter(|&d| d >= 10).collect();
    let pc_wins = deep.iter().all(|&d| {
        let (b, p) = (at(0, d).unwrap_or_default(), at(1, d).unwrap_or_default());
        super::util::mean_std(&p).0 > super::util::mean_std(&b).0
    });
    let last = *depths.last().unwrap_or(&1);
    let row = |d: usize| {
        format!(
            "BP {} / PC {}",
            pm(&at(0, d).unwrap_or_default(), 2),
            pm(&at(1, d).unwrap_or_default(), 2)
        )
    };
    let claims = vec![
        Claim::new("alignment at depth 1", "both ≈ 1", row(1), None),
        Claim::new(
            format!("alignment at depth {last}"),
            "PC ~0.7-1.0, BP falls toward 0-0.5",
            row(last),
            (last >= 20).then(|| {
                let (b, p) = (at(0, last).unwrap_or_default(), at(1, last).unwrap_or_default());
                let (b, p) = (super::util::mean(&b), super::util::mean(&p));
                (0.7..=1.0).contains(&p) && b <= 0.5
            }),
        ),
        Claim::new(
            "PC's mean above BP's at every depth ≥ 10",
            "yes",
            if pc_wins { "yes" } else { "no" },
            Some(pc_wins),
        ),
    ];
    Ok(Report {
        grids: Vec::new(),
        name: "target-alignment".into(),
        title: "Target alignment of one update vs depth (linear nets)".into(),
        setup: format!(
            "linear nets width {WIDTH}, depths {depths:?}, no bias, Xavier-normal init, one N(0,1) \
             input and target per seed, SGD lr {LR}; PC: T = {steps}, gamma = {GAMMA} (halved \
             when the energy rises); {seeds} seeds"
        ),
        claims,
        table,
        panels: vec![Panel {
            title: "Target alignment after one update".into(),
            x_label: "depth (weight layers)".into(),
            y_label: "cos(dy, target - y)".into(),
            series,
            ..Default::default()
        }],
        notes: vec![],
    })
}
