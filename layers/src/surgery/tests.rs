//! Model-level scenarios of the surgery helpers on the registered models.

use autograd::Tensor;

use super::*;
use crate::models::vit::VisionTransformer;
use crate::state_dict::{load_state_dict, Strictness};
use crate::{
    models, BatchNorm2d, Conv2d, Conv2dOptions, Dropout2d, Identity, Linear, Mlp, Mode, Module, ModuleExt, ReLU,
};

fn build(name: &str) -> Box<dyn Module> {
    models::build(name, 10, 3, 0).unwrap()
}

fn param_names(m: &dyn Module) -> Vec<String> {
    m.named_parameters().into_iter().map(|(n, _)| n).collect()
}

fn conv1x1(c: usize) -> Box<dyn Module> {
    Box::new(Conv2d::new(c, c, 1, Conv2dOptions::default()).unwrap())
}

#[test]
fn three_by_three_convs_under_layer3() {
    let net = build("resnet18-cifar");
    let sel = Select::all()
        .under(&["layer3"])
        .filter(|_, m| m.downcast_ref::<Conv2d>().is_some_and(|c| c.kernel_size() == (3, 3)));
    let paths = sel.paths(net.as_ref());
    assert_eq!(paths, ["layer3.0.conv1", "layer3.0.conv2", "layer3.1.conv1", "layer3.1.conv2"]);
    // The 1x1 projection is a Conv2d under layer3 too, but not 3x3.
    let all_convs = Select::all().under(&["layer3"]).of_type::<Conv2d>().paths(net.as_ref());
    assert_eq!(all_convs.len(), 5);
    assert!(all_convs.contains(&"layer3.0.downsample.0".to_string()));
    // `under` is per segment: layer3 does not cover a sibling called layer30.
    assert!(Select::all().under(&["layer"]).paths(net.as_ref()).is_empty());
    assert_eq!(Select::all().under(&[""]).paths(net.as_ref()).len(), Select::all().paths(net.as_ref()).len());
}

#[test]
fn every_batchnorm_and_every_vit_mlp() {
    let net = build("resnet20");
    let bns = Select::all().of_type::<BatchNorm2d>().paths(net.as_ref());
    assert_eq!(bns.len(), 19, "the stem's and two per block");
    assert!(bns.iter().all(|p| net.get_module(p).unwrap().downcast_ref::<BatchNorm2d>().is_some()));
    let vit = build("vit-tiny-4");
    let mlps = Select::all().path("blocks.*.mlp").unwrap().paths(vit.as_ref());
    assert_eq!(mlps.len(), 12);
    assert_eq!(mlps[11], "blocks.11.mlp");
    assert_eq!(Select::all().of_type::<Mlp>().paths(vit.as_ref()), mlps);
    // Several globs: any of them; globs and types together: both.
    let both = Select::all().path("blocks.0.**").unwrap().path("head").unwrap().of_type::<Linear>();
    assert_eq!(
        both.paths(vit.as_ref()),
        ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2", "head"]
    );
    // The root only by the glob "".
    assert!(!Select::all().paths(vit.as_ref()).contains(&String::new()));
    assert_eq!(Select::all().path("").unwrap().paths(vit.as_ref()), [""]);
    assert_eq!(Select::all().of_type::<VisionTransformer>().paths(vit.as_ref()), Vec::<String>::new());
}

