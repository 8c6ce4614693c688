//! The MoD block's channel routing as two fused ops: [`gather_channels`] (the selected planes of
//! each sample, in order) and [`fuse_first_k`] (the scaled branch output added to the first `k`
//! channels, the untouched channels copied, and the block's ReLU, in one pass over the map).
//!
//! As separate tensor ops the fusion is a scaling, a narrow and an addition on `k` channels,
//! then a concatenation and a ReLU that each read and write all `C` channels, and the gather
//! needs an index tensor broadcast to `[B, k, H, W]`; backward repeats that. The selected
//! channels are few (`k = C/64` in the paper's ResNets), so those whole-map passes are most of
//! what the block does besides its branch. Fused, the forward pass reads `x` once and writes
//! `y` once, and the backward pass reads the output gradient once for `dx` and once more on
//! the `k` selected planes for the branch and the scores.
//!
//! The forward kernels are profiler scopes of their op's name (the backward rules are timed as
//! every rule is). Where the kernels run is decided in one place ([`fused`]): f32 and f64 on
//! the CPU, contiguous or not. Elsewhere (CUDA tensors) both ops are the composite of tensor ops
//! they replace, which the tests also hold the kernels against.

use autograd::backends::{FloatElement, Storage};
use autograd::{profile, BackwardOp, DType, Device, Error, Result, Tensor};
use rayon::prelude::*;

/// Whether the fused kernels compute the routing of `x`: host tensors of f32 or f64.
fn fused(x: &Tensor) -> bool {
    x.device() == Device::Cpu && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `f` on the elements of the host tensor `t` in row-major order (no copy when `t` is
/// contiguous).
fn with_host<T: FloatElement, R>(op: &'static str, t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let t = if t.is_contiguous() { t.clone() } else { t.contiguous()? };
    let guard = t.storage();
    #[allow(unreachable_patterns)] // one variant without the `cuda` feature
    let cpu = match &*guard {
        Storage::Cpu(cpu) => cpu,
        _ => return Err(Error::invalid(op, "expected a host tensor")),
    };
    let all = cpu.as_slice::<T>().ok_or_else(|| Error::invalid(op, format!("expected {:?} elements", T::DTYPE)))?;
    let off = t.layout().offset();
    Ok(f(&all[off..off + t.numel()]))
}

/// The `[B, C, H, W]` shape of `x` and the `[B, k]` routing `indices` (i64, each in `0..C`) as
/// host values, checked.
fn routing(op: &'static str, x: &Tensor, indices: &Tensor) -> Result<([usize; 4], usize, Vec<usize>)> {
    let [b, c, h, w] = match *x.shape() {
        [b, c, h, w] => [b, c, h, w],
        ref s => return Err(Error::invalid(op, format!("expected an input [B, C, H, W], got {s:?}"))),
    };
    let k = match *indices.shape() {
        [ib, k] if ib == b && k <= c => k,
        ref s => {
            return Err(Error::invalid(
                op,
                format!("indices {s:?} for an input {:?}: expected [{b}, k <= {c}]", x.shape()),
            ))
        }
    };
    let idx = indices.to_vec::<i64>()?;
    let idx: Vec<usize> = idx
        .into_iter()
        .map(|i| usize::try_from(i).ok().filter(|&i| i < c))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::invalid(op, format!("an index outside 0..{c}")))?;
    Ok(([b, c, h, w], k, idx))
}

/// `out[b, j] = x[b, indices[b, j]]`: the planes of each sample's selected channels, in order,
/// `[B, k, H, W]` from `x` `[B, C, H, W]` and `indices` `[B, k]` (i64; gradient to `x` only).
///
/// ```
/// use autograd::Tensor;
/// use methods::cnn_mod::gather_channels;
/// let x = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[1, 4, 1, 2]).unwrap();
/// let i = Tensor::from_vec(vec![2i64, 0], &[1, 2]).unwrap();
/// assert_eq!(gather_channels(&x, &i).unwrap().to_vec::<f32>().unwrap(), [4.0, 5.0, 0.0, 1.0]);
/// ```
pub fn gather_channels(x: &Tensor, indices: &Tensor) -> Result<Tensor> {
    const OP: &str = "gather_channels";
    let ([b, c, h, w], k, idx) = routing(OP, x, indices)?;
    if !fused(x) {
        return gather_composite(x, indices, [b, k, h, w]);
    }
    let hw = h * w;
    let y = profile::scope(OP, Device::Cpu, || match x.dtype() {
        DType::F32 => with_host::<f32, _>(OP, x, |xs| gather_planes(xs, &idx, c, k, hw, [b, k, h, w]))?,
        _ => with_host::<f64, _>(OP, x, |xs| gather_planes(xs, &idx, c, k, hw, [b, k, h, w]))?,
    })?;
    Ok(Tensor::from_op(y, &[x], GatherBackward { idx, c, k, shape: [b, c, h, w] }))
}

/// [`gather_channels`] as tensor ops (`shape`: the output's `[B, k, H, W]`).
fn gather_composite(x: &Tensor, indices: &Tensor, [b, k, h, w]: [usize; 4]) -> Result<Tensor> {
    let at = indices.reshape(&[b as isize, k as isize, 1, 1])?.broadcast_to(&[b, k, h, w])?.contiguous()?;
    x.gather(1, &at)
}

fn gather_planes<T: FloatElement>(
    xs: &[T],
    idx: &[usize],
    c: usize,
    k: usize,
    hw: usize,
    shape: [usize; 4],
) -> Result<Tensor> {
    let mut out = vec![T::zero(); shape.iter().product()];
    if hw > 0 && k > 0 {
        out.par_chunks_mut(k * hw).enumerate().for_each(|(s, o)| {
            for (j, plane) in o.chunks_exact_mut(hw).enumerate() {
                let ch = idx[s * k + j];
                plane.copy_from_slice(&xs[(s * c + ch) * hw..(s * c + ch + 1) * hw]);
            }
        });
    }
    Tensor::from_vec(out, &shape)
}

/// The gradient of [`gather_channels`]: each plane of the output gradient added back at the
/// channel it came from, zero elsewhere.
struct GatherBackward {
    idx: Vec<usize>,
    c: usize,
    k: usize,
    shape: [usize; 4],
}

impl GatherBackward {
    fn scatter<T: FloatElement>(&self, gs: &[T]) -> Result<Tensor> {
        let hw = self.shape[2] * self.shape[3];
        let (c, k) = (self.c, self.k);
        let mut dx = vec![T::zero(); self.shape.iter().product()];
        if hw > 0 && c > 0 {
            dx.par_chunks_mut(c * hw).enumerate().for_each(|(s, d)| {
                for j in 0..k {
                    let ch = self.idx[s * k + j];
                    let src = &gs[(s * k + j) * hw..(s * k + j + 1) * hw];
                    d[ch * hw..(ch + 1) * hw].iter_mut().zip(src).for_each(|(a, &g)| *a += g);
                }
            });
        }
        Tensor::from_vec(dx, &self.shape)
    }
}

impl BackwardOp for GatherBackward {
    fn name(&self) -> &'static str {
        "gather_channels"
    }

    fn backward(&self, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let dx = match g.dtype() {
            DType::F32 => with_host::<f32, _>("gather_channels backward", g, |gs| self.scatter(gs))??,
            _ => with_host::<f64, _>("gather_channels backward", g, |gs| self.scatter(gs))??,
        };
        Ok(vec![Some(dx)])
    }
}

