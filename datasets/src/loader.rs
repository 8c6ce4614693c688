//! The batch loader: seeded shuffling, batching, and preparation of the next batches on
//! worker threads while the current one trains.
//!
//! Each sample's augmentation draws from [`SampleRng::for_sample`]`(seed, epoch, index)`
//! and each epoch's order from `(seed, epoch)`, so a seed gives the same batches whatever
//! the number of worker threads. At most `prefetch` batches are prepared ahead of the one
//! being consumed.
//!
//! ```
//! use std::sync::Arc;
//! use datasets::{embedded, Dataset, Loader, LoaderConfig};
//!
//! let test: Arc<dyn Dataset> = embedded::test().unwrap();
//! let cfg = LoaderConfig { batch_size: 1000, shuffle: false, ..Default::default() };
//! let loader = Loader::new(test.clone(), test.standard_pipeline(false), cfg).unwrap();
//! let mut epoch = loader.epoch(0);
//! let batch = epoch.next().unwrap().unwrap();
//! assert_eq!(batch.images.len(), 1000 * 28 * 28);
//! assert_eq!(epoch.progress(), (1, 10));
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result};
use crate::rng::{mix64, SampleRng};
use crate::transforms::Pipeline;

/// A batch of images and labels in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `n * c * h * w` values: image after image, each CHW.
    pub images: Vec<f32>,
    /// `n` class ids.
    pub labels: Vec<i64>,
    /// The dataset index of each image.
    pub indices: Vec<usize>,
    /// Number of images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

/// How a [`Loader`] batches.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// Images per batch (> 0).
    pub batch_size: usize,
    /// Shuffle the order each epoch (else dataset order).
    pub shuffle: bool,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffles and augmentations.
    pub seed: u64,
    /// Worker threads preparing batches; 0 prepares them on the calling thread.
    pub num_workers: usize,
    /// How many batches may be prepared ahead of the one consumed (>= 1).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig { batch_size: 128, shuffle: true, drop_last: false, seed: 0, num_workers: 2, prefetch: 4 }
    }
}

/// A seeded, multi-threaded batch loader over a dataset and a pipeline.
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    config: LoaderConfig,
    pool: Arc<BufferPool>,
}

/// Image buffers handed back with [`Loader::recycle`], reused for later batches.
#[derive(Default)]
struct BufferPool {
    buffers: Mutex<Vec<Vec<f32>>>,
    capacity: usize,
}

impl BufferPool {
    fn take(&self) -> Vec<f32> {
        let mut v = self.buffers.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        v.clear();
        v
    }

    fn give(&self, v: Vec<f32>) {
        let mut b = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() < self.capacity {
            b.push(v);
        }
    }
}

impl Loader {
    /// A loader; errors when `batch_size` or `prefetch` is 0.
    pub fn new(dataset: Arc<dyn Dataset>, pipeline: Pipeline, config: LoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DatasetError::invalid("batch size must be positive"));
        }
        if config.prefetch == 0 {
            return Err(DatasetError::invalid("prefetch must be at least 1"));
        }
        let pool = Arc::new(BufferPool {
            buffers: Mutex::new(Vec::new()),
            capacity: config.prefetch + config.num_workers + 2,
        });
        Ok(Loader { dataset, pipeline: Arc::new(pipeline), config, pool })
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// True when an epoch yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Hands a consumed batch's image buffer back for reuse by later batches (optional:
    /// it saves allocating and page-faulting a fresh buffer per batch, which matters with
    /// several workers).
    pub fn recycle(&self, batch: Batch) {
        self.pool.give(batch.images);
    }

    /// The order in which an epoch visits the dataset.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.config.shuffle {
            SampleRng::new(mix64(self.config.seed) ^ mix64(epoch ^ 0x0e90_c4a1)).shuffle(&mut order);
        }
        order
    }

    /// Iterates over the batches of epoch `epoch`. Worker threads start at once and stop
    /// when the iterator is dropped.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let order = Arc::new(self.epoch_order(epoch));
        let job = Arc::new(Job {
            dataset: self.dataset.clone(),
            pipeline: self.pipeline.clone(),
            order,
            batch_size: self.config.batch_size,
            seed: self.config.seed,
            epoch,
            pool: self.pool.clone(),
        });
        let total = self.len();
        let mut it = EpochIter { job, total, next: 0, failed: false, threaded: None };
        if self.config.num_workers > 0 && total > 0 {
            it.threaded = Threads::start(it.job.clone(), total, self.config.num_workers, self.config.prefetch);
        }
        it
    }
}

/// What the workers of one epoch share.
struct Job {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    order: Arc<Vec<usize>>,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    pool: Arc<BufferPool>,
}

