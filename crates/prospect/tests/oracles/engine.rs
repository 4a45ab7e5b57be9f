//! Independent oracles for the numerical core: every optimiser against hand-computed values,
//! node optimisers, energy-rise halving and early stop on a constructed chain, precision-weighted
//! energies (by hand and through a closed-form equilibrium), backprop against finite differences
//! of the loss, PC and iPC against a plain-loop reference network, Z-IL = BP over several
//! batches on one reused workspace, and the reported losses against a direct computation.
//!
//! Each test names the bug it is there to catch; `docs/mutants.md` maps them to mutants.

use crate::common::*;
use prospect::learn::{self, Batch, Bp, Zil};
use prospect::optim::{OptimConfig, OptimKind, Reduction, Schedule, ScheduleKind};
use prospect::{
    Activation, Convention, Dense, DiscountTiming, EnergyKind, InferenceConfig, MlpSpec, Net,
    NodeOptim, OutputMode, Rule, Tensor, WeightOptim, Workspace,
};

// ------------------------------------------------------------------ weight optimisers

/// A 2×2 dense layer with bias, weights `w`, bias `b` (f64).
fn layer(w: [f64; 4], b: [f64; 2]) -> Net<f64> {
    let d = Dense {
        weight: Tensor::from_vec(2, 2, w.to_vec()),
        bias: Some(Tensor::from_vec(1, 2, b.to_vec())),
        act: Activation::Identity,
        conv: Convention::Wf,
        zero_diag: false,
    };
    Net::new(vec![Box::new(d)], vec![EnergyKind::Gaussian.build(1.0)]).unwrap()
}

fn params(net: &Net<f64>) -> Vec<f64> {
    flat_params(net)
}

/// Gradients for the 2×2 layer: weight then bias, summed over a batch.
fn grads(gw: [f64; 4], gb: [f64; 2]) -> Vec<Tensor<f64>> {
    vec![Tensor::from_vec(2, 2, gw.to_vec()), Tensor::from_vec(1, 2, gb.to_vec())]
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, want {w}");
    }
}

const W0: [f64; 4] = [0.5, -1.0, 2.0, 0.25];
const B0: [f64; 2] = [0.1, -0.2];
const G1: ([f64; 4], [f64; 2]) = ([0.4, -0.8, 1.2, 0.0], [2.0, -0.4]);
const G2: ([f64; 4], [f64; 2]) = ([-0.4, 0.4, 0.8, 1.6], [1.0, 0.2]);

/// Runs two optimiser steps on the 2×2 layer with batch size 4 and returns the parameters
/// (weight then bias) after each step.
fn two_steps(cfg: OptimConfig) -> (Vec<f64>, Vec<f64>) {
    let mut net = layer(W0, B0);
    let mut opt = WeightOptim::new(cfg, &net).unwrap();
    opt.total_batches = 10;
    let g1 = [grads(G1.0, G1.1)];
    let g2 = [grads(G2.0, G2.1)];
    opt.step(&mut net, &g1, 4);
    opt.end_batch();
    let after1 = params(&net);
    opt.step(&mut net, &g2, 4);
    opt.end_batch();
    (after1, params(&net))
}

fn p0() -> Vec<f64> {
    W0.iter().chain(&B0).copied().collect()
}
fn g(which: ([f64; 4], [f64; 2])) -> Vec<f64> {
    which.0.iter().chain(&which.1).copied().collect()
}

/// Catches: the mean reduction dividing by B² (or not at all), a wrong learning rate.
#[test]
fn sgd_mean_and_sum_reductions_match_hand_values() {
    // mean: w -= lr * g / B, B = 4, lr = 0.5
    let (a, b) = two_steps(OptimConfig { reduction: Reduction::Mean, ..OptimConfig::sgd(0.5) });
    // first parameter by hand: 0.5 - 0.5*0.4/4 = 0.45; then 0.45 - 0.5*(-0.4)/4 = 0.5
    assert!((a[0] - 0.45).abs() < 1e-15 && (b[0] - 0.5).abs() < 1e-15, "{a:?} {b:?}");
    let want1: Vec<f64> = p0().iter().zip(g(G1)).map(|(p, g)| p - 0.5 * g / 4.0).collect();
    let want2: Vec<f64> = want1.iter().zip(g(G2)).map(|(p, g)| p - 0.5 * g / 4.0).collect();
    assert_close(&a, &want1, 1e-15, "sgd mean step 1");
    assert_close(&b, &want2, 1e-15, "sgd mean step 2");
    // sum: w -= lr * g
    let (a, _) = two_steps(OptimConfig { reduction: Reduction::Sum, ..OptimConfig::sgd(0.5) });
    assert!((a[0] - 0.3).abs() < 1e-15, "{a:?}"); // 0.5 - 0.5*0.4
    assert!((a[4] - (0.1 - 1.0)).abs() < 1e-15, "{a:?}"); // bias: 0.1 - 0.5*2
}

/// Catches: the velocity's sign, momentum not carried over, Nesterov's look-ahead term.
#[test]
fn momentum_and_nesterov_match_hand_values() {
    let base = OptimConfig {
        kind: OptimKind::Momentum,
        momentum: 0.9,
        reduction: Reduction::Sum,
        lr: 0.1,
        ..Default::default()
    };
    // heavy ball: v1 = g1, p1 = p0 - lr v1; v2 = 0.9 v1 + g2, p2 = p1 - lr v2
    let (a, b) = two_steps(base.clone());
    // first weight by hand: v1 = 0.4, p1 = 0.46; v2 = 0.36 - 0.4 = -0.04, p2 = 0.464
    assert!((a[0] - 0.46).abs() < 1e-15 && (b[0] - 0.464).abs() < 1e-15, "{a:?} {b:?}");
    let (g1, g2) = (g(G1), g(G2));
    let mut want1 = vec![];
    let mut want2 = vec![];
    for i in 0..6 {
        let v1 = g1[i];
        let p1 = p0()[i] - 0.1 * v1;
        let v2 = 0.9 * v1 + g2[i];
        want1.push(p1);
        want2.push(p1 - 0.1 * v2);
    }
    assert_close(&a, &want1, 1e-14, "momentum step 1");
    assert_close(&b, &want2, 1e-14, "momentum step 2");
    // Nesterov: p -= lr (g + 0.9 v) with v updated first
    let (a, b) = two_steps(OptimConfig { nesterov: true, ..base });
    // first weight: v1 = 0.4, p1 = 0.5 - 0.1(0.4 + 0.36) = 0.424;
    // v2 = -0.04, p2 = 0.424 - 0.1(-0.4 - 0.036) = 0.4676
    assert!((a[0] - 0.424).abs() < 1e-15 && (b[0] - 0.4676).abs() < 1e-15, "{a:?} {b:?}");
    for i in 0..6 {
        let v1 = g1[i];
        let p1 = p0()[i] - 0.1 * (g1[i] + 0.9 * v1);
        let v2 = 0.9 * v1 + g2[i];
        want1[i] = p1;
        want2[i] = p1 - 0.1 * (g2[i] + 0.9 * v2);
    }
    assert_close(&a, &want1, 1e-14, "nesterov step 1");
    assert_close(&b, &want2, 1e-14, "nesterov step 2");
}

/// PyTorch's Adam/AdamW written out for one scalar, in the order PyTorch applies it:
/// decay `p *= 1 - lr wd` (AdamW only), then `p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)`.
fn torch_adam(p0: f64, gs: &[f64], lr: f64, b1: f64, b2: f64, eps: f64, wd: f64) -> Vec<f64> {
    let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
    let mut out = vec![];
    for (k, &g) in gs.iter().enumerate() {
        let t = (k + 1) as i32;
        p *= 1.0 - lr * wd;
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let step = lr / (1.0 - b1.powi(t));
        let denom = v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
        p -= step * m / denom;
        out.push(p);
    }
    out
}

