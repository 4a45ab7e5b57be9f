//! Tensor core: row-major dense matrices, the scalar trait and the compute backend.
//!
//! Everything a batch needs (matrix products, fused element-wise kernels, reductions) goes
//! through [`Backend`]; [`Cpu`] is the only implementation that knows the GEMM crate.

mod backend;
mod cpu;
pub mod cuda;
pub mod simd;
mod small_gemm;

pub use backend::{Accum, Backend, Par, Trans};
pub(crate) use cpu::{cast, cast_mut};
pub use cpu::{
    ew_tasks, helping_threads, on_pool, on_pool_hot, sequential, set_threads, sum_parts, threads,
    Cpu, Update,
};
pub use small_gemm::{packed_products, PackedRhs};

use std::fmt::Debug;

/// Floating-point element type of tensors (f32 by default, f64 for exactness checks).
pub trait Scalar:
    num_traits::Float
    + num_traits::FromPrimitive
    + num_traits::NumAssign
    + Default
    + Debug
    + std::fmt::Display
    + std::iter::Sum
    + Send
    + Sync
    + 'static
{
    /// Name of the type, as written in configs and checkpoints ("f32" or "f64").
    const NAME: &'static str;
    /// Converts from f64, rounding to nearest.
    fn of(v: f64) -> Self;
    /// Converts to f64 exactly.
    fn f64(self) -> f64;
    /// `tanh`, in a form the compiler can vectorise where the type allows it.
    #[inline(always)]
    fn tanh_v(self) -> Self {
        self.tanh()
    }
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn tanh_v(self) -> Self {
        tanh_f32(self)
    }
}

/// Bound beyond which [`tanh_f32`] is exactly ±1.
const TANH_CLAMP: f32 = 7.905_311;
/// Below this magnitude [`tanh_f32`] is `x`.
const TANH_TINY: f32 = 0.0004;
/// Numerator coefficients of [`tanh_f32`], highest power first (odd polynomial over `x2`).
const TANH_P: [f32; 7] = [
    -2.760_768_5e-16,
    2.000_188e-13,
    -8.604_672e-11,
    5.122_297e-8,
    1.485_722_4e-5,
    6.372_619_3e-4,
    4.893_524_6e-3,
];
/// Denominator coefficients of [`tanh_f32`], highest power first.
const TANH_Q: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// Branch-free f32 `tanh`: a [13/6] rational approximation on [-7.9053, 7.9053] (as in Eigen's
/// `generic_fast_tanh_float`), within a few ulp of the correctly rounded value, and exactly ±1
/// beyond (so that `1 - tanh^2` is 0 there, not rounding noise).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let tiny = x.abs() < TANH_TINY;
    let x_c = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let x2 = x_c * x_c;
    let mut p = x2.mul_add(TANH_P[0], TANH_P[1]);
    for &c in &TANH_P[2..] {
        p = x2.mul_add(p, c);
    }
    p *= x_c;
    let mut q = x2.mul_add(TANH_Q[0], TANH_Q[1]);
    for &c in &TANH_Q[2..] {
        q = x2.mul_add(q, c);
    }
    if tiny {
        x
    } else if x.abs() >= TANH_CLAMP {
        // Exactly ±1, so that 1 - tanh^2 (the derivative) is 0 and not rounding noise.
        1.0f32.copysign(x)
    } else {
        p / q
    }
}

/// [`tanh_f32`] on 16 lanes with AVX-512, bit for bit (NaN stays NaN).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn tanh_f32x16(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let a = _mm512_abs_ps(x);
    let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_set1_ps(TANH_TINY));
    let big = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, _mm512_set1_ps(TANH_CLAMP));
    // max/min return their second operand when either is NaN: a NaN `x` passes through.
    let x_c =
        _mm512_min_ps(_mm512_set1_ps(TANH_CLAMP), _mm512_max_ps(_mm512_set1_ps(-TANH_CLAMP), x));
    let x2 = _mm512_mul_ps(x_c, x_c);
    let mut p = _mm512_fmadd_ps(x2, _mm512_set1_ps(TANH_P[0]), _mm512_set1_ps(TANH_P[1]));
    for &c in &TANH_P[2..] {
        p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(c));
    }
    p = _mm512_mul_ps(p, x_c);
    let mut q = _mm512_fmadd_ps(x2, _mm512_set1_ps(TANH_Q[0]), _mm512_set1_ps(TANH_Q[1]));
    for &c in &TANH_Q[2..] {
        q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(c));
    }
    let r = _mm512_div_ps(p, q);
    let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
    let unit = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0))));
    _mm512_mask_blend_ps(tiny, _mm512_mask_blend_ps(big, r, unit), x)
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}

