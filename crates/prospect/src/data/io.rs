//! File reading helpers shared by the parsers: whole-file reads with transparent gunzip.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use super::DataError;

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// True when `bytes` starts with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decompress `bytes` if they are gzip (by magic number), else return them unchanged;
/// `path` is only used in error messages.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], path: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(2));
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(Cow::Owned(out))
}

/// Read a whole file into memory.
pub fn read_raw(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Read a whole file, decompressing it when it is gzip.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = read_raw(path)?;
    if is_gzip(&raw) {
        Ok(maybe_gunzip(&raw, path)?.into_owned())
    } else {
        Ok(raw)
    }
}
