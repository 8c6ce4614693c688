//! Reductions over any set of axes (sum, mean, max, min, variance), arg-reductions and softmax.

use super::elementwise::with_slice;
use super::scalar::Arith;
use super::strided::Rows;
use crate::ops::{ArgReduceOp, ReduceOp};
use crate::planning::reduce::split_axes;
use crate::{CpuStorage, Element, Error, Layout, Result};
use rayon::prelude::*;

/// Calls `f(o, rows)` for each output `o`, where the elements reduced into `o` are linear indices
/// `o*block..(o+1)*block` of the permuted view; parallel over outputs.
fn per_output<U: Send + Copy + Default>(n_out: usize, block: usize, f: impl Fn(usize) -> U + Sync + Send) -> Vec<U> {
    let mut out = vec![U::default(); n_out];
    if n_out * block >= super::strided::PAR_THRESHOLD && n_out > 1 {
        let per = n_out.div_ceil(rayon::current_num_threads() * 4).max(1);
        out.par_chunks_mut(per).enumerate().for_each(|(c, chunk)| {
            for (j, o) in chunk.iter_mut().enumerate() {
                *o = f(c * per + j);
            }
        });
    } else {
        for (o, v) in out.iter_mut().enumerate() {
            *v = f(o);
        }
    }
    out
}

/// Folds every element of output `o`'s block with `fold(acc, row_slice_iter)`.
#[inline]
fn fold_block<T: Copy, A>(
    v: &[T],
    rows: &Rows<1>,
    o: usize,
    block: usize,
    init: A,
    mut fold: impl FnMut(A, &mut dyn Iterator<Item = T>) -> A,
) -> A {
    let [st] = rows.inner_strides();
    let mut acc = Some(init);
    rows.for_each(o * block, block, |[off], len, _| {
        let a = acc.take().unwrap();
        acc = Some(if st == 1 {
            fold(a, &mut v[off..off + len].iter().copied())
        } else {
            fold(a, &mut (0..len).map(|j| v[off + j * st]))
        });
    });
    acc.unwrap()
}

