//! Lamina's `layers`: the [`Module`] trait and the layers, models, losses, optimizers, schedules,
//! checkpoints and MAC counter that training loops and the paper methods compose.
//!
//! Modules take an explicit [`Mode`] in `forward`; parameters are [`Param`] handles (trainable
//! leaves, freezable), state is kept in [`Buffer`]s; [`ModuleExt`] gives every module PyTorch's
//! dotted names (`layer1.0.conv1.weight`), freezing, replacing a submodule by name and dtype or
//! device conversion. Initialization draws from the per-thread seed generator [`rng`], so a model
//! built after `rng::manual_seed(s)` (or with `rng::with_seed`) is reproducible.
//!
//! ```
//! use layers::{Conv2d, Conv2dOptions, BatchNorm2d, ReLU, Sequential, Mode, Module, ModuleExt};
//! use autograd::Tensor;
//! layers::rng::manual_seed(0);
//! let net = Sequential::new()
//!     .push(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1).bias(false)).unwrap())
//!     .push(BatchNorm2d::new(4))
//!     .push(ReLU);
//! let y = net.forward(&Tensor::ones(&[2, 1, 6, 6]), Mode::Train).unwrap();
//! y.sum_all().unwrap().backward().unwrap();
//! assert!(net.parameters().iter().all(|p| p.grad().is_some()));
//! assert_eq!(net.named_buffers()[0].0, "1.running_mean");
//! ```

#![warn(missing_docs)]

pub use autograd;
pub use autograd::backends;

mod activation;
mod attention;
mod batchnorm;
mod cbam;
pub mod checkpoint;
mod container;
mod conv;
mod dropblock;
mod dropout;
pub mod init;
mod linear;
pub mod loss;
pub mod mac;
pub mod metrics;
pub mod models;
mod module;
pub mod moe;
mod norm;
pub mod optim;
mod param;
mod pool;
pub mod pretrained;
pub mod rng;
pub mod schedule;
mod se;
pub mod state_dict;
pub mod surgery;
mod transformer;

pub use activation::{ReLU, ReLU6, SiLU, Sigmoid, Tanh, GELU};
pub use attention::{scaled_dot_product_attention, MultiheadSelfAttention};
pub use batchnorm::{BatchNorm, BatchNorm1d, BatchNorm2d};
pub use cbam::{Cbam, ChannelAttention, SpatialAttention};
pub use container::{Flatten, Identity, Sequential};
pub use conv::{Conv2d, Conv2dOptions};
pub use dropblock::{expand_block_seeds, seed_rate, DropBlock2d, LinearKeepSchedule};
pub use dropout::{Dropout, Dropout2d};
pub use linear::Linear;
pub use module::{AsAny, Mode, Module, ModuleExt};
pub use norm::{GroupNorm, LayerNorm};
pub use param::{Buffer, Param};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use se::SqueezeExcitation;
pub use transformer::{vit_linear, EncoderBlock, Mlp};
