//! Containers and plumbing: `Sequential`, `Identity`, `Flatten`.

use autograd::{Error, Result, Tensor};

use crate::{Mode, Module, ReLU, ReLU6};

/// Runs its children in order; they are named `"0"`, `"1"`, ... as in PyTorch. A [`ReLU`] or
/// [`ReLU6`] child runs fused into the child before it ([`Module::forward_relu`],
/// [`Module::forward_relu6`]: batch norm's pass over its input applies it), with the same
/// result as running the two in turn.
#[derive(Default)]
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty sequence (the identity).
    pub fn new() -> Sequential {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn push(mut self, layer: impl Module) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push_boxed(mut self, layer: Box<dyn Module>) -> Sequential {
        self.layers.push(layer);
        self
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut y = x.clone();
        let mut layers = self.layers.iter().peekable();
        while let Some(layer) = layers.next() {
            let next = layers.peek();
            y = if next.is_some_and(|m| m.downcast_ref::<ReLU>().is_some()) {
                layers.next();
                layer.forward_relu(&y, mode)?
            } else if next.is_some_and(|m| m.downcast_ref::<ReLU6>().is_some()) {
                layers.next();
                layer.forward_relu6(&y, mode)?
            } else {
                layer.forward(&y, mode)?
            };
        }
        Ok(y)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.layers.iter().enumerate().map(|(i, l)| (i.to_string(), &**l)).collect()
    }

    fn children_mut(&mut self) -> Vec<(String, &mut Box<dyn Module>)> {
        self.layers.iter_mut().enumerate().map(|(i, l)| (i.to_string(), l)).collect()
    }
}

/// Returns its input unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Module for Identity {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        Ok(x.clone())
    }
}

/// Flattens axes `start..=end` into one (`torch.nn.Flatten`, default `start = 1`, `end = last`).
#[derive(Clone, Copy, Debug)]
pub struct Flatten {
    /// First axis to merge.
    pub start: usize,
    /// Last axis to merge (`None`: the last axis).
    pub end: Option<usize>,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start: 1, end: None }
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.ndim() == 0 {
            return Err(Error::invalid("Flatten", "cannot flatten a scalar"));
        }
        x.flatten(self.start, self.end.unwrap_or(x.ndim() - 1))
    }
}
