//! The CPU backend's bf16 matrix-product mode (`set_matmul_precision`), through the backend:
//! its own test binary because the precision is one switch for the whole process.

use backends::conformance::conv::{naive_conv2d, naive_conv2d_backward_data, naive_conv2d_backward_weight};
use backends::cpu::conv::{with_algorithm, Algorithm};
use backends::cpu::{has_bf16, matmul_precision, set_matmul_precision, MatmulPrecision};
use backends::ops::Conv2dParams;
use backends::{Backend, CpuBackend, CpuStorage, Layout};
use std::sync::Mutex;

/// The tests of this binary take turns: the precision is one switch for the whole process.
static PRECISION: Mutex<()> = Mutex::new(());

/// `x` rounded to bf16 (to nearest, ties to even), as f32.
fn bf16(x: f32) -> f32 {
    let b = x.to_bits();
    f32::from_bits(((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16)
}

fn fill(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0) * 1.37).collect()
}

/// Batched products of odd shapes (a transposed operand among them) under bf16 equal the
/// products of the bf16-rounded operands to f32 accumulation, differ from the f32 products, and
/// f32 is back once set back; on a CPU without AVX512_BF16 asking for bf16 is an error that
/// leaves f32 in place.
#[test]
fn bf16_products_round_the_operands_and_accumulate_in_f32() {
    let _turn = PRECISION.lock().unwrap_or_else(|e| e.into_inner());
    if !has_bf16() {
        assert!(set_matmul_precision(MatmulPrecision::Bf16).is_err());
        assert_eq!(matmul_precision(), MatmulPrecision::F32);
        return;
    }
    let cpu = CpuBackend;
    for &(batch, m, k, n, transposed) in
        &[(1, 1, 1, 1, false), (3, 9, 37, 33, false), (2, 65, 64, 65, true), (1, 150, 530, 70, true)]
    {
        let (a, b) = (fill(batch * m * k, 1), fill(batch * k * n, 2));
        let la = Layout::contiguous(&[batch, m, k]);
        // `transposed`: B is stored as [batch, n, k] and read through a transposed view.
        let lb = if transposed {
            Layout::contiguous(&[batch, n, k]).transpose(1, 2).unwrap()
        } else {
            Layout::contiguous(&[batch, k, n])
        };
        let (sa, sb) = (CpuStorage::F32(a.clone()), CpuStorage::F32(b.clone()));
        let run = |p| {
            set_matmul_precision(p).unwrap();
            let c = cpu.matmul(&sa, &la, &sb, &lb).unwrap();
            c.as_slice::<f32>().unwrap().to_vec()
        };
        let (low, full) = (run(MatmulPrecision::Bf16), run(MatmulPrecision::F32));
        assert_eq!(matmul_precision(), MatmulPrecision::F32);
        let bat = |t: usize, i: usize, j: usize| -> f32 {
            if transposed {
                b[t * k * n + j * k + i]
            } else {
                b[t * k * n + i * n + j]
            }
        };
        let mut differs = false;
        for t in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut mag, mut exact) = (0f64, 0f64, 0f64);
                    for p in 0..k {
                        let (x, y) = (a[t * m * k + i * k + p], bat(t, p, j));
                        want += f64::from(bf16(x)) * f64::from(bf16(y));
                        mag += (f64::from(x) * f64::from(y)).abs();
                        exact += f64::from(x) * f64::from(y);
                    }
                    let got = f64::from(low[(t * m + i) * n + j]);
                    assert!((got - want).abs() <= 2e-7 * (k as f64 + 2.0) * mag, "[{t},{i},{j}] {got} vs {want}");
                    let f = f64::from(full[(t * m + i) * n + j]);
                    assert!((f - exact).abs() <= 1e-6 * (k as f64 + 2.0) * mag);
                    differs |= got != f;
                }
            }
        }
        assert!(differs || k == 1, "bf16 and f32 products agree everywhere for {m}x{k}x{n}");
    }
}

