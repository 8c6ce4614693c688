//! Elementwise kernels: unary maps, binary ops over broadcast views, comparisons and select.

use super::fast_math;
use super::scalar::{compare, Arith};
use super::strided::{check_extent, par_build, Rows};
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{CpuStorage, DType, Element, Error, FloatElement, Layout, Result};
use std::mem::MaybeUninit;

/// Maps `f` over a view into a new contiguous vector.
pub(crate) fn map1<T: Copy + Send + Sync, U: Copy + Default + Send + Sync>(
    src: &[T],
    l: &Layout,
    f: impl Fn(T) -> U + Sync + Send,
) -> Vec<U> {
    let n = l.numel();
    if let Some(r) = l.contiguous_range() {
        let src = &src[r];
        // SAFETY: each chunk writes every element (`src` is as long as the output).
        return unsafe { par_build(n, |chunk, start| fill_from(chunk, &src[start..], &f)) };
    }
    let rows = Rows::new([l]);
    let [st] = rows.inner_strides();
    // SAFETY: `rows.for_each` visits every position of the chunk once.
    unsafe {
        par_build(n, |chunk, start| {
            rows.for_each(start, chunk.len(), |[o], len, pos| {
                let dst = &mut chunk[pos - start..pos - start + len];
                if st == 1 {
                    fill_from(dst, &src[o..o + len], &f);
                } else {
                    dst.iter_mut().enumerate().for_each(|(j, d)| {
                        d.write(f(src[o + j * st]));
                    });
                }
            })
        })
    }
}

/// Writes `f(src[i])` into every `dst[i]` (`src` at least as long).
#[inline(always)]
fn fill_from<T: Copy, U>(dst: &mut [MaybeUninit<U>], src: &[T], f: &impl Fn(T) -> U) {
    dst.iter_mut().zip(src).for_each(|(o, &x)| {
        o.write(f(x));
    });
}

/// Maps `f` over two views of the same shape into a new contiguous vector.
pub(crate) fn map2<A: Copy + Send + Sync, B: Copy + Send + Sync, U: Copy + Default + Send + Sync>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    f: impl Fn(A, B) -> U + Sync + Send,
) -> Vec<U> {
    let n = la.numel();
    if let (Some(ra), Some(rb)) = (la.contiguous_range(), lb.contiguous_range()) {
        let (a, b) = (&a[ra], &b[rb]);
        // SAFETY: each chunk writes every element (`a` and `b` are as long as the output).
        return unsafe {
            par_build(n, |chunk, start| {
                let end = start + chunk.len();
                chunk.iter_mut().zip(&a[start..end]).zip(&b[start..end]).for_each(|((o, &x), &y)| {
                    o.write(f(x, y));
                });
            })
        };
    }
    let rows = Rows::new([la, lb]);
    let [sa, sb] = rows.inner_strides();
    // SAFETY: `rows.for_each` visits every position of the chunk once, and each arm writes the
    // whole run.
    unsafe {
        par_build(n, |chunk, start| {
            rows.for_each(start, chunk.len(), |[oa, ob], len, pos| {
                let dst = &mut chunk[pos - start..pos - start + len];
                match (sa, sb) {
                    (1, 1) => dst.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]).for_each(|((d, &x), &y)| {
                        d.write(f(x, y));
                    }),
                    (1, 0) => {
                        let y = b[ob];
                        fill_from(dst, &a[oa..oa + len], &|x| f(x, y));
                    }
                    (0, 1) => {
                        let x = a[oa];
                        fill_from(dst, &b[ob..ob + len], &|y| f(x, y));
                    }
                    _ => dst.iter_mut().enumerate().for_each(|(j, d)| {
                        d.write(f(a[oa + j * sa], b[ob + j * sb]));
                    }),
                }
            })
        })
    }
}

/// Maps `f` over three views of the same shape into a new contiguous vector.
pub(crate) fn map3<
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
    U: Copy + Default + Send + Sync,
