//! 2-D convolution, and the patch geometry (im2col / col2im) it shares with the transposed one.
//!
//! Images are stored one example per row in HWC order (`[batch, H·W·C]`): a batch of
//! convolution outputs `[batch, Ho·Wo·Co]` is then the same memory as the matrix
//! `[batch·Ho·Wo, Co]`, so the whole batch is one product `col · Wᵀ` with
//! `col = im2col(x): [batch·Ho·Wo, kh·kw·C]`, and no transpose is ever needed.

use super::{Activation, Convention, Init, Layer, LayerWs};
use crate::tensor::{Accum, Backend, Cpu, Par, Scalar, Tensor, Trans};
use rand::Rng;

/// The patch geometry of a convolution from a `C×H×W` input to a `·×Ho×Wo` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height and width.
    pub k: (usize, usize),
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Dilation.
    pub dil: usize,
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
}

impl Geometry {
    /// The geometry of a `k×k` kernel over a `C×H×W` input; `None` if no output pixel fits
    /// or a setting is zero.
    pub fn new(
        [c, h, w]: [usize; 3],
        k: usize,
        stride: usize,
        pad: usize,
        dil: usize,
    ) -> Option<Self> {
        if c == 0 || k == 0 || stride == 0 || dil == 0 {
            return None;
        }
        let span = dil * (k - 1) + 1;
        let out = |n: usize| (n + 2 * pad).checked_sub(span).map(|v| v / stride + 1);
        let (ho, wo) = (out(h)?, out(w)?);
        (ho > 0 && wo > 0).then_some(Self { c, h, w, k: (k, k), stride, pad, dil, ho, wo })
    }

    /// Values per input example, `H·W·C`.
    pub fn in_size(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Output pixels per example, `Ho·Wo`.
    pub fn out_pixels(&self) -> usize {
        self.ho * self.wo
    }

    /// Columns of a patch row, `kh·kw·C`.
    pub fn patch(&self) -> usize {
        self.k.0 * self.k.1 * self.c
    }

    /// Input offset of kernel tap `(ky, kx)` at output pixel `(oy, ox)`, if inside the image.
    #[inline(always)]
    fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let iy = (oy * self.stride + ky * self.dil).checked_sub(self.pad)?;
        let ix = (ox * self.stride + kx * self.dil).checked_sub(self.pad)?;
        (iy < self.h && ix < self.w).then_some((iy * self.w + ix) * self.c)
    }

