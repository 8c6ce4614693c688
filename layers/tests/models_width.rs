//! Width multipliers of the registered models ([`models::build_with`]): channel counts,
//! parameter counts from closed formulas (checked at width 1 against the reference counts),
//! unchanged names, forward shapes and errors.

use autograd::Tensor;
use layers::models::{self, build_with, ModelOptions};
use layers::{Mode, Module, ModuleExt};

fn build(name: &str, width: f64) -> Box<dyn Module> {
    build_with(name, &ModelOptions::new(10, 3, 0).width(width)).unwrap()
}

fn shape(net: &dyn Module, name: &str) -> Vec<usize> {
    let sd = net.state_dict();
    sd.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1.shape().to_vec()
}

fn names(net: &dyn Module) -> Vec<String> {
    net.state_dict().into_iter().map(|(n, _)| n).collect()
}

fn runs(name: &str, net: &dyn Module) {
    let s = models::input_size(name).unwrap();
    let y = net.forward(&Tensor::randn(&[2, 3, s, s], 1).unwrap(), Mode::Train).unwrap();
    assert_eq!(y.shape(), &[2, 10], "{name}");
}

/// Parameters of a basic block from `i` to `p` channels (3x3 convs, BNs, a projection where
/// the shape changes when `projection`).
fn basic_block(i: usize, p: usize, stride: usize, projection: bool) -> usize {
    let shortcut = if projection && (stride != 1 || i != p) { i * p + 2 * p } else { 0 };
    9 * i * p + 9 * p * p + 4 * p + shortcut
}

/// ResNet-18 with the CIFAR stem at stage widths `c`, 10 classes.
fn resnet18_cifar_count(c: [usize; 4]) -> usize {
    let mut n = 27 * c[0] + 2 * c[0];
    let mut i = c[0];
    for (k, &p) in c.iter().enumerate() {
        n += basic_block(i, p, if k == 0 { 1 } else { 2 }, true) + basic_block(p, p, 1, true);
        i = p;
    }
    n + 10 * c[3] + 10
}

/// A CIFAR ResNet of `3n` blocks per stage at stage widths `c` (option A shortcuts), 10 classes.
fn cifar_resnet_count(n: usize, c: [usize; 3]) -> usize {
    let mut total = 27 * c[0] + 2 * c[0];
    let mut i = c[0];
    for &p in &c {
        for _ in 0..n {
            total += basic_block(i, p, 1, false);
            i = p;
        }
    }
    total + 10 * c[2] + 10
}

/// VGG-16-BN at conv widths `cfg` (0: max-pool), 10 classes.
fn vgg_count(cfg: &[usize]) -> usize {
    let mut c = 3;
    let mut n = 0;
    for &v in cfg.iter().filter(|v| **v != 0) {
        n += 9 * c * v + v + 2 * v;
        c = v;
    }
    n + 10 * c + 10
}

const VGG16: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

#[test]
fn resnet18_cifar_scales_its_stages() {
    assert_eq!(resnet18_cifar_count([64, 128, 256, 512]), 11_173_962, "the formula at width 1");
    let full = build("resnet18-cifar", 1.0);
    for (w, c) in [(0.25, [16, 32, 64, 128]), (0.5, [32, 64, 128, 256])] {
        let net = build("resnet18-cifar", w);
        assert_eq!(shape(&*net, "conv1.weight"), [c[0], 3, 3, 3]);
        assert_eq!(shape(&*net, "layer1.0.conv1.weight"), [c[0], c[0], 3, 3]);
        assert_eq!(shape(&*net, "layer2.0.conv1.weight"), [c[1], c[0], 3, 3]);
        assert_eq!(shape(&*net, "layer3.0.downsample.0.weight"), [c[2], c[1], 1, 1]);
        assert_eq!(shape(&*net, "layer4.1.conv2.weight"), [c[3], c[3], 3, 3]);
        assert_eq!(shape(&*net, "fc.weight"), [10, c[3]]);
        assert_eq!(net.num_parameters(), resnet18_cifar_count(c), "width {w}");
        assert_eq!(names(&*net), names(&*full), "names do not change with the width");
        runs("resnet18-cifar", &*net);
    }
}

#[test]
fn cifar_resnets_scale_at_any_width() {
    assert_eq!(cifar_resnet_count(3, [16, 32, 64]), 269_722, "the formula at width 1");
    let net = build("resnet20", 2.0);
    assert_eq!(shape(&*net, "layer3.2.conv2.weight"), [128, 128, 3, 3]);
    assert_eq!(net.num_parameters(), cifar_resnet_count(3, [32, 64, 128]));
    runs("resnet20", &*net);
    // 0.3: 5, 10, 19 channels; the option A shortcut pads 10 -> 19 unevenly.
    let odd = build("resnet8", 0.3);
    assert_eq!(shape(&*odd, "layer3.0.conv1.weight"), [19, 10, 3, 3]);
    assert_eq!(odd.num_parameters(), cifar_resnet_count(1, [5, 10, 19]));
    runs("resnet8", &*odd);
}

