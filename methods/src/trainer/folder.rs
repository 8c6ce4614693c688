//! A run's folder: one process at a time, never shared silently.
//!
//! - Default folders (`runs/<method>-<UTC time>`) are created atomically; when the name is
//!   taken (two runs started in the same second) the next free `-2`, `-3`, ... is used.
//! - A process training in a folder holds an advisory lock on its `.lock` file (`flock` on
//!   Unix, through [`std::fs::File::try_lock`]) until it exits. The operating system releases
//!   the lock when the process ends, even by `kill -9`, so a stale lock never blocks `--resume`;
//!   a second process that finds the lock taken is refused with the holder's pid.
//! - A new run refuses a folder that holds anything but the lock file: a run (continue it with
//!   `--resume`) or other files. With `--overwrite` the old run's files are removed first
//!   (other files are left alone).
//! - `--resume` needs the folder's `last.safetensors`.
//! - A new run that fails before its first checkpoint removes what it wrote ([`RunFolder::discard`]),
//!   so a failed start leaves no folder that looks like a run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use autograd::{Error, Result};

use super::state::LAST;

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// Every file a run (or `--profile`) writes into its folder.
pub const RUN_FILES: [&str; 8] = [
    "config.json",
    "metrics.jsonl",
    "curves.svg",
    "last.safetensors",
    "best.safetensors",
    "inference.safetensors",
    "summary.json",
    "profile.json",
];

/// How a run takes its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// A new run: the folder must be new or empty.
    New,
    /// A new run replacing the run in the folder (`--overwrite`).
    Overwrite,
    /// Continuing the run in the folder (`--resume`).
    Resume,
}

/// A run folder held by this process (its lock is released when this is dropped).
#[derive(Debug)]
pub(crate) struct RunFolder {
    path: PathBuf,
    _lock: File,
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::invalid("--out", format!("{}: {what}: {e}", path.display()))
}

/// Files a killed write left behind (`.NAME.PID.tmp`).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

fn entries(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, "cannot list", e))? {
        let e = e.map_err(|e| io(dir, "cannot list", e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Takes the lock of `dir`, or says which process holds it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io(&path, "cannot open the lock file", e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.is_empty() { String::from("another process") } else { format!("process {pid}") };
            return Err(Error::invalid(
                "--out",
                format!(
                    "{} is in use by {who}, which is training in it: two runs cannot share a folder (wait for it, or use another --out)",
                    dir.display()
                ),
            ));
        }
        Err(TryLockError::Error(e)) => return Err(io(&path, "cannot lock", e)),
    }
    // The holder's pid, for the message above (the lock itself is the flock, not this text).
    let write = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        write!(f, "{}", std::process::id())
    };
    write(&mut f).map_err(|e| io(&path, "cannot write the lock file", e))?;
    Ok(f)
}

/// Errors unless the content of `dir` suits `claim` (the lock file aside).
fn check_content(dir: &Path, claim: Claim) -> Result<()> {
    let present: Vec<String> = entries(dir)?.into_iter().filter(|n| n != LOCK_FILE).collect();
    let run_files: Vec<&String> = present.iter().filter(|n| RUN_FILES.contains(&n.as_str())).collect();
    match claim {
        Claim::Resume if !dir.join(LAST).is_file() => {
            return Err(Error::invalid(
                    "--resume",
                    format!(
                        "{} holds no complete checkpoint yet ({LAST}): its first epoch never finished; start a new run (--overwrite to reuse the folder)",
                        dir.display()
                    ),
                ));
        }
        Claim::Resume => {}
        Claim::New if !run_files.is_empty() => {
            let list: Vec<&str> = run_files.iter().map(|s| s.as_str()).collect();
            return Err(Error::invalid(
                    "--out",
                    format!(
                        "{} already holds a run ({}): continue it with --resume {}, replace it with --overwrite, or choose another --out",
                        dir.display(),
                        list.join(", "),
                        dir.display()
                    ),
                ));
        }
        Claim::New if !present.is_empty() => {
            return Err(Error::invalid(
                    "--out",
                    format!(
                        "{} is not empty (it holds {}): a new run needs a new or empty folder (--overwrite to use it anyway)",
                        dir.display(),
                        present.join(", ")
                    ),
                ));
        }
        Claim::New => {}
        Claim::Overwrite => {}
    }
    Ok(())
}

