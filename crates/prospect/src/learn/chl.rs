//! Contrastive Hebbian learning (Movellan 1991; Xie & Seung 2003): a free phase and a fully
//! clamped phase, update `dF_1/dθ(x_clamped) - dF_0/dθ(x_free)`.
//!
//! It is equilibrium propagation at `beta = 1` ([`super::EqProp`]), where the clamped phase
//! is the ordinary PC energy; far from the `beta -> 0` limit, so not backprop's gradient.

use super::EqProp;
use crate::error::{Error, Result};
use crate::infer::InferenceConfig;
use crate::tensor::Scalar;

/// Contrastive Hebbian learning: [`EqProp`] with `beta = 1`, not centred.
///
/// # Errors
/// [`Error::Config`] if `inference.beta` or `inference.centred` is set (CHL fixes both), or
/// the output is not `clamp`.
pub fn chl<T: Scalar>(inference: &InferenceConfig) -> Result<EqProp<T>> {
    if inference.beta.is_some() || inference.centred {
        return Err(Error::config(
            "inference.beta",
            "chl is the beta = 1 phase pair; set beta and centred only with --algo eqprop",
        ));
    }
    let mut rule = EqProp::new(&InferenceConfig { beta: Some(1.0), ..inference.clone() })?;
    rule.name = "chl";
    Ok(rule)
}
