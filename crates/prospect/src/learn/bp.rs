//! Backpropagation: the baseline every PC rule is compared against.
//!
//! Forward pass `x_l = layer_l(x_{l-1})`, loss `L = E_L(target, x_L)`, then
//! `dL/dx_{l-1} = VJP_l(dL/dx_l)` from the output down, and the same layer-local
//! parameter gradients as PC, evaluated with these backpropagated errors.

use super::{
    check_finite, combine, par_shards, shard_count, Batch, BatchStats, ProductCounts, Rule,
};
use crate::error::Result;
use crate::infer::InferenceStats;
use crate::net::{count_correct, Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::{Accum, Scalar};

/// Backpropagation through the feed-forward network.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bp;

impl Bp {
    /// Computes the summed loss gradients into `ws.grads` for the batch loaded in `ws`;
    /// returns the summed loss.
    pub fn gradients<T: Scalar>(net: &Net<T>, ws: &mut Workspace<T>) -> f64 {
        let l_max = net.depth();
        net.forward(ws, true);
        let loss = net.energies[l_max - 1].eval(&ws.target, &ws.mu[l_max], &mut ws.g[l_max], None);
        ws.layer_energy.iter_mut().for_each(|e| *e = 0.0);
        ws.layer_energy[l_max] = loss;
        for l in (1..=l_max).rev() {
            let layer = &net.layers[l - 1];
            let (lo, hi) = ws.g.split_at_mut(l);
            let g = &hi[0];
            layer.backward_prep(g, &mut ws.layer_ws[l - 1]);
            layer.param_grads(
                g,
                &ws.x[l - 1],
                &ws.layer_ws[l - 1],
                &mut ws.grads[l - 1],
                Accum::Replace,
            );
            if l > 1 {
                layer.vjp_input(g, &mut ws.layer_ws[l - 1], &mut lo[l - 1], Accum::Replace);
            }
        }
        loss
    }
}

impl<T: Scalar> Rule<T> for Bp {
    fn name(&self) -> &'static str {
        "bp"
    }

    fn train_batch(
        &mut self,
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        batch: Batch<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        let shards = shard_count(batch.x.rows());
        let (loss, correct) = if shards > 1 {
            ws.load_shards(net, batch.x, batch.y, shards)?;
            let net_ref: &Net<T> = net;
            par_shards(&mut ws.shards, &|sh| {
                let loss = Self::gradients(net_ref, sh);
                let correct = count_correct(&sh.mu[net_ref.depth()], &sh.target);
                sh.last = InferenceStats { initial_energy: loss, correct, ..Default::default() };
                check_finite(net_ref, sh, loss, batch.index, 0)
            })?;
            ws.reduce_shard_grads();
            let s = combine(ws.shards.iter().map(|sh| sh.last));
            (s.initial_energy, s.correct)
        } else {
            ws.load(net, batch.x, batch.y)?;
            let loss = Self::gradients(net, ws);
            check_finite(net, ws, loss, batch.index, 0)?;
            (loss, count_correct(&ws.mu[net.depth()], &ws.target))
        };
        opt.step(net, &ws.grads, batch.x.rows());
        opt.end_batch();
        Ok(BatchStats { examples: batch.x.rows(), loss, energy: loss, steps: 0, correct })
    }

    fn product_counts(&self, _net: &Net<T>) -> ProductCounts {
        ProductCounts { forward_first: 1, forward_upper: 1, vjp_upper: 1, param_grads: 1 }
    }
}
