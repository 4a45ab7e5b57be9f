//! The identity map: the edge into a node inserted when a graph is levelled (Z-IL on DAGs).

use super::{Layer, LayerWs};
use crate::tensor::{Accum, Backend, Cpu, Scalar, Tensor};

/// `mu = x_in`, no parameters.
#[derive(Clone, Debug)]
pub struct IdentityMap {
    /// Width of input and output.
    pub d: usize,
}

impl<T: Scalar> Layer<T> for IdentityMap {
    fn kind(&self) -> &'static str {
        "identity"
    }

    fn d_in(&self) -> usize {
        self.d
    }

    fn d_out(&self) -> usize {
        self.d
    }

    fn for_each_param(&self, _f: &mut dyn FnMut(&'static str, &Tensor<T>)) {}

    fn for_each_param_mut(&mut self, _f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {}

    fn alloc_ws(&self, _batch: usize) -> LayerWs<T> {
        LayerWs::default()
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, _ws: &mut LayerWs<T>, accum: Accum) {
        match accum {
            Accum::Replace => mu.copy_from(x_in),
            Accum::Add => Cpu.axpy(mu, T::one(), x_in),
        }
    }

    fn backward_prep(&self, _g: &Tensor<T>, _ws: &mut LayerWs<T>) {}

    fn vjp_input(&self, g: &Tensor<T>, _ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        match accum {
            Accum::Replace => dx.copy_from(g),
            Accum::Add => Cpu.axpy(dx, T::one(), g),
        }
    }

    fn param_grads(
        &self,
        _g: &Tensor<T>,
        _x_in: &Tensor<T>,
        _ws: &LayerWs<T>,
        _grads: &mut [Tensor<T>],
        _accum: Accum,
    ) {
    }

    fn macs_per_example(&self) -> u64 {
        0
    }

    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}
