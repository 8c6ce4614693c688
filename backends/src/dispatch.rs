//! `Storage` methods that route each primitive to the backend owning the buffers.
//!
//! Operands on different devices are an [`Error::DeviceMismatch`] naming the op.

use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, ConvPass, Distribution, Pool2dParams, ReduceOp, UnaryOp};
use crate::{Backend, CpuBackend, CpuStorage, DType, Device, Error, Layout, Result, Storage};

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

macro_rules! dispatch {
    // One storage operand, one storage result.
    ($self:ident, |$b:ident, $s:ident| $body:expr) => {
        match $self {
            Storage::Cpu($s) => {
                crate::cpu::memory::retain_freed_memory();
                let $b = CpuBackend;
                $body.map(Storage::Cpu)
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda($s) => {
                let $b = crate::cuda::CudaBackend::for_storage($s)?;
                $body.map(Storage::Cuda)
            }
        }
    };
}

/// [`dispatch!`] for a kernel returning a tuple of buffers, named by the leading identifiers
/// (`dispatch_tuple!(x, y; self, |b, s| ...)` for a pair).
macro_rules! dispatch_tuple {
    ($($v:ident),+; $self:ident, |$b:ident, $s:ident| $body:expr) => {
        match $self {
            Storage::Cpu($s) => {
                crate::cpu::memory::retain_freed_memory();
                let $b = CpuBackend;
                $body.map(|($($v),+)| ($(Storage::Cpu($v)),+))
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda($s) => {
                let $b = crate::cuda::CudaBackend::for_storage($s)?;
                $body.map(|($($v),+)| ($(Storage::Cuda($v)),+))
            }
        }
    };
}

#[cfg(feature = "cuda")]
fn cuda<'a>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a crate::cuda::CudaStorage> {
    match s {
        Storage::Cuda(c) if c.device() == first.device() => Ok(c),
        _ => Err(device_mismatch(op, first, s)),
    }
}

/// A backend buffer type that can be picked out of a [`Storage`] of the same device.
trait Pick: Sized {
    fn pick<'a>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a Self>;
}

impl Pick for CpuStorage {
    fn pick<'a>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a Self> {
        cpu(op, first, s)
    }
}

#[cfg(feature = "cuda")]
impl Pick for crate::cuda::CudaStorage {
    fn pick<'a>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a Self> {
        cuda(op, first, s)
    }
}

