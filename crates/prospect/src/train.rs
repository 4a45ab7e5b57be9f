//! The training loop: a [`Trainer`] that owns the network, optimiser, rule, buffers and data,
//! and a [`Run`] that keeps a run directory (config, metrics, checkpoints) in step with it.
//!
//! Shuffling is seeded per epoch from `(seed, epoch)`, so a run resumed from the checkpoint of
//! epoch `k` replays epochs `k+1..` exactly as an uninterrupted run would.
//!
//! ```
//! use prospect::{config, train::Trainer};
//! let mut cfg = config::preset("digits-mlp").unwrap();
//! cfg.train.epochs = 1;
//! cfg.train.batches_per_epoch = 3;
//! let mut t = Trainer::new(cfg).unwrap();
//! let m = t.run_epoch(|_| {}).unwrap();
//! assert_eq!((m.epoch, m.batches), (1, 3));
//! assert!(m.test_accuracy > 0.0);
//! ```

use crate::checkpoint::{self, Metadata};
use crate::config::{OnNonFinite, RunConfig, Scaling};
use crate::data::{self, Dataset, NormMode, Split};
use crate::error::{Error, Result};
use crate::learn::{self, Batch, BatchStats, Rows, Rule};
use crate::net::{count_correct, Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File name of the resolved config in a run directory.
pub const CONFIG_FILE: &str = "config.toml";

/// File name of the per-epoch metrics (JSON lines) in a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// The datasets of a run after loading, splitting and scaling.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Training examples.
    pub train: Dataset,
    /// Validation examples held out of the training split, if `data.validation > 0`.
    pub val: Option<Dataset>,
    /// Test examples.
    pub test: Dataset,
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of the shuffle of epoch `epoch` (0-based) of a run seeded with `seed`.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    mix(seed ^ mix(epoch as u64 ^ 0x5348_5546_464c_4531))
}

/// Loads a run's datasets: both splits of `data.name`, the validation split, then scaling.
///
/// # Errors
/// [`Error::Data`] when the dataset is missing (the message says how to fetch it) or corrupt.
pub fn load_data(cfg: &RunConfig) -> Result<Prepared> {
    let dir = cfg.data.dir.as_deref();
    let train = data::load(&cfg.data.name, Split::Train, dir)?;
    let test = data::load(&cfg.data.name, Split::Test, dir)?;
    prepare(cfg, train, test)
}

/// Splits off validation and scales already loaded raw splits as `cfg.data` says.
///
/// # Errors
/// [`Error::Data`] if normalisation fails.
pub fn prepare(cfg: &RunConfig, mut train: Dataset, mut test: Dataset) -> Result<Prepared> {
    let image = input_image(cfg);
    if let Some(shape) = image {
        if shape != train.shape {
            return Err(Error::config(
                "model.nodes",
                format!(
                    "the input node's shape is {shape:?} but {} images are [C, H, W] = {:?}",
                    cfg.data.name, train.shape
                ),
            ));
        }
        train.to_hwc();
        test.to_hwc();
    }
    if cfg.data.augment.is_on() && image.is_none() {
        return Err(Error::config(
            "data.augment",
            "augmentation needs an image input node (`shape = [C, H, W]` on the input node)",
        ));
    }
    let mut val = None;
    if cfg.data.validation > 0.0 {
        let (t, v) =
            train.split_validation(cfg.data.validation as f32, mix(cfg.train.seed ^ 0x0076_616c));
        train = t;
        val = Some(v);
    }
    let mut sets: Vec<&mut Dataset> = vec![&mut train, &mut test];
    if let Some(v) = val.as_mut() {
        sets.push(v);
    }
    match cfg.data.scale {
        Scaling::None => {}
        Scaling::Unit | Scaling::Standardize => sets.iter_mut().for_each(|d| d.scale_unit()),
        Scaling::Symmetric => sets.iter_mut().for_each(|d| {
            d.scale_unit();
            d.x.iter_mut().for_each(|v| *v = 2.0 * *v - 1.0);
            d.range = (-1.0, 1.0);
        }),
    }
    if cfg.data.scale == Scaling::Standardize {
        let norm = train.fit_normalizer(NormMode::Global);
        train.normalize(&norm)?;
        test.normalize(&norm)?;
        if let Some(v) = val.as_mut() {
            v.normalize(&norm)?;
        }
    }
    Ok(Prepared { train, val, test })
}

