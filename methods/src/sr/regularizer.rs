//! The regularizers the SR paper trains with and combines SR with (spec §3.5–3.6), as model
//! changes through `layers::surgery`: dropout before the classifier (D), Dropout2d and
//! DropBlock on stage outputs (D2D, DB), squeeze-and-excitation and CBAM inside every residual
//! block's branch (SE, CBAM).

use autograd::{Error, Result};
use layers::models::resnet::{BasicBlock, Bottleneck};
use layers::surgery::{insert_after, insert_before, num_stages, unwrapped, Select};
use layers::{Cbam, Conv2d, DropBlock2d, Dropout, Dropout2d, Linear, Module, ModuleExt, SqueezeExcitation};

use super::placement::stage_output;

/// Which regularizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegularizerKind {
    /// Nothing.
    None,
    /// Dropout before the classifier (`d`).
    Dropout,
    /// Dropout2d on stage outputs (`d2d`).
    Dropout2d,
    /// DropBlock on stage outputs with a linear keep-probability schedule (`db`).
    DropBlock,
    /// Squeeze-and-excitation in every residual block's branch (`se`).
    Se,
    /// CBAM in every residual block's branch (`cbam`).
    Cbam,
}

impl RegularizerKind {
    /// Parses `none`, `d`, `d2d`, `db`, `se` or `cbam` (also `dropout`, `dropout2d`,
    /// `dropblock`).
    pub fn parse(s: &str) -> Result<RegularizerKind> {
        Ok(match s {
            "none" => RegularizerKind::None,
            "d" | "dropout" => RegularizerKind::Dropout,
            "d2d" | "dropout2d" => RegularizerKind::Dropout2d,
            "db" | "dropblock" => RegularizerKind::DropBlock,
            "se" => RegularizerKind::Se,
            "cbam" => RegularizerKind::Cbam,
            _ => {
                return Err(Error::invalid(
                    "--set regularizer",
                    format!("unknown regularizer {s:?}; expected none, d, d2d, db, se or cbam"),
                ))
            }
        })
    }

    /// The short name [`RegularizerKind::parse`] reads (`d2d`).
    pub fn name(self) -> &'static str {
        match self {
            RegularizerKind::None => "none",
            RegularizerKind::Dropout => "d",
            RegularizerKind::Dropout2d => "d2d",
            RegularizerKind::DropBlock => "db",
            RegularizerKind::Se => "se",
            RegularizerKind::Cbam => "cbam",
        }
    }

    /// The name of the inserted modules (`layer3.d2d`, `fc.dropout`, `layer1.0.bn2.se`).
    pub fn module_name(self) -> &'static str {
        match self {
            RegularizerKind::None => "",
            RegularizerKind::Dropout => "dropout",
            RegularizerKind::Dropout2d => "d2d",
            RegularizerKind::DropBlock => "dropblock",
            RegularizerKind::Se => "se",
            RegularizerKind::Cbam => "cbam",
        }
    }
}

/// A regularizer with its settings (each used only by the kinds it concerns).
#[derive(Clone, Debug, PartialEq)]
pub struct Regularizer {
    /// Which one.
    pub kind: RegularizerKind,
    /// Drop probability of D (0.2) and D2D (0.1).
    pub p: f64,
    /// The stages (1-based) whose outputs get D2D or DropBlock.
    pub stages: Vec<usize>,
    /// DropBlock's block size (3 for CIFAR-sized inputs, 7 for ImageNet-sized ones).
    pub block_size: usize,
    /// DropBlock's final keep probability (0.9), reached linearly from 1 over the run.
    pub keep_prob: f64,
    /// SE's and CBAM's reduction ratio (16).
    pub reduction: usize,
}

/// The stages `3, 4` the model has (D2D and DropBlock's default), or its last stage when it has
/// fewer than three.
pub fn deep_stages(model: &dyn Module) -> Vec<usize> {
    let n = num_stages(model);
    let s: Vec<usize> = [3, 4].into_iter().filter(|&k| k <= n).collect();
    if s.is_empty() && n > 0 {
        vec![n]
    } else {
        s
    }
}

