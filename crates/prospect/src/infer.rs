//! Inference: relaxing the value nodes `x_l` down the energy with the weights fixed.
//!
//! One step evaluates every layer's error from the current nodes, then moves all free nodes
//! in parallel: `x_l <- x_l - gamma * dE/dx_l`, where
//! `dE/dx_l = dE_l/dx_l + VJP_{l+1}(dE_{l+1}/dmu_{l+1})` (science.md, local gradients).

use crate::energy::{Energy, Gaussian};
use crate::error::{Error, Result};
use crate::graph::Role;
use crate::net::{count_correct, Net, Workspace};
use crate::tensor::{Accum, Backend, Cpu, Scalar, Tensor};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Optimiser of the value nodes during inference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NodeOptim {
    /// `x -= gamma * dE/dx`.
    #[default]
    Sgd,
    /// Heavy-ball momentum: `v = m v + dE/dx; x -= gamma v`.
    Momentum,
    /// Nesterov momentum: `v = m v + dE/dx; x -= gamma (dE/dx + m v)`.
    Nesterov,
}

/// When an energy rise cuts the node rate (`inference.discount_timing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DiscountTiming {
    /// `E_t > E_{t-1}` cuts `gamma` before the step from `x_t`.
    #[default]
    BeforeStep,
    /// `E_t >= E_{t-1}` cuts `gamma` after the step from `x_t`, from the next step on (the
    /// authors' `PCTrainer`, `x_lr_discount`).
    AfterStep,
}

impl DiscountTiming {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How the output nodes `x_L` are treated during inference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum OutputMode {
    /// `x_L` is clamped to the target; the output energy is `E_L(target, mu_L)`.
    #[default]
    Clamp,
    /// `x_L` is free, linked to `mu_L` by a unit Gaussian, and nudged by
    /// `beta * E_L(target, x_L)` (weak-feedback / equilibrium-propagation nudging).
    Nudge {
        /// Nudging strength.
        beta: f64,
    },
    /// `x_L` is clamped to the target and its energy weighted by `beta`:
    /// `F_beta = sum_{l<L} E_l + beta E_L(target, mu_L)`. `beta = 1` is [`OutputMode::Clamp`],
    /// `beta = 0` leaves the output unconstrained (the free phase of equilibrium propagation),
    /// a negative `beta` pushes away from the target (centred nudging).
    Weighted {
        /// Weight of the output energy (any finite value).
        beta: f64,
    },
}

/// Settings of one inference phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Maximum number of node updates `T`.
    pub steps: usize,
    /// Node learning rate `gamma`.
    pub gamma: f64,
    /// Node optimiser.
    pub optimizer: NodeOptim,
    /// Momentum coefficient for `momentum` / `nesterov`.
    pub momentum: f64,
    /// Cut `gamma` whenever the energy rises (reset to `gamma` each batch).
    pub halve_on_rise: bool,
    /// The factor of that cut (0.5 halves; the authors' continual experiments use 0.9).
    pub discount: f64,
    /// When that cut happens and whether equal energies count as a rise.
    #[serde(skip_serializing_if = "DiscountTiming::is_default")]
    pub discount_timing: DiscountTiming,
    /// Stop early once `|E_t - E_{t-1}| <= tol * E_{t-1}` (0 disables).
    pub tol: f64,
    /// Output treatment.
    pub output: OutputMode,
    /// Initialisation of free nodes no forward pass reaches (cycles, nodes fed only by free
    /// nodes without a prediction).
    pub free_init: crate::graph::FreeInit,
    /// Seed of a random `free_init` (mixed with the batch index).
    pub seed: u64,
    /// Nudging strength `beta` of equilibrium propagation (`eqprop`; default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Centred nudging: phases at `+beta` and `-beta` instead of `0` and `+beta` (`eqprop`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub centred: bool,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            steps: 20,
            gamma: 0.1,
            optimizer: NodeOptim::Sgd,
            momentum: 0.0,
            halve_on_rise: false,
            discount: 0.5,
            discount_timing: DiscountTiming::BeforeStep,
            tol: 0.0,
            output: OutputMode::Clamp,
            free_init: crate::graph::FreeInit::Zeros,
            seed: 0,
            beta: None,
            centred: false,
        }
    }
}

