//! Weight optimisers and learning-rate schedules.
//!
//! Optimisers see only parameters and their gradients, never node states. Gradients arrive
//! summed over the batch; [`Reduction`] says whether they are averaged first.

use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::net::Net;
use crate::tensor::{ew_tasks, sum_parts, Backend, Cpu, Scalar, Tensor, Update};
use rayon::prelude::*;
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
    /// Scratch of [`WeightOptim::step_summed`]: one span per parameter, refreshed by every call.
    spans: Vec<Span<T>>,
}

/// Where task `t` of `tasks` starts on `len` elements (`len` for `t >= tasks`): near-equal
/// shares, cut on multiples of 16 elements.
fn share_start(len: usize, t: usize, tasks: usize) -> usize {
    if t >= tasks {
        len
    } else {
        (len * t / tasks) & !15
    }
}

/// Raw views of one parameter, its optimiser state and its gradient buffer, with the update
/// to apply; written and read only inside one [`WeightOptim::step_summed`] call.
#[derive(Clone, Copy, Debug)]
struct Span<T> {
    p: *mut T,
    m: *mut T,
    v: *mut T,
    g: *mut T,
    len: usize,
    layer: usize,
    param: usize,
    upd: Update<T>,
}

// SAFETY: a span's pointers are dereferenced only inside `step_summed`, which holds `&mut`
// borrows of everything they point to for the whole call, and its tasks touch disjoint ranges.
unsafe impl<T: Send> Send for Span<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Span<T> {}

impl<T: Scalar> WeightOptim<T> {
    /// An optimiser for `net`'s parameters.
    ///
    /// # Errors
    /// [`Error::Config`] if the settings are invalid.
    pub fn new(cfg: OptimConfig, net: &Net<T>) -> Result<Self> {
        cfg.validate()?;
        let stateful = cfg.kind != OptimKind::Sgd;
        let state: Vec<Vec<_>> = net
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
        let params = state.iter().map(Vec::len).sum::<usize>();
        Ok(Self {
            cfg,
            total_batches: 1,
            batches_done: 0,
            state,
            updates: vec![0; net.depth()],
            spans: Vec::with_capacity(params),
        })
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
        let upd = self.layer_update(index, batch);
        let state = &mut self.state[index];
        let mut i = 0;
        layer.for_each_param_mut(&mut |_, p| {
            let g = &grads[i];
            let (m, v) = &mut state[i];
            match upd {
                Update::Sgd { scale, lr } => Cpu.sgd_step(p, None, g, scale, lr, T::zero(), false),
                Update::Momentum { scale, lr, momentum, nesterov } => {
                    Cpu.sgd_step(p, Some(m), g, scale, lr, momentum, nesterov)
                }
                Update::Adam { scale, lr, b1, b2, eps, wd, bc1, bc2 } => {
                    Cpu.adam_step(p, m, v, g, scale, lr, (b1, b2), eps, wd, (bc1, bc2))
                }
            }
            i += 1;
        });
    }

    /// The update of layer `index` for this batch of `batch` examples (counts the update).
    fn layer_update(&mut self, index: usize, batch: usize) -> Update<T> {
        let scale = T::of(match self.cfg.reduction {
            Reduction::Mean => 1.0 / batch.max(1) as f64,
            Reduction::Sum => 1.0,
        });
        let lr = T::of(self.lr());
        self.updates[index] += 1;
        let t = self.updates[index] as i32;
        let cfg = &self.cfg;
        match cfg.kind {
            OptimKind::Sgd => Update::Sgd { scale, lr },
            OptimKind::Momentum => Update::Momentum {
                scale,
                lr,
                momentum: T::of(cfg.momentum),
                nesterov: cfg.nesterov,
            },
            OptimKind::Adam | OptimKind::Adamw => Update::Adam {
                scale,
                lr,
                b1: T::of(cfg.beta1),
                b2: T::of(cfg.beta2),
                eps: T::of(cfg.eps),
                wd: T::of(if cfg.kind == OptimKind::Adamw { cfg.weight_decay } else { 0.0 }),
                bc1: T::of(1.0 - cfg.beta1.powi(t)),
                bc2: T::of(1.0 - cfg.beta2.powi(t)),
            },
        }
    }

