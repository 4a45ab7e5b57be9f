//! Numerical oracles: finite differences, closed-form equilibria, the weak-feedback limit.

use crate::common::*;
use prospect::learn::{Bp, Pc};
use prospect::{
    Activation, Convention, EnergyKind, InferenceConfig, MlpSpec, Net, OutputMode, Tensor,
    Workspace,
};

/// Total energy at the current nodes (predictions recomputed from layer 1).
fn energy(net: &Net<f64>, ws: &mut Workspace<f64>, out: OutputMode) -> f64 {
    net.predict_from(ws, 1);
    net.energy_grads(ws, out, false)
}

/// dE/dx for every free node and dE/dθ for every parameter, against central differences.
/// A wrong sign, a missing f' factor or a transposed product each fail this test.
fn check_local_gradients(
    act: Activation,
    conv: Convention,
    hidden_energy: EnergyKind,
    out_energy: EnergyKind,
    out: OutputMode,
) {
    let mut r = rng(11);
    let mut spec = MlpSpec::new(&[5, 7, 6, 4], act, conv);
    spec.output_energy = out_energy;
    spec.hidden_energy = hidden_energy;
    spec.precisions = vec![1.0, 0.7, 1.3];
    spec.activate_input = true;
    let mut net: Net<f64> = Net::mlp(&spec, 3).unwrap();
    randomize_biases(&mut net, &mut r);
    let batch = 3;
    let x: Tensor<f64> = randn(batch, 5, 1.0, &mut r);
    let labels = [0, 3, 1];
    let y = one_hot(&labels, 4);
    let mut ws = Workspace::new(&net, batch);
    ws.load(&net, &x, &y).unwrap();
    let clamped = !matches!(out, OutputMode::Nudge { .. });
    net.forward(&mut ws, clamped);
    // Move the free nodes off the forward pass so every error is non-zero.
    let free_top = if clamped { 2 } else { 3 };
    for l in 1..=free_top {
        let n = randn::<f64>(batch, ws.x[l].cols(), 0.5, &mut r);
        for (v, d) in ws.x[l].data_mut().iter_mut().zip(n.data()) {
            *v += d;
        }
    }
    net.predict_from(&mut ws, 1);
    net.energy_grads(&mut ws, out, true);
    for l in 1..=3 {
        net.layer_param_grads(&mut ws, l);
    }
    let dx: Vec<Tensor<f64>> = ws.dx.clone();
    let grads = ws.grads.clone();
    let h = 1e-5;
    let tol = |fd: f64| 1e-6 * fd.abs().max(1.0);
    let what = format!("{act} {conv:?} hidden {hidden_energy:?} output {out_energy:?} {out:?}");
    for l in 1..=free_top {
        for i in 0..ws.x[l].len() {
            let orig = ws.x[l].data()[i];
            ws.x[l].data_mut()[i] = orig + h;
            let ep = energy(&net, &mut ws, out);
            ws.x[l].data_mut()[i] = orig - h;
            let em = energy(&net, &mut ws, out);
            ws.x[l].data_mut()[i] = orig;
            let fd = (ep - em) / (2.0 * h);
            let a = dx[l].data()[i];
            assert!((a - fd).abs() < tol(fd), "{what}: dE/dx_{l}[{i}] = {a}, fd {fd}");
        }
    }
    for li in 0..3 {
        let mut names = vec![];
        net.layers[li].for_each_param(&mut |n, _| names.push(n));
        for (p_index, name) in names.into_iter().enumerate() {
            let len = grads[li][p_index].len();
            for i in 0..len {
                let set = |net: &mut Net<f64>, delta: f64| nudge_param(net, li, p_index, i, delta);
                set(&mut net, h);
                let ep = energy(&net, &mut ws, out);
                set(&mut net, -2.0 * h);
                let em = energy(&net, &mut ws, out);
                set(&mut net, h);
                let fd = (ep - em) / (2.0 * h);
                let a = grads[li][p_index].data()[i];
                assert!(
                    (a - fd).abs() < tol(fd),
                    "{what}: dE/d{name}_{}[{i}] = {a}, fd {fd}",
                    li + 1
                );
            }
        }
    }
}

