//! Lottery tickets, RigL and FreezeNet through the trainer, on a quick MLP run (600 embedded
//! Fashion-MNIST images, batch 10: 54 steps per epoch).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use autograd::{Error, Result};
use layers::optim::Optimizer;
use layers::state_dict::load_tensors;
use layers::{Module, ModuleExt};

use super::super::allocation::{keep_count, layer_counts, layer_densities, Allocation};
use super::super::engine::{counts, current_masks, masked_layers};
use super::super::masked::{he_normal_from_seed, LayerGeometry};
use super::super::method::{layer_seed, Kind, SparseMethod};
use super::super::specs::config;
use super::super::{FREEZENET, LTH, RIGL};
use super::{assert_same_bits, bits};
use crate::config::TrainConfig;
use crate::registry::{Method, MethodSpec, MethodState, Phase, PhaseContext, Progress, RunInfo, Training};
use crate::trainer::{train_with, RunOptions, Summary};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-sparse-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn quick(spec: &MethodSpec, epochs: usize, sets: &[(&str, &str)]) -> TrainConfig {
    let mut cfg = TrainConfig::from_defaults(spec);
    cfg.model = "mlp".into();
    cfg.epochs = epochs;
    cfg.batch_size = 10;
    cfg.train_limit = Some(600);
    cfg.test_limit = Some(200);
    cfg.schedule = "constant".into();
    cfg.lr = 0.05;
    cfg.momentum = 0.9;
    cfg.weight_decay = 5e-4;
    for (k, v) in sets {
        cfg.hparams.insert(k.to_string(), v.to_string());
    }
    cfg
}

fn run(spec: &MethodSpec, cfg: &TrainConfig, dir: &Path, resume: bool) -> Result<Summary> {
    train_with(spec, cfg, dir, resume, &RunOptions { quiet: true, ..Default::default() })
}

fn line<'a>(s: &'a Summary, key: &str) -> &'a str {
    s.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key:?} in {:?}", s.extra))
}

