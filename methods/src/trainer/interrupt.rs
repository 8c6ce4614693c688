//! Ctrl-C (SIGINT): the first one stops the run cleanly at the next step or batch boundary (never
//! inside a checkpoint write), so the last complete checkpoint is the one `--resume` continues
//! from; a second one exits at once with status 130 (checkpoint writes are atomic, so even then
//! no file is left half-written).
//!
//! The binaries call [`install`]; the trainer polls [`check`]. A library user who installs no
//! handler is never interrupted.

use std::sync::atomic::{AtomicBool, Ordering};

use autograd::{Error, Result};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit status of a process stopped by Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_STATUS: u8 = 130;

/// Installs the Ctrl-C handler (once per process).
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_STATUS));
        }
    })
    .map_err(|e| Error::invalid("train", format!("cannot install the Ctrl-C handler: {e}")))
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// An error once Ctrl-C was pressed (the trainer calls it between steps and batches).
pub(crate) fn check() -> Result<()> {
    if requested() {
        return Err(Error::invalid("train", "interrupted (Ctrl-C)"));
    }
    Ok(())
}
