//! Reverse differentiation via PC (Salvatori, Song et al., AAAI 2022): once a computational
//! graph is levelled (identity nodes so every path to the output has the same length), Z-IL
//! in the PC network on it reproduces backprop's update on the original graph exactly.

use super::util::{par_map, randn};
use super::{Claim, Panel, Report, Series, Settings, Table};
use crate::energy::EnergyKind;
use crate::error::Result;
use crate::graph::{EdgeSpec, NodeSpec};
use crate::layers::{Activation, Convention};
use crate::learn::{Batch, Bp, Rule, Zil};
use crate::net::{MlpSpec, Net, Workspace};
use crate::optim::{OptimConfig, WeightOptim};
use crate::tensor::{Scalar, Tensor};

/// The graphs: an MLP with skip connections of lengths 2 to 4, and a recurrent net unrolled
/// over four steps with the input fed at every step.
pub const GRAPHS: [&str; 2] = ["skip-mlp", "rnn-unrolled-4"];

/// The spec of graph `name` (tanh hidden nodes, identity output).
pub fn graph(name: &str, conv: Convention, out: EnergyKind) -> MlpSpec {
    let n = |name: &str, size, act| NodeSpec::new(name, size, act);
    let e = EdgeSpec::new;
    let t = Activation::Tanh;
    let (mut nodes, edges) = match name {
        "skip-mlp" => (
            vec![
                n("in", 12, t),
                n("h1", 16, t),
                n("h2", 14, t),
                n("h3", 12, t),
                n("out", 6, Activation::Identity),
            ],
            vec![
                e("in", "h1"),
                e("h1", "h2"),
                e("h2", "h3"),
                e("h3", "out"),
                e("in", "h2"),
                e("h1", "h3"),
                e("in", "out"),
                e("h2", "out"),
            ],
        ),
        _ => (
            vec![
                n("x", 8, t),
                n("h1", 10, t),
                n("h2", 10, t),
                n("h3", 10, t),
                n("h4", 10, t),
                n("y", 6, Activation::Identity),
            ],
            vec![
                e("x", "h1"),
                e("h1", "h2"),
                e("x", "h2"),
                e("h2", "h3"),
                e("x", "h3"),
                e("h3", "h4"),
                e("x", "h4"),
                e("h4", "y"),
            ],
        ),
    };
    nodes.last_mut().expect("nodes").energy = out;
    MlpSpec { convention: conv, nodes, edges, ..Default::default() }
}

/// One comparison: Z-IL on the levelled graph vs BP on the original, one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gap {
    /// `max |ΔW_zil - ΔW_bp|` over all parameters.
    pub max_abs: f64,
    /// `‖ΔW_zil - ΔW_bp‖ / ‖ΔW_bp‖`.
    pub rel: f64,
    /// Inference steps Z-IL took (the input's level).
    pub steps: usize,
    /// Nodes of the levelled graph.
    pub nodes: usize,
    /// Identity nodes levelling inserted.
    pub identity_nodes: usize,
}

fn flat<T: Scalar>(net: &Net<T>) -> Vec<f64> {
    let mut v = Vec::new();
    for l in &net.layers {
        l.for_each_param(&mut |_, p| v.extend(p.data().iter().map(|x| x.f64())));
    }
    v
}

/// Trains one batch of 8 with BP on `spec` and Z-IL on its levelled form, from the same
/// weights (random biases), SGD lr 0.1, in `T`; returns the gap between the updates.
pub fn compare<T: Scalar>(spec: &MlpSpec, seed: u64) -> Result<Gap> {
    let mut bp_net: Net<f64> = Net::mlp(spec, seed)?;
    let mut k = 0;
    for l in &mut bp_net.layers {
        l.for_each_param_mut(&mut |name, p| {
            if name == "bias" {
                k += 1;
                *p = randn(p.rows(), p.cols(), 0.3, seed * 100 + k);
            }
        });
    }
    let start = flat(&bp_net);
    let mut bp_net: Net<T> = {
        let mut n = Net::<T>::mlp(spec, seed)?;
        n.copy_params_from(&bp_net);
        n
    };
    let mut zil_net: Net<T> = Net::mlp(&MlpSpec { level: true, ..spec.clone() }, seed)?;
    zil_net.copy_params_from(&bp_net);
    let (d_in, d_out) = (bp_net.d_in(), bp_net.d_out());
    let x: Tensor<T> = randn(8, d_in, 1.0, seed + 7);
    let y: Tensor<T> = if spec.nodes.last().map(|n| n.energy) == Some(EnergyKind::CrossEntropy) {
        Tensor::from_fn(8, d_out, |r, c| T::of(((r * 5 + seed as usize) % d_out == c) as u8 as f64))
    } else {
        randn(8, d_out, 1.0, seed + 9)
    };
    let b = Batch { x: &x, y: &y, index: 0 };
    let ocfg = OptimConfig::sgd(0.1);
    let mut opt = WeightOptim::new(ocfg.clone(), &bp_net)?;
    let mut ws = Workspace::new(&bp_net, 8);
    Bp.train_batch(&mut bp_net, &mut opt, b, &mut ws)?;
    let mut opt = WeightOptim::new(ocfg, &zil_net)?;
    let mut ws = Workspace::new(&zil_net, 8);
    let s = Zil::default().train_batch(&mut zil_net, &mut opt, b, &mut ws)?;
    let (pb, pz) = (flat(&bp_net), flat(&zil_net));
    let (mut max_abs, mut num, mut den) = (0.0f64, 0.0, 0.0);
    for ((b, z), s0) in pb.iter().zip(&pz).zip(&start) {
        max_abs = max_abs.max((b - z).abs());
        num += (b - z) * (b - z);
        den += (b - s0) * (b - s0);
    }
    Ok(Gap {
        max_abs,
        rel: num.sqrt() / den.sqrt().max(1e-300),
        steps: s.steps,
        nodes: zil_net.topo.nodes.len(),
        identity_nodes: zil_net.topo.nodes.len() - spec.nodes.len(),
    })
}

