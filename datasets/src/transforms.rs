//! Augmentation and conversion to `f32` CHW.
//!
//! A [`Pipeline`] first converts a [`Sample`]'s `u8` pixels to `f32` in `[0, 1]` (dividing
//! by the dataset's [`pixel_max`](crate::Dataset::pixel_max)), then applies its
//! [`Transform`]s in order. Every random decision comes from the [`SampleRng`] passed in,
//! which the loader derives from `(seed, epoch, sample index)`.
//!
//! ```
//! use datasets::{Normalization, Pipeline, SampleRng};
//! let p = Pipeline::new()
//!     .random_crop(32, 4)
//!     .horizontal_flip(0.5)
//!     .normalize(Normalization::cifar10());
//! let img = datasets::ImageF32::zeros(3, 32, 32);
//! let out = p.apply_f32(img, &mut SampleRng::for_sample(0, 0, 0)).unwrap();
//! assert_eq!((out.c, out.h, out.w), (3, 32, 32));
//! ```

use std::fmt;
use std::sync::Arc;

use crate::dataset::Sample;
use crate::error::{DatasetError, Result};
use crate::rng::SampleRng;

/// An `f32` image in CHW order.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageF32 {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `c * h * w` values, channel planes one after another.
    pub data: Vec<f32>,
}

impl ImageF32 {
    /// A black image.
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        ImageF32 { c, h, w, data: vec![0.0; c * h * w] }
    }

    /// Converts `u8` CHW pixels to `f32`, dividing by `pixel_max`.
    pub fn from_u8_chw(pixels: &[u8], shape: [usize; 3], pixel_max: f32) -> Result<Self> {
        let [c, h, w] = shape;
        if pixels.len() != c * h * w {
            return Err(DatasetError::invalid(format!("{} pixels do not make a {c}x{h}x{w} image", pixels.len())));
        }
        let s = 1.0 / pixel_max;
        Ok(ImageF32 { c, h, w, data: pixels.iter().map(|&p| p as f32 * s).collect() })
    }

    /// Index of `(channel, row, column)` in `data`.
    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> usize {
        (c * self.h + y) * self.w + x
    }
}

/// Converts interleaved HWC bytes (as image decoders give them) to CHW order.
pub fn hwc_to_chw(hwc: &[u8], h: usize, w: usize, c: usize) -> Vec<u8> {
    let mut out = vec![0u8; hwc.len()];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                out[(ch * h + y) * w + x] = hwc[(y * w + x) * c + ch];
            }
        }
    }
    out
}

/// Per-channel mean and standard deviation of `[0, 1]` pixels; [`Normalize`] maps
/// `x -> (x - mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Standard deviation per channel.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Statistics from explicit values (one per channel).
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Self {
        Normalization { mean, std }
    }
    /// MNIST training set: 0.1307 / 0.3081 (the values everyone uses; checked on the data).
    pub fn mnist() -> Self {
        Self::new(vec![0.1307], vec![0.3081])
    }
    /// Fashion-MNIST training set: 0.2860 / 0.3530.
    pub fn fashion_mnist() -> Self {
        Self::new(vec![0.2860], vec![0.3530])
    }
    /// CIFAR-10 training set, per-pixel statistics (the true std, not the often-copied
    /// 0.2023/0.1994/0.2010, which are per-image-averaged values).
    pub fn cifar10() -> Self {
        Self::new(vec![0.4914, 0.4822, 0.4465], vec![0.2470, 0.2435, 0.2616])
    }
    /// CIFAR-100 training set.
    pub fn cifar100() -> Self {
        Self::new(vec![0.5071, 0.4865, 0.4409], vec![0.2673, 0.2564, 0.2762])
    }
    /// ImageNet (torchvision's values).
    pub fn imagenet() -> Self {
        Self::new(vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
    }
    /// sklearn 8x8 digits (pixels scaled by 1/16), computed on all 1797 images.
    pub fn digits() -> Self {
        Self::new(vec![0.3053], vec![0.3760])
    }
}

