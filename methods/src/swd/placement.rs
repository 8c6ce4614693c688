//! Placement of a spectral dropout layer around the convolutions of chosen stages, as a model
//! transformation: every [`Conv2d`] under the selected module paths is replaced by a
//! [`AroundConv`] that runs the dropout layer before it (`SWD → Conv`, the paper's choice for
//! high-resolution inputs and for every 2-D method) or after it (`Conv → SWD`, 1-D methods on
//! CIFAR-sized inputs). Shortcut convolutions under the same path are wrapped too.
//!
//! The wrapped convolution's parameters gain a `.conv` segment (`layer4.0.conv1.weight` becomes
//! `layer4.0.conv1.conv.weight`) whatever the position; the order follows
//! [`ModuleExt::named_modules`], so the result is deterministic.

use autograd::{Error, Result, Tensor};
use layers::{Conv2d, Identity, Mode, Module, ModuleExt};

/// Where the dropout layer goes relative to each wrapped convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// `drop → conv`.
    Before,
    /// `conv → drop`.
    After,
}

impl Position {
    /// `"before"` or `"after"`.
    pub fn name(self) -> &'static str {
        match self {
            Position::Before => "before",
            Position::After => "after",
        }
    }

    /// Parses `"before"` or `"after"`.
    pub fn parse(s: &str) -> Result<Position> {
        match s {
            "before" => Ok(Position::Before),
            "after" => Ok(Position::After),
            _ => Err(Error::invalid("Position::parse", format!("expected \"before\" or \"after\", got {s:?}"))),
        }
    }
}

/// A convolution with a dropout layer before or after it. Children: `conv`, `drop`.
pub struct AroundConv {
    /// Where `drop` runs.
    pub position: Position,
    /// The wrapped convolution (or any module).
    pub conv: Box<dyn Module>,
    /// The dropout layer.
    pub drop: Box<dyn Module>,
}

impl Module for AroundConv {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match self.position {
            Position::Before => self.conv.forward(&self.drop.forward(x, mode)?, mode),
            Position::After => self.drop.forward(&self.conv.forward(x, mode)?, mode),
        }
    }

    layers::children!(conv, drop);
}

/// The dotted paths of the [`Conv2d`] modules of `model` that lie under one of `scopes`
/// (module paths such as `"layer4"`; `""` selects every convolution), in
/// [`ModuleExt::named_modules`] order.
pub fn convs_under(model: &dyn Module, scopes: &[&str]) -> Vec<String> {
    let under = |path: &str| scopes.iter().any(|s| s.is_empty() || path == *s || path.starts_with(&format!("{s}.")));
    model
        .named_modules()
        .into_iter()
        .filter(|(path, m)| m.downcast_ref::<Conv2d>().is_some() && under(path))
        .map(|(path, _)| path)
        .collect()
}

/// Wraps every [`Conv2d`] under `scopes` (see [`convs_under`]) in an [`AroundConv`] with a fresh
/// dropout layer from `make` at `position`; returns the wrapped paths. Selecting no convolution
/// is an error that lists the model's top-level children.
///
/// ```
/// use methods::swd::{wrap_convs, Position, SpectralWaveletDropout1d};
/// use layers::{Conv2d, Conv2dOptions, Mode, Module, ModuleExt, ReLU, Sequential};
/// use autograd::Tensor;
/// let block = || Sequential::new().push(Conv2d::new(2, 2, 3, Conv2dOptions::default().padding(1)).unwrap()).push(ReLU);
/// let mut net: Box<dyn Module> = Box::new(Sequential::new().push(block()).push(block()));
/// let wrapped = wrap_convs(net.as_mut(), &["1"], Position::After, &mut || {
///     Ok(Box::new(SpectralWaveletDropout1d::new(0.1)?))
/// })
/// .unwrap();
/// assert_eq!(wrapped, ["1.0"]);
/// assert_eq!(net.named_parameters()[2].0, "1.0.conv.weight");
/// let y = net.forward(&Tensor::ones(&[1, 2, 5, 5]), Mode::Train).unwrap();
/// assert_eq!(y.shape(), &[1, 2, 5, 5]);
/// ```
pub fn wrap_convs(
    model: &mut dyn Module,
    scopes: &[&str],
    position: Position,
    make: &mut dyn FnMut() -> Result<Box<dyn Module>>,
) -> Result<Vec<String>> {
    let paths = convs_under(model, scopes);
    if paths.is_empty() {
        let top: Vec<String> = model.children().into_iter().map(|(n, _)| n).collect();
        return Err(Error::invalid(
            "wrap_convs",
            format!("no Conv2d under {scopes:?}; the model's top-level modules are {top:?}"),
        ));
    }
    for path in &paths {
        let conv = model.replace_module(path, Box::new(Identity))?;
        model.replace_module(path, Box::new(AroundConv { position, conv, drop: make()? }))?;
    }
    Ok(paths)
}

/// The module paths of stages `stages` (1-based) of `model`, for [`wrap_convs`]:
///
/// - ResNets (children `layer1`, `layer2`, ...): stage `k` is `layerk`;
/// - VGG (`features` with max-pools): stage `k` is the `k`-th "module", the convolutions between
///   the `(k−1)`-th and the `k`-th max-pool (VGG16's module 4 is `features.24`, `.27`, `.30`);
/// - otherwise (LeNet-5): stage `k` is the `k`-th top-level child that holds a convolution.
///
/// A stage the model does not have is an error naming the stages it has.
pub fn stage_scopes(model: &dyn Module, stages: &[usize]) -> Result<Vec<String>> {
    let top: Vec<(String, &dyn Module)> = model.children();
    let has_conv = |m: &dyn Module| !convs_under(m, &[""]).is_empty();
    let available: Vec<Vec<String>> = if top.iter().any(|(n, _)| n == "layer1") {
        (1..).map(|k| format!("layer{k}")).take_while(|n| top.iter().any(|(c, _)| c == n)).map(|n| vec![n]).collect()
    } else if let Some((_, features)) = top.iter().find(|(n, _)| n == "features") {
        let mut modules = vec![vec![]];
        for (name, m) in features.children() {
            if m.type_name() == "MaxPool2d" {
                modules.push(vec![]);
            } else if m.downcast_ref::<Conv2d>().is_some() {
                modules.last_mut().expect("starts non-empty").push(format!("features.{name}"));
            }
        }
        modules.retain(|m| !m.is_empty());
        modules
    } else {
        top.iter().filter(|(_, m)| has_conv(*m)).map(|(n, _)| vec![n.clone()]).collect()
    };
    let mut out = vec![];
    for &k in stages {
        let Some(scopes) = k.checked_sub(1).and_then(|i| available.get(i)) else {
            return Err(Error::invalid(
                "stage_scopes",
                format!("stage {k} requested; the model has stages 1..={}: {available:?}", available.len()),
            ));
        };
        out.extend(scopes.iter().cloned());
    }
    Ok(out)
}
