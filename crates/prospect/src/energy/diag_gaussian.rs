//! Gaussian energy with one precision per unit (a diagonal covariance).

use super::Energy;
use crate::tensor::{Scalar, Tensor};

/// `E = 1/2 sum_j pi_j (x_j - mu_j)^2`; a unit of precision 0 carries no energy and no
/// gradient (an output unit left out of the loss, as in the authors' continual task).
#[derive(Clone, Debug, PartialEq)]
pub struct DiagGaussian {
    /// Precision `pi_j` of each unit (the node's width).
    pub precision: Vec<f64>,
}

impl DiagGaussian {
    /// Precision 1 on the first `keep` of `width` units, 0 on the rest.
    pub fn first(keep: usize, width: usize) -> Self {
        Self { precision: (0..width).map(|j| if j < keep { 1.0 } else { 0.0 }).collect() }
    }

    fn check<T: Scalar>(&self, x: &Tensor<T>) {
        assert_eq!(
            x.cols(),
            self.precision.len(),
            "diag_gaussian: {} precisions for a node of width {}",
            self.precision.len(),
            x.cols()
        );
    }
}

impl<T: Scalar> Energy<T> for DiagGaussian {
    fn name(&self) -> &'static str {
        "diag_gaussian"
    }

    fn eval(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        mut g_x: Option<&mut Tensor<T>>,
    ) -> f64 {
        self.check(x);
        let mut total = 0.0;
        for r in 0..x.rows() {
            let (xr, mr) = (x.row(r), mu.row(r));
            let gm = g_mu.row_mut(r);
            for (j, &p) in self.precision.iter().enumerate() {
                let e = xr[j] - mr[j];
                let pe = T::of(p) * e;
                gm[j] = -pe;
                total += 0.5 * p * (e * e).f64();
            }
            if let Some(gx) = g_x.as_deref_mut() {
                let gx = gx.row_mut(r);
                for (j, &p) in self.precision.iter().enumerate() {
                    gx[j] = T::of(p) * (xr[j] - mr[j]);
                }
            }
        }
        total
    }

    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]) {
        self.check(x);
        for (r, o) in out.iter_mut().enumerate().take(x.rows()) {
            *o = 0.5
                * x.row(r)
                    .iter()
                    .zip(mu.row(r))
                    .zip(&self.precision)
                    .map(|((&a, &b), p)| p * (a - b).f64().powi(2))
                    .sum::<f64>();
        }
    }

    fn clone_box(&self) -> Box<dyn Energy<T>> {
        Box::new(self.clone())
    }

    fn zero_at_prediction(&self) -> bool {
        true
    }
}