/// A wide 3x3 layer (256 channels on each side, 7x7 planes) under bf16: by im2col (where the
/// Zen 4 and Intel planners send all three passes) each pass is computed from the bf16-rounded
/// operands with f32 accumulation, within f32 summation error of the f64 loops over the rounded
/// operands; by the GEMM Winograd (where the Zen 5 planner sends them) the transformed operands
/// are rounded instead, within bf16 rounding of the f64 loops over the exact operands. Neither
/// equals the f32 passes.
#[test]
fn wide_convolutions_under_bf16_round_their_operands() {
    let _turn = PRECISION.lock().unwrap_or_else(|e| e.into_inner());
    if !has_bf16() {
        return;
    }
    let cpu = CpuBackend;
    let (xs, ws) = ([2, 256, 7, 7], [256, 256, 3, 3]);
    let p = Conv2dParams { padding: (1, 1), ..Default::default() };
    let ys = p.output_shape(&xs, &ws).unwrap();
    let len = |s: &[usize]| s.iter().product::<usize>();
    let (x, w, gy) = (fill(len(&xs), 3), fill(len(&ws), 4), fill(len(&ys), 5));
    let (lx, lw, ly) = (Layout::contiguous(&xs), Layout::contiguous(&ws), Layout::contiguous(&ys));
    let (sx, sw, sg) = (CpuStorage::F32(x.clone()), CpuStorage::F32(w.clone()), CpuStorage::F32(gy.clone()));
    let passes = |precision, algorithm| {
        set_matmul_precision(precision).unwrap();
        let out = with_algorithm(algorithm, || {
            [
                cpu.conv2d(&sx, &lx, &sw, &lw, &p).unwrap(),
                cpu.conv2d_backward_data(&sg, &ly, &sw, &lw, &p, (7, 7)).unwrap(),
                cpu.conv2d_backward_weight(&sx, &lx, &sg, &ly, &p, (3, 3)).unwrap(),
            ]
        });
        out.map(|s| s.as_slice::<f32>().unwrap().to_vec())
    };
    let (low, full) =
        (passes(MatmulPrecision::Bf16, Algorithm::Im2col), passes(MatmulPrecision::F32, Algorithm::Im2col));
    let round = |v: &[f32]| v.iter().map(|&a| f64::from(bf16(a))).collect::<Vec<f64>>();
    let abs = |v: &[f32]| v.iter().map(|&a| f64::from(a).abs()).collect::<Vec<f64>>();
    let (rx, rw, rg) = (round(&x), round(&w), round(&gy));
    let (ax, aw, ag) = (abs(&x), abs(&w), abs(&gy));
    let want = [
        (naive_conv2d(&rx, xs, &rw, ws, &p), naive_conv2d(&ax, xs, &aw, ws, &p), 256 * 9),
        (naive_conv2d_backward_data(&rg, &rw, xs, ws, &p), naive_conv2d_backward_data(&ag, &aw, xs, ws, &p), 256 * 9),
        (
            naive_conv2d_backward_weight(&rx, &rg, xs, ws, &p),
            naive_conv2d_backward_weight(&ax, &ag, xs, ws, &p),
            2 * 49,
        ),
    ];
    for (((got, f32_pass), (want, mag, k)), name) in
        low.iter().zip(&full).zip(&want).zip(["forward", "input gradient", "weight gradient"])
    {
        for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
            let g = f64::from(g);
            assert!((g - w).abs() <= 2e-7 * (*k as f64 + 2.0) * m, "{name} [{i}]: {g} vs {w}");
        }
        assert!(got != f32_pass, "{name}: bf16 and f32 passes agree everywhere");
    }
    // The GEMM Winograd: its transformed inputs, filters and gradients are rounded to bf16 (8
    // significant bits), so each output is within a few bf16 roundings of its magnitude (seen
    // on Zen 5: at most 6e-4 of it forward and for the input gradient, 3.5e-3 for the weight
    // gradient, whose transform sums over the tiles; f32 passes 4e-8 to 6e-7).
    let (wino, wino_f32) =
        (passes(MatmulPrecision::Bf16, Algorithm::WinogradGemm), passes(MatmulPrecision::F32, Algorithm::WinogradGemm));
    set_matmul_precision(MatmulPrecision::F32).unwrap();
    let (fx, fw, fg) = (
        x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>(),
        w.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>(),
        gy.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>(),
    );
    let exact = [
        naive_conv2d(&fx, xs, &fw, ws, &p),
        naive_conv2d_backward_data(&fg, &fw, xs, ws, &p),
        naive_conv2d_backward_weight(&fx, &fg, xs, ws, &p),
    ];
    for ((((got, f32_pass), exact), (_, mag, _)), name) in
        wino.iter().zip(&wino_f32).zip(&exact).zip(&want).zip(["forward", "input gradient", "weight gradient"])
    {
        let mut worst = 0.0f64;
        for (i, ((&g, &e), &m)) in got.iter().zip(exact).zip(mag).enumerate() {
            let err = (f64::from(g) - e).abs();
            assert!(err <= 1e-2 * m, "winograd {name} [{i}]: {g} vs {e} (magnitude {m})");
            worst = worst.max(err / m);
        }
        // Rounded, not exact: the bf16 pass is further from the f64 result than the f32 one.
        let f32_worst =
            f32_pass.iter().zip(exact).zip(mag).map(|((&g, &e), &m)| (f64::from(g) - e).abs() / m).fold(0.0, f64::max);
        assert!(worst > 10.0 * f32_worst, "winograd {name}: bf16 error {worst:e} not above f32's {f32_worst:e}");
    }
}
