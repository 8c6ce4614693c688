use autograd::Tensor;
use layers::models::vit::{VisionTransformer, VitConfig};
use layers::moe::MoeMlp;
use layers::{Mode, Module, ModuleExt};

use crate::moee::{
    apply_plans, capture, mlp_paths, plan_moee, BlockPlan, CaptureOptions, Clustering, MoeeConfig, MoeeMethod,
};
use crate::registry::Method;

/// A tiny ViT: 8x8 images of patch 4 (4 patches + class token), D 8, 2 blocks, MLP 16.
fn vit(seed: u64) -> Box<dyn Module> {
    let cfg = VitConfig { image_size: 8, patch_size: 4, embed_dim: 8, depth: 2, num_heads: 2, mlp_ratio: 2.0 };
    let net = VisionTransformer::new(cfg, 3, 3, seed).unwrap();
    // Weights of a realistic scale, so that activations differ between tokens.
    for (i, p) in net.parameters().into_iter().enumerate() {
        let shape = p.leaf().shape().to_vec();
        p.set_data(&Tensor::randn(&shape, seed * 97 + i as u64).unwrap().mul_scalar(0.3).unwrap()).unwrap();
    }
    Box::new(net)
}

fn images(n: usize, seed: u64) -> Vec<Tensor> {
    (0..n).map(|i| Tensor::randn(&[6, 3, 8, 8], seed + i as u64).unwrap()).collect()
}

fn config(clustering: Clustering) -> MoeeConfig {
    MoeeConfig {
        p: 0.9,
        clustering,
        tokens: 100,
        images: 36,
        cls: true,
        fold_bias: false,
        shipped: false,
        moefication: None,
    }
}

#[test]
fn capture_samples_inputs_and_hidden_activations_and_restores_the_model() {
    let mut net = vit(1);
    let x = images(1, 10).remove(0);
    let before = net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
    let caps = capture(&mut net, &images(6, 20), CaptureOptions { max_tokens: 50, cls: true, seed: 3 }).unwrap();
    assert_eq!(caps.len(), 2);
    assert_eq!(mlp_paths(net.as_ref()), ["blocks.0.mlp", "blocks.1.mlp"]);
    assert_eq!(net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), before, "model unchanged");
    let c = &caps[1];
    assert_eq!((c.path.as_str(), c.dim, c.hidden, c.len(), c.seen), ("blocks.1.mlp", 8, 16, 50, 6 * 6 * 5));
    // Each sampled y is GELU(fc1(x)) of its x.
    let mlp = net.get_module("blocks.1.mlp.fc1").unwrap();
    let xs = Tensor::from_vec(c.x.clone(), &[50, 8]).unwrap();
    let y = mlp.forward(&xs, Mode::Eval).unwrap().gelu().unwrap().to_vec::<f32>().unwrap();
    assert!(y.iter().zip(&c.y).all(|(a, b)| (a - b).abs() < 1e-5));
    // Without class tokens: 4 of 5 tokens per image are offered.
    let caps = capture(&mut net, &images(6, 20), CaptureOptions { max_tokens: 500, cls: false, seed: 3 }).unwrap();
    assert_eq!((caps[0].seen, caps[0].len()), (144, 144));
}

#[test]
fn one_expert_with_every_neuron_keeps_the_dense_model_exactly() {
    let mut net = vit(2);
    let x = images(1, 30).remove(0);
    let dense = net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
    let plans: Vec<BlockPlan> = mlp_paths(net.as_ref())
        .into_iter()
        .map(|path| BlockPlan {
            path,
            dim: 8,
            hidden: 16,
            routing: Some("cosine".into()),
            top_k: 1,
            experts: vec![(0..16).collect()],
            keys: vec![1.0; 8],
            sizes: vec![16],
            ..Default::default()
        })
        .collect();
    apply_plans(&mut net, &plans).unwrap();
    assert!(net.get_module("blocks.1.mlp").unwrap().downcast_ref::<MoeMlp>().is_some());
    assert_eq!(net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), dense);
}

#[test]
fn plans_survive_the_method_state_and_rebuild_the_same_model() {
    let mut net = vit(3);
    let caps = capture(&mut net, &images(6, 40), CaptureOptions { max_tokens: 100, cls: true, seed: 5 }).unwrap();
    let cfg = MoeeConfig { fold_bias: true, ..config(Clustering::Kmeans { k: 3 }) };
    let plans: Vec<BlockPlan> = caps.iter().map(|c| plan_moee(net.as_ref(), c, &cfg, 0).unwrap()).collect();
    assert!(plans.iter().all(|p| p.is_moe() && p.experts.len() == 3 && p.union <= 16));
    apply_plans(&mut net, &plans).unwrap();
    let x = images(1, 50).remove(0);
    let y = net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap();
    // The state rebuilds the structure on a fresh dense model; the weights load by name.
    let mut m = MoeeMethod::new(cfg.clone());
    m.blocks = plans.clone();
    let state = m.state().unwrap();
    let mut restored = MoeeMethod::new(cfg);
    restored.load_state(&state).unwrap();
    assert_eq!(restored.blocks, plans);
    let mut fresh = vit(99);
    let info = crate::registry::RunInfo {
        model: "tiny".into(),
        width: 1.0,
        dataset: "none".into(),
        num_classes: 3,
        input_shape: [3, 8, 8],
        epochs: 1,
        steps_per_epoch: 1,
        seed: 0,
        device: autograd::Device::Cpu,
    };
    restored.restore_phase(&mut fresh, &info, 1).unwrap();
    layers::state_dict::load_state_dict(fresh.as_ref(), &net.state_dict(), layers::state_dict::Strictness::Strict)
        .unwrap();
    assert_eq!(fresh.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), y);
}

#[test]
fn hdbscan_plans_are_deterministic() {
    let mut net = vit(4);
    let caps = capture(&mut net, &images(6, 60), CaptureOptions { max_tokens: 100, cls: true, seed: 5 }).unwrap();
    let cfg = config(Clustering::Hdbscan { min_cluster_size: Some(5), min_samples: None });
    let a: Vec<BlockPlan> = caps.iter().map(|c| plan_moee(net.as_ref(), c, &cfg, 0).unwrap()).collect();
    let b: Vec<BlockPlan> = caps.iter().map(|c| plan_moee(net.as_ref(), c, &cfg, 0).unwrap()).collect();
    assert_eq!(a, b);
    for p in &a {
        assert_eq!(p.sampled, 100);
        assert_eq!(p.is_moe(), p.clusters >= 2, "{p:?}");
    }
}
