//! Small f32 products on one thread for AVX2 + FMA CPUs: a 6 x 16 register-tiled kernel.
//!
//! The products of PC inference are thin (a 64-row batch shard times a 128 x 128 weight) and
//! repeated T times per batch; at these shapes faer's general kernels spend a third of their
//! time outside the multiply-adds (per-call set-up, packing both operands, edge kernels). This
//! kernel packs only `op(b)` when it must (transposed, or the last panel of a width that is not
//! a multiple of 16), reads `op(a)` in place by broadcasts, and keeps a 6 x 16 block of the
//! result in twelve AVX registers over the whole inner dimension, so each output is one chain
//! of fused multiply-adds in `k` order (the naive sum's order). Used by [`super::Cpu`]'s
//! `gemm` for sequential f32 products on AVX2 machines (see [`applies`]); AVX-512 CPUs keep
//! faer's 512-bit kernels.

use super::backend::{Accum, Trans};
use std::cell::RefCell;

/// Rows of the register tile.
const MR: usize = 6;
/// Columns of the register tile (two AVX vectors).
const NR: usize = 16;
/// Largest inner dimension this path takes (a 16-column panel of `op(b)` stays in L1/L2).
const MAX_K: usize = 1024;
/// Largest `n * k` this path takes: beyond it faer's cache blocking wins.
const MAX_NK: usize = 1 << 18;

thread_local! {
    /// Packed panels of `op(b)`, allocated once per thread at the largest size a product on
    /// this path needs (pages are touched only as used), so no call allocates after the first.
    static PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A right operand `op(b)` packed once for many products (a weight, fixed during an
/// inference); empty until [`super::Cpu::pack_rhs`] fills it and after [`PackedRhs::clear`].
#[derive(Clone, Debug, Default)]
pub struct PackedRhs {
    /// Every 16-column panel, `k x 16` each.
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
}

/// Whether the kernel takes a sequential product of these sizes on this CPU.
pub(super) fn applies(m: usize, n: usize, k: usize) -> bool {
    m > 0 && n > 0 && k > 0 && k <= MAX_K && n * k <= MAX_NK && available()
}

/// Whether the CPU has AVX2 and FMA and the SIMD level in use is exactly AVX2.
fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::simd::level() == super::simd::Level::Avx2
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU can run the kernel at all (tests call it on any AVX2 machine).
fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Packs panel `p` of `op(b)` (`[k, n]`) into `buf[p * k * 16..]` as
/// `buf[.. + kk * 16 + j] = op(b)(kk, p * 16 + j)` when it must be packed (`all`, a transposed
/// `b` or a ragged last panel; others are read in place).
fn panel(buf: &mut [f32], b: &[f32], tb: Trans, k: usize, n: usize, p: usize, all: bool) {
    let j0 = p * NR;
    let cols = (n - j0).min(NR);
    let out = &mut buf[p * k * NR..(p + 1) * k * NR];
    match tb {
        Trans::N if cols == NR && !all => {}
        Trans::N => {
            for kk in 0..k {
                let row = &mut out[kk * NR..(kk + 1) * NR];
                row[..cols].copy_from_slice(&b[kk * n + j0..kk * n + j0 + cols]);
                row[cols..].fill(0.0);
            }
        }
        Trans::T => pack_transposed(out, &b[j0 * k..], k, cols),
    }
}

/// Panel `p`'s address and row stride (`bp[kk * ldb + j] = op(b)(kk, p * 16 + j)`): packed in
/// `buf`, or in place in a plain `b`.
fn panel_at(
    buf: &[f32],
    b: &[f32],
    tb: Trans,
    k: usize,
    n: usize,
    p: usize,
    all: bool,
) -> (*const f32, usize) {
    match tb {
        Trans::N if (p + 1) * NR <= n && !all => (b[p * NR..].as_ptr(), n),
        _ => (buf[p * k * NR..(p + 1) * k * NR].as_ptr(), NR),
    }
}

/// Packs `op(b)` (`[k, n]`, `b` row-major) into `out` if the kernel will take products with it
/// (else leaves `out` empty).
pub(super) fn pack(out: &mut PackedRhs, b: &[f32], tb: Trans, k: usize, n: usize) {
    out.key = None;
    if applies(1, n, k) && b.len() >= k * n {
        pack_panels(out, b, tb, k, n);
    }
}

/// [`pack`] on any CPU (the panels are plain memory).
fn pack_panels(out: &mut PackedRhs, b: &[f32], tb: Trans, k: usize, n: usize) {
    let panels = n.div_ceil(NR);
    if out.data.len() < panels * k * NR {
        out.data.resize(panels * k * NR, 0.0);
    }
    for p in 0..panels {
        panel(&mut out.data, b, tb, k, n, p, true);
    }
    out.key = Some((b.as_ptr() as usize, k, n, tb));
}

/// `dst[m, n] (=|+=) alpha op(a) op(b)` with `op(b)` read from `packed` (which must hold `b`,
/// see [`PackedRhs::holds`]), on the calling thread.
///
/// # Panics
/// If `packed` does not hold `b`, a buffer is shorter than its shape, or the CPU lacks AVX2 +
/// FMA.
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
    tiles(dst, (m, n), a, ta, k, alpha, accum, |p| panel_at(&packed.data, b, tb, k, n, p, true));
}

/// `dst[m, n] (=|+=) alpha op(a) op(b)` on row-major buffers (`op(a)` is `[m, k]`, `op(b)` is
/// `[k, n]`), on the calling thread.
///
/// # Panics
/// If a buffer is shorter than its shape or the CPU lacks AVX2 + FMA.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_f32(
    dst: &mut [f32],
    (m, n): (usize, usize),
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    k: usize,
    alpha: f32,
    accum: Accum,
) {
    assert!(b.len() >= k * n, "gemm_f32: short buffer");
    PACK.with(|buf| {
        let mut buf = buf.borrow_mut();
        let panels = n.div_ceil(NR);
        if buf.is_empty() {
            // panels * k * 16 <= (n + 15) * k <= MAX_NK + 15 * MAX_K
            *buf = vec![0.0; MAX_NK + NR * MAX_K];
        }
        assert!(buf.len() >= panels * k * NR, "gemm_f32: {k} x {n} is not a small product");
        for p in 0..panels {
            panel(&mut buf, b, tb, k, n, p, false);
        }
        tiles(dst, (m, n), a, ta, k, alpha, accum, |p| panel_at(&buf, b, tb, k, n, p, false));
    });
}

