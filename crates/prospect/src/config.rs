//! Run configuration: typed TOML sections, the shipped presets, `--set key=value` overrides
//! and validation.
//!
//! A config is resolved in layers on a TOML value tree, then deserialised once, so unknown
//! keys, wrong types and bad values are reported with the full key path:
//!
//! 1. a preset (`--preset`, else the `preset` key of the file, else [`DEFAULT_PRESET`]);
//! 2. a TOML file (`--config`), merged key by key over the preset;
//! 3. `--set key=value` overrides, in order.
//!
//! ```
//! use prospect::config::{self, RunConfig};
//! let cfg = config::resolve(Some("digits-mlp"), None, &["inference.steps=16".into()]).unwrap();
//! assert_eq!(cfg.inference.steps, 16);
//! let text = cfg.to_toml().unwrap();
//! assert_eq!(RunConfig::from_toml_str(&text).unwrap(), cfg);
//! let err = config::resolve(None, None, &["inference.stepz=3".into()]).unwrap_err();
//! assert!(err.to_string().contains("inference.stepz"));
//! ```

use crate::error::{Error, Result};
use crate::infer::{InferenceConfig, NodeOptim};
use crate::layers::{Activation, Convention, Init};
use crate::net::MlpSpec;
use crate::optim::{OptimConfig, OptimKind, Reduction, Schedule, ScheduleKind};
use crate::EnergyKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The preset used when none is named: a PC MLP on the bundled digits.
pub const DEFAULT_PRESET: &str = "digits-mlp";

/// The shipped presets and a line about each.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "digits-mlp",
        "PC MLP 64-128-10 (GELU) on the bundled 8x8 digits: no download, ~95% in seconds",
    ),
    (
        "mnist-mlp-pcx",
        "the PCX benchmark's MNIST MLP 784-128x3-10, GELU, f(Wx+b), T=8, AdamW, 25 epochs",
    ),
    ("fmnist-mlp-pcx", "the PCX benchmark's Fashion-MNIST MLP: same net, T=5, AdamW, 6 epochs"),
    ("mnist-mlp-bp", "the mnist-mlp-pcx network and schedule trained by backprop (baseline)"),
    (
        "mnist-mlp-categorical",
        "the mnist-mlp-pcx network and schedule with categorical hidden nodes (KL energies)",
    ),
    ("mnist-mlp-bernoulli", "the mnist-mlp-pcx network and schedule with Bernoulli hidden nodes"),
    ("digits-cnn", "PC CNN on the bundled digits: conv 3x3 + max-pool -> dense, seconds"),
    (
        "mnist-cnn",
        "PC CNN on MNIST: conv 3x3 16 + pool, conv 3x3 32 + pool, dense 128, 10; GELU, T=8",
    ),
    ("fmnist-cnn", "the mnist-cnn network and schedule on Fashion-MNIST"),
    (
        "cifar10-vgg5",
        "PCX's VGG-5 (conv 128-256-512-512 + pools, linear) on CIFAR-10, PC-CE, T=8; user data",
    ),
    ("cifar100-vgg5", "PCX's VGG-5 on CIFAR-100, PC-CE, hard-tanh, T=12; user data"),
    (
        "digits-graph",
        "PC on a graph with cycles on the bundled digits: image <-> hidden <-> label, T=100",
    ),
];

/// Largest accepted `train.threads`.
pub const MAX_THREADS: usize = 1024;

/// How input features are scaled before training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Map the dataset's nominal range (0..255, 0..16) to [0, 1].
    #[default]
    Unit,
    /// Map the nominal range to [-1, 1] (torchvision's `Normalize(0.5, 0.5)` after `ToTensor`).
    Symmetric,
    /// [0, 1], then subtract the training set's mean and divide by its std (one pair overall).
    Standardize,
    /// Leave raw values.
    None,
}

/// What to do when a batch's energy becomes NaN or infinite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// Stop the run with an error naming the batch, step and layer.
    #[default]
    Stop,
    /// Skip the batch (counted in the epoch's metrics); stop if a whole epoch is skipped.
    Skip,
}

/// `[data]`: which dataset and how it is prepared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Dataset name (see [`crate::data::DATASETS`]).
    pub name: String,
    /// Directory holding the files (default: the data root, see [`crate::data::data_root`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Input scaling.
    pub scale: Scaling,
    /// Fraction of the training split held out for validation (0 = none).
    pub validation: f64,
    /// `[data.augment]`: random crop and flip of training images (seeded; off by default).
    #[serde(skip_serializing_if = "is_off")]
    pub augment: crate::data::Augment,
}

