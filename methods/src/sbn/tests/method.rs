//! The registry entries `sbn` and `2bn` through the trainer on the embedded Fashion-MNIST, their
//! presets and their hyperparameter errors.

use crate::config::TrainConfig;
use crate::registry::{self, MethodSpec};
use crate::sbn::{SBN, SECOND_BN};
use crate::trainer::{train_with, RunOptions};

fn quick(spec: &MethodSpec, name: &str, set: &[&str]) -> crate::trainer::Summary {
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.epochs = 2;
    cfg.batch_size = 50;
    cfg.train_limit = Some(1000);
    cfg.test_limit = Some(200);
    let mut h = spec.default_hparams();
    for s in set {
        h.set(s).unwrap();
    }
    cfg.hparams = h.values().clone();
    let out = std::env::temp_dir().join(format!("lamina-sbn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let s = train_with(spec, &cfg, &out, false, &RunOptions { quiet: true, ..RunOptions::default() }).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    s
}

fn extra<'a>(s: &'a crate::trainer::Summary, key: &str) -> &'a str {
    s.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key}: {:?}", s.extra))
}

/// A quick run of each entry trains (finite loss, better than chance) with the layers after
/// both BNs of ResNet-8's stage 3 (the default placement for models the paper did not run; its
/// option-A shortcuts have no BN).
#[test]
fn quick_runs_on_the_embedded_data() {
    for (spec, set) in [(&SBN, vec![]), (&SECOND_BN, vec![]), (&SBN, vec!["implementation=fft", "correction=paper"])] {
        let s = quick(spec, spec.name, &set);
        assert!(s.test.loss.is_finite() && s.test.acc > 0.2, "{}: {:?}", spec.name, s.test);
        assert_eq!(extra(&s, "stages"), "[3]");
        assert_eq!(extra(&s, "layers"), "2 after layer3.0.bn1 layer3.0.bn2");
    }
}

#[test]
fn registry_entries_and_presets() {
    for name in ["sbn", "2bn"] {
        let spec = registry::find(name).unwrap();
        let small = TrainConfig::from_spec(spec, Some("small")).unwrap();
        let protocol = crate::presets::SMALL_PROTOCOL;
        assert_eq!(
            (small.model.as_str(), small.width, small.epochs),
            (protocol.model, protocol.width, protocol.epochs)
        );
        assert_eq!(small.hparams["stages"], "3,4");
        let paper = TrainConfig::from_spec(spec, Some("paper")).unwrap();
        assert_eq!((paper.epochs, paper.weight_decay, paper.hparams["stages"].as_str()), (200, 1e-4, "3,4"));
        let four = TrainConfig::from_spec(spec, Some(&format!("{name}4"))).unwrap();
        assert_eq!(four.hparams["stages"], "4");
        assert!(TrainConfig::from_spec(spec, Some(&format!("{name}34"))).is_ok());
    }
}

#[test]
fn bad_hyperparameters_are_errors() {
    let run = crate::testing::run_info("resnet8");
    for (set, want) in
        [("implementation=ifft", "implementation"), ("correction=n", "samples"), ("momentum=2", "momentum")]
    {
        let mut h = SBN.default_hparams();
        h.set(set).unwrap();
        let e = (SBN.build)(&h, &run).err().unwrap().to_string();
        assert!(e.contains(want), "{set}: {e}");
    }
    let mut h = SECOND_BN.default_hparams();
    h.set("stages=").unwrap();
    assert!((SECOND_BN.build)(&h, &run).err().unwrap().to_string().contains("stages"));
}