/// The `[C, H, W]` shape of the model's input node, when it is an image node.
pub fn input_image(cfg: &RunConfig) -> Option<[usize; 3]> {
    let m = &cfg.model;
    let name = m.input.clone().or_else(|| m.nodes.first().map(|n| n.name.clone()))?;
    m.nodes.iter().find(|n| n.name == name).and_then(|n| n.shape)
}

/// A dataset as tensors: inputs `[n, d_0]` and one-hot targets `[n, classes]`.
#[derive(Clone, Debug)]
struct Examples {
    x: Tensor<f32>,
    y: Tensor<f32>,
}

impl Examples {
    fn new(ds: &Dataset) -> Self {
        let n = ds.len();
        Self {
            x: Tensor::from_vec(n, ds.features(), ds.x.clone()),
            y: Tensor::from_vec(n, ds.num_classes, ds.one_hot()),
        }
    }

    fn len(&self) -> usize {
        self.x.rows()
    }
}

/// Progress of the epoch in flight, passed to the `on_batch` callback after every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchProgress {
    /// Epoch in flight (1-based).
    pub epoch: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// Examples trained on in this epoch.
    pub examples: usize,
    /// Mean output loss per example so far this epoch.
    pub loss: f64,
    /// Mean energy per example so far this epoch.
    pub energy: f64,
    /// Training accuracy (forward pass before each update) so far this epoch.
    pub accuracy: f64,
    /// Training examples per second so far this epoch.
    pub samples_per_second: f64,
    /// Weight learning rate of the last batch.
    pub lr: f64,
}

/// Accuracy and loss on a set of examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Examples evaluated.
    pub examples: usize,
    /// Examples whose arg-max prediction matched the label.
    pub correct: usize,
    /// `correct / examples`.
    pub accuracy: f64,
    /// Mean output loss per example (the output energy against the one-hot target).
    pub loss: f64,
}

/// One line of `metrics.jsonl`: what an epoch measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Mean output loss per training example, at the forward pass before each update.
    pub train_loss: f64,
    /// Mean energy per training example when the weights were updated (BP: the loss).
    pub train_energy: f64,
    /// Training accuracy at the forward pass before each update.
    pub train_accuracy: f64,
    /// Test-set accuracy after the epoch.
    pub test_accuracy: f64,
    /// Mean test loss per example after the epoch.
    pub test_loss: f64,
    /// Validation accuracy after the epoch, when a validation split is held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Mean validation loss per example, when a validation split is held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Weight learning rate of the epoch's last batch.
    pub lr: f64,
    /// Batches trained.
    pub batches: usize,
    /// Examples trained on.
    pub examples: usize,
    /// Mean inference steps per batch (0 for BP).
    pub inference_steps: f64,
    /// Batches skipped because their energy was not finite (`on_non_finite = "skip"`).
    pub skipped_batches: usize,
    /// Wall time of the epoch: training and evaluation.
    pub seconds: f64,
    /// Training examples per second (training time only).
    pub samples_per_second: f64,
}

impl EpochMetrics {
    /// A copy with the timing fields zeroed (for comparing runs).
    pub fn without_timing(&self) -> Self {
        Self { seconds: 0.0, samples_per_second: 0.0, ..self.clone() }
    }

    /// The JSON line written to `metrics.jsonl` (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Which examples to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalSet {
    /// The training examples (after the validation split).
    Train,
    /// The held-out validation examples.
    Validation,
    /// The test split.
    Test,
}

/// Buffers of the evaluation pass, kept between evaluations: one workspace of the chunk size
/// and one of the last, shorter chunk (so that neither is reallocated on the next pass).
#[derive(Clone, Debug, Default)]
pub(crate) struct EvalBufs {
    ws: Option<Workspace<f32>>,
    tail: Option<Workspace<f32>>,
    per: Vec<f64>,
    target: Tensor<f32>,
}