impl InferenceConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(Error::config(
                "inference.gamma",
                format!("must be > 0, found {}", self.gamma),
            ));
        }
        if !(self.discount > 0.0 && self.discount < 1.0) {
            return Err(Error::config(
                "inference.discount",
                format!("must be in (0, 1), found {}", self.discount),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::config(
                "inference.momentum",
                format!("must be in [0, 1), found {}", self.momentum),
            ));
        }
        if self.tol.is_nan() || self.tol < 0.0 {
            return Err(Error::config(
                "inference.tol",
                format!("must be >= 0, found {}", self.tol),
            ));
        }
        if let crate::graph::FreeInit::Normal { std } = self.free_init {
            if !(std.is_finite() && std > 0.0) {
                return Err(Error::config(
                    "inference.free_init.std",
                    format!("must be > 0, found {std}"),
                ));
            }
        }
        match self.output {
            OutputMode::Nudge { beta } if !(beta.is_finite() && beta > 0.0) => {
                return Err(Error::config(
                    "inference.output.beta",
                    format!("must be > 0, found {beta}"),
                ));
            }
            OutputMode::Weighted { beta } if !beta.is_finite() => {
                return Err(Error::config(
                    "inference.output.beta",
                    format!("must be finite, found {beta}"),
                ));
            }
            _ => {}
        }
        if let Some(beta) = self.beta {
            if !(beta.is_finite() && beta > 0.0) {
                return Err(Error::config("inference.beta", format!("must be > 0, found {beta}")));
            }
        }
        Ok(())
    }
}

/// What an inference phase did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InferenceStats {
    /// Energy at the forward initialisation (the output loss when clamped).
    pub initial_energy: f64,
    /// Energy after the last step.
    pub final_energy: f64,
    /// Node updates actually taken.
    pub steps: usize,
    /// Final node learning rate (after any halving).
    pub gamma: f64,
    /// Examples whose forward-pass arg-max matched the target's.
    pub correct: usize,
    /// Matrix products (input VJPs, predictions) skipped as exactly zero or unchanged, per
    /// batch shard summed (see [`Workspace::skip_zero_products`]).
    pub skipped_products: usize,
}

impl<T: Scalar> Net<T> {
    /// The prediction of node `i` from its in-edges: the first edge writes, the others add,
    /// then the node's own activation (if it has one).
    pub fn predict_node(&self, ws: &mut Workspace<T>, i: usize) {
        let node = &self.topo.nodes[i];
        let dst = if node.act.is_some() { &mut ws.nz[i] } else { &mut ws.mu[i] };
        for (k, &e) in self.topo.in_edges[i].iter().enumerate() {
            let x_in = match self.topo.edges[e].src {
                Some(s) => &ws.x[s],
                None => &ws.empty,
            };
            let accum = if k == 0 { Accum::Replace } else { Accum::Add };
            self.layers[e].forward(x_in, dst, &mut ws.layer_ws[e], accum);
        }
        if let Some(act) = node.act {
            Cpu.act_with_deriv(act, &ws.nz[i], &mut ws.mu[i], &mut ws.nda[i]);
        }
    }

    /// Forward initialisation under the roles in `ws` (the output's role set by
    /// `clamp_output`): nodes a forward pass reaches from the known nodes get `x = mu` in
    /// order; other free nodes get `cfg.free_init`; then every remaining prediction.
    pub fn forward(&self, ws: &mut Workspace<T>, clamp_output: bool) {
        self.forward_init(ws, Some(clamp_output), &crate::graph::FreeInit::Zeros, 0);
    }