/// Catches: wrong bias corrections, AdamW's decay without the learning rate, decay in Adam,
/// the mean reduction's scale inside the moments.
#[test]
fn adam_and_adamw_match_pytorch_written_out() {
    for (kind, wd) in [(OptimKind::Adam, 0.0), (OptimKind::Adamw, 0.05)] {
        let cfg = OptimConfig {
            kind,
            lr: 0.01,
            beta1: 0.8,
            beta2: 0.95,
            eps: 1e-3,
            weight_decay: 0.05, // Adam must ignore it
            reduction: Reduction::Mean,
            ..Default::default()
        };
        let (a, b) = two_steps(cfg);
        let (g1, g2) = (g(G1), g(G2));
        for i in 0..6 {
            // gradients arrive summed over a batch of 4 and are averaged first
            let want = torch_adam(p0()[i], &[g1[i] / 4.0, g2[i] / 4.0], 0.01, 0.8, 0.95, 1e-3, wd);
            assert!(
                (a[i] - want[0]).abs() < 1e-14,
                "{kind:?}[{i}] step 1: {} vs {}",
                a[i],
                want[0]
            );
            assert!(
                (b[i] - want[1]).abs() < 1e-14,
                "{kind:?}[{i}] step 2: {} vs {}",
                b[i],
                want[1]
            );
        }
        // First step by hand: m̂ = g, v̂ = g², so p1 = p0(1 - lr wd) - lr g/(|g| + eps).
        // weight 0: g = 0.1 → 0.5(1 - 0.01 wd) - 0.01 · 0.1/0.101
        let hand = 0.5 * (1.0 - 0.01 * wd) - 0.01 * 0.1 / 0.101;
        assert!((a[0] - hand).abs() < 1e-15, "{kind:?}: {} vs {hand}", a[0]);
        // a zero gradient moves the weight only by the decay
        assert!((a[3] - 0.25 * (1.0 - 0.01 * wd)).abs() < 1e-15, "{kind:?}: {}", a[3]);
    }
}

/// Catches: the schedule not applied to the step, not advanced by `end_batch`, or advanced twice.
#[test]
fn schedules_scale_the_learning_rate_of_each_step() {
    let sum_sgd =
        |schedule| OptimConfig { reduction: Reduction::Sum, schedule, ..OptimConfig::sgd(1.0) };
    // step: lr, then lr/2 from the second batch on
    let step = Schedule { kind: ScheduleKind::Step, every: 1, factor: 0.5, ..Default::default() };
    let (a, b) = two_steps(sum_sgd(step));
    assert!((a[0] - (0.5 - 0.4)).abs() < 1e-15, "{a:?}");
    assert!((b[0] - (0.1 + 0.5 * 0.4)).abs() < 1e-15, "{b:?}");
    // warm-up + cosine over 10 batches with 20% warm-up: factors 0.5, 1.0
    let wc = Schedule {
        kind: ScheduleKind::WarmupCosine,
        warmup: 0.2,
        final_factor: 0.0,
        ..Default::default()
    };
    let (a, b) = two_steps(sum_sgd(wc));
    assert!((a[0] - (0.5 - 0.5 * 0.4)).abs() < 1e-15, "{a:?}");
    assert!((b[0] - (0.3 + 0.4)).abs() < 1e-15, "{b:?}");
    // warm-up + cosine at the middle of the decay: 1/2 (1 + cos(pi/2)) = 0.5 of the way
    let s = Schedule { kind: ScheduleKind::WarmupCosine, warmup: 0.0, final_factor: 0.2, ..wc };
    assert!((s.factor_at(5, 10) - (0.2 + 0.8 * 0.5)).abs() < 1e-12);
    assert!((s.factor_at(0, 10) - 1.0).abs() < 1e-12);
    assert!((s.factor_at(10, 10) - 0.2).abs() < 1e-12);
    assert!((s.factor_at(30, 10) - 0.2).abs() < 1e-12); // past the end: stays at the floor
                                                        // constant: the base rate at every batch
    let c = Schedule::default();
    assert_eq!((c.factor_at(0, 5), c.factor_at(4, 5), c.factor_at(99, 5)), (1.0, 1.0, 1.0));
    let mut opt = WeightOptim::new(OptimConfig::sgd(0.3), &layer(W0, B0)).unwrap();
    assert_eq!(opt.lr(), 0.3);
    opt.cfg.schedule = step;
    opt.end_batch();
    assert!((opt.lr() - 0.15).abs() < 1e-15);
}

/// `step_layer` updates only the layer it is given and counts Adam steps per layer
/// (Z-IL updates one layer per inference step).
#[test]
fn step_layer_touches_one_layer_and_counts_its_own_steps() {
    let spec = MlpSpec::new(&[2, 2, 2], Activation::Identity, Convention::Wf);
    let mut net: Net<f64> = Net::mlp(&spec, 1).unwrap();
    let cfg = OptimConfig {
        kind: OptimKind::Adam,
        lr: 0.1,
        reduction: Reduction::Sum,
        ..Default::default()
    };
    let mut opt = WeightOptim::new(cfg, &net).unwrap();
    let before = flat_params(&net);
    let g = grads(G1.0, G1.1);
    opt.step_layer(1, net.layers[1].as_mut(), &g, 1);
    let after = flat_params(&net);
    assert_eq!(before[..6], after[..6], "layer 0 must not move");
    assert_ne!(before[6..], after[6..]);
    assert_eq!(opt.update_counts(), &[0, 1]);
    // first Adam step moves each weight with a non-zero gradient by ~lr
    assert!((before[6] - after[6] - 0.1 * 0.4 / (0.4 + 1e-8)).abs() < 1e-12);
}

// ------------------------------------------------------------------ node optimisers, halving, early stop

/// The chain x_0 → x_1 → x_2 with scalar nodes, identity activations and unit weights:
/// `E = ½(x_1 − x_0)² + ½(x_2 − x_1)²`, `dE/dx_1 = 2x_1 − x_0 − x_2`, equilibrium `(x_0 + x_2)/2`.
fn unit_chain() -> (Net<f64>, Workspace<f64>) {
    let mut spec = MlpSpec::new(&[1, 1, 1], Activation::Identity, Convention::Wf);
    spec.bias = false;
    let mut net: Net<f64> = Net::mlp(&spec, 0).unwrap();
    for l in &mut net.layers {
        l.for_each_param_mut(&mut |_, p| p.fill(1.0));
    }
    let mut ws = Workspace::new(&net, 1);
    // input 1, target 3: the forward pass puts x_1 at 1, the equilibrium is 2
    ws.load(&net, &Tensor::full(1, 1, 1.0), &Tensor::full(1, 1, 3.0)).unwrap();
    (net, ws)
}

/// Catches: a product run whose error is still exactly zero (or skipping turned off); a
/// node held still although its error reached it. On a chain with `L` hidden layers the
/// error from the clamped output reaches hidden layer `L - k` after `k` steps: by hand, the
/// input VJPs into still-quiet nodes plus the predictions from nodes that have not moved add
/// up to `L (L - 1)` skipped products once `T >= L - 1` (2 and 6 here; 4 for `L = 3, T = 1`),
/// none with a nudged output (whose `dx` has an extra term), none with skipping off.
#[test]
fn inference_skips_exactly_the_products_the_error_has_not_reached() {
    for (sizes, steps, want) in [
        (&[3, 4, 4, 2][..], 1, 2),
        (&[3, 4, 4, 2][..], 4, 2),
        (&[3, 4, 4, 4, 2][..], 1, 4),
        (&[3, 4, 4, 4, 2][..], 2, 6),
        (&[3, 4, 4, 4, 2][..], 5, 6),
    ] {
        let net: Net<f64> =
            Net::mlp(&MlpSpec::new(sizes, Activation::Tanh, Convention::Fw), 3).unwrap();
        let mut r = rng(1);
        let (x, y) = (randn(5, 3, 1.0, &mut r), randn(5, 2, 1.0, &mut r));
        let cfg = InferenceConfig { steps, gamma: 0.1, ..Default::default() };
        let mut ws = Workspace::new(&net, 5);
        ws.load(&net, &x, &y).unwrap();
        let on = net.infer(&mut ws, &cfg, 0).unwrap();
        assert_eq!(on.skipped_products, want, "{sizes:?}, T = {steps}");
        ws.skip_zero_products = false;
        let off = net.infer(&mut ws, &cfg, 0).unwrap();
        assert_eq!(off.skipped_products, 0, "skipping off");
        assert_eq!(on.final_energy.to_bits(), off.final_energy.to_bits(), "{sizes:?}");
        ws.skip_zero_products = true;
        let nudged = InferenceConfig { output: OutputMode::Nudge { beta: 0.5 }, ..cfg };
        assert_eq!(net.infer(&mut ws, &nudged, 0).unwrap().skipped_products, 0, "nudged");
    }
}