fn is_off(a: &crate::data::Augment) -> bool {
    !a.is_on()
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            name: crate::data::DEFAULT_DATASET.into(),
            dir: None,
            scale: Scaling::Unit,
            validation: 0.0,
            augment: crate::data::Augment::default(),
        }
    }
}

/// `[train]`: the loop around the learning rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Number of epochs.
    pub epochs: usize,
    /// Examples per training batch.
    pub batch_size: usize,
    /// Stop each epoch after this many batches (0 = the whole training set).
    pub batches_per_epoch: usize,
    /// Seed of the weight initialisation, the validation split and the per-epoch shuffles.
    pub seed: u64,
    /// Compute threads (0 = all cores).
    pub threads: usize,
    /// Shuffle the training set every epoch.
    pub shuffle: bool,
    /// Drop the last, smaller batch of an epoch.
    pub drop_last: bool,
    /// Reaction to a non-finite energy.
    pub on_non_finite: OnNonFinite,
    /// Examples per evaluation batch.
    pub eval_batch_size: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            batches_per_epoch: 0,
            seed: 0,
            threads: 0,
            shuffle: true,
            drop_last: false,
            on_non_finite: OnNonFinite::Stop,
            eval_batch_size: 1000,
        }
    }
}

/// A whole run: data, network, learning rule, inference, weight optimiser and loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The preset this config started from (names run directories).
    pub preset: String,
    /// Learning rule: `bp`, `pc`, `ipc`, `zil`, `eqprop` or `chl` (see [`crate::learn::RULES`]).
    pub algo: String,
    /// `[data]`.
    pub data: DataConfig,
    /// `[model]`: the network.
    pub model: MlpSpec,
    /// `[inference]`: the node relaxation of the PC rules.
    pub inference: InferenceConfig,
    /// `[optimizer]`: the weight optimiser.
    pub optimizer: OptimConfig,
    /// `[train]`.
    pub train: TrainConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        digits_mlp()
    }
}

/// The default preset: a PC MLP on the bundled digits.
fn digits_mlp() -> RunConfig {
    RunConfig {
        preset: "digits-mlp".into(),
        algo: "pc".into(),
        data: DataConfig { scale: Scaling::Standardize, ..Default::default() },
        model: MlpSpec {
            sizes: vec![64, 128, 10],
            activation: Activation::Gelu,
            convention: Convention::Fw,
            bias: true,
            init: Init::XavierUniform,
            output_energy: EnergyKind::Gaussian,
            hidden_energy: EnergyKind::Gaussian,
            precisions: vec![],
            activate_input: false,
            output_activation: Activation::Identity,
            ..Default::default()
        },
        inference: InferenceConfig {
            steps: 20,
            gamma: 0.1,
            optimizer: NodeOptim::Sgd,
            momentum: 0.0,
            ..Default::default()
        },
        optimizer: OptimConfig {
            kind: OptimKind::Adam,
            lr: 3e-3,
            reduction: Reduction::Mean,
            ..Default::default()
        },
        train: TrainConfig { epochs: 20, batch_size: 32, ..Default::default() },
    }
}

/// PC on a graph with cycles (Salvatori et al. 2022): the image and the label both predict
/// and are predicted by one hidden node; classification is the query image -> label.
fn digits_graph() -> RunConfig {
    use crate::graph::{EdgeSpec, NodeSpec};
    let (node, edge) = (NodeSpec::new, EdgeSpec::new);
    let mut cfg = digits_mlp();
    cfg.preset = "digits-graph".into();
    cfg.model = MlpSpec {
        sizes: vec![],
        convention: Convention::Wf,
        nodes: vec![
            node("image", 64, Activation::Identity),
            node("hidden", 64, Activation::Tanh),
            node("label", 10, Activation::Identity),
        ],
        edges: vec![
            edge("image", "hidden"),
            edge("label", "hidden"),
            edge("hidden", "image"),
            edge("hidden", "label"),
        ],
        input: Some("image".into()),
        output: Some("label".into()),
        ..Default::default()
    };
    cfg.inference.steps = 100;
    cfg.inference.gamma = 0.2;
    cfg
}

