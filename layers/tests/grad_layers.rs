//! Finite-difference gradchecks (f64) of `Linear`, `Conv2d`, `BatchNorm2d` in training mode
//! (batch statistics), `LayerNorm`, `GroupNorm`, `SqueezeExcitation`, CBAM (`Cbam` and its two
//! gates) with respect to their input and every parameter, and of `DropBlock2d` with a fixed
//! mask, over random small shapes; BatchNorm's running statistics against their closed form.

use autograd::strategies::f64_tensor_distinct;
use autograd::{gradcheck, DType, Device, GradcheckOptions, Tensor};
use layers::{
    BatchNorm, BatchNorm2d, Cbam, ChannelAttention, Conv2d, Conv2dOptions, DropBlock2d, GroupNorm, LayerNorm, Linear,
    Mode, Module, ModuleExt, Param, SpatialAttention, SqueezeExcitation,
};
use proptest::prelude::*;

/// Gradchecks `module` (converted to f64) at input `x` with respect to `x` and every parameter:
/// the parameters are bound to gradcheck's own leaves for the duration of the check.
fn check_module(module: &dyn Module, x: Tensor, mode: Mode) {
    module.convert(DType::F64, Device::Cpu).unwrap();
    let params: Vec<Param> = module.parameters();
    let mut inputs = vec![x];
    inputs.extend(params.iter().map(|p| p.leaf().detach()));
    let f = |t: &[Tensor]| {
        for (p, v) in params.iter().zip(&t[1..]) {
            p.bind(v.clone());
        }
        module.forward(&t[0], mode)
    };
    let result = gradcheck(f, &inputs, &GradcheckOptions::default());
    for (p, v) in params.iter().zip(&inputs[1..]) {
        p.replace(v.clone());
    }
    if let Err(e) = result {
        panic!("{}: {e} (params {:?})", module.type_name(), module.named_parameters());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn linear_gradcheck(
        (x, fout, bias) in (1usize..4, 1usize..4, 1usize..4)
            .prop_flat_map(|(n, fin, fout)| (f64_tensor_distinct(vec![n, fin]), Just(fout), any::<bool>()))
    ) {
        let fin = x.shape()[1];
        check_module(&Linear::new(fin, fout, bias), x, Mode::Train);
    }

    #[test]
    fn conv2d_gradcheck(
        (x, cout_per_group, k, stride, pad, dil, groups, bias) in
            (1usize..3, 1usize..3, 1usize..3, 3usize..6, 3usize..6)
                .prop_flat_map(|(n, cin_per_group, groups, h, w)| (
                    f64_tensor_distinct(vec![n, cin_per_group * groups, h, w]),
                    1usize..3, 1usize..4, 1usize..3, 0usize..2, 1usize..3, Just(groups), any::<bool>(),
                ))
                .prop_filter("kernel fits", |(x, _, k, _, pad, dil, _, _)| {
                    let span = dil * (k - 1) + 1;
                    x.shape()[2] + 2 * pad >= span && x.shape()[3] + 2 * pad >= span
                })
    ) {
        let cin = x.shape()[1];
        let opts = Conv2dOptions::default().stride(stride).padding(pad).dilation(dil).groups(groups).bias(bias);
        check_module(&Conv2d::new(cin, cout_per_group * groups, k, opts).unwrap(), x, Mode::Train);
    }

    #[test]
    fn batchnorm2d_train_gradcheck(x in (1usize..3, 1usize..4, 1usize..3, 2usize..4)
        .prop_flat_map(|(n, c, h, w)| f64_tensor_distinct(vec![n, c, h, w])))
    {
        check_module(&BatchNorm2d::new(x.shape()[1]), x, Mode::Train);
    }

    #[test]
    fn layernorm_gradcheck((x, k) in (1usize..3, 1usize..4, 2usize..4)
        .prop_flat_map(|(a, b, c)| (f64_tensor_distinct(vec![a, b, c]), 1usize..3)))
    {
        let shape = x.shape()[3 - k..].to_vec();
        check_module(&LayerNorm::new(&shape, 1e-5), x, Mode::Train);
    }

    #[test]
    fn groupnorm_gradcheck((x, groups) in (1usize..3, 1usize..3, 1usize..3, 2usize..4)
        .prop_flat_map(|(n, groups, per_group, hw)| (f64_tensor_distinct(vec![n, groups * per_group, hw, 2]), Just(groups))))
    {
        check_module(&GroupNorm::new(groups, x.shape()[1], 1e-5).unwrap(), x, Mode::Train);
    }

    #[test]
    fn squeeze_excitation_gradcheck((x, r) in (1usize..3, 1usize..6, 1usize..4, 1usize..4)
        .prop_flat_map(|(n, c, h, w)| (f64_tensor_distinct(vec![n, c, h, w]), 1usize..4)))
    {
        check_module(&SqueezeExcitation::new(x.shape()[1], r).unwrap(), x, Mode::Train);
    }

    #[test]
    fn cbam_gradcheck((x, r, part) in (1usize..3, 1usize..5, 1usize..4, 1usize..4)
        .prop_flat_map(|(n, c, h, w)| (f64_tensor_distinct(vec![n, c, h, w]), 1usize..3, 0usize..3)))
    {
        let c = x.shape()[1];
        let m: Box<dyn Module> = match part {
            0 => Box::new(ChannelAttention::new(c, r).unwrap()),
            1 => Box::new(SpatialAttention::new(3).unwrap()),
            _ => Box::new(Cbam::new(c, r).unwrap()),
        };
        check_module(m.as_ref(), x, Mode::Train);
    }

    #[test]
    fn dropblock_fixed_mask_gradcheck((x, b, keep, seed) in (1usize..3, 1usize..3, 2usize..6, 2usize..6)
        .prop_flat_map(|(n, c, h, w)| (f64_tensor_distinct(vec![n, c, h, w]), 1usize..4, 0.5f64..1.0, 0u64..1000)))
    {
        let db = DropBlock2d::new(b, keep).unwrap();
        gradcheck(|t| db.forward_with_seed(&t[0], seed), &[x], &GradcheckOptions::default()).unwrap();
    }
}

/// Per-channel batch mean and unbiased variance of `[N, C, H, W]` values, by naive loops.
fn batch_stats(v: &[f64], shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3]);
    let at = |i: usize, ch: usize, j: usize| v[(i * c + ch) * hw + j];
    let count = (n * hw) as f64;
    let mut means = vec![0.0; c];
    let mut vars = vec![0.0; c];
    for ch in 0..c {
        let mean = (0..n).flat_map(|i| (0..hw).map(move |j| (i, j))).map(|(i, j)| at(i, ch, j)).sum::<f64>() / count;
        let ss =
            (0..n).flat_map(|i| (0..hw).map(move |j| (i, j))).map(|(i, j)| (at(i, ch, j) - mean).powi(2)).sum::<f64>();
        means[ch] = mean;
        vars[ch] = ss / (count - 1.0);
    }
    (means, vars)
}

