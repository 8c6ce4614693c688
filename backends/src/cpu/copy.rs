//! Data movement: contiguous copies, dtype casts, concatenation and padding.

use super::elementwise::{map1, with_slice};
use super::strided::gather_view;
use crate::{CpuStorage, DType, Element, Error, Layout, Result};

pub(crate) fn contiguous(s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    check_extent("contiguous", s, l)?;
    Ok(with_slice!(s, v, T => {
        let mut out = vec![T::default(); l.numel()];
        gather_view(v, l, &mut out);
        T::into_cpu(out)
    }))
}

/// Checks that a view stays inside its buffer (a broken layout is a caller bug, reported as an error).
pub(crate) fn check_extent(op: &'static str, s: &CpuStorage, l: &Layout) -> Result<()> {
    if l.storage_extent() > s.len() {
        return Err(Error::invalid(op, format!("view {:?} reaches past a buffer of {} elements", l, s.len())));
    }
    Ok(())
}

pub(crate) fn cast(s: &CpuStorage, l: &Layout, dtype: DType) -> Result<CpuStorage> {
    fn to<U: Element>(s: &CpuStorage, l: &Layout) -> CpuStorage {
        with_slice!(s, v, T => {
            U::into_cpu(map1(v, l, |x: T| <U as num_traits::NumCast>::from(x).unwrap_or_else(|| U::from_f64(x.to_f64()))))
        })
    }
    check_extent("cast", s, l)?;
    if s.dtype() == dtype {
        return contiguous(s, l);
    }
    Ok(match dtype {
        DType::F32 => to::<f32>(s, l),
        DType::F64 => to::<f64>(s, l),
        DType::I64 => to::<i64>(s, l),
        DType::I32 => to::<i32>(s, l),
        DType::U32 => to::<u32>(s, l),
        DType::U8 => to::<u8>(s, l),
        DType::I8 => to::<i8>(s, l),
    })
}

/// Checks the operands of a concatenation (at least one, one dtype, equal sizes outside `axis`)
/// and returns the output shape.
pub(crate) fn concat_shape(parts: &[(DType, &Layout)], axis: usize) -> Result<Vec<usize>> {
    let op = "concat";
    let Some(&(dtype0, l0)) = parts.first() else {
        return Err(Error::invalid(op, "needs at least one tensor"));
    };
    if axis >= l0.ndim() {
        return Err(Error::AxisOutOfRange { op, axis, ndim: l0.ndim() });
    }
    let mut out_shape = l0.shape().to_vec();
    out_shape[axis] = 0;
    for &(dtype, l) in parts {
        if dtype != dtype0 {
            return Err(Error::DTypeMismatch { op, lhs: dtype0, rhs: dtype });
        }
        let same_rest = l.ndim() == l0.ndim() && (0..l0.ndim()).all(|d| d == axis || l.shape()[d] == l0.shape()[d]);
        if !same_rest {
            return Err(Error::shape(op, l0.shape(), l.shape()));
        }
        out_shape[axis] += l.shape()[axis];
    }
    Ok(out_shape)
}

pub(crate) fn concat(parts: &[(&CpuStorage, &Layout)], axis: usize) -> Result<CpuStorage> {
    let out_shape = concat_shape(&parts.iter().map(|&(s, l)| (s.dtype(), l)).collect::<Vec<_>>(), axis)?;
    for &(s, l) in parts {
        check_extent("concat", s, l)?;
    }
    let first = parts[0].0;
    let outer: usize = out_shape[..axis].iter().product();
    let inner: usize = out_shape[axis + 1..].iter().product();
    let out_row = out_shape[axis] * inner;
    with_slice!(first, _f, T => {
        let mut out = vec![T::default(); out_shape.iter().product()];
        let mut col = 0;
        for &(s, l) in parts {
            let v = T::cpu_slice(s).expect("dtype checked");
            let piece = l.shape()[axis] * inner;
            let data = super::strided::contiguous_slice(v, l);
            for o in 0..outer {
                out[o * out_row + col..o * out_row + col + piece].copy_from_slice(&data[o * piece..(o + 1) * piece]);
            }
            col += piece;
        }
        Ok(T::into_cpu(out))
    })
}

pub(crate) fn pad(s: &CpuStorage, l: &Layout, pads: &[(usize, usize)], value: f64) -> Result<CpuStorage> {
    if pads.len() != l.ndim() {
        return Err(Error::invalid(
            "pad",
            format!("{} (before, after) pairs given for a {}-D tensor {:?}", pads.len(), l.ndim(), l.shape()),
        ));
    }
    check_extent("pad", s, l)?;
    let out_shape: Vec<usize> = l.shape().iter().zip(pads).map(|(&d, &(a, b))| d + a + b).collect();
    let out_layout = Layout::contiguous(&out_shape);
    // The interior of the output as a view: narrow every dimension to the original extent.
    let mut inner = out_layout.clone();
    for (d, &(a, _)) in pads.iter().enumerate() {
        inner = inner.narrow(d, a, l.shape()[d])?;
    }
    with_slice!(s, v, T => {
        let mut out = vec![T::from_f64(value); out_layout.numel()];
        let src = super::strided::contiguous_slice(v, l);
        let rows = super::strided::Rows::new([&inner]);
        let [st] = rows.inner_strides();
        rows.for_each(0, inner.numel(), |[o], len, pos| {
            for j in 0..len {
                out[o + j * st] = src[pos + j];
            }
        });
        Ok(T::into_cpu(out))
    })
}