>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    c: &[C],
    lc: &Layout,
    f: impl Fn(A, B, C) -> U + Sync + Send,
) -> Vec<U> {
    let rows = Rows::new([la, lb, lc]);
    let [sa, sb, sc] = rows.inner_strides();
    // SAFETY: `rows.for_each` visits every position of the chunk once.
    unsafe {
        par_build(la.numel(), |chunk, start| {
            rows.for_each(start, chunk.len(), |[oa, ob, oc], len, pos| {
                let dst = &mut chunk[pos - start..pos - start + len];
                dst.iter_mut().enumerate().for_each(|(j, d)| {
                    d.write(f(a[oa + j * sa], b[ob + j * sb], c[oc + j * sc]));
                });
            })
        })
    }
}

/// A slice kernel over a contiguous view, in parallel chunks; `None` for other views.
/// The kernels write every element of their output, so it is not zero-filled first.
fn contiguous_map1(v: &[f32], l: &Layout, kernel: fn(&[f32], &mut [MaybeUninit<f32>])) -> Option<Vec<f32>> {
    let src = &v[l.contiguous_range()?];
    // SAFETY: the slice kernels initialize every element of their output chunk.
    Some(unsafe { par_build(src.len(), |chunk, start| kernel(&src[start..start + chunk.len()], chunk)) })
}

/// [`contiguous_map1`] for two views of one shape.
fn contiguous_map2(
    a: &[f32],
    la: &Layout,
    b: &[f32],
    lb: &Layout,
    kernel: fn(&[f32], &[f32], &mut [MaybeUninit<f32>]),
) -> Option<Vec<f32>> {
    let (a, b) = (&a[la.contiguous_range()?], &b[lb.contiguous_range()?]);
    // SAFETY: the slice kernels initialize every element of their output chunk.
    Some(unsafe {
        par_build(a.len(), |chunk, start| {
            let end = start + chunk.len();
            kernel(&a[start..end], &b[start..end], chunk)
        })
    })
}

fn check_same_shape(op: &'static str, la: &Layout, lb: &Layout) -> Result<()> {
    if la.shape() != lb.shape() {
        return Err(Error::shape(op, la.shape(), lb.shape()));
    }
    Ok(())
}

/// Runs `$body` with `$v` bound to the slice of a numeric storage and `$T` to its element type.
macro_rules! with_slice {
    ($s:expr, $v:ident, $T:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => {
                type $T = f32;
                $body
            }
            CpuStorage::F64($v) => {
                type $T = f64;
                $body
            }
            CpuStorage::I64($v) => {
                type $T = i64;
                $body
            }
            CpuStorage::I32($v) => {
                type $T = i32;
                $body
            }
            CpuStorage::U32($v) => {
                type $T = u32;
                $body
            }
            CpuStorage::U8($v) => {
                type $T = u8;
                $body
            }
            CpuStorage::I8($v) => {
                type $T = i8;
                $body
            }
        }
    };
}
pub(crate) use with_slice;

/// The hot float unary ops of training, each with its own small closure so that `map1`'s loop
/// inlines it and vectorizes (the general path's closure matches on the op per element and is
/// too large to inline). Same results as [`Arith::unary`]; `None` for the other ops.
fn hot_float_unary<T: FloatElement>(op: UnaryOp, v: &[T], l: &Layout) -> Option<Vec<T>> {
    let (zero, one) = (T::zero(), T::one());
    Some(match op {
        UnaryOp::Neg => map1(v, l, |x: T| -x),
        UnaryOp::Abs => map1(v, l, |x: T| x.abs()),
        UnaryOp::Relu => map1(v, l, move |x: T| if x < zero { zero } else { x }),
        UnaryOp::Relu6 => {
            let six = T::from_f32(6.0);
            map1(v, l, move |x: T| {
                if x < zero {
                    zero
                } else if x > six {
                    six
                } else {
                    x
                }
            })
        }
        UnaryOp::Square => map1(v, l, |x: T| x * x),
        UnaryOp::Sqrt => map1(v, l, |x: T| x.sqrt()),
        UnaryOp::Rsqrt => map1(v, l, move |x: T| one / x.sqrt()),
        UnaryOp::Recip => map1(v, l, move |x: T| one / x),
        UnaryOp::Round => map1(v, l, super::scalar::round_half_even),
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            map1(v, l, move |x: T| {
                if x < lo {
                    lo
                } else if x > hi {
                    hi
                } else {
                    x
                }
            })
        }
        _ => return None,
    })
}