/// The second operand's buffer on the first operand's backend, or a device-mismatch error.
fn pick<'a, S: Pick>(op: &'static str, first: &Storage, s: &'a Storage) -> Result<&'a S> {
    S::pick(op, first, s)
}

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

    /// See [`Backend::contiguous`].
    pub fn contiguous(&self, l: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.contiguous(s, l))
    }

    /// See [`Backend::cast`].
    pub fn cast(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        dispatch!(self, |b, s| b.cast(s, l, dtype))
    }

    /// See [`Backend::unary`].
    pub fn unary(&self, op: UnaryOp, l: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.unary(op, s, l))
    }

    /// See [`Backend::binary`].
    pub fn binary(&self, op: BinaryOp, la: &Layout, rhs: &Storage, lb: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.binary(op, s, la, pick(op.name(), self, rhs)?, lb))
    }

    /// See [`Backend::binary_scalar`].
    pub fn binary_scalar(&self, op: BinaryOp, l: &Layout, scalar: f64, scalar_first: bool) -> Result<Storage> {
        dispatch!(self, |b, s| b.binary_scalar(op, s, l, scalar, scalar_first))
    }

    /// See [`Backend::compare`].
    pub fn compare(&self, op: CmpOp, la: &Layout, rhs: &Storage, lb: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.compare(op, s, la, pick("compare", self, rhs)?, lb))
    }

    /// See [`Backend::compare_scalar`].
    pub fn compare_scalar(&self, op: CmpOp, l: &Layout, scalar: f64) -> Result<Storage> {
        dispatch!(self, |b, s| b.compare_scalar(op, s, l, scalar))
    }

    /// See [`Backend::where_cond`]; `self` is the condition.
    pub fn where_cond(&self, lc: &Layout, a: &Storage, la: &Layout, bb: &Storage, lb: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.where_cond(s, lc, pick("where", self, a)?, la, pick("where", self, bb)?, lb))
    }

    /// See [`Backend::reduce`].
    pub fn reduce(&self, op: ReduceOp, l: &Layout, axes: &[usize], keepdim: bool) -> Result<Storage> {
        dispatch!(self, |b, s| b.reduce(op, s, l, axes, keepdim))
    }

    /// See [`Backend::arg_reduce`].
    pub fn arg_reduce(&self, op: ArgReduceOp, l: &Layout, axis: usize, keepdim: bool) -> Result<Storage> {
        dispatch!(self, |b, s| b.arg_reduce(op, s, l, axis, keepdim))
    }

    /// See [`Backend::softmax`].
    pub fn softmax(&self, l: &Layout, axis: usize, log: bool) -> Result<Storage> {
        dispatch!(self, |b, s| b.softmax(s, l, axis, log))
    }

    /// See [`Backend::softmax_backward`]; `self` is the softmax output `y`.
    pub fn softmax_backward(&self, ly: &Layout, g: &Storage, lg: &Layout, axis: usize, log: bool) -> Result<Storage> {
        dispatch!(self, |b, s| b.softmax_backward(s, ly, pick("softmax_backward", self, g)?, lg, axis, log))
    }

    /// See [`Backend::channel_stats`]; `self` is the input.
    pub fn channel_stats(&self, l: &Layout) -> Result<(Storage, Storage)> {
        dispatch_tuple!(x, y; self, |b, s| b.channel_stats(s, l))
    }

    /// See [`Backend::channel_sums`]; `self` is the gradient `g`.
    pub fn channel_sums(&self, lg: &Layout, x: &Storage, lx: &Layout, mean: &Storage) -> Result<(Storage, Storage)> {
        dispatch_tuple!(x, y; self, |b, s| b.channel_sums(
            s,
            lg,
            pick("channel_sums", self, x)?,
            lx,
            pick("channel_sums", self, mean)?
        ))
    }

    /// See [`Backend::channel_fma`]; `self` is the input `x`.
    pub fn channel_fma(
        &self,
        lx: &Layout,
        scale: &Storage,
        shift: &Storage,
        extra: Option<(&Storage, &Layout, &Storage)>,
    ) -> Result<Storage> {
        dispatch!(self, |b, s| {
            let extra = match extra {
                Some((y, ly, ys)) => Some((pick("channel_fma", self, y)?, ly, pick("channel_fma", self, ys)?)),
                None => None,
            };
            b.channel_fma(s, lx, pick("channel_fma", self, scale)?, pick("channel_fma", self, shift)?, extra)
        })
    }

    /// See [`Backend::channel_fma_relu`]; `self` is the input `x`.
    pub fn channel_fma_relu(
        &self,
        lx: &Layout,
        scale: &Storage,
        shift: &Storage,
        residual: Option<(&Storage, &Layout)>,
    ) -> Result<Storage> {
        const OP: &str = "channel_fma_relu";
        dispatch!(self, |b, s| {
            let residual = match residual {
                Some((r, lr)) => Some((pick(OP, self, r)?, lr)),
                None => None,
            };
            b.channel_fma_relu(s, lx, pick(OP, self, scale)?, pick(OP, self, shift)?, residual)
        })
    }

    /// See [`Backend::channel_sums_gated`]; `self` is the gradient `g`.
    pub fn channel_sums_gated(
        &self,
        lg: &Layout,
        x: &Storage,
        lx: &Layout,
        mean: &Storage,
        (gs, gd): (&Storage, &Storage),
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "channel_sums_gated";
        dispatch_tuple!(x, y; self, |b, s| b.channel_sums_gated(
            s,
            lg,
            pick(OP, self, x)?,
            lx,
            pick(OP, self, mean)?,
            (pick(OP, self, gs)?, pick(OP, self, gd)?)
        ))
    }

    /// See [`Backend::channel_fma_gated`]; `self` is the input `x`.
    pub fn channel_fma_gated(
        &self,
        lx: &Layout,
        scale: &Storage,
        shift: &Storage,
        (g, lg, g_scale): (&Storage, &Layout, &Storage),
        (gs, gd): (&Storage, &Storage),
    ) -> Result<Storage> {
        const OP: &str = "channel_fma_gated";
        dispatch!(self, |b, s| b.channel_fma_gated(
            s,
            lx,
            pick(OP, self, scale)?,
            pick(OP, self, shift)?,
            (pick(OP, self, g)?, lg, pick(OP, self, g_scale)?),
            (pick(OP, self, gs)?, pick(OP, self, gd)?)
        ))
    }

    /// See [`Backend::layer_norm`]; `self` is the input `x`.
    pub fn layer_norm(
        &self,
        lx: &Layout,
        d: usize,
        weight: Option<&Storage>,
        bias: Option<&Storage>,
        eps: f64,
    ) -> Result<(Storage, Storage, Storage)> {
        dispatch_tuple!(x, y, z; self, |b, s| {
            let weight = weight.map(|w| pick("layer_norm", self, w)).transpose()?;
            let bias = bias.map(|v| pick("layer_norm", self, v)).transpose()?;
            b.layer_norm(s, lx, d, weight, bias, eps)
        })
    }

    /// See [`Backend::layer_norm_backward`]; `self` is the output gradient `g`.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_norm_backward(
        &self,
        lg: &Layout,
        x: &Storage,
        lx: &Layout,
        d: usize,
        mean: &Storage,
        rstd: &Storage,
        weight: Option<&Storage>,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "layer_norm_backward";
        dispatch_tuple!(x, y, z; self, |b, s| {
            let weight = weight.map(|w| pick(OP, self, w)).transpose()?;
            b.layer_norm_backward(
                s,
                lg,
                pick(OP, self, x)?,
                lx,
                d,
                pick(OP, self, mean)?,
                pick(OP, self, rstd)?,
                weight,
            )
        })
    }

    /// See [`Backend::matmul`].
    pub fn matmul(&self, la: &Layout, rhs: &Storage, lb: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.matmul(s, la, pick("matmul", self, rhs)?, lb))
    }

    /// See [`Backend::conv2d`]; `self` is the input.
    pub fn conv2d(&self, lx: &Layout, w: &Storage, lw: &Layout, p: &Conv2dParams) -> Result<Storage> {
        dispatch!(self, |b, s| b.conv2d(s, lx, pick("conv2d", self, w)?, lw, p))
    }

    /// See [`Backend::conv2d_backward_data`]; `self` is the output gradient.
    pub fn conv2d_backward_data(
        &self,
        lgy: &Layout,
        w: &Storage,
        lw: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Storage> {
        dispatch!(self, |b, s| b.conv2d_backward_data(s, lgy, pick("conv2d_backward_data", self, w)?, lw, p, input_hw))
    }

    /// See [`Backend::conv2d_backward_weight`]; `self` is the input.
    pub fn conv2d_backward_weight(
        &self,
        lx: &Layout,
        gy: &Storage,
        lgy: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Storage> {
        dispatch!(self, |b, s| b.conv2d_backward_weight(
            s,
            lx,
            pick("conv2d_backward_weight", self, gy)?,
            lgy,
            p,
            kernel_hw
        ))
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

    /// See [`Backend::max_pool2d`].
    pub fn max_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<(Storage, Storage)> {
        dispatch_tuple!(x, y; self, |b, s| b.max_pool2d(s, l, p))
    }

    /// See [`Backend::max_pool2d_backward`]; `self` is the output gradient.
    pub fn max_pool2d_backward(
        &self,
        lgy: &Layout,
        idx: &Storage,
        li: &Layout,
        input_shape: &[usize],
    ) -> Result<Storage> {
        dispatch!(self, |b, s| b.max_pool2d_backward(s, lgy, pick("max_pool2d_backward", self, idx)?, li, input_shape))
    }

    /// See [`Backend::avg_pool2d`].
    pub fn avg_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<Storage> {
        dispatch!(self, |b, s| b.avg_pool2d(s, l, p))
    }

    /// See [`Backend::avg_pool2d_backward`].
    pub fn avg_pool2d_backward(&self, lgy: &Layout, p: &Pool2dParams, input_shape: &[usize]) -> Result<Storage> {
        dispatch!(self, |b, s| b.avg_pool2d_backward(s, lgy, p, input_shape))
    }

    /// See [`Backend::adaptive_avg_pool2d`].
    pub fn adaptive_avg_pool2d(&self, l: &Layout, out_hw: (usize, usize)) -> Result<Storage> {
        dispatch!(self, |b, s| b.adaptive_avg_pool2d(s, l, out_hw))
    }

    /// See [`Backend::adaptive_avg_pool2d_backward`].
    pub fn adaptive_avg_pool2d_backward(&self, lgy: &Layout, input_shape: &[usize]) -> Result<Storage> {
        dispatch!(self, |b, s| b.adaptive_avg_pool2d_backward(s, lgy, input_shape))
    }

    /// See [`Backend::gather`].
    pub fn gather(&self, lx: &Layout, axis: usize, idx: &Storage, li: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.gather(s, lx, axis, pick("gather", self, idx)?, li))
    }

    /// See [`Backend::scatter_add`]; `self` is the base.
    pub fn scatter_add(
        &self,
        lb: &Layout,
        axis: usize,
        idx: &Storage,
        li: &Layout,
        src: &Storage,
        ls: &Layout,
    ) -> Result<Storage> {
        dispatch!(self, |b, s| b.scatter_add(
            s,
            lb,
            axis,
            pick("scatter_add", self, idx)?,
            li,
            pick("scatter_add", self, src)?,
            ls
        ))
    }

    /// See [`Backend::index_select`].
    pub fn index_select(&self, lx: &Layout, axis: usize, idx: &Storage, li: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.index_select(s, lx, axis, pick("index_select", self, idx)?, li))
    }

    /// See [`Backend::topk`].
    pub fn topk(&self, l: &Layout, k: usize, axis: usize, largest: bool) -> Result<(Storage, Storage)> {
        dispatch_tuple!(x, y; self, |b, s| b.topk(s, l, k, axis, largest))
    }

    /// See [`Backend::sort`].
    pub fn sort(&self, l: &Layout, axis: usize, descending: bool) -> Result<(Storage, Storage)> {
        dispatch_tuple!(x, y; self, |b, s| b.sort(s, l, axis, descending))
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

    /// See [`Backend::pad`].
    pub fn pad(&self, l: &Layout, pads: &[(usize, usize)], value: f64) -> Result<Storage> {
        dispatch!(self, |b, s| b.pad(s, l, pads, value))
    }

    /// See [`Backend::rfft2`].
    pub fn rfft2(&self, l: &Layout) -> Result<(Storage, Storage)> {
        dispatch_tuple!(x, y; self, |b, s| b.rfft2(s, l))
    }

    /// See [`Backend::irfft2`]; `self` is the real part.
    pub fn irfft2(&self, lre: &Layout, im: &Storage, lim: &Layout, out_hw: (usize, usize)) -> Result<Storage> {
        dispatch!(self, |b, s| b.irfft2(s, lre, pick("irfft2", self, im)?, lim, out_hw))
    }

    /// See [`Backend::ternary_conv1x1`].
    pub fn ternary_conv1x1(&self, lx: &Layout, w: &Storage, lw: &Layout) -> Result<Storage> {
        dispatch!(self, |b, s| b.ternary_conv1x1(s, lx, pick("ternary_conv1x1", self, w)?, lw))
    }
}
