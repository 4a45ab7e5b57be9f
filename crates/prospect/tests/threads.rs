//! The two-thread paths: a batch split into row shards gives the gradients, statistics and
//! weights of the same batch relaxed whole (catches a reduction that drops or double-counts a
//! shard, and shards that see the wrong rows).

mod common;

use common::*;
use prospect::learn::{self, Batch, Bp, Pc};
use prospect::optim::Reduction;
use prospect::{
    Activation, Convention, EnergyKind, InferenceConfig, MlpSpec, Net, OptimConfig, Scalar, Tensor,
    WeightOptim, Workspace,
};

fn max_rel_gap<T: Scalar>(a: &[Vec<Tensor<T>>], b: &[Vec<Tensor<T>>]) -> f64 {
    let flat = |g: &[Vec<Tensor<T>>]| -> Vec<f64> {
        g.iter().flatten().flat_map(|t| t.data().iter().map(|v| v.f64())).collect()
    };
    let (a, b) = (flat(a), flat(b));
    norm(&sub(&a, &b)) / norm(&b)
}

fn check<T: Scalar>(algo: &str, conv: Convention, out: EnergyKind, tol: f64) {
    prospect::tensor::set_threads(2);
    let batch = 37; // two shards of 18 and 19 rows
    let mut r = rng(40);
    let mut spec = MlpSpec::new(&[6, 12, 9, 4], Activation::Tanh, conv);
    spec.output_energy = out;
    let mut net64: Net<f64> = Net::mlp(&spec, 6).unwrap();
    randomize_biases(&mut net64, &mut r);
    let net = cast_net::<T>(&net64, &spec, 6);
    let x: Tensor<T> = randn::<f64>(batch, 6, 1.0, &mut r).cast();
    let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % 4).collect();
    let y: Tensor<T> = one_hot(&labels, 4);
    let inference = InferenceConfig { steps: 12, gamma: 0.1, ..Default::default() };

    // whole batch, no shards
    let mut whole = Workspace::new(&net, batch);
    whole.load(&net, &x, &y).unwrap();
    let (loss, energy, correct, skipped) = if algo == "pc" {
        let s = Pc { inference: inference.clone() }.gradients(&net, &mut whole, 0).unwrap();
        (s.initial_energy, s.final_energy, s.correct, s.skipped_products)
    } else {
        let l = Bp::gradients(&net, &mut whole);
        let c = prospect::net::count_correct(&whole.mu[net.depth()], &whole.target);
        (l, l, c, 0)
    };

    // through the rule: sharded
    let mut sharded_net = net.clone();
    let mut rule = learn::build::<T>(algo, &inference).unwrap();
    let ocfg = OptimConfig { reduction: Reduction::Sum, ..OptimConfig::sgd(0.01) };
    let mut opt = WeightOptim::new(ocfg.clone(), &sharded_net).unwrap();
    let mut ws = Workspace::new(&sharded_net, batch);
    for index in 0..2 {
        // the second batch reuses the shard buffers
        let mut n = net.clone();
        let mut o = WeightOptim::new(ocfg.clone(), &n).unwrap();
        let s = rule.train_batch(&mut n, &mut o, Batch { x: &x, y: &y, index }, &mut ws).unwrap();
        assert_eq!(ws.shards.len(), 2, "{algo}: the batch must be split");
        assert_eq!(ws.shards[0].batch + ws.shards[1].batch, batch);
        let gap = max_rel_gap(&ws.grads, &whole.grads);
        assert!(
            gap < tol,
            "{algo} {conv:?} {out:?} {}: sharded vs whole gradients {gap:e}",
            T::NAME
        );
        assert!((s.loss - loss).abs() < tol * loss, "{algo}: loss {} vs {loss}", s.loss);
        assert!(
            (s.energy - energy).abs() < tol * energy.max(1e-3),
            "{algo}: energy {} vs {energy}",
            s.energy
        );
        assert_eq!((s.correct, s.examples), (correct, batch), "{algo}");
        // steps: the longest shard's (each relaxed all 12), not their sum
        assert_eq!(s.steps, if algo == "pc" { 12 } else { 0 }, "{algo}");
        // skipped products: each shard skips what the whole batch does (L (L - 1) = 2 for
        // two hidden layers), and the batch's statistics sum them
        if algo == "pc" {
            assert_eq!(skipped, 2, "{algo}: skipped products of the whole batch");
            assert_eq!(ws.last.skipped_products, 2 * skipped, "{algo}: summed over the shards");
        }
        if index == 1 {
            sharded_net = n;
        }
    }
    // and the update is the SGD step of the whole batch's gradients
    let mut want = net.clone();
    opt.step(&mut want, &whole.grads, batch);
    let gap = norm(&sub(&flat_params(&sharded_net), &flat_params(&want)));
    assert!(gap < tol, "{algo}: weights after the sharded update differ by {gap:e}");
}

