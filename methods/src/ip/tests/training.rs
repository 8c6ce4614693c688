//! Interspace pruning through optimizer steps and through the trainer.

use layers::optim::{split_weight_decay, Adam, AdamOptions, Optimizer, Sgd, SgdOptions};
use layers::{Module, ModuleExt};

use super::super::basis::{BasisInit, Granularity};
use super::super::specs::{IP_LTH, IP_RIGL, IP_SNIP};
use super::ip_net;
use crate::config::TrainConfig;
use crate::registry::MethodSpec;
use crate::sparse::allocation::{keep_count, masks_from_scores, Allocation};
use crate::sparse::compact::{load_compact, save_compact};
use crate::sparse::engine::{apply_masks, counts, mask_gradients, masked_layers};
use crate::sparse::method::snapshot;
use crate::sparse::score::{sample_loss, snip_scores};
use crate::sparse::tests::{assert_same_bits, bits, f64s, masked_conv_net, sample};
use crate::trainer::{train_with, RunOptions};

fn step(model: &dyn Module, opt: &mut dyn Optimizer, seed: u64) {
    let loss = sample_loss(model, &sample(8, seed), 1.0).unwrap();
    loss.backward().unwrap();
    mask_gradients(model).unwrap();
    opt.step().unwrap();
    opt.zero_grad();
}

fn basis_of(model: &dyn Module, layer: usize) -> Vec<f64> {
    let name = format!("{}.weight_basis", masked_layers(model)[layer].0);
    f64s(&model.state_dict().into_iter().find(|(n, _)| *n == name).unwrap().1)
}

