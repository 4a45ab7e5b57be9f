//! Equilibrium propagation, centred nudging and contrastive Hebbian learning (science.md §4)
//! against backprop, finite differences of the loss at the free equilibrium, and each other.

use crate::common::*;
use prospect::graph::{EdgeSpec, NodeSpec};
use prospect::learn::{self, Batch, Bp, EqProp, Pc};
use prospect::{
    Activation, Convention, InferenceConfig, MlpSpec, Net, OptimConfig, OutputMode, Tensor,
    WeightOptim, Workspace,
};

/// Every parameter gradient in `ws`, flattened.
fn flat_grads(ws: &Workspace<f64>) -> Vec<f64> {
    ws.grads.iter().flatten().flat_map(|t| t.data().to_vec()).collect()
}

/// A small tanh MLP with random biases, a batch of 4 and its one-hot targets.
fn setup(conv: Convention) -> (Net<f64>, Tensor<f64>, Tensor<f64>) {
    let mut r = rng(21);
    let spec = MlpSpec::new(&[6, 10, 8, 3], Activation::Tanh, conv);
    let mut net: Net<f64> = Net::mlp(&spec, 4).unwrap();
    randomize_biases(&mut net, &mut r);
    let x: Tensor<f64> = randn(4, 6, 1.0, &mut r);
    (net, x, one_hot(&[0, 2, 1, 2], 3))
}

/// Converged phases: 3000 node steps at gamma 0.2 (f64).
fn cfg(beta: f64, centred: bool) -> InferenceConfig {
    InferenceConfig { steps: 3000, gamma: 0.2, beta: Some(beta), centred, ..Default::default() }
}

/// The update of `rule` on the batch.
fn update(net: &Net<f64>, x: &Tensor<f64>, y: &Tensor<f64>, rule: &mut EqProp<f64>) -> Vec<f64> {
    let mut ws = Workspace::new(net, x.rows());
    ws.load(net, x, y).unwrap();
    rule.gradients(net, &mut ws, 0).unwrap();
    flat_grads(&ws)
}

fn eqprop(net: &Net<f64>, x: &Tensor<f64>, y: &Tensor<f64>, beta: f64, centred: bool) -> Vec<f64> {
    update(net, x, y, &mut EqProp::new(&cfg(beta, centred)).unwrap())
}

fn backprop(net: &Net<f64>, x: &Tensor<f64>, y: &Tensor<f64>) -> Vec<f64> {
    let mut ws = Workspace::new(net, x.rows());
    ws.load(net, x, y).unwrap();
    Bp::gradients(net, &mut ws);
    flat_grads(&ws)
}

/// Relative distance `||a - b|| / ||b||`.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    norm(&sub(a, b)) / norm(b)
}

/// As beta -> 0 the update tends to the backprop gradient (cosine >= 0.999 at beta = 1e-3 in
/// f64, the norm within 1%), plain and centred; at beta = 1 it is visibly off.
#[test]
fn eqprop_update_tends_to_backprop_as_beta_shrinks() {
    for conv in [Convention::Wf, Convention::Fw] {
        let (net, x, y) = setup(conv);
        let bp = backprop(&net, &x, &y);
        for centred in [false, true] {
            let u = eqprop(&net, &x, &y, 1e-3, centred);
            let c = cosine(&u, &bp);
            assert!(c >= 0.999, "{conv:?} centred {centred}: cosine {c}");
            let ratio = norm(&u) / norm(&bp);
            assert!((ratio - 1.0).abs() < 0.01, "{conv:?} centred {centred}: norm ratio {ratio}");
        }
        let far = rel(&eqprop(&net, &x, &y, 1.0, false), &bp);
        let near = rel(&eqprop(&net, &x, &y, 1e-3, false), &bp);
        assert!(far > 10.0 * near && far > 0.05, "beta 1: {far}, beta 1e-3: {near}");
    }
}

