//! Writing to the terminal without dying on a closed pipe.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`train ... | head`), which
//! would kill a run mid-epoch. The binaries and the trainer write through [`outln!`] and
//! [`errln!`] instead: once a stream is found closed, further writes to it are dropped and the
//! run goes on (its files, not its terminal output, are its result).
//!
//! ```
//! methods::outln!("epoch {} done", 3);
//! methods::errln!("warning: {}", "shown on stderr");
//! ```

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write_to(mut w: impl Write, closed: &AtomicBool, args: fmt::Arguments<'_>) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    if w.write_fmt(args).and_then(|()| w.flush()).is_err() {
        // A closed pipe (or any other failure of the terminal): stop writing, keep running.
        closed.store(true, Ordering::Relaxed);
    }
}

/// Writes to stdout; a failed write (closed pipe) silences stdout for the rest of the process.
pub fn out(args: fmt::Arguments<'_>) {
    write_to(std::io::stdout().lock(), &STDOUT_CLOSED, args);
}

/// Writes to stderr; a failed write silences stderr for the rest of the process.
pub fn err(args: fmt::Arguments<'_>) {
    write_to(std::io::stderr().lock(), &STDERR_CLOSED, args);
}

/// Whether a write to stdout has failed (its reader is gone).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// `println!` that never panics: see the [module docs](crate::console).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::console::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: see the [module docs](crate::console).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::console::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
