//! The `Backend` contract: every primitive a device must provide, and the [`Fused`] kernels a
//! device may provide.
//!
//! Every method takes its operands as `(storage, layout)` pairs, so strided views (transposes,
//! slices, broadcasts) reach the kernels without copies, and returns a new, contiguous, row-major
//! storage for its result (shape stated in each method's doc). Methods never panic on user data:
//! shape, dtype and index errors come back as [`Error`](crate::Error)s naming the op.
//!
//! Everything else (reshape, narrow, transpose, expand, stack, repeat) is a layout change or a
//! composition done by the caller.
//!
//! # One list of ops
//!
//! The ops that take buffers and return buffers are listed once, with their signatures and
//! docs, in `core_ops!` (the contract) and `fused_ops!` (the extension). Each list hands itself
//! to a generator macro, which writes from it:
//!
//! - the trait methods (`declare_core!`, `declare_fused!`: here);
//! - the device dispatch of [`crate::Storage`] (`dispatch_ops!`: `dispatch.rs`);
//! - a backend's forwarding to its kernel functions of the same names and arguments
//!   (`forward_ops!`; CUDA's kernels take the backend first, to check their operands' views).
//!
//! An entry reads `fn name(leading args, [receiver: &$S], other args) -> result;` where `$S`
//! stands for the backend's buffer type and `[receiver]` is the buffer a `Storage` method is
//! called on (`self`). `named = expr` after the result gives the op name of device-mismatch
//! errors (the method's name otherwise); `composite = path` (fused ops) the composite that
//! the default implementation calls with the same arguments.

use crate::ops::{
    ArgReduceOp, BinaryOp, CmpOp, Conv2dParams, Distribution, Pool2dParams, ReduceOp, SparsePattern, UnaryOp,
};
use crate::{CpuStorage, DType, Device, Layout, Result};

