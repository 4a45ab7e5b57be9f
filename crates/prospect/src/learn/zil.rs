//! Z-IL: exact backprop inside a PC network (Song et al., NeurIPS 2020).
//!
//! With (1) forward-pass initialisation (zero hidden errors), (2) `gamma = 1`, and (3) the
//! weights of the layer at distance `k` from the output updated only at inference step
//! `t = k`, the PC weight updates equal backprop's exactly. Each condition is a field of
//! [`ZilConfig`] so that breaking it can be demonstrated.

use super::{check_finite, Batch, BatchStats, ProductCounts, Rule};
use crate::error::Result;
use crate::infer::{InferenceConfig, OutputMode};
use crate::net::{count_correct, Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::Scalar;

/// How hidden nodes start a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodeInit {
    /// Forward pass: all hidden errors start at zero (condition 1).
    #[default]
    Forward,
    /// All hidden nodes start at zero (breaks condition 1).
    Zero,
}

/// When each layer's weights are updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ZilSchedule {
    /// Layer at distance `k` from the output at step `t = k` (condition 3).
    #[default]
    Staggered,
    /// All layers after the last step, as in plain PC (breaks condition 3).
    AllAtEnd,
}

/// Z-IL settings; the defaults satisfy all three conditions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZilConfig {
    /// Node initialisation.
    pub init: NodeInit,
    /// Node learning rate (1 for exactness).
    pub gamma: f64,
    /// Weight-update timing.
    pub schedule: ZilSchedule,
}

impl Default for ZilConfig {
    fn default() -> Self {
        Self { init: NodeInit::Forward, gamma: 1.0, schedule: ZilSchedule::Staggered }
    }
}

/// Z-IL learning rule: `L` inference steps per batch, one layer's weights per step.
#[derive(Clone, Copy, Debug, Default)]
pub struct Zil {
    /// Settings.
    pub cfg: ZilConfig,
}

impl<T: Scalar> Rule<T> for Zil {
    fn name(&self) -> &'static str {
        "zil"
    }

    fn train_batch(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Batch<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        if !net.topo.is_chain() {
            return Err(crate::Error::config(
                "algo",
                "zil runs on layered chains; on other graphs it needs levelling, not built yet",
            ));
        }
        ws.load(net, batch.x, batch.y)?;
        let l_max = net.depth();
        // plain SGD on the nodes; the rate, `self.cfg.gamma`, is passed to each step
        let node_cfg = InferenceConfig::default();
        net.forward(ws, true);
        let correct = count_correct(&ws.mu[l_max], &ws.target);
        if self.cfg.init == NodeInit::Zero {
            for x in &mut ws.x[1..l_max] {
                x.fill(T::zero());
            }
        }
        let mut stats = BatchStats { examples: ws.batch, correct, ..Default::default() };
        for t in 0..l_max {
            if t > 0 || self.cfg.init == NodeInit::Zero {
                net.predict_from(ws, 2);
            }
            let e = net.energy_grads(ws, OutputMode::Clamp, true);
            check_finite(net, ws, e, batch.index, t)?;
            if t == 0 {
                stats.loss = e;
            }
            stats.energy = e;
            if self.cfg.schedule == ZilSchedule::Staggered {
                let l = l_max - t;
                net.layer_param_grads(ws, l);
                opt.step_layer(l - 1, net.layers[l - 1].as_mut(), &ws.grads[l - 1], ws.batch);
            }
            net.step_nodes(ws, &node_cfg, OutputMode::Clamp, self.cfg.gamma);
            stats.steps += 1;
        }
        if self.cfg.schedule == ZilSchedule::AllAtEnd {
            net.predict_from(ws, 2);
            let e = net.energy_grads(ws, OutputMode::Clamp, false);
            check_finite(net, ws, e, batch.index, l_max)?;
            stats.energy = e;
            for l in 1..=l_max {
                net.layer_param_grads(ws, l);
            }
            opt.step(net, &ws.grads, ws.batch);
        }
        opt.end_batch();
        Ok(stats)
    }

    fn product_counts(&self, net: &Net<T>) -> ProductCounts {
        // L steps; one layer's parameter gradients per step
        let l = net.depth() as u64;
        ProductCounts { forward_first: 1, forward_upper: l, vjp_upper: l, param_grads: 1 }
    }
}
