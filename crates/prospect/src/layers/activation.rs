//! Activation functions and their derivatives, evaluated in fused single passes.

use crate::tensor::Scalar;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An element-wise activation `f` with derivative `f'`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Activation {
    /// `f(x) = x`.
    Identity,
    /// `f(x) = max(x, 0)`, with `f'(0) = 0`.
    Relu,
    /// `f(x) = x` for `x > 0`, else `alpha * x`.
    LeakyRelu(f64),
    /// `f(x) = tanh(x)`.
    Tanh,
    /// `f(x) = clamp(x, -1, 1)`, with `f' = 1` on `[-1, 1]` (as `jax.nn.hard_tanh`).
    HardTanh,
    /// `f(x) = 1 / (1 + exp(-x))`.
    Sigmoid,
    /// GELU, tanh approximation (as `jax.nn.gelu`): `x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))`.
    Gelu,
    /// `f(x) = ln(1 + exp(x))`.
    Softplus,
}

/// Names accepted by [`Activation::from_str`].
pub const ACTIVATION_NAMES: &str =
    "identity, relu, leaky_relu (or leaky_relu:ALPHA, default 0.01), tanh, hard_tanh, sigmoid, gelu,\n     softplus";

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;

impl Activation {
    /// All activations (leaky ReLU with alpha 0.1), for exhaustive tests.
    pub const ALL: [Activation; 8] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Tanh,
        Activation::HardTanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Softplus,
    ];

    /// `f(x)` for one value.
    #[inline(always)]
    pub fn f<T: Scalar>(self, x: T) -> T {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(T::zero()),
            Activation::LeakyRelu(a) => {
                if x > T::zero() {
                    x
                } else {
                    T::of(a) * x
                }
            }
            Activation::Tanh => x.tanh_v(),
            Activation::HardTanh => x.max(-T::one()).min(T::one()),
            Activation::Sigmoid => sigmoid(x),
            Activation::Gelu => {
                let u = T::of(SQRT_2_OVER_PI) * (x + T::of(GELU_C) * x * x * x);
                T::of(0.5) * x * (T::one() + u.tanh_v())
            }
            Activation::Softplus => x.max(T::zero()) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// `(f(x), f'(x))` for one value.
    #[inline(always)]
    pub fn f_df<T: Scalar>(self, x: T) -> (T, T) {
        match self {
            Activation::Identity => (x, T::one()),
            Activation::Relu => {
                let pos = x > T::zero();
                (if pos { x } else { T::zero() }, if pos { T::one() } else { T::zero() })
            }
            Activation::LeakyRelu(a) => {
                let pos = x > T::zero();
                let s = if pos { T::one() } else { T::of(a) };
                (s * x, s)
            }
            Activation::Tanh => {
                let t = x.tanh_v();
                (t, T::one() - t * t)
            }
            Activation::HardTanh => {
                let inside = x.abs() <= T::one();
                (x.max(-T::one()).min(T::one()), if inside { T::one() } else { T::zero() })
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                (s, s * (T::one() - s))
            }
            Activation::Gelu => {
                let c = T::of(SQRT_2_OVER_PI);
                let k = T::of(GELU_C);
                let x2 = x * x;
                let t = (c * (x + k * x2 * x)).tanh_v();
                let half = T::of(0.5);
                let y = half * x * (T::one() + t);
                let dy = half * (T::one() + t)
                    + half * x * (T::one() - t * t) * c * (T::one() + T::of(3.0) * k * x2);
                (y, dy)
            }
            Activation::Softplus => (x.max(T::zero()) + (-x.abs()).exp().ln_1p(), sigmoid(x)),
        }
    }

    /// `out = f(x)` over slices.
    #[inline]
    pub fn apply<T: Scalar>(self, x: &[T], out: &mut [T]) {
        match self {
            Activation::Identity => out.copy_from_slice(x),
            _ => crate::tensor::simd::run(|| {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = self.f(v);
                }
            }),
        }
    }

    /// `out = f(x)`, `deriv = f'(x)` over slices, in one pass.
    #[inline]
    pub fn apply_with_deriv<T: Scalar>(self, x: &[T], out: &mut [T], deriv: &mut [T]) {
        // One monomorphic loop per activation, so each one vectorises.
        #[inline(always)]
        fn each<T: Scalar>(x: &[T], out: &mut [T], deriv: &mut [T], f: impl Fn(T) -> (T, T)) {
            crate::tensor::simd::run(|| {
                for ((o, d), &v) in out.iter_mut().zip(deriv.iter_mut()).zip(x) {
                    let (y, dy) = f(v);
                    *o = y;
                    *d = dy;
                }
            })
        }
        match self {
            Activation::Identity => {
                out.copy_from_slice(x);
                deriv.fill(T::one());
            }
            Activation::Relu => each(x, out, deriv, |v| Activation::Relu.f_df(v)),
            Activation::LeakyRelu(a) => each(x, out, deriv, |v| Activation::LeakyRelu(a).f_df(v)),
            Activation::Tanh => each(x, out, deriv, |v| Activation::Tanh.f_df(v)),
            Activation::HardTanh => each(x, out, deriv, |v| Activation::HardTanh.f_df(v)),
            Activation::Sigmoid => each(x, out, deriv, |v| Activation::Sigmoid.f_df(v)),
            Activation::Gelu => {
                #[cfg(target_arch = "x86_64")]
                if crate::tensor::simd::level() == crate::tensor::simd::Level::Avx512 {
                    use crate::tensor::{cast, cast_mut};
                    if let (Some(x), Some(out), Some(deriv)) =
                        (cast(x), cast_mut(out), cast_mut(deriv))
                    {
                        // SAFETY: the level in use never exceeds what this CPU supports.
                        unsafe { gelu_f_df_avx512(x, out, deriv) };
                        return;
                    }
                }
                each(x, out, deriv, |v| Activation::Gelu.f_df(v))
            }
            Activation::Softplus => each(x, out, deriv, |v| Activation::Softplus.f_df(v)),
        }
    }

    /// True when `f` is the identity (lets layers skip work).
    pub fn is_identity(self) -> bool {
        matches!(self, Activation::Identity)
    }
}

