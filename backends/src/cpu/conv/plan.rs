//! The convolution planner: which algorithm computes a pass of a convolution.
//!
//! Three things decide, each in one place in this file:
//!
//! - what an algorithm *can* compute ([`Algorithm::supports`]: kernel shape, stride, padding,
//!   pass, and the instruction set and element type it needs, [`Isa`]) — correctness;
//! - where an algorithm is *worth* running ([`choose`], one table per pass read top to bottom:
//!   the first row that is supported, switched on and worth it wins) — speed, measured, for the
//!   matrix-product precision of the moment (bf16 products speed up the GEMM-based rows only);
//! - what the caller asked for: the environment switches that turn an algorithm off for the
//!   whole process (`LAMINA_NO_WINOGRAD4`, ..., see [`Algorithm::switch`]), and
//!   [`with_algorithm`], which forces one algorithm for the convolutions a closure starts
//!   (tests and benchmarks).
//!
//! Every row ends in an algorithm that supports every case (`im2col`), so [`choose`] always
//! finds one.

use crate::cpu::isa::{cpu_kind, CpuKind};
use crate::ops::ConvPass;
use crate::planning::conv::Geom;
use crate::{DType, Error, Result};
use std::cell::Cell;
use std::sync::OnceLock;

/// A CPU convolution algorithm. The names ([`Algorithm::name`]) are what the profiler shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Winograd F(4x4, 3x3) with tiles across the AVX-512 lanes (`winograd4`): 3x3 stride 1,
    /// f32, all passes.
    WinogradF4,
    /// Winograd F(2x2, 3x3) with tiles across the AVX-512 lanes (`winograd_lanes`): 3x3
    /// stride 1, f32, all passes.
    WinogradF2,
    /// Direct 3x3 stride-1 kernel with register tiles of output channels x rows (`direct3x3`):
    /// f32 under AVX-512, all passes.
    Direct3x3,
    /// Direct 3x3 stride-2 kernel over deinterleaved tap planes (`stride2_3x3`): f32 under
    /// AVX-512, forward and weight gradient.
    Direct3x3Stride2,
    /// Depthwise 3x3 kernel with masked row loads (`depthwise3x3`): stride 1 or 2, f32 under
    /// AVX-512, all passes.
    Depthwise3x3,
    /// Winograd F(2x2, 3x3) as 16 GEMMs (`winograd`): 3x3 stride 1, f32 and f64, all passes.
    WinogradGemm,
    /// Depthwise plane loops (`depthwise`): any depthwise kernel, f32 and f64, all passes; i8
    /// -> i32 forward.
    Depthwise,
    /// im2col + GEMM (`im2col`; 1x1 stride-1 kernels skip the unfold): every case, including
    /// i8 -> i32 forward.
    Im2col,
}

/// The instruction set and element type a convolution's kernels run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// f32 on a CPU with AVX-512F and VL: every algorithm.
    Avx512,
    /// f64, or f32 on a CPU without AVX-512F/VL: the portable float algorithms.
    Portable,
    /// i8 operands and i32 results (quantized inference), forward only: the depthwise plane
    /// loops for depthwise convolutions, im2col + the integer GEMM for the rest.
    Int8,
}

impl Isa {
    /// What convolutions of `dtype` run in on this CPU, if it has convolutions at all.
    pub fn of(dtype: DType) -> Option<Isa> {
        match dtype {
            DType::F32 if crate::cpu::isa::use_avx512_vl() => Some(Isa::Avx512),
            DType::F32 | DType::F64 => Some(Isa::Portable),
            DType::I8 => Some(Isa::Int8),
            _ => None,
        }
    }

    fn is_float(self) -> bool {
        self != Isa::Int8
    }
}

impl Algorithm {
    /// Every algorithm, in the order the tables of [`choose`] try them.
    pub const ALL: [Algorithm; 8] = [
        Algorithm::WinogradF4,
        Algorithm::WinogradF2,
        Algorithm::Direct3x3,
        Algorithm::Direct3x3Stride2,
        Algorithm::Depthwise3x3,
        Algorithm::WinogradGemm,
        Algorithm::Depthwise,
        Algorithm::Im2col,
    ];

