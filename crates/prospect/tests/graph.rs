//! The graph engine against independent oracles: finite differences of the energy on a
//! random graph with cycles, self-edges, a learned prior and several in-edges per node;
//! backprop on a DAG with skip connections against finite differences of the loss; the chain
//! written as a graph against the layered builder, bit for bit; queries; config errors.

mod common;

use common::{nudge_param, randn, rng};
use prospect::graph::{EdgeSpec, NodeSpec, Prior, Role};
use prospect::learn::{self, Batch, Bp};
use prospect::{
    Activation, Convention, EnergyKind, Given, InferenceConfig, MlpSpec, Net, NodeOptim,
    OptimConfig, OutputMode, RunConfig, Tensor, WeightOptim, Workspace,
};

fn node(name: &str, size: usize, act: Activation) -> NodeSpec {
    NodeSpec::new(name, size, act)
}

fn edge(from: &str, to: &str) -> EdgeSpec {
    EdgeSpec::new(from, to)
}

/// Input `a`, hidden `b`, `c`, `z` (a learned prior), output `d`: a cycle `b <-> c`, a
/// self-edge on `c`, three in-edges into `d` (one a skip from the input), precisions and a
/// Laplace energy.
fn cyclic_spec(conv: Convention) -> MlpSpec {
    let mut b = node("b", 4, Activation::Tanh);
    b.precision = 2.0;
    let mut c = node("c", 3, Activation::Sigmoid);
    c.energy = EnergyKind::Laplace;
    let mut z = node("z", 3, Activation::Tanh);
    z.prior = Prior::Learned;
    MlpSpec {
        convention: conv,
        nodes: vec![node("a", 5, Activation::Tanh), b, c, z, node("d", 2, Activation::Identity)],
        edges: vec![
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "b"),
            edge("c", "c"),
            edge("z", "c"),
            edge("b", "d"),
            edge("c", "d"),
            edge("a", "d"),
        ],
        input: Some("a".into()),
        output: Some("d".into()),
        ..Default::default()
    }
}

/// A random net of `spec` with nonzero biases and priors, and a batch loaded with every
/// free node set to random values.
fn random_state(spec: &MlpSpec, seed: u64) -> (Net<f64>, Workspace<f64>) {
    let mut net: Net<f64> = Net::mlp(spec, seed).unwrap();
    let mut r = rng(seed + 1);
    for layer in &mut net.layers {
        layer.for_each_param_mut(&mut |name, p| {
            if name == "bias" {
                *p = randn(p.rows(), p.cols(), 0.5, &mut r);
            }
        });
    }
    let batch = 3;
    let x = randn(batch, net.d_in(), 1.0, &mut r);
    let y = randn(batch, net.d_out(), 1.0, &mut r);
    let mut ws = Workspace::new(&net, batch);
    ws.load(&net, &x, &y).unwrap();
    for i in 0..net.topo.nodes.len() {
        if ws.roles[i] == Role::Free {
            ws.x[i] = randn(batch, net.topo.nodes[i].size, 1.0, &mut r);
        }
    }
    (net, ws)
}

fn energy(net: &Net<f64>, ws: &mut Workspace<f64>) -> f64 {
    net.repredict(ws, true);
    net.energy_grads(ws, OutputMode::Clamp, false)
}

fn assert_close(what: &str, analytic: f64, numeric: f64, tol: f64) {
    let scale = analytic.abs().max(numeric.abs()).max(1e-3);
    assert!(
        (analytic - numeric).abs() <= tol * scale,
        "{what}: analytic {analytic:e}, finite difference {numeric:e}"
    );
}

/// Local node and parameter gradients of PC on a graph with cycles equal central
/// differences of the total energy (f64, h = 1e-6, relative 1e-6).
#[test]
fn local_gradients_on_a_cyclic_graph_match_finite_differences() {
    for conv in [Convention::Wf, Convention::Fw] {
        let spec = cyclic_spec(conv);
        let (net, mut ws) = random_state(&spec, 7);
        assert!(!net.topo.is_dag());
        if conv == Convention::Fw {
            let d = net.topo.node("d").unwrap();
            assert!(net.topo.nodes[d].act.is_some(), "several in-edges: the node's activation");
        }
        net.repredict(&mut ws, true);
        net.energy_grads(&mut ws, OutputMode::Clamp, true);
        net.param_grads(&mut ws);
        let (dx, grads) = (ws.dx.clone(), ws.grads.clone());
        let h = 1e-6;
        for i in 0..net.topo.nodes.len() {
            if !ws.roles[i].moves() {
                continue;
            }
            for j in 0..ws.x[i].len() {
                let v = ws.x[i].data()[j];
                ws.x[i].data_mut()[j] = v + h;
                let ep = energy(&net, &mut ws);
                ws.x[i].data_mut()[j] = v - h;
                let em = energy(&net, &mut ws);
                ws.x[i].data_mut()[j] = v;
                let what = format!("{conv:?} dE/dx of node {} [{j}]", net.topo.nodes[i].name);
                assert_close(&what, dx[i].data()[j], (ep - em) / (2.0 * h), 1e-6);
            }
        }
        let mut net = net;
        for e in 0..net.layers.len() {
            for (p, g) in grads[e].iter().enumerate() {
                for j in 0..g.len() {
                    nudge_param(&mut net, e, p, j, h);
                    let ep = energy(&net, &mut ws);
                    nudge_param(&mut net, e, p, j, -2.0 * h);
                    let em = energy(&net, &mut ws);
                    nudge_param(&mut net, e, p, j, h);
                    let name = &net.topo.edges[e].name;
                    let numeric = (ep - em) / (2.0 * h);
                    let is_diag = {
                        let edge = &net.topo.edges[e];
                        p == 0 && edge.src == Some(edge.dst) && j % (g.cols() + 1) == 0
                    };
                    // The self-edge's diagonal is fixed at zero: its gradient is zero.
                    let expect = if is_diag { 0.0 } else { numeric };
                    assert_close(
                        &format!("{conv:?} dE/dθ edge {name} param {p} [{j}]"),
                        g.data()[j],
                        expect,
                        1e-6,
                    );
                }
            }
        }
    }
}

