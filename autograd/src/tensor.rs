//! The user-facing [`Tensor`]: a view over device storage plus its place on the tape.

use crate::graph::{self, BackwardOp, Node};
use crate::{Error, Result};
use backends::{CpuStorage, DType, Device, Element, Layout, Storage};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static LIVE_BUFFERS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The number of storage buffers currently owned by tensors (on any device) and their total size
/// in bytes: `(count, bytes)`.
///
/// Every tensor's storage is counted once however many views share it; buffers held outside
/// tensors (inside a backend's caches, say) are not counted. Tests use this to check that a
/// training loop's memory does not grow with the number of steps.
pub fn live_buffers() -> (usize, usize) {
    (LIVE_BUFFERS.load(Ordering::Relaxed), LIVE_BYTES.load(Ordering::Relaxed))
}

/// A storage buffer shared by a tensor and its views, counted in [`live_buffers`] while it lives.
pub(crate) struct Buffer {
    data: RwLock<Storage>,
    bytes: usize,
}

impl Buffer {
    fn new(storage: Storage) -> Buffer {
        let bytes = storage.len() * storage.dtype().size_in_bytes();
        LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        Buffer { data: RwLock::new(storage), bytes }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A unique identity of a tensor value (clones share it; views and op results get new ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

pub(crate) struct Inner {
    id: TensorId,
    storage: Arc<Buffer>,
    layout: Layout,
    dtype: DType,
    device: Device,
    node: Option<Arc<Node>>,
}

/// An n-dimensional array on a device, with a dtype chosen at run time, that records the ops
/// applied to it when it requires a gradient.
///
/// Cloning is cheap (reference counted). Views (`reshape`, `transpose`, `narrow`, `expand`, ...)
/// share storage. Every fallible op returns [`Result`] with an error naming the op and operands.
///
/// ```
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap().requires_grad_();
/// let y = x.matmul(&x).unwrap().sum_all().unwrap();
/// let g = y.backward().unwrap();
/// // d/dx sum(x @ x) = 1 x^T + x^T 1
/// assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![7.0, 11.0, 9.0, 13.0]);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

impl Tensor {
    /// Wraps storage and a layout as a tensor that requires no gradient.
    pub fn from_storage(storage: Storage, layout: Layout) -> Tensor {
        Self::from_shared(Arc::new(Buffer::new(storage)), layout)
    }

    pub(crate) fn from_shared(storage: Arc<Buffer>, layout: Layout) -> Tensor {
        let (dtype, device) = {
            let s = storage.data.read().unwrap_or_else(|e| e.into_inner());
            (s.dtype(), s.device())
        };
        Tensor(Arc::new(Inner {
            id: TensorId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            storage,
            layout,
            dtype,
            device,
            node: None,
        }))
    }

    /// A tensor from a host vector and a shape (on the CPU).
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(Error::invalid(
                "from_vec",
                format!("{} values cannot fill shape {shape:?} ({n} elements)", data.len()),
            ));
        }
        Ok(Self::from_storage(Storage::from_cpu(T::into_cpu(data)), Layout::contiguous(shape)))
    }

    /// A tensor copied from a host slice.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Self::from_vec(data.to_vec(), shape)
    }