    /// The short name the profiler and benchmarks show (`winograd4`, `im2col`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::WinogradF4 => "winograd4",
            Algorithm::WinogradF2 => "winograd_lanes",
            Algorithm::Direct3x3 => "direct3x3",
            Algorithm::Direct3x3Stride2 => "stride2_3x3",
            Algorithm::Depthwise3x3 => "depthwise3x3",
            Algorithm::WinogradGemm => "winograd",
            Algorithm::Depthwise => "depthwise",
            Algorithm::Im2col => "im2col",
        }
    }

    /// The algorithm named `name` (as [`Algorithm::name`] spells it).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The environment variable that, when set (read once per process), keeps [`choose`] from
    /// picking this algorithm, so benchmarks can compare the paths in one build. `depthwise`
    /// and `im2col` have none: they are the fallbacks.
    pub fn switch(self) -> Option<&'static str> {
        match self {
            Algorithm::WinogradF4 => Some("LAMINA_NO_WINOGRAD4"),
            Algorithm::WinogradF2 => Some("LAMINA_NO_WINOGRAD_LANES"),
            Algorithm::Direct3x3 => Some("LAMINA_NO_DIRECT3X3"),
            Algorithm::Direct3x3Stride2 => Some("LAMINA_NO_STRIDE2_3X3"),
            Algorithm::Depthwise3x3 => Some("LAMINA_NO_DEPTHWISE3X3"),
            Algorithm::WinogradGemm => Some("LAMINA_NO_WINOGRAD"),
            Algorithm::Depthwise | Algorithm::Im2col => None,
        }
    }

    /// Whether the environment leaves this algorithm on (see [`Algorithm::switch`]).
    fn switched_on(self) -> bool {
        static OFF: OnceLock<[bool; 8]> = OnceLock::new();
        let off = OFF.get_or_init(|| Algorithm::ALL.map(|a| a.switch().is_some_and(|v| std::env::var_os(v).is_some())));
        !off[Algorithm::ALL.iter().position(|&a| a == self).expect("listed in ALL")]
    }

    /// Whether this algorithm computes `pass` of the convolution `g` correctly with the kernels
    /// of `isa`, whatever its speed.
    pub(crate) fn supports(self, g: &Geom, pass: ConvPass, isa: Isa) -> bool {
        // The flipped pass of an input gradient reads `dY` with padding `2 - p`.
        let flips = pass != ConvPass::BackwardData || (g.ph <= 2 && g.pw <= 2);
        let avx512 = isa == Isa::Avx512;
        match self {
            Algorithm::WinogradF4 | Algorithm::WinogradF2 | Algorithm::Direct3x3 => {
                avx512 && g.is_dense_square(3, 1) && flips
            }
            Algorithm::Direct3x3Stride2 => avx512 && g.is_dense_square(3, 2) && pass != ConvPass::BackwardData,
            Algorithm::Depthwise3x3 => {
                let shape = g.is_depthwise() && g.kh == 3 && g.kw == 3 && g.dh == 1 && g.dw == 1;
                avx512 && shape && g.sh == g.sw && g.sh <= 2 && (g.sh == 2 || flips)
            }
            Algorithm::WinogradGemm => isa.is_float() && g.is_dense_square(3, 1) && flips,
            Algorithm::Depthwise => (isa.is_float() || pass == ConvPass::Forward) && g.is_depthwise(),
            Algorithm::Im2col => true,
        }
    }
}

/// The algorithm for `pass` of the convolution `g` in `isa`: the first row of the pass's table
/// ([`rows`]) whose algorithm supports the case, is switched on, and is worth running there,
/// with the GEMMs' products in bf16 when the matrix-product precision says so.
pub(crate) fn choose(g: &Geom, pass: ConvPass, isa: Isa) -> Algorithm {
    let bf16 = isa == Isa::Avx512 && crate::cpu::matmul_precision() == crate::cpu::MatmulPrecision::Bf16;
    choose_for(g, pass, isa, bf16, cpu_kind())
}

/// [`choose`] with the GEMMs' products in bf16 (`bf16`) or f32, on a CPU of `kind`.
fn choose_for(g: &Geom, pass: ConvPass, isa: Isa, bf16: bool, kind: CpuKind) -> Algorithm {
    rows(g, pass, bf16, kind)
        .into_iter()
        .find(|&(a, worth)| worth && a.switched_on() && a.supports(g, pass, isa))
        .map_or(Algorithm::Im2col, |(a, _)| a)
}

