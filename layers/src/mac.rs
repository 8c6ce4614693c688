//! The MAC and parameter counter: traces one forward pass and reports, per layer and in total,
//! the multiply-accumulates of convolutions, linear layers and attention matmuls.
//!
//! Layers call [`record`] in their forward pass; it costs one thread-local check when no count
//! is running. [`count_macs`] runs a forward pass in eval mode under `no_grad`, collects the
//! records and names each one after the module that owns its weight.

use std::cell::RefCell;
use std::fmt;

use autograd::{no_grad, Result, Tensor};

use crate::{Mode, Module, ModuleExt, Param};

/// One traced operation.
#[derive(Clone, Debug, PartialEq)]
pub struct MacRow {
    /// Dotted path of the module that ran it (`layer1.0.conv1`), or `"?"` when no parameter links it.
    pub name: String,
    /// `"conv2d"`, `"linear"`, `"attention"`, or what a custom layer reports.
    pub kind: String,
    /// Input shape.
    pub input: Vec<usize>,
    /// Output shape.
    pub output: Vec<usize>,
    /// Multiply-accumulates.
    pub macs: u64,
}

/// The result of [`count_macs`]: rows in execution order, totals, and a table via `Display`.
#[derive(Clone, Debug, PartialEq)]
pub struct MacReport {
    /// The traced operations, in the order they ran.
    pub rows: Vec<MacRow>,
    /// Sum of `rows[i].macs`.
    pub total_macs: u64,
    /// All parameters of the model (trainable or not).
    pub total_params: usize,
}

struct Pending {
    weight: Option<Param>,
    kind: &'static str,
    input: Vec<usize>,
    output: Vec<usize>,
    macs: u64,
}

thread_local! {
    static TRACE: RefCell<Option<Vec<Pending>>> = const { RefCell::new(None) };
}

/// Records `macs` multiply-accumulates of an operation of `kind` run by the module owning
/// `weight` (a no-op unless [`count_macs`] is running on this thread). Custom layers call this
/// from their forward pass to be counted.
pub fn record(weight: Option<&Param>, kind: &'static str, macs: u64, input: &[usize], output: &[usize]) {
    TRACE.with(|t| {
        if let Some(rows) = t.borrow_mut().as_mut() {
            rows.push(Pending { weight: weight.cloned(), kind, input: input.to_vec(), output: output.to_vec(), macs });
        }
    });
}

/// Runs `model` on `input` (eval mode, no gradient) and counts its MACs and parameters.
///
/// ```
/// use layers::{mac::count_macs, Conv2d, Conv2dOptions, Linear, Flatten, Sequential};
/// use autograd::Tensor;
/// let net = Sequential::new()
///     .push(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1)).unwrap())
///     .push(Flatten::default())
///     .push(Linear::new(4 * 8 * 8, 10, true));
/// let report = count_macs(&net, &Tensor::zeros(&[1, 1, 8, 8])).unwrap();
/// assert_eq!(report.rows[0].name, "0");
/// assert_eq!(report.total_macs, 4 * 64 * 9 + 256 * 10);
/// ```
pub fn count_macs(model: &dyn Module, input: &Tensor) -> Result<MacReport> {
    TRACE.with(|t| *t.borrow_mut() = Some(Vec::new()));
    let out = no_grad(|| model.forward(input, Mode::Eval));
    let pending = TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default();
    out?;
    let owners: Vec<(String, Vec<Param>)> = model
        .named_modules()
        .into_iter()
        .map(|(name, m)| (name, m.params().into_iter().map(|(_, p)| p).collect()))
        .collect();
    let rows: Vec<MacRow> = pending
        .into_iter()
        .map(|p| {
            let name = p
                .weight
                .as_ref()
                .and_then(|w| owners.iter().find(|(_, ps)| ps.iter().any(|q| q.ptr_eq(w))))
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| "?".into());
            MacRow { name, kind: p.kind.to_string(), input: p.input, output: p.output, macs: p.macs }
        })
        .collect();
    let total_macs = rows.iter().map(|r| r.macs).sum();
    Ok(MacReport { rows, total_macs, total_params: model.num_parameters() })
}

impl MacReport {
    /// The report as JSON (`{"total_macs": .., "total_params": .., "rows": [..]}`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "total_macs": self.total_macs,
            "total_params": self.total_params,
            "rows": self.rows.iter().map(|r| serde_json::json!({
                "name": r.name, "kind": r.kind, "input": r.input, "output": r.output, "macs": r.macs,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Formats a count with a unit suffix (`4.09G`, `272.5K`).
pub fn human(n: f64) -> String {
    let (v, unit) = if n >= 1e9 {
        (n / 1e9, "G")
    } else if n >= 1e6 {
        (n / 1e6, "M")
    } else if n >= 1e3 {
        (n / 1e3, "K")
    } else {
        (n, "")
    };
    format!("{v:.2}{unit}")
}

impl fmt::Display for MacReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(5);
        writeln!(f, "{:<w$}  {:<10}  {:<20}  {:>10}  {:>6}", "layer", "kind", "output", "MACs", "share")?;
        for r in &self.rows {
            let share = 100.0 * r.macs as f64 / self.total_macs.max(1) as f64;
            let out = format!("{:?}", r.output);
            writeln!(f, "{:<w$}  {:<10}  {:<20}  {:>10}  {:>5.1}%", r.name, r.kind, out, human(r.macs as f64), share)?;
        }
        write!(f, "total: {} MACs, {} parameters", human(self.total_macs as f64), human(self.total_params as f64))
    }
}
