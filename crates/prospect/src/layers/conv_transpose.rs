//! Transposed 2-D convolution (the adjoint of a convolution), for generative decoders.
//!
//! With `geo` the geometry of the convolution from the output image back to the input image,
//! the forward pass is `col2im(x · W)` and its input VJP is `im2col(g) · Wᵀ`: the two halves
//! of [`super::Conv2d`] swapped. HWC per example, as there.

use super::conv::{mul_into, Geometry};
use super::{Activation, Convention, Init, Layer, LayerWs};
use crate::tensor::{Accum, Backend, Cpu, Par, Scalar, Tensor, Trans};
use rand::Rng;

/// Transposed convolution edge: weight `[Ci, kh·kw·Co]`, optional bias `[1, Co]`, an
/// activation and a convention (`f_w`: `mu = f(convT(x) + b)`, `w_f`: `mu = convT(f(x)) + b`).
#[derive(Clone, Debug)]
pub struct ConvTranspose2d<T: Scalar> {
    /// Weight `[Ci, kh·kw·Co]`.
    pub weight: Tensor<T>,
    /// Bias `[1, Co]`, if any.
    pub bias: Option<Tensor<T>>,
    /// The activation `f`.
    pub act: Activation,
    /// Where `f` is applied.
    pub conv: Convention,
    /// Geometry of the convolution from the output image (`Co×Ho×Wo`) to the input (`Hi×Wi`).
    pub geo: Geometry,
}

/// Output size of a transposed convolution along one axis.
pub fn transposed_size(
    n: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    extra: usize,
) -> Option<usize> {
    ((n.checked_sub(1)? * stride + dil * (k.checked_sub(1)?) + 1 + extra).checked_sub(2 * pad))
        .filter(|&v| v > 0)
}

impl<T: Scalar> ConvTranspose2d<T> {
    /// A transposed convolution from `c_in` channels over `geo.ho × geo.wo` pixels to the
    /// `geo.c × geo.h × geo.w` image, weights from `init` (PyTorch's fans: fan-in
    /// `kh·kw·Co`), zero bias (when `bias`).
    pub fn new<R: Rng + ?Sized>(
        geo: Geometry,
        c_in: usize,
        act: Activation,
        conv: Convention,
        bias: bool,
        init: Init,
        rng: &mut R,
    ) -> Self {
        let taps = geo.k.0 * geo.k.1;
        Self {
            weight: init.sample_fans(c_in, geo.patch(), geo.patch(), taps * c_in, rng),
            bias: bias.then(|| Tensor::zeros(1, geo.c)),
            act,
            conv,
            geo,
        }
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.weight.rows()
    }

    fn in_pixels(&self, batch: usize) -> usize {
        batch * self.geo.out_pixels()
    }

    fn out_pixels(&self, batch: usize) -> usize {
        batch * self.geo.h * self.geo.w
    }
}

