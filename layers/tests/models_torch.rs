//! Forward and backward equivalence with PyTorch: the fixtures in `tests/fixtures/` were written
//! by `tests/fixtures/make_fixtures.py` from reference modules with the same parameter names
//! (the CIFAR ResNet reference, torchvision's MobileNetV2 blocks, timm's ViT). Each file holds
//! the state dict, which Lamina loads strictly by name, an input, an output cotangent, and per
//! mode the output, the input gradient and selected parameter gradients (plus BatchNorm running
//! statistics after a training step). Everything must match to 1e-4 relative in f32.

use std::collections::HashMap;
use std::path::PathBuf;

use autograd::Tensor;
use layers::models::mobilenet::InvertedResidual;
use layers::models::resnet_cifar::{CifarResNet, Shortcut};
use layers::models::vit::{VisionTransformer, VitConfig};
use layers::state_dict::{load_state_dict, load_tensors, Strictness};
use layers::{models, EncoderBlock, Mode, Module, ModuleExt, Sequential};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The state entries (loaded strictly into `model`) and the `fixture.*` tensors of a file.
fn load_fixture(name: &str, model: &dyn Module) -> HashMap<String, Tensor> {
    let file = load_tensors(&fixture_path(&format!("{name}.safetensors"))).unwrap();
    let (fixture, state): (Vec<_>, Vec<_>) = file.tensors.into_iter().partition(|(n, _)| n.starts_with("fixture."));
    let report = load_state_dict(model, &state, Strictness::Strict).unwrap();
    assert_eq!(report.loaded.len(), state.len());
    fixture.into_iter().collect()
}

/// `max |a - e| / max |e|`.
fn rel_err(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.shape(), expected.shape());
    let (a, e) = (actual.to_f64_vec().unwrap(), expected.to_f64_vec().unwrap());
    let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(&e).fold(0.0f64, |m, (a, e)| m.max((a - e).abs())) / scale
}

fn assert_close(what: &str, actual: &Tensor, expected: &Tensor) {
    let err = rel_err(actual, expected);
    println!("{what}: relative error {err:.1e}");
    assert!(err < 1e-4, "{what}: relative error {err:e}");
}

/// Runs `model` in `mode` on the fixture's input and compares the output, the input gradient,
/// every stored parameter gradient and (train mode) the running statistics.
fn check_mode(model: &dyn Module, fx: &HashMap<String, Tensor>, mode: &str) {
    model.zero_grad();
    let x = fx["fixture.input"].detach().requires_grad_();
    let m = if mode == "train" { Mode::Train } else { Mode::Eval };
    let out = model.forward(&x, m).unwrap();
    assert_close(&format!("{mode} output"), &out, &fx[&format!("fixture.{mode}.output")]);
    let grads = out.mul(&fx["fixture.grad_output"]).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&format!("{mode} input gradient"), grads.get(&x).unwrap(), &fx[&format!("fixture.{mode}.grad_input")]);
    let params: HashMap<String, layers::Param> = model.named_parameters().into_iter().collect();
    let prefix = format!("fixture.{mode}.grad.");
    let mut checked = 0;
    for (name, expected) in fx.iter().filter(|(n, _)| n.starts_with(&prefix)) {
        let pname = &name[prefix.len()..];
        let grad = params[pname].grad().unwrap_or_else(|| panic!("no gradient for {pname}"));
        assert_close(&format!("{mode} gradient of {pname}"), &grad, expected);
        checked += 1;
    }
    assert!(checked > 0, "the fixture stores parameter gradients");
    if mode == "train" {
        let buffers: HashMap<String, layers::Buffer> = model.named_buffers().into_iter().collect();
        let stats: Vec<_> =
            fx.iter().filter(|(n, _)| n.starts_with("fixture.train.") && n.contains("running_")).collect();
        for (name, expected) in &stats {
            let bname = &name["fixture.train.".len()..];
            assert_close(&format!("updated {bname}"), &buffers[bname].get(), expected);
        }
        assert!(!stats.is_empty());
    }
}

fn check(model: &dyn Module, name: &str, modes: &[&str]) {
    let fx = load_fixture(name, model);
    for mode in modes {
        check_mode(model, &fx, mode);
    }
}

#[test]
fn resnet20_matches_pytorch() {
    let net = CifarResNet::new(20, Shortcut::A, 10, 3, 0).unwrap();
    check(&net, "resnet20", &["eval", "train"]);
}

#[test]
fn inverted_residual_blocks_match_torchvision() {
    let blocks = Sequential::new()
        .push(InvertedResidual::new(16, 24, 2, 6).unwrap())
        .push(InvertedResidual::new(24, 24, 1, 6).unwrap());
    check(&blocks, "inverted_residual", &["eval", "train"]);
}

#[test]
fn vit_block_matches_timm() {
    let block = EncoderBlock::new(32, 4, 4.0).unwrap();
    check(&block, "vit_block", &["eval"]);
}

#[test]
fn small_vit_matches_timm() {
    let cfg = VitConfig { image_size: 8, patch_size: 4, embed_dim: 32, depth: 2, num_heads: 2, mlp_ratio: 4.0 };
    let vit = VisionTransformer::new(cfg, 10, 3, 0).unwrap();
    check(&vit, "vit_small", &["eval"]);
}

#[test]
fn a_mismatched_model_is_refused_by_strict_loading() {
    let net = CifarResNet::new(8, Shortcut::A, 10, 3, 0).unwrap();
    let file = load_tensors(&fixture_path("resnet20.safetensors")).unwrap();
    let state: Vec<_> = file.tensors.into_iter().filter(|(n, _)| !n.starts_with("fixture.")).collect();
    let err = load_state_dict(&net, &state, Strictness::Strict).err().unwrap().to_string();
    assert!(err.contains("layer1.1.conv1.weight"), "{err}");
}

/// Every name and shape of the torchvision/timm state dicts (written by the fixture script and
/// checked there against torchvision and timm themselves) loads strictly into the registry's
/// model, each tensor into the slot of its name.
#[test]
fn torchvision_and_timm_state_dicts_load_by_name() {
    let text = std::fs::read_to_string(fixture_path("reference_names.json")).unwrap();
    let refs: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (key, model) in [
        ("resnet18", "resnet18"),
        ("resnet50", "resnet50"),
        ("mobilenet_v2", "mobilenetv2"),
        ("vit_tiny_patch16_224", "vit-tiny-16"),
    ] {
        let entries = refs[key].as_array().unwrap();
        let state: Vec<(String, Tensor)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let shape: Vec<usize> = e[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (e[0].as_str().unwrap().to_string(), Tensor::full(&shape, i as f64))
            })
            .collect();
        let net = models::build(model, 1000, 3, 0).unwrap();
        let report = load_state_dict(&*net, &state, Strictness::Strict).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(report.loaded.len(), entries.len());
        let ours: HashMap<String, Tensor> = net.state_dict().into_iter().collect();
        for (i, (name, _)) in state.iter().enumerate() {
            let v = ours[name].to_f64_vec().unwrap();
            assert!(v.iter().all(|&x| x == i as f64), "{key}: {name} did not receive its tensor");
        }
    }
}