/// The PCX benchmark's MNIST MLP (Pinchetti et al. 2024): 784-128-128-128-10, GELU,
/// `mu = f(Wx + b)`, squared error, batch 128, T = 8, AdamW with warm-up and cosine decay.
fn mnist_mlp_pcx() -> RunConfig {
    RunConfig {
        preset: "mnist-mlp-pcx".into(),
        algo: "pc".into(),
        data: DataConfig { name: "mnist".into(), scale: Scaling::Symmetric, ..Default::default() },
        model: MlpSpec {
            sizes: vec![784, 128, 128, 128, 10],
            activation: Activation::Gelu,
            convention: Convention::Fw,
            output_energy: EnergyKind::Gaussian,
            output_activation: Activation::Identity,
            ..Default::default()
        },
        inference: InferenceConfig {
            steps: 8,
            gamma: 0.0105,
            optimizer: NodeOptim::Momentum,
            momentum: 0.65,
            ..Default::default()
        },
        optimizer: OptimConfig {
            kind: OptimKind::Adamw,
            lr: 2.97e-4,
            weight_decay: 3.55e-4,
            reduction: Reduction::Mean,
            schedule: Schedule {
                kind: ScheduleKind::WarmupCosine,
                warmup: 0.1,
                final_factor: 0.1,
                ..Default::default()
            },
            ..Default::default()
        },
        train: TrainConfig { epochs: 25, batch_size: 128, drop_last: true, ..Default::default() },
    }
}

/// The PCX benchmark's Fashion-MNIST MLP: the MNIST net with T = 5 and its own rates.
fn fmnist_mlp_pcx() -> RunConfig {
    let mut c = mnist_mlp_pcx();
    c.preset = "fmnist-mlp-pcx".into();
    c.data.name = "fashion-mnist".into();
    c.inference.steps = 5;
    c.inference.gamma = 0.0261;
    c.inference.momentum = 0.1;
    c.optimizer.weight_decay = 1.84e-3;
    c.train.epochs = 6;
    c
}

/// The mnist-mlp-pcx network and schedule trained by backprop.
fn mnist_mlp_bp() -> RunConfig {
    let mut c = mnist_mlp_pcx();
    c.preset = "mnist-mlp-bp".into();
    c.algo = "bp".into();
    c
}

/// The mnist-mlp-pcx network and schedule with categorical hidden nodes (Pinchetti et al.
/// 2022): each hidden node holds logits, its energy `KL(softmax(x) || softmax(mu))`.
fn mnist_mlp_categorical() -> RunConfig {
    let mut c = mnist_mlp_pcx();
    c.preset = "mnist-mlp-categorical".into();
    c.model.hidden_energy = EnergyKind::Categorical;
    c
}

/// The same with Bernoulli hidden nodes: `sum KL(Bern(sigmoid(x)) || Bern(sigmoid(mu)))`.
fn mnist_mlp_bernoulli() -> RunConfig {
    let mut c = mnist_mlp_pcx();
    c.preset = "mnist-mlp-bernoulli".into();
    c.model.hidden_energy = EnergyKind::Bernoulli;
    c
}

/// A chain of conv (3×3, padding 1) + 2×2 max-pool blocks from an image node, then dense
/// edges through `hidden` widths to `classes`; every edge ends in a value node.
fn cnn_spec(
    input: [usize; 3],
    channels: &[usize],
    hidden: &[usize],
    classes: usize,
    act: Activation,
) -> MlpSpec {
    use crate::graph::{EdgeSpec, NodeSpec, PoolSpec};
    let mut nodes = vec![NodeSpec::image("image", input, Activation::Identity)];
    let mut edges = Vec::new();
    let [_, mut h, mut w] = input;
    for (i, &c) in channels.iter().enumerate() {
        (h, w) = (h / 2, w / 2);
        let name = format!("conv{}", i + 1);
        let mut e = EdgeSpec::with_kernel(&nodes[i].name, &name, "conv", 3);
        e.padding = Some(1);
        e.pool = Some(PoolSpec { kind: crate::layers::PoolKind::Max, size: 2, stride: None });
        edges.push(e);
        nodes.push(NodeSpec::image(&name, [c, h, w], act));
    }
    for (i, &d) in hidden.iter().enumerate() {
        let name = format!("fc{}", i + 1);
        edges.push(EdgeSpec::new(&nodes[nodes.len() - 1].name, &name));
        nodes.push(NodeSpec::new(&name, d, act));
    }
    edges.push(EdgeSpec::new(&nodes[nodes.len() - 1].name, "label"));
    nodes.push(NodeSpec::new("label", classes, Activation::Identity));
    MlpSpec { sizes: vec![], convention: Convention::Fw, nodes, edges, ..Default::default() }
}