/// A DAG with skip connections of lengths 2, 3 and 4 (several in-edges per node).
fn skip_dag(conv: Convention) -> MlpSpec {
    MlpSpec {
        convention: conv,
        nodes: vec![
            node("in", 4, Activation::Tanh),
            node("h1", 5, Activation::Tanh),
            node("h2", 4, Activation::Sigmoid),
            node("h3", 3, Activation::Tanh),
            node("out", 3, Activation::Identity),
        ],
        edges: vec![
            edge("in", "h1"),
            edge("h1", "h2"),
            edge("h2", "h3"),
            edge("h3", "out"),
            edge("in", "h2"),
            edge("h1", "h3"),
            edge("in", "out"),
            edge("h1", "out"),
        ],
        ..Default::default()
    }
}

/// Backprop on a DAG equals central differences of the loss of the forward pass.
#[test]
fn backprop_on_a_dag_with_skips_matches_finite_differences_of_the_loss() {
    for conv in [Convention::Wf, Convention::Fw] {
        for (out_energy, reversed) in [
            (EnergyKind::Gaussian, false),
            (EnergyKind::CrossEntropy, false),
            (EnergyKind::Gaussian, true),
        ] {
            let mut spec = skip_dag(conv);
            spec.nodes[4].energy = out_energy;
            if reversed {
                // Nodes listed against the topological order: sources after their targets.
                spec.nodes.reverse();
                (spec.input, spec.output) = (Some("in".into()), Some("out".into()));
            }
            let (mut net, _) = random_state(&spec, 11);
            assert!(net.topo.is_dag() && !net.topo.is_chain());
            let mut r = rng(3);
            let x = randn(4, 4, 1.0, &mut r);
            let y = common::one_hot(&[0, 2, 1, 2], 3);
            let mut ws = Workspace::new(&net, 4);
            ws.load(&net, &x, &y).unwrap();
            let loss = Bp::gradients(&net, &mut ws);
            let grads = ws.grads.clone();
            let loss_of = |net: &Net<f64>| {
                let (l, _) = net.evaluate(&x, &y).unwrap();
                l
            };
            assert_close("loss", loss, loss_of(&net), 1e-12);
            let h = 1e-6;
            for e in 0..net.layers.len() {
                for (p, g) in grads[e].iter().enumerate() {
                    for j in 0..g.len() {
                        nudge_param(&mut net, e, p, j, h);
                        let lp = loss_of(&net);
                        nudge_param(&mut net, e, p, j, -2.0 * h);
                        let lm = loss_of(&net);
                        nudge_param(&mut net, e, p, j, h);
                        let what = format!(
                            "{conv:?} {out_energy:?} edge {} p{p}[{j}]",
                            net.topo.edges[e].name
                        );
                        assert_close(&what, g.data()[j], (lp - lm) / (2.0 * h), 1e-6);
                    }
                }
            }
        }
    }
}

