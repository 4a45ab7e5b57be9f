//! Z-IL = backprop (Song et al., NeurIPS 2020): equal updates in f64 and f32 with all three
//! conditions, and a clear gap when any one of them is broken.

use crate::common::*;
use prospect::learn::{self, Batch, NodeInit, Zil, ZilConfig, ZilSchedule};
use prospect::{
    Activation, Convention, EnergyKind, MlpSpec, Net, OptimConfig, Rule, Scalar, Tensor,
    WeightOptim, Workspace,
};

/// Trains one batch with `rule` from `net0` with SGD(lr) and returns the new network.
fn one_batch<T: Scalar>(
    net0: &Net<T>,
    rule: &mut dyn Rule<T>,
    x: &Tensor<T>,
    y: &Tensor<T>,
    lr: f64,
) -> Net<T> {
    let mut net = net0.clone();
    let mut opt = WeightOptim::new(OptimConfig::sgd(lr), &net).unwrap();
    let mut ws = Workspace::new(&net, x.rows());
    rule.train_batch(&mut net, &mut opt, Batch { x, y, index: 0 }, &mut ws).unwrap();
    net
}

/// Per-layer ‖ΔW_a − ΔW_b‖ / ‖ΔW_b‖ (updates measured from `net0`), and the largest
/// absolute weight difference.
fn update_gap<T: Scalar>(net0: &Net<T>, a: &Net<T>, b: &Net<T>) -> (f64, f64) {
    let mut worst_rel = 0.0f64;
    let mut worst_abs = 0.0f64;
    for i in 0..net0.depth() {
        let p0 = layer_params(net0.layers[i].as_ref());
        let pa = layer_params(a.layers[i].as_ref());
        let pb = layer_params(b.layers[i].as_ref());
        let da = sub(&pa, &p0);
        let db = sub(&pb, &p0);
        worst_rel = worst_rel.max(norm(&sub(&da, &db)) / norm(&db));
        worst_abs = worst_abs.max(sub(&pa, &pb).iter().fold(0.0, |m, v| m.max(v.abs())));
    }
    (worst_rel, worst_abs)
}

fn zil_setup<T: Scalar>(conv: Convention, out: EnergyKind) -> (Net<T>, Tensor<T>, Tensor<T>) {
    let mut r = rng(77);
    let mut spec = MlpSpec::new(&[7, 9, 8, 6, 4], Activation::Tanh, conv);
    spec.output_energy = out;
    let mut net64: Net<f64> = Net::mlp(&spec, 12).unwrap();
    randomize_biases(&mut net64, &mut r);
    let x: Tensor<f64> = randn(5, 7, 1.0, &mut r);
    let y = one_hot::<f64>(&[0, 3, 1, 2, 3], 4);
    let net = cast_net::<T>(&net64, &spec, 12);
    (net, x.cast(), y.cast())
}

#[test]
fn zil_equals_backprop_in_f64() {
    for conv in [Convention::Wf, Convention::Fw] {
        for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
            let (net0, x, y) = zil_setup::<f64>(conv, out);
            let bp = one_batch(&net0, &mut learn::Bp, &x, &y, 0.1);
            let zil = one_batch(&net0, &mut Zil::default(), &x, &y, 0.1);
            let (rel, abs) = update_gap(&net0, &zil, &bp);
            eprintln!("f64 {conv:?} {out:?}: abs {abs:e} rel {rel:e}");
            assert!(abs < 1e-10, "{conv:?} {out:?}: max |W_zil - W_bp| = {abs:e}");
            assert!(rel < 1e-10, "{conv:?} {out:?}: relative update gap {rel:e}");
        }
    }
}

#[test]
fn zil_equals_backprop_in_f32() {
    for conv in [Convention::Wf, Convention::Fw] {
        let (net0, x, y) = zil_setup::<f32>(conv, EnergyKind::Gaussian);
        let bp = one_batch(&net0, &mut learn::Bp, &x, &y, 0.1);
        let zil = one_batch(&net0, &mut Zil::default(), &x, &y, 0.1);
        let (rel, _) = update_gap(&net0, &zil, &bp);
        eprintln!("f32 {conv:?}: rel {rel:e}");
        assert!(rel < 1e-5, "{conv:?}: relative update gap {rel:e}");
    }
}

