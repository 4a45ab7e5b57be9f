//! The CPU backend: `faer` for matrix products (small f32 ones against a packed weight on
//! AVX-512 by `small_gemm`), rayon for element-wise work.

use super::backend::{Accum, Backend, Par, Trans};
use super::{Mat, PackedRhs, Scalar, Tensor};
use crate::layers::Activation;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Below this many multiply-adds a product runs on one thread (thread hand-off costs more).
const GEMM_PAR_MIN: usize = 1 << 22;
/// Below this many elements an element-wise kernel runs on one thread.
const EW_PAR_MIN: usize = 1 << 15;

/// Sets the number of threads kernels may use (the global rayon pool is sized on first call).
pub fn set_threads(n: usize) {
    let n = n.max(1);
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    THREADS.store(n.min(rayon::current_num_threads().max(1)), Ordering::Relaxed);
}

/// Number of threads kernels use under [`Par::Auto`].
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads().max(1),
        n => n,
    }
}

/// The CPU device.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

thread_local! {
    static SEQ_SCOPE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every [`Par::Auto`] kernel on the calling thread only (used when the caller
/// already parallelises at a coarser grain, e.g. one batch shard per thread).
pub fn sequential<R>(f: impl FnOnce() -> R) -> R {
    let prev = SEQ_SCOPE.with(|c| c.replace(true));
    let r = f();
    SEQ_SCOPE.with(|c| c.set(prev));
    r
}

/// Runs `f` on a thread of the kernels' pool (the global rayon pool; directly when already on
/// one). Fork-joins started from a pool thread push their second half to its own queue; started
/// from an outside thread, each one is handed to the pool while the caller blocks, costing two
/// thread wake-ups per fork-join.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    out.expect("the scope ran its body")
}

/// Whether an [`on_pool_hot`] call holds the pool's other threads now (one at a time).
static HOT: AtomicBool = AtomicBool::new(false);
/// Threads spinning in [`help_until`] now.
static HELPING: AtomicUsize = AtomicUsize::new(0);

/// [`on_pool`], with the other kernel threads taking the pool's work as it comes until `f`
/// returns, instead of going to sleep whenever they run out: a loop of short fork-joins (an
/// epoch's batches) then starts each one without waking a thread, which costs tens of
/// microseconds on a VM. Those threads spin (yielding the core now and then) while `f` runs.
/// One call at a time holds them; a concurrent call runs as [`on_pool`].
pub fn on_pool_hot<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    on_pool(|| {
        let helpers = threads().min(rayon::current_num_threads()).saturating_sub(1);
        if helpers == 0
            || HOT.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            return f();
        }
        /// Sets its flag when dropped, also when `f` unwinds.
        struct SetOnDrop<'a>(&'a AtomicBool, bool);
        impl Drop for SetOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::Release);
            }
        }
        let _release = SetOnDrop(&HOT, false);
        let owner = rayon::current_thread_index();
        let stop = AtomicBool::new(false);
        let mut out = None;
        rayon::scope(|s| {
            for _ in 0..helpers {
                s.spawn(|_| help_until(&stop, owner));
            }
            let _stop = SetOnDrop(&stop, true);
            out = Some(f());
        });
        out.expect("the scope ran its body")
    })
}

/// Runs the pool's jobs as they come until `stop`; returns at once on the thread `owner` that
/// runs the body of [`on_pool_hot`] (it waits on its own fork-joins and must not spin here).
fn help_until(stop: &AtomicBool, owner: Option<usize>) {
    if rayon::current_thread_index() == owner {
        return;
    }
    HELPING.fetch_add(1, Ordering::AcqRel);
    let mut idle = 0u32;
    while !stop.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            idle = 0;
        } else {
            idle = idle.wrapping_add(1);
            if idle.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
    HELPING.fetch_sub(1, Ordering::AcqRel);
}

/// How many threads are spinning for an [`on_pool_hot`] call now (a diagnostic).
pub fn helping_threads() -> usize {
    HELPING.load(Ordering::Acquire)
}

fn in_seq_scope() -> bool {
    SEQ_SCOPE.with(|c| c.get())
}

