//! An op-level profiler: wall time and call counts per op name, forward and backward apart.
//!
//! While profiling is on ([`enable`] .. [`take_report`], or [`measure`]), every backend call an op
//! makes is timed and added to that op's forward entry — recorded or not, so the optimizer's
//! updates under [`no_grad`](crate::no_grad) count too — and every backward rule run by
//! [`Tensor::backward`](crate::Tensor::backward) is timed as a whole and added to the backward
//! entry of the op that recorded it (`conv2d` backward is the time of both of its gradient
//! convolutions, say). Gradient sums where several paths meet are the backward entry
//! `grad_accumulate`. A caller can time a region of its own as one entry with [`scope`].
//!
//! Time is counted once: a region that starts inside another one on the same thread (the ops a
//! backward rule runs) is part of the enclosing region and not listed on its own, so the entries
//! add up to at most the wall time of the profiled code; what is left over is tape bookkeeping,
//! views and the caller's own work (data loading, say). Ops that run on several threads at once are
//! summed over the threads. On a GPU each timed region waits for the device to finish, so the
//! times are kernel times rather than launch times (and the profiled code runs slower than it
//! would without profiling).
//!
//! Convolutions also say which algorithm ran: each backend call of `conv2d` and of its two
//! gradient convolutions is timed under the name of the algorithm the backend picked
//! ([`Report::algorithms`], e.g. `conv2d_backward_weight` by `winograd4`), nested in a backward
//! rule or not. Those entries break the op entries down; they are not added to them.
//!
//! When profiling is off, each op pays one relaxed atomic load.
//!
//! ```
//! use autograd::profile::{self, Pass};
//! use autograd::Tensor;
//! let w = Tensor::ones(&[3, 3]).requires_grad_();
//! let (loss, report) = profile::measure(|| w.matmul(&w).unwrap().sum_all().unwrap().backward());
//! loss.unwrap();
//! let mm = report.get("matmul", Pass::Forward).unwrap();
//! assert_eq!(mm.calls, 1);
//! assert!(report.get("matmul", Pass::Backward).is_some());
//! ```

use crate::{Device, Result};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State { totals: BTreeMap::new(), algorithms: BTreeMap::new(), since: None });

thread_local! {
    /// Whether a timed region is running on this thread (nested regions are not timed).
    static IN_REGION: Cell<bool> = const { Cell::new(false) };
}

struct State {
    totals: BTreeMap<(&'static str, Pass), (u64, Duration)>,
    algorithms: BTreeMap<(&'static str, &'static str), (u64, Duration)>,
    since: Option<Instant>,
}

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which pass an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pass {
    /// The op itself (backend calls outside backward rules).
    Forward,
    /// The op's backward rule, with every op it runs.
    Backward,
    /// A caller's named region ([`scope`]), with every op it runs.
    Scope,
}

impl Pass {
    /// `"fwd"`, `"bwd"` or `"all"` (a scope holds whole ops).
    pub fn short_name(self) -> &'static str {
        match self {
            Pass::Forward => "fwd",
            Pass::Backward => "bwd",
            Pass::Scope => "all",
        }
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// The accumulated time of one op in one pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpTime {
    /// The op's name (as in error messages: `conv2d`, `matmul`, `relu`, ...).
    pub name: &'static str,
    /// Forward or backward.
    pub pass: Pass,
    /// Number of timed calls.
    pub calls: u64,
    /// Total wall time of those calls.
    pub time: Duration,
}

/// The accumulated time of the backend calls of one op that one algorithm computed (a
/// convolution pass by `winograd4`, say): a breakdown of the op entries, not a part of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlgorithmTime {
    /// The op (`conv2d`, `conv2d_backward_data`, `conv2d_backward_weight`).
    pub op: &'static str,
    /// The algorithm's name as the backend gives it (`winograd4`, `im2col`, ...).
    pub algorithm: &'static str,
    /// Number of timed calls.
    pub calls: u64,
    /// Total wall time of those calls, whether they ran inside a backward rule or not.
    pub time: Duration,
}

/// What the profiler measured between [`enable`] and [`take_report`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One entry per (op, pass) that ran, the most expensive first.
    pub ops: Vec<OpTime>,
    /// One entry per (op, algorithm) of the ops that name their algorithm (the convolutions),
    /// the most expensive first. They break the op entries down and are not counted in
    /// [`Report::attributed`].
    pub algorithms: Vec<AlgorithmTime>,
    /// Wall time from [`enable`] (or the previous [`take_report`]) to this report.
    pub elapsed: Duration,
}

impl Report {
    /// The entry of `name` in `pass`, if that op ran.
    pub fn get(&self, name: &str, pass: Pass) -> Option<&OpTime> {
        self.ops.iter().find(|o| o.name == name && o.pass == pass)
    }

    /// The entry of `op` computed by `algorithm`, if it ran.
    pub fn algorithm(&self, op: &str, algorithm: &str) -> Option<&AlgorithmTime> {
        self.algorithms.iter().find(|a| a.op == op && a.algorithm == algorithm)
    }

    /// The time attributed to ops (the sum of every entry).
    pub fn attributed(&self) -> Duration {
        self.ops.iter().map(|o| o.time).sum()
    }

    /// The wall time not attributed to any op (tape bookkeeping, views, the caller's own work).
    pub fn unattributed(&self) -> Duration {
        self.elapsed.saturating_sub(self.attributed())
    }

