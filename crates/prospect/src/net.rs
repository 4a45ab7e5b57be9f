//! The network: layers, their energies, value nodes, and the buffers of one batch shape.

use crate::energy::{Energy, EnergyKind};
use crate::error::{Error, Result};
use crate::layers::{zeros_like_params, Activation, Convention, Dense, Init, Layer, LayerWs};
use crate::tensor::{Backend, Scalar, Tensor};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Shape and options of a multi-layer perceptron PCN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpSpec {
    /// Widths `[d_0, d_1, ..., d_L]` (input first, output last).
    pub sizes: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Prediction convention.
    pub convention: Convention,
    /// Whether layers have a bias.
    pub bias: bool,
    /// Weight initialiser.
    pub init: Init,
    /// Output energy (also the loss for backprop).
    pub output_energy: EnergyKind,
    /// Energy of the hidden layers.
    pub hidden_energy: EnergyKind,
    /// Precision `pi_l` per layer `1..=L` (empty = all 1).
    pub precisions: Vec<f64>,
    /// Apply the activation to the input in the `w_f` convention (default off: `mu_1 = W x_0 + b`).
    pub activate_input: bool,
    /// Activation of the output prediction in the `f_w` convention (default identity).
    pub output_activation: Activation,
}

impl Default for MlpSpec {
    fn default() -> Self {
        Self {
            sizes: vec![64, 64, 64, 10],
            activation: Activation::Tanh,
            convention: Convention::Wf,
            bias: true,
            init: Init::XavierUniform,
            output_energy: EnergyKind::Gaussian,
            hidden_energy: EnergyKind::Gaussian,
            precisions: vec![],
            activate_input: false,
            output_activation: Activation::Identity,
        }
    }
}

impl MlpSpec {
    /// A spec with these widths, hidden activation and convention, other fields default.
    pub fn new(sizes: &[usize], activation: Activation, convention: Convention) -> Self {
        Self { sizes: sizes.to_vec(), activation, convention, ..Default::default() }
    }

    /// Activation of each layer `1..=L` under this spec's convention.
    pub fn layer_activations(&self) -> Vec<Activation> {
        let l = self.sizes.len().saturating_sub(1);
        (1..=l)
            .map(|i| match self.convention {
                Convention::Wf if i == 1 && !self.activate_input => Activation::Identity,
                Convention::Wf => self.activation,
                Convention::Fw if i == l => self.output_activation,
                Convention::Fw => self.activation,
            })
            .collect()
    }

    /// Checks the spec.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() < 2 {
            return Err(Error::config(
                "model.sizes",
                format!("need at least input and output widths, found {:?}", self.sizes),
            ));
        }
        if let Some(i) = self.sizes.iter().position(|&d| d == 0) {
            return Err(Error::config(
                "model.sizes",
                format!("width {i} is zero in {:?}", self.sizes),
            ));
        }
        let l = self.sizes.len() - 1;
        if !self.precisions.is_empty() && self.precisions.len() != l {
            return Err(Error::config(
                "model.precisions",
                format!("expected {l} values (one per layer), found {}", self.precisions.len()),
            ));
        }
        if let Some(p) = self.precisions.iter().find(|p| !(p.is_finite() && **p > 0.0)) {
            return Err(Error::config("model.precisions", format!("must be positive, found {p}")));
        }
        if self.hidden_energy == EnergyKind::CrossEntropy && l > 1 {
            return Err(Error::config(
                "model.hidden_energy",
                "cross_entropy is an output energy; valid for hidden layers: gaussian, laplace",
            ));
        }
        Ok(())
    }
}

/// A layered predictive coding network: `L` layers, each with its energy (the last is the output's).
#[derive(Clone, Debug)]
pub struct Net<T: Scalar = f32> {
    /// Layers `1..=L` (index `l - 1`).
    pub layers: Vec<Box<dyn Layer<T>>>,
    /// Energy of each layer `1..=L` (index `l - 1`); the last one is the output loss.
    pub energies: Vec<Box<dyn Energy<T>>>,
}

