//! Parameter and MAC counts of every registered model against the reference implementations,
//! and the registry's behavior.
//!
//! Parameter counts: torchvision's and timm's published numbers where they exist (ResNet-18
//! 11,689,512, ResNet-50 25,557,032, MobileNetV2 3,504,872, ViT-Tiny/16 5,717,416 at 1000
//! classes), and otherwise the reference modules of `tests/fixtures/make_fixtures.py` (whose
//! output is kept in `tests/fixtures/reference_counts.json`). MACs count convolutions, linear
//! layers and attention matmuls, as that script's forward hooks do.

use autograd::Tensor;
use layers::mac::count_macs;
use layers::{models, Mode, ModuleExt};

/// `(name, classes, input channels, parameters)`.
const COUNTS: &[(&str, usize, usize, usize)] = &[
    ("resnet8", 10, 3, 75_290),
    ("resnet20", 10, 3, 269_722),
    ("resnet32", 10, 3, 464_154),
    ("resnet44", 10, 3, 658_586),
    ("resnet56", 10, 3, 853_018),
    ("resnet110", 10, 3, 1_727_962),
    ("resnet18", 1000, 3, 11_689_512),
    ("resnet34", 1000, 3, 21_797_672),
    ("resnet50", 1000, 3, 25_557_032),
    ("resnet101", 1000, 3, 44_549_160),
    ("resnet152", 1000, 3, 60_192_808),
    ("resnet18-cifar", 10, 3, 11_173_962),
    ("resnet34-cifar", 10, 3, 21_282_122),
    ("resnet50-cifar", 10, 3, 23_520_842),
    ("resnet101-cifar", 10, 3, 42_512_970),
    ("resnet152-cifar", 10, 3, 58_156_618),
    ("vgg11-bn", 10, 3, 9_231_114),
    ("vgg13-bn", 10, 3, 9_416_010),
    ("vgg16-bn", 10, 3, 14_728_266),
    ("vgg19-bn", 10, 3, 20_040_522),
    ("mobilenetv2", 1000, 3, 3_504_872),
    ("mobilenetv2-cifar", 10, 3, 2_236_682),
    ("mobilenetv2-0.5-cifar", 10, 3, 700_490),
    ("vit-tiny-16", 1000, 3, 5_717_416),
    ("vit-small-16", 1000, 3, 22_050_664),
    ("vit-base-16", 1000, 3, 86_567_656),
    ("vit-mini-4", 10, 3, 683_242),
    ("vit-tiny-4", 10, 3, 5_362_762),
    ("vit-small-4", 10, 3, 21_342_346),
    ("vit-base-4", 10, 3, 85_152_010),
    ("lenet5", 10, 1, 61_706),
    ("mlp", 10, 1, 266_610),
];

#[test]
fn every_registered_model_has_the_reference_parameter_count() {
    assert_eq!(models::names().len(), COUNTS.len(), "every registered model is counted");
    for &(name, classes, channels, count) in COUNTS {
        let net = models::build(name, classes, channels, 0).unwrap();
        assert_eq!(net.num_parameters(), count, "{name}");
    }
}

fn macs(name: &str, classes: usize) -> u64 {
    let net = models::build(name, classes, 3, 0).unwrap();
    let s = models::input_size(name).unwrap();
    let report = count_macs(&*net, &Tensor::zeros(&[1, 3, s, s])).unwrap();
    assert!(report.rows.iter().all(|r| r.name != "?"), "{name}: every row names its layer");
    report.total_macs
}

#[test]
fn resnet50_has_4_09_gmacs_at_224() {
    let m = macs("resnet50", 1000);
    assert!((m as f64 / 4.09e9 - 1.0).abs() < 0.01, "{m}");
    assert_eq!(m, 4_089_184_256, "the reference's conv + linear count");
}

#[test]
fn mobilenetv2_has_300_mmacs_at_224() {
    let m = macs("mobilenetv2", 1000);
    assert!((m as f64 / 300e6 - 1.0).abs() < 0.02, "{m}");
    assert_eq!(m, 300_774_272, "the reference's conv + linear count");
}

#[test]
fn cifar_models_mac_counts() {
    assert_eq!(macs("resnet20", 10), 40_551_040);
    // ViT-Tiny/4 on 32x32: 65 tokens; linear layers plus the attention matmuls.
    assert_eq!(macs("vit-tiny-4", 10), 365_107_584);
}

#[test]
fn small_models_run_at_their_input_size() {
    for name in ["resnet8", "resnet18-cifar", "vgg11-bn", "mobilenetv2-cifar", "vit-tiny-4", "lenet5", "mlp"] {
        let s = models::input_size(name).unwrap();
        let net = models::build(name, 7, 1, 3).unwrap();
        let y = net.forward(&Tensor::randn(&[2, 1, s, s], 1).unwrap(), Mode::Train).unwrap();
        assert_eq!(y.shape(), &[2, 7], "{name}");
        y.sum_all().unwrap().backward().unwrap();
        assert!(
            net.trainable_parameters().iter().all(|p| p.grad().is_some()),
            "{name}: every parameter gets a gradient"
        );
    }
}

#[test]
fn the_seed_decides_the_weights() {
    let values = |seed| {
        let net = models::build("vit-tiny-4", 10, 3, seed).unwrap();
        net.parameters().iter().take(4).flat_map(|p| p.leaf().to_vec::<f32>().unwrap()).collect::<Vec<f32>>()
    };
    assert_eq!(values(1), values(1));
    assert_ne!(values(1), values(2));
}

#[test]
fn unknown_names_and_bad_arguments_are_errors() {
    let err = models::build("resnet19", 10, 3, 0).err().unwrap().to_string();
    for valid in ["resnet20", "resnet18-cifar", "vgg16-bn", "mobilenetv2-cifar", "vit-tiny-4", "lenet5", "mlp"] {
        assert!(err.contains(valid), "{err}");
    }
    assert!(models::input_size("nope").is_err());
    assert!(models::build("resnet20", 0, 3, 0).is_err());
    let net = models::build("lenet5", 10, 1, 0).unwrap();
    let err = net.forward(&Tensor::zeros(&[1, 1, 32, 32]), Mode::Eval).err().unwrap().to_string();
    assert!(err.contains("28"), "{err}");
    let vit = models::build("vit-tiny-4", 10, 3, 0).unwrap();
    assert!(vit.forward(&Tensor::zeros(&[1, 3, 28, 28]), Mode::Eval).is_err());
}