#[test]
fn local_gradients_match_finite_differences() {
    for act in Activation::ALL {
        for conv in [Convention::Wf, Convention::Fw] {
            for e in [EnergyKind::Gaussian, EnergyKind::CrossEntropy, EnergyKind::Laplace] {
                check_local_gradients(act, conv, EnergyKind::Gaussian, e, OutputMode::Clamp);
            }
        }
    }
}

#[test]
fn nudged_output_gradients_match_finite_differences() {
    for conv in [Convention::Wf, Convention::Fw] {
        for e in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
            check_local_gradients(
                Activation::Tanh,
                conv,
                EnergyKind::Gaussian,
                e,
                OutputMode::Nudge { beta: 0.3 },
            );
        }
    }
}

/// Every energy allowed on hidden layers (Gaussian with precisions, Laplace, categorical and
/// Bernoulli on logits) against central differences, under every output energy (categorical
/// and Bernoulli on target probabilities) and both conventions, and under the weighted
/// outputs of equilibrium propagation; the Laplace sign and an ignored precision in `dE/dx`
/// fail here.
#[test]
fn hidden_energies_match_finite_differences() {
    let hidden_kinds =
        [EnergyKind::Gaussian, EnergyKind::Laplace, EnergyKind::Categorical, EnergyKind::Bernoulli];
    for hidden in hidden_kinds {
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::LeakyRelu(0.1)] {
            for conv in [Convention::Wf, Convention::Fw] {
                for e in EnergyKind::ALL {
                    check_local_gradients(act, conv, hidden, e, OutputMode::Clamp);
                }
                check_local_gradients(
                    act,
                    conv,
                    hidden,
                    EnergyKind::Gaussian,
                    OutputMode::Nudge { beta: 0.3 },
                );
                // The phases of equilibrium propagation: the output's energy weighted by beta.
                for beta in [0.4, -0.3] {
                    check_local_gradients(
                        act,
                        conv,
                        hidden,
                        EnergyKind::Gaussian,
                        OutputMode::Weighted { beta },
                    );
                }
            }
        }
    }
}

/// science.md §4: for a linear chain x_0 → x_1 → x_2 with both ends clamped the hidden
/// equilibrium is x_1* = (I + W_2ᵀW_2)⁻¹ (W_1 x_0 + W_2ᵀ x_2).
#[test]
fn linear_chain_relaxes_to_closed_form_equilibrium() {
    let mut r = rng(5);
    let mut spec = MlpSpec::new(&[3, 5, 4], Activation::Identity, Convention::Wf);
    spec.bias = false;
    let net: Net<f64> = Net::mlp(&spec, 9).unwrap();
    let batch = 2;
    let x0: Tensor<f64> = randn(batch, 3, 1.0, &mut r);
    let x2: Tensor<f64> = randn(batch, 4, 1.0, &mut r);
    let mut ws = Workspace::new(&net, batch);
    ws.load(&net, &x0, &x2).unwrap();
    let cfg = InferenceConfig { steps: 3000, gamma: 0.1, ..Default::default() };
    let stats = net.infer(&mut ws, &cfg, 0).unwrap();
    assert_eq!(stats.steps, 3000);
    let mut w1 = None;
    let mut w2 = None;
    net.layers[0].for_each_param(&mut |_, p| w1 = Some(p.clone()));
    net.layers[1].for_each_param(&mut |_, p| w2 = Some(p.clone()));
    let (w1, w2) = (w1.unwrap(), w2.unwrap());
    for b in 0..batch {
        // A = I + W2ᵀ W2, rhs = W1 x0 + W2ᵀ x2
        let a: Vec<Vec<f64>> = (0..5)
            .map(|i| {
                (0..5)
                    .map(|j| {
                        (i == j) as u8 as f64
                            + (0..4).map(|k| w2.at(k, i) * w2.at(k, j)).sum::<f64>()
                    })
                    .collect()
            })
            .collect();
        let rhs: Vec<f64> = (0..5)
            .map(|i| {
                (0..3).map(|k| w1.at(i, k) * x0.at(b, k)).sum::<f64>()
                    + (0..4).map(|k| w2.at(k, i) * x2.at(b, k)).sum::<f64>()
            })
            .collect();
        let want = solve(a, rhs);
        for (i, w) in want.iter().enumerate() {
            let got = ws.x[1].at(b, i);
            assert!((got - w).abs() < 1e-6, "x_1[{b},{i}] = {got}, closed form {w}");
        }
    }
}

