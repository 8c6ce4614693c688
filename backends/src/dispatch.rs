//! `Storage` methods that route each primitive to the backend owning the buffers: written by
//! hand for the few that create, download or join buffers, generated from the op lists of
//! `backend.rs` for the rest (`dispatch_ops!`).
//!
//! Operands on different devices are an [`Error::DeviceMismatch`] naming the op.

use crate::backend::{core_ops, fused_ops};
use crate::ops::{
    ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, ConvPass, Distribution, Pool2dParams, ReduceOp, SparsePattern, UnaryOp,
};
use crate::{Backend, CpuBackend, CpuStorage, DType, Device, Error, Fused, Layout, Result, Storage};

fn device_mismatch(op: &'static str, a: &Storage, b: &Storage) -> Error {
    Error::DeviceMismatch { op, lhs: a.device(), rhs: b.device() }
}

/// The CPU buffer of a storage, or a device-mismatch error naming `op`.
fn cpu<'a>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a CpuStorage> {
    match s {
        Storage::Cpu(c) => Ok(c),
        #[allow(unreachable_patterns)]
        _ => Err(device_mismatch(op, first, s)),
    }
}

#[cfg(feature = "cuda")]
fn cuda<'a>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a crate::cuda::CudaStorage> {
    match s {
        Storage::Cuda(c) if c.device() == first.device() => Ok(c),
        _ => Err(device_mismatch(op, first, s)),
    }
}

/// An argument of a `Storage` method as the backend of the receiver `first` takes it: buffers
/// picked out of their `Storage` (a device-mismatch error naming `op` when they live elsewhere),
/// options and tuples of them element by element, everything else as it is.
trait Pick<T> {
    fn pick(self, op: &'static str, first: &Storage) -> Result<T>;
}

impl<'a> Pick<&'a CpuStorage> for &'a Storage {
    fn pick(self, op: &'static str, first: &Storage) -> Result<&'a CpuStorage> {
        cpu(op, first, self)
    }
}

#[cfg(feature = "cuda")]
impl<'a> Pick<&'a crate::cuda::CudaStorage> for &'a Storage {
    fn pick(self, op: &'static str, first: &Storage) -> Result<&'a crate::cuda::CudaStorage> {
        cuda(op, first, self)
    }
}

impl<A: Pick<T>, T> Pick<Option<T>> for Option<A> {
    fn pick(self, op: &'static str, first: &Storage) -> Result<Option<T>> {
        self.map(|a| a.pick(op, first)).transpose()
    }
}

impl<A: Pick<TA>, B: Pick<TB>, TA, TB> Pick<(TA, TB)> for (A, B) {
    fn pick(self, op: &'static str, first: &Storage) -> Result<(TA, TB)> {
        Ok((self.0.pick(op, first)?, self.1.pick(op, first)?))
    }
}

impl<A: Pick<TA>, B: Pick<TB>, C: Pick<TC>, TA, TB, TC> Pick<(TA, TB, TC)> for (A, B, C) {
    fn pick(self, op: &'static str, first: &Storage) -> Result<(TA, TB, TC)> {
        Ok((self.0.pick(op, first)?, self.1.pick(op, first)?, self.2.pick(op, first)?))
    }
}

/// [`Pick`] for arguments that are not buffers: passed as they are.
macro_rules! pick_as_is {
    ($($t:ty),*) => {
        $(
            impl<'a> Pick<$t> for $t {
                fn pick(self, _: &'static str, _: &Storage) -> Result<$t> {
                    Ok(self)
                }
            }
        )*
    };
}
pick_as_is!(
    &'a Layout,
    &'a [usize],
    &'a [(usize, usize)],
    &'a Conv2dParams,
    &'a Pool2dParams,
    &'a SparsePattern,
    usize,
    i32,
    f64,
    bool,
    DType
);

/// A backend's result as device-tagged storage.
trait Lift<T> {
    fn lift(self) -> T;
}

impl Lift<Storage> for CpuStorage {
    fn lift(self) -> Storage {
        Storage::Cpu(self)
    }
}

#[cfg(feature = "cuda")]
impl Lift<Storage> for crate::cuda::CudaStorage {
    fn lift(self) -> Storage {
        Storage::Cuda(self)
    }
}

impl<A: Lift<Storage>, B: Lift<Storage>> Lift<(Storage, Storage)> for (A, B) {
    fn lift(self) -> (Storage, Storage) {
        (self.0.lift(), self.1.lift())
    }
}

impl<A: Lift<Storage>, B: Lift<Storage>, C: Lift<Storage>> Lift<(Storage, Storage, Storage)> for (A, B, C) {
    fn lift(self) -> (Storage, Storage, Storage) {
        (self.0.lift(), self.1.lift(), self.2.lift())
    }
}

/// The op name of an entry's device-mismatch errors: its `named = ...`, else the method's name.
macro_rules! op_name {
    ($name:ident) => {
        stringify!($name)
    };
    ($name:ident named = $label:expr) => {
        $label
    };
    ($name:ident composite = $other:expr) => {
        stringify!($name)
    };
}