/// Each energy that declares its gradient exactly zero at `x = mu` (Gaussian, diagonal
/// Gaussian, Laplace) lets inference skip on hidden nodes that carry it: the same `L (L - 1)`
/// count as above and the same energy bit for bit as with skipping off. Catches a declaration
/// dropped from one of them (results unchanged, the skipping silently lost).
#[test]
fn every_energy_zero_at_its_prediction_lets_inference_skip() {
    use prospect::energy::{DiagGaussian, Gaussian, Laplace};
    use prospect::Energy;
    let sizes = [3, 4, 4, 4, 2];
    type Make = fn() -> Box<dyn Energy<f64>>;
    let hidden: [(&str, Make); 3] = [
        ("gaussian", || Box::new(Gaussian { precision: 0.5 })),
        ("diag_gaussian", || Box::new(DiagGaussian { precision: vec![1.0, 0.5, 0.0, 2.0] })),
        ("laplace", || Box::new(Laplace { precision: 1.5 })),
    ];
    for (name, make) in hidden {
        let base: Net<f64> =
            Net::mlp(&MlpSpec::new(&sizes, Activation::Tanh, Convention::Fw), 3).unwrap();
        let mut energies: Vec<Box<dyn Energy<f64>>> = (0..3).map(|_| make()).collect();
        energies.push(EnergyKind::Gaussian.build(1.0));
        let net = Net::new(base.layers, energies).unwrap();
        assert!(net.energies[0].zero_at_prediction(), "{name} must declare it");
        let mut r = rng(2);
        let (x, y) = (randn(5, 3, 1.0, &mut r), randn(5, 2, 1.0, &mut r));
        let cfg = InferenceConfig { steps: 5, gamma: 0.1, ..Default::default() };
        let mut ws = Workspace::new(&net, 5);
        ws.load(&net, &x, &y).unwrap();
        let on = net.infer(&mut ws, &cfg, 0).unwrap();
        assert_eq!(on.skipped_products, 6, "{name}");
        ws.skip_zero_products = false;
        let off = net.infer(&mut ws, &cfg, 0).unwrap();
        assert_eq!(on.final_energy.to_bits(), off.final_energy.to_bits(), "{name}");
        assert_ne!(on.final_energy, on.initial_energy, "{name}: inference moved nothing");
    }
}

/// Catches: the node velocity's sign, momentum not applied, Nesterov's look-ahead.
#[test]
fn node_momentum_and_nesterov_match_hand_values() {
    // gamma 0.25, m 0.5; x starts at 1, grad 2x - 4.
    // heavy ball: g=-2, v=-2, x=1.5; g=-1, v=-2, x=2.0; g=0, v=-1, x=2.25
    // nesterov:   g=-2, v=-2, x=1.75; g=-0.5, v=-1.5, x=2.0625; g=0.125, v=-0.625, x=2.109375
    for (opt, want) in [
        (NodeOptim::Sgd, [1.5, 1.75, 1.875]),
        (NodeOptim::Momentum, [1.5, 2.0, 2.25]),
        (NodeOptim::Nesterov, [1.75, 2.0625, 2.109375]),
    ] {
        for (k, w) in want.iter().enumerate() {
            let (net, mut ws) = unit_chain();
            let cfg = InferenceConfig {
                steps: k + 1,
                gamma: 0.25,
                optimizer: opt,
                momentum: 0.5,
                ..Default::default()
            };
            let s = net.infer(&mut ws, &cfg, 0).unwrap();
            assert_eq!(s.steps, k + 1);
            let x = ws.x[1].at(0, 0);
            assert!((x - w).abs() < 1e-15, "{opt:?} after {} steps: x_1 = {x}, want {w}", k + 1);
            // the velocity starts at zero on every batch: a second run gives the same
            let again = net.infer(&mut ws, &cfg, 1).unwrap();
            assert_eq!((again.final_energy, ws.x[1].at(0, 0)), (s.final_energy, x));
        }
    }
}

/// Catches: halving on energy rise switched off, halving applied without a rise, gamma not
/// reset between batches.
#[test]
fn halving_on_energy_rise_follows_the_constructed_case() {
    // gamma 1.5 overshoots: x = 1 (E 2) → 4 (E 5: rise, gamma 0.75) → 1 (E 2) → 2.5 (E 1.25) → 1.75
    let cfg = InferenceConfig { steps: 4, gamma: 1.5, halve_on_rise: true, ..Default::default() };
    let (net, mut ws) = unit_chain();
    let s = net.infer(&mut ws, &cfg, 0).unwrap();
    assert_eq!((s.steps, s.gamma), (4, 0.75));
    assert_eq!(ws.x[1].at(0, 0), 1.75);
    assert_eq!(s.initial_energy, 2.0);
    // final energy at x = 1.75: ½·0.75² + ½·1.25² = 1.0625
    assert!((s.final_energy - 1.0625).abs() < 1e-15, "{}", s.final_energy);
    // a second batch starts again from the configured gamma
    let s2 = net.infer(&mut ws, &cfg, 1).unwrap();
    assert_eq!((s2.gamma, ws.x[1].at(0, 0)), (0.75, 1.75));
    // without halving the same steps diverge: 1 → 4 → -2 → 10 → -14
    let plain = InferenceConfig { halve_on_rise: false, ..cfg };
    let s = net.infer(&mut ws, &plain, 0).unwrap();
    assert_eq!((s.gamma, ws.x[1].at(0, 0)), (1.5, -14.0));
    // another discount: each rise multiplies gamma by it. 1 → 4 (E 5, rise: 1.35) →
    // 4 - 1.35·4 = -1.4 (E 12.56, rise: 1.215) → -1.4 + 1.215·6.8 = 6.862
    let tenth = InferenceConfig { steps: 3, discount: 0.9, ..cfg };
    let s = net.infer(&mut ws, &tenth, 0).unwrap();
    assert!((s.gamma - 1.215).abs() < 1e-12, "{}", s.gamma);
    assert!((ws.x[1].at(0, 0) - 6.862).abs() < 1e-9, "{}", ws.x[1].at(0, 0));
    for bad in [0.0, 1.0, -0.5, f64::NAN] {
        let e = InferenceConfig { discount: bad, ..cfg }.validate().unwrap_err().to_string();
        assert!(e.contains("inference.discount"), "{e}");
    }
    // a falling energy never halves
    // (its energy reaches exactly 1.0 from step 27 on: equal energies are no rise either)
    let calm = InferenceConfig { gamma: 0.25, steps: 30, ..cfg };
    let s = net.infer(&mut ws, &calm, 0).unwrap();
    assert_eq!((s.gamma, s.steps, s.final_energy), (0.25, 30, 1.0));
}

/// Catches: the authors' timing cutting before the step (as the default does), `>` instead of
/// `>=`, the cut skipped, the default timing counting equal energies as a rise.
#[test]
fn pctrainer_discount_timing_cuts_after_the_step_and_on_equal_energy() {
    // E = ½(x-1)² + ½(3-x)², grad 2x - 4. gamma 1.5, cut after the step (PCTrainer):
    // x 1 (E 2) -> 4 (E 5 >= 2: the step from 4 still uses 1.5, then 0.75) -> -2 (E 17: cut
    // to 0.375 after the step at 0.75) -> 4 (E 5: no cut) -> 2.5 (E 1.25).
    let after = InferenceConfig {
        steps: 4,
        gamma: 1.5,
        halve_on_rise: true,
        discount_timing: DiscountTiming::AfterStep,
        ..Default::default()
    };
    let (net, mut ws) = unit_chain();
    let s = net.infer(&mut ws, &after, 0).unwrap();
    assert_eq!((s.steps, s.gamma, ws.x[1].at(0, 0), s.final_energy), (4, 0.375, 2.5, 1.25));
    // gamma 1 reflects x about 2 at constant energy: 1 (E 2) -> 3 (E 2) -> 1 (E 2).
    // PCTrainer's `>=` counts the equal energies: after the step 3 -> 1 gamma is 0.5, the
    // step from 1 goes to 2 (E 1) and gamma is 0.25.
    let flat = InferenceConfig { steps: 3, gamma: 1.0, ..after };
    let s = net.infer(&mut ws, &flat, 0).unwrap();
    assert_eq!((s.gamma, ws.x[1].at(0, 0), s.final_energy), (0.25, 2.0, 1.0));
    // the default timing (`>`, before the step) never cuts there and keeps reflecting
    let strict = InferenceConfig { discount_timing: DiscountTiming::BeforeStep, ..flat };
    let s = net.infer(&mut ws, &strict, 0).unwrap();
    assert_eq!((s.gamma, ws.x[1].at(0, 0), s.final_energy), (1.0, 3.0, 2.0));
    // the key parses from TOML and is left out of serialised defaults
    let t: InferenceConfig = toml::from_str("discount_timing = \"after_step\"").unwrap();
    assert_eq!(t.discount_timing, DiscountTiming::AfterStep);
    assert!(!toml::to_string(&InferenceConfig::default()).unwrap().contains("discount_timing"));
}

