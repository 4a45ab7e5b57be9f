//! Checkpoints: round trips, deterministic bytes, atomic replacement, and errors that name
//! the file and the tensor.

use prospect::checkpoint::{self, Metadata, MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_PREV_FILE};
use prospect::{learn, Activation, Convention, Error, InferenceConfig, MlpSpec, Net, OptimConfig};
use prospect::{Tensor, WeightOptim, Workspace};
use std::fs;
use std::path::Path;

fn spec(sizes: &[usize]) -> MlpSpec {
    MlpSpec::new(sizes, Activation::Tanh, Convention::Fw)
}

fn params(net: &Net<f32>) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (i, l) in net.layers.iter().enumerate() {
        l.for_each_param(&mut |n, t| out.push((format!("edges.{i}.{n}"), t.data().to_vec())));
    }
    out
}

/// A net with non-zero biases and an Adam optimiser that has taken `steps` updates.
fn trained(seed: u64, steps: usize) -> (Net<f32>, WeightOptim<f32>) {
    let mut net: Net = Net::mlp(&spec(&[6, 5, 3]), seed).unwrap();
    let mut opt = WeightOptim::new(OptimConfig::adam(0.01), &net).unwrap();
    let mut rule = learn::build::<f32>("pc", &InferenceConfig::default()).unwrap();
    let x = Tensor::from_fn(4, 6, |r, c| ((r * 7 + c * 3) % 5) as f32 / 5.0);
    let y = Tensor::from_fn(4, 3, |r, c| (r % 3 == c) as u8 as f32);
    let mut ws = Workspace::new(&net, 4);
    for i in 0..steps {
        rule.train_batch(&mut net, &mut opt, learn::Batch { x: &x, y: &y, index: i }, &mut ws)
            .unwrap();
    }
    (net, opt)
}

fn meta(pairs: &[(&str, &str)]) -> Metadata {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn expect_checkpoint_err(e: Error, path: &Path, needle: &str) {
    match e {
        Error::Checkpoint { path: p, msg } => {
            assert_eq!(p, path.display().to_string(), "error names the file: {msg}");
            assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

#[test]
fn model_round_trip_restores_every_parameter_and_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    let (net, _) = trained(1, 3);
    checkpoint::save_model(&path, &net, &meta(&[("epoch", "7"), ("note", "hi \"there\"")]))
        .unwrap();
    let mut other: Net = Net::mlp(&spec(&[6, 5, 3]), 99).unwrap();
    assert_ne!(params(&other), params(&net));
    let m = checkpoint::load_model(&path, &mut other).unwrap();
    assert_eq!(params(&other), params(&net));
    assert_eq!(m["epoch"], "7");
    assert_eq!(m["note"], "hi \"there\"");
    assert_eq!(m["format"], "prospect");
    assert_eq!(m["format_version"], checkpoint::FORMAT_VERSION.to_string());
    assert_eq!(m["dtype"], "f32");
}

#[test]
fn tensors_are_named_and_shaped_like_a_torch_linear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    let (net, _) = trained(2, 1);
    checkpoint::save_model(&path, &net, &Metadata::new()).unwrap();
    let ts = checkpoint::read_tensors(&path).unwrap();
    let got: Vec<(&str, &[usize])> = ts.iter().map(|t| (t.name.as_str(), &t.shape[..])).collect();
    assert_eq!(
        got,
        vec![
            ("edges.0.bias", &[5][..]),
            ("edges.0.weight", &[5, 6][..]),
            ("edges.1.bias", &[3][..]),
            ("edges.1.weight", &[3, 5][..]),
        ]
    );
    let w = &ts[1].values;
    let mut want = Vec::new();
    net.layers[0].for_each_param(&mut |n, t| {
        if n == "weight" {
            want = t.data().iter().map(|&x| x as f64).collect();
        }
    });
    assert_eq!(w, &want);
}

#[test]
fn identical_states_write_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    let m = meta(&[("z", "1"), ("a", "2"), ("epoch", "3"), ("m", "4")]);
    let (net, opt) = trained(3, 2);
    checkpoint::save_model(&a, &net, &m).unwrap();
    checkpoint::save_model(&b, &net.clone(), &m.clone()).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    checkpoint::save_optimizer(&a, &opt, &m).unwrap();
    checkpoint::save_optimizer(&b, &opt.clone(), &m).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn optimizer_round_trip_restores_state_counts_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(OPTIMIZER_FILE);
    let (net, opt) = trained(4, 5);
    checkpoint::save_optimizer(&path, &opt, &meta(&[("epoch", "1")])).unwrap();
    let mut fresh = WeightOptim::new(OptimConfig::adam(0.01), &net).unwrap();
    checkpoint::load_optimizer(&path, &mut fresh).unwrap();
    assert_eq!(fresh.batches_done, 5);
    assert_eq!(fresh.update_counts(), opt.update_counts());
    let mut a = Vec::new();
    opt.for_each_state(&mut |n, t| a.push((n, t.data().to_vec())));
    let mut b = Vec::new();
    fresh.for_each_state(&mut |n, t| b.push((n, t.data().to_vec())));
    assert_eq!(a, b);
    assert!(a.iter().any(|(_, v)| v.iter().any(|&x| x != 0.0)), "state is non-trivial");

    // The state of another optimiser kind is refused, naming the file.
    let mut sgd =
        WeightOptim::new(OptimConfig { momentum: 0.9, ..OptimConfig::sgd(0.1) }, &net).unwrap();
    let e = checkpoint::load_optimizer(&path, &mut sgd).unwrap_err();
    expect_checkpoint_err(e, &path, "adam");
}

#[test]
fn a_leftover_temp_file_never_replaces_a_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    let (net, _) = trained(5, 2);
    checkpoint::save_model(&path, &net, &Metadata::new()).unwrap();
    assert!(!checkpoint::tmp_path(&path).exists(), "a save leaves no temp file behind");
    let good = fs::read(&path).unwrap();
    // A save killed half-way leaves a torn temp file...
    fs::write(checkpoint::tmp_path(&path), &good[..good.len() / 2]).unwrap();
    // ...which loading ignores,
    let mut other: Net = Net::mlp(&spec(&[6, 5, 3]), 7).unwrap();
    checkpoint::load_model(&path, &mut other).unwrap();
    assert_eq!(params(&other), params(&net));
    assert_eq!(fs::read(&path).unwrap(), good);
    // and the next save overwrites.
    let (net2, _) = trained(6, 1);
    checkpoint::save_model(&path, &net2, &Metadata::new()).unwrap();
    assert!(!checkpoint::tmp_path(&path).exists());
    checkpoint::load_model(&path, &mut other).unwrap();
    assert_eq!(params(&other), params(&net2));
}

