//! The IDX format (MNIST, Fashion-MNIST and any other IDX file), plain or gzip-compressed.
//!
//! An IDX file is `0, 0, type, ndims`, then `ndims` big-endian `u32` sizes, then the data,
//! row-major. [`read_idx`] reads any such file; [`IdxDataset`] pairs an image file
//! (magic `0x00000803`) with a label file (magic `0x00000801`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Sample};
use crate::error::{DatasetError, Result};
use crate::read::read_file;
use crate::transforms::{Normalization, Pipeline};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The element type of an IDX file (third byte of the magic number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxType {
    /// `0x08`: unsigned byte.
    U8,
    /// `0x09`: signed byte.
    I8,
    /// `0x0B`: big-endian `i16`.
    I16,
    /// `0x0C`: big-endian `i32`.
    I32,
    /// `0x0D`: big-endian `f32`.
    F32,
    /// `0x0E`: big-endian `f64`.
    F64,
}

impl IdxType {
    /// The type for a type code, if the format defines it.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// A parsed IDX file: its type, dimensions and raw (big-endian) data bytes.
#[derive(Clone, Debug)]
pub struct IdxArray {
    /// The element type.
    pub dtype: IdxType,
    /// The dimension sizes, outermost first.
    pub dims: Vec<usize>,
    /// The data bytes after the header (`product(dims) * dtype.size()` of them).
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Parses an (already decompressed) IDX file. `path` only names the source in errors.
    /// Checks the magic, the header length and that the data length is exactly what the
    /// header promises.
    pub fn parse(mut bytes: Vec<u8>, path: &Path) -> Result<IdxArray> {
        let (dtype, dims, header) = parse_header(&bytes, path)?;
        bytes.drain(..header);
        Ok(IdxArray { dtype, dims, data: bytes })
    }

    /// The magic number this array's header had.
    pub fn magic(&self) -> u32 {
        let code = match self.dtype {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        };
        (code << 8) | self.dims.len() as u32
    }

    /// The elements converted to `f64` (from big-endian where wider than a byte).
    pub fn to_f64(&self) -> Vec<f64> {
        let s = self.dtype.size();
        self.data
            .chunks_exact(s)
            .map(|b| match self.dtype {
                IdxType::U8 => b[0] as f64,
                IdxType::I8 => b[0] as i8 as f64,
                IdxType::I16 => i16::from_be_bytes([b[0], b[1]]) as f64,
                IdxType::I32 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
                IdxType::F32 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
                IdxType::F64 => f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            })
            .collect()
    }
}

/// Validates an IDX header against the whole (decompressed) file and returns the type, the
/// dimensions and the header length.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<(IdxType, Vec<usize>, usize)> {
    let p = || path.to_path_buf();
    if bytes.len() < 4 {
        return Err(DatasetError::Truncated { path: p(), at: bytes.len() as u64, needed: 4 });
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DatasetError::BadMagic { path: p(), found: magic, expected: IMAGES_MAGIC });
    }
    let dtype = IdxType::from_code(bytes[2]).ok_or_else(|| DatasetError::BadHeader {
        path: p(),
        message: format!("unknown data type code {:#04x}", bytes[2]),
    })?;
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(DatasetError::BadHeader { path: p(), message: "zero dimensions".into() });
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(DatasetError::Truncated { path: p(), at: bytes.len() as u64, needed: header as u64 });
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let elems = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|e| e.checked_mul(dtype.size()))
        .and_then(|e| e.checked_add(header))
        .ok_or_else(|| DatasetError::BadHeader { path: p(), message: format!("dimensions {dims:?} overflow") })?;
    let needed = elems;
    if bytes.len() < needed {
        return Err(DatasetError::Truncated { path: p(), at: bytes.len() as u64, needed: needed as u64 });
    }
    if bytes.len() > needed {
        return Err(DatasetError::CountMismatch {
            path: p(),
            message: format!(
                "header dimensions {dims:?} account for {needed} bytes but the file has {} ({} extra)",
                bytes.len(),
                bytes.len() - needed
            ),
        });
    }
    Ok((dtype, dims, header))
}