/// The table of `pass`, top to bottom: each algorithm with whether it is worth running on `g`
/// (where it is supported), with the GEMMs' products in bf16 (`bf16`) or f32, on a CPU of
/// `kind`. The conditions are measured crossovers (see `BENCHMARKS.md`); a new algorithm goes
/// in as a row above the ones it beats, in all three tables.
fn rows(g: &Geom, pass: ConvPass, bf16: bool, kind: CpuKind) -> [(Algorithm, bool); 9] {
    use Algorithm::*;
    let (c, o) = (g.c, g.o);
    // With bf16 products im2col's GEMM runs 1.6-1.8x faster and the lane-tiled Winograd not at
    // all: at 256 channels or more on both sides and output planes of 7x7 or more im2col wins
    // every pass (2 threads, ms forward / input gradient / weight gradient, Winograd -> im2col:
    // ResNet-50's 14x14 256-channel layer 16.0 / 15.6 / 18.9 -> 14.0 / 15.8 / 12.7, its 7x7
    // 512-channel layer 25.1 / 27.3 / 21.8 -> 22.8 / 19.7 / 15.8, ResNet-18's 8x8 256-channel
    // layer 20.1 / 18.3 / 21.3 -> 16.8 / 19.3 / 14.9); on 4x4 planes (ResNet-18's 512-channel
    // layer) im2col's 16 columns per image lose to the GEMM Winograd.
    //
    // On Zen 5 the alternative at 256² is the GEMM Winograd (the full-width table below), whose
    // products run in bf16 too, and it wins there (2 threads, ms forward / input gradient /
    // weight gradient, im2col -> GEMM Winograd: ResNet-18's 8x8 256-channel layer 8.2 / 10.6 /
    // 7.9 -> 5.4 / 5.5 / 5.9, ResNet-50's 14x14 one 6.1 / 7.0 / 6.7 -> 4.1 / 4.2 / 3.9); at 512²
    // on 7x7 planes the forward ties (6.5), the input gradient stays with the GEMM Winograd
    // (8.7 -> 6.5) and the weight gradient with im2col (6.3 against 8.3). (Not measured on
    // Intel, where bf16 products are slower than f32 ones: the Zen 4 rule stays.)
    let bf16_im2col = bf16
        && g.oh * g.ow >= 49
        && match kind {
            CpuKind::Zen5 => pass == ConvPass::BackwardWeight && c >= 512 && o >= 512,
            CpuKind::Zen4 | CpuKind::Intel => c >= 256 && o >= 256,
        };
    // F(4x4) against F(2x2) on small planes: at 8x8 (2x2 tiles) F(2x2) is as fast forward and
    // faster for the weight gradient; from 12x12 on F(4x4) wins (15-25% at 12x12 to 16x16,
    // 30-40% at 32x32 and up, 64 channels or fewer).
    let planes_12 = |h: usize, w: usize| h >= 12 && w >= 12;
    // The lane-tiled Winograd streams all C·O transformed filter taps per tile vector (36 for
    // F(4x4), 16 for F(2x2)): past 128² (F(4x4)) or 256² (F(2x2), 4 MiB) channels they leave
    // the caches and the next row wins. Narrow layers (fewer than 8 channels on the side the
    // pass reads) go to the direct kernel or im2col: the transforms cost per channel what the
    // products save.
    // Where 512-bit FMAs run at full width (Intel, Zen 5) the GEMM Winograd's products run
    // twice as fast as on Zen 4 and F(2x2)'s 4 MiB of taps at 256² lose to it by 1.6-2.2x (2
    // threads, ms forward / input gradient / weight gradient, lanes -> GEMM: on Xeon model 207
    // ResNet-18's 8x8 256-channel layer 24 / 24 / 26 -> 14 / 14 / 15, ResNet-50's 14x14 one
    // 23 / 23 / 24 -> 10.5 / 13 / 10; on Zen 5 11.7 / 10.5 / 13.1 -> 7.3 / 7.4 / 7.9 and fwd
    // 12.2 -> 6.0); at 128² they tie (Intel, 16x16: 14.8 / 15.5 / 16 vs 15.3 / 18 / 17) and at
    // 64² lanes win 2x, so there F(2x2) stops at 128².
    let f2_channels = if kind.full_width_512() { 128 * 128 } else { 256 * 256 };
    // On Zen 5 the GEMM Winograd wins from 128² channels on (2 threads, ms forward / input
    // gradient / weight gradient, lanes -> GEMM): in f32 ResNet-18's 16x16 128-channel layer
    // 9.3-9.6 / 9.3-9.5 / 9.5-9.8 -> 8.3-8.4 / 8.3-8.5 / 8.4-8.5 (on 1 thread they tie: fwd+bwd
    // 49.5 against 50.0) and ResNet-50's 28x28 one 8.7-9.0 / 8.6-8.8 / 7.9-8.1 -> 6.6 / 6.4-6.6
    // / 6.2-6.3; with bf16 products, which the GEMM Winograd uses and the lanes do not, the
    // 16x16 layer 9.2-10.0 / 9.2 / 10.0-12.2 -> 6.2 / 6.2 / 6.1. At 64² the lanes win in f32
    // (ResNet-18's 32x32 layer fwd+bwd 22.1 against 32.3, ResNet-50's 56x56 one 20.1 against
    // 24.1) and on small planes in bf16 (ResNet-18's 32x32 layer 21.9-25.7 against 26.8,
    // ResNet-20's 8x8 one 2.8 against 4.9; ResNet-50's 56x56 one loses by 13%, 20.9 against
    // 18.1). The lanes stop past 64 x 128 channels there.
    let lanes_max = if kind == CpuKind::Zen5 { 64 * 128 } else { usize::MAX };
    let f4_channels = (128 * 128).min(lanes_max);
    let f2_channels = f2_channels.min(lanes_max);
    match pass {
        ConvPass::Forward => [
            (Im2col, bf16_im2col),
            (WinogradF4, planes_12(g.oh, g.ow) && c >= 8 && c * o <= f4_channels),
            (WinogradF2, c >= 8 && c * o <= f2_channels),
            // At most 32 channels on a side (where it beats the GEMM Winograd), output rows
            // at least 12 wide (most lanes hold columns): with the rows above, 3-channel stems.
            (Direct3x3, c.min(o) <= 32 && g.ow >= 12),
            // The gain over the im2col GEMM (inner dimension 9 C) shrinks with the channels:
            // 30-40% at 16-32, 10-15% at 64-128.
            (Direct3x3Stride2, c <= 128),
            (Depthwise3x3, true),
            (WinogradGemm, c >= 8 && o >= 8),
            (Depthwise, true),
            (Im2col, true),
        ],
        ConvPass::BackwardData => [
            (Im2col, bf16_im2col),
            // The flipped pass reads `o` channels of `dY` into `h x w` planes.
            (WinogradF4, planes_12(g.h, g.w) && o >= 8 && c * o <= f4_channels),
            (WinogradF2, o >= 8 && c * o <= f2_channels),
            (Direct3x3, c.min(o) <= 32 && g.ow >= 12 && g.w >= 12),
            (Direct3x3Stride2, false),
            (Depthwise3x3, true),
            (WinogradGemm, c >= 8 && o >= 8),
            (Depthwise, true),
            (Im2col, true),
        ],
        ConvPass::BackwardWeight => [
            (Im2col, bf16_im2col),
            // The accumulator of the 36 positions' products is read and written once per chunk
            // of tiles; wider layers get chunks of one tile vector.
            (WinogradF4, planes_12(g.oh, g.ow) && c >= 8 && c * o <= 64 * 64),
            (WinogradF2, c >= 8 && c * o <= f2_channels),
            (Direct3x3, c.min(o) <= 32 && g.ow >= 12),
            // Wider layers get chunks of few images, and the lane sums of the accumulators (27
            // per input channel and 3 output channels) outweigh the products.
            (Direct3x3Stride2, c <= 32),
            (Depthwise3x3, true),
            (WinogradGemm, c >= 8 && o >= 8),
            (Depthwise, true),
            (Im2col, true),
        ],
    }
}

