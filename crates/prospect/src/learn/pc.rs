//! Inference learning = prospective configuration (Song et al., Nature Neuroscience 2024).
//!
//! Per batch: clamp `x_0` to the input, initialise hidden nodes by a forward pass, clamp
//! `x_L` to the target (or nudge it), run `T` inference steps `x_l <- x_l - gamma dE/dx_l`,
//! then update the weights with the errors at the final nodes:
//! `dE/dW_l = -e_l f(x_{l-1})^T` (convention `w_f`).

use super::{macs, Batch, BatchStats, Rule};
use crate::error::Result;
use crate::infer::{InferenceConfig, OutputMode};
use crate::net::{Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::Scalar;

/// Prospective configuration: relax the nodes, then update the weights.
#[derive(Clone, Debug, Default)]
pub struct Pc {
    /// Inference settings.
    pub inference: InferenceConfig,
}

impl Pc {
    /// Runs inference on the batch in `ws` and writes the weight gradients into `ws.grads`
    /// (summed over the batch; divided by `beta` when the output is nudged).
    ///
    /// # Errors
    /// [`crate::Error::NonFinite`] on divergence.
    pub fn gradients<T: Scalar>(
        &self,
        net: &Net<T>,
        ws: &mut Workspace<T>,
        index: usize,
    ) -> Result<crate::infer::InferenceStats> {
        let stats = net.infer(ws, &self.inference, index)?;
        for l in 1..=net.depth() {
            net.layer_param_grads(ws, l);
        }
        if let OutputMode::Nudge { beta } = self.inference.output {
            let s = T::of(1.0 / beta);
            for g in ws.grads.iter_mut().flatten() {
                g.data_mut().iter_mut().for_each(|v| *v *= s);
            }
        }
        Ok(stats)
    }
}

impl<T: Scalar> Rule<T> for Pc {
    fn name(&self) -> &'static str {
        "pc"
    }

    fn train_batch(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Batch<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        ws.load(net, batch.x, batch.y)?;
        let s = self.gradients(net, ws, batch.index)?;
        opt.step(net, &ws.grads, ws.batch);
        opt.end_batch();
        let loss = match self.inference.output {
            OutputMode::Clamp => s.initial_energy,
            OutputMode::Nudge { beta } => s.initial_energy / beta,
        };
        Ok(BatchStats {
            examples: ws.batch,
            loss,
            energy: s.final_energy,
            steps: s.steps,
            correct: s.correct,
        })
    }

    fn flops_per_example(&self, net: &Net<T>) -> u64 {
        let (all, upper) = macs(net);
        let t = self.inference.steps as u64;
        // forward; T x (predictions above layer 1 + input VJPs above layer 1); parameter grads
        2 * (2 * all + 2 * t * upper)
    }
}
