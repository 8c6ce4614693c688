//! The CPU backend's bf16 matrix-product mode (`set_matmul_precision`), through the backend:
//! its own test binary because the precision is one switch for the whole process.

use backends::cpu::{has_bf16, matmul_precision, set_matmul_precision, MatmulPrecision};
use backends::{Backend, CpuBackend, CpuStorage, Layout};

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