thread_local! {
    /// The algorithm [`with_algorithm`] forces on this thread, if any.
    static FORCED: Cell<Option<Algorithm>> = const { Cell::new(None) };
}

/// Runs `f` with every convolution it starts on the calling thread computed by `algorithm`
/// instead of the planner's choice (nested calls: the innermost wins; the previous setting is
/// restored after `f`, also when it panics). A convolution that `algorithm` cannot compute is
/// an error naming the algorithm, rather than silently another algorithm. For tests and
/// benchmarks.
///
/// ```
/// use backends::cpu::conv::{with_algorithm, Algorithm};
/// use backends::ops::Conv2dParams;
/// use backends::{Backend, CpuBackend, CpuStorage, Layout};
/// let (x, lx) = (CpuStorage::from_vec(vec![1.0f32; 2 * 8 * 8]), Layout::contiguous(&[1, 2, 8, 8]));
/// let (w, lw) = (CpuStorage::from_vec(vec![0.5f32; 4 * 2 * 9]), Layout::contiguous(&[4, 2, 3, 3]));
/// let p = Conv2dParams { padding: (1, 1), ..Default::default() };
/// let y = with_algorithm(Algorithm::Im2col, || CpuBackend.conv2d(&x, &lx, &w, &lw, &p)).unwrap();
/// assert_eq!(y.as_slice::<f32>().unwrap()[9], 9.0); // an inner position: 2 channels x 9 taps x 0.5
/// ```
pub fn with_algorithm<R>(algorithm: Algorithm, f: impl FnOnce() -> R) -> R {
    /// Restores the previous setting even when `f` unwinds.
    struct Restore(Option<Algorithm>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(Some(algorithm))));
    f()
}