/// An owned row-major matrix `[rows, cols]`; a vector is a `[1, n]` matrix.
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Scalar = f32> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

impl<T: Scalar> Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>[{}, {}]", T::NAME, self.rows, self.cols)
    }
}

impl<T: Scalar> Default for Tensor<T> {
    fn default() -> Self {
        Self::zeros(0, 0)
    }
}

impl<T: Scalar> Tensor<T> {
    /// A `[rows, cols]` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { data: vec![T::zero(); rows * cols], rows, cols }
    }

    /// A `[rows, cols]` matrix filled with `v`.
    pub fn full(rows: usize, cols: usize, v: T) -> Self {
        Self { data: vec![v; rows * cols], rows, cols }
    }

    /// Wraps a row-major buffer.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    #[track_caller]
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Self {
        assert_eq!(data.len(), rows * cols, "buffer of {} for [{rows}, {cols}]", data.len());
        Self { data, rows, cols }
    }

    /// Builds a matrix from a function of (row, col).
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Self { data, rows, cols }
    }

    /// Number of rows (the batch dimension for activations).
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (the feature dimension for activations).
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `[rows, cols]`.
    #[inline]
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The row-major elements.
    #[inline]
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The row-major elements, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the tensor into its row-major buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> &[T] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutably.
    #[inline]
    pub fn row_mut(&mut self, r: usize) -> &mut [T] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Element (r, c).
    #[inline]
    pub fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.cols + c]
    }

    /// Reshapes to `[rows, cols]`, reusing the allocation when it is large enough.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, T::zero());
    }

    /// Reinterprets the same elements as `[rows, cols]` (no copy, no allocation).
    ///
    /// # Panics
    /// If `rows * cols` differs from the number of elements.
    #[track_caller]
    pub fn reshape(&mut self, rows: usize, cols: usize) {
        assert_eq!(rows * cols, self.data.len(), "reshape {self:?} to [{rows}, {cols}]");
        self.rows = rows;
        self.cols = cols;
    }

    /// A read-only view of the same elements as `[rows, cols]`.
    ///
    /// # Panics
    /// If `rows * cols` differs from the number of elements.
    #[track_caller]
    pub fn view(&self, rows: usize, cols: usize) -> View<'_, T> {
        View::new(rows, cols, &self.data)
    }

    /// Copies `src` into `self` (same shape).
    ///
    /// # Panics
    /// On a shape mismatch.
    #[track_caller]
    pub fn copy_from(&mut self, src: &Tensor<T>) {
        assert_eq!(self.shape(), src.shape(), "copy_from shape mismatch");
        self.data.copy_from_slice(&src.data);
    }

    /// Becomes `src`'s rows `rows`, in that order: `[rows.len(), src.cols()]` (no allocation
    /// once the buffer is large enough).
    ///
    /// # Panics
    /// If a row is outside `src`.
    #[track_caller]
    pub fn gather_rows(&mut self, src: &Tensor<T>, rows: &[usize]) {
        use rayon::prelude::*;
        let cols = src.cols;
        self.resize(rows.len(), cols);
        if cols == 0 {
            return;
        }
        let copy = |(o, &r): (&mut [T], &usize)| o.copy_from_slice(&src.data[r * cols..][..cols]);
        if rows.len() * cols >= 1 << 14 && threads() > 1 {
            self.data.par_chunks_mut(cols).zip(rows.par_iter()).with_min_len(16).for_each(copy);
        } else {
            src.rows_into(rows, &mut self.data);
        }
    }

    /// Copies rows `rows` of `self`, in that order, into `dst` (`rows.len() * cols` values).
    ///
    /// # Panics
    /// If a row is outside `self` or `dst` has another length.
    #[track_caller]
    pub(crate) fn rows_into(&self, rows: &[usize], dst: &mut [T]) {
        let cols = self.cols;
        assert_eq!(dst.len(), rows.len() * cols, "rows_into: destination length");
        for (o, &r) in dst.chunks_exact_mut(cols.max(1)).zip(rows) {
            o.copy_from_slice(&self.data[r * cols..][..cols]);
        }
    }

    /// Copies a row-major slice into `self`.
    ///
    /// # Panics
    /// If the lengths differ.
    #[track_caller]
    pub fn copy_from_slice(&mut self, src: &[T]) {
        self.data.copy_from_slice(src);
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: T) {
        self.data.fill(v);
    }

    /// Converts element type.
    pub fn cast<U: Scalar>(&self) -> Tensor<U> {
        Tensor {
            data: self.data.iter().map(|v| U::of(v.f64())).collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Sum of squares of all elements, in f64.
    pub fn sq_norm(&self) -> f64 {
        self.data.iter().map(|v| v.f64() * v.f64()).sum()
    }

    /// Largest absolute element-wise difference to `other`, in f64.
    ///
    /// # Panics
    /// On a shape mismatch.
    #[track_caller]
    pub fn max_abs_diff(&self, other: &Tensor<T>) -> f64 {
        assert_eq!(self.shape(), other.shape());
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a.f64() - b.f64()).abs())
            .fold(0.0, f64::max)
    }

    /// True when every element is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// A borrowed row-major `[rows, cols]` matrix (e.g. a batch of images seen as pixels × channels).
