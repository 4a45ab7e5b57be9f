//! Fully connected layer in either prediction convention.

use super::{Activation, Init, Layer, LayerWs};
use crate::tensor::{Accum, Backend, Cpu, Par, Scalar, Tensor, Trans};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Where the activation sits in a layer's prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Convention {
    /// `mu = W f(x_in) + b` (Song et al., Nature Neuroscience code; Whittington & Bogacz).
    #[serde(rename = "w_f")]
    #[default]
    Wf,
    /// `mu = f(W x_in + b)` (PCX).
    #[serde(rename = "f_w")]
    Fw,
}

/// Dense layer: weight `[d_out, d_in]`, optional bias `[1, d_out]`, an activation and a convention.
#[derive(Clone, Debug)]
pub struct Dense<T: Scalar> {
    /// Weight matrix `[d_out, d_in]`.
    pub weight: Tensor<T>,
    /// Bias `[1, d_out]`, if any.
    pub bias: Option<Tensor<T>>,
    /// The activation `f`.
    pub act: Activation,
    /// Where `f` is applied.
    pub conv: Convention,
    /// Keep the diagonal of the weight at zero (a recurrent edge from a node to itself).
    pub zero_diag: bool,
}

impl<T: Scalar> Dense<T> {
    /// A layer with weights from `init` and zero bias (when `bias`).
    pub fn new<R: Rng + ?Sized>(
        d_in: usize,
        d_out: usize,
        act: Activation,
        conv: Convention,
        bias: bool,
        init: Init,
        rng: &mut R,
    ) -> Self {
        Self {
            weight: init.sample(d_out, d_in, rng),
            bias: bias.then(|| Tensor::zeros(1, d_out)),
            act,
            conv,
            zero_diag: false,
        }
    }

    /// This layer with its weight's diagonal zeroed and kept at zero (a self-edge).
    pub fn with_zero_diag(mut self) -> Self {
        let n = self.weight.rows().min(self.weight.cols());
        for i in 0..n {
            self.weight.row_mut(i)[i] = T::zero();
        }
        self.zero_diag = true;
        self
    }
}

impl<T: Scalar> Layer<T> for Dense<T> {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn d_in(&self) -> usize {
        self.weight.cols()
    }

    fn d_out(&self) -> usize {
        self.weight.rows()
    }

    fn for_each_param(&self, f: &mut dyn FnMut(&'static str, &Tensor<T>)) {
        super::visit_weight_bias(&self.weight, self.bias.as_ref(), f);
    }

    fn for_each_param_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {
        super::visit_weight_bias_mut(&mut self.weight, self.bias.as_mut(), f);
    }

    fn alloc_ws(&self, batch: usize) -> LayerWs<T> {
        let (di, d) = (self.d_in(), self.d_out());
        match self.conv {
            Convention::Wf => LayerWs {
                a: Tensor::zeros(batch, di),
                da: Tensor::zeros(batch, di),
                tmp: Tensor::zeros(batch, di),
                ..Default::default()
            },
            Convention::Fw => LayerWs {
                z: Tensor::zeros(batch, d),
                da: Tensor::zeros(batch, d),
                delta: Tensor::zeros(batch, d),
                ..Default::default()
            },
        }
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum) {
        match (self.conv, accum) {
            (Convention::Wf, _) => {
                Cpu.act_with_deriv(self.act, x_in, &mut ws.a, &mut ws.da);
                let accum = match (&self.bias, accum) {
                    (Some(b), Accum::Replace) => {
                        Cpu.broadcast_rows(mu, b);
                        Accum::Add
                    }
                    (Some(b), Accum::Add) => {
                        Cpu.add_rows(mu, b);
                        Accum::Add
                    }
                    (None, a) => a,
                };
                Cpu.gemm(mu, accum, &ws.a, Trans::N, &self.weight, Trans::T, T::one(), Par::Auto);
            }
            (Convention::Fw, Accum::Replace) => {
                Cpu.gemm(
                    &mut ws.z,
                    Accum::Replace,
                    x_in,
                    Trans::N,
                    &self.weight,
                    Trans::T,
                    T::one(),
                    Par::Auto,
                );
                Cpu.bias_act(self.act, &mut ws.z, self.bias.as_ref(), mu, Some(&mut ws.da));
            }
            (Convention::Fw, Accum::Add) => {
                assert_eq!(self.act, Activation::Identity, "f(Wx+b) edges sum only when linear");
                Cpu.gemm(
                    mu,
                    Accum::Add,
                    x_in,
                    Trans::N,
                    &self.weight,
                    Trans::T,
                    T::one(),
                    Par::Auto,
                );
                if let Some(b) = &self.bias {
                    Cpu.add_rows(mu, b);
                }
                ws.da.fill(T::one());
            }
        }
    }

    fn backward_prep(&self, g: &Tensor<T>, ws: &mut LayerWs<T>) {
        if self.conv == Convention::Fw {
            Cpu.mul(&mut ws.delta, Accum::Replace, g, &ws.da);
        }
    }

    fn vjp_input(&self, g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        match self.conv {
            Convention::Wf => {
                // dE/dx_in = f'(x_in) ⊙ (g W)
                Cpu.gemm(
                    &mut ws.tmp,
                    Accum::Replace,
                    g,
                    Trans::N,
                    &self.weight,
                    Trans::N,
                    T::one(),
                    Par::Auto,
                );
                Cpu.mul(dx, accum, &ws.tmp, &ws.da);
            }
            Convention::Fw => {
                // dE/dx_in = (g ⊙ f'(z)) W
                Cpu.gemm(
                    dx,
                    accum,
                    &ws.delta,
                    Trans::N,
                    &self.weight,
                    Trans::N,
                    T::one(),
                    Par::Auto,
                );
            }
        }
    }

    fn param_grads(
        &self,
        g: &Tensor<T>,
        x_in: &Tensor<T>,
        ws: &LayerWs<T>,
        grads: &mut [Tensor<T>],
        accum: Accum,
    ) {
        let (delta, input) = match self.conv {
            Convention::Wf => (g, &ws.a),
            Convention::Fw => (&ws.delta, x_in),
        };
        let (gw, rest) = grads.split_first_mut().expect("weight gradient buffer");
        Cpu.gemm(gw, accum, delta, Trans::T, input, Trans::N, T::one(), Par::Auto);
        if self.zero_diag {
            for i in 0..gw.rows().min(gw.cols()) {
                gw.row_mut(i)[i] = T::zero();
            }
        }
        if let Some(gb) = rest.first_mut() {
            Cpu.col_sums(gb, accum, delta, T::one());
        }
    }

    fn products(&self, batch: usize) -> super::LayerProducts {
        super::LayerProducts::linear(batch, self.d_in(), self.d_out())
    }

    fn macs_per_example(&self) -> u64 {
        (self.d_in() * self.d_out()) as u64
    }

    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}