/// The layered MLP written as `[[model.nodes]]`/`[[model.edges]]` trains bit for bit like
/// the one `sizes` builds, for every rule and both conventions.
#[test]
fn a_chain_written_as_a_graph_trains_bit_for_bit_like_the_layered_builder() {
    for conv in [Convention::Wf, Convention::Fw] {
        let sizes = [6, 5, 4, 3];
        let chain = MlpSpec {
            sizes: sizes.to_vec(),
            convention: conv,
            activation: Activation::Tanh,
            ..Default::default()
        };
        let (first, hidden, last) = match conv {
            // w_f: an edge reads f(x_src); the input is read without activation.
            Convention::Wf => (Activation::Identity, Activation::Tanh, Activation::Tanh),
            // f_w: a node's activation; the output's is the identity.
            Convention::Fw => (Activation::Tanh, Activation::Tanh, Activation::Identity),
        };
        let graph = MlpSpec {
            convention: conv,
            nodes: vec![
                node("x", 6, first),
                node("h1", 5, hidden),
                node("h2", 4, hidden),
                node("y", 3, last),
            ],
            edges: vec![edge("x", "h1"), edge("h1", "h2"), edge("h2", "y")],
            ..Default::default()
        };
        for algo in ["pc", "ipc", "bp", "zil"] {
            let mut a: Net<f32> = Net::mlp(&chain, 5).unwrap();
            let mut b: Net<f32> = Net::mlp(&graph, 5).unwrap();
            assert!(b.topo.is_chain(), "a chain graph is recognised as one");
            let cfg = InferenceConfig { steps: 6, ..Default::default() };
            let mut r = rng(9);
            for (net, tag) in [(&mut a, "layered"), (&mut b, "graph")] {
                let mut rule = learn::build::<f32>(algo, &cfg).unwrap();
                let mut opt = WeightOptim::new(OptimConfig::default(), net).unwrap();
                let mut ws = Workspace::new(net, 8);
                let mut r2 = r.clone();
                for index in 0..3 {
                    let x = randn(8, 6, 1.0, &mut r2);
                    let y = randn(8, 3, 1.0, &mut r2);
                    rule.train_batch(net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)
                        .unwrap_or_else(|e| panic!("{tag} {algo}: {e}"));
                }
            }
            let _ = &mut r;
            let (pa, pb) = (common::flat_params(&a), common::flat_params(&b));
            assert!(
                pa.iter().zip(&pb).all(|(u, v)| u.to_bits() == v.to_bits()),
                "{conv:?} {algo}: parameters differ"
            );
        }
    }
}

/// A query keeps clamped nodes and the known entries of a masked node fixed, moves the
/// rest, and is deterministic; bad queries are errors naming what is wrong.
#[test]
fn queries_clamp_mask_and_initialise_any_subset() {
    let spec = cyclic_spec(Convention::Fw);
    let (net, _) = random_state(&spec, 3);
    let (a, b, d) =
        (net.topo.node("a").unwrap(), net.topo.node("b").unwrap(), net.topo.node("d").unwrap());
    let mut r = rng(4);
    let xa = randn(2, 5, 1.0, &mut r);
    let xd = randn(2, 2, 1.0, &mut r);
    let mask = Tensor::from_fn(2, 2, |_, c| (c == 0) as u8 as f64);
    let cfg = InferenceConfig { steps: 30, gamma: 0.1, ..Default::default() };
    let mut ws = Workspace::new(&net, 2);
    let given = [(a, Given::Data(&xa)), (d, Given::Masked { data: &xd, mask: &mask })];
    let s = net.query(&mut ws, &given, &cfg).unwrap();
    assert!(s.final_energy < s.initial_energy, "inference lowers the energy: {s:?}");
    assert_eq!(ws.x[a].data(), xa.data(), "a clamped node does not move");
    for row in 0..2 {
        assert_eq!(ws.x[d].at(row, 0), xd.at(row, 0), "known entries stay");
        assert_ne!(ws.x[d].at(row, 1), xd.at(row, 1), "unknown entries are inferred");
    }
    let first = ws.x[b].clone();
    let mut ws2 = Workspace::new(&net, 2);
    net.query(&mut ws2, &given, &cfg).unwrap();
    assert_eq!(ws2.x[b].data(), first.data(), "the same query gives the same answer");
    // A nudged output in the settings does not apply to queries: nothing is nudged.
    let nudged = InferenceConfig { output: OutputMode::Nudge { beta: 0.5 }, ..cfg.clone() };
    net.query(&mut ws2, &given, &nudged).unwrap();
    assert_eq!(ws2.x[b].data(), first.data(), "queries ignore the output mode");
    // Initialised, not clamped: the node moves away from its data.
    let init = [(a, Given::Data(&xa)), (d, Given::Init(&xd))];
    net.query(&mut ws, &init, &cfg).unwrap();
    assert_ne!(ws.x[d].data(), xd.data());
    // a zero std is no random start either (rand_distr would accept it)
    for std in [-1.0, 0.0] {
        let bad =
            InferenceConfig { free_init: prospect::graph::FreeInit::Normal { std }, ..cfg.clone() };
        let err = net.query(&mut ws, &[(a, Given::Data(&xa))], &bad).unwrap_err().to_string();
        assert!(err.contains("inference.free_init.std"), "{std}: {err}");
    }
    let err = net.query(&mut ws, &[], &cfg).unwrap_err().to_string();
    assert!(err.contains("nothing given"), "{err}");
    let err = net
        .query(&mut ws, &[(a, Given::Data(&xa)), (a, Given::Init(&xa))], &cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("given twice"), "{err}");
    let err = net.query(&mut ws, &[(a, Given::Data(&xd))], &cfg).unwrap_err().to_string();
    assert!(err.contains("node `a`"), "{err}");
}

