//! Inference learning = prospective configuration (Song et al., Nature Neuroscience 2024).
//!
//! Per batch: clamp `x_0` to the input, initialise hidden nodes by a forward pass, clamp
//! `x_L` to the target (or nudge it), run `T` inference steps `x_l <- x_l - gamma dE/dx_l`,
//! then update the weights with the errors at the final nodes:
//! `dE/dW_l = -e_l f(x_{l-1})^T` (convention `w_f`).

use super::{shard_count, train_shards, Batch, BatchStats, Examples, ProductCounts, Rows, Rule};
use crate::error::Result;
use crate::infer::{InferenceConfig, InferenceStats, OutputMode};
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
    /// (summed over the batch; divided by `beta` when the output is nudged or weighted).
    ///
    /// # Errors
    /// [`crate::Error::NonFinite`] on divergence.
    pub fn gradients<T: Scalar>(
        &self,
        net: &Net<T>,
        ws: &mut Workspace<T>,
        index: usize,
    ) -> Result<InferenceStats> {
        let stats = self.relax(net, ws, index)?;
        self.scale_nudged(ws);
        Ok(stats)
    }

    /// Inference then the summed parameter gradients, unscaled.
    fn relax<T: Scalar>(
        &self,
        net: &Net<T>,
        ws: &mut Workspace<T>,
        index: usize,
    ) -> Result<InferenceStats> {
        let stats = net.infer(ws, &self.inference, index)?;
        net.param_grads(ws);
        Ok(stats)
    }

    /// The factor of the gradients when the output is nudged or weighted: `1 / beta`.
    fn nudge_scale<T: Scalar>(&self) -> Option<T> {
        match self.inference.output {
            OutputMode::Nudge { beta } | OutputMode::Weighted { beta } => Some(T::of(1.0 / beta)),
            OutputMode::Clamp => None,
        }
    }

    /// One training batch in either form: sharded when examples relax independently.
    fn train<T: Scalar>(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        ex: Examples<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        let cfg = &self.inference;
        // Examples relax independently unless a batch-wide energy decides gamma or stopping.
        let shards = if cfg.halve_on_rise || cfg.tol > 0.0 { 1 } else { shard_count(ex.len()) };
        let s = if shards > 1 {
            ws.load_shards_of(net, &ex, shards)?;
            train_shards(net, opt, ws, &ex, self.nudge_scale(), &|net, sh| {
                sh.last = self.relax(net, sh, ex.index())?;
                Ok(())
            })?
        } else {
            ws.load_examples(net, &ex)?;
            let s = self.relax(net, ws, ex.index())?;
            self.scale_nudged(ws);
            opt.step(net, &ws.grads, ex.len());
            s
        };
        ws.last = s;
        opt.end_batch();
        let loss = match self.inference.output {
            OutputMode::Clamp => s.initial_energy,
            OutputMode::Nudge { beta } | OutputMode::Weighted { beta } => s.initial_energy / beta,
        };
        Ok(BatchStats {
            examples: ex.len(),
            loss,
            energy: s.final_energy,
            steps: s.steps,
            correct: s.correct,
        })
    }

    fn scale_nudged<T: Scalar>(&self, ws: &mut Workspace<T>) {
        if let Some(s) = self.nudge_scale::<T>() {
            for g in ws.grads.iter_mut().flatten() {
                g.data_mut().iter_mut().for_each(|v| *v *= s);
            }
        }
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
        self.train(net, opt, Examples::Dense(batch), ws)
    }

    fn train_rows(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Rows<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        self.train(net, opt, Examples::Rows(batch), ws)
    }

    fn product_counts(&self, _net: &Net<T>) -> ProductCounts {
        // forward; T x (input VJPs + predictions above layer 1, which is clamped); grads once
        let t = self.inference.steps as u64;
        ProductCounts { forward_first: 1, forward_upper: 1 + t, vjp_upper: t, param_grads: 1 }
    }
}
