//! The SIMD level of the element-wise kernels, chosen at run time: the same loops compiled for
//! AVX-512, for AVX2 + FMA and for the baseline x86-64 (or any other) CPU, so one binary is
//! fast everywhere without `-C target-cpu=native`. `PROSPECT_SIMD=base|avx2|avx512` caps the
//! level (tests compare the levels; benchmarks measure them).

use std::sync::atomic::{AtomicU8, Ordering};

/// A SIMD level of the element-wise kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Whatever the build targets (SSE2 on a default x86-64 build).
    Base,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 (F, VL, BW, DQ) with FMA.
    Avx512,
}

const UNSET: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);

/// The widest level this CPU supports.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512vl")
            && has!("avx512bw")
            && has!("avx512dq")
            && has!("fma")
        {
            return Level::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Level::Avx2;
        }
    }
    Level::Base
}

/// The level in use: [`detected`], capped by `PROSPECT_SIMD` when set (read once).
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Level::Base,
        1 => Level::Avx2,
        2 => Level::Avx512,
        _ => {
            let cap = match std::env::var("PROSPECT_SIMD").as_deref() {
                Ok("base") => Level::Base,
                Ok("avx2") => Level::Avx2,
                _ => Level::Avx512,
            };
            let l = detected().min(cap);
            set_level(l);
            l
        }
    }
}

/// Sets the level (at most [`detected`]); for tests and benchmarks.
pub fn set_level(l: Level) {
    let l = l.min(detected());
    LEVEL.store(l as u8, Ordering::Relaxed);
}

/// Runs `f` with its loops compiled for the level in use (`f` and what it inlines).
#[inline(always)]
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match level() {
        // SAFETY: `level` never exceeds what `detected` found on this CPU.
        Level::Avx512 => return unsafe { avx512(f) },
        // SAFETY: as above.
        Level::Avx2 => return unsafe { avx2(f) },
        Level::Base => {}
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
