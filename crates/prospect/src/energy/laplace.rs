//! Laplace energy: absolute prediction error.

use super::Energy;
use crate::tensor::{Backend, Cpu, Scalar, Tensor};

/// `E = pi ||x - mu||_1` (negative log-density of a Laplace with scale `1/pi`, up to a
/// constant); `dE/dmu = -pi sign(e)`, `dE/dx = pi sign(e)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Laplace {
    /// Inverse scale `pi`.
    pub precision: f64,
}

impl<T: Scalar> Energy<T> for Laplace {
    fn name(&self) -> &'static str {
        "laplace"
    }

    fn eval(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        g_x: Option<&mut Tensor<T>>,
    ) -> f64 {
        let p = T::of(self.precision);
        Cpu.energy_map(x, mu, g_mu, g_x, move |xv, mv| {
            let e = xv - mv;
            let s = if e > T::zero() {
                p
            } else if e < T::zero() {
                -p
            } else {
                T::zero()
            };
            (-s, s, (p * e.abs()).f64())
        })
    }

    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate().take(x.rows()) {
            *o = self.precision
                * x.row(r).iter().zip(mu.row(r)).map(|(&a, &b)| (a - b).f64().abs()).sum::<f64>();
        }
    }

    fn clone_box(&self) -> Box<dyn Energy<T>> {
        Box::new(*self)
    }

    fn zero_at_prediction(&self) -> bool {
        true
    }
}
