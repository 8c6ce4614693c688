//! Integer kernels for quantized inference (placeholder until the int8 kernels land).

use super::gemm::MatRef;
use crate::{CpuStorage, Error, Layout, Result};

/// `C = A B` for i8 operands with i32 accumulation; `c` is row-major `m x n`.
pub(crate) fn gemm_i8(m: usize, k: usize, n: usize, a: MatRef<'_, i8>, b: MatRef<'_, i8>, c: &mut [i32]) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0i32;
            for p in 0..k {
                acc += a.data[a.offset + i * a.rs + p * a.cs] as i32 * b.data[b.offset + p * b.rs + j * b.cs] as i32;
            }
            c[i * n + j] = acc;
        }
    }
}

pub(crate) fn ternary_conv1x1(_x: &CpuStorage, _lx: &Layout, _w: &CpuStorage, _lw: &Layout) -> Result<CpuStorage> {
    Err(Error::Backend("ternary_conv1x1: not implemented yet".into()))
}