/// Inference lowers the energy on a graph with cycles, and pc / ipc training on it runs
/// while the self-edge's diagonal stays zero; bp and zil refuse it with a config error.
#[test]
fn rules_on_a_cyclic_graph() {
    let spec = cyclic_spec(Convention::Wf);
    let mut net: Net<f64> = Net::mlp(&spec, 1).unwrap();
    let mut r = rng(2);
    let x = randn(16, 5, 1.0, &mut r);
    let y = randn(16, 2, 1.0, &mut r);
    let cfg = InferenceConfig { steps: 20, ..Default::default() };
    for algo in ["pc", "ipc"] {
        let mut rule = learn::build::<f64>(algo, &cfg).unwrap();
        let mut opt = WeightOptim::new(OptimConfig::default(), &net).unwrap();
        let mut ws = Workspace::new(&net, 16);
        let first = rule
            .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)
            .unwrap();
        let mut last = first;
        for index in 1..30 {
            last = rule
                .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)
                .unwrap();
        }
        assert!(last.energy < first.energy, "{algo}: energy {} -> {}", first.energy, last.energy);
    }
    let cc = net.topo.edges.iter().position(|e| e.name == "c->c").unwrap();
    net.layers[cc].for_each_param(&mut |name, p| {
        if name == "weight" {
            assert!((0..3).all(|i| p.at(i, i) == 0.0), "the self-edge keeps a zero diagonal");
        }
    });
    assert!(learn::check_applies("pc", &net).is_ok() && learn::check_applies("ipc", &net).is_ok());
    for algo in ["bp", "zil"] {
        let err = learn::check_applies(algo, &net).unwrap_err().to_string();
        assert!(err.contains("acyclic"), "{algo}: {err}");
        let mut rule = learn::build::<f64>(algo, &cfg).unwrap();
        let mut opt = WeightOptim::new(OptimConfig::default(), &net).unwrap();
        let mut ws = Workspace::new(&net, 16);
        let err = rule
            .train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut ws)
            .unwrap_err();
        assert!(matches!(err, prospect::Error::Config { .. }), "{algo}: {err}");
    }
}

/// A graph in TOML builds; bad graphs are config errors naming the key.
#[test]
fn graphs_from_toml_and_their_errors() {
    let good = r#"
        preset = "digits-mlp"
        [model]
        convention = "f_w"
        input = "image"
        output = "label"
        [[model.nodes]]
        name = "image"
        size = 64
        [[model.nodes]]
        name = "h"
        size = 16
        activation = "tanh"
        [[model.nodes]]
        name = "label"
        size = 10
        [[model.edges]]
        from = "image"
        to = "h"
        [[model.edges]]
        from = "h"
        to = "label"
        [[model.edges]]
        from = "label"
        to = "h"
    "#;
    let cfg = RunConfig::from_toml_str(good).unwrap();
    let net: Net<f32> = Net::mlp(&cfg.model, 0).unwrap();
    assert_eq!(net.topo.nodes.len(), 3);
    assert_eq!((net.d_in(), net.d_out()), (64, 10));
    let bad = |from: &str, to: &str, key: &str| {
        let text = good.replacen(
            "from = \"label\"\n        to = \"h\"",
            &format!("from = \"{from}\"\n        to = \"{to}\""),
            1,
        );
        let err =
            RunConfig::from_toml_str(&text).and_then(|c| Net::<f32>::mlp(&c.model, 0).map(|_| ()));
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains(key), "expected `{key}` in: {msg}");
    };
    bad("lable", "h", "model.edges[2].from");
    bad("label", "hh", "model.edges[2].to");
    bad("h", "label", "given twice");
    let unknown = good.replace(
        "name = \"h\"\n        size = 16",
        "name = \"h\"\n        size = 16\n        colour = 1",
    );
    assert!(RunConfig::from_toml_str(&unknown).is_err(), "unknown node keys are rejected");
    // Edges without nodes are a graph error, not a chain.
    let edges_only = MlpSpec { edges: vec![edge("a", "b")], ..Default::default() };
    let msg = Net::<f32>::mlp(&edges_only, 0).unwrap_err().to_string();
    assert!(msg.contains("model.nodes"), "{msg}");
    // A layer whose input width (only) does not fit its edge's source.
    use prospect::graph::{EdgeInfo, NodeInfo, Topology};
    let info = |name: &str, size, energy| NodeInfo { name: name.into(), size, energy, act: None };
    let topo = Topology::new(
        vec![info("x", 3, None), info("y", 2, Some(0))],
        vec![EdgeInfo { name: "e".into(), src: Some(0), dst: 1 }],
        0,
        1,
    )
    .unwrap();
    let mut r = rng(0);
    for (d_in, d_out) in [(4, 2), (3, 5)] {
        let layer = prospect::Dense::<f32>::new(
            d_in,
            d_out,
            Activation::Tanh,
            Convention::Wf,
            true,
            prospect::Init::XavierUniform,
            &mut r,
        );
        let err = Net::from_graph(
            topo.clone(),
            vec![Box::new(layer)],
            vec![EnergyKind::Gaussian.build(1.0)],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("edge `e`"), "{d_in}x{d_out}: {err}");
    }
    let zero = good.replace("size = 16", "size = 0");
    let msg = RunConfig::from_toml_str(&zero)
        .and_then(|c| Net::<f32>::mlp(&c.model, 0).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("model.nodes[1].size"), "{msg}");
}