/// Owns everything a run trains with: config, network, optimiser, rule, buffers and data.
pub struct Trainer {
    cfg: RunConfig,
    /// The network being trained.
    pub net: Net<f32>,
    /// The weight optimiser (state and schedule position).
    pub opt: WeightOptim<f32>,
    rule: Box<dyn Rule<f32>>,
    train: Examples,
    val: Option<Examples>,
    test: Examples,
    ws: Workspace<f32>,
    ws_tail: Workspace<f32>,
    bx: Tensor<f32>,
    by: Tensor<f32>,
    tx: Tensor<f32>,
    ty: Tensor<f32>,
    eval: Option<EvalBufs>,
    perm: Vec<usize>,
    epoch: usize,
    batches_per_epoch: usize,
    /// `[H, W, C]` of the input images and one image of scratch, when augmenting.
    augment: Option<([usize; 3], Vec<f32>)>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("preset", &self.cfg.preset)
            .field("algo", &self.cfg.algo)
            .field("epoch", &self.epoch)
            .field("batches_per_epoch", &self.batches_per_epoch)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// A trainer for `cfg`: validates it, loads the data and initialises the network.
    ///
    /// Sets the compute thread count when `train.threads > 0` (a process-wide setting).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or a network that does not fit the data;
    /// [`Error::Data`] when the dataset is missing or corrupt.
    pub fn new(cfg: RunConfig) -> Result<Self> {
        cfg.validate()?;
        let data = load_data(&cfg)?;
        Self::with_data(cfg, data)
    }

    /// A trainer on already prepared data.
    ///
    /// # Errors
    /// As [`Trainer::new`], except data loading.
    pub fn with_data(cfg: RunConfig, data: Prepared) -> Result<Self> {
        cfg.validate()?;
        if cfg.train.threads > 0 {
            crate::tensor::set_threads(cfg.train.threads);
        }
        let features = data.train.features();
        let classes = data.train.num_classes;
        if !cfg.model.nodes.is_empty() {
            let net = Net::<f32>::mlp(&cfg.model, cfg.train.seed)?;
            let (inp, out) = (&net.topo.nodes[net.input()], &net.topo.nodes[net.output()]);
            for (node, want, what, key) in [
                (inp, features, "features per example", "model.input"),
                (out, classes, "classes", "model.output"),
            ] {
                if node.size != want {
                    return Err(Error::config(
                        key,
                        format!(
                            "node `{}` has size {}, but {} has {want} {what}",
                            node.name, node.size, cfg.data.name
                        ),
                    ));
                }
            }
        }
        let sizes = &cfg.model.sizes;
        let (first, last) = match (sizes.first(), sizes.last()) {
            (Some(&f), Some(&l)) if cfg.model.nodes.is_empty() => (f, l),
            _ => (features, classes),
        };
        if first != features || last != classes {
            let mut want = sizes.clone();
            want[0] = features;
            let n = want.len();
            want[n - 1] = classes;
            return Err(Error::config(
                "model.sizes",
                format!(
                    "{sizes:?} does not fit {}: it has {features} features per example and \
                     {classes} classes, so the widths must start with {features} and end \
                     with {classes} (e.g. {want:?})",
                    cfg.data.name
                ),
            ));
        }
        if data.train.is_empty() {
            return Err(Error::config(
                "data",
                format!("{} has no training examples", cfg.data.name),
            ));
        }
        let net = Net::<f32>::mlp(&cfg.model, cfg.train.seed)?;
        let mut opt = WeightOptim::new(cfg.optimizer.clone(), &net)?;
        let rule = learn::build::<f32>(&cfg.algo, &cfg.inference)?;
        learn::check_applies(&cfg.algo, &net)?;
        let train = Examples::new(&data.train);
        let test = Examples::new(&data.test);
        let val = data.val.as_ref().map(Examples::new);
        let n = train.len();
        let bs = cfg.train.batch_size.min(n);
        let full = n / bs;
        let tail = n % bs;
        let mut batches = if cfg.train.drop_last || tail == 0 { full } else { full + 1 };
        if batches == 0 {
            batches = 1;
        }
        if cfg.train.batches_per_epoch > 0 {
            batches = batches.min(cfg.train.batches_per_epoch);
        }
        opt.total_batches = batches * cfg.train.epochs;
        let tail_rows = if tail == 0 { bs } else { tail };
        let d_in = net.d_in();
        let d_out = net.d_out();
        Ok(Self {
            ws: Workspace::new(&net, bs),
            ws_tail: Workspace::new(&net, tail_rows),
            bx: Tensor::zeros(bs, d_in),
            by: Tensor::zeros(bs, d_out),
            tx: Tensor::zeros(tail_rows, d_in),
            ty: Tensor::zeros(tail_rows, d_out),
            eval: None,
            perm: (0..n).collect(),
            epoch: 0,
            batches_per_epoch: batches,
            augment: input_image(&cfg)
                .filter(|_| cfg.data.augment.is_on())
                .map(|[c, h, w]| ([h, w, c], vec![0.0; c * h * w])),
            cfg,
            net,
            opt,
            rule,
            train,
            val,
            test,
        })
    }

