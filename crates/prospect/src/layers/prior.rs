//! A learned prior mean: the prediction of a node without in-edges (an edge with no source).

use super::{Layer, LayerWs};
use crate::tensor::{Accum, Backend, Cpu, Scalar, Tensor};

/// `mu = m` for every example, with `m: [1, d]` learned; its input has zero width.
#[derive(Clone, Debug)]
pub struct PriorMean<T: Scalar> {
    /// The mean `[1, d]` (checkpoint name `bias`).
    pub mean: Tensor<T>,
}

impl<T: Scalar> PriorMean<T> {
    /// A zero mean of width `d`.
    pub fn new(d: usize) -> Self {
        Self { mean: Tensor::zeros(1, d) }
    }
}

impl<T: Scalar> Layer<T> for PriorMean<T> {
    fn kind(&self) -> &'static str {
        "prior"
    }

    fn d_in(&self) -> usize {
        0
    }

    fn d_out(&self) -> usize {
        self.mean.cols()
    }

    fn for_each_param(&self, f: &mut dyn FnMut(&'static str, &Tensor<T>)) {
        f("bias", &self.mean);
    }

    fn for_each_param_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {
        f("bias", &mut self.mean);
    }

    fn alloc_ws(&self, _batch: usize) -> LayerWs<T> {
        LayerWs::default()
    }

    fn forward(&self, _x_in: &Tensor<T>, mu: &mut Tensor<T>, _ws: &mut LayerWs<T>, accum: Accum) {
        match accum {
            Accum::Replace => Cpu.broadcast_rows(mu, &self.mean),
            Accum::Add => Cpu.add_rows(mu, &self.mean),
        }
    }

    fn backward_prep(&self, _g: &Tensor<T>, _ws: &mut LayerWs<T>) {}

    fn vjp_input(&self, _g: &Tensor<T>, _ws: &mut LayerWs<T>, _dx: &mut Tensor<T>, _a: Accum) {}

    fn param_grads(
        &self,
        g: &Tensor<T>,
        _x_in: &Tensor<T>,
        _ws: &LayerWs<T>,
        grads: &mut [Tensor<T>],
        accum: Accum,
    ) {
        Cpu.col_sums(&mut grads[0], accum, g, T::one());
    }

    fn macs_per_example(&self) -> u64 {
        0
    }

    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}
