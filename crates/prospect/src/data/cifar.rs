//! CIFAR-10 and CIFAR-100 binary batches.
//!
//! A CIFAR-10 record is 1 label byte + 3072 pixel bytes; a CIFAR-100 record is a
//! coarse label byte, a fine label byte and 3072 pixel bytes. Pixels are stored as
//! 1024 red, 1024 green then 1024 blue values, row-major 32×32: already C×H×W.

use std::path::{Path, PathBuf};

use super::{io, DataError, Dataset, Split};

/// Pixel bytes per record (3 × 32 × 32).
pub const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR variant (and, for CIFAR-100, which label) a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10: one label byte, 10 classes.
    Cifar10,
    /// CIFAR-100 with the 100 fine labels (the second label byte).
    Cifar100Fine,
    /// CIFAR-100 with the 20 coarse labels (the first label byte).
    Cifar100Coarse,
}

impl CifarKind {
    /// Label bytes per record.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            _ => 2,
        }
    }

    /// Bytes per record.
    pub fn record_size(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        }
    }

    /// Offset of the label used within a record.
    fn label_offset(self) -> usize {
        match self {
            CifarKind::Cifar100Fine => 1,
            _ => 0,
        }
    }

    /// The directory the canonical tarball extracts to.
    pub fn archive_dir(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            _ => "cifar-100-binary",
        }
    }

    /// The batch files of a split, in order.
    pub fn split_files(self, split: Split) -> &'static [&'static str] {
        match (self, split) {
            (CifarKind::Cifar10, Split::Train) => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (CifarKind::Cifar10, Split::Test) => &["test_batch.bin"],
            (_, Split::Train) => &["train.bin"],
            (_, Split::Test) => &["test.bin"],
        }
    }
}

/// Parse one CIFAR binary batch held in memory, appending pixels (raw 0..255) and labels.
pub fn parse_into(
    bytes: &[u8],
    path: &Path,
    kind: CifarKind,
    x: &mut Vec<f32>,
    labels: &mut Vec<u32>,
) -> Result<(), DataError> {
    let record = kind.record_size();
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::RecordSize {
            path: path.to_path_buf(),
            record,
            label_bytes: kind.label_bytes(),
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / record;
    x.reserve(n * PIXELS);
    labels.reserve(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec.get(kind.label_offset()).copied().unwrap_or(0) as usize;
        if label >= kind.num_classes() {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                context: format!("record {i}"),
                expected: format!("a label below {}", kind.num_classes()),
                found: label.to_string(),
            });
        }
        labels.push(label as u32);
        x.extend(rec.get(kind.label_bytes()..).unwrap_or(&[]).iter().map(|&b| b as f32));
    }
    Ok(())
}

/// Parse one CIFAR binary batch held in memory into a dataset.
pub fn parse(bytes: &[u8], path: &Path, kind: CifarKind) -> Result<Dataset, DataError> {
    let mut x = Vec::new();
    let mut labels = Vec::new();
    parse_into(bytes, path, kind, &mut x, &mut labels)?;
    Ok(Dataset {
        name: path.display().to_string(),
        x,
        labels,
        shape: [3, 32, 32],
        num_classes: kind.num_classes(),
        range: (0.0, 255.0),
    })
}

/// Read and concatenate CIFAR binary batch files (each plain or gzip).
pub fn read_files(name: &str, paths: &[PathBuf], kind: CifarKind) -> Result<Dataset, DataError> {
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = io::read_maybe_gz(path)?;
        parse_into(&bytes, path, kind, &mut x, &mut labels)?;
    }
    Ok(Dataset {
        name: name.to_string(),
        x,
        labels,
        shape: [3, 32, 32],
        num_classes: kind.num_classes(),
        range: (0.0, 255.0),
    })
}

/// Find the directory holding a split's batch files: `dir` itself, `dir/<archive dir>`,
/// `dir/<dataset>` or `dir/<dataset>/<archive dir>`.
pub fn find_dir(dir: &Path, dataset: &str, kind: CifarKind, split: Split) -> Option<PathBuf> {
    let first = kind.split_files(split).first().copied().unwrap_or("");
    [
        dir.to_path_buf(),
        dir.join(kind.archive_dir()),
        dir.join(dataset),
        dir.join(dataset).join(kind.archive_dir()),
    ]
    .into_iter()
    .find(|d| d.join(first).is_file())
}

/// Read a split from a directory laid out as the canonical binary tarball extracts.
pub fn read_dir(
    name: &str,
    dir: &Path,
    dataset: &str,
    kind: CifarKind,
    split: Split,
) -> Result<Dataset, DataError> {
    let found = find_dir(dir, dataset, kind, split);
    let base = found.clone().unwrap_or_else(|| dir.join(kind.archive_dir()));
    let paths: Vec<PathBuf> = kind.split_files(split).iter().map(|f| base.join(f)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(DataError::Missing {
            dataset: dataset.to_string(),
            path: missing.clone(),
            hint: super::fetch_hint(dataset),
        });
    }
    read_files(name, &paths, kind)
}
