//! The spec's tests: parameter counts and MACs of the paper's models, untouched channels
//! bit-exact, the degenerate block equal to a standard one, gradients reaching the selector only
//! through the selected channels, per-sample top-k with ties to the lower index, and a training
//! run through the registry entry.

use autograd::{Conv2dParams, Tensor};
use layers::mac::count_macs;
use layers::models::resnet::{BasicBlock, Stem};
use layers::models::ModelOptions;
use layers::state_dict::{load_state_dict, Strictness};
use layers::{BatchNorm2d, Conv2d, Identity, Mode, Module, ModuleExt};

use crate::cnn_mod::*;

fn millions(n: usize) -> f64 {
    (n as f64 / 1e4).round() / 1e2
}

#[test]
fn parameter_counts_equal_the_paper_s() {
    let opts = ModelOptions::new(1000, 3, 0);
    for (depth, want) in [(50, 18.11), (75, 23.10), (86, 25.60), (101, 29.21), (152, 37.46)] {
        let net = resnet_mod(depth, Stem::ImageNet, &opts, C_RESNET, Selection::TopK).unwrap();
        assert_eq!(millions(net.num_parameters()), want, "ResNet{depth}-MoD");
    }
    for (large, want) in [(false, 2.94), (true, 3.34)] {
        let net = mobilenet_mod(large, 1.0, false, &opts, C_MOBILENET, Selection::TopK).unwrap();
        assert_eq!(millions(net.num_parameters()), want, "MobileNetV2-MoD large={large}");
    }
}

/// MACs within 2 % of the paper's GMACs (our counter counts convolutions and linear layers
/// only; the paper's also counts element-wise operations, about 1 % more).
#[test]
fn macs_are_within_two_percent_of_the_paper_s() {
    let opts = ModelOptions::new(1000, 3, 0);
    let x = Tensor::zeros(&[1, 3, 224, 224]);
    let within = |got: u64, want: f64, what: &str| {
        let rel = got as f64 / want - 1.0;
        assert!(rel.abs() < 0.02, "{what}: {got} vs {want} ({:+.2} %)", 100.0 * rel);
    };
    for (depth, gmacs) in [(50, 2.60), (75, 3.48)] {
        let net = resnet_mod(depth, Stem::ImageNet, &opts, C_RESNET, Selection::TopK).unwrap();
        within(count_macs(&net, &x).unwrap().total_macs, gmacs * 1e9, &format!("ResNet{depth}-MoD"));
    }
    // MobileNetV2: our convolution-only count of the plain network is 300.8 M against the
    // paper's 320.36 M (6 % less: in a network of depthwise and 1x1 convolutions the element-wise
    // operations the paper also counts weigh more), so the MoD variants are compared through
    // their ratio to the plain network, paper's against ours.
    let plain = count_macs(layers::models::build("mobilenetv2", 1000, 3, 0).unwrap().as_ref(), &x).unwrap().total_macs;
    assert!((plain as f64 / 300.8e6 - 1.0).abs() < 0.001, "{plain}");
    for (large, mmacs) in [(false, 220.56), (true, 344.76)] {
        let net = mobilenet_mod(large, 1.0, false, &opts, C_MOBILENET, Selection::TopK).unwrap();
        let got = count_macs(&net, &x).unwrap().total_macs;
        within(
            (got as f64 / plain as f64 * 320.36e6) as u64,
            mmacs * 1e6,
            &format!("MobileNetV2-MoD large={large}, relative"),
        );
    }
}

#[test]
fn untouched_channels_are_bit_exact_copies() {
    let x = Tensor::randn(&[3, 32, 6, 6], 1).unwrap();
    let inverted = ModBlock::new(BranchKind::Inverted { t: 6 }, 32, 16, REDUCTION, Selection::TopK).unwrap();
    let y = inverted.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.shape(), x.shape());
    let k = inverted.k();
    assert_eq!(k, 2);
    assert_eq!(
        y.narrow(1, k, 30).unwrap().to_vec::<f32>().unwrap(),
        x.narrow(1, k, 30).unwrap().to_vec::<f32>().unwrap()
    );
    assert_ne!(
        y.narrow(1, 0, k).unwrap().to_vec::<f32>().unwrap(),
        x.narrow(1, 0, k).unwrap().to_vec::<f32>().unwrap()
    );
    // ResNet blocks end in a ReLU: on the non-negative maps a ReLU network feeds them, the
    // untouched channels are copies too.
    let xr = x.relu().unwrap();
    let basic = ModBlock::new(BranchKind::Bottleneck, 32, 4, REDUCTION, Selection::TopK).unwrap();
    let y = basic.forward(&xr, Mode::Eval).unwrap();
    assert_eq!(
        y.narrow(1, 8, 24).unwrap().to_vec::<f32>().unwrap(),
        xr.narrow(1, 8, 24).unwrap().to_vec::<f32>().unwrap()
    );
}

