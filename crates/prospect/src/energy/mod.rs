//! Energies: the per-layer terms `E_l(x_l, mu_l)` whose sum a predictive coding network minimises.
//!
//! An energy is stateless. It returns its value summed over the batch and writes
//! `dE/dmu` (which drives the layer's weight update and the VJP to the layer below) and,
//! when asked, `dE/dx` (which drives the layer's own value nodes). Used at the output with
//! `x = target`, an energy is also the loss that backprop minimises.

mod bernoulli;
mod categorical;
mod cross_entropy;
mod diag_gaussian;
mod gaussian;
mod laplace;

pub use bernoulli::Bernoulli;
pub use categorical::Categorical;
pub use cross_entropy::CrossEntropy;
pub use diag_gaussian::DiagGaussian;
pub use gaussian::Gaussian;
pub use laplace::Laplace;

use crate::tensor::{Scalar, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A layer energy `E(x, mu)` over `[batch, d]` tensors.
pub trait Energy<T: Scalar>: Send + Sync + Debug {
    /// Name as in configs.
    fn name(&self) -> &'static str;
    /// Returns `E` summed over the batch; writes `g_mu = dE/dmu` and, if given, `g_x = dE/dx`.
    fn eval(
        &self,
        x: &Tensor<T>,
        mu: &Tensor<T>,
        g_mu: &mut Tensor<T>,
        g_x: Option<&mut Tensor<T>>,
    ) -> f64;
    /// Writes `E` of each example (row) into `out`.
    fn per_example(&self, x: &Tensor<T>, mu: &Tensor<T>, out: &mut [f64]);
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Energy<T>>;
    /// Whether `g_mu` and `g_x` are exactly zero wherever `x == mu` (inference then skips the
    /// products of a node still at its prediction).
    fn zero_at_prediction(&self) -> bool {
        false
    }
}

impl<T: Scalar> Clone for Box<dyn Energy<T>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The built-in energies, as named in configs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EnergyKind {
    /// [`Gaussian`] with precision 1: `1/2 ||x - mu||^2`.
    #[default]
    Gaussian,
    /// [`CrossEntropy`]: `-sum x log softmax(mu)`.
    CrossEntropy,
    /// [`Laplace`] with scale 1: `||x - mu||_1`.
    Laplace,
    /// [`Categorical`]: `KL(softmax(x) || softmax(mu))` (hidden nodes hold logits; the output
    /// node holds the target distribution).
    Categorical,
    /// [`Bernoulli`]: `sum KL(Bern(sigmoid(x)) || Bern(sigmoid(mu)))` (hidden nodes hold
    /// logits; the output node holds targets in `[0, 1]`).
    Bernoulli,
}

impl EnergyKind {
    /// Every energy, in the order of [`ENERGY_NAMES`].
    pub const ALL: [EnergyKind; 5] = [
        EnergyKind::Gaussian,
        EnergyKind::CrossEntropy,
        EnergyKind::Laplace,
        EnergyKind::Categorical,
        EnergyKind::Bernoulli,
    ];
}

/// Names accepted for [`EnergyKind`] in configs.
pub const ENERGY_NAMES: &str = "gaussian, cross_entropy, laplace, categorical, bernoulli";

impl EnergyKind {
    /// The energy object of a hidden node, with `precision` for the Gaussian (`1/scale` for
    /// Laplace, the weight of the KL for categorical and Bernoulli).
    pub fn build<T: Scalar>(self, precision: f64) -> Box<dyn Energy<T>> {
        self.build_node(precision, false)
    }

    /// The energy object of a node; `output`: the node is clamped to targets in training, so a
    /// categorical or Bernoulli node holds probabilities rather than logits.
    pub fn build_node<T: Scalar>(self, precision: f64, output: bool) -> Box<dyn Energy<T>> {
        match self {
            EnergyKind::Gaussian => Box::new(Gaussian { precision }),
            EnergyKind::CrossEntropy => Box::new(CrossEntropy),
            EnergyKind::Laplace => Box::new(Laplace { precision }),
            EnergyKind::Categorical => Box::new(Categorical { precision, probs: output }),
            EnergyKind::Bernoulli => Box::new(Bernoulli { precision, probs: output }),
        }
    }
}
