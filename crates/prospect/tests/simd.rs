//! The element-wise kernels compiled per SIMD level (`tensor::simd`): every level this CPU has
//! gives the baseline build's numbers up to rounding (FMA contraction, vector sums), in the
//! kernels themselves and in whole PC training steps. Its own process: the level is global
//! (and the two tests take turns with it, see `LEVEL`).

mod common;

use common::*;
use prospect::tensor::simd::{self, Level};
use prospect::{
    learn, Activation, Convention, InferenceConfig, MlpSpec, Net, NodeOptim, OptimConfig,
    OptimKind, Tensor, WeightOptim, Workspace,
};

/// Outputs of the hot kernels and of three PC batches (GELU net, momentum nodes, AdamW).
fn outputs() -> Vec<f32> {
    let mut out = Vec::new();
    let xs: Vec<f32> = (0..1001).map(|i| -9.0 + 18.0 * i as f32 / 1000.0).collect();
    for act in Activation::ALL {
        let (mut y, mut d) = (vec![0.0f32; xs.len()], vec![0.0f32; xs.len()]);
        act.apply_with_deriv(&xs, &mut y, &mut d);
        out.extend(y);
        out.extend(d);
    }
    let mut r = rng(3);
    let spec = MlpSpec::new(&[20, 33, 17, 5], Activation::Gelu, Convention::Fw);
    let mut net: Net = Net::mlp(&spec, 1).unwrap();
    let adamw =
        OptimConfig { kind: OptimKind::Adamw, weight_decay: 1e-3, ..OptimConfig::adam(1e-2) };
    let mut opt = WeightOptim::new(adamw, &net).unwrap();
    let inference = InferenceConfig {
        steps: 8,
        gamma: 0.05,
        optimizer: NodeOptim::Momentum,
        momentum: 0.6,
        ..Default::default()
    };
    let mut rule = learn::build::<f32>("pc", &inference).unwrap();
    let mut ws = Workspace::new(&net, 24);
    for b in 0..3 {
        let x: Tensor = randn::<f64>(24, 20, 1.0, &mut r).cast();
        let labels: Vec<usize> = (0..24).map(|i| (i * 3 + b) % 5).collect();
        let y: Tensor = one_hot(&labels, 5);
        let s =
            rule.train_batch(&mut net, &mut opt, learn::Batch { x: &x, y: &y, index: b }, &mut ws);
        out.push(s.unwrap().energy as f32);
    }
    for layer in &net.layers {
        layer.for_each_param(&mut |_, t| out.extend_from_slice(t.data()));
    }
    out
}

/// The level is process-wide and the test harness runs tests on parallel threads: each test
/// holds this lock while it sets and reads the level (without it, one test's `set_level` lands
/// between the other's `set_level` and its check).
static LEVEL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_level_gives_the_baseline_numbers() {
    let _level = LEVEL.lock().unwrap_or_else(|p| p.into_inner());
    let top = simd::detected();
    simd::set_level(Level::Base);
    assert_eq!(simd::level(), Level::Base);
    let base = outputs();
    assert!(base.iter().all(|v| v.is_finite()));
    for level in [Level::Avx2, Level::Avx512] {
        if level > top {
            eprintln!("this CPU has no {level:?}: not compared");
            continue;
        }
        simd::set_level(level);
        assert_eq!(simd::level(), level);
        let got = outputs();
        let scale = base.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = got.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{level:?}: largest gap {worst} (scale {scale})");
        eprintln!("{level:?}: largest gap {worst:e} against the baseline (scale {scale})");
    }
}

#[test]
fn the_level_never_exceeds_the_cpu() {
    let _level = LEVEL.lock().unwrap_or_else(|p| p.into_inner());
    simd::set_level(Level::Avx512);
    assert!(simd::level() <= simd::detected());
}
