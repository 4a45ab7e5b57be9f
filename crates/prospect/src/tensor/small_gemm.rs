//! Small f32 products against a right operand packed once for many products, on AVX-512 CPUs:
//! a register-tiled kernel (6 rows x 64 columns, or 8 x 16 for narrow results).
//!
//! PC inference multiplies a thin batch shard (64 rows) by the same 128 x 128 weight, and by its
//! transpose, at every one of its T steps. faer's general kernels reach ~55–60% of the FMA peak
//! at these shapes on AVX-512 (per-call set-up and packing of both operands, a weight read in
//! its stored layout); this kernel reads `op(a)` in place by broadcasts and `op(b)` from panels
//! packed once per inference (see [`super::Cpu::pack_rhs`]), and keeps a block of the result
//! in registers over the whole inner dimension, so each output is one chain of fused
//! multiply-adds in `k` order. AVX2 CPUs keep faer (a 6 x 16 AVX2 kernel measured no faster
//! there: BENCHMARKS.md).

use super::backend::{Accum, Trans};

/// Largest inner dimension this path takes.
const MAX_K: usize = 1024;
/// Largest `n * k` this path takes (the packed panels of `op(b)` stay in L2).
const MAX_NK: usize = 1 << 18;

thread_local! {
    /// Products this thread ran on the packed kernel.
    static PRODUCTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many products the calling thread has run on the packed kernel (a diagnostic: whether
/// this CPU and these shapes take the kernel at all).
pub fn packed_products() -> u64 {
    PRODUCTS.with(|c| c.get())
}

/// A right operand `op(b)` packed once for many products (a weight, fixed during an
/// inference); empty until [`super::Cpu::pack_rhs`] fills it and after [`PackedRhs::clear`].
#[derive(Clone, Debug, Default)]
pub struct PackedRhs {
    /// Every panel of `op(b)`, `k x width` each, zero past column `n`.
    data: Vec<f32>,
    /// What was packed: address of `b`'s buffer, `k`, `n`, `tb`.
    key: Option<(usize, usize, usize, Trans)>,
}

impl PackedRhs {
    /// Forgets the packed operand (keeps the buffer).
    pub fn clear(&mut self) {
        self.key = None;
    }

    /// Whether this holds `op(b)` of the buffer at `addr` with these sizes.
    pub(super) fn holds(&self, addr: usize, k: usize, n: usize, tb: Trans) -> bool {
        self.key == Some((addr, k, n, tb))
    }

    /// Whether anything is packed.
    pub fn is_packed(&self) -> bool {
        self.key.is_some()
    }
}

/// Columns of a panel for a result `n` wide: 16 (one vector) for narrow results, else 64.
fn panel_width(n: usize) -> usize {
    if n <= 16 {
        16
    } else {
        64
    }
}

/// Whether the kernel takes a sequential product of these sizes on this CPU.
pub(super) fn applies(m: usize, n: usize, k: usize) -> bool {
    m > 0 && n > 0 && k > 0 && k <= MAX_K && n * k <= MAX_NK && available()
}

/// Whether the SIMD level in use is AVX-512.
fn available() -> bool {
    super::simd::level() == super::simd::Level::Avx512
}

/// Whether the CPU can run the kernel at all (tests call it on any AVX-512 machine).
pub(super) fn supported() -> bool {
    super::simd::detected() == super::simd::Level::Avx512
}

/// Packs `op(b)` (`[k, n]`, `b` row-major) into `out` if the kernel will take products with it
/// (else leaves `out` empty).
pub(super) fn pack(out: &mut PackedRhs, b: &[f32], tb: Trans, k: usize, n: usize) {
    out.key = None;
    if applies(1, n, k) && b.len() >= k * n {
        pack_panels(out, b, tb, k, n);
    }
}

/// [`pack`] on any CPU (the panels are plain memory):
/// `data[p * k * w + kk * w + j] = op(b)(kk, p * w + j)`, zero past column `n`.
pub(super) fn pack_panels(out: &mut PackedRhs, b: &[f32], tb: Trans, k: usize, n: usize) {
    assert!(b.len() >= k * n, "pack: {} elements for a [{k}, {n}] operand", b.len());
    let w = panel_width(n);
    let panels = n.div_ceil(w);
    out.data.clear();
    out.data.resize(panels * k * w, 0.0);
    for p in 0..panels {
        let j0 = p * w;
        let cols = (n - j0).min(w);
        let dst = &mut out.data[p * k * w..(p + 1) * k * w];
        match tb {
            Trans::N => {
                for (kk, row) in dst.chunks_exact_mut(w).enumerate() {
                    row[..cols].copy_from_slice(&b[kk * n + j0..kk * n + j0 + cols]);
                }
            }
            Trans::T => pack_transposed(dst, &b[j0 * k..], k, cols, w),
        }
    }
    out.key = Some((b.as_ptr() as usize, k, n, tb));
}

/// Packs `cols` rows of a row-major `[_, k]` matrix (from its row 0) as a panel `w` wide:
/// `dst[kk * w + j] = src[j * k + kk]` for `j < cols` (the rest of `dst` is left as it is).
fn pack_transposed(dst: &mut [f32], src: &[f32], k: usize, cols: usize, w: usize) {
    assert!(dst.len() >= k * w && cols <= w && src.len() >= cols * k, "pack: short buffer");
    // Blocks of 8 rows x 8 columns of src by 8 x 8 transposes (AVX2), the rest one by one.
    let (j8, k8) = if super::simd::detected() >= super::simd::Level::Avx2 {
        (cols / 8 * 8, k / 8 * 8)
    } else {
        (0, 0)
    };
    // SAFETY: AVX2 is available when j8 > 0; the transposes read rows < j8 <= cols of src at
    // columns < k8 <= k and write rows < k8 of dst at columns < j8 <= w (asserted above).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        transpose_blocks(dst, src, k, w, j8, k8)
    };
    for j in 0..cols {
        let from = if j < j8 { k8 } else { 0 };
        for kk in from..k {
            dst[kk * w + j] = src[j * k + kk];
        }
    }
}

/// The 8 x 8 transposes of [`pack_transposed`]: rows `0..j8` of `src`, columns `0..k8`.
///
/// # Safety
/// AVX2 is available if `j8 > 0`; `src` holds `j8` rows of `k` floats, `dst` holds `k8` rows
/// of `w >= j8` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_blocks(dst: &mut [f32], src: &[f32], k: usize, w: usize, j8: usize, k8: usize) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for jb in (0..j8).step_by(8) {
        for kb in (0..k8).step_by(8) {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add((jb + i) * k + kb)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (t, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(d.add((kb + t) * w + jb), v);
            }
        }
    }
}