/// `check` for every convention and output energy, in f64 and f32.
fn check_all(algo: &str) {
    for conv in [Convention::Wf, Convention::Fw] {
        for out in [EnergyKind::Gaussian, EnergyKind::CrossEntropy] {
            check::<f64>(algo, conv, out, 1e-12);
            check::<f32>(algo, conv, out, 2e-5);
        }
    }
}

#[test]
fn sharded_pc_equals_the_whole_batch() {
    check_all("pc");
}

#[test]
fn sharded_bp_equals_the_whole_batch() {
    check_all("bp");
}

/// Halving on energy rise and early stop look at the whole batch's energy, so `pc` must not
/// split such a batch: its gradients equal the whole batch relaxed at once.
#[test]
fn pc_with_batch_wide_halving_or_early_stop_is_not_sharded() {
    prospect::tensor::set_threads(2);
    let mut r = rng(41);
    let spec = MlpSpec::new(&[5, 9, 3], Activation::Tanh, Convention::Wf);
    let net: Net<f64> = Net::mlp(&spec, 2).unwrap();
    let x: Tensor<f64> = randn(40, 5, 1.0, &mut r);
    let y = one_hot::<f64>(&(0..40).map(|i| i % 3).collect::<Vec<_>>(), 3);
    let halve =
        InferenceConfig { steps: 30, gamma: 0.9, halve_on_rise: true, ..Default::default() };
    let stop = InferenceConfig { steps: 60, gamma: 0.2, tol: 1e-3, ..Default::default() };
    for inference in [halve, stop] {
        let mut whole = Workspace::new(&net, 40);
        whole.load(&net, &x, &y).unwrap();
        let s = Pc { inference: inference.clone() }.gradients(&net, &mut whole, 0).unwrap();
        let mut n = net.clone();
        let mut rule = learn::build::<f64>("pc", &inference).unwrap();
        let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &n).unwrap();
        let mut ws = Workspace::new(&n, 40);
        let b =
            rule.train_batch(&mut n, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws).unwrap();
        assert!(ws.shards.is_empty(), "{inference:?}: the batch was split");
        assert_eq!(b.steps, s.steps);
        assert_eq!(max_rel_gap(&ws.grads, &whole.grads), 0.0, "{inference:?}");
    }
}