    /// A 0-dimensional tensor holding one value.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Self::from_storage(Storage::from_cpu(T::into_cpu(vec![value])), Layout::contiguous(&[]))
    }

    /// Host data as a tensor on `device`.
    pub fn from_host(data: &CpuStorage, shape: &[usize], device: Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(Error::invalid("from_host", format!("{} values cannot fill shape {shape:?}", data.len())));
        }
        Ok(Self::from_storage(
            crate::profile::forward("from_host", device, || Storage::from_host(data, device))?,
            Layout::contiguous(shape),
        ))
    }

    // ----- accessors -----

    /// This tensor value's identity.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// Size of dimension `axis`.
    pub fn dim(&self, axis: usize) -> Result<usize> {
        self.shape().get(axis).copied().ok_or(Error::AxisOutOfRange { op: "dim", axis, ndim: self.ndim() })
    }

    /// The strides in elements.
    pub fn strides(&self) -> &[usize] {
        self.0.layout.strides()
    }

    /// The view's layout.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        self.0.device
    }

    /// Whether the view is contiguous row-major.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Read access to the storage (shared by views).
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether two tensors share one storage buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    // ----- data out -----

    /// The elements in row-major order as a host vector of `T` (which must match the dtype).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch { op: "to_vec", lhs: self.dtype(), rhs: T::DTYPE });
        }
        let host = crate::profile::forward("to_host", self.device(), || self.storage().to_host(self.layout()))?;
        Ok(T::cpu_slice(&host).expect("dtype checked").to_vec())
    }

    /// The elements converted to f64, whatever the dtype.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        Ok(crate::profile::forward("to_host", self.device(), || self.storage().to_host(self.layout()))?.to_f64_vec())
    }

    /// The contiguous host copy of the elements.
    pub fn to_host(&self) -> Result<CpuStorage> {
        crate::profile::forward("to_host", self.device(), || self.storage().to_host(self.layout()))
    }

    /// The single value of a one-element tensor, as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!("needs a tensor with one element, got shape {:?}", self.shape()),
            ));
        }
        Ok(self.to_f64_vec()?[0])
    }

    // ----- autograd state -----

    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.0.node.as_ref()
    }

    /// The same data and layout with a tape node attached (a new tensor identity).
    pub(crate) fn with_node(self, node: Arc<Node>) -> Tensor {
        let inner = &self.0;
        Tensor(Arc::new(Inner {
            id: TensorId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            storage: inner.storage.clone(),
            layout: inner.layout.clone(),
            dtype: inner.dtype,
            device: inner.device,
            node: Some(node),
        }))
    }

    /// A new view of the same storage with another layout and no tape node.
    pub(crate) fn view_with(&self, layout: Layout) -> Tensor {
        let inner = &self.0;
        Tensor(Arc::new(Inner {
            id: TensorId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            storage: inner.storage.clone(),
            layout,
            dtype: inner.dtype,
            device: inner.device,
            node: None,
        }))
    }

    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.node.is_some()
    }

    /// Whether this tensor is a leaf of the graph (not produced by a recorded op).
    pub fn is_leaf(&self) -> bool {
        self.0.node.as_ref().is_none_or(|n| n.is_leaf())
    }

    /// The same data as a new leaf that requires a gradient (as `requires_grad_()` in PyTorch).
    pub fn requires_grad_(self) -> Tensor {
        if self.node().is_some_and(|n| n.is_leaf()) {
            return self;
        }
        self.detach().with_node(Node::leaf())
    }

    /// The same data, cut from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Tensor {
        self.view_with(self.layout().clone())
    }

    /// The gradient accumulated by `backward` into this leaf (or retained non-leaf).
    pub fn grad(&self) -> Option<Tensor> {
        self.node().and_then(|n| n.grad.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        if let Some(n) = self.node() {
            *n.grad.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Sets the accumulated gradient (optimizers and gradient clipping use this).
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        let Some(n) = self.node() else {
            return Err(Error::invalid("set_grad", "the tensor does not require a gradient"));
        };
        if let Some(g) = &grad {
            if g.shape() != self.shape() {
                return Err(Error::shape("set_grad", self.shape(), g.shape()));
            }
        }
        *n.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
        Ok(())
    }

    /// Keeps the gradient of this non-leaf tensor during `backward` (readable with [`Tensor::grad`]).
    pub fn retain_grad(&self) {
        if let Some(n) = self.node() {
            n.retains_grad.store(true, Ordering::Relaxed);
        }
    }

    /// Replaces the data of this tensor in place (shared by every clone and view of its storage),
    /// without recording anything: how optimizers update parameters and layers update buffers.
    ///
    /// `value` must have the same shape and dtype; the tensor must be contiguous.
    pub fn set_data(&self, value: &Tensor) -> Result<()> {
        if value.shape() != self.shape() {
            return Err(Error::shape("set_data", self.shape(), value.shape()));
        }
        if value.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch { op: "set_data", lhs: self.dtype(), rhs: value.dtype() });
        }
        if !self.is_contiguous() || self.layout().offset() != 0 || self.storage().len() != self.numel() {
            return Err(Error::invalid(
                "set_data",
                "only a tensor that owns its whole contiguous storage can be overwritten",
            ));
        }
        let new = value.storage().to_device(value.layout(), self.device())?;
        if Arc::ptr_eq(&self.0.storage, &value.0.storage) {
            return Ok(());
        }
        let new_bytes = new.len() * new.dtype().size_in_bytes();
        debug_assert_eq!(new_bytes, self.0.storage.bytes, "set_data keeps the buffer size");
        *self.0.storage.data.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Attaches a user-defined backward rule: `output` (computed from `inputs`, typically under
    /// [`no_grad`](crate::no_grad)) becomes differentiable with `rule` as its derivative.
    ///
    /// This is the custom-op API (straight-through estimators, fixed transforms):
    ///
    /// ```
    /// use autograd::{BackwardOp, Result, Tensor};
    /// /// round() in the forward pass, identity in the backward pass.
    /// struct StraightThrough;
    /// impl BackwardOp for StraightThrough {
    ///     fn name(&self) -> &'static str { "round_ste" }
    ///     fn backward(&self, g: &Tensor) -> Result<Vec<Option<Tensor>>> { Ok(vec![Some(g.clone())]) }
    /// }
    /// let x = Tensor::from_vec(vec![0.2f64, 1.7], &[2]).unwrap().requires_grad_();
    /// let y = Tensor::from_op(x.detach().round().unwrap(), &[&x], StraightThrough);
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.0, 2.0]);
    /// let g = y.sum_all().unwrap().backward().unwrap();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
    /// ```
    pub fn from_op(output: Tensor, inputs: &[&Tensor], rule: impl BackwardOp + 'static) -> Tensor {
        graph::record(output.detach(), rule.name(), inputs, || Box::new(rule))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({:?}, {}, {}", self.shape(), self.dtype(), self.device())?;
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        if self.numel() <= 16 {
            if let Ok(v) = self.to_f64_vec() {
                write!(f, ", {v:?}")?;
            }
        }
        write!(f, ")")
    }
}