/// `dst[m, n] (=|+=) alpha op(a) op(b)` with `op(b)` read from `packed` (which must hold `b`,
/// see [`PackedRhs::holds`]), on the calling thread (`op(a)` is `[m, k]`, row-major buffers).
///
/// # Panics
/// If `packed` does not hold `b`, a buffer is shorter than its shape, or the CPU lacks AVX-512.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_f32_packed(
    dst: &mut [f32],
    (m, n): (usize, usize),
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    packed: &PackedRhs,
    k: usize,
    alpha: f32,
    accum: Accum,
) {
    assert!(packed.holds(b.as_ptr() as usize, k, n, tb), "gemm_f32_packed: not the packed operand");
    assert!(dst.len() >= m * n && a.len() >= m * k, "gemm_f32_packed: short buffer");
    assert!(supported(), "gemm_f32_packed needs AVX-512");
    let w = panel_width(n);
    assert!(packed.data.len() >= n.div_ceil(w) * k * w, "gemm_f32_packed: short panels");
    PRODUCTS.with(|c| c.set(c.get() + 1));
    #[cfg(target_arch = "x86_64")]
    {
        // op(a)(i, kk) = a[i * a_rs + kk * a_cs]
        let (a_rs, a_cs) = match ta {
            Trans::N => (k, 1),
            Trans::T => (1, m),
        };
        let add = accum == Accum::Add;
        let mr = if w == 16 { 8 } else { 6 };
        // Panels outer: one panel (k x 64 floats) stays in L1 while the row blocks pass.
        for p in 0..n.div_ceil(w) {
            let j0 = p * w;
            let cols = (n - j0).min(w);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(mr);
                // SAFETY: AVX-512 was checked above; every pointer stays inside its buffer:
                // rows i..i+rows of op(a) and of dst, columns j0..j0+cols of dst (stores are
                // masked to them), k rows of w floats of panel p (asserted above).
                unsafe {
                    let t = Tile {
                        k,
                        ap: a.as_ptr().add(i * a_rs),
                        a_rs,
                        a_cs,
                        bp: packed.data.as_ptr().add(p * k * w),
                        cp: dst.as_mut_ptr().add(i * n + j0),
                        ldc: n,
                        cols,
                        alpha,
                        add,
                    };
                    if w == 16 {
                        match rows {
                            8 => t.run::<8, 1>(),
                            7 => t.run::<7, 1>(),
                            6 => t.run::<6, 1>(),
                            5 => t.run::<5, 1>(),
                            4 => t.run::<4, 1>(),
                            3 => t.run::<3, 1>(),
                            2 => t.run::<2, 1>(),
                            _ => t.run::<1, 1>(),
                        }
                    } else {
                        match rows {
                            6 => t.run::<6, 4>(),
                            5 => t.run::<5, 4>(),
                            4 => t.run::<4, 4>(),
                            3 => t.run::<3, 4>(),
                            2 => t.run::<2, 4>(),
                            _ => t.run::<1, 4>(),
                        }
                    }
                }
                i += rows;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, m, n, a, ta, k, alpha, accum);
    }
}

