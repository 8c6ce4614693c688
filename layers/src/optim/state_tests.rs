//! Tests of the per-parameter state access of [`Optimizer`]: masking, resetting, group info.

use autograd::Tensor;

use super::{split_weight_decay, Adam, AdamOptions, Optimizer, ParamGroup, Sgd, SgdOptions};
use crate::Param;

const W: &str = "a.weight";

fn params(seed: u64) -> Vec<(String, Param)> {
    vec![
        (W.into(), Param::new(Tensor::randn(&[4, 6], seed).unwrap())),
        ("a.bias".into(), Param::new(Tensor::randn(&[4], seed + 1).unwrap())),
    ]
}

/// Random gradients for step `step`, the weight's multiplied by `keep` when given.
fn set_grads(ps: &[(String, Param)], step: u64, keep: Option<&Tensor>) {
    for (i, (_, p)) in ps.iter().enumerate() {
        let mut g = Tensor::randn(p.leaf().shape(), 1000 + step * 10 + i as u64).unwrap();
        if let (0, Some(k)) = (i, keep) {
            g = g.mul(k).unwrap();
        }
        p.leaf().set_grad(Some(g)).unwrap();
    }
}

/// 1 except every third coordinate of the weight.
fn keep_mask() -> (Tensor, Vec<usize>) {
    let keep: Vec<f32> = (0..24).map(|i| if i % 3 == 0 { 0.0 } else { 1.0 }).collect();
    let pruned = (0..24).filter(|i| i % 3 == 0).collect();
    (Tensor::from_vec(keep, &[4, 6]).unwrap(), pruned)
}

fn floats(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

/// Trains 5 steps, prunes the masked weights to 0, then trains 50 steps with masked gradients
/// (and masked optimizer state when `mask_state`); returns the largest |pruned weight| seen after
/// any of those steps, and whether the kept weights moved.
fn prune_and_train(opt: &mut dyn Optimizer, ps: &[(String, Param)], mask_state: bool) -> (f32, bool) {
    let (keep, pruned) = keep_mask();
    for s in 0..5 {
        set_grads(ps, s, None);
        opt.step().unwrap();
    }
    let w = &ps[0].1;
    w.set_data(&w.leaf().mul(&keep).unwrap()).unwrap();
    let at_prune = floats(&w.leaf());
    let mut worst = 0.0f32;
    for s in 5..55 {
        set_grads(ps, s, Some(&keep));
        if mask_state {
            opt.mask_state(W, &keep).unwrap();
        }
        opt.step().unwrap();
        let v = floats(&w.leaf());
        worst = pruned.iter().fold(worst, |m, &i| m.max(v[i].abs()));
    }
    let after = floats(&w.leaf());
    let kept_moved = (0..24).filter(|i| !pruned.contains(i)).all(|i| after[i] != at_prune[i]);
    (worst, kept_moved)
}

#[test]
fn masked_sgd_momentum_keeps_pruned_weights_exactly_zero() {
    let sgd = |ps: &[(String, Param)]| {
        Sgd::new(vec![ParamGroup::new(ps.to_vec())], SgdOptions::new(0.05).momentum(0.9).weight_decay(5e-4)).unwrap()
    };
    let ps = params(1);
    let (worst, kept_moved) = prune_and_train(&mut sgd(&ps), &ps, true);
    assert_eq!(worst, 0.0, "pruned weights left zero");
    assert!(kept_moved);
    // Without masking the momentum, the buffer built before pruning moves them again.
    let qs = params(1);
    let (worst, _) = prune_and_train(&mut sgd(&qs), &qs, false);
    assert!(worst > 1e-3, "stale momentum should move pruned weights, got {worst}");
}

#[test]
fn masked_adam_moments_keep_pruned_weights_exactly_zero() {
    let adamw = |ps: &[(String, Param)]| {
        Adam::new(vec![ParamGroup::new(ps.to_vec())], AdamOptions::adamw(1e-2).amsgrad(true)).unwrap()
    };
    let ps = params(2);
    let mut opt = adamw(&ps);
    let (worst, kept_moved) = prune_and_train(&mut opt, &ps, true);
    assert_eq!(worst, 0.0);
    assert!(kept_moved);
    let qs = params(2);
    assert!(prune_and_train(&mut adamw(&qs), &qs, false).0 > 1e-3);

    // Each moment is multiplied by the mask: zero where pruned, bit for bit unchanged elsewhere.
    set_grads(&ps, 99, None);
    opt.step().unwrap();
    let before = opt.param_state(W).unwrap().clone();
    let (keep, pruned) = keep_mask();
    opt.mask_state(W, &keep).unwrap();
    let after = opt.param_state(W).unwrap();
    assert_eq!(after.step, before.step);
    let keys: Vec<&String> = after.buffers.keys().collect();
    assert_eq!(keys, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]);
    for (key, buf) in &after.buffers {
        let (old, new) = (floats(&before.buffers[key]), floats(buf));
        for i in 0..24 {
            if pruned.contains(&i) {
                assert_eq!(new[i], 0.0, "{key}[{i}]"); // -0.0 where the moment was negative
            } else {
                assert_eq!(new[i].to_bits(), old[i].to_bits(), "{key}[{i}]");
            }
        }
        assert!(old.iter().any(|v| *v != 0.0));
    }
}