/// The same on graphs: PC on a graph with a cycle, a self-edge and a skip, BP on a DAG with
/// skips; the two shards' summed gradients equal the whole batch's (f64).
#[test]
fn sharded_graphs_equal_the_whole_batch() {
    use prospect::graph::{EdgeSpec, NodeSpec};
    prospect::tensor::set_threads(2);
    let t = Activation::Tanh;
    let nodes = vec![
        NodeSpec::new("a", 6, t),
        NodeSpec::new("b", 8, t),
        NodeSpec::new("c", 5, Activation::Sigmoid),
        NodeSpec::new("d", 4, Activation::Identity),
    ];
    let e = EdgeSpec::new;
    for (algo, edges) in [
        (
            "pc",
            vec![
                e("a", "b"),
                e("b", "c"),
                e("c", "b"),
                e("c", "c"),
                e("b", "d"),
                e("c", "d"),
                e("a", "d"),
            ],
        ),
        ("bp", vec![e("a", "b"), e("b", "c"), e("b", "d"), e("c", "d"), e("a", "d"), e("a", "c")]),
    ] {
        for conv in [Convention::Wf, Convention::Fw] {
            let spec = MlpSpec {
                convention: conv,
                nodes: nodes.clone(),
                edges: edges.clone(),
                ..Default::default()
            };
            let net: Net<f64> = Net::mlp(&spec, 3).unwrap();
            let batch = 37;
            let mut r = rng(5);
            let x = randn::<f64>(batch, 6, 1.0, &mut r);
            let y = randn::<f64>(batch, 4, 1.0, &mut r);
            let inference = InferenceConfig { steps: 10, gamma: 0.1, ..Default::default() };
            let mut whole = Workspace::new(&net, batch);
            whole.load(&net, &x, &y).unwrap();
            if algo == "pc" {
                Pc { inference: inference.clone() }.gradients(&net, &mut whole, 0).unwrap();
            } else {
                Bp::gradients(&net, &mut whole);
            }
            let mut n = net.clone();
            let mut rule = learn::build::<f64>(algo, &inference).unwrap();
            let mut opt = WeightOptim::new(OptimConfig::sgd(0.01), &n).unwrap();
            let mut ws = Workspace::new(&n, batch);
            rule.train_batch(&mut n, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws).unwrap();
            assert_eq!(ws.shards.len(), 2, "{algo}: the batch must be split");
            let gap = max_rel_gap(&ws.grads, &whole.grads);
            assert!(gap < 1e-12, "{algo} {conv:?}: sharded vs whole gradients {gap:e}");
        }
    }
}

/// A batch given as rows of a dataset (`Rule::train_rows`, what the trainer calls) trains
/// exactly as the gathered batch through `Rule::train_batch`, for every rule: the same
/// statistics and the same weights bit for bit, over two batches of different rows (catches
/// rows taken from the wrong place, a shard loaded with another shard's rows, a stale batch).
/// `pc` and `bp` split it into two shards here.
#[test]
fn a_batch_of_dataset_rows_trains_as_the_gathered_batch() {
    prospect::tensor::set_threads(2);
    let mut r = rng(42);
    let spec = MlpSpec::new(&[6, 12, 9, 4], Activation::Tanh, Convention::Fw);
    let net: Net<f64> = Net::mlp(&spec, 7).unwrap();
    let n = 90;
    let data_x: Tensor<f64> = randn(n, 6, 1.0, &mut r);
    let data_y: Tensor<f64> = one_hot(&(0..n).map(|i| (i * 5 + 1) % 4).collect::<Vec<_>>(), 4);
    // two batches of 37 rows, out of order, the second with a repeated row
    let batches: [Vec<usize>; 2] = [
        (0..37).map(|i| (i * 29 + 11) % n).collect(),
        (0..37).map(|i| if i == 20 { 3 } else { (i * 41 + 7) % n }).collect(),
    ];
    let inference = InferenceConfig { steps: 6, gamma: 0.1, ..Default::default() };
    let halving = InferenceConfig { halve_on_rise: true, ..inference.clone() };
    let rules = [
        ("pc", &inference),
        ("pc", &halving),
        ("bp", &inference),
        ("ipc", &inference),
        ("zil", &inference),
        ("eqprop", &inference),
        ("chl", &inference),
    ];
    for (algo, inf) in rules {
        let ocfg = OptimConfig { reduction: Reduction::Sum, ..OptimConfig::sgd(0.05) };
        let (mut net_a, mut net_b) = (net.clone(), net.clone());
        let mut rule_a = learn::build::<f64>(algo, inf).unwrap();
        let mut rule_b = learn::build::<f64>(algo, inf).unwrap();
        let mut opt_a = WeightOptim::new(ocfg.clone(), &net_a).unwrap();
        let mut opt_b = WeightOptim::new(ocfg, &net_b).unwrap();
        let mut ws_a = Workspace::new(&net_a, 37);
        let mut ws_b = Workspace::new(&net_b, 37);
        for (index, rows) in batches.iter().enumerate() {
            let (mut x, mut y) = (Tensor::default(), Tensor::default());
            x.gather_rows(&data_x, rows);
            y.gather_rows(&data_y, rows);
            assert_eq!(x.row(5), data_x.row(rows[5]));
            let a = rule_a
                .train_batch(&mut net_a, &mut opt_a, Batch { x: &x, y: &y, index }, &mut ws_a)
                .unwrap();
            let batch = learn::Rows { x: &data_x, y: &data_y, rows, index };
            let b = rule_b.train_rows(&mut net_b, &mut opt_b, batch, &mut ws_b).unwrap();
            assert_eq!(a, b, "{algo} {inf:?}: statistics of batch {index}");
            let (pa, pb) = (flat_params(&net_a), flat_params(&net_b));
            assert!(pa == pb, "{algo} {inf:?}: weights after batch {index}");
            assert_ne!(pb, flat_params(&net), "{algo}: the batch changed nothing");
            if matches!(algo, "pc" | "bp") && !inf.halve_on_rise {
                assert_eq!(ws_b.shards.len(), 2, "{algo}: the batch must be split");
            }
        }
    }
}

