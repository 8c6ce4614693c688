//! CIFAR-10 and CIFAR-100 binary files, read into memory and validated when opened.
//!
//! The files are read, not memory-mapped: a mapped file truncated or rewritten by another
//! process while a run reads it would kill the process with `SIGBUS` (no message, no file
//! named), whereas a copy in memory cannot change under the reader. Reading CIFAR-10's
//! 150 MB takes a fraction of a second, and its records are then read without a page fault.
//!
//! A CIFAR-10 record is one label byte then 3072 pixel bytes (R, G, B planes of 32x32,
//! row-major); a CIFAR-100 record is a coarse label byte, a fine label byte, then the same
//! 3072 pixel bytes. Files have no header: a file is valid when its length is a whole,
//! non-zero number of records (the expected number, when known) and every label is in range.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::dataset::{check_index, Dataset, Sample};
use crate::error::{DatasetError, Result};
use crate::transforms::{Normalization, Pipeline};

/// Pixel bytes per image (3 x 32 x 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which binary layout a file has, and for CIFAR-100 which label to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarLayout {
    /// CIFAR-10: 1 label byte (0..10) + 3072 pixels.
    Cifar10,
    /// CIFAR-100 using the fine label (0..100).
    Cifar100Fine,
    /// CIFAR-100 using the coarse label (0..20).
    Cifar100Coarse,
}

impl CifarLayout {
    /// Bytes per record.
    pub fn record_bytes(self) -> usize {
        match self {
            CifarLayout::Cifar10 => 1 + IMAGE_BYTES,
            _ => 2 + IMAGE_BYTES,
        }
    }
    /// Number of label bytes before the pixels.
    fn label_bytes(self) -> usize {
        self.record_bytes() - IMAGE_BYTES
    }
    /// Number of classes of the label used.
    pub fn num_classes(self) -> usize {
        match self {
            CifarLayout::Cifar10 => 10,
            CifarLayout::Cifar100Fine => 100,
            CifarLayout::Cifar100Coarse => 20,
        }
    }
    /// Offset of the label used within a record.
    fn label_offset(self) -> usize {
        match self {
            CifarLayout::Cifar100Fine => 1,
            _ => 0,
        }
    }
}

/// Validates the bytes of a CIFAR file and returns its number of records. Checks the
/// length (a whole number of records, `expected` of them when given) and every label
/// byte (for CIFAR-100 both the coarse and the fine label, whichever is used).
pub fn validate(bytes: &[u8], path: &Path, layout: CifarLayout, expected: Option<usize>) -> Result<usize> {
    let rec = layout.record_bytes();
    let len = bytes.len();
    if let Some(n) = expected {
        let needed = n as u64 * rec as u64;
        if (len as u64) < needed {
            return Err(DatasetError::Truncated { path: path.to_path_buf(), at: len as u64, needed });
        }
        if len as u64 > needed {
            return Err(DatasetError::CountMismatch {
                path: path.to_path_buf(),
                message: format!("expected {n} records of {rec} bytes ({needed} bytes) but the file has {len} bytes"),
            });
        }
    }
    if len == 0 {
        return Err(DatasetError::CountMismatch { path: path.to_path_buf(), message: "empty file: no records".into() });
    }
    if !len.is_multiple_of(rec) {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            at: len as u64,
            needed: (len / rec + 1) as u64 * rec as u64,
        });
    }
    let n = len / rec;
    let limits: &[usize] = match layout {
        CifarLayout::Cifar10 => &[10],
        _ => &[20, 100],
    };
    for i in 0..n {
        for (k, &limit) in limits.iter().enumerate() {
            let label = bytes[i * rec + k];
            if label as usize >= limit {
                return Err(DatasetError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index: i,
                    label: label as i64,
                    num_classes: limit,
                });
            }
        }
    }
    Ok(n)
}

/// One CIFAR binary file, read into memory and validated.
#[derive(Debug)]
pub struct CifarFile {
    path: PathBuf,
    bytes: Vec<u8>,
    records: usize,
    layout: CifarLayout,
}

impl CifarFile {
    /// Reads and validates `path` (see [`validate`]). The file is copied into memory, so a
    /// later change to it (truncation, rewrite) does not affect this reader.
    pub fn open(path: &Path, layout: CifarLayout, expected: Option<usize>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
        Self::from_bytes(bytes, path, layout, expected)
    }

    /// Validates file contents read elsewhere; `path` only names the source in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path, layout: CifarLayout, expected: Option<usize>) -> Result<Self> {
        let records = validate(&bytes, path, layout, expected)?;
        Ok(CifarFile { path: path.to_path_buf(), bytes, records, layout })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records
    }

    /// True when the file has no record (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The CHW pixels and the label of record `i` (`i < len`).
    pub fn record(&self, i: usize) -> (&[u8], u8) {
        let rec = self.layout.record_bytes();
        let r = &self.bytes[i * rec..(i + 1) * rec];
        (&r[self.layout.label_bytes()..], r[self.layout.label_offset()])
    }
}

/// CIFAR-10's class names.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// CIFAR-100's coarse (superclass) names.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// CIFAR-100's fine class names.
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// Several CIFAR files read as one dataset (e.g. `data_batch_1..5.bin`).
#[derive(Debug)]
pub struct CifarDataset {
    name: String,
    files: Vec<CifarFile>,
    starts: Vec<usize>,
    len: usize,
    layout: CifarLayout,
    class_names: Vec<String>,
}

