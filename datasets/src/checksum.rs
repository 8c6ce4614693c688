//! SHA-256 verification of a data directory against the known official files.
//!
//! ```no_run
//! let report = datasets::checksum::verify_data_dir(std::path::Path::new("/data")).unwrap();
//! for r in &report {
//!     println!("{:<40} {}", r.path, r.status);
//! }
//! ```

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DatasetError, Result};

/// A known official file: dataset name, path relative to the data directory, size in bytes,
/// SHA-256.
#[derive(Clone, Copy, Debug)]
pub struct KnownFile {
    /// The registry name of the dataset it belongs to.
    pub dataset: &'static str,
    /// Its path relative to the data directory.
    pub path: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: &'static str,
}

const fn k(dataset: &'static str, path: &'static str, size: u64, sha256: &'static str) -> KnownFile {
    KnownFile { dataset, path, size, sha256 }
}

/// The official files and their SHA-256s (see `shared/data/README.md` for their sources).
pub const KNOWN_FILES: &[KnownFile] = &[
    k(
        "mnist",
        "mnist/train-images-idx3-ubyte.gz",
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    k(
        "mnist",
        "mnist/train-labels-idx1-ubyte.gz",
        28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    k(
        "mnist",
        "mnist/t10k-images-idx3-ubyte.gz",
        1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    k(
        "mnist",
        "mnist/t10k-labels-idx1-ubyte.gz",
        4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
    k(
        "fashion-mnist",
        "fashion-mnist/train-images-idx3-ubyte.gz",
        26421880,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    ),
    k(
        "fashion-mnist",
        "fashion-mnist/train-labels-idx1-ubyte.gz",
        29515,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    ),
    k(
        "fashion-mnist",
        "fashion-mnist/t10k-images-idx3-ubyte.gz",
        4422102,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    ),
    k(
        "fashion-mnist",
        "fashion-mnist/t10k-labels-idx1-ubyte.gz",
        5148,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ),
    k(
        "digits",
        "sklearn-digits/digits.csv.gz",
        57523,
        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
    ),
    k(
        "cifar10",
        "cifar-10/data_batch_1.bin",
        30730000,
        "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    ),
    k(
        "cifar10",
        "cifar-10/data_batch_2.bin",
        30730000,
        "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    ),
    k(
        "cifar10",
        "cifar-10/data_batch_3.bin",
        30730000,
        "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    ),
    k(
        "cifar10",
        "cifar-10/data_batch_4.bin",
        30730000,
        "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    ),
    k(
        "cifar10",
        "cifar-10/data_batch_5.bin",
        30730000,
        "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    ),
    k(
        "cifar10",
        "cifar-10/test_batch.bin",
        30730000,
        "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
    ),
    k(
        "cifar100",
        "cifar-100/train.bin",
        50000 * 3074,
        "f31298fc616915fa142368359df1c4ca2ae984d6915ca468b998a5ec6aeebf29",
    ),
    k(
        "cifar100",
        "cifar-100/test.bin",
        10000 * 3074,
        "d8b1e6b7b3bee4020055f0699b111f60b1af1e262aeb93a0b659061746f8224a",
    ),
];

/// The outcome of checking one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// Present with the expected SHA-256.
    Ok,
    /// Present with another SHA-256.
    Mismatch {
        /// The SHA-256 found.
        actual: String,
    },
    /// Not present.
    Missing,
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileStatus::Ok => write!(f, "ok"),
            FileStatus::Mismatch { actual } => write!(f, "MISMATCH (sha256 {actual})"),
            FileStatus::Missing => write!(f, "missing"),
        }
    }
}

/// One line of a verification report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The dataset the file belongs to.
    pub dataset: &'static str,
    /// The file's path relative to the data directory.
    pub path: &'static str,
    /// The full path checked.
    pub full_path: PathBuf,
    /// The expected SHA-256.
    pub expected: &'static str,
    /// What was found.
    pub status: FileStatus,
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file's bytes (streamed, not read whole) as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DatasetError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn check(dir: &Path, kf: &KnownFile) -> Result<FileReport> {
    let full = dir.join(kf.path);
    let status = if !full.is_file() {
        FileStatus::Missing
    } else {
        let actual = sha256_file(&full)?;
        if actual == kf.sha256 {
            FileStatus::Ok
        } else {
            FileStatus::Mismatch { actual }
        }
    };
    Ok(FileReport { dataset: kf.dataset, path: kf.path, full_path: full, expected: kf.sha256, status })
}

/// Checks every known file under `dir` (laid out as `dir/mnist/...`, `dir/cifar-10/...`,
/// ...) and reports each as ok, mismatch or missing. Errors only when a present file
/// cannot be read.
pub fn verify_data_dir(dir: &Path) -> Result<Vec<FileReport>> {
    KNOWN_FILES.iter().map(|kf| check(dir, kf)).collect()
}

/// Like [`verify_data_dir`], restricted to one dataset's files (`"mnist"`, `"cifar10"`...).
pub fn verify_dataset(dir: &Path, dataset: &str) -> Result<Vec<FileReport>> {
    KNOWN_FILES.iter().filter(|kf| kf.dataset == dataset).map(|kf| check(dir, kf)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_strings() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn reports_ok_mismatch_missing() {
        let dir = std::env::temp_dir().join(format!("lamina-checksum-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sklearn-digits")).unwrap();
        std::fs::write(dir.join("sklearn-digits/digits.csv.gz"), b"not digits").unwrap();
        let r = verify_dataset(&dir, "digits").unwrap();
        assert_eq!(r.len(), 1);
        assert!(matches!(r[0].status, FileStatus::Mismatch { .. }));
        let r = verify_dataset(&dir, "mnist").unwrap();
        assert!(r.iter().all(|x| x.status == FileStatus::Missing));
        std::fs::remove_dir_all(&dir).unwrap();

        let Some(real) = crate::testdata::data_dir() else {
            eprintln!("skipping real-data checksum test: no shared data directory");
            return;
        };
        for ds in ["mnist", "digits", "fashion-mnist"] {
            for r in verify_dataset(&real, ds).unwrap() {
                assert_eq!(r.status, FileStatus::Ok, "{}", r.full_path.display());
            }
        }
    }
}
