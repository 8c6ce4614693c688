//! Memory stays flat over a run (issue 31): the live tensor buffers (`autograd::live_buffers`,
//! counted by the storage allocator) sampled after every epoch do not grow once the first epoch
//! has created the optimizer's state. This file holds a single suite test so no other test's
//! tensors share the process-wide counter.
//!
//! The resident-memory measurement over 2,000 steps of ResNet-20 on CIFAR-10 is `#[ignore]`d
//! (about 20 minutes on 2 cores); run it with the data in `$LAMINA_DATA/cifar-10`:
//!
//! ```text
//! LAMINA_DATA=/work/shared/data nice cargo test --release -p methods --test memory -- --ignored --nocapture
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use methods::config::TrainConfig;
use methods::registry;
use methods::trainer::{train, RunOptions};

/// `(live buffers, live bytes, resident bytes)` after each epoch.
type Samples = Arc<Mutex<Vec<(usize, usize, u64)>>>;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    kb * 1024
}

fn sampled_run(cfg: &TrainConfig, name: &str) -> Vec<(usize, usize, u64)> {
    let dir = std::env::temp_dir().join(format!("lamina-memory-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let samples: Samples = Arc::default();
    let s = samples.clone();
    let on_epoch = Arc::new(move |epoch: usize, of: usize| {
        let (buffers, bytes) = autograd::live_buffers();
        let rss = resident_bytes();
        s.lock().unwrap().push((buffers, bytes, rss));
        if std::env::var_os("LAMINA_MEMORY_LOG").is_some() {
            eprintln!(
                "epoch {epoch:>3}/{of}: {buffers} live buffers, {bytes} live bytes, {:.1} MiB resident",
                rss as f64 / 1048576.0
            );
        }
    });
    let opts = RunOptions { quiet: true, on_epoch: Some(on_epoch), ..RunOptions::default() };
    train(cfg, &dir, false, &opts).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    let v = samples.lock().unwrap().clone();
    v
}

#[test]
fn live_buffers_do_not_grow_over_a_run() {
    // ResNet-8 at width 0.25 (convolutions, batch norm with its running statistics, residual
    // adds), SGD with momentum and weight decay, validation and test every epoch: 16 epochs of
    // 18 steps.
    let mut cfg = TrainConfig::from_defaults(registry::find("baseline").unwrap());
    cfg.model = "resnet8".into();
    cfg.width = 0.25;
    cfg.epochs = 16;
    cfg.batch_size = 20;
    cfg.train_limit = Some(400);
    cfg.test_limit = Some(100);
    cfg.schedule = "cosine".into();
    let samples = sampled_run(&cfg, "resnet8");
    assert_eq!(samples.len(), 16);
    let after_warmup = samples[1];
    for (epoch, s) in samples.iter().enumerate().skip(1) {
        assert_eq!(
            (s.0, s.1),
            (after_warmup.0, after_warmup.1),
            "live buffers after epoch {} grew: {samples:?}",
            epoch + 1
        );
    }
    assert!(after_warmup.0 > 0, "the counter counts");
}

/// Resident memory and live buffers over 2,000 steps of ResNet-20 on CIFAR-10 (100 steps of 128
/// images per epoch, 20 epochs): neither grows after the warm-up epochs.
#[test]
#[ignore = "about 20 minutes on 2 cores; needs CIFAR-10 under $LAMINA_DATA"]
fn resident_memory_is_flat_over_2000_resnet20_steps() {
    let data = std::env::var_os("LAMINA_DATA").map(PathBuf::from).expect("set LAMINA_DATA to the data folder");
    let mut cfg = TrainConfig::from_defaults(registry::find("baseline").unwrap());
    cfg.model = "resnet20".into();
    cfg.dataset = "cifar10".into();
    cfg.data_dir = Some(data);
    cfg.epochs = 20;
    cfg.batch_size = 128;
    cfg.train_limit = Some(12_800);
    cfg.val_fraction = 0.0;
    cfg.test_limit = Some(1_000);
    cfg.schedule = "cosine".into();
    let samples = sampled_run(&cfg, "resnet20");
    let mib = |b: u64| b as f64 / 1048576.0;
    for (e, s) in samples.iter().enumerate() {
        println!(
            "epoch {:>2} (step {:>4}): {} live buffers, {} live bytes, {:.1} MiB resident",
            e + 1,
            (e + 1) * 100,
            s.0,
            s.1,
            mib(s.2)
        );
    }
    let warm = samples[2];
    let peak = samples[2..].iter().map(|s| s.2).max().unwrap();
    let last = samples.last().unwrap().2;
    println!(
        "resident after epoch 3: {:.1} MiB, peak after: {:.1} MiB, at step 2000: {:.1} MiB",
        mib(warm.2),
        mib(peak),
        mib(last)
    );
    assert!(samples[1..].iter().all(|s| (s.0, s.1) == (samples[1].0, samples[1].1)), "live buffers grew");
    assert!(last as f64 <= warm.2 as f64 * 1.05 + 16.0 * 1048576.0, "resident memory grew");
}
