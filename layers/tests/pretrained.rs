//! Trained starts ([`load_pretrained`]): Lamina checkpoints with training state, prefixed
//! exports, other class counts, timm MobileNetV2 names, and the errors.

use std::collections::HashMap;
use std::path::PathBuf;

use autograd::{DType, Tensor};
use layers::checkpoint::{save_checkpoint, TrainingState};
use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::pretrained::{load_pretrained, PretrainedOptions};
use layers::state_dict::{load_state_dict, save_tensors, Strictness};
use layers::{models, BatchNorm2d, Conv2d, Conv2dOptions, Mode, Module, ModuleExt, Sequential};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lamina-pretrained-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn save(path: &std::path::Path, tensors: &[(String, Tensor)]) {
    save_tensors(path, tensors, &HashMap::new()).unwrap();
}

fn values(sd: &[(String, Tensor)], name: &str) -> Vec<f64> {
    sd.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1.to_f64_vec().unwrap()
}

fn same_state(a: &dyn Module, b: &dyn Module, except: &[&str]) {
    let (sa, sb) = (a.state_dict(), b.state_dict());
    assert_eq!(sa.len(), sb.len());
    for ((n, x), (m, y)) in sa.iter().zip(&sb) {
        assert_eq!(n, m);
        if !except.contains(&n.as_str()) {
            assert_eq!(x.to_f64_vec().unwrap(), y.to_f64_vec().unwrap(), "{n}");
        }
    }
}

fn opts() -> PretrainedOptions {
    PretrainedOptions::default()
}