/// PC CNN on the bundled digits (tests and a first look; seconds).
fn digits_cnn() -> RunConfig {
    let mut c = digits_mlp();
    c.preset = "digits-cnn".into();
    c.model = cnn_spec([1, 8, 8], &[8], &[], 10, Activation::Gelu);
    c.train.epochs = 10;
    c
}

/// A small PC CNN on MNIST (f(Wx+b), GELU, T = 8, AdamW with warm-up and cosine decay).
fn mnist_cnn() -> RunConfig {
    let mut c = mnist_mlp_pcx();
    c.preset = "mnist-cnn".into();
    c.model = cnn_spec([1, 28, 28], &[16, 32], &[128], 10, Activation::Gelu);
    c.model.init = Init::TorchDefault;
    c.inference.gamma = 0.01;
    c.inference.momentum = 0.5;
    c.optimizer.lr = 1e-3;
    c.optimizer.weight_decay = 1e-4;
    c.train.epochs = 10;
    c
}

/// The mnist-cnn network and schedule on Fashion-MNIST.
fn fmnist_cnn() -> RunConfig {
    let mut c = mnist_cnn();
    c.preset = "fmnist-cnn".into();
    c.data.name = "fashion-mnist".into();
    c
}

/// PCX's VGG-5 (Pinchetti et al. 2024, `examples/s4_1_discriminative_mode/VGG5`, tag
/// v0.6.1-public): conv 3×3 pad 1 → activation → 2×2 max-pool with 128, 256, 512, 512
/// channels, one linear layer, cross-entropy output (PC-CE), Equinox's default init, node SGD
/// with momentum, AdamW with warm-up and cosine decay, batch 128, 50 epochs.
fn vgg5(classes: usize) -> RunConfig {
    let mut c = mnist_mlp_pcx();
    let (name, act, t, gamma, mom, lr, wd) = if classes == 10 {
        ("cifar10", Activation::Gelu, 8, 0.014708, 0.05, 2.641e-4, 1.211e-5)
    } else {
        ("cifar100", Activation::HardTanh, 12, 0.011511, 0.25, 2.155e-4, 7.599e-3)
    };
    c.preset = format!("{name}-vgg5");
    c.data = DataConfig {
        name: name.into(),
        scale: Scaling::Standardize,
        augment: crate::data::Augment { crop: 4, flip: true },
        ..Default::default()
    };
    c.model = cnn_spec([3, 32, 32], &[128, 256, 512, 512], &[], classes, act);
    c.model.init = Init::TorchDefault;
    c.model.output_energy = EnergyKind::CrossEntropy;
    if let Some(label) = c.model.nodes.last_mut() {
        label.energy = EnergyKind::CrossEntropy;
    }
    c.inference.steps = t;
    c.inference.gamma = gamma;
    c.inference.momentum = mom;
    c.optimizer.lr = lr;
    c.optimizer.weight_decay = wd;
    c.train.epochs = 50;
    c
}

/// Names of the presets, comma-separated (for messages).
pub fn preset_names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

/// The preset called `name`.
///
/// # Errors
/// [`Error::Config`] for an unknown name, listing the presets.
pub fn preset(name: &str) -> Result<RunConfig> {
    Ok(match name {
        "digits-mlp" => digits_mlp(),
        "mnist-mlp-pcx" => mnist_mlp_pcx(),
        "fmnist-mlp-pcx" => fmnist_mlp_pcx(),
        "mnist-mlp-bp" => mnist_mlp_bp(),
        "mnist-mlp-categorical" => mnist_mlp_categorical(),
        "mnist-mlp-bernoulli" => mnist_mlp_bernoulli(),
        "digits-graph" => digits_graph(),
        "digits-cnn" => digits_cnn(),
        "mnist-cnn" => mnist_cnn(),
        "fmnist-cnn" => fmnist_cnn(),
        "cifar10-vgg5" => vgg5(10),
        "cifar100-vgg5" => vgg5(100),
        _ => {
            return Err(Error::config(
                "preset",
                format!("unknown preset `{name}`; valid: {}", preset_names()),
            ))
        }
    })
}

