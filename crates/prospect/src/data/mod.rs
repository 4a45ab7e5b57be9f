//! Datasets: readers (IDX, CIFAR binary, CSV), the bundled digits default, fetching
//! with pinned checksums, and the operations experiments need (scaling,
//! normalisation, one-hot, shuffling, batching, per-class subsets, validation
//! splits, class subsets for continual learning, label drift).
//!
//! Loaded features are raw values as f32: 0..255 for MNIST, Fashion-MNIST and
//! CIFAR, 0..16 for digits. Call [`Dataset::scale_unit`] (or `scale(0.0, 255.0)`)
//! to map them to [0, 1].
//!
//! ```no_run
//! use prospect::data::{self, Split};
//! let mut train = data::load("mnist", Split::Train, None)?;
//! train.scale_unit();
//! for batch in train.batches(64, true) {
//!     let _targets = batch.one_hot();
//! }
//! # Ok::<(), prospect::data::DataError>(())
//! ```

pub mod augment;
pub mod cifar;
pub mod csv;
mod dataset;
pub mod digits;
mod drift;
mod error;
pub mod fetch;
pub mod idx;
pub mod io;
pub mod tiny_imagenet;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use augment::Augment;
pub use cifar::CifarKind;
pub use dataset::{min_max, one_hot, permutation, Batch, Batches, Dataset, NormMode, Normalizer};
pub use drift::LabelDrift;
pub use error::DataError;
pub use fetch::{fetch, verify, FetchOptions, Fetched};

/// Names [`load`] accepts.
pub const DATASETS: &[&str] = &[
    "digits",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "cifar100-coarse",
    "tiny-imagenet",
];

/// The dataset used when none is named: the bundled digits.
pub const DEFAULT_DATASET: &str = "digits";

/// The IDX file stems of MNIST and Fashion-MNIST: train images, train labels, test images, test labels.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Largest class count inferred from file contents (max label + 1); larger labels are an error.
pub const MAX_CLASSES: usize = 1 << 16;

/// Environment variable overriding the data root.
pub const DATA_ENV: &str = "PROSPECT_DATA";

/// Environment variable pointing at an extracted CIFAR-10 directory.
pub const CIFAR10_ENV: &str = "PROSPECT_CIFAR10";

/// Environment variable pointing at an extracted CIFAR-100 directory.
pub const CIFAR100_ENV: &str = "PROSPECT_CIFAR100";

/// Environment variable pointing at an extracted `tiny-imagenet-200/` directory.
pub const TINY_IMAGENET_ENV: &str = "PROSPECT_TINY_IMAGENET";

/// Which part of a dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training set.
    Train,
    /// The test set.
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Split, DataError> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            other => Err(DataError::Invalid {
                context: "split".into(),
                expected: "`train` or `test`".into(),
                found: format!("`{other}`"),
            }),
        }
    }
}

