//! Numeric CSV: one example per row, a label column and feature columns, optional header.
//!
//! Fields are separated by a single delimiter byte (`,` by default) and trimmed;
//! quoting is not supported (the format is numeric). Blank lines are skipped.
//! Files may be gzip-compressed.

use std::path::Path;

use super::{io, DataError, Dataset};

/// Which column holds the class label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first column.
    First,
    /// The last column.
    Last,
    /// The column with this 0-based index.
    Index(usize),
}

/// Whether the first non-blank row is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A header if any of its fields is not a number.
    Auto,
    /// Always a header.
    Present,
    /// Never a header.
    Absent,
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The label column.
    pub label_column: LabelColumn,
    /// Header handling.
    pub header: Header,
    /// The field separator.
    pub delimiter: u8,
    /// Per-example shape (C, H, W); `None` means `[1, 1, features]`.
    pub shape: Option<[usize; 3]>,
    /// Number of classes; `None` means max label + 1.
    pub num_classes: Option<usize>,
}

impl Default for CsvOptions {
    /// Label in the first column, header detected, comma-separated.
    fn default() -> Self {
        CsvOptions {
            label_column: LabelColumn::First,
            header: Header::Auto,
            delimiter: b',',
            shape: None,
            num_classes: None,
        }
    }
}

/// Shorten a field for an error message.
fn show(field: &str) -> String {
    let mut s: String = field.chars().take(40).collect();
    if field.chars().count() > 40 {
        s.push('…');
    }
    format!("`{s}`")
}

/// Parse CSV bytes (already decompressed) into a dataset; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let err = |row: usize, expected: String, found: String| DataError::Csv {
        path: path.to_path_buf(),
        row,
        expected,
        found,
    };
    let delim = opts.delimiter as char;
    let mut width: Option<usize> = None;
    let mut label_idx = 0usize;
    let mut first = true;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    let mut fields: Vec<&str> = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let row = i + 1;
        let line = std::str::from_utf8(line).map_err(|e| {
            err(row, "utf-8 text".into(), format!("invalid byte at column {}", e.valid_up_to() + 1))
        })?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(line.split(delim).map(str::trim));
        if first {
            first = false;
            let is_header = match opts.header {
                Header::Present => true,
                Header::Absent => false,
                Header::Auto => fields.iter().any(|f| f.parse::<f64>().is_err()),
            };
            if fields.len() < 2 {
                return Err(err(
                    row,
                    "at least 2 fields (a label and one feature)".into(),
                    format!("{} field", fields.len()),
                ));
            }
            width = Some(fields.len());
            label_idx = match opts.label_column {
                LabelColumn::First => 0,
                LabelColumn::Last => fields.len() - 1,
                LabelColumn::Index(k) if k < fields.len() => k,
                LabelColumn::Index(k) => {
                    return Err(err(
                        row,
                        format!("a label column at index {k}"),
                        format!("{} fields", fields.len()),
                    ))
                }
            };
            if let Some(shape) = opts.shape {
                let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if want != Some(fields.len() - 1) {
                    return Err(err(
                        row,
                        format!(
                            "{} feature fields for shape {}×{}×{}",
                            want.map_or_else(|| "too many".to_string(), |w| w.to_string()),
                            shape[0],
                            shape[1],
                            shape[2]
                        ),
                        format!("{}", fields.len() - 1),
                    ));
                }
            }
            if is_header {
                continue;
            }
        }
        let w = width.unwrap_or(0);
        if fields.len() != w {
            return Err(err(row, format!("{w} fields"), format!("{}", fields.len())));
        }
        for (col, field) in fields.iter().enumerate() {
            if col == label_idx {
                let v: f64 = field.parse().map_err(|_| {
                    err(
                        row,
                        format!("a non-negative integer label in column {}", col + 1),
                        show(field),
                    )
                })?;
                if !(v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64) {
                    return Err(err(
                        row,
                        format!("a non-negative integer label in column {}", col + 1),
                        show(field),
                    ));
                }
                labels.push(v as u32);
            } else {
                let v: f32 = field.parse().map_err(|_| {
                    err(row, format!("a number in column {}", col + 1), show(field))
                })?;
                if !v.is_finite() {
                    return Err(err(
                        row,
                        format!("a finite number in column {}", col + 1),
                        show(field),
                    ));
                }
                x.push(v);
            }
        }
        if let Some(c) = opts.num_classes {
            if let Some(&l) = labels.last() {
                if l as usize >= c {
                    return Err(err(
                        row,
                        format!("a label below {c} in column {}", label_idx + 1),
                        l.to_string(),
                    ));
                }
            }
        }
    }
    if labels.is_empty() {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            context: "contents".into(),
            expected: "at least one data row".into(),
            found: "none".into(),
        });
    }
    let features = width.unwrap_or(1).saturating_sub(1);
    let shape = opts.shape.unwrap_or([1, 1, features]);
    let num_classes = match opts.num_classes {
        Some(c) => c,
        None => {
            let c = labels.iter().max().map_or(0, |&m| m as usize + 1);
            if c > super::MAX_CLASSES {
                return Err(DataError::Format {
                    path: path.to_path_buf(),
                    context: "labels".into(),
                    expected: format!(
                        "labels below {} (or an explicit class count)",
                        super::MAX_CLASSES
                    ),
                    found: format!("label {}", c - 1),
                });
            }
            c
        }
    };
    let range = super::dataset::min_max(&x);
    Ok(Dataset { name: path.display().to_string(), x, labels, shape, num_classes, range })
}

/// Parse CSV bytes that may be gzip-compressed.
pub fn parse_maybe_gz(bytes: &[u8], path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let plain = io::maybe_gunzip(bytes, path)?;
    parse(&plain, path, opts)
}

/// Read a CSV file (plain or gzip) from disk.
pub fn read(path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let bytes = io::read_raw(path)?;
    parse_maybe_gz(&bytes, path, opts)
}
