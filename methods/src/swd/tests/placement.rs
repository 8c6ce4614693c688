//! Placement: wrapping the convolutions of chosen stages, names, order, position.

use autograd::{Result, Tensor};
use layers::{children, BatchNorm2d, Conv2d, Conv2dOptions, Mode, Module, ModuleExt, ReLU, Sequential};

use super::max_diff;
use crate::swd::{wrap_convs, Position, SpectralWaveletDropout1d};
use layers::surgery::{Around, Select};

/// A residual block with a projection shortcut, named like torchvision's.
struct Block {
    conv1: Box<dyn Module>,
    bn1: Box<dyn Module>,
    conv2: Box<dyn Module>,
    downsample: Box<dyn Module>,
}

impl Block {
    fn new(cin: usize, cout: usize) -> Block {
        let conv = |i, o, k, p| Box::new(Conv2d::new(i, o, k, Conv2dOptions::default().padding(p)).unwrap());
        Block {
            conv1: conv(cin, cout, 3, 1),
            bn1: Box::new(BatchNorm2d::new(cout)),
            conv2: conv(cout, cout, 3, 1),
            downsample: Box::new(Sequential::new().push_boxed(conv(cin, cout, 1, 0)).push(BatchNorm2d::new(cout))),
        }
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.conv2.forward(&self.bn1.forward(&self.conv1.forward(x, mode)?, mode)?.relu()?, mode)?;
        y.add(&self.downsample.forward(x, mode)?)
    }
    children!(conv1, bn1, conv2, downsample);
}

struct Net {
    stem: Box<dyn Module>,
    layer1: Box<dyn Module>,
    layer2: Box<dyn Module>,
}

impl Module for Net {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.layer2.forward(&self.layer1.forward(&self.stem.forward(x, mode)?, mode)?, mode)
    }
    children!(stem, layer1, layer2);
}

fn net() -> Net {
    layers::rng::manual_seed(0);
    let stem = Sequential::new().push(Conv2d::new(1, 2, 3, Conv2dOptions::default().padding(1)).unwrap()).push(ReLU);
    let layer2 = Sequential::new().push(Block::new(3, 4)).push(Block::new(4, 4));
    Net { stem: Box::new(stem), layer1: Box::new(Block::new(2, 3)), layer2: Box::new(layer2) }
}

/// Multiplies by a constant (to tell "before" from "after").
struct Scale(f64);

impl Module for Scale {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        x.mul_scalar(self.0)
    }
}

#[test]
fn wraps_every_conv_of_the_chosen_stages_with_stable_names() {
    let mut n = net();
    let x = Tensor::randn(&[2, 1, 6, 6], 1).unwrap();
    let before = n.forward(&x, Mode::Eval).unwrap();
    let params_before = n.named_parameters().len();
    let wrapped = wrap_convs(&mut n, &["layer2"], Position::After, "swd", &mut || {
        Ok(Box::new(SpectralWaveletDropout1d::new(0.2)?))
    })
    .unwrap();
    let want: Vec<String> = ["0.conv1", "0.conv2", "0.downsample.0", "1.conv1", "1.conv2", "1.downsample.0"]
        .iter()
        .map(|s| format!("layer2.{s}"))
        .collect();
    assert_eq!(wrapped, want);
    let names: Vec<String> = n.named_parameters().into_iter().map(|(s, _)| s).collect();
    assert_eq!(names.len(), params_before, "the dropout layers have no parameters");
    assert_eq!(names, net().named_parameters().into_iter().map(|(s, _)| s).collect::<Vec<_>>(), "names unchanged");
    let convs = |scope: &str| Select::all().under(&[scope]).of_type::<Conv2d>().paths(&n);
    assert_eq!(convs("layer2"), want, "each conv is still found at its path, through its wrapper");
    assert_eq!(convs("layer1").len(), 3);
    assert_eq!(convs("").len(), 10);
    for path in &want {
        let a = n.get_module(path).unwrap().downcast_ref::<Around>().unwrap();
        assert_eq!((a.before.len(), a.after[0].0.as_str()), (0, "swd"));
        assert_eq!(a.after[0].1.type_name(), "SpectralWaveletDropout1d");
    }
    // A checkpoint of the plain network loads into the wrapped one by name.
    let plain = net();
    layers::state_dict::load_state_dict(&n, &plain.state_dict(), layers::state_dict::Strictness::Strict).unwrap();
    // Eval mode: the wrapped model is the same function.
    assert_eq!(max_diff(&n.forward(&x, Mode::Eval).unwrap(), &before), 0.0);
    // Train mode: a different function (the masks bite), same shape.
    layers::rng::manual_seed(3);
    let y = n.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.shape(), before.shape());
}

#[test]
fn before_and_after_run_the_layer_on_the_right_side() {
    let x = Tensor::randn(&[1, 3, 5, 5], 2).unwrap();
    for position in [Position::Before, Position::After] {
        let mut n = net();
        let conv = n.get_module("layer2.0.conv1").unwrap();
        let plain = conv.forward(&x, Mode::Train).unwrap();
        let pre = conv.forward(&x.mul_scalar(2.0).unwrap(), Mode::Train).unwrap();
        wrap_convs(&mut n, &["layer2.0.conv1"], position, "scale", &mut || Ok(Box::new(Scale(2.0)))).unwrap();
        let y = n.get_module("layer2.0.conv1").unwrap().forward(&x, Mode::Train).unwrap();
        let want = match position {
            Position::Before => pre,
            Position::After => plain.mul_scalar(2.0).unwrap(),
        };
        assert!(max_diff(&y, &want) < 1e-6, "{position:?}");
        assert_eq!(Position::parse(position.name()).unwrap(), position);
    }
    assert!(Position::parse("inside").is_err());
}

#[test]
fn selecting_nothing_is_an_error() {
    let mut n = net();
    let e = wrap_convs(&mut n, &["layer9"], Position::Before, "scale", &mut || Ok(Box::new(Scale(1.0))))
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer9") && e.contains("stem"), "{e}");
}