fn gemm_threads(par: Par, work: usize) -> usize {
    match par {
        Par::Seq => 1,
        Par::Threads(n) => n.max(1),
        Par::Auto if work >= GEMM_PAR_MIN && !in_seq_scope() => threads(),
        Par::Auto => 1,
    }
}

fn ew_chunk(len: usize) -> usize {
    let t = threads();
    if t <= 1 || len < EW_PAR_MIN || in_seq_scope() {
        len.max(1)
    } else {
        len.div_ceil(t).max(4096)
    }
}

/// How many tasks an element-wise pass over `len` elements uses (1 below the parallel
/// threshold, on one thread, or inside [`sequential`]).
pub fn ew_tasks(len: usize) -> usize {
    len.div_ceil(ew_chunk(len)).max(1)
}

/// One optimiser update of a parameter with this step's coefficients: the arithmetic of
/// [`Backend::sgd_step`] and [`Backend::adam_step`], shared with fused multi-tensor steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update<T> {
    /// `p -= lr scale g`.
    Sgd {
        /// Gradient scale (e.g. `1 / batch`).
        scale: T,
        /// Learning rate.
        lr: T,
    },
    /// `v = momentum v + scale g`, `p -= lr (nesterov ? scale g + momentum v : v)`.
    Momentum {
        /// Gradient scale.
        scale: T,
        /// Learning rate.
        lr: T,
        /// Momentum factor.
        momentum: T,
        /// Nesterov's variant.
        nesterov: bool,
    },
    /// Adam(W) with moments `m`, `v` and bias corrections `bc1`, `bc2`.
    Adam {
        /// Gradient scale.
        scale: T,
        /// Learning rate.
        lr: T,
        /// First-moment decay.
        b1: T,
        /// Second-moment decay.
        b2: T,
        /// Denominator epsilon.
        eps: T,
        /// Decoupled weight decay.
        wd: T,
        /// `1 - beta1^t`.
        bc1: T,
        /// `1 - beta2^t`.
        bc2: T,
    },
}

impl<T: Scalar> Update<T> {
    /// Whether the update keeps a first moment (velocity) and a second moment.
    pub fn state(self) -> (bool, bool) {
        match self {
            Update::Sgd { .. } => (false, false),
            Update::Momentum { .. } => (true, false),
            Update::Adam { .. } => (true, true),
        }
    }

    /// Updates `p` (first moment or velocity `m`, second moment `v`; empty when unused) from
    /// the gradient `g`, element by element.
    #[inline(always)]
    pub fn apply(self, p: &mut [T], m: &mut [T], v: &mut [T], g: &[T]) {
        let one = T::one();
        match self {
            Update::Sgd { scale, lr } => {
                for (a, &b) in p.iter_mut().zip(g) {
                    *a -= lr * scale * b;
                }
            }
            Update::Momentum { scale, lr, momentum, nesterov } => {
                for ((a, vel), &b) in p.iter_mut().zip(m.iter_mut()).zip(g) {
                    let gs = scale * b;
                    *vel = momentum * *vel + gs;
                    *a -= lr * if nesterov { gs + momentum * *vel } else { *vel };
                }
            }
            Update::Adam { scale, lr, b1, b2, eps, wd, bc1, bc2 } => {
                let (ib1, ib2) = (one / bc1, one / bc2);
                for (((pp, mm), vv), &gg) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g)
                {
                    let gs = scale * gg;
                    *mm = b1 * *mm + (one - b1) * gs;
                    *vv = b2 * *vv + (one - b2) * gs * gs;
                    let mh = *mm * ib1;
                    let vh = *vv * ib2;
                    *pp -= lr * (mh / (vh.sqrt() + eps) + wd * *pp);
                }
            }
        }
    }
}

/// `dst = (part(0) + part(1) + ...) * scale` over `parts >= 1` equally long slices, summed in
/// part order (the same bits as adding them pairwise into `dst`, then scaling).
#[inline(always)]
pub fn sum_parts<'a, T: Scalar>(
    dst: &mut [T],
    parts: usize,
    part: impl Fn(usize) -> &'a [T],
    scale: Option<T>,
) {
    assert!(parts >= 1, "sum_parts needs a part");
    if parts == 1 {
        dst.copy_from_slice(part(0));
    } else {
        for ((o, &a), &b) in dst.iter_mut().zip(part(0)).zip(part(1)) {
            *o = a + b;
        }
        for k in 2..parts {
            for (o, &b) in dst.iter_mut().zip(part(k)) {
                *o += T::one() * b;
            }
        }
    }
    if let Some(s) = scale {
        for o in dst.iter_mut() {
            *o *= s;
        }
    }
}

