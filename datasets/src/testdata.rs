//! Test helper: where the real datasets live (`$LAMINA_DATA`, else `shared/data` beside the
//! workspace).

use std::path::PathBuf;

/// The real-data directory, if it exists.
pub fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("LAMINA_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    dir.is_dir().then_some(dir)
}