#[test]
fn truncated_or_foreign_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    let (net, _) = trained(7, 1);
    checkpoint::save_model(&path, &net, &Metadata::new()).unwrap();
    let good = fs::read(&path).unwrap();
    let mut other: Net = Net::mlp(&spec(&[6, 5, 3]), 8).unwrap();
    for cut in [0, 4, 8, 20, good.len() - 1] {
        fs::write(&path, &good[..cut]).unwrap();
        let e = checkpoint::load_model(&path, &mut other).unwrap_err();
        expect_checkpoint_err(e, &path, "not a valid safetensors file");
    }
    fs::write(&path, b"this is not a checkpoint at all, just some text").unwrap();
    let e = checkpoint::load_model(&path, &mut other).unwrap_err();
    expect_checkpoint_err(e, &path, "corrupt or truncated");
    let e = checkpoint::read_metadata(&path).unwrap_err();
    expect_checkpoint_err(e, &path, "not a valid safetensors file");
    let missing = dir.path().join("nope.safetensors");
    match checkpoint::load_model(&missing, &mut other).unwrap_err() {
        Error::Io { path, .. } => assert!(path.ends_with("nope.safetensors")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_checkpoint_of_another_network_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    let (net, _) = trained(9, 1);
    checkpoint::save_model(&path, &net, &Metadata::new()).unwrap();
    // Wider hidden layer: shape mismatch on the first tensor checked.
    let mut wider: Net = Net::mlp(&spec(&[6, 8, 3]), 0).unwrap();
    let e = checkpoint::load_model(&path, &mut wider).unwrap_err();
    expect_checkpoint_err(e, &path, "tensor `edges.0.weight` has shape [5, 6]");
    // Deeper: a tensor is missing.
    let mut deeper: Net = Net::mlp(&spec(&[6, 5, 3, 3]), 0).unwrap();
    let e = checkpoint::load_model(&path, &mut deeper).unwrap_err();
    expect_checkpoint_err(e, &path, "missing tensor `edges.2.weight`");
    // Shallower: an extra tensor.
    let mut shallow: Net = Net::mlp(&spec(&[6, 3]), 0).unwrap();
    let e = checkpoint::load_model(&path, &mut shallow).unwrap_err();
    expect_checkpoint_err(e, &path, "tensor `edges.0.weight` has shape [5, 6]");
    let mut no_bias_spec = spec(&[6, 5, 3]);
    no_bias_spec.bias = false;
    let mut no_bias: Net = Net::mlp(&no_bias_spec, 0).unwrap();
    let e = checkpoint::load_model(&path, &mut no_bias).unwrap_err();
    expect_checkpoint_err(e, &path, "unexpected tensor `edges.0.bias`");
}

#[test]
fn load_uses_the_optimizer_state_of_the_model_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (net1, opt1) = trained(10, 2);
    checkpoint::save(d, &net1, &opt1, 1, &Metadata::new(), &Metadata::new()).unwrap();
    let model_1 = fs::read(d.join(MODEL_FILE)).unwrap();
    let (net2, opt2) = trained(10, 4);
    checkpoint::save(d, &net2, &opt2, 2, &Metadata::new(), &Metadata::new()).unwrap();
    assert!(d.join(OPTIMIZER_PREV_FILE).is_file());

    let fresh = || {
        let net: Net = Net::mlp(&spec(&[6, 5, 3]), 0).unwrap();
        let opt = WeightOptim::new(OptimConfig::adam(0.01), &net).unwrap();
        (net, opt)
    };
    let (mut net, mut opt) = fresh();
    let l = checkpoint::load(d, &mut net, &mut opt).unwrap();
    assert_eq!((l.epoch, opt.batches_done), (2, 4));
    assert_eq!(params(&net), params(&net2));

    // A crash after the optimiser file was replaced but before the model file was: the model
    // is still epoch 1, and its optimiser state is the kept previous one.
    fs::write(d.join(MODEL_FILE), &model_1).unwrap();
    let (mut net, mut opt) = fresh();
    let l = checkpoint::load(d, &mut net, &mut opt).unwrap();
    assert_eq!((l.epoch, opt.batches_done), (1, 2));
    assert_eq!(params(&net), params(&net1));

    // With no optimiser state for the model's epoch, loading fails and says so.
    fs::remove_file(d.join(OPTIMIZER_PREV_FILE)).unwrap();
    let (mut net, mut opt) = fresh();
    let e = checkpoint::load(d, &mut net, &mut opt).unwrap_err();
    expect_checkpoint_err(e, &d.join(OPTIMIZER_FILE), "no optimiser state for epoch 1");
}

