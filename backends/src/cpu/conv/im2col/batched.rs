//! im2col + GEMM for small output planes: several images side by side in one GEMM.
//!
//! One image of a deep layer with a small output plane gives GEMMs only a few columns wide
//! (ResNet-18's last stride-2 layer at CIFAR size: 16 columns against a 512 x 2304 weight), and
//! every image streams the whole weight matrix again from the last-level cache: 64 images read
//! 300 MB per pass, and the products run at the cache's speed rather than the FMA units'
//! (16.5 ms forward against 8 ms of arithmetic on Sapphire Rapids). Here a group of images
//! shares each GEMM, [`GROUP_COLUMNS`] columns or more: the columns of image `j` of the group
//! are `j * oH·oW ..`, and the output planes (or, for the input and weight gradients, the
//! output gradient's planes) are copied between the images' `[O, oH·oW]` layout and the
//! group's `[O, images · oH·oW]` one around the product. Groups are spread over rayon's
//! threads, each with its own buffers and a single-threaded [`gemm`]; the weight gradient
//! accumulates per thread and sums in a fixed order, as in [`super::gemm`].

use super::unfold::{fold, unfold};
use crate::cpu::conv::common::{accumulate_in_runs, scratch};
use crate::cpu::gemm::{gemm, GemmElement, MatRef};
use crate::planning::conv::Geom;
use rayon::prelude::*;

/// Columns per GEMM that a group of images aims for.
const GROUP_COLUMNS: usize = 256;
/// Output planes of fewer elements than this are grouped. At 64 (ResNet-18's 16x16 -> 8x8
/// stride-2 layer, 128 -> 256 channels) groups of 4 images were slower than one image per GEMM
/// in every pass on Sapphire Rapids (2 threads, ms forward / input gradient / weight gradient:
/// 9.5 / 12.3 / 10.4 -> 9.7-11.8 / 13.9-16.9 / 12.3-17.0), the group's columns no longer in L2.
const SMALL_PLANE: usize = 64;

/// Images per group for `g`, or `None` where one image per GEMM is as good: grouped
/// convolutions, 1x1 stride-1 kernels (no unfold: each image's plane is its GEMM operand),
/// output planes of [`SMALL_PLANE`] elements or more, or too few images. The groups are as
/// even as the batch allows, with a multiple of the thread count of them where the batch has
/// enough images.
pub(in crate::cpu::conv) fn images_per_group(g: &Geom) -> Option<usize> {
    let hwo = g.out_plane();
    if g.g != 1 || g.is_pointwise() || hwo == 0 || hwo >= SMALL_PLANE || g.n < 2 {
        return None;
    }
    let want = GROUP_COLUMNS.div_ceil(hwo).min(g.n);
    let threads = rayon::current_num_threads().max(1);
    let mut groups = g.n.div_ceil(want);
    if groups < g.n {
        groups = groups.div_ceil(threads) * threads;
    }
    let per = g.n.div_ceil(groups.min(g.n));
    (per >= 2).then_some(per)
}

/// Copies one image's `[rows, hwo]` matrix `img` into columns `j·hwo..(j + 1)·hwo` of the
/// group's `[rows, ncols]` matrix.
fn put_image<T: Copy>(img: &[T], hwo: usize, group: &mut [T], ncols: usize, j: usize) {
    for (r, src) in img.chunks_exact(hwo).enumerate() {
        group[r * ncols + j * hwo..][..hwo].copy_from_slice(src);
    }
}

/// Copies columns `j·hwo..(j + 1)·hwo` of the group's `[rows, ncols]` matrix into one image's
/// `[rows, hwo]` matrix `img` (the inverse of [`put_image`]).
fn take_image<T: Copy>(group: &[T], ncols: usize, j: usize, img: &mut [T], hwo: usize) {
    for (r, dst) in img.chunks_exact_mut(hwo).enumerate() {
        dst.copy_from_slice(&group[r * ncols + j * hwo..][..hwo]);
    }
}

/// Unfolds images `first..first + imgs` of `x` into `col` (`[C kH kW, imgs · oH·oW]`), each
/// through `stage` (one image's `[C kH kW, oH·oW]`).
fn unfold_group<T: GemmElement>(x: &[T], g: &Geom, first: usize, imgs: usize, col: &mut [T], stage: &mut Vec<T>) {
    let (ckk, hwo, img_in) = (g.ckk(), g.out_plane(), g.c * g.in_plane());
    let stage = scratch(stage, ckk * hwo);
    for j in 0..imgs {
        let xi = &x[(first + j) * img_in..(first + j + 1) * img_in];
        unfold(xi, g, 0, g.c, 0, g.oh, stage);
        put_image(stage, hwo, col, imgs * hwo, j);
    }
}

/// Copies images `first..first + imgs` of `planes` (`[N, rows, oH·oW]`) into `dst`
/// (`[rows, imgs · oH·oW]`).
fn gather_planes<T: GemmElement>(planes: &[T], rows: usize, hwo: usize, first: usize, imgs: usize, dst: &mut [T]) {
    for j in 0..imgs {
        put_image(&planes[(first + j) * rows * hwo..][..rows * hwo], hwo, dst, imgs * hwo, j);
    }
}

