//! CUDA backend placeholder: same entry point as a real backend, always unavailable here.
//!
//! A runtime-loaded CUDA backend will implement [`super::Backend`] in this module; until then
//! opening it returns an error, so callers never need `cfg` switches.

use crate::error::{Error, Result};

/// Handle to a CUDA device.
#[derive(Debug)]
pub struct Cuda {
    _private: (),
}

impl Cuda {
    /// Opens CUDA device `ordinal`.
    ///
    /// # Errors
    /// Always [`Error::Backend`] in this build: no CUDA backend is compiled in yet.
    pub fn open(ordinal: usize) -> Result<Self> {
        Err(Error::Backend(format!(
            "cuda device {ordinal}: no cuda backend in this build; use the cpu backend"
        )))
    }
}