/// A file of format 1 (tensors `layers.{i}.weight`, `layers.{i}.bias`) still loads into the
/// chain it was saved from, value for value.
#[test]
fn a_format_1_file_with_layer_keys_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    let (net, _) = trained(4, 2);
    checkpoint::save_model(&path, &net, &Metadata::new()).unwrap();
    let renamed: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> =
        checkpoint::read_tensors(&path)
            .unwrap()
            .into_iter()
            .map(|t| {
                let name = t.name.replacen("edges.", "layers.", 1);
                let bytes = t.values.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
                (name, t.shape, safetensors::Dtype::F32, bytes)
            })
            .collect();
    let mut meta = Metadata::new();
    meta.insert("format".into(), "prospect".into());
    meta.insert("format_version".into(), "1".into());
    std::fs::write(&path, checkpoint::encode(&renamed, &meta).unwrap()).unwrap();
    let mut fresh: Net = Net::mlp(&spec(&[6, 5, 3]), 99).unwrap();
    assert_ne!(params(&fresh), params(&net));
    checkpoint::load_model(&path, &mut fresh).unwrap();
    assert_eq!(params(&fresh), params(&net));
}

/// A graph's tensors are named by edge (a learned prior too), the graph is in the metadata,
/// and the file loads back into the same graph.
#[test]
fn graph_checkpoints_name_tensors_by_edge() {
    let text = r#"
        [model]
        input = "x"
        output = "y"
        [[model.nodes]]
        name = "x"
        size = 4
        [[model.nodes]]
        name = "z"
        size = 3
        prior = "learned"
        [[model.nodes]]
        name = "y"
        size = 2
        [[model.edges]]
        from = "x"
        to = "y"
        [[model.edges]]
        from = "z"
        to = "y"
        name = "top"
    "#;
    let cfg = prospect::RunConfig::from_toml_str(text).unwrap();
    let net: Net = Net::mlp(&cfg.model, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MODEL_FILE);
    checkpoint::save_model(&path, &net, &Metadata::new()).unwrap();
    let names: Vec<String> =
        checkpoint::read_tensors(&path).unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        ["edges.prior.z.bias", "edges.top.weight", "edges.x->y.bias", "edges.x->y.weight"]
    );
    let meta = checkpoint::read_metadata(&path).unwrap();
    let graph: serde_json::Value = serde_json::from_str(&meta["graph"]).unwrap();
    assert_eq!(graph["edges"][0]["from"], serde_json::Value::Null, "the prior has no source");
    assert_eq!(graph["edges"][2]["name"], "top");
    assert_eq!(graph["output"], "y");
    let mut other: Net = Net::mlp(&cfg.model, 2).unwrap();
    checkpoint::load_model(&path, &mut other).unwrap();
    assert_eq!(common_params(&other), common_params(&net));
}

fn common_params(net: &Net) -> Vec<Vec<f32>> {
    let mut v = Vec::new();
    for l in &net.layers {
        l.for_each_param(&mut |_, t| v.push(t.data().to_vec()));
    }
    v
}