    /// The run's config.
    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// True once every configured epoch has run.
    pub fn is_done(&self) -> bool {
        self.epoch >= self.cfg.train.epochs
    }

    /// Batches per epoch (after `drop_last` and `batches_per_epoch`).
    pub fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    /// Number of training examples (after the validation split).
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// Number of test examples.
    pub fn test_len(&self) -> usize {
        self.test.len()
    }

    /// Trains one epoch, calling `on_batch` after every batch (from a thread of the kernels'
    /// pool), then evaluates on the test (and validation) examples.
    ///
    /// # Errors
    /// [`Error::NonFinite`] on divergence (unless `on_non_finite = "skip"`, then only if
    /// every batch of the epoch diverged); [`Error::Shape`] should not happen.
    pub fn run_epoch(
        &mut self,
        mut on_batch: impl FnMut(&BatchProgress) + Send,
    ) -> Result<EpochMetrics> {
        let start = Instant::now();
        let e = self.epoch;
        let n = self.train.len();
        let bs = self.ws.batch;
        for (i, p) in self.perm.iter_mut().enumerate() {
            *p = i;
        }
        if self.cfg.train.shuffle {
            let mut rng = rand::rngs::StdRng::seed_from_u64(epoch_seed(self.cfg.train.seed, e));
            self.perm.shuffle(&mut rng);
        }
        let nb = self.batches_per_epoch;
        let skip = self.cfg.train.on_non_finite == OnNonFinite::Skip;
        let (mut loss, mut energy, mut correct, mut examples, mut steps) = (0.0, 0.0, 0, 0, 0);
        let mut skipped = 0;
        let mut last_err = None;
        let mut lr = self.opt.lr();
        // The whole loop runs on a pool thread: every fork-join of a batch (gather, shards,
        // optimiser step) starts inside the pool, and no batch is handed over from outside it;
        // the other threads stay awake for the next fork-join until the loop ends.
        crate::tensor::on_pool_hot(|| -> Result<()> {
            for b in 0..nb {
                let from = b * bs;
                let to = (from + bs).min(n);
                let rows = to - from;
                let (x, y, ws) = if rows == bs {
                    (&mut self.bx, &mut self.by, &mut self.ws)
                } else {
                    (&mut self.tx, &mut self.ty, &mut self.ws_tail)
                };
                lr = self.opt.lr();
                let (train, perm, index) = (&self.train, &self.perm[from..to], e * nb + b);
                let (net, opt) = (&mut self.net, &mut self.opt);
                let trained = if let Some((hwc, scratch)) = self.augment.as_mut() {
                    x.gather_rows(&train.x, perm);
                    y.gather_rows(&train.y, perm);
                    let seed = mix(epoch_seed(self.cfg.train.seed, e) ^ mix(b as u64 + 1));
                    self.cfg.data.augment.apply(x.data_mut(), *hwc, seed, scratch);
                    self.rule.train_batch(net, opt, Batch { x: &*x, y: &*y, index }, ws)
                } else {
                    // Sharded rules copy each shard's rows on the thread that trains it.
                    let batch = Rows { x: &train.x, y: &train.y, rows: perm, index };
                    self.rule.train_rows(net, opt, batch, ws)
                };
                match trained {
                    Ok(s) => {
                        loss += s.loss;
                        energy += s.energy;
                        correct += s.correct;
                        examples += s.examples;
                        steps += s.steps;
                    }
                    Err(err @ Error::NonFinite { .. }) if skip => {
                        self.opt.end_batch();
                        skipped += 1;
                        last_err = Some(err);
                    }
                    Err(err) => return Err(err),
                }
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                let denom = examples.max(1) as f64;
                on_batch(&BatchProgress {
                    epoch: e + 1,
                    batch: b + 1,
                    batches: nb,
                    examples,
                    loss: loss / denom,
                    energy: energy / denom,
                    accuracy: correct as f64 / denom,
                    samples_per_second: examples as f64 / secs,
                    lr,
                });
            }
            Ok(())
        })?;
        if skipped == nb {
            if let Some(err) = last_err {
                return Err(err);
            }
        }
        let train_secs = start.elapsed().as_secs_f64().max(1e-9);
        let test = self.evaluate(EvalSet::Test)?;
        let val = if self.val.is_some() { Some(self.evaluate(EvalSet::Validation)?) } else { None };
        self.epoch += 1;
        let trained = nb - skipped;
        let denom = examples.max(1) as f64;
        Ok(EpochMetrics {
            epoch: self.epoch,
            train_loss: loss / denom,
            train_energy: energy / denom,
            train_accuracy: correct as f64 / denom,
            test_accuracy: test.accuracy,
            test_loss: test.loss,
            val_accuracy: val.map(|v| v.accuracy),
            val_loss: val.map(|v| v.loss),
            lr,
            batches: trained,
            examples,
            inference_steps: steps as f64 / trained.max(1) as f64,
            skipped_batches: skipped,
            seconds: start.elapsed().as_secs_f64(),
            samples_per_second: examples as f64 / train_secs,
        })
    }