#[derive(Clone, Copy)]
pub struct View<'a, T: Scalar> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T: Scalar> View<'a, T> {
    /// Views `data` as `[rows, cols]`.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    #[track_caller]
    pub fn new(rows: usize, cols: usize, data: &'a [T]) -> Self {
        assert_eq!(data.len(), rows * cols, "view of {} elements as [{rows}, {cols}]", data.len());
        Self { data, rows, cols }
    }
}

/// A row-major matrix operand of the backend: a [`Tensor`] or a [`View`].
pub trait Mat<T: Scalar> {
    /// Number of rows.
    fn rows(&self) -> usize;
    /// Number of columns.
    fn cols(&self) -> usize;
    /// The row-major elements.
    fn data(&self) -> &[T];
}

impl<T: Scalar> Mat<T> for Tensor<T> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn data(&self) -> &[T] {
        &self.data
    }
}

impl<T: Scalar> Mat<T> for View<'_, T> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn data(&self) -> &[T] {
        self.data
    }
}

/// The inverse of the square matrix `a` (f64, LU with partial pivoting); `None` when it is
/// singular or not finite.
///
/// # Panics
/// If `a` is not square.
pub fn inverse(a: &Tensor<f64>) -> Option<Tensor<f64>> {
    use faer::linalg::solvers::DenseSolveCore;
    assert_eq!(a.rows(), a.cols(), "inverse of a non-square matrix");
    let n = a.rows();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| a.at(i, j));
    let inv = m.partial_piv_lu().inverse();
    let out = Tensor::from_fn(n, n, |i, j| inv[(i, j)]);
    out.all_finite().then_some(out)
}

#[cfg(test)]
mod tests {

    /// `gather_rows` takes the rows in the given order (repeats included) and resizes, on one
    /// thread and, for a large batch, on all of them.
    #[test]
    fn gather_rows_takes_the_rows_in_order() {
        for (n, cols, take) in [(9, 3, 5), (300, 784, 128)] {
            let src = super::Tensor::<f32>::from_fn(n, cols, |r, c| (r * cols + c) as f32);
            let rows: Vec<usize> = (0..take).map(|i| (i * 7 + 2) % n).chain([4, 4]).collect();
            let mut dst = super::Tensor::zeros(1, 1);
            dst.gather_rows(&src, &rows);
            assert_eq!(dst.shape(), [rows.len(), cols]);
            for (i, &r) in rows.iter().enumerate() {
                assert_eq!(dst.row(i), src.row(r), "row {i} of {n} x {cols}");
            }
        }
    }
    #[test]
    fn inverse_times_the_matrix_is_the_identity() {
        let a =
            super::Tensor::from_fn(
                5,
                5,
                |i, j| if i == j { 3.0 } else { 1.0 / (1 + i + 2 * j) as f64 },
            );
        let inv = super::inverse(&a).unwrap();
        for i in 0..5 {
            for j in 0..5 {
                let p: f64 = (0..5).map(|k| a.at(i, k) * inv.at(k, j)).sum();
                assert!((p - (i == j) as u8 as f64).abs() < 1e-12, "({i}, {j}): {p}");
            }
        }
        assert!(super::inverse(&super::Tensor::<f64>::zeros(3, 3)).is_none());
    }

    #[test]
    fn fast_tanh_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -12.0f64;
        while x < 12.0 {
            let got = super::tanh_f32(x as f32) as f64;
            let want = x.tanh();
            worst = worst.max((got - want).abs() / want.abs().clamp(1e-3, 1.0));
            x += 0.000_37;
        }
        assert!(worst < 5e-7, "worst relative error {worst:e}");
        assert_eq!(super::tanh_f32(0.0), 0.0);
        // saturates within 2 ulp of ±1
        assert!((super::tanh_f32(100.0) - 1.0).abs() < 2.5e-7);
        assert!((super::tanh_f32(-100.0) + 1.0).abs() < 2.5e-7);
    }
}
