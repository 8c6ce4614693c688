//! PROM's energy and storage estimator: `E = Σ_layers MACs_l · (E_mul(l) + E_add(l))` from the
//! MAC counter's per-layer rows, with configurable per-operation energies ([`EnergyTable`],
//! Horowitz's 45 nm figures by default) and each layer's number format ([`Precision`]); storage
//! is the weights' bits. Reported per layer and in total, as ratios against a float16 model.
//!
//! Accounting (the paper's own is not available; these are the spec's rules, all switchable):
//! a float16 MAC is one fp16 multiply and one fp16 add; an int8 MAC one int8 multiply and one add
//! at the accumulator's width ([`Accumulator`]); a ternary MAC is one int8 add and no multiply
//! (zero weights are not skipped); storage is 16, 8 or 2 bits per weight (biases, BatchNorm and
//! scales are not counted); memory traffic is not modelled.

use autograd::{Result, Tensor};
use layers::mac::count_macs;
use layers::models::mobilenet::InvertedResidual;
use layers::{Module, ModuleExt};

/// The number format of a layer's weights (and so of its multiply-accumulates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Ternary weights on int8 activations: additions only, 2 bits per weight.
    Ternary,
    /// 8-bit integer weights and activations.
    Int8,
    /// float16.
    Float16,
    /// float32.
    Float32,
}

impl Precision {
    /// Bits stored per weight.
    pub fn weight_bits(self) -> u64 {
        match self {
            Precision::Ternary => 2,
            Precision::Int8 => 8,
            Precision::Float16 => 16,
            Precision::Float32 => 32,
        }
    }
}

/// Where int8 products are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulator {
    /// One int8 add per MAC (the spec's 23.0x accounting).
    Int8,
    /// One int32 add per MAC of the int8 layers (the spec's 19.4x accounting); ternary layers
    /// still count an int8 add.
    Int32,
}

/// Energy per operation in picojoules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnergyTable {
    /// int8 add.
    pub add_int8: f64,
    /// int32 add.
    pub add_int32: f64,
    /// fp16 add.
    pub add_fp16: f64,
    /// fp32 add.
    pub add_fp32: f64,
    /// int8 multiply.
    pub mul_int8: f64,
    /// fp16 multiply.
    pub mul_fp16: f64,
    /// fp32 multiply.
    pub mul_fp32: f64,
}

impl Default for EnergyTable {
    /// Horowitz, ISSCC 2014, 45 nm.
    fn default() -> Self {
        EnergyTable {
            add_int8: 0.03,
            add_int32: 0.1,
            add_fp16: 0.4,
            add_fp32: 0.9,
            mul_int8: 0.2,
            mul_fp16: 1.1,
            mul_fp32: 3.7,
        }
    }
}

impl EnergyTable {
    /// Picojoules of one MAC in `p` with accumulator `acc`.
    pub fn mac_pj(&self, p: Precision, acc: Accumulator) -> f64 {
        match p {
            Precision::Ternary => self.add_int8,
            Precision::Int8 => {
                self.mul_int8
                    + match acc {
                        Accumulator::Int8 => self.add_int8,
                        Accumulator::Int32 => self.add_int32,
                    }
            }
            Precision::Float16 => self.mul_fp16 + self.add_fp16,
            Precision::Float32 => self.mul_fp32 + self.add_fp32,
        }
    }
}

/// One layer of the estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerEnergy {
    /// Module path.
    pub name: String,
    /// MACs per image.
    pub macs: u64,
    /// Weights (the layer's `weight` tensor).
    pub weights: u64,
    /// Its format.
    pub precision: Precision,
    /// Energy per image (pJ).
    pub pj: f64,
    /// Storage of its weights (bits).
    pub bits: u64,
}

/// The estimate of a model: layers and totals.
#[derive(Clone, Debug, PartialEq)]
pub struct EnergyReport {
    /// Per layer, in execution order.
    pub layers: Vec<LayerEnergy>,
    /// Total energy per image (pJ).
    pub pj: f64,
    /// Total weight storage (bits).
    pub bits: u64,
    /// Total MACs per image.
    pub macs: u64,
    /// Total weights.
    pub weights: u64,
}

impl EnergyReport {
    /// `other`'s energy over this one's (how many times less this model spends).
    pub fn energy_ratio(&self, other: &EnergyReport) -> f64 {
        other.pj / self.pj
    }

    /// `other`'s storage over this one's.
    pub fn storage_ratio(&self, other: &EnergyReport) -> f64 {
        other.bits as f64 / self.bits as f64
    }
}

/// Each weighted layer's `(path, MACs, weights)` for one image of shape `input` (`[1, C, H, W]`).
pub fn layer_costs(model: &dyn Module, input: &[usize]) -> Result<Vec<(String, u64, u64)>> {
    let device = model.parameters().first().map_or(autograd::Device::Cpu, |p| p.leaf().device());
    let report = count_macs(model, &Tensor::zeros(input).to_device(device)?)?;
    let mut out = Vec::with_capacity(report.rows.len());
    for r in report.rows {
        let weights = model
            .get_module(&r.name)
            .and_then(|m| m.params().into_iter().find(|(n, _)| n == "weight"))
            .map_or(0, |(_, p)| p.leaf().numel() as u64);
        out.push((r.name, r.macs, weights));
    }
    Ok(out)
}

/// The estimate for `costs` (as [`layer_costs`] gives them) with each layer's format from
/// `precision`.
pub fn estimate(
    costs: &[(String, u64, u64)],
    precision: &dyn Fn(&str) -> Precision,
    table: &EnergyTable,
    acc: Accumulator,
) -> EnergyReport {
    let layers: Vec<LayerEnergy> = costs
        .iter()
        .map(|(name, macs, weights)| {
            let p = precision(name);
            LayerEnergy {
                name: name.clone(),
                macs: *macs,
                weights: *weights,
                precision: p,
                pj: *macs as f64 * table.mac_pj(p, acc),
                bits: weights * p.weight_bits(),
            }
        })
        .collect();
    EnergyReport {
        pj: layers.iter().map(|l| l.pj).sum(),
        bits: layers.iter().map(|l| l.bits).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        weights: layers.iter().map(|l| l.weights).sum(),
        layers,
    }
}

/// The 1x1 convolutions inside the inverted-residual blocks of `model` (PROM's ternary layers):
/// paths of the form `<block>.conv.<i>.0` or `<block>.conv.<i>` whose weight is `[O, C, 1, 1]`
/// with `C > 1` per group.
pub fn block_pointwise_convs(model: &dyn Module) -> Vec<String> {
    let mut out = Vec::new();
    for (block, m) in model.named_modules() {
        if m.downcast_ref::<InvertedResidual>().is_none() {
            continue;
        }
        for (path, c) in m.named_modules() {
            if let Some(conv) = c.downcast_ref::<layers::Conv2d>() {
                if conv.kernel_size() == (1, 1) && conv.params.groups == 1 {
                    out.push(format!("{block}.{path}"));
                }
            }
        }
    }
    out
}