/// Z-IL on the levelled DAG with skips equals backprop on the original DAG (whose gradients
/// equal finite differences of the loss, above) over three batches, f64, to 1e-9 relative;
/// it takes as many steps per batch as the input's level. Unlevelled, zil is a config error.
#[test]
fn zil_on_a_levelled_dag_equals_backprop() {
    for conv in [Convention::Wf, Convention::Fw] {
        let spec = skip_dag(conv);
        let levelled = MlpSpec { level: true, ..spec.clone() };
        let mut bp_net: Net<f64> = Net::mlp(&spec, 21).unwrap();
        let mut zil_net: Net<f64> = Net::mlp(&levelled, 21).unwrap();
        assert!(!bp_net.topo.is_levelled() && zil_net.topo.is_levelled());
        // in->h2 skips 1 level, h1->h3 1, in->out 3, h1->out 2: identity nodes in~3, in~2,
        // in~1 (shared by in->h2 and in->out), h1~2, h1~1.
        assert_eq!(zil_net.topo.nodes.len(), 5 + 5, "{:?}", zil_net.topo.nodes);
        assert_eq!(common::flat_params(&bp_net), common::flat_params(&zil_net), "same weights");
        let input = zil_net.input();
        assert_eq!(zil_net.topo.levels()[input], Some(4));
        let cfg = InferenceConfig::default();
        let mut bp = learn::build::<f64>("bp", &cfg).unwrap();
        let mut zil = learn::build::<f64>("zil", &cfg).unwrap();
        let ocfg = OptimConfig::sgd(0.5);
        let mut bp_opt = WeightOptim::new(ocfg.clone(), &bp_net).unwrap();
        let mut zil_opt = WeightOptim::new(ocfg, &zil_net).unwrap();
        let mut bws = Workspace::new(&bp_net, 6);
        let mut zws = Workspace::new(&zil_net, 6);
        let mut r = rng(8);
        for index in 0..3 {
            let x = randn(6, 4, 1.0, &mut r);
            let y = randn(6, 3, 1.0, &mut r);
            let b = Batch { x: &x, y: &y, index };
            bp.train_batch(&mut bp_net, &mut bp_opt, b, &mut bws).unwrap();
            let s = zil.train_batch(&mut zil_net, &mut zil_opt, b, &mut zws).unwrap();
            assert_eq!(s.steps, 4, "one step per level");
        }
        let (pb, pz) = (common::flat_params(&bp_net), common::flat_params(&zil_net));
        let moved = common::norm(&common::sub(
            &pb,
            &common::flat_params(&Net::<f64>::mlp(&spec, 21).unwrap()),
        ));
        assert!(moved > 1e-2, "training moved the weights ({moved})");
        let diff = common::norm(&common::sub(&pb, &pz)) / common::norm(&pb);
        assert!(diff < 1e-9, "{conv:?}: Z-IL vs BP relative difference {diff:e}");
        // Unlevelled, Z-IL does not apply.
        let mut plain: Net<f64> = Net::mlp(&spec, 21).unwrap();
        let mut opt = WeightOptim::new(OptimConfig::sgd(0.5), &plain).unwrap();
        let x = randn(6, 4, 1.0, &mut r);
        let y = randn(6, 3, 1.0, &mut r);
        let err = zil
            .train_batch(&mut plain, &mut opt, Batch { x: &x, y: &y, index: 0 }, &mut bws)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.level"), "{err}");
    }
}

/// A forward pass answers only where it is the equilibrium of "input clamped, the rest
/// free": on a chain and a feed-forward DAG, not on a graph with a cycle or a generative net
/// whose input is predicted; there `predict` is an error and `predict_output` infers.
#[test]
fn forward_answers_only_feed_forward_graphs() {
    let chain: Net<f64> =
        Net::mlp(&MlpSpec::new(&[4, 5, 3], Activation::Tanh, Convention::Wf), 0).unwrap();
    let dag: Net<f64> = Net::mlp(&skip_dag(Convention::Fw), 0).unwrap();
    let cyclic: Net<f64> = Net::mlp(&cyclic_spec(Convention::Wf), 0).unwrap();
    let generative = MlpSpec {
        nodes: vec![node("image", 4, Activation::Identity), node("h", 3, Activation::Tanh), {
            let mut l = node("label", 2, Activation::Identity);
            l.prior = Prior::Zero;
            l
        }],
        edges: vec![edge("label", "h"), edge("h", "image")],
        input: Some("image".into()),
        output: Some("label".into()),
        ..Default::default()
    };
    let generative: Net<f64> = Net::mlp(&generative, 0).unwrap();
    assert!(chain.forward_answers() && dag.forward_answers());
    assert!(!cyclic.forward_answers() && !generative.forward_answers());
    let mut r = rng(1);
    let x = randn(3, 5, 1.0, &mut r);
    let err = cyclic.predict(&x).unwrap_err().to_string();
    assert!(err.contains("inference"), "{err}");
    // The generative net's answer moves the free label away from its zero start.
    let x = randn(3, 4, 1.0, &mut r);
    let mut ws = Workspace::new(&generative, 3);
    ws.x[generative.input()].copy_from(&x);
    let cfg = InferenceConfig { steps: 30, ..Default::default() };
    generative.predict_output(&mut ws, &cfg).unwrap();
    assert!(ws.x[generative.output()].sq_norm() > 0.0, "the label was inferred");
    let answer = ws.x[generative.output()].clone();
    let nudged = InferenceConfig { output: OutputMode::Nudge { beta: 0.5 }, ..cfg.clone() };
    generative.predict_output(&mut ws, &nudged).unwrap();
    assert_eq!(ws.x[generative.output()].data(), answer.data(), "no nudging in an answer");
    assert_eq!(ws.x[generative.input()].data(), x.data(), "the input stays clamped");
}

