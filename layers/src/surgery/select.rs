//! [`Select`]: which modules of a model a change applies to, and [`replace`], which swaps them.

use std::any::{Any, TypeId};
use std::sync::Arc;

use autograd::{Error, Result};

use super::{unwrapped, PathPattern};
use crate::{AsAny, Identity, Module, ModuleExt};

type Filter = Arc<dyn Fn(&str, &dyn Module) -> bool + Send + Sync>;

/// A selection of modules by path, scope, type and predicate: a module is selected when it meets
/// every condition given (a builder; see [`Select::paths`]).
///
/// - [`Select::path`]: its path matches a glob (several calls: any of them);
/// - [`Select::under`]: it lies under one of the scopes (each call adds a condition);
/// - [`Select::of_type`]: the module, seen through [`Around`](super::Around) wrappers, is a `T`
///   (several calls: any of the types);
/// - [`Select::filter`]: a predicate holds (each call adds a condition).
///
/// The root is never selected, except by the glob `""`.
///
/// ```
/// use layers::surgery::Select;
/// use layers::{models, BatchNorm2d, Conv2d};
/// let net = models::build("resnet8", 10, 3, 0).unwrap();
/// // Every 3x3 convolution under layer3.
/// let convs = Select::all()
///     .under(&["layer3"])
///     .of_type::<Conv2d>()
///     .filter(|_, m| m.downcast_ref::<Conv2d>().is_some_and(|c| c.kernel_size() == (3, 3)))
///     .paths(net.as_ref());
/// assert_eq!(convs, ["layer3.0.conv1", "layer3.0.conv2"]);
/// let bns = Select::all().path("**.bn*").unwrap().of_type::<BatchNorm2d>().paths(net.as_ref());
/// assert_eq!(bns.len(), 7);
/// ```
#[derive(Clone, Default)]
pub struct Select {
    globs: Vec<PathPattern>,
    scopes: Vec<Vec<String>>,
    types: Vec<(TypeId, &'static str)>,
    filters: Vec<Filter>,
}

impl Select {
    /// Every module except the root.
    pub fn all() -> Select {
        Select::default()
    }

    /// Also requires the path to match `glob` (see [`PathPattern`]); with several calls, any of
    /// the globs. A malformed glob is an error.
    pub fn path(mut self, glob: &str) -> Result<Select> {
        self.globs.push(PathPattern::new(glob)?);
        Ok(self)
    }

    /// Also requires the path to equal one of `scopes` or to start with `"<scope>."`; `""`
    /// stands for the whole model.
    pub fn under(mut self, scopes: &[impl AsRef<str>]) -> Select {
        self.scopes.push(scopes.iter().map(|s| s.as_ref().to_string()).collect());
        self
    }

    /// Also requires the module, seen through [`Around`](super::Around) wrappers, to be a `T`;
    /// with several calls, any of the types.
    pub fn of_type<T: Module>(mut self) -> Select {
        self.types.push((TypeId::of::<T>(), std::any::type_name::<T>()));
        self
    }

    /// Also requires `f(path, module)` to hold; `module` is seen through
    /// [`Around`](super::Around) wrappers (downcast it to its type).
    pub fn filter(mut self, f: impl Fn(&str, &dyn Module) -> bool + Send + Sync + 'static) -> Select {
        self.filters.push(Arc::new(f));
        self
    }

    /// Whether the module `m` at `path` is selected.
    pub fn selects(&self, path: &str, m: &dyn Module) -> bool {
        let inner = unwrapped(m);
        let under = |scopes: &Vec<String>| {
            scopes
                .iter()
                .any(|s| s.is_empty() || path == s || path.strip_prefix(s.as_str()).is_some_and(|r| r.starts_with('.')))
        };
        (if self.globs.is_empty() { !path.is_empty() } else { self.globs.iter().any(|g| g.matches(path)) })
            && (!path.is_empty() || self.globs.iter().any(|g| g.glob().is_empty()))
            && self.scopes.iter().all(under)
            && (self.types.is_empty() || self.types.iter().any(|(t, _)| Any::type_id(AsAny::as_any(inner)) == *t))
            && self.filters.iter().all(|f| f(path, inner))
    }