    /// `col[(n, oy, ox), (ky, kx, c)] = x[n, oy·s − p + ky·d, ox·s − p + kx·d, c]` (0 outside).
    pub fn im2col<T: Scalar>(&self, x: &[T], col: &mut [T]) {
        let (isz, patch, c) = (self.in_size(), self.patch(), self.c);
        let batch = x.len() / isz;
        assert_eq!(x.len(), batch * isz, "im2col: input of {} values", x.len());
        assert_eq!(col.len(), batch * self.out_pixels() * patch, "im2col: column buffer");
        for (n, xi) in x.chunks_exact(isz).enumerate() {
            let cols = &mut col[n * self.out_pixels() * patch..(n + 1) * self.out_pixels() * patch];
            for oy in 0..self.ho {
                for ox in 0..self.wo {
                    let row = &mut cols[(oy * self.wo + ox) * patch..][..patch];
                    for ky in 0..self.k.0 {
                        for kx in 0..self.k.1 {
                            let dst = &mut row[(ky * self.k.1 + kx) * c..][..c];
                            match self.tap(oy, ox, ky, kx) {
                                Some(o) => dst.copy_from_slice(&xi[o..o + c]),
                                None => dst.fill(T::zero()),
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`]: `x (=|+=)` the sum of every patch entry at its pixel.
    pub fn col2im<T: Scalar>(&self, col: &[T], x: &mut [T], accum: Accum) {
        let (isz, patch, c) = (self.in_size(), self.patch(), self.c);
        let batch = x.len() / isz;
        assert_eq!(x.len(), batch * isz, "col2im: output of {} values", x.len());
        assert_eq!(col.len(), batch * self.out_pixels() * patch, "col2im: column buffer");
        if accum == Accum::Replace {
            x.fill(T::zero());
        }
        for (n, xi) in x.chunks_exact_mut(isz).enumerate() {
            let cols = &col[n * self.out_pixels() * patch..(n + 1) * self.out_pixels() * patch];
            for oy in 0..self.ho {
                for ox in 0..self.wo {
                    let row = &cols[(oy * self.wo + ox) * patch..][..patch];
                    for ky in 0..self.k.0 {
                        for kx in 0..self.k.1 {
                            if let Some(o) = self.tap(oy, ox, ky, kx) {
                                let src = &row[(ky * self.k.1 + kx) * c..][..c];
                                for (d, &s) in xi[o..o + c].iter_mut().zip(src) {
                                    *d += s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst (=|+=) a ⊙ b` over raw slices of equal length.
pub(super) fn mul_into<T: Scalar>(dst: &mut [T], accum: Accum, a: &[T], b: &[T]) {
    assert_eq!(dst.len(), a.len());
    assert_eq!(dst.len(), b.len());
    match accum {
        Accum::Replace => dst.iter_mut().zip(a.iter().zip(b)).for_each(|(d, (&x, &y))| *d = x * y),
        Accum::Add => dst.iter_mut().zip(a.iter().zip(b)).for_each(|(d, (&x, &y))| *d += x * y),
    }
}

/// 2-D convolution edge: weight `[Co, kh·kw·C]` (patch order ky, kx, c), optional bias
/// `[1, Co]`, an activation and a convention (`f_w`: `mu = f(conv(x) + b)`,
/// `w_f`: `mu = conv(f(x)) + b`).
#[derive(Clone, Debug)]
pub struct Conv2d<T: Scalar> {
    /// Weight `[Co, kh·kw·C]`.
    pub weight: Tensor<T>,
    /// Bias `[1, Co]`, if any.
    pub bias: Option<Tensor<T>>,
    /// The activation `f`.
    pub act: Activation,
    /// Where `f` is applied.
    pub conv: Convention,
    /// Patch geometry.
    pub geo: Geometry,
}

impl<T: Scalar> Conv2d<T> {
    /// A convolution to `c_out` channels with weights from `init` (fan-in `kh·kw·C`, fan-out
    /// `kh·kw·Co`, as PyTorch counts them) and zero bias (when `bias`).
    pub fn new<R: Rng + ?Sized>(
        geo: Geometry,
        c_out: usize,
        act: Activation,
        conv: Convention,
        bias: bool,
        init: Init,
        rng: &mut R,
    ) -> Self {
        let taps = geo.k.0 * geo.k.1;
        Self {
            weight: init.sample_fans(c_out, geo.patch(), geo.patch(), taps * c_out, rng),
            bias: bias.then(|| Tensor::zeros(1, c_out)),
            act,
            conv,
            geo,
        }
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.weight.rows()
    }

    fn pixels(&self, batch: usize) -> usize {
        batch * self.geo.out_pixels()
    }
}

impl<T: Scalar> Layer<T> for Conv2d<T> {
    fn kind(&self) -> &'static str {
        "conv"
    }

    fn d_in(&self) -> usize {
        self.geo.in_size()
    }

    fn d_out(&self) -> usize {
        self.geo.out_pixels() * self.c_out()
    }

    fn for_each_param(&self, f: &mut dyn FnMut(&'static str, &Tensor<T>)) {
        super::visit_weight_bias(&self.weight, self.bias.as_ref(), f);
    }

    fn for_each_param_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {
        super::visit_weight_bias_mut(&mut self.weight, self.bias.as_mut(), f);
    }

    fn alloc_ws(&self, batch: usize) -> LayerWs<T> {
        let (px, co, patch) = (self.pixels(batch), self.c_out(), self.geo.patch());
        let mut ws = LayerWs {
            col: Tensor::zeros(px, patch),
            gcol: Tensor::zeros(px, patch),
            delta: Tensor::zeros(px, co),
            ..Default::default()
        };
        match self.conv {
            Convention::Wf => {
                ws.a = Tensor::zeros(batch, self.d_in());
                ws.da = Tensor::zeros(batch, self.d_in());
                ws.tmp = Tensor::zeros(batch, self.d_in());
            }
            Convention::Fw => {
                ws.z = Tensor::zeros(px, co);
                ws.da = Tensor::zeros(px, co);
            }
        }
        ws
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum) {
        let (batch, d_out) = (mu.rows(), mu.cols());
        let (px, co) = (self.pixels(batch), self.c_out());
        mu.reshape(px, co);
        match (self.conv, accum) {
            (Convention::Wf, _) => {
                Cpu.act_with_deriv(self.act, x_in, &mut ws.a, &mut ws.da);
                self.geo.im2col(ws.a.data(), ws.col.data_mut());
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
                Cpu.gemm(mu, accum, &ws.col, Trans::N, &self.weight, Trans::T, T::one(), Par::Auto);
            }
            (Convention::Fw, Accum::Replace) => {
                self.geo.im2col(x_in.data(), ws.col.data_mut());
                let z = &mut ws.z;
                Cpu.gemm(
                    z,
                    Accum::Replace,
                    &ws.col,
                    Trans::N,
                    &self.weight,
                    Trans::T,
                    T::one(),
                    Par::Auto,
                );
                Cpu.bias_act(self.act, z, self.bias.as_ref(), mu, Some(&mut ws.da));
            }
            (Convention::Fw, Accum::Add) => {
                assert_eq!(self.act, Activation::Identity, "f(Wx+b) edges sum only when linear");
                self.geo.im2col(x_in.data(), ws.col.data_mut());
                Cpu.gemm(
                    mu,
                    Accum::Add,
                    &ws.col,
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
        mu.reshape(batch, d_out);
    }

    fn backward_prep(&self, g: &Tensor<T>, ws: &mut LayerWs<T>) {
        match self.conv {
            Convention::Fw => mul_into(ws.delta.data_mut(), Accum::Replace, g.data(), ws.da.data()),
            Convention::Wf => ws.delta.copy_from_slice(g.data()),
        }
    }

    fn vjp_input(&self, _g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        Cpu.gemm(
            &mut ws.gcol,
            Accum::Replace,
            &ws.delta,
            Trans::N,
            &self.weight,
            Trans::N,
            T::one(),
            Par::Auto,
        );
        match self.conv {
            Convention::Fw => self.geo.col2im(ws.gcol.data(), dx.data_mut(), accum),
            Convention::Wf => {
                self.geo.col2im(ws.gcol.data(), ws.tmp.data_mut(), Accum::Replace);
                Cpu.mul(dx, accum, &ws.tmp, &ws.da);
            }
        }
    }

    fn param_grads(
        &self,
        _g: &Tensor<T>,
        _x_in: &Tensor<T>,
        ws: &LayerWs<T>,
        grads: &mut [Tensor<T>],
        accum: Accum,
    ) {
        let (gw, rest) = grads.split_first_mut().expect("weight gradient buffer");
        Cpu.gemm(gw, accum, &ws.delta, Trans::T, &ws.col, Trans::N, T::one(), Par::Auto);
        if let Some(gb) = rest.first_mut() {
            Cpu.col_sums(gb, accum, &ws.delta, T::one());
        }
    }

    fn products(&self, batch: usize) -> super::LayerProducts {
        super::LayerProducts::linear(batch * self.geo.out_pixels(), self.geo.patch(), self.c_out())
    }

    fn macs_per_example(&self) -> u64 {
        (self.geo.out_pixels() * self.geo.patch() * self.c_out()) as u64
    }

    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}
