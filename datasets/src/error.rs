//! The crate's error type: every failure names the file (or directory) involved and what
//! was wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, DatasetError>;

/// Everything that can go wrong while reading, checking or batching a dataset.
///
/// Every variant that concerns a file carries its path, and the [`Display`](fmt::Display)
/// text always names it.
#[derive(Debug)]
pub enum DatasetError {
    /// The file could not be opened, read or mapped.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file ends before the data its header (or format) promises.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the data ends (its length in bytes, after decompression).
        at: u64,
        /// How many bytes the format requires.
        needed: u64,
    },
    /// The file starts with the wrong magic number.
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number found.
        found: u32,
        /// The magic number expected.
        expected: u32,
    },
    /// The header is malformed (unsupported type, zero or overflowing dimensions, ...).
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A record count disagrees with the file length or with a companion file.
    CountMismatch {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A label is not a valid class id.
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The record holding the label.
        index: usize,
        /// The label found.
        label: i64,
        /// The number of classes (valid labels are `0..num_classes`).
        num_classes: usize,
    },
    /// A file's content could not be decoded (an image that is not a valid PNG/JPEG, a
    /// CSV line that does not parse, ...).
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A class folder of an image folder holds no image file.
    EmptyClass {
        /// The class folder.
        path: PathBuf,
    },
    /// A directory that should hold the dataset's files does not (or lacks some).
    MissingData {
        /// The directory searched.
        dir: PathBuf,
        /// The files (relative to `dir`) that were expected.
        expected: Vec<String>,
    },
    /// A dataset name the registry does not know.
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The names that exist.
        valid: Vec<String>,
    },
    /// An argument (batch size, crop size, split size, ...) is invalid.
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
}

impl DatasetError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DatasetError::Io { path: path.to_path_buf(), source }
    }

    /// Builds an [`DatasetError::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        DatasetError::InvalidArgument { message: message.into() }
    }

    /// The file or directory this error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DatasetError::Io { path, .. }
            | DatasetError::Truncated { path, .. }
            | DatasetError::BadMagic { path, .. }
            | DatasetError::BadHeader { path, .. }
            | DatasetError::CountMismatch { path, .. }
            | DatasetError::LabelOutOfRange { path, .. }
            | DatasetError::Decode { path, .. }
            | DatasetError::EmptyClass { path } => Some(path),
            DatasetError::MissingData { dir, .. } => Some(dir),
            DatasetError::UnknownDataset { .. } | DatasetError::InvalidArgument { .. } => None,
        }
    }
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DatasetError::Truncated { path, at, needed } => {
                write!(f, "{}: truncated at byte {at} ({needed} bytes needed)", path.display())
            }
            DatasetError::BadMagic { path, found, expected } => {
                write!(f, "{}: bad magic number {found:#010x} (expected {expected:#010x})", path.display())
            }
            DatasetError::BadHeader { path, message } => {
                write!(f, "{}: bad header: {message}", path.display())
            }
            DatasetError::CountMismatch { path, message } => {
                write!(f, "{}: wrong record count: {message}", path.display())
            }
            DatasetError::LabelOutOfRange { path, index, label, num_classes } => {
                write!(f, "{}: label {label} of record {index} out of range 0..{num_classes}", path.display())
            }
            DatasetError::Decode { path, message } => {
                write!(f, "{}: cannot decode: {message}", path.display())
            }
            DatasetError::EmptyClass { path } => {
                write!(f, "{}: class folder holds no image file (.jpg, .jpeg, .png)", path.display())
            }
            DatasetError::MissingData { dir, expected } => {
                write!(f, "data directory {} does not hold the expected files: {}", dir.display(), expected.join(", "))
            }
            DatasetError::UnknownDataset { name, valid } => {
                write!(f, "unknown dataset {name:?}; valid names: {}", valid.join(", "))
            }
            DatasetError::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
        }
    }
}

impl std::error::Error for DatasetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DatasetError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_file() {
        let e = DatasetError::Truncated { path: PathBuf::from("/x/train.bin"), at: 10, needed: 3073 };
        let s = e.to_string();
        assert!(s.contains("/x/train.bin") && s.contains("truncated at byte 10"), "{s}");
        assert_eq!(e.path(), Some(Path::new("/x/train.bin")));
    }
}
