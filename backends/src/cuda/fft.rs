//! Real 2-D FFT over the last two axes through cuFFT (`rfft2`: R2C/D2Z, `irfft2`: C2R/Z2D with
//! `1/(HW)` scaling), in PyTorch's conventions as the CPU backend; any sizes. Plans are made per
//! call (batched over the leading dimensions); `fft.cu` converts between cuFFT's interleaved
//! complex layout and separate real and imaginary buffers.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::copy::dense;
use super::device::DeviceState;
use super::launch::{grid_for, kname, launch, Args, Walk};
use super::storage::CudaStorage;
use crate::planning::fft::{irfft2_check, rfft2_dims};
use crate::{DType, Error, Layout, Result};
use cudarc::cufft::{result as fft, sys, CudaFft};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "fft", src: include_str!("fft.cu") };

/// A batched 2-D plan of `kind` for `batch` planes of `h x w` (real size), contiguous.
fn plan(dev: &DeviceState, h: usize, w: usize, batch: usize, kind: sys::cufftType) -> Result<CudaFft> {
    // SAFETY: only probes whether the library can be opened.
    if !std::panic::catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false) {
        return Err(Error::DeviceUnavailable("the cuFFT library (libcufft) cannot be loaded".into()));
    }
    let big = |v: usize| v > i32::MAX as usize;
    if big(h) || big(w) || big(batch) {
        return Err(Error::invalid("rfft2", format!("{batch} planes of {h}x{w} exceed cuFFT's int range")));
    }
    dev.bind()?;
    CudaFft::plan_many(&[h as i32, w as i32], None, 1, 0, None, 1, 0, kind, batch as i32, dev.stream.clone())
        .map_err(|e| Error::Backend(format!("cuFFT: planning {batch} transforms of {h}x{w}: {e:?}")))
}

fn float_only(op: &'static str, dtype: DType) -> Result<()> {
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op, dtype });
    }
    Ok(())
}

/// `torch.fft.rfft2`: real and imaginary parts, each `[..., H, W/2 + 1]`.
pub(crate) fn rfft2(backend: &CudaBackend, x: &CudaStorage, l: &Layout) -> Result<(CudaStorage, CudaStorage)> {
    backend.view("rfft2", x, l)?;
    float_only("rfft2", x.dtype())?;
    let (h, w) = rfft2_dims(l)?;
    let dt = x.dtype();
    let (wh, batch) = (w / 2 + 1, l.numel() / (h * w));
    let n = batch * h * wh;
    let (re, im) = (CudaStorage::alloc(&x.dev, dt, n)?, CudaStorage::alloc(&x.dev, dt, n)?);
    if n == 0 {
        return Ok((re, im));
    }
    let xc = dense(x, l)?;
    let spec = CudaStorage::alloc(&x.dev, dt, 2 * n)?;
    let kind = if dt == DType::F32 { sys::cufftType::CUFFT_R2C } else { sys::cufftType::CUFFT_D2Z };
    let p = plan(&x.dev, h, w, batch, kind)?;
    // SAFETY: the plan's sizes match the buffers (batch planes of h x w reals in, h x wh complex
    // out); cuFFT runs on the device's stream.
    unsafe {
        if dt == DType::F32 {
            fft::exec_r2c(p.handle(), xc.ptr() as *mut f32, spec.ptr() as *mut sys::cufftComplex)
        } else {
            fft::exec_d2z(p.handle(), xc.ptr() as *mut f64, spec.ptr() as *mut sys::cufftDoubleComplex)
        }
    }
    .map_err(|e| Error::Backend(format!("cuFFT rfft2 of {:?}: {e:?}", l.shape())))?;
    launch(&x.dev, &SRC, &kname("split", dt), grid_for(n), Args::new().buf(&spec).buf(&re).buf(&im).int(n))?;
    // The plan is destroyed when `p` drops; keep it until the transform has been queued above.
    drop(p);
    Ok((re, im))
}

/// `torch.fft.irfft2(z, s = out_hw)`: half spectrum `[..., H, W/2 + 1]` -> real `[..., H, W]`.
pub(crate) fn irfft2(
    backend: &CudaBackend,
    re: &CudaStorage,
    lre: &Layout,
    im: &CudaStorage,
    lim: &Layout,
    out_hw: (usize, usize),
) -> Result<CudaStorage> {
    backend.view("irfft2", re, lre)?;
    backend.view("irfft2", im, lim)?;
    const OP: &str = "irfft2";
    if re.dtype() != im.dtype() {
        return Err(Error::DTypeMismatch { op: OP, lhs: re.dtype(), rhs: im.dtype() });
    }
    float_only(OP, re.dtype())?;
    irfft2_check(lre, lim, out_hw)?;
    let (h, w) = out_hw;
    let dt = re.dtype();
    let (wh, batch) = (w / 2 + 1, lre.numel() / (h * (w / 2 + 1)));
    let n_out = batch * h * w;
    let out = CudaStorage::alloc(&re.dev, dt, n_out)?;
    if n_out == 0 {
        return Ok(out);
    }
    let n = batch * h * wh;
    let spec = CudaStorage::alloc(&re.dev, dt, 2 * n)?;
    let walk = Walk::new(OP, [lre, lim])?;
    let args = Args::new().buf(re).buf(im).buf(&spec).int(n).push(walk);
    launch(&re.dev, &SRC, &kname("interleave", dt), grid_for(n), args)?;
    let kind = if dt == DType::F32 { sys::cufftType::CUFFT_C2R } else { sys::cufftType::CUFFT_Z2D };
    let p = plan(&re.dev, h, w, batch, kind)?;
    // SAFETY: sizes match the buffers; C2R may overwrite its input, which is our scratch.
    unsafe {
        if dt == DType::F32 {
            fft::exec_c2r(p.handle(), spec.ptr() as *mut sys::cufftComplex, out.ptr() as *mut f32)
        } else {
            fft::exec_z2d(p.handle(), spec.ptr() as *mut sys::cufftDoubleComplex, out.ptr() as *mut f64)
        }
    }
    .map_err(|e| Error::Backend(format!("cuFFT irfft2 to {out_hw:?}: {e:?}")))?;
    drop(p);
    let args = Args::new().buf(&out).int(n_out);
    let args = if dt == DType::F32 { args.push(1.0f32 / (h * w) as f32) } else { args.push(1.0f64 / (h * w) as f64) };
    launch(&re.dev, &SRC, &kname("scale", dt), grid_for(n_out), args)?;
    Ok(out)
}
