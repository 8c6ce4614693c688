//! Elementwise ops on the GPU: unary maps, binary ops with broadcasting, comparisons and select
//! (kernels in `elementwise.cu`), with the CPU backend's checks and error messages.

use super::backend::CudaBackend;
use super::compile::KernelSource;
use super::launch::{grid_for, kname, launch, Args, ErrorFlag, Walk};
use super::storage::CudaStorage;
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Error, Layout, Result};

/// The kernels of this file.
pub(crate) const SRC: KernelSource = KernelSource { name: "elementwise", src: include_str!("elementwise.cu") };

/// The kernel's op code (`UNARY_*` in `elementwise.cu`, see `op_codes.rs`) and scalar
/// parameters of a unary op.
fn unary_code(op: UnaryOp) -> (i32, f64, f64) {
    let (p0, p1) = match op {
        UnaryOp::Clamp { min, max } => (min, max),
        UnaryOp::Powf(p) => (p, 0.0),
        _ => (0.0, 0.0),
    };
    (op.code() as i32, p0, p1)
}

fn check_same_shape(op: &'static str, la: &Layout, lb: &Layout) -> Result<()> {
    if la.shape() != lb.shape() {
        return Err(Error::shape(op, la.shape(), lb.shape()));
    }
    Ok(())
}

/// `op(x)` over a view.
pub(crate) fn unary(backend: &CudaBackend, op: UnaryOp, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    backend.view(op.name(), s, l)?;
    let dtype = s.dtype();
    if !dtype.is_float() && !op.supports_integers() {
        return Err(Error::UnsupportedDType { op: op.name(), dtype });
    }
    let n = l.numel();
    let out = CudaStorage::alloc(&s.dev, dtype, n)?;
    if n > 0 {
        let (code, p0, p1) = unary_code(op);
        let w = Walk::new(op.name(), [l])?;
        let args = Args::new().buf(s).buf(&out).int(n).push(w).push(code).push(p0).push(p1);
        launch(&s.dev, &SRC, &kname("unary", dtype), grid_for(n), args)?;
    }
    Ok(out)
}

/// Rejects `pow` on integers, as the CPU backend does.
fn check_binary_dtype(op: BinaryOp, dtype: DType) -> Result<()> {
    if !dtype.is_float() && op.float_only() {
        return Err(Error::UnsupportedDType { op: op.name(), dtype });
    }
    Ok(())
}

/// An error flag when the op can fail on device (integer division), else a null address.
fn div_flag(op: BinaryOp, s: &CudaStorage) -> Result<Option<ErrorFlag>> {
    if op == BinaryOp::Div && !s.dtype().is_float() {
        return Ok(Some(ErrorFlag::new(&s.dev)?));
    }
    Ok(None)
}

fn check_div(flag: Option<ErrorFlag>) -> Result<()> {
    if let Some(f) = flag {
        if f.first_failure()?.is_some() {
            return Err(Error::invalid("div", "integer division by zero"));
        }
    }
    Ok(())
}

/// `op(a, b)` over two views of one (broadcast) shape.
pub(crate) fn binary(
    backend: &CudaBackend,
    op: BinaryOp,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    backend.view(op.name(), a, la)?;
    backend.view(op.name(), b, lb)?;
    check_same_shape(op.name(), la, lb)?;
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: op.name(), lhs: a.dtype(), rhs: b.dtype() });
    }
    check_binary_dtype(op, a.dtype())?;
    let n = la.numel();
    let out = CudaStorage::alloc(&a.dev, a.dtype(), n)?;
    if n > 0 {
        let flag = div_flag(op, a)?;
        let w = Walk::new(op.name(), [la, lb])?;
        let args = Args::new().buf(a).buf(b).buf(&out).int(n).push(w).push(op.code() as i32);
        let args = args.push(flag.as_ref().map_or(0u64, |f| f.ptr()));
        launch(&a.dev, &SRC, &kname("binary", a.dtype()), grid_for(n), args)?;
        check_div(flag)?;
    }
    Ok(out)
}

/// `op(a, scalar)` or `op(scalar, a)`; the scalar is converted to the dtype first (`as`).
pub(crate) fn binary_scalar(
    backend: &CudaBackend,
    op: BinaryOp,
    a: &CudaStorage,
    la: &Layout,
    scalar: f64,
    scalar_first: bool,
) -> Result<CudaStorage> {
    backend.view(op.name(), a, la)?;
    check_binary_dtype(op, a.dtype())?;
    let n = la.numel();
    let out = CudaStorage::alloc(&a.dev, a.dtype(), n)?;
    if n > 0 {
        let flag = div_flag(op, a)?;
        let w = Walk::new(op.name(), [la])?;
        let args = Args::new().buf(a).buf(&out).int(n).push(w).push(op.code() as i32).push(scalar);
        let args = args.push(scalar_first as i32).push(flag.as_ref().map_or(0u64, |f| f.ptr()));
        launch(&a.dev, &SRC, &kname("binary_scalar", a.dtype()), grid_for(n), args)?;
        check_div(flag)?;
    }
    Ok(out)
}

/// A `u8` 0/1 mask of `a op b`.
pub(crate) fn compare(
    backend: &CudaBackend,
    op: CmpOp,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    backend.view("compare", a, la)?;
    backend.view("compare", b, lb)?;
    check_same_shape("compare", la, lb)?;
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: "compare", lhs: a.dtype(), rhs: b.dtype() });
    }
    let n = la.numel();
    let out = CudaStorage::alloc(&a.dev, DType::U8, n)?;
    if n > 0 {
        let w = Walk::new("compare", [la, lb])?;
        let args = Args::new().buf(a).buf(b).buf(&out).int(n).push(w).push(op.code() as i32);
        launch(&a.dev, &SRC, &kname("compare", a.dtype()), grid_for(n), args)?;
    }
    Ok(out)
}

/// A `u8` 0/1 mask of `a op scalar` (integers compare in f64).
pub(crate) fn compare_scalar(
    backend: &CudaBackend,
    op: CmpOp,
    a: &CudaStorage,
    la: &Layout,
    scalar: f64,
) -> Result<CudaStorage> {
    backend.view("compare", a, la)?;
    let n = la.numel();
    let out = CudaStorage::alloc(&a.dev, DType::U8, n)?;
    if n > 0 {
        let w = Walk::new("compare", [la])?;
        let args = Args::new().buf(a).buf(&out).int(n).push(w).push(op.code() as i32).push(scalar);
        launch(&a.dev, &SRC, &kname("compare_scalar", a.dtype()), grid_for(n), args)?;
    }
    Ok(out)
}

/// `cond ? a : b` elementwise.
pub(crate) fn where_cond(
    backend: &CudaBackend,
    cond: &CudaStorage,
    lc: &Layout,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    backend.view("where", cond, lc)?;
    backend.view("where", a, la)?;
    backend.view("where", b, lb)?;
    check_same_shape("where", lc, la)?;
    check_same_shape("where", la, lb)?;
    if cond.dtype() != DType::U8 {
        return Err(Error::DTypeMismatch { op: "where", lhs: cond.dtype(), rhs: DType::U8 });
    }
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: "where", lhs: a.dtype(), rhs: b.dtype() });
    }
    let n = la.numel();
    let out = CudaStorage::alloc(&a.dev, a.dtype(), n)?;
    if n > 0 {
        let w = Walk::new("where", [lc, la, lb])?;
        let args = Args::new().buf(cond).buf(a).buf(b).buf(&out).int(n).push(w);
        launch(&a.dev, &SRC, &kname("where", a.dtype()), grid_for(n), args)?;
    }
    Ok(out)
}
