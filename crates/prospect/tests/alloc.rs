//! A counting allocator shows that inference steps and training batches allocate nothing
//! once the workspace is sized (the brief's "no allocation inside inference steps").

use prospect::learn::{self, Batch};
use prospect::{
    Activation, Convention, InferenceConfig, MlpSpec, Net, OptimConfig, OptimKind, Tensor,
    WeightOptim, Workspace,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;
static COUNT: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    COUNT.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    f();
    ON.store(false, Ordering::SeqCst);
    COUNT.load(Ordering::SeqCst)
}

/// Warms `net`/`ws` up on one batch, then counts the allocations of inference and of one
/// training batch of every rule.
fn check(threads: usize, batch: usize) {
    prospect::tensor::set_threads(threads);
    use prospect::EnergyKind;
    let cases = [
        (Convention::Wf, EnergyKind::Gaussian),
        (Convention::Fw, EnergyKind::Gaussian),
        (Convention::Wf, EnergyKind::Categorical),
        (Convention::Fw, EnergyKind::Bernoulli),
    ];
    for (conv, hidden) in cases {
        let mut spec = MlpSpec::new(&[64, 48, 32, 10], Activation::Gelu, conv);
        spec.hidden_energy = hidden;
        let mut net: Net<f32> = Net::mlp(&spec, 0).unwrap();
        let x = Tensor::from_fn(batch, 64, |r, c| ((r * 7 + c) % 5) as f32 * 0.2);
        let y = Tensor::from_fn(batch, 10, |r, c| (r % 10 == c) as u8 as f32);
        let cfg = InferenceConfig { steps: 8, ..Default::default() };
        let mut ws = Workspace::new(&net, batch);
        ws.load(&net, &x, &y).unwrap();
        // Warm-up (gemm's packing buffers).
        net.infer(&mut ws, &cfg, 0).unwrap();
        // faer keeps a packing buffer per thread, made on the thread's first product: make
        // it on every pool thread now, not when a worker first steals a product mid-count.
        rayon::broadcast(|_| {
            let (n2, mut w2) = (net.clone(), ws.clone());
            prospect::tensor::sequential(|| n2.infer(&mut w2, &cfg, 0).unwrap());
        });
        let n = allocations(|| {
            net.infer(&mut ws, &cfg, 1).unwrap();
        });
        assert_eq!(n, 0, "{threads} threads {conv:?} {hidden:?}: inference allocated {n} times");
        let what = format!("{threads} threads {conv:?} {hidden:?}");
        let algos = ["pc", "ipc", "zil", "bp", "eqprop", "chl"];
        train_without_allocating(&mut net, &mut ws, &x, &y, &cfg, &algos, &what);
        if threads > 1 {
            assert_eq!(ws.shards.len(), threads, "batch {batch} must take the sharded path");
        }
    }
}

/// The same for a graph with a cycle, a self-edge, a learned prior and a node with three
/// in-edges (its own activation in `f_w`), under pc and ipc, free nodes started at random.
fn check_graph(threads: usize, batch: usize) {
    use prospect::graph::{EdgeSpec, FreeInit, NodeSpec, Prior};
    prospect::tensor::set_threads(threads);
    let t = Activation::Tanh;
    let mut z = NodeSpec::new("z", 5, t);
    z.prior = Prior::Learned;
    let e = EdgeSpec::new;
    for conv in [Convention::Wf, Convention::Fw] {
        let spec = MlpSpec {
            convention: conv,
            nodes: vec![
                NodeSpec::new("a", 20, t),
                NodeSpec::new("b", 16, t),
                z.clone(),
                NodeSpec::new("d", 6, Activation::Identity),
            ],
            edges: vec![
                e("a", "b"),
                e("b", "z"),
                e("z", "b"),
                e("b", "b"),
                e("b", "d"),
                e("z", "d"),
                e("a", "d"),
            ],
            ..Default::default()
        };
        let mut net: Net<f32> = Net::mlp(&spec, 0).unwrap();
        let x = Tensor::from_fn(batch, 20, |r, c| ((r * 7 + c) % 5) as f32 * 0.2);
        let y = Tensor::from_fn(batch, 6, |r, c| (r % 6 == c) as u8 as f32);
        let cfg = InferenceConfig {
            steps: 8,
            free_init: FreeInit::Normal { std: 0.1 },
            ..Default::default()
        };
        let mut ws = Workspace::new(&net, batch);
        let what = format!("graph {threads} threads {conv:?}");
        train_without_allocating(&mut net, &mut ws, &x, &y, &cfg, &["pc", "ipc"], &what);
    }
}