/// Runs the comparison over graphs, conventions, output energies, precisions and seeds.
///
/// # Errors
/// If a network cannot be built or trained.
pub fn run(s: &Settings) -> Result<Report> {
    let seeds = s.seeds(3, 10);
    let mut jobs = Vec::new();
    for g in GRAPHS {
        for conv in [Convention::Wf, Convention::Fw] {
            for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
                for dtype in ["f64", "f32"] {
                    for k in 0..seeds as u64 {
                        jobs.push((g, conv, out, dtype, k));
                    }
                }
            }
        }
    }
    let results = par_map(&jobs, |&(g, conv, out, dtype, k)| {
        let spec = graph(g, conv, out);
        if dtype == "f64" {
            compare::<f64>(&spec, k + 1)
        } else {
            compare::<f32>(&spec, k + 1)
        }
    });
    let mut table = Table::new(&[
        "graph",
        "convention",
        "output",
        "dtype",
        "seed",
        "nodes",
        "identity_nodes",
        "steps",
        "max_abs_diff",
        "rel_diff",
    ]);
    let mut worst = std::collections::BTreeMap::<(&str, &str), (f64, f64, usize, usize)>::new();
    let mut per_graph = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    for (&(g, conv, out, dtype, k), r) in jobs.iter().zip(results) {
        let gap = r?;
        let conv_name = if conv == Convention::Wf { "w_f" } else { "f_w" };
        let out_name = if out == EnergyKind::Gaussian { "gaussian" } else { "cross_entropy" };
        table.push(vec![
            g.into(),
            conv_name.into(),
            out_name.into(),
            dtype.into(),
            k.to_string(),
            gap.nodes.to_string(),
            gap.identity_nodes.to_string(),
            gap.steps.to_string(),
            format!("{:e}", gap.max_abs),
            format!("{:e}", gap.rel),
        ]);
        let w = worst.entry((g, dtype)).or_insert((0.0, 0.0, gap.steps, gap.identity_nodes));
        w.0 = w.0.max(gap.max_abs);
        w.1 = w.1.max(gap.rel);
        if dtype == "f64" {
            per_graph.entry(g).or_default().push(gap.max_abs.max(1e-18));
        }
    }
    let mut claims = Vec::new();
    for g in GRAPHS {
        let (a64, _, steps, ids) = worst[&(g, "f64")];
        let (_, r32, _, _) = worst[&(g, "f32")];
        claims.push(Claim::new(
            format!("{g}: Z-IL on the levelled graph = BP, f64 (max |ΔW_zil − ΔW_bp|)"),
            "exact",
            format!("{a64:.1e} ({steps} steps, {ids} identity nodes)"),
            Some(a64 < 1e-10),
        ));
        claims.push(Claim::new(
            format!("{g}: the same in f32 (relative gap, worst run)"),
            "exact (float precision)",
            format!("{r32:.1e}"),
            Some(r32 < 1e-5),
        ));
    }
    let series = per_graph
        .iter()
        .map(|(g, v)| {
            let xs = (1..=v.len()).map(|i| i as f64).collect();
            let vals: Vec<Vec<f64>> = v.iter().map(|&x| vec![x]).collect();
            Series::from_seeds(*g, xs, &vals)
        })
        .collect();
    Ok(Report {
        grids: Vec::new(),
        name: "reverse-diff".into(),
        title: "Z-IL on levelled DAGs reproduces backprop exactly".into(),
        setup: format!(
            "skip-mlp 12-16-14-12-6 with skips in->h2, h1->h3, in->out, h2->out; rnn-unrolled-4: \
             x(8) -> h1..h4 (10 each, tanh) -> y(6), the input fed at every step, weights \
             untied; w_f and f_w, squared-error and cross-entropy outputs, random biases, one \
             batch of 8, SGD lr 0.1, {seeds} seeds, f64 and f32; BP on the graph as given, Z-IL \
             on its levelled form (model.level = true) from the same weights"
        ),
        claims,
        table,
        panels: vec![Panel {
            title: "f64: max |ΔW_zil − ΔW_bp| per run".into(),
            x_label: "run (convention × output × seed)".into(),
            y_label: "max |ΔW_zil − ΔW_bp|".into(),
            log_y: true,
            series,
            ..Default::default()
        }],
        notes: vec![
            "Levelling inserts identity nodes u~l between a node u and each node it feeds more \
             than one level down (shared between the edges leaving u); the weighted edge keeps \
             its name and reads from the identity node next to its target. Z-IL then takes as \
             many steps as the input's level and updates the edges into level t at step t."
                .into(),
            "The recurrent net's weights are untied: weight sharing across edges is not built, \
             so the unrolled net is a DAG with one weight per time step."
                .into(),
            "Exact zeros are drawn at 1e-18.".into(),
        ],
    })
}
