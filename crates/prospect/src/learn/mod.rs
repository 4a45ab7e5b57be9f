//! Learning rules: each trains the same [`Net`] from batches, behind one trait.
//!
//! A new rule is one file here plus one line in [`build`] and [`RULES`].

mod bp;
mod chl;
mod eqprop;
mod ipc;
mod pc;
mod zil;

pub use bp::Bp;
pub use chl::chl;
pub use eqprop::{EqProp, DEFAULT_BETA};
pub use ipc::Ipc;
pub use pc::Pc;
pub use zil::{NodeInit, Zil, ZilConfig, ZilSchedule};

use crate::error::{Error, Result};
use crate::infer::{InferenceConfig, InferenceStats};
use crate::net::{Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::{Scalar, Tensor};

/// One training batch: inputs `[batch, d_0]`, targets `[batch, d_L]`, and its index in the run.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, T: Scalar> {
    /// Inputs.
    pub x: &'a Tensor<T>,
    /// Targets (one-hot for classification).
    pub y: &'a Tensor<T>,
    /// Index of the batch in the run (labels errors).
    pub index: usize,
}

/// One training batch as rows of a dataset: inputs `x[rows]`, targets `y[rows]`. A rule that
/// splits the batch into shards copies each shard's rows on the thread that trains it.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a, T: Scalar> {
    /// The dataset's inputs `[n, d_0]`.
    pub x: &'a Tensor<T>,
    /// The dataset's targets `[n, d_L]`.
    pub y: &'a Tensor<T>,
    /// The batch's rows of the dataset, in order.
    pub rows: &'a [usize],
    /// Index of the batch in the run (labels errors).
    pub index: usize,
}

impl<T: Scalar> Rows<'_, T> {
    /// Checks `x` and `y` against `net` ([`Net::check_batch`]) and every row index.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the tensor or the row.
    pub fn check(&self, net: &Net<T>) -> Result<()> {
        net.check_batch(self.x, Some(self.y))?;
        let n = self.x.rows();
        match self.rows.iter().find(|&&r| r >= n) {
            Some(r) => Err(Error::shape("batch", "row of the dataset", format!("< {n}"), r)),
            None => Ok(()),
        }
    }
}

/// A batch as a rule receives it: dense, or rows of a dataset.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Examples<'a, T: Scalar> {
    /// Inputs and targets of the batch.
    Dense(Batch<'a, T>),
    /// Rows of a dataset.
    Rows(Rows<'a, T>),
}

impl<T: Scalar> Examples<'_, T> {
    /// Examples in the batch.
    pub(crate) fn len(&self) -> usize {
        match self {
            Examples::Dense(b) => b.x.rows(),
            Examples::Rows(r) => r.rows.len(),
        }
    }

    /// Index of the batch in the run.
    pub(crate) fn index(&self) -> usize {
        match self {
            Examples::Dense(b) => b.index,
            Examples::Rows(r) => r.index,
        }
    }

    /// Checks the shapes against `net` (and the row indices).
    pub(crate) fn check(&self, net: &Net<T>) -> Result<()> {
        match self {
            Examples::Dense(b) => net.check_batch(b.x, Some(b.y)),
            Examples::Rows(r) => r.check(net),
        }
    }

    /// Copies the batch's examples `lo..hi` into `x` (`[hi - lo, d_0]`) and `y`.
    pub(crate) fn copy_rows(&self, lo: usize, hi: usize, x: &mut [T], y: &mut [T]) {
        match self {
            Examples::Dense(b) => {
                let (dx, dy) = (b.x.cols(), b.y.cols());
                x.copy_from_slice(&b.x.data()[lo * dx..hi * dx]);
                y.copy_from_slice(&b.y.data()[lo * dy..hi * dy]);
            }
            Examples::Rows(r) => {
                r.x.rows_into(&r.rows[lo..hi], x);
                r.y.rows_into(&r.rows[lo..hi], y);
            }
        }
    }
}

/// What training on one batch measured (sums over the batch's examples).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Examples in the batch.
    pub examples: usize,
    /// Output loss of the forward pass before the update, summed over examples.
    pub loss: f64,
    /// Total energy when the weights were updated, summed over examples (BP: the loss).
    pub energy: f64,
    /// Inference steps taken (0 for BP).
    pub steps: usize,
    /// Examples whose forward-pass arg-max matched the target's.
    pub correct: usize,
}

