//! Model surgery, in one place, so methods never walk module trees by hand: select modules by
//! path glob, scope, type and predicate ([`Select`]), replace them ([`replace`]), insert modules
//! before or after one without renaming anything ([`insert_after`], [`insert_before`], through
//! the name-transparent wrapper [`Around`]), and name a model's stages ([`stage_scopes`]).
//!
//! ```
//! use layers::surgery::{insert_after, replace, stage_scopes, Select};
//! use layers::{models, Conv2d, Dropout2d, Mode, Module, ModuleExt};
//! use autograd::Tensor;
//! let mut net = models::build("resnet20", 10, 3, 0).unwrap();
//! // A dropout after stage 3, and every 3x3 convolution of stage 2 swapped for a fresh one.
//! let stage3 = &stage_scopes(net.as_ref(), &[3]).unwrap()[0];
//! insert_after(net.as_mut(), stage3, "drop", Box::new(Dropout2d::new(0.1).unwrap())).unwrap();
//! let convs = Select::all().under(&["layer2"]).of_type::<Conv2d>();
//! let swapped = replace(net.as_mut(), &convs, &mut |_, old| {
//!     let c = old.downcast_ref::<Conv2d>().unwrap();
//!     let (i, o) = (c.in_channels(), c.out_channels());
//!     Ok(Box::new(Conv2d::new(i, o, 3, layers::Conv2dOptions { params: c.params, bias: false })?))
//! })
//! .unwrap();
//! assert_eq!(swapped.len(), 6);
//! assert!(net.get_module("layer3.0.conv1").is_some(), "names are unchanged");
//! let y = net.forward(&Tensor::zeros(&[1, 3, 32, 32]), Mode::Train).unwrap();
//! assert_eq!(y.shape(), &[1, 10]);
//! ```

mod around;
mod pattern;
mod select;
mod stages;
#[cfg(test)]
mod tests;

pub use around::{insert_after, insert_before, unwrapped, Around};
pub use pattern::PathPattern;
pub use select::{replace, Select};
pub use stages::{num_stages, stage_scopes};