    /// Accuracy and mean loss of the current network on a set of examples.
    ///
    /// # Errors
    /// [`Error::Config`] when asking for validation without a validation split.
    pub fn evaluate(&mut self, set: EvalSet) -> Result<EvalMetrics> {
        let examples = match set {
            EvalSet::Train => &self.train,
            EvalSet::Test => &self.test,
            EvalSet::Validation => self.val.as_ref().ok_or_else(|| {
                Error::config("data.validation", "is 0: there is no validation split to evaluate")
            })?,
        };
        let bs = self.cfg.train.eval_batch_size.max(1);
        let bufs = self.eval.get_or_insert_with(EvalBufs::default);
        evaluate_net(&self.net, &examples.x, &examples.y, bs, bufs, &self.cfg.inference)
    }

    /// Saves the checkpoint of the epochs done so far into `dir` (see [`checkpoint::save`]);
    /// `last` (the latest epoch's metrics) is stored with the optimiser state so that a
    /// resumed run can restore its `metrics.jsonl` line.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Checkpoint`] naming the file.
    pub fn save_checkpoint(&self, dir: &Path, last: Option<&EpochMetrics>) -> Result<()> {
        let model_meta = model_metadata(&self.cfg, &self.net)?;
        let mut opt_meta = Metadata::new();
        if let Some(m) = last {
            opt_meta.insert("metrics".into(), m.to_json());
        }
        checkpoint::save(dir, &self.net, &self.opt, self.epoch, &model_meta, &opt_meta)
    }

    /// Loads the checkpoint in `dir` (network, optimiser state, epoch counter).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file and tensor when it does not match this config
    /// or is corrupt.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<checkpoint::Loaded> {
        let loaded = checkpoint::load(dir, &mut self.net, &mut self.opt)?;
        self.opt.total_batches = self.batches_per_epoch * self.cfg.train.epochs;
        self.epoch = loaded.epoch;
        Ok(loaded)
    }
}