/// Calls `$generator! { $($prefix)* ; entries }` with every buffer-to-buffer op of the
/// [`Backend`] contract, `$S` standing for the buffer type (see the module docs).
macro_rules! core_ops {
    ($generator:ident! { $($prefix:tt)* } $S:ty) => {
        $generator! { $($prefix)* ;
            // ----- memory -----

            /// Copies a view into a new contiguous buffer.
            fn contiguous([s: &$S], l: &Layout) -> $S;
            /// Converts a view to another dtype (`as` semantics: float to int truncates and
            /// saturates).
            fn cast([s: &$S], l: &Layout, dtype: DType) -> $S;

            // ----- elementwise -----

            /// `op(x)` elementwise; result has `l`'s shape.
            fn unary(op: UnaryOp, [s: &$S], l: &Layout) -> $S;
            /// `op(a, b)` elementwise; both layouts must already have the same (broadcast) shape.
            fn binary(op: BinaryOp, [a: &$S], la: &Layout, b: &$S, lb: &Layout) -> $S, named = op.name();
            /// `op(a, scalar)`, or `op(scalar, a)` when `scalar_first`.
            fn binary_scalar(op: BinaryOp, [a: &$S], la: &Layout, scalar: f64, scalar_first: bool) -> $S;
            /// Elementwise comparison to a `u8` 0/1 mask; layouts have the same shape.
            fn compare(op: CmpOp, [a: &$S], la: &Layout, b: &$S, lb: &Layout) -> $S;
            /// Elementwise comparison with a scalar to a `u8` mask.
            fn compare_scalar(op: CmpOp, [a: &$S], la: &Layout, scalar: f64) -> $S;
            /// `cond ? a : b` elementwise; `cond` is `u8` (nonzero is true); all three layouts
            /// share a shape.
            fn where_cond([cond: &$S], lc: &Layout, a: &$S, la: &Layout, b: &$S, lb: &Layout) -> $S, named = "where";

            // ----- reductions -----

            /// Reduces over `axes` (sorted, distinct); the reduced dims are kept with size 1
            /// when `keepdim`, removed otherwise. An empty `axes` reduces nothing (a copy).
            fn reduce(op: ReduceOp, [s: &$S], l: &Layout, axes: &[usize], keepdim: bool) -> $S;
            /// Index (`i64`) of the max/min along `axis`, lowest index on ties.
            fn arg_reduce(op: ArgReduceOp, [s: &$S], l: &Layout, axis: usize, keepdim: bool) -> $S;
            /// Softmax (or log-softmax) along `axis`, numerically stable; same shape as the
            /// input.
            fn softmax([s: &$S], l: &Layout, axis: usize, log: bool) -> $S;

            // ----- linear algebra -----

            /// Batched matrix product: `a` is `[..., M, K]`, `b` is `[..., K, N]` with identical
            /// batch dims (the caller broadcasts them); the result is `[..., M, N]`.
            fn matmul([a: &$S], la: &Layout, b: &$S, lb: &Layout) -> $S;
            /// 2-D convolution: `x` `[N, C, H, W]`, `w` `[O, C/groups, kH, kW]` ->
            /// `[N, O, oH, oW]`. With `i8` operands the result is `i32` (quantized inference).
            fn conv2d([x: &$S], lx: &Layout, w: &$S, lw: &Layout, p: &Conv2dParams) -> $S;
            /// Gradient of conv2d with respect to its input: `gy` `[N, O, oH, oW]` ->
            /// `[N, C, H, W]` where `input_hw` = `(H, W)`.
            fn conv2d_backward_data(
                [gy: &$S],
                lgy: &Layout,
                w: &$S,
                lw: &Layout,
                p: &Conv2dParams,
                input_hw: (usize, usize)
            ) -> $S;
            /// Gradient of conv2d with respect to its weight: -> `[O, C/groups, kH, kW]` where
            /// `kernel_hw` = `(kH, kW)`.
            fn conv2d_backward_weight(
                [x: &$S],
                lx: &Layout,
                gy: &$S,
                lgy: &Layout,
                p: &Conv2dParams,
                kernel_hw: (usize, usize)
            ) -> $S;

            // ----- pooling -----

            /// Max pooling over NCHW: values and the `i64` flat index (`h * W + w`) of each
            /// maximum within its input plane (first maximum on ties, NaN wins).
            fn max_pool2d([x: &$S], l: &Layout, p: &Pool2dParams) -> ($S, $S);
            /// Routes `gy` to the argmax positions: result has shape `input_shape`.
            fn max_pool2d_backward([gy: &$S], lgy: &Layout, indices: &$S, li: &Layout, input_shape: &[usize]) -> $S;
            /// Average pooling over NCHW.
            fn avg_pool2d([x: &$S], l: &Layout, p: &Pool2dParams) -> $S;
            /// Gradient of average pooling: result has shape `input_shape`.
            fn avg_pool2d_backward([gy: &$S], lgy: &Layout, p: &Pool2dParams, input_shape: &[usize]) -> $S;
            /// Adaptive average pooling to `out_hw` with PyTorch's window rule
            /// (`start = floor(i*H/oH)`, `end = ceil((i+1)*H/oH)`).
            fn adaptive_avg_pool2d([x: &$S], l: &Layout, out_hw: (usize, usize)) -> $S;
            /// Gradient of adaptive average pooling: result has shape `input_shape`.
            fn adaptive_avg_pool2d_backward([gy: &$S], lgy: &Layout, input_shape: &[usize]) -> $S;

            // ----- indexing, sorting, joining -----

            /// `out[..., i, ...] = x[..., idx[..., i, ...], ...]` along `axis`, as
            /// `torch.gather`: `idx` (any index dtype) has the output's shape and, outside
            /// `axis`, at most `x`'s sizes.
            fn gather([x: &$S], lx: &Layout, axis: usize, idx: &$S, li: &Layout) -> $S;
            /// A copy of `base` with `src` added at the positions `idx` names along `axis`, as
            /// `torch.scatter_add` (`idx` and `src` share a shape).
            fn scatter_add(
                [base: &$S],
                lb: &Layout,
                axis: usize,
                idx: &$S,
                li: &Layout,
                src: &$S,
                ls: &Layout
            ) -> $S;
            /// Selects entries of dimension `axis` by a 1-D index tensor.
            fn index_select([x: &$S], lx: &Layout, axis: usize, idx: &$S, li: &Layout) -> $S;
            /// The `k` largest (or smallest) values along `axis`, sorted, with their `i64`
            /// indices; ties go to the lower index.
            fn topk([x: &$S], l: &Layout, k: usize, axis: usize, largest: bool) -> ($S, $S);
            /// Stable sort along `axis`: values and `i64` indices (argsort).
            fn sort([x: &$S], l: &Layout, axis: usize, descending: bool) -> ($S, $S);
            /// Pads every dimension with `(before, after)` elements of `value`.
            fn pad([x: &$S], l: &Layout, pads: &[(usize, usize)], value: f64) -> $S;

            // ----- spectral -----

            /// Real 2-D FFT over the last two axes (unnormalized, as `torch.fft.rfft2`): input
            /// `[..., H, W]` real, output real and imaginary parts, each `[..., H, W/2 + 1]`.
            fn rfft2([x: &$S], l: &Layout) -> ($S, $S);
            /// Inverse of [`Backend::rfft2`] with `1/(HW)` scaling (as `torch.fft.irfft2` with
            /// `s = out_hw`): half spectrum `[..., H, W/2 + 1]` -> real `[..., H, W]`.
            fn irfft2([re: &$S], lre: &Layout, im: &$S, lim: &Layout, out_hw: (usize, usize)) -> $S;

            // ----- quantized -----

            /// 1x1 convolution with ternary weights by additions and subtractions only: `x`
            /// `i8` `[N, C, H, W]`, `w` `i8` `[O, C]` with entries in {−1, 0, 1} -> `i32`
            /// `[N, O, H, W]`. (int8 x int8 -> i32 GEMM and conv are [`Backend::matmul`] and
            /// [`Backend::conv2d`] on `i8`.)
            fn ternary_conv1x1([x: &$S], lx: &Layout, w: &$S, lw: &Layout) -> $S;
        }
    };
}
pub(crate) use core_ops;

