//! The module tree: dotted names, freezing, replacing a submodule by name, dtype conversion,
//! dropout reproducibility, and the MAC counter on a net whose count is known by hand.

use autograd::{DType, Device, Tensor};
use layers::mac::count_macs;
use layers::{
    children, rng, BatchNorm2d, Conv2d, Conv2dOptions, Dropout, Flatten, Identity, Linear, Mode, Module, ModuleExt,
    ReLU, Sequential,
};

struct Block {
    conv: Box<dyn Module>,
    bn: Box<dyn Module>,
    shortcut: Box<dyn Module>,
}

impl Module for Block {
    fn forward(&self, x: &Tensor, mode: Mode) -> autograd::Result<Tensor> {
        let y = self.bn.forward(&self.conv.forward(x, mode)?, mode)?;
        y.add(&self.shortcut.forward(x, mode)?)?.relu()
    }
    children!(conv, bn, shortcut);
}

fn block(c: usize) -> Block {
    Block {
        conv: Box::new(Conv2d::new(c, c, 3, Conv2dOptions::default().padding(1).bias(false)).unwrap()),
        bn: Box::new(BatchNorm2d::new(c)),
        shortcut: Box::new(Identity),
    }
}

fn net() -> Sequential {
    rng::with_seed(7, || {
        Sequential::new()
            .push(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1)).unwrap())
            .push(Sequential::new().push(block(4)).push(block(4)))
            .push(Flatten::default())
            .push(Linear::new(4 * 5 * 5, 3, true))
    })
}

#[test]
fn names_follow_pytorch_dotted_form() {
    let n = net();
    let names: Vec<String> = n.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "1.0.conv.weight",
            "1.0.bn.weight",
            "1.0.bn.bias",
            "1.1.conv.weight",
            "1.1.bn.weight",
            "1.1.bn.bias",
            "3.weight",
            "3.bias"
        ]
    );
    let bufs: Vec<String> = n.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(bufs[..3], ["1.0.bn.running_mean", "1.0.bn.running_var", "1.0.bn.num_batches_tracked"]);
    let mods: Vec<String> = n.named_modules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(mods[..5], ["", "0", "1", "1.0", "1.0.conv"]);
    assert_eq!(n.get_module("1.1.bn").unwrap().type_name(), "BatchNorm");
    assert!(n.get_module("1.2").is_none());
    assert_eq!(n.num_parameters(), 40 + 2 * (144 + 8) + 300 + 3);
}

#[test]
fn same_seed_builds_the_same_model() {
    let (a, b) = (net(), net());
    for ((_, p), (_, q)) in a.named_parameters().into_iter().zip(b.named_parameters()) {
        assert_eq!(p.leaf().to_vec::<f32>().unwrap(), q.leaf().to_vec::<f32>().unwrap());
    }
    let c = rng::with_seed(8, || Linear::new(4, 4, false));
    let d = rng::with_seed(7, || Linear::new(4, 4, false));
    assert_ne!(c.weight.leaf().to_vec::<f32>().unwrap(), d.weight.leaf().to_vec::<f32>().unwrap());
}

#[test]
fn frozen_parameters_get_no_gradient() {
    let n = net();
    assert_eq!(n.set_trainable("1.0", false).unwrap(), 3);
    assert!(n.set_trainable("1.7", false).unwrap_err().to_string().contains("1.7"));
    let x = Tensor::randn(&[2, 1, 5, 5], 1).unwrap();
    n.forward(&x, Mode::Train).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, p) in n.named_parameters() {
        assert_eq!(p.grad().is_some(), !name.starts_with("1.0."), "{name}");
    }
    assert_eq!(n.trainable_parameters().len(), 7);
    n.set_trainable("", true).unwrap();
    assert_eq!(n.trainable_parameters().len(), 10);
}