/// The bias of plain nudging is O(beta) (halving beta halves it), that of centred nudging is
/// O(beta^2) (halving beta quarters it).
#[test]
fn centred_nudging_bias_is_second_order() {
    let (net, x, y) = setup(Convention::Wf);
    let bp = backprop(&net, &x, &y);
    let err = |beta: f64, centred: bool| rel(&eqprop(&net, &x, &y, beta, centred), &bp);
    let plain = err(0.1, false) / err(0.05, false);
    let centred = err(0.1, true) / err(0.05, true);
    assert!((1.7..2.3).contains(&plain), "plain: halving beta divides the error by {plain}");
    assert!((3.4..4.6).contains(&centred), "centred: halving beta divides the error by {centred}");
    let (c, p) = (err(0.05, true), err(0.05, false));
    eprintln!("beta 0.05: centred {c:e}, plain {p:e}; ratios {plain} {centred}");
    assert!(c < 0.25 * p, "centred is not closer at beta 0.05: {c} vs {p}");
}

/// CHL (free vs fully clamped) is equilibrium propagation at beta = 1, to the last bit.
#[test]
fn chl_equals_eqprop_at_beta_one() {
    let (net, x, y) = setup(Convention::Wf);
    let base = InferenceConfig { steps: 3000, gamma: 0.2, ..Default::default() };
    let chl = update(&net, &x, &y, &mut learn::chl(&base).unwrap());
    let ep = eqprop(&net, &x, &y, 1.0, false);
    assert_eq!(chl, ep);
    // and the clamped phase is PC's ordinary energy: on a feed-forward net (zero-energy free
    // phase) CHL's update is PC's.
    let mut ws = Workspace::new(&net, 4);
    ws.load(&net, &x, &y).unwrap();
    Pc { inference: base.clone() }.gradients(&net, &mut ws, 0).unwrap();
    let pc = flat_grads(&ws);
    assert!(rel(&chl, &pc) < 1e-12, "CHL vs PC: {}", rel(&chl, &pc));
    assert!(learn::chl::<f64>(&cfg(0.5, false)).is_err(), "chl must refuse a beta");
}

/// On a feed-forward net the free phase is the forward pass with zero energy, so equilibrium
/// propagation is PC with the output weighted by beta, divided by beta (it skips the free
/// phase); PC's free-output nudge is another member of the family, equal to first order.
#[test]
fn eqprop_is_weighted_pc_when_the_free_phase_has_zero_energy() {
    let (net, x, y) = setup(Convention::Fw);
    let beta = 0.05;
    let ep = eqprop(&net, &x, &y, beta, false);
    let mut ws = Workspace::new(&net, 4);
    ws.load(&net, &x, &y).unwrap();
    let weighted = InferenceConfig {
        steps: 3000,
        gamma: 0.2,
        output: OutputMode::Weighted { beta },
        ..Default::default()
    };
    Pc { inference: weighted }.gradients(&net, &mut ws, 0).unwrap();
    let pc = flat_grads(&ws);
    assert!(rel(&ep, &pc) < 1e-12, "eqprop vs weighted pc: {}", rel(&ep, &pc));
    let nudge = InferenceConfig {
        steps: 3000,
        gamma: 0.2,
        output: OutputMode::Nudge { beta },
        ..Default::default()
    };
    Pc { inference: nudge }.gradients(&net, &mut ws, 0).unwrap();
    let pn = flat_grads(&ws);
    let bp = backprop(&net, &x, &y);
    assert!(rel(&pn, &ep) > 1e-3, "the free-output nudge is a different member");
    assert!(cosine(&pn, &bp) > 0.99 && cosine(&ep, &bp) > 0.99);
}