#[test]
fn masked_coefficients_stay_zero_while_the_basis_trains() {
    for adamw in [false, true] {
        let model = ip_net(41, BasisInit::Dct, Granularity::Layer, true);
        let geoms: Vec<_> = masked_layers(model.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
        let scores = snip_scores(model.as_ref(), &[sample(12, 1)]).unwrap();
        let masks = masks_from_scores(Allocation::Global, &scores, &geoms, 0.2).unwrap();
        let groups = split_weight_decay(model.named_parameters(), 5e-2);
        let mut opt: Box<dyn Optimizer> = if adamw {
            Box::new(Adam::new(groups, AdamOptions::adamw(1e-2).weight_decay(5e-2)).unwrap())
        } else {
            Box::new(Sgd::new(groups, SgdOptions::new(0.05).momentum(0.9)).unwrap())
        };
        // Dense steps first, so momentum exists when the masks arrive.
        for s in 0..3 {
            step(model.as_ref(), opt.as_mut(), s);
        }
        apply_masks(model.as_ref(), &masks, Some(opt.as_mut())).unwrap();
        let b0 = basis_of(model.as_ref(), 0);
        for s in 3..33 {
            step(model.as_ref(), opt.as_mut(), s);
        }
        let c = counts(model.as_ref()).unwrap();
        assert_eq!(c.active(), keep_count(0.2, c.total()), "nnz equals the target");
        for ((p, l), m) in masked_layers(model.as_ref()).iter().zip(&masks) {
            let v = f64s(&l.values().leaf());
            assert!(v.iter().zip(m).all(|(v, &m)| m != 0.0 || *v == 0.0), "{p}: a masked coefficient moved");
        }
        // The basis is dense, unmasked, and trained: (nearly) every entry moved.
        let b1 = basis_of(model.as_ref(), 0);
        assert_eq!(b1.len(), 81);
        assert!(b1.iter().zip(&b0).filter(|(a, b)| a != b).count() >= 75, "adamw={adamw}: the basis did not train");
        assert!(model.named_buffers().iter().all(|(n, _)| !n.ends_with("basis_mask")));
    }
}

/// Nonzero taps of each `kh x kw` filter of a weight.
fn taps(w: &[f64], k2: usize) -> Vec<usize> {
    w.chunks(k2).map(|f| f.iter().filter(|v| v.abs() > 1e-12).count()).collect()
}

#[test]
fn ip_filters_become_spatially_dense_while_sp_filters_stay_sparse() {
    // One coefficient kept per filter of the 3x3 convolutions; SP and IP started from the
    // standard basis (so both start with 1-sparse filters), IP's basis trained.
    let sp = masked_conv_net(51);
    let ip = ip_net(51, BasisInit::Standard, Granularity::Layer, true);
    for m in [&sp, &ip] {
        let masks: Vec<Vec<f32>> = masked_layers(m.as_ref())
            .iter()
            .map(|(_, l)| {
                let g = l.geometry();
                let k2 = g.kh * g.kw;
                (0..l.numel()).map(|j| f32::from(k2 == 1 || j % k2 == (j / k2 * 5) % k2)).collect()
            })
            .collect();
        apply_masks(m.as_ref(), &masks, None).unwrap();
    }
    let convs = |m: &dyn Module| -> Vec<Vec<usize>> {
        masked_layers(m).iter().take(2).map(|(_, l)| taps(&f64s(&l.effective_weight().unwrap()), 9)).collect()
    };
    assert!(convs(ip.as_ref()).iter().flatten().all(|&t| t <= 1), "IP starts as SP here");
    for m in [&sp, &ip] {
        let mut opt =
            Sgd::new(split_weight_decay(m.named_parameters(), 1e-4), SgdOptions::new(0.05).momentum(0.9)).unwrap();
        for s in 0..5 {
            step(m.as_ref(), &mut opt, s);
        }
    }
    assert!(convs(sp.as_ref()).iter().flatten().all(|&t| t <= 1), "SP filters stay 1-sparse");
    let ip_taps: Vec<usize> = convs(ip.as_ref()).into_iter().flatten().collect();
    assert!(ip_taps.iter().all(|&t| t == 9), "IP filters become spatially dense: {ip_taps:?}");
}

#[test]
fn the_rewind_point_and_compact_checkpoints_hold_the_basis() {
    let model = ip_net(61, BasisInit::Dct, Granularity::InputChannel, true);
    let names: Vec<String> = snapshot(model.as_ref()).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"0.weight_basis".to_string()) && names.contains(&"3.weight_basis".to_string()));
    let geoms: Vec<_> = masked_layers(model.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
    let scores = snip_scores(model.as_ref(), &[sample(12, 1)]).unwrap();
    apply_masks(model.as_ref(), &masks_from_scores(Allocation::Global, &scores, &geoms, 0.3).unwrap(), None).unwrap();
    let dir = std::env::temp_dir().join(format!("lamina-ip-compact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ip.safetensors");
    save_compact(model.as_ref(), &path).unwrap();
    let other = ip_net(62, BasisInit::RandomOrthogonal, Granularity::InputChannel, true);
    load_compact(other.as_ref(), &path).unwrap();
    let state = |m: &dyn Module| -> Vec<(String, Vec<u32>)> {
        m.state_dict().iter().map(|(n, t)| (n.clone(), bits(t))).collect()
    };
    assert_same_bits(&state(other.as_ref()), &state(model.as_ref()), "coefficients, masks and bases");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Number of convolution and linear layers of the quick run's model.
fn masked_layers_in(cfg: &TrainConfig) -> usize {
    let m =
        layers::models::build_with(&cfg.model, &layers::models::ModelOptions::new(10, 1, 0).width(cfg.width)).unwrap();
    layers::surgery::Select::all().of_type::<layers::Conv2d>().of_type::<layers::Linear>().paths(m.as_ref()).len()
}

fn quick(spec: &MethodSpec, sets: &[(&str, &str)]) -> TrainConfig {
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.width = 0.25;
    cfg.epochs = 2;
    cfg.batch_size = 30;
    cfg.train_limit = Some(300);
    cfg.test_limit = Some(200);
    cfg.schedule = "constant".into();
    cfg.lr = 0.05;
    for (k, v) in sets {
        cfg.hparams.insert(k.to_string(), v.to_string());
    }
    cfg
}

#[test]
fn the_registry_entries_train_with_a_basis_and_run_the_basis_path() {
    let runs: [(&MethodSpec, &[(&str, &str)]); 3] = [
        (&IP_SNIP, &[("sparsity", "0.9"), ("sparse_exec", "always")]),
        (&IP_RIGL, &[("sparsity", "0.9"), ("delta_t", "3")]),
        (&IP_LTH, &[("sparsity", "0.5"), ("rounds", "1"), ("rewind", "epoch:1")]),
    ];
    for (spec, sets) in runs {
        let dir = std::env::temp_dir().join(format!("lamina-ip-{}-{}", spec.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = quick(spec, sets);
        let s = train_with(spec, &cfg, &dir, false, &RunOptions { quiet: true, ..Default::default() }).unwrap();
        let line = |k: &str| s.extra.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(line("filter basis").as_deref(), Some("dct, per layer, trained"), "{}", spec.name);
        let sparsity: f64 = line("sparsity").unwrap().parse().unwrap();
        assert!((sparsity - cfg.hparams["sparsity"].parse::<f64>().unwrap()).abs() < 1e-3, "{}: {sparsity}", spec.name);
        match spec.name {
            "ip-rigl" => assert!(line("mask updates").unwrap().parse::<usize>().unwrap() >= 3),
            "ip-lth" => assert!(line("rounds").unwrap().starts_with("1 ")),
            _ => assert!(s.trained.test.acc > 0.2, "{}: learned nothing ({})", spec.name, s.trained.test.acc),
        }
        let ckpt = layers::state_dict::load_tensors(&dir.join("last.safetensors")).unwrap();
        assert!(ckpt.tensors.iter().any(|(n, _)| n.ends_with("conv1.weight_basis")), "{}: no basis saved", spec.name);
        if spec.name == "ip-snip" {
            // Every masked layer ran on the sparse path (the 3x3 convolutions on the basis
            // path) and predicts as the trained model.
            let inf = s.inference.as_ref().expect("an inference form");
            assert!(
                (inf.test.acc - s.trained.test.acc).abs() <= 1.0 / 200.0,
                "{} vs {}",
                inf.test.acc,
                s.trained.test.acc
            );
            // At width 0.25 (4-16 channels) the basis path's K⁴ = 81 MACs per input channel
            // cost more than the dense filters: why `auto` times both.
            assert!(inf.macs != s.trained.macs, "the basis path's MACs are counted");
            let exec = line("sparse execution").unwrap();
            let n = masked_layers_in(&cfg);
            assert_eq!(exec, format!("{n} of {n} masked layers on sparse kernels"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