/// Calls `$generator! { $($prefix)* ; entries }` with every op of the [`Fused`] extension,
/// each with the composite its default calls (see the module docs).
macro_rules! fused_ops {
    ($generator:ident! { $($prefix:tt)* } $S:ty) => {
        $generator! { $($prefix)* ;
            /// The input gradient of [`Backend::softmax`] along `axis` from its output `y` and
            /// the output gradient `g` (same shape): `y·(g − Σ g·y)` for softmax,
            /// `g − e^y·Σ g` for log-softmax (`y` the log-probabilities), the sums along
            /// `axis`. The result is contiguous with `y`'s shape.
            fn softmax_backward([y: &$S], ly: &Layout, g: &$S, lg: &Layout, axis: usize, log: bool) -> $S,
                composite = crate::softmax_grad::softmax_backward_composite;

            /// Multi-head self-attention on a packed `qkv` `[B, N, 3C]` (features laid out as
            /// `[3, heads, C / heads]`: queries, keys, values): per head the probabilities
            /// `p = softmax((q kᵀ) · scale)` and the output `p v`, the heads merged. Returns
            /// `(y, p)`: `y` contiguous `[B, N, C]`, `p` contiguous `[B, heads, N, N]` (what
            /// [`Fused::packed_attention_backward`] takes).
            fn packed_attention([qkv: &$S], lqkv: &Layout, heads: usize, scale: f64) -> ($S, $S),
                composite = crate::packed_attention::packed_attention_composite;
            /// The gradient of multi-head self-attention on a packed `qkv` `[B, N, 3C]` (features
            /// laid out as `[3, heads, C / heads]`: queries, keys, values) from the saved
            /// probabilities `p = softmax(q kᵀ · scale)` `[B, heads, N, N]` and the gradient `g`
            /// `[B, N, C]` of the heads' merged output `p v`: `gv = pᵀ go`,
            /// `gs = p ⊙ (go vᵀ − rowsum(go vᵀ ⊙ p)) · scale`, `gq = gs k`, `gk = gsᵀ q` per
            /// head, returned as one contiguous `[B, N, 3C]` buffer in `qkv`'s layout.
            #[allow(clippy::too_many_arguments)]
            fn packed_attention_backward(
                [qkv: &$S],
                lqkv: &Layout,
                p: &$S,
                lp: &Layout,
                g: &$S,
                lg: &Layout,
                heads: usize,
                scale: f64
            ) -> $S, composite = crate::packed_attention::packed_attention_backward_composite;

            // ----- linear layers -----

            /// `a b + bias`: the product of 2-D `a` `[M, K]` and `b` `[K, N]` (any views, as
            /// [`Backend::matmul`]) with the `[N]` `bias` (any view) added to every row: a linear
            /// layer's forward `x Wᵀ + b`, the bias added as the product's output is formed
            /// rather than in a pass of its own. The result is contiguous `[M, N]`.
            fn matmul_bias([a: &$S], la: &Layout, b: &$S, lb: &Layout, bias: &$S, lbias: &Layout) -> $S,
                composite = crate::matmul_bias::matmul_bias_composite;

            // ----- per-channel (batch norm) -----
            //
            // `x` is viewed as `[N, C, S]` (dim 1 is the channel, later dims flattened);
            // per-channel vectors are contiguous `[C]` buffers of `x`'s dtype (floats only).
            // The composites are those of [`crate::channel`].

            /// Mean and biased variance of each channel over its `N·S` elements: two `[C]`
            /// buffers.
            fn channel_stats([x: &$S], l: &Layout) -> ($S, $S), composite = crate::channel::stats_composite;
            /// `Σ g` and `Σ g·(x − mean[c])` per channel (`g` and `x` have the same shape): the
            /// reductions of the batch-norm backward pass. Two `[C]` buffers.
            fn channel_sums([g: &$S], lg: &Layout, x: &$S, lx: &Layout, mean: &$S) -> ($S, $S),
                composite = crate::channel::sums_composite;
            /// `x·scale[c] + shift[c]`, plus `y·y_scale[c]` when `extra = (y, y's layout,
            /// y_scale)` is given (`y` has `x`'s shape); the result has `x`'s shape. Batch
            /// norm's forward is the first form, its input gradient the second.
            fn channel_fma(
                [x: &$S],
                lx: &Layout,
                scale: &$S,
                shift: &$S,
                extra: Option<(&$S, &Layout, &$S)>
            ) -> $S, composite = crate::channel::fma_composite;
            /// `relu(x·scale[c] + shift[c])`, or `relu(x·scale[c] + shift[c] + r)` with a
            /// `residual` `r` of `x`'s shape, then `min(·, 6)` when `relu6` (`NaN` stays `NaN`,
            /// as [`UnaryOp::Relu`] and [`UnaryOp::Relu6`]): batch norm followed by ReLU or
            /// ReLU6, or by a residual add and ReLU, in one pass; the result has `x`'s shape.
            fn channel_fma_relu(
                [x: &$S],
                lx: &Layout,
                scale: &$S,
                shift: &$S,
                residual: Option<(&$S, &Layout)>,
                relu6: bool
            ) -> $S, composite = crate::channel::fma_relu_composite;
            /// [`Fused::channel_sums`] of the gradient gated by the activation's mask,
            /// recomputed from the input of a [`Fused::channel_fma_relu`] without residual: with
            /// `p = x·gate.0[c] + gate.1[c]` and `ĝ = g` where `p > 0` (and `p < 6` when
            /// `relu6`) and `0` elsewhere, `Σ ĝ` and `Σ ĝ·(x − mean[c])` per channel.
            /// The mask is the forward pass's to the bit (the same products and sums), so the
            /// saved output need not be read.
            #[allow(clippy::too_many_arguments)]
            fn channel_sums_gated(
                [g: &$S],
                lg: &Layout,
                x: &$S,
                lx: &Layout,
                mean: &$S,
                gate: (&$S, &$S),
                relu6: bool
            ) -> ($S, $S), composite = crate::channel::sums_gated_composite;
            /// [`Fused::channel_fma`] with its second term gated as in
            /// [`Fused::channel_sums_gated`]: `x·scale[c] + shift[c] + ĝ·g_scale[c]` where
            /// `term = (g, g's layout, g_scale)` (batch norm + ReLU's or ReLU6's input gradient
            /// in one pass).
            #[allow(clippy::too_many_arguments)]
            fn channel_fma_gated(
                [x: &$S],
                lx: &Layout,
                scale: &$S,
                shift: &$S,
                term: (&$S, &Layout, &$S),
                gate: (&$S, &$S),
                relu6: bool
            ) -> $S, composite = crate::channel::fma_gated_composite;

            // ----- per-row (layer norm) -----
            //
            // `x` is viewed as `[R, D]` rows (see [`crate::row_norm`]); `[R]` and `[D]` vectors
            // are contiguous buffers of `x`'s dtype (floats only). The composites are those of
            // [`crate::row_norm`].

            /// Layer normalization of each row of `d` elements:
            /// `y = (x − mean_r)·rstd_r·weight_j + bias_j`, `rstd_r = 1/sqrt(var_r + eps)` with
            /// the biased variance. Returns `(y, mean, rstd)`: `y` contiguous with `x`'s shape,
            /// `mean` and `rstd` `[R]`. `weight` and `bias` are optional `[D]` buffers.
            #[allow(clippy::too_many_arguments)]
            fn layer_norm(
                [x: &$S],
                lx: &Layout,
                d: usize,
                weight: Option<&$S>,
                bias: Option<&$S>,
                eps: f64
            ) -> ($S, $S, $S), composite = crate::row_norm::layer_norm_composite;
            /// The gradients of [`Fused::layer_norm`] from the output gradient `g` (`x`'s
            /// shape), `x` and the saved `mean` and `rstd`: `(gx, gweight, gbias)` with
            /// `x̂ = (x − mean)·rstd`, `gweight = Σ_r g·x̂`, `gbias = Σ_r g` (`[D]` each, whether
            /// or not there is a weight) and `gx = rstd·(ĝ − mean_j ĝ − x̂·mean_j(ĝ·x̂))`,
            /// `ĝ = g·weight`.
            #[allow(clippy::too_many_arguments)]
            fn layer_norm_backward(
                [g: &$S],
                lg: &Layout,
                x: &$S,
                lx: &Layout,
                d: usize,
                mean: &$S,
                rstd: &$S,
                weight: Option<&$S>
            ) -> ($S, $S, $S), composite = crate::row_norm::layer_norm_backward_composite;

            // ----- sparse convolution -----
            //
            // A weight `[O, C/groups, kH, kW]` held as its [`SparsePattern`] (host data) and a
            // `[nnz]` buffer of the stored values in the pattern's order (floats only). The
            // composites are those of [`crate::sparse_conv`]: densify the weight, run the dense
            // primitive.

            /// [`Backend::conv2d`] with a sparse weight: `x` `[N, C, H, W]` ->
            /// `[N, O, oH, oW]`.
            fn sparse_conv2d(
                [x: &$S],
                lx: &Layout,
                values: &$S,
                lv: &Layout,
                pattern: &SparsePattern,
                p: &Conv2dParams
            ) -> $S, composite = crate::sparse_conv::conv2d_composite;
            /// [`Backend::conv2d_backward_data`] with a sparse weight: `gy` `[N, O, oH, oW]` ->
            /// `[N, C, H, W]` where `input_hw` = `(H, W)`.
            #[allow(clippy::too_many_arguments)]
            fn sparse_conv2d_backward_data(
                [gy: &$S],
                lgy: &Layout,
                values: &$S,
                lv: &Layout,
                pattern: &SparsePattern,
                p: &Conv2dParams,
                input_hw: (usize, usize)
            ) -> $S, composite = crate::sparse_conv::backward_data_composite;
            /// The gradient of the stored values of a [`Fused::sparse_conv2d`]: `[nnz]`, the
            /// entries of [`Backend::conv2d_backward_weight`] on the pattern.
            fn sparse_conv2d_backward_weight(
                [x: &$S],
                lx: &Layout,
                gy: &$S,
                lgy: &Layout,
                pattern: &SparsePattern,
                p: &Conv2dParams
            ) -> $S, composite = crate::sparse_conv::backward_weight_composite;

            // ----- quantized inference -----
            //
            // The element-wise ends of an integer layer (see [`crate::quantize`], whose
            // composites these are): its float input made into 8-bit codes, its `i32`
            // accumulators made into floats.

            /// The 8-bit codes of a float `x` (f32 or f64): `round(clamp(x·mul / div, lo, hi))
            /// − zero` as `i8` (contiguous, `x`'s shape), with `(lo, hi) = range`; the product
            /// and the quotient each rounded in `x`'s dtype as the separate ops would (the
            /// product skipped when `mul` is 1, where it is exact), the rounding half to even.
            /// `mul` and `div` finite and nonzero, `lo − zero` and `hi − zero` in `i8`'s range;
            /// a NaN gives the code 0, ±∞ the ends of the range.
            fn quantize_i8([x: &$S], lx: &Layout, mul: f64, div: f64, range: (f64, f64), zero: i32) -> $S,
                composite = crate::quantize::quantize_i8_composite;
            /// Integer accumulators `acc` (`i32`, `[N, C, ...]`, dim 1 the channel) as floats:
            /// `(acc + terms)·scale[c] + shift[c]` in f32 (contiguous, `acc`'s shape), where
            /// `terms` (`i32`, contiguous, the `C·S` elements of one image) is added to every
            /// image exactly in integers before the conversion, and `scale`, `shift` are
            /// contiguous f32 `[C]` buffers; then clamped to `clamp = (lo, hi)` when given (an
            /// activation such as ReLU6 folded in; NaN stays NaN, as [`UnaryOp::Clamp`]).
            fn requantize(
                [acc: &$S],
                lacc: &Layout,
                terms: Option<&$S>,
                scale: &$S,
                shift: &$S,
                clamp: Option<(f64, f64)>
            ) -> $S,
                composite = crate::quantize::requantize_composite;
            /// LSQ's fake quantization (quantization-aware training): `round(clamp(x / s, lo,
            /// hi)) · s` in `x`'s dtype (f32 or f64), each operation rounded as the separate ops
            /// would, the rounding half to even; `step` is a one-element buffer of `x`'s dtype
            /// holding `s`, and `(lo, hi) = range`. The result is contiguous with `x`'s shape.
            fn lsq_quantize([x: &$S], lx: &Layout, step: &$S, range: (f64, f64)) -> $S,
                composite = crate::quantize::lsq_quantize_composite;
            /// The straight-through gradients of [`Fused::lsq_quantize`] from the output
            /// gradient `g` (`x`'s shape): `gx = g` where `lo ≤ x/s ≤ hi` and 0 elsewhere
            /// (contiguous, `x`'s shape), and the one-element step gradient
            /// `Σ g · (round(x/s) − x/s inside, lo below, hi above)`. A NaN `x/s` passes no `gx`
            /// and makes the step gradient NaN.
            fn lsq_quantize_backward(
                [g: &$S],
                lg: &Layout,
                x: &$S,
                lx: &Layout,
                step: &$S,
                range: (f64, f64)
            ) -> ($S, $S), composite = crate::quantize::lsq_quantize_backward_composite;
        }
    };
}
pub(crate) use fused_ops;

