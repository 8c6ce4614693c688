//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The real-data directory (`$LAMINA_DATA`, else `shared/data` beside the workspace), if
/// it holds `sub`.
pub fn real_dir(sub: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("LAMINA_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    if dir.join(sub).is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found (set LAMINA_DATA)", dir.join(sub).display());
        None
    }
}

/// A temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl From<&TempDir> for PathBuf {
    fn from(d: &TempDir) -> PathBuf {
        d.0.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty temporary directory unique to this test, removed when dropped.
pub fn temp_dir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("lamina-datasets-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}
pub mod mutate;