#[test]
fn batchnorm_running_statistics_follow_the_momentum_update() {
    let shape = [4, 3, 2, 5];
    for momentum in [Some(0.1), Some(0.7), None] {
        let bn = BatchNorm::with_options(3, 1e-5, momentum, true, true, 4, 4);
        bn.convert(DType::F64, Device::Cpu).unwrap();
        let (mut rm, mut rv) = (vec![0.0; 3], vec![1.0; 3]);
        for step in 1..=4u64 {
            let x = Tensor::randn(&shape, step).unwrap().to_dtype(DType::F64).unwrap().mul_scalar(step as f64).unwrap();
            bn.forward(&x, Mode::Train).unwrap();
            let (mean, var) = batch_stats(&x.to_vec::<f64>().unwrap(), &shape);
            let m = momentum.unwrap_or(1.0 / step as f64);
            for ch in 0..3 {
                rm[ch] = (1.0 - m) * rm[ch] + m * mean[ch];
                rv[ch] = (1.0 - m) * rv[ch] + m * var[ch];
            }
        }
        let got_m = bn.running_mean.as_ref().unwrap().get().to_vec::<f64>().unwrap();
        let got_v = bn.running_var.as_ref().unwrap().get().to_vec::<f64>().unwrap();
        for ch in 0..3 {
            assert!((got_m[ch] - rm[ch]).abs() < 1e-12, "{momentum:?} mean {ch}: {} vs {}", got_m[ch], rm[ch]);
            assert!(
                (got_v[ch] - rv[ch]).abs() < 1e-12 * rv[ch].max(1.0),
                "{momentum:?} var {ch}: {} vs {}",
                got_v[ch],
                rv[ch]
            );
        }
        assert_eq!(bn.num_batches_tracked.as_ref().unwrap().get().item().unwrap(), 4.0);
        // Evaluation normalizes with the running statistics.
        let x = Tensor::randn(&shape, 9).unwrap().to_dtype(DType::F64).unwrap();
        let y = bn.forward(&x, Mode::Eval).unwrap().to_vec::<f64>().unwrap();
        let xv = x.to_vec::<f64>().unwrap();
        for (i, (a, b)) in y.iter().zip(&xv).enumerate() {
            let ch = (i / 10) % 3;
            let expect = (b - rm[ch]) / (rv[ch] + 1e-5).sqrt();
            assert!((a - expect).abs() < 1e-12, "eval element {i}: {a} vs {expect}");
        }
    }
}

/// `forward_relu` and `forward_add_relu` (ReLU, or a residual add and ReLU, fused into the norm
/// in training) against `forward` then `relu` (after `add`): the same outputs, parameter and
/// residual gradients and running statistics, in training and in evaluation.
#[test]
fn batchnorm_fused_tails_match_forward_then_add_and_relu() {
    for residual in [false, true] {
        check_fused_tail(residual);
    }
}

