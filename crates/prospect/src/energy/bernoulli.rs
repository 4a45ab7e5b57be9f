//! Bernoulli energy: the KL divergence between independent Bernoullis a node holds and those
//! predicted for it (Pinchetti et al., "Predictive coding beyond Gaussian distributions", 2022).

use super::Energy;
use crate::tensor::{Scalar, Tensor};

/// Floor of a probability (and of its complement) under a logarithm in `dE/dx` of a target.
const P_FLOOR: f64 = 1e-12;

/// `E = pi sum_j KL(Bern(p_j) || Bern(sigmoid(mu_j)))`, where `p = sigmoid(x)` (a hidden
/// node holds logits) or `p = x` (`probs`: an output node clamped to targets in `[0, 1]`).
///
/// Gradients, with `q = sigmoid(mu)`: `dE/dmu = pi (q - p)`; logits:
/// `dE/dx = pi p (1 - p) (x - mu)`; probabilities: `dE/dx = pi (logit p - mu)` (`p` kept
/// within 1e-12 of 0 and 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bernoulli {
    /// Weight `pi` of the divergence (a precision: 1 is the plain KL).
    pub precision: f64,
    /// `x` holds probabilities (targets) instead of logits.
    pub probs: bool,
}

/// `(log sigmoid(v), log (1 - sigmoid(v)))`, stable for large `|v|`.
fn log_sig_pair(v: f64) -> (f64, f64) {
    // log sigmoid(v) = -softplus(-v); log(1 - sigmoid(v)) = -softplus(v)
    (-softplus(-v), -softplus(v))
}

/// `log(1 + e^v)`, stable.
fn softplus(v: f64) -> f64 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

/// `p log(p / q)` with `0 log 0 = 0`, from `p`, `log p` and `log q`.
fn plogp(p: f64, lp: f64, lq: f64) -> f64 {
    if p > 0.0 {
        p * (lp - lq)
    } else {
        0.0
    }
}

impl Bernoulli {
    /// KL of one unit with node value `x` and prediction `mu`; also returns `p` and `q`.
    fn unit(&self, x: f64, mu: f64) -> (f64, f64, f64) {
        let (lq, lq1) = log_sig_pair(mu);
        let (p, lp, lp1) = if self.probs {
            let p = x.clamp(0.0, 1.0);
            (p, p.ln(), (1.0 - p).ln())
        } else {
            let (lp, lp1) = log_sig_pair(x);
            (lp.exp(), lp, lp1)
        };
        (plogp(p, lp, lq) + plogp(1.0 - p, lp1, lq1), p, lq.exp())
    }
}

impl<T: Scalar> Energy<T> for Bernoulli {
    fn name(&self) -> &'static str {
        "bernoulli"
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
            for (j, g) in g_mu.row_mut(r).iter_mut().enumerate() {
                let (xv, mv) = (xr[j].f64(), mr[j].f64());
                let (kl, p, q) = self.unit(xv, mv);
                total += pi * kl;
                *g = T::of(pi * (q - p));
                if let Some(gx) = g_x.as_deref_mut() {
                    let d = if self.probs {
                        let p = p.clamp(P_FLOOR, 1.0 - P_FLOOR);
                        (p / (1.0 - p)).ln() - mv
                    } else {
                        p * (1.0 - p) * (xv - mv)
                    };
                    gx.row_mut(r)[j] = T::of(pi * d);
                }
            }
        }
        total
    }

    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate().take(x.rows()) {
            *o = self.precision
                * x.row(r)
                    .iter()
                    .zip(mu.row(r))
                    .map(|(&a, &b)| self.unit(a.f64(), b.f64()).0)
                    .sum::<f64>();
        }
    }

    fn clone_box(&self) -> Box<dyn Energy<T>> {
        Box::new(*self)
    }
}
