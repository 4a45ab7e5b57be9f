//! The network: layers, their energies, value nodes, and the buffers of one batch shape.

use crate::energy::{Energy, EnergyKind};
use crate::error::{Error, Result};
use crate::graph::{EdgeSpec, NodeSpec, Role, Topology};
use crate::layers::{zeros_like_params, Activation, Convention, Dense, Init, Layer, LayerWs};
use crate::learn::{Batch, Examples};
use crate::tensor::{Scalar, Tensor};
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
    /// A graph's value nodes (`[[model.nodes]]`); empty = the chain given by `sizes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSpec>,
    /// A graph's edges (`[[model.edges]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgeSpec>,
    /// The node clamped to the inputs in training (graphs; default the first node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The node clamped to the targets in training (graphs; default the last node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Level the graph (identity nodes so every path to the output has the same length),
    /// as Z-IL on a DAG needs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub level: bool,
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
            nodes: vec![],
            edges: vec![],
            input: None,
            output: None,
            level: false,
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
        if !self.nodes.is_empty() || !self.edges.is_empty() {
            return crate::graph::validate_spec(self);
        }
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
                "cross_entropy is an output energy (on probabilities); valid for hidden layers: \
                 gaussian, laplace, categorical, bernoulli (on logits)",
            ));
        }
        Ok(())
    }
}