    /// [`Net::forward`] with the initialisation of unreached free nodes and its seed; the
    /// output's role is left as set in `ws` when `clamp_output` is `None`.
    pub fn forward_init(
        &self,
        ws: &mut Workspace<T>,
        clamp_output: Option<bool>,
        free_init: &crate::graph::FreeInit,
        seed: u64,
    ) {
        let out = self.output();
        if let Some(clamp) = clamp_output {
            if out != self.input() {
                ws.roles[out] = if clamp { Role::Clamped } else { Role::Free };
            }
        }
        ws.update_order(self);
        for k in 0..ws.fwd_order.len() {
            let i = ws.fwd_order[k];
            self.predict_node(ws, i);
            match ws.roles[i] {
                Role::Free => ws.x[i].copy_from(&ws.mu[i]),
                Role::Masked => {
                    // Unknown entries start at the prediction; known ones stay at the data.
                    ws.x[i].copy_from(&ws.mu[i]);
                    restore_known(ws, i);
                }
                Role::Clamped | Role::Init => {}
            }
        }
        if ws.fwd_order.len() == self.topo.nodes.iter().filter(|n| n.energy.is_some()).count() {
            return; // every prediction is computed (a chain, any DAG from the known nodes)
        }
        let placed = |ws: &Workspace<T>, i: usize| ws.fwd_order.contains(&i);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for i in 0..self.topo.nodes.len() {
            if ws.roles[i] == Role::Free && !placed(ws, i) {
                match *free_init {
                    crate::graph::FreeInit::Zeros => ws.x[i].fill(T::zero()),
                    crate::graph::FreeInit::Normal { std } => {
                        use rand_distr::Distribution;
                        let n = rand_distr::Normal::new(0.0, std).expect("std validated");
                        ws.x[i].data_mut().iter_mut().for_each(|v| *v = T::of(n.sample(&mut rng)));
                    }
                }
            }
        }
        for i in 0..self.topo.nodes.len() {
            if !self.topo.in_edges[i].is_empty() && !placed(ws, i) {
                self.predict_node(ws, i);
            }
        }
    }

    /// Recomputes predictions from the current nodes: all of them when `all` (the weights
    /// changed), else only those with an in-edge from a node inference moves (a prediction
    /// from clamped nodes only, like `mu_1` of a chain, stays valid while weights are fixed).
    pub fn repredict(&self, ws: &mut Workspace<T>, all: bool) {
        for i in 0..self.topo.nodes.len() {
            let ins = &self.topo.in_edges[i];
            if ins.is_empty() {
                continue;
            }
            let stale = all
                || ins.iter().any(|&e| self.topo.edges[e].src.is_some_and(|s| ws.roles[s].moves()));
            if stale {
                self.predict_node(ws, i);
            }
        }
    }

    /// Recomputes predictions `mu_l` for layers `from..=L` of a chain (`from <= 1`: all of
    /// them; otherwise those fed by moving nodes).
    pub fn predict_from(&self, ws: &mut Workspace<T>, from: usize) {
        self.repredict(ws, from <= 1);
    }

    /// Evaluates every node's energy at the current nodes and predictions, writing
    /// `g_i = dE_i/dmu_i` and, when `with_dx`, the node gradients `dx_i` of all moving nodes.
    ///
    /// Returns the total energy; per-node values go to `ws.layer_energy`.
    pub fn energy_grads(&self, ws: &mut Workspace<T>, output: OutputMode, with_dx: bool) -> f64 {
        self.energy_grads_skipping(ws, output, with_dx, false, &mut 0)
    }

