//! The `Backend` contract: every primitive a device must provide.
//!
//! Every method takes its operands as `(storage, layout)` pairs, so strided views (transposes,
//! slices, broadcasts) reach the kernels without copies, and returns a new, contiguous, row-major
//! storage for its result (shape stated in each method's doc). Methods never panic on user data:
//! shape, dtype and index errors come back as [`Error`](crate::Error)s naming the op.
//!
//! Everything else (reshape, narrow, transpose, expand, stack, repeat) is a layout change or a
//! composition done by the caller.

use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, Distribution, Pool2dParams, ReduceOp, UnaryOp};
use crate::sparse_conv::SparsePattern;
use crate::{CpuStorage, DType, Device, Layout, Result};

/// A compute device's implementation of every primitive.
pub trait Backend: Send + Sync {
    /// The device buffer type.
    type Storage: Send + Sync + std::fmt::Debug;

    /// The device this backend computes on.
    fn device(&self) -> Device;

    // ----- memory -----

    /// Uploads a host buffer.
    #[allow(clippy::wrong_self_convention)]
    fn from_host(&self, data: &CpuStorage) -> Result<Self::Storage>;
    /// Downloads the elements of a view, contiguous and row-major.
    fn to_host(&self, s: &Self::Storage, l: &Layout) -> Result<CpuStorage>;
    /// A buffer of `n` elements all equal to `value` (converted with `as` semantics).
    fn full(&self, dtype: DType, n: usize, value: f64) -> Result<Self::Storage>;
    /// The dtype of a buffer.
    fn dtype(&self, s: &Self::Storage) -> DType;
    /// Copies a view into a new contiguous buffer.
    fn contiguous(&self, s: &Self::Storage, l: &Layout) -> Result<Self::Storage>;
    /// Converts a view to another dtype (`as` semantics: float to int truncates and saturates).
    fn cast(&self, s: &Self::Storage, l: &Layout, dtype: DType) -> Result<Self::Storage>;

    // ----- elementwise -----

    /// `op(x)` elementwise; result has `l`'s shape.
    fn unary(&self, op: UnaryOp, s: &Self::Storage, l: &Layout) -> Result<Self::Storage>;
    /// `op(a, b)` elementwise; both layouts must already have the same (broadcast) shape.
    fn binary(
        &self,
        op: BinaryOp,
        a: &Self::Storage,
        la: &Layout,
        b: &Self::Storage,
        lb: &Layout,
    ) -> Result<Self::Storage>;
    /// `op(a, scalar)`, or `op(scalar, a)` when `scalar_first`.
    fn binary_scalar(
        &self,
        op: BinaryOp,
        a: &Self::Storage,
        la: &Layout,
        scalar: f64,
        scalar_first: bool,
    ) -> Result<Self::Storage>;
    /// Elementwise comparison to a `u8` 0/1 mask; layouts have the same shape.
    fn compare(
        &self,
        op: CmpOp,
        a: &Self::Storage,
        la: &Layout,
        b: &Self::Storage,
        lb: &Layout,
    ) -> Result<Self::Storage>;
    /// Elementwise comparison with a scalar to a `u8` mask.
    fn compare_scalar(&self, op: CmpOp, a: &Self::Storage, la: &Layout, scalar: f64) -> Result<Self::Storage>;
    /// `cond ? a : b` elementwise; `cond` is `u8` (nonzero is true); all three layouts share a shape.
    fn where_cond(
        &self,
        cond: &Self::Storage,
        lc: &Layout,
        a: &Self::Storage,
        la: &Layout,
        b: &Self::Storage,
        lb: &Layout,
    ) -> Result<Self::Storage>;

    // ----- reductions -----

