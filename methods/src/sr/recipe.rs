//! The SR block's settings: insertion stage `M`, memory blocks `P`, hidden units `U`, and the
//! paper's choices of them for the models and regularizers it reports ([`paper_choice`]).

use super::block::Activation;
use super::regularizer::RegularizerKind;

/// The settings of an SR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrSettings {
    /// The stage `M` (1-based) after whose output the block sits.
    pub stage: usize,
    /// The number of memory blocks `P`.
    pub blocks: usize,
    /// The hidden units `U` of the FCN.
    pub hidden: usize,
    /// The FCN's nonlinearity `φ`.
    pub activation: Activation,
}

/// `(M, P)` the paper selected, and where the values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaperChoice {
    /// `M`.
    pub stage: usize,
    /// `P`.
    pub blocks: usize,
    /// `U`: 8 on CIFAR-sized inputs, 16 on ImageNet-sized ones.
    pub hidden: usize,
    /// `"paper: CIFAR-10 R18 +D2D+SR"` or why a fallback was used.
    pub source: &'static str,
}

/// The paper's `(M, P)` for its CIFAR tables: `(arch, classes, regularizer) → (M, P)`.
const CIFAR: &[(&str, usize, RegularizerKind, usize, usize)] = {
    use RegularizerKind::{DropBlock as DB, Dropout as D, Dropout2d as D2D, None as N};
    &[
        // CIFAR-10 (Table: R18/R34/R50 columns +SR, +D+SR, +D2D+SR, +DB+SR; VGG +SR).
        ("resnet18", 10, N, 4, 4),
        ("resnet18", 10, D, 3, 6),
        ("resnet18", 10, D2D, 3, 10),
        ("resnet18", 10, DB, 4, 6),
        ("resnet34", 10, N, 3, 8),
        ("resnet34", 10, D, 3, 10),
        ("resnet34", 10, D2D, 3, 8),
        ("resnet34", 10, DB, 4, 2),
        ("resnet50", 10, N, 3, 6),
        ("resnet50", 10, D, 3, 2),
        ("resnet50", 10, D2D, 3, 6),
        ("resnet50", 10, DB, 3, 2),
        ("vgg16-bn", 10, N, 4, 8),
        ("vgg19-bn", 10, N, 2, 12),
        // CIFAR-100.
        ("resnet18", 100, N, 4, 2),
        ("resnet18", 100, D, 3, 10),
        ("resnet18", 100, D2D, 4, 12),
        ("resnet18", 100, DB, 3, 2),
        ("resnet34", 100, N, 3, 6),
        ("resnet34", 100, D, 4, 4),
        ("resnet34", 100, D2D, 3, 6),
        ("resnet34", 100, DB, 3, 2),
        ("resnet50", 100, N, 3, 2),
        ("resnet50", 100, D, 4, 6),
        ("resnet50", 100, D2D, 3, 8),
        ("resnet50", 100, DB, 4, 4),
        ("vgg16-bn", 100, N, 2, 8),
        ("vgg19-bn", 100, N, 4, 10),
    ]
};

/// The paper's ImageNet ResNet-50 choices (`M = 3`, `U = 16`): `regularizer → P`.
const IMAGENET_R50: &[(RegularizerKind, usize)] = &[
    (RegularizerKind::None, 10),
    (RegularizerKind::Dropout, 2),
    (RegularizerKind::Dropout2d, 10),
    (RegularizerKind::DropBlock, 8),
];

/// The paper's `(M, P, U)` for `model` (a registered name: `resnet18-cifar` and `resnet18`
/// are both ResNet-18) trained on `num_classes` classes of `side`-pixel inputs with
/// `regularizer`:
///
/// - CIFAR-10/100 (10 or 100 classes, inputs under 128 pixels) ResNet-18/34/50 and VGG-16/19:
///   the `(M, P)` of its tables for that regularizer, `U = 8`;
/// - ImageNet ResNet-50 (1000 classes): `M = 3`, `P` = 10 (none, D2D), 2 (D), 8 (DB), `U = 16`;
/// - SE and CBAM (no `(M, P)` reported with them), and regularizers the paper did not run with a
///   model: that model's SR-alone values;
/// - anything else: `M = 3` (the last stage of models with fewer), `P = 4`, `U` = 8 or 16 by
///   input size — the middle of the paper's CIFAR ranges (`M ∈ {2, 3, 4}`, `P ∈ [2, 12]`).
///
/// ```
/// use methods::sr::{paper_choice, RegularizerKind};
/// let c = paper_choice("resnet18-cifar", 10, 32, RegularizerKind::Dropout2d, 4);
/// assert_eq!((c.stage, c.blocks, c.hidden), (3, 10, 8));
/// let c = paper_choice("resnet50", 1000, 224, RegularizerKind::Dropout2d, 4);
/// assert_eq!((c.stage, c.blocks, c.hidden), (3, 10, 16));
/// ```
pub fn paper_choice(
    model: &str,
    num_classes: usize,
    side: usize,
    regularizer: RegularizerKind,
    num_stages: usize,
) -> PaperChoice {
    let arch = model.strip_suffix("-cifar").unwrap_or(model);
    let hidden = if side >= 128 { 16 } else { 8 };
    if side >= 128 {
        if arch == "resnet50" && num_classes == 1000 {
            let p = IMAGENET_R50.iter().find(|(r, _)| *r == regularizer).map(|(_, p)| *p);
            let (blocks, source) = match p {
                Some(p) => (p, "paper: ImageNet ResNet-50"),
                None => (10, "paper: ImageNet ResNet-50 +SR (no value reported with this regularizer)"),
            };
            return PaperChoice { stage: 3, blocks, hidden, source };
        }
    } else if num_classes == 10 || num_classes == 100 {
        let find = |r: RegularizerKind| CIFAR.iter().find(|e| e.0 == arch && e.1 == num_classes && e.2 == r);
        if let Some(e) = find(regularizer) {
            return PaperChoice { stage: e.3, blocks: e.4, hidden, source: "paper: its CIFAR table for this model" };
        }
        if let Some(e) = find(RegularizerKind::None) {
            return PaperChoice {
                stage: e.3,
                blocks: e.4,
                hidden,
                source: "paper: this model's +SR values (none reported with this regularizer)",
            };
        }
    }
    PaperChoice {
        stage: 3.min(num_stages.max(1)),
        blocks: 4,
        hidden,
        source: "fallback: a model/dataset the paper did not run (M = 3 or the last stage, P = 4)",
    }
}
