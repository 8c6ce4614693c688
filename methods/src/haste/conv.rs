//! [`HasteConv2d`]: a trained convolution run the HASTE way, with no data and no training.
//!
//! Per image and per patch of `p_h × p_w` output pixels (the whole output map by default): the
//! patch's input window (`(p−1)·stride + k` on a side, from the zero-padded input, so neighbouring
//! windows overlap by `k − stride`) is cut out, its channel vectors are centered and hashed
//! ([`super::hash`]), channels with equal codes are averaged and the matching input slices of the
//! filters summed, and the reduced window is convolved with the reduced filters (stride as the
//! layer's, no padding) by the backend's own convolution, so the reduced work runs on the same
//! kernels (Winograd, direct, im2col) as a dense layer of that width. Images run in parallel.
//!
//! A partial patch at the right or bottom edge is hashed as the full patch's window with zeros
//! outside it (the same hyperplanes), and convolved over its own window only. When no two
//! channels of a patch collide the original filters are used as they are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use autograd::backends::cpu::conv::{with_algorithm, Algorithm};
use autograd::backends::ops::conv_out_len;
use autograd::{Conv2dParams, DType, Device, Error, Result, Tensor};
use layers::{mac, Conv2d, Mode, Module, Param};
use rayon::prelude::*;

use super::cost::{dense_macs, PatchCost};
use super::hash::{buckets, center, Centering, Projection};

/// HASTE's settings for one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HasteSettings {
    /// `L`: hyperplanes per code (0: every channel of a patch in one bucket).
    pub hyperplanes: usize,
    /// `s`: the probability of a zero entry in the projection.
    pub sparsity: f64,
    /// Patch side in output pixels (0: the whole output map is one patch).
    pub patch: usize,
    /// How channel vectors are centered before hashing.
    pub centering: Centering,
    /// The projection's seed.
    pub seed: u64,
}

/// What a layer did since it was built (or since [`HasteConv2d::reset_stats`]): patches,
/// channels kept and operations, summed over every image it ran on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HasteStats {
    /// Images run.
    pub images: u64,
    /// Patches run.
    pub patches: u64,
    /// `Σ C'` over patches.
    pub kept: u64,
    /// `Σ C_in` over patches.
    pub channels: u64,
    /// Operations run (convolution and overhead).
    pub cost: PatchCost,
    /// Multiply-adds the dense convolution would have run on the same images.
    pub dense: u64,
}

impl HasteStats {
    /// Mean `C' / C_in` over patches.
    pub fn kept_fraction(&self) -> f64 {
        self.kept as f64 / self.channels.max(1) as f64
    }
}

#[derive(Default)]
struct Counters {
    images: AtomicU64,
    patches: AtomicU64,
    kept: AtomicU64,
    channels: AtomicU64,
    parts: [AtomicU64; 5],
    dense: AtomicU64,
}

/// A trained convolution (groups 1, dilation 1) replaced by HASTE at inference (see the
/// [module docs](self)). Its parameters keep the convolution's names (`weight`, `bias`), so a
/// state dict of the dense model loads into it and its exports read as the dense model's.
/// Inference only: the output carries no gradient.
///
/// ```
/// use autograd::{Conv2dParams, Tensor};
/// use layers::{Conv2d, Conv2dOptions, Mode, Module};
/// use methods::haste::{Centering, HasteConv2d, HasteSettings};
/// let conv = Conv2d::new(8, 4, 3, Conv2dOptions::default().padding(1)).unwrap();
/// let s = HasteSettings { hyperplanes: 12, sparsity: 2.0 / 3.0, patch: 0, centering: Centering::Channels, seed: 1 };
/// let h = HasteConv2d::from_conv(&conv, s).unwrap();
/// let y = h.forward(&Tensor::randn(&[2, 8, 6, 6], 0).unwrap(), Mode::Eval).unwrap();
/// assert_eq!(y.shape(), &[2, 4, 6, 6]);
/// ```
pub struct HasteConv2d {
    weight: Param,
    bias: Option<Param>,
    params: Conv2dParams,
    settings: HasteSettings,
    projections: Mutex<HashMap<(usize, usize), Arc<Projection>>>,
    counters: Counters,
}

/// One image's output and counts.
struct ImageOut {
    y: Vec<f32>,
    patches: u64,
    kept: u64,
    channels: u64,
    cost: PatchCost,
}

/// A layer's filters for one forward pass: as the convolution takes them, and by input
/// channel (`[C][O][kh·kw]`) for summing the slices of merged channels.
struct Filters {
    tensor: Tensor,
    by_channel: Vec<f32>,
}