    /// [`Net::energy_grads`]; when `skip_quiet`, the input VJPs of edges into nodes marked
    /// quiet in `ws` (their error is exactly zero, so the product adds zeros) are not run and
    /// are counted in `skipped`.
    fn energy_grads_skipping(
        &self,
        ws: &mut Workspace<T>,
        output: OutputMode,
        with_dx: bool,
        skip_quiet: bool,
        skipped: &mut usize,
    ) -> f64 {
        let out = self.output();
        let mut total = 0.0;
        for (i, node) in self.topo.nodes.iter().enumerate() {
            let moves = ws.roles[i].moves();
            let Some(k) = node.energy else {
                if with_dx && moves {
                    ws.dx[i].fill(T::zero());
                }
                continue;
            };
            let energy = &self.energies[k];
            let e = match output {
                OutputMode::Nudge { beta } if i == out => {
                    let link = Energy::<T>::eval(
                        &Gaussian::default(),
                        &ws.x[i],
                        &ws.mu[i],
                        &mut ws.g[i],
                        Some(&mut ws.dx[i]),
                    );
                    // d/dx_L of beta * loss(target, x_L): the loss's gradient w.r.t. its "mu".
                    let loss = energy.eval(&ws.target, &ws.x[i], &mut ws.out_tmp, None);
                    if with_dx {
                        Cpu.axpy(&mut ws.dx[i], T::of(beta), &ws.out_tmp);
                    }
                    link + beta * loss
                }
                OutputMode::Weighted { beta } if i == out => {
                    // The output is clamped: no dE/dx of its own; its error is scaled by beta.
                    let e = energy.eval(&ws.x[i], &ws.mu[i], &mut ws.g[i], None);
                    let b = T::of(beta);
                    ws.g[i].data_mut().iter_mut().for_each(|v| *v *= b);
                    beta * e
                }
                _ => energy.eval(
                    &ws.x[i],
                    &ws.mu[i],
                    &mut ws.g[i],
                    (with_dx && moves).then_some(&mut ws.dx[i]),
                ),
            };
            if node.act.is_some() {
                Cpu.mul(&mut ws.ndelta[i], Accum::Replace, &ws.g[i], &ws.nda[i]);
            }
            ws.layer_energy[i] = e;
            total += e;
        }
        for (e, edge) in self.topo.edges.iter().enumerate() {
            let g = edge_g(self, &ws.g, &ws.ndelta, edge.dst);
            self.layers[e].backward_prep(g, &mut ws.layer_ws[e]);
        }
        if with_dx {
            for (e, edge) in self.topo.edges.iter().enumerate() {
                let Some(s) = edge.src else { continue };
                if !ws.roles[s].moves() {
                    continue;
                }
                if skip_quiet && ws.quiet[edge.dst] {
                    *skipped += 1;
                    continue;
                }
                let g = edge_g(self, &ws.g, &ws.ndelta, edge.dst);
                self.layers[e].vjp_input(g, &mut ws.layer_ws[e], &mut ws.dx[s], Accum::Add);
            }
        }
        total
    }

    /// Moves the moving nodes one step along `-dx` with the node optimiser (masked nodes
    /// keep their known entries).
    pub fn step_nodes(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        output: OutputMode,
        gamma: f64,
    ) {
        if let OutputMode::Nudge { .. } = output {
            ws.roles[self.output()] = Role::Free;
        }
        let (lr, m) = (T::of(gamma), T::of(cfg.momentum));
        for i in 0..self.topo.nodes.len() {
            if !ws.roles[i].moves() {
                continue;
            }
            let vel = match cfg.optimizer {
                NodeOptim::Sgd => None,
                _ => Some(&mut ws.vel[i]),
            };
            Cpu.sgd_step(
                &mut ws.x[i],
                vel,
                &ws.dx[i],
                T::one(),
                lr,
                m,
                cfg.optimizer == NodeOptim::Nesterov,
            );
            if ws.roles[i] == Role::Masked {
                restore_known(ws, i);
            }
        }
    }

    /// Index of the first node whose last energy is not finite (0 if none is).
    pub fn non_finite_layer(&self, ws: &Workspace<T>) -> usize {
        (0..self.topo.nodes.len()).find(|&l| !ws.layer_energy[l].is_finite()).unwrap_or(0)
    }

    /// Runs inference on the batch loaded in `ws`: forward initialisation, then up to
    /// `cfg.steps` node updates; leaves `ws` holding errors at the final nodes.
    ///
    /// `batch_index` only labels errors.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the batch, step and layer if the energy stops being finite.
    pub fn infer(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        batch_index: usize,
    ) -> Result<InferenceStats> {
        self.infer_observed(ws, cfg, batch_index, |_, _| {})
    }

    /// [`Net::infer`], calling `after_step(t, ws)` with the nodes after `t` steps (`t = 0`: the
    /// forward initialisation), so experiments can watch the relaxation that training uses.
    ///
    /// # Errors
    /// As [`Net::infer`].
    pub fn infer_observed(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        batch_index: usize,
        after_step: impl FnMut(usize, &Workspace<T>),
    ) -> Result<InferenceStats> {
        let clamp = !matches!(cfg.output, OutputMode::Nudge { .. });
        self.relax(ws, cfg, batch_index, Some(clamp), after_step)
    }

