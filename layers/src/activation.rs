//! Activation layers: `ReLU`, `ReLU6`, `GELU`, `SiLU`, `Sigmoid`, `Tanh`.

use autograd::{Result, Tensor};

use crate::{Mode, Module};

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
                x.$method()
            }
        }
    };
}

activation!(
    /// `max(x, 0)`.
    ///
    /// ```
    /// use layers::{Mode, Module, ReLU};
    /// use autograd::Tensor;
    /// let y = ReLU.forward(&Tensor::from_vec(vec![-1.0f32, 2.0], &[2]).unwrap(), Mode::Eval).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
    /// ```
    ReLU,
    relu
);
activation!(
    /// `min(max(x, 0), 6)` (MobileNetV2).
    ReLU6,
    relu6
);
activation!(
    /// `x · σ(x)` (also called swish).
    SiLU,
    silu
);
activation!(
    /// The logistic function.
    Sigmoid,
    sigmoid
);
activation!(
    /// The hyperbolic tangent.
    Tanh,
    tanh
);

/// `x · Φ(x)` with the exact error function, or PyTorch's tanh approximation.
#[derive(Clone, Copy, Debug, Default)]
pub struct GELU {
    /// Use the tanh approximation (`approximate="tanh"`).
    pub tanh_approximation: bool,
}

impl Module for GELU {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if self.tanh_approximation {
            x.gelu_tanh()
        } else {
            x.gelu()
        }
    }
}
