//! RigL, SET and DSR updates.

use autograd::Tensor;
use layers::optim::{Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::ModuleExt;

use super::super::engine::{masked_layers, to_f32};
use super::super::schedule::dsr::{regrowth_counts, Dsr};
use super::super::schedule::rigl::{rigl_layer_update, RiglSchedule};
use super::super::schedule::set::set_layer_update;
use super::super::schedule::{apply_updates, drop_and_grow, MaskUpdate};
use super::masked_conv_net;

fn active(m: &[f32]) -> usize {
    m.iter().filter(|&&x| x != 0.0).count()
}

#[test]
fn rigl_grows_the_top_k_dense_gradients_among_inactive_positions_and_drops_the_smallest() {
    // 10 coordinates, 6 active.
    let mask = [1., 1., 0., 1., 0., 1., 1., 0., 1., 0.];
    let values = [0.5f32, -0.05, 0.0, 0.9, 0.0, 0.01, -0.7, 0.0, 0.3, 0.0];
    let grad = [9.0, 0.1, 0.2, 5.0, -3.0, 0.4, 0.0, 2.5, 1.0, -0.3];
    let noise = [0.0; 10];
    // f = 0.5: k = ⌊0.5·6⌋ = 3 dropped (|θ| smallest among active: 5, 1, 8), 3 grown.
    let u = rigl_layer_update(&values, &mask, &grad, 0.5, &noise);
    assert_eq!(active(&u.mask), 6, "the count is kept");
    let kept: Vec<usize> = vec![0, 3, 6];
    // Candidates: everything not kept (inactive and just dropped); by |g|: 4 (3.0), 7 (2.5),
    // 8 (1.0), then 5 (0.4)... the top 3.
    let mut on: Vec<usize> = (0..10).filter(|&i| u.mask[i] != 0.0).collect();
    on.sort();
    let mut want = kept.clone();
    want.extend([4, 7, 8]);
    want.sort();
    assert_eq!(on, want);
    // 8 was active and is grown back: not fresh (keeps its value); 4 and 7 are fresh.
    assert_eq!(u.fresh, [false, false, false, false, true, false, false, true, false, false]);
    // The top-k of |g| among all positions not kept, by brute force.
    let mut cand: Vec<usize> = (0..10).filter(|i| !kept.contains(i)).collect();
    cand.sort_by(|&a, &b| f64::abs(grad[b]).total_cmp(&f64::abs(grad[a])));
    let mut grown: Vec<usize> = (0..10).filter(|&i| u.mask[i] != 0.0 && !kept.contains(&i)).collect();
    grown.sort();
    let mut top: Vec<usize> = cand[..3].to_vec();
    top.sort();
    assert_eq!(grown, top);
}

#[test]
fn drop_fraction_follows_the_cosine_and_updates_stop_at_t_end() {
    let s = RiglSchedule { alpha: 0.3, delta_t: 100, t_end: 750 };
    for t in [0usize, 100, 250, 375, 600, 749] {
        let want = 0.15 * (1.0 + (std::f64::consts::PI * t as f64 / 750.0).cos());
        assert!((s.drop_fraction(t) - want).abs() < 1e-15, "{t}");
    }
    assert_eq!(s.drop_fraction(0), 0.3);
    assert_eq!(s.drop_fraction(750), 0.0);
    let updates: Vec<usize> = (0..1000).filter(|&t| s.is_update(t)).collect();
    assert_eq!(updates, [0, 100, 200, 300, 400, 500, 600, 700]);
}

#[test]
fn set_keeps_per_layer_counts_and_grows_zeros() {
    let mask: Vec<f32> = (0..200).map(|i| f32::from(i % 3 == 0)).collect();
    let values: Vec<f32> = (0..200).map(|i| if i % 3 == 0 { (i as f32 - 100.0) / 50.0 } else { 0.0 }).collect();
    let u = set_layer_update(&values, &mask, 0.3, 7).unwrap();
    assert_eq!(active(&u.mask), active(&mask));
    // ⌊0.3·67⌋ = 20 dropped: the 20 smallest |θ|.
    let mut order: Vec<usize> = (0..200).filter(|&i| mask[i] != 0.0).collect();
    order.sort_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()).then(a.cmp(&b)));
    let dropped: Vec<usize> = order[..20].to_vec();
    assert!(order[20..].iter().all(|&i| u.mask[i] != 0.0), "the rest is kept");
    let regrown = (0..200).filter(|&i| u.mask[i] != 0.0 && !order[20..].contains(&i)).count();
    assert_eq!(regrown, 20);
    assert!(u.fresh.iter().enumerate().all(|(i, &f)| !f || (mask[i] == 0.0 && u.mask[i] != 0.0)));
    assert!(dropped.iter().all(|&i| !u.fresh[i]));
}

