//! Placement of a spectral dropout layer around the convolutions of chosen stages (found by
//! [`layers::surgery::stage_scopes`]), as a model transformation through [`layers::surgery`]:
//! the layer runs before every [`Conv2d`] under the selected module paths (`SWD → Conv`, the
//! paper's choice for high-resolution inputs and for every 2-D method) or after it
//! (`Conv → SWD`, 1-D methods on CIFAR-sized inputs). Shortcut convolutions under the same path
//! are wrapped too. Parameter names do not change, so checkpoints of the plain model load into
//! the wrapped one and back; the order follows [`layers::ModuleExt::named_modules`], so the
//! result is deterministic.

use autograd::{Error, Result};
use layers::surgery::{insert_after, insert_before, Select};
use layers::{Conv2d, Module};

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

/// Puts a fresh dropout layer from `make`, named `name`, before or after every [`Conv2d`] under
/// `scopes` (module paths such as `"layer4"`; `""` selects every convolution), through
/// [`layers::surgery`]: the convolutions keep their parameter names (`layer4.0.conv1.weight`) and
/// the layer sits at `<conv path>.<name>`. Returns the wrapped paths in module order. Selecting no
/// convolution is an error that lists the model's top-level children.
///
/// ```
/// use methods::swd::{wrap_convs, Position, SpectralWaveletDropout1d};
/// use layers::{Conv2d, Conv2dOptions, Mode, Module, ModuleExt, ReLU, Sequential};
/// use autograd::Tensor;
/// let block = || Sequential::new().push(Conv2d::new(2, 2, 3, Conv2dOptions::default().padding(1)).unwrap()).push(ReLU);
/// let mut net: Box<dyn Module> = Box::new(Sequential::new().push(block()).push(block()));
/// let wrapped = wrap_convs(net.as_mut(), &["1"], Position::After, "swd", &mut || {
///     Ok(Box::new(SpectralWaveletDropout1d::new(0.1)?))
/// })
/// .unwrap();
/// assert_eq!(wrapped, ["1.0"]);
/// assert_eq!(net.named_parameters()[2].0, "1.0.weight");
/// assert_eq!(net.get_module("1.0.swd").unwrap().type_name(), "SpectralWaveletDropout1d");
/// let y = net.forward(&Tensor::ones(&[1, 2, 5, 5]), Mode::Train).unwrap();
/// assert_eq!(y.shape(), &[1, 2, 5, 5]);
/// ```
pub fn wrap_convs(
    model: &mut dyn Module,
    scopes: &[&str],
    position: Position,
    name: &str,
    make: &mut dyn FnMut() -> Result<Box<dyn Module>>,
) -> Result<Vec<String>> {
    let paths = Select::all().under(scopes).of_type::<Conv2d>().paths(model);
    if paths.is_empty() {
        let top: Vec<String> = model.children().into_iter().map(|(n, _)| n).collect();
        return Err(Error::invalid(
            "wrap_convs",
            format!("no Conv2d under {scopes:?}; the model's top-level modules are {top:?}"),
        ));
    }
    for path in &paths {
        match position {
            Position::Before => insert_before(model, path, name, make()?)?,
            Position::After => insert_after(model, path, name, make()?)?,
        }
    }
    Ok(paths)
}