    /// A plain-text summary for benchmarks: a line with the wall and attributed time of `what`,
    /// then the `top` most expensive ops and convolution algorithms, one per line.
    ///
    /// ```
    /// let (_, report) = autograd::profile::measure(|| autograd::Tensor::ones(&[2]).exp());
    /// let text = report.summary("exp", 5);
    /// assert!(text.starts_with("profile of exp:") && text.contains("exp"));
    /// ```
    pub fn summary(&self, what: &str, top: usize) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut out =
            format!("profile of {what}: {:.1} ms, {:.1} ms in ops\n", ms(self.elapsed), ms(self.attributed()));
        for op in self.ops.iter().take(top) {
            let line = format!(
                "  {:<30} {:>5} {:>6} calls {:>9.1} ms\n",
                op.name,
                op.pass.short_name(),
                op.calls,
                ms(op.time)
            );
            out.push_str(&line);
        }
        for a in self.algorithms.iter().take(top) {
            let line = format!("  {:<30} by {:<18} {:>6} calls {:>9.1} ms\n", a.op, a.algorithm, a.calls, ms(a.time));
            out.push_str(&line);
        }
        out
    }
}

/// Clears the counters and starts profiling (on every thread).
pub fn enable() {
    let mut s = state();
    s.totals.clear();
    s.algorithms.clear();
    s.since = Some(Instant::now());
    ENABLED.store(true, Ordering::Relaxed);
}

/// Stops profiling; the counters are kept for [`take_report`].
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

/// Whether profiling is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The counters so far, most expensive first; clears them (profiling stays as it was).
pub fn take_report() -> Report {
    let mut s = state();
    let now = Instant::now();
    let elapsed = s.since.map(|t| now - t).unwrap_or_default();
    s.since = s.since.map(|_| now);
    let mut ops: Vec<OpTime> = std::mem::take(&mut s.totals)
        .into_iter()
        .map(|((name, pass), (calls, time))| OpTime { name, pass, calls, time })
        .collect();
    ops.sort_by(|a, b| b.time.cmp(&a.time).then(a.name.cmp(b.name)).then(a.pass.cmp(&b.pass)));
    let mut algorithms: Vec<AlgorithmTime> = std::mem::take(&mut s.algorithms)
        .into_iter()
        .map(|((op, algorithm), (calls, time))| AlgorithmTime { op, algorithm, calls, time })
        .collect();
    algorithms.sort_by(|a, b| b.time.cmp(&a.time).then(a.op.cmp(b.op)).then(a.algorithm.cmp(b.algorithm)));
    Report { ops, algorithms, elapsed }
}

/// Runs `f` with profiling on and returns its result with the report (profiling is off after).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Report) {
    enable();
    let r = f();
    disable();
    (r, take_report())
}

/// Runs `f` as a named region of the caller (an optimizer step, say): when profiling is on, its
/// time is one [`Pass::Scope`] entry `name` and the ops it runs are not listed on their own.
/// On a GPU the clock stops when `device` has finished the region's work.
///
/// ```
/// use autograd::profile::{self, Pass};
/// use autograd::{Device, Tensor};
/// let x = Tensor::ones(&[4]);
/// let (_, report) = profile::measure(|| profile::scope("update", Device::Cpu, || x.exp().unwrap().neg()));
/// assert_eq!(report.get("update", Pass::Scope).unwrap().calls, 1);
/// assert!(report.get("exp", Pass::Forward).is_none());
/// ```
pub fn scope<T>(name: &'static str, device: Device, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    timed_slow(name, Pass::Scope, device, f)
}

/// Times `f`, a backend call of the op `name`, as forward time (see the module docs).
#[inline]
pub(crate) fn forward<T>(name: &'static str, device: Device, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    timed_slow(name, Pass::Forward, device, f)
}

/// [`forward`] for a backend call that names its algorithm: also times `f` as an
/// [`AlgorithmTime`] of `name` by `algorithm()` (asked only while profiling), nested in another
/// region or not.
#[inline]
pub(crate) fn forward_by<T>(
    name: &'static str,
    device: Device,
    algorithm: impl FnOnce() -> &'static str,
    f: impl FnOnce() -> T,
) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    algorithm_slow(name, algorithm(), device, f)
}

#[inline(never)]
fn algorithm_slow<T>(name: &'static str, algorithm: &'static str, device: Device, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = timed_slow(name, Pass::Forward, device, f);
    let _ = synchronize(device);
    count(&mut state().algorithms, (name, algorithm), start.elapsed());
    out
}

/// Adds one call of `took` to the entry `key` of `totals`.
fn count<K: Ord>(totals: &mut BTreeMap<K, (u64, Duration)>, key: K, took: Duration) {
    let e = totals.entry(key).or_default();
    e.0 += 1;
    e.1 += took;
}

/// Times `f`, the backward rule of the op `name` (or gradient accumulation), as backward time.
#[inline]
pub(crate) fn backward<T>(name: &'static str, device: Device, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    timed_slow(name, Pass::Backward, device, f)
}

#[inline(never)]
fn timed_slow<T>(name: &'static str, pass: Pass, device: Device, f: impl FnOnce() -> T) -> T {
    if IN_REGION.with(|r| r.replace(true)) {
        return f();
    }
    /// Leaves the region even when `f` unwinds.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            IN_REGION.with(|r| r.set(false));
        }
    }
    let _leave = Leave;
    let start = Instant::now();
    let out = f();
    // A failed wait shows up again in the next op on that device; the profiler reports no errors.
    let _ = synchronize(device);
    count(&mut state().totals, (name, pass), start.elapsed());
    out
}

/// Waits for the queued work of `device` (the CPU's ops are synchronous).
#[cfg(feature = "cuda")]
fn synchronize(device: Device) -> Result<()> {
    match device {
        Device::Cuda(n) => backends::cuda::CudaBackend::new(n)?.synchronize(),
        Device::Cpu => Ok(()),
    }
}

/// Waits for the queued work of `device` (the CPU's ops are synchronous).
#[cfg(not(feature = "cuda"))]
fn synchronize(_device: Device) -> Result<()> {
    Ok(())
}
