//! Weight initialisers, drawn from a caller-provided seeded RNG.

use crate::tensor::{Scalar, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

/// How a weight matrix `[fan_out, fan_in]` is initialised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Normal with std `sqrt(2 / (fan_in + fan_out))` (Glorot).
    XavierNormal,
    /// Uniform on `±sqrt(6 / (fan_in + fan_out))` (Glorot).
    #[default]
    XavierUniform,
    /// Normal with std `sqrt(2 / fan_in)` (He).
    KaimingNormal,
    /// Uniform on `±sqrt(6 / fan_in)` (He).
    KaimingUniform,
    /// Uniform on `±1 / sqrt(fan_in)` (PyTorch's and Equinox's default for linear and conv).
    TorchDefault,
}

/// Names accepted for [`Init`] in configs.
pub const INIT_NAMES: &str =
    "xavier_normal, xavier_uniform, kaiming_normal, kaiming_uniform, torch_default";

impl Init {
    /// A `[fan_out, fan_in]` matrix drawn from this initialiser.
    pub fn sample<T: Scalar, R: Rng + ?Sized>(
        self,
        fan_out: usize,
        fan_in: usize,
        rng: &mut R,
    ) -> Tensor<T> {
        self.sample_fans(fan_out, fan_in, fan_in, fan_out, rng)
    }

    /// A `[rows, cols]` matrix drawn with the given fans (a convolution's fans count its
    /// kernel taps: `fan_in = kh·kw·C_in`, `fan_out = kh·kw·C_out`).
    pub fn sample_fans<T: Scalar, R: Rng + ?Sized>(
        self,
        rows: usize,
        cols: usize,
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) -> Tensor<T> {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        let mut draw: Box<dyn FnMut(&mut R) -> f64> = match self {
            Init::XavierNormal => {
                let d = Normal::new(0.0, (2.0 / (fi + fo)).sqrt()).expect("finite std");
                Box::new(move |r| d.sample(r))
            }
            Init::XavierUniform => {
                let l = (6.0 / (fi + fo)).sqrt();
                let d = Uniform::new(-l, l).expect("finite bounds");
                Box::new(move |r| d.sample(r))
            }
            Init::KaimingNormal => {
                let d = Normal::new(0.0, (2.0 / fi.max(1.0)).sqrt()).expect("finite std");
                Box::new(move |r| d.sample(r))
            }
            Init::KaimingUniform => {
                let l = (6.0 / fi.max(1.0)).sqrt();
                let d = Uniform::new(-l, l).expect("finite bounds");
                Box::new(move |r| d.sample(r))
            }
            Init::TorchDefault => {
                let l = (1.0 / fi.max(1.0)).sqrt();
                let d = Uniform::new(-l, l).expect("finite bounds");
                Box::new(move |r| d.sample(r))
            }
        };
        Tensor::from_fn(rows, cols, |_, _| T::of(draw(rng)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn variances_match_their_formulas() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (fo, fi) = (300, 500);
        for (init, var) in [
            (Init::XavierNormal, 2.0 / 800.0),
            (Init::XavierUniform, 2.0 / 800.0),
            (Init::KaimingNormal, 2.0 / 500.0),
            (Init::KaimingUniform, 2.0 / 500.0),
            (Init::TorchDefault, 1.0 / 1500.0),
        ] {
            let w: Tensor<f64> = init.sample(fo, fi, &mut rng);
            let n = w.len() as f64;
            let mean = w.data().iter().sum::<f64>() / n;
            let v = w.data().iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            // 150k samples: the relative standard error of the variance is ~0.4%.
            assert!((v / var - 1.0).abs() < 0.03, "{init:?}: {v} vs {var}");
        }
    }
}