/// A learning rule.
pub trait Rule<T: Scalar>: Send + Sync {
    /// Name as on the command line.
    fn name(&self) -> &'static str;
    /// Trains `net` on one batch, using (and sizing if needed) the buffers in `ws`.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched batches, [`Error::NonFinite`] on divergence.
    fn train_batch(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Batch<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats>;
    /// Trains `net` on one batch given as rows of a dataset. The default gathers the rows
    /// into a dense batch (buffers kept in `ws`) and calls [`Rule::train_batch`]; rules that
    /// split the batch into shards copy each shard's rows on the thread that trains it. The
    /// same result as [`Rule::train_batch`] on the gathered batch.
    ///
    /// # Errors
    /// As [`Rule::train_batch`]; [`Error::Shape`] also for a row outside the dataset.
    fn train_rows(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Rows<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        batch.check(net)?;
        let (mut x, mut y) = std::mem::take(&mut ws.rows_xy);
        x.gather_rows(batch.x, batch.rows);
        y.gather_rows(batch.y, batch.rows);
        let r = self.train_batch(net, opt, Batch { x: &x, y: &y, index: batch.index }, ws);
        ws.rows_xy = (x, y);
        r
    }
    /// How many matrix products of each kind one training batch performs.
    fn product_counts(&self, net: &Net<T>) -> ProductCounts;
    /// Floating-point operations per training example, counted analytically from the products.
    fn flops_per_example(&self, net: &Net<T>) -> u64 {
        self.product_counts(net).flops_per_example(net)
    }
}

/// Matrix products per training batch, by kind; each count is per layer of its group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProductCounts {
    /// Forward products of layer 1 (`mu_1` from the clamped input).
    pub forward_first: u64,
    /// Forward products of each layer 2..=L.
    pub forward_upper: u64,
    /// Input VJPs of each layer 2..=L (layer 1's input is clamped, so it needs none).
    pub vjp_upper: u64,
    /// Parameter-gradient products of every layer.
    pub param_grads: u64,
}

impl ProductCounts {
    /// `2 x` multiply-adds per example of these products on `net`.
    pub fn flops_per_example<T: Scalar>(&self, net: &Net<T>) -> u64 {
        let (all, upper) = macs(net);
        let first = all - upper;
        2 * (self.forward_first * first
            + self.forward_upper * upper
            + self.vjp_upper * upper
            + self.param_grads * all)
    }
}

/// The rules and a line about each.
pub const RULES: &[(&str, &str)] = &[
    ("bp", "backpropagation on the feed-forward network (baseline)"),
    ("pc", "inference learning = prospective configuration: relax nodes, then update weights"),
    ("ipc", "incremental PC: nodes and weights updated together at every step"),
    ("zil", "zero-divergence inference learning: exact backprop inside a PC network"),
    (
        "eqprop",
        "equilibrium propagation: free and nudged phases (inference.beta, inference.centred)",
    ),
    ("chl", "contrastive Hebbian learning: free and fully clamped phases (eqprop at beta = 1)"),
];

/// Builds the rule called `name` with inference settings `inference`.
///
/// # Errors
/// [`Error::Config`] for an unknown name (listing the valid ones) or invalid settings.
pub fn build<T: Scalar>(name: &str, inference: &InferenceConfig) -> Result<Box<dyn Rule<T>>> {
    inference.validate()?;
    if name != "eqprop" && (inference.beta.is_some() || inference.centred) {
        return Err(Error::config(
            "inference.beta",
            format!(
                "inference.beta and inference.centred belong to eqprop, not `{name}` \
                 (pc nudges with inference.output = {{ mode = \"nudge\", beta }})"
            ),
        ));
    }
    if let crate::infer::OutputMode::Weighted { beta } = inference.output {
        if beta <= 0.0 && matches!(name, "pc" | "ipc") {
            return Err(Error::config(
                "inference.output.beta",
                format!(
                    "{name} divides its update by the output weight: must be > 0, found {beta}"
                ),
            ));
        }
    }
    Ok(match name {
        "bp" => Box::new(Bp),
        "pc" => Box::new(Pc { inference: inference.clone() }),
        "ipc" => Box::new(Ipc { inference: inference.clone() }),
        "zil" => Box::new(Zil::default()),
        "eqprop" => Box::new(EqProp::<T>::new(inference)?),
        "chl" => Box::new(chl::<T>(inference)?),
        _ => {
            let valid: Vec<_> = RULES.iter().map(|r| r.0).collect();
            return Err(Error::config(
                "algo",
                format!("unknown rule `{name}`; valid: {}", valid.join(", ")),
            ));
        }
    })
}

