//! Checking a run's options before anything is read, built or written: every value that cannot
//! work is refused here, naming its flag, instead of failing (or silently doing nothing) after
//! an epoch.

use autograd::{Error, Result};
use datasets::ImageFolderOptions;

use crate::config::TrainConfig;
use crate::schedule_spec;

/// The most epochs a run may ask for (a guard against typos that would overflow step counts).
pub const MAX_EPOCHS: usize = 1_000_000;

/// The widest width multiplier (64 times the published channels; a typo beyond it would only
/// end in a failed allocation).
pub const MAX_WIDTH: f64 = 64.0;

fn need(ok: bool, flag: &'static str, what: String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(flag, what))
    }
}

/// `[lo, hi)` with a finite value.
fn in_range(v: f64, flag: &'static str, lo: f64, hi: f64) -> Result<()> {
    need(v.is_finite() && v >= lo && v < hi, flag, format!("must be a number in [{lo}, {hi}), got {v}"))
}

/// Errors unless every option of `cfg` can work: numbers finite and in range, the schedule
/// parseable with its decays inside the run, the optimizer and device known, limits that leave
/// images, image-folder options only for image folders.
///
/// ```
/// use methods::checks::check_config;
/// use methods::config::TrainConfig;
/// let mut cfg = TrainConfig::from_defaults(methods::registry::find("baseline").unwrap());
/// assert!(check_config(&cfg).is_ok());
/// cfg.val_fraction = 1.0;
/// assert!(check_config(&cfg).unwrap_err().to_string().contains("--val-fraction"));
/// ```
pub fn check_config(cfg: &TrainConfig) -> Result<()> {
    let v = cfg.lr;
    need(v.is_finite() && v >= 0.0, "--lr", format!("must be a finite number of at least 0, got {v}"))?;
    let momentum_flag = if cfg.optimizer == "sgd" { "--momentum" } else { "--momentum (Adam's beta1)" };
    in_range(cfg.momentum, momentum_flag, 0.0, 1.0)?;
    let v = cfg.weight_decay;
    need(v.is_finite() && v >= 0.0, "--weight-decay", format!("must be a finite number of at least 0, got {v}"))?;
    in_range(cfg.label_smoothing, "--label-smoothing", 0.0, 1.0)?;
    in_range(cfg.val_fraction, "--val-fraction", 0.0, 1.0)?;
    let v = cfg.width;
    need(
        v.is_finite() && v > 0.0 && v <= MAX_WIDTH,
        "--width",
        format!("must be a number in (0, {MAX_WIDTH}], got {v}"),
    )?;
    need(cfg.batch_size > 0, "--batch-size", "must be at least 1".into())?;
    need(cfg.epochs <= MAX_EPOCHS, "--epochs", format!("at most {MAX_EPOCHS}, got {}", cfg.epochs))?;
    need(cfg.train_limit != Some(0), "--train-limit", "0 leaves no training image".into())?;
    need(cfg.test_limit != Some(0), "--test-limit", "0 leaves no test image".into())?;
    need(
        ["sgd", "adam", "adamw"].contains(&cfg.optimizer.as_str()),
        "--optimizer",
        format!("unknown optimizer {:?}; valid: sgd, adam, adamw", cfg.optimizer),
    )?;
    cfg.device()?;
    cfg.matmul_precision()?;
    if cfg.epochs > 0 {
        schedule_spec::check(&cfg.schedule, cfg.epochs)?;
    }
    check_image_options(cfg)
}

/// The image-folder options: only for `--dataset imagefolder`, with sizes that make sense.
fn check_image_options(cfg: &TrainConfig) -> Result<()> {
    if cfg.dataset != datasets::image_folder::NAME {
        for (flag, given) in [
            ("--image-size", cfg.image_size.is_some()),
            ("--resize", cfg.resize.is_some()),
            ("--skip-unreadable", cfg.skip_unreadable),
        ] {
            need(
                !given,
                flag,
                format!("only applies to --dataset imagefolder (dataset {} has fixed-size images)", cfg.dataset),
            )?;
        }
        return Ok(());
    }
    let flag = if cfg.resize.is_some() { "--image-size, --resize" } else { "--image-size" };
    image_folder_options(cfg).check().map_err(|e| Error::invalid(flag, e.to_string()))
}

/// The image-folder options of `cfg` (defaults where not set).
pub fn image_folder_options(cfg: &TrainConfig) -> ImageFolderOptions {
    let d = ImageFolderOptions::default();
    ImageFolderOptions {
        image_size: cfg.image_size.unwrap_or(d.image_size),
        resize: cfg.resize,
        skip_unreadable: cfg.skip_unreadable,
    }
}