/// One step of a [`Pipeline`].
pub trait Transform: Send + Sync + fmt::Debug {
    /// Transforms `image`, drawing any randomness from `rng`.
    fn apply(&self, image: ImageF32, rng: &mut SampleRng) -> Result<ImageF32>;
    /// The shape of the output for an input of shape `[c, h, w]` (when it is fixed).
    fn output_shape(&self, input: [usize; 3]) -> [usize; 3] {
        input
    }
}

/// Random crop of `height x width` from the image padded with `padding` zeros on every side
/// (torchvision's `RandomCrop(size, padding)`).
#[derive(Clone, Debug)]
pub struct RandomCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Zero padding added on each side before cropping.
    pub padding: usize,
}

impl RandomCrop {
    /// Crops at offset `(top, left)` of the padded image: deterministic part of the
    /// transform, public for tests.
    pub fn crop_at(&self, img: &ImageF32, top: usize, left: usize) -> ImageF32 {
        let (h, w, p) = (self.height, self.width, self.padding as isize);
        let mut out = ImageF32::zeros(img.c, h, w);
        for c in 0..img.c {
            for y in 0..h {
                let sy = y as isize + top as isize - p;
                if sy < 0 || sy >= img.h as isize {
                    continue;
                }
                // x range where source column is inside
                let x0 = (p - left as isize).clamp(0, w as isize) as usize;
                let x1 = (img.w as isize + p - left as isize).clamp(0, w as isize) as usize;
                if x0 >= x1 {
                    continue;
                }
                let sx0 = (x0 as isize + left as isize - p) as usize;
                let src = img.at(c, sy as usize, sx0);
                let dst = out.at(c, y, x0);
                out.data[dst..dst + (x1 - x0)].copy_from_slice(&img.data[src..src + (x1 - x0)]);
            }
        }
        out
    }
}

impl Transform for RandomCrop {
    fn apply(&self, img: ImageF32, rng: &mut SampleRng) -> Result<ImageF32> {
        let ph = img.h + 2 * self.padding;
        let pw = img.w + 2 * self.padding;
        if self.height > ph || self.width > pw {
            return Err(DatasetError::invalid(format!(
                "random crop {}x{} larger than padded image {ph}x{pw}",
                self.height, self.width
            )));
        }
        let top = rng.below(ph - self.height + 1);
        let left = rng.below(pw - self.width + 1);
        Ok(self.crop_at(&img, top, left))
    }
    fn output_shape(&self, i: [usize; 3]) -> [usize; 3] {
        [i[0], self.height, self.width]
    }
}

/// Mirrors the image left-right with probability `p`.
#[derive(Clone, Debug)]
pub struct RandomHorizontalFlip {
    /// Flip probability.
    pub p: f64,
}

/// Mirrors `img` left-right in place.
pub fn hflip(img: &mut ImageF32) {
    let w = img.w;
    for row in img.data.chunks_exact_mut(w.max(1)) {
        row.reverse();
    }
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, mut img: ImageF32, rng: &mut SampleRng) -> Result<ImageF32> {
        if rng.bernoulli(self.p) {
            hflip(&mut img);
        }
        Ok(img)
    }
}

/// `x -> (x - mean[c]) / std[c]`.
#[derive(Clone, Debug)]
pub struct Normalize(pub Normalization);

impl Transform for Normalize {
    fn apply(&self, mut img: ImageF32, _rng: &mut SampleRng) -> Result<ImageF32> {
        let n = &self.0;
        if n.mean.len() != img.c || n.std.len() != img.c {
            return Err(DatasetError::invalid(format!(
                "normalization has {} means / {} stds for a {}-channel image",
                n.mean.len(),
                n.std.len(),
                img.c
            )));
        }
        let plane = img.h * img.w;
        for c in 0..img.c {
            let (m, s) = (n.mean[c], 1.0 / n.std[c]);
            for v in &mut img.data[c * plane..(c + 1) * plane] {
                *v = (*v - m) * s;
            }
        }
        Ok(img)
    }
}

/// Cutout (DeVries & Taylor, 2017): with probability `p`, zero a `size x size` square
/// (clipped at the borders) centred on a uniformly drawn pixel, in every channel. Apply it
/// after normalization, as the paper does.
#[derive(Clone, Debug)]
pub struct Cutout {
    /// Side of the square.
    pub size: usize,
    /// Probability of applying it.
    pub p: f64,
}