/// [`hot_float_unary`] for `+ − × ÷` and the ReLU and arctangent backward ops of two float views.
fn hot_float_binary<T: FloatElement>(op: BinaryOp, a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Option<Vec<T>> {
    let zero = T::zero();
    Some(match op {
        BinaryOp::Add => map2(a, la, b, lb, |x: T, y: T| x + y),
        BinaryOp::Sub => map2(a, la, b, lb, |x: T, y: T| x - y),
        BinaryOp::Mul => map2(a, la, b, lb, |x: T, y: T| x * y),
        BinaryOp::Div => map2(a, la, b, lb, |x: T, y: T| x / y),
        BinaryOp::ReluBackward => map2(a, la, b, lb, move |g: T, x: T| if x > zero { g } else { zero }),
        BinaryOp::Relu6Backward => {
            let six = T::from_f32(6.0);
            map2(a, la, b, lb, move |g: T, x: T| if x > zero && x < six { g } else { zero })
        }
        BinaryOp::AtanBackward => {
            let one = T::one();
            map2(a, la, b, lb, move |g: T, x: T| g / (one + x * x))
        }
        _ => return None,
    })
}

pub(crate) fn unary(op: UnaryOp, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    check_extent(op.name(), s, l)?;
    let dtype = s.dtype();
    if !dtype.is_float() && !op.supports_integers() {
        return Err(Error::UnsupportedDType { op: op.name(), dtype });
    }
    let hot = match s {
        CpuStorage::F32(v) if op == UnaryOp::GeluErf => Some(CpuStorage::F32(
            contiguous_map1(v, l, fast_math::gelu_slice).unwrap_or_else(|| map1(v, l, fast_math::gelu_f32)),
        )),
        CpuStorage::F32(v) if op == UnaryOp::Atan => Some(CpuStorage::F32(
            contiguous_map1(v, l, fast_math::atan_slice).unwrap_or_else(|| map1(v, l, fast_math::atan_f32)),
        )),
        CpuStorage::F32(v) => hot_float_unary(op, v, l).map(CpuStorage::F32),
        CpuStorage::F64(v) => hot_float_unary(op, v, l).map(CpuStorage::F64),
        _ => None,
    };
    if let Some(out) = hot {
        return Ok(out);
    }
    with_slice!(s, v, T => {
        Ok(T::into_cpu(map1(v, l, |x| <T as Arith>::unary(op, x).unwrap_or_default())))
    })
}

fn binary_impl<T: Arith>(op: BinaryOp, a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Result<CpuStorage> {
    if T::DTYPE.is_float() || op != BinaryOp::Div {
        if !T::DTYPE.is_float() && op.float_only() {
            return Err(Error::UnsupportedDType { op: op.name(), dtype: T::DTYPE });
        }
        return Ok(T::into_cpu(map2(a, la, b, lb, |x, y| T::binary(op, x, y).unwrap_or_default())));
    }
    // Integer division: detect division by zero instead of producing garbage.
    let out = map2(a, la, b, lb, |x, y| T::binary(op, x, y));
    if out.iter().any(|v| v.is_none()) {
        return Err(Error::invalid("div", "integer division by zero"));
    }
    Ok(T::into_cpu(out.into_iter().map(|v| v.unwrap_or_default()).collect()))
}

pub(crate) fn binary(op: BinaryOp, a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
    check_extent(op.name(), a, la)?;
    check_extent(op.name(), b, lb)?;
    check_same_shape(op.name(), la, lb)?;
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: op.name(), lhs: a.dtype(), rhs: b.dtype() });
    }
    let hot = match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) if op == BinaryOp::GeluBackward => Some(CpuStorage::F32(
            contiguous_map2(x, la, y, lb, fast_math::gelu_backward_slice)
                .unwrap_or_else(|| map2(x, la, y, lb, fast_math::gelu_backward_f32)),
        )),
        (CpuStorage::F32(x), CpuStorage::F32(y)) => hot_float_binary(op, x, la, y, lb).map(CpuStorage::F32),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => hot_float_binary(op, x, la, y, lb).map(CpuStorage::F64),
        _ => None,
    };
    if let Some(out) = hot {
        return Ok(out);
    }
    with_slice!(a, av, T => {
        let bv = T::cpu_slice(b).expect("dtype checked");
        binary_impl::<T>(op, av, la, bv, lb)
    })
}

