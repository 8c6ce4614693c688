//! Saving and loading: round trips give identical outputs; mismatches are reported, strictly or
//! leniently; corrupt files are errors naming the file.

use std::collections::HashMap;
use std::path::PathBuf;

use autograd::Tensor;
use layers::state_dict::{load_module, load_tensors, save_module, save_tensors, Strictness};
use layers::{rng, BatchNorm2d, Conv2d, Conv2dOptions, Flatten, Linear, Mode, Module, ModuleExt, ReLU, Sequential};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lamina-state-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("model.safetensors")
}

fn net(seed: u64, hidden: usize) -> Sequential {
    rng::with_seed(seed, || {
        Sequential::new()
            .push(Conv2d::new(2, hidden, 3, Conv2dOptions::default().padding(1)).unwrap())
            .push(BatchNorm2d::new(hidden))
            .push(ReLU)
            .push(Flatten::default())
            .push(Linear::new(hidden * 16, 5, true))
    })
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let a = net(1, 3);
    let x = Tensor::randn(&[4, 2, 4, 4], 9).unwrap();
    // Train-mode passes move the running statistics away from their initial values.
    for _ in 0..3 {
        a.forward(&x, Mode::Train).unwrap();
    }
    let path = tmp("roundtrip");
    save_module(&a, &path).unwrap();
    let b = net(2, 3);
    assert_ne!(
        a.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(),
        b.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap()
    );
    let report = load_module(&b, &path, Strictness::Strict).unwrap();
    assert!(report.is_clean() && report.loaded.len() == 9, "{report}");
    assert_eq!(
        a.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(),
        b.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap()
    );
    let nb = b.named_buffers().into_iter().find(|(n, _)| n == "1.num_batches_tracked").unwrap().1;
    assert_eq!(nb.get().to_vec::<i64>().unwrap(), vec![3]);
}

#[test]
fn mismatches_are_reported_strictly_or_leniently() {
    let a = net(1, 3);
    let path = tmp("mismatch");
    let mut state = a.state_dict();
    state.retain(|(n, _)| n != "4.bias");
    state.push(("extra.weight".into(), Tensor::zeros(&[2])));
    save_tensors(&path, &state, &HashMap::new()).unwrap();
    let b = net(2, 4); // different width: conv, bn and head shapes differ
    let err = load_module(&b, &path, Strictness::Strict).unwrap_err().to_string();
    for needle in ["4.bias", "extra.weight", "0.weight", "model.safetensors"] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    let before = b.named_parameters()[0].1.leaf().to_vec::<f32>().unwrap();
    assert_eq!(b.named_parameters()[0].1.leaf().to_vec::<f32>().unwrap(), before, "strict failure loads nothing");
    let c = net(2, 3);
    let report = load_module(&c, &path, Strictness::Lenient).unwrap();
    assert_eq!(report.missing, ["4.bias"]);
    assert_eq!(report.unexpected, ["extra.weight"]);
    assert!(report.mismatched.is_empty());
    assert_eq!(report.loaded.len(), 8);
    assert_eq!(
        c.named_parameters()[0].1.leaf().to_vec::<f32>().unwrap(),
        a.named_parameters()[0].1.leaf().to_vec::<f32>().unwrap()
    );
}

#[test]
fn corrupt_and_missing_files_name_the_file() {
    let path = tmp("corrupt");
    save_module(&net(1, 3), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_tensors(&path).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::write(&path, b"not a checkpoint at all").unwrap();
    assert!(load_tensors(&path).err().unwrap().to_string().contains("model.safetensors"));
    let gone = path.with_file_name("absent.safetensors");
    assert!(load_tensors(&gone).err().unwrap().to_string().contains("absent.safetensors"));
}

#[test]
fn writes_are_atomic_and_keep_metadata_and_dtypes() {
    let path = tmp("atomic");
    let meta: HashMap<String, String> = [("epoch".to_string(), "3".to_string())].into();
    let tensors = vec![
        ("f".to_string(), Tensor::from_vec(vec![1.5f32, -2.0], &[2]).unwrap()),
        ("d".to_string(), Tensor::from_vec(vec![0.1f64], &[1]).unwrap()),
        ("i".to_string(), Tensor::scalar(7i64)),
        ("q".to_string(), Tensor::from_vec(vec![-3i8, 4], &[1, 2]).unwrap()),
    ];
    save_tensors(&path, &tensors, &meta).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    let back = load_tensors(&path).unwrap();
    assert_eq!(back.metadata["epoch"], "3");
    assert_eq!(back.get("d").unwrap().to_vec::<f64>().unwrap(), vec![0.1]);
    assert_eq!(back.get("i").unwrap().shape(), &[] as &[usize]);
    assert_eq!(back.get("q").unwrap().to_vec::<i8>().unwrap(), vec![-3, 4]);
    let dup = vec![tensors[0].clone(), tensors[0].clone()];
    assert!(save_tensors(&path, &dup, &meta).unwrap_err().to_string().contains("twice"));
}