    /// Inference that starts from the nodes now in `ws` instead of a forward pass (the second
    /// phase of equilibrium propagation starts from the first one's equilibrium); the roles
    /// stay as they are except the output's, set by `cfg.output`.
    ///
    /// # Errors
    /// As [`Net::infer`].
    pub fn infer_from_current(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        batch_index: usize,
    ) -> Result<InferenceStats> {
        let out = self.output();
        if out != self.input() {
            ws.roles[out] = if matches!(cfg.output, OutputMode::Nudge { .. }) {
                Role::Free
            } else {
                Role::Clamped
            };
            if ws.roles[out] == Role::Clamped {
                let (x, t) = (&mut ws.x[out], &ws.target);
                x.copy_from(t);
            }
        }
        self.repredict(ws, true);
        ws.quiet.fill(false);
        self.with_packed_weights(ws, |ws| self.relax_steps(ws, cfg, batch_index, |_, _| {}))
    }

    /// Answers a query: every node not in `given` is free; each given node is clamped,
    /// masked or initialised from its data; then inference as in training (`cfg.output` is
    /// ignored: no node is nudged). Read any node from `ws.x` afterwards.
    ///
    /// # Errors
    /// [`Error::Shape`] if a tensor does not fit its node or the batch; [`Error::Config`]
    /// (`query`) if no node is given, or a node is given twice, or the settings are out of
    /// range;
    /// [`Error::NonFinite`] on divergence.
    pub fn query(
        &self,
        ws: &mut Workspace<T>,
        given: &[(usize, Given<'_, T>)],
        cfg: &InferenceConfig,
    ) -> Result<InferenceStats> {
        cfg.validate()?;
        let batch = given.first().map_or(ws.batch, |(_, g)| g.data().rows());
        ws.ensure(self, batch);
        ws.roles.iter_mut().for_each(|r| *r = Role::Free);
        for (i, g) in given {
            let node = self.topo.nodes.get(*i).ok_or_else(|| {
                Error::config(
                    "query",
                    format!("no node {i}; the net has {}", self.topo.nodes.len()),
                )
            })?;
            if ws.roles[*i] != Role::Free {
                return Err(Error::config("query", format!("node `{}` given twice", node.name)));
            }
            let want = [batch, node.size];
            let data = g.data();
            if data.shape() != want {
                return Err(Error::shape(
                    "query",
                    format!("data of node `{}`", node.name),
                    want,
                    data.shape(),
                ));
            }
            ws.x[*i].copy_from(data);
            ws.roles[*i] = match g {
                Given::Data(_) => Role::Clamped,
                Given::Init(_) => Role::Init,
                Given::Masked { data, mask } => {
                    if mask.shape() != want {
                        return Err(Error::shape(
                            "query",
                            format!("mask of node `{}`", node.name),
                            want,
                            mask.shape(),
                        ));
                    }
                    ws.mask[*i] = (*mask).clone();
                    ws.known[*i] = (*data).clone();
                    Role::Masked
                }
            };
        }
        if given.is_empty() {
            return Err(Error::config(
                "query",
                "nothing given: clamp, mask or initialise at least one node",
            ));
        }
        let cfg = InferenceConfig { output: OutputMode::Clamp, ..cfg.clone() };
        self.relax(ws, &cfg, 0, None, |_, _| {})
    }

    /// Whether a forward pass from the input is the equilibrium of the query "input clamped,
    /// every other node free": the graph is acyclic and nothing predicts the input.
    pub fn forward_answers(&self) -> bool {
        let inp = self.input();
        self.topo.is_dag()
            && self.topo.in_edges[inp].iter().all(|&e| self.topo.edges[e].src.is_none())
    }

    /// The network's answer for the inputs in the input node, left in the output node's
    /// `ws.x`: a forward pass when that is the equilibrium ([`Net::forward_answers`]; a chain,
    /// any feed-forward DAG); otherwise (cycles, a generative net that predicts its input)
    /// inference with the input clamped and every other node free.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if inference diverges.
    pub fn predict_output(&self, ws: &mut Workspace<T>, cfg: &InferenceConfig) -> Result<()> {
        ws.roles.iter_mut().for_each(|r| *r = Role::Free);
        ws.roles[self.input()] = Role::Clamped;
        if self.forward_answers() {
            self.forward_init(ws, None, &cfg.free_init, cfg.seed);
        } else {
            let cfg = InferenceConfig { output: OutputMode::Clamp, ..cfg.clone() };
            self.relax(ws, &cfg, 0, None, |_, _| {})?;
        }
        Ok(())
    }

    /// Inference under the roles in `ws` (the output's set by `clamp_output` when given).
    fn relax(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        batch_index: usize,
        clamp_output: Option<bool>,
        after_step: impl FnMut(usize, &Workspace<T>),
    ) -> Result<InferenceStats> {
        self.forward_init(ws, clamp_output, &cfg.free_init, cfg.seed ^ batch_index as u64);
        self.mark_quiet(ws, cfg);
        self.with_packed_weights(ws, |ws| self.relax_steps(ws, cfg, batch_index, after_step))
    }

    /// After a forward initialisation: marks quiet the free nodes the forward pass placed at
    /// their prediction whose energy has a zero gradient there (errors start at the clamped
    /// nodes and spread one edge per step; products of zero errors are skipped). Only with a
    /// clamped output, whose energy needs no extra term on `dx`.
    fn mark_quiet(&self, ws: &mut Workspace<T>, cfg: &InferenceConfig) {
        let on = ws.skip_zero_products && matches!(cfg.output, OutputMode::Clamp);
        for i in 0..self.topo.nodes.len() {
            let zero_grad =
                self.topo.nodes[i].energy.is_some_and(|k| self.energies[k].zero_at_prediction());
            ws.quiet[i] = on && ws.roles[i] == Role::Free && zero_grad && ws.fwd_order.contains(&i);
        }
    }

    /// Before a node step: marks the moving nodes the step can change. A free quiet node (so
    /// one that never moved: no velocity) that feeds only quiet nodes has `dx = 0`: it stays.
    fn mark_stepping(&self, ws: &mut Workspace<T>) {
        for s in 0..self.topo.nodes.len() {
            let role = ws.roles[s];
            let still = role == Role::Free
                && ws.quiet[s]
                && self.topo.out_edges[s].iter().all(|&e| ws.quiet[self.topo.edges[e].dst]);
            ws.stepped[s] = role.moves() && !still;
        }
        for s in 0..self.topo.nodes.len() {
            if ws.stepped[s] {
                ws.quiet[s] = false;
            }
        }
    }

    /// After a node step: recomputes the predictions fed by a node the step changed (the
    /// others are unchanged: weights are fixed during inference); those nodes stop being quiet.
    /// Returns the number of products (in-edges) of predictions fed by moving nodes it left
    /// alone.
    fn repredict_stepped(&self, ws: &mut Workspace<T>) -> usize {
        let mut skipped = 0;
        for i in 0..self.topo.nodes.len() {
            let src = |e: &usize| self.topo.edges[*e].src;
            let ins = &self.topo.in_edges[i];
            if ins.iter().any(|e| src(e).is_some_and(|s| ws.stepped[s])) {
                self.predict_node(ws, i);
                ws.quiet[i] = false;
            } else if ins.iter().any(|e| src(e).is_some_and(|s| ws.roles[s].moves())) {
                skipped += ins.len();
            }
        }
        skipped
    }

    /// Runs `f` (the steps of an inference: `self` is borrowed, so no weight changes) with the
    /// weights of the edges leaving moving nodes packed once for their many products; forgets
    /// the packing afterwards. An edge from a clamped node gives no product during the steps.
    fn with_packed_weights<R>(
        &self,
        ws: &mut Workspace<T>,
        f: impl FnOnce(&mut Workspace<T>) -> R,
    ) -> R {
        for (e, edge) in self.topo.edges.iter().enumerate() {
            if edge.src.is_some_and(|s| ws.roles[s].moves()) {
                self.layers[e].pack_weights(&mut ws.layer_ws[e]);
            }
        }
        let r = f(ws);
        ws.layer_ws.iter_mut().for_each(crate::layers::LayerWs::unpack);
        r
    }

    /// The inference steps of [`Net::relax`], from the nodes and predictions now in `ws`.
    fn relax_steps(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        batch_index: usize,
        mut after_step: impl FnMut(usize, &Workspace<T>),
    ) -> Result<InferenceStats> {
        after_step(0, ws);
        for v in &mut ws.vel {
            v.fill(T::zero());
        }
        let mut gamma = cfg.gamma;
        let mut prev = f64::INFINITY;
        let mut stats = InferenceStats::default();
        let mut steps = 0;
        for t in 0..=cfg.steps {
            if t > 0 {
                // Weights are fixed during inference: predictions from nodes the step left
                // alone (clamped ones among them) stay valid.
                stats.skipped_products += self.repredict_stepped(ws);
            }
            let last = t == cfg.steps;
            let skipped = &mut stats.skipped_products;
            let e = self.energy_grads_skipping(ws, cfg.output, !last, true, skipped);
            if !e.is_finite() {
                return Err(Error::NonFinite {
                    batch: batch_index,
                    step: t,
                    layer: self.non_finite_layer(ws),
                    what: format!("energy {e}"),
                });
            }
            if t == 0 {
                stats.initial_energy = e;
                stats.correct = count_correct(&ws.mu[self.output()], &ws.target);
            }
            stats.final_energy = e;
            if last {
                break;
            }
            let after = cfg.discount_timing == DiscountTiming::AfterStep;
            if t > 0 {
                if cfg.halve_on_rise && !after && e > prev {
                    gamma *= cfg.discount;
                }
                if cfg.tol > 0.0 && (prev - e).abs() <= cfg.tol * prev.abs() {
                    // Converged; ws holds the errors of the current nodes.
                    break;
                }
            }
            let rose = t > 0 && e >= prev;
            prev = e;
            self.mark_stepping(ws);
            self.step_nodes(ws, cfg, cfg.output, gamma);
            if cfg.halve_on_rise && after && rose {
                gamma *= cfg.discount;
            }
            steps += 1;
            after_step(steps, ws);
        }
        stats.steps = steps;
        stats.gamma = gamma;
        Ok(stats)
    }
}

/// Sets the known entries (mask 1) of masked node `i` back to their data.
fn restore_known<T: Scalar>(ws: &mut Workspace<T>, i: usize) {
    let (x, m, d) = (&mut ws.x[i], &ws.mask[i], &ws.known[i]);
    Cpu.zip3(x, m, d, |x, m, d| if m > T::zero() { d } else { x });
}

/// What a query fixes for one node.
#[derive(Clone, Copy, Debug)]
pub enum Given<'a, T: Scalar> {
    /// Clamped to this data `[batch, size]`.
    Data(&'a Tensor<T>),
    /// Entries where `mask` is 1 clamped to `data`, the rest inferred.
    Masked {
        /// Values (those under a 0 of the mask only start inference).
        data: &'a Tensor<T>,
        /// 1 = known, 0 = inferred.
        mask: &'a Tensor<T>,
    },
    /// Initialised to this data, then inferred.
    Init(&'a Tensor<T>),
}

impl<'a, T: Scalar> Given<'a, T> {
    /// The data tensor.
    pub fn data(&self) -> &'a Tensor<T> {
        match *self {
            Given::Data(d) | Given::Init(d) | Given::Masked { data: d, .. } => d,
        }
    }
}

/// The error the in-edges of node `dst` see: `g_dst`, or `g_dst ⊙ f'(z_dst)` behind a node's
/// own activation.
pub(crate) fn edge_g<'a, T: Scalar>(
    net: &Net<T>,
    g: &'a [Tensor<T>],
    ndelta: &'a [Tensor<T>],
    dst: usize,
) -> &'a Tensor<T> {
    if net.topo.nodes[dst].act.is_some() {
        &ndelta[dst]
    } else {
        &g[dst]
    }
}