/// DropBlock's block size for inputs of side `side`: 7 for ImageNet-sized inputs (≥ 128
/// pixels), 3 for CIFAR-sized ones (the DropBlock paper's and the SR spec's values).
pub fn default_block_size(side: usize) -> usize {
    if side >= 128 {
        7
    } else {
        3
    }
}

/// The last-norm path and channel count of every residual block's branch (`layer1.0.bn2`, 64):
/// BasicBlock's `bn2`, Bottleneck's `bn3`, in module order. Models without torchvision-style
/// residual blocks are an error.
pub fn residual_branch_ends(model: &dyn Module) -> Result<Vec<(String, usize)>> {
    let out_channels = |block: &dyn Module, conv: &str| {
        block.get_module(conv).and_then(|m| unwrapped(m).downcast_ref::<Conv2d>().map(Conv2d::out_channels))
    };
    let mut out = Vec::new();
    for (path, m) in model.named_modules() {
        let m = unwrapped(m);
        let (bn, conv) = if m.downcast_ref::<BasicBlock>().is_some() {
            ("bn2", "conv2")
        } else if m.downcast_ref::<Bottleneck>().is_some() {
            ("bn3", "conv3")
        } else {
            continue;
        };
        let c = out_channels(m, conv)
            .ok_or_else(|| Error::invalid("residual_branch_ends", format!("{path}.{conv} is not a Conv2d")))?;
        out.push((format!("{path}.{bn}"), c));
    }
    if out.is_empty() {
        let top: Vec<String> = model.children().into_iter().map(|(n, _)| n).collect();
        return Err(Error::invalid(
            "SE/CBAM placement",
            format!(
                "the model has no ResNet basic or bottleneck blocks to put attention in (top-level modules {top:?}); \
                 SE and CBAM are placed inside residual branches (resnet*, resnet*-cifar)"
            ),
        ));
    }
    Ok(out)
}

impl Regularizer {
    /// Inserts the regularizer into `model` and returns the paths of the inserted modules:
    ///
    /// - D: `Dropout(p)` before the model's last `Linear` (the classifier: `fc.dropout`);
    /// - D2D: `Dropout2d(p)` after the output of each of `stages` (`layer3.d2d`);
    /// - DB: `DropBlock2d(block_size, keep_prob)` there (`layer3.dropblock`); the caller runs
    ///   the keep-probability schedule;
    /// - SE / CBAM: after the last BatchNorm of every residual branch, so the gate acts on the
    ///   branch before the addition of the shortcut (`layer1.0.bn2.se`); the block's fused
    ///   add-and-ReLU then runs unfused through the wrapper, with the same result.
    pub fn apply(&self, model: &mut dyn Module) -> Result<Vec<String>> {
        let name = self.kind.module_name();
        let mut paths = Vec::new();
        match self.kind {
            RegularizerKind::None => {}
            RegularizerKind::Dropout => {
                let fc = Select::all().of_type::<Linear>().paths(model).pop().ok_or_else(|| {
                    Error::invalid("dropout placement", "the model has no Linear layer to put dropout before")
                })?;
                insert_before(model, &fc, name, Box::new(Dropout::new(self.p)?))?;
                paths.push(format!("{fc}.{name}"));
            }
            RegularizerKind::Dropout2d | RegularizerKind::DropBlock => {
                for &stage in &self.stages {
                    let at = stage_output(model, stage)?;
                    let layer: Box<dyn Module> = if self.kind == RegularizerKind::Dropout2d {
                        Box::new(Dropout2d::new(self.p)?)
                    } else {
                        Box::new(DropBlock2d::new(self.block_size, self.keep_prob)?)
                    };
                    insert_after(model, &at, name, layer)?;
                    paths.push(format!("{at}.{name}"));
                }
            }
            RegularizerKind::Se | RegularizerKind::Cbam => {
                for (at, c) in residual_branch_ends(model)? {
                    let gate: Box<dyn Module> = if self.kind == RegularizerKind::Se {
                        Box::new(SqueezeExcitation::new(c, self.reduction)?)
                    } else {
                        Box::new(Cbam::new(c, self.reduction)?)
                    };
                    insert_after(model, &at, name, gate)?;
                    paths.push(format!("{at}.{name}"));
                }
            }
        }
        Ok(paths)
    }
}
