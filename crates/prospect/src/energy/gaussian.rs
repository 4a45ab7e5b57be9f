//! Gaussian energy: squared prediction error with a precision.

use super::Energy;
use crate::tensor::{Backend, Cpu, Scalar, Tensor};

/// `E = pi/2 ||x - mu||^2` (negative log-density of `N(mu, 1/pi)` up to a constant);
/// `dE/dmu = -pi e`, `dE/dx = pi e` with `e = x - mu`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gaussian {
    /// Precision `pi` (inverse variance).
    pub precision: f64,
}

impl Default for Gaussian {
    fn default() -> Self {
        Self { precision: 1.0 }
    }
}

impl<T: Scalar> Energy<T> for Gaussian {
    fn name(&self) -> &'static str {
        "gaussian"
    }

    fn eval(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        g_x: Option<&mut Tensor<T>>,
    ) -> f64 {
        let p = T::of(self.precision);
        let half_p = 0.5 * self.precision;
        Cpu.energy_map(x, mu, g_mu, g_x, move |xv, mv| {
            let e = xv - mv;
            let pe = p * e;
            (-pe, pe, half_p * (e * e).f64())
        })
    }

    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate().take(x.rows()) {
            *o = 0.5
                * self.precision
                * x.row(r).iter().zip(mu.row(r)).map(|(&a, &b)| (a - b).f64().powi(2)).sum::<f64>();
        }
    }

    fn clone_box(&self) -> Box<dyn Energy<T>> {
        Box::new(*self)
    }

    fn zero_at_prediction(&self) -> bool {
        true
    }
}
