//! Weight optimisers and learning-rate schedules.
//!
//! Optimisers see only parameters and their gradients, never node states. Gradients arrive
//! summed over the batch; [`Reduction`] says whether they are averaged first.

use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::net::Net;
use crate::tensor::{Backend, Cpu, Scalar, Tensor};
use serde::{Deserialize, Serialize};

/// Weight optimiser algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    /// `w -= lr g`.
    #[default]
    Sgd,
    /// SGD with (optionally Nesterov) momentum.
    Momentum,
    /// Adam (Kingma & Ba), L2-free.
    Adam,
    /// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter).
    Adamw,
}

/// How batch gradients are reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Average over the examples of the batch.
    #[default]
    Mean,
    /// Sum over the examples of the batch.
    Sum,
}

/// Learning-rate schedule shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Constant `lr`.
    #[default]
    Constant,
    /// `lr * factor^(floor(t / every))`.
    Step,
    /// Linear warm-up from 0 over `warmup` of the run, then cosine decay to `final_factor * lr`.
    WarmupCosine,
}

/// Learning-rate schedule over the batches of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// Shape of the schedule.
    pub kind: ScheduleKind,
    /// `step`: batches between decays.
    pub every: usize,
    /// `step`: decay factor.
    pub factor: f64,
    /// `warmup_cosine`: fraction of all batches spent warming up.
    pub warmup: f64,
    /// `warmup_cosine`: final learning rate as a fraction of `lr`.
    pub final_factor: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            every: 1000,
            factor: 0.5,
            warmup: 0.1,
            final_factor: 0.1,
        }
    }
}

impl Schedule {
    /// Multiplier of the base learning rate at batch `t` of `total`.
    pub fn factor_at(&self, t: usize, total: usize) -> f64 {
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Step => self.factor.powi((t / self.every.max(1)) as i32),
            ScheduleKind::WarmupCosine => {
                let total = total.max(1) as f64;
                let warm = (self.warmup * total).round();
                let t = t as f64;
                if t < warm {
                    (t + 1.0) / warm
                } else {
                    let span = (total - warm).max(1.0);
                    let p = ((t - warm) / span).min(1.0);
                    let cos = 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
                    self.final_factor + (1.0 - self.final_factor) * cos
                }
            }
        }
    }
}

/// Weight optimiser settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Algorithm.
    pub kind: OptimKind,
    /// Base learning rate.
    pub lr: f64,
    /// `momentum`: coefficient.
    pub momentum: f64,
    /// `momentum`: use Nesterov's variant.
    pub nesterov: bool,
    /// Adam: first-moment decay.
    pub beta1: f64,
    /// Adam: second-moment decay.
    pub beta2: f64,
    /// Adam: denominator epsilon.
    pub eps: f64,
    /// AdamW: decoupled weight decay.
    pub weight_decay: f64,
    /// Mean or sum over the batch.
    pub reduction: Reduction,
    /// Learning-rate schedule.
    pub schedule: Schedule,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            reduction: Reduction::Mean,
            schedule: Schedule::default(),
        }
    }
}

impl OptimConfig {
    /// Plain SGD at `lr`.
    pub fn sgd(lr: f64) -> Self {
        Self { kind: OptimKind::Sgd, lr, ..Default::default() }
    }

    /// Adam at `lr`.
    pub fn adam(lr: f64) -> Self {
        Self { kind: OptimKind::Adam, lr, ..Default::default() }
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, m: String| Err(Error::config(format!("optimizer.{k}"), m));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad("lr", format!("must be >= 0, found {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("must be in [0, 1), found {}", self.momentum));
        }
        for (k, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(k, format!("must be in [0, 1), found {v}"));
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return bad("eps", format!("must be > 0, found {}", self.eps));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return bad("weight_decay", format!("must be >= 0, found {}", self.weight_decay));
        }
        let s = &self.schedule;
        if !(0.0..1.0).contains(&s.warmup) {
            return bad("schedule.warmup", format!("must be in [0, 1), found {}", s.warmup));
        }
        if !(s.final_factor >= 0.0 && s.factor > 0.0) {
            return bad("schedule", "factor and final_factor must be positive".into());
        }
        Ok(())
    }
}

/// Running weight optimiser: per-parameter state and the schedule position.
#[derive(Clone, Debug)]
pub struct WeightOptim<T: Scalar> {
    /// Settings.
    pub cfg: OptimConfig,
    /// Batches in the whole run (for schedules).
    pub total_batches: usize,
    /// Batches completed so far.
    pub batches_done: usize,
    /// Per layer, per parameter: first moment (or velocity) and second moment.
    state: Vec<Vec<(Tensor<T>, Tensor<T>)>>,
    /// Per layer: number of updates applied (Adam's bias correction).
    updates: Vec<u64>,
}

impl<T: Scalar> WeightOptim<T> {
    /// An optimiser for `net`'s parameters.
    ///
    /// # Errors
    /// [`Error::Config`] if the settings are invalid.
    pub fn new(cfg: OptimConfig, net: &Net<T>) -> Result<Self> {
        cfg.validate()?;
        let stateful = cfg.kind != OptimKind::Sgd;
        let state = net
            .layers
            .iter()
            .map(|l| {
                let mut v = Vec::new();
                l.for_each_param(&mut |_, p| {
                    let z = || {
                        if stateful {
                            Tensor::zeros(p.rows(), p.cols())
                        } else {
                            Tensor::zeros(0, 0)
                        }
                    };
                    let second = cfg.kind == OptimKind::Adam || cfg.kind == OptimKind::Adamw;
                    v.push((z(), if second { z() } else { Tensor::zeros(0, 0) }));
                });
                v
            })
            .collect();
        Ok(Self { cfg, total_batches: 1, batches_done: 0, state, updates: vec![0; net.depth()] })
    }