impl<T: Scalar> Net<T> {
    /// A network from layers and one energy per layer.
    ///
    /// # Errors
    /// [`Error::Shape`] if consecutive layers do not chain or the counts differ.
    pub fn new(layers: Vec<Box<dyn Layer<T>>>, energies: Vec<Box<dyn Energy<T>>>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::shape("net", "layers", "at least one layer", 0));
        }
        if energies.len() != layers.len() {
            return Err(Error::shape("net", "energies", layers.len(), energies.len()));
        }
        for (i, w) in layers.windows(2).enumerate() {
            if w[0].d_out() != w[1].d_in() {
                return Err(Error::shape(
                    "net",
                    format!("layer {} -> layer {}", i + 1, i + 2),
                    format!("d_in {} (the d_out of layer {})", w[0].d_out(), i + 1),
                    format!("d_in {}", w[1].d_in()),
                ));
            }
        }
        Ok(Self { layers, energies })
    }

    /// A dense MLP from `spec`, weights drawn from a RNG seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] if the spec is invalid.
    pub fn mlp(spec: &MlpSpec, seed: u64) -> Result<Self> {
        spec.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let acts = spec.layer_activations();
        let l = acts.len();
        let mut layers: Vec<Box<dyn Layer<T>>> = Vec::with_capacity(l);
        let mut energies = Vec::with_capacity(l);
        for (i, act) in acts.into_iter().enumerate() {
            let d = Dense::<T>::new(
                spec.sizes[i],
                spec.sizes[i + 1],
                act,
                spec.convention,
                spec.bias,
                spec.init,
                &mut rng,
            );
            layers.push(Box::new(d));
            let p = spec.precisions.get(i).copied().unwrap_or(1.0);
            let kind = if i + 1 == l { spec.output_energy } else { spec.hidden_energy };
            energies.push(kind.build(p));
        }
        Self::new(layers, energies)
    }

    /// Copies every parameter of `src` (the same architecture, any element type) into `self`.
    pub fn copy_params_from<U: Scalar>(&mut self, src: &Net<U>) {
        for (dst, s) in self.layers.iter_mut().zip(&src.layers) {
            let mut ps = Vec::new();
            s.for_each_param(&mut |_, p| ps.push(p.cast::<T>()));
            let mut ps = ps.into_iter();
            dst.for_each_param_mut(&mut |_, p| *p = ps.next().expect("the same parameters"));
        }
    }

    /// Number of layers `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Input width `d_0`.
    pub fn d_in(&self) -> usize {
        self.layers[0].d_in()
    }

    /// Output width `d_L`.
    pub fn d_out(&self) -> usize {
        self.layers[self.depth() - 1].d_out()
    }

    /// Layer widths `[d_0, ..., d_L]`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.d_in()).chain(self.layers.iter().map(|l| l.d_out())).collect()
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        let mut n = 0;
        for l in &self.layers {
            l.for_each_param(&mut |_, p| n += p.len());
        }
        n
    }

    /// Multiply-adds of one forward pass per example.
    pub fn macs_per_example(&self) -> u64 {
        self.layers.iter().map(|l| l.macs_per_example()).sum()
    }

    /// Checks that `x` is `[batch, d_0]` and `y` (if given) `[batch, d_L]`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the tensor and both shapes.
    pub fn check_batch(&self, x: &Tensor<T>, y: Option<&Tensor<T>>) -> Result<()> {
        if x.cols() != self.d_in() {
            return Err(Error::shape(
                "batch",
                "input vs layer 1",
                [x.rows(), self.d_in()],
                x.shape(),
            ));
        }
        if let Some(y) = y {
            if y.shape() != [x.rows(), self.d_out()] {
                return Err(Error::shape(
                    "batch",
                    format!("target vs layer {} output", self.depth()),
                    [x.rows(), self.d_out()],
                    y.shape(),
                ));
            }
        }
        Ok(())
    }

    /// The feed-forward prediction `mu_L` for inputs `x: [batch, d_0]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` has the wrong width.
    pub fn predict(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.check_batch(x, None)?;
        let mut ws = Workspace::new(self, x.rows());
        ws.x[0].copy_from(x);
        self.forward(&mut ws, false);
        Ok(ws.mu.pop().expect("output layer"))
    }

    /// Forward pass through `ws`: `mu_l = layer_l(x_{l-1})` with `x_l = mu_l`; when
    /// `clamp_output`, `x_L` is left as loaded (the target) instead.
    pub fn forward(&self, ws: &mut Workspace<T>, clamp_output: bool) {
        let l_max = self.depth();
        for (i, layer) in self.layers.iter().enumerate() {
            layer.forward(&ws.x[i], &mut ws.mu[i + 1], &mut ws.layer_ws[i]);
            if i + 1 < l_max || !clamp_output {
                ws.x[i + 1].copy_from(&ws.mu[i + 1]);
            }
        }
    }

    /// Recomputes predictions `mu_l` for layers `from..=L` from the current value nodes.
    pub fn predict_from(&self, ws: &mut Workspace<T>, from: usize) {
        for i in from.max(1) - 1..self.depth() {
            self.layers[i].forward(&ws.x[i], &mut ws.mu[i + 1], &mut ws.layer_ws[i]);
        }
    }

    /// Writes `dE/dθ` of layer `l` (1-based, summed over the batch) into `ws.grads[l - 1]`,
    /// from the errors last computed by [`Net::energy_grads`].
    pub fn layer_param_grads(&self, ws: &mut Workspace<T>, l: usize) {
        let i = l - 1;
        self.layers[i].param_grads(
            &ws.g[l],
            &ws.x[i],
            &ws.layer_ws[i],
            &mut ws.grads[i],
            crate::tensor::Accum::Replace,
        );
    }

    /// Output loss of each example of `x` against `y`, written into `out`, and the number of
    /// examples whose arg-max prediction matches the arg-max target.
    ///
    /// # Errors
    /// [`Error::Shape`] on mismatched shapes.
    pub fn evaluate(&self, x: &Tensor<T>, y: &Tensor<T>) -> Result<(f64, usize)> {
        self.check_batch(x, Some(y))?;
        let mu = self.predict(x)?;
        let mut per = vec![0.0; x.rows()];
        self.energies[self.depth() - 1].per_example(y, &mu, &mut per);
        Ok((per.iter().sum(), count_correct(&mu, y)))
    }
}