/// Warms each rule up on three batches (and every pool thread on an inference), then asserts
/// that one more training batch allocates nothing.
fn train_without_allocating(
    net: &mut Net<f32>,
    ws: &mut Workspace<f32>,
    x: &Tensor<f32>,
    y: &Tensor<f32>,
    cfg: &InferenceConfig,
    algos: &[&str],
    what: &str,
) {
    for algo in algos {
        let mut rule = learn::build::<f32>(algo, cfg).unwrap();
        let ocfg = OptimConfig { kind: OptimKind::Adamw, ..OptimConfig::default() };
        let mut opt = WeightOptim::new(ocfg, net).unwrap();
        let b = Batch { x, y, index: 0 };
        for _ in 0..3 {
            rule.train_batch(net, &mut opt, b, ws).unwrap();
        }
        rayon::broadcast(|_| {
            let (n2, mut w2) = (net.clone(), ws.clone());
            prospect::tensor::sequential(|| n2.infer(&mut w2, cfg, 0).unwrap());
        });
        let n = allocations(|| {
            rule.train_batch(net, &mut opt, b, ws).unwrap();
        });
        assert_eq!(n, 0, "{what} {algo}: a training batch allocated {n} times");
    }
}

/// The same for the digits-cnn preset's CNN (conv -> pool edge, image nodes), with max and
/// average pooling, under every rule.
fn check_cnn(threads: usize, batch: usize) {
    use prospect::layers::PoolKind;
    prospect::tensor::set_threads(threads);
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let mut spec = prospect::config::preset("digits-cnn").unwrap().model;
        spec.edges[0].pool.as_mut().expect("conv -> pool edge").kind = kind;
        let mut net: Net<f32> = Net::mlp(&spec, 0).unwrap();
        let (d_in, d_out) = (net.d_in(), net.d_out());
        let x = Tensor::from_fn(batch, d_in, |r, c| ((r * 7 + c) % 5) as f32 * 0.2);
        let y = Tensor::from_fn(batch, d_out, |r, c| (r % d_out == c) as u8 as f32);
        let cfg = InferenceConfig { steps: 8, ..Default::default() };
        let mut ws = Workspace::new(&net, batch);
        let what = format!("cnn {threads} threads {kind:?}");
        let algos = ["pc", "ipc", "zil", "bp", "eqprop", "chl"];
        train_without_allocating(&mut net, &mut ws, &x, &y, &cfg, &algos, &what);
        if threads > 1 {
            assert_eq!(ws.shards.len(), threads, "batch {batch} must take the sharded path");
        }
    }
}

/// One test, so nothing else runs while the allocator counts: one thread first, then two
/// threads with a batch large enough to be split into row shards.
///
/// The counts run on a pool thread whose per-thread buffers are warm. A call from outside the pool hands its job to rayon's
/// global injector queue, which allocates one block per 63 hand-offs: rayon's amortised
/// cost, not a buffer of ours, and it made the count 0 or 1 depending on how many hand-offs
/// earlier tests in the process had made. The same for faer's per-thread packing buffer,
/// made once per thread on its first product (see the broadcast in `check`).
#[test]
fn steady_state_training_allocates_nothing() {
    // The global pool is sized by the first call: two workers, then one or both used.
    prospect::tensor::set_threads(2);
    rayon::scope(|_| {
        check(1, 16);
        check(2, 64);
        check_graph(1, 16);
        check_graph(2, 64);
        check_cnn(1, 16);
        check_cnn(2, 64);
        check_evaluation();
    });
}

/// Evaluation keeps its buffers: on a set that is not a multiple of the evaluation batch (two
/// chunks of 100 rows and a tail of 50) a second pass allocates nothing, and it counts what a
/// fresh forward pass does (catches a tail sharing the chunk's workspace, which then
/// reallocates twice per pass, and an evaluation that returns nothing).
fn check_evaluation() {
    let mut cfg = prospect::config::preset("digits-mlp").unwrap();
    cfg.train.eval_batch_size = 100;
    let mut t = prospect::StepTrainer::new(cfg, 1).unwrap();
    let d = t.net.d_in();
    let x = Tensor::from_fn(250, d, |r, c| ((r * 13 + c * 7) % 17) as f32 / 16.0);
    let labels: Vec<usize> = (0..250).map(|r| (r * 3) % 10).collect();
    let y = Tensor::from_fn(250, 10, |r, c| if labels[r] == c { 1.0 } else { 0.0 });
    let first = t.evaluate(&x, &y).unwrap();
    let mut second = None;
    let n = allocations(|| second = Some(t.evaluate(&x, &y).unwrap()));
    assert_eq!(n, 0, "the second evaluation allocated {n} times");
    let second = second.unwrap();
    let (_, correct) = t.net.evaluate(&x, &y).unwrap();
    assert_eq!((first.correct, second.correct, second.examples), (correct, correct, 250));
    assert!(correct > 0 && correct < 250, "a degenerate check: {correct} of 250 correct");
}