/// Catches: early stop switched off, or stopping on the wrong comparison.
#[test]
fn early_stop_fires_at_the_first_step_within_tolerance() {
    // gamma 0.25: x - 2 halves each step; E = (x-2)² + 1 = 2, 1.25, 1.0625, 1.015625,
    // 1.00390625, 1.0009765625. Relative changes: .375, .15, .044, .0115, .0029.
    for (tol, steps) in [(0.01, 5), (0.05, 3), (0.2, 2)] {
        let cfg = InferenceConfig { steps: 40, gamma: 0.25, tol, ..Default::default() };
        let (net, mut ws) = unit_chain();
        let s = net.infer(&mut ws, &cfg, 0).unwrap();
        assert_eq!(s.steps, steps, "tol {tol}");
        let want = 1.0 + 0.25f64.powi(steps as i32);
        assert!(
            (s.final_energy - want).abs() < 1e-15,
            "tol {tol}: final energy {}",
            s.final_energy
        );
        // the nodes stopped where the step count says: x = 2 - 2^-steps
        assert_eq!(ws.x[1].at(0, 0), 2.0 - 0.5f64.powi(steps as i32));
    }
    // tol 0 runs every step
    let cfg = InferenceConfig { steps: 12, gamma: 0.25, tol: 0.0, ..Default::default() };
    let (net, mut ws) = unit_chain();
    assert_eq!(net.infer(&mut ws, &cfg, 0).unwrap().steps, 12);
}

// ------------------------------------------------------------------ precision

/// Catches: the precision ignored in the energy, in `dE/dmu` or in `dE/dx`; the Laplace sign.
#[test]
fn precision_weighted_energies_match_hand_values() {
    let x = Tensor::from_vec(2, 3, vec![1.0, -2.0, 0.5, 0.0, 3.0, -1.0]);
    let mu = Tensor::from_vec(2, 3, vec![0.5, -1.0, 0.5, 1.0, 1.0, 1.0]);
    // e = x - mu = [0.5, -1, 0, -1, 2, -2]
    let e = [0.5, -1.0, 0.0, -1.0, 2.0, -2.0];
    let mut g_mu = Tensor::zeros(2, 3);
    let mut g_x = Tensor::zeros(2, 3);
    let gauss = EnergyKind::Gaussian.build::<f64>(2.5);
    let v = gauss.eval(&x, &mu, &mut g_mu, Some(&mut g_x));
    // ½ · 2.5 · (0.25 + 1 + 0 + 1 + 4 + 4) = 12.8125
    assert_eq!(v, 12.8125);
    for i in 0..6 {
        assert_eq!(g_mu.data()[i], -2.5 * e[i]);
        assert_eq!(g_x.data()[i], 2.5 * e[i]);
    }
    let mut per = [0.0; 2];
    gauss.per_example(&x, &mu, &mut per);
    assert_eq!(per, [2.5 / 2.0 * 1.25, 2.5 / 2.0 * 9.0]);

    let lap = EnergyKind::Laplace.build::<f64>(2.0);
    let v = lap.eval(&x, &mu, &mut g_mu, Some(&mut g_x));
    assert_eq!(v, 2.0 * 6.5);
    let sign = [1.0, -1.0, 0.0, -1.0, 1.0, -1.0];
    for i in 0..6 {
        assert_eq!(g_mu.data()[i], -2.0 * sign[i], "laplace dE/dmu[{i}]");
        assert_eq!(g_x.data()[i], 2.0 * sign[i], "laplace dE/dx[{i}]");
    }
    lap.per_example(&x, &mu, &mut per);
    assert_eq!(per, [2.0 * 1.5, 2.0 * 5.0]);

    // cross-entropy: -sum y log softmax(mu); dE/dmu = softmax(mu) - y for one-hot y
    let y = Tensor::from_vec(1, 3, vec![0.0, 1.0, 0.0]);
    let logits = Tensor::from_vec(1, 3, vec![1.0, 2.0, 0.0]);
    let mut gm = Tensor::zeros(1, 3);
    let ce = EnergyKind::CrossEntropy.build::<f64>(1.0);
    let mut gx = Tensor::zeros(1, 3);
    let v = ce.eval(&y, &logits, &mut gm, Some(&mut gx));
    let z: f64 = [1.0f64, 2.0, 0.0].iter().map(|v| v.exp()).sum();
    assert!((v - (z.ln() - 2.0)).abs() < 1e-15);
    for (i, l) in [1.0f64, 2.0, 0.0].iter().enumerate() {
        let want = l.exp() / z - y.data()[i];
        assert!((gm.data()[i] - want).abs() < 1e-15);
        // dE/dx = -log softmax(mu)
        assert!((gx.data()[i] - (z.ln() - l)).abs() < 1e-15, "cross-entropy dE/dx[{i}]");
    }
    // the spec's precisions reach the energies of the network
    let mut spec = MlpSpec::new(&[2, 3, 2], Activation::Tanh, Convention::Wf);
    spec.precisions = vec![0.5, 4.0];
    let net: Net<f64> = Net::mlp(&spec, 0).unwrap();
    let one = Tensor::from_vec(1, 2, vec![1.0, 0.0]);
    let zero = Tensor::zeros(1, 2);
    let mut g = Tensor::zeros(1, 2);
    assert_eq!(net.energies[1].eval(&one, &zero, &mut g, None), 2.0); // ½ · 4 · 1
    assert_eq!(net.energies[0].eval(&one, &zero, &mut g, None), 0.25);
}

/// A linear chain with precisions `pi_1`, `pi_2` relaxes to
/// `x_1* = (pi_1 I + pi_2 W_2ᵀW_2)⁻¹ (pi_1 W_1 x_0 + pi_2 W_2ᵀ x_2)`; with unequal precisions
/// this is not the unweighted equilibrium, so an ignored precision fails.
#[test]
fn precisions_move_the_relaxed_state_to_the_weighted_equilibrium() {
    let mut r = rng(8);
    let (pi1, pi2) = (0.5, 3.0);
    let mut spec = MlpSpec::new(&[3, 4, 5], Activation::Identity, Convention::Wf);
    spec.bias = false;
    spec.precisions = vec![pi1, pi2];
    let net: Net<f64> = Net::mlp(&spec, 2).unwrap();
    let (w1, w2) = (weight(&net, 0), weight(&net, 1));
    let x0: Tensor<f64> = randn(2, 3, 1.0, &mut r);
    let x2: Tensor<f64> = randn(2, 5, 1.0, &mut r);
    let mut ws = Workspace::new(&net, 2);
    ws.load(&net, &x0, &x2).unwrap();
    let cfg = InferenceConfig { steps: 4000, gamma: 0.05, ..Default::default() };
    net.infer(&mut ws, &cfg, 0).unwrap();
    let mut unweighted_gap = 0.0f64;
    for b in 0..2 {
        let solve_with = |p1: f64, p2: f64| {
            let a: Vec<Vec<f64>> = (0..4)
                .map(|i| {
                    (0..4)
                        .map(|j| {
                            p1 * (i == j) as u8 as f64
                                + p2 * (0..5).map(|k| w2.at(k, i) * w2.at(k, j)).sum::<f64>()
                        })
                        .collect()
                })
                .collect();
            let rhs: Vec<f64> = (0..4)
                .map(|i| {
                    p1 * (0..3).map(|k| w1.at(i, k) * x0.at(b, k)).sum::<f64>()
                        + p2 * (0..5).map(|k| w2.at(k, i) * x2.at(b, k)).sum::<f64>()
                })
                .collect();
            solve(a, rhs)
        };
        let want = solve_with(pi1, pi2);
        let plain = solve_with(1.0, 1.0);
        for i in 0..4 {
            let got = ws.x[1].at(b, i);
            assert!((got - want[i]).abs() < 1e-8, "x_1[{b},{i}] = {got}, weighted {}", want[i]);
            unweighted_gap = unweighted_gap.max((want[i] - plain[i]).abs());
        }
    }
    assert!(unweighted_gap > 0.05, "the case must tell precisions apart ({unweighted_gap})");
}

