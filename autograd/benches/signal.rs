//! Cost of the signal transforms that spectral dropout layers wrap, forward + backward, f32:
//!
//! - 1-D: a 3-level db3 DWT of every flattened channel map, a per-band scale (what 1-D SWD
//!   does), the IDWT; both algorithms (one GEMM with the composite matrix, or strided convs);
//! - the same as one GEMM with the band operator `W diag(s) Wᵀ` (built on each call);
//! - 2-D: a one-level db3 DWT2 + IDWT2 (2-D matrix, separable passes, band operator), and a
//!   2-D DCT + inverse;
//!
//! on `[64, 256, 4, 4]` and `[64, 128, 8, 8]` feature maps (ResNet-18 CIFAR stages 4 and 3,
//! batch 64), next to the 3x3 convolution's forward + backward on the same map for scale.
//! A sweep then compares the two DWT algorithms by signal length (what sets
//! `signal::MATRIX_MAX_LEN`).
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p autograd --bench signal`

use autograd::signal::{dct2, idct2, Dwt, Dwt2, DwtAlgorithm, Wavelet};
use autograd::{Conv2dParams, Result, Tensor};

#[path = "../../backends/benches/common/mod.rs"]
mod common;

/// Median wall time in ms of `runs` calls after a warm-up call.
fn time_ms(runs: usize, f: impl FnMut()) -> f64 {
    common::time(runs, f) * 1e3
}

/// One transform under test: a differentiable map of a feature map.
type Transform = Box<dyn Fn(&Tensor) -> Result<Tensor>>;

/// Every `[H, W]` map of `x` (`[B, C, H, W]`) flattened and multiplied by `m` (`[HW, HW]`).
fn apply_to_maps(x: &Tensor, m: &Tensor) -> Result<Tensor> {
    let s = x.shape().to_vec();
    x.reshape_to(&[s[0] * s[1], s[2] * s[3]])?.matmul(m)?.reshape_to(&s)
}

/// Forward + backward of `f` on a fresh leaf copy of `x`, against a fixed output gradient.
fn fwd_bwd(x: &Tensor, gy: &Tensor, f: &dyn Fn(&Tensor) -> Result<Tensor>) {
    let x = x.detach().requires_grad_();
    let loss = f(&x).unwrap().mul(gy).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().shape(), x.shape());
}

/// 1-D SWD's transform: flatten each map, DWT, scale the bands, IDWT, restore the shape.
fn swd1d(x: &Tensor, plan: &Dwt, scale: &Tensor) -> Result<Tensor> {
    let s = x.shape().to_vec();
    let flat = x.reshape_to(&[s[0], s[1], s[2] * s[3]])?;
    plan.inverse_packed(&plan.forward_packed(&flat)?.mul(scale)?)?.reshape_to(&s)
}

/// Per-band scales of the packed coefficients: `a` kept, details scaled by 1/(1−p) = 1/0.9.
fn band_scale(plan: &Dwt) -> Tensor {
    let lens = plan.band_lens();
    let v: Vec<f32> = lens
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| std::iter::repeat_n(if i == 0 { 1.0 } else { 1.0 / 0.9 }, n))
        .collect();
    Tensor::from_vec(v, &[plan.coeffs_len()]).unwrap()
}

fn feature_maps(shape: [usize; 4]) {
    let [_, c, h, w] = shape;
    let x = Tensor::randn(&shape, 1).unwrap();
    let gy = Tensor::randn(&shape, 2).unwrap();
    let runs = 15;
    println!("feature map {shape:?} (f32, forward + backward, median of {runs}):");
    let weight = Tensor::randn(&[c, c, 3, 3], 3).unwrap().mul_scalar(0.05).unwrap().requires_grad_();
    let params = Conv2dParams { padding: (1, 1), ..Default::default() };
    let conv = time_ms(runs, || fwd_bwd(&x, &gy, &|t| t.conv2d(&weight, None, params)));
    println!("  {:<44} {conv:8.2} ms", format!("conv2d 3x3 {c}->{c} (reference)"));
    let plan1 = |alg| Dwt::new(Wavelet::Db3, h * w, 3).unwrap().with_algorithm(alg);
    let plan2 = |alg| Dwt2::new(Wavelet::Db3, (h, w)).unwrap().with_algorithm(alg);
    let rows: Vec<(&str, Transform)> = vec![
        ("mul by a constant (floor: one elementwise op)", Box::new(|t: &Tensor| t.mul_scalar(1.1))),
        ("1-D db3 L3 DWT+scale+IDWT (matrix)", {
            let (plan, scale) = (plan1(DwtAlgorithm::Matrix), band_scale(&plan1(DwtAlgorithm::Matrix)));
            Box::new(move |t: &Tensor| swd1d(t, &plan, &scale))
        }),
        ("1-D db3 L3 DWT+scale+IDWT (conv)", {
            let (plan, scale) = (plan1(DwtAlgorithm::Conv), band_scale(&plan1(DwtAlgorithm::Conv)));
            Box::new(move |t: &Tensor| swd1d(t, &plan, &scale))
        }),
        ("1-D db3 L3 band operator (built + 1 GEMM)", {
            let plan = plan1(DwtAlgorithm::Auto);
            Box::new(move |t: &Tensor| {
                apply_to_maps(t, &plan.band_operator(&[1.0, 1.0 / 0.9, 0.0, 1.0 / 0.9], t.dtype(), t.device())?)
            })
        }),
        ("2-D db3 DWT2+IDWT2 (2-D matrix)", {
            let plan = plan2(DwtAlgorithm::Auto);
            Box::new(move |t: &Tensor| plan.inverse_packed(&plan.forward_packed(t)?.mul_scalar(1.1)?))
        }),
        ("2-D db3 DWT2+IDWT2 (separable matrices)", {
            let plan = plan2(DwtAlgorithm::Matrix);
            Box::new(move |t: &Tensor| plan.inverse_packed(&plan.forward_packed(t)?.mul_scalar(1.1)?))
        }),
        ("2-D db3 band operator (built + 1 GEMM)", {
            let plan = plan2(DwtAlgorithm::Auto);
            Box::new(move |t: &Tensor| {
                apply_to_maps(t, &plan.band_operator(&[1.0, 1.0 / 0.9, 0.0, 1.0 / 0.9], t.dtype(), t.device())?)
            })
        }),
        ("2-D DCT+IDCT", Box::new(|t: &Tensor| idct2(&dct2(t)?.mul_scalar(1.1)?))),
    ];
    for (name, f) in rows.iter() {
        let ms = time_ms(runs, || fwd_bwd(&x, &gy, f.as_ref()));
        println!("  {name:<44} {ms:8.2} ms  ({:.1}% of the conv)", 100.0 * ms / conv);
    }
}

fn sweep() {
    println!("DWT+IDWT forward + backward by signal length (db3, 3 levels, 2^20 samples in all, f32):");
    println!("  {:>6} {:>12} {:>12}", "N", "matrix ms", "conv ms");
    for n in [16, 49, 64, 196, 256, 384, 512, 784, 1024] {
        let rows = (1 << 20) / n;
        let x = Tensor::randn(&[rows, n], 4).unwrap();
        let gy = Tensor::randn(&[rows, n], 5).unwrap();
        let t = |alg| {
            let plan = Dwt::new(Wavelet::Db3, n, 3).unwrap().with_algorithm(alg);
            time_ms(7, || fwd_bwd(&x, &gy, &|t| plan.inverse_packed(&plan.forward_packed(t)?)))
        };
        println!("  {n:>6} {:>12.2} {:>12.2}", t(DwtAlgorithm::Matrix), t(DwtAlgorithm::Conv));
    }
}

fn main() {
    println!("RAYON_NUM_THREADS={}", std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "(all cores)".into()));
    feature_maps([64, 256, 4, 4]);
    feature_maps([64, 128, 8, 8]);
    sweep();
}