/// The network's answers for inputs `x` `[n, d_in]`, in chunks of `bs` rows: a forward
/// pass where that is the equilibrium, else inference with the input clamped
/// ([`Net::predict_output`]).
///
/// # Errors
/// [`Error::Shape`] if `x` does not have the input's width; [`Error::NonFinite`] on divergence.
pub fn predict(
    net: &Net<f32>,
    x: &Tensor<f32>,
    bs: usize,
    inference: &crate::infer::InferenceConfig,
) -> Result<Tensor<f32>> {
    let (n, d_in, d_out) = (x.rows(), net.d_in(), net.d_out());
    if x.cols() != d_in {
        return Err(Error::shape("predict", "inputs x", [n, d_in], x.shape()));
    }
    let bs = bs.max(1).min(n.max(1));
    let mut ws = Workspace::new(net, bs);
    let mut out = Tensor::zeros(n, d_out);
    let mut from = 0;
    while from < n {
        let rows = bs.min(n - from);
        ws.ensure(net, rows);
        ws.x[net.input()].copy_from_slice(&x.data()[from * d_in..(from + rows) * d_in]);
        net.predict_output(&mut ws, inference)?;
        out.data_mut()[from * d_out..(from + rows) * d_out]
            .copy_from_slice(ws.x[net.output()].data());
        from += rows;
    }
    Ok(out)
}

/// Accuracy and mean loss of `net` on `x`/`y`, in chunks of `bs`, reusing `bufs`.
pub(crate) fn evaluate_net(
    net: &Net<f32>,
    x: &Tensor<f32>,
    y: &Tensor<f32>,
    bs: usize,
    bufs: &mut EvalBufs,
    inference: &crate::infer::InferenceConfig,
) -> Result<EvalMetrics> {
    let n = x.rows();
    let bs = bs.max(1).min(n.max(1));
    let (inp, out) = (net.input(), net.output());
    let (d_in, d_out) = (x.cols(), y.cols());
    let mut loss = 0.0;
    let mut correct = 0;
    let mut from = 0;
    while from < n {
        let rows = bs.min(n - from);
        // the chunk size keeps its workspace; a shorter last chunk gets the other one
        let slot = if rows == bs { &mut bufs.ws } else { &mut bufs.tail };
        let ws = slot.get_or_insert_with(|| Workspace::new(net, rows));
        ws.ensure(net, rows);
        ws.x[inp].copy_from_slice(&x.data()[from * d_in..(from + rows) * d_in]);
        bufs.target.resize(rows, d_out);
        bufs.target.copy_from_slice(&y.data()[from * d_out..(from + rows) * d_out]);
        net.predict_output(ws, inference)?;
        let mu = &ws.x[out];
        if bufs.per.len() < rows {
            bufs.per.resize(rows, 0.0);
        }
        net.output_energy().per_example(&bufs.target, mu, &mut bufs.per[..rows]);
        loss += bufs.per[..rows].iter().sum::<f64>();
        correct += count_correct(mu, &bufs.target);
        from += rows;
    }
    Ok(EvalMetrics {
        examples: n,
        correct,
        accuracy: correct as f64 / n.max(1) as f64,
        loss: loss / n.max(1) as f64,
    })
}

/// A run directory kept in step with a [`Trainer`]: `config.toml`, `metrics.jsonl`,
/// `model.safetensors` and `optimizer.safetensors`.
#[derive(Debug)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// The trainer.
    pub trainer: Trainer,
    /// Metrics of the epochs done so far (as in `metrics.jsonl`).
    pub history: Vec<EpochMetrics>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

impl Run {
    /// Starts a new run in `dir` (created if needed): writes `config.toml` and an empty
    /// `metrics.jsonl`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if `dir` already holds a checkpoint (resume it instead);
    /// the errors of [`Trainer::new`]; [`Error::Io`].
    pub fn create(dir: &Path, cfg: RunConfig) -> Result<Self> {
        if checkpoint::exists(dir) {
            return Err(Error::Checkpoint {
                path: dir.join(checkpoint::MODEL_FILE).display().to_string(),
                msg: format!(
                    "{} already holds a run; continue it with `prospect train --resume {}` \
                     or choose another --out",
                    dir.display(),
                    dir.display()
                ),
            });
        }
        let trainer = Trainer::new(cfg)?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        let cfg_path = dir.join(CONFIG_FILE);
        checkpoint::write_atomic(&cfg_path, trainer.config().to_toml()?.as_bytes())?;
        let metrics = dir.join(METRICS_FILE);
        checkpoint::write_atomic(&metrics, b"")?;
        Ok(Self { dir: dir.to_path_buf(), trainer, history: Vec::new() })
    }

