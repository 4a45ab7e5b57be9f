//! Categorical cross-entropy of a softmax prediction.

use super::Energy;
use crate::tensor::{Scalar, Tensor};

/// `E = -sum_k x_k log softmax(mu)_k` per example, with `x` the target distribution
/// (one-hot labels) and `mu` the logits; `dE/dmu = (sum_k x_k) softmax(mu) - x`,
/// `dE/dx = -log softmax(mu)`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct CrossEntropy;

/// Writes `log softmax(mu_row)` into `out` (numerically stable).
fn log_softmax<T: Scalar>(mu: &[T], out: &mut [T]) {
    let m = mu.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
    let lse = m + mu.iter().map(|&v| (v - m).exp()).sum::<T>().ln();
    for (o, &v) in out.iter_mut().zip(mu) {
        *o = v - lse;
    }
}

impl<T: Scalar> Energy<T> for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn eval(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        mut g_x: Option<&mut Tensor<T>>,
    ) -> f64 {
        assert_eq!(x.shape(), mu.shape());
        assert_eq!(x.shape(), g_mu.shape());
        let mut total = 0.0;
        for r in 0..x.rows() {
            let gm = g_mu.row_mut(r);
            log_softmax(mu.row(r), gm);
            let xr = x.row(r);
            let mass: T = xr.iter().copied().sum();
            if let Some(gx) = g_x.as_deref_mut() {
                for (o, &l) in gx.row_mut(r).iter_mut().zip(gm.iter()) {
                    *o = -l;
                }
            }
            for (g, &t) in gm.iter_mut().zip(xr) {
                let l = *g;
                total -= (t * l).f64();
                *g = mass * l.exp() - t;
            }
        }
        total
    }

    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate().take(x.rows()) {
            let m = mu.row(r).iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b.f64()));
            let lse = m + mu.row(r).iter().map(|&v| (v.f64() - m).exp()).sum::<f64>().ln();
            *o = -x
                .row(r)
                .iter()
                .zip(mu.row(r))
                .map(|(&t, &v)| t.f64() * (v.f64() - lse))
                .sum::<f64>();
        }
    }

    fn clone_box(&self) -> Box<dyn Energy<T>> {
        Box::new(*self)
    }
}