impl CifarDataset {
    /// Opens the files in order; `expected` is the number of records each must hold, when
    /// known. Class names are the standard ones for the layout.
    pub fn open(name: &str, paths: &[PathBuf], layout: CifarLayout, expected: Option<usize>) -> Result<Self> {
        let files = paths.iter().map(|p| CifarFile::open(p, layout, expected)).collect::<Result<Vec<_>>>()?;
        Ok(Self::from_files(name, files, layout))
    }

    /// Builds the dataset from already opened files.
    pub fn from_files(name: &str, files: Vec<CifarFile>, layout: CifarLayout) -> Self {
        let mut starts = Vec::with_capacity(files.len());
        let mut len = 0;
        for f in &files {
            starts.push(len);
            len += f.len();
        }
        let names: &[&str] = match layout {
            CifarLayout::Cifar10 => &CIFAR10_CLASSES,
            CifarLayout::Cifar100Fine => &CIFAR100_FINE_CLASSES,
            CifarLayout::Cifar100Coarse => &CIFAR100_COARSE_CLASSES,
        };
        CifarDataset {
            name: name.to_string(),
            files,
            starts,
            len,
            layout,
            class_names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Replaces the class names (e.g. with those read from `batches.meta.txt`).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.layout.num_classes() {
            return Err(DatasetError::invalid(format!(
                "{} class names given for a {}-class dataset",
                names.len(),
                self.layout.num_classes()
            )));
        }
        self.class_names = names;
        Ok(self)
    }

    fn locate(&self, index: usize) -> (&CifarFile, usize) {
        let f = self.starts.partition_point(|&s| s <= index) - 1;
        (&self.files[f], index - self.starts[f])
    }
}

impl Dataset for CifarDataset {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.len
    }
    fn num_classes(&self) -> usize {
        self.layout.num_classes()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_shape(&self) -> Option<[usize; 3]> {
        Some([3, 32, 32])
    }
    fn normalization(&self) -> Normalization {
        match self.layout {
            CifarLayout::Cifar10 => Normalization::cifar10(),
            _ => Normalization::cifar100(),
        }
    }
    fn get(&self, index: usize) -> Result<Sample<'_>> {
        check_index(self, index)?;
        let (f, i) = self.locate(index);
        let (px, label) = f.record(i);
        Ok(Sample { pixels: Cow::Borrowed(px), shape: [3, 32, 32], label: label as i64 })
    }
    fn label(&self, index: usize) -> Result<i64> {
        check_index(self, index)?;
        let (f, i) = self.locate(index);
        Ok(f.record(i).1 as i64)
    }
    /// Train: pad-4 random crop, horizontal flip, normalize. Test: normalize.
    fn standard_pipeline(&self, train: bool) -> Pipeline {
        let p = Pipeline::new();
        let p = if train { p.random_crop(32, 4).horizontal_flip(0.5) } else { p };
        p.normalize(self.normalization())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_layouts() {
        let p = Path::new("/x/data_batch_1.bin");
        let mut b = vec![0u8; 2 * 3073];
        b[3073] = 9;
        assert_eq!(validate(&b, p, CifarLayout::Cifar10, None).unwrap(), 2);
        assert_eq!(validate(&b, p, CifarLayout::Cifar10, Some(2)).unwrap(), 2);
        let e = validate(&b, p, CifarLayout::Cifar10, Some(3)).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { at: 6146, needed: 9219, .. }));
        let e = validate(&b, p, CifarLayout::Cifar10, Some(1)).unwrap_err();
        assert!(matches!(e, DatasetError::CountMismatch { .. }));
        let e = validate(&b[..6000], p, CifarLayout::Cifar10, None).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { at: 6000, needed: 6146, .. }));
        b[3073] = 10;
        let e = validate(&b, p, CifarLayout::Cifar10, None).unwrap_err();
        assert!(matches!(e, DatasetError::LabelOutOfRange { index: 1, label: 10, .. }));
        let mut c = vec![0u8; 3074];
        c[0] = 19;
        c[1] = 99;
        assert_eq!(validate(&c, p, CifarLayout::Cifar100Fine, None).unwrap(), 1);
        c[0] = 20;
        let e = validate(&c, p, CifarLayout::Cifar100Fine, None).unwrap_err();
        assert!(matches!(e, DatasetError::LabelOutOfRange { num_classes: 20, .. }));
        assert!(validate(&[], p, CifarLayout::Cifar10, None).is_err());
        assert_eq!(CIFAR100_FINE_CLASSES.len(), 100);
    }

    /// A file truncated by another process while a run reads it: a memory-mapped reader died
    /// of SIGBUS here (the whole test binary with it); the copy in memory keeps every record.
    #[test]
    fn a_file_truncated_after_opening_is_still_read() {
        let dir = std::env::temp_dir().join(format!("lamina-cifar-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data_batch_1.bin");
        let n = 64;
        let mut bytes = vec![0u8; n * 3073];
        for i in 0..n {
            bytes[i * 3073] = (i % 10) as u8;
            bytes[i * 3073 + 1..(i + 1) * 3073].fill(i as u8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let file = CifarFile::open(&path, CifarLayout::Cifar10, None).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        for i in 0..n {
            let (px, label) = file.record(i);
            assert_eq!((label as usize, px[0], px[3071]), (i % 10, i as u8, i as u8));
        }
        // Opened again, the truncated file is refused, naming it.
        let e = CifarFile::open(&path, CifarLayout::Cifar10, None).unwrap_err().to_string();
        assert!(e.contains("data_batch_1.bin") && e.contains("no records"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
