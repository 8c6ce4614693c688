//! [`ModBlock`]: the CNN Mixture-of-Depths block. A bias-free SE-style selector scores the `C`
//! input channels, the `k` best of each sample (descending score, ties to the lower index) go
//! through a reduced-width residual branch, the branch's output is scaled by the selected scores
//! and added to the first `k` channel positions; the other `C − k` channels pass unchanged.

use autograd::{Conv2dParams, Error, Result, Tensor};
use layers::{BatchNorm2d, Conv2d, Linear, Mode, Module, ReLU, ReLU6, Sequential};

use super::fused::{fuse_first_k, gather_channels};

/// Which residual block a MoD block reduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchKind {
    /// ResNet BasicBlock: 3x3 k→k, BN, ReLU, 3x3 k→k, BN; ReLU after the addition.
    Basic,
    /// ResNet Bottleneck: 1x1 k→k/4, BN, ReLU, 3x3, BN, ReLU, 1x1 k/4→k, BN; ReLU after.
    Bottleneck,
    /// A VGG-BN layer (a reconstruction: the paper names VGG-BN-MoD but not its branch): 3x3
    /// k→k, BN; ReLU after the addition, where the replaced layer had its ReLU.
    Plain,
    /// MobileNetV2 inverted residual with expansion `t`: 1x1 k→tk, BN, ReLU6, depthwise 3x3,
    /// BN, ReLU6, 1x1 tk→k, BN; nothing after the addition.
    Inverted {
        /// Expansion ratio.
        t: usize,
    },
}

/// How the processed channels are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The `k` highest selector scores of each sample (the paper).
    TopK,
    /// `k` channels drawn at random per sample and step, scaled by their scores (the paper's
    /// random-selection ablation).
    Random,
}

fn conv(i: usize, o: usize, k: usize, groups: usize) -> Result<Box<dyn Module>> {
    let params = Conv2dParams { padding: (k / 2, k / 2), groups, ..Conv2dParams::default() };
    Ok(Box::new(Conv2d::new(i, o, k, layers::Conv2dOptions { params, bias: false })?))
}

/// The reduced residual branch of `kind` on `k` channels.
pub fn reduced_branch(kind: BranchKind, k: usize) -> Result<Sequential> {
    let bn = |c: usize| BatchNorm2d::new(c);
    Ok(match kind {
        BranchKind::Plain => Sequential::new().push_boxed(conv(k, k, 3, 1)?).push(bn(k)),
        BranchKind::Basic => Sequential::new()
            .push_boxed(conv(k, k, 3, 1)?)
            .push(bn(k))
            .push(ReLU)
            .push_boxed(conv(k, k, 3, 1)?)
            .push(bn(k)),
        BranchKind::Bottleneck => {
            let w = (k / 4).max(1);
            Sequential::new()
                .push_boxed(conv(k, w, 1, 1)?)
                .push(bn(w))
                .push(ReLU)
                .push_boxed(conv(w, w, 3, 1)?)
                .push(bn(w))
                .push(ReLU)
                .push_boxed(conv(w, k, 1, 1)?)
                .push(bn(k))
        }
        BranchKind::Inverted { t } => {
            let h = t * k;
            Sequential::new()
                .push_boxed(conv(k, h, 1, 1)?)
                .push(bn(h))
                .push(ReLU6)
                .push_boxed(conv(h, h, 3, h)?)
                .push(bn(h))
                .push(ReLU6)
                .push_boxed(conv(h, k, 1, 1)?)
                .push(bn(k))
        }
    })
}

/// The MoD block (see the [module docs](self)). Children: `selector.0` (`C → C/r`, no bias),
/// `selector.1` (`C/r → C`, no bias) and `branch` (the reduced block).
pub struct ModBlock {
    /// The selector's two bias-free layers.
    pub selector: Box<dyn Module>,
    /// The reduced residual branch.
    pub branch: Box<dyn Module>,
    kind: BranchKind,
    channels: usize,
    k: usize,
    selection: Selection,
}

/// What one forward pass chose (for tests and analysis).
#[derive(Clone, Debug)]
pub struct Routing {
    /// Selector scores `[B, C]`.
    pub scores: Tensor,
    /// Selected channels `[B, k]` (i64), in processing order.
    pub indices: Tensor,
}

impl ModBlock {
    /// A MoD block over `channels` channels processing `k = ⌊channels / c⌋` of them (at least
    /// one), selector reduction `r` (`C/r` hidden units, at least one).
    pub fn new(kind: BranchKind, channels: usize, c: usize, r: usize, selection: Selection) -> Result<ModBlock> {
        if c == 0 || r == 0 || channels == 0 || c > channels {
            return Err(Error::invalid(
                "ModBlock::new",
                format!("{channels} channels with c = {c} and r = {r}: need 1 <= c <= channels and r >= 1"),
            ));
        }
        let k = channels / c;
        let hidden = (channels / r).max(1);
        let selector =
            Sequential::new().push(Linear::new(channels, hidden, false)).push(Linear::new(hidden, channels, false));
        Ok(ModBlock {
            selector: Box::new(selector),
            branch: Box::new(reduced_branch(kind, k)?),
            kind,
            channels,
            k,
            selection,
        })
    }

    /// `k`, the channels processed per sample.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The branch kind.
    pub fn kind(&self) -> BranchKind {
        self.kind
    }

    /// Selector scores `σ(W2 · ReLU(W1 · GAP(x)))`, `[B, C]`.
    pub fn scores(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let kids = self.selector.children();
        let z = x.mean(&[2, 3], false)?;
        let h = kids[0].1.forward(&z, mode)?.relu()?;
        kids[1].1.forward(&h, mode)?.sigmoid()
    }

    /// The block with the routing given (`indices` `[B, k]` i64 into the channels, `weights`
    /// `[B, k]` the scores of those channels), for tests of the fusion.
    pub fn forward_routed(&self, x: &Tensor, indices: &Tensor, weights: &Tensor, mode: Mode) -> Result<Tensor> {
        let [b, _, h, w] = match x.shape() {
            &[b, c, h, w] if c == self.channels => [b, c, h, w],
            s => {
                return Err(Error::invalid(
                    "ModBlock",
                    format!("expected an input [N, {}, H, W], got {s:?}", self.channels),
                ))
            }
        };
        let relu = match self.kind {
            BranchKind::Plain | BranchKind::Basic | BranchKind::Bottleneck => true,
            BranchKind::Inverted { .. } => false,
        };
        let selected = gather_channels(x, indices)?;
        debug_assert_eq!(selected.shape(), [b, self.k, h, w]);
        fuse_first_k(x, &self.branch.forward(&selected, mode)?, weights, relu)
    }

    /// The routing this block picks for `x`.
    pub fn route(&self, x: &Tensor, mode: Mode) -> Result<Routing> {
        let scores = self.scores(x, mode)?;
        let indices = match self.selection {
            Selection::TopK => scores.detach().topk(self.k, 1, true)?.1,
            Selection::Random => {
                let noise = Tensor::rand(scores.shape(), layers::rng::next_seed())?.to_dtype(scores.dtype())?;
                noise.topk(self.k, 1, true)?.1
            }
        };
        Ok(Routing { scores, indices })
    }
}

impl Module for ModBlock {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let r = self.route(x, mode)?;
        let weights = r.scores.gather(1, &r.indices)?;
        self.forward_routed(x, &r.indices, &weights, mode)
    }

    layers::children!(selector, branch);

    fn type_name(&self) -> &'static str {
        "ModBlock"
    }
}
