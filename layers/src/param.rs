//! Parameters (trainable leaves) and buffers (state such as running statistics) of a module.
//!
//! Both are shared handles: cloning one gives another handle to the same slot, so an optimizer,
//! a checkpoint loader and the module itself all see one value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use autograd::{DType, Device, Error, Result, Tensor};

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
}

/// A trainable tensor of a module: a leaf of the tape that requires a gradient unless frozen.
///
/// ```
/// use layers::Param;
/// use autograd::Tensor;
/// let w = Param::new(Tensor::ones(&[2, 2]));
/// assert!(w.tensor().requires_grad());
/// w.set_trainable(false); // frozen: forward passes see a detached view of the same data
/// assert!(!w.tensor().requires_grad());
/// ```
#[derive(Clone)]
pub struct Param(Arc<ParamSlot>);

struct ParamSlot {
    leaf: RwLock<Tensor>,
    trainable: AtomicBool,
}

impl Param {
    /// Wraps `value` as a trainable parameter (a new leaf that requires a gradient).
    pub fn new(value: Tensor) -> Param {
        Param(Arc::new(ParamSlot {
            leaf: RwLock::new(value.detach().requires_grad_()),
            trainable: AtomicBool::new(true),
        }))
    }

    /// The value to use in a forward pass: the leaf itself when trainable, a detached view of the
    /// same storage when frozen (so no gradient is recorded for it).
    pub fn tensor(&self) -> Tensor {
        let leaf = read(&self.0.leaf);
        if self.is_trainable() {
            leaf
        } else {
            leaf.detach()
        }
    }

    /// The leaf tensor whatever the trainable flag (optimizers read its gradient and update it).
    pub fn leaf(&self) -> Tensor {
        read(&self.0.leaf)
    }

    /// The gradient accumulated by the last backward passes, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.leaf().grad()
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        self.leaf().zero_grad()
    }

    /// Whether the optimizer updates this parameter and forward passes record gradients for it.
    pub fn is_trainable(&self) -> bool {
        self.0.trainable.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes (`true`) the parameter.
    pub fn set_trainable(&self, trainable: bool) {
        self.0.trainable.store(trainable, Ordering::Relaxed);
        if !trainable {
            self.zero_grad();
        }
    }

    /// Overwrites the value in place (same shape; the dtype is converted), keeping the leaf's
    /// identity so optimizers holding this parameter keep working.
    pub fn set_data(&self, value: &Tensor) -> Result<()> {
        let leaf = self.leaf();
        if value.shape() != leaf.shape() {
            return Err(Error::shape("Param::set_data", leaf.shape(), value.shape()));
        }
        leaf.set_data(&value.to_dtype(leaf.dtype())?.to_device(leaf.device())?)
    }

    /// Replaces the value by a new leaf of any shape, dtype or device (model surgery, casting a
    /// model to f64 for gradcheck, moving it to a GPU). Optimizers built before see the old leaf.
    pub fn replace(&self, value: Tensor) {
        write(&self.0.leaf, value.detach().requires_grad_());
    }

    /// Makes `value` itself the parameter's tensor, graph included (unlike [`Param::replace`],
    /// which detaches it into a fresh leaf): forward passes then differentiate into whatever
    /// `value` was computed from. This is how `autograd::gradcheck` checks a layer's gradients
    /// with respect to its parameters, and how a module runs with substituted weights.
    ///
    /// ```
    /// use layers::{Linear, Mode, Module};
    /// use autograd::Tensor;
    /// let fc = Linear::new(2, 1, false);
    /// let w = Tensor::ones(&[1, 2]).requires_grad_();
    /// fc.weight.bind(w.mul_scalar(3.0).unwrap());
    /// let y = fc.forward(&Tensor::ones(&[1, 2]), Mode::Eval).unwrap().sum_all().unwrap();
    /// assert_eq!(y.backward().unwrap().get(&w).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 3.0]);
    /// ```
    pub fn bind(&self, value: Tensor) {
        write(&self.0.leaf, value);
    }

    /// Converts the value to `dtype` and `device` (a no-op when it already matches).
    pub fn convert(&self, dtype: DType, device: Device) -> Result<()> {
        let leaf = self.leaf();
        if leaf.dtype() != dtype || leaf.device() != device {
            self.replace(leaf.to_dtype(dtype)?.to_device(device)?.contiguous()?);
        }
        Ok(())
    }

    /// Whether two handles refer to the same parameter slot.
    pub fn ptr_eq(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let leaf = self.leaf();
        write!(f, "Param({:?}, {:?}, trainable={})", leaf.shape(), leaf.dtype(), self.is_trainable())
    }
}

/// Non-trainable state of a module (BatchNorm's running statistics, counters, masks).
///
/// ```
/// use layers::Buffer;
/// use autograd::Tensor;
/// let b = Buffer::new(Tensor::zeros(&[3]));
/// b.set(Tensor::ones(&[3]));
/// assert_eq!(b.get().to_vec::<f32>().unwrap(), vec![1.0; 3]);
/// ```
#[derive(Clone)]
pub struct Buffer(Arc<RwLock<Tensor>>);

impl Buffer {
    /// Wraps `value` (detached) as a buffer.
    pub fn new(value: Tensor) -> Buffer {
        Buffer(Arc::new(RwLock::new(value.detach())))
    }

    /// The current value.
    pub fn get(&self) -> Tensor {
        read(&self.0)
    }

    /// Replaces the value (detached).
    pub fn set(&self, value: Tensor) {
        write(&self.0, value.detach());
    }

    /// Overwrites the value from a tensor of the same shape (the dtype is converted).
    pub fn set_data(&self, value: &Tensor) -> Result<()> {
        let cur = self.get();
        if value.shape() != cur.shape() {
            return Err(Error::shape("Buffer::set_data", cur.shape(), value.shape()));
        }
        self.set(value.to_dtype(cur.dtype())?.to_device(cur.device())?.contiguous()?);
        Ok(())
    }

    /// Converts a floating-point value to `dtype` and any value to `device` (integer buffers such
    /// as counters keep their dtype).
    pub fn convert(&self, dtype: DType, device: Device) -> Result<()> {
        let cur = self.get();
        let target = if cur.dtype().is_float() { dtype } else { cur.dtype() };
        if cur.dtype() != target || cur.device() != device {
            self.set(cur.to_dtype(target)?.to_device(device)?.contiguous()?);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.get();
        write!(f, "Buffer({:?}, {:?})", v.shape(), v.dtype())
    }
}
