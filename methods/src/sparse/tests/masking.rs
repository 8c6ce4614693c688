//! Masked weights stay exactly zero through optimizer steps with momentum and weight decay.

use layers::optim::{split_weight_decay, Adam, AdamOptions, Optimizer, Sgd, SgdOptions};
use layers::{Mode, Module, ModuleExt};

use super::super::allocation::{masks_from_scores, Allocation};
use super::super::engine::{apply_masks, masked_layers, Counts};
use super::super::score::magnitude_scores;
use super::{f64s, masked_conv_net, sample};

fn step(model: &dyn Module, opt: &mut dyn Optimizer, seed: u64) {
    let s = sample(8, seed);
    let loss = super::super::score::sample_loss(model, &s, 1.0).unwrap();
    loss.backward().unwrap();
    super::super::engine::mask_gradients(model).unwrap();
    opt.step().unwrap();
    opt.zero_grad();
}

/// Dense steps (momentum builds up), then pruning to 30 % by magnitude, then 50 masked steps;
/// returns how many masked coordinates ended non-zero.
fn revived(adamw: bool, mask_state: bool) -> usize {
    let model = masked_conv_net(11);
    let groups = split_weight_decay(model.named_parameters(), 5e-2);
    let mut opt: Box<dyn Optimizer> = if adamw {
        Box::new(Adam::new(groups, AdamOptions::adamw(1e-2).weight_decay(5e-2)).unwrap())
    } else {
        Box::new(Sgd::new(groups, SgdOptions::new(0.05).momentum(0.9)).unwrap())
    };
    for s in 0..5 {
        step(model.as_ref(), opt.as_mut(), s);
    }
    let geoms: Vec<_> = masked_layers(model.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
    let masks = masks_from_scores(Allocation::Global, &magnitude_scores(model.as_ref()).unwrap(), &geoms, 0.3).unwrap();
    apply_masks(model.as_ref(), &masks, if mask_state { Some(opt.as_mut()) } else { None }).unwrap();
    for s in 5..55 {
        step(model.as_ref(), opt.as_mut(), s);
    }
    let _ = model.forward(&sample(2, 0).0, Mode::Eval).unwrap();
    let mut n = 0;
    for ((_, l), m) in masked_layers(model.as_ref()).iter().zip(&masks) {
        let v = f64s(&l.values().leaf());
        n += v.iter().zip(m).filter(|(v, &m)| m == 0.0 && **v != 0.0).count();
        let eff = f64s(&l.effective_weight().unwrap());
        assert!(eff.iter().zip(m).all(|(e, &m)| m != 0.0 || *e == 0.0) || !mask_state);
    }
    n
}

#[test]
fn masked_weights_stay_exactly_zero_under_sgd_momentum_weight_decay_and_adamw() {
    assert_eq!(revived(false, true), 0, "SGD momentum 0.9 + weight decay revived a pruned weight");
    assert_eq!(revived(true, true), 0, "AdamW revived a pruned weight");
    // Without masking the optimizer state, the momentum built before pruning moves them again.
    assert!(revived(false, false) > 10);
    assert!(revived(true, false) > 10);
}

#[test]
fn counts_report_the_sparsity() {
    let c = Counts { layers: vec![("a".into(), 1, 10), ("b".into(), 4, 10)] };
    assert_eq!((c.active(), c.total()), (5, 20));
    assert!((c.sparsity() - 0.75).abs() < 1e-12);
}
