//! Equilibrium propagation (Scellier & Bengio 2017) on the network's energy, in the unified
//! form of Millidge, Song et al. (ICLR 2023, science.md §4).
//!
//! With `F_beta = sum_{i != out} E_i + beta E_out(target, mu_out)` (the output's energy
//! weighted by `beta`, [`OutputMode::Weighted`]): a free phase relaxes `F_0` to `x*`, a
//! nudged phase relaxes `F_beta` from `x*` to `x_beta`, and the update is
//! `(1/beta) [dF_beta/dθ(x_beta) - dF_0/dθ(x*)]`, which tends to the gradient of the loss at
//! the free equilibrium as `beta -> 0`. Centred nudging (`inference.centred`) uses
//! `(1/2beta) [dF_beta/dθ(x_beta) - dF_-beta/dθ(x_-beta)]`, whose bias is `O(beta^2)`.
//!
//! How the family relates: `chl` is this rule at `beta = 1` (the clamped phase is the
//! ordinary PC energy). `pc` is the case whose free phase has zero energy (a feed-forward net
//! relaxes to its forward pass, so `dF_0/dθ(x*) = 0` and the free phase can be skipped); with
//! `inference.output = { mode = "weighted", beta }` it is this rule's nudged phase alone, and
//! with `{ mode = "nudge", beta }` its output node is free and pulled by `beta L(target, x_L)`.

