//! 2-D max and average pooling (no parameters), HWC per example.

use super::{Layer, LayerWs};
use crate::tensor::{Accum, Scalar, Tensor};
use serde::{Deserialize, Serialize};

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// The largest value (its VJP routes the error to the arg-max; ties: the first).
    Max,
    /// The mean of the window.
    Avg,
}

/// Pooling over `k×k` windows with a stride, per channel: `[C, H, W] -> [C, Ho, Wo]`,
/// `Ho = (H − k) / stride + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Max or average.
    pub kind: PoolKind,
    /// Input `[C, H, W]`.
    pub shape: [usize; 3],
    /// Window size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
}

impl Pool2d {
    /// A pooling layer; `None` when the window does not fit or a setting is zero.
    pub fn new(kind: PoolKind, shape: [usize; 3], k: usize, stride: usize) -> Option<Self> {
        let [c, h, w] = shape;
        (c > 0 && k > 0 && stride > 0 && k <= h && k <= w).then_some(Self {
            kind,
            shape,
            k,
            stride,
        })
    }

    /// Output `[C, Ho, Wo]`.
    pub fn out_shape(&self) -> [usize; 3] {
        let [c, h, w] = self.shape;
        [c, (h - self.k) / self.stride + 1, (w - self.k) / self.stride + 1]
    }
}

impl<T: Scalar> Layer<T> for Pool2d {
    fn kind(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "max_pool",
            PoolKind::Avg => "avg_pool",
        }
    }

    fn d_in(&self) -> usize {
        self.shape.iter().product()
    }

    fn d_out(&self) -> usize {
        self.out_shape().iter().product()
    }

    fn for_each_param(&self, _f: &mut dyn FnMut(&'static str, &Tensor<T>)) {}

    fn for_each_param_mut(&mut self, _f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {}

    fn alloc_ws(&self, batch: usize) -> LayerWs<T> {
        let idx = match self.kind {
            PoolKind::Max => vec![0; batch * <Self as Layer<T>>::d_out(self)],
            PoolKind::Avg => Vec::new(),
        };
        LayerWs { idx, ..Default::default() }
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum) {
        let [c, h, w] = self.shape;
        let [_, ho, wo] = self.out_shape();
        let (din, dout) = (h * w * c, ho * wo * c);
        let scale = T::one() / T::of((self.k * self.k) as f64);
        for (n, (xi, mi)) in
            x_in.data().chunks_exact(din).zip(mu.data_mut().chunks_exact_mut(dout)).enumerate()
        {
            for oy in 0..ho {
                for ox in 0..wo {
                    let o = (oy * wo + ox) * c;
                    let out = &mut mi[o..o + c];
                    match self.kind {
                        PoolKind::Max => {
                            let idx = &mut ws.idx[n * dout + o..n * dout + o + c];
                            let first = (oy * self.stride * w + ox * self.stride) * c;
                            for ch in 0..c {
                                let mut m = xi[first + ch];
                                let mut at = first + ch;
                                for ky in 0..self.k {
                                    for kx in 0..self.k {
                                        let i =
                                            ((oy * self.stride + ky) * w + ox * self.stride + kx)
                                                * c
                                                + ch;
                                        if xi[i] > m {
                                            m = xi[i];
                                            at = i;
                                        }
                                    }
                                }
                                idx[ch] = at as u32;
                                match accum {
                                    Accum::Replace => out[ch] = m,
                                    Accum::Add => out[ch] += m,
                                }
                            }
                        }
                        PoolKind::Avg => {
                            if accum == Accum::Replace {
                                out.fill(T::zero());
                            }
                            for ky in 0..self.k {
                                for kx in 0..self.k {
                                    let i =
                                        ((oy * self.stride + ky) * w + ox * self.stride + kx) * c;
                                    for (d, &v) in out.iter_mut().zip(&xi[i..i + c]) {
                                        *d += scale * v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn backward_prep(&self, _g: &Tensor<T>, _ws: &mut LayerWs<T>) {}

    fn vjp_input(&self, g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        let [c, h, w] = self.shape;
        let [_, ho, wo] = self.out_shape();
        let (din, dout) = (h * w * c, ho * wo * c);
        if accum == Accum::Replace {
            dx.fill(T::zero());
        }
        let scale = T::one() / T::of((self.k * self.k) as f64);
        for (n, (gi, di)) in
            g.data().chunks_exact(dout).zip(dx.data_mut().chunks_exact_mut(din)).enumerate()
        {
            match self.kind {
                PoolKind::Max => {
                    for (&gv, &at) in gi.iter().zip(&ws.idx[n * dout..(n + 1) * dout]) {
                        di[at as usize] += gv;
                    }
                }
                PoolKind::Avg => {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let gs = &gi[(oy * wo + ox) * c..][..c];
                            for ky in 0..self.k {
                                for kx in 0..self.k {
                                    let i =
                                        ((oy * self.stride + ky) * w + ox * self.stride + kx) * c;
                                    for (d, &v) in di[i..i + c].iter_mut().zip(gs) {
                                        *d += scale * v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
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
        Box::new(*self)
    }
}