    /// The paths of the selected modules of `model`, in [`ModuleExt::named_modules`] order (a
    /// selected module's descendants are visited too).
    pub fn paths(&self, model: &dyn Module) -> Vec<String> {
        model.named_modules().into_iter().filter(|(p, m)| self.selects(p, *m)).map(|(p, _)| p).collect()
    }
}

impl std::fmt::Display for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.globs.is_empty() {
            parts.push(format!("path matching {:?}", self.globs.iter().map(|g| g.glob()).collect::<Vec<_>>()));
        }
        for s in &self.scopes {
            parts.push(format!("under {s:?}"));
        }
        if !self.types.is_empty() {
            let short = |n: &str| n.rsplit("::").next().unwrap_or(n).to_string();
            parts
                .push(format!("of type {}", self.types.iter().map(|(_, n)| short(n)).collect::<Vec<_>>().join(" or ")));
        }
        if !self.filters.is_empty() {
            parts.push(format!("passing {} filter(s)", self.filters.len()));
        }
        if parts.is_empty() {
            write!(f, "every module")
        } else {
            write!(f, "modules {}", parts.join(", "))
        }
    }
}

impl std::fmt::Debug for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Select({self})")
    }
}

/// Replaces every module `select` picks by `f(path, old)` and returns the replaced paths in
/// order. Where selected modules nest, only the outermost is replaced (its descendants are not
/// visited again). Selecting nothing is an error naming the selection and the model's top-level
/// modules. If `f` fails, the error names the path, and that slot of the model holds an
/// `Identity` (the old module was handed to `f`).
///
/// ```
/// use layers::surgery::{replace, Select};
/// use layers::{models, Conv2d, ModuleExt, ReLU, ReLU6};
/// let mut net = models::build("mobilenetv2-cifar", 10, 3, 0).unwrap();
/// let swapped = replace(net.as_mut(), &Select::all().of_type::<ReLU6>(), &mut |_, _| Ok(Box::new(ReLU))).unwrap();
/// assert_eq!(swapped.len(), 35);
/// assert!(Select::all().of_type::<ReLU6>().paths(net.as_ref()).is_empty());
/// let e = replace(net.as_mut(), &Select::all().of_type::<ReLU6>(), &mut |_, m| Ok(m)).unwrap_err();
/// assert!(e.to_string().contains("ReLU6") && e.to_string().contains("features"));
/// ```
#[allow(clippy::type_complexity)] // the closure type is the API: written out, not aliased
pub fn replace(
    model: &mut dyn Module,
    select: &Select,
    f: &mut dyn FnMut(&str, Box<dyn Module>) -> Result<Box<dyn Module>>,
) -> Result<Vec<String>> {
    let mut outermost: Vec<String> = Vec::new();
    for p in select.paths(model) {
        let nested =
            outermost.iter().any(|o| o.is_empty() || p.strip_prefix(o.as_str()).is_some_and(|r| r.starts_with('.')));
        if !nested {
            outermost.push(p);
        }
    }
    if outermost.is_empty() {
        let top: Vec<String> = model.children().into_iter().map(|(n, _)| n).collect();
        return Err(Error::invalid(
            "replace",
            format!("no module selected ({select}); the model's top-level modules are {top:?}"),
        ));
    }
    if outermost.iter().any(|p| p.is_empty()) {
        return Err(Error::invalid("replace", "the root module cannot be replaced in place"));
    }
    for path in &outermost {
        let old = model.replace_module(path, Box::new(Identity))?;
        let new = f(path, old).map_err(|e| Error::invalid("replace", format!("{path:?}: {e}")))?;
        model.replace_module(path, new)?;
    }
    Ok(outermost)
}
