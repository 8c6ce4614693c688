//! Pooling on the GPU (`pool.cu`): max with argmax indices, average, adaptive average and their
//! gradients, for f32 and f64, with the CPU backend's checks. Gradients of average pooling are
//! gathers (one thread per input element); max pooling's routes to the recorded indices with
//! atomic adds, checking each index.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::copy::dense;
use super::launch::{grid_for, kname, launch, Args, ErrorFlag};
use super::storage::CudaStorage;
use crate::ops::Pool2dParams;
use crate::planning::pool::{avg_pool_backward_shape, check_adaptive, four_d, max_pool_backward_shapes};
use crate::{DType, Error, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "pool", src: include_str!("pool.cu") };

/// `struct PoolGeom` of `pool.cu`: planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, count_include_pad.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PoolGeom([i64; 12]);

impl PoolGeom {
    fn new(input: [usize; 4], (oh, ow): (usize, usize), p: Option<&Pool2dParams>) -> Self {
        let [n, c, h, w] = input;
        let (k, s, pad, cip) = match p {
            Some(p) => (p.kernel, p.stride, p.padding, p.count_include_pad),
            None => ((1, 1), (1, 1), (0, 0), false),
        };
        let v = [n * c, h, w, oh, ow, k.0, k.1, s.0, s.1, pad.0, pad.1, cip as usize];
        PoolGeom(v.map(|x| x as i64))
    }
}

fn float_only(op: &'static str, s: &CudaStorage) -> Result<()> {
    if !s.dtype().is_float() {
        return Err(Error::UnsupportedDType { op, dtype: s.dtype() });
    }
    Ok(())
}

/// Runs a pooling kernel that maps one contiguous operand to a new buffer of `n_out` elements,
/// one thread per `threads` element.
fn run(name: &str, src: &CudaStorage, l: &Layout, g: PoolGeom, n_out: usize, threads: usize) -> Result<CudaStorage> {
    let out = CudaStorage::zeros(&src.dev, src.dtype(), n_out)?;
    if n_out > 0 && l.numel() > 0 {
        let c = dense(src, l)?;
        let args = Args::new().buf(&c).buf(&out).push(g);
        launch(&src.dev, &SRC, &kname(name, src.dtype()), grid_for(threads), args)?;
    }
    Ok(out)
}

/// Max pooling: values and `i64` flat indices within each input plane.
pub(crate) fn max_pool2d(
    backend: &CudaBackend,
    x: &CudaStorage,
    l: &Layout,
    p: &Pool2dParams,
) -> Result<(CudaStorage, CudaStorage)> {
    backend.view("max_pool2d", x, l)?;
    const OP: &str = "max_pool2d";
    let out = p.output_shape(OP, l.shape())?;
    float_only(OP, x)?;
    let input = four_d(OP, l.shape())?;
    let n_out: usize = out.iter().product();
    let vals = CudaStorage::zeros(&x.dev, x.dtype(), n_out)?;
    let idx = CudaStorage::zeros(&x.dev, DType::I64, n_out)?;
    if n_out > 0 {
        let c = dense(x, l)?;
        let args = Args::new().buf(&c).buf(&vals).buf(&idx).push(PoolGeom::new(input, (out[2], out[3]), Some(p)));
        launch(&x.dev, &SRC, &kname("max_pool", x.dtype()), grid_for(n_out), args)?;
    }
    Ok((vals, idx))
}

