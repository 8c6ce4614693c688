//! Integer kernels for quantized inference on the GPU (`int8.cu`): i8 x i8 -> i32 batched GEMM
//! (for `matmul` and conv2d on `i8`) and the ternary 1x1 convolution.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::copy::dense;
use super::launch::{grid_for, launch, Args};
use super::storage::CudaStorage;
use crate::planning::matmul::matmul_dims;
use crate::{DType, Error, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "int8", src: include_str!("int8.cu") };

/// Tile edge of `gemm_i8` (`TILE` in `int8.cu`).
const TILE: usize = 16;

/// `C[b] = A[b] B[b]` for contiguous i8 `A` `[m, k]` and `B` `[k, n]` into i32 `C` `[m, n]`, batch
/// entries `a_bs`, `b_bs`, `c_bs` elements apart.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_i8(
    a: (&CudaStorage, usize),
    b: (&CudaStorage, usize),
    c: (&CudaStorage, usize),
    (m, n, k, batch): (usize, usize, usize, usize),
    (a_bs, b_bs, c_bs): (usize, usize, usize),
) -> Result<()> {
    if m == 0 || n == 0 || batch == 0 {
        return Ok(());
    }
    if batch > 65_535 || m.div_ceil(TILE) > 65_535 {
        return Err(Error::invalid("matmul", format!("i8 GEMM of {m}x{k} by {k}x{n} in {batch} batches is too large")));
    }
    let grid = ((n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, batch as u32), (TILE as u32, TILE as u32, 1), 0);
    let args = Args::new().push(a.0.ptr_at(a.1)).push(b.0.ptr_at(b.1)).push(c.0.ptr_at(c.1));
    let args = args.int(m).int(n).int(k).int(a_bs).int(b_bs).int(c_bs);
    launch(&a.0.dev, &SRC, "gemm_i8", grid, args)
}

/// `[..., M, K] x [..., K, N]` for `i8` operands, accumulated in (wrapping) `i32`.
pub(crate) fn matmul_i8(a: &CudaStorage, la: &Layout, b: &CudaStorage, lb: &Layout) -> Result<CudaStorage> {
    let (batch, m, k, n, out_shape) = matmul_dims(la, lb)?;
    let out = CudaStorage::zeros(&a.dev, DType::I32, out_shape.iter().product())?;
    if m * n == 0 || batch == 0 {
        return Ok(out);
    }
    let (ca, cb) = (dense(a, la)?, dense(b, lb)?);
    gemm_i8((&ca, 0), (&cb, 0), (&out, 0), (m, n, k, batch), (m * k, k * n, m * n))?;
    Ok(out)
}

/// 1x1 convolution with ternary weights: `x` i8 `[N, C, H, W]`, `w` i8 `[O, C]` in {-1, 0, 1}.
pub(crate) fn ternary_conv1x1(
    backend: &CudaBackend,
    x: &CudaStorage,
    lx: &Layout,
    w: &CudaStorage,
    lw: &Layout,
) -> Result<CudaStorage> {
    backend.view("ternary_conv1x1", x, lx)?;
    backend.view("ternary_conv1x1", w, lw)?;
    const OP: &str = "ternary_conv1x1";
    if x.dtype() != DType::I8 {
        return Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() });
    }
    if w.dtype() != DType::I8 {
        return Err(Error::UnsupportedDType { op: OP, dtype: w.dtype() });
    }
    if lx.ndim() != 4 || lw.ndim() != 2 || lw.shape()[1] != lx.shape()[1] {
        return Err(Error::shape(OP, lx.shape(), lw.shape()));
    }
    let (n, c, h, wd) = (lx.shape()[0], lx.shape()[1], lx.shape()[2], lx.shape()[3]);
    let o = lw.shape()[0];
    // The weights are small: check them on the host for the CPU backend's exact message.
    let wh = super::copy::to_host(w, lw)?;
    let wv = wh.as_slice::<i8>().expect("i8 weights");
    if let Some((pos, &bad)) = wv.iter().enumerate().find(|(_, &v)| !(-1..=1).contains(&v)) {
        return Err(Error::invalid(
            OP,
            format!("weight [{}, {}] is {bad}; ternary weights must be -1, 0 or 1", pos / c.max(1), pos % c.max(1)),
        ));
    }
    let total = n * o * h * wd;
    let out = CudaStorage::alloc(&x.dev, DType::I32, total)?;
    if total > 0 {
        let (cx, cw) = (dense(x, lx)?, dense(w, lw)?);
        let args = Args::new().buf(&cx).buf(&cw).buf(&out).int(n).int(c).int(o).int(h * wd);
        launch(&x.dev, &SRC, "ternary_conv1x1", grid_for(total), args)?;
    }
    Ok(out)
}