/// The topology's predicates and orders on small graphs, by hand.
#[test]
fn topology_predicates_and_orders_by_hand() {
    use prospect::graph::Topology;
    let chain = Topology::chain(&[4, 3, 2, 1]);
    let names: Vec<&str> = chain.edges.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"], "chain edges are named by index");
    assert!(chain.is_chain() && chain.is_dag() && chain.is_levelled());
    assert_eq!(chain.order, [0, 1, 2, 3]);
    assert_eq!(chain.level, [Some(3), Some(2), Some(1), Some(0)]);
    // A fork a -> b, a -> c: two edges like a chain of three nodes, but not one.
    let spec = |edges: Vec<EdgeSpec>, output: &str| MlpSpec {
        nodes: vec![
            node("a", 3, Activation::Tanh),
            node("b", 3, Activation::Tanh),
            node("c", 2, Activation::Identity),
        ],
        edges,
        input: Some("a".into()),
        output: Some(output.into()),
        ..Default::default()
    };
    let topo = |s: &MlpSpec| Net::<f64>::mlp(s, 0).unwrap().topo;
    let fork = topo(&spec(vec![edge("a", "b"), edge("a", "c")], "c"));
    assert!(!fork.is_chain() && fork.is_dag(), "a fork is not a chain");
    assert_eq!(fork.level, [Some(1), None, Some(0)], "b does not reach the output");
    let chain_b = topo(&spec(vec![edge("a", "b"), edge("b", "c")], "b"));
    assert!(!chain_b.is_chain(), "the output must be the last node");
    let skip = topo(&spec(vec![edge("a", "b"), edge("b", "c"), edge("a", "c")], "c"));
    assert!(!skip.is_chain() && skip.is_dag() && !skip.is_levelled());
    assert_eq!(skip.level, [Some(2), Some(1), Some(0)]);
    // The longest path wins whichever out-edge comes first.
    let skip_first = topo(&spec(vec![edge("a", "c"), edge("a", "b"), edge("b", "c")], "c"));
    assert_eq!(skip_first.level, [Some(2), Some(1), Some(0)]);
    let cyc = topo(&spec(vec![edge("a", "b"), edge("b", "c"), edge("c", "b")], "c"));
    assert!(!cyc.is_dag() && !cyc.is_levelled() && cyc.order.is_empty());
    // Forward order: from a alone, b then c; with c known too, c still gets its prediction
    // once b is computed; a self-edge keeps its node out of the order.
    let (mut order, mut state) = (Vec::new(), Vec::new());
    skip.forward_order(&[true, false, false], &mut order, &mut state);
    assert_eq!(order, [1, 2]);
    skip.forward_order(&[true, false, true], &mut order, &mut state);
    assert_eq!(order, [1, 2]);
    let selfe = topo(&spec(vec![edge("a", "b"), edge("b", "b"), edge("b", "c")], "c"));
    selfe.forward_order(&[true, false, false], &mut order, &mut state);
    assert!(order.is_empty(), "b waits for itself, c for b: {order:?}");
    cyc.forward_order(&[true, false, false], &mut order, &mut state);
    assert!(order.is_empty(), "{order:?}");
    cyc.forward_order(&[true, false, true], &mut order, &mut state);
    assert_eq!(order, [1, 2], "c known breaks the cycle");
    assert_eq!(skip.node("c"), Some(2));
    assert_eq!(skip.node("x"), None);
    // Identity and prior edges: their kinds, and no multiply-adds.
    let levelled: Net<f64> =
        Net::mlp(&MlpSpec { level: true, ..skip_dag(Convention::Wf) }, 0).unwrap();
    let plain: Net<f64> = Net::mlp(&skip_dag(Convention::Wf), 0).unwrap();
    assert_eq!(levelled.macs_per_example(), plain.macs_per_example());
    let kinds: Vec<&str> = levelled.layers.iter().map(|l| l.kind()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "identity").count(), 5);
    let cyc: Net<f64> = Net::mlp(&cyclic_spec(Convention::Wf), 0).unwrap();
    let prior = cyc.topo.edges.iter().position(|e| e.src.is_none()).unwrap();
    assert_eq!((cyc.layers[prior].kind(), cyc.layers[prior].macs_per_example()), ("prior", 0));
}

