//! Small networks for 28x28 images (MNIST, Fashion-MNIST): LeNet-5 and the LeNet-300-100 MLP,
//! both with PyTorch's default layer init.

use autograd::{Error, Pool2dParams, Result, Tensor};

use crate::rng::with_seed;
use crate::{children, Conv2d, Conv2dOptions, Linear, Mode, Module};

fn check(op: &'static str, num_classes: usize, in_channels: usize) -> Result<()> {
    if num_classes == 0 || in_channels == 0 {
        return Err(Error::invalid(op, "needs at least one class and one input channel"));
    }
    Ok(())
}

fn check_input(op: &'static str, x: &Tensor, in_channels: usize) -> Result<()> {
    if x.ndim() != 4 || x.shape()[1..] != [in_channels, 28, 28] {
        return Err(Error::invalid(op, format!("expected [B, {in_channels}, 28, 28] images, got {:?}", x.shape())));
    }
    Ok(())
}

/// LeNet-5 in its common modern form (LeCun et al. 1998 with ReLU and max-pooling):
/// `conv1` 5x5 to 6 channels (padding 2, so 28x28 stays 28x28), 2x2 max-pool, `conv2` 5x5 to 16
/// channels, 2x2 max-pool, then `fc1` 400 -> 120, `fc2` 120 -> 84, `fc3` 84 -> classes, ReLU
/// between layers. 61,706 parameters for one input channel and 10 classes.
///
/// ```
/// use layers::models::lenet::LeNet5;
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let net = LeNet5::new(10, 1, 0).unwrap();
/// assert_eq!(net.num_parameters(), 61_706);
/// assert_eq!(net.forward(&Tensor::zeros(&[2, 1, 28, 28]), Mode::Eval).unwrap().shape(), &[2, 10]);
/// ```
pub struct LeNet5 {
    /// `Conv2d(in, 6, 5, padding = 2)`.
    pub conv1: Box<dyn Module>,
    /// `Conv2d(6, 16, 5)`.
    pub conv2: Box<dyn Module>,
    /// `Linear(400, 120)`.
    pub fc1: Box<dyn Module>,
    /// `Linear(120, 84)`.
    pub fc2: Box<dyn Module>,
    /// `Linear(84, num_classes)`.
    pub fc3: Box<dyn Module>,
    in_channels: usize,
}

impl LeNet5 {
    /// LeNet-5 for 28x28 images with `in_channels` channels, built from `seed`.
    pub fn new(num_classes: usize, in_channels: usize, seed: u64) -> Result<LeNet5> {
        check("LeNet5::new", num_classes, in_channels)?;
        with_seed(seed, || {
            Ok(LeNet5 {
                conv1: Box::new(Conv2d::new(in_channels, 6, 5, Conv2dOptions::default().padding(2))?),
                conv2: Box::new(Conv2d::new(6, 16, 5, Conv2dOptions::default())?),
                fc1: Box::new(Linear::new(16 * 5 * 5, 120, true)),
                fc2: Box::new(Linear::new(120, 84, true)),
                fc3: Box::new(Linear::new(84, num_classes, true)),
                in_channels,
            })
        })
    }
}

impl Module for LeNet5 {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        check_input("LeNet5", x, self.in_channels)?;
        let pool = Pool2dParams { stride: (2, 2), ..Pool2dParams::square(2) };
        let h = self.conv1.forward(x, mode)?.relu()?.max_pool2d(pool)?;
        let h = self.conv2.forward(&h, mode)?.relu()?.max_pool2d(pool)?.flatten(1, 3)?;
        let h = self.fc1.forward(&h, mode)?.relu()?;
        let h = self.fc2.forward(&h, mode)?.relu()?;
        self.fc3.forward(&h, mode)
    }

    children!(conv1, conv2, fc1, fc2, fc3);
}

/// LeNet-300-100 (LeCun et al. 1998): a fully connected network on flattened 28x28 images,
/// `fc1` -> 300 -> `fc2` -> 100 -> `fc3` -> classes with ReLU. 266,610 parameters for one input
/// channel and 10 classes.
///
/// ```
/// use layers::models::lenet::Mlp300100;
/// use layers::{Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let net = Mlp300100::new(10, 1, 0).unwrap();
/// assert_eq!(net.num_parameters(), 266_610);
/// assert_eq!(net.forward(&Tensor::zeros(&[3, 1, 28, 28]), Mode::Eval).unwrap().shape(), &[3, 10]);
/// ```
pub struct Mlp300100 {
    /// `Linear(in · 784, 300)`.
    pub fc1: Box<dyn Module>,
    /// `Linear(300, 100)`.
    pub fc2: Box<dyn Module>,
    /// `Linear(100, num_classes)`.
    pub fc3: Box<dyn Module>,
    in_channels: usize,
}

impl Mlp300100 {
    /// The MLP for 28x28 images with `in_channels` channels, built from `seed`.
    pub fn new(num_classes: usize, in_channels: usize, seed: u64) -> Result<Mlp300100> {
        check("Mlp300100::new", num_classes, in_channels)?;
        with_seed(seed, || {
            Ok(Mlp300100 {
                fc1: Box::new(Linear::new(in_channels * 28 * 28, 300, true)),
                fc2: Box::new(Linear::new(300, 100, true)),
                fc3: Box::new(Linear::new(100, num_classes, true)),
                in_channels,
            })
        })
    }
}

impl Module for Mlp300100 {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        check_input("Mlp300100", x, self.in_channels)?;
        let h = self.fc1.forward(&x.flatten(1, 3)?, mode)?.relu()?;
        let h = self.fc2.forward(&h, mode)?.relu()?;
        self.fc3.forward(&h, mode)
    }

    children!(fc1, fc2, fc3);
}
