//! The crate's error type, one variant group per category.

use thiserror::Error;

/// Result alias with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with user input, files or training.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree do not.
    #[error("{op}: shape mismatch at {at}: expected {expected}, found {found}")]
    Shape {
        /// The operation that checked.
        op: &'static str,
        /// Which layer or tensor.
        at: String,
        /// What was expected.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A configuration value is invalid.
    #[error("invalid config `{key}`: {msg}")]
    Config {
        /// The config key.
        key: String,
        /// What is wrong and what is valid.
        msg: String,
    },
    /// The energy or a value became NaN or infinite during training.
    #[error("non-finite energy at batch {batch}, inference step {step}, layer {layer}: {what}")]
    NonFinite {
        /// Batch index within the run.
        batch: usize,
        /// Inference step within the batch.
        step: usize,
        /// Layer (1-based; 0 = input).
        layer: usize,
        /// What was non-finite.
        what: String,
    },
    /// A dataset could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A checkpoint could not be read or written.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// File path.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The compute backend is unavailable or failed.
    #[error("backend: {0}")]
    Backend(String),
    /// A sharded (or listing) run of an experiment stopped after its share of the cells: not
    /// a failure; rerun without a shard over the same cell store to merge.
    #[error(
        "experiment `{experiment}`: {ran} cell(s) run by this call, {stored} of {total} stored in {store}"
    )]
    Incomplete {
        /// The experiment.
        experiment: String,
        /// Cells this call computed.
        ran: usize,
        /// Cells in the store now (finished by any call).
        stored: usize,
        /// Cells of the whole grid.
        total: usize,
        /// The cell store directory.
        store: String,
        /// Indices (in the grid's fixed order) of the cells not stored yet.
        missing: Vec<usize>,
    },
    /// An I/O error with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// A shape error for `op` at `at`.
    pub fn shape(
        op: &'static str,
        at: impl Into<String>,
        expected: impl std::fmt::Debug,
        found: impl std::fmt::Debug,
    ) -> Self {
        Error::Shape {
            op,
            at: at.into(),
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        }
    }

    /// A config error for `key`.
    pub fn config(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config { key: key.into(), msg: msg.into() }
    }
}