/// The algorithm that computes `pass` of `g` in `isa`: the forced one ([`with_algorithm`]),
/// or an error naming `op` when it cannot; otherwise the planner's [`choose`].
pub(crate) fn plan(op: &'static str, g: &Geom, pass: ConvPass, isa: Isa) -> Result<Algorithm> {
    match FORCED.with(Cell::get) {
        Some(a) if a.supports(g, pass, isa) => Ok(a),
        Some(a) => {
            Err(Error::invalid(op, format!("the forced algorithm {} cannot compute {g:?} in {isa:?}", a.name())))
        }
        None => Ok(choose(g, pass, isa)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Conv2dParams;
    use Algorithm::*;
    use ConvPass::*;

    /// Whether `a`'s row of the `pass` table takes `g` in `isa` (supported, switched on and
    /// worth it), whatever the rows above say.
    fn admits(a: Algorithm, g: &Geom, pass: ConvPass, isa: Isa) -> bool {
        let worth = rows(g, pass, false, CpuKind::Zen4).into_iter().any(|(r, worth)| r == a && worth);
        worth && a.switched_on() && a.supports(g, pass, isa)
    }

    /// Asserts that `a`'s rows take `g` for `passes` in AVX-512 f32 exactly when `want`, and
    /// never in the portable or int8 kernels when `a` is an AVX-512 algorithm.
    fn expect(a: Algorithm, g: &Geom, passes: &[ConvPass], want: bool) {
        for &pass in passes {
            assert_eq!(admits(a, g, pass, Isa::Avx512), want, "{} {pass:?} {g:?}", a.name());
            if a != WinogradGemm && a != Depthwise && a != Im2col {
                assert!(!admits(a, g, pass, Isa::Portable), "{} {pass:?} without AVX-512", a.name());
            }
            assert!(!admits(a, g, pass, Isa::Int8) || a == Im2col, "{} {pass:?} in int8", a.name());
        }
    }

    fn square(c: usize, o: usize, hw: usize, k: usize, p: Conv2dParams) -> Geom {
        Geom::new(&[1, c, hw, hw], &[o, c / p.groups, k, k], &p).unwrap()
    }

    const PLAIN: Conv2dParams = Conv2dParams { stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1 };

    #[test]
    fn names_round_trip_and_every_algorithm_is_listed_once() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        let mut names: Vec<_> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Algorithm::ALL.len());
        assert_eq!(Algorithm::from_name("fft"), None);
    }

    #[test]
    fn winograd4_takes_3x3_stride_1_up_to_128_channels_and_12x12_planes() {
        expect(WinogradF4, &square(16, 16, 12, 3, PLAIN), &[Forward, BackwardData, BackwardWeight], true);
        expect(WinogradF4, &square(128, 128, 32, 3, PLAIN), &[Forward, BackwardData], true);
        expect(WinogradF4, &square(64, 64, 32, 3, PLAIN), &[BackwardWeight], true);
        expect(WinogradF4, &square(128, 128, 32, 3, PLAIN), &[BackwardWeight], false);
        expect(WinogradF4, &square(16, 16, 8, 3, PLAIN), &[Forward], false);
        expect(WinogradF4, &square(256, 128, 16, 3, PLAIN), &[Forward], false);
        expect(WinogradF4, &square(3, 16, 16, 3, PLAIN), &[Forward], false);
        for p in [
            Conv2dParams { stride: (2, 2), ..PLAIN },
            Conv2dParams { dilation: (2, 2), ..PLAIN },
            Conv2dParams { groups: 2, ..PLAIN },
        ] {
            expect(WinogradF4, &square(16, 16, 32, 3, p), &[Forward], false);
        }
        // The input gradient reads the output channels: at least 8 of them.
        expect(WinogradF4, &square(16, 3, 16, 3, PLAIN), &[BackwardData], false);
        expect(WinogradF4, &square(3, 16, 16, 3, PLAIN), &[BackwardData], true);
    }

    #[test]
    fn winograd_lanes_takes_3x3_stride_1_up_to_256_channels() {
        let all = [Forward, BackwardData, BackwardWeight];
        expect(WinogradF2, &square(16, 16, 8, 3, PLAIN), &all, true);
        expect(WinogradF2, &square(64, 64, 8, 3, PLAIN), &all, true);
        expect(WinogradF2, &square(256, 256, 8, 3, PLAIN), &all, true);
        expect(WinogradF2, &square(512, 256, 8, 3, PLAIN), &all, false);
        expect(WinogradF2, &square(3, 16, 8, 3, PLAIN), &[Forward, BackwardWeight], false);
        for p in [
            Conv2dParams { stride: (2, 2), ..PLAIN },
            Conv2dParams { dilation: (2, 2), ..PLAIN },
            Conv2dParams { groups: 2, ..PLAIN },
        ] {
            expect(WinogradF2, &square(16, 16, 8, 3, p), &all, false);
        }
        expect(WinogradF2, &square(16, 3, 8, 3, PLAIN), &[BackwardData], false);
    }

    #[test]
    fn direct3x3_takes_narrow_3x3_stride_1() {
        let geom = |c: usize, o: usize, k: usize, w: usize, p: Conv2dParams| {
            Geom::new(&[1, c, 8, w], &[o, c / p.groups, k, k], &p).unwrap()
        };
        expect(Direct3x3, &geom(16, 16, 3, 32, PLAIN), &[Forward, BackwardWeight], true);
        expect(Direct3x3, &geom(64, 32, 3, 16, PLAIN), &[Forward, BackwardWeight], true);
        expect(Direct3x3, &geom(64, 64, 3, 32, PLAIN), &[Forward], false);
        expect(Direct3x3, &geom(16, 16, 3, 8, PLAIN), &[Forward], false);
        expect(Direct3x3, &geom(16, 16, 1, 32, PLAIN), &[Forward], false);
        for p in [
            Conv2dParams { stride: (2, 2), ..PLAIN },
            Conv2dParams { dilation: (2, 2), ..PLAIN },
            Conv2dParams { groups: 2, ..PLAIN },
        ] {
            expect(Direct3x3, &geom(16, 16, 3, 32, p), &[Forward], false);
        }
        expect(Direct3x3, &geom(16, 16, 3, 32, Conv2dParams { padding: (3, 1), ..PLAIN }), &[BackwardData], false);
    }

    #[test]
    fn stride2_3x3_takes_3x3_stride_2_up_to_128_input_channels_32_for_the_weight_gradient() {
        let s2 = Conv2dParams { stride: (2, 2), ..PLAIN };
        let geom =
            |c: usize, k: usize, p: Conv2dParams| Geom::new(&[1, c, 8, 8], &[16, c / p.groups, k, k], &p).unwrap();
        expect(Direct3x3Stride2, &geom(16, 3, s2), &[Forward, BackwardWeight], true);
        expect(Direct3x3Stride2, &geom(128, 3, s2), &[Forward], true);
        expect(Direct3x3Stride2, &geom(256, 3, s2), &[Forward], false);
        expect(Direct3x3Stride2, &geom(32, 3, s2), &[BackwardWeight], true);
        expect(Direct3x3Stride2, &geom(64, 3, s2), &[BackwardWeight], false);
        expect(Direct3x3Stride2, &geom(16, 3, s2), &[BackwardData], false);
        for p in [
            Conv2dParams { stride: (1, 1), ..s2 },
            Conv2dParams { dilation: (2, 2), ..s2 },
            Conv2dParams { groups: 2, ..s2 },
        ] {
            expect(Direct3x3Stride2, &geom(16, 3, p), &[Forward], false);
        }
        expect(Direct3x3Stride2, &geom(16, 1, Conv2dParams { padding: (0, 0), ..s2 }), &[Forward], false);
    }

    #[test]
    fn depthwise3x3_takes_3x3_depthwise_only() {
        let geom = |c: usize, groups: usize, k: usize, s: usize, d: usize| {
            let p = Conv2dParams { padding: (1, 1), stride: (s, s), dilation: (d, d), groups };
            Geom::new(&[1, c, 8, 8], &[c, c / groups, k, k], &p).unwrap()
        };
        expect(Depthwise3x3, &geom(8, 8, 3, 1, 1), &[Forward, BackwardData, BackwardWeight], true);
        expect(Depthwise3x3, &geom(8, 8, 3, 2, 1), &[Forward, BackwardData, BackwardWeight], true);
        expect(Depthwise3x3, &geom(8, 4, 3, 1, 1), &[Forward], false);
        expect(Depthwise3x3, &geom(8, 8, 5, 1, 1), &[Forward], false);
        expect(Depthwise3x3, &geom(8, 8, 3, 3, 1), &[Forward], false);
        expect(Depthwise3x3, &geom(8, 8, 3, 1, 2), &[Forward], false);
    }

    #[test]
    fn winograd_takes_3x3_stride_1_with_8_channels_or_more() {
        let geom =
            |c: usize, o: usize, k: usize, p: Conv2dParams| Geom::new(&[1, c, 8, 8], &[o, c / p.groups, k, k], &p);
        for isa in [Isa::Avx512, Isa::Portable] {
            let takes = |g: &Geom, pass| admits(WinogradGemm, g, pass, isa);
            assert!(takes(&geom(8, 8, 3, PLAIN).unwrap(), Forward));
            assert!(!takes(&geom(4, 8, 3, PLAIN).unwrap(), Forward));
            assert!(!takes(&geom(8, 8, 1, PLAIN).unwrap(), Forward));
            assert!(!takes(&geom(8, 8, 3, Conv2dParams { stride: (2, 2), ..PLAIN }).unwrap(), Forward));
            assert!(!takes(&geom(8, 8, 3, Conv2dParams { dilation: (2, 2), ..PLAIN }).unwrap(), Forward));
            assert!(!takes(&geom(16, 16, 3, Conv2dParams { groups: 2, ..PLAIN }).unwrap(), Forward));
            let wide = geom(8, 8, 3, Conv2dParams { padding: (3, 1), ..PLAIN }).unwrap();
            assert!(takes(&wide, Forward) && !takes(&wide, BackwardData));
        }
        assert!(!admits(WinogradGemm, &geom(8, 8, 3, PLAIN).unwrap(), Forward, Isa::Int8));
    }

    /// The tables on the layers of the models the benchmarks train: what each layer runs.
    #[test]
    fn tables_pick_the_measured_algorithm_per_layer() {
        let s2 = Conv2dParams { stride: (2, 2), ..PLAIN };
        let pw = Conv2dParams { padding: (0, 0), ..PLAIN };
        let dw = |c: usize, s: usize| Conv2dParams { stride: (s, s), groups: c, ..PLAIN };
        // (layer, c, o, input size, kernel, params, [forward, input gradient, weight gradient])
        let cases = [
            ("resnet20 stem", 3, 16, 32, 3, PLAIN, [Direct3x3, WinogradF4, Direct3x3]),
            ("resnet20 stage 1", 16, 16, 32, 3, PLAIN, [WinogradF4, WinogradF4, WinogradF4]),
            ("resnet20 stage 3", 64, 64, 8, 3, PLAIN, [WinogradF2, WinogradF2, WinogradF2]),
            ("resnet20 down 2", 16, 32, 32, 3, s2, [Direct3x3Stride2, Im2col, Direct3x3Stride2]),
            ("resnet18 layer 4", 512, 512, 4, 3, PLAIN, [WinogradGemm, WinogradGemm, WinogradGemm]),
            ("resnet18 down 4", 256, 512, 8, 3, s2, [Im2col, Im2col, Im2col]),
            ("mbv2 pointwise", 32, 192, 16, 1, pw, [Im2col, Im2col, Im2col]),
            ("mbv2 depthwise", 96, 96, 16, 3, dw(96, 2), [Depthwise3x3, Depthwise3x3, Depthwise3x3]),
        ];
        for (layer, c, o, hw, k, p, want) in cases {
            let g = square(c, o, hw, k, p);
            for (pass, want) in [Forward, BackwardData, BackwardWeight].into_iter().zip(want) {
                assert_eq!(choose_for(&g, pass, Isa::Avx512, false, CpuKind::Zen4), want, "{layer} {pass:?}");
            }
        }
        // Without AVX-512 (or in f64): the portable algorithms only.
        let portable = [
            (square(16, 16, 32, 3, PLAIN), WinogradGemm),
            (square(3, 16, 32, 3, PLAIN), Im2col),
            (square(96, 96, 16, 3, dw(96, 1)), Depthwise),
            (square(16, 32, 32, 3, s2), Im2col),
        ];
        for (g, want) in portable {
            for pass in [Forward, BackwardData, BackwardWeight] {
                assert_eq!(choose(&g, pass, Isa::Portable), want, "{pass:?} {g:?}");
            }
        }
        assert_eq!(choose(&square(16, 16, 32, 3, PLAIN), Forward, Isa::Int8), Im2col);
    }

    /// Where 512-bit FMAs run at full width (Intel, Zen 5) the lane-tiled F(2x2) stops at 128²
    /// channels, and on Zen 5 both lane kernels stop past 64 x 128; the rest of the tables is the
    /// same as Zen 4's.
    #[test]
    fn full_width_kinds_send_wide_layers_to_the_gemm_winograd() {
        let all = [Forward, BackwardData, BackwardWeight];
        // (layer, c, o, input size, algorithm of every pass on Zen 4, on Intel, on Zen 5)
        let cases = [
            ("resnet18 layer 3", 256, 256, 8, WinogradF2, WinogradGemm, WinogradGemm),
            ("resnet50 layer 3", 256, 256, 14, WinogradF2, WinogradGemm, WinogradGemm),
            ("256 -> 128 channels", 256, 128, 8, WinogradF2, WinogradGemm, WinogradGemm),
            ("resnet18 layer 2 at 8x8", 128, 128, 8, WinogradF2, WinogradF2, WinogradGemm),
            ("64 -> 128 channels at 8x8", 64, 128, 8, WinogradF2, WinogradF2, WinogradF2),
            ("resnet20 stage 3", 64, 64, 8, WinogradF2, WinogradF2, WinogradF2),
            ("resnet18 layer 4", 512, 512, 4, WinogradGemm, WinogradGemm, WinogradGemm),
        ];
        for (layer, c, o, hw, zen4, intel, zen5) in cases {
            let g = square(c, o, hw, 3, PLAIN);
            for pass in all {
                assert_eq!(choose_for(&g, pass, Isa::Avx512, false, CpuKind::Zen4), zen4, "{layer} {pass:?} zen4");
                assert_eq!(choose_for(&g, pass, Isa::Avx512, false, CpuKind::Intel), intel, "{layer} {pass:?} intel");
                assert_eq!(choose_for(&g, pass, Isa::Avx512, false, CpuKind::Zen5), zen5, "{layer} {pass:?} zen5");
            }
        }
        // F(4x4) on 16x16 planes: up to 128² channels on Zen 4 and Intel, 64 x 128 on Zen 5.
        let g = square(128, 128, 16, 3, PLAIN);
        for kind in [CpuKind::Zen4, CpuKind::Intel] {
            assert_eq!(choose_for(&g, Forward, Isa::Avx512, false, kind), WinogradF4, "{kind:?}");
        }
        assert_eq!(choose_for(&g, Forward, Isa::Avx512, false, CpuKind::Zen5), WinogradGemm);
        // A layer away from the crossover picks the same algorithm on every kind.
        let g = square(16, 16, 32, 3, PLAIN);
        for pass in all {
            let zen4 = choose_for(&g, pass, Isa::Avx512, false, CpuKind::Zen4);
            for kind in [CpuKind::Intel, CpuKind::Zen5] {
                assert_eq!(choose_for(&g, pass, Isa::Avx512, false, kind), zen4, "{pass:?} {kind:?}");
            }
        }
    }

    /// With bf16 products the 3x3 layers of 256 channels and more on planes of 7x7 and up move
    /// to im2col in every pass; narrower layers, 4x4 planes and the portable kernels keep their
    /// algorithms.
    #[test]
    fn bf16_products_move_wide_3x3_layers_to_im2col() {
        let all = [Forward, BackwardData, BackwardWeight];
        // (layer, c, o, input size, f32 algorithm of every pass, bf16 algorithm)
        let cases = [
            ("resnet50 layer 3", 256, 256, 14, WinogradF2, Im2col),
            ("resnet50 layer 4", 512, 512, 7, WinogradGemm, Im2col),
            ("resnet18 layer 3", 256, 256, 8, WinogradF2, Im2col),
            ("resnet18 layer 4", 512, 512, 4, WinogradGemm, WinogradGemm),
            ("resnet18 layer 2", 128, 128, 16, WinogradF4, WinogradF4),
            ("256 -> 128 channels", 256, 128, 14, WinogradF2, WinogradF2),
        ];
        for (layer, c, o, hw, f32_algo, bf16_algo) in cases {
            let g = square(c, o, hw, 3, PLAIN);
            for pass in all {
                let f32_want = if pass == BackwardWeight && c * o > 64 * 64 && f32_algo == WinogradF4 {
                    WinogradF2
                } else {
                    f32_algo
                };
                assert_eq!(choose_for(&g, pass, Isa::Avx512, false, CpuKind::Zen4), f32_want, "{layer} {pass:?} f32");
                let bf16_want = if bf16_algo == f32_algo { f32_want } else { bf16_algo };
                assert_eq!(choose_for(&g, pass, Isa::Avx512, true, CpuKind::Zen4), bf16_want, "{layer} {pass:?} bf16");
            }
        }
        // bf16 never reaches the portable kernels (f64, or f32 without AVX-512).
        let g = square(256, 256, 14, 3, PLAIN);
        assert_eq!(choose(&g, Forward, Isa::Portable), WinogradGemm);
    }

    /// On Zen 5 bf16 products keep the layers past 64 x 128 channels on the GEMM Winograd (as
    /// f32 does; its products run in bf16 too), narrower ones on the f32 lanes, and move only
    /// the 512-channel weight gradient on 7x7 planes to im2col.
    #[test]
    fn zen5_bf16_sends_wide_layers_to_the_gemm_winograd() {
        // (layer, c, o, input size, bf16 algorithm forward, input gradient, weight gradient)
        let cases = [
            ("resnet50 layer 3", 256, 256, 14, [WinogradGemm, WinogradGemm, WinogradGemm]),
            ("resnet18 layer 3", 256, 256, 8, [WinogradGemm, WinogradGemm, WinogradGemm]),
            ("resnet50 layer 4", 512, 512, 7, [WinogradGemm, WinogradGemm, Im2col]),
            ("resnet18 layer 4", 512, 512, 4, [WinogradGemm, WinogradGemm, WinogradGemm]),
            ("resnet18 layer 2", 128, 128, 16, [WinogradGemm, WinogradGemm, WinogradGemm]),
            ("resnet18 layer 1", 64, 64, 32, [WinogradF4, WinogradF4, WinogradF4]),
            ("resnet20 stage 3", 64, 64, 8, [WinogradF2, WinogradF2, WinogradF2]),
            ("64 -> 128 channels", 64, 128, 16, [WinogradF4, WinogradF4, WinogradF2]),
        ];
        for (layer, c, o, hw, want) in cases {
            let g = square(c, o, hw, 3, PLAIN);
            for (pass, want) in [Forward, BackwardData, BackwardWeight].into_iter().zip(want) {
                assert_eq!(choose_for(&g, pass, Isa::Avx512, true, CpuKind::Zen5), want, "{layer} {pass:?}");
            }
        }
    }

    #[test]
    fn forcing_wins_where_supported_and_is_an_error_elsewhere() {
        let g = square(16, 16, 32, 3, PLAIN);
        assert_eq!(plan("conv2d", &g, Forward, Isa::Portable).unwrap(), WinogradGemm);
        let forced = with_algorithm(Im2col, || plan("conv2d", &g, Forward, Isa::Portable)).unwrap();
        assert_eq!(forced, Im2col);
        // Nested: the innermost wins, and the outer setting comes back.
        with_algorithm(Im2col, || {
            with_algorithm(Depthwise3x3, || {
                let e = plan("conv2d", &g, Forward, Isa::Avx512).unwrap_err().to_string();
                assert!(e.contains("conv2d") && e.contains("depthwise3x3"), "{e}");
            });
            assert_eq!(plan("conv2d", &g, Forward, Isa::Avx512).unwrap(), Im2col);
        });
        // Nothing forced after a panic inside.
        let _ = std::panic::catch_unwind(|| with_algorithm(Im2col, || panic!("inside")));
        assert_eq!(plan("conv2d", &g, Forward, Isa::Portable).unwrap(), WinogradGemm);
    }
}
