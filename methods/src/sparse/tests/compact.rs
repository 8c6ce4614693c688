//! The compact checkpoint: bitmap + kept values, frozen parts as seeds.

use layers::ModuleExt;

use super::super::allocation::{masks_from_scores, Allocation};
use super::super::compact::{
    compact_bytes, compact_tensors, dense_bytes, load_compact, pack_bits, save_compact, unpack_bits,
};
use super::super::engine::{apply_masks, masked_layers, wrap, Prunable};
use super::super::masked::Fixed;
use super::super::score::magnitude_scores;
use super::{assert_same_bits, bits, conv_net, masked_conv_net};

fn prune(model: &dyn layers::Module, density: f64) {
    let geoms: Vec<_> = masked_layers(model).iter().map(|(_, l)| l.geometry()).collect();
    let masks = masks_from_scores(Allocation::Global, &magnitude_scores(model).unwrap(), &geoms, density).unwrap();
    apply_masks(model, &masks, None).unwrap();
}

fn state_bits(model: &dyn layers::Module) -> Vec<(String, Vec<u32>)> {
    model.state_dict().iter().map(|(n, t)| (n.clone(), bits(t))).collect()
}

#[test]
fn bits_pack_and_unpack() {
    let m: Vec<f32> = (0..19).map(|i| f32::from(i % 3 == 1)).collect();
    let b = pack_bits(&m);
    assert_eq!(b.len(), 3);
    assert_eq!(b[0], 0b1001_0010);
    assert_eq!(unpack_bits(&b, 19), m);
}

#[test]
fn a_pruned_model_round_trips_and_stores_a_bitmap_plus_kept_values() {
    let dir = std::env::temp_dir().join(format!("lamina-compact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = masked_conv_net(21);
    prune(model.as_ref(), 0.2);
    let path = dir.join("pruned.safetensors");
    let size = save_compact(model.as_ref(), &path).unwrap();
    assert_eq!(size as u64, std::fs::metadata(&path).unwrap().len());
    let other = masked_conv_net(22);
    assert!(state_bits(other.as_ref()) != state_bits(model.as_ref()));
    load_compact(other.as_ref(), &path).unwrap();
    assert_same_bits(&state_bits(other.as_ref()), &state_bits(model.as_ref()), "masks, values, BatchNorm, biases");
    // Per masked layer: ⌈n/8⌉ bitmap bytes and 4 bytes per kept value.
    let (tensors, _) = compact_tensors(model.as_ref()).unwrap();
    for (p, l) in masked_layers(model.as_ref()) {
        let b = tensors.iter().find(|(n, _)| *n == format!("{p}.weight.bitmap")).unwrap();
        let v = tensors.iter().find(|(n, _)| *n == format!("{p}.weight.values")).unwrap();
        assert_eq!(b.1.numel(), l.numel().div_ceil(8));
        assert_eq!(v.1.numel(), l.active().unwrap());
    }
    assert!(compact_bytes(model.as_ref()).unwrap().len() < dense_bytes(model.as_ref()).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_frozen_model_stores_its_fixed_part_as_a_seed() {
    let dir = std::env::temp_dir().join(format!("lamina-compact-frozen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let frozen = |seed: u64| {
        let mut m = conv_net(seed);
        wrap(m.as_mut(), &Prunable::All, &|i, _| Fixed::Seeded(1000 + i as u64)).unwrap();
        m
    };
    let model = frozen(31);
    prune(model.as_ref(), 0.1);
    let path = dir.join("frozen.safetensors");
    save_compact(model.as_ref(), &path).unwrap();
    let (tensors, meta) = compact_tensors(model.as_ref()).unwrap();
    assert!(tensors.iter().all(|(n, _)| !n.ends_with("weight_init")), "no fixed tensor stored");
    assert!(meta["layers"].contains("\"seed\":1000"), "{}", meta["layers"]);
    let other = frozen(32);
    load_compact(other.as_ref(), &path).unwrap();
    assert_same_bits(&state_bits(other.as_ref()), &state_bits(model.as_ref()), "frozen round trip");
    for ((_, a), (_, b)) in masked_layers(model.as_ref()).iter().zip(masked_layers(other.as_ref())) {
        assert_eq!(bits(&a.effective_weight().unwrap()), bits(&b.effective_weight().unwrap()));
    }
    // A pruned model cannot take a frozen checkpoint.
    let e = load_compact(masked_conv_net(1).as_ref(), &path).unwrap_err().to_string();
    assert!(e.contains("frozen"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
