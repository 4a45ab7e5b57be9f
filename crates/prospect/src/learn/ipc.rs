//! Incremental predictive coding (Salvatori, Song et al., ICLR 2024).
//!
//! Same energy as PC, but at every inference step the weights are updated together with
//! the nodes from the same errors (incremental EM): no phase switch, no wait for equilibrium.

use super::{check_finite, Batch, BatchStats, ProductCounts, Rule};
use crate::error::Result;
use crate::infer::{InferenceConfig, OutputMode};
use crate::net::{count_correct, Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::Scalar;

/// Incremental PC: nodes and weights step together, `T` times per batch.
#[derive(Clone, Debug, Default)]
pub struct Ipc {
    /// Inference settings (`steps`, `gamma`, node optimiser, output mode).
    pub inference: InferenceConfig,
}

impl<T: Scalar> Rule<T> for Ipc {
    fn name(&self) -> &'static str {
        "ipc"
    }

    fn train_batch(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Batch<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        ws.load(net, batch.x, batch.y)?;
        let cfg = &self.inference;
        net.forward(ws, !matches!(cfg.output, OutputMode::Nudge { .. }));
        for v in &mut ws.vel {
            v.fill(T::zero());
        }
        let mut stats = BatchStats { examples: ws.batch, ..Default::default() };
        stats.correct = count_correct(&ws.mu[net.output()], &ws.target);
        for t in 0..cfg.steps.max(1) {
            if t > 0 {
                net.predict_from(ws, 1); // every weight changed at the last step
            }
            let e = net.energy_grads(ws, cfg.output, true);
            check_finite(net, ws, e, batch.index, t)?;
            if t == 0 {
                stats.loss = match cfg.output {
                    OutputMode::Clamp => e,
                    OutputMode::Nudge { beta } | OutputMode::Weighted { beta } => e / beta,
                };
            }
            stats.energy = e;
            net.param_grads(ws);
            opt.step(net, &ws.grads, ws.batch);
            net.step_nodes(ws, cfg, cfg.output, cfg.gamma);
            stats.steps += 1;
        }
        opt.end_batch();
        Ok(stats)
    }

    fn product_counts(&self, _net: &Net<T>) -> ProductCounts {
        // weights change at every step, so every prediction is recomputed
        let t = self.inference.steps.max(1) as u64;
        ProductCounts { forward_first: t, forward_upper: t, vjp_upper: t, param_grads: t }
    }
}
