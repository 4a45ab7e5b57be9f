//! Backpropagation: the baseline every PC rule is compared against.
//!
//! Forward pass `x_l = layer_l(x_{l-1})`, loss `L = E_L(target, x_L)`, then
//! `dL/dx_{l-1} = VJP_l(dL/dx_l)` from the output down, and the same layer-local
//! parameter gradients as PC, evaluated with these backpropagated errors.

use super::{
    check_finite, shard_count, train_shards, Batch, BatchStats, Examples, ProductCounts, Rule,
};
use crate::error::{Error, Result};
use crate::infer::{edge_g, InferenceStats};
use crate::net::{count_correct, Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::{Accum, Backend, Cpu, Scalar};

/// Backpropagation through the feed-forward network.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bp;

impl Bp {
    /// Computes the summed loss gradients into `ws.grads` for the batch loaded in `ws`;
    /// returns the summed loss. Any DAG: the forward pass in topological order, then each
    /// node's `dL/dx` (in `ws.g`) summed over its out-edges' VJPs in reverse order.
    pub fn gradients<T: Scalar>(net: &Net<T>, ws: &mut Workspace<T>) -> f64 {
        let out = net.output();
        net.forward(ws, true);
        let loss = net.output_energy().eval(&ws.target, &ws.mu[out], &mut ws.g[out], None);
        ws.layer_energy.iter_mut().for_each(|e| *e = 0.0);
        ws.layer_energy[out] = loss;
        ws.touched.iter_mut().for_each(|t| *t = false);
        ws.touched[out] = true;
        for &i in net.topo.order.iter().rev() {
            let ins = &net.topo.in_edges[i];
            if ins.is_empty() {
                continue;
            }
            if !ws.touched[i] {
                // No path to the output: no gradient.
                for &e in ins {
                    ws.grads[e].iter_mut().for_each(|g| g.fill(T::zero()));
                }
                continue;
            }
            if net.topo.nodes[i].act.is_some() {
                Cpu.mul(&mut ws.ndelta[i], Accum::Replace, &ws.g[i], &ws.nda[i]);
            }
            for &e in ins {
                let src = net.topo.edges[e].src;
                let layer = &net.layers[e];
                let x_in = src.map_or(&ws.empty, |s| &ws.x[s]);
                let (g, g_src) = match src {
                    Some(s) if ws.roles[s].moves() => {
                        let (g, g_src) = if net.topo.nodes[i].act.is_some() {
                            (&ws.ndelta[i], &mut ws.g[s])
                        } else {
                            pair(&mut ws.g, i, s)
                        };
                        (g, Some((s, g_src)))
                    }
                    _ => (edge_g(net, &ws.g, &ws.ndelta, i), None),
                };
                layer.backward_prep(g, &mut ws.layer_ws[e]);
                layer.param_grads(g, x_in, &ws.layer_ws[e], &mut ws.grads[e], Accum::Replace);
                if let Some((s, g_src)) = g_src {
                    let accum = if ws.touched[s] { Accum::Add } else { Accum::Replace };
                    layer.vjp_input(g, &mut ws.layer_ws[e], g_src, accum);
                    ws.touched[s] = true;
                }
            }
        }
        loss
    }

    /// One training batch in either form, sharded over the threads.
    fn train<T: Scalar>(
        net: &mut Net<T>,
        opt: &mut WeightOptim<T>,
        ex: Examples<'_, T>,
        ws: &mut Workspace<T>,
    ) -> Result<BatchStats> {
        Self::check(net)?;
        let shards = shard_count(ex.len());
        let (loss, correct) = if shards > 1 {
            ws.load_shards_of(net, &ex, shards)?;
            let s = train_shards(net, opt, ws, &ex, None, &|net, sh| {
                let loss = Self::gradients(net, sh);
                let correct = count_correct(&sh.mu[net.output()], &sh.target);
                sh.last = InferenceStats { initial_energy: loss, correct, ..Default::default() };
                check_finite(net, sh, loss, ex.index(), 0)
            })?;
            (s.initial_energy, s.correct)
        } else {
            ws.load_examples(net, &ex)?;
            let loss = Self::gradients(net, ws);
            check_finite(net, ws, loss, ex.index(), 0)?;
            opt.step(net, &ws.grads, ex.len());
            (loss, count_correct(&ws.mu[net.output()], &ws.target))
        };
        opt.end_batch();
        Ok(BatchStats { examples: ex.len(), loss, energy: loss, steps: 0, correct })
    }

    /// Checks that backprop applies to `net`: a DAG whose output feeds nothing.
    ///
    /// # Errors
    /// [`Error::Config`] naming what is wrong.
    pub fn check<T: Scalar>(net: &Net<T>) -> Result<()> {
        if !net.topo.is_dag() {
            return Err(Error::config(
                "algo",
                "bp needs an acyclic graph (model.edges has a cycle); use pc or ipc",
            ));
        }
        if !net.topo.out_edges[net.output()].is_empty() {
            return Err(Error::config("model.output", "bp needs an output node without out-edges"));
        }
        Ok(())
    }
}

/// `(&v[i], &mut v[j])` for `i != j`.
fn pair<U>(v: &mut [U], i: usize, j: usize) -> (&U, &mut U) {
    assert_ne!(i, j, "a DAG has no self-edge");
    if i < j {
        let (lo, hi) = v.split_at_mut(j);
        (&lo[i], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(i);
        (&hi[0], &mut lo[j])
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
        Self::train(net, opt, Examples::Dense(batch), ws)
    }

    fn product_counts(&self, _net: &Net<T>) -> ProductCounts {
        ProductCounts { forward_first: 1, forward_upper: 1, vjp_upper: 1, param_grads: 1 }
    }
}
