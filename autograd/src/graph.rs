//! The tape: recorded ops as nodes, recording switches and the custom-op API.
//!
//! Every recorded op becomes a [`Node`] holding its backward rule (with only the tensors that
//! rule needs) and references to its inputs' nodes. Nodes get a sequence number from one global
//! counter when they are appended, so a node's inputs always have smaller numbers than the node:
//! walking the recorded nodes by decreasing sequence number is a topological order, and backward
//! needs no sort beyond that. Nodes are reference-counted by the tensors and nodes that use them,
//! so a graph that is never differentiated (an evaluation pass with recording on, say) is freed
//! with its last tensor, and backward frees each node's saved tensors as soon as it has used them.

use crate::{Result, Tensor};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread currently record to the tape.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Runs `f` with recording switched off on this thread (as `torch.no_grad()`).
///
/// ```
/// use autograd::{no_grad, Tensor};
/// let w = Tensor::ones(&[2]).requires_grad_();
/// let y = no_grad(|| (&w * 3.0).unwrap());
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = GradModeGuard::new(false);
    f()
}

/// Runs `f` with recording switched on (inside a [`no_grad`] scope, say).
pub fn enable_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = GradModeGuard::new(true);
    f()
}

/// Sets the recording mode for its lifetime and restores the previous one on drop.
pub struct GradModeGuard {
    previous: bool,
}

impl GradModeGuard {
    /// Switches recording on or off until the guard is dropped.
    pub fn new(enabled: bool) -> Self {
        let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
        GradModeGuard { previous }
    }
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// The derivative rule of a recorded op: maps the gradient of the op's output to the gradients
/// of its inputs (`None` for an input that needs none).
///
/// Rules are written with [`Tensor`] ops, so every backend gets them, and a backward pass run with
/// `create_graph` records its own graph (higher-order gradients). A user-defined op implements
/// this trait and attaches it with [`Tensor::from_op`].
pub trait BackwardOp: Send + Sync {
    /// The op's name, for error messages and graph dumps.
    fn name(&self) -> &'static str;
    /// Gradients of the inputs, one entry per input in recording order.
    fn backward(&self, grad_output: &Tensor) -> Result<Vec<Option<Tensor>>>;
}

pub(crate) enum NodeKind {
    /// A tensor that requires a gradient and was not produced by a recorded op.
    Leaf,
    /// A recorded op.
    Op {
        /// Input nodes (`None` where the input needs no gradient).
        inputs: Vec<Option<Arc<Node>>>,
        /// The rule; taken (freed) when backward has used it, unless the graph is retained.
        rule: Mutex<Option<Box<dyn BackwardOp>>>,
        /// The op's name (kept after the rule is freed, for messages).
        name: &'static str,
    },
}

/// A node of the tape.
pub struct Node {
    pub(crate) seq: u64,
    pub(crate) kind: NodeKind,
    /// Accumulated gradient: always kept for leaves, for op outputs only after `retain_grad`.
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) retains_grad: AtomicBool,
}

impl Node {
    pub(crate) fn leaf() -> Arc<Node> {
        Arc::new(Node {
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            kind: NodeKind::Leaf,
            grad: Mutex::new(None),
            retains_grad: AtomicBool::new(true),
        })
    }

    pub(crate) fn op(name: &'static str, inputs: Vec<Option<Arc<Node>>>, rule: Box<dyn BackwardOp>) -> Arc<Node> {
        Arc::new(Node {
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            kind: NodeKind::Op { inputs, rule: Mutex::new(Some(rule)), name },
            grad: Mutex::new(None),
            retains_grad: AtomicBool::new(false),
        })
    }

    /// Whether this node is a leaf.
    pub(crate) fn is_leaf(&self) -> bool {
        matches!(self.kind, NodeKind::Leaf)
    }
}

/// Attaches a backward rule to `out` when recording is on and some input requires a gradient.
///
/// `rule` is only called (so tensors are only saved) when the node is actually recorded.
pub(crate) fn record(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    rule: impl FnOnce() -> Box<dyn BackwardOp>,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return out;
    }
    let nodes = inputs.iter().map(|t| t.node().cloned()).collect();
    out.with_node(Node::op(name, nodes, rule()))
}

/// A backward rule from a closure that owns the tensors it saved.
pub(crate) struct FnBackward<F> {
    name: &'static str,
    f: F,
}

impl<F> BackwardOp for FnBackward<F>
where
    F: Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        (self.f)(g)
    }
}

/// Records `out` with a closure rule (see [`record`]); `make` builds the closure only when the
/// node is recorded, so nothing is saved otherwise.
pub(crate) fn record_fn<F>(out: Tensor, name: &'static str, inputs: &[&Tensor], make: impl FnOnce() -> F) -> Tensor
where
    F: Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
{
    record(out, name, inputs, || Box::new(FnBackward { name, f: make() }))
}