/// One register tile's operands: up to 8 rows of `op(a)` times one packed panel.
#[cfg(target_arch = "x86_64")]
struct Tile {
    k: usize,
    ap: *const f32,
    a_rs: usize,
    a_cs: usize,
    bp: *const f32,
    cp: *mut f32,
    ldc: usize,
    cols: usize,
    alpha: f32,
    add: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// Computes the `R x cols` block of the result from a panel `16 V` wide and stores (or adds)
    /// it.
    ///
    /// # Safety
    /// AVX-512 is available; the pointers cover `R` rows of `op(a)` and of the result, `cols`
    /// columns of the result and `k` rows of `16 V` floats of the panel.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn run<const R: usize, const V: usize>(&self) {
        use std::arch::x86_64::*;
        let mut c = [[_mm512_setzero_ps(); V]; R];
        let (mut bp, mut ap) = (self.bp, self.ap);
        for _ in 0..self.k {
            let b: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(bp.add(16 * v)));
            for (r, cr) in c.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r * self.a_rs));
                for (cv, bv) in cr.iter_mut().zip(&b) {
                    *cv = _mm512_fmadd_ps(av, *bv, *cv);
                }
            }
            bp = bp.add(16 * V);
            ap = ap.add(self.a_cs);
        }
        let alpha = _mm512_set1_ps(self.alpha);
        for (r, cr) in c.iter().enumerate() {
            let row = self.cp.add(r * self.ldc);
            for (v, &x) in cr.iter().enumerate() {
                let lo = 16 * v;
                let mask: u16 = match self.cols.saturating_sub(lo) {
                    0 => continue,
                    l if l >= 16 => u16::MAX,
                    l => (1u16 << l) - 1,
                };
                let mut x = x;
                if self.alpha != 1.0 {
                    x = _mm512_mul_ps(x, alpha);
                }
                if self.add {
                    x = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row.add(lo)), x);
                }
                _mm512_mask_storeu_ps(row.add(lo), mask, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `op(a) op(b)` in f64, the naive sum.
    fn reference(
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        ta: Trans,
        b: &[f32],
        tb: Trans,
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|kk| {
                        let x = match ta {
                            Trans::N => a[i * k + kk],
                            Trans::T => a[kk * m + i],
                        };
                        let y = match tb {
                            Trans::N => b[kk * n + j],
                            Trans::T => b[j * k + kk],
                        };
                        x as f64 * y as f64
                    })
                    .sum();
            }
        }
        out
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    #[test]
    fn panels_hold_op_b_zero_padded() {
        for tb in [Trans::N, Trans::T] {
            for (k, n) in [
                (3, 5),
                (4, 16),
                (2, 17),
                (5, 64),
                (3, 130),
                (8, 8),
                (17, 70),
                (128, 128),
                (24, 10),
            ] {
                let b = values(k * n, 1);
                let mut p = PackedRhs::default();
                pack_panels(&mut p, &b, tb, k, n);
                // One 16-wide panel for results at most 16 wide, else 64-wide ones.
                let w = if n <= 16 { 16 } else { 64 };
                assert_eq!(p.data.len(), n.div_ceil(w) * k * w);
                for (idx, &v) in p.data.iter().enumerate() {
                    let (panel, rest) = (idx / (k * w), idx % (k * w));
                    let (kk, j) = (rest / w, panel * w + rest % w);
                    let want = match (j < n, tb) {
                        (false, _) => 0.0,
                        (true, Trans::N) => b[kk * n + j],
                        (true, Trans::T) => b[j * k + kk],
                    };
                    assert_eq!(v.to_bits(), want.to_bits(), "{tb:?} k={k} n={n} at {idx}");
                }
                assert!(p.holds(b.as_ptr() as usize, k, n, tb));
                let other = if tb == Trans::N { Trans::T } else { Trans::N };
                assert!(!p.holds(b.as_ptr() as usize, k, n, other));
                p.clear();
                assert!(!p.is_packed());
            }
        }
    }

    #[test]
    fn only_operands_within_the_limits_are_packed() {
        // (k, n): at most 1024 deep and 2^18 elements; each packed only where the kernel runs.
        for (k, n, fits) in [(64, 64, true), (1024, 256, true), (1025, 8, false), (600, 600, false)]
        {
            let b = values(k * n, 1);
            let mut p = PackedRhs::default();
            pack(&mut p, &b, Trans::N, k, n);
            assert_eq!(p.is_packed(), fits && available(), "k={k} n={n}");
            assert_eq!(applies(1, n, k), fits && available(), "k={k} n={n}");
        }
    }

    #[test]
    fn the_kernel_is_the_product_for_every_shape_transpose_and_accumulation() {
        if !supported() {
            eprintln!("skipped: this CPU lacks AVX-512, where the kernel is never used");
            return;
        }
        let shapes = [
            (1, 1, 1),
            (6, 64, 128),
            (64, 128, 128),
            (13, 70, 9),
            (64, 10, 128),
            (9, 16, 5),
            (7, 17, 33),
            (64, 128, 10),
            (5, 200, 3),
        ];
        // Every number of rows left for the last tile of both kernels (8 and 6 rows a tile).
        let ragged = (1..=9).flat_map(|m| [(m, 10, 7), (m, 70, 7)]);
        for (m, n, k) in shapes.into_iter().chain(ragged) {
            for ta in [Trans::N, Trans::T] {
                for tb in [Trans::N, Trans::T] {
                    let (a, b) = (values(m * k, 2), values(k * n, 3));
                    let want = reference((m, n, k), &a, ta, &b, tb);
                    let mut p = PackedRhs::default();
                    pack_panels(&mut p, &b, tb, k, n);
                    for (accum, alpha) in [(Accum::Replace, 1.0), (Accum::Add, -0.5)] {
                        let start = values(m * n, 4);
                        let mut d = start.clone();
                        gemm_f32_packed(&mut d, (m, n), &a, ta, &b, tb, &p, k, alpha, accum);
                        for (i, (&got, &w)) in d.iter().zip(&want).enumerate() {
                            let base = if accum == Accum::Add { start[i] as f64 } else { 0.0 };
                            let w = base + alpha as f64 * w;
                            let tol = 1e-5 * (1.0 + k as f64).sqrt() * (1.0 + w.abs());
                            assert!(
                                (got as f64 - w).abs() <= tol,
                                "[{m}, {n}, {k}] {ta:?}{tb:?} {accum:?} at {i}: {got} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn each_output_is_one_fma_chain_in_k_order() {
        if !supported() {
            eprintln!("skipped: this CPU lacks AVX-512, where the kernel is never used");
            return;
        }
        let (m, n, k) = (7, 70, 19);
        let (a, b) = (values(m * k, 5), values(k * n, 6));
        let mut p = PackedRhs::default();
        pack_panels(&mut p, &b, Trans::N, k, n);
        let mut d = vec![0.0; m * n];
        gemm_f32_packed(&mut d, (m, n), &a, Trans::N, &b, Trans::N, &p, k, 1.0, Accum::Replace);
        for i in 0..m {
            for j in 0..n {
                let chain = (0..k).fold(0.0f32, |s, kk| a[i * k + kk].mul_add(b[kk * n + j], s));
                assert_eq!(d[i * n + j].to_bits(), chain.to_bits(), "({i}, {j})");
            }
        }
    }

    #[test]
    #[should_panic(expected = "not the packed operand")]
    fn a_product_with_another_operand_is_refused() {
        let (b, other) = (values(12, 1), values(12, 1));
        let mut p = PackedRhs::default();
        pack_panels(&mut p, &b, Trans::N, 3, 4);
        let mut d = vec![0.0; 8];
        gemm_f32_packed(
            &mut d,
            (2, 4),
            &values(6, 2),
            Trans::N,
            &other,
            Trans::N,
            &p,
            3,
            1.0,
            Accum::Replace,
        );
    }
}
