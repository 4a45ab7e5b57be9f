//! The backend interface: the few operations a training batch needs.

use super::{Mat, Scalar, Tensor};
use crate::layers::Activation;

/// Whether a kernel overwrites its destination or adds into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accum {
    /// `dst = result`.
    Replace,
    /// `dst += result`.
    Add,
}

/// Whether a matrix operand is read as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// Parallelism of one kernel call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Par {
    /// Chosen per shape: one thread for small work, all configured threads for large.
    #[default]
    Auto,
    /// One thread; bit-reproducible regardless of the thread count.
    Seq,
    /// Up to this many threads.
    Threads(usize),
}

/// Compute backend: matrix products, fused element-wise kernels and reductions.
///
/// Layers, energies and learning rules only call these, so a new device is one new
/// implementation of this trait.
pub trait Backend: Send + Sync {
    /// Name of the device ("cpu", "cuda").
    fn name(&self) -> &'static str;

    /// `dst (=|+=) alpha * op(a) * op(b)`.
    ///
    /// # Panics
    /// If the shapes do not chain.
    #[allow(clippy::too_many_arguments)]
    fn gemm<T: Scalar>(
        &self,
        dst: &mut Tensor<T>,
        accum: Accum,
        a: &impl Mat<T>,
        ta: Trans,
        b: &impl Mat<T>,
        tb: Trans,
        alpha: T,
        par: Par,
    );

    /// Writes `out = f(x)` and `deriv = f'(x)` in one pass.
    fn act_with_deriv<T: Scalar>(
        &self,
        act: Activation,
        x: &Tensor<T>,
        out: &mut Tensor<T>,
        deriv: &mut Tensor<T>,
    );

    /// Writes `out = f(x)`.
    fn act<T: Scalar>(&self, act: Activation, x: &Tensor<T>, out: &mut Tensor<T>);

    /// In place: `z += bias` (row broadcast), then `out = f(z)`, `deriv = f'(z)`.
    fn bias_act<T: Scalar>(
        &self,
        act: Activation,
        z: &mut Tensor<T>,
        bias: Option<&Tensor<T>>,
        out: &mut Tensor<T>,
        deriv: Option<&mut Tensor<T>>,
    );

    /// Sets every row of `dst` to `bias`.
    fn broadcast_rows<T: Scalar>(&self, dst: &mut Tensor<T>, bias: &Tensor<T>);

    /// Adds `bias` to every row of `dst`.
    fn add_rows<T: Scalar>(&self, dst: &mut Tensor<T>, bias: &Tensor<T>);

    /// `dst (=|+=) a ⊙ b`.
    fn mul<T: Scalar>(&self, dst: &mut Tensor<T>, accum: Accum, a: &Tensor<T>, b: &Tensor<T>);

    /// `dst += alpha * src`.
    fn axpy<T: Scalar>(&self, dst: &mut Tensor<T>, alpha: T, src: &Tensor<T>);

    /// `dst (=|+=) alpha * column sums of src` (`dst` is `[1, cols]`).
    fn col_sums<T: Scalar>(&self, dst: &mut Tensor<T>, accum: Accum, src: &impl Mat<T>, alpha: T);

    /// Fused element-wise energy: for each element `(g_mu, g_x, e) = f(x, mu)`; writes the
    /// gradients and returns the sum of `e` (deterministic for a given thread count).
    fn energy_map<T: Scalar>(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        g_x: Option<&mut Tensor<T>>,
        f: impl Fn(T, T) -> (T, T, f64) + Sync + Copy,
    ) -> f64;

    /// Element-wise `dst_i = f(dst_i, a_i, b_i)` over three equally shaped tensors.
    fn zip3<T: Scalar>(
        &self,
        dst: &mut Tensor<T>,
        a: &Tensor<T>,
        b: &Tensor<T>,
        f: impl Fn(T, T, T) -> T + Sync,
    );

    /// Gradient step with optional (Nesterov) momentum on `p` given gradient `scale * g`:
    /// `v = momentum v + scale g`, `p -= lr (nesterov ? scale g + momentum v : v)`
    /// (plain `p -= lr scale g` without `v`).
    #[allow(clippy::too_many_arguments)]
    fn sgd_step<T: Scalar>(
        &self,
        p: &mut Tensor<T>,
        v: Option<&mut Tensor<T>>,
        g: &Tensor<T>,
        scale: T,
        lr: T,
        momentum: T,
        nesterov: bool,
    );

    /// One Adam(W) step on `p` with gradient `scale * g`, moments `m`, `v`, bias corrections
    /// `bc1 = 1 - beta1^t`, `bc2 = 1 - beta2^t`, and decoupled weight decay `wd`.
    #[allow(clippy::too_many_arguments)]
    fn adam_step<T: Scalar>(
        &self,
        p: &mut Tensor<T>,
        m: &mut Tensor<T>,
        v: &mut Tensor<T>,
        g: &Tensor<T>,
        scale: T,
        lr: T,
        betas: (T, T),
        eps: T,
        wd: T,
        bias_corr: (T, T),
    );
}