/// Routes `gy` to the argmax positions `indices`.
pub(crate) fn max_pool2d_backward(
    backend: &CudaBackend,
    gy: &CudaStorage,
    lgy: &Layout,
    indices: &CudaStorage,
    li: &Layout,
    input_shape: &[usize],
) -> Result<CudaStorage> {
    backend.view("max_pool2d_backward", gy, lgy)?;
    backend.view("max_pool2d_backward", indices, li)?;
    const OP: &str = "max_pool2d_backward";
    let (input, sg) = max_pool_backward_shapes(lgy, li, input_shape)?;
    if indices.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType { op: OP, dtype: indices.dtype() });
    }
    float_only(OP, gy)?;
    let hw = input[2] * input[3];
    let ohw = sg[2] * sg[3];
    let gx = CudaStorage::zeros(&gy.dev, gy.dtype(), input.iter().product())?;
    if gx.is_empty() || ohw == 0 {
        return Ok(gx);
    }
    let (g, ix) = (dense(gy, lgy)?, dense(indices, li)?);
    let flag = ErrorFlag::new(&gy.dev)?;
    let planes = input[0] * input[1];
    let args = Args::new().buf(&g).buf(&ix).buf(&gx).int(planes).int(ohw).int(hw).push(flag.ptr());
    launch(&gy.dev, &SRC, &kname("max_pool_backward", gy.dtype()), grid_for(planes * ohw), args)?;
    if let Some(pos) = flag.first_failure()? {
        let index = ix.download_range(pos, 1)?.as_slice::<i64>().expect("i64 indices")[0];
        return Err(Error::IndexOutOfRange { op: OP, index, size: hw });
    }
    Ok(gx)
}

/// Average pooling.
pub(crate) fn avg_pool2d(backend: &CudaBackend, x: &CudaStorage, l: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
    backend.view("avg_pool2d", x, l)?;
    const OP: &str = "avg_pool2d";
    let out = p.output_shape(OP, l.shape())?;
    float_only(OP, x)?;
    let g = PoolGeom::new(four_d(OP, l.shape())?, (out[2], out[3]), Some(p));
    let n_out = out.iter().product();
    run("avg_pool", x, l, g, n_out, n_out)
}

/// Gradient of average pooling.
pub(crate) fn avg_pool2d_backward(
    backend: &CudaBackend,
    gy: &CudaStorage,
    lgy: &Layout,
    p: &Pool2dParams,
    input_shape: &[usize],
) -> Result<CudaStorage> {
    backend.view("avg_pool2d_backward", gy, lgy)?;
    const OP: &str = "avg_pool2d_backward";
    let input = avg_pool_backward_shape(lgy, p, input_shape)?;
    float_only(OP, gy)?;
    let n_in = input.iter().product();
    run("avg_pool_backward", gy, lgy, PoolGeom::new(input, (lgy.shape()[2], lgy.shape()[3]), Some(p)), n_in, n_in)
}

/// Adaptive average pooling to `out_hw`.
pub(crate) fn adaptive_avg_pool2d(
    backend: &CudaBackend,
    x: &CudaStorage,
    l: &Layout,
    out_hw: (usize, usize),
) -> Result<CudaStorage> {
    backend.view("adaptive_avg_pool2d", x, l)?;
    const OP: &str = "adaptive_avg_pool2d";
    let input = check_adaptive(OP, l.shape(), out_hw)?;
    float_only(OP, x)?;
    let n_out = input[0] * input[1] * out_hw.0 * out_hw.1;
    run("adaptive_pool", x, l, PoolGeom::new(input, out_hw, None), n_out, n_out)
}

/// Gradient of adaptive average pooling.
pub(crate) fn adaptive_avg_pool2d_backward(
    backend: &CudaBackend,
    gy: &CudaStorage,
    lgy: &Layout,
    input_shape: &[usize],
) -> Result<CudaStorage> {
    backend.view("adaptive_avg_pool2d_backward", gy, lgy)?;
    const OP: &str = "adaptive_avg_pool2d_backward";
    let sg = four_d(OP, lgy.shape())?;
    let input = check_adaptive(OP, input_shape, (sg[2], sg[3]))?;
    if sg[0] != input[0] || sg[1] != input[1] {
        return Err(Error::invalid(
            OP,
            format!("gradient {sg:?} does not match input shape {input_shape:?} in N and C"),
        ));
    }
    float_only(OP, gy)?;
    let n_in = input.iter().product();
    run("adaptive_pool_backward", gy, lgy, PoolGeom::new(input, (sg[2], sg[3]), None), n_in, n_in)
}