impl Transform for Cutout {
    fn apply(&self, mut img: ImageF32, rng: &mut SampleRng) -> Result<ImageF32> {
        if img.h == 0 || img.w == 0 || !rng.bernoulli(self.p) {
            return Ok(img);
        }
        let cy = rng.below(img.h) as isize;
        let cx = rng.below(img.w) as isize;
        let half = (self.size / 2) as isize;
        let y0 = (cy - half).clamp(0, img.h as isize) as usize;
        let y1 = (cy - half + self.size as isize).clamp(0, img.h as isize) as usize;
        let x0 = (cx - half).clamp(0, img.w as isize) as usize;
        let x1 = (cx - half + self.size as isize).clamp(0, img.w as isize) as usize;
        for c in 0..img.c {
            for y in y0..y1 {
                let a = img.at(c, y, x0);
                img.data[a..a + (x1 - x0)].fill(0.0);
            }
        }
        Ok(img)
    }
}

/// Separable resampling weights for one axis: for each output position, the first input
/// index and the normalized weights. Triangle (bilinear) filter with half-pixel centres,
/// widened when downscaling (antialiased, as PIL does).
fn axis_weights(in_start: f64, in_len: f64, in_size: usize, out: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = in_len / out as f64;
    let fscale = scale.max(1.0);
    let support = fscale;
    (0..out)
        .map(|x| {
            let center = in_start + (x as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0) as usize).min(in_size - 1);
            let hi = ((center + support + 0.5).floor() as usize).clamp(lo + 1, in_size);
            let mut w: Vec<f64> =
                (lo..hi).map(|j| (1.0 - ((j as f64 + 0.5 - center) / fscale).abs()).max(0.0)).collect();
            let sum: f64 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // the region falls between sample centres: nearest pixel
                w.iter_mut().for_each(|v| *v = 0.0);
                let nearest = (center.floor().max(0.0) as usize).clamp(lo, hi - 1);
                w[nearest - lo] = 1.0;
            }
            (lo, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// Bilinear resize of the region `(top, left, height, width)` (in input pixels, may be
/// fractional) to `out_h x out_w`; antialiased when shrinking.
pub fn resize_region(img: &ImageF32, region: (f64, f64, f64, f64), out_h: usize, out_w: usize) -> Result<ImageF32> {
    let (top, left, rh, rw) = region;
    if img.h == 0 || img.w == 0 || out_h == 0 || out_w == 0 || rh <= 0.0 || rw <= 0.0 {
        return Err(DatasetError::invalid(format!(
            "cannot resize a {}x{} region of a {}x{} image to {out_h}x{out_w}",
            rh, rw, img.h, img.w
        )));
    }
    let wy = axis_weights(top, rh, img.h, out_h);
    let wx = axis_weights(left, rw, img.w, out_w);
    // horizontal pass: c x in_h x out_w
    let mut tmp = vec![0f32; img.c * img.h * out_w];
    for c in 0..img.c {
        for y in 0..img.h {
            let row = &img.data[img.at(c, y, 0)..img.at(c, y, 0) + img.w];
            let o = (c * img.h + y) * out_w;
            for (x, (lo, w)) in wx.iter().enumerate() {
                tmp[o + x] = w.iter().zip(&row[*lo..]).map(|(a, b)| a * b).sum();
            }
        }
    }
    let mut out = ImageF32::zeros(img.c, out_h, out_w);
    for c in 0..img.c {
        for (y, (lo, w)) in wy.iter().enumerate() {
            let dst = out.at(c, y, 0);
            for (k, wk) in w.iter().enumerate() {
                let src = (c * img.h + lo + k) * out_w;
                for x in 0..out_w {
                    out.data[dst + x] += wk * tmp[src + x];
                }
            }
        }
    }
    Ok(out)
}

/// Resizes so that the shorter side becomes `size`, keeping the aspect ratio
/// (torchvision's `Resize(int)`), bilinear.
#[derive(Clone, Debug)]
pub struct Resize {
    /// Target length of the shorter side.
    pub size: usize,
}

impl Resize {
    fn target(&self, h: usize, w: usize) -> (usize, usize) {
        if h <= w {
            (self.size, (self.size as u64 * w as u64 / h.max(1) as u64) as usize)
        } else {
            ((self.size as u64 * h as u64 / w.max(1) as u64) as usize, self.size)
        }
    }
}

impl Transform for Resize {
    fn apply(&self, img: ImageF32, _rng: &mut SampleRng) -> Result<ImageF32> {
        let (oh, ow) = self.target(img.h, img.w);
        if (oh, ow) == (img.h, img.w) {
            return Ok(img);
        }
        resize_region(&img, (0.0, 0.0, img.h as f64, img.w as f64), oh, ow)
    }
    fn output_shape(&self, i: [usize; 3]) -> [usize; 3] {
        let (h, w) = self.target(i[1], i[2]);
        [i[0], h, w]
    }
}

/// Crops the centre `height x width` (zero-padding an image smaller than that), as
/// torchvision's `CenterCrop`.
#[derive(Clone, Debug)]
pub struct CenterCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl Transform for CenterCrop {
    fn apply(&self, img: ImageF32, _rng: &mut SampleRng) -> Result<ImageF32> {
        // Express as a crop of the image padded symmetrically enough to hold the output.
        let pad_h = self.height.saturating_sub(img.h).div_ceil(2);
        let pad_w = self.width.saturating_sub(img.w).div_ceil(2);
        let pad = pad_h.max(pad_w);
        let ph = img.h + 2 * pad;
        let pw = img.w + 2 * pad;
        let top = ((ph - self.height) as f64 / 2.0).round() as usize;
        let left = ((pw - self.width) as f64 / 2.0).round() as usize;
        let crop = RandomCrop { height: self.height, width: self.width, padding: pad };
        Ok(crop.crop_at(&img, top, left))
    }
    fn output_shape(&self, i: [usize; 3]) -> [usize; 3] {
        [i[0], self.height, self.width]
    }
}

/// torchvision's `RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))`: a random
/// region of random area and aspect ratio, resized (bilinear) to `height x width`.
#[derive(Clone, Debug)]
pub struct RandomResizedCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Range of the region's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the region's aspect ratio (width / height).
    pub ratio: (f64, f64),
}

impl RandomResizedCrop {
    /// The region `(top, left, h, w)` torchvision's algorithm would pick.
    pub fn region(&self, h: usize, w: usize, rng: &mut SampleRng) -> (usize, usize, usize, usize) {
        let area = (h * w) as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.uniform(self.scale.0, self.scale.1);
            let aspect = rng.uniform(lr0, lr1).exp();
            let cw = (target * aspect).sqrt().round() as usize;
            let ch = (target / aspect).sqrt().round() as usize;
            if cw > 0 && ch > 0 && cw <= w && ch <= h {
                let top = rng.below(h - ch + 1);
                let left = rng.below(w - cw + 1);
                return (top, left, ch, cw);
            }
        }
        let in_ratio = w as f64 / h as f64;
        let (ch, cw) = if in_ratio < self.ratio.0 {
            (((w as f64 / self.ratio.0).round() as usize).max(1), w)
        } else if in_ratio > self.ratio.1 {
            (h, ((h as f64 * self.ratio.1).round() as usize).max(1))
        } else {
            (h, w)
        };
        ((h - ch.min(h)) / 2, (w - cw.min(w)) / 2, ch.min(h), cw.min(w))
    }
}

