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
        eprintln!(
            "skipping: {} not found (set LAMINA_DATA)",
            dir.join(sub).display()
        );
        None
    }
}

/// A fresh, empty temporary directory unique to this test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-datasets-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