#[test]
fn replace_module_swaps_by_name_and_reports_bad_paths() {
    let mut n = net();
    let old = n.replace_module("1.1.shortcut", Box::new(Linear::new(5, 5, false))).unwrap();
    assert_eq!(old.type_name(), "Identity");
    assert!(n.named_parameters().iter().any(|(name, _)| name == "1.1.shortcut.weight"));
    let err = n.replace_module("1.1.nope", Box::new(Identity)).err().unwrap().to_string();
    assert!(err.contains("nope") && err.contains("conv") && err.contains("shortcut"), "{err}");
    assert!(n.replace_module("", Box::new(Identity)).is_err());
    // Downcasting reaches a concrete layer to change it.
    let mut m = net();
    let mut slot = m.replace_module("3", Box::new(Identity)).unwrap();
    assert!(slot.downcast_mut::<Linear>().is_some());
    assert!(slot.downcast_ref::<Conv2d>().is_none());
}

#[test]
fn convert_to_f64_keeps_values_and_the_forward_pass() {
    let n = net();
    let x = Tensor::randn(&[2, 1, 5, 5], 3).unwrap();
    let y32 = n.forward(&x, Mode::Eval).unwrap().to_f64_vec().unwrap();
    n.convert(DType::F64, Device::Cpu).unwrap();
    assert!(n.parameters().iter().all(|p| p.leaf().dtype() == DType::F64));
    let counter = n.named_buffers().into_iter().find(|(n, _)| n.ends_with("num_batches_tracked")).unwrap().1;
    assert_eq!(counter.get().dtype(), DType::I64, "integer buffers keep their dtype");
    let y64 = n.forward(&x.to_dtype(DType::F64).unwrap(), Mode::Eval).unwrap().to_f64_vec().unwrap();
    for (a, b) in y32.iter().zip(&y64) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn dropout_layers_draw_from_the_seed_generator() {
    let d = Dropout::new(0.5).unwrap();
    let x = Tensor::ones(&[64]);
    rng::manual_seed(4);
    let a = d.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap();
    let b = d.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap();
    assert_ne!(a, b, "each call draws a new mask");
    rng::manual_seed(4);
    assert_eq!(d.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap(), a, "same seed, same masks");
    let before = rng::state();
    d.forward(&x, Mode::Eval).unwrap();
    assert_eq!(rng::state(), before, "evaluation draws nothing");
    assert!(Dropout::new(1.5).is_err());
}

#[test]
fn mac_counter_matches_a_hand_count() {
    let n = net();
    let r = count_macs(&n, &Tensor::zeros(&[2, 1, 5, 5])).unwrap();
    let names: Vec<&str> = r.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["0", "1.0.conv", "1.1.conv", "3"]);
    // Per image: stem 4·25·9, each block conv 4·25·36, head 100·3; batch of 2.
    assert_eq!(r.total_macs, 2 * (4 * 25 * 9 + 2 * 4 * 25 * 36 + 100 * 3));
    assert_eq!(r.total_params, n.num_parameters());
    let table = r.to_string();
    assert!(table.contains("1.1.conv") && table.contains("total:"), "{table}");
    assert_eq!(r.to_json()["rows"].as_array().unwrap().len(), 4);
    // Counting leaves nothing recorded on the tape and the model unchanged.
    assert!(n.parameters().iter().all(|p| p.grad().is_none()));
}

#[test]
fn shape_errors_name_the_layer() {
    let fc = Linear::new(3, 2, true);
    let e = fc.forward(&Tensor::ones(&[4, 5]), Mode::Eval).unwrap_err().to_string();
    assert!(e.contains("Linear") && e.contains("[4, 5]"), "{e}");
    let bn = BatchNorm2d::new(3);
    let e = bn.forward(&Tensor::ones(&[2, 4, 3, 3]), Mode::Train).unwrap_err().to_string();
    assert!(e.contains("BatchNorm") && e.contains("[2, 4, 3, 3]"), "{e}");
    assert!(bn.forward(&Tensor::ones(&[1, 3, 1, 1]), Mode::Train).is_err(), "one value per channel");
    assert!(Conv2d::new(3, 4, 3, Conv2dOptions::default().groups(2)).is_err());
    let _ = ReLU;
}