/// The forward initialisation by hand: on the cyclic graph a prior-fed node starts at its
/// prior mean, free nodes no forward pass reaches start at a seeded normal (not at their old
/// values), and every prediction is that of the initialised nodes; on a DAG a masked node
/// starts at its prediction where unknown and at its data where known.
#[test]
fn forward_initialisation_by_hand() {
    use prospect::graph::FreeInit;
    let (net, mut ws) = random_state(&cyclic_spec(Convention::Fw), 12);
    let (b, c, z) =
        (net.topo.node("b").unwrap(), net.topo.node("c").unwrap(), net.topo.node("z").unwrap());
    let init = FreeInit::Normal { std: 0.5 };
    for i in [b, c, z] {
        ws.x[i].fill(7.0);
    }
    net.forward_init(&mut ws, Some(true), &init, 3);
    let mut prior = Vec::new();
    net.layers[net.topo.in_edges[z][0]].for_each_param(&mut |_, p| prior = p.data().to_vec());
    for r in 0..ws.batch {
        assert_eq!(ws.x[z].row(r), &prior[..], "z starts at its learned prior mean");
    }
    for i in [b, c] {
        assert!(
            ws.x[i].data().iter().all(|&v| v != 7.0 && v.abs() < 5.0),
            "node {i} re-initialised"
        );
    }
    let first = (ws.x[b].clone(), ws.x[c].clone());
    let mus = ws.mu.clone();
    net.repredict(&mut ws, true);
    for i in 0..net.topo.nodes.len() {
        if net.topo.nodes[i].energy.is_some() {
            assert_eq!(ws.mu[i].data(), mus[i].data(), "prediction of node {i} is current");
        }
    }
    net.forward_init(&mut ws, Some(true), &init, 3);
    assert_eq!((ws.x[b].data(), ws.x[c].data()), (first.0.data(), first.1.data()), "seeded");
    net.forward_init(&mut ws, Some(true), &init, 4);
    assert_ne!(ws.x[b].data(), first.0.data(), "another seed, other values");
    net.forward_init(&mut ws, Some(true), &FreeInit::Zeros, 4);
    assert!(ws.x[b].data().iter().all(|&v| v == 0.0));

    // A masked output of a DAG, no inference step: known entries are the data, unknown ones
    // the forward prediction.
    let (dag, _) = random_state(&skip_dag(Convention::Wf), 13);
    let mut r = rng(14);
    let x = randn(3, 4, 1.0, &mut r);
    let y = randn(3, 3, 1.0, &mut r);
    let mask = Tensor::from_fn(3, 3, |_, col| (col != 1) as u8 as f64);
    let (inp, out) = (dag.input(), dag.output());
    let mut ws = Workspace::new(&dag, 3);
    let cfg = InferenceConfig { steps: 0, ..Default::default() };
    dag.query(
        &mut ws,
        &[(inp, Given::Data(&x)), (out, Given::Masked { data: &y, mask: &mask })],
        &cfg,
    )
    .unwrap();
    let pred = dag.predict(&x).unwrap();
    // A workspace reused for a query with other roles answers it like a fresh one (the
    // forward order follows the roles).
    let only_out = [(out, Given::Data(&y))];
    let q5 = InferenceConfig { steps: 5, ..Default::default() };
    let mut fresh = Workspace::new(&dag, 3);
    dag.query(&mut fresh, &only_out, &q5).unwrap();
    let mut reused = Workspace::new(&dag, 3);
    dag.query(&mut reused, &[(inp, Given::Data(&x))], &q5).unwrap();
    dag.query(&mut reused, &only_out, &q5).unwrap();
    for i in 0..dag.topo.nodes.len() {
        assert_eq!(reused.x[i].data(), fresh.x[i].data(), "node {i}");
    }
    for row in 0..3 {
        for col in 0..3 {
            let want = if col == 1 { pred.at(row, col) } else { y.at(row, col) };
            assert_eq!(ws.x[out].at(row, col), want, "({row}, {col})");
        }
    }
}

