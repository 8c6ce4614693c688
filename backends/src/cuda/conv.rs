//! 2-D convolution on the GPU: forward, backward-data and backward-weight (f32/f64; i8 -> i32
//! forward), with the CPU backend's checks (the device-neutral `Geom` of `planning::conv`).
//!
//! - General path: im2col over a chunk of images (bounded scratch) and one strided-batched cuBLAS
//!   GEMM per group (the weight is shared across the batch with batch stride 0); backward-data is
//!   `W^T dY` into columns followed by a col2im gather (no atomics).
//! - 1x1 kernels with stride 1 and no padding skip im2col: the input planes are the GEMM operand.
//! - Depthwise (`groups == C == O`): direct kernels, one thread per output / input element and
//!   one block per filter tap for the weight gradient.
//! - Backward-weight unfolds the chunk as `[C*kH*kW, images*oH*oW]` and the gradient as
//!   `[O, images*oH*oW]`, so one GEMM per group and chunk sums over images (accumulated with
//!   `beta = 1` across chunks).

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::copy::dense;
use super::launch::{grid_for, kname, launch, Args};
use super::matmul::{gemm, Mat};
use super::storage::CudaStorage;
use crate::ops::{Conv2dParams, ConvPass};
use crate::planning::conv::{geom_backward_data, geom_backward_weight, Geom};
use crate::{DType, Error, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "conv", src: include_str!("conv.cu") };

/// Elements of im2col scratch per chunk of images (256 MiB of f32).
const COL_BUDGET: usize = 1 << 26;

/// The kernel family that computes `pass` of `g` in `dtype` (what the profiler shows): the
/// direct depthwise kernels for float depthwise layers, im2col + cuBLAS otherwise (1x1 stride-1
/// kernels skip the unfold).
pub(crate) fn algorithm(pass: ConvPass, dtype: DType, g: &Geom) -> &'static str {
    let float = dtype.is_float() || pass != ConvPass::Forward;
    if float && g.is_depthwise() {
        DEPTHWISE
    } else {
        "im2col"
    }
}

/// The name of the direct depthwise kernels.
const DEPTHWISE: &str = "depthwise";

/// The geometry as `struct Geom` in `conv.cu`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct KGeom([i64; 16]);

impl KGeom {
    fn of(g: &Geom) -> KGeom {
        let v = [g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.g];
        KGeom(v.map(|x| x as i64))
    }
}

/// Images per im2col chunk.
fn chunk(g: &Geom) -> usize {
    (COL_BUDGET / (g.c * g.kk() * g.out_plane()).max(1)).clamp(1, g.n.max(1))
}

fn check_dtypes(op: &'static str, a: &CudaStorage, b: &CudaStorage) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    Ok(())
}

/// Unfolds images `n0..n0 + nb` of contiguous `x` into `col` (`col_bs`, `col_rs` as in `conv.cu`).
fn im2col(
    x: &CudaStorage,
    col: &CudaStorage,
    g: &Geom,
    (n0, nb): (usize, usize),
    (bs, rs): (usize, usize),
) -> Result<()> {
    let total = nb * g.c * g.kk() * g.out_plane();
    let args = Args::new().buf(x).buf(col).push(KGeom::of(g)).int(n0).int(nb).int(bs).int(rs);
    launch(&x.dev, &SRC, &kname("im2col", x.dtype()), grid_for(total), args)
}