    /// Reduces over `axes` (sorted, distinct); the reduced dims are kept with size 1 when
    /// `keepdim`, removed otherwise. An empty `axes` reduces nothing (a copy).
    fn reduce(
        &self,
        op: ReduceOp,
        s: &Self::Storage,
        l: &Layout,
        axes: &[usize],
        keepdim: bool,
    ) -> Result<Self::Storage>;
    /// Index (`i64`) of the max/min along `axis`, lowest index on ties.
    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        s: &Self::Storage,
        l: &Layout,
        axis: usize,
        keepdim: bool,
    ) -> Result<Self::Storage>;
    /// Softmax (or log-softmax) along `axis`, numerically stable; same shape as the input.
    fn softmax(&self, s: &Self::Storage, l: &Layout, axis: usize, log: bool) -> Result<Self::Storage>;
    /// The input gradient of [`Backend::softmax`] along `axis` from its output `y` and the
    /// output gradient `g` (same shape): `y·(g − Σ g·y)` for softmax, `g − e^y·Σ g` for
    /// log-softmax (`y` the log-probabilities), the sums along `axis`. The result is contiguous
    /// with `y`'s shape. Backends without a fused kernel inherit
    /// [`crate::softmax_grad::softmax_backward_composite`].
    #[allow(clippy::too_many_arguments)]
    fn softmax_backward(
        &self,
        y: &Self::Storage,
        ly: &Layout,
        g: &Self::Storage,
        lg: &Layout,
        axis: usize,
        log: bool,
    ) -> Result<Self::Storage> {
        crate::softmax_grad::softmax_backward_composite(self, y, ly, g, lg, axis, log)
    }

    // ----- per-channel (batch norm) -----
    //
    // `x` is viewed as `[N, C, S]` (dim 1 is the channel, later dims flattened); per-channel
    // vectors are contiguous `[C]` buffers of `x`'s dtype (floats only). Backends without a
    // fused kernel inherit the composites of [`crate::channel`].

    /// Mean and biased variance of each channel over its `N·S` elements: two `[C]` buffers.
    fn channel_stats(&self, x: &Self::Storage, l: &Layout) -> Result<(Self::Storage, Self::Storage)> {
        crate::channel::stats_composite(self, x, l)
    }
    /// `Σ g` and `Σ g·(x − mean[c])` per channel (`g` and `x` have the same shape): the
    /// reductions of the batch-norm backward pass. Two `[C]` buffers.
    fn channel_sums(
        &self,
        g: &Self::Storage,
        lg: &Layout,
        x: &Self::Storage,
        lx: &Layout,
        mean: &Self::Storage,
    ) -> Result<(Self::Storage, Self::Storage)> {
        crate::channel::sums_composite(self, g, lg, x, lx, mean)
    }
    /// `x·scale[c] + shift[c]`, plus `y·y_scale[c]` when `extra = (y, y's layout, y_scale)` is
    /// given (`y` has `x`'s shape); the result has `x`'s shape. Batch norm's forward is the
    /// first form, its input gradient the second.
    fn channel_fma(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        scale: &Self::Storage,
        shift: &Self::Storage,
        extra: Option<(&Self::Storage, &Layout, &Self::Storage)>,
    ) -> Result<Self::Storage> {
        crate::channel::fma_composite(self, x, lx, scale, shift, extra)
    }
    /// `relu(x·scale[c] + shift[c])`, or `relu(x·scale[c] + shift[c] + r)` with a `residual`
    /// `r` of `x`'s shape (`NaN` stays `NaN`, as [`UnaryOp::Relu`]): batch norm followed by
    /// ReLU, or by a residual add and ReLU, in one pass; the result has `x`'s shape.
    fn channel_fma_relu(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        scale: &Self::Storage,
        shift: &Self::Storage,
        residual: Option<(&Self::Storage, &Layout)>,
    ) -> Result<Self::Storage> {
        crate::channel::fma_relu_composite(self, x, lx, scale, shift, residual)
    }
    /// [`Backend::channel_sums`] of the gradient gated by ReLU's mask, recomputed from the
    /// input of a [`Backend::channel_fma_relu`] without residual: with
    /// `ĝ = g` where `x·gate.0[c] + gate.1[c] > 0` and `0` elsewhere, `Σ ĝ` and
    /// `Σ ĝ·(x − mean[c])` per channel. The mask is the forward pass's to the bit (the same
    /// products and sums), so the saved output need not be read.
    #[allow(clippy::too_many_arguments)]
    fn channel_sums_gated(
        &self,
        g: &Self::Storage,
        lg: &Layout,
        x: &Self::Storage,
        lx: &Layout,
        mean: &Self::Storage,
        gate: (&Self::Storage, &Self::Storage),
    ) -> Result<(Self::Storage, Self::Storage)> {
        crate::channel::sums_gated_composite(self, g, lg, x, lx, mean, gate)
    }
    /// [`Backend::channel_fma`] with its second term gated as in
    /// [`Backend::channel_sums_gated`]: `x·scale[c] + shift[c] + ĝ·g_scale[c]` where
    /// `term = (g, g's layout, g_scale)` (batch norm + ReLU's input gradient in one pass).
    #[allow(clippy::too_many_arguments)]
    fn channel_fma_gated(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        scale: &Self::Storage,
        shift: &Self::Storage,
        term: (&Self::Storage, &Layout, &Self::Storage),
        gate: (&Self::Storage, &Self::Storage),
    ) -> Result<Self::Storage> {
        crate::channel::fma_gated_composite(self, x, lx, scale, shift, term, gate)
    }

    // ----- per-row (layer norm) -----
    //
    // `x` is viewed as `[R, D]` rows (see [`crate::row_norm`]); `[R]` and `[D]` vectors are
    // contiguous buffers of `x`'s dtype (floats only). Backends without a fused kernel inherit
    // the composites of [`crate::row_norm`].

    /// Layer normalization of each row of `d` elements:
    /// `y = (x − mean_r)·rstd_r·weight_j + bias_j`, `rstd_r = 1/sqrt(var_r + eps)` with the
    /// biased variance. Returns `(y, mean, rstd)`: `y` contiguous with `x`'s shape, `mean` and
    /// `rstd` `[R]`. `weight` and `bias` are optional `[D]` buffers.
    fn layer_norm(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        d: usize,
        weight: Option<&Self::Storage>,
        bias: Option<&Self::Storage>,
        eps: f64,
    ) -> Result<(Self::Storage, Self::Storage, Self::Storage)> {
        crate::row_norm::layer_norm_composite(self, x, lx, d, weight, bias, eps)
    }
    /// The gradients of [`Backend::layer_norm`] from the output gradient `g` (`x`'s shape), `x`
    /// and the saved `mean` and `rstd`: `(gx, gweight, gbias)` with `x̂ = (x − mean)·rstd`,
    /// `gweight = Σ_r g·x̂`, `gbias = Σ_r g` (`[D]` each, whether or not there is a weight) and
    /// `gx = rstd·(ĝ − mean_j ĝ − x̂·mean_j(ĝ·x̂))`, `ĝ = g·weight`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(
        &self,
        g: &Self::Storage,
        lg: &Layout,
        x: &Self::Storage,
        lx: &Layout,
        d: usize,
        mean: &Self::Storage,
        rstd: &Self::Storage,
        weight: Option<&Self::Storage>,
    ) -> Result<(Self::Storage, Self::Storage, Self::Storage)> {
        crate::row_norm::layer_norm_backward_composite(self, g, lg, x, lx, d, mean, rstd, weight)
    }

    // ----- linear algebra -----

    /// Batched matrix product: `a` is `[..., M, K]`, `b` is `[..., K, N]` with identical batch
    /// dims (the caller broadcasts them); the result is `[..., M, N]`.
    fn matmul(&self, a: &Self::Storage, la: &Layout, b: &Self::Storage, lb: &Layout) -> Result<Self::Storage>;
    /// 2-D convolution: `x` `[N, C, H, W]`, `w` `[O, C/groups, kH, kW]` -> `[N, O, oH, oW]`.
    /// With `i8` operands the result is `i32` (quantized inference).
    fn conv2d(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        w: &Self::Storage,
        lw: &Layout,
        p: &Conv2dParams,
    ) -> Result<Self::Storage>;
    /// Gradient of conv2d with respect to its input: `gy` `[N, O, oH, oW]` -> `[N, C, H, W]`
    /// where `input_hw` = `(H, W)`.
    fn conv2d_backward_data(
        &self,
        gy: &Self::Storage,
        lgy: &Layout,
        w: &Self::Storage,
        lw: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Self::Storage>;
    /// Gradient of conv2d with respect to its weight: -> `[O, C/groups, kH, kW]` where
    /// `kernel_hw` = `(kH, kW)`.
    fn conv2d_backward_weight(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        gy: &Self::Storage,
        lgy: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Self::Storage>;

    // ----- sparse convolution -----
    //
    // A weight `[O, C/groups, kH, kW]` stored as its [`SparsePattern`] (host data) and a
    // contiguous `[nnz]` buffer of the stored values, in the pattern's order (see
    // [`crate::sparse_conv`]). Backends without kernels of their own inherit the composites
    // there (densify the weight, run the dense primitive).

    /// [`Backend::conv2d`] with a sparse weight: `x` `[N, C, H, W]` -> `[N, O, oH, oW]`.
    fn sparse_conv2d(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        values: &Self::Storage,
        lv: &Layout,
        pattern: &SparsePattern,
        p: &Conv2dParams,
    ) -> Result<Self::Storage> {
        crate::sparse_conv::conv2d_composite(self, x, lx, values, lv, pattern, p)
    }
    /// [`Backend::conv2d_backward_data`] with a sparse weight: `gy` `[N, O, oH, oW]` ->
    /// `[N, C, H, W]` where `input_hw` = `(H, W)`.
    #[allow(clippy::too_many_arguments)]
    fn sparse_conv2d_backward_data(
        &self,
        gy: &Self::Storage,
        lgy: &Layout,
        values: &Self::Storage,
        lv: &Layout,
        pattern: &SparsePattern,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Self::Storage> {
        crate::sparse_conv::backward_data_composite(self, gy, lgy, values, lv, pattern, p, input_hw)
    }
    /// The gradient of the stored values of a sparse convolution: `[nnz]`, the entries of
    /// [`Backend::conv2d_backward_weight`] on the pattern.
    fn sparse_conv2d_backward_weight(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        gy: &Self::Storage,
        lgy: &Layout,
        pattern: &SparsePattern,
        p: &Conv2dParams,
    ) -> Result<Self::Storage> {
        crate::sparse_conv::backward_weight_composite(self, x, lx, gy, lgy, pattern, p)
    }

    // ----- pooling -----

    /// Max pooling over NCHW: values and the `i64` flat index (`h * W + w`) of each maximum
    /// within its input plane (first maximum on ties, NaN wins).
    fn max_pool2d(&self, x: &Self::Storage, l: &Layout, p: &Pool2dParams) -> Result<(Self::Storage, Self::Storage)>;
    /// Routes `gy` to the argmax positions: result has shape `input_shape`.
    fn max_pool2d_backward(
        &self,
        gy: &Self::Storage,
        lgy: &Layout,
        indices: &Self::Storage,
        li: &Layout,
        input_shape: &[usize],
    ) -> Result<Self::Storage>;
    /// Average pooling over NCHW.
    fn avg_pool2d(&self, x: &Self::Storage, l: &Layout, p: &Pool2dParams) -> Result<Self::Storage>;
    /// Gradient of average pooling: result has shape `input_shape`.
    fn avg_pool2d_backward(
        &self,
        gy: &Self::Storage,
        lgy: &Layout,
        p: &Pool2dParams,
        input_shape: &[usize],
    ) -> Result<Self::Storage>;
    /// Adaptive average pooling to `out_hw` with PyTorch's window rule
    /// (`start = floor(i*H/oH)`, `end = ceil((i+1)*H/oH)`).
    fn adaptive_avg_pool2d(&self, x: &Self::Storage, l: &Layout, out_hw: (usize, usize)) -> Result<Self::Storage>;
    /// Gradient of adaptive average pooling: result has shape `input_shape`.
    fn adaptive_avg_pool2d_backward(
        &self,
        gy: &Self::Storage,
        lgy: &Layout,
        input_shape: &[usize],
    ) -> Result<Self::Storage>;

    // ----- indexing, sorting, joining -----

    /// `out[..., i, ...] = x[..., idx[..., i, ...], ...]` along `axis`, as `torch.gather`:
    /// `idx` (any index dtype) has the output's shape and, outside `axis`, at most `x`'s sizes.
    fn gather(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        axis: usize,
        idx: &Self::Storage,
        li: &Layout,
    ) -> Result<Self::Storage>;
    /// A copy of `base` with `src` added at the positions `idx` names along `axis`, as
    /// `torch.scatter_add` (`idx` and `src` share a shape).
    fn scatter_add(
        &self,
        base: &Self::Storage,
        lb: &Layout,
        axis: usize,
        idx: &Self::Storage,
        li: &Layout,
        src: &Self::Storage,
        ls: &Layout,
    ) -> Result<Self::Storage>;
    /// Selects entries of dimension `axis` by a 1-D index tensor.
    fn index_select(
        &self,
        x: &Self::Storage,
        lx: &Layout,
        axis: usize,
        idx: &Self::Storage,
        li: &Layout,
    ) -> Result<Self::Storage>;
    /// The `k` largest (or smallest) values along `axis`, sorted, with their `i64` indices;
    /// ties go to the lower index.
    fn topk(
        &self,
        x: &Self::Storage,
        l: &Layout,
        k: usize,
        axis: usize,
        largest: bool,
    ) -> Result<(Self::Storage, Self::Storage)>;
    /// Stable sort along `axis`: values and `i64` indices (argsort).
    fn sort(
        &self,
        x: &Self::Storage,
        l: &Layout,
        axis: usize,
        descending: bool,
    ) -> Result<(Self::Storage, Self::Storage)>;
    /// Concatenates views along `axis` (same dtype; other dims equal).
    fn concat(&self, parts: &[(&Self::Storage, &Layout)], axis: usize) -> Result<Self::Storage>;
    /// Pads every dimension with `(before, after)` elements of `value`.
    fn pad(&self, x: &Self::Storage, l: &Layout, pads: &[(usize, usize)], value: f64) -> Result<Self::Storage>;

    // ----- random -----

    /// `n` samples of `dist` from the counter-based generator: element `i` depends only on
    /// `(seed, offset + i)`, never on the thread count or device.
    fn random(&self, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<Self::Storage>;

    // ----- spectral -----

    /// Real 2-D FFT over the last two axes (unnormalized, as `torch.fft.rfft2`): input
    /// `[..., H, W]` real, output real and imaginary parts, each `[..., H, W/2 + 1]`.
    fn rfft2(&self, x: &Self::Storage, l: &Layout) -> Result<(Self::Storage, Self::Storage)>;
    /// Inverse of [`Backend::rfft2`] with `1/(HW)` scaling (as `torch.fft.irfft2` with
    /// `s = out_hw`): half spectrum `[..., H, W/2 + 1]` -> real `[..., H, W]`.
    fn irfft2(
        &self,
        re: &Self::Storage,
        lre: &Layout,
        im: &Self::Storage,
        lim: &Layout,
        out_hw: (usize, usize),
    ) -> Result<Self::Storage>;

    // ----- quantized -----

    /// 1x1 convolution with ternary weights by additions and subtractions only: `x` `i8`
    /// `[N, C, H, W]`, `w` `i8` `[O, C]` with entries in {−1, 0, 1} -> `i32` `[N, O, H, W]`.
    /// (int8 x int8 -> i32 GEMM and conv are [`Backend::matmul`] and [`Backend::conv2d`] on `i8`.)
    fn ternary_conv1x1(&self, x: &Self::Storage, lx: &Layout, w: &Self::Storage, lw: &Layout) -> Result<Self::Storage>;
}