/// The data root: `$PROSPECT_DATA` if set, else `./data` if it exists, else the
/// workspace's `data/` (found from this crate's source location) if it exists, else `./data`.
pub fn data_root() -> PathBuf {
    if let Some(v) = std::env::var_os(DATA_ENV) {
        if !v.is_empty() {
            return PathBuf::from(v);
        }
    }
    let local = PathBuf::from("data");
    if local.is_dir() {
        return local;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    if workspace.is_dir() {
        return workspace;
    }
    local
}

/// The error for a name not in [`DATASETS`].
pub(crate) fn unknown(name: &str) -> DataError {
    DataError::UnknownDataset { name: name.to_string(), valid: DATASETS.to_vec() }
}

/// The CIFAR variant of a dataset name.
pub(crate) fn cifar_kind(name: &str) -> Option<CifarKind> {
    match name {
        "cifar10" => Some(CifarKind::Cifar10),
        "cifar100" => Some(CifarKind::Cifar100Fine),
        "cifar100-coarse" => Some(CifarKind::Cifar100Coarse),
        _ => None,
    }
}

/// How to get a dataset, for error messages.
pub fn fetch_hint(name: &str) -> String {
    let dir = if name == "cifar100-coarse" { "cifar100" } else { name };
    match name {
        "mnist" | "fashion-mnist" => format!(
            "run `bash scripts/fetch-data.sh {name}` or `prospect data fetch {name}` \
             (or set {DATA_ENV} to a directory holding {name}/)"
        ),
        "tiny-imagenet" => format!(
            "download http://cs231n.stanford.edu/tiny-imagenet-200.zip on a machine with \
             internet access, unzip it, and point --data-dir or {TINY_IMAGENET_ENV} at the \
             extracted tiny-imagenet-200/ directory (or put it at {}/tiny-imagenet-200)",
            data_root().display()
        ),
        _ => {
            format!(
            "run `prospect data fetch {dir}` (or `bash scripts/fetch-data.sh {dir}`) on a machine \
             with internet access, or point --data-dir or {} at an extracted copy",
            if dir == "cifar10" { CIFAR10_ENV } else { CIFAR100_ENV }
        )
        }
    }
}

/// Find `stem` or `stem.gz` in the candidate directories.
fn find_idx(dirs: &[PathBuf], stem: &str) -> Option<PathBuf> {
    dirs.iter().flat_map(|d| [d.join(stem), d.join(format!("{stem}.gz"))]).find(|p| p.is_file())
}

/// Load MNIST or Fashion-MNIST (IDX, plain or gzip) from `dir` or `dir/<name>`.
fn load_idx(name: &str, split: Split, dir: Option<&Path>) -> Result<Dataset, DataError> {
    let dirs: Vec<PathBuf> = match dir {
        Some(d) => vec![d.to_path_buf(), d.join(name)],
        None => vec![data_root().join(name)],
    };
    let (img, lbl) = match split {
        Split::Train => (IDX_FILES[0], IDX_FILES[1]),
        Split::Test => (IDX_FILES[2], IDX_FILES[3]),
    };
    let find = |stem: &str| {
        find_idx(&dirs, stem).ok_or_else(|| DataError::Missing {
            dataset: name.to_string(),
            path: dirs
                .last()
                .map_or_else(|| PathBuf::from(stem), |d| d.join(format!("{stem}[.gz]"))),
            hint: fetch_hint(name),
        })
    };
    let images = find(img)?;
    let labels = find(lbl)?;
    idx::read_pair(&format!("{name}-{split}"), &images, &labels, Some(10))
}

/// Load a split of a named dataset: `digits` (bundled, the default), `mnist`,
/// `fashion-mnist`, `cifar10`, `cifar100`, `cifar100-coarse` or `tiny-imagenet` (its
/// validation set as the test split).
///
/// `dir` overrides where the files are looked for: the directory holding the
/// files or its parent. Without it, MNIST-style sets are read from
/// `data_root()/<name>/` and CIFAR from `$PROSPECT_CIFAR10` / `$PROSPECT_CIFAR100`
/// or `data_root()/cifar10|cifar100/`. Values are raw (see the module docs).
pub fn load(name: &str, split: Split, dir: Option<&Path>) -> Result<Dataset, DataError> {
    match name {
        "digits" => digits::load(split),
        "mnist" | "fashion-mnist" => load_idx(name, split, dir),
        "cifar10" | "cifar100" | "cifar100-coarse" => {
            let kind = cifar_kind(name).unwrap_or(CifarKind::Cifar10);
            let (folder, env) = if kind == CifarKind::Cifar10 {
                ("cifar10", CIFAR10_ENV)
            } else {
                ("cifar100", CIFAR100_ENV)
            };
            let base = match dir {
                Some(d) => d.to_path_buf(),
                None => match std::env::var_os(env) {
                    Some(v) if !v.is_empty() => PathBuf::from(v),
                    _ => data_root().join(folder),
                },
            };
            cifar::read_dir(&format!("{name}-{split}"), &base, folder, kind, split)
        }
        "tiny-imagenet" => {
            let base = match dir {
                Some(d) if d.join("tiny-imagenet-200").is_dir() => d.join("tiny-imagenet-200"),
                Some(d) => d.to_path_buf(),
                None => match std::env::var_os(TINY_IMAGENET_ENV) {
                    Some(v) if !v.is_empty() => PathBuf::from(v),
                    _ => data_root().join("tiny-imagenet-200"),
                },
            };
            tiny_imagenet::read_dir(&format!("{name}-{split}"), &base, split)
        }
        other => Err(unknown(other)),
    }
}

/// Load the training and test splits of a dataset.
pub fn load_both(name: &str, dir: Option<&Path>) -> Result<(Dataset, Dataset), DataError> {
    Ok((load(name, Split::Train, dir)?, load(name, Split::Test, dir)?))
}
