//! Bilinear resizing as two small matrix products, for the SR block's memory at input sizes
//! other than the training size (no new backend primitive: `R_h · Q · R_wᵀ` through `matmul`,
//! differentiable in `Q`).

use autograd::{DType, Device, Result, Tensor};

/// The `[out, in]` matrix of 1-D linear interpolation from `input` to `out` samples with
/// PyTorch's `align_corners=False` rule (`F.interpolate(mode="bilinear")` without antialiasing):
/// output `i` reads the source coordinate `max(0, (i + ½) · in / out − ½)` between its two
/// neighbours (the last one repeated at the border). Row-major.
///
/// ```
/// // [1, 2] upsampled to 4 samples: PyTorch gives [1, 1.25, 1.75, 2].
/// let m = methods::sr::interpolation_matrix(4, 2);
/// let y: Vec<f64> = m.chunks(2).map(|r| r[0] * 1.0 + r[1] * 2.0).collect();
/// assert_eq!(y, [1.0, 1.25, 1.75, 2.0]);
/// ```
pub fn interpolation_matrix(out: usize, input: usize) -> Vec<f64> {
    let mut m = vec![0.0; out * input];
    let scale = input as f64 / out as f64;
    for i in 0..out {
        let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let l1 = src - i0 as f64;
        m[i * input + i0] += 1.0 - l1;
        m[i * input + i1] += l1;
    }
    m
}

/// `[..., h, w]` resized bilinearly to `[..., out.0, out.1]` (the identity when the size is
/// already `out`).
pub fn resize_bilinear(x: &Tensor, out: (usize, usize)) -> Result<Tensor> {
    let nd = x.ndim();
    let (h, w) = (x.shape()[nd - 2], x.shape()[nd - 1]);
    if (h, w) == out {
        return Ok(x.clone());
    }
    let matrix = |rows: usize, cols: usize, dtype: DType, device: Device| -> Result<Tensor> {
        Tensor::from_vec(interpolation_matrix(rows, cols), &[rows, cols])?.to_dtype(dtype)?.to_device(device)
    };
    let rh = matrix(out.0, h, x.dtype(), x.device())?;
    let rwt = matrix(out.1, w, x.dtype(), x.device())?.t()?;
    rh.matmul(x)?.matmul(&rwt)
}