/// The forward convolution of dense `x` and `w` into `y`, `imgs` images per GEMM.
pub(super) fn forward<T: GemmElement>(x: &[T], w: &[T], g: &Geom, y: &mut [T], imgs: usize) {
    let (o, ckk, hwo) = (g.o, g.ckk(), g.out_plane());
    y.par_chunks_mut(imgs * o * hwo).enumerate().for_each_init(
        || (Vec::new(), Vec::new(), Vec::new()),
        |(col, out, stage), (gi, yg)| {
            let n = yg.len() / (o * hwo);
            let ncols = n * hwo;
            let col = scratch(col, ckk * ncols);
            unfold_group(x, g, gi * imgs, n, col, stage);
            let out = scratch(out, o * ncols);
            let a = MatRef { data: w, offset: 0, rs: ckk, cs: 1 };
            let b = MatRef { data: &col[..], offset: 0, rs: ncols, cs: 1 };
            gemm(o, ckk, ncols, T::one(), a, b, T::zero(), out, ncols);
            for (j, yi) in yg.chunks_exact_mut(o * hwo).enumerate() {
                take_image(out, ncols, j, yi, hwo);
            }
        },
    );
}

/// The input gradient of dense `gy` and `w` into the zeroed `dx`, `imgs` images per GEMM.
pub(super) fn backward_data<T: GemmElement>(gy: &[T], w: &[T], g: &Geom, dx: &mut [T], imgs: usize) {
    let (o, ckk, hwo, img_in) = (g.o, g.ckk(), g.out_plane(), g.c * g.in_plane());
    dx.par_chunks_mut(imgs * img_in).enumerate().for_each_init(
        || (Vec::new(), Vec::new(), Vec::new()),
        |(col, dy, stage), (gi, dxg)| {
            let n = dxg.len() / img_in;
            let ncols = n * hwo;
            let dy = scratch(dy, o * ncols);
            gather_planes(gy, o, hwo, gi * imgs, n, dy);
            let col = scratch(col, ckk * ncols);
            let wt = MatRef { data: w, offset: 0, rs: 1, cs: ckk };
            let b = MatRef { data: &dy[..], offset: 0, rs: ncols, cs: 1 };
            gemm(ckk, o, ncols, T::one(), wt, b, T::zero(), col, ncols);
            let stage = scratch(stage, ckk * hwo);
            for (j, dxi) in dxg.chunks_exact_mut(img_in).enumerate() {
                take_image(col, ncols, j, stage, hwo);
                fold(stage, g, 0, g.c, 0, g.oh, dxi);
            }
        },
    );
}

/// The weight gradient (`[O, C, kH, kW]`) of dense `x` and `gy`, `imgs` images per GEMM.
pub(super) fn backward_weight<T: GemmElement>(x: &[T], gy: &[T], g: &Geom, imgs: usize) -> Vec<T> {
    let (o, ckk, hwo) = (g.o, g.ckk(), g.out_plane());
    let groups = g.n.div_ceil(imgs);
    accumulate_in_runs(groups, o * ckk, |run, acc| {
        let (mut col, mut dy, mut stage) = (Vec::new(), Vec::new(), Vec::new());
        for gi in run {
            let (first, n) = (gi * imgs, imgs.min(g.n - gi * imgs));
            let ncols = n * hwo;
            let col = scratch(&mut col, ckk * ncols);
            unfold_group(x, g, first, n, col, &mut stage);
            let dy = scratch(&mut dy, o * ncols);
            gather_planes(gy, o, hwo, first, n, dy);
            let a = MatRef { data: &dy[..], offset: 0, rs: ncols, cs: 1 };
            let b = MatRef { data: &col[..], offset: 0, rs: 1, cs: ncols };
            gemm(o, ncols, ckk, T::one(), a, b, T::one(), acc, ckk);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Conv2dParams;

    fn geom(n: usize, c: usize, hw: usize, o: usize, k: usize, stride: usize, groups: usize) -> Geom {
        let p = Conv2dParams { stride: (stride, stride), padding: (k / 2, k / 2), dilation: (1, 1), groups };
        Geom::new(&[n, c, hw, hw], &[o, c / groups, k, k], &p).unwrap()
    }

    #[test]
    fn groups_only_small_planes_of_dense_unfolded_convolutions() {
        // ResNet-18's last stride-2 layer at CIFAR size (16 columns per image) and 7x7 planes at
        // batch 16 (ResNet-50's last stage): groups of 2 images or more.
        assert!(images_per_group(&geom(64, 256, 8, 512, 3, 2, 1)).is_some_and(|p| p >= 2));
        assert!(images_per_group(&geom(16, 512, 7, 512, 3, 1, 1)).is_some_and(|p| p >= 2));
        // Large planes, grouped or 1x1 stride-1 convolutions, one image: no grouping.
        assert_eq!(images_per_group(&geom(64, 64, 32, 64, 3, 1, 1)), None);
        assert_eq!(images_per_group(&geom(64, 64, 8, 64, 3, 1, 2)), None);
        assert_eq!(images_per_group(&geom(64, 256, 4, 512, 1, 1, 1)), None);
        assert_eq!(images_per_group(&geom(1, 256, 4, 512, 3, 1, 1)), None);
        // The groups cover the batch, each of at least 2 images and less than one image past
        // GROUP_COLUMNS columns.
        for n in [2, 3, 5, 16, 17, 64] {
            if let Some(per) = images_per_group(&geom(n, 8, 4, 8, 3, 1, 1)) {
                assert!(per >= 2 && per <= n && (per - 1) * 16 < GROUP_COLUMNS, "{n}: {per}");
            }
        }
    }
}
