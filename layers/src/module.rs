//! The [`Module`] trait, the train/eval [`Mode`], and the tree operations every module gets
//! through [`ModuleExt`]: named parameters and buffers in PyTorch's dotted form, freezing,
//! replacing a submodule by name, dtype/device conversion.

use std::any::Any;

use autograd::{DType, Device, Error, Result, Tensor};

use crate::{Buffer, Param};

/// Whether a forward pass trains (batch statistics, dropout active) or evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Training: BatchNorm uses and updates batch statistics, dropout drops.
    Train,
    /// Evaluation: running statistics, no dropout.
    Eval,
}

impl Mode {
    /// `true` for [`Mode::Train`].
    pub fn is_train(self) -> bool {
        self == Mode::Train
    }
}

/// Downcasting support for modules (blanket-implemented for every `'static` type).
pub trait AsAny: Any {
    /// `self` as `&dyn Any`.
    fn as_any(&self) -> &dyn Any;
    /// `self` as `&mut dyn Any`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// The boxed `self` as `Box<dyn Any>` (to take a boxed module apart by its concrete type).
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A layer or a model: a forward pass plus its direct parameters, buffers and child modules.
///
/// Children are stored as `Box<dyn Module>` so that a method can swap one by name
/// ([`ModuleExt::replace_module`]). The [`children!`](crate::children) macro writes
/// `children`/`children_mut` for a struct's boxed fields.
///
/// ```
/// use layers::{Linear, Mode, Module, ModuleExt, Sequential, ReLU};
/// use autograd::Tensor;
/// let net = Sequential::new()
///     .push(Linear::new(4, 8, true))
///     .push(ReLU)
///     .push(Linear::new(8, 2, true));
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// let y = net.forward(&Tensor::ones(&[3, 4]), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[3, 2]);
/// ```
pub trait Module: AsAny + Send + Sync {
    /// Applies the module to `x`.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// `relu(forward(x))`. Modules that can fuse the ReLU into their own pass override it
    /// ([`crate::BatchNorm`] in training); the result is the same either way.
    fn forward_relu(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward(x, mode)?.relu()
    }

    /// `relu6(forward(x))` (MobileNetV2's convolution tail). Modules that can fuse the ReLU6
    /// into their own pass override it ([`crate::BatchNorm`]); the result is the same either
    /// way.
    fn forward_relu6(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward(x, mode)?.relu6()
    }

    /// `relu(forward(x) + residual)`: the end of a residual block. Modules that can fuse the
    /// add and the ReLU into their own pass override it ([`crate::BatchNorm`] in training);
    /// the result is the same either way.
    fn forward_add_relu(&self, x: &Tensor, residual: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward(x, mode)?.add(residual)?.relu()
    }

    /// This module's own parameters (not its children's), in a stable order.
    fn params(&self) -> Vec<(String, Param)> {
        Vec::new()
    }

    /// This module's own buffers (not its children's), in a stable order.
    fn buffers(&self) -> Vec<(String, Buffer)> {
        Vec::new()
    }

    /// The direct children, in a stable order.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// The direct children as replaceable slots (same order and names as [`Module::children`]).
    fn children_mut(&mut self) -> Vec<(String, &mut Box<dyn Module>)> {
        Vec::new()
    }

    /// A short type name for tables and error messages (`"Conv2d"`).
    fn type_name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }
}