/// [`hot_float_binary`] with one operand a scalar broadcast by `sl`.
fn scalar_hot<T: FloatElement>(op: BinaryOp, a: &[T], la: &Layout, sl: &Layout, s: T, first: bool) -> Option<Vec<T>> {
    let sv = [s];
    if first {
        hot_float_binary(op, &sv, sl, a, la)
    } else {
        hot_float_binary(op, a, la, &sv, sl)
    }
}

pub(crate) fn binary_scalar(
    op: BinaryOp,
    a: &CpuStorage,
    la: &Layout,
    scalar: f64,
    scalar_first: bool,
) -> Result<CpuStorage> {
    check_extent(op.name(), a, la)?;
    // The scalar as a view of one element broadcast to every position (stride 0).
    let sl = Layout::new(la.shape().to_vec(), vec![0; la.ndim()], 0)?;
    let hot = match a {
        CpuStorage::F32(x) => scalar_hot(op, x, la, &sl, scalar as f32, scalar_first).map(CpuStorage::F32),
        CpuStorage::F64(x) => scalar_hot(op, x, la, &sl, scalar, scalar_first).map(CpuStorage::F64),
        _ => None,
    };
    if let Some(out) = hot {
        return Ok(out);
    }
    with_slice!(a, av, T => {
        let sv = [T::from_f64(scalar)];
        if scalar_first {
            binary_impl::<T>(op, &sv, &sl, av, la)
        } else {
            binary_impl::<T>(op, av, la, &sv, &sl)
        }
    })
}

pub(crate) fn compare_op(op: CmpOp, a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
    check_extent("compare", a, la)?;
    check_extent("compare", b, lb)?;
    check_same_shape("compare", la, lb)?;
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: "compare", lhs: a.dtype(), rhs: b.dtype() });
    }
    with_slice!(a, av, T => {
        let bv = T::cpu_slice(b).expect("dtype checked");
        Ok(CpuStorage::U8(map2(av, la, bv, lb, |x: T, y: T| compare(op, x, y))))
    })
}

pub(crate) fn compare_scalar(op: CmpOp, a: &CpuStorage, la: &Layout, scalar: f64) -> Result<CpuStorage> {
    check_extent("compare", a, la)?;
    with_slice!(a, av, T => {
        if T::DTYPE.is_float() {
            let s = T::from_f64(scalar);
            Ok(CpuStorage::U8(map1(av, la, |x: T| compare(op, x, s))))
        } else {
            // Compare integers in f64 so that a fractional scalar behaves mathematically.
            Ok(CpuStorage::U8(map1(av, la, |x: T| compare(op, x.to_f64(), scalar))))
        }
    })
}

pub(crate) fn where_cond(
    cond: &CpuStorage,
    lc: &Layout,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    check_extent("where", cond, lc)?;
    check_extent("where", a, la)?;
    check_extent("where", b, lb)?;
    check_same_shape("where", lc, la)?;
    check_same_shape("where", la, lb)?;
    let CpuStorage::U8(c) = cond else {
        return Err(Error::DTypeMismatch { op: "where", lhs: cond.dtype(), rhs: DType::U8 });
    };
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: "where", lhs: a.dtype(), rhs: b.dtype() });
    }
    with_slice!(a, av, T => {
        let bv = T::cpu_slice(b).expect("dtype checked");
        Ok(T::into_cpu(map3(c, lc, av, la, bv, lb, |c: u8, x: T, y: T| if c != 0 { x } else { y })))
    })
}