    /// Reopens the run in `dir`: reads `config.toml`, lets `adjust` change it (e.g. more
    /// epochs or another thread count; rewritten if changed), loads the checkpoint if there is
    /// one, and truncates `metrics.jsonl` to the checkpointed epochs.
    ///
    /// # Errors
    /// [`Error::Io`] if `config.toml` cannot be read; [`Error::Config`] if it is invalid;
    /// [`Error::Checkpoint`] if the checkpoint does not match it or is corrupt.
    pub fn resume(dir: &Path, adjust: impl FnOnce(&mut RunConfig)) -> Result<Self> {
        let cfg_path = dir.join(CONFIG_FILE);
        if !cfg_path.is_file() {
            return Err(Error::Checkpoint {
                path: cfg_path.display().to_string(),
                msg: format!("{} is not a run directory (no {CONFIG_FILE})", dir.display()),
            });
        }
        let original = crate::config::load(&cfg_path)?;
        let mut cfg = original.clone();
        adjust(&mut cfg);
        let mut trainer = Trainer::new(cfg)?;
        if *trainer.config() != original {
            checkpoint::write_atomic(&cfg_path, trainer.config().to_toml()?.as_bytes())?;
        }
        let (epoch, stored) = if checkpoint::exists(dir) {
            let loaded = trainer.load_checkpoint(dir)?;
            (loaded.epoch, loaded.optimizer_meta.get("metrics").cloned())
        } else {
            (0, None)
        };
        let history = restore_metrics(&dir.join(METRICS_FILE), epoch, stored)?;
        Ok(Self { dir: dir.to_path_buf(), trainer, history })
    }

    /// Trains one epoch, checkpoints it and appends its metrics line.
    ///
    /// # Errors
    /// The errors of [`Trainer::run_epoch`] and of writing the files.
    pub fn step(&mut self, on_batch: impl FnMut(&BatchProgress) + Send) -> Result<EpochMetrics> {
        let m = self.trainer.run_epoch(on_batch)?;
        self.trainer.save_checkpoint(&self.dir, Some(&m))?;
        let path = self.dir.join(METRICS_FILE);
        let mut f =
            fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        writeln!(f, "{}", m.to_json()).map_err(io(&path))?;
        f.flush().map_err(io(&path))?;
        self.history.push(m.clone());
        Ok(m)
    }

    /// True once every configured epoch has run.
    pub fn is_done(&self) -> bool {
        self.trainer.is_done()
    }
}

/// Reads `metrics.jsonl`, skipping lines that do not parse (e.g. a torn last line).
///
/// # Errors
/// [`Error::Io`] if the file exists but cannot be read.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Rewrites `metrics.jsonl` to epochs `1..=epoch`: lines before `epoch` from the file, the
/// line of `epoch` from the checkpoint (`stored`) when given.
fn restore_metrics(path: &Path, epoch: usize, stored: Option<String>) -> Result<Vec<EpochMetrics>> {
    let mut kept: Vec<EpochMetrics> =
        read_metrics(path)?.into_iter().filter(|m| m.epoch >= 1 && m.epoch <= epoch).collect();
    kept.sort_by_key(|m| m.epoch);
    kept.dedup_by_key(|m| m.epoch);
    if let Some(last) = stored.and_then(|s| serde_json::from_str::<EpochMetrics>(&s).ok()) {
        kept.retain(|m| m.epoch < last.epoch);
        kept.push(last);
    }
    let mut text = String::new();
    for m in &kept {
        text.push_str(&m.to_json());
        text.push('\n');
    }
    checkpoint::write_atomic(path, text.as_bytes())?;
    Ok(kept)
}