#[test]
fn types_are_seen_through_wrappers() {
    let mut net = build("resnet8");
    insert_after(net.as_mut(), "layer1.0.conv1", "post", conv1x1(16)).unwrap();
    insert_before(net.as_mut(), "layer1.0.conv1", "pre", Box::new(ReLU)).unwrap();
    let convs = Select::all().of_type::<Conv2d>().under(&["layer1"]).paths(net.as_ref());
    assert_eq!(convs, ["layer1.0.conv1", "layer1.0.conv1.post", "layer1.0.conv2"]);
    let wrapped = net.get_module("layer1.0.conv1").unwrap();
    assert!(wrapped.downcast_ref::<Around>().is_some());
    assert_eq!(unwrapped(wrapped).downcast_ref::<Conv2d>().unwrap().kernel_size(), (3, 3));
    let seen = Select::all().filter(|p, m| p == "layer1.0.conv1" && m.downcast_ref::<Conv2d>().is_some());
    assert_eq!(seen.paths(net.as_ref()), ["layer1.0.conv1"], "filters see the unwrapped module");
    // The wrapped conv keeps its name; the inserted ones sit under it.
    let names = param_names(net.as_ref());
    for n in ["layer1.0.conv1.weight", "layer1.0.conv1.post.weight", "layer1.0.conv1.post.bias"] {
        assert!(names.contains(&n.to_string()), "{n}");
    }
}

#[test]
fn replace_swaps_the_outermost_matches_and_keeps_names() {
    let mut net = build("resnet20");
    let before = param_names(net.as_ref());
    // layer2 and everything under it match; only layer2 itself is replaced.
    let mut seen = vec![];
    let done = replace(net.as_mut(), &Select::all().path("layer2.**").unwrap(), &mut |p, old| {
        seen.push(p.to_string());
        Ok(Box::new(Around::new(old)))
    })
    .unwrap();
    assert_eq!(done, ["layer2"]);
    assert_eq!(seen, ["layer2"]);
    assert_eq!(param_names(net.as_ref()), before, "a bare Around renames nothing");
    let x = Tensor::randn(&[2, 3, 32, 32], 1).unwrap();
    let plain = build("resnet20");
    let (a, b) = (net.forward(&x, Mode::Eval).unwrap(), plain.forward(&x, Mode::Eval).unwrap());
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    // Every 3x3 conv of the model replaced: names unchanged, new modules in place.
    let convs = Select::all().of_type::<Conv2d>();
    let n = replace(net.as_mut(), &convs, &mut |_, old| {
        let c = old.downcast_ref::<Conv2d>().unwrap();
        Ok(Box::new(Conv2d::new(c.in_channels(), c.out_channels(), 3, Conv2dOptions { params: c.params, bias: true })?))
    })
    .unwrap();
    assert_eq!(n.len(), 19);
    assert!(param_names(net.as_ref()).contains(&"layer2.1.conv2.bias".to_string()));
    assert_eq!(net.forward(&x, Mode::Eval).unwrap().shape(), &[2, 10]);
}

#[test]
fn replace_errors_name_the_selection_and_the_model() {
    let mut net = build("lenet5");
    let sel = Select::all().under(&["layer3"]).of_type::<Conv2d>();
    let e = replace(net.as_mut(), &sel, &mut |_, m| Ok(m)).unwrap_err().to_string();
    assert!(e.contains("layer3") && e.contains("Conv2d") && e.contains("conv1") && e.contains("fc3"), "{e}");
    let e = replace(net.as_mut(), &Select::all().path("fc1").unwrap(), &mut |_, _| {
        Err(autograd::Error::invalid("test", "no"))
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"fc1\""), "{e}");
    let e = replace(net.as_mut(), &Select::all().path("").unwrap(), &mut |_, m| Ok(m)).unwrap_err();
    assert!(e.to_string().contains("root"));
    assert!(Select::all().path("a..b").is_err());
}

