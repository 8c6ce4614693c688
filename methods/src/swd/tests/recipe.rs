//! Recipes on the real models: the paper's stages, positions and values.

use autograd::Tensor;
use layers::{models, Mode, Module, ModuleExt};

use crate::swd::{stage_scopes, Position, SpectralKind, SpectralRecipe};
use layers::surgery::Around;

fn wrapped(kind: SpectralKind, model: &str, classes: usize) -> (Box<dyn Module>, Vec<String>, SpectralRecipe) {
    let mut net = models::build(model, classes, 3, 0).unwrap();
    let recipe = SpectralRecipe::paper_default(kind, model, classes);
    let paths = recipe.apply(net.as_mut()).unwrap();
    (net, paths, recipe)
}

#[test]
fn resnet18_cifar_gets_1d_swd_after_the_stage_3_convs() {
    let (net, paths, r) = wrapped(SpectralKind::Swd1d, "resnet18-cifar", 10);
    assert_eq!((r.p, r.stages.clone(), r.position), (0.1, vec![3], Position::After));
    assert_eq!(
        paths,
        ["layer3.0.conv1", "layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv1", "layer3.1.conv2"]
    );
    let m = net.get_module("layer3.0.downsample.0").unwrap().downcast_ref::<Around>().unwrap();
    assert_eq!(m.after[0].1.type_name(), "SpectralWaveletDropout1d");
    assert_eq!(m.after[0].0, "swd");
    assert!(net.get_module("layer4.0.conv1").unwrap().downcast_ref::<Around>().is_none());
    // 2-D SWD goes before the convolutions; CIFAR-100 moves to stage 4 with its own p.
    let (_, _, r2) = wrapped(SpectralKind::Swd2d, "resnet18-cifar", 10);
    assert_eq!((r2.p, r2.position), (0.1, Position::Before));
    let (_, paths, r3) = wrapped(SpectralKind::Swd2d, "resnet18-cifar", 100);
    assert_eq!((r3.p, r3.stages.clone()), (0.2, vec![4]));
    assert!(paths.iter().all(|p| p.starts_with("layer4.")));
    // SFD follows Tables XI/XII: stage 4, on ResNet-18 and ResNet-34 CIFAR-10 too.
    for kind in [SpectralKind::Sfd1d, SpectralKind::Sfd2d] {
        for model in ["resnet18-cifar", "resnet34-cifar"] {
            let (_, paths, r) = wrapped(kind, model, 10);
            assert_eq!(r.stages, [4], "{kind:?} {model}");
            assert!(paths.iter().all(|p| p.starts_with("layer4.")), "{kind:?} {model}: {paths:?}");
        }
    }
    assert_eq!(SpectralRecipe::paper_default(SpectralKind::Dropout2d, "resnet18-cifar", 10).stages, [3]);
}

#[test]
fn selected_values_follow_the_paper_tables() {
    let pe = |k, m, c| {
        let r = SpectralRecipe::paper_default(k, m, c);
        (r.p, r.eta)
    };
    assert_eq!(pe(SpectralKind::Sfd2d, "resnet34-cifar", 10), (0.4, 0.3));
    assert_eq!(pe(SpectralKind::Sfd1d, "vgg16-bn", 100), (0.4, 0.1));
    assert_eq!(pe(SpectralKind::Swd2d, "vgg16-bn", 10), (0.5, 0.0));
    assert_eq!(pe(SpectralKind::Swd1d, "resnet50", 1000), (0.2, 0.0));
    assert_eq!(pe(SpectralKind::Sfd2d, "resnet50", 1000), (0.2, 0.1));
    assert_eq!(SpectralRecipe::paper_default(SpectralKind::Swd1d, "resnet50", 1000).position, Position::Before);
    assert_eq!(SpectralRecipe::paper_default(SpectralKind::Swd1d, "resnet34-cifar", 10).stages, [3]);
    assert_eq!(SpectralRecipe::paper_default(SpectralKind::Swd2d, "resnet34-cifar", 10).stages, [4]);
    for k in SpectralKind::ALL {
        assert_eq!(SpectralKind::parse(k.name()).unwrap(), k);
    }
    assert!(SpectralKind::parse("swd3d").is_err());
}