/// A predictive coding network: value nodes and edges ([`Topology`]), one layer per edge and
/// one energy per predicted node. A layered MLP is the chain graph: layer `l - 1` maps node
/// `l - 1` to node `l`, and energy `l - 1` belongs to node `l` (the last is the output loss).
#[derive(Clone, Debug)]
pub struct Net<T: Scalar = f32> {
    /// The map of each edge (index = edge; layers `1..=L` of a chain at `l - 1`).
    pub layers: Vec<Box<dyn Layer<T>>>,
    /// The energies, indexed by [`crate::graph::NodeInfo::energy`].
    pub energies: Vec<Box<dyn Energy<T>>>,
    /// Nodes and edges.
    pub topo: Topology,
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
        let sizes: Vec<usize> =
            std::iter::once(layers[0].d_in()).chain(layers.iter().map(|l| l.d_out())).collect();
        Ok(Self { layers, energies, topo: Topology::chain(&sizes) })
    }

    /// A network on any topology: one layer per edge, one energy per predicted node.
    ///
    /// # Errors
    /// [`Error::Shape`] if a layer's widths do not match its edge's nodes, or the counts differ.
    pub fn from_graph(
        topo: Topology,
        layers: Vec<Box<dyn Layer<T>>>,
        energies: Vec<Box<dyn Energy<T>>>,
    ) -> Result<Self> {
        if layers.len() != topo.edges.len() {
            return Err(Error::shape("net", "layers", topo.edges.len(), layers.len()));
        }
        let needed = topo.nodes.iter().filter_map(|n| n.energy).max().map_or(0, |m| m + 1);
        if energies.len() != needed {
            return Err(Error::shape("net", "energies", needed, energies.len()));
        }
        for (edge, layer) in topo.edges.iter().zip(&layers) {
            let d_in = edge.src.map_or(0, |s| topo.nodes[s].size);
            let d_out = topo.nodes[edge.dst].size;
            if layer.d_in() != d_in || layer.d_out() != d_out {
                return Err(Error::shape(
                    "net",
                    format!("edge `{}`", edge.name),
                    [d_in, d_out],
                    [layer.d_in(), layer.d_out()],
                ));
            }
        }
        Ok(Self { layers, energies, topo })
    }

    /// A dense MLP from `spec`, weights drawn from a RNG seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] if the spec is invalid.
    pub fn mlp(spec: &MlpSpec, seed: u64) -> Result<Self> {
        spec.validate()?;
        if !spec.nodes.is_empty() {
            return crate::graph::build(spec, seed);
        }
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
            energies.push(kind.build_node(p, i + 1 == l));
        }
        Self::new(layers, energies)
    }

    /// Copies every parameter of `src` (the same parameters in the same order, any element
    /// type; identity edges, which have none, may differ, as between a graph and its
    /// levelled form) into `self`.
    pub fn copy_params_from<U: Scalar>(&mut self, src: &Net<U>) {
        let mut ps = Vec::new();
        for s in &src.layers {
            s.for_each_param(&mut |_, p| ps.push(p.cast::<T>()));
        }
        let mut ps = ps.into_iter();
        for dst in &mut self.layers {
            dst.for_each_param_mut(&mut |_, p| *p = ps.next().expect("the same parameters"));
        }
        assert!(ps.next().is_none(), "the same parameters");
    }

    /// Number of layers (edges) `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The output node (`L` in a chain).
    pub fn output(&self) -> usize {
        self.topo.output
    }

    /// The input node (0 in a chain).
    pub fn input(&self) -> usize {
        self.topo.input
    }

    /// Input width `d_0`.
    pub fn d_in(&self) -> usize {
        self.topo.nodes[self.topo.input].size
    }

    /// Output width `d_L`.
    pub fn d_out(&self) -> usize {
        self.topo.nodes[self.topo.output].size
    }

    /// Node widths (`[d_0, ..., d_L]` in a chain).
    pub fn sizes(&self) -> Vec<usize> {
        self.topo.nodes.iter().map(|n| n.size).collect()
    }

    /// The energy of the output node (the loss of backprop).
    pub fn output_energy(&self) -> &dyn Energy<T> {
        self.energies[self.output_energy_index()].as_ref()
    }

    /// Index of the output node's energy in [`Net::energies`].
    fn output_energy_index(&self) -> usize {
        self.topo.nodes[self.topo.output].energy.expect("the output node has an energy")
    }

    /// Replaces the energy of the output node (e.g. a [`crate::energy::DiagGaussian`] that
    /// leaves some output units out of the loss).
    pub fn set_output_energy(&mut self, energy: Box<dyn Energy<T>>) {
        let k = self.output_energy_index();
        self.energies[k] = energy;
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
    /// [`Error::Shape`] if `x` has the wrong width; [`Error::Config`] if the forward pass is
    /// not the network's answer ([`Net::forward_answers`]: use [`Net::predict_output`] or
    /// [`Net::query`]).
    pub fn predict(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.check_batch(x, None)?;
        if !self.forward_answers() {
            return Err(Error::config(
                "model",
                "this graph answers by inference, not by a forward pass: use predict_output or query",
            ));
        }
        let mut ws = Workspace::new(self, x.rows());
        ws.x[self.input()].copy_from(x);
        self.forward(&mut ws, false);
        Ok(std::mem::take(&mut ws.mu[self.output()]))
    }

    /// Writes `dE/dθ` of layer `l` (1-based: edge `l - 1`), summed over the batch, into
    /// `ws.grads[l - 1]`, from the errors last computed by [`Net::energy_grads`].
    pub fn layer_param_grads(&self, ws: &mut Workspace<T>, l: usize) {
        self.edge_param_grads(ws, l - 1);
    }

    /// Writes `dE/dθ` of edge `e` (summed over the batch) into `ws.grads[e]`.
    pub fn edge_param_grads(&self, ws: &mut Workspace<T>, e: usize) {
        let edge = &self.topo.edges[e];
        let x_in = edge.src.map_or(&ws.empty, |s| &ws.x[s]);
        let g = crate::infer::edge_g(self, &ws.g, &ws.ndelta, edge.dst);
        self.layers[e].param_grads(
            g,
            x_in,
            &ws.layer_ws[e],
            &mut ws.grads[e],
            crate::tensor::Accum::Replace,
        );
    }

    /// [`Net::edge_param_grads`] for every edge.
    pub fn param_grads(&self, ws: &mut Workspace<T>) {
        for e in 0..self.layers.len() {
            self.edge_param_grads(ws, e);
        }
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
        self.output_energy().per_example(y, &mu, &mut per);
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
/// Allocated once per batch size; inference steps only read and write these. Per-node
/// vectors are indexed by node (`l` in a chain), per-edge ones by edge (`l - 1`).
#[derive(Clone, Debug)]
pub struct Workspace<T: Scalar> {
    /// Batch size these buffers hold.
    pub batch: usize,
    /// Value nodes (`x_0` the input, `x_L` the output or clamped target in a chain).
    pub x: Vec<Tensor<T>>,
    /// Predictions `mu_i` (unused for nodes without a prediction).
    pub mu: Vec<Tensor<T>>,
    /// `dE_i/dmu_i`.
    pub g: Vec<Tensor<T>>,
    /// `dE/dx_i`.
    pub dx: Vec<Tensor<T>>,
    /// Inference-optimiser velocity of `x_i`.
    pub vel: Vec<Tensor<T>>,
    /// Pre-activation sum of a node with its own activation (empty otherwise).
    pub nz: Vec<Tensor<T>>,
    /// Its activation's derivative.
    pub nda: Vec<Tensor<T>>,
    /// `g_i ⊙ f'(z_i)`, the error its in-edges see.
    pub ndelta: Vec<Tensor<T>>,
    /// Per-edge scratch.
    pub layer_ws: Vec<LayerWs<T>>,
    /// Parameter gradients per edge, in `for_each_param` order.
    pub grads: Vec<Vec<Tensor<T>>>,
    /// The batch's target `[batch, d_L]`.
    pub target: Tensor<T>,
    /// Scratch of the output's shape.
    pub out_tmp: Tensor<T>,
    /// The zero-width input of prior edges.
    pub empty: Tensor<T>,
    /// Energy of each node at the last evaluation (0 for nodes without one).
    pub layer_energy: Vec<f64>,
    /// How each node is treated by the next inference (set by `load` and [`Net::query`]).
    pub roles: Vec<Role>,
    /// Per masked node: 1 where the value is known (empty otherwise).
    pub mask: Vec<Tensor<T>>,
    /// Per masked node: the known values.
    pub known: Vec<Tensor<T>>,
    /// Nodes the forward initialisation computes, in order (for `order_roles`).
    pub fwd_order: Vec<usize>,
    order_roles: Vec<Role>,
    order_state: Vec<u8>,
    /// Per-node flag scratch (backprop: has this node's gradient been started).
    pub touched: Vec<bool>,
    /// Inference skips the products it knows are exactly zero (errors of nodes still at their
    /// forward prediction; results are bit for bit the same). `false` runs every product.
    pub skip_zero_products: bool,
    /// Inference bookkeeping per node: the error is exactly zero (node still at its prediction).
    pub(crate) quiet: Vec<bool>,
    /// Inference bookkeeping per node: the last node step could change it.
    pub(crate) stepped: Vec<bool>,
    /// Row shards of the batch, one per thread, for rules that relax examples independently.
    pub shards: Vec<Workspace<T>>,
    /// First row of this shard in its batch (0 for a batch's own workspace).
    pub(crate) shard_lo: usize,
    /// What the last inference on this workspace did (per shard, and summed over the shards
    /// on the batch's workspace).
    pub last: crate::infer::InferenceStats,
    /// A batch gathered from rows of a dataset for a rule that takes a dense batch
    /// (`Rule::train_rows`'s default): inputs and targets.
    pub(crate) rows_xy: (Tensor<T>, Tensor<T>),
}

impl<T: Scalar> Workspace<T> {
    /// Buffers for `net` at batch size `batch`.
    pub fn new(net: &Net<T>, batch: usize) -> Self {
        let sizes = net.sizes();
        let per_node = |b: usize| sizes.iter().map(|&d| Tensor::zeros(b, d)).collect::<Vec<_>>();
        let per_act_node =
            || {
                net.topo
                    .nodes
                    .iter()
                    .map(|n| {
                        if n.act.is_some() {
                            Tensor::zeros(batch, n.size)
                        } else {
                            Tensor::default()
                        }
                    })
                    .collect::<Vec<_>>()
            };
        let d_out = net.d_out();
        let n = sizes.len();
        let mut ws = Self {
            batch,
            x: per_node(batch),
            mu: per_node(batch),
            g: per_node(batch),
            dx: per_node(batch),
            vel: per_node(batch),
            nz: per_act_node(),
            nda: per_act_node(),
            ndelta: per_act_node(),
            layer_ws: net.layers.iter().map(|l| l.alloc_ws(batch)).collect(),
            grads: net.layers.iter().map(|l| zeros_like_params(l.as_ref())).collect(),
            target: Tensor::zeros(batch, d_out),
            out_tmp: Tensor::zeros(batch, d_out),
            empty: Tensor::zeros(batch, 0),
            layer_energy: vec![0.0; n],
            roles: vec![Role::Free; n],
            mask: vec![Tensor::default(); n],
            known: vec![Tensor::default(); n],
            fwd_order: Vec::with_capacity(n),
            order_roles: Vec::with_capacity(n),
            order_state: Vec::with_capacity(n),
            touched: vec![false; n],
            skip_zero_products: true,
            quiet: vec![false; n],
            stepped: vec![false; n],
            shards: Vec::new(),
            shard_lo: 0,
            last: Default::default(),
            rows_xy: Default::default(),
        };
        ws.set_training_roles(net, true);
        ws
    }

    /// Makes sure the buffers fit `net` at `batch`; reallocates only when the shape changed.
    pub fn ensure(&mut self, net: &Net<T>, batch: usize) {
        let fits = self.batch == batch
            && self.x.len() == net.topo.nodes.len()
            && self.layer_ws.len() == net.layers.len()
            && self.x.iter().zip(&net.topo.nodes).all(|(t, n)| t.cols() == n.size);
        if !fits {
            let skip = self.skip_zero_products;
            *self = Self::new(net, batch);
            self.skip_zero_products = skip;
        }
    }

    /// Training roles: the input clamped, the output clamped (or free when `clamp_output`
    /// is false), every other node free.
    pub fn set_training_roles(&mut self, net: &Net<T>, clamp_output: bool) {
        for r in &mut self.roles {
            *r = Role::Free;
        }
        self.roles[net.input()] = Role::Clamped;
        self.roles[net.output()] =
            if clamp_output || net.output() == net.input() { Role::Clamped } else { Role::Free };
    }

    /// Recomputes the forward order if the roles changed since it was computed (no
    /// allocation once the scratch is sized).
    pub fn update_order(&mut self, net: &Net<T>) {
        if self.order_roles == self.roles && !self.fwd_order.is_empty() {
            return;
        }
        self.order_roles.clear();
        self.order_roles.extend_from_slice(&self.roles);
        // `known` flags reuse the touched scratch.
        self.touched.clear();
        self.touched.extend(self.roles.iter().map(|r| r.known()));
        net.topo.forward_order(&self.touched, &mut self.fwd_order, &mut self.order_state);
    }

    /// Splits the batch `x`, `y` row-wise into `n` shard workspaces (sized on first use) and
    /// sets their training roles; each shard copies its own rows in its own task
    /// ([`Workspace::load_shard_rows`], called by `learn::train_shards`), in parallel and into
    /// the cache of the core that relaxes them.
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
        self.load_shards_of(net, &Examples::Dense(Batch { x, y, index: 0 }), n)
    }

    /// [`Workspace::load_shards`] for a batch in either form.
    pub(crate) fn load_shards_of(
        &mut self,
        net: &Net<T>,
        ex: &Examples<'_, T>,
        n: usize,
    ) -> Result<()> {
        ex.check(net)?;
        let b = ex.len();
        self.ensure(net, b);
        let rows = |i: usize| (i * b / n, (i + 1) * b / n);
        if self.shards.len() != n {
            self.shards = (0..n).map(|i| Workspace::new(net, rows(i).1 - rows(i).0)).collect();
        }
        for (i, s) in self.shards.iter_mut().enumerate() {
            let (lo, hi) = rows(i);
            s.ensure(net, hi - lo);
            s.shard_lo = lo;
            s.skip_zero_products = self.skip_zero_products;
            s.set_training_roles(net, true);
        }
        Ok(())
    }

    /// Copies this shard's rows of the batch `ex` (placed by [`Workspace::load_shards`]) into
    /// its input node, its target and its clamped output node.
    pub(crate) fn load_shard_rows(&mut self, net: &Net<T>, ex: &Examples<'_, T>) {
        let (lo, hi) = (self.shard_lo, self.shard_lo + self.batch);
        let (inp, out) = (net.input(), net.output());
        ex.copy_rows(lo, hi, self.x[inp].data_mut(), self.target.data_mut());
        if out != inp {
            self.x[out].copy_from(&self.target);
        }
    }

    /// [`Workspace::load`] for a batch in either form (rows of a dataset are copied straight
    /// into the input node and the target).
    ///
    /// # Errors
    /// [`Error::Shape`] on mismatched shapes or a row outside the dataset.
    pub(crate) fn load_examples(&mut self, net: &Net<T>, ex: &Examples<'_, T>) -> Result<()> {
        ex.check(net)?;
        self.ensure(net, ex.len());
        self.shard_lo = 0;
        self.load_shard_rows(net, ex);
        self.set_training_roles(net, true);
        Ok(())
    }

    /// Loads inputs into the input node and targets into `target` (and the output node),
    /// checking shapes against `net`; sets the training roles.
    ///
    /// # Errors
    /// [`Error::Shape`] on mismatched shapes.
    pub fn load(&mut self, net: &Net<T>, x: &Tensor<T>, y: &Tensor<T>) -> Result<()> {
        self.load_examples(net, &Examples::Dense(Batch { x, y, index: 0 }))
    }
}
