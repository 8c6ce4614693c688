//! Reading whole files, transparently decompressing gzip.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DatasetError, Result};

/// True when `bytes` starts with the gzip magic `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Largest decompressed size accepted (4 GiB): a guard against gzip bombs.
pub const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Decompresses `bytes` if they are gzip, else returns them unchanged. `path` only names the
/// source in errors.
pub fn maybe_gunzip(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(3));
    MultiGzDecoder::new(&bytes[..]).take(MAX_DECOMPRESSED + 1).read_to_end(&mut out).map_err(|e| {
        DatasetError::Decode {
            path: path.to_path_buf(),
            message: format!("corrupt or truncated gzip stream ({e}) after {} decompressed bytes", out.len()),
        }
    })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DatasetError::Decode {
            path: path.to_path_buf(),
            message: format!("decompresses to more than {MAX_DECOMPRESSED} bytes"),
        });
    }
    Ok(out)
}

/// Reads the file at `path`, decompressing it when it is gzip (detected by its magic bytes,
/// not its name).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    maybe_gunzip(bytes, path)
}