/// A generative edge into the clamped input (`a -> b -> a`, `b -> d`) gives the free phase a
/// non-zero energy. Equilibrium propagation then still follows the gradient of the loss at
/// the free equilibrium (central differences of `L(θ) = E_out(y, mu_d(x*(θ)))` along three
/// random directions, to 1e-3), while PC's weighted nudge, which skips the free phase, does not.
#[test]
fn eqprop_follows_the_loss_at_a_free_equilibrium_with_energy() {
    let t = Activation::Tanh;
    let spec = MlpSpec {
        convention: Convention::Wf,
        nodes: vec![
            NodeSpec::new("a", 4, t),
            NodeSpec::new("b", 6, t),
            NodeSpec::new("d", 3, Activation::Identity),
        ],
        edges: vec![EdgeSpec::new("a", "b"), EdgeSpec::new("b", "a"), EdgeSpec::new("b", "d")],
        ..Default::default()
    };
    let mut net: Net<f64> = Net::mlp(&spec, 7).unwrap();
    let mut r = rng(8);
    randomize_biases(&mut net, &mut r);
    let x: Tensor<f64> = randn(3, 4, 1.0, &mut r);
    let y = one_hot(&[2, 0, 1], 3);
    let beta = 1e-4;
    let phase = InferenceConfig { steps: 4000, gamma: 0.1, ..Default::default() };
    let loss = |net: &Net<f64>| {
        let mut ws = Workspace::new(net, 3);
        ws.load(net, &x, &y).unwrap();
        let free = InferenceConfig { output: OutputMode::Weighted { beta: 0.0 }, ..phase.clone() };
        let s = net.infer(&mut ws, &free, 0).unwrap();
        assert!(s.final_energy > 1e-2, "the free phase must have energy: {}", s.final_energy);
        let mut per = vec![0.0; 3];
        net.output_energy().per_example(&y, &ws.mu[net.output()], &mut per);
        per.iter().sum::<f64>()
    };
    let ep = update(
        &net,
        &x,
        &y,
        &mut EqProp::new(&InferenceConfig { beta: Some(beta), ..phase.clone() }).unwrap(),
    );
    let mut ws = Workspace::new(&net, 3);
    ws.load(&net, &x, &y).unwrap();
    let weighted = InferenceConfig { output: OutputMode::Weighted { beta }, ..phase.clone() };
    Pc { inference: weighted }.gradients(&net, &mut ws, 0).unwrap();
    let pc = flat_grads(&ws);
    let n = ep.len();
    let h = 1e-5;
    for k in 0..3 {
        let v: Vec<f64> = randn::<f64>(1, n, 1.0, &mut r).data().to_vec();
        let shifted = |s: f64| {
            let mut m = net.clone();
            let mut i = 0;
            for l in &mut m.layers {
                l.for_each_param_mut(&mut |_, p| {
                    for w in p.data_mut() {
                        *w += s * v[i];
                        i += 1;
                    }
                });
            }
            assert_eq!(i, n, "the gradients cover every parameter");
            loss(&m)
        };
        let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
        let dot = |u: &[f64]| u.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>();
        let (got, skip) = (dot(&ep), dot(&pc));
        assert!(
            (got - fd).abs() < 1e-3 * fd.abs().max(1.0),
            "direction {k}: eqprop {got}, fd {fd}"
        );
        assert!((skip - fd).abs() > 0.1 * fd.abs().max(1.0), "direction {k}: pc {skip} ~ fd {fd}");
    }
}

/// The rules train from the registry like the others, `inference.centred` and `beta` reach
/// them, and misuse is a config error naming the key.
#[test]
fn eqprop_and_chl_train_from_the_registry() {
    let (net0, x, y) = setup(Convention::Wf);
    for (algo, inference) in [
        ("eqprop", InferenceConfig { steps: 30, beta: Some(0.1), ..Default::default() }),
        (
            "eqprop",
            InferenceConfig { steps: 30, beta: Some(0.1), centred: true, ..Default::default() },
        ),
        ("chl", InferenceConfig { steps: 30, ..Default::default() }),
    ] {
        let mut net = net0.clone();
        let mut rule = learn::build::<f64>(algo, &inference).unwrap();
        assert_eq!(rule.name(), algo);
        let mut opt = WeightOptim::new(OptimConfig::sgd(0.05), &net).unwrap();
        let mut ws = Workspace::new(&net, 4);
        let first = rule
            .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)
            .unwrap();
        let mut last = first;
        for index in 1..40 {
            last = rule
                .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)
                .unwrap();
        }
        assert!(last.loss < 0.5 * first.loss, "{algo}: loss {} -> {}", first.loss, last.loss);
    }
    let bad =
        |algo: &str, c: InferenceConfig| learn::build::<f64>(algo, &c).err().unwrap().to_string();
    let e = bad("pc", InferenceConfig { centred: true, ..Default::default() });
    assert!(e.contains("inference.beta") && e.contains("eqprop"), "{e}");
    let e = bad("eqprop", InferenceConfig { beta: Some(0.0), ..Default::default() });
    assert!(e.contains("inference.beta"), "{e}");
    let e = bad(
        "eqprop",
        InferenceConfig { output: OutputMode::Nudge { beta: 0.1 }, ..Default::default() },
    );
    assert!(e.contains("inference.output"), "{e}");
    let e = bad(
        "pc",
        InferenceConfig { output: OutputMode::Weighted { beta: 0.0 }, ..Default::default() },
    );
    assert!(e.contains("inference.output.beta"), "{e}");
}