/// The geometry shared by every patch of a forward pass.
struct Geometry {
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    /// Patch size in output pixels.
    th: usize,
    tw: usize,
    /// The full patch's input window.
    ih: usize,
    iw: usize,
}

impl HasteConv2d {
    /// HASTE over `conv`'s trained weight and bias. Grouped and dilated convolutions are
    /// refused (HASTE merges input channels across the whole filter depth).
    pub fn from_conv(conv: &Conv2d, settings: HasteSettings) -> Result<HasteConv2d> {
        let op = "HasteConv2d";
        if conv.params.groups != 1 || conv.params.dilation != (1, 1) {
            return Err(Error::invalid(
                op,
                format!(
                    "a convolution with groups {} and dilation {:?}: HASTE replaces only groups-1, undilated convolutions",
                    conv.params.groups, conv.params.dilation
                ),
            ));
        }
        // The projection's arguments, checked once here rather than at the first forward pass.
        Projection::new(settings.hyperplanes, 1, settings.sparsity, settings.seed)
            .map_err(|e| Error::invalid(op, e.to_string()))?;
        let frozen = |t: Tensor| {
            let p = Param::new(t);
            p.set_trainable(false);
            p
        };
        Ok(HasteConv2d {
            weight: frozen(conv.weight.tensor().detach()),
            bias: conv.bias.as_ref().map(|b| frozen(b.tensor().detach())),
            params: conv.params,
            settings,
            projections: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// The layer's settings.
    pub fn settings(&self) -> HasteSettings {
        self.settings
    }

    /// The convolution's geometry (stride, padding).
    pub fn conv_params(&self) -> Conv2dParams {
        self.params
    }

    /// What the layer did since it was built or last reset.
    pub fn stats(&self) -> HasteStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HasteStats {
            images: get(&c.images),
            patches: get(&c.patches),
            kept: get(&c.kept),
            channels: get(&c.channels),
            cost: PatchCost {
                conv: get(&c.parts[0]),
                centering: get(&c.parts[1]),
                hashing: get(&c.parts[2]),
                input_merge: get(&c.parts[3]),
                filter_merge: get(&c.parts[4]),
            },
            dense: get(&c.dense),
        }
    }

    /// Sets the counters of [`HasteConv2d::stats`] to zero.
    pub fn reset_stats(&self) {
        let c = &self.counters;
        for a in [&c.images, &c.patches, &c.kept, &c.channels, &c.dense].into_iter().chain(&c.parts) {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// The hyperplanes for windows of `ih × iw` values (drawn once per window size).
    pub fn projection(&self, ih: usize, iw: usize) -> Result<Arc<Projection>> {
        let mut cache =
            self.projections.lock().map_err(|_| Error::invalid("HasteConv2d", "projection cache poisoned"))?;
        if let Some(p) = cache.get(&(ih, iw)) {
            return Ok(p.clone());
        }
        let s = &self.settings;
        let p =
            Arc::new(Projection::new(s.hyperplanes, ih * iw, s.sparsity, s.seed ^ ((ih as u64) << 16 | iw as u64))?);
        cache.insert((ih, iw), p.clone());
        Ok(p)
    }

    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<Geometry> {
        let op = "HasteConv2d";
        if x.len() != 4 || x[1] != w[1] {
            return Err(Error::invalid(op, format!("expected an input [N, {}, H, W], got {x:?}", w[1])));
        }
        let (sh, sw) = self.params.stride;
        let (ph, pw) = self.params.padding;
        let (kh, kw) = (w[2], w[3]);
        let (oh, ow) = match (conv_out_len(x[2], kh, sh, ph, 1), conv_out_len(x[3], kw, sw, pw, 1)) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(Error::invalid(
                    op,
                    format!("a {kh}x{kw} kernel (padding {ph},{pw}) does not fit the input {}x{}", x[2], x[3]),
                ))
            }
        };
        let (th, tw) = match self.settings.patch {
            0 => (oh, ow),
            p => (p.min(oh), p.min(ow)),
        };
        let (ih, iw) = ((th - 1) * sh + kh, (tw - 1) * sw + kw);
        Ok(Geometry { c: x[1], o: w[0], h: x[2], w: x[3], kh, kw, sh, sw, ph, pw, oh, ow, th, tw, ih, iw })
    }

    /// One image (`x`: `C × H × W`) through HASTE, without the bias.
    fn image(&self, g: &Geometry, x: &[f32], filters: &Filters, proj: &Projection) -> Result<ImageOut> {
        let (c, o, kk) = (g.c, g.o, g.kh * g.kw);
        let d = g.ih * g.iw;
        let mut out =
            ImageOut { y: vec![0.0; o * g.oh * g.ow], patches: 0, kept: 0, channels: 0, cost: PatchCost::default() };
        let (mut window, mut centered, mut codes) = (vec![0.0f32; c * d], Vec::new(), vec![0u64; c]);
        let params = Conv2dParams { stride: (g.sh, g.sw), ..Conv2dParams::default() };
        for y0 in (0..g.oh).step_by(g.th) {
            for x0 in (0..g.ow).step_by(g.tw) {
                let (th, tw) = (g.th.min(g.oh - y0), g.tw.min(g.ow - x0));
                let (ih, iw) = ((th - 1) * g.sh + g.kh, (tw - 1) * g.sw + g.kw);
                // The window, zero outside the input (padding) and outside a partial patch.
                window.fill(0.0);
                // Input columns `ix0..ix1` land at window columns `col0..` (the rest is padding).
                let col0 = g.pw.saturating_sub(x0 * g.sw);
                let ix0 = (x0 * g.sw + col0).saturating_sub(g.pw);
                let ix1 = (x0 * g.sw + iw).saturating_sub(g.pw).min(g.w);
                for ch in 0..c {
                    let plane = &x[ch * g.h * g.w..(ch + 1) * g.h * g.w];
                    for r in 0..ih {
                        let Some(iy) = (y0 * g.sh + r).checked_sub(g.ph).filter(|&iy| iy < g.h) else { continue };
                        if ix1 > ix0 {
                            let dst = ch * d + r * g.iw + col0;
                            window[dst..dst + ix1 - ix0].copy_from_slice(&plane[iy * g.w + ix0..iy * g.w + ix1]);
                        }
                    }
                }
                center(&window, c, d, self.settings.centering, &mut centered);
                for (ch, code) in codes.iter_mut().enumerate() {
                    *code = proj.code(&centered[ch * d..(ch + 1) * d]);
                }
                let (order, starts) = buckets(&codes);
                let kept = starts.len() - 1;
                // The reduced window `[1, C', ih, iw]` and filters `[O, C', kh, kw]`.
                let (xr, wr) = if kept == c {
                    let mut xr = vec![0.0f32; c * ih * iw];
                    for ch in 0..c {
                        for r in 0..ih {
                            let src = ch * d + r * g.iw;
                            xr[(ch * ih + r) * iw..(ch * ih + r + 1) * iw].copy_from_slice(&window[src..src + iw]);
                        }
                    }
                    (xr, None)
                } else {
                    // Whole channel vectors summed (contiguous adds), then averaged.
                    let mut merged = vec![0.0f32; kept * d];
                    // The filter slices by input channel (`[C][O·kh·kw]`), summed per bucket.
                    let ok = o * kk;
                    let mut summed = vec![0.0f32; kept * ok];
                    for j in 0..kept {
                        let members = &order[starts[j]..starts[j + 1]];
                        let dst = &mut merged[j * d..(j + 1) * d];
                        let wdst = &mut summed[j * ok..(j + 1) * ok];
                        for &ch in members {
                            let ch = ch as usize;
                            dst.iter_mut().zip(&window[ch * d..(ch + 1) * d]).for_each(|(a, b)| *a += b);
                            wdst.iter_mut().zip(&filters.by_channel[ch * ok..(ch + 1) * ok]).for_each(|(a, b)| *a += b);
                        }
                        let inv = 1.0 / members.len() as f32;
                        dst.iter_mut().for_each(|v| *v *= inv);
                    }
                    // This patch's window of each merged channel.
                    let xr = if (ih, iw) == (g.ih, g.iw) {
                        merged
                    } else {
                        let mut xr = Vec::with_capacity(kept * ih * iw);
                        for j in 0..kept {
                            for r in 0..ih {
                                xr.extend_from_slice(&merged[j * d + r * g.iw..j * d + r * g.iw + iw]);
                            }
                        }
                        xr
                    };
                    // `[C'][O][kh·kw]` to the convolution's `[O][C'][kh·kw]`.
                    let mut wr = vec![0.0f32; o * kept * kk];
                    for j in 0..kept {
                        for oc in 0..o {
                            wr[(oc * kept + j) * kk..(oc * kept + j + 1) * kk]
                                .copy_from_slice(&summed[(j * o + oc) * kk..(j * o + oc + 1) * kk]);
                        }
                    }
                    (xr, Some(wr))
                };
                let xt = Tensor::from_vec(xr, &[1, kept, ih, iw])?;
                let wt = match wr {
                    Some(wr) => Tensor::from_vec(wr, &[o, kept, g.kh, g.kw])?,
                    None => filters.tensor.clone(),
                };
                let yt = reduced_conv(&xt, &wt, params)?.to_vec::<f32>()?;
                for oc in 0..o {
                    for r in 0..th {
                        let dst = (oc * g.oh + y0 + r) * g.ow + x0;
                        out.y[dst..dst + tw].copy_from_slice(&yt[(oc * th + r) * tw..(oc * th + r + 1) * tw]);
                    }
                }
                out.patches += 1;
                out.kept += kept as u64;
                out.channels += c as u64;
                let cost =
                    PatchCost::new(c, kept, o, d, ih * iw, proj.nonzeros(), kk, th * tw, self.settings.centering);
                out.cost.add(&cost);
            }
        }
        Ok(out)
    }
}

/// The reduced convolution of one patch: im2col and the GEMM on the CPU. Its filters are new for
/// every image, so the algorithms that transform filters first (Winograd) would pay the
/// transform per image; measured on the small protocol's ResNet-18 (`haste_infer`, Zen 4, 2
/// threads, loaded machine), im2col ran HASTE 1.5x faster than the planner's choice at batch 1
/// and at batch 128.
fn reduced_conv(x: &Tensor, w: &Tensor, params: Conv2dParams) -> Result<Tensor> {
    with_algorithm(Algorithm::Im2col, || x.conv2d(w, None, params))
}

impl Module for HasteConv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let wshape = self.weight.tensor().shape().to_vec();
        let g = self.geometry(x.shape(), &wshape)?;
        let proj = self.projection(g.ih, g.iw)?;
        let (dtype, device) = (x.dtype(), x.device());
        let host = |t: &Tensor| -> Result<Vec<f32>> { t.to_dtype(DType::F32)?.to_device(Device::Cpu)?.to_vec::<f32>() };
        let xs = host(x)?;
        let weight = host(&self.weight.tensor())?;
        let kk = g.kh * g.kw;
        let mut by_channel = vec![0.0f32; weight.len()];
        for oc in 0..g.o {
            for ch in 0..g.c {
                by_channel[(ch * g.o + oc) * kk..(ch * g.o + oc + 1) * kk]
                    .copy_from_slice(&weight[(oc * g.c + ch) * kk..(oc * g.c + ch + 1) * kk]);
            }
        }
        let filters = Filters { tensor: Tensor::from_vec(weight, &wshape)?, by_channel };
        let n = x.shape()[0];
        let per_image = g.c * g.h * g.w;
        let images: Vec<ImageOut> = (0..n)
            .into_par_iter()
            .map(|i| self.image(&g, &xs[i * per_image..(i + 1) * per_image], &filters, &proj))
            .collect::<Result<_>>()?;
        let plane = g.oh * g.ow;
        let mut y = Vec::with_capacity(n * g.o * plane);
        let bias = self.bias.as_ref().map(|b| host(&b.tensor())).transpose()?;
        let mut total = PatchCost::default();
        let c = &self.counters;
        for img in &images {
            match &bias {
                Some(b) => {
                    for (oc, chunk) in img.y.chunks_exact(plane).enumerate() {
                        y.extend(chunk.iter().map(|v| v + b[oc]));
                    }
                }
                None => y.extend_from_slice(&img.y),
            }
            total.add(&img.cost);
            c.patches.fetch_add(img.patches, Ordering::Relaxed);
            c.kept.fetch_add(img.kept, Ordering::Relaxed);
            c.channels.fetch_add(img.channels, Ordering::Relaxed);
        }
        let parts = [total.conv, total.centering, total.hashing, total.input_merge, total.filter_merge];
        for (a, v) in c.parts.iter().zip(parts) {
            a.fetch_add(v, Ordering::Relaxed);
        }
        c.images.fetch_add(n as u64, Ordering::Relaxed);
        c.dense.fetch_add(n as u64 * dense_macs(g.c, g.o, g.kh * g.kw, g.oh, g.ow), Ordering::Relaxed);
        let y = Tensor::from_vec(y, &[n, g.o, g.oh, g.ow])?.to_dtype(dtype)?.to_device(device)?;
        mac::record(Some(&self.weight), "haste_conv2d", total.total(), x.shape(), y.shape());
        Ok(y)
    }

    fn params(&self) -> Vec<(String, Param)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}