/// Breaking any one of the three conditions of Z-IL breaks the equality with backprop.
#[test]
fn zil_breaks_when_any_condition_is_broken() {
    for conv in [Convention::Wf, Convention::Fw] {
        let (net0, x, y) = zil_setup::<f64>(conv, EnergyKind::Gaussian);
        let bp = one_batch(&net0, &mut learn::Bp, &x, &y, 0.1);
        let broken = [
            ("zero init", ZilConfig { init: NodeInit::Zero, ..Default::default() }),
            ("gamma 0.5", ZilConfig { gamma: 0.5, ..Default::default() }),
            (
                "all layers at the end",
                ZilConfig { schedule: ZilSchedule::AllAtEnd, ..Default::default() },
            ),
        ];
        for (what, cfg) in broken {
            let zil = one_batch(&net0, &mut Zil { cfg }, &x, &y, 0.1);
            let (rel, _) = update_gap(&net0, &zil, &bp);
            eprintln!("{conv:?} {what}: rel {rel:e}");
            assert!(rel > 1e-3, "{conv:?} {what}: relative gap only {rel:e}");
        }
    }
}

/// With zero initialisation (condition 1 broken on purpose) the first step sees every hidden
/// node at 0: the reported loss is the energy of that state, written out by hand for a linear
/// net: `E = ½‖0 − W₁x₀‖² + ½‖y − W₂·0‖²`.
#[test]
fn zil_zero_init_starts_from_zero_hidden_nodes() {
    let mut spec = MlpSpec::new(&[2, 2, 2], Activation::Identity, Convention::Wf);
    spec.bias = false;
    let mut net: Net<f64> = Net::mlp(&spec, 3).unwrap();
    let w1 = [0.5, -1.0, 2.0, 0.25];
    for (l, w) in [w1, [1.0, 2.0, 3.0, 4.0]].iter().enumerate() {
        net.layers[l].for_each_param_mut(&mut |_, p| p.data_mut().copy_from_slice(w));
    }
    let x = Tensor::from_vec(1, 2, vec![1.0, 2.0]);
    let y = Tensor::from_vec(1, 2, vec![0.5, -0.5]);
    // W₁x₀ = (0.5 - 2, 2 + 0.5) = (-1.5, 2.5): ½(2.25 + 6.25) = 4.25; ½(0.25 + 0.25) = 0.25
    let mut zil = Zil { cfg: ZilConfig { init: NodeInit::Zero, ..Default::default() } };
    let mut opt = WeightOptim::new(OptimConfig::sgd(0.0), &net).unwrap();
    let mut ws = Workspace::new(&net, 1);
    let s = zil.train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws).unwrap();
    assert!((s.loss - 4.5).abs() < 1e-12, "first-step energy {}", s.loss);
    // with the forward initialisation the hidden error is 0 and only the output's remains
    let mut fwd = Zil::default();
    let s = fwd.train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws).unwrap();
    // W₂ (-1.5, 2.5) = (-1.5 + 5, -4.5 + 10) = (3.5, 5.5); ½(3² + 6²) = 22.5
    assert!((s.loss - 22.5).abs() < 1e-12, "forward-init energy {}", s.loss);
    // Step 1 (lr 0: the weights stay): e₂ = y − W₂x₁ = (−3, −6), dE/dx₁ = −W₂ᵀe₂ = (21, 30), so
    // x₁ = (−22.5, −27.5); the energy reported at the last step is that of the new nodes under
    // re-computed predictions: ½‖(−21, −30)‖² + ½‖y − W₂x₁‖² = 670.5 + ½‖(78, 177)‖² = 19377
    // (stale predictions would give 670.5 + 22.5).
    assert_eq!(s.energy, 19377.0);
}