/// Inference skips the products of errors it knows are exactly zero (nodes still at their
/// forward prediction, which the error reaches one edge per step): PC training and queries
/// give the same bits with the skipping on and off, on a chain, a DAG with skip connections
/// and a graph with cycles (a Laplace node and a prior among them), with plain and momentum
/// node steps, halving and batch shards; and the skipping does skip something where the forward pass places a free node.
#[test]
fn skipping_zero_products_changes_no_bit() {
    let chain = MlpSpec {
        sizes: vec![6, 5, 5, 4, 3],
        activation: Activation::Gelu,
        convention: Convention::Fw,
        ..Default::default()
    };
    // (name, spec, whether the forward pass places some free node: with the cycle it places
    // none, so nothing starts quiet)
    let specs = [
        ("chain", chain, true),
        ("skip dag w_f", skip_dag(Convention::Wf), true),
        ("skip dag f_w", skip_dag(Convention::Fw), true),
        ("cyclic", cyclic_spec(Convention::Fw), false),
    ];
    let cfgs = [
        InferenceConfig { steps: 2, gamma: 0.2, ..Default::default() },
        InferenceConfig {
            steps: 7,
            gamma: 0.3,
            optimizer: NodeOptim::Momentum,
            momentum: 0.6,
            halve_on_rise: true,
            ..Default::default()
        },
    ];
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (name, spec, places) in &specs {
        for (c, cfg) in cfgs.iter().enumerate() {
            // (parameters after 3 batches, nodes of the last batch, products skipped)
            let train = |skip: bool| {
                let mut net: Net<f32> = Net::mlp(spec, 5).unwrap();
                let mut rule = learn::build::<f32>("pc", cfg).unwrap();
                let mut opt = WeightOptim::new(OptimConfig::default(), &net).unwrap();
                let mut ws = Workspace::new(&net, 16);
                ws.skip_zero_products = skip;
                let mut r = rng(9);
                let mut skipped = 0;
                for index in 0..3 {
                    let x = randn(16, net.d_in(), 1.0, &mut r);
                    let y = randn(16, net.d_out(), 1.0, &mut r);
                    rule.train_batch(&mut net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)
                        .unwrap();
                    skipped += ws.last.skipped_products;
                }
                let nodes: Vec<f64> = std::iter::once(&ws)
                    .chain(&ws.shards)
                    .flat_map(|w| w.x.iter().flat_map(|t| t.data().iter().map(|&v| f64::from(v))))
                    .collect();
                (common::flat_params(&net), nodes, skipped)
            };
            let (p_on, x_on, n_on) = train(true);
            let (p_off, x_off, n_off) = train(false);
            assert_eq!(bits(&p_on), bits(&p_off), "{name}, settings {c}: parameters differ");
            assert_eq!(bits(&x_on), bits(&x_off), "{name}, settings {c}: nodes differ");
            assert_eq!(n_off, 0, "{name}: nothing is skipped when skipping is off");
            assert_eq!(n_on > 0, *places, "{name}, settings {c}: products skipped: {n_on}");
        }
        // A query with a masked output and an initialised-from-data node where there is one.
        let (net, _) = random_state(spec, 3);
        let (inp, out) = (net.input(), net.output());
        let mut r = rng(4);
        let xi = randn(2, net.d_in(), 1.0, &mut r);
        let xo = randn(2, net.d_out(), 1.0, &mut r);
        let mask = Tensor::from_fn(2, net.d_out(), |_, c| (c == 0) as u8 as f64);
        let given = [(inp, Given::Data(&xi)), (out, Given::Masked { data: &xo, mask: &mask })];
        let cfg = &cfgs[1];
        let query = |skip: bool| {
            let mut ws = Workspace::new(&net, 2);
            ws.skip_zero_products = skip;
            let s = net.query(&mut ws, &given, cfg).unwrap();
            let x: Vec<f64> = ws.x.iter().flat_map(|t| t.data().to_vec()).collect();
            (x, s.final_energy)
        };
        let ((x_on, e_on), (x_off, e_off)) = (query(true), query(false));
        assert_eq!(bits(&x_on), bits(&x_off), "{name}: query answers differ");
        assert_eq!(e_on.to_bits(), e_off.to_bits(), "{name}: query energies differ");
    }
}

/// Inference packs the weights of the edges leaving moving nodes once for its steps (where
/// the packed kernel runs: f32 on AVX-512), and only for them; after it, a weight changed in
/// place must be what the next product reads, not the packed copy.
#[test]
fn an_inference_packs_its_moving_edges_and_leaves_no_packed_weight_behind() {
    use prospect::tensor::simd::{level, Level};
    let spec = MlpSpec::new(&[30, 48, 40, 7], Activation::Gelu, Convention::Fw);
    let mut net: Net<f32> = Net::mlp(&spec, 5).unwrap();
    let x = Tensor::from_fn(12, 30, |r, c| ((r * 30 + c) % 13) as f32 / 13.0 - 0.5);
    let y = Tensor::from_fn(12, 7, |r, c| (r % 7 == c) as u8 as f32);
    let mut ws = Workspace::new(&net, 12);
    ws.load(&net, &x, &y).unwrap();
    let kernel = level() == Level::Avx512;
    let before = prospect::tensor::packed_products();
    let mut seen = Vec::new();
    let cfg = InferenceConfig { steps: 4, ..Default::default() };
    net.infer_observed(&mut ws, &cfg, 0, |_, ws| {
        let packed =
            |l: &prospect::layers::LayerWs<f32>| (l.packed.is_packed(), l.packed_back.is_packed());
        seen.push(ws.layer_ws.iter().map(packed).collect::<Vec<_>>());
    })
    .unwrap();
    assert_eq!(seen.len(), 5);
    for s in &seen {
        // Edge 0 leaves the clamped input; the others leave free nodes.
        assert_eq!(s, &[(false, false), (kernel, kernel), (kernel, kernel)]);
    }
    assert!(ws.layer_ws.iter().all(|l| !l.packed.is_packed() && !l.packed_back.is_packed()));
    // Where the kernel exists the steps' products ran on it.
    assert_eq!(prospect::tensor::packed_products() > before, kernel);
    for layer in &mut net.layers {
        layer.for_each_param_mut(&mut |_, t| t.data_mut().iter_mut().for_each(|w| *w *= -0.75));
    }
    let mut fresh = Workspace::new(&net, 12);
    fresh.load(&net, &x, &y).unwrap();
    net.forward(&mut ws, false);
    net.forward(&mut fresh, false);
    let bits = |t: &Tensor<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for i in 1..=net.output() {
        assert_eq!(bits(&ws.mu[i]), bits(&fresh.mu[i]), "node {i}");
    }
}