#[test]
fn insert_after_a_stage_keeps_old_names() {
    let mut net = build("resnet20");
    let old: Vec<(String, Vec<usize>)> = net.state_dict().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    let stage = stage_scopes(net.as_ref(), &[3]).unwrap().remove(0);
    insert_after(net.as_mut(), &stage, "post", conv1x1(64)).unwrap();
    insert_after(net.as_mut(), &stage, "bn", Box::new(BatchNorm2d::new(64))).unwrap();
    insert_before(net.as_mut(), &stage, "pre", Box::new(Dropout2d::new(0.1).unwrap())).unwrap();
    let new: Vec<(String, Vec<usize>)> = net.state_dict().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    for entry in &old {
        assert!(new.contains(entry), "{entry:?} kept");
    }
    let added: Vec<&str> = new.iter().filter(|e| !old.contains(e)).map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        added,
        [
            "layer3.post.weight",
            "layer3.post.bias",
            "layer3.bn.weight",
            "layer3.bn.bias",
            "layer3.bn.running_mean",
            "layer3.bn.running_var",
            "layer3.bn.num_batches_tracked"
        ]
    );
    let a = net.get_module("layer3").unwrap().downcast_ref::<Around>().unwrap();
    let order: Vec<&str> = a.before.iter().chain(&a.after).map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, ["pre", "post", "bn"]);
    assert_eq!(num_stages(net.as_ref()), 3, "the stage is still found");
    // forward = bn(post(layer3(pre(x)))): zeroing post's weights and bias makes the stage output 0.
    let post = net.get_module("layer3.post").unwrap().downcast_ref::<Conv2d>().unwrap();
    post.weight.set_data(&Tensor::zeros(&[64, 64, 1, 1])).unwrap();
    post.bias.as_ref().unwrap().set_data(&Tensor::zeros(&[64])).unwrap();
    let y = net.forward(&Tensor::randn(&[2, 3, 32, 32], 3).unwrap(), Mode::Eval).unwrap();
    let fc_bias = net.get_module("linear").unwrap().params()[1].1.leaf();
    let expect = fc_bias.to_vec::<f32>().unwrap();
    let got = y.to_vec::<f32>().unwrap();
    assert!(got.iter().enumerate().all(|(i, v)| (v - expect[i % 10]).abs() < 1e-6), "{got:?}");
}

#[test]
fn insert_errors() {
    let mut net = build("resnet8");
    let e = insert_after(net.as_mut(), "layer9", "x", Box::new(ReLU)).unwrap_err().to_string();
    assert!(e.contains("layer9") && e.contains("layer3"), "{e}");
    let e = insert_after(net.as_mut(), "layer1", "0", Box::new(ReLU)).unwrap_err().to_string();
    assert!(e.contains("\"0\""), "a clash with a child: {e}");
    let e = insert_after(net.as_mut(), "conv1", "weight", Box::new(ReLU)).unwrap_err().to_string();
    assert!(e.contains("\"weight\""), "a clash with a parameter: {e}");
    insert_after(net.as_mut(), "layer1", "x", Box::new(ReLU)).unwrap();
    assert!(insert_before(net.as_mut(), "layer1", "x", Box::new(ReLU)).is_err(), "a clash with an extra");
    assert!(insert_after(net.as_mut(), "layer1", "a.b", Box::new(ReLU)).is_err());
    assert!(insert_after(net.as_mut(), "layer1", "", Box::new(ReLU)).is_err());
    assert!(insert_after(net.as_mut(), "", "x", Box::new(ReLU)).unwrap_err().to_string().contains("root"));
    assert_eq!(param_names(net.as_ref()), param_names(build("resnet8").as_ref()), "failed inserts change nothing");
}