#[test]
fn torchvision_resnets_keep_the_bottleneck_expansion() {
    let net = build("resnet50-cifar", 0.25);
    assert_eq!(shape(&*net, "conv1.weight"), [16, 3, 3, 3]);
    assert_eq!(shape(&*net, "layer1.0.conv1.weight"), [16, 16, 1, 1]);
    assert_eq!(shape(&*net, "layer1.0.conv3.weight"), [64, 16, 1, 1]);
    assert_eq!(shape(&*net, "layer4.2.conv3.weight"), [512, 128, 1, 1]);
    assert_eq!(shape(&*net, "fc.weight"), [10, 512]);
    runs("resnet50-cifar", &*net);
    let imagenet = build("resnet18", 0.125);
    assert_eq!(shape(&*imagenet, "conv1.weight"), [8, 3, 7, 7]);
    assert_eq!(shape(&*imagenet, "fc.weight"), [10, 64]);
}

#[test]
fn vgg16_bn_scales_every_convolution() {
    assert_eq!(vgg_count(&VGG16), 14_728_266, "the formula at width 1");
    let net = build("vgg16-bn", 0.5);
    assert_eq!(shape(&*net, "features.0.weight"), [32, 3, 3, 3]);
    assert_eq!(shape(&*net, "features.40.weight"), [256, 256, 3, 3]);
    assert_eq!(shape(&*net, "classifier.weight"), [10, 256]);
    assert_eq!(net.num_parameters(), vgg_count(&VGG16.map(|c| c / 2)));
    assert_eq!(names(&*net), names(&*build("vgg16-bn", 1.0)));
    runs("vgg16-bn", &*net);
}

#[test]
fn vit_scales_its_token_width_and_keeps_its_heads() {
    let net = build("vit-tiny-4", 0.5);
    assert_eq!(shape(&*net, "cls_token"), [1, 1, 96]);
    assert_eq!(shape(&*net, "pos_embed"), [1, 65, 96]);
    assert_eq!(shape(&*net, "blocks.0.attn.qkv.weight"), [288, 96]);
    assert_eq!(shape(&*net, "blocks.11.mlp.fc1.weight"), [384, 96]);
    assert_eq!(shape(&*net, "head.weight"), [10, 96]);
    assert_eq!(names(&*net), names(&*build("vit-tiny-4", 1.0)));
    runs("vit-tiny-4", &*net);
}

#[test]
fn mobilenet_widths_compose_with_the_entry() {
    let bits = |net: &dyn Module| -> Vec<Vec<u32>> {
        net.state_dict()
            .iter()
            .map(|(_, t)| t.to_f64_vec().unwrap().iter().map(|v| (*v as f32).to_bits()).collect())
            .collect()
    };
    let half = build("mobilenetv2-cifar", 0.5);
    assert_eq!(bits(&*half), bits(&*build("mobilenetv2-0.5-cifar", 1.0)));
    assert_eq!(bits(&*build("mobilenetv2-0.5-cifar", 2.0)), bits(&*build("mobilenetv2-cifar", 1.0)));
    assert_eq!(names(&*half), names(&*build("mobilenetv2-cifar", 1.0)));
    runs("mobilenetv2-cifar", &*half);
}

#[test]
fn width_one_is_the_plain_build() {
    for name in ["resnet8", "resnet18-cifar", "vgg11-bn", "mobilenetv2-cifar", "vit-tiny-4", "lenet5", "mlp"] {
        let a = models::build(name, 10, 3, 7).unwrap();
        let b = build_with(name, &ModelOptions::new(10, 3, 7).width(1.0)).unwrap();
        let (a, b) = (a.state_dict(), b.state_dict());
        assert_eq!(a.len(), b.len());
        for ((n, x), (_, y)) in a.iter().zip(&b) {
            assert_eq!(x.to_f64_vec().unwrap(), y.to_f64_vec().unwrap(), "{name}: {n}");
        }
    }
}

#[test]
fn bad_widths_and_models_without_one_are_errors() {
    for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = build_with("resnet20", &ModelOptions::new(10, 3, 0).width(w)).err().unwrap().to_string();
        assert!(e.contains("width"), "{e}");
    }
    for name in ["lenet5", "mlp"] {
        assert!(!models::supports_width(name));
        let e = build_with(name, &ModelOptions::new(10, 1, 0).width(0.5)).err().unwrap().to_string();
        assert!(e.contains(name) && e.contains("width"), "{e}");
        assert!(build_with(name, &ModelOptions::new(10, 1, 0)).is_ok());
    }
    let with: Vec<&str> = models::names().into_iter().filter(|n| models::supports_width(n)).collect();
    assert_eq!(with.len(), models::names().len() - 2);
    assert!(!models::supports_width("nope"));
    assert!(build_with("nope", &ModelOptions::new(10, 3, 0)).err().unwrap().to_string().contains("resnet20"));
}