/// A row outside the dataset, or a dataset of the wrong width, is an error naming it, not a
/// panic or a batch of other rows.
#[test]
fn rows_outside_the_dataset_or_of_the_wrong_width_are_errors() {
    prospect::tensor::set_threads(2);
    let spec = MlpSpec::new(&[6, 8, 4], Activation::Tanh, Convention::Fw);
    let mut net: Net<f64> = Net::mlp(&spec, 1).unwrap();
    let x: Tensor<f64> = randn(40, 6, 1.0, &mut rng(1));
    let y: Tensor<f64> = one_hot(&(0..40).map(|i| i % 4).collect::<Vec<_>>(), 4);
    let wide: Tensor<f64> = randn(40, 7, 1.0, &mut rng(2));
    let short_y: Tensor<f64> = one_hot(&(0..39).map(|i| i % 4).collect::<Vec<_>>(), 4);
    let inference = InferenceConfig { steps: 3, ..Default::default() };
    for algo in ["pc", "bp", "zil"] {
        let mut rule = learn::build::<f64>(algo, &inference).unwrap();
        let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net).unwrap();
        let mut ws = Workspace::new(&net, 32);
        let mut rows: Vec<usize> = (0..32).collect();
        rows[31] = 40;
        let cases = [(&x, &y, &rows[..], "row of the dataset"), (&wide, &y, &rows[..31], "input")];
        let cases = [cases[0], cases[1], (&x, &short_y, &rows[..31], "target")];
        for (dx, dy, rows, what) in cases {
            let batch = learn::Rows { x: dx, y: dy, rows, index: 0 };
            let err = rule.train_rows(&mut net, &mut opt, batch, &mut ws).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, prospect::Error::Shape { .. }) && msg.contains(what),
                "{algo}: {msg}"
            );
        }
    }
}

/// Polls `cond` for up to two seconds.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(2) {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}

/// `on_pool_hot` (the epoch loop's pool): while its body runs, the other kernel thread spins
/// for its work and takes the second half of a fork-join; it stops when the body returns or
/// panics; a call made meanwhile from another thread runs without helpers (one at a time) and
/// still returns its value.
#[test]
fn a_hot_pool_keeps_its_helper_while_the_body_runs_and_stops_it_after() {
    use prospect::tensor::{helping_threads, on_pool_hot, set_threads, threads};
    set_threads(2);
    assert_eq!(threads(), 2);
    let owner_and_other = on_pool_hot(|| {
        assert!(eventually(|| helping_threads() == 1), "no helper started");
        let inner = std::thread::spawn(|| on_pool_hot(|| (helping_threads(), 7)));
        let (seen, v) = inner.join().unwrap();
        assert_eq!((seen, v), (1, 7), "the concurrent call took helpers of its own");
        let owner = rayon::current_thread_index();
        let (_, other) = rayon::join(
            || std::thread::sleep(std::time::Duration::from_millis(20)),
            rayon::current_thread_index,
        );
        (owner, other)
    });
    assert!(owner_and_other.0.is_some() && owner_and_other.0 != owner_and_other.1);
    assert_eq!(helping_threads(), 0, "the helper outlived the body");
    let panicked = std::panic::catch_unwind(|| on_pool_hot(|| panic!("body fails")));
    assert!(panicked.is_err());
    assert_eq!(helping_threads(), 0, "the helper outlived a panicking body");
    // the threads were released: the next call gets its helper again
    assert!(on_pool_hot(|| eventually(|| helping_threads() == 1)));
}