/// Reinterprets a slice of `T` as `U` when they are the same type.
pub(crate) fn cast<T: 'static, U: 'static>(s: &[T]) -> Option<&[U]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>())
        // SAFETY: T and U are the same type.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const U, s.len()) })
}

/// Reinterprets a mutable slice of `T` as `U` when they are the same type.
pub(crate) fn cast_mut<T: 'static, U: 'static>(s: &mut [T]) -> Option<&mut [U]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>())
        // SAFETY: T and U are the same type.
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut U, s.len()) })
}

/// `dst[m, n] (=|+=) alpha op(a) op(b)` on row-major buffers, through faer.
#[allow(clippy::too_many_arguments)]
fn matmul_typed<U: faer::traits::ComplexField>(
    dst: &mut [U],
    (m, n): (usize, usize),
    a: &[U],
    ta: Trans,
    b: &[U],
    tb: Trans,
    k: usize,
    alpha: U,
    accum: faer::Accum,
    par: faer::Par,
) {
    use faer::{MatMut, MatRef};
    let dst = MatMut::from_row_major_slice_mut(dst, m, n);
    let a = match ta {
        Trans::N => MatRef::from_row_major_slice(a, m, k),
        Trans::T => MatRef::from_row_major_slice(a, k, m).transpose(),
    };
    let b = match tb {
        Trans::N => MatRef::from_row_major_slice(b, k, n),
        Trans::T => MatRef::from_row_major_slice(b, n, k).transpose(),
    };
    faer::linalg::matmul::matmul(dst, accum, a, b, alpha, par);
}

impl Cpu {
    /// Packs `op(b)` into `out` for [`Cpu::gemm_packed`] when the small-product path will take
    /// products with it (f32 on an AVX-512 machine, small enough); otherwise leaves `out` empty.
    pub fn pack_rhs<T: Scalar>(&self, b: &Tensor<T>, tb: Trans, out: &mut PackedRhs) {
        let (k, n) = match tb {
            Trans::N => (b.rows(), b.cols()),
            Trans::T => (b.cols(), b.rows()),
        };
        match cast::<T, f32>(b.data()) {
            Some(bd) => super::small_gemm::pack(out, bd, tb, k, n),
            None => out.clear(),
        }
    }

    /// [`Backend::gemm`], reading `op(b)` from `packed` when it holds this `b` (the same buffer,
    /// shape and transpose, packed since `b` last changed: the caller's promise) and the product
    /// runs on one thread; otherwise exactly `gemm`.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn gemm_packed<T: Scalar>(
        &self,
        dst: &mut Tensor<T>,
        accum: Accum,
        a: &impl Mat<T>,
        ta: Trans,
        b: &Tensor<T>,
        tb: Trans,
        packed: &PackedRhs,
        alpha: T,
        par: Par,
    ) {
        let (m, k) = match ta {
            Trans::N => (a.rows(), a.cols()),
            Trans::T => (a.cols(), a.rows()),
        };
        let n = match tb {
            Trans::N => b.cols(),
            Trans::T => b.rows(),
        };
        let fits = dst.shape() == [m, n] && packed.holds(b.data().as_ptr() as usize, k, n, tb);
        if fits && gemm_threads(par, m * n * k) == 1 && super::small_gemm::applies(m, n, k) {
            if let (Some(d), Some(a), Some(b)) = (
                cast_mut::<T, f32>(dst.data_mut()),
                cast::<T, f32>(a.data()),
                cast::<T, f32>(b.data()),
            ) {
                let alpha = alpha.to_f32().unwrap_or(0.0);
                super::small_gemm::gemm_f32_packed(
                    d,
                    (m, n),
                    a,
                    ta,
                    b,
                    tb,
                    packed,
                    k,
                    alpha,
                    accum,
                );
                return;
            }
        }
        self.gemm(dst, accum, a, ta, b, tb, alpha, par);
    }
}