fn weight(net: &Net<f64>, i: usize) -> Tensor<f64> {
    let mut w = None;
    net.layers[i].for_each_param(&mut |n, p| {
        if n == "weight" {
            w = Some(p.clone())
        }
    });
    w.unwrap()
}

fn bias(net: &Net<f64>, i: usize) -> Option<Tensor<f64>> {
    let mut b = None;
    net.layers[i].for_each_param(&mut |n, p| {
        if n == "bias" {
            b = Some(p.clone())
        }
    });
    b
}

// ------------------------------------------------------------------ backprop vs finite differences

/// The output loss written out: gaussian ½Σ(y−mu)², laplace Σ|y−mu|, cross-entropy −Σ y log softmax(mu).
fn direct_loss(kind: EnergyKind, y: &Tensor<f64>, mu: &Tensor<f64>) -> Vec<f64> {
    (0..y.rows())
        .map(|r| {
            let (yr, mr) = (y.row(r), mu.row(r));
            match kind {
                EnergyKind::Gaussian => {
                    0.5 * yr.iter().zip(mr).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
                }
                EnergyKind::Laplace => yr.iter().zip(mr).map(|(a, b)| (a - b).abs()).sum::<f64>(),
                EnergyKind::CrossEntropy => {
                    let lse = mr.iter().map(|v| v.exp()).sum::<f64>().ln();
                    -yr.iter().zip(mr).map(|(t, m)| t * (m - lse)).sum::<f64>()
                }
                EnergyKind::Categorical => {
                    // KL(y || softmax(mu)), 0 log 0 = 0
                    let lse = mr.iter().map(|v| v.exp()).sum::<f64>().ln();
                    yr.iter()
                        .zip(mr)
                        .filter(|(t, _)| **t > 0.0)
                        .map(|(t, m)| t * (t.ln() - (m - lse)))
                        .sum::<f64>()
                }
                EnergyKind::Bernoulli => yr
                    .iter()
                    .zip(mr)
                    .map(|(&t, &m)| {
                        let q = 1.0 / (1.0 + (-m).exp());
                        let part = |p: f64, q: f64| if p > 0.0 { p * (p / q).ln() } else { 0.0 };
                        part(t, q) + part(1.0 - t, 1.0 - q)
                    })
                    .sum::<f64>(),
            }
        })
        .collect()
}

fn batch_loss(net: &Net<f64>, kind: EnergyKind, x: &Tensor<f64>, y: &Tensor<f64>) -> f64 {
    direct_loss(kind, y, &net.predict(x).unwrap()).iter().sum()
}