/// `c = 1` (every channel), scores forced to 1 and the identity order: the MoD block is the
/// standard BasicBlock with the same weights.
#[test]
fn the_degenerate_block_is_a_standard_block() {
    let c = 8;
    let m = ModBlock::new(BranchKind::Basic, c, 1, 4, Selection::TopK).unwrap();
    assert_eq!(m.k(), c);
    let conv = || -> Box<dyn Module> {
        Box::new(
            Conv2d::new(
                c,
                c,
                3,
                layers::Conv2dOptions { params: Conv2dParams { padding: (1, 1), ..Default::default() }, bias: false },
            )
            .unwrap(),
        )
    };
    let bn = || -> Box<dyn Module> { Box::new(BatchNorm2d::new(c)) };
    let standard = BasicBlock::from_parts([conv(), bn(), conv(), bn()], Box::new(Identity), "downsample");
    let rename = |n: &str| {
        n.replace("branch.0.", "conv1.")
            .replace("branch.1.", "bn1.")
            .replace("branch.3.", "conv2.")
            .replace("branch.4.", "bn2.")
    };
    let state: Vec<(String, Tensor)> =
        m.state_dict().into_iter().filter(|(n, _)| n.starts_with("branch.")).map(|(n, t)| (rename(&n), t)).collect();
    load_state_dict(&standard, &state, Strictness::Strict).unwrap();
    let x = Tensor::randn(&[2, c, 5, 5], 3).unwrap();
    let idx: Vec<i64> = (0..2).flat_map(|_| 0..c as i64).collect();
    let idx = Tensor::from_vec(idx, &[2, c]).unwrap();
    let ones = Tensor::ones(&[2, c]);
    for mode in [Mode::Eval, Mode::Train] {
        let a = m.forward_routed(&x, &idx, &ones, mode).unwrap().to_vec::<f32>().unwrap();
        let b = standard.forward(&x, mode).unwrap().to_vec::<f32>().unwrap();
        let d = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(d < 1e-5, "{mode:?}: {d}");
    }
}

