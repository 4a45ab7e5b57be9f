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
                let (w, p) = (&self.weight, &ws.packed);
                Cpu.gemm_packed(mu, accum, &ws.a, Trans::N, w, Trans::T, p, T::one(), Par::Auto);
            }
            (Convention::Fw, Accum::Replace) => {
                Cpu.gemm_packed(
                    &mut ws.z,
                    Accum::Replace,
                    x_in,
                    Trans::N,
                    &self.weight,
                    Trans::T,
                    &ws.packed,
                    T::one(),
                    Par::Auto,
                );
                Cpu.bias_act(self.act, &mut ws.z, self.bias.as_ref(), mu, Some(&mut ws.da));
            }
            (Convention::Fw, Accum::Add) => {
                assert_eq!(self.act, Activation::Identity, "f(Wx+b) edges sum only when linear");
                Cpu.gemm_packed(
                    mu,
                    Accum::Add,
                    x_in,
                    Trans::N,
                    &self.weight,
                    Trans::T,
                    &ws.packed,
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

    fn pack_weights(&self, ws: &mut LayerWs<T>) {
        Cpu.pack_rhs(&self.weight, Trans::T, &mut ws.packed);
        Cpu.pack_rhs(&self.weight, Trans::N, &mut ws.packed_back);
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
                Cpu.gemm_packed(
                    &mut ws.tmp,
                    Accum::Replace,
                    g,
                    Trans::N,
                    &self.weight,
                    Trans::N,
                    &ws.packed_back,
                    T::one(),
                    Par::Auto,
                );
                Cpu.mul(dx, accum, &ws.tmp, &ws.da);
            }
            Convention::Fw => {
                // dE/dx_in = (g ⊙ f'(z)) W
                Cpu.gemm_packed(
                    dx,
                    accum,
                    &ws.delta,
                    Trans::N,
                    &self.weight,
                    Trans::N,
                    &ws.packed_back,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::simd::{level, Level};

    /// The prediction and the input VJP of `layer` on fixed inputs, with the workspace `ws`.
    fn products(layer: &Dense<f32>, ws: &mut LayerWs<f32>) -> (Vec<f32>, Vec<f32>) {
        let (b, d_in, d_out) = (6, layer.weight.cols(), layer.weight.rows());
        let x = Tensor::from_fn(b, d_in, |r, c| ((r * d_in + c) % 17) as f32 / 17.0 - 0.4);
        let g = Tensor::from_fn(b, d_out, |r, c| ((r * d_out + c) % 11) as f32 / 11.0 - 0.5);
        let (mut mu, mut dx) = (Tensor::zeros(b, d_out), Tensor::zeros(b, d_in));
        layer.forward(&x, &mut mu, ws, Accum::Replace);
        layer.backward_prep(&g, ws);
        layer.vjp_input(&g, ws, &mut dx, Accum::Replace);
        (mu.data().to_vec(), dx.data().to_vec())
    }

    #[test]
    fn packed_weights_give_the_products_and_are_forgotten_when_unpacked() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for conv in [Convention::Fw, Convention::Wf] {
            let mut layer: Dense<f32> =
                Dense::new(40, 70, Activation::Tanh, conv, true, Init::XavierNormal, &mut rng);
            let mut ws = layer.alloc_ws(6);
            layer.pack_weights(&mut ws);
            // Packed only where the packed kernel runs (f32 on AVX-512).
            let kernel = level() == Level::Avx512;
            assert_eq!(ws.packed.is_packed(), kernel, "{conv:?}");
            assert_eq!(ws.packed_back.is_packed(), kernel, "{conv:?}");
            let before = crate::tensor::packed_products();
            let (mu, dx) = products(&layer, &mut ws);
            // Both products ran on the packed kernel where it exists.
            assert_eq!(crate::tensor::packed_products() - before, 2 * kernel as u64, "{conv:?}");
            let (mu_ref, dx_ref) = products(&layer, &mut layer.alloc_ws(6));
            for (what, got, want) in [("mu", &mu, &mu_ref), ("dx", &dx, &dx_ref)] {
                for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{conv:?} {what}[{i}]");
                }
            }
            // The weight changes in place (same buffer) after the inference that packed it.
            ws.unpack();
            assert!(!ws.packed.is_packed() && !ws.packed_back.is_packed());
            layer.weight.data_mut().iter_mut().for_each(|w| *w *= -1.5);
            let before = crate::tensor::packed_products();
            let (mu, dx) = products(&layer, &mut ws);
            assert_eq!(crate::tensor::packed_products(), before, "{conv:?}: unpacked");
            let (mu_ref, dx_ref) = products(&layer, &mut layer.alloc_ws(6));
            assert_eq!((bits(&mu), bits(&dx)), (bits(&mu_ref), bits(&dx_ref)), "{conv:?}");
        }
    }
}