/// Applies `f` to aligned chunks of `dst` and of each input, in parallel for large tensors.
macro_rules! par_zip {
    ($dst:expr, [$($src:expr),*], |$d:ident, $($s:ident),*| $body:block) => {{
        let len = $dst.len();
        let chunk = ew_chunk(len);
        if chunk >= len {
            let $d = &mut $dst[..];
            $(let $s = &$src[..];)*
            super::simd::run(|| $body)
        } else {
            $dst.par_chunks_mut(chunk).enumerate().for_each(|(i, $d)| {
                let lo = i * chunk;
                let hi = lo + $d.len();
                $(let $s = &$src[lo..hi];)*
                super::simd::run(|| $body)
            });
        }
    }};
}

/// One block of 8 elements of [`Backend::energy_map`]: loads, maps, then returns the outputs
/// (so that the caller's stores alias nothing the map reads) and adds the energies lane-wise.
#[inline(always)]
fn energy_block<T: Scalar>(
    f: impl Fn(T, T) -> (T, T, f64) + Copy,
    x8: &[T],
    m8: &[T],
    acc: &mut [f64; 8],
) -> ([T; 8], [T; 8]) {
    let (xv, mv): ([T; 8], [T; 8]) =
        (std::array::from_fn(|j| x8[j]), std::array::from_fn(|j| m8[j]));
    let (mut p, mut q) = ([T::zero(); 8], [T::zero(); 8]);
    for j in 0..8 {
        let (a, b, v) = f(xv[j], mv[j]);
        p[j] = a;
        q[j] = b;
        acc[j] += v;
    }
    (p, q)
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    #[track_caller]
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
    ) {
        // Logical shapes: op(a) is [m, k], op(b) is [k, n].
        let (m, k) = match ta {
            Trans::N => (a.rows(), a.cols()),
            Trans::T => (a.cols(), a.rows()),
        };
        let (kb, n) = match tb {
            Trans::N => (b.rows(), b.cols()),
            Trans::T => (b.cols(), b.rows()),
        };
        assert_eq!(
            k,
            kb,
            "gemm: inner dimensions [{}, {}]{ta:?} x [{}, {}]{tb:?}",
            a.rows(),
            a.cols(),
            b.rows(),
            b.cols()
        );
        assert_eq!(dst.shape(), [m, n], "gemm: destination {dst:?} for [{m}, {n}]");
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            if accum == Accum::Replace {
                dst.fill(T::zero());
            }
            return;
        }
        let nt = gemm_threads(par, m * n * k);
        let par = match std::num::NonZeroUsize::new(nt) {
            Some(n) if nt > 1 => faer::Par::rayon(n.get()),
            _ => faer::Par::Seq,
        };
        let fa = match accum {
            Accum::Replace => faer::Accum::Replace,
            Accum::Add => faer::Accum::Add,
        };
        if let (Some(d), Some(a), Some(b)) =
            (cast_mut::<T, f32>(dst.data_mut()), cast::<T, f32>(a.data()), cast::<T, f32>(b.data()))
        {
            matmul_typed(d, (m, n), a, ta, b, tb, k, alpha.to_f32().unwrap_or(0.0), fa, par);
        } else if let (Some(d), Some(a), Some(b)) =
            (cast_mut::<T, f64>(dst.data_mut()), cast::<T, f64>(a.data()), cast::<T, f64>(b.data()))
        {
            matmul_typed(d, (m, n), a, ta, b, tb, k, alpha.to_f64().unwrap_or(0.0), fa, par);
        } else {
            unreachable!("Scalar is implemented for f32 and f64 only");
        }
    }

    fn act_with_deriv<T: Scalar>(
        &self,
        act: Activation,
        x: &Tensor<T>,
        out: &mut Tensor<T>,
        deriv: &mut Tensor<T>,
    ) {
        assert_eq!(x.shape(), out.shape());
        assert_eq!(x.shape(), deriv.shape());
        let xd = x.data();
        let dd = deriv.data_mut();
        let len = xd.len();
        let chunk = ew_chunk(len);
        let od = out.data_mut();
        if chunk >= len {
            act.apply_with_deriv(xd, od, dd);
        } else {
            od.par_chunks_mut(chunk).zip(dd.par_chunks_mut(chunk)).enumerate().for_each(
                |(i, (o, d))| {
                    let lo = i * chunk;
                    act.apply_with_deriv(&xd[lo..lo + o.len()], o, d);
                },
            );
        }
    }

    fn act<T: Scalar>(&self, act: Activation, x: &Tensor<T>, out: &mut Tensor<T>) {
        assert_eq!(x.shape(), out.shape());
        let xd = x.data();
        let od = out.data_mut();
        par_zip!(od, [xd], |o, xs| { act.apply(xs, o) });
    }

    fn bias_act<T: Scalar>(
        &self,
        act: Activation,
        z: &mut Tensor<T>,
        bias: Option<&Tensor<T>>,
        out: &mut Tensor<T>,
        deriv: Option<&mut Tensor<T>>,
    ) {
        let cols = z.cols();
        if let Some(b) = bias {
            assert_eq!(b.len(), cols, "bias of {} for {cols} columns", b.len());
            let bd = b.data();
            let zd = z.data_mut();
            let rows_per = (ew_chunk(zd.len()) / cols.max(1)).max(1) * cols.max(1);
            let f = |zc: &mut [T]| {
                super::simd::run(|| {
                    for row in zc.chunks_exact_mut(cols) {
                        for (v, &bb) in row.iter_mut().zip(bd) {
                            *v += bb;
                        }
                    }
                })
            };
            if rows_per >= zd.len() {
                f(zd)
            } else {
                zd.par_chunks_mut(rows_per).for_each(f)
            }
        }
        match deriv {
            Some(d) => self.act_with_deriv(act, z, out, d),
            None => self.act(act, z, out),
        }
    }

    fn broadcast_rows<T: Scalar>(&self, dst: &mut Tensor<T>, bias: &Tensor<T>) {
        let cols = dst.cols();
        assert_eq!(bias.len(), cols);
        for row in dst.data_mut().chunks_exact_mut(cols.max(1)) {
            row.copy_from_slice(bias.data());
        }
    }

    fn add_rows<T: Scalar>(&self, dst: &mut Tensor<T>, bias: &Tensor<T>) {
        let cols = dst.cols();
        assert_eq!(bias.len(), cols);
        for row in dst.data_mut().chunks_exact_mut(cols.max(1)) {
            for (v, &b) in row.iter_mut().zip(bias.data()) {
                *v += b;
            }
        }
    }

    fn mul<T: Scalar>(&self, dst: &mut Tensor<T>, accum: Accum, a: &Tensor<T>, b: &Tensor<T>) {
        assert_eq!(dst.shape(), a.shape());
        assert_eq!(dst.shape(), b.shape());
        let (ad, bd) = (a.data(), b.data());
        let dd = dst.data_mut();
        match accum {
            Accum::Replace => par_zip!(dd, [ad, bd], |d, x, y| {
                for ((o, &p), &q) in d.iter_mut().zip(x).zip(y) {
                    *o = p * q;
                }
            }),
            Accum::Add => par_zip!(dd, [ad, bd], |d, x, y| {
                for ((o, &p), &q) in d.iter_mut().zip(x).zip(y) {
                    *o += p * q;
                }
            }),
        }
    }

    fn axpy<T: Scalar>(&self, dst: &mut Tensor<T>, alpha: T, src: &Tensor<T>) {
        assert_eq!(dst.shape(), src.shape());
        let sd = src.data();
        let dd = dst.data_mut();
        par_zip!(dd, [sd], |d, s| {
            for (o, &v) in d.iter_mut().zip(s) {
                *o += alpha * v;
            }
        });
    }

    fn col_sums<T: Scalar>(&self, dst: &mut Tensor<T>, accum: Accum, src: &impl Mat<T>, alpha: T) {
        let cols = src.cols();
        assert_eq!(dst.len(), cols, "col_sums destination");
        let dd = dst.data_mut();
        if accum == Accum::Replace {
            dd.fill(T::zero());
        }
        // Fixed sequential order: deterministic whatever the thread count.
        super::simd::run(|| {
            for row in src.data().chunks_exact(cols.max(1)) {
                for (o, &v) in dd.iter_mut().zip(row) {
                    *o += alpha * v;
                }
            }
        })
    }

    fn energy_map<T: Scalar>(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        g_x: Option<&mut Tensor<T>>,
        f: impl Fn(T, T) -> (T, T, f64) + Sync + Copy,
    ) -> f64 {
        assert_eq!(x.shape(), mu.shape());
        assert_eq!(x.shape(), g_mu.shape());
        let (xd, md) = (x.data(), mu.data());
        let len = xd.len();
        let chunk = ew_chunk(len);
        // Eight independent f64 lanes: the sum vectorises and stays deterministic. Each block
        // of 8 is loaded, mapped and stored as a whole, with `f` passed by value (`Copy`): the
        // stores can then alias neither the loads nor `f`'s captures, and the block vectorises
        // (with `f` read through a reference and element-wise stores it compiled to scalar
        // code, 13% of PC's samples on an AVX-512 machine).
        let kernel = |lo: usize, gm: &mut [T], gx: Option<&mut [T]>| -> f64 {
            let hi = lo + gm.len();
            let (xs, ms) = (&xd[lo..hi], &md[lo..hi]);
            let mut acc = [0.0f64; 8];
            let whole = gm.len() / 8 * 8;
            match gx {
                Some(gx) => {
                    for (((a8, b8), x8), m8) in gm
                        .chunks_exact_mut(8)
                        .zip(gx.chunks_exact_mut(8))
                        .zip(xs.chunks_exact(8))
                        .zip(ms.chunks_exact(8))
                    {
                        let (p, q) = energy_block(f, x8, m8, &mut acc);
                        a8.copy_from_slice(&p);
                        b8.copy_from_slice(&q);
                    }
                    for j in whole..gm.len() {
                        let (p, q, v) = f(xs[j], ms[j]);
                        gm[j] = p;
                        gx[j] = q;
                        acc[0] += v;
                    }
                }
                None => {
                    for ((a8, x8), m8) in
                        gm.chunks_exact_mut(8).zip(xs.chunks_exact(8)).zip(ms.chunks_exact(8))
                    {
                        let (p, _) = energy_block(f, x8, m8, &mut acc);
                        a8.copy_from_slice(&p);
                    }
                    for j in whole..gm.len() {
                        let (p, _, v) = f(xs[j], ms[j]);
                        gm[j] = p;
                        acc[0] += v;
                    }
                }
            }
            acc.iter().sum()
        };
        let kernel = |lo: usize, gm: &mut [T], gx: Option<&mut [T]>| -> f64 {
            super::simd::run(|| kernel(lo, gm, gx))
        };
        if chunk >= len {
            return kernel(0, g_mu.data_mut(), g_x.map(|t| t.data_mut()));
        }
        // Fixed chunks, partial sums added in chunk order: deterministic for a thread count.
        const MAX_CHUNKS: usize = 64;
        let chunk = chunk.max(len.div_ceil(MAX_CHUNKS));
        let partial: [AtomicU64; MAX_CHUNKS] = std::array::from_fn(|_| AtomicU64::new(0));
        let gm = g_mu.data_mut();
        match g_x {
            Some(gx) => {
                assert_eq!(gx.shape(), x.shape());
                gm.par_chunks_mut(chunk)
                    .zip(gx.data_mut().par_chunks_mut(chunk))
                    .enumerate()
                    .for_each(|(i, (a, b))| {
                        let v = kernel(i * chunk, a, Some(b));
                        partial[i].store(v.to_bits(), Ordering::Relaxed);
                    })
            }
            None => gm.par_chunks_mut(chunk).enumerate().for_each(|(i, a)| {
                let v = kernel(i * chunk, a, None);
                partial[i].store(v.to_bits(), Ordering::Relaxed);
            }),
        }
        partial.iter().map(|p| f64::from_bits(p.load(Ordering::Relaxed))).sum()
    }

    fn sgd_step<T: Scalar>(
        &self,
        p: &mut Tensor<T>,
        v: Option<&mut Tensor<T>>,
        g: &Tensor<T>,
        scale: T,
        lr: T,
        momentum: T,
        nesterov: bool,
    ) {
        assert_eq!(p.shape(), g.shape());
        let gd = g.data();
        let pd = p.data_mut();
        match v {
            None => {
                let u = Update::Sgd { scale, lr };
                par_zip!(pd, [gd], |pp, gg| { u.apply(pp, &mut [], &mut [], gg) })
            }
            Some(v) => {
                assert_eq!(v.shape(), g.shape());
                let u = Update::Momentum { scale, lr, momentum, nesterov };
                let vd = v.data_mut();
                let len = pd.len();
                let chunk = ew_chunk(len);
                let f = |pp: &mut [T], vv: &mut [T], gg: &[T]| {
                    super::simd::run(|| u.apply(pp, vv, &mut [], gg))
                };
                if chunk >= len {
                    f(pd, vd, gd)
                } else {
                    pd.par_chunks_mut(chunk)
                        .zip(vd.par_chunks_mut(chunk))
                        .enumerate()
                        .for_each(|(i, (pp, vv))| f(pp, vv, &gd[i * chunk..i * chunk + pp.len()]))
                }
            }
        }
    }

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
    ) {
        assert_eq!(p.shape(), g.shape());
        assert_eq!(m.shape(), g.shape());
        assert_eq!(v.shape(), g.shape());
        let (b1, b2) = betas;
        let (bc1, bc2) = bias_corr;
        let (pd, md, vd, gd) = (p.data_mut(), m.data_mut(), v.data_mut(), g.data());
        let u = Update::Adam { scale, lr, b1, b2, eps, wd, bc1, bc2 };
        let f = |pd: &mut [T], md: &mut [T], vd: &mut [T], gd: &[T]| u.apply(pd, md, vd, gd);
        let len = pd.len();
        let chunk = ew_chunk(len);
        let f = |p: &mut [T], m: &mut [T], v: &mut [T], g: &[T]| super::simd::run(|| f(p, m, v, g));
        if chunk >= len {
            f(pd, md, vd, gd)
        } else {
            pd.par_chunks_mut(chunk)
                .zip(md.par_chunks_mut(chunk))
                .zip(vd.par_chunks_mut(chunk))
                .enumerate()
                .for_each(|(i, ((pp, mm), vv))| f(pp, mm, vv, &gd[i * chunk..i * chunk + pp.len()]))
        }
    }

    fn zip3<T: Scalar>(
        &self,
        dst: &mut Tensor<T>,
        a: &Tensor<T>,
        b: &Tensor<T>,
        f: impl Fn(T, T, T) -> T + Sync,
    ) {
        assert_eq!(dst.shape(), a.shape());
        assert_eq!(dst.shape(), b.shape());
        let (ad, bd) = (a.data(), b.data());
        let dd = dst.data_mut();
        par_zip!(dd, [ad, bd], |d, x, y| {
            for ((o, &p), &q) in d.iter_mut().zip(x).zip(y) {
                *o = f(*o, p, q);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Tensor<f64>, ta: Trans, b: &Tensor<f64>, tb: Trans) -> Tensor<f64> {
        let get = |t: &Tensor<f64>, tr: Trans, r: usize, c: usize| match tr {
            Trans::N => t.at(r, c),
            Trans::T => t.at(c, r),
        };
        let (m, k) = if ta == Trans::N { (a.rows(), a.cols()) } else { (a.cols(), a.rows()) };
        let n = if tb == Trans::N { b.cols() } else { b.rows() };
        Tensor::from_fn(m, n, |i, j| (0..k).map(|p| get(a, ta, i, p) * get(b, tb, p, j)).sum())
    }

    #[test]
    fn gemm_matches_naive_for_all_transposes() {
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for &(m, k, n) in &[(3, 5, 4), (17, 33, 9), (64, 70, 130)] {
            for ta in [Trans::N, Trans::T] {
                for tb in [Trans::N, Trans::T] {
                    let a = if ta == Trans::N {
                        Tensor::from_fn(m, k, |_, _| rnd())
                    } else {
                        Tensor::from_fn(k, m, |_, _| rnd())
                    };
                    let b = if tb == Trans::N {
                        Tensor::from_fn(k, n, |_, _| rnd())
                    } else {
                        Tensor::from_fn(n, k, |_, _| rnd())
                    };
                    let want = naive(&a, ta, &b, tb);
                    let mut got = Tensor::full(m, n, 1.0);
                    Cpu.gemm(&mut got, Accum::Replace, &a, ta, &b, tb, 1.0, Par::Threads(2));
                    assert!(got.max_abs_diff(&want) < 1e-12 * k as f64);
                    let mut acc = want.clone();
                    Cpu.gemm(&mut acc, Accum::Add, &a, ta, &b, tb, -2.0, Par::Seq);
                    let neg = Tensor::from_fn(m, n, |i, j| -want.at(i, j));
                    assert!(acc.max_abs_diff(&neg) < 1e-12 * k as f64);
                }
            }
        }
    }

    /// A packed product runs on the kernel only where it runs on one thread (a product large
    /// enough for all threads keeps faer's parallel GEMM), and gives the product either way.
    #[test]
    fn packed_products_take_the_kernel_only_on_one_thread() {
        crate::tensor::set_threads(2);
        let kernel = super::super::simd::level() == super::super::simd::Level::Avx512;
        // 512 x 128 x 128 multiply-adds: above GEMM_PAR_MIN.
        let (m, n, k) = (512, 128, 128);
        let a = Tensor::from_fn(m, k, |r, c| ((r * 7 + c * 3) % 13) as f32 / 13.0 - 0.5);
        let w = Tensor::from_fn(n, k, |r, c| ((r * 5 + c * 11) % 17) as f32 / 17.0 - 0.5);
        let mut want = Tensor::zeros(m, n);
        Cpu.gemm(&mut want, Accum::Replace, &a, Trans::N, &w, Trans::T, 1.0, Par::Seq);
        let mut packed = PackedRhs::default();
        Cpu.pack_rhs(&w, Trans::T, &mut packed);
        let run = |par| {
            let mut d = Tensor::zeros(m, n);
            let before = crate::tensor::packed_products();
            Cpu.gemm_packed(&mut d, Accum::Replace, &a, Trans::N, &w, Trans::T, &packed, 1.0, par);
            assert!(d.max_abs_diff(&want) < 1e-4, "{par:?}");
            crate::tensor::packed_products() - before
        };
        assert_eq!(run(Par::Auto), 0, "all threads: faer");
        assert_eq!(run(Par::Seq), kernel as u64, "one thread: the kernel");
    }

    /// Every element of `energy_map`'s outputs is `f` of its inputs, including the tail past
    /// the last whole block of 8 and on the parallel path; the sum is the f64 sum of `f`'s
    /// energies (to rounding). With and without the `g_x` output.
    #[test]
    fn energy_map_writes_every_element_and_sums_the_energies() {
        crate::tensor::set_threads(2);
        let f = |x: f32, m: f32| {
            let e = x - m;
            (-2.0 * e, 3.0 * e, 0.5 * (e as f64).powi(2) + 1.0)
        };
        for (rows, cols) in [(1, 5), (3, 7), (9, 8), (300, 131)] {
            let x = Tensor::from_fn(rows, cols, |r, c| ((r * 31 + c * 17) % 23) as f32 * 0.25);
            let mu = Tensor::from_fn(rows, cols, |r, c| ((r * 13 + c * 5) % 19) as f32 * 0.3);
            let mut want_sum = 0.0;
            let (mut want_gm, mut want_gx) = (Tensor::zeros(rows, cols), Tensor::zeros(rows, cols));
            for i in 0..x.len() {
                let (a, b, e) = f(x.data()[i], mu.data()[i]);
                want_gm.data_mut()[i] = a;
                want_gx.data_mut()[i] = b;
                want_sum += e;
            }
            for with_gx in [true, false] {
                let mut gm = Tensor::full(rows, cols, f32::NAN);
                let mut gx = Tensor::full(rows, cols, f32::NAN);
                let sum = Cpu.energy_map(&x, &mu, &mut gm, with_gx.then_some(&mut gx), f);
                assert!(gm.max_abs_diff(&want_gm) == 0.0, "{rows}x{cols}: g_mu");
                if with_gx {
                    assert!(gx.max_abs_diff(&want_gx) == 0.0, "{rows}x{cols}: g_x");
                } else {
                    assert!(gx.data().iter().all(|v| v.is_nan()), "{rows}x{cols}: g_x written");
                }
                assert!(
                    (sum - want_sum).abs() <= 1e-12 * want_sum,
                    "{rows}x{cols}: {sum} vs {want_sum}"
                );
            }
        }
    }
}
