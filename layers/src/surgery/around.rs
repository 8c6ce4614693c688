//! [`Around`]: a name-transparent wrapper that runs extra modules before and after a module, and
//! [`insert_after`] / [`insert_before`], which put a module into a model that way.

use autograd::{Error, Result, Tensor};

use crate::{Buffer, Identity, Mode, Module, ModuleExt, Param};

/// A module with extra modules run before and after it: `forward(x) =
/// after(inner(before(x)))`, each list in order.
///
/// It is transparent for names: its children are `inner`'s children followed by the extra
/// modules under their own names, and its own parameters and buffers are `inner`'s. So when
/// `layer3` is wrapped, `layer3.0.conv1.weight` keeps its name and an inserted module `drop` has
/// parameters `layer3.drop.*`; a wrapped `Conv2d` at `layer4.0.conv1` keeps
/// `layer4.0.conv1.weight`. Checkpoints of a model with the same insertions load by name.
/// [`unwrapped`] gives the module under any wrappers, for type checks.
///
/// ```
/// use layers::surgery::Around;
/// use layers::{Linear, Mode, Module, ModuleExt, ReLU};
/// use autograd::Tensor;
/// let fc = Linear::new(2, 2, true);
/// let wrapped = Around {
///     inner: Box::new(fc),
///     before: vec![],
///     after: vec![("act".into(), Box::new(ReLU)), ("out".into(), Box::new(Linear::new(2, 1, false)))],
/// };
/// let names: Vec<String> = wrapped.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias", "out.weight"]);
/// let y = wrapped.forward(&Tensor::ones(&[3, 2]), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[3, 1]);
/// ```
pub struct Around {
    /// The wrapped module.
    pub inner: Box<dyn Module>,
    /// Modules run before `inner`, in order, with their names.
    pub before: Vec<(String, Box<dyn Module>)>,
    /// Modules run after `inner`, in order, with their names.
    pub after: Vec<(String, Box<dyn Module>)>,
}

impl Around {
    /// `inner` with no extra modules yet.
    pub fn new(inner: Box<dyn Module>) -> Around {
        Around { inner, before: Vec::new(), after: Vec::new() }
    }

    fn has_extras(&self) -> bool {
        !self.before.is_empty() || !self.after.is_empty()
    }

    fn run(list: &[(String, Box<dyn Module>)], x: Tensor, mode: Mode) -> Result<Tensor> {
        list.iter().try_fold(x, |x, (_, m)| m.forward(&x, mode))
    }
}

impl Module for Around {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.inner.forward(&Self::run(&self.before, x.clone(), mode)?, mode)?;
        Self::run(&self.after, y, mode)
    }

    fn forward_relu(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if self.has_extras() {
            self.forward(x, mode)?.relu()
        } else {
            self.inner.forward_relu(x, mode)
        }
    }

    fn forward_relu6(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if self.has_extras() {
            self.forward(x, mode)?.relu6()
        } else {
            self.inner.forward_relu6(x, mode)
        }
    }

    fn forward_add_relu(&self, x: &Tensor, residual: &Tensor, mode: Mode) -> Result<Tensor> {
        if self.has_extras() {
            self.forward(x, mode)?.add(residual)?.relu()
        } else {
            self.inner.forward_add_relu(x, residual, mode)
        }
    }

    fn params(&self) -> Vec<(String, Param)> {
        self.inner.params()
    }

    fn buffers(&self) -> Vec<(String, Buffer)> {
        self.inner.buffers()
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out = self.inner.children();
        out.extend(self.before.iter().chain(&self.after).map(|(n, m)| (n.clone(), &**m)));
        out
    }

    fn children_mut(&mut self) -> Vec<(String, &mut Box<dyn Module>)> {
        let mut out = self.inner.children_mut();
        out.extend(self.before.iter_mut().chain(&mut self.after).map(|(n, m)| (n.clone(), m)));
        out
    }
}