impl Job {
    fn build(&self, b: usize) -> Result<Batch> {
        let lo = b * self.batch_size;
        let hi = (lo + self.batch_size).min(self.order.len());
        let indices = self.order[lo..hi].to_vec();
        let n = indices.len();
        let mut images = self.pool.take();
        let mut labels = Vec::with_capacity(n);
        let mut shape = [0usize; 3];
        let pixel_max = self.dataset.pixel_max();
        for (k, &idx) in indices.iter().enumerate() {
            let sample = self.dataset.get(idx)?;
            let mut rng = SampleRng::for_sample(self.seed, self.epoch, idx as u64);
            let img = self.pipeline.apply(&sample, pixel_max, &mut rng)?;
            if k == 0 {
                shape = [img.c, img.h, img.w];
                images.reserve(n * img.data.len());
            } else if shape != [img.c, img.h, img.w] {
                return Err(DatasetError::invalid(format!(
                    "sample {idx} of {} is {}x{}x{} after the pipeline but the batch's first is {}x{}x{}: add a resize/crop",
                    self.dataset.name(), img.c, img.h, img.w, shape[0], shape[1], shape[2]
                )));
            }
            images.extend_from_slice(&img.data);
            labels.push(sample.label);
        }
        Ok(Batch { images, labels, indices, n, c: shape[0], h: shape[1], w: shape[2] })
    }
}