/// Writes [`Module::children`] and [`Module::children_mut`] for fields of type `Box<dyn Module>`,
/// named after the fields.
///
/// ```
/// use layers::{children, Identity, Linear, Mode, Module, ModuleExt};
/// use autograd::{Result, Tensor};
/// struct Block { fc: Box<dyn Module>, skip: Box<dyn Module> }
/// impl Module for Block {
///     fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
///         self.fc.forward(x, mode)?.add(&self.skip.forward(x, mode)?)
///     }
///     children!(fc, skip);
/// }
/// let b = Block { fc: Box::new(Linear::new(3, 3, false)), skip: Box::new(Identity) };
/// assert_eq!(b.named_parameters()[0].0, "fc.weight");
/// ```
#[macro_export]
macro_rules! children {
    ($($field:ident),* $(,)?) => {
        fn children(&self) -> Vec<(String, &dyn $crate::Module)> {
            vec![$((stringify!($field).to_string(), &*self.$field as &dyn $crate::Module)),*]
        }
        fn children_mut(&mut self) -> Vec<(String, &mut Box<dyn $crate::Module>)> {
            vec![$((stringify!($field).to_string(), &mut self.$field)),*]
        }
    };
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Tree operations available on every [`Module`] (and on `dyn Module`).
pub trait ModuleExt: Module {
    /// Every parameter with its dotted name (`layer1.0.conv1.weight`), depth first.
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        walk(self.as_dyn(), "", &mut |prefix, m| {
            out.extend(m.params().into_iter().map(|(n, p)| (join(prefix, &n), p)));
        });
        out
    }

    /// Every buffer with its dotted name (`bn1.running_mean`), depth first.
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut out = Vec::new();
        walk(self.as_dyn(), "", &mut |prefix, m| {
            out.extend(m.buffers().into_iter().map(|(n, b)| (join(prefix, &n), b)));
        });
        out
    }

    /// Every module with its dotted path (the root is `""`), depth first.
    fn named_modules(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![(String::new(), self.as_dyn())];
        let mut i = 0;
        while i < out.len() {
            let (prefix, m) = (out[i].0.clone(), out[i].1);
            let kids: Vec<(String, &dyn Module)> =
                m.children().into_iter().map(|(n, c)| (join(&prefix, &n), c)).collect();
            out.splice(i + 1..i + 1, kids);
            i += 1;
        }
        out
    }

    /// All parameters (trainable or not).
    fn parameters(&self) -> Vec<Param> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// The parameters an optimizer should update.
    fn trainable_parameters(&self) -> Vec<Param> {
        self.parameters().into_iter().filter(|p| p.is_trainable()).collect()
    }

    /// The number of scalar parameters (trainable or not).
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.leaf().numel()).sum()
    }

    /// The submodule at a dotted path (`"layer1.0.conv1"`; `""` is the module itself).
    fn get_module(&self, path: &str) -> Option<&dyn Module> {
        let mut cur = self.as_dyn();
        for part in path.split('.').filter(|s| !s.is_empty()) {
            cur = cur.children().into_iter().find(|(n, _)| n == part)?.1;
        }
        Some(cur)
    }

    /// Replaces the submodule at a dotted path and returns the old one (methods swap convs,
    /// insert blocks and wrap weights this way). The error lists the valid names at the level
    /// where the path did not match.
    fn replace_module(&mut self, path: &str, new: Box<dyn Module>) -> Result<Box<dyn Module>> {
        let parts: Vec<&str> = path.split('.').collect();
        if path.is_empty() || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid("replace_module", format!("invalid module path {path:?}")));
        }
        let slot = find_slot(self.as_dyn_mut(), &parts, path)?;
        Ok(std::mem::replace(slot, new))
    }

    /// Freezes (`trainable = false`) or unfreezes every parameter whose name is `prefix` or
    /// starts with `prefix.` (`""` means all). Returns how many parameters changed; naming
    /// nothing is an error.
    fn set_trainable(&self, prefix: &str, trainable: bool) -> Result<usize> {
        let mut n = 0;
        for (name, p) in self.named_parameters() {
            if prefix.is_empty() || name == prefix || name.starts_with(&format!("{prefix}.")) {
                p.set_trainable(trainable);
                n += 1;
            }
        }
        if n == 0 {
            return Err(Error::invalid("set_trainable", format!("no parameter is named {prefix:?} or under it")));
        }
        Ok(n)
    }

    /// Clears the gradients of every parameter.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Converts floating-point parameters and buffers to `dtype` and everything to `device`
    /// (e.g. f64 for gradcheck, `Device::Cuda(0)` for training on a GPU).
    fn convert(&self, dtype: DType, device: Device) -> Result<()> {
        for p in self.parameters() {
            p.convert(dtype, device)?;
        }
        for (_, b) in self.named_buffers() {
            b.convert(dtype, device)?;
        }
        Ok(())
    }

    /// Parameters then buffers by name: what a checkpoint stores.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.named_parameters().into_iter().map(|(n, p)| (n, p.leaf())).collect();
        out.extend(self.named_buffers().into_iter().map(|(n, b)| (n, b.get())));
        out
    }

    /// `self` as a trait object.
    fn as_dyn(&self) -> &dyn Module;

    /// `self` as a mutable trait object.
    fn as_dyn_mut(&mut self) -> &mut dyn Module;
}

impl<M: Module> ModuleExt for M {
    fn as_dyn(&self) -> &dyn Module {
        self
    }
    fn as_dyn_mut(&mut self) -> &mut dyn Module {
        self
    }
}

impl ModuleExt for dyn Module {
    fn as_dyn(&self) -> &dyn Module {
        self
    }
    fn as_dyn_mut(&mut self) -> &mut dyn Module {
        self
    }
}

impl dyn Module {
    /// The module as a concrete type, if it is one.
    pub fn downcast_ref<T: Module>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    /// The module as a mutable concrete type, if it is one.
    pub fn downcast_mut<T: Module>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut::<T>()
    }
}

fn walk<'a>(m: &'a dyn Module, prefix: &str, f: &mut dyn FnMut(&str, &'a dyn Module)) {
    f(prefix, m);
    for (name, child) in m.children() {
        walk(child, &join(prefix, &name), f);
    }
}

fn find_slot<'a>(m: &'a mut dyn Module, parts: &[&str], path: &str) -> Result<&'a mut Box<dyn Module>> {
    let names: Vec<String> = m.children().into_iter().map(|(n, _)| n).collect();
    let Some(slot) = m.children_mut().into_iter().find(|(n, _)| n == parts[0]).map(|(_, s)| s) else {
        return Err(Error::invalid(
            "replace_module",
            format!("no child {:?} on the way to {path:?}; children here: {names:?}", parts[0]),
        ));
    };
    if parts.len() == 1 {
        Ok(slot)
    } else {
        find_slot(slot.as_mut(), &parts[1..], path)
    }
}