/// Backprop's gradients against central differences of the loss, for every activation,
/// convention and output energy, on a workspace reused across batches (catches a VJP that
/// accumulates into a stale buffer, which a fresh workspace hides).
#[test]
fn bp_gradients_match_finite_differences_of_the_loss() {
    let mut r = rng(31);
    for act in Activation::ALL {
        for conv in [Convention::Wf, Convention::Fw] {
            for out in EnergyKind::ALL {
                let mut spec = MlpSpec::new(&[4, 6, 5, 3], act, conv);
                spec.output_energy = out;
                spec.activate_input = true;
                let mut net: Net<f64> = Net::mlp(&spec, 5).unwrap();
                randomize_biases(&mut net, &mut r);
                let mut ws = Workspace::new(&net, 3);
                for round in 0..3 {
                    let x: Tensor<f64> = randn(3, 4, 1.0, &mut r);
                    let y = match out {
                        EnergyKind::CrossEntropy | EnergyKind::Categorical => {
                            one_hot(&[round % 3, 2, 0], 3)
                        }
                        // Bernoulli targets are probabilities, 0 and 1 included
                        EnergyKind::Bernoulli => {
                            Tensor::from_fn(3, 3, |i, j| ((i * 3 + j + round) % 9) as f64 / 8.0)
                        }
                        _ => randn(3, 3, 1.0, &mut r),
                    };
                    ws.load(&net, &x, &y).unwrap();
                    let loss = Bp::gradients(&net, &mut ws);
                    let direct = batch_loss(&net, out, &x, &y);
                    assert!(
                        (loss - direct).abs() < 1e-12 * direct.abs().max(1.0),
                        "loss {loss} vs {direct}"
                    );
                    let h = 1e-6;
                    for li in 0..3 {
                        let mut k = 0;
                        let mut shapes = vec![];
                        net.layers[li].for_each_param(&mut |n, p| shapes.push((n, p.len())));
                        for (pi, (name, len)) in shapes.into_iter().enumerate() {
                            for i in 0..len {
                                let nudge =
                                    |net: &mut Net<f64>, d: f64| nudge_param(net, li, pi, i, d);
                                nudge(&mut net, h);
                                let lp = batch_loss(&net, out, &x, &y);
                                nudge(&mut net, -2.0 * h);
                                let lm = batch_loss(&net, out, &x, &y);
                                nudge(&mut net, h);
                                let fd = (lp - lm) / (2.0 * h);
                                let got = ws.grads[li][pi].data()[i];
                                assert!(
                                    (got - fd).abs() < 1e-5 * fd.abs().max(1.0),
                                    "{act} {conv:?} {out:?} round {round}: dL/d{name}_{}[{i}] = {got}, fd {fd}",
                                    li + 1
                                );
                                k += 1;
                            }
                        }
                        assert!(k > 0);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------ PC and iPC against a plain-loop reference

/// One layer's parameter gradients: weight `[d_out][d_in]` and bias `[d_out]`.
type LayerGrads = (Vec<Vec<f64>>, Vec<f64>);

/// A layered PCN written with plain loops over `Vec<f64>`, independent of the engine:
/// weights `w[l][o][i]`, biases `b[l][o]`, one activation per layer, precisions `pi[l]`.
struct RefNet {
    w: Vec<Vec<Vec<f64>>>,
    b: Vec<Vec<f64>>,
    acts: Vec<fn(f64) -> (f64, f64)>,
    fw: bool,
    pi: Vec<f64>,
}

fn tanh_df(x: f64) -> (f64, f64) {
    let t = x.tanh();
    (t, 1.0 - t * t)
}
fn id_df(x: f64) -> (f64, f64) {
    (x, 1.0)
}

impl RefNet {
    fn from_net(net: &Net<f64>, fw: bool, acts: Vec<fn(f64) -> (f64, f64)>, pi: Vec<f64>) -> Self {
        let w = (0..net.depth())
            .map(|l| {
                let t = weight(net, l);
                (0..t.rows()).map(|o| t.row(o).to_vec()).collect()
            })
            .collect();
        let b = (0..net.depth()).map(|l| bias(net, l).unwrap().data().to_vec()).collect();
        Self { w, b, acts, fw, pi }
    }

    fn flat(&self) -> Vec<f64> {
        let mut v = vec![];
        for l in 0..self.w.len() {
            for row in &self.w[l] {
                v.extend(row);
            }
            v.extend(&self.b[l]);
        }
        v
    }

    /// Prediction of layer `l` (0-based) from `x_in`: (mu, f'(z) or f'(x_in), f(x_in) or x_in).
    fn predict(&self, l: usize, x_in: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let f = self.acts[l];
        if self.fw {
            let z: Vec<f64> = self.w[l]
                .iter()
                .zip(&self.b[l])
                .map(|(row, b)| row.iter().zip(x_in).map(|(w, x)| w * x).sum::<f64>() + b)
                .collect();
            let (mu, d): (Vec<f64>, Vec<f64>) = z.iter().map(|&v| f(v)).unzip();
            (mu, d, x_in.to_vec())
        } else {
            let (a, d): (Vec<f64>, Vec<f64>) = x_in.iter().map(|&v| f(v)).unzip();
            let mu = self.w[l]
                .iter()
                .zip(&self.b[l])
                .map(|(row, b)| row.iter().zip(&a).map(|(w, x)| w * x).sum::<f64>() + b)
                .collect();
            (mu, d, a)
        }
    }

    /// For nodes `x[0..=L]` of one example: node gradients of the hidden nodes and the
    /// parameter gradients (weight, bias per layer), Gaussian energies.
    fn grads(&self, x: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<LayerGrads>, f64) {
        let depth = self.w.len();
        let mut dx: Vec<Vec<f64>> = x.iter().map(|v| vec![0.0; v.len()]).collect();
        let mut pg = vec![];
        let mut energy = 0.0;
        for l in 0..depth {
            let (mu, d, input) = self.predict(l, &x[l]);
            let e: Vec<f64> = x[l + 1].iter().zip(&mu).map(|(a, b)| a - b).collect();
            energy += 0.5 * self.pi[l] * e.iter().map(|v| v * v).sum::<f64>();
            for (o, ev) in e.iter().enumerate() {
                dx[l + 1][o] += self.pi[l] * ev;
            }
            // g = dE/dmu = -pi e; delta = g (w_f) or g ⊙ f'(z) (f_w)
            let delta: Vec<f64> = e
                .iter()
                .enumerate()
                .map(|(o, ev)| -self.pi[l] * ev * if self.fw { d[o] } else { 1.0 })
                .collect();
            let gw: Vec<Vec<f64>> =
                delta.iter().map(|dl| input.iter().map(|a| dl * a).collect()).collect();
            pg.push((gw, delta.clone()));
            for i in 0..x[l].len() {
                let back: f64 = (0..delta.len()).map(|o| self.w[l][o][i] * delta[o]).sum();
                dx[l][i] += if self.fw { back } else { back * d[i] };
            }
        }
        (dx, pg, energy)
    }

    /// Sums per-example parameter gradients over the batch and takes an SGD step (sum reduction).
    fn sgd(&mut self, xs: &[Vec<Vec<f64>>], lr: f64) {
        let per: Vec<_> = xs.iter().map(|x| self.grads(x).1).collect();
        for l in 0..self.w.len() {
            for o in 0..self.w[l].len() {
                for i in 0..self.w[l][o].len() {
                    self.w[l][o][i] -= lr * per.iter().map(|p| p[l].0[o][i]).sum::<f64>();
                }
                self.b[l][o] -= lr * per.iter().map(|p| p[l].1[o]).sum::<f64>();
            }
        }
    }

    /// Forward initialisation with the output clamped to `y`.
    fn init(&self, x0: &[f64], y: &[f64]) -> Vec<Vec<f64>> {
        let mut x = vec![x0.to_vec()];
        for l in 0..self.w.len() {
            let mu = self.predict(l, &x[l]).0;
            x.push(mu);
        }
        *x.last_mut().unwrap() = y.to_vec();
        x
    }

    fn step_nodes(&self, xs: &mut [Vec<Vec<f64>>], gamma: f64) {
        let depth = self.w.len();
        for x in xs.iter_mut() {
            let dx = self.grads(x).0;
            for l in 1..depth {
                for (v, d) in x[l].iter_mut().zip(&dx[l]) {
                    *v -= gamma * d;
                }
            }
        }
    }
}

fn rows(t: &Tensor<f64>) -> Vec<Vec<f64>> {
    (0..t.rows()).map(|r| t.row(r).to_vec()).collect()
}

/// PC: T node steps, then one SGD step on the errors at the relaxed nodes. iPC: at each of T
/// steps, the weights step from the current errors, then the nodes from the same errors, and
/// the next step predicts with the new weights. Both against [`RefNet`], three batches in a row
/// on one workspace (catches stale predictions after iPC's weight update, a dropped precision,
/// a node step on the clamped output, and gradients not reset between batches).
#[test]
fn pc_and_ipc_match_a_plain_loop_reference() {
    for fw in [false, true] {
        for algo in ["pc", "ipc"] {
            let mut r = rng(3);
            let conv = if fw { Convention::Fw } else { Convention::Wf };
            let mut spec = MlpSpec::new(&[3, 4, 4, 2], Activation::Tanh, conv);
            spec.precisions = vec![1.0, 0.5, 2.0];
            let mut net: Net<f64> = Net::mlp(&spec, 9).unwrap();
            randomize_biases(&mut net, &mut r);
            let acts: Vec<fn(f64) -> (f64, f64)> =
                if fw { vec![tanh_df, tanh_df, id_df] } else { vec![id_df, tanh_df, tanh_df] };
            let mut reference = RefNet::from_net(&net, fw, acts, spec.precisions.clone());
            let (steps, gamma, lr) = (6, 0.2, 0.05);
            let inference = InferenceConfig { steps, gamma, ..Default::default() };
            let mut rule = learn::build::<f64>(algo, &inference).unwrap();
            let ocfg = OptimConfig { reduction: Reduction::Sum, ..OptimConfig::sgd(lr) };
            let mut opt = WeightOptim::new(ocfg, &net).unwrap();
            let mut ws = Workspace::new(&net, 5);
            for round in 0..3 {
                let x: Tensor<f64> = randn(5, 3, 1.0, &mut r);
                let y: Tensor<f64> = randn(5, 2, 1.0, &mut r);
                let mut xs: Vec<_> =
                    rows(&x).iter().zip(rows(&y)).map(|(a, b)| reference.init(a, &b)).collect();
                let want_loss: f64 = xs.iter().map(|n| reference.grads(n).2).sum();
                if algo == "pc" {
                    for _ in 0..steps {
                        reference.step_nodes(&mut xs, gamma);
                    }
                    reference.sgd(&xs, lr);
                } else {
                    for _ in 0..steps {
                        let before = reference.w.clone();
                        let bb = reference.b.clone();
                        reference.sgd(&xs, lr);
                        // node step from the errors of the weights before this step's update
                        let (nw, nb) = (
                            std::mem::replace(&mut reference.w, before),
                            std::mem::replace(&mut reference.b, bb),
                        );
                        reference.step_nodes(&mut xs, gamma);
                        reference.w = nw;
                        reference.b = nb;
                    }
                }
                let s = rule
                    .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: round }, &mut ws)
                    .unwrap();
                assert_eq!(s.steps, steps);
                assert!(
                    (s.loss - want_loss).abs() < 1e-12 * want_loss,
                    "{algo}: loss {} vs {want_loss}",
                    s.loss
                );
                let got = flat_params(&net);
                let want = reference.flat();
                let gap = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(gap < 1e-12, "{algo} fw={fw} round {round}: max |θ − θ_ref| = {gap:e}");
                // the hidden nodes end where the reference's do
                for (b, xr) in xs.iter().enumerate() {
                    for l in 1..3 {
                        for (i, v) in xr[l].iter().enumerate() {
                            let d = (ws_node(&ws, l, b, i) - v).abs();
                            assert!(d < 1e-12, "{algo} fw={fw}: x_{l}[{b},{i}] off by {d:e}");
                        }
                    }
                }
            }
        }
    }
}

fn ws_node(ws: &Workspace<f64>, l: usize, b: usize, i: usize) -> f64 {
    // unsharded path: batch 5 < 2 × 16 rows
    ws.x[l].at(b, i)
}

/// Z-IL's weights equal BP's after several batches trained on one reused workspace each.
#[test]
fn zil_equals_backprop_over_several_batches_on_a_reused_workspace() {
    for conv in [Convention::Wf, Convention::Fw] {
        for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
            let mut r = rng(4);
            let mut spec = MlpSpec::new(&[5, 7, 6, 3], Activation::Tanh, conv);
            spec.output_energy = out;
            let mut bp_net: Net<f64> = Net::mlp(&spec, 2).unwrap();
            randomize_biases(&mut bp_net, &mut r);
            let mut zil_net = bp_net.clone();
            let ocfg =
                OptimConfig { kind: OptimKind::Momentum, momentum: 0.5, ..OptimConfig::sgd(0.1) };
            let mut bp_opt = WeightOptim::new(ocfg.clone(), &bp_net).unwrap();
            let mut zil_opt = WeightOptim::new(ocfg, &zil_net).unwrap();
            let (mut bp_ws, mut zil_ws) = (Workspace::new(&bp_net, 4), Workspace::new(&zil_net, 4));
            let (mut bp, mut zil) = (Bp, Zil::default());
            for index in 0..5 {
                let x: Tensor<f64> = randn(4, 5, 1.0, &mut r);
                let y = one_hot(&[index % 3, 1, 2, 0], 3);
                let b = Batch { x: &x, y: &y, index };
                let sb = bp.train_batch(&mut bp_net, &mut bp_opt, b, &mut bp_ws).unwrap();
                let sz = zil.train_batch(&mut zil_net, &mut zil_opt, b, &mut zil_ws).unwrap();
                assert!(
                    (sb.loss - sz.loss).abs() < 1e-12,
                    "batch {index}: losses {} {}",
                    sb.loss,
                    sz.loss
                );
                let gap = sub(&flat_params(&bp_net), &flat_params(&zil_net))
                    .iter()
                    .fold(0.0f64, |m, v| m.max(v.abs()));
                assert!(
                    gap < 1e-12,
                    "{conv:?} {out:?} batch {index}: max |W_zil − W_bp| = {gap:e}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ reported losses

/// Every rule's batch loss is the output loss of the forward pass before the update, and
/// `Net::evaluate` sums the same per-example losses (catches a doubled or halved loss).
#[test]
fn reported_losses_equal_the_loss_of_the_forward_pass() {
    for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy, EnergyKind::Laplace] {
        let mut r = rng(12);
        let mut spec = MlpSpec::new(&[4, 6, 3], Activation::Tanh, Convention::Wf);
        spec.output_energy = out;
        let net0: Net<f64> = Net::mlp(&spec, 1).unwrap();
        let x: Tensor<f64> = randn(8, 4, 1.0, &mut r);
        let y = one_hot(&[0, 1, 2, 0, 1, 2, 2, 1], 3);
        let direct: f64 = batch_loss(&net0, out, &x, &y);
        let (sum, correct) = net0.evaluate(&x, &y).unwrap();
        assert!((sum - direct).abs() < 1e-12 * direct, "{out:?}: evaluate {sum} vs {direct}");
        let mu = net0.predict(&x).unwrap();
        let want_correct = (0..8).filter(|&b| argmax(mu.row(b)) == argmax(y.row(b))).count();
        assert_eq!(correct, want_correct);
        let nudge = InferenceConfig {
            steps: 5,
            output: prospect::OutputMode::Nudge { beta: 0.25 },
            ..Default::default()
        };
        for algo in ["pc-nudge", "ipc-nudge"] {
            let mut net = net0.clone();
            let mut rule = learn::build::<f64>(&algo[..algo.len() - 6], &nudge).unwrap();
            let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net).unwrap();
            let mut ws = Workspace::new(&net, 8);
            let b = Batch { x: &x, y: &y, index: 0 };
            let s = rule.train_batch(&mut net, &mut opt, b, &mut ws).unwrap();
            // at the forward initialisation the link energy is 0 and the nudge is beta × loss
            assert!(
                (s.loss - direct).abs() < 1e-12 * direct,
                "{algo} {out:?}: loss {} vs {direct}",
                s.loss
            );
        }
        for algo in ["bp", "pc", "ipc", "zil"] {
            let mut net = net0.clone();
            let inference = InferenceConfig { steps: 5, ..Default::default() };
            let mut rule = learn::build::<f64>(algo, &inference).unwrap();
            let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net).unwrap();
            let mut ws = Workspace::new(&net, 8);
            let s = rule
                .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)
                .unwrap();
            assert!(
                (s.loss - direct).abs() < 1e-12 * direct,
                "{algo} {out:?}: loss {} vs {direct}",
                s.loss
            );
            assert_eq!((s.examples, s.correct), (8, want_correct), "{algo} {out:?}");
            let steps = match algo {
                "bp" => 0,
                "zil" => 2, // one step per layer
                _ => 5,
            };
            assert_eq!(s.steps, steps, "{algo}");
            // a batch too small to split is relaxed in place, not copied into a shard
            assert!(ws.shards.is_empty(), "{algo}: batch of 8 was split");
        }
    }
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// The trainer's test loss and accuracy equal a direct computation on the test split.
#[test]
fn trainer_evaluation_equals_a_direct_computation() {
    use prospect::train::{load_data, EvalSet, Trainer};
    let mut cfg = prospect::config::preset("digits-mlp").unwrap();
    cfg.train.epochs = 1;
    cfg.train.batches_per_epoch = 3;
    cfg.train.eval_batch_size = 100; // several chunks, the last one partial
    let data = load_data(&cfg).unwrap();
    let test = data.test.clone();
    let mut t = Trainer::with_data(cfg, data).unwrap();
    let m = t.run_epoch(|_| {}).unwrap();
    let e = t.evaluate(EvalSet::Test).unwrap();
    let n = test.len();
    let x = Tensor::from_vec(n, test.features(), test.x.clone()).cast::<f64>();
    let y = Tensor::from_vec(n, test.num_classes, test.one_hot()).cast::<f64>();
    let mu = t.net.predict(&x.cast::<f32>()).unwrap().cast::<f64>();
    let kind = t.config().model.output_energy;
    let want = direct_loss(kind, &y, &mu).iter().sum::<f64>() / n as f64;
    assert!((e.loss - want).abs() < 1e-6 * want, "test loss {} vs direct {want}", e.loss);
    assert_eq!(m.test_loss, e.loss);
    let correct = (0..n).filter(|&b| argmax(mu.row(b)) == argmax(y.row(b))).count();
    assert_eq!(e.correct, correct);
    assert_eq!(e.accuracy, correct as f64 / n as f64);
}

// ------------------------------------------------------------------ settings

/// Both sides of every range check in the inference and optimiser settings, with the key the
/// error names (catches a check that is dropped, inverted or joined with the wrong operator).
#[test]
fn every_setting_is_checked_at_both_sides_of_its_range() {
    use prospect::{Error, OutputMode};
    let key_of = |r: prospect::Result<()>| match r {
        Ok(()) => None,
        Err(Error::Config { key, .. }) => Some(key),
        Err(e) => panic!("not a config error: {e}"),
    };
    let inf = |f: &dyn Fn(&mut InferenceConfig)| {
        let mut c = InferenceConfig::default();
        f(&mut c);
        key_of(c.validate())
    };
    let g = |k: &str| Some(format!("inference.{k}"));
    assert_eq!(inf(&|_| {}), None);
    for bad in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        assert_eq!(inf(&|c| c.gamma = bad), g("gamma"), "gamma {bad}");
    }
    assert_eq!(inf(&|c| c.gamma = 1e-9), None);
    for bad in [-0.1, 1.0, f64::NAN] {
        assert_eq!(inf(&|c| c.momentum = bad), g("momentum"), "momentum {bad}");
    }
    for ok in [0.0, 0.99] {
        assert_eq!(inf(&|c| c.momentum = ok), None);
    }
    for bad in [-1e-9, f64::NAN] {
        assert_eq!(inf(&|c| c.tol = bad), g("tol"), "tol {bad}");
    }
    for ok in [0.0, 0.5, 2.0] {
        assert_eq!(inf(&|c| c.tol = ok), None, "tol {ok}");
    }
    for bad in [0.0, -1.0, f64::INFINITY, f64::NAN] {
        assert_eq!(inf(&|c| c.output = OutputMode::Nudge { beta: bad }), g("output.beta"));
    }
    assert_eq!(inf(&|c| c.output = OutputMode::Nudge { beta: 1e-6 }), None);
    // the rule registry validates too
    let bad = InferenceConfig { gamma: -1.0, ..Default::default() };
    assert!(learn::build::<f64>("pc", &bad).is_err());

    let opt = |f: &dyn Fn(&mut OptimConfig)| {
        let mut c = OptimConfig::default();
        f(&mut c);
        key_of(c.validate())
    };
    let o = |k: &str| Some(format!("optimizer.{k}"));
    assert_eq!(opt(&|_| {}), None);
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        assert_eq!(opt(&|c| c.lr = bad), o("lr"), "lr {bad}");
    }
    assert_eq!(opt(&|c| c.lr = 0.0), None);
    for bad in [-0.1, 1.0, f64::NAN] {
        assert_eq!(opt(&|c| c.momentum = bad), o("momentum"));
        assert_eq!(opt(&|c| c.beta1 = bad), o("beta1"));
        assert_eq!(opt(&|c| c.beta2 = bad), o("beta2"));
    }
    for ok in [0.0, 0.999] {
        assert_eq!(opt(&|c| c.momentum = ok), None);
        assert_eq!(opt(&|c| c.beta1 = ok), None);
        assert_eq!(opt(&|c| c.beta2 = ok), None);
    }
    for bad in [0.0, -1e-8, f64::NAN] {
        assert_eq!(opt(&|c| c.eps = bad), o("eps"), "eps {bad}");
    }
    assert_eq!(opt(&|c| c.eps = 1e-12), None);
    for bad in [-1e-3, f64::NAN] {
        assert_eq!(opt(&|c| c.weight_decay = bad), o("weight_decay"));
    }
    assert_eq!(opt(&|c| c.weight_decay = 0.0), None);
    for bad in [-0.1, 1.0, f64::NAN] {
        assert_eq!(opt(&|c| c.schedule.warmup = bad), o("schedule.warmup"), "warmup {bad}");
    }
    assert_eq!(opt(&|c| c.schedule.warmup = 0.0), None);
    assert_eq!(opt(&|c| c.schedule.factor = 0.0), o("schedule"));
    assert_eq!(opt(&|c| c.schedule.final_factor = -0.1), o("schedule"));
    assert_eq!(opt(&|c| c.schedule.final_factor = 0.0), None);
    // and a bad optimiser cannot be built
    let spec = MlpSpec::new(&[2, 2], Activation::Identity, Convention::Wf);
    let net: Net<f64> = Net::mlp(&spec, 0).unwrap();
    assert!(WeightOptim::new(OptimConfig { eps: 0.0, ..Default::default() }, &net).is_err());
}

/// The analytic FLOP counts `prospect bench` divides by, against a count by hand on a 4-5-3
/// net: layer 1 has 20 multiply-adds per example, layer 2 has 15.
#[test]
fn flop_counts_match_a_count_by_hand() {
    let spec = MlpSpec::new(&[4, 5, 3], Activation::Tanh, Convention::Wf);
    let net: Net<f64> = Net::mlp(&spec, 0).unwrap();
    assert_eq!(net.macs_per_example(), 35);
    let inference = InferenceConfig { steps: 7, ..Default::default() };
    let flops = |algo: &str| learn::build::<f64>(algo, &inference).unwrap().flops_per_example(&net);
    // bp: forward (20 + 15), VJP into layer 1's output (15), parameter gradients (35)
    assert_eq!(flops("bp"), 2 * (20 + 15 + 15 + 35));
    // pc: forward once, then T = 7 steps each re-predicting layer 2 and one VJP; gradients once
    assert_eq!(flops("pc"), 2 * (20 + 8 * 15 + 7 * 15 + 35));
    // ipc: weights change every step, so everything is recomputed at each of the 7 steps
    assert_eq!(flops("ipc"), 2 * 7 * (20 + 15 + 15 + 35));
    // zil: L = 2 steps; one layer's gradients per step (35 in all)
    assert_eq!(flops("zil"), 2 * (20 + 2 * 15 + 2 * 15 + 35));
}

/// The optimiser state visited for checkpoints, copied into a fresh optimiser with the update
/// counts, continues exactly where the first one was.
#[test]
fn optimizer_state_copied_through_its_visitors_continues_the_run() {
    let cfg = OptimConfig { kind: OptimKind::Adamw, weight_decay: 0.01, ..OptimConfig::adam(0.05) };
    assert_eq!((OptimConfig::adam(0.05).kind, OptimConfig::adam(0.05).lr), (OptimKind::Adam, 0.05));
    assert_eq!((OptimConfig::sgd(0.2).kind, OptimConfig::sgd(0.2).lr), (OptimKind::Sgd, 0.2));
    let mut a = layer(W0, B0);
    let mut oa = WeightOptim::new(cfg.clone(), &a).unwrap();
    for g1 in [G1, G2] {
        oa.step(&mut a, &[grads(g1.0, g1.1)], 2);
        oa.end_batch();
    }
    let mut names = vec![];
    let mut saved = vec![];
    oa.for_each_state(&mut |n, t| {
        names.push(n);
        saved.push(t.clone());
    });
    assert_eq!(
        names,
        ["optim.layers.0.0.m", "optim.layers.0.0.v", "optim.layers.0.1.m", "optim.layers.0.1.v"]
    );
    assert!(saved.iter().all(|t| t.data().iter().any(|v| *v != 0.0)), "moments must be non-zero");
    assert_eq!(oa.update_counts(), &[2]);
    let mut b = a.clone();
    let mut ob = WeightOptim::new(cfg, &b).unwrap();
    let mut i = 0;
    ob.for_each_state_mut(&mut |_, t| {
        *t = saved[i].clone();
        i += 1;
    });
    ob.set_update_counts(oa.update_counts());
    ob.batches_done = oa.batches_done;
    oa.step(&mut a, &[grads(G1.0, G1.1)], 2);
    ob.step(&mut b, &[grads(G1.0, G1.1)], 2);
    assert_eq!(params(&a), params(&b));
}

/// More points of both decaying schedules, each by hand.
#[test]
fn schedule_factors_match_hand_values() {
    let step = Schedule { kind: ScheduleKind::Step, every: 10, factor: 0.5, ..Default::default() };
    for (t, f) in [(0, 1.0), (9, 1.0), (10, 0.5), (19, 0.5), (25, 0.25), (30, 0.125)] {
        assert_eq!(step.factor_at(t, 100), f, "step t={t}");
    }
    let every0 = Schedule { every: 0, ..step };
    assert_eq!(every0.factor_at(3, 100), 0.125); // every 0 acts as every 1
                                                 // warm-up over 2 of 10 batches (t+1)/2, then cosine from 1 to 0.1 over the other 8
    let wc = Schedule {
        kind: ScheduleKind::WarmupCosine,
        warmup: 0.2,
        final_factor: 0.1,
        ..Default::default()
    };
    let cos = |p: f64| 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
    for (t, f) in [
        (0, 0.5),
        (1, 1.0),
        (2, 1.0),
        (4, cos(0.25)),
        (6, cos(0.5)),
        (9, cos(7.0 / 8.0)),
        (10, 0.1),
        (50, 0.1),
    ] {
        assert!(
            (wc.factor_at(t, 10) - f).abs() < 1e-12,
            "warmup-cosine t={t}: {} vs {f}",
            wc.factor_at(t, 10)
        );
    }
}

/// A NaN anywhere is an error naming the batch, the step and the first layer whose energy is
/// not finite, for every rule.
#[test]
fn non_finite_energies_name_batch_step_and_layer() {
    use prospect::Error;
    let spec = MlpSpec::new(&[3, 4, 4, 2], Activation::Tanh, Convention::Wf);
    let net0: Net<f64> = Net::mlp(&spec, 0).unwrap();
    let x = Tensor::from_fn(2, 3, |r, c| (r + c) as f64 * 0.3);
    let y = one_hot::<f64>(&[0, 1], 2);
    let mut bad_y = y.clone();
    bad_y.data_mut()[1] = f64::NAN;
    let mut bad_x = x.clone();
    bad_x.data_mut()[0] = f64::NAN;
    for algo in ["bp", "pc", "ipc", "zil"] {
        for (xx, yy, layer) in [(&x, &bad_y, 3), (&bad_x, &y, 1)] {
            let mut net = net0.clone();
            let mut rule = learn::build::<f64>(algo, &InferenceConfig::default()).unwrap();
            let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net).unwrap();
            let mut ws = Workspace::new(&net, 2);
            match rule.train_batch(&mut net, &mut opt, Batch { x: xx, y: yy, index: 7 }, &mut ws) {
                Err(Error::NonFinite { batch, step, layer: l, .. }) => {
                    // backprop has one energy, the output loss: a NaN anywhere shows there
                    let layer = if algo == "bp" { 3 } else { layer };
                    assert_eq!((batch, step, l), (7, 0, layer), "{algo}");
                }
                other => panic!("{algo}: expected a non-finite error, got {other:?}"),
            }
        }
    }
    // the same through inference alone
    let mut ws = Workspace::new(&net0, 2);
    ws.load(&net0, &x, &bad_y).unwrap();
    match net0.infer(&mut ws, &InferenceConfig::default(), 3) {
        Err(Error::NonFinite { batch: 3, step: 0, layer: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// The names energies and rules report are the names configs and the command line use.
#[test]
fn energies_and_rules_report_their_config_names() {
    for (kind, name) in [
        (EnergyKind::Gaussian, "gaussian"),
        (EnergyKind::CrossEntropy, "cross_entropy"),
        (EnergyKind::Laplace, "laplace"),
    ] {
        assert_eq!(kind.build::<f64>(1.0).name(), name);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
    }
    for (name, _) in learn::RULES {
        let rule = learn::build::<f32>(name, &InferenceConfig::default()).unwrap();
        assert_eq!(rule.name(), *name);
    }
}

/// `copy_params_from` carries every weight and bias across element types.
#[test]
fn parameters_copy_across_element_types() {
    let spec = MlpSpec::new(&[3, 4, 2], Activation::Tanh, Convention::Fw);
    let mut src: Net<f64> = Net::mlp(&spec, 1).unwrap();
    randomize_biases(&mut src, &mut rng(2));
    let mut dst: Net<f32> = Net::mlp(&spec, 9).unwrap();
    dst.copy_params_from(&src);
    let (a, b) = (flat_params(&src), flat_params(&dst));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(*y, *x as f32 as f64);
    }
}