/// The register tiles of one product, rows of `op(a)` outer (a block of rows stays in L1
/// while the panels stream past it); `panel(p)` gives panel `p`'s address and row stride.
#[allow(clippy::too_many_arguments)]
fn tiles(
    dst: &mut [f32],
    (m, n): (usize, usize),
    a: &[f32],
    ta: Trans,
    k: usize,
    alpha: f32,
    accum: Accum,
    panel: impl Fn(usize) -> (*const f32, usize),
) {
    assert!(dst.len() >= m * n && a.len() >= m * k, "gemm_f32: short buffer");
    assert!(supported(), "gemm_f32 needs AVX2 and FMA");
    #[cfg(target_arch = "x86_64")]
    {
        // op(a)(i, kk) = a[i * a_rs + kk * a_cs]
        let (a_rs, a_cs) = match ta {
            Trans::N => (k, 1),
            Trans::T => (1, m),
        };
        let add = accum == Accum::Add;
        let panels = n.div_ceil(NR);
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(MR);
            for p in 0..panels {
                let j0 = p * NR;
                let cols = (n - j0).min(NR);
                let (bp, ldb) = panel(p);
                // SAFETY: AVX2 and FMA were checked above; every pointer stays inside its
                // buffer: rows i..i+rows of op(a) and dst, columns j0..j0+cols of dst, k rows
                // of the panel (16 wide packed, or n wide in place from column j0 with 16 left).
                unsafe {
                    let ap = a.as_ptr().add(i * a_rs);
                    let cp = dst.as_mut_ptr().add(i * n + j0);
                    let t = Tile { k, ap, a_rs, a_cs, bp, ldb, cp, ldc: n, cols, alpha, add };
                    match rows {
                        6 => t.run::<6>(),
                        5 => t.run::<5>(),
                        4 => t.run::<4>(),
                        3 => t.run::<3>(),
                        2 => t.run::<2>(),
                        _ => t.run::<1>(),
                    }
                }
            }
            i += rows;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, m, n, a, ta, k, alpha, accum, panel);
    }
}

