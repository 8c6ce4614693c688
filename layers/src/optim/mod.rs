//! Optimizers: the [`Optimizer`] trait, parameter groups, SGD, Adam/AdamW and gradient
//! clipping.
//!
//! Every optimizer here is a [`GroupedOptimizer`]: parameter groups, each with its own copy of
//! the hyperparameters (learning rate, weight decay, ...), a per-parameter state keyed by the
//! parameter's dotted name, and an [`UpdateRule`] that computes a parameter's new value from its
//! gradient — PyTorch's update formulas, step for step. Parameters that are frozen or have no
//! gradient are skipped. Updates run under [`autograd::no_grad`] and write through
//! [`Param::set_data`](crate::Param::set_data)-style in-place writes of the leaf, so nothing is
//! recorded on the tape and the model keeps its parameter handles.
//!
//! ```
//! use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
//! use layers::{Linear, Mode, Module, ModuleExt};
//! use autograd::Tensor;
//! let fc = Linear::new(3, 1, true);
//! let mut opt = Sgd::new(vec![ParamGroup::new(fc.named_parameters())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
//! let before = fc.weight.leaf().to_vec::<f32>().unwrap();
//! fc.forward(&Tensor::ones(&[2, 3]), Mode::Train).unwrap().sum_all().unwrap().backward().unwrap();
//! opt.step().unwrap();
//! opt.zero_grad();
//! // d(sum)/dW = 2 for every weight, so each weight moves by −0.1 · 2.
//! let after = fc.weight.leaf().to_vec::<f32>().unwrap();
//! assert!(before.iter().zip(&after).all(|(b, a)| (b - 0.2 - a).abs() < 1e-6));
//! ```

/// Builder methods `fn field(self, value) -> Self` for option structs.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        $($(#[$doc])* pub fn $field(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        })*
    };
}

/// The `lr`, `set_lr`, `weight_decay` and `set_weight_decay` methods of [`Hyperparameters`] for
/// option structs with `lr` and `weight_decay` fields.
macro_rules! lr_and_weight_decay {
    () => {
        fn lr(&self) -> f64 {
            self.lr
        }
        fn weight_decay(&self) -> f64 {
            self.weight_decay
        }
        fn set_lr(&mut self, lr: f64) {
            self.lr = lr;
        }
        fn set_weight_decay(&mut self, wd: f64) {
            self.weight_decay = wd;
        }
    };
}

mod adam;
mod clip;
mod grouped;
mod sgd;
#[cfg(test)]
mod state_tests;

pub use adam::{Adam, AdamOptions, AdamRule};
pub use clip::clip_grad_norm;
pub use grouped::{split_weight_decay, GroupedOptimizer, Hyperparameters, ParamGroup, ParamState, UpdateRule};
pub use sgd::{Sgd, SgdOptions, SgdRule};

use autograd::{Result, Tensor};

/// What a training loop needs from an optimizer (object safe: trainers hold a
/// `Box<dyn Optimizer>`).
pub trait Optimizer: Send {
    /// Updates every trainable parameter that has a gradient, from that gradient.
    fn step(&mut self) -> Result<()>;

    /// Clears the gradients of every parameter the optimizer holds.
    fn zero_grad(&self);

    /// The learning rate of each parameter group.
    fn lrs(&self) -> Vec<f64>;

    /// Sets the learning rate of group `group` (schedules call this).
    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()>;

    /// The momentum of each group (SGD's `momentum`, Adam's `β₁`), as one-cycle schedules cycle it.
    fn momentums(&self) -> Vec<Option<f64>>;

    /// Sets the momentum (SGD) or `β₁` (Adam) of group `group`.
    fn set_momentum(&mut self, group: usize, momentum: f64) -> Result<()>;

    /// The state to checkpoint: per-parameter tensors and the hyperparameters as JSON.
    fn state_dict(&self) -> Result<OptimizerState>;

    /// Restores a state saved by [`Optimizer::state_dict`] of an optimizer of the same kind over
    /// parameters of the same names (tensors are converted to each parameter's dtype/device).
    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()>;

    /// Dotted names of every parameter the optimizer holds, group by group.
    fn param_names(&self) -> Vec<String>;

    /// The state of parameter `name` (`None` before its first update or for unknown names).
    fn param_state(&self, name: &str) -> Option<&ParamState>;

    /// Mutable state of parameter `name` (`None` before its first update or for unknown names).
    fn param_state_mut(&mut self, name: &str) -> Option<&mut ParamState>;

    /// Multiplies every state tensor of parameter `name` (SGD's momentum buffer, Adam's
    /// `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq`) elementwise by `keep`, which has the
    /// parameter's shape: 0 zeroes that coordinate's state, 1 keeps it (pruning methods call
    /// this so a pruned weight gets no momentum back). A parameter without state yet is left
    /// alone; an unknown name or a `keep` of another shape is an error naming the parameter.
    ///
    /// ```
    /// use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
    /// use layers::{Linear, ModuleExt};
    /// use autograd::Tensor;
    /// let fc = Linear::new(2, 1, false);
    /// let mut opt = Sgd::new(vec![ParamGroup::new(fc.named_parameters())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
    /// fc.weight.leaf().set_grad(Some(Tensor::ones(&[1, 2]))).unwrap();
    /// opt.step().unwrap();
    /// let keep = Tensor::from_vec(vec![0.0f32, 1.0], &[1, 2]).unwrap();
    /// opt.mask_state("weight", &keep).unwrap();
    /// let buf = &opt.param_state("weight").unwrap().buffers["momentum_buffer"];
    /// assert_eq!(buf.to_vec::<f32>().unwrap(), vec![0.0, 1.0]);
    /// assert!(opt.mask_state("bias", &keep).unwrap_err().to_string().contains("\"bias\""));
    /// ```
    fn mask_state(&mut self, name: &str, keep: &Tensor) -> Result<()>;

    /// Forgets parameter `name`'s state entirely (its step count too), as if it had never been
    /// updated. An unknown name is an error.
    fn reset_state(&mut self, name: &str) -> Result<()>;

    /// The parameter groups: for each, its parameter names, learning rate and weight decay.
    fn group_info(&self) -> Vec<GroupInfo>;
}

/// One parameter group as [`Optimizer::group_info`] describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupInfo {
    /// The dotted names of the group's parameters.
    pub names: Vec<String>,
    /// The group's current learning rate.
    pub lr: f64,
    /// The group's weight decay.
    pub weight_decay: f64,
}

/// An optimizer's saved state: named tensors (`state.<param name>.<key>`, e.g.
/// `state.layer1.0.conv1.weight.momentum_buffer`) and JSON metadata (kind, groups with their
/// parameter names and hyperparameters, per-parameter step counts).
#[derive(Clone, Debug)]
pub struct OptimizerState {
    /// Per-parameter state tensors.
    pub tensors: Vec<(String, Tensor)>,
    /// Kind, groups and step counts.
    pub meta: serde_json::Value,
}