/// `conv2d` forward.
pub(crate) fn conv2d(
    backend: &CudaBackend,
    x: &CudaStorage,
    lx: &Layout,
    w: &CudaStorage,
    lw: &Layout,
    p: &Conv2dParams,
) -> Result<CudaStorage> {
    backend.view("conv2d", x, lx)?;
    backend.view("conv2d", w, lw)?;
    const OP: &str = "conv2d";
    check_dtypes(OP, x, w)?;
    let g = Geom::new(lx.shape(), lw.shape(), p)?;
    let out_dtype = match x.dtype() {
        DType::F32 | DType::F64 => x.dtype(),
        DType::I8 => DType::I32,
        dtype => return Err(Error::UnsupportedDType { op: OP, dtype }),
    };
    let y = CudaStorage::zeros(&x.dev, out_dtype, g.y_shape().iter().product())?;
    if y.is_empty() || g.ckk() == 0 {
        return Ok(y);
    }
    let (x, w) = (dense(x, lx)?, dense(w, lw)?);
    let dtype = x.dtype();
    let (og, cg, ckk, hwi, hwo) = (g.og(), g.cg(), g.ckk(), g.in_plane(), g.out_plane());
    if algorithm(ConvPass::Forward, dtype, &g) == DEPTHWISE {
        let args = Args::new().buf(&x).buf(&w).buf(&y).push(KGeom::of(&g));
        launch(&x.dev, &SRC, &kname("depthwise_forward", dtype), grid_for(y.len()), args)?;
        return Ok(y);
    }
    if dtype.is_float() && g.is_pointwise() {
        for gi in 0..g.g {
            let a = Mat::row_major(w.ptr_at(gi * og * ckk), ckk, 0);
            let b = Mat::row_major(x.ptr_at(gi * cg * hwi), hwi, g.c * hwi);
            gemm(&x.dev, dtype, (og, hwo, cg, g.n), a, b, y.ptr_at(gi * og * hwo), hwo, g.o * hwo, 0.0)?;
        }
        return Ok(y);
    }
    let nb = chunk(&g);
    let per_image = g.c * g.kk() * hwo;
    let col = CudaStorage::alloc(&x.dev, dtype, nb * per_image)?;
    for n0 in (0..g.n).step_by(nb) {
        let nb = nb.min(g.n - n0);
        im2col(&x, &col, &g, (n0, nb), (per_image, hwo))?;
        for gi in 0..g.g {
            let yoff = (n0 * g.o + gi * og) * hwo;
            if dtype == DType::I8 {
                let dims = (og, hwo, ckk, nb);
                let strides = (0, per_image, g.o * hwo);
                super::int8::gemm_i8((&w, gi * og * ckk), (&col, gi * ckk * hwo), (&y, yoff), dims, strides)?;
            } else {
                let a = Mat::row_major(w.ptr_at(gi * og * ckk), ckk, 0);
                let b = Mat::row_major(col.ptr_at(gi * ckk * hwo), hwo, per_image);
                gemm(&x.dev, dtype, (og, hwo, ckk, nb), a, b, y.ptr_at(yoff), hwo, g.o * hwo, 0.0)?;
            }
        }
    }
    Ok(y)
}

/// Gradient of conv2d with respect to its input.
pub(crate) fn conv2d_backward_data(
    backend: &CudaBackend,
    gy: &CudaStorage,
    lgy: &Layout,
    w: &CudaStorage,
    lw: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<CudaStorage> {
    backend.view("conv2d_backward_data", gy, lgy)?;
    backend.view("conv2d_backward_data", w, lw)?;
    const OP: &str = "conv2d_backward_data";
    check_dtypes(OP, gy, w)?;
    let g = geom_backward_data(lgy.shape(), lw.shape(), p, input_hw)?;
    let dtype = gy.dtype();
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op: OP, dtype });
    }
    let dx = CudaStorage::zeros(&gy.dev, dtype, g.x_shape().iter().product())?;
    if dx.is_empty() || g.o == 0 || g.kk() == 0 {
        return Ok(dx);
    }
    let (gy, w) = (dense(gy, lgy)?, dense(w, lw)?);
    let (og, cg, ckk, hwi, hwo) = (g.og(), g.cg(), g.ckk(), g.in_plane(), g.out_plane());
    if algorithm(ConvPass::BackwardData, dtype, &g) == DEPTHWISE {
        let args = Args::new().buf(&gy).buf(&w).buf(&dx).push(KGeom::of(&g));
        launch(&gy.dev, &SRC, &kname("depthwise_backward_data", dtype), grid_for(dx.len()), args)?;
        return Ok(dx);
    }
    // W_g^T: the row-major [og, ckk] weight read as a column-major [ckk, og] matrix.
    let wt = |gi: usize| Mat { ptr: w.ptr_at(gi * og * ckk), batch_stride: 0, transposed: true, ld: ckk.max(1) };
    if g.is_pointwise() {
        for gi in 0..g.g {
            let b = Mat::row_major(gy.ptr_at(gi * og * hwo), hwo, g.o * hwo);
            gemm(&gy.dev, dtype, (cg, hwi, og, g.n), wt(gi), b, dx.ptr_at(gi * cg * hwi), hwi, g.c * hwi, 0.0)?;
        }
        return Ok(dx);
    }
    let nb = chunk(&g);
    let per_image = g.c * g.kk() * hwo;
    let col = CudaStorage::alloc(&gy.dev, dtype, nb * per_image)?;
    for n0 in (0..g.n).step_by(nb) {
        let nb = nb.min(g.n - n0);
        for gi in 0..g.g {
            let b = Mat::row_major(gy.ptr_at((n0 * g.o + gi * og) * hwo), hwo, g.o * hwo);
            gemm(&gy.dev, dtype, (ckk, hwo, og, nb), wt(gi), b, col.ptr_at(gi * ckk * hwo), hwo, per_image, 0.0)?;
        }
        let total = nb * g.c * hwi;
        let args = Args::new().buf(&col).buf(&dx).push(KGeom::of(&g)).int(n0).int(nb).int(per_image).int(hwo);
        launch(&gy.dev, &SRC, &kname("col2im", dtype), grid_for(total), args)?;
    }
    Ok(dx)
}