/// Number of rows whose arg-max in `pred` equals the arg-max in `target`.
pub fn count_correct<T: Scalar>(pred: &Tensor<T>, target: &Tensor<T>) -> usize {
    (0..pred.rows()).filter(|&r| argmax(pred.row(r)) == argmax(target.row(r))).count()
}

/// Index of the largest element (first on ties).
pub fn argmax<T: Scalar>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Buffers of one batch shape: value nodes, predictions, errors, gradients, optimiser state.
///
/// Allocated once per batch size; inference steps only read and write these.
#[derive(Clone, Debug)]
pub struct Workspace<T: Scalar> {
    /// Batch size these buffers hold.
    pub batch: usize,
    /// Value nodes `x_0..=x_L` (`x_0` the input; `x_L` the output or clamped target).
    pub x: Vec<Tensor<T>>,
    /// Predictions `mu_l` at index `l` (index 0 unused).
    pub mu: Vec<Tensor<T>>,
    /// `dE_l/dmu_l` at index `l` (index 0 unused).
    pub g: Vec<Tensor<T>>,
    /// `dE/dx_l` at index `l` (index 0 unused).
    pub dx: Vec<Tensor<T>>,
    /// Inference-optimiser velocity of `x_l` at index `l`.
    pub vel: Vec<Tensor<T>>,
    /// Per-layer scratch (index `l - 1`).
    pub layer_ws: Vec<LayerWs<T>>,
    /// Parameter gradients per layer (index `l - 1`), in `for_each_param` order.
    pub grads: Vec<Vec<Tensor<T>>>,
    /// The batch's target `[batch, d_L]`.
    pub target: Tensor<T>,
    /// Scratch of the output's shape.
    pub out_tmp: Tensor<T>,
    /// Energy of each layer at the last evaluation (index `l`; index 0 unused).
    pub layer_energy: Vec<f64>,
    /// Row shards of the batch, one per thread, for rules that relax examples independently.
    pub shards: Vec<Workspace<T>>,
    /// What the last inference on this workspace did (filled per shard).
    pub last: crate::infer::InferenceStats,
}