/// The `Storage` method of every entry of an op list (of the trait `$tr`): the receiver's
/// backend runs the op on the other buffers picked out of their `Storage`.
macro_rules! dispatch_ops {
    ($tr:ident; $(
        $(#[$m:meta])*
        fn $name:ident($($lead:ident: $lty:ty,)* [$recv:ident: $rty:ty] $(, $arg:ident: $aty:ty)* $(,)?) -> $ret:ty
        $(, $key:ident = $val:expr)*;
    )*) => {
        impl Storage {
            $(
                #[doc = concat!("See [`", stringify!($tr), "::", stringify!($name), "`]; `self` is `", stringify!($recv), "`.")]
                #[allow(clippy::too_many_arguments)]
                pub fn $name(&self, $($lead: $lty,)* $($arg: $aty),*) -> Result<$ret> {
                    #[allow(unused_variables)]
                    let op: &'static str = op_name!($name $($key = $val)*);
                    match self {
                        Storage::Cpu(s) => {
                            crate::cpu::memory::retain_freed_memory();
                            let b = CpuBackend;
                            b.$name($($lead,)* s $(, $arg.pick(op, self)?)*).map(Lift::lift)
                        }
                        #[cfg(feature = "cuda")]
                        Storage::Cuda(s) => {
                            let b = crate::cuda::CudaBackend::for_storage(s)?;
                            b.$name($($lead,)* s $(, $arg.pick(op, self)?)*).map(Lift::lift)
                        }
                    }
                }
            )*
        }
    };
}

core_ops!(dispatch_ops! { Backend } Storage);
fused_ops!(dispatch_ops! { Fused } Storage);

impl Storage {
    /// Uploads a host buffer to `device`.
    pub fn from_host(data: &CpuStorage, device: Device) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(data.clone())),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => Ok(Storage::Cuda(crate::cuda::CudaBackend::new(n)?.from_host(data)?)),
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => {
                Err(Error::DeviceUnavailable("this build has no CUDA support (enable the `cuda` feature)".into()))
            }
        }
    }

    /// Takes ownership of a host buffer on the CPU without copying.
    pub fn from_cpu(data: CpuStorage) -> Storage {
        Storage::Cpu(data)
    }

    /// The CPU buffer, when the storage lives on the host.
    pub fn as_cpu(&self) -> Option<&CpuStorage> {
        match self {
            Storage::Cpu(c) => Some(c),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Downloads a view, contiguous, to the host.
    pub fn to_host(&self, l: &Layout) -> Result<CpuStorage> {
        match self {
            Storage::Cpu(s) => CpuBackend.to_host(s, l),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => crate::cuda::CudaBackend::for_storage(s)?.to_host(s, l),
        }
    }

    /// A buffer of `n` copies of `value` on `device`.
    pub fn full(device: Device, dtype: DType, n: usize, value: f64) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(CpuStorage::full(dtype, n, value))),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => Ok(Storage::Cuda(crate::cuda::CudaBackend::new(i)?.full(dtype, n, value)?)),
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => {
                Err(Error::DeviceUnavailable("this build has no CUDA support (enable the `cuda` feature)".into()))
            }
        }
    }

    /// Seeded random samples on `device` (see [`Backend::random`]).
    pub fn random(
        device: Device,
        dtype: DType,
        n: usize,
        dist: Distribution,
        seed: u64,
        offset: u64,
    ) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(CpuBackend.random(dtype, n, dist, seed, offset)?)),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => {
                Ok(Storage::Cuda(crate::cuda::CudaBackend::new(i)?.random(dtype, n, dist, seed, offset)?))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => {
                Err(Error::DeviceUnavailable("this build has no CUDA support (enable the `cuda` feature)".into()))
            }
        }
    }

    /// Copies the storage (viewed by `l`) to another device, contiguous.
    pub fn to_device(&self, l: &Layout, device: Device) -> Result<Storage> {
        if self.device() == device {
            return self.contiguous(l);
        }
        Storage::from_host(&self.to_host(l)?, device)
    }

    /// See [`Backend::concat`]; all parts must live on one device.
    pub fn concat(parts: &[(&Storage, &Layout)], axis: usize) -> Result<Storage> {
        let Some(&(first, _)) = parts.first() else {
            return Err(Error::invalid("concat", "needs at least one tensor"));
        };
        match first {
            Storage::Cpu(_) => {
                let cpu_parts =
                    parts.iter().map(|&(s, l)| Ok((cpu("concat", first, s)?, l))).collect::<Result<Vec<_>>>()?;
                CpuBackend.concat(&cpu_parts, axis).map(Storage::Cpu)
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => {
                let parts =
                    parts.iter().map(|&(s, l)| Ok((cuda("concat", first, s)?, l))).collect::<Result<Vec<_>>>()?;
                crate::cuda::CudaBackend::for_storage(c)?.concat(&parts, axis).map(Storage::Cuda)
            }
        }
    }

    /// The name of the algorithm that computes `pass` of the convolution of an input of shape
    /// `x` with a weight of shape `w` (the forward shapes, whatever the pass) on this storage's
    /// device and in its dtype: on the CPU the planner's choice (`winograd4`, `im2col`, ...,
    /// see [`crate::cpu::conv::Algorithm`]), on a GPU the CUDA kernel family. `None` where the
    /// shapes do not convolve or the dtype has no convolution. What the profiler shows.
    pub fn conv2d_algorithm(&self, pass: ConvPass, x: &[usize], w: &[usize], p: &Conv2dParams) -> Option<&'static str> {
        match self {
            Storage::Cpu(s) => crate::cpu::conv::algorithm(pass, s.dtype(), x, w, p).ok().map(|a| a.name()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => crate::cuda::conv_algorithm(pass, s.dtype(), x, w, p),
        }
    }
}