/// Reads any IDX file (gzip-compressed or not) from disk.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    IdxArray::parse(read_file(path)?, path)
}

fn expect_magic(arr: &IdxArray, expected: u32, path: &Path) -> Result<()> {
    if arr.magic() != expected {
        return Err(DatasetError::BadMagic { path: path.to_path_buf(), found: arr.magic(), expected });
    }
    Ok(())
}

/// Parses IDX image bytes (magic `0x00000803`): returns `(count, rows, cols, pixels)`.
pub fn parse_images(bytes: Vec<u8>, path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let arr = IdxArray::parse(bytes, path)?;
    expect_magic(&arr, IMAGES_MAGIC, path)?;
    Ok((arr.dims[0], arr.dims[1], arr.dims[2], arr.data))
}

/// Parses IDX label bytes (magic `0x00000801`) and checks every label is below
/// `num_classes`.
pub fn parse_labels(bytes: Vec<u8>, path: &Path, num_classes: usize) -> Result<Vec<u8>> {
    let arr = IdxArray::parse(bytes, path)?;
    expect_magic(&arr, LABELS_MAGIC, path)?;
    if let Some((index, &label)) = arr.data.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
        return Err(DatasetError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: label as i64,
            num_classes,
        });
    }
    Ok(arr.data)
}

/// Static description of an IDX image-classification dataset.
#[derive(Clone, Debug)]
pub struct IdxInfo {
    /// The dataset's registry name.
    pub name: String,
    /// The class names, by class id.
    pub class_names: Vec<String>,
    /// The default normalization statistics.
    pub normalization: Normalization,
}