/// The MoD fusion: `y[:, :k] = x[:, :k] + weights[:, :, None, None] · processed`, `y[:, k:] =
/// x[:, k:]`, then the ReLU when `relu`; `x` `[B, C, H, W]`, `processed` `[B, k, H, W]` (the
/// branch's output for the selected channels), `weights` `[B, k]` (their scores). Gradients to
/// all three.
///
/// ```
/// use autograd::Tensor;
/// use methods::cnn_mod::fuse_first_k;
/// let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], &[1, 3, 1, 1]).unwrap();
/// let p = Tensor::from_vec(vec![-4.0f32], &[1, 1, 1, 1]).unwrap();
/// let s = Tensor::from_vec(vec![0.5f32], &[1, 1]).unwrap();
/// assert_eq!(fuse_first_k(&x, &p, &s, false).unwrap().to_vec::<f32>().unwrap(), [-1.0, -2.0, 3.0]);
/// assert_eq!(fuse_first_k(&x, &p, &s, true).unwrap().to_vec::<f32>().unwrap(), [0.0, 0.0, 3.0]);
/// ```
pub fn fuse_first_k(x: &Tensor, processed: &Tensor, weights: &Tensor, relu: bool) -> Result<Tensor> {
    const OP: &str = "fuse_first_k";
    let (b, c, h, w, k) = match (x.shape(), processed.shape(), weights.shape()) {
        (&[b, c, h, w], &[pb, k, ph, pw], &[wb, wk]) if (pb, ph, pw, wb, wk) == (b, h, w, b, k) && k <= c => {
            (b, c, h, w, k)
        }
        (xs, ps, ws) => {
            let want = "[B, C, H, W], [B, k, H, W], [B, k] with k <= C";
            return Err(Error::invalid(OP, format!("x {xs:?}, processed {ps:?}, weights {ws:?}: expected {want}")));
        }
    };
    for t in [processed, weights] {
        if (t.dtype(), t.device()) != (x.dtype(), x.device()) {
            return Err(Error::invalid(
                OP,
                format!("x is {:?} on {:?}, an operand {:?} on {:?}", x.dtype(), x.device(), t.dtype(), t.device()),
            ));
        }
    }
    if !fused(x) {
        return fuse_composite(x, processed, weights, relu);
    }
    let geo = Fusion { b, c, k, hw: h * w, relu };
    let y = profile::scope(OP, Device::Cpu, || match x.dtype() {
        DType::F32 => geo.forward::<f32>(x, processed, weights),
        _ => geo.forward::<f64>(x, processed, weights),
    })?;
    let rule = FuseBackward { geo, y: y.clone(), processed: processed.detach(), weights: weights.detach() };
    Ok(Tensor::from_op(y, &[x, processed, weights], rule))
}