impl<T: Scalar> Workspace<T> {
    /// Buffers for `net` at batch size `batch`.
    pub fn new(net: &Net<T>, batch: usize) -> Self {
        let sizes = net.sizes();
        let per_node = |b: usize| sizes.iter().map(|&d| Tensor::zeros(b, d)).collect::<Vec<_>>();
        let d_out = net.d_out();
        Self {
            batch,
            x: per_node(batch),
            mu: per_node(batch),
            g: per_node(batch),
            dx: per_node(batch),
            vel: per_node(batch),
            layer_ws: net.layers.iter().map(|l| l.alloc_ws(batch)).collect(),
            grads: net.layers.iter().map(|l| zeros_like_params(l.as_ref())).collect(),
            target: Tensor::zeros(batch, d_out),
            out_tmp: Tensor::zeros(batch, d_out),
            layer_energy: vec![0.0; sizes.len()],
            shards: Vec::new(),
            last: Default::default(),
        }
    }

    /// Makes sure the buffers fit `net` at `batch`; reallocates only when the shape changed.
    pub fn ensure(&mut self, net: &Net<T>, batch: usize) {
        let fits = self.batch == batch
            && self.x.len() == net.depth() + 1
            && self.x[0].cols() == net.d_in()
            && self.x[1..].iter().zip(&net.layers).all(|(t, l)| t.cols() == l.d_out());
        if !fits {
            *self = Self::new(net, batch);
        }
    }

    /// Splits the batch `x`, `y` row-wise into `n` shard workspaces (sized on first use).
    ///
    /// # Errors
    /// [`Error::Shape`] on mismatched shapes.
    pub fn load_shards(
        &mut self,
        net: &Net<T>,
        x: &Tensor<T>,
        y: &Tensor<T>,
        n: usize,
    ) -> Result<()> {
        net.check_batch(x, Some(y))?;
        self.ensure(net, x.rows());
        let b = x.rows();
        let rows = |i: usize| (i * b / n, (i + 1) * b / n);
        if self.shards.len() != n {
            self.shards = (0..n).map(|i| Workspace::new(net, rows(i).1 - rows(i).0)).collect();
        }
        let (dx, dy) = (x.cols(), y.cols());
        for (i, s) in self.shards.iter_mut().enumerate() {
            let (lo, hi) = rows(i);
            s.ensure(net, hi - lo);
            s.x[0].copy_from_slice(&x.data()[lo * dx..hi * dx]);
            s.target.copy_from_slice(&y.data()[lo * dy..hi * dy]);
        }
        Ok(())
    }

    /// Sums the shards' parameter gradients into `self.grads` (in shard order).
    pub fn reduce_shard_grads(&mut self) {
        use crate::tensor::Cpu;
        let (first, rest) = self.shards.split_first().expect("at least one shard");
        for (l, layer_grads) in self.grads.iter_mut().enumerate() {
            for (p, g) in layer_grads.iter_mut().enumerate() {
                match rest.split_first() {
                    // one fused pass for the usual two shards
                    Some((second, more)) => {
                        Cpu.zip3(g, &first.grads[l][p], &second.grads[l][p], |_, a, b| a + b);
                        for s in more {
                            Cpu.axpy(g, T::one(), &s.grads[l][p]);
                        }
                    }
                    None => g.copy_from(&first.grads[l][p]),
                }
            }
        }
    }

    /// Loads inputs into `x_0` and targets into `target`, checking shapes against `net`.
    ///
    /// # Errors
    /// [`Error::Shape`] on mismatched shapes.
    pub fn load(&mut self, net: &Net<T>, x: &Tensor<T>, y: &Tensor<T>) -> Result<()> {
        net.check_batch(x, Some(y))?;
        self.ensure(net, x.rows());
        self.x[0].copy_from(x);
        self.target.copy_from(y);
        Ok(())
    }
}
