//! The scikit-learn 8x8 digits (`digits.csv.gz`): 1797 lines of 64 pixel counts (0..=16)
//! and a label (0..=9), comma-separated, gzip-compressed (plain CSV also accepted).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::dataset::{check_index, Dataset, Sample};
use crate::error::{DatasetError, Result};
use crate::read::read_file;
use crate::transforms::{Normalization, Pipeline};

/// Registry name.
pub const NAME: &str = "digits";
/// Number of images in the official file.
pub const LEN: usize = 1797;

/// The sklearn digits, held in memory (8x8 images, one channel, pixel values 0..=16).
#[derive(Clone, Debug)]
pub struct DigitsDataset {
    path: PathBuf,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    class_names: Vec<String>,
}

impl DigitsDataset {
    /// Reads and validates `digits.csv.gz` (or a plain CSV).
    pub fn open(path: &Path) -> Result<Self> {
        Self::parse(&read_file(path)?, path)
    }

    /// Parses (decompressed) CSV text; `path` only names the source in errors. Blank lines
    /// are skipped.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let decode = |line: usize, message: String| DatasetError::Decode {
            path: path.to_path_buf(),
            message: format!("line {line}: {message}"),
        };
        let text = std::str::from_utf8(bytes).map_err(|e| decode(0, format!("not UTF-8 text: {e}")))?;
        let mut pixels = Vec::with_capacity(LEN * 64);
        let mut labels = Vec::with_capacity(LEN);
        for (ln, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 65 {
                return Err(decode(ln + 1, format!("{} fields, expected 65", fields.len())));
            }
            for (k, f) in fields.iter().enumerate() {
                let v: u32 = f
                    .trim()
                    .parse()
                    .map_err(|_| decode(ln + 1, format!("field {} is not an integer: {f:?}", k + 1)))?;
                if k < 64 {
                    if v > 16 {
                        return Err(decode(ln + 1, format!("pixel {k} = {v} exceeds 16")));
                    }
                    pixels.push(v as u8);
                } else {
                    if v > 9 {
                        return Err(DatasetError::LabelOutOfRange {
                            path: path.to_path_buf(),
                            index: labels.len(),
                            label: v as i64,
                            num_classes: 10,
                        });
                    }
                    labels.push(v as u8);
                }
            }
        }
        if labels.is_empty() {
            return Err(DatasetError::CountMismatch { path: path.to_path_buf(), message: "no records".into() });
        }
        Ok(DigitsDataset {
            path: path.to_path_buf(),
            pixels,
            labels,
            class_names: (0..10).map(|d| d.to_string()).collect(),
        })
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Dataset for DigitsDataset {
    fn name(&self) -> &str {
        NAME
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn num_classes(&self) -> usize {
        10
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some([1, 8, 8])
    }
    fn pixel_max(&self) -> f32 {
        16.0
    }
    fn normalization(&self) -> Normalization {
        Normalization::digits()
    }
    fn get(&self, index: usize) -> Result<Sample<'_>> {
        check_index(self, index)?;
        Ok(Sample {
            pixels: Cow::Borrowed(&self.pixels[index * 64..(index + 1) * 64]),
            shape: [1, 8, 8],
            label: self.labels[index] as i64,
        })
    }
    fn label(&self, index: usize) -> Result<i64> {
        check_index(self, index)?;
        Ok(self.labels[index] as i64)
    }
    /// Normalize only, for training and test.
    fn standard_pipeline(&self, _train: bool) -> Pipeline {
        Pipeline::new().normalize(self.normalization())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_errors() {
        let p = Path::new("/d/digits.csv");
        let line = |label: u32| {
            let mut s: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
            s.push(label.to_string());
            s.join(",")
        };
        let ok = format!("{}\n{}\n\n", line(3), line(9));
        let d = DigitsDataset::parse(ok.as_bytes(), p).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(1).unwrap().label, 9);
        assert_eq!(d.get(0).unwrap().pixels[16], 16);
        let e = DigitsDataset::parse(line(10).as_bytes(), p).unwrap_err();
        assert!(matches!(e, DatasetError::LabelOutOfRange { label: 10, .. }));
        let e = DigitsDataset::parse(b"1,2,3\n", p).unwrap_err();
        assert!(matches!(e, DatasetError::Decode { .. }) && e.to_string().contains("/d/digits.csv"));
        let bad = line(1).replacen("16", "17", 1);
        assert!(matches!(DigitsDataset::parse(bad.as_bytes(), p), Err(DatasetError::Decode { .. })));
        assert!(DigitsDataset::parse(b"", p).is_err());
    }
}