impl<T: Scalar> Layer<T> for ConvTranspose2d<T> {
    fn kind(&self) -> &'static str {
        "conv_transpose"
    }

    fn d_in(&self) -> usize {
        self.geo.out_pixels() * self.c_in()
    }

    fn d_out(&self) -> usize {
        self.geo.in_size()
    }

    fn for_each_param(&self, f: &mut dyn FnMut(&'static str, &Tensor<T>)) {
        super::visit_weight_bias(&self.weight, self.bias.as_ref(), f);
    }

    fn for_each_param_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {
        super::visit_weight_bias_mut(&mut self.weight, self.bias.as_mut(), f);
    }

    fn alloc_ws(&self, batch: usize) -> LayerWs<T> {
        let (pin, pout, co, patch) =
            (self.in_pixels(batch), self.out_pixels(batch), self.geo.c, self.geo.patch());
        let mut ws = LayerWs {
            col: Tensor::zeros(pin, patch),
            gcol: Tensor::zeros(pin, patch),
            delta: Tensor::zeros(pout, co),
            ..Default::default()
        };
        match self.conv {
            Convention::Wf => {
                ws.a = Tensor::zeros(batch, self.d_in());
                ws.da = Tensor::zeros(batch, self.d_in());
                ws.tmp = Tensor::zeros(pin, self.c_in());
            }
            Convention::Fw => {
                ws.z = Tensor::zeros(pout, co);
                ws.da = Tensor::zeros(pout, co);
            }
        }
        ws
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum) {
        let (batch, d_out) = (mu.rows(), mu.cols());
        let (pin, pout, ci, co) =
            (self.in_pixels(batch), self.out_pixels(batch), self.c_in(), self.geo.c);
        let w = &self.weight;
        match (self.conv, accum) {
            (Convention::Wf, _) => {
                Cpu.act_with_deriv(self.act, x_in, &mut ws.a, &mut ws.da);
                let a = ws.a.view(pin, ci);
                Cpu.gemm(
                    &mut ws.col,
                    Accum::Replace,
                    &a,
                    Trans::N,
                    w,
                    Trans::N,
                    T::one(),
                    Par::Auto,
                );
                self.geo.col2im(ws.col.data(), mu.data_mut(), accum);
                if let Some(b) = &self.bias {
                    mu.reshape(pout, co);
                    Cpu.add_rows(mu, b);
                    mu.reshape(batch, d_out);
                }
            }
            (Convention::Fw, Accum::Replace) => {
                let x = x_in.view(pin, ci);
                Cpu.gemm(
                    &mut ws.col,
                    Accum::Replace,
                    &x,
                    Trans::N,
                    w,
                    Trans::N,
                    T::one(),
                    Par::Auto,
                );
                self.geo.col2im(ws.col.data(), ws.z.data_mut(), Accum::Replace);
                mu.reshape(pout, co);
                Cpu.bias_act(self.act, &mut ws.z, self.bias.as_ref(), mu, Some(&mut ws.da));
                mu.reshape(batch, d_out);
            }
            (Convention::Fw, Accum::Add) => {
                assert_eq!(self.act, Activation::Identity, "f(Wx+b) edges sum only when linear");
                let x = x_in.view(pin, ci);
                Cpu.gemm(
                    &mut ws.col,
                    Accum::Replace,
                    &x,
                    Trans::N,
                    w,
                    Trans::N,
                    T::one(),
                    Par::Auto,
                );
                self.geo.col2im(ws.col.data(), mu.data_mut(), Accum::Add);
                if let Some(b) = &self.bias {
                    mu.reshape(pout, co);
                    Cpu.add_rows(mu, b);
                    mu.reshape(batch, d_out);
                }
                ws.da.fill(T::one());
            }
        }
    }

    fn backward_prep(&self, g: &Tensor<T>, ws: &mut LayerWs<T>) {
        match self.conv {
            Convention::Fw => mul_into(ws.delta.data_mut(), Accum::Replace, g.data(), ws.da.data()),
            Convention::Wf => ws.delta.copy_from_slice(g.data()),
        }
        self.geo.im2col(ws.delta.data(), ws.gcol.data_mut());
    }

    fn vjp_input(&self, _g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        let (batch, d_in) = (dx.rows(), dx.cols());
        let (pin, ci) = (self.in_pixels(batch), self.c_in());
        let w = &self.weight;
        match self.conv {
            Convention::Fw => {
                dx.reshape(pin, ci);
                Cpu.gemm(dx, accum, &ws.gcol, Trans::N, w, Trans::T, T::one(), Par::Auto);
                dx.reshape(batch, d_in);
            }
            Convention::Wf => {
                Cpu.gemm(
                    &mut ws.tmp,
                    Accum::Replace,
                    &ws.gcol,
                    Trans::N,
                    w,
                    Trans::T,
                    T::one(),
                    Par::Auto,
                );
                mul_into(dx.data_mut(), accum, ws.tmp.data(), ws.da.data());
            }
        }
    }

    fn param_grads(
        &self,
        _g: &Tensor<T>,
        x_in: &Tensor<T>,
        ws: &LayerWs<T>,
        grads: &mut [Tensor<T>],
        accum: Accum,
    ) {
        let (pin, ci) = (self.in_pixels(x_in.rows()), self.c_in());
        let input = match self.conv {
            Convention::Wf => ws.a.view(pin, ci),
            Convention::Fw => x_in.view(pin, ci),
        };
        let (gw, rest) = grads.split_first_mut().expect("weight gradient buffer");
        Cpu.gemm(gw, accum, &input, Trans::T, &ws.gcol, Trans::N, T::one(), Par::Auto);
        if let Some(gb) = rest.first_mut() {
            Cpu.col_sums(gb, accum, &ws.delta, T::one());
        }
    }

    fn products(&self, batch: usize) -> super::LayerProducts {
        use super::GemmShape;
        let (pin, ci, kco) = (self.in_pixels(batch), self.c_in(), self.weight.cols());
        super::LayerProducts {
            forward: vec![GemmShape::new(pin, kco, ci, Trans::N, Trans::N)],
            vjp_input: vec![GemmShape::new(pin, ci, kco, Trans::N, Trans::T)],
            param_grads: vec![GemmShape::new(ci, kco, pin, Trans::T, Trans::N)],
        }
    }

    fn macs_per_example(&self) -> u64 {
        (self.geo.out_pixels() * self.geo.patch() * self.c_in()) as u64
    }

    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}