#[test]
fn a_lamina_checkpoint_with_training_state() {
    let dir = TempDir::new("ckpt");
    let path = dir.file("last.safetensors");
    let src = models::build("resnet8", 10, 3, 1).unwrap();
    let mut opt = Sgd::new(vec![ParamGroup::new(src.named_parameters())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
    let x = Tensor::randn(&[2, 3, 32, 32], 0).unwrap();
    src.forward(&x, Mode::Train).unwrap().sum_all().unwrap().backward().unwrap();
    opt.step().unwrap();
    save_checkpoint(&path, src.as_ref(), Some(&opt), None, &TrainingState::default()).unwrap();
    // A method's state, as the trainer may save it beside the optimizer's.
    let mut file = layers::state_dict::load_tensors(&path).unwrap();
    file.tensors.push(("method.mask.layer1.0.conv1.weight".into(), Tensor::ones(&[16, 16, 3, 3])));
    save_tensors(&path, &file.tensors, &file.metadata).unwrap();

    let dst = models::build("resnet8", 10, 3, 2).unwrap();
    let report = load_pretrained(dst.as_ref(), &path, &opts()).unwrap();
    same_state(src.as_ref(), dst.as_ref(), &[]);
    assert_eq!(report.loaded, src.state_dict().len());
    let n_params = src.named_parameters().len();
    assert_eq!(report.skipped.len(), n_params + 1, "a momentum buffer per parameter and the method's mask");
    assert!(report.skipped.iter().all(|n| n.starts_with("optim.") || n.starts_with("method.")));
    assert_eq!((report.stripped_prefix.clone(), report.renamed.clone()), (None, None));
    assert!(report.reinitialized.is_empty());
    assert!(report.to_string().starts_with(&format!("loaded {} tensors from ", report.loaded)), "{report}");
}

#[test]
fn prefixed_exports_are_stripped() {
    let dir = TempDir::new("prefix");
    let src = models::build("vgg11-bn", 10, 3, 1).unwrap();
    for prefix in ["module.", "model.", "module.model."] {
        let path = dir.file("p.safetensors");
        let named: Vec<_> = src.state_dict().into_iter().map(|(n, t)| (format!("{prefix}{n}"), t)).collect();
        save(&path, &named);
        let dst = models::build("vgg11-bn", 10, 3, 2).unwrap();
        let report = load_pretrained(dst.as_ref(), &path, &opts()).unwrap();
        assert_eq!(report.stripped_prefix.as_deref(), Some(prefix));
        same_state(src.as_ref(), dst.as_ref(), &[]);
        // Not stripped when told not to: then nothing matches.
        let none = PretrainedOptions { strip_prefixes: vec![] };
        let e = load_pretrained(dst.as_ref(), &path, &none).unwrap_err().to_string();
        assert!(e.contains("not in the model") && e.contains(prefix), "{e}");
    }
}

#[test]
fn another_class_count_keeps_the_fresh_classifier() {
    let dir = TempDir::new("classes");
    let path = dir.file("c100.safetensors");
    for (name, cls) in [("resnet20", "linear"), ("vit-tiny-4", "head"), ("mobilenetv2-0.5-cifar", "classifier.1")] {
        let src = models::build(name, 100, 3, 1).unwrap();
        save(&path, &src.state_dict());
        let dst = models::build(name, 10, 3, 2).unwrap();
        let fresh = dst.state_dict();
        let report = load_pretrained(dst.as_ref(), &path, &opts()).unwrap();
        let (w, b) = (format!("{cls}.weight"), format!("{cls}.bias"));
        assert_eq!(report.reinitialized, [w.clone(), b.clone()], "{name}");
        assert_eq!(report.classes, Some((100, 10)));
        assert_eq!(report.loaded, fresh.len() - 2);
        let now = dst.state_dict();
        assert_eq!(values(&now, &w), values(&fresh, &w), "{name}: classifier left at its init");
        assert_ne!(values(&now, &w), values(&src.state_dict(), &w)[..values(&now, &w).len()]);
        same_state(src.as_ref(), dst.as_ref(), &[&w, &b]);
        let text = report.to_string();
        assert!(
            text.contains(&format!("classifier {w}, {b} re-initialized: the file has 100 classes, the model 10")),
            "{text}"
        );
    }
}

#[test]
fn timm_mobilenetv2_names_are_translated() {
    let dir = TempDir::new("timm");
    let path = dir.file("timm.safetensors");
    let src = models::build("mobilenetv2", 1000, 3, 1).unwrap();
    // The inverse of the loader's table, applied by hand to a few names as a spot check, and to
    // all of them through the exporter below.
    let timm: Vec<(String, Tensor)> = src.state_dict().into_iter().map(|(n, t)| (timm_name(&n), t)).collect();
    assert!(timm.iter().any(|(n, _)| n == "blocks.0.0.conv_dw.weight"));
    assert!(timm.iter().any(|(n, _)| n == "blocks.6.0.conv_pwl.weight"));
    assert!(timm.iter().any(|(n, _)| n == "conv_head.weight") && timm.iter().any(|(n, _)| n == "bn2.running_var"));
    save(&path, &timm);
    let dst = models::build("mobilenetv2", 1000, 3, 2).unwrap();
    let report = load_pretrained(dst.as_ref(), &path, &opts()).unwrap();
    assert_eq!(report.renamed.as_deref(), Some("timm MobileNetV2 names"));
    assert_eq!(report.loaded, 314);
    same_state(src.as_ref(), dst.as_ref(), &[]);
    // timm's 1000 classes into the CIFAR variant with 10: the classifier is re-initialized.
    let cifar = models::build("mobilenetv2-cifar", 10, 3, 2).unwrap();
    let report = load_pretrained(cifar.as_ref(), &path, &opts()).unwrap();
    assert_eq!(report.reinitialized, ["classifier.1.weight", "classifier.1.bias"]);
}

/// timm's `mobilenetv2_100` name of a tensor of this project's MobileNetV2 (written out here
/// independently of the loader's table: 1, 2, 3, 4, 3, 3, 1 blocks per stage).
fn timm_name(ours: &str) -> String {
    let (module, leaf) = ours.rsplit_once('.').unwrap();
    let top = [
        ("features.0.0", "conv_stem"),
        ("features.0.1", "bn1"),
        ("features.18.0", "conv_head"),
        ("features.18.1", "bn2"),
        ("classifier.1", "classifier"),
    ];
    if let Some((_, t)) = top.iter().find(|(o, _)| *o == module) {
        return format!("{t}.{leaf}");
    }
    let rest = module.strip_prefix("features.").unwrap();
    let (i, sub) = rest.split_once('.').unwrap();
    let i: usize = i.parse().unwrap();
    let starts = [1, 2, 4, 7, 11, 14, 17];
    let s = starts.iter().rposition(|&st| st <= i).unwrap();
    let b = i - starts[s];
    let t = match (s, sub) {
        (0, "conv.0.0") => "conv_dw",
        (0, "conv.0.1") => "bn1",
        (0, "conv.1") => "conv_pw",
        (0, "conv.2") => "bn2",
        (_, "conv.0.0") => "conv_pw",
        (_, "conv.0.1") => "bn1",
        (_, "conv.1.0") => "conv_dw",
        (_, "conv.1.1") => "bn2",
        (_, "conv.2") => "conv_pwl",
        (_, "conv.3") => "bn3",
        _ => panic!("unexpected {ours}"),
    };
    format!("blocks.{s}.{b}.{t}.{leaf}")
}

#[test]
fn dtype_mismatches_are_errors() {
    let dir = TempDir::new("dtype");
    let path = dir.file("d.safetensors");
    let src = models::build("resnet8", 10, 3, 1).unwrap();
    let dst = models::build("resnet8", 10, 3, 2).unwrap();
    let before = dst.state_dict();
    for (victim, to) in [("conv1.weight", DType::I64), ("bn1.num_batches_tracked", DType::F32)] {
        let sd: Vec<_> = src
            .state_dict()
            .into_iter()
            .map(|(n, t)| if n == victim { (n, t.to_dtype(to).unwrap()) } else { (n, t) })
            .collect();
        save(&path, &sd);
        let e = load_pretrained(dst.as_ref(), &path, &opts()).unwrap_err().to_string();
        assert!(e.contains(&format!("{victim:?}")), "{e}");
        let e = load_state_dict(dst.as_ref(), &sd, Strictness::Lenient).unwrap_err().to_string();
        assert!(e.contains(&format!("{victim:?}")) && e.contains(&format!("{to:?}")), "{e}");
        for ((n, now), (_, then)) in dst.state_dict().iter().zip(&before) {
            assert_eq!(now.to_f64_vec().unwrap(), then.to_f64_vec().unwrap(), "{n}: nothing loaded");
        }
    }
    // Floats convert between widths.
    let f64s: Vec<_> = src
        .state_dict()
        .into_iter()
        .map(|(n, t)| if t.dtype() == DType::F32 { (n, t.to_dtype(DType::F64).unwrap()) } else { (n, t) })
        .collect();
    load_state_dict(dst.as_ref(), &f64s, Strictness::Strict).unwrap();
}

#[test]
fn unrelated_files_and_bad_paths_are_errors() {
    let dir = TempDir::new("bad");
    let path = dir.file("resnet.safetensors");
    save(&path, &models::build("resnet8", 10, 3, 1).unwrap().state_dict());
    let vgg = models::build("vgg11-bn", 10, 3, 2).unwrap();
    let before = vgg.state_dict();
    let e = load_pretrained(vgg.as_ref(), &path, &opts()).unwrap_err().to_string();
    assert!(
        e.contains("resnet.safetensors") && e.contains("missing from the file") && e.contains("features.0.weight"),
        "{e}"
    );
    assert!(e.contains("37 not in the model") && e.contains("\"conv1.weight\""), "{e}");
    assert_eq!(values(&vgg.state_dict(), "features.0.weight"), values(&before, "features.0.weight"), "nothing loaded");
    // Same names, other shapes (another width).
    let wide = models::build_with("resnet8", &models::ModelOptions::new(10, 3, 0).width(2.0)).unwrap();
    let e = load_pretrained(wide.as_ref(), &path, &opts()).unwrap_err().to_string();
    assert!(e.contains("conv1.weight: model [32, 3, 3, 3], file [16, 3, 3, 3]"), "{e}");
    let missing = dir.file("nope.safetensors");
    let e = load_pretrained(vgg.as_ref(), &missing, &opts()).unwrap_err().to_string();
    assert!(e.contains("nope.safetensors") && e.contains("no such file"), "{e}");
    let e = load_pretrained(vgg.as_ref(), &dir.0, &opts()).unwrap_err().to_string();
    assert!(e.contains(&dir.0.display().to_string()) && e.contains("directory"), "{e}");
    let junk = dir.file("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    assert!(load_pretrained(vgg.as_ref(), &junk, &opts()).unwrap_err().to_string().contains("junk.safetensors"));
}

#[test]
fn counters_the_model_does_not_keep_are_skipped() {
    let dir = TempDir::new("counters");
    let path = dir.file("bn.safetensors");
    let make =
        || Sequential::new().push(Conv2d::new(3, 4, 3, Conv2dOptions::default()).unwrap()).push(BatchNorm2d::new(4));
    save(&path, &make().state_dict());
    let mut dst = make();
    dst.layers[1].downcast_mut::<BatchNorm2d>().unwrap().num_batches_tracked = None;
    let report = load_pretrained(&dst, &path, &opts()).unwrap();
    assert_eq!(report.skipped, ["1.num_batches_tracked"]);
    assert_eq!(report.loaded, 6);
}

#[test]
fn a_timm_vit_loads_by_name() {
    // A randomly initialized timm VisionTransformer (img 8, patch 4, D 16, 2 blocks, 1000
    // classes), written by fixtures/make_timm_vit.py from timm's state-dict structure.
    use layers::models::vit::{VisionTransformer, VitConfig};
    use layers::state_dict::load_tensors;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timm_vit_tiny8.safetensors");
    let cfg = VitConfig { image_size: 8, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2, mlp_ratio: 4.0 };
    let vit = VisionTransformer::new(cfg, 10, 3, 0).unwrap();
    let report = load_pretrained(&vit, &path, &opts()).unwrap();
    assert_eq!(report.loaded, 30);
    assert_eq!(report.reinitialized, ["head.weight", "head.bias"]);
    assert_eq!(report.classes, Some((1000, 10)));
    assert!(report.renamed.is_none() && report.stripped_prefix.is_none());
    let file = load_tensors(&path).unwrap();
    let sd = vit.state_dict();
    for (name, t) in &file.tensors {
        if !name.starts_with("head.") {
            assert_eq!(values(&sd, name), t.to_f64_vec().unwrap(), "{name}");
        }
    }
    // The same file into a 1000-class model loads everything, and the model runs.
    let full = VisionTransformer::new(cfg, 1000, 3, 1).unwrap();
    assert_eq!(load_pretrained(&full, &path, &opts()).unwrap().loaded, 32);
    assert_eq!(full.forward(&Tensor::zeros(&[1, 3, 8, 8]), Mode::Eval).unwrap().shape(), &[1, 1000]);
}