/// The selector learns through the selected channels' scores only, and each sample picks its
/// own channels, best first, ties to the lower index.
#[test]
fn routing_gradients_and_per_sample_selection() {
    let m = ModBlock::new(BranchKind::Basic, 16, 4, 4, Selection::TopK).unwrap();
    let x = Tensor::randn(&[2, 16, 4, 4], 5).unwrap().relu().unwrap();
    let r = m.route(&x, Mode::Train).unwrap();
    let scores = r.scores.detach().requires_grad_();
    let weights = scores.gather(1, &r.indices).unwrap();
    let y = m.forward_routed(&x, &r.indices, &weights, Mode::Train).unwrap();
    y.mul(&Tensor::randn(y.shape(), 6).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
    let g = scores.grad().unwrap().to_vec::<f32>().unwrap();
    let idx = r.indices.to_vec::<i64>().unwrap();
    let s = r.scores.to_vec::<f32>().unwrap();
    for b in 0..2 {
        let chosen = &idx[b * 4..(b + 1) * 4];
        for ch in 0..16 {
            let gv = g[b * 16 + ch];
            if chosen.contains(&(ch as i64)) {
                assert_ne!(gv, 0.0, "sample {b} channel {ch}");
            } else {
                assert_eq!(gv, 0.0, "sample {b} channel {ch}");
            }
        }
        // Descending scores.
        for w in chosen.windows(2) {
            assert!(s[b * 16 + w[0] as usize] >= s[b * 16 + w[1] as usize]);
        }
    }
    assert_ne!(idx[..4], idx[4..], "two different images pick different channels");
    // All scores equal (a zero selector): the first k channels, in order.
    let zero = ModBlock::new(BranchKind::Basic, 16, 4, 4, Selection::TopK).unwrap();
    for (_, p) in zero.selector.named_parameters() {
        p.set_data(&Tensor::zeros(p.leaf().shape())).unwrap();
    }
    assert_eq!(zero.route(&x, Mode::Eval).unwrap().indices.to_vec::<i64>().unwrap(), vec![0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn the_mod_entry_trains_and_rejects_bad_options() {
    use crate::config::TrainConfig;
    use crate::hparams::Hparams;
    use crate::registry::find;
    use crate::trainer::{train_with, RunOptions};
    let spec = find("mod").unwrap();
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.model = "resnet18-cifar".into();
    cfg.width = 0.25;
    cfg.epochs = 1;
    cfg.batch_size = 50;
    cfg.train_limit = Some(300);
    cfg.test_limit = Some(100);
    let dir = std::env::temp_dir().join(format!("lamina-mod-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = train_with(spec, &cfg, &dir, false, &RunOptions { quiet: true, ..RunOptions::default() }).unwrap();
    assert!(s.test.loss.is_finite());
    let file = layers::state_dict::load_tensors(&dir.join("best.safetensors")).unwrap();
    assert!(file.get("layer2.1.selector.0.weight").is_some() && file.get("layer2.1.branch.0.weight").is_some());
    std::fs::remove_dir_all(dir).unwrap();
    for (set, word) in [("c=0", "c"), ("variant=resnet99", "variant"), ("selection=best", "selection")] {
        let mut h = Hparams::new("mod", spec.hparams);
        h.set(set).unwrap();
        let e = ModConfig::parse(&h).unwrap_err().to_string();
        assert!(e.contains(word), "{set}: {e}");
    }
}

/// The default `c` follows the width: at any width multiplier the BasicBlock stages process
/// `k` = 1, 2, 4, 8 channels, as the paper's full-width ResNets do (and MobileNetV2's `c` is
/// its first block's width).
#[test]
fn default_c_scales_with_the_width() {
    assert_eq!((c_resnet(1.0), c_resnet(0.5), c_resnet(0.25)), (64, 32, 16));
    assert_eq!((c_mobilenet(1.0), c_mobilenet(0.5)), (16, 8));
    for width in [1.0, 0.25] {
        let opts = ModelOptions::new(10, 3, 0).width(width);
        let net = build_mod("resnet18-cifar", None, &opts, None, Selection::TopK).unwrap();
        let ks: Vec<usize> = net
            .named_modules()
            .into_iter()
            .filter_map(|(_, m)| m.downcast_ref::<ModBlock>().map(ModBlock::k))
            .collect();
        assert_eq!(ks, [1, 2, 4, 8], "width {width}");
    }
}

/// VGG-BN-MoD: the paper's parameter savings over VGG-BN (its VGG has a three-layer classifier,
/// ours one layer, so the difference is what both share) and its MACs, 155 M for both depths.
#[test]
fn vgg_mod_matches_the_paper_s_savings_and_macs() {
    let x = Tensor::zeros(&[1, 3, 32, 32]);
    let opts = ModelOptions::new(10, 3, 0);
    for (depth, plain_m, mod_m, mod_mmacs) in [(16, 15.25, 9.83, 155.0), (19, 20.57, 9.91, 155.0)] {
        let plain = layers::models::build(&format!("vgg{depth}-bn"), 10, 3, 0).unwrap();
        let net = build_mod(&format!("vgg{depth}-bn"), None, &opts, None, Selection::TopK).unwrap();
        let saved = millions(plain.num_parameters() - net.num_parameters());
        assert!((saved - (plain_m - mod_m)).abs() <= 0.011, "VGG{depth}-BN-MoD saves {saved} M");
        let macs = count_macs(net.as_ref(), &x).unwrap().total_macs as f64;
        assert!((macs / (mod_mmacs * 1e6) - 1.0).abs() < 0.02, "VGG{depth}-BN-MoD: {macs} MACs");
        let ks: Vec<usize> = net
            .named_modules()
            .into_iter()
            .filter_map(|(_, m)| m.downcast_ref::<ModBlock>().map(ModBlock::k))
            .collect();
        let want: &[usize] = if depth == 16 { &[1, 2, 4, 8, 8] } else { &[1, 2, 4, 4, 8, 8, 8, 8] };
        assert_eq!(ks, want, "VGG{depth}");
        let y = net.forward(&Tensor::randn(&[2, 3, 32, 32], 3).unwrap(), Mode::Train).unwrap();
        assert_eq!(y.shape(), &[2, 10]);
    }
}