/// An image file and a label file in IDX format, held decompressed in memory.
#[derive(Clone, Debug)]
pub struct IdxDataset {
    info: IdxInfo,
    images_path: PathBuf,
    n: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl IdxDataset {
    /// Reads an image file and a label file (each plain or gzip).
    pub fn open(images: &Path, labels: &Path, info: IdxInfo) -> Result<Self> {
        let img = read_file(images)?;
        let lab = read_file(labels)?;
        Self::from_bytes(img, images, lab, labels, info)
    }

    /// Builds the dataset from (possibly gzip-compressed) file contents; the paths only name
    /// the sources in errors.
    pub fn from_bytes(
        image_bytes: Vec<u8>,
        images: &Path,
        label_bytes: Vec<u8>,
        labels: &Path,
        info: IdxInfo,
    ) -> Result<Self> {
        let image_bytes = crate::read::maybe_gunzip(image_bytes, images)?;
        let label_bytes = crate::read::maybe_gunzip(label_bytes, labels)?;
        let (n, rows, cols, pixels) = parse_images(image_bytes, images)?;
        if n == 0 {
            return Err(DatasetError::CountMismatch {
                path: images.to_path_buf(),
                message: "the file holds no images (its header says 0)".into(),
            });
        }
        let labels_v = parse_labels(label_bytes, labels, info.class_names.len())?;
        if labels_v.len() != n {
            return Err(DatasetError::CountMismatch {
                path: labels.to_path_buf(),
                message: format!("{} labels but {} holds {n} images", labels_v.len(), images.display()),
            });
        }
        Ok(IdxDataset { info, images_path: images.to_path_buf(), n, rows, cols, pixels, labels: labels_v })
    }

    /// All pixels, image after image (`len * rows * cols` bytes).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The image file this dataset was read from.
    pub fn images_path(&self) -> &Path {
        &self.images_path
    }
}

impl Dataset for IdxDataset {
    fn name(&self) -> &str {
        &self.info.name
    }
    fn len(&self) -> usize {
        self.n
    }
    fn num_classes(&self) -> usize {
        self.info.class_names.len()
    }
    fn class_names(&self) -> &[String] {
        &self.info.class_names
    }
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some([1, self.rows, self.cols])
    }
    fn normalization(&self) -> Normalization {
        self.info.normalization.clone()
    }
    fn get(&self, index: usize) -> Result<Sample<'_>> {
        crate::dataset::check_index(self, index)?;
        let s = self.rows * self.cols;
        Ok(Sample {
            pixels: Cow::Borrowed(&self.pixels[index * s..(index + 1) * s]),
            shape: [1, self.rows, self.cols],
            label: self.labels[index] as i64,
        })
    }
    fn label(&self, index: usize) -> Result<i64> {
        crate::dataset::check_index(self, index)?;
        Ok(self.labels[index] as i64)
    }
    fn standard_pipeline(&self, _train: bool) -> Pipeline {
        Pipeline::new().normalize(self.info.normalization.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    fn info() -> IdxInfo {
        IdxInfo {
            name: "t".into(),
            class_names: (0..10).map(|i| i.to_string()).collect(),
            normalization: Normalization::new(vec![0.5], vec![0.5]),
        }
    }

    #[test]
    fn parses_any_idx() {
        let mut b = header(0x0000_0D02, &[2, 1]);
        b.extend_from_slice(&1.5f32.to_be_bytes());
        b.extend_from_slice(&(-2.0f32).to_be_bytes());
        let a = IdxArray::parse(b, Path::new("f")).unwrap();
        assert_eq!(a.dims, vec![2, 1]);
        assert_eq!(a.to_f64(), vec![1.5, -2.0]);
    }

    #[test]
    fn images_and_labels() {
        let mut img = header(IMAGES_MAGIC, &[2, 2, 3]);
        img.extend(0..12u8);
        let mut lab = header(LABELS_MAGIC, &[2]);
        lab.extend([7u8, 3]);
        let d = IdxDataset::from_bytes(img, Path::new("i"), lab, Path::new("l"), info()).unwrap();
        assert_eq!(d.len(), 2);
        let s = d.get(1).unwrap();
        assert_eq!(&s.pixels[..], &[6, 7, 8, 9, 10, 11]);
        assert_eq!(s.label, 3);
        assert_eq!(s.shape, [1, 2, 3]);
        assert!(d.get(2).is_err());
    }

    #[test]
    fn errors() {
        let p = Path::new("/d/x-idx3-ubyte");
        // truncated
        let mut img = header(IMAGES_MAGIC, &[2, 2, 2]);
        img.extend([0u8; 7]);
        let e = parse_images(img, p).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { at: 23, needed: 24, .. }), "{e}");
        assert!(e.to_string().contains("/d/x-idx3-ubyte"));
        // wrong magic: labels given as images
        let mut lab = header(LABELS_MAGIC, &[1]);
        lab.push(0);
        let e = parse_images(lab, p).unwrap_err();
        assert!(matches!(e, DatasetError::BadMagic { found: 0x801, expected: 0x803, .. }));
        // count smaller than data
        let mut lab = header(LABELS_MAGIC, &[1]);
        lab.extend([0u8, 1]);
        let e = parse_labels(lab, p, 10).unwrap_err();
        assert!(matches!(e, DatasetError::CountMismatch { .. }), "{e}");
        // label out of range
        let mut lab = header(LABELS_MAGIC, &[3]);
        lab.extend([0u8, 1, 10]);
        let e = parse_labels(lab, p, 10).unwrap_err();
        assert!(matches!(e, DatasetError::LabelOutOfRange { index: 2, label: 10, .. }));
        // unknown type
        let e = IdxArray::parse(vec![0, 0, 0x42, 1, 0, 0, 0, 0], p).unwrap_err();
        assert!(matches!(e, DatasetError::BadHeader { .. }));
        // overflowing dims
        let e = IdxArray::parse(header(0x0E04, &[u32::MAX; 4]), p).unwrap_err();
        assert!(matches!(e, DatasetError::BadHeader { .. } | DatasetError::Truncated { .. }));
    }
}
