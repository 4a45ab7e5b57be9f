//! Parameter-free element-wise edges: the identity map (inserted when a graph is levelled,
//! Z-IL on DAGs) and an activation alone.

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

/// `mu = f(x_in)`, no parameters: the activation step of a parameter-free edge (a pooling
/// edge reads its source through the source's activation in `w_f`, applies the target's in
/// `f_w`).
#[derive(Clone, Debug)]
pub struct ActMap {
    /// Width of input and output.
    pub d: usize,
    /// The activation.
    pub act: super::Activation,
}

impl<T: Scalar> Layer<T> for ActMap {
    fn kind(&self) -> &'static str {
        "activation"
    }

    fn d_in(&self) -> usize {
        self.d
    }

    fn d_out(&self) -> usize {
        self.d
    }

    fn for_each_param(&self, _f: &mut dyn FnMut(&'static str, &Tensor<T>)) {}

    fn for_each_param_mut(&mut self, _f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {}

    fn alloc_ws(&self, batch: usize) -> LayerWs<T> {
        LayerWs {
            a: Tensor::zeros(batch, self.d),
            da: Tensor::zeros(batch, self.d),
            ..Default::default()
        }
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum) {
        Cpu.act_with_deriv(self.act, x_in, &mut ws.a, &mut ws.da);
        match accum {
            Accum::Replace => mu.copy_from(&ws.a),
            Accum::Add => Cpu.axpy(mu, T::one(), &ws.a),
        }
    }

    fn backward_prep(&self, _g: &Tensor<T>, _ws: &mut LayerWs<T>) {}

    fn vjp_input(&self, g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        Cpu.mul(dx, accum, g, &ws.da);
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