    /// Learning rate for the current batch.
    pub fn lr(&self) -> f64 {
        self.cfg.lr * self.cfg.schedule.factor_at(self.batches_done, self.total_batches)
    }

    /// Applies one update to layer `index` (0-based) from its summed gradients over `batch` examples.
    pub fn step_layer(
        &mut self,
        index: usize,
        layer: &mut dyn Layer<T>,
        grads: &[Tensor<T>],
        batch: usize,
    ) {
        let scale = T::of(match self.cfg.reduction {
            Reduction::Mean => 1.0 / batch.max(1) as f64,
            Reduction::Sum => 1.0,
        });
        let lr = T::of(self.lr());
        self.updates[index] += 1;
        let t = self.updates[index] as i32;
        let cfg = &self.cfg;
        let state = &mut self.state[index];
        let mut i = 0;
        layer.for_each_param_mut(&mut |_, p| {
            let g = &grads[i];
            let (m, v) = &mut state[i];
            match cfg.kind {
                OptimKind::Sgd => Cpu.sgd_step(p, None, g, scale, lr, T::zero(), false),
                OptimKind::Momentum => {
                    Cpu.sgd_step(p, Some(m), g, scale, lr, T::of(cfg.momentum), cfg.nesterov)
                }
                OptimKind::Adam | OptimKind::Adamw => {
                    let wd = if cfg.kind == OptimKind::Adamw { cfg.weight_decay } else { 0.0 };
                    Cpu.adam_step(
                        p,
                        m,
                        v,
                        g,
                        scale,
                        lr,
                        (T::of(cfg.beta1), T::of(cfg.beta2)),
                        T::of(cfg.eps),
                        T::of(wd),
                        (T::of(1.0 - cfg.beta1.powi(t)), T::of(1.0 - cfg.beta2.powi(t))),
                    )
                }
            }
            i += 1;
        });
    }

    /// Applies one update to every layer of `net` from `grads` (per layer, summed over `batch`).
    pub fn step(&mut self, net: &mut Net<T>, grads: &[Vec<Tensor<T>>], batch: usize) {
        for (i, (layer, g)) in net.layers.iter_mut().zip(grads).enumerate() {
            self.step_layer(i, layer.as_mut(), g, batch);
        }
    }

    /// Marks the end of a batch (advances the schedule).
    pub fn end_batch(&mut self) {
        self.batches_done += 1;
    }

    /// Visits the optimiser state tensors with stable names (for checkpoints).
    pub fn for_each_state(&self, f: &mut dyn FnMut(String, &Tensor<T>)) {
        for (l, params) in self.state.iter().enumerate() {
            for (p, (m, v)) in params.iter().enumerate() {
                f(format!("optim.layers.{l}.{p}.m"), m);
                f(format!("optim.layers.{l}.{p}.v"), v);
            }
        }
    }

    /// Visits the optimiser state tensors mutably, in the order of [`WeightOptim::for_each_state`].
    pub fn for_each_state_mut(&mut self, f: &mut dyn FnMut(String, &mut Tensor<T>)) {
        for (l, params) in self.state.iter_mut().enumerate() {
            for (p, (m, v)) in params.iter_mut().enumerate() {
                f(format!("optim.layers.{l}.{p}.m"), m);
                f(format!("optim.layers.{l}.{p}.v"), v);
            }
        }
    }

    /// Per-layer update counts (Adam's bias-correction step), for checkpoints.
    pub fn update_counts(&self) -> &[u64] {
        &self.updates
    }

    /// Restores per-layer update counts from a checkpoint.
    pub fn set_update_counts(&mut self, counts: &[u64]) {
        self.updates.iter_mut().zip(counts).for_each(|(a, &b)| *a = b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_cosine_hits_its_endpoints() {
        let s = Schedule { kind: ScheduleKind::WarmupCosine, ..Default::default() };
        assert!((s.factor_at(0, 100) - 0.1).abs() < 1e-12); // 1/10 of the way up
        assert!((s.factor_at(9, 100) - 1.0).abs() < 1e-12);
        assert!((s.factor_at(10, 100) - 1.0).abs() < 1e-12);
        assert!((s.factor_at(100, 100) - 0.1).abs() < 1e-12);
        let mid = s.factor_at(55, 100);
        assert!((mid - 0.55).abs() < 1e-12, "{mid}");
    }

    #[test]
    fn step_schedule_decays() {
        let s = Schedule { kind: ScheduleKind::Step, every: 10, factor: 0.5, ..Default::default() };
        assert_eq!(s.factor_at(9, 0), 1.0);
        assert_eq!(s.factor_at(10, 0), 0.5);
        assert_eq!(s.factor_at(25, 0), 0.25);
    }
}