/// Packs `cols` rows of a row-major `[_, k]` matrix (from its row 0) as a panel
/// `buf[kk * 16 + j] = src[j * k + kk]`, zero past `cols`.
fn pack_transposed(buf: &mut [f32], src: &[f32], k: usize, cols: usize) {
    assert!(buf.len() >= k * NR && cols <= NR && src.len() >= cols * k);
    // Full halves of 8 rows by 8 x 8 transposes, the rest (ragged half, k tail) one by one.
    let halves = cols / 8;
    let k8 = k / 8 * 8;
    // SAFETY: the caller checked AVX2 + FMA; the transposes read rows h*8..h*8+8 < cols of
    // src at columns < k8 <= k and write rows < k8 of buf (16 wide), all in bounds (asserted).
    unsafe { transpose_halves(buf, src, k, halves, k8) };
    for kk in 0..k {
        let row = &mut buf[kk * NR..(kk + 1) * NR];
        let from = if kk < k8 { halves * 8 } else { 0 };
        if from == NR {
            continue;
        }
        for (j, r) in row.iter_mut().enumerate().skip(from) {
            *r = if j < cols { src[j * k + kk] } else { 0.0 };
        }
    }
}

/// The 8 x 8 transposes of [`pack_transposed`] for rows `0..halves * 8`, columns `0..k8`.
///
/// # Safety
/// AVX2 is available; `src` holds `halves * 8` rows of `k` floats, `buf` holds `k8` rows of 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose_halves(buf: &mut [f32], src: &[f32], k: usize, halves: usize, k8: usize) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), buf.as_mut_ptr());
    for h in 0..halves {
        for k0 in (0..k8).step_by(8) {
            let r: [__m256; 8] =
                std::array::from_fn(|i| _mm256_loadu_ps(s.add((h * 8 + i) * k + k0)));
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
                _mm256_storeu_ps(d.add((k0 + t) * NR + h * 8), v);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose_halves(_: &mut [f32], _: &[f32], _: usize, _: usize, _: usize) {}

/// One register tile's operands: up to 6 rows of `op(a)` times one 16-column panel.
#[cfg(target_arch = "x86_64")]
struct Tile {
    k: usize,
    ap: *const f32,
    a_rs: usize,
    a_cs: usize,
    bp: *const f32,
    ldb: usize,
    cp: *mut f32,
    ldc: usize,
    cols: usize,
    alpha: f32,
    add: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// Computes the `R x cols` block of the result and stores (or adds) it.
    ///
    /// # Safety
    /// AVX2 and FMA are available; the pointers cover `R` rows of `op(a)` and of the result,
    /// `cols` columns of the result and `k` rows of 16 readable floats of the panel.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        for kk in 0..self.k {
            let b0 = _mm256_loadu_ps(self.bp.add(kk * self.ldb));
            let b1 = _mm256_loadu_ps(self.bp.add(kk * self.ldb + 8));
            let a = self.ap.add(kk * self.a_cs);
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*a.add(r * self.a_rs));
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
        }
        let alpha = _mm256_set1_ps(self.alpha);
        let scale = self.alpha != 1.0;
        for r in 0..R {
            if scale {
                lo[r] = _mm256_mul_ps(lo[r], alpha);
                hi[r] = _mm256_mul_ps(hi[r], alpha);
            }
            let c = self.cp.add(r * self.ldc);
            if self.cols == NR {
                if self.add {
                    _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), lo[r]));
                    _mm256_storeu_ps(c.add(8), _mm256_add_ps(_mm256_loadu_ps(c.add(8)), hi[r]));
                } else {
                    _mm256_storeu_ps(c, lo[r]);
                    _mm256_storeu_ps(c.add(8), hi[r]);
                }
            } else {
                let mut tmp = [0.0f32; NR];
                _mm256_storeu_ps(tmp.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), hi[r]);
                for (j, &v) in tmp.iter().enumerate().take(self.cols) {
                    let d = c.add(j);
                    *d = if self.add { *d + v } else { v };
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn naive(
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        ta: Trans,
        b: &[f32],
        tb: Trans,
    ) -> Vec<f64> {
        let at = |i: usize, kk: usize| match ta {
            Trans::N => a[i * k + kk],
            Trans::T => a[kk * m + i],
        };
        let bt = |kk: usize, j: usize| match tb {
            Trans::N => b[kk * n + j],
            Trans::T => b[j * k + kk],
        };
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|kk| at(i, kk) as f64 * bt(kk, j) as f64).sum();
            }
        }
        out
    }

    #[test]
    fn matches_the_naive_product_for_all_transposes_edges_and_accumulations() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let mut seed = 12345u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        // Every row remainder (1..6), full and ragged panels and halves of panels, k = 1, odd
        // k, k with a tail past its multiple of 8.
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 3),
            (12, 32, 5),
            (64, 128, 128),
            (5, 10, 33),
            (11, 40, 1),
            (7, 27, 19),
        ] {
            for ta in [Trans::N, Trans::T] {
                for tb in [Trans::N, Trans::T] {
                    let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
                    let c0: Vec<f32> = (0..m * n).map(|_| next()).collect();
                    let want = naive((m, n, k), &a, ta, &b, tb);
                    for (accum, alpha) in [(Accum::Replace, 1.0f32), (Accum::Add, -2.0)] {
                        let mut got = c0.clone();
                        gemm_f32(&mut got, (m, n), &a, ta, &b, tb, k, alpha, accum);
                        for idx in 0..m * n {
                            let base = if accum == Accum::Add { c0[idx] as f64 } else { 0.0 };
                            let w = base + alpha as f64 * want[idx];
                            let tol = 1e-5 * (1.0 + (k as f64).sqrt());
                            assert!(
                                (got[idx] as f64 - w).abs() <= tol,
                                "{m}x{n}x{k} {ta:?}{tb:?} {accum:?} at {idx}: {} vs {w}",
                                got[idx]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_packed_operand_gives_the_same_bits_as_packing_per_call() {
        if !supported() {
            return;
        }
        let val = |i: usize| ((i * 7919 % 113) as f32 - 56.0) / 37.0;
        for &(m, n, k) in &[(7, 27, 19), (64, 128, 128), (13, 10, 40), (3, 16, 1)] {
            for tb in [Trans::N, Trans::T] {
                for ta in [Trans::N, Trans::T] {
                    let a: Vec<f32> = (0..m * k).map(val).collect();
                    let b: Vec<f32> = (0..k * n).map(|i| val(i + 5)).collect();
                    let mut packed = PackedRhs::default();
                    pack_panels(&mut packed, &b, tb, k, n);
                    assert!(packed.holds(b.as_ptr() as usize, k, n, tb));
                    assert!(!packed.holds(b.as_ptr() as usize, k, n + 1, tb));
                    let c0: Vec<f32> = (0..m * n).map(|i| val(i + 11)).collect();
                    let (mut want, mut got) = (c0.clone(), c0);
                    gemm_f32(&mut want, (m, n), &a, ta, &b, tb, k, 0.5, Accum::Add);
                    gemm_f32_packed(&mut got, (m, n), &a, ta, &b, tb, &packed, k, 0.5, Accum::Add);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{m}x{n}x{k} {ta:?}{tb:?}");
                    packed.clear();
                    assert!(!packed.holds(b.as_ptr() as usize, k, n, tb));
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "not the packed operand")]
    fn a_packing_of_another_operand_is_refused() {
        let (b, other) = (vec![1.0f32; 64], vec![2.0f32; 64]);
        let mut packed = PackedRhs::default();
        pack_panels(&mut packed, &b, Trans::N, 8, 8);
        let mut c = vec![0.0f32; 8];
        gemm_f32_packed(
            &mut c,
            (1, 8),
            &[1.0; 8],
            Trans::N,
            &other,
            Trans::N,
            &packed,
            8,
            1.0,
            Accum::Replace,
        );
    }

    #[test]
    fn each_output_is_one_fused_chain_in_k_order() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        // A sum that depends on its order: 1 + 1e8 - 1e8 is 0 in f32 from the left (the 1 is
        // rounded away) and 1 from the right; fused multiply-adds in k order give the former.
        let (m, n, k) = (2, 3, 3);
        let a = vec![1.0f32; m * k];
        let b: Vec<f32> = [1.0f32, 1e8, -1e8].iter().flat_map(|&v| [v; 3]).collect();
        let mut got = vec![7.0f32; m * n];
        gemm_f32(&mut got, (m, n), &a, Trans::N, &b, Trans::N, k, 1.0, Accum::Replace);
        assert!(got.iter().all(|&v| v == 0.0), "{got:?}");
    }
}