impl RunConfig {
    /// Checks every section's ranges and names.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and what is valid.
    pub fn validate(&self) -> Result<()> {
        let rules: Vec<&str> = crate::learn::RULES.iter().map(|r| r.0).collect();
        if !rules.contains(&self.algo.as_str()) {
            return Err(Error::config(
                "algo",
                format!("unknown rule `{}`; valid: {}", self.algo, rules.join(", ")),
            ));
        }
        if !crate::data::DATASETS.contains(&self.data.name.as_str()) {
            return Err(Error::config(
                "data.name",
                format!(
                    "unknown dataset `{}`; valid: {}",
                    self.data.name,
                    crate::data::DATASETS.join(", ")
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.data.validation) {
            return Err(Error::config(
                "data.validation",
                format!("must be in [0, 1), found {}", self.data.validation),
            ));
        }
        self.model.validate()?;
        self.inference.validate()?;
        self.optimizer.validate()?;
        let t = &self.train;
        for (key, v) in [
            ("epochs", t.epochs),
            ("batch_size", t.batch_size),
            ("eval_batch_size", t.eval_batch_size),
        ] {
            if v == 0 {
                return Err(Error::config(format!("train.{key}"), "must be at least 1, found 0"));
            }
        }
        if t.threads > MAX_THREADS {
            return Err(Error::config(
                "train.threads",
                format!("must be at most {MAX_THREADS} (0 = all cores), found {}", t.threads),
            ));
        }
        if t.seed > i64::MAX as u64 {
            return Err(Error::config(
                "train.seed",
                format!("must be at most {} (a TOML integer), found {}", i64::MAX, t.seed),
            ));
        }
        Ok(())
    }

    /// The config as a TOML document (what a run writes to `config.toml`).
    ///
    /// # Errors
    /// [`Error::Config`] if a value cannot be written as TOML (e.g. a seed above `i64::MAX`).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::config("config", e.to_string()))
    }

    /// The config as a TOML value tree (what overrides are applied to).
    ///
    /// # Errors
    /// As [`RunConfig::to_toml`].
    pub fn to_value(&self) -> Result<toml::Value> {
        toml::Value::try_from(self).map_err(|e| Error::config("config", e.to_string()))
    }

    /// Parses a complete or partial config; missing keys come from its `preset` (or the default).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for syntax errors, unknown keys, wrong types and bad values.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let table = parse_table(text, "config")?;
        let base = base_preset(None, &table)?;
        let mut value = base.to_value()?;
        merge(&mut value, toml::Value::Table(table));
        from_value(value)
    }
}

/// Parses TOML text into a table; `what` names the source in errors.
fn parse_table(text: &str, what: &str) -> Result<toml::Table> {
    text.parse::<toml::Table>()
        .map_err(|e| Error::config(what, format!("not valid TOML: {}", e.to_string().trim())))
}

/// The preset a layered config starts from: `explicit`, else the file's `preset` key, else the default.
fn base_preset(explicit: Option<&str>, file: &toml::Table) -> Result<RunConfig> {
    if let Some(name) = explicit {
        return preset(name);
    }
    match file.get("preset") {
        Some(toml::Value::String(name)) => preset(name),
        Some(other) => Err(Error::config(
            "preset",
            format!("expected a preset name (string), found {}", other.type_str()),
        )),
        None => preset(DEFAULT_PRESET),
    }
}

/// Deep-merges `over` into `base`: tables key by key, everything else replaced.
pub fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Applies one `key=value` override to a TOML value tree.
///
/// The key is dotted (`inference.steps`, `optimizer.schedule.kind`). The value is read as a
/// TOML value (`16`, `0.5`, `true`, `[64, 10]`, `{ mode = "nudge", beta = 0.1 }`, `"text"`); a
/// value that is not valid TOML, or any value for a key that currently holds a string, is
/// taken as a plain string (`--set algo=bp`). Unknown keys are inserted and then rejected,
/// with the valid keys listed, when the tree is deserialised.
///
/// # Errors
/// [`Error::Config`] for a malformed override or a key that descends into a non-table value.
pub fn apply_override(root: &mut toml::Value, spec: &str) -> Result<()> {
    let (key, raw) = spec.split_once('=').ok_or_else(|| {
        Error::config(spec, "expected `key=value` (e.g. `inference.steps=16`)".to_string())
    })?;
    let key = key.trim();
    let raw = raw.trim();
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::config(key, "empty key segment in override"));
    }
    let parsed = parse_value(raw);
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let path = parts[..=i].join(".");
        let table = match node {
            toml::Value::Table(t) => t,
            other => {
                return Err(Error::config(
                    path,
                    format!(
                        "`{}` holds a value of type {}, not a table; cannot set a key inside it",
                        parts[..i].join("."),
                        other.type_str()
                    ),
                ))
            }
        };
        if i + 1 == parts.len() {
            let value = match (table.get(*part), parsed) {
                (Some(toml::Value::String(_)), Some(toml::Value::String(s))) => {
                    toml::Value::String(s)
                }
                (Some(toml::Value::String(_)), _) | (_, None) => toml::Value::String(raw.into()),
                (_, Some(v)) => v,
            };
            match table.get_mut(*part) {
                Some(slot) => *slot = value,
                None => {
                    table.insert((*part).to_string(), value);
                }
            }
            return Ok(());
        }
        node = table
            .entry((*part).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

/// Reads an override's value as TOML, or `None` if it is not valid TOML.
fn parse_value(raw: &str) -> Option<toml::Value> {
    let doc = format!("v = {raw}");
    let mut t = doc.parse::<toml::Table>().ok()?;
    t.remove("v")
}

/// Deserialises a value tree into a config and validates it.
///
/// # Errors
/// [`Error::Config`] with the full key path for unknown keys (listing the valid ones), wrong
/// types and unknown names; range errors from [`RunConfig::validate`].
pub fn from_value(value: toml::Value) -> Result<RunConfig> {
    let cfg: RunConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." || path.is_empty() { "config".to_string() } else { path };
        Error::config(key.clone(), explain_serde(&key, &e.into_inner().to_string()))
    })?;
    cfg.validate()?;
    Ok(cfg)
}

