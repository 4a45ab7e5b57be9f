//! Learning rules as a user meets them: training accuracy on a nonlinear task, determinism,
//! and clear errors for bad input (the exactness oracles live in `tests/oracles/`).

mod common;

use common::*;
use prospect::learn::{self, Batch};
use prospect::{
    Activation, Convention, EnergyKind, Error, InferenceConfig, MlpSpec, Net, OptimConfig, Tensor,
    WeightOptim, Workspace,
};

/// Trains `algo` on XOR blobs (2 signal + 6 noise dimensions) and returns test accuracy.
fn train_xor(algo: &str, conv: Convention, seed: u64) -> (f64, Net<f32>) {
    let (xtr, ytr, _) = xor_blobs::<f32>(1024, 6, seed);
    let (xte, yte, _) = xor_blobs::<f32>(1000, 6, seed + 1000);
    let spec = MlpSpec::new(&[8, 32, 32, 2], Activation::Tanh, conv);
    let mut net: Net<f32> = Net::mlp(&spec, seed).unwrap();
    let inference = InferenceConfig { steps: 20, gamma: 0.1, ..Default::default() };
    let mut rule = learn::build::<f32>(algo, &inference).unwrap();
    let lr = if algo == "ipc" { 0.002 } else { 0.005 };
    let mut opt = WeightOptim::new(OptimConfig::adam(lr), &net).unwrap();
    let b = 32;
    let mut ws = Workspace::new(&net, b);
    let mut xb = Tensor::zeros(b, 8);
    let mut yb = Tensor::zeros(b, 2);
    let mut index = 0;
    for _epoch in 0..15 {
        for s in (0..1024).step_by(b) {
            xb.copy_from_slice(&xtr.data()[s * 8..(s + b) * 8]);
            yb.copy_from_slice(&ytr.data()[s * 2..(s + b) * 2]);
            rule.train_batch(&mut net, &mut opt, Batch { x: &xb, y: &yb, index }, &mut ws).unwrap();
            index += 1;
        }
    }
    let (_, correct) = net.evaluate(&xte, &yte).unwrap();
    (correct as f64 / 1000.0, net)
}

#[test]
fn pc_ipc_and_bp_learn_a_nonlinear_task() {
    for algo in ["pc", "ipc", "bp"] {
        for conv in [Convention::Wf, Convention::Fw] {
            let (acc, _) = train_xor(algo, conv, 3);
            eprintln!("{algo} {conv:?}: {acc}");
            assert!(acc >= 0.95, "{algo} {conv:?}: test accuracy {acc}");
        }
    }
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let (_, a) = train_xor("pc", Convention::Fw, 8);
    let (_, b) = train_xor("pc", Convention::Fw, 8);
    assert_eq!(flat_params(&a), flat_params(&b));
}

#[test]
fn layers_that_do_not_chain_are_a_shape_error_naming_the_layers() {
    let mut r = rng(1);
    let l1 = prospect::Dense::<f32>::new(
        4,
        5,
        Activation::Relu,
        Convention::Wf,
        true,
        Default::default(),
        &mut r,
    );
    let l2 = prospect::Dense::<f32>::new(
        6,
        2,
        Activation::Relu,
        Convention::Wf,
        true,
        Default::default(),
        &mut r,
    );
    let e = Net::new(
        vec![Box::new(l1), Box::new(l2)],
        vec![EnergyKind::Gaussian.build(1.0), EnergyKind::Gaussian.build(1.0)],
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{msg}");
    assert!(msg.contains("layer 1 -> layer 2") && msg.contains('5') && msg.contains('6'), "{msg}");
}

#[test]
fn batch_shape_mismatches_name_both_shapes() {
    let net: Net<f32> =
        Net::mlp(&MlpSpec::new(&[4, 8, 3], Activation::Tanh, Convention::Wf), 0).unwrap();
    let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net).unwrap();
    let mut ws = Workspace::new(&net, 2);
    let mut rule = learn::build::<f32>("pc", &InferenceConfig::default()).unwrap();
    let mut net2 = net.clone();
    let x = Tensor::zeros(2, 5);
    let y = Tensor::zeros(2, 3);
    let msg = rule
        .train_batch(&mut net2, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("input vs layer 1") && msg.contains("[2, 4]") && msg.contains("[2, 5]"),
        "{msg}"
    );
    let x = Tensor::zeros(2, 4);
    let y = Tensor::zeros(2, 2);
    let msg = rule
        .train_batch(&mut net2, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("target vs layer 2") && msg.contains("[2, 3]") && msg.contains("[2, 2]"),
        "{msg}"
    );
    assert!(net.predict(&Tensor::zeros(1, 3)).is_err());
}

#[test]
fn divergence_is_an_error_naming_batch_step_and_layer() {
    let net0: Net<f32> =
        Net::mlp(&MlpSpec::new(&[4, 8, 8, 3], Activation::Identity, Convention::Wf), 0).unwrap();
    let x = Tensor::full(4, 4, 1.0e3f32);
    let y = Tensor::full(4, 3, -1.0e3f32);
    for algo in ["pc", "ipc", "zil", "bp", "eqprop", "chl"] {
        let mut net = net0.clone();
        let inference = InferenceConfig { steps: 50, gamma: 5.0, ..Default::default() };
        let mut rule = learn::build::<f32>(algo, &inference).unwrap();
        let mut opt = WeightOptim::new(OptimConfig::sgd(1e6), &net).unwrap();
        let mut ws = Workspace::new(&net, 4);
        let mut err = None;
        for index in 0..50 {
            if let Err(e) =
                rule.train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)
            {
                err = Some(e);
                break;
            }
        }
        let e = err.unwrap_or_else(|| panic!("{algo} never diverged"));
        match &e {
            Error::NonFinite { layer, .. } => assert!(*layer >= 1 && *layer <= 3, "{e}"),
            other => panic!("{algo}: expected NonFinite, got {other}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("batch") && msg.contains("step") && msg.contains("layer"), "{msg}");
    }
}

#[test]
fn unknown_rule_lists_valid_ones() {
    let e = learn::build::<f32>("hebb", &InferenceConfig::default()).err().unwrap().to_string();
    assert!(e.contains("hebb") && e.contains("bp, pc, ipc, zil"), "{e}");
}
