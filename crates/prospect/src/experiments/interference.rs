//! Interference ("the bear by the river"): a 1→1→2 linear network whose output A is
//! already right (target 1) while output B must move from 1 to 0. Backprop drags A down
//! with B; prospective configuration first infers the hidden activity that serves both
//! outputs, so A barely moves.

use super::util::{label, METHODS};
use super::{Claim, Panel, Report, Series, Settings, Table};
use crate::error::Result;
use crate::infer::InferenceConfig;
use crate::layers::{Activation, Convention};
use crate::learn::{self, Batch};
use crate::net::{MlpSpec, Net, Workspace};
use crate::optim::{OptimConfig, WeightOptim};
use crate::tensor::Tensor;

/// Weight learning rate (the paper's).
pub const LR: f64 = 0.2;
/// Inference steps per update (the paper's T).
pub const STEPS: usize = 128;
/// Node learning rate: the hidden node's curvature is `1 + |W_2|² ≈ 3`, so 0.1 contracts
/// the error by ~0.7 per step and converges to machine precision in 128 steps.
pub const GAMMA: f64 = 0.1;

/// The 1→1→2 linear network with every weight 1 and no bias.
pub fn network() -> Result<Net<f64>> {
    let mut spec = MlpSpec::new(&[1, 1, 2], Activation::Identity, Convention::Wf);
    spec.bias = false;
    let mut net = Net::<f64>::mlp(&spec, 0)?;
    for layer in &mut net.layers {
        layer.for_each_param_mut(&mut |_, p| p.fill(1.0));
    }
    Ok(net)
}

/// Outputs `(A, B)` before any update and after each of `updates` updates with `method`.
///
/// # Errors
/// Engine errors (none expected for these settings).
pub fn trajectory(method: &str, updates: usize) -> Result<Vec<(f64, f64)>> {
    let mut net = network()?;
    let inference =
        InferenceConfig { steps: STEPS, gamma: GAMMA, halve_on_rise: true, ..Default::default() };
    let mut rule = learn::build::<f64>(method, &inference)?;
    let mut opt = WeightOptim::new(OptimConfig::sgd(LR), &net)?;
    let x = Tensor::from_vec(1, 1, vec![1.0]);
    let y = Tensor::from_vec(1, 2, vec![1.0, 0.0]);
    let mut ws = Workspace::new(&net, 1);
    let out = |net: &Net<f64>| -> Result<(f64, f64)> {
        let p = net.predict(&x)?;
        Ok((p.at(0, 0), p.at(0, 1)))
    };
    let mut traj = vec![out(&net)?];
    for index in 0..updates {
        rule.train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)?;
        traj.push(out(&net)?);
    }
    Ok(traj)
}

/// Runs the experiment (deterministic: there is one seed).
///
/// # Errors
/// Engine errors (none expected).
pub fn run(s: &Settings) -> Result<Report> {
    let updates = 20;
    let mut table = Table::new(&["method", "update", "output_a", "output_b"]);
    let mut panel_a = Panel {
        title: "Output A (target 1, already correct)".into(),
        x_label: "update".into(),
        y_label: "output A".into(),
        ..Default::default()
    };
    let mut panel_b = Panel {
        title: "Output B (target 0)".into(),
        x_label: "update".into(),
        y_label: "output B".into(),
        ..Default::default()
    };
    let mut lowest = Vec::new();
    for method in METHODS {
        let traj = trajectory(method, updates)?;
        s.log(format!("{method}: A = {:?}", traj.iter().map(|t| t.0).collect::<Vec<_>>()));
        for (u, (a, b)) in traj.iter().enumerate() {
            table.push(vec![method.into(), u.to_string(), format!("{a:.6}"), format!("{b:.6}")]);
        }
        let xs: Vec<f64> = (0..traj.len()).map(|u| u as f64).collect();
        let a: Vec<Vec<f64>> = traj.iter().map(|t| vec![t.0]).collect();
        let b: Vec<Vec<f64>> = traj.iter().map(|t| vec![t.1]).collect();
        panel_a.series.push(Series::from_seeds(label(method), xs.clone(), &a));
        panel_b.series.push(Series::from_seeds(label(method), xs, &b));
        let (at, min) = traj
            .iter()
            .enumerate()
            .map(|(u, t)| (u, t.0))
            .fold((0, f64::INFINITY), |m, (u, a)| if a < m.1 { (u, a) } else { m });
        lowest.push((traj[1].0, at, min));
    }
    let (bp, pc) = (lowest[0], lowest[1]);
    let claims = vec![
        Claim::new(
            "BP: output A after update 1",
            "0.80",
            format!("{:.3}", bp.0),
            Some((bp.0 - 0.8).abs() < 0.01),
        ),
        Claim::new(
            "BP: lowest output A",
            "≈ 0.76 (update 2)",
            format!("{:.3} (update {})", bp.2, bp.1),
            Some(bp.2 < 0.8),
        ),
        Claim::new(
            "PC: lowest output A",
            "≈ 0.93",
            format!("{:.3} (update {})", pc.2, pc.1),
            Some(pc.2 > 0.9),
        ),
    ];
    Ok(Report {
        grids: Vec::new(),
        name: "interference".into(),
        title: "Interference: learning output B drags the already-correct output A".into(),
        setup: format!(
            "1-1-2 linear net, weights 1, no bias, input 1, targets (A, B) = (1, 0), squared error, \
             SGD lr {LR}, {updates} updates; PC: T = {STEPS}, gamma = {GAMMA}, mu = W f(x)"
        ),
        claims,
        table,
        panels: vec![panel_a, panel_b],
        notes: vec![
            "Deterministic: the network, input and target are fixed, so there is one seed.".into(),
            "PC's first inference settles at h = 2/3 (hidden error -1/3, output errors 1/3 and \
             -2/3), so output A moves to 0.933 * 1.044 = 0.975 after one update."
                .into(),
        ],
    })
}
