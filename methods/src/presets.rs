//! The recipes shared by the methods' presets: the project's small reproduction protocol
//! (`--preset small`, see `methods/REPRODUCING.md`) and the papers' CIFAR-10 recipe
//! (`--preset paper`).

use crate::registry::{Defaults, Preset};

/// The small reproduction protocol: a width-reduced ResNet-18 with the CIFAR stem (the papers'
/// four stages, so their stage placements apply; channels 16/32/64/128) on the first 5,000
/// CIFAR-10 training images (4,000 train + 1,000 validation for checkpoint selection), tested on
/// the full 10,000-image test set (every 10 epochs for the curves, and the selected weights);
/// 40 epochs of SGD with momentum 0.9, peak learning rate 0.1 on a one-cycle schedule, weight
/// decay 5e-4, batch 128, random crop and flip. About five minutes per run on two idle cores, in
/// a regime where the model overfits its small training set (about 90 % training accuracy
/// against about 68 % test accuracy at the end), so regularizers and compression can visibly
/// matter. `methods/REPRODUCING.md` holds the baseline's measured seed spread.
pub const SMALL_PROTOCOL: Defaults = Defaults {
    model: "resnet18-cifar",
    width: 0.25,
    dataset: "cifar10",
    train_limit: Some(5_000),
    val_fraction: 0.2,
    test_every: 10,
    epochs: 40,
    batch_size: 128,
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    schedule: "onecycle",
};

/// The CIFAR-10 recipe of the SWD, SR, SBN and WC papers for ResNet-18: batch 128, SGD with
/// momentum 0.9, learning rate 0.1 divided by 10 at epochs 90 and 136, weight decay 1e-4, 200
/// epochs on the full training set (45,000 train + 5,000 validation).
pub const PAPER_CIFAR10_R18: Defaults = Defaults {
    model: "resnet18-cifar",
    width: 1.0,
    dataset: "cifar10",
    train_limit: None,
    val_fraction: 0.1,
    test_every: 1,
    epochs: 200,
    batch_size: 128,
    optimizer: "sgd",
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 1e-4,
    schedule: "multistep:90,136:0.1",
};

/// `--preset small` with the method's own defaults: [`SMALL_PROTOCOL`].
pub const SMALL: Preset = Preset {
    name: "small",
    about: "the small reproduction protocol (methods/REPRODUCING.md): ResNet-18/0.25 on 5k CIFAR-10 images, 40 epochs",
    defaults: SMALL_PROTOCOL,
    hparams: &[],
};

/// `--preset paper` for methods whose paper trains ResNet-18 on CIFAR-10 with
/// [`PAPER_CIFAR10_R18`] and no method-specific values.
pub const PAPER_CIFAR10_RESNET18: Preset = Preset {
    name: "paper",
    about: "the papers' CIFAR-10 recipe: ResNet-18, 200 epochs, lr 0.1 x0.1 at 90/136, wd 1e-4",
    defaults: PAPER_CIFAR10_R18,
    hparams: &[],
};