    /// Applies one update to every layer of `net` from the sum of `parts` gradient sets
    /// (`part(k, layer, param)`: part `k`'s gradient, e.g. one per batch shard; `batch`
    /// examples in all), times `grad_scale` when given, and leaves that sum in `grads`.
    /// The same bits as summing into `grads`, scaling, then [`WeightOptim::step`], in one
    /// pass over every parameter on all threads (one fork-join for the whole network).
    ///
    /// # Panics
    /// If `parts` is 0 or a gradient's length differs from its parameter's.
    pub fn step_summed<'a>(
        &mut self,
        net: &mut Net<T>,
        grads: &mut [Vec<Tensor<T>>],
        parts: usize,
        part: impl Fn(usize, usize, usize) -> &'a Tensor<T> + Sync,
        grad_scale: Option<T>,
        batch: usize,
    ) {
        assert!(parts >= 1, "step_summed needs at least one gradient set");
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        for (l, layer) in net.layers.iter_mut().enumerate() {
            let upd = self.layer_update(l, batch);
            let (first, second) = upd.state();
            let (state, g) = (&mut self.state[l], &mut grads[l]);
            let mut i = 0;
            layer.for_each_param_mut(&mut |_, p| {
                let (m, v) = &mut state[i];
                let gi = &mut g[i];
                let len = p.len();
                assert_eq!(gi.len(), len, "gradient {i} of layer {l}");
                assert!(!first || m.len() == len, "optimiser state of layer {l}");
                assert!(!second || v.len() == len, "optimiser state of layer {l}");
                spans.push(Span {
                    p: p.data_mut().as_mut_ptr(),
                    m: m.data_mut().as_mut_ptr(),
                    v: v.data_mut().as_mut_ptr(),
                    g: gi.data_mut().as_mut_ptr(),
                    len,
                    layer: l,
                    param: i,
                    upd,
                });
                i += 1;
            });
        }
        let tasks = ew_tasks(spans.iter().map(|s| s.len).sum());
        let run = |t: usize| {
            for s in &spans {
                let (lo, hi) = (share_start(s.len, t, tasks), share_start(s.len, t + 1, tasks));
                if lo >= hi {
                    continue;
                }
                let n = hi - lo;
                let (first, second) = s.upd.state();
                // SAFETY: the pointers come from `&mut` borrows held for this whole call (the
                // parameters through `net`, the state through `self`, the gradients through
                // `grads`), each `[lo, hi)` lies inside its tensor (lengths checked above),
                // the tasks' ranges are disjoint, and unused state is an empty slice.
                let (p, m, v, g) = unsafe {
                    let state = |ptr: *mut T, used: bool| -> &mut [T] {
                        if used {
                            std::slice::from_raw_parts_mut(ptr.add(lo), n)
                        } else {
                            &mut []
                        }
                    };
                    (
                        std::slice::from_raw_parts_mut(s.p.add(lo), n),
                        state(s.m, first),
                        state(s.v, second),
                        std::slice::from_raw_parts_mut(s.g.add(lo), n),
                    )
                };
                crate::tensor::simd::run(|| {
                    sum_parts(g, parts, |k| &part(k, s.layer, s.param).data()[lo..hi], grad_scale);
                    s.upd.apply(p, m, v, g);
                });
            }
        };
        if tasks == 1 {
            run(0);
        } else {
            (0..tasks).into_par_iter().for_each(run);
        }
        self.spans = spans;
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

    /// Per layer, per parameter: a tensor of each parameter's shape from `f(index)`.
    fn like_params(net: &Net<f32>, mut f: impl FnMut(usize) -> f32) -> Vec<Vec<Tensor<f32>>> {
        let mut k = 0;
        net.layers
            .iter()
            .map(|l| {
                let mut v = Vec::new();
                l.for_each_param(&mut |_, p| {
                    v.push(Tensor::from_fn(p.rows(), p.cols(), |_, _| {
                        k += 1;
                        f(k)
                    }))
                });
                v
            })
            .collect()
    }

    fn bits(net: &Net<f32>, opt: &WeightOptim<f32>) -> Vec<u32> {
        let mut out = Vec::new();
        for l in &net.layers {
            l.for_each_param(&mut |_, p| out.extend(p.data().iter().map(|v| v.to_bits())));
        }
        opt.for_each_state(&mut |_, t| out.extend(t.data().iter().map(|v| v.to_bits())));
        out
    }

    /// The fused step is, bit for bit, summing the parts in order, scaling, then `step`: for
    /// every optimiser, 1-3 parts, with and without a scale, on a net small enough for one
    /// task and one whose 35,000-element weight is split across threads (lengths that are
    /// not multiples of the 16-element cut), over three steps (moments and bias corrections).
    #[test]
    fn a_summed_step_is_the_sum_then_the_step_bit_for_bit() {
        use crate::layers::Activation;
        use crate::layers::Convention;
        use crate::net::MlpSpec;
        crate::tensor::set_threads(2);
        let kinds = [
            OptimConfig { kind: OptimKind::Sgd, lr: 0.1, ..Default::default() },
            OptimConfig {
                kind: OptimKind::Momentum,
                lr: 0.05,
                momentum: 0.9,
                ..Default::default()
            },
            OptimConfig {
                kind: OptimKind::Momentum,
                lr: 0.05,
                momentum: 0.8,
                nesterov: true,
                ..Default::default()
            },
            OptimConfig { kind: OptimKind::Adam, lr: 0.01, ..Default::default() },
            OptimConfig {
                kind: OptimKind::Adamw,
                lr: 0.01,
                weight_decay: 0.1,
                ..Default::default()
            },
        ];
        for sizes in [&[3usize, 5, 2][..], &[700, 50, 3]] {
            let spec = MlpSpec::new(sizes, Activation::Tanh, Convention::Fw);
            let params = Net::<f32>::mlp(&spec, 7).unwrap().num_params();
            let tasks = crate::tensor::ew_tasks(params);
            if sizes[0] == 700 && rayon::current_num_threads() >= 2 {
                assert_eq!(tasks, 2, "the large net must take the parallel path");
            } else if sizes[0] == 3 {
                assert_eq!(tasks, 1);
            }
            for cfg in &kinds {
                for parts in 1..=3 {
                    for scale in [None, Some(0.5f32)] {
                        let mut a = Net::<f32>::mlp(&spec, 7).unwrap();
                        let mut b = Net::<f32>::mlp(&spec, 7).unwrap();
                        let mut oa = WeightOptim::new(cfg.clone(), &a).unwrap();
                        let mut ob = WeightOptim::new(cfg.clone(), &b).unwrap();
                        let mut grads = like_params(&b, |_| f32::NAN);
                        for step in 0..3 {
                            let part: Vec<_> = (0..parts)
                                .map(|k| {
                                    like_params(&a, |i| {
                                        let x = (i * 7919 + k * 104_729 + step * 31) % 1000;
                                        (x as f32 / 500.0 - 1.0) * (1.0 + k as f32)
                                    })
                                })
                                .collect();
                            // reference: sum in part order, scale, then the plain step
                            let mut want = part[0].clone();
                            for (l, layer) in want.iter_mut().enumerate() {
                                for (p, g) in layer.iter_mut().enumerate() {
                                    for pk in &part[1..] {
                                        let src = pk[l][p].data();
                                        g.data_mut()
                                            .iter_mut()
                                            .zip(src)
                                            .for_each(|(o, &v)| *o += v);
                                    }
                                    if let Some(s) = scale {
                                        g.data_mut().iter_mut().for_each(|o| *o *= s);
                                    }
                                }
                            }
                            oa.step(&mut a, &want, 64);
                            ob.step_summed(
                                &mut b,
                                &mut grads,
                                parts,
                                |k, l, p| &part[k][l][p],
                                scale,
                                64,
                            );
                            let ctx = format!(
                                "{sizes:?} {:?} parts {parts} scale {scale:?} step {step}",
                                cfg.kind
                            );
                            for (gw, gb) in want.iter().flatten().zip(grads.iter().flatten()) {
                                let same = gw
                                    .data()
                                    .iter()
                                    .zip(gb.data())
                                    .all(|(x, y)| x.to_bits() == y.to_bits());
                                assert!(same, "{ctx}: the summed gradient left in grads");
                            }
                            assert!(
                                bits(&a, &oa) == bits(&b, &ob),
                                "{ctx}: parameters or state differ"
                            );
                            assert_eq!(oa.update_counts(), ob.update_counts(), "{ctx}");
                        }
                    }
                }
            }
        }
    }

    /// The tasks' shares cover every element once, start on multiples of 16 and differ from
    /// an equal split by less than 16 elements.
    #[test]
    fn the_tasks_shares_partition_a_tensor_evenly() {
        for len in [0, 1, 15, 16, 17, 100, 35_000, 100_352] {
            for tasks in 1..=4 {
                let starts: Vec<usize> = (0..=tasks).map(|t| share_start(len, t, tasks)).collect();
                assert_eq!((starts[0], starts[tasks]), (0, len), "{len} / {tasks}");
                for t in 0..tasks {
                    let (lo, hi) = (starts[t], starts[t + 1]);
                    assert!(lo <= hi && lo % 16 == 0, "{len} / {tasks}: share {t} = {lo}..{hi}");
                    let even = len as f64 / tasks as f64;
                    assert!(
                        ((hi - lo) as f64 - even).abs() < 16.0,
                        "{len} / {tasks}: share {t} = {lo}..{hi}"
                    );
                }
            }
        }
    }

    #[test]
    fn step_schedule_decays() {
        let s = Schedule { kind: ScheduleKind::Step, every: 10, factor: 0.5, ..Default::default() };
        assert_eq!(s.factor_at(9, 0), 1.0);
        assert_eq!(s.factor_at(10, 0), 0.5);
        assert_eq!(s.factor_at(25, 0), 0.25);
    }
}