#[test]
fn vgg16_module_4_and_lenet_conv2() {
    let net = models::build("vgg16-bn", 10, 3, 0).unwrap();
    assert_eq!(stage_scopes(net.as_ref(), &[4]).unwrap(), ["features.24", "features.27", "features.30"]);
    assert_eq!(stage_scopes(net.as_ref(), &[1]).unwrap(), ["features.0", "features.3"]);
    let e = stage_scopes(net.as_ref(), &[6]).unwrap_err().to_string();
    assert!(e.contains("stage 6") && e.contains("1..=5"), "{e}");
    let lenet = models::build("lenet5", 10, 1, 0).unwrap();
    assert_eq!(stage_scopes(lenet.as_ref(), &[2]).unwrap(), ["conv2"]);
}

#[test]
fn wrapped_resnet20_trains_and_is_unchanged_in_eval() {
    let x = Tensor::randn(&[2, 3, 32, 32], 1).unwrap();
    for kind in SpectralKind::ALL {
        let plain = models::build("resnet20", 10, 3, 0).unwrap();
        let (net, paths, r) = wrapped(kind, "resnet20", 10);
        assert_eq!(paths.len(), 6, "{kind:?}: three blocks of two convolutions in layer3");
        assert_eq!(r.stages, [3]);
        let y = net.forward(&x, Mode::Eval).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), plain.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap());
        layers::rng::manual_seed(0);
        let loss = net.forward(&x, Mode::Train).unwrap().square().unwrap().sum_all().unwrap();
        loss.backward().unwrap();
        assert!(net.parameters().iter().all(|p| p.grad().is_some()), "{kind:?}");
    }
}

fn run_info(model: &str) -> crate::registry::RunInfo {
    crate::registry::RunInfo {
        model: model.into(),
        dataset: "fashion-mnist-embedded".into(),
        num_classes: 10,
        input_shape: [1, 28, 28],
        epochs: 1,
        steps_per_epoch: 1,
        width: 1.0,
        seed: 0,
        device: autograd::Device::Cpu,
    }
}

#[test]
fn registry_entries_default_to_the_paper_and_take_overrides() {
    use crate::swd::{recipe_from, MaskGranularity, SWD};
    let run = run_info("resnet8");
    let mut h = SWD.default_hparams();
    let r = recipe_from(SpectralKind::Swd1d, &h, &run).unwrap();
    assert_eq!(r, SpectralRecipe::paper_default(SpectralKind::Swd1d, "resnet8", 10));
    assert_eq!((r.p, r.stages.clone(), r.position), (0.1, vec![3], Position::After));
    for s in ["p=0.3", "stages=2,3", "position=before", "granularity=channel"] {
        h.set(s).unwrap();
    }
    let r = recipe_from(SpectralKind::Swd1d, &h, &run).unwrap();
    assert_eq!(
        (r.p, r.stages, r.position, r.granularity),
        (0.3, vec![2, 3], Position::Before, MaskGranularity::PerChannel)
    );
    h.set("levels=3").unwrap();
    let r = recipe_from(SpectralKind::Swd1d, &h, &run).unwrap();
    assert_eq!(r.droppable_levels, Some(vec![3]));
    h.set("levels=4").unwrap();
    assert!(recipe_from(SpectralKind::Swd1d, &h, &run).unwrap_err().to_string().contains("1..=3"));
    h.set("levels=all").unwrap();
    h.set("granularity=pixel").unwrap();
    assert!(recipe_from(SpectralKind::Swd1d, &h, &run).unwrap_err().to_string().contains("pixel"));
    let mut h = crate::swd::SFD.default_hparams();
    h.set("eta=1.5").unwrap();
    assert!(recipe_from(SpectralKind::Sfd1d, &h, &run).is_err());
    let names: Vec<&str> = crate::registry::all().iter().map(|m| m.name).collect();
    for k in SpectralKind::ALL {
        assert!(names.contains(&k.name()), "{names:?}");
    }
}

#[test]
fn the_small_default_model_is_wrapped_in_its_last_stage() {
    let mut net = models::build("resnet8", 10, 1, 0).unwrap();
    let r = SpectralRecipe::paper_default(SpectralKind::Swd1d, "resnet8", 10);
    assert_eq!(r.apply(net.as_mut()).unwrap(), ["layer3.0.conv1", "layer3.0.conv2"]);
    let y = net.forward(&Tensor::randn(&[2, 1, 28, 28], 0).unwrap(), Mode::Train).unwrap();
    assert_eq!(y.shape(), &[2, 10]);
}