/// A network with its optimiser and rule, trained batch by batch on data the caller supplies
/// (the step-by-step trainer of the Python package); the config's `data` section is only
/// recorded, for `prospect eval` on a saved run.
pub struct StepTrainer {
    cfg: RunConfig,
    /// The network being trained.
    pub net: Net<f32>,
    /// The weight optimiser.
    pub opt: WeightOptim<f32>,
    rule: Box<dyn Rule<f32>>,
    ws: Workspace<f32>,
    eval: Option<EvalBufs>,
    batches: usize,
}

impl std::fmt::Debug for StepTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepTrainer")
            .field("algo", &self.cfg.algo)
            .field("batches", &self.batches)
            .finish_non_exhaustive()
    }
}

impl StepTrainer {
    /// A trainer for `cfg` (validated; weights initialised from `train.seed`).
    /// `total_batches` sizes the learning-rate schedule (0: the config's epochs times one
    /// batch, i.e. only a constant schedule is meaningful).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or a rule that does not apply to the net.
    pub fn new(cfg: RunConfig, total_batches: usize) -> Result<Self> {
        cfg.validate()?;
        if cfg.train.threads > 0 {
            crate::tensor::set_threads(cfg.train.threads);
        }
        let net = Net::<f32>::mlp(&cfg.model, cfg.train.seed)?;
        let mut opt = WeightOptim::new(cfg.optimizer.clone(), &net)?;
        opt.total_batches = total_batches.max(1);
        let rule = learn::build::<f32>(&cfg.algo, &cfg.inference)?;
        learn::check_applies(&cfg.algo, &net)?;
        let ws = Workspace::new(&net, cfg.train.batch_size.max(1));
        Ok(Self { cfg, net, opt, rule, ws, eval: None, batches: 0 })
    }

    /// The config.
    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    /// Batches trained so far.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Trains on one batch: inputs `x` `[batch, d_in]`, targets `y` `[batch, d_out]`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the tensor when `x` or `y` does not fit the network;
    /// [`Error::NonFinite`] on divergence.
    pub fn train_batch(&mut self, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<BatchStats> {
        check_xy(&self.net, x, y)?;
        self.ws.ensure(&self.net, x.rows());
        let batch = Batch { x, y, index: self.batches };
        let stats = self.rule.train_batch(&mut self.net, &mut self.opt, batch, &mut self.ws)?;
        self.batches += 1;
        Ok(stats)
    }

    /// Accuracy and mean loss on `x`, `y` (inference as in evaluation of a run).
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` or `y` does not fit; [`Error::NonFinite`] on divergence.
    pub fn evaluate(&mut self, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<EvalMetrics> {
        check_xy(&self.net, x, y)?;
        let bs = self.cfg.train.eval_batch_size.max(1);
        let bufs = self.eval.get_or_insert_with(EvalBufs::default);
        evaluate_net(&self.net, x, y, bs, bufs, &self.cfg.inference)
    }

    /// Writes a run directory `dir` that `prospect eval --run` and `load` read:
    /// `config.toml`, `model.safetensors`, `optimizer.safetensors` (each atomically).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Checkpoint`] naming the file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        checkpoint::write_atomic(&dir.join(CONFIG_FILE), self.cfg.to_toml()?.as_bytes())?;
        let mut meta = model_metadata(&self.cfg, &self.net)?;
        meta.insert("batches".into(), self.batches.to_string());
        checkpoint::save(dir, &self.net, &self.opt, 0, &meta, &Metadata::new())
    }
}

/// Checks that `x` and `y` have the network's widths, the same number of rows, and at least one.
fn check_xy(net: &Net<f32>, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::shape("batch", "inputs x", [1, net.d_in()], x.shape()));
    }
    net.check_batch(x, Some(y))
}

/// The metadata a model checkpoint of a run carries: its config, preset, rule and widths.
fn model_metadata(cfg: &RunConfig, net: &Net<f32>) -> Result<Metadata> {
    let mut meta = Metadata::new();
    meta.insert("config".into(), cfg.to_toml()?);
    meta.insert("preset".into(), cfg.preset.clone());
    meta.insert("algo".into(), cfg.algo.clone());
    meta.insert("sizes".into(), format!("{:?}", net.sizes()));
    Ok(meta)
}
