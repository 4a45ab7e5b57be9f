//! IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
//!
//! Format: two zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32,
//! 0x0D f32, 0x0E f64), the number of dimensions, then each dimension as a
//! big-endian u32, then the values in row-major order, big-endian.

use std::path::Path;

use super::{io, DataError, Dataset};

/// An n-dimensional array read from an IDX file, values converted to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
    /// The IDX type code of the stored values.
    pub type_code: u8,
}

/// Size in bytes and name of one value of an IDX type code.
fn type_info(code: u8) -> Option<(usize, &'static str)> {
    match code {
        0x08 => Some((1, "u8")),
        0x09 => Some((1, "i8")),
        0x0B => Some((2, "i16")),
        0x0C => Some((4, "i32")),
        0x0D => Some((4, "f32")),
        0x0E => Some((8, "f64")),
        _ => None,
    }
}

/// Join dimensions as `60000×28×28`.
fn dims_str(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")
}

/// Parse an IDX file held in memory (already decompressed); `path` names it in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    let format = |context: &str, expected: String, found: String| DataError::Format {
        path: path.to_path_buf(),
        context: context.to_string(),
        expected,
        found,
    };
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "idx magic number".into(),
            expected: 4,
            found: bytes.len() as u64,
        });
    }
    let (code, ndims) = (bytes[2], bytes[3] as usize);
    let type_ok = type_info(code).is_some();
    if bytes[0] != 0 || bytes[1] != 0 || !type_ok || ndims == 0 {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: "0x0000TTNN with type TT in {08,09,0B,0C,0D,0E} and NN >= 1 dimensions"
                .into(),
            found: format!("0x{:02X}{:02X}{:02X}{:02X}", bytes[0], bytes[1], bytes[2], bytes[3]),
        });
    }
    let (size, type_name) = type_info(code).unwrap_or((1, "u8"));
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("idx header with {ndims} dimensions"),
            expected: header as u64,
            found: bytes.len() as u64,
        });
    }
    let mut dims = Vec::with_capacity(ndims);
    for chunk in bytes[4..header].chunks_exact(4) {
        dims.push(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize);
    }
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        format("header", "dimensions whose product fits in memory".into(), dims_str(&dims))
    })?;
    let body = count.checked_mul(size).and_then(|b| b.checked_add(header));
    let Some(total) = body else {
        return Err(format(
            "header",
            "dimensions whose product fits in memory".into(),
            dims_str(&dims),
        ));
    };
    if bytes.len() < total {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("{} values of type {type_name}", dims_str(&dims)),
            expected: total as u64,
            found: bytes.len() as u64,
        });
    }
    if bytes.len() > total {
        return Err(format(
            "end of data",
            format!("{total} bytes for {} values of type {type_name}", dims_str(&dims)),
            format!("{} trailing bytes", bytes.len() - total),
        ));
    }
    let body = &bytes[header..];
    let data: Vec<f32> = match code {
        0x08 => body.iter().map(|&b| b as f32).collect(),
        0x09 => body.iter().map(|&b| b as i8 as f32).collect(),
        0x0B => body.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]]) as f32).collect(),
        0x0C => body
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        0x0D => {
            body.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        _ => body
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    };
    Ok(IdxArray { dims, data, type_code: code })
}

/// Parse IDX bytes that may be gzip-compressed (detected by magic number).
pub fn parse_maybe_gz(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    let plain = io::maybe_gunzip(bytes, path)?;
    parse(&plain, path)
}

/// Read an IDX file from disk, plain or gzip-compressed.
pub fn read(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = io::read_raw(path)?;
    parse_maybe_gz(&bytes, path)
}

/// Build a dataset from an image array and a label array already parsed.
///
/// Images may be `N×F` (tabular), `N×H×W` (one channel) or `N×C×H×W`; labels must
/// be `N` non-negative integers below `num_classes` (inferred as max + 1 if `None`).
pub fn dataset_from_arrays(
    name: &str,
    images: IdxArray,
    images_path: &Path,
    labels: &IdxArray,
    labels_path: &Path,
    num_classes: Option<usize>,
) -> Result<Dataset, DataError> {
    let shape = match images.dims.as_slice() {
        [_, f] => [1, 1, *f],
        [_, h, w] => [1, *h, *w],
        [_, c, h, w] => [*c, *h, *w],
        other => {
            return Err(DataError::Format {
                path: images_path.to_path_buf(),
                context: "header".into(),
                expected: "2, 3 or 4 dimensions (N×F, N×H×W or N×C×H×W)".into(),
                found: format!("{} dimensions ({})", other.len(), dims_str(other)),
            })
        }
    };
    let n_images = images.dims.first().copied().unwrap_or(0);
    let n_labels = match labels.dims.as_slice() {
        [n] | [n, 1] => *n,
        other => {
            return Err(DataError::Format {
                path: labels_path.to_path_buf(),
                context: "header".into(),
                expected: "1 dimension (N labels)".into(),
                found: format!("{} dimensions ({})", other.len(), dims_str(other)),
            })
        }
    };
    if n_images != n_labels {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
            images: n_images,
            labels: n_labels,
        });
    }
    let mut out = Vec::with_capacity(n_labels);
    for (i, &v) in labels.data.iter().enumerate() {
        if !(v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f32) {
            return Err(DataError::Format {
                path: labels_path.to_path_buf(),
                context: format!("label {i}"),
                expected: "a non-negative integer".into(),
                found: v.to_string(),
            });
        }
        out.push(v as u32);
    }
    let classes = match num_classes {
        Some(c) => {
            if let Some((i, &l)) = out.iter().enumerate().find(|(_, &l)| l as usize >= c) {
                return Err(DataError::Format {
                    path: labels_path.to_path_buf(),
                    context: format!("label {i}"),
                    expected: format!("a class below {c}"),
                    found: l.to_string(),
                });
            }
            c
        }
        None => {
            let c = out.iter().max().map_or(0, |&m| m as usize + 1);
            if c > super::MAX_CLASSES {
                return Err(DataError::Format {
                    path: labels_path.to_path_buf(),
                    context: "labels".into(),
                    expected: format!("labels below {}", super::MAX_CLASSES),
                    found: format!("label {}", c - 1),
                });
            }
            c
        }
    };
    let range = match images.type_code {
        0x08 => (0.0, 255.0),
        0x09 => (-128.0, 127.0),
        _ => super::dataset::min_max(&images.data),
    };
    Ok(Dataset {
        name: name.to_string(),
        x: images.data,
        labels: out,
        shape,
        num_classes: classes,
        range,
    })
}

/// Read an image file and a label file (each plain or gzip) into a dataset.
pub fn read_pair(
    name: &str,
    images_path: &Path,
    labels_path: &Path,
    num_classes: Option<usize>,
) -> Result<Dataset, DataError> {
    let images = read(images_path)?;
    let labels = read(labels_path)?;
    dataset_from_arrays(name, images, images_path, &labels, labels_path, num_classes)
}