fn sum_f64<T: Element>(it: &mut dyn Iterator<Item = T>) -> f64 {
    let mut lanes = [0f64; 4];
    for (i, x) in it.enumerate() {
        lanes[i & 3] += x.to_f64();
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// Rows summed per block by one task of [`leading_sums`] (fixed, so the summation order does not
/// depend on the thread count).
const ROW_BLOCK: usize = 64;

/// Float sums (for `Sum` and `Mean`) over the leading axes of a contiguous view, such as a bias
/// gradient summed over batch and tokens, computed row by row in f64: the per-output loop would
/// walk each column with a stride of a whole row. `None` when the case does not apply.
fn leading_sums<T: Arith>(op: ReduceOp, v: &[T], l: &Layout, axes: &[usize]) -> Option<Vec<f64>> {
    let k = axes.len();
    let leading = k > 0 && k < l.ndim() && (0..k).all(|a| axes.contains(&a));
    if !matches!(op, ReduceOp::Sum | ReduceOp::Mean) || !T::DTYPE.is_float() || !leading {
        return None;
    }
    let cols: usize = l.shape()[k..].iter().product();
    let rows: usize = l.shape()[..k].iter().product();
    if cols < 16 || rows < 2 {
        return None;
    }
    let v = &v[l.contiguous_range()?];
    let block_sums = |b: usize| {
        let mut acc = vec![0f64; cols];
        let first = b * ROW_BLOCK * cols;
        (T::ADD_ROWS)(&mut acc, &v[first..(first + ROW_BLOCK * cols).min(v.len())]);
        acc
    };
    let blocks = rows.div_ceil(ROW_BLOCK);
    let partial: Vec<Vec<f64>> = if rows * cols >= super::strided::PAR_THRESHOLD {
        (0..blocks).into_par_iter().map(block_sums).collect()
    } else {
        (0..blocks).map(block_sums).collect()
    };
    let mut out = vec![0f64; cols];
    for p in partial {
        out.iter_mut().zip(p).for_each(|(o, x)| *o += x);
    }
    Some(out)
}

fn reduce_typed<T: Arith>(
    op: ReduceOp,
    v: &[T],
    l: &Layout,
    axes: &[usize],
    keepdim: bool,
) -> Result<(Vec<T>, Vec<usize>)> {
    let name = op.name();
    let (pl, n_out, block, out_shape) = split_axes(name, l, axes, keepdim)?;
    if matches!(op, ReduceOp::Mean | ReduceOp::Var { .. }) && !T::DTYPE.is_float() {
        return Err(Error::UnsupportedDType { op: name, dtype: T::DTYPE });
    }
    if block == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) && n_out > 0 {
        return Err(Error::invalid(name, format!("cannot reduce an empty dimension of {:?}", l.shape())));
    }
    if let Some(sums) = leading_sums(op, v, l, axes) {
        let scale = if op == ReduceOp::Mean { 1.0 / block as f64 } else { 1.0 };
        return Ok((sums.into_iter().map(|s| T::from_f64(s * scale)).collect(), out_shape));
    }
    let rows = Rows::new([&pl]);
    let out = match op {
        ReduceOp::Sum if T::DTYPE.is_float() => {
            per_output(n_out, block, |o| T::from_f64(fold_block(v, &rows, o, block, 0.0, |a, it| a + sum_f64(it))))
        }
        ReduceOp::Sum => per_output(n_out, block, |o| {
            fold_block(v, &rows, o, block, T::default(), |a, it| {
                it.fold(a, |a, x| T::binary(crate::ops::BinaryOp::Add, a, x).unwrap())
            })
        }),
        ReduceOp::Mean => per_output(n_out, block, |o| {
            T::from_f64(fold_block(v, &rows, o, block, 0.0, |a, it| a + sum_f64(it)) / block as f64)
        }),
        ReduceOp::Max | ReduceOp::Min => {
            let is_max = op == ReduceOp::Max;
            per_output(n_out, block, |o| {
                fold_block(v, &rows, o, block, None::<T>, |a, it| {
                    it.fold(a, |a, x| match a {
                        None => Some(x),
                        Some(a) if a.is_nan_() => Some(a),
                        Some(_) if x.is_nan_() => Some(x),
                        Some(a) => Some(if (is_max && x > a) || (!is_max && x < a) { x } else { a }),
                    })
                })
                .unwrap_or_default()
            })
        }
        ReduceOp::Var { correction } => per_output(n_out, block, |o| {
            let mean = fold_block(v, &rows, o, block, 0.0, |a, it| a + sum_f64(it)) / block as f64;
            let ss = fold_block(v, &rows, o, block, 0.0, |a, it| {
                a + it.map(|x| (x.to_f64() - mean) * (x.to_f64() - mean)).sum::<f64>()
            });
            let denom = block as f64 - correction as f64;
            T::from_f64(if denom > 0.0 { ss / denom } else { f64::NAN })
        }),
    };
    Ok((out, out_shape))
}

pub(crate) fn reduce(op: ReduceOp, s: &CpuStorage, l: &Layout, axes: &[usize], keepdim: bool) -> Result<CpuStorage> {
    super::strided::check_extent("reduce", s, l)?;
    with_slice!(s, v, T => {
        let (out, _) = reduce_typed::<T>(op, v, l, axes, keepdim)?;
        Ok(T::into_cpu(out))
    })
}

pub(crate) fn arg_reduce(
    op: ArgReduceOp,
    s: &CpuStorage,
    l: &Layout,
    axis: usize,
    keepdim: bool,
) -> Result<CpuStorage> {
    let name = op.name();
    super::strided::check_extent(name, s, l)?;
    let (pl, n_out, block, _) = split_axes(name, l, &[axis], keepdim)?;
    if block == 0 {
        return Err(Error::invalid(name, format!("cannot reduce an empty dimension of {:?}", l.shape())));
    }
    let is_max = op == ArgReduceOp::ArgMax;
    let rows = Rows::new([&pl]);
    with_slice!(s, v, T => {
        let out = per_output(n_out, block, |o| {
            let mut best: Option<(T, i64)> = None;
            let mut i = 0i64;
            fold_block(v, &rows, o, block, (), |_, it| {
                for x in it {
                    best = match best {
                        None => Some((x, i)),
                        Some((b, _)) if <T as Arith>::is_nan_(b) => best,
                        Some(_) if <T as Arith>::is_nan_(x) => Some((x, i)),
                        Some((b, bi)) => Some(if (is_max && x > b) || (!is_max && x < b) { (x, i) } else { (b, bi) }),
                    };
                    i += 1;
                }
            });
            best.map(|b| b.1).unwrap_or(0)
        });
        Ok(CpuStorage::I64(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row-wise path for leading axes against a naive column loop, over sizes that take the
    /// serial and the parallel branch and end in a partial row block.
    #[test]
    fn leading_sums_match_a_column_loop() {
        for (shape, axes) in [(vec![300, 40], vec![0]), (vec![7, 300, 33], vec![0, 1]), (vec![3, 5, 16], vec![0])] {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 * 0.01 - 5.0).collect();
            let l = Layout::contiguous(&shape);
            let cols: usize = shape[axes.len()..].iter().product();
            let want: Vec<f64> = (0..cols).map(|c| v.iter().skip(c).step_by(cols).map(|&x| x as f64).sum()).collect();
            let got = leading_sums(ReduceOp::Sum, &v, &l, &axes).expect("the leading-axes path applies");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-9 * w.abs().max(1.0), "{shape:?} {axes:?}: {g} vs {w}");
            }
            let (mean, _) = reduce_typed(ReduceOp::Mean, &v, &l, &axes, false).unwrap();
            let rows = (n / cols) as f64;
            assert!(mean.iter().zip(&want).all(|(m, w)| (*m as f64 - w / rows).abs() < 1e-5));
        }
        // Not leading, strided, or too narrow: the general path.
        let l = Layout::contiguous(&[40, 300]);
        assert!(leading_sums(ReduceOp::Sum, &[0f32; 12000], &l, &[1]).is_none());
        assert!(leading_sums(ReduceOp::Sum, &[0f32; 12000], &l.transpose(0, 1).unwrap(), &[0]).is_none());
        assert!(leading_sums(ReduceOp::Max, &[0f32; 12000], &l, &[0]).is_none());
        assert!(leading_sums(ReduceOp::Sum, &[0f32; 12000], &Layout::contiguous(&[1200, 10]), &[0]).is_none());
    }
}
