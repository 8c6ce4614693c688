//! Reverse-mode differentiation over the tape.

use crate::graph::{BackwardOp, GradModeGuard, Node, NodeKind};
use crate::{profile, Error, Result, Tensor};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The profiler's name of the gradient sums where several paths meet (see [`crate::profile`]).
const ACCUMULATE: &str = "grad_accumulate";

/// Options of a backward pass.
#[derive(Clone, Debug, Default)]
pub struct BackwardOptions {
    /// The gradient of the output (required when the output is not a scalar).
    pub seed: Option<Tensor>,
    /// Keep the saved tensors so that backward can run again over the same graph.
    pub retain_graph: bool,
    /// Record the backward pass itself, for higher-order gradients (implies `retain_graph`).
    pub create_graph: bool,
    /// Add the gradients into the leaves' `.grad()` (PyTorch's behaviour; on by default in
    /// [`Tensor::backward`]).
    pub accumulate: bool,
}

/// The gradients of the leaves reached by one backward pass, by tensor.
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    by_node: HashMap<u64, Tensor>,
}

impl Gradients {
    /// The gradient of `leaf` from this pass (`None` if it was not reached or is not a leaf that
    /// requires a gradient).
    pub fn get(&self, leaf: &Tensor) -> Option<&Tensor> {
        leaf.node().and_then(|n| self.by_node.get(&n.seq))
    }

    /// Number of leaves with a gradient.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// Whether no leaf received a gradient.
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }
}

impl Tensor {
    /// Back-propagates from this scalar: returns the gradients of the leaves and adds them into
    /// each leaf's [`Tensor::grad`]. Frees the graph's saved tensors as it goes.
    pub fn backward(&self) -> Result<Gradients> {
        self.backward_with(BackwardOptions { accumulate: true, ..Default::default() })
    }

    /// Back-propagates with options (seed gradient, retained or recorded graph, accumulation).
    pub fn backward_with(&self, opts: BackwardOptions) -> Result<Gradients> {
        let Some(root) = self.node().cloned() else {
            return Err(Error::invalid(
                "backward",
                "the tensor does not require a gradient (no recorded op leads to it)",
            ));
        };
        let seed = match opts.seed {
            Some(s) => {
                if s.shape() != self.shape() {
                    return Err(Error::shape("backward (seed gradient)", self.shape(), s.shape()));
                }
                s
            }
            None => {
                if self.numel() != 1 {
                    return Err(Error::invalid(
                        "backward",
                        format!(
                            "the output has shape {:?}; backward without a seed gradient needs a scalar",
                            self.shape()
                        ),
                    ));
                }
                Tensor::ones_like(self)?
            }
        };
        let retain = opts.retain_graph || opts.create_graph;
        let _mode = GradModeGuard::new(opts.create_graph);

        // Collect the nodes reachable from the root; decreasing sequence number is topological.
        let mut order: Vec<Arc<Node>> = vec![];
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![root.clone()];
        while let Some(n) = stack.pop() {
            if !seen.insert(n.seq) {
                continue;
            }
            if let NodeKind::Op { inputs, .. } = &n.kind {
                stack.extend(inputs.iter().flatten().cloned());
            }
            order.push(n);
        }
        order.sort_unstable_by_key(|n| std::cmp::Reverse(n.seq));

        let mut pending: HashMap<u64, Tensor> = HashMap::new();
        pending.insert(root.seq, seed);
        let mut out = Gradients::default();
        for node in order {
            let Some(grad) = pending.remove(&node.seq) else { continue };
            if node.retains_grad.load(Ordering::Relaxed) && (opts.accumulate || !node.is_leaf()) {
                let mut slot = node.grad.lock().unwrap_or_else(|e| e.into_inner());
                *slot = Some(match slot.take() {
                    Some(old) if node.is_leaf() => profile::backward(ACCUMULATE, grad.device(), || old.add(&grad))?,
                    _ => grad.clone(),
                });
            }
            match &node.kind {
                NodeKind::Leaf => {
                    out.by_node.insert(node.seq, grad);
                }
                NodeKind::Op { inputs, rule, name } => {
                    let rule_guard = if retain { None } else { rule.lock().unwrap_or_else(|e| e.into_inner()).take() };
                    let run = |r: &dyn BackwardOp| profile::backward(name, grad.device(), || r.backward(&grad));
                    let grads = match &rule_guard {
                        Some(r) => run(r.as_ref())?,
                        None => {
                            let lock = rule.lock().unwrap_or_else(|e| e.into_inner());
                            match lock.as_ref() {
                                Some(r) => run(r.as_ref())?,
                                None => {
                                    return Err(Error::invalid(
                                        "backward",
                                        format!("the graph of `{name}` was already freed by an earlier backward; use retain_graph"),
                                    ))
                                }
                            }
                        }
                    };
                    drop(rule_guard);
                    drop(grad);
                    if grads.len() != inputs.len() {
                        return Err(Error::invalid(
                            "backward",
                            format!("`{name}` returned {} gradients for {} inputs", grads.len(), inputs.len()),
                        ));
                    }
                    for (input, g) in inputs.iter().zip(grads) {
                        let (Some(input), Some(g)) = (input, g) else { continue };
                        let g = match pending.remove(&input.seq) {
                            Some(acc) => profile::backward(ACCUMULATE, g.device(), || acc.add(&g))?,
                            None => g,
                        };
                        pending.insert(input.seq, g);
                    }
                }
            }
        }
        Ok(out)
    }
}