fn check_fused_tail(with_residual: bool) {
    let shape = [4, 3, 2, 5];
    let (fused, plain) = (BatchNorm2d::new(3), BatchNorm2d::new(3));
    for bn in [&fused, &plain] {
        bn.convert(DType::F64, Device::Cpu).unwrap();
        bn.weight.as_ref().unwrap().set_data(&Tensor::from_vec(vec![0.5f64, 1.5, -1.0], &[3]).unwrap()).unwrap();
        bn.bias.as_ref().unwrap().set_data(&Tensor::from_vec(vec![0.25f64, -0.5, 0.1], &[3]).unwrap()).unwrap();
    }
    let f64 = |t: Tensor| t.to_dtype(DType::F64).unwrap();
    let r = f64(Tensor::randn(&shape, 5).unwrap());
    let run = |bn: &BatchNorm, fuse: bool, x: &Tensor, res: &Tensor, mode: Mode| match (with_residual, fuse) {
        (false, true) => bn.forward_relu(x, mode).unwrap(),
        (false, false) => bn.forward(x, mode).unwrap().relu().unwrap(),
        (true, true) => bn.forward_add_relu(x, res, mode).unwrap(),
        (true, false) => bn.forward(x, mode).unwrap().add(res).unwrap().relu().unwrap(),
    };
    for step in 1..=3u64 {
        let x = f64(Tensor::randn(&shape, step).unwrap());
        let res = f64(Tensor::randn(&shape, 10 + step).unwrap()).mul_scalar(0.5).unwrap();
        let (ra, rb) = (res.clone().requires_grad_(), res.requires_grad_());
        let a = run(&fused, true, &x, &ra, Mode::Train);
        let b = run(&plain, false, &x, &rb, Mode::Train);
        assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
        assert!(a.to_vec::<f64>().unwrap().iter().filter(|&&v| v == 0.0).count() > 10);
        let mut residual_grads = vec![];
        for (bn, y, res) in [(&fused, &a, &ra), (&plain, &b, &rb)] {
            for p in bn.parameters() {
                p.zero_grad();
            }
            let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            residual_grads.push(g.get(res).map(|g| g.to_vec::<f64>().unwrap()));
        }
        assert_eq!(residual_grads[0].is_some(), with_residual);
        assert_eq!(residual_grads[0], residual_grads[1]);
        for (p, q) in fused.parameters().iter().zip(plain.parameters()) {
            let (gp, gq) = (p.grad().unwrap().to_vec::<f64>().unwrap(), q.grad().unwrap().to_vec::<f64>().unwrap());
            assert!(gp.iter().zip(&gq).all(|(u, v)| (u - v).abs() < 1e-12), "{gp:?} vs {gq:?}");
        }
    }
    for name in ["running_mean", "running_var"] {
        let get = |bn: &BatchNorm| {
            bn.named_buffers().into_iter().find(|(n, _)| n == name).unwrap().1.get().to_vec::<f64>().unwrap()
        };
        assert_eq!(get(&fused), get(&plain), "{name}");
    }
    let x = f64(Tensor::randn(&shape, 9).unwrap());
    let a = run(&fused, true, &x, &r, Mode::Eval).to_vec::<f64>().unwrap();
    let b = run(&plain, false, &x, &r, Mode::Eval).to_vec::<f64>().unwrap();
    assert_eq!(a, b);
}

/// `x · w` whose backward rule gets `w`'s gradient wrong by a factor of 2 (and `x`'s right).
struct WrongWeightGrad {
    w: Param,
}

struct WrongRule {
    x: Tensor,
    w: Tensor,
}

impl autograd::BackwardOp for WrongRule {
    fn name(&self) -> &'static str {
        "wrong_weight_grad"
    }
    fn backward(&self, g: &Tensor) -> autograd::Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(&self.w)?), Some(g.mul(&self.x)?.sum(&[0], false)?.mul_scalar(2.0)?)])
    }
}

impl Module for WrongWeightGrad {
    fn forward(&self, x: &Tensor, _mode: Mode) -> autograd::Result<Tensor> {
        let w = self.w.tensor();
        let y = autograd::no_grad(|| x.mul(&w))?;
        Ok(Tensor::from_op(y, &[x, &w], WrongRule { x: x.detach(), w: w.detach() }))
    }
    fn params(&self) -> Vec<(String, Param)> {
        vec![("w".into(), self.w.clone())]
    }
}

#[test]
fn the_harness_catches_a_wrong_parameter_gradient() {
    let m = WrongWeightGrad { w: Param::new(Tensor::from_vec(vec![0.5f64, -1.5], &[2]).unwrap()) };
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, -4.0], &[2, 2]).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_module(&m, x, Mode::Train)));
    let msg = caught.expect_err("a wrong gradient must fail").downcast::<String>().unwrap();
    assert!(msg.contains("input 1"), "the failure names the parameter input: {msg}");
}
