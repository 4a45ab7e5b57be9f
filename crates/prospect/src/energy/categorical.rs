//! Categorical energy: the KL divergence between the categorical a node holds and the one
//! predicted for it (Pinchetti et al., "Predictive coding beyond Gaussian distributions", 2022).

use super::Energy;
use crate::tensor::{Scalar, Tensor};

/// Floor of a probability under a logarithm in `dE/dx` of a target distribution.
const P_FLOOR: f64 = 1e-12;

/// `E = pi KL(P || softmax(mu))` per example, where the node's distribution `P` is
/// `softmax(x)` (a hidden node holds logits) or `x` itself (`probs`: an output node clamped
/// to a target distribution such as a one-hot label).
///
/// Gradients, with `p = P`, `q = softmax(mu)`, `a = log p - log q`:
/// `dE/dmu = pi ((sum p) q - p)`; logits: `dE/dx_j = pi p_j (a_j - sum_k p_k a_k)`;
/// probabilities: `dE/dx_j = pi (log p_j + 1 - log q_j)` (`p_j` floored at 1e-12).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Categorical {
    /// Weight `pi` of the divergence (a precision: 1 is the plain KL).
    pub precision: f64,
    /// `x` holds probabilities (a target distribution) instead of logits.
    pub probs: bool,
}

/// `log sum exp(v)` in f64 (numerically stable).
fn lse<T: Scalar>(v: &[T]) -> f64 {
    let m = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b.f64()));
    m + v.iter().map(|&u| (u.f64() - m).exp()).sum::<f64>().ln()
}

impl Categorical {
    /// `log p_j` of the node's distribution (probabilities floored at 1e-12).
    fn log_p<T: Scalar>(&self, x: T, lse_x: f64) -> f64 {
        if self.probs {
            x.f64().max(P_FLOOR).ln()
        } else {
            x.f64() - lse_x
        }
    }

    /// `p_j` of the node's distribution.
    fn p<T: Scalar>(&self, x: T, lse_x: f64) -> f64 {
        if self.probs {
            x.f64()
        } else {
            (x.f64() - lse_x).exp()
        }
    }

    /// The row's `(log-normaliser of x, log-normaliser of mu, KL)`; no scratch memory.
    fn row<T: Scalar>(&self, x: &[T], mu: &[T]) -> (f64, f64, f64) {
        let lx = if self.probs { 0.0 } else { lse(x) };
        let lm = lse(mu);
        let mut kl = 0.0;
        for (&xv, &mv) in x.iter().zip(mu) {
            let p = self.p(xv, lx);
            if p > 0.0 {
                let lp = if self.probs { p.ln() } else { xv.f64() - lx };
                kl += p * (lp - (mv.f64() - lm));
            }
        }
        (lx, lm, kl)
    }
}

impl<T: Scalar> Energy<T> for Categorical {
    fn name(&self) -> &'static str {
        "categorical"
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
        let pi = self.precision;
        let mut total = 0.0;
        for r in 0..x.rows() {
            let (xr, mr) = (x.row(r), mu.row(r));
            let (lx, lm, kl) = self.row(xr, mr);
            total += pi * kl;
            let mass: f64 = xr.iter().map(|&v| self.p(v, lx)).sum();
            for ((g, &v), &m) in g_mu.row_mut(r).iter_mut().zip(xr).zip(mr) {
                *g = T::of(pi * (mass * (m.f64() - lm).exp() - self.p(v, lx)));
            }
            if let Some(gx) = g_x.as_deref_mut() {
                for ((o, &v), &m) in gx.row_mut(r).iter_mut().zip(xr).zip(mr) {
                    let (lp, lq) = (self.log_p(v, lx), m.f64() - lm);
                    *o = T::of(if self.probs {
                        pi * (lp + 1.0 - lq)
                    } else {
                        // KL = sum_k p_k a_k with a = log p - log q
                        pi * lp.exp() * ((lp - lq) - kl)
                    });
                }
            }
        }
        total
    }

    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate().take(x.rows()) {
            *o = self.precision * self.row(x.row(r), mu.row(r)).2;
        }
    }

    fn clone_box(&self) -> Box<dyn Energy<T>> {
        Box::new(*self)
    }
}
