//! The shipped starting point: a ViT-Mini/4 trained on CIFAR-10 with this project
//! (`methods/assets/moee/README.md` has its command, time, accuracy and checksum), loaded by
//! `moee`'s `prepare` when the run loaded no weights of its own (`--init-from`).

use std::path::PathBuf;

use autograd::{Error, Result};
use layers::pretrained::{load_pretrained, PretrainedOptions};
use layers::Module;

use crate::registry::RunInfo;

/// The model the checkpoint is for.
pub const MODEL: &str = "vit-mini-4";

/// The checkpoint's path in this checkout (`methods/assets/moee/vit-mini-4-cifar10.safetensors`).
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").join("moee").join("vit-mini-4-cifar10.safetensors")
}

/// Loads the shipped checkpoint into `model`; an error says what to pass instead when the run's
/// model is not the checkpoint's or the file is missing.
pub fn load(model: &dyn Module, run: &RunInfo) -> Result<()> {
    let path = path();
    if run.model != MODEL || run.width != 1.0 || run.num_classes != 10 || run.input_shape != [3, 32, 32] {
        return Err(Error::invalid(
            "moee",
            format!(
                "moee splits a trained ViT, and the shipped checkpoint is a {MODEL} for CIFAR-10 (this run: {} at width {} \
                 for {} classes of {:?} images): pass --init-from CHECKPOINT (a Lamina checkpoint or a timm ViT in \
                 safetensors) or --set checkpoint=none to split the model as initialized",
                run.model, run.width, run.num_classes, run.input_shape
            ),
        ));
    }
    if !path.is_file() {
        return Err(Error::invalid(
            "moee",
            format!("the shipped checkpoint {} is missing: pass --init-from CHECKPOINT", path.display()),
        ));
    }
    load_pretrained(model, &path, &PretrainedOptions::default()).map(|_| ())
}
