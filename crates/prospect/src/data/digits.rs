//! The bundled default dataset: UCI optical-recognition handwritten digits.
//!
//! 1,797 images of 8×8 pixels with integer values 0..16, 10 classes, as shipped by
//! scikit-learn (`sklearn/datasets/data/digits.csv.gz`: 64 pixel columns then the
//! label, no header). The file is embedded in the library, so it loads from any
//! working directory without a download.
//!
//! Split (fixed, by file order): the first [`TRAIN_SIZE`] rows (1,437, 80%) are the
//! training set and the remaining 360 rows are the test set. Both are close to
//! class-balanced (141–146 and 33–37 examples per class).

use std::path::Path;

use super::csv::{self, CsvOptions, Header, LabelColumn};
use super::{DataError, Dataset, Split};

/// The embedded `digits.csv.gz` (from `data/bundled/`).
pub static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../../data/bundled/digits.csv.gz");

/// Total number of examples.
pub const TOTAL: usize = 1797;

/// Number of examples in the training split (the first rows of the file).
pub const TRAIN_SIZE: usize = 1437;

/// Load all 1,797 digits (values 0..16, shape 1×8×8, 10 classes).
pub fn load_all() -> Result<Dataset, DataError> {
    let opts = CsvOptions {
        label_column: LabelColumn::Last,
        header: Header::Absent,
        delimiter: b',',
        shape: Some([1, 8, 8]),
        num_classes: Some(10),
    };
    let mut ds = csv::parse_maybe_gz(DIGITS_CSV_GZ, Path::new("<bundled>/digits.csv.gz"), &opts)?;
    ds.name = "digits".into();
    ds.range = (0.0, 16.0);
    Ok(ds)
}

/// Load one split of the bundled digits.
pub fn load(split: Split) -> Result<Dataset, DataError> {
    let all = load_all()?;
    let n = all.len();
    let cut = TRAIN_SIZE.min(n);
    let idx: Vec<usize> = match split {
        Split::Train => (0..cut).collect(),
        Split::Test => (cut..n).collect(),
    };
    let mut ds = all.subset(&idx);
    ds.name = format!("digits-{split}");
    Ok(ds)
}