/// The worker threads of one epoch.
struct Threads {
    rx: Option<Receiver<(usize, Result<Batch>)>>,
    pending: BTreeMap<usize, Result<Batch>>,
    /// Number of batches consumed, and its condition variable: workers wait until the batch
    /// they would build is within `prefetch` of it.
    consumed: Arc<(Mutex<usize>, Condvar)>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    /// Starts the workers; `None` when no thread could be spawned (the caller then builds
    /// batches itself).
    fn start(job: Arc<Job>, total: usize, workers: usize, prefetch: usize) -> Option<Self> {
        let (tx, rx) = sync_channel(prefetch + workers);
        let consumed = Arc::new((Mutex::new(0usize), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let handles: Vec<JoinHandle<()>> = (0..workers)
            .filter_map(|w| {
                let (job, tx, consumed, stop, next) =
                    (job.clone(), tx.clone(), consumed.clone(), stop.clone(), next.clone());
                std::thread::Builder::new()
                    .name(format!("lamina-loader-{w}"))
                    .spawn(move || loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= total {
                            return;
                        }
                        {
                            let (m, cv) = &*consumed;
                            let mut c = m.lock().unwrap_or_else(|e| e.into_inner());
                            while b >= *c + prefetch && !stop.load(Ordering::Acquire) {
                                c = cv.wait(c).unwrap_or_else(|e| e.into_inner());
                            }
                        }
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let batch = job.build(b);
                        if tx.send((b, batch)).is_err() {
                            return;
                        }
                    })
                    .ok()
            })
            .collect();
        if handles.is_empty() {
            return None;
        }
        Some(Threads { rx: Some(rx), pending: BTreeMap::new(), consumed, stop, handles })
    }

    fn take(&mut self, b: usize) -> Result<Batch> {
        loop {
            if let Some(r) = self.pending.remove(&b) {
                let (m, cv) = &*self.consumed;
                *m.lock().unwrap_or_else(|e| e.into_inner()) = b + 1;
                cv.notify_all();
                return r;
            }
            match self.rx.as_ref().map(|rx| rx.recv()) {
                Some(Ok((i, r))) => {
                    self.pending.insert(i, r);
                }
                _ => {
                    return Err(DatasetError::invalid(format!("loader worker thread ended before producing batch {b}")))
                }
            }
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.consumed.1.notify_all();
        self.rx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The batches of one epoch, in order. Yields `Err` once (and then ends) if a sample cannot
/// be read or transformed.
pub struct EpochIter {
    job: Arc<Job>,
    total: usize,
    next: usize,
    failed: bool,
    threaded: Option<Threads>,
}

impl EpochIter {
    /// `(batches yielded so far, batches in the epoch)`.
    pub fn progress(&self) -> (usize, usize) {
        (self.next, self.total)
    }

    /// The epoch number.
    pub fn epoch(&self) -> u64 {
        self.job.epoch
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.failed || self.next >= self.total {
            return None;
        }
        let b = self.next;
        let r = match &mut self.threaded {
            Some(t) => t.take(b),
            None => self.job.build(b),
        };
        self.next += 1;
        if r.is_err() {
            self.failed = true;
            self.threaded = None;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.failed { 0 } else { self.total - self.next };
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Sample;
    use crate::transforms::Normalization;
    use std::borrow::Cow;

    /// 1x2x2 images whose pixels encode the index; label = index % 3.
    struct Toy(usize);

    impl Dataset for Toy {
        fn name(&self) -> &str {
            "toy"
        }
        fn len(&self) -> usize {
            self.0
        }
        fn num_classes(&self) -> usize {
            3
        }
        fn class_names(&self) -> &[String] {
            &[]
        }
        fn image_shape(&self) -> Option<[usize; 3]> {
            Some([1, 2, 2])
        }
        fn normalization(&self) -> Normalization {
            Normalization::new(vec![0.0], vec![1.0])
        }
        fn get(&self, i: usize) -> Result<Sample<'_>> {
            crate::dataset::check_index(self, i)?;
            let v = (i % 256) as u8;
            Ok(Sample { pixels: Cow::Owned(vec![v, v, v, (i / 256) as u8]), shape: [1, 2, 2], label: (i % 3) as i64 })
        }
        fn standard_pipeline(&self, _train: bool) -> Pipeline {
            Pipeline::new()
        }
    }

    fn loader(n: usize, cfg: LoaderConfig) -> Loader {
        let p = Pipeline::new().random_crop(2, 1).horizontal_flip(0.5);
        Loader::new(Arc::new(Toy(n)), p, cfg).unwrap()
    }

    fn collect(l: &Loader, epoch: u64) -> Vec<Batch> {
        l.epoch(epoch).map(|b| b.unwrap()).collect()
    }

    #[test]
    fn each_sample_once_per_epoch_and_epochs_differ() {
        let l = loader(1000, LoaderConfig { batch_size: 64, ..Default::default() });
        assert_eq!(l.len(), 16);
        let e0 = collect(&l, 0);
        let e1 = collect(&l, 1);
        for e in [&e0, &e1] {
            let mut idx: Vec<usize> = e.iter().flat_map(|b| b.indices.clone()).collect();
            assert_eq!(e.last().unwrap().n, 1000 - 15 * 64);
            idx.sort_unstable();
            assert_eq!(idx, (0..1000).collect::<Vec<_>>());
            for b in e.iter() {
                assert_eq!(b.images.len(), b.n * 4);
                for (k, &i) in b.indices.iter().enumerate() {
                    assert_eq!(b.labels[k], (i % 3) as i64);
                }
            }
        }
        assert_ne!(e0[0].indices, e1[0].indices);
        assert_eq!(e0, collect(&l, 0));
    }

    #[test]
    fn same_batches_for_any_thread_count() {
        let base = LoaderConfig { batch_size: 50, seed: 7, ..Default::default() };
        let runs: Vec<Vec<Batch>> = [0, 1, 4]
            .iter()
            .map(|&w| collect(&loader(517, LoaderConfig { num_workers: w, prefetch: 2, ..base.clone() }), 3))
            .collect();
        assert_eq!(runs[0], runs[1]);
        assert_eq!(runs[0], runs[2]);
        let other = collect(&loader(517, LoaderConfig { seed: 8, ..base }), 3);
        assert_ne!(runs[0], other);
    }

    #[test]
    fn recycling_buffers_keeps_batches_identical() {
        let l = loader(300, LoaderConfig { batch_size: 32, ..Default::default() });
        let plain = collect(&l, 2);
        let mut recycled = Vec::new();
        for b in l.epoch(2) {
            let b = b.unwrap();
            recycled.push(b.clone());
            l.recycle(b);
        }
        assert_eq!(plain, recycled);
    }

    #[test]
    fn drop_last_and_progress() {
        let l = loader(10, LoaderConfig { batch_size: 4, drop_last: true, ..Default::default() });
        assert_eq!(l.len(), 2);
        let mut it = l.epoch(0);
        assert_eq!(it.progress(), (0, 2));
        assert_eq!(it.next().unwrap().unwrap().n, 4);
        assert_eq!(it.next().unwrap().unwrap().n, 4);
        assert_eq!(it.progress(), (2, 2));
        assert!(it.next().is_none());
        let l = loader(10, LoaderConfig { batch_size: 4, shuffle: false, ..Default::default() });
        let b = collect(&l, 0);
        assert_eq!(b.iter().map(|b| b.n).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(b[2].indices, vec![8, 9]);
        assert!(loader(0, LoaderConfig::default()).is_empty());
        assert!(Loader::new(Arc::new(Toy(3)), Pipeline::new(), LoaderConfig { batch_size: 0, ..Default::default() })
            .is_err());
    }

    #[test]
    fn early_drop_stops_workers() {
        let l = loader(100_000, LoaderConfig { batch_size: 10, num_workers: 4, ..Default::default() });
        let mut it = l.epoch(0);
        it.next().unwrap().unwrap();
        drop(it); // must not hang
    }

    #[test]
    fn errors_surface_once() {
        // a crop larger than the padded image fails on every sample
        let l = Loader::new(
            Arc::new(Toy(20)),
            Pipeline::new().random_crop(9, 0),
            LoaderConfig { batch_size: 4, ..Default::default() },
        )
        .unwrap();
        let r: Vec<_> = l.epoch(0).collect();
        assert_eq!(r.len(), 1);
        assert!(r[0].is_err());
    }
}