impl RunFolder {
    /// Takes `dir` for a run: creates it if needed (not for [`Claim::Resume`]), locks it, and
    /// checks that its content suits `claim`.
    pub(crate) fn claim(dir: &Path, claim: Claim) -> Result<RunFolder> {
        if claim == Claim::Resume {
            if !dir.is_dir() {
                return Err(Error::invalid("--resume", format!("{}: no such run folder", dir.display())));
            }
        } else if dir.is_dir() {
            // Refused before the lock file is created: a refused folder is left as it was.
            check_content(dir, claim)?;
        } else {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, "cannot create", e))?;
        }
        let lock = lock(dir)?;
        // Again under the lock: another process may have started in the folder meanwhile.
        check_content(dir, claim)?;
        if claim == Claim::Overwrite {
            for name in entries(dir)?.iter().filter(|n| RUN_FILES.contains(&n.as_str()) || is_temporary(n)) {
                let p = dir.join(name);
                std::fs::remove_file(&p).map_err(|e| io(&p, "cannot remove the old run's file", e))?;
            }
        }
        Ok(RunFolder { path: dir.to_path_buf(), _lock: lock })
    }

    /// Removes what a new run wrote before failing (its files, the lock file, and the folder
    /// if that leaves it empty), releasing the lock.
    pub(crate) fn discard(self) {
        for name in RUN_FILES.iter().chain([&LOCK_FILE]) {
            let _ = std::fs::remove_file(self.path.join(name));
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// `runs/<method>-<YYYYmmdd-HHMMSS>` (UTC), created empty and atomically: when another run
/// took the name in the same second, `-2`, `-3`, ... is added.
pub fn default_out_dir(method: &str) -> Result<PathBuf> {
    default_out_dir_in(Path::new("runs"), method)
}

/// [`default_out_dir`] under `parent` instead of `runs`.
pub fn default_out_dir_in(parent: &Path, method: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(parent).map_err(|e| io(parent, "cannot create", e))?;
    let base = format!("{method}-{}", utc_stamp());
    for k in 1usize.. {
        let name = if k == 1 { base.clone() } else { format!("{base}-{k}") };
        let path = parent.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&path, "cannot create", e)),
        }
    }
    unreachable!("some suffix is free")
}

/// The current UTC time as `YYYYmmdd-HHMMSS`.
fn utc_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lamina-folder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn default_names_never_collide() {
        let parent = tmp("names");
        let dirs: Vec<PathBuf> = (0..5).map(|_| default_out_dir_in(&parent, "baseline").unwrap()).collect();
        let mut unique = dirs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5, "{dirs:?}");
        assert!(dirs.iter().all(|d| d.is_dir() && entries(d).unwrap().is_empty()));
        std::fs::remove_dir_all(parent).unwrap();
    }

    #[test]
    fn a_held_folder_is_refused_and_released_on_drop() {
        let dir = tmp("lock");
        let held = RunFolder::claim(&dir, Claim::New).unwrap();
        let e = RunFolder::claim(&dir, Claim::New).unwrap_err().to_string();
        assert!(e.contains("in use") && e.contains(&std::process::id().to_string()), "{e}");
        drop(held);
        RunFolder::claim(&dir, Claim::New).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        let e = RunFolder::claim(&dir, Claim::New).unwrap_err().to_string();
        assert!(e.contains("already holds a run (config.json)") && e.contains("--resume"), "{e}");
        let e = RunFolder::claim(&dir, Claim::Resume).unwrap_err().to_string();
        assert!(e.contains("no complete checkpoint"), "{e}");
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        std::fs::write(dir.join(".config.json.1.tmp"), "").unwrap();
        let f = RunFolder::claim(&dir, Claim::Overwrite).unwrap();
        assert_eq!(entries(&dir).unwrap(), [LOCK_FILE, "notes.txt"], "the old run's files only are removed");
        f.discard();
        assert_eq!(entries(&dir).unwrap(), ["notes.txt"]);
        let e = RunFolder::claim(&dir, Claim::New).unwrap_err().to_string();
        assert!(e.contains("not empty") && e.contains("notes.txt"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