/// Rewords a serde message: drops the key suffix the TOML deserialiser adds, and turns
/// "unknown field/variant ..., expected one of ..." into "unknown key/value; valid: ...".
fn explain_serde(key: &str, msg: &str) -> String {
    let msg: Vec<&str> = msg.lines().filter(|l| !l.starts_with("in `")).collect();
    let msg = msg.join(" ").trim().to_string();
    let list = |rest: &str| rest.replace('`', "");
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        if let Some((name, valid)) = rest.split_once(", expected one of ") {
            let table = match key.rsplit_once('.') {
                Some((parent, _)) => format!("valid keys of [{parent}]"),
                None => "valid top-level keys".to_string(),
            };
            return format!("unknown key {name}; {table}: {}", list(valid));
        }
        if let Some((name, _)) = rest.split_once(", there are no fields") {
            return format!("unknown key {name}; this table has no keys");
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        if let Some((name, valid)) = rest.split_once(", expected one of ") {
            return format!("unknown value {name}; valid: {}", list(valid));
        }
        if let Some((name, valid)) = rest.split_once(", expected ") {
            return format!("unknown value {name}; valid: {}", list(valid));
        }
    }
    if let Some((head, _)) = msg.split_once(", expected struct ") {
        return format!("{head}, expected a table");
    }
    msg
}

/// Resolves a config from a preset, a TOML file and overrides (see the module docs).
///
/// # Errors
/// [`Error::Config`] naming the key (or the file) for every kind of mistake;
/// [`Error::Io`] if the file cannot be read.
pub fn resolve(
    preset_name: Option<&str>,
    file: Option<&Path>,
    sets: &[String],
) -> Result<RunConfig> {
    let table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
            parse_table(&text, &path.display().to_string())?
        }
        None => toml::Table::new(),
    };
    resolve_table(preset_name, table, sets)
}

/// [`resolve`] with the config given as a TOML table instead of a file (e.g. built from a
/// Python dict).
///
/// # Errors
/// [`Error::Config`] naming the key for every kind of mistake.
pub fn resolve_table(
    preset_name: Option<&str>,
    table: toml::Table,
    sets: &[String],
) -> Result<RunConfig> {
    let base = base_preset(preset_name, &table)?;
    let mut value = base.to_value()?;
    merge(&mut value, toml::Value::Table(table));
    if let Some(name) = preset_name {
        // An explicit --preset wins over a file's `preset` key.
        if let toml::Value::Table(t) = &mut value {
            t.insert("preset".into(), toml::Value::String(name.into()));
        }
    }
    for s in sets {
        apply_override(&mut value, s)?;
    }
    from_value(value)
}

/// Reads a run's `config.toml` (a complete resolved config).
///
/// # Errors
/// [`Error::Io`] if it cannot be read, [`Error::Config`] if it is invalid.
pub fn load(path: &Path) -> Result<RunConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    RunConfig::from_toml_str(&text).map_err(|e| match e {
        Error::Config { key, msg } => Error::config(key, format!("{msg} (in {})", path.display())),
        other => other,
    })
}