#[test]
fn a_modified_model_reloads_its_own_checkpoint() {
    let modify = |seed: u64| {
        let mut net = models::build("resnet8", 10, 3, seed).unwrap();
        crate::rng::manual_seed(seed);
        insert_after(net.as_mut(), "layer2", "bn", Box::new(BatchNorm2d::new(32))).unwrap();
        insert_before(net.as_mut(), "layer3.0.conv2", "mix", conv1x1(64)).unwrap();
        replace(net.as_mut(), &Select::all().path("layer1.0.shortcut").unwrap(), &mut |_, _| Ok(Box::new(Identity)))
            .unwrap();
        net
    };
    let (a, b) = (modify(1), modify(2));
    let x = Tensor::randn(&[2, 3, 32, 32], 5).unwrap();
    a.forward(&x, Mode::Train).unwrap(); // moves a's running statistics
    let dir = std::env::temp_dir().join(format!("lamina-surgery-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("modified.safetensors");
    crate::state_dict::save_module(a.as_ref(), &path).unwrap();
    let report = crate::state_dict::load_module(b.as_ref(), &path, Strictness::Strict).unwrap();
    assert!(report.is_clean());
    assert!(report.loaded.contains(&"layer2.bn.running_mean".to_string()));
    assert!(report.loaded.contains(&"layer3.0.conv2.mix.weight".to_string()));
    let (ya, yb) = (a.forward(&x, Mode::Eval).unwrap(), b.forward(&x, Mode::Eval).unwrap());
    assert_eq!(ya.to_vec::<f32>().unwrap(), yb.to_vec::<f32>().unwrap());
    // The unmodified model does not take it.
    let plain = models::build("resnet8", 10, 3, 0).unwrap();
    let e = load_state_dict(plain.as_ref(), &a.state_dict(), Strictness::Strict).unwrap_err().to_string();
    assert!(e.contains("layer2.bn.weight"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn stages_of_the_registered_models() {
    let scopes = |name: &str, k: &[usize]| stage_scopes(build(name).as_ref(), k).unwrap();
    assert_eq!(scopes("resnet20", &[1, 2, 3]), ["layer1", "layer2", "layer3"]);
    assert_eq!(num_stages(build("resnet20").as_ref()), 3);
    assert_eq!(scopes("resnet18-cifar", &[4]), ["layer4"]);
    assert_eq!(num_stages(build("resnet18-cifar").as_ref()), 4);
    assert_eq!(scopes("vgg16-bn", &[4]), ["features.24", "features.27", "features.30"]);
    assert_eq!(scopes("vgg16-bn", &[1]), ["features.0", "features.3"]);
    assert_eq!(num_stages(build("vgg16-bn").as_ref()), 5);
    let mb = build("mobilenetv2-cifar");
    assert_eq!(num_stages(mb.as_ref()), 4);
    let blocks = |r: std::ops::RangeInclusive<usize>| r.map(|i| format!("features.{i}")).collect::<Vec<_>>();
    assert_eq!(stage_scopes(mb.as_ref(), &[1]).unwrap(), blocks(1..=3));
    assert_eq!(stage_scopes(mb.as_ref(), &[2]).unwrap(), blocks(4..=6));
    assert_eq!(stage_scopes(mb.as_ref(), &[3]).unwrap(), blocks(7..=13));
    assert_eq!(stage_scopes(mb.as_ref(), &[4]).unwrap(), blocks(14..=17));
    let imagenet = crate::models::mobilenet::MobileNetV2::new(0.5, false, 10, 3, 0).unwrap();
    assert_eq!(num_stages(&imagenet), 5);
    assert_eq!(stage_scopes(&imagenet, &[1, 2]).unwrap(), blocks(1..=3));
    assert_eq!(scopes("lenet5", &[2]), ["conv2"]);
    assert_eq!(num_stages(build("lenet5").as_ref()), 2);
    let e = stage_scopes(build("vgg16-bn").as_ref(), &[6]).unwrap_err().to_string();
    assert!(e.contains("stage 6") && e.contains("1..=5") && e.contains("features.40"), "{e}");
    let e = stage_scopes(build("mlp").as_ref(), &[1]).unwrap_err().to_string();
    assert!(e.contains("this model has no convolutional stages"), "{e}");
    assert_eq!(num_stages(build("mlp").as_ref()), 0);
    let e = stage_scopes(build("vit-tiny-4").as_ref(), &[1]).unwrap_err().to_string();
    assert!(e.contains("blocks") && e.contains("no stages"), "{e}");
    assert_eq!(num_stages(build("vit-tiny-4").as_ref()), 0);
    assert!(stage_scopes(build("resnet20").as_ref(), &[0]).is_err());
}