/// The trait method declarations of a [`core_ops!`] list.
macro_rules! declare_core {
    (; $(
        $(#[$m:meta])*
        fn $name:ident($($lead:ident: $lty:ty,)* [$recv:ident: $rty:ty] $(, $arg:ident: $aty:ty)* $(,)?) -> $ret:ty
        $(, $key:ident = $val:expr)*;
    )*) => {
        $(
            $(#[$m])*
            #[allow(clippy::too_many_arguments)]
            fn $name(&self, $($lead: $lty,)* $recv: $rty $(, $arg: $aty)*) -> Result<$ret>;
        )*
    };
}

/// The trait methods of a [`fused_ops!`] list, each defaulting to its composite.
macro_rules! declare_fused {
    (; $(
        $(#[$m:meta])*
        fn $name:ident($($lead:ident: $lty:ty,)* [$recv:ident: $rty:ty] $(, $arg:ident: $aty:ty)* $(,)?) -> $ret:ty,
        composite = $composite:path;
    )*) => {
        $(
            $(#[$m])*
            #[allow(clippy::too_many_arguments)]
            fn $name(&self, $($lead: $lty,)* $recv: $rty $(, $arg: $aty)*) -> Result<$ret> {
                $composite(self, $($lead,)* $recv $(, $arg)*)
            }
        )*
    };
}

/// A backend's implementations of the listed ops: each calls the function of the same name in
/// scope where the macro is invoked, with the same arguments, preceded by the backend (`self`)
/// under `with_backend` (the CUDA kernels take it to check their operands' views) and not under
/// `plain` (the CPU kernels).
macro_rules! forward_ops {
    ($mode:ident; $(
        $(#[$m:meta])*
        fn $name:ident($($lead:ident: $lty:ty,)* [$recv:ident: $rty:ty] $(, $arg:ident: $aty:ty)* $(,)?) -> $ret:ty
        $(, $key:ident = $val:expr)*;
    )*) => {
        $(
            #[allow(clippy::too_many_arguments)]
            fn $name(&self, $($lead: $lty,)* $recv: $rty $(, $arg: $aty)*) -> Result<$ret> {
                forward_ops!(@call $mode self $name($($lead,)* $recv $(, $arg)*))
            }
        )*
    };
    (@call plain $this:ident $name:ident($($a:expr),*)) => { $name($($a),*) };
    (@call with_backend $this:ident $name:ident($($a:expr),*)) => { $name($this, $($a),*) };
}
pub(crate) use forward_ops;

/// A compute device's implementation of every primitive: the buffer-to-buffer ops (listed once
/// in `core_ops!`) and the few that create, inspect, join or download buffers.
pub trait Backend: Send + Sync {
    /// The device buffer type.
    type Storage: Send + Sync + std::fmt::Debug;

    /// The device this backend computes on.
    fn device(&self) -> Device;
    /// Uploads a host buffer.
    #[allow(clippy::wrong_self_convention)]
    fn from_host(&self, data: &CpuStorage) -> Result<Self::Storage>;
    /// Downloads the elements of a view, contiguous and row-major.
    fn to_host(&self, s: &Self::Storage, l: &Layout) -> Result<CpuStorage>;
    /// A buffer of `n` elements all equal to `value` (converted with `as` semantics).
    fn full(&self, dtype: DType, n: usize, value: f64) -> Result<Self::Storage>;
    /// The dtype of a buffer.
    fn dtype(&self, s: &Self::Storage) -> DType;
    /// Concatenates views along `axis` (same dtype; other dims equal).
    fn concat(&self, parts: &[(&Self::Storage, &Layout)], axis: usize) -> Result<Self::Storage>;
    /// `n` samples of `dist` from the counter-based generator: element `i` depends only on
    /// `(seed, offset + i)`, never on the thread count or device.
    fn random(&self, dtype: DType, n: usize, dist: Distribution, seed: u64, offset: u64) -> Result<Self::Storage>;

    core_ops!(declare_core! {} Self::Storage);
}

/// Fused kernels: ops a backend may run in one pass that the [`Backend`] contract can also
/// compose. Every method defaults to its composite (from [`crate::softmax_grad`],
/// [`crate::channel`], [`crate::row_norm`] and [`crate::sparse_conv`]), so a new backend writes
/// `impl Fused for B {}` and overrides only the kernels it fuses.
pub trait Fused: Backend {
    fused_ops!(declare_fused! {} Self::Storage);
}