fn file_tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    load_tensors(path)
        .unwrap()
        .tensors
        .iter()
        .filter(|(n, _)| !n.starts_with("optim."))
        .map(|(n, t)| (n.clone(), bits(t)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Lottery tickets.

static FAIL_AT: AtomicUsize = AtomicUsize::new(0);

/// LTH with checks at every round start, and a stop on purpose at global epoch `FAIL_AT`.
struct LthProbe(SparseMethod);

fn is_values(model: &dyn Module, name: &str) -> Option<Vec<f32>> {
    masked_layers(model)
        .into_iter()
        .find(|(p, _)| format!("{p}.weight") == name)
        .map(|(_, l)| super::super::engine::to_f32(&l.mask()).unwrap())
}

impl Method for LthProbe {
    fn prepare(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<()> {
        self.0.prepare(model, run)
    }
    fn phases(&self, run: &RunInfo) -> Vec<Phase> {
        self.0.phases(run)
    }
    fn start_phase(&mut self, model: &mut Box<dyn Module>, ctx: &PhaseContext<'_>) -> Result<()> {
        let before = current_masks(model.as_ref())?;
        let c = counts(model.as_ref())?;
        self.0.start_phase(model, ctx)?;
        if ctx.at.phase == 0 {
            return Ok(());
        }
        let after = current_masks(model.as_ref())?;
        for (b, a) in before.iter().flatten().zip(after.iter().flatten()) {
            assert!(*a <= *b, "masks are nested");
        }
        let kept = counts(model.as_ref())?.active();
        let plan = self.0.cfg.imp;
        if ctx.at.phase < plan.rounds {
            assert_eq!(kept, keep_count(0.8, c.active()), "round {} prunes 20 % of the rest", ctx.at.phase);
        } else {
            assert_eq!(kept, keep_count(plan.density, c.total()), "the last round reaches the target");
        }
        // Rewound to θ_k bit for bit (masked values at 0), everything else too.
        let rewind = self.0.rewind_point();
        assert!(!rewind.is_empty());
        let state = model.state_dict();
        for (name, t) in rewind {
            let now = &state.iter().find(|(n, _)| n == name).unwrap().1;
            let (want, got) = (bits(t), bits(now));
            match is_values(model.as_ref(), name) {
                Some(mask) => {
                    for i in 0..want.len() {
                        assert_eq!(got[i], if mask[i] != 0.0 { want[i] } else { 0 }, "{name}[{i}]");
                    }
                }
                None => assert_eq!(got, want, "{name}"),
            }
        }
        Ok(())
    }
    fn after_backward(&mut self, model: &dyn Module, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        self.0.after_backward(model, opt, at)
    }
    fn after_step(&mut self, model: &mut Box<dyn Module>, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        self.0.after_step(model, opt, at)
    }
    fn end_epoch(&mut self, model: &mut Box<dyn Module>, opt: &mut dyn Optimizer, at: Progress) -> Result<()> {
        if FAIL_AT.load(Ordering::SeqCst) == at.epoch + 1 {
            return Err(Error::invalid("test", "stopped on purpose"));
        }
        self.0.end_epoch(model, opt, at)
    }
    fn inference_form(&mut self, model: &dyn Module, run: &RunInfo) -> Result<Option<Box<dyn Module>>> {
        self.0.inference_form(model, run)
    }
    fn finish(&mut self, model: &mut Box<dyn Module>, run: &RunInfo) -> Result<Vec<(String, String)>> {
        self.0.finish(model, run)
    }
    fn state(&self) -> Result<MethodState> {
        self.0.state()
    }
    fn load_state(&mut self, s: &MethodState) -> Result<()> {
        self.0.load_state(s)
    }
}

#[test]
fn lottery_rounds_prune_a_fifth_of_the_rest_nest_rewind_bitwise_and_resume_in_any_phase() {
    let spec = MethodSpec {
        name: "test-lth-probe",
        description: "LTH with checks",
        defaults: LTH.defaults,
        presets: &[],
        training: Training::Required,
        hparams: LTH.hparams,
        build: |h, run| Ok(Box::new(LthProbe(SparseMethod::new(config(Kind::Lth, h, run)?, run)))),
    };
    // Density 0.64 = 0.8²: two rounds of 20 %; θ_k at the end of epoch 1 of the dense phase.
    let cfg = quick(&spec, 2, &[("sparsity", "0.36"), ("rewind", "epoch:1"), ("sparse_exec", "never")]);
    FAIL_AT.store(0, Ordering::SeqCst);
    let whole = out_dir("lth-whole");
    let s = run(&spec, &cfg, &whole, false).unwrap();
    assert_eq!(line(&s, "rounds"), "2 (rate 0.200)");
    assert_eq!(line(&s, "sparsity"), "0.3600");
    let history = crate::metrics::read_metrics(&whole).unwrap();
    let phases: Vec<&str> = history.iter().map(|m| m.phase.as_str()).collect();
    assert_eq!(phases, ["dense", "dense", "round-1", "round-2"]);
    let reference = file_tensors(&whole.join("last.safetensors"));
    for fail_at in [2, 3, 4] {
        let cut = out_dir(&format!("lth-cut-{fail_at}"));
        FAIL_AT.store(fail_at, Ordering::SeqCst);
        let e = run(&spec, &cfg, &cut, false).unwrap_err().to_string();
        assert!(e.contains("on purpose"), "{e}");
        FAIL_AT.store(0, Ordering::SeqCst);
        let r = run(&spec, &cfg, &cut, true).unwrap();
        assert_same_bits(
            &file_tensors(&cut.join("last.safetensors")),
            &reference,
            &format!("stopped at epoch {fail_at}"),
        );
        assert_eq!(r.test, s.test);
        std::fs::remove_dir_all(cut).unwrap();
    }
    std::fs::remove_dir_all(whole).unwrap();
}

// ---------------------------------------------------------------------------------------------
// RigL and FreezeNet.

fn mlp_geometry() -> Vec<LayerGeometry> {
    [(784, 300), (300, 100), (100, 10)]
        .into_iter()
        .map(|(i, o)| LayerGeometry { n_in: i, n_out: o, kh: 1, kw: 1, conv: None })
        .collect()
}

fn file_masks(path: &Path) -> Vec<(Vec<f32>, Vec<f32>)> {
    let f = load_tensors(path).unwrap();
    ["fc1", "fc2", "fc3"]
        .iter()
        .map(|l| {
            let w = f.get(&format!("{l}.weight")).unwrap().to_vec::<f32>().unwrap();
            let m = f.get(&format!("{l}.weight_mask")).unwrap().to_vec::<f32>().unwrap();
            (w, m)
        })
        .collect()
}

#[test]
fn rigl_on_a_real_run_updates_until_t_end_and_keeps_the_erk_counts() {
    let dir = out_dir("rigl");
    let cfg = quick(&RIGL, 1, &[("delta_t", "10"), ("sparse_exec", "never")]);
    let s = run(&RIGL, &cfg, &dir, false).unwrap();
    // T_end = round(0.75·54) = 41: updates at steps 0, 10, 20, 30 and 40.
    assert_eq!(line(&s, "mask updates"), "5");
    let g = mlp_geometry();
    let sizes: Vec<usize> = g.iter().map(|g| g.numel()).collect();
    let want =
        layer_counts(&layer_densities(Allocation::Erk, &g, 0.1).unwrap(), &sizes, keep_count(0.1, sizes.iter().sum()));
    let layers = file_masks(&dir.join("last.safetensors"));
    for ((w, m), want) in layers.iter().zip(&want) {
        assert_eq!(m.iter().filter(|&&x| x != 0.0).count(), *want, "per-layer counts kept");
        assert!(w.iter().zip(m).all(|(w, m)| *m != 0.0 || *w == 0.0), "inactive weights are 0");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn frozen_weights_equal_their_seeded_initialization_bit_for_bit_after_training() {
    let dir = out_dir("freezenet");
    let cfg = quick(&FREEZENET, 1, &[("freezing_rate", "0.9")]);
    let s = run(&FREEZENET, &cfg, &dir, false).unwrap();
    let seed: u32 = line(&s, "freeze seed").parse().unwrap();
    let f = load_tensors(&dir.join("last.safetensors")).unwrap();
    let (mut trained, mut total, mut moved) = (0, 0, 0);
    for (i, name) in ["fc1", "fc2", "fc3"].iter().enumerate() {
        let w = f.get(&format!("{name}.weight")).unwrap();
        let theta0 = he_normal_from_seed(w.shape(), layer_seed(seed, i)).unwrap();
        assert_eq!(
            bits(f.get(&format!("{name}.weight_init")).unwrap()),
            bits(&theta0),
            "{name}: regenerated from the seed"
        );
        let (wv, m, t0) = (
            w.to_vec::<f32>().unwrap(),
            f.get(&format!("{name}.weight_mask")).unwrap().to_vec::<f32>().unwrap(),
            theta0.to_vec::<f32>().unwrap(),
        );
        for j in 0..wv.len() {
            // The effective weight m·φ + (1 − m)·θ₀.
            let eff = wv[j] * m[j] + t0[j] * (1.0 - m[j]);
            if m[j] == 0.0 {
                assert_eq!((wv[j], eff.to_bits()), (0.0, t0[j].to_bits()), "{name}[{j}] frozen at θ₀");
            } else {
                moved += usize::from(wv[j] != t0[j]);
            }
        }
        trained += m.iter().filter(|&&x| x != 0.0).count();
        total += m.len();
    }
    assert_eq!(trained, keep_count(0.1, total), "(1 − q)·N trainable");
    assert!(moved > trained / 2, "the trainable weights trained");
    // The model's own effective weights agree.
    let spec_run = RunInfo {
        model: "mlp".into(),
        width: 1.0,
        dataset: "x".into(),
        num_classes: 10,
        input_shape: [1, 28, 28],
        epochs: 1,
        steps_per_epoch: 54,
        seed: cfg.seed,
        device: autograd::Device::Cpu,
    };
    let mut model = layers::models::build("mlp", 10, 1, 0).unwrap();
    let mut h = FREEZENET.default_hparams();
    h.set("freezing_rate=0.9").unwrap();
    let mut m = SparseMethod::new(config(Kind::FreezeNet, &h, &spec_run).unwrap(), &spec_run);
    m.prepare(&mut model, &spec_run).unwrap();
    layers::checkpoint::load_checkpoint(&dir.join("last.safetensors"), model.as_ref(), None, None).unwrap();
    for (i, (_, l)) in masked_layers(model.as_ref()).into_iter().enumerate() {
        let eff = bits(&l.effective_weight().unwrap());
        let t0 = bits(&he_normal_from_seed(l.values().leaf().shape(), layer_seed(seed, i)).unwrap());
        let mask = super::super::engine::to_f32(&l.mask()).unwrap();
        assert!((0..eff.len()).all(|j| mask[j] != 0.0 || eff[j] == t0[j]));
    }
    std::fs::remove_dir_all(dir).unwrap();
}
