//! Inference: relaxing the value nodes `x_l` down the energy with the weights fixed.
//!
//! One step evaluates every layer's error from the current nodes, then moves all free nodes
//! in parallel: `x_l <- x_l - gamma * dE/dx_l`, where
//! `dE/dx_l = dE_l/dx_l + VJP_{l+1}(dE_{l+1}/dmu_{l+1})` (science.md, local gradients).

use crate::energy::{Energy, Gaussian};
use crate::error::{Error, Result};
use crate::net::{count_correct, Net, Workspace};
use crate::tensor::{Accum, Backend, Cpu, Scalar};
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
    /// Halve `gamma` whenever the energy rises (reset to `gamma` each batch).
    pub halve_on_rise: bool,
    /// Stop early once `|E_t - E_{t-1}| <= tol * E_{t-1}` (0 disables).
    pub tol: f64,
    /// Output treatment.
    pub output: OutputMode,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            steps: 20,
            gamma: 0.1,
            optimizer: NodeOptim::Sgd,
            momentum: 0.0,
            halve_on_rise: false,
            tol: 0.0,
            output: OutputMode::Clamp,
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
        if let OutputMode::Nudge { beta } = self.output {
            if !(beta.is_finite() && beta > 0.0) {
                return Err(Error::config(
                    "inference.output.beta",
                    format!("must be > 0, found {beta}"),
                ));
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
}

impl<T: Scalar> Net<T> {
    /// Evaluates every layer's energy at the current nodes and predictions, writing
    /// `g_l = dE_l/dmu_l` and, when `with_dx`, the node gradients `dx_l` of all free nodes.
    ///
    /// Returns the total energy; per-layer values go to `ws.layer_energy`.
    pub fn energy_grads(&self, ws: &mut Workspace<T>, output: OutputMode, with_dx: bool) -> f64 {
        let l_max = self.depth();
        let mut total = 0.0;
        for l in 1..=l_max {
            let e = if l < l_max {
                self.energies[l - 1].eval(
                    &ws.x[l],
                    &ws.mu[l],
                    &mut ws.g[l],
                    with_dx.then_some(&mut ws.dx[l]),
                )
            } else {
                match output {
                    OutputMode::Clamp => {
                        self.energies[l - 1].eval(&ws.target, &ws.mu[l], &mut ws.g[l], None)
                    }
                    OutputMode::Nudge { beta } => {
                        let link = Energy::<T>::eval(
                            &Gaussian::default(),
                            &ws.x[l],
                            &ws.mu[l],
                            &mut ws.g[l],
                            Some(&mut ws.dx[l]),
                        );
                        // d/dx_L of beta * loss(target, x_L): the loss's gradient w.r.t. its "mu".
                        let loss =
                            self.energies[l - 1].eval(&ws.target, &ws.x[l], &mut ws.out_tmp, None);
                        if with_dx {
                            Cpu.axpy(&mut ws.dx[l], T::of(beta), &ws.out_tmp);
                        }
                        link + beta * loss
                    }
                }
            };
            ws.layer_energy[l] = e;
            total += e;
        }
        for l in 1..=l_max {
            self.layers[l - 1].backward_prep(&ws.g[l], &mut ws.layer_ws[l - 1]);
        }
        if with_dx {
            for l in 2..=l_max {
                let dx_below = &mut ws.dx[l - 1];
                self.layers[l - 1].vjp_input(
                    &ws.g[l],
                    &mut ws.layer_ws[l - 1],
                    dx_below,
                    Accum::Add,
                );
            }
        }
        total
    }

    /// Moves the free nodes one step along `-dx` with the node optimiser.
    pub fn step_nodes(
        &self,
        ws: &mut Workspace<T>,
        cfg: &InferenceConfig,
        output: OutputMode,
        gamma: f64,
    ) {
        let last = match output {
            OutputMode::Clamp => self.depth() - 1,
            OutputMode::Nudge { .. } => self.depth(),
        };
        let (lr, m) = (T::of(gamma), T::of(cfg.momentum));
        for l in 1..=last {
            let vel = match cfg.optimizer {
                NodeOptim::Sgd => None,
                _ => Some(&mut ws.vel[l]),
            };
            Cpu.sgd_step(
                &mut ws.x[l],
                vel,
                &ws.dx[l],
                T::one(),
                lr,
                m,
                cfg.optimizer == NodeOptim::Nesterov,
            );
        }
    }

    /// Index of the first layer whose last energy is not finite (0 if none is).
    pub fn non_finite_layer(&self, ws: &Workspace<T>) -> usize {
        (1..=self.depth()).find(|&l| !ws.layer_energy[l].is_finite()).unwrap_or(0)
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
        mut after_step: impl FnMut(usize, &Workspace<T>),
    ) -> Result<InferenceStats> {
        let clamp = cfg.output == OutputMode::Clamp;
        self.forward(ws, clamp);
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
                // x_0 is clamped and W_1 fixed during inference: mu_1 stays valid.
                self.predict_from(ws, 2);
            }
            let last = t == cfg.steps;
            let e = self.energy_grads(ws, cfg.output, !last);
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
                stats.correct = count_correct(&ws.mu[self.depth()], &ws.target);
            }
            stats.final_energy = e;
            if last {
                break;
            }
            if t > 0 {
                if cfg.halve_on_rise && e > prev {
                    gamma *= 0.5;
                }
                if cfg.tol > 0.0 && (prev - e).abs() <= cfg.tol * prev.abs() {
                    // Converged; ws holds the errors of the current nodes.
                    break;
                }
            }
            prev = e;
            self.step_nodes(ws, cfg, cfg.output, gamma);
            steps += 1;
            after_step(steps, ws);
        }
        stats.steps = steps;
        stats.gamma = gamma;
        Ok(stats)
    }
}
