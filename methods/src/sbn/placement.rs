//! Where SBN (or the control's second BN) goes: right after every [`BatchNorm2d`] of the chosen
//! stages (`conv → BN → SBN → ReLU`, and before the residual add at the end of a block), found
//! with [`layers::surgery::stage_scopes`] and inserted with [`insert_after`], so no parameter is
//! renamed: the new layer of `layer3.0.bn1` has parameters `layer3.0.bn1.<name>.weight`.

use autograd::{Error, Result};
use layers::surgery::{insert_after, stage_scopes, unwrapped, Select};
use layers::{BatchNorm2d, Conv2d, Module, ModuleExt};

/// Which batch norms get a layer after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// 1-based stages (`[3, 4]`: the paper's "SBN34"; `[4]`: "SBN4").
    pub stages: Vec<usize>,
    /// Whether the batch norms of projection shortcuts (`downsample.1`, `shortcut.1`) count
    /// ("after each BN layer": yes by default).
    pub shortcuts: bool,
}

impl Placement {
    /// The paper's stages for `model`: "SBN34" for ResNets (its CIFAR and TinyImageNet
    /// ResNet-18/34/50) and VGG-19 on 10 classes, "SBN4" for VGG-16 and for VGG-19 on more
    /// classes. Models the paper did not run: the last two stages when there are four or
    /// more, else the last one (ResNet-8/20/56 on CIFAR: stage 3, its 8x8 maps).
    pub fn paper_stages(model: &str, num_stages: usize, num_classes: usize) -> Vec<usize> {
        if model.starts_with("vgg16") || (model.starts_with("vgg19") && num_classes > 10) {
            vec![4]
        } else if model.starts_with("vgg19") || (model.starts_with("resnet") && num_stages >= 4) {
            vec![3, 4]
        } else if num_stages >= 4 {
            vec![num_stages - 1, num_stages]
        } else {
            vec![num_stages.max(1)]
        }
    }

    /// The paths of the selected batch norms of `model`, in module order. A stage that is a
    /// module (ResNet `layerK`, MobileNetV2 blocks) contributes every batch norm under it; a
    /// stage given as convolutions (VGG's `features.24`, ...) contributes the batch norm right
    /// after each convolution in its container. Selecting none is an error.
    pub fn batch_norms(&self, model: &dyn Module) -> Result<Vec<String>> {
        let scopes = stage_scopes(model, &self.stages)?;
        let mut under = Vec::new();
        for scope in &scopes {
            let m = model.get_module(scope).map(unwrapped);
            if m.is_some_and(|m| m.downcast_ref::<Conv2d>().is_some()) {
                under.push(next_sibling(scope)?);
            } else {
                under.push(scope.clone());
            }
        }
        let shortcuts = self.shortcuts;
        let select = Select::all()
            .under(&under)
            .of_type::<BatchNorm2d>()
            .filter(move |path, _| shortcuts || !path.split('.').any(|p| p == "downsample" || p == "shortcut"));
        let paths = select.paths(model);
        if paths.is_empty() {
            return Err(Error::invalid(
                "sbn placement",
                format!("no BatchNorm2d in stages {:?} (module paths {scopes:?})", self.stages),
            ));
        }
        Ok(paths)
    }

    /// Inserts `make(channels)`, named `name`, after each selected batch norm; returns their
    /// paths.
    pub fn apply(
        &self,
        model: &mut dyn Module,
        name: &str,
        make: &mut dyn FnMut(usize) -> Result<Box<dyn Module>>,
    ) -> Result<Vec<String>> {
        let paths = self.batch_norms(model)?;
        for path in &paths {
            let channels = model
                .get_module(path)
                .and_then(|m| unwrapped(m).downcast_ref::<BatchNorm2d>())
                .map(BatchNorm2d::channels)
                .ok_or_else(|| Error::invalid("sbn placement", format!("{path:?} is no longer a BatchNorm2d")))?;
            insert_after(model, path, name, make(channels)?)?;
        }
        Ok(paths)
    }
}

/// `features.25` for `features.24`.
fn next_sibling(path: &str) -> Result<String> {
    let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
    let i: usize = last
        .parse()
        .map_err(|_| Error::invalid("sbn placement", format!("{path:?} is not an indexed child of a Sequential")))?;
    Ok(if parent.is_empty() { format!("{}", i + 1) } else { format!("{parent}.{}", i + 1) })
}