/// Gradient of conv2d with respect to its weight.
pub(crate) fn conv2d_backward_weight(
    backend: &CudaBackend,
    x: &CudaStorage,
    lx: &Layout,
    gy: &CudaStorage,
    lgy: &Layout,
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<CudaStorage> {
    backend.view("conv2d_backward_weight", x, lx)?;
    backend.view("conv2d_backward_weight", gy, lgy)?;
    const OP: &str = "conv2d_backward_weight";
    check_dtypes(OP, x, gy)?;
    let g = geom_backward_weight(lx.shape(), lgy.shape(), p, kernel_hw)?;
    let dtype = x.dtype();
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op: OP, dtype });
    }
    let wlen: usize = g.w_shape().iter().product();
    let dw = CudaStorage::zeros(&x.dev, dtype, wlen)?;
    if wlen == 0 || g.n == 0 {
        return Ok(dw);
    }
    let (x, gyc) = (dense(x, lx)?, dense(gy, lgy)?);
    let (og, ckk, hwo) = (g.og(), g.ckk(), g.out_plane());
    if algorithm(ConvPass::BackwardWeight, dtype, &g) == DEPTHWISE {
        let grid = ((wlen.min(65_535) as u32, 1, 1), (256, 1, 1), 0);
        let args = Args::new().buf(&x).buf(&gyc).buf(&dw).push(KGeom::of(&g));
        launch(&x.dev, &SRC, &kname("depthwise_backward_weight", dtype), grid, args)?;
        return Ok(dw);
    }
    let nb = chunk(&g);
    let rows = g.c * g.kk();
    let col = CudaStorage::alloc(&x.dev, dtype, nb * rows * hwo)?;
    for n0 in (0..g.n).step_by(nb) {
        let nb = nb.min(g.n - n0);
        let cols = nb * hwo;
        // col: [C*kH*kW, nb*oH*oW]; gy chunk as [O, nb*oH*oW].
        im2col(&x, &col, &g, (n0, nb), (hwo, cols))?;
        let gview = Layout::new(vec![g.o, nb, hwo], vec![hwo, g.o * hwo, 1], n0 * g.o * hwo)?;
        let gt = dense(&gyc, &gview)?;
        for gi in 0..g.g {
            let a = Mat::row_major(gt.ptr_at(gi * og * cols), cols, 0);
            let b = Mat { ptr: col.ptr_at(gi * ckk * cols), batch_stride: 0, transposed: true, ld: cols };
            gemm(&x.dev, dtype, (og, ckk, cols, 1), a, b, dw.ptr_at(gi * og * ckk), ckk, 0, 1.0)?;
        }
    }
    Ok(dw)
}