/// [`fuse_first_k`] as tensor ops (shapes checked by the caller).
fn fuse_composite(x: &Tensor, processed: &Tensor, weights: &Tensor, relu: bool) -> Result<Tensor> {
    let (b, c, k) = (x.shape()[0], x.shape()[1], processed.shape()[1]);
    let scaled = processed.mul(&weights.reshape(&[b as isize, k as isize, 1, 1])?)?;
    let head = x.narrow(1, 0, k)?.add(&scaled)?;
    let y = if k < c { Tensor::cat(&[&head, &x.narrow(1, k, c - k)?], 1)? } else { head };
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// Planes per parallel task: at least 16K elements, so small maps do not make tiny tasks.
fn planes_per_task(hw: usize) -> usize {
    (16 << 10) / hw.max(1) + 1
}

/// The block's activation: ReLU (zero for anything not above zero) or the identity.
#[inline(always)]
fn act<T: FloatElement>(v: T, relu: bool) -> T {
    match relu {
        true if v > T::zero() => v,
        true => T::zero(),
        false => v,
    }
}

/// The sizes of one fusion.
#[derive(Clone, Copy)]
struct Fusion {
    b: usize,
    c: usize,
    k: usize,
    hw: usize,
    relu: bool,
}

impl Fusion {
    fn forward<T: FloatElement>(&self, x: &Tensor, p: &Tensor, w: &Tensor) -> Result<Tensor> {
        const OP: &str = "fuse_first_k";
        let Fusion { b, c, k, hw, relu } = *self;
        let ws = w.to_vec::<T>()?;
        let n = b * c * hw;
        let mut y: Vec<T> = Vec::with_capacity(n);
        with_host::<T, _>(OP, x, |xs| {
            with_host::<T, _>(OP, p, |ps| {
                if n == 0 {
                    return;
                }
                // One task per run of planes (plane `i` is channel `i % c` of sample `i / c`).
                y.spare_capacity_mut()[..n].par_chunks_mut(hw).with_min_len(planes_per_task(hw)).enumerate().for_each(
                    |(i, yp)| {
                        let (s, ch) = (i / c, i % c);
                        let xp = &xs[i * hw..(i + 1) * hw];
                        if ch < k {
                            let (wj, pp) = (ws[s * k + ch], &ps[(s * k + ch) * hw..(s * k + ch + 1) * hw]);
                            for ((y, &x), &p) in yp.iter_mut().zip(xp).zip(pp) {
                                y.write(act(x + p * wj, relu));
                            }
                        } else {
                            for (y, &x) in yp.iter_mut().zip(xp) {
                                y.write(act(x, relu));
                            }
                        }
                    },
                );
                // SAFETY: the planes above cover the first `n` elements, each written once.
                unsafe { y.set_len(n) };
            })
        })??;
        Tensor::from_vec(y, &[b, c, x.shape()[2], x.shape()[3]])
    }
}

/// The gradient of [`fuse_first_k`]: `dx` is the output gradient through the ReLU's mask (read
/// from the saved output), `dprocessed` its first `k` planes times the scores, `dweights` their
/// products with the saved branch output summed over each plane.
struct FuseBackward {
    geo: Fusion,
    y: Tensor,
    processed: Tensor,
    weights: Tensor,
}

impl FuseBackward {
    fn grads<T: FloatElement>(&self, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        const OP: &str = "fuse_first_k backward";
        let Fusion { b, c, k, hw, relu } = self.geo;
        let ws = self.weights.to_vec::<T>()?;
        let n = b * c * hw;
        let (mut dx, mut dp, mut dw) = (Vec::with_capacity(n), vec![T::zero(); b * k * hw], vec![T::zero(); b * k]);
        with_host::<T, _>(OP, g, |gs| {
            with_host::<T, _>(OP, &self.y, |ys| {
                with_host::<T, _>(OP, &self.processed, |ps| {
                    if n == 0 {
                        return;
                    }
                    // The output gradient through the ReLU: `dx`, read back for the first k planes.
                    dx.spare_capacity_mut()[..n]
                        .par_chunks_mut(hw)
                        .with_min_len(planes_per_task(hw))
                        .enumerate()
                        .for_each(|(i, dxp)| {
                            let gp = &gs[i * hw..(i + 1) * hw];
                            if relu {
                                for ((d, &g), &y) in dxp.iter_mut().zip(gp).zip(&ys[i * hw..(i + 1) * hw]) {
                                    d.write(if y > T::zero() { g } else { T::zero() });
                                }
                            } else {
                                for (d, &g) in dxp.iter_mut().zip(gp) {
                                    d.write(g);
                                }
                            }
                        });
                    // SAFETY: the planes above cover the first `n` elements, each written once.
                    unsafe { dx.set_len(n) };
                    if k * hw > 0 {
                        let dx = &dx;
                        dp.par_chunks_mut(k * hw).zip(dw.par_chunks_mut(k)).enumerate().for_each(|(s, (dps, dws))| {
                            for j in 0..k {
                                let gm = &dx[(s * c + j) * hw..(s * c + j + 1) * hw];
                                let pj = &ps[(s * k + j) * hw..(s * k + j + 1) * hw];
                                let wj = ws[s * k + j];
                                let mut acc = T::zero();
                                for ((d, &g), &p) in dps[j * hw..(j + 1) * hw].iter_mut().zip(gm).zip(pj) {
                                    *d = g * wj;
                                    acc += g * p;
                                }
                                dws[j] = acc;
                            }
                        });
                    }
                })
            })
        })???;
        let (h, w) = (self.y.shape()[2], self.y.shape()[3]);
        Ok(vec![
            Some(Tensor::from_vec(dx, &[b, c, h, w])?),
            Some(Tensor::from_vec(dp, &[b, k, h, w])?),
            Some(Tensor::from_vec(dw, &[b, k])?),
        ])
    }
}

impl BackwardOp for FuseBackward {
    fn name(&self) -> &'static str {
        "fuse_first_k"
    }

    fn backward(&self, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        match g.dtype() {
            DType::F32 => self.grads::<f32>(g),
            _ => self.grads::<f64>(g),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::{gradcheck, GradcheckOptions};
    use proptest::prelude::*;

    /// `[B, C, H, W]` values, contiguous or a transposed view of `[B, H, C, W]` storage.
    fn input(b: usize, c: usize, h: usize, w: usize, strided: bool, seed: u64) -> Tensor {
        if strided {
            Tensor::randn(&[b, h, c, w], seed).unwrap().transpose(1, 2).unwrap()
        } else {
            Tensor::randn(&[b, c, h, w], seed).unwrap()
        }
    }

    /// Distinct channels per sample, `[B, k]`: a rotation of `0..C` by a per-sample offset,
    /// reversed every other sample.
    fn indices(b: usize, c: usize, k: usize, offset: usize) -> Tensor {
        let v: Vec<i64> = (0..b)
            .flat_map(|s| {
                (0..k).map(move |j| {
                    let j = if s % 2 == 1 { k - 1 - j } else { j };
                    ((j + offset + 3 * s) % c) as i64
                })
            })
            .collect();
        Tensor::from_vec(v, &[b, k]).unwrap()
    }

    fn case() -> impl Strategy<Value = (usize, usize, usize, usize, usize, bool, bool, usize)> {
        (1usize..4, 1usize..9, 1usize..5, 1usize..5, any::<bool>(), any::<bool>(), 0usize..9).prop_flat_map(
            |(b, c, h, w, relu, strided, off)| {
                (Just(b), Just(c), 1..=c, Just(h), Just(w), Just(relu), Just(strided), Just(off))
            },
        )
    }

    /// The block's routing through `gather` and `fuse` with a differentiable stand-in branch
    /// (`selected · scale`): its output and the gradients of `Σ y · r` to `x`, `scale` and
    /// the scores.
    #[allow(clippy::type_complexity)]
    fn route(
        gather: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
        fuse: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
        x: &Tensor,
        idx: &Tensor,
        scale: &Tensor,
        weights: &Tensor,
    ) -> (Vec<f32>, [Vec<f32>; 3]) {
        let (x, scale, weights) =
            (x.detach().requires_grad_(), scale.detach().requires_grad_(), weights.detach().requires_grad_());
        let y = fuse(&x, &gather(&x, idx).unwrap().mul(&scale).unwrap(), &weights).unwrap();
        let r = Tensor::randn(y.shape(), 77).unwrap();
        let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = |t: &Tensor| g.get(t).unwrap().to_vec::<f32>().unwrap();
        (y.to_vec::<f32>().unwrap(), [grad(&x), grad(&scale), grad(&weights)])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The kernels give the composite's output bit for bit, and its gradients (summed in
        /// another order: to rounding).
        #[test]
        fn kernels_equal_the_composite((b, c, k, h, w, relu, strided, off) in case()) {
            let x = input(b, c, h, w, strided, 1);
            let idx = indices(b, c, k, off);
            let scale = Tensor::randn(&[b, k, h, w], 2).unwrap();
            let weights = Tensor::rand(&[b, k], 3).unwrap();
            let fused = route(&|x, i| gather_channels(x, i), &|x, p, s| fuse_first_k(x, p, s, relu), &x, &idx, &scale, &weights);
            let reference = route(
                &|x, i| gather_composite(x, i, [b, k, h, w]),
                &|x, p, s| fuse_composite(x, p, s, relu),
                &x, &idx, &scale, &weights,
            );
            prop_assert_eq!(&fused.0, &reference.0);
            for (a, r) in fused.1.iter().zip(&reference.1) {
                for (u, v) in a.iter().zip(r) {
                    prop_assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{} vs {}", u, v);
                }
            }
        }

        /// f64 gradcheck of both ops together, over shapes, routings, strided inputs, with and
        /// without the ReLU.
        #[test]
        fn gradcheck_gather_and_fuse((b, c, k, h, w, relu, strided, off) in case()) {
            let x = input(b, c, h, w, strided, 4).to_dtype(DType::F64).unwrap();
            let idx = indices(b, c, k, off);
            let scale = Tensor::randn(&[b, k, h, w], 5).unwrap().to_dtype(DType::F64).unwrap();
            let weights = Tensor::rand(&[b, k], 6).unwrap().to_dtype(DType::F64).unwrap();
            let f = |t: &[Tensor]| fuse_first_k(&t[0], &gather_channels(&t[0], &idx)?.mul(&t[1])?, &t[2], relu);
            prop_assert!(gradcheck(f, &[x, scale, weights], &GradcheckOptions::default()).is_ok());
        }
    }

    #[test]
    fn bad_routings_and_shapes_are_errors_naming_the_op() {
        let x = Tensor::randn(&[2, 4, 3, 3], 0).unwrap();
        let out_of_range = Tensor::from_vec(vec![0i64, 4, 1, 2], &[2, 2]).unwrap();
        let e = gather_channels(&x, &out_of_range).unwrap_err().to_string();
        assert!(e.contains("gather_channels") && e.contains("0..4"), "{e}");
        let wrong_batch = Tensor::from_vec(vec![0i64, 1], &[1, 2]).unwrap();
        assert!(gather_channels(&x, &wrong_batch).unwrap_err().to_string().contains("gather_channels"));
        let p = Tensor::randn(&[2, 5, 3, 3], 1).unwrap();
        let s = Tensor::rand(&[2, 5], 2).unwrap();
        let e = fuse_first_k(&x, &p, &s, true).unwrap_err().to_string();
        assert!(e.contains("fuse_first_k") && e.contains("k <= C"), "{e}");
        let p64 = Tensor::randn(&[2, 2, 3, 3], 1).unwrap().to_dtype(DType::F64).unwrap();
        let s = Tensor::rand(&[2, 2], 2).unwrap();
        assert!(fuse_first_k(&x, &p64, &s, true).unwrap_err().to_string().contains("fuse_first_k"));
    }
}
