//! Z-IL: exact backprop inside a PC network (Song et al., NeurIPS 2020).
//!
//! With (1) forward-pass initialisation (zero hidden errors), (2) `gamma = 1`, and (3) the
//! weights of the layer at distance `k` from the output updated only at inference step
//! `t = k`, the PC weight updates equal backprop's exactly. Each condition is a field of
//! [`ZilConfig`] so that breaking it can be demonstrated.

use super::{check_finite, Batch, BatchStats, ProductCounts, Rule};
use crate::error::Result;
use crate::graph::Role;
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

impl Zil {
    /// Checks that Z-IL applies to `net`: a levelled DAG (a chain is one) whose output feeds
    /// nothing.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming what is wrong.
    pub fn check<T: Scalar>(net: &Net<T>) -> Result<()> {
        super::Bp::check(net)?;
        if !net.topo.is_levelled() {
            return Err(crate::Error::config(
                "model.level",
                "zil needs a levelled graph (every path to the output of the same length): \
                 set model.level = true",
            ));
        }
        Ok(())
    }
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
        Self::check(net)?;
        ws.load(net, batch.x, batch.y)?;
        let out = net.output();
        // Steps: the input's level, L in a chain.
        let levels = &net.topo.level;
        let l_max = levels[net.input()].unwrap_or(0);
        // plain SGD on the nodes; the rate, `self.cfg.gamma`, is passed to each step
        let node_cfg = InferenceConfig::default();
        net.forward(ws, true);
        let correct = count_correct(&ws.mu[out], &ws.target);
        if self.cfg.init == NodeInit::Zero {
            for (x, role) in ws.x.iter_mut().zip(&ws.roles) {
                if *role == Role::Free {
                    x.fill(T::zero());
                }
            }
        }
        let mut stats = BatchStats { examples: ws.batch, correct, ..Default::default() };
        for t in 0..l_max {
            if t > 0 || self.cfg.init == NodeInit::Zero {
                net.repredict(ws, false);
            }
            let e = net.energy_grads(ws, OutputMode::Clamp, true);
            check_finite(net, ws, e, batch.index, t)?;
            if t == 0 {
                stats.loss = e;
            }
            stats.energy = e;
            if self.cfg.schedule == ZilSchedule::Staggered {
                // The edges into the nodes at distance t from the output.
                for (k, edge) in net.topo.edges.iter().enumerate() {
                    if levels[edge.dst] == Some(t) {
                        net.edge_param_grads(ws, k);
                        opt.step_layer(k, net.layers[k].as_mut(), &ws.grads[k], ws.batch);
                    }
                }
            }
            net.step_nodes(ws, &node_cfg, OutputMode::Clamp, self.cfg.gamma);
            stats.steps += 1;
        }
        if self.cfg.schedule == ZilSchedule::AllAtEnd {
            net.repredict(ws, false);
            let e = net.energy_grads(ws, OutputMode::Clamp, false);
            check_finite(net, ws, e, batch.index, l_max)?;
            stats.energy = e;
            net.param_grads(ws);
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
