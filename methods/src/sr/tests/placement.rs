//! Stage outputs and insertions on the registered models, the regularizers' placements.

use autograd::Tensor;
use layers::surgery::Around;
use layers::{models, Mode, Module, ModuleExt};

use crate::sr::{
    deep_stages, insert_at_stage_output, residual_branch_ends, stage_output, Activation, Regularizer, RegularizerKind,
    SqueezeRemember,
};

fn sr(shape: [usize; 3]) -> autograd::Result<Box<dyn Module>> {
    Ok(Box::new(SqueezeRemember::new(shape, 2, 4, Activation::Relu)?))
}

#[test]
fn stage_outputs_of_the_model_families() {
    let cases: &[(&str, usize, usize, &str, [usize; 3])] = &[
        ("resnet18-cifar", 32, 4, "layer4", [512, 4, 4]),
        ("resnet18-cifar", 32, 2, "layer2", [128, 16, 16]),
        ("resnet20", 32, 3, "layer3", [64, 8, 8]),
        ("vgg16-bn", 32, 2, "features.12", [128, 16, 16]),
        ("vgg16-bn", 32, 4, "features.32", [512, 4, 4]),
        ("mobilenetv2-cifar", 32, 2, "features.6", [32, 16, 16]),
        ("lenet5", 28, 1, "conv1", [6, 28, 28]),
    ];
    for &(name, side, stage, path, shape) in cases {
        let mut net = models::build(name, 10, if name == "lenet5" { 1 } else { 3 }, 0).unwrap();
        let c_in = if name == "lenet5" { 1 } else { 3 };
        assert_eq!(stage_output(net.as_ref(), stage).unwrap(), path, "{name} stage {stage}");
        let (at, got) = insert_at_stage_output(net.as_mut(), stage, "sr", [c_in, side, side], sr).unwrap();
        assert_eq!((at.as_str(), got), (path, shape), "{name}");
        let block = net.get_module(&format!("{path}.sr")).unwrap();
        assert_eq!(block.type_name(), "SqueezeRemember");
        assert!(net.get_module(path).unwrap().downcast_ref::<Around>().is_some());
        let y = net.forward(&Tensor::randn(&[2, c_in, side, side], 1).unwrap(), Mode::Train).unwrap();
        assert_eq!(y.shape(), &[2, 10]);
    }
    let vit = models::build("vit-tiny-4", 10, 3, 0).unwrap();
    assert!(stage_output(vit.as_ref(), 1).is_err());
}

#[test]
fn the_sr_block_names_its_parameters_under_the_stage() {
    let mut net = models::build("resnet8", 10, 1, 0).unwrap();
    insert_at_stage_output(net.as_mut(), 3, "sr", [1, 28, 28], sr).unwrap();
    let names: Vec<String> =
        net.named_parameters().into_iter().map(|(n, _)| n).filter(|n| n.starts_with("layer3.sr")).collect();
    assert_eq!(
        names,
        [
            "layer3.sr.memory",
            "layer3.sr.squeeze.weight",
            "layer3.sr.squeeze.bias",
            "layer3.sr.fc1.weight",
            "layer3.sr.fc1.bias",
            "layer3.sr.fc2.weight",
            "layer3.sr.fc2.bias"
        ]
    );
    assert_eq!(net.get_module("layer3.sr").unwrap().params()[0].1.leaf().shape(), &[2, 64, 7, 7]);
}

fn regularizer(kind: RegularizerKind, stages: Vec<usize>) -> Regularizer {
    Regularizer { kind, p: 0.1, stages, block_size: 3, keep_prob: 0.9, reduction: 16 }
}

#[test]
fn regularizers_go_where_the_spec_puts_them() {
    let mut net = models::build("resnet18-cifar", 10, 3, 0).unwrap();
    assert_eq!(deep_stages(net.as_ref()), [3, 4]);
    let d = regularizer(RegularizerKind::Dropout, vec![]).apply(net.as_mut()).unwrap();
    assert_eq!(d, ["fc.dropout"]);
    let d2d = regularizer(RegularizerKind::Dropout2d, vec![3, 4]).apply(net.as_mut()).unwrap();
    assert_eq!(d2d, ["layer3.d2d", "layer4.d2d"]);
    let db = regularizer(RegularizerKind::DropBlock, vec![3]).apply(net.as_mut()).unwrap();
    assert_eq!(db, ["layer3.dropblock"]);
    let se = regularizer(RegularizerKind::Se, vec![]).apply(net.as_mut()).unwrap();
    assert_eq!(se.len(), 8);
    assert_eq!((se[0].as_str(), se[7].as_str()), ("layer1.0.bn2.se", "layer4.1.bn2.se"));
    assert_eq!(net.get_module("layer4.1.bn2.se").unwrap().params().len(), 0);
    assert_eq!(net.get_module("layer4.1.bn2.se.fc1").unwrap().params()[0].1.leaf().shape(), &[32, 512]);
    let y = net.forward(&Tensor::randn(&[2, 3, 32, 32], 0).unwrap(), Mode::Train).unwrap();
    assert_eq!(y.shape(), &[2, 10]);
    // Bottlenecks get the gate after bn3; ResNet-8 has three stages; VGG has no residual branch.
    let r50 = models::build("resnet50-cifar", 10, 3, 0).unwrap();
    let ends = residual_branch_ends(r50.as_ref()).unwrap();
    assert_eq!(ends[0], ("layer1.0.bn3".to_string(), 256));
    assert_eq!(ends.len(), 16);
    let r8 = models::build("resnet8", 10, 3, 0).unwrap();
    assert_eq!(deep_stages(r8.as_ref()), [3]);
    assert_eq!(residual_branch_ends(r8.as_ref()).unwrap()[2], ("layer3.0.bn2".to_string(), 64));
    let mut vgg = models::build("vgg11-bn", 10, 3, 0).unwrap();
    let e = regularizer(RegularizerKind::Cbam, vec![]).apply(vgg.as_mut()).unwrap_err().to_string();
    assert!(e.contains("residual"), "{e}");
}

#[test]
fn an_attention_gate_acts_on_the_branch_before_the_addition() {
    // A block whose SE gates are all ~0 (a large negative bias) outputs relu(shortcut) exactly
    // as if the branch were gone: the gate sits before the addition, not after it.
    let mut net = models::build("resnet8", 10, 3, 0).unwrap();
    regularizer(RegularizerKind::Se, vec![]).apply(net.as_mut()).unwrap();
    let x = Tensor::randn(&[2, 16, 8, 8], 3).unwrap().relu().unwrap();
    let block = net.get_module("layer1.0").unwrap();
    let bias = block.get_module("bn2.se.fc2").unwrap().params()[1].1.clone();
    bias.set_data(&Tensor::full(&[16], -1e4)).unwrap();
    let y = block.forward(&x, Mode::Eval).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    bias.set_data(&Tensor::full(&[16], 1e4)).unwrap();
    let y = block.forward(&x, Mode::Train).unwrap();
    assert_ne!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
}