/// science.md §4: with a weakly nudged output the PC weight update, divided by beta,
/// points along the backprop gradient.
#[test]
fn weakly_nudged_pc_update_aligns_with_backprop() {
    for conv in [Convention::Wf, Convention::Fw] {
        let mut r = rng(21);
        let spec = MlpSpec::new(&[6, 10, 8, 3], Activation::Tanh, conv);
        let mut net: Net<f64> = Net::mlp(&spec, 4).unwrap();
        randomize_biases(&mut net, &mut r);
        let x: Tensor<f64> = randn(4, 6, 1.0, &mut r);
        let y = one_hot(&[0, 2, 1, 2], 3);
        let mut ws = Workspace::new(&net, 4);
        ws.load(&net, &x, &y).unwrap();
        Bp::gradients(&net, &mut ws);
        let bp: Vec<f64> = ws.grads.iter().flatten().flat_map(|t| t.data().to_vec()).collect();
        let pc = Pc {
            inference: InferenceConfig {
                steps: 2000,
                gamma: 0.2,
                output: OutputMode::Nudge { beta: 1e-3 },
                ..Default::default()
            },
        };
        pc.gradients(&net, &mut ws, 0).unwrap();
        let pcg: Vec<f64> = ws.grads.iter().flatten().flat_map(|t| t.data().to_vec()).collect();
        let cos = cosine(&pcg, &bp);
        assert!(cos > 0.99, "{conv:?}: cosine {cos}");
        // and the magnitude matches too, up to O(beta)
        let ratio = norm(&pcg) / norm(&bp);
        assert!((ratio - 1.0).abs() < 0.05, "{conv:?}: norm ratio {ratio}");
    }
}

