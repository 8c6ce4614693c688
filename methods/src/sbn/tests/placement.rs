//! Placement on the registered models: SBN34 / SBN4 on ResNet-18, shortcut BNs in or out, VGG
//! blocks, the paper's default stages, unchanged names, a checkpoint round trip.

use autograd::Tensor;
use layers::models::{build_with, ModelOptions};
use layers::surgery::Around;
use layers::{models, Mode, Module, ModuleExt};

use crate::sbn::{Inserted, Placement};

fn resnet18() -> Box<dyn Module> {
    build_with("resnet18-cifar", &ModelOptions::new(10, 3, 0).width(0.25)).unwrap()
}

fn sbn() -> Inserted {
    Inserted::Sbn {
        correction: crate::sbn::Correction::Samples,
        momentum: 0.1,
        eps: 1e-5,
        implementation: crate::sbn::Implementation::Fused,
    }
}

fn place(net: &mut Box<dyn Module>, stages: &[usize], shortcuts: bool, what: Inserted) -> Vec<String> {
    let p = Placement { stages: stages.to_vec(), shortcuts };
    p.apply(net.as_mut(), what.name(), &mut |c| Ok(what.make(c))).unwrap()
}

#[test]
fn sbn34_follows_every_bn_of_stages_3_and_4_shortcuts_included() {
    let mut net = resnet18();
    let before: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    let paths = place(&mut net, &[3, 4], true, sbn());
    let stage = |k: usize| {
        vec![
            format!("layer{k}.0.bn1"),
            format!("layer{k}.0.bn2"),
            format!("layer{k}.0.downsample.1"),
            format!("layer{k}.1.bn1"),
            format!("layer{k}.1.bn2"),
        ]
    };
    assert_eq!(paths, [stage(3), stage(4)].concat());
    let m = net.get_module("layer3.0.downsample.1").unwrap().downcast_ref::<Around>().unwrap();
    assert_eq!((m.after[0].0.as_str(), m.after[0].1.type_name()), ("sbn", "SpectralBatchNorm2d"));
    // Names of the plain model are unchanged; the new ones sit under `<bn>.sbn`.
    let after: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert!(before.iter().all(|n| after.contains(n)));
    assert_eq!(after.len(), before.len() + 2 * 10);
    assert!(after.contains(&"layer4.1.bn2.sbn.weight".to_string()));
    assert!(net.named_buffers().iter().any(|(n, _)| n == "layer3.0.bn1.sbn.running_mean_imag"));
    assert!(net.get_module("layer2.0.bn1").unwrap().downcast_ref::<Around>().is_none());
    let y = net.forward(&Tensor::randn(&[4, 3, 32, 32], 0).unwrap(), Mode::Train).unwrap();
    assert_eq!(y.shape(), &[4, 10]);
    assert!(y.to_vec::<f32>().unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn sbn4_without_shortcuts_and_the_2bn_control() {
    let mut net = resnet18();
    let paths = place(&mut net, &[4], false, sbn());
    assert_eq!(paths, ["layer4.0.bn1", "layer4.0.bn2", "layer4.1.bn1", "layer4.1.bn2"]);
    let mut net = resnet18();
    let paths = place(&mut net, &[3, 4], true, Inserted::SecondBn);
    assert_eq!(paths.len(), 10);
    let m = net.get_module("layer3.1.bn2").unwrap().downcast_ref::<Around>().unwrap();
    assert_eq!((m.after[0].0.as_str(), m.after[0].1.type_name()), ("bn", "BatchNorm"));
    assert!(net.named_parameters().iter().any(|(n, _)| n == "layer3.1.bn2.bn.weight"));
    net.forward(&Tensor::randn(&[2, 3, 32, 32], 0).unwrap(), Mode::Train).unwrap();
}

#[test]
fn vgg_blocks_get_the_bn_after_each_convolution() {
    let mut net = models::build("vgg16-bn", 10, 3, 0).unwrap();
    let paths = place(&mut net, &[4], true, sbn());
    assert_eq!(paths, ["features.25", "features.28", "features.31"]);
    assert_eq!(Placement::paper_stages("vgg16-bn", 5, 10), [4]);
    assert_eq!(Placement::paper_stages("vgg19-bn", 5, 10), [3, 4]);
    assert_eq!(Placement::paper_stages("vgg19-bn", 5, 100), [4]);
    assert_eq!(Placement::paper_stages("resnet18-cifar", 4, 10), [3, 4]);
    assert_eq!(Placement::paper_stages("resnet50", 4, 1000), [3, 4]);
    assert_eq!(Placement::paper_stages("resnet8", 3, 10), [3]);
    assert_eq!(Placement::paper_stages("mobilenetv2-cifar", 4, 10), [3, 4]);
}

#[test]
fn errors_name_the_stages() {
    let mut net = models::build("resnet8", 10, 3, 0).unwrap();
    let p = Placement { stages: vec![4], shortcuts: true };
    let e = p.apply(net.as_mut(), "sbn", &mut |c| Ok(sbn().make(c))).unwrap_err().to_string();
    assert!(e.contains("stage 4") && e.contains("1..=3"), "{e}");
    let mut mlp = models::build("mlp", 10, 1, 0).unwrap();
    assert!(p.apply(mlp.as_mut(), "sbn", &mut |c| Ok(sbn().make(c))).is_err());
}

/// A model with SBN saves and reloads its own checkpoint (running statistics included).
#[test]
fn checkpoint_round_trip() {
    let mut net = resnet18();
    place(&mut net, &[3, 4], true, sbn());
    net.forward(&Tensor::randn(&[4, 3, 32, 32], 1).unwrap(), Mode::Train).unwrap();
    let dir = std::env::temp_dir().join(format!("lamina-sbn-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    layers::state_dict::save_module(net.as_ref(), &path).unwrap();
    let mut other = resnet18();
    place(&mut other, &[3, 4], true, sbn());
    layers::state_dict::load_module(other.as_ref(), &path, layers::state_dict::Strictness::Strict).unwrap();
    let x = Tensor::randn(&[2, 3, 32, 32], 2).unwrap();
    let (a, b) = (net.forward(&x, Mode::Eval).unwrap(), other.forward(&x, Mode::Eval).unwrap());
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