use super::{Batch, BatchStats, ProductCounts, Rule};
use crate::error::{Error, Result};
use crate::infer::{InferenceConfig, InferenceStats, OutputMode};
use crate::net::{Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::{Scalar, Tensor};

/// Nudging strength when `inference.beta` is not set.
pub const DEFAULT_BETA: f64 = 0.1;

/// Equilibrium propagation: a free and a nudged phase (or two nudged ones, centred).
#[derive(Clone, Debug)]
pub struct EqProp<T: Scalar> {
    /// Inference settings of every phase (`output` must be `clamp`).
    pub inference: InferenceConfig,
    /// Nudging strength `beta > 0`.
    pub beta: f64,
    /// Phases at `-beta` and `+beta` (both from the free equilibrium) instead of `0` and `+beta`.
    pub centred: bool,
    /// Name on the command line (`eqprop`, or `chl` for the `beta = 1` case).
    pub name: &'static str,
    /// The first phase's gradients.
    first: Vec<Vec<Tensor<T>>>,
    /// The free equilibrium (centred: the start of both nudged phases).
    free_x: Vec<Tensor<T>>,
    /// Per-example loss scratch.
    per: Vec<f64>,
    /// Summed loss at the last batch's free equilibrium.
    free_loss: f64,
}

impl<T: Scalar> EqProp<T> {
    /// The rule with these settings (`beta` from `inference.beta`, default 0.1).
    ///
    /// # Errors
    /// [`Error::Config`] if `inference.output` is not `clamp` (the phases set it).
    pub fn new(inference: &InferenceConfig) -> Result<Self> {
        if inference.output != OutputMode::Clamp {
            return Err(Error::config(
                "inference.output",
                "eqprop and chl set the output's weight in each phase themselves; \
                 leave inference.output at clamp (nudge with inference.beta)",
            ));
        }
        Ok(Self {
            inference: inference.clone(),
            beta: inference.beta.unwrap_or(DEFAULT_BETA),
            centred: inference.centred,
            name: "eqprop",
            first: Vec::new(),
            free_x: Vec::new(),
            per: Vec::new(),
            free_loss: 0.0,
        })
    }

    /// Checks that the target enters only through the output's prediction error: the output
    /// node predicts no other node.
    ///
    /// # Errors
    /// [`Error::Config`] naming the output node otherwise.
    pub fn check(net: &Net<T>) -> Result<()> {
        let out = net.output();
        if net.topo.out_edges[out].is_empty() {
            Ok(())
        } else {
            Err(Error::config(
                "model.output",
                format!(
                    "eqprop/chl weight the output's prediction error by beta, so the output node \
                     `{}` must not predict other nodes (it has {} out-edges)",
                    net.topo.nodes[out].name,
                    net.topo.out_edges[out].len()
                ),
            ))
        }
    }

    /// Relaxes the phases on the batch loaded in `ws` and writes the update into `ws.grads`
    /// (summed over the batch); returns the free phase's and the last phase's statistics.
    ///
    /// # Errors
    /// [`crate::Error::NonFinite`] on divergence.
    pub fn gradients(
        &mut self,
        net: &Net<T>,
        ws: &mut Workspace<T>,
        index: usize,
    ) -> Result<(InferenceStats, InferenceStats)> {
        let phase = |beta: f64| InferenceConfig {
            output: OutputMode::Weighted { beta },
            ..self.inference.clone()
        };
        let free = net.infer(ws, &phase(0.0), index)?;
        // The loss at the free equilibrium (the net's answer): the output's unweighted energy.
        self.per.resize(ws.batch, 0.0);
        let out = net.output();
        net.output_energy().per_example(&ws.target, &ws.mu[out], &mut self.per);
        self.free_loss = self.per.iter().sum();
        let (lo, hi) = if self.centred { (-self.beta, self.beta) } else { (0.0, self.beta) };
        if self.centred {
            copy_all(&mut self.free_x, &ws.x);
            net.infer_from_current(ws, &phase(lo), index)?;
        }
        net.param_grads(ws);
        copy_grads(&mut self.first, &ws.grads);
        if self.centred {
            for (x, s) in ws.x.iter_mut().zip(&self.free_x) {
                x.copy_from(s);
            }
        }
        let last = net.infer_from_current(ws, &phase(hi), index)?;
        net.param_grads(ws);
        let s = T::of(1.0 / (hi - lo));
        for (gs, fs) in ws.grads.iter_mut().zip(&self.first) {
            for (g, f) in gs.iter_mut().zip(fs) {
                for (a, &b) in g.data_mut().iter_mut().zip(f.data()) {
                    *a = (*a - b) * s;
                }
            }
        }
        Ok((free, last))
    }
}

/// Copies `src` into `dst`, sizing `dst` on first use (and when the shapes change).
fn copy_all<T: Scalar>(dst: &mut Vec<Tensor<T>>, src: &[Tensor<T>]) {
    if dst.len() != src.len() || dst.iter().zip(src).any(|(d, s)| d.shape() != s.shape()) {
        *dst = src.to_vec();
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            d.copy_from(s);
        }
    }
}

fn copy_grads<T: Scalar>(dst: &mut Vec<Vec<Tensor<T>>>, src: &[Vec<Tensor<T>>]) {
    if dst.len() != src.len() {
        dst.resize_with(src.len(), Vec::new);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        copy_all(d, s);
    }
}

impl<T: Scalar> Rule<T> for EqProp<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn train_batch(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Batch<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        ws.load(net, batch.x, batch.y)?;
        let (free, last) = self.gradients(net, ws, batch.index)?;
        opt.step(net, &ws.grads, batch.x.rows());
        opt.end_batch();
        Ok(BatchStats {
            examples: batch.x.rows(),
            loss: self.free_loss,
            energy: last.final_energy,
            steps: free.steps + last.steps,
            correct: free.correct,
        })
    }

    fn product_counts(&self, _net: &Net<T>) -> ProductCounts {
        // free phase: forward + T steps; each nudged phase: a full re-prediction + T steps.
        let t = self.inference.steps as u64;
        let nudged = if self.centred { 2 } else { 1 };
        ProductCounts {
            forward_first: 1 + nudged,
            forward_upper: (1 + t) * (1 + nudged),
            vjp_upper: t * (1 + nudged),
            param_grads: 1 + nudged,
        }
    }
}
