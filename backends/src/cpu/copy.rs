//! Data movement: contiguous copies, dtype casts, concatenation and padding.

use super::elementwise::{map1, with_slice};
use super::strided::{check_extent, gather_view};
use crate::planning::concat::concat_shape;
use crate::{CpuStorage, DType, Element, Error, Layout, Result};
use rayon::prelude::*;

pub(crate) fn contiguous(s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    check_extent("contiguous", s, l)?;
    Ok(with_slice!(s, v, T => {
        let mut out = vec![T::default(); l.numel()];
        gather_view(v, l, &mut out);
        T::into_cpu(out)
    }))
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
    let nd = out_shape.len();
    with_slice!(s, v, T => {
        let src = super::strided::contiguous_slice(v, l);
        let value = T::from_f64(value);
        if nd == 0 {
            return Ok(T::into_cpu(src.to_vec()));
        }
        let (w_out, w_in, left) = (out_shape[nd - 1], l.shape()[nd - 1], pads[nd - 1].0);
        let mut out = vec![value; out_shape.iter().product()];
        if pads[..nd - 1].iter().all(|&p| p == (0, 0)) {
            // Only the last axis grows: output line i is source line i between its padding, in
            // blocks of lines (short lines, such as interleaving zeros, stay cheap).
            if w_out > 0 && w_in > 0 {
                const LINES: usize = 4096;
                let block = |(dst, src): (&mut [T], &[T])| {
                    for (d, s) in dst.chunks_exact_mut(w_out).zip(src.chunks_exact(w_in)) {
                        d[left..left + w_in].copy_from_slice(s);
                    }
                };
                let pairs = out.par_chunks_mut(LINES * w_out).zip(src.par_chunks(LINES * w_in));
                pairs.with_min_len((super::strided::PAR_THRESHOLD / (LINES * w_out)).max(1)).for_each(block);
            }
            return Ok(T::into_cpu(out));
        }
        // One output line (last axis) at a time: padding, or padding around a source line.
        let line = |(i, dst): (usize, &mut [T])| {
            let (mut rem, mut src_line, mut stride) = (i, 0, 1);
            for d in (0..nd - 1).rev() {
                let c = rem % out_shape[d];
                rem /= out_shape[d];
                let before = pads[d].0;
                if c < before || c >= before + l.shape()[d] {
                    return;
                }
                src_line += (c - before) * stride;
                stride *= l.shape()[d];
            }
            dst[left..left + w_in].copy_from_slice(&src[src_line * w_in..(src_line + 1) * w_in]);
        };
        if w_out > 0 {
            if out.len() >= super::strided::PAR_THRESHOLD {
                out.par_chunks_mut(w_out).enumerate().for_each(line);
            } else {
                out.chunks_mut(w_out).enumerate().for_each(line);
            }
        }
        Ok(T::into_cpu(out))
    })
}