#[test]
fn masked_state_survives_a_checkpoint_round_trip() {
    let ps = params(3);
    let mut a = Sgd::new(vec![ParamGroup::new(ps.clone())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
    set_grads(&ps, 0, None);
    a.step().unwrap();
    let (keep, pruned) = keep_mask();
    a.mask_state(W, &keep).unwrap();
    let mut b = Sgd::new(vec![ParamGroup::new(params(3))], SgdOptions::new(0.1).momentum(0.9)).unwrap();
    b.load_state_dict(&a.state_dict().unwrap()).unwrap();
    let buf = floats(&b.param_state(W).unwrap().buffers["momentum_buffer"]);
    assert!(pruned.iter().all(|&i| buf[i] == 0.0));
    assert!(buf.iter().filter(|v| **v != 0.0).count() == 24 - pruned.len());
}

#[test]
fn reset_state_forgets_as_if_never_updated() {
    let opts = SgdOptions::new(0.1).momentum(0.9).weight_decay(1e-2);
    let (ps, fresh) = (params(4), params(4));
    let mut opt = Sgd::new(vec![ParamGroup::new(ps.clone())], opts).unwrap();
    for s in 0..3 {
        set_grads(&ps, s, None);
        opt.step().unwrap();
    }
    opt.reset_state(W).unwrap();
    assert!(opt.param_state(W).is_none());
    assert_eq!(opt.param_state("a.bias").unwrap().step, 3, "other parameters keep theirs");
    // From here on the weight evolves as under a fresh optimizer started at the same values.
    fresh[0].1.set_data(&ps[0].1.leaf()).unwrap();
    let mut new = Sgd::new(vec![ParamGroup::new(fresh[..1].to_vec())], opts).unwrap();
    for s in 3..6 {
        set_grads(&ps, s, None);
        set_grads(&fresh[..1], s, None);
        opt.step().unwrap();
        new.step().unwrap();
    }
    assert_eq!(opt.param_state(W).unwrap().step, 3);
    let bits = |p: &Param| floats(&p.leaf()).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&ps[0].1), bits(&fresh[0].1));
}

#[test]
fn unknown_names_and_wrong_shapes_are_errors() {
    let ps = params(5);
    let mut opt = Adam::new(vec![ParamGroup::new(ps.clone())], AdamOptions::adam(1e-3)).unwrap();
    let (keep, _) = keep_mask();
    // No state yet: nothing to mask.
    opt.mask_state(W, &keep).unwrap();
    assert!(opt.param_state(W).is_none());
    let e = opt.mask_state("conv.weight", &keep).unwrap_err().to_string();
    assert!(e.contains("\"conv.weight\"") && e.contains("mask_state"), "{e}");
    let e = opt.mask_state("a.bias", &keep).unwrap_err().to_string();
    assert!(e.contains("\"a.bias\"") && e.contains("[4, 6]") && e.contains("[4]"), "{e}");
    let e = opt.reset_state("nope").unwrap_err().to_string();
    assert!(e.contains("\"nope\"") && e.contains("reset_state"), "{e}");
    assert!(opt.param_state("nope").is_none() && opt.param_state_mut("nope").is_none());
}

#[test]
fn names_groups_and_mutable_state() {
    let ps = params(6);
    let mut opt = Sgd::new(split_weight_decay(ps.clone(), 5e-4), SgdOptions::new(0.1).momentum(0.9)).unwrap();
    assert_eq!(opt.param_names(), [W, "a.bias"]);
    opt.set_lr(1, 0.01).unwrap();
    let info = opt.group_info();
    assert_eq!(info.len(), 2);
    assert_eq!((info[0].names.clone(), info[0].lr, info[0].weight_decay), (vec![W.to_string()], 0.1, 5e-4));
    assert_eq!((info[1].names.clone(), info[1].lr, info[1].weight_decay), (vec!["a.bias".to_string()], 0.01, 0.0));
    set_grads(&ps, 0, None);
    opt.step().unwrap();
    let st = opt.param_state_mut("a.bias").unwrap();
    st.buffers.insert("momentum_buffer".into(), Tensor::zeros(&[4]));
    let before = floats(&ps[1].1.leaf());
    ps[1].1.leaf().set_grad(Some(Tensor::zeros(&[4]))).unwrap();
    opt.step().unwrap();
    assert_eq!(floats(&ps[1].1.leaf()), before, "zeroed buffer and zero gradient: no move");
}