/// The KL energies (Pinchetti et al. 2022) against their definitions written out and central
/// differences of their value: categorical and Bernoulli, on logits and on probabilities; the
/// Gaussian KL between `N(x, 1/pi)` and `N(mu, 1/pi)` is today's Gaussian energy; the
/// diagonal Gaussian with a zero precision among its units.
#[test]
fn kl_energies_match_their_definitions_and_finite_differences() {
    use prospect::energy::{Bernoulli, Categorical, DiagGaussian, Gaussian};
    use prospect::Energy;
    let mut r = rng(31);
    let (rows, d, pi) = (3, 5, 0.7);
    let softmax = |v: &[f64]| {
        let z: f64 = v.iter().map(|a| a.exp()).sum();
        v.iter().map(|a| a.exp() / z).collect::<Vec<_>>()
    };
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mu: Tensor<f64> = randn(rows, d, 1.5, &mut r);
    let logits: Tensor<f64> = randn(rows, d, 1.5, &mut r);
    // strictly inside (0, 1) so that dE/dx exists: a distribution per row, and per unit
    let dist = Tensor::from_fn(rows, d, |i, j| softmax(logits.row(i))[j]);
    let unit = Tensor::from_fn(rows, d, |i, j| sig(logits.at(i, j)));
    type Case<'a> = (Box<dyn Energy<f64>>, &'a Tensor<f64>, Box<dyn Fn(&[f64], &[f64]) -> f64>);
    let cases: Vec<Case> = vec![
        (
            Box::new(Categorical { precision: pi, probs: false }),
            &logits,
            Box::new(move |x: &[f64], m: &[f64]| {
                let (p, q) = (softmax(x), softmax(m));
                pi * p.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum::<f64>()
            }),
        ),
        (
            Box::new(Categorical { precision: pi, probs: true }),
            &dist,
            Box::new(move |x: &[f64], m: &[f64]| {
                let q = softmax(m);
                pi * x.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum::<f64>()
            }),
        ),
        (
            Box::new(Bernoulli { precision: pi, probs: false }),
            &logits,
            Box::new(move |x: &[f64], m: &[f64]| {
                pi * x
                    .iter()
                    .zip(m)
                    .map(|(&a, &b)| {
                        let (p, q) = (sig(a), sig(b));
                        p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
                    })
                    .sum::<f64>()
            }),
        ),
        (
            Box::new(Bernoulli { precision: pi, probs: true }),
            &unit,
            Box::new(move |x: &[f64], m: &[f64]| {
                pi * x
                    .iter()
                    .zip(m)
                    .map(|(&p, &b)| {
                        let q = sig(b);
                        p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
                    })
                    .sum::<f64>()
            }),
        ),
        (
            Box::new(Gaussian { precision: pi }),
            &logits,
            // KL(N(x, s^2) || N(mu, s^2)) = (x - mu)^2 / (2 s^2), s^2 = 1/pi
            Box::new(move |x: &[f64], m: &[f64]| {
                x.iter().zip(m).map(|(a, b)| (a - b).powi(2) * pi / 2.0).sum::<f64>()
            }),
        ),
        (
            // one precision per unit, a zero among them (a unit left out of the energy)
            Box::new(DiagGaussian { precision: vec![0.7, 0.0, 1.3, 2.0, 0.7] }),
            &logits,
            Box::new(move |x: &[f64], m: &[f64]| {
                let p = [0.7, 0.0, 1.3, 2.0, 0.7];
                x.iter().zip(m).zip(p).map(|((a, b), p)| (a - b).powi(2) * p / 2.0).sum::<f64>()
            }),
        ),
    ];
    let h = 1e-6;
    for (energy, x, kl) in &cases {
        let name = format!(
            "{} (on {})",
            energy.name(),
            if std::ptr::eq(*x, &logits) { "logits" } else { "probabilities" }
        );
        let mut g_mu = Tensor::zeros(rows, d);
        let mut g_x = Tensor::zeros(rows, d);
        let total = energy.eval(x, &mu, &mut g_mu, Some(&mut g_x));
        let mut per = vec![0.0; rows];
        energy.per_example(x, &mu, &mut per);
        let want: Vec<f64> = (0..rows).map(|i| kl(x.row(i), mu.row(i))).collect();
        for i in 0..rows {
            assert!((per[i] - want[i]).abs() < 1e-12, "{name}: row {i}: {} vs {}", per[i], want[i]);
        }
        assert!((total - want.iter().sum::<f64>()).abs() < 1e-12, "{name}: total");
        for i in 0..rows {
            for j in 0..d {
                let at = |v: &Tensor<f64>, delta: f64| {
                    let mut row = v.row(i).to_vec();
                    row[j] += delta;
                    row
                };
                let fd_mu = (kl(x.row(i), &at(&mu, h)) - kl(x.row(i), &at(&mu, -h))) / (2.0 * h);
                let fd_x = (kl(&at(x, h), mu.row(i)) - kl(&at(x, -h), mu.row(i))) / (2.0 * h);
                let tol = 1e-7;
                assert!(
                    (g_mu.at(i, j) - fd_mu).abs() < tol,
                    "{name}: dE/dmu[{i},{j}] {} vs {fd_mu}",
                    g_mu.at(i, j)
                );
                assert!(
                    (g_x.at(i, j) - fd_x).abs() < tol,
                    "{name}: dE/dx[{i},{j}] {} vs {fd_x}",
                    g_x.at(i, j)
                );
            }
        }
    }
    // the Gaussian KL is the Gaussian energy of the engine, value for value
    let mut g = Tensor::zeros(rows, d);
    let e = Gaussian { precision: pi }.eval(&logits, &mu, &mut g, None);
    let kl_g: f64 = (0..rows).map(|i| cases[4].2(logits.row(i), mu.row(i))).sum();
    assert!((e - kl_g).abs() < 1e-12);
}