/// GELU and its derivative on f32 with 512-bit vectors (the compiler's own vectorisation of
/// [`Activation::f_df`] stops at 256 bits on these CPUs): the same operations in the same
/// order, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gelu_f_df_avx512(x: &[f32], out: &mut [f32], deriv: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = x.len();
    assert!(out.len() == n && deriv.len() == n, "gelu: slice lengths");
    let whole = n / 16 * 16;
    let c = _mm512_set1_ps(SQRT_2_OVER_PI as f32);
    let k = _mm512_set1_ps(GELU_C as f32);
    let k3 = _mm512_set1_ps(3.0f32 * GELU_C as f32);
    let (half, one) = (_mm512_set1_ps(0.5), _mm512_set1_ps(1.0));
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= n, the length of all three slices.
        let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
        let x2 = _mm512_mul_ps(v, v);
        let u = _mm512_mul_ps(c, _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(k, x2), v)));
        let t = crate::tensor::tanh_f32x16(u);
        let hx = _mm512_mul_ps(half, v);
        let one_t = _mm512_add_ps(one, t);
        let y = _mm512_mul_ps(hx, one_t);
        let sech2 = _mm512_sub_ps(one, _mm512_mul_ps(t, t));
        let slope = _mm512_mul_ps(_mm512_mul_ps(hx, sech2), c);
        let dy = _mm512_add_ps(
            _mm512_mul_ps(half, one_t),
            _mm512_mul_ps(slope, _mm512_add_ps(one, _mm512_mul_ps(k3, x2))),
        );
        // SAFETY: as above.
        unsafe {
            _mm512_storeu_ps(out.as_mut_ptr().add(i), y);
            _mm512_storeu_ps(deriv.as_mut_ptr().add(i), dy);
        }
    }
    for j in whole..n {
        (out[j], deriv[j]) = Activation::Gelu.f_df(x[j]);
    }
}

/// `sigmoid(x) = (1 + tanh(x / 2)) / 2`: stable for all `x` and branch-free.
#[inline(always)]
fn sigmoid<T: Scalar>(x: T) -> T {
    let half = T::of(0.5);
    half + half * (half * x).tanh_v()
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => write!(f, "identity"),
            Activation::Relu => write!(f, "relu"),
            Activation::LeakyRelu(a) if *a == 0.01 => write!(f, "leaky_relu"),
            Activation::LeakyRelu(a) => write!(f, "leaky_relu:{a}"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::HardTanh => write!(f, "hard_tanh"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::Softplus => write!(f, "softplus"),
        }
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let act = match (name.trim().to_ascii_lowercase().as_str(), arg) {
            ("identity" | "linear", None) => Activation::Identity,
            ("relu", None) => Activation::Relu,
            ("leaky_relu" | "leakyrelu", None) => Activation::LeakyRelu(0.01),
            ("leaky_relu" | "leakyrelu", Some(a)) => Activation::LeakyRelu(
                a.trim().parse().map_err(|_| format!("bad leaky_relu slope `{a}`"))?,
            ),
            ("tanh", None) => Activation::Tanh,
            ("hard_tanh" | "hardtanh", None) => Activation::HardTanh,
            ("sigmoid", None) => Activation::Sigmoid,
            ("gelu", None) => Activation::Gelu,
            ("softplus", None) => Activation::Softplus,
            _ => return Err(format!("unknown activation `{s}`; valid: {ACTIVATION_NAMES}")),
        };
        Ok(act)
    }
}