/// The module under any [`Around`] wrappers (itself if it is not wrapped), for type checks.
///
/// ```
/// use layers::surgery::{unwrapped, Around};
/// use layers::{Conv2d, Conv2dOptions, Module};
/// let conv = Conv2d::new(1, 1, 3, Conv2dOptions::default()).unwrap();
/// let wrapped: Box<dyn Module> = Box::new(Around::new(Box::new(Around::new(Box::new(conv)))));
/// assert!(wrapped.downcast_ref::<Conv2d>().is_none());
/// assert!(unwrapped(wrapped.as_ref()).downcast_ref::<Conv2d>().is_some());
/// ```
pub fn unwrapped(m: &dyn Module) -> &dyn Module {
    let mut m = m;
    while let Some(a) = m.downcast_ref::<Around>() {
        m = a.inner.as_ref();
    }
    m
}

/// Inserts `module`, named `name`, right after the module at `path`: the module there is wrapped
/// in an [`Around`] (or, if it already is one, `module` runs after the modules inserted after it
/// before). Parameter names of the model do not change; the new module's are
/// `<path>.<name>.*`. An empty or dotted `name`, one that clashes with a child, parameter or
/// buffer name of the module at `path`, a path that does not exist and the root (`""`) are
/// errors.
///
/// ```
/// use layers::surgery::insert_after;
/// use layers::{models, BatchNorm2d, Mode, Module, ModuleExt};
/// use autograd::Tensor;
/// let mut net = models::build("resnet8", 10, 3, 0).unwrap();
/// insert_after(net.as_mut(), "layer2", "extra_bn", Box::new(BatchNorm2d::new(32))).unwrap();
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert!(names.contains(&"layer2.0.conv1.weight".to_string()));
/// assert!(names.contains(&"layer2.extra_bn.weight".to_string()));
/// let y = net.forward(&Tensor::zeros(&[1, 3, 32, 32]), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[1, 10]);
/// ```
pub fn insert_after(model: &mut dyn Module, path: &str, name: &str, module: Box<dyn Module>) -> Result<()> {
    insert(model, "insert_after", path, name, module, true)
}

/// Inserts `module`, named `name`, right before the module at `path` (after any module inserted
/// before it earlier); otherwise as [`insert_after`].
pub fn insert_before(model: &mut dyn Module, path: &str, name: &str, module: Box<dyn Module>) -> Result<()> {
    insert(model, "insert_before", path, name, module, false)
}

fn insert(
    model: &mut dyn Module,
    op: &'static str,
    path: &str,
    name: &str,
    module: Box<dyn Module>,
    after: bool,
) -> Result<()> {
    if path.is_empty() {
        return Err(Error::invalid(op, "cannot insert around the root module (give a submodule's path)"));
    }
    if name.is_empty() || name.contains('.') {
        return Err(Error::invalid(op, format!("the name {name:?} must be one non-empty segment without dots")));
    }
    let existing = model.get_module(path).ok_or_else(|| {
        let top: Vec<String> = model.children().into_iter().map(|(n, _)| n).collect();
        Error::invalid(op, format!("no module at {path:?}; the model's top-level modules are {top:?}"))
    })?;
    // An Around's names are its inner module's plus its extras': one rule for both.
    if names_of(existing).iter().any(|n| n == name) {
        return Err(Error::invalid(op, format!("{path:?} already has a child, parameter or buffer named {name:?}")));
    }
    let old = model.replace_module(path, Box::new(Identity))?;
    let mut around = if old.downcast_ref::<Around>().is_some() {
        *old.into_any().downcast::<Around>().expect("checked to be an Around")
    } else {
        Around::new(old)
    };
    let list = if after { &mut around.after } else { &mut around.before };
    list.push((name.to_string(), module));
    model.replace_module(path, Box::new(around))?;
    Ok(())
}

/// The child, parameter and buffer names of `m`.
fn names_of(m: &dyn Module) -> Vec<String> {
    let mut names: Vec<String> = m.children().into_iter().map(|(n, _)| n).collect();
    names.extend(m.params().into_iter().map(|(n, _)| n));
    names.extend(m.buffers().into_iter().map(|(n, _)| n));
    names
}
