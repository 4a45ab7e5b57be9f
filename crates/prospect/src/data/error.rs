//! The error type of the data module.

use std::path::PathBuf;

/// Everything that can go wrong while reading, fetching or transforming a dataset.
///
/// Messages are lowercase, name the file (and row or record where there is one),
/// what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A dataset name that is not known.
    #[error("unknown dataset `{name}`: expected one of {}", valid.join(", "))]
    UnknownDataset {
        /// The name that was asked for.
        name: String,
        /// The valid names.
        valid: Vec<&'static str>,
    },

    /// A dataset whose files are not on disk.
    #[error("{dataset} data not found: expected {}; {hint}", path.display())]
    Missing {
        /// The dataset name.
        dataset: String,
        /// The file (or directory) that was looked for.
        path: PathBuf,
        /// How to get the data.
        hint: String,
    },

    /// A file that does not start with the expected magic number.
    #[error("{}: wrong magic number: expected {expected}, found {found}", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the magic number should be.
        expected: String,
        /// What the file holds.
        found: String,
    },

    /// A file that is shorter than its header says.
    #[error("{}: truncated file: expected {expected} bytes ({what}), found {found}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What the bytes are for.
        what: String,
        /// The number of bytes the file should have.
        expected: u64,
        /// The number of bytes it has.
        found: u64,
    },

    /// Compressed data that cannot be decompressed.
    #[error("{}: corrupt gzip data: expected a complete gzip stream, found {message}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's complaint.
        message: String,
    },

    /// Image and label files that disagree on the number of examples.
    #[error(
        "image/label count mismatch: expected {} to hold as many labels as {} holds images ({images}), found {labels}",
        labels_path.display(),
        images_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The label file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },

    /// A CIFAR file whose size is not a whole number of records.
    #[error(
        "{}: expected a size that is a multiple of the {record}-byte record ({label_bytes} label byte(s) + 3072 pixel bytes), found {found} bytes",
        path.display()
    )]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// Bytes per record.
        record: usize,
        /// Label bytes per record.
        label_bytes: usize,
        /// The file size.
        found: u64,
    },

    /// A CSV row that cannot be read.
    #[error("{}: row {row}: expected {expected}, found {found}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        row: usize,
        /// What the row should hold.
        expected: String,
        /// What it holds.
        found: String,
    },

    /// Any other malformed content in a file (bad header field, label out of range, trailing bytes).
    #[error("{}: {context}: expected {expected}, found {found}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Where in the file (header, record 12, ...).
        context: String,
        /// What should be there.
        expected: String,
        /// What is there.
        found: String,
    },

    /// A dataset operation given arguments that do not fit the data.
    #[error("{context}: expected {expected}, found {found}")]
    Invalid {
        /// The operation.
        context: String,
        /// What it needs.
        expected: String,
        /// What it got.
        found: String,
    },

    /// A class with fewer examples than requested.
    #[error("class {class} of {dataset}: expected at least {needed} examples, found {found}")]
    NotEnough {
        /// The dataset name.
        dataset: String,
        /// The class label.
        class: u32,
        /// Examples requested.
        needed: usize,
        /// Examples available.
        found: usize,
    },

    /// A download that failed before any checksum could be computed.
    #[error("download of {url} to {}: {message}", path.display())]
    Download {
        /// The URL.
        url: String,
        /// The destination file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A download that ended before the announced length.
    #[error(
        "{}: truncated download of {url}: expected {expected} bytes, found {found}",
        path.display()
    )]
    DownloadTruncated {
        /// The destination file.
        path: PathBuf,
        /// The URL.
        url: String,
        /// Bytes announced by Content-Length.
        expected: u64,
        /// Bytes received.
        found: u64,
    },

    /// A file whose SHA-256 differs from the pinned one.
    #[error("{}: checksum mismatch: expected sha-256 {expected}, found {found}", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash of the file.
        found: String,
    },

    /// An external command (npm, apt-get, dpkg-deb) that failed.
    #[error("`{command}` failed: expected exit status 0, found {found}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and stderr tail, or the spawn error.
        found: String,
    },
}

impl DataError {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }
}