/// Checks that rule `name` applies to `net`'s graph (bp: a DAG; zil: a levelled DAG; pc and
/// ipc: any graph), so a run fails at its start, not at its first batch.
///
/// # Errors
/// [`Error::Config`] naming what is wrong.
pub fn check_applies<T: Scalar>(name: &str, net: &Net<T>) -> Result<()> {
    match name {
        "bp" => Bp::check(net),
        "zil" => Zil::check(net),
        "eqprop" | "chl" => EqProp::check(net),
        _ => Ok(()),
    }
}

/// Smallest shard worth a thread of its own.
const MIN_SHARD_ROWS: usize = 16;

/// Number of row shards a batch of `batch` examples is split into (one per thread; 1 = none).
pub fn shard_count(batch: usize) -> usize {
    crate::tensor::threads().min(batch / MIN_SHARD_ROWS).max(1)
}

/// What a rule runs on each shard of a batch: its relaxation, writing the shard's gradients and
/// `last` statistics.
type ShardFn<'a, T> = dyn Fn(&Net<T>, &mut Workspace<T>) -> Result<()> + Sync + 'a;

/// Trains on a batch already split by `Workspace::load_shards`: each shard loads its rows and
/// runs `f` (its relaxation, writing its gradients and `last`), one rayon task per shard with
/// sequential kernels; then the shards' gradients, summed and times `scale` when given, make one
/// optimiser step (two fork-joins; the epoch loop runs them on a pool thread). Returns the
/// shards' combined statistics.
pub(crate) fn train_shards<T: Scalar>(
    net: &mut Net<T>,
    opt: &mut WeightOptim<T>,
    ws: &mut Workspace<T>,
    ex: &Examples<'_, T>,
    scale: Option<T>,
    f: &ShardFn<'_, T>,
) -> Result<InferenceStats> {
    par_shards(net, &mut ws.shards, ex, f)?;
    let stats = combine(ws.shards.iter().map(|sh| sh.last));
    let Workspace { grads, shards, .. } = ws;
    let shards: &[Workspace<T>] = shards;
    let part = |k: usize, l: usize, p: usize| &shards[k].grads[l][p];
    opt.step_summed(net, grads, shards.len(), part, scale, ex.len());
    Ok(stats)
}

/// Loads every shard's rows of the batch `x`, `y` and runs `f` on it, one rayon task per
/// shard, each with sequential kernels.
fn par_shards<T: Scalar>(
    net: &Net<T>,
    shards: &mut [Workspace<T>],
    ex: &Examples<'_, T>,
    f: &ShardFn<'_, T>,
) -> Result<()> {
    match shards.len() {
        0 => Ok(()),
        1 => crate::tensor::sequential(|| {
            shards[0].load_shard_rows(net, ex);
            f(net, &mut shards[0])
        }),
        n => {
            let (a, b) = shards.split_at_mut(n / 2);
            let (ra, rb) = rayon::join(|| par_shards(net, a, ex, f), || par_shards(net, b, ex, f));
            ra.and(rb)
        }
    }
}

/// Sums per-shard inference statistics (steps: the largest).
pub(crate) fn combine(stats: impl Iterator<Item = InferenceStats>) -> InferenceStats {
    stats.fold(InferenceStats::default(), |a, b| InferenceStats {
        initial_energy: a.initial_energy + b.initial_energy,
        final_energy: a.final_energy + b.final_energy,
        steps: a.steps.max(b.steps),
        gamma: b.gamma,
        correct: a.correct + b.correct,
        skipped_products: a.skipped_products + b.skipped_products,
    })
}

/// Multiply-adds of a forward pass per example: all layers, and all but the first.
pub(crate) fn macs<T: Scalar>(net: &Net<T>) -> (u64, u64) {
    let all = net.macs_per_example();
    (all, all - net.layers[0].macs_per_example())
}

/// Checks the energy is finite, naming the batch, step and layer otherwise.
pub(crate) fn check_finite<T: Scalar>(
    net: &Net<T>,
    ws: &Workspace<T>,
    e: f64,
    batch: usize,
    step: usize,
) -> Result<()> {
    if e.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite {
            batch,
            step,
            layer: net.non_finite_layer(ws),
            what: format!("energy {e}"),
        })
    }
}