impl TryFrom<String> for Activation {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Activation> for String {
    fn from(a: Activation) -> String {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        for act in Activation::ALL {
            for &x in &[-2.3f64, -0.7, -0.05, 0.031, 0.4, 1.9] {
                let h = 1e-6;
                let fd = (act.f(x + h) - act.f(x - h)) / (2.0 * h);
                let (y, dy) = act.f_df(x);
                assert!((y - act.f(x)).abs() < 1e-15, "{act} value");
                assert!((dy - fd).abs() < 1e-8, "{act} at {x}: {dy} vs {fd}");
            }
        }
    }

    #[test]
    fn hard_tanh_clamps_to_the_unit_interval() {
        let h = Activation::HardTanh;
        for (x, y, dy) in
            [(-2.3f64, -1.0, 0.0), (-0.7, -0.7, 1.0), (0.4, 0.4, 1.0), (1.9, 1.0, 0.0)]
        {
            assert_eq!(h.f(x), y, "f({x})");
            assert_eq!(h.f_df(x), (y, dy), "f_df({x})");
        }
        let (mut out, mut d) = ([0.0f32; 3], [0.0f32; 3]);
        h.apply_with_deriv(&[-5.0, 0.25, 3.0], &mut out, &mut d);
        assert_eq!((out, d), ([-1.0, 0.25, 1.0], [0.0, 1.0, 0.0]));
    }

    /// The AVX-512 GELU kernel gives the bits of the scalar `f_df` for every value (zeros,
    /// the tanh's tiny and clamped ranges, huge values, infinities, NaN) and length (tail).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_gelu_is_the_scalar_gelu_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 on this CPU: not compared");
            return;
        }
        let mut xs: Vec<f32> = (0..2001).map(|i| -12.0 + 24.0 * i as f32 / 2000.0).collect();
        xs.extend([0.0, -0.0, 1e-6, -3e-4, 4e-4, 9.0, -9.9, 7.905_311, 1e30, -1e30]);
        xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE]);
        // scaled so that the tanh's argument also lands on its tiny and clamp edges
        xs.extend((0..100).map(|i| (i as f32 - 50.0) * 1e-3));
        for n in [xs.len(), 15, 16, 17, 0] {
            let x = &xs[..n];
            let (mut y, mut d) = (vec![0.0f32; n], vec![0.0f32; n]);
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { gelu_f_df_avx512(x, &mut y, &mut d) };
            for i in 0..n {
                let (wy, wd) = Activation::Gelu.f_df(x[i]);
                let same =
                    |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                assert!(
                    same(y[i], wy) && same(d[i], wd),
                    "x = {}: ({}, {}) vs ({wy}, {wd})",
                    x[i],
                    y[i],
                    d[i]
                );
            }
        }
    }

    /// Far below zero GELU is flat: its f32 derivative must not pick up the rounding of a
    /// saturated tanh amplified by `x (1 + 3k x^2)` (it was -3.5e-5 at -12 and -3e-3 at -50).
    #[test]
    fn gelu_derivative_vanishes_far_below_zero_in_f32() {
        for x in [-6.0f32, -12.0, -50.0, -300.0] {
            let (y, dy) = Activation::Gelu.f_df(x);
            assert!(y.abs() < 1e-6 && dy.abs() < 1e-6, "gelu at {x}: ({y}, {dy})");
        }
        let mut x = vec![-50.0f32; 19];
        x[3] = 2.0;
        let (mut y, mut d) = (vec![0.0f32; 19], vec![0.0f32; 19]);
        Activation::Gelu.apply_with_deriv(&x, &mut y, &mut d);
        for i in 0..19 {
            let want = if i == 3 { Activation::Gelu.f_df(2.0f32).1 } else { 0.0 };
            assert!((d[i] - want).abs() < 1e-6, "slice entry {i}: {} vs {want}", d[i]);
        }
    }

    #[test]
    fn names_round_trip() {
        for act in Activation::ALL {
            assert_eq!(act.to_string().parse::<Activation>().unwrap(), act);
        }
        assert!("swish".parse::<Activation>().unwrap_err().contains("valid:"));
    }
}