#[test]
fn grown_weights_start_at_zero_with_zero_momentum() {
    let model = masked_conv_net(4);
    let mut opt =
        Sgd::new(vec![ParamGroup::new(model.named_parameters())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
    // Half the coordinates of every layer inactive, then one step so momentum is non-zero.
    let layers = masked_layers(model.as_ref());
    let half: Vec<Vec<f32>> =
        layers.iter().map(|(_, l)| (0..l.numel()).map(|i| f32::from(i % 2 == 0)).collect()).collect();
    super::super::engine::apply_masks(model.as_ref(), &half, None).unwrap();
    for (_, p) in model.named_parameters() {
        p.leaf().set_grad(Some(Tensor::ones(p.leaf().shape()))).unwrap();
    }
    opt.step().unwrap();
    opt.zero_grad();
    // Swap: drop two active coordinates, grow two inactive ones, per layer.
    let updates: Vec<MaskUpdate> = half
        .iter()
        .map(|m| {
            let drop: Vec<f64> = (0..m.len()).map(|i| i as f64).collect();
            let grow: Vec<f64> = (0..m.len()).map(|i| i as f64).collect();
            drop_and_grow(m, &drop, &grow, 2)
        })
        .collect();
    apply_updates(model.as_ref(), &updates, Some(&mut opt)).unwrap();
    for (li, ((path, l), u)) in masked_layers(model.as_ref()).iter().zip(&updates).enumerate() {
        assert_eq!(u.grown(), 2);
        let v = to_f32(&l.values().leaf()).unwrap();
        let mom = to_f32(&opt.param_state(&format!("{path}.weight")).unwrap().buffers["momentum_buffer"]).unwrap();
        for i in 0..v.len() {
            if u.fresh[i] || u.mask[i] == 0.0 {
                assert_eq!((v[i], mom[i]), (0.0, 0.0), "{path}[{i}]");
            }
        }
        assert_eq!(active(&u.mask), active(&half[li]), "{path}: the count is kept");
        assert_eq!(to_f32(&l.mask()).unwrap(), u.mask, "{path}: the new mask is installed");
    }
}

#[test]
fn dsr_keeps_the_total_and_adapts_its_threshold() {
    let values: Vec<Vec<f32>> =
        vec![(0..100).map(|i| i as f32 / 1000.0).collect(), (0..50).map(|i| 0.5 + i as f32).collect()];
    let masks: Vec<Vec<f32>> = vec![vec![1.0; 100], vec![1.0; 50]];
    let mut d = Dsr { threshold: 0.0105, target_fraction: 0.02, delta: 0.1 };
    let u = d.update(&values, &masks, 3).unwrap();
    // |θ| < 0.0105 prunes 11 of the first layer (K = 11 > 1.1·3): H halves.
    assert_eq!(d.threshold, 0.0105 / 2.0);
    let total: usize = u.iter().map(|u| active(&u.mask)).sum();
    assert_eq!(total, 150, "the 11 pruned are regrown, all in the first layer (the second is full)");
    assert_eq!(active(&u[0].mask), 100);
    let counts = regrowth_counts(&[89, 50], &[11, 0], 11);
    assert_eq!(counts, vec![11, 0]);
    assert_eq!(regrowth_counts(&[30, 10], &[70, 40], 8), vec![6, 2]);
    assert_eq!(regrowth_counts(&[30, 10], &[3, 40], 8).iter().sum::<usize>(), 8);
}
