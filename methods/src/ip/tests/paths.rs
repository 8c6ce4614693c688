//! The two computation paths agree, and both gradients of the reconstruction pass gradcheck.

use autograd::backends::ops::CmpOp;
use autograd::{gradcheck, Conv2dParams, DType, GradcheckOptions, Tensor};
use layers::mac::count_macs;
use layers::{Mode, Module};
use proptest::prelude::*;

use super::super::basis::{dct_2d, filters, random_orthogonal, Granularity};
use super::super::path::BasisConv2d;
use crate::sparse::tests::f64s;

/// A layer problem: batch, groups, in/out channels per group, kernel, stride, padding,
/// dilation, per-input-channel basis, mask density (percent), strided (non-contiguous) inputs.
#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    g: usize,
    i: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    channel: bool,
    density: u32,
    strided: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=2, 1usize..=2, 1usize..=3, 1usize..=3, 2usize..=3, 2usize..=3),
        (1usize..=2, 0usize..=2, 1usize..=2, any::<bool>(), 10u32..=100, any::<bool>()),
    )
        .prop_map(|((n, g, i, o, kh, kw), (stride, pad, dil, channel, density, strided))| Case {
            n,
            g,
            i,
            o: o * g,
            kh,
            kw,
            stride,
            pad,
            dil,
            channel,
            density,
            strided,
        })
}

impl Case {
    fn params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: (self.stride, self.stride),
            padding: (self.pad, self.pad),
            dilation: (self.dil, self.dil),
            groups: self.g,
        }
    }

    fn granularity(&self) -> Granularity {
        if self.channel {
            Granularity::InputChannel
        } else {
            Granularity::Layer
        }
    }

    /// Input `[n, g·i, 7, 6]`, strided when asked (a transposed view of `[n, g·i, 6, 7]`).
    fn input(&self, seed: u64) -> Tensor {
        let c = self.g * self.i;
        if self.strided {
            Tensor::randn(&[self.n, c, 6, 7], seed).unwrap().transpose(2, 3).unwrap()
        } else {
            Tensor::randn(&[self.n, c, 7, 6], seed).unwrap()
        }
    }

    /// Masked coefficients `[o, i, kh, kw]` (about `density` % kept) and the 0/1 mask.
    fn coeffs(&self, seed: u64) -> (Tensor, Tensor) {
        let shape = [self.o, self.i, self.kh, self.kw];
        let keep =
            Tensor::rand(&shape, seed + 1).unwrap().compare_scalar(f64::from(self.density) / 100.0, CmpOp::Lt).unwrap();
        let mask = keep.to_dtype(DType::F32).unwrap();
        (Tensor::randn(&shape, seed).unwrap().mul(&mask).unwrap(), mask)
    }

    /// A perturbed orthogonal basis (random orthogonal per input channel, DCT per layer), so
    /// the reconstruction is not a pure rotation.
    fn basis(&self, seed: u64) -> Tensor {
        let k2 = self.kh * self.kw;
        let data = if self.channel {
            (0..self.i).flat_map(|c| random_orthogonal(k2, seed + c as u64).unwrap()).collect::<Vec<_>>()
        } else {
            dct_2d(self.kh, self.kw)
        };
        let shape: Vec<usize> = if self.channel { vec![self.i, k2, k2] } else { vec![k2, k2] };
        let b = Tensor::from_vec(data, &shape).unwrap().to_dtype(DType::F32).unwrap();
        b.add(&Tensor::randn(&shape, seed + 7).unwrap().mul_scalar(0.1).unwrap()).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// The basis convolution followed by the sparse 1x1 convolution equals the convolution with
    /// the reconstructed filters, for every stride, padding, dilation, group count, kernel and
    /// granularity; its MACs are `C·K⁴·HW + nnz(Λ)·HW`.
    #[test]
    fn the_basis_path_equals_the_reconstructed_filters(c in case()) {
        let x = c.input(1);
        let (coeffs, mask) = c.coeffs(2);
        let basis = c.basis(3);
        let w = filters(&coeffs, &basis, c.granularity()).unwrap();
        let bias = Tensor::randn(&[c.o], 4).unwrap();
        let want = f64s(&x.conv2d(&w, Some(&bias), c.params()).unwrap());
        let path = BasisConv2d::new(&coeffs, &basis, c.granularity(), Some(&bias), c.params()).unwrap();
        let y = path.forward(&x, Mode::Eval).unwrap();
        let got = f64s(&y);
        prop_assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(&want) {
            prop_assert!((a - b).abs() <= 2e-5 * scale, "{} vs {}", a, b);
        }
        let nnz = f64s(&mask).iter().filter(|&&m| m != 0.0).count();
        prop_assert_eq!(path.nnz(), nnz);
        let hw = y.shape()[2] * y.shape()[3];
        let k2 = c.kh * c.kw;
        let macs = count_macs(&path, &x.narrow(0, 0, 1).unwrap()).unwrap();
        prop_assert_eq!(macs.total_macs as usize, c.g * c.i * k2 * k2 * hw + nnz * hw);
    }

    /// f64 gradcheck of `conv2d(x, filters(Λ ⊙ M, B))` in `x`, `Λ` and `B`, over geometries,
    /// both granularities and strided inputs.
    #[test]
    fn gradcheck_coefficients_and_basis(c in case()) {
        let c = Case { n: 1, ..c };
        let x = c.input(5).to_dtype(DType::F64).unwrap();
        let (coeffs, mask) = c.coeffs(6);
        let coeffs = coeffs.to_dtype(DType::F64).unwrap();
        let mask = mask.to_dtype(DType::F64).unwrap();
        let basis = c.basis(7).to_dtype(DType::F64).unwrap();
        let (params, gran) = (c.params(), c.granularity());
        let f = |t: &[Tensor]| t[0].conv2d(&filters(&t[1].mul(&mask)?, &t[2], gran)?, None, params);
        let r = gradcheck(f, &[x, coeffs, basis], &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "{:?}", r.err());
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_basis() {
    let coeffs = Tensor::randn(&[2, 3, 3, 3], 0).unwrap();
    let e = filters(&coeffs, &Tensor::randn(&[4, 4], 1).unwrap(), Granularity::Layer).unwrap_err().to_string();
    assert!(e.contains("ip filter basis"), "{e}");
    let e = filters(&coeffs, &Tensor::randn(&[9, 9], 1).unwrap(), Granularity::InputChannel).unwrap_err().to_string();
    assert!(e.contains("ip filter basis"), "{e}");
}