impl Transform for RandomResizedCrop {
    fn apply(&self, img: ImageF32, rng: &mut SampleRng) -> Result<ImageF32> {
        if img.h == 0 || img.w == 0 {
            return Err(DatasetError::invalid("random resized crop of an empty image"));
        }
        let (t, l, ch, cw) = self.region(img.h, img.w, rng);
        resize_region(&img, (t as f64, l as f64, ch as f64, cw as f64), self.height, self.width)
    }
    fn output_shape(&self, i: [usize; 3]) -> [usize; 3] {
        [i[0], self.height, self.width]
    }
}

/// Conversion to `f32` followed by a list of transforms.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    steps: Vec<Arc<dyn Transform>>,
}

impl Pipeline {
    /// The empty pipeline: conversion to `f32` in `[0, 1]` only.
    pub fn new() -> Self {
        Pipeline { steps: Vec::new() }
    }
    /// Appends any transform.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Arc::new(t));
        self
    }
    /// Appends a square [`RandomCrop`] with zero padding.
    pub fn random_crop(self, size: usize, padding: usize) -> Self {
        self.then(RandomCrop { height: size, width: size, padding })
    }
    /// Appends a [`RandomHorizontalFlip`].
    pub fn horizontal_flip(self, p: f64) -> Self {
        self.then(RandomHorizontalFlip { p })
    }
    /// Appends a [`Normalize`].
    pub fn normalize(self, n: Normalization) -> Self {
        self.then(Normalize(n))
    }
    /// Appends a [`Cutout`] applied always.
    pub fn cutout(self, size: usize) -> Self {
        self.then(Cutout { size, p: 1.0 })
    }
    /// Appends a square [`RandomResizedCrop`] with torchvision's default scale and ratio.
    pub fn random_resized_crop(self, size: usize) -> Self {
        self.then(RandomResizedCrop { height: size, width: size, scale: (0.08, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0) })
    }
    /// Appends a [`Resize`] of the shorter side.
    pub fn resize(self, size: usize) -> Self {
        self.then(Resize { size })
    }
    /// Appends a square [`CenterCrop`].
    pub fn center_crop(self, size: usize) -> Self {
        self.then(CenterCrop { height: size, width: size })
    }
    /// The transforms, in order.
    pub fn steps(&self) -> &[Arc<dyn Transform>] {
        &self.steps
    }
    /// The output shape for an input of shape `input`.
    pub fn output_shape(&self, input: [usize; 3]) -> [usize; 3] {
        self.steps.iter().fold(input, |s, t| t.output_shape(s))
    }
    /// Applies the transforms to an `f32` image.
    pub fn apply_f32(&self, mut img: ImageF32, rng: &mut SampleRng) -> Result<ImageF32> {
        for t in &self.steps {
            img = t.apply(img, rng)?;
        }
        Ok(img)
    }
    /// Converts a sample to `f32` (dividing by `pixel_max`) and applies the transforms.
    pub fn apply(&self, sample: &Sample, pixel_max: f32, rng: &mut SampleRng) -> Result<ImageF32> {
        let img = ImageF32::from_u8_chw(&sample.pixels, sample.shape, pixel_max)?;
        self.apply_f32(img, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> ImageF32 {
        ImageF32 { c, h, w, data: (0..c * h * w).map(|v| v as f32 + 1.0).collect() }
    }

    #[test]
    fn crop_with_padding() {
        let img = ramp(1, 3, 3); // 1 2 3 / 4 5 6 / 7 8 9
        let crop = RandomCrop { height: 3, width: 3, padding: 1 };
        assert_eq!(crop.crop_at(&img, 1, 1).data, img.data);
        assert_eq!(crop.crop_at(&img, 0, 0).data, vec![0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        assert_eq!(crop.crop_at(&img, 2, 2).data, vec![5., 6., 0., 8., 9., 0., 0., 0., 0.]);
        assert_eq!(crop.crop_at(&img, 0, 2).data, vec![0., 0., 0., 2., 3., 0., 5., 6., 0.]);
        // every offset over many draws stays in range and keeps the shape
        let mut rng = SampleRng::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let out = crop.apply(img.clone(), &mut rng).unwrap();
            assert_eq!((out.h, out.w), (3, 3));
            seen.insert(out.data.iter().map(|v| *v as i32).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), 9);
        let big = RandomCrop { height: 6, width: 3, padding: 1 };
        assert!(big.apply(img, &mut rng).is_err());
    }

    #[test]
    fn flip() {
        let mut img = ramp(2, 2, 3);
        hflip(&mut img);
        assert_eq!(img.data, vec![3., 2., 1., 6., 5., 4., 9., 8., 7., 12., 11., 10.]);
        let always = RandomHorizontalFlip { p: 1.0 };
        let never = RandomHorizontalFlip { p: 0.0 };
        let mut rng = SampleRng::new(0);
        assert_eq!(always.apply(ramp(1, 1, 3), &mut rng).unwrap().data, vec![3., 2., 1.]);
        assert_eq!(never.apply(ramp(1, 1, 3), &mut rng).unwrap().data, vec![1., 2., 3.]);
    }

    #[test]
    fn normalize_numerics() {
        let img = ImageF32::from_u8_chw(&[0, 255, 51, 102], [2, 1, 2], 255.0).unwrap();
        let n = Normalize(Normalization::new(vec![0.5, 0.2], vec![0.25, 0.1]));
        let out = n.apply(img, &mut SampleRng::new(0)).unwrap();
        let want = [-2.0, 2.0, 0.0, 2.0];
        for (a, b) in out.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{:?}", out.data);
        }
        let bad = Normalize(Normalization::mnist());
        assert!(bad.apply(ramp(3, 1, 1), &mut SampleRng::new(0)).is_err());
    }

    #[test]
    fn cutout_zeroes_a_clipped_square() {
        let c = Cutout { size: 2, p: 1.0 };
        let mut rng = SampleRng::new(5);
        for _ in 0..50 {
            let out = c.apply(ramp(2, 4, 4), &mut rng).unwrap();
            let zeros = out.data.iter().filter(|v| **v == 0.0).count();
            assert!(zeros == 2 * 4 || zeros == 2 * 2 || zeros == 2, "{zeros}");
        }
    }

    #[test]
    fn resize_and_center_crop() {
        // constant image stays constant; upscaling a 2-pixel ramp is bilinear
        let img = ImageF32 { c: 1, h: 1, w: 2, data: vec![0.0, 1.0] };
        let out = resize_region(&img, (0.0, 0.0, 1.0, 2.0), 1, 4).unwrap();
        let want = [0.0, 0.25, 0.75, 1.0];
        for (a, b) in out.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", out.data);
        }
        let flat = ImageF32 { c: 3, h: 37, w: 50, data: vec![0.5; 3 * 37 * 50] };
        let r = Resize { size: 16 }.apply(flat, &mut SampleRng::new(0)).unwrap();
        assert_eq!((r.h, r.w), (16, 21));
        assert!(r.data.iter().all(|v| (v - 0.5).abs() < 1e-5));
        let cc = CenterCrop { height: 2, width: 2 }.apply(ramp(1, 4, 4), &mut SampleRng::new(0)).unwrap();
        assert_eq!(cc.data, vec![6., 7., 10., 11.]);
        let padded = CenterCrop { height: 3, width: 3 }.apply(ramp(1, 1, 1), &mut SampleRng::new(0)).unwrap();
        assert_eq!(padded.data, vec![0., 0., 0., 0., 1., 0., 0., 0., 0.]);
    }

    #[test]
    fn random_resized_crop_is_seeded() {
        let t = RandomResizedCrop { height: 8, width: 8, scale: (0.08, 1.0), ratio: (0.75, 4.0 / 3.0) };
        let img = ramp(3, 20, 30);
        let a = t.apply(img.clone(), &mut SampleRng::for_sample(1, 0, 3)).unwrap();
        let b = t.apply(img.clone(), &mut SampleRng::for_sample(1, 0, 3)).unwrap();
        let c = t.apply(img, &mut SampleRng::for_sample(1, 0, 4)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.c, a.h, a.w), (3, 8, 8));
        let mut rng = SampleRng::new(2);
        for _ in 0..200 {
            let (t0, l0, h, w) = t.region(20, 30, &mut rng);
            assert!(t0 + h <= 20 && l0 + w <= 30 && h > 0 && w > 0);
        }
    }

    #[test]
    fn pipeline_deterministic() {
        let p = Pipeline::new()
            .random_crop(4, 2)
            .horizontal_flip(0.5)
            .normalize(Normalization::new(vec![0.1], vec![0.2]))
            .cutout(2);
        assert_eq!(p.output_shape([1, 4, 4]), [1, 4, 4]);
        let px: Vec<u8> = (0..16).map(|v| v * 10).collect();
        let s = Sample { pixels: px.into(), shape: [1, 4, 4], label: 0 };
        let run = |i| p.apply(&s, 255.0, &mut SampleRng::for_sample(9, 1, i)).unwrap();
        assert_eq!(run(0), run(0));
        assert!((0..10).any(|i| run(i) != run(0)));
    }
}
