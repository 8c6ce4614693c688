//! Per-epoch metrics of a run: `metrics.jsonl` (one JSON object per epoch) and `curves.svg`
//! (loss and accuracy per epoch), both rewritten atomically after every epoch.

use std::path::Path;

use autograd::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::plot::{render, Panel, Series};

/// `f64` fields in JSON that keep NaN and the infinities: finite values are numbers, the others
/// the strings `"NaN"`, `"inf"` and `"-inf"` (JSON has no literal for them, and serde_json would
/// write `null`, which does not read back as a number). `null`, as older files hold, reads as
/// NaN. With serde_json's `float_roundtrip`, every value reads back bit for bit (NaN as NaN).
pub mod float {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `v` as a number, or as `"NaN"`, `"inf"` or `"-inf"`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    struct F64;

    impl Visitor<'_> for F64 {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number, \"NaN\", \"inf\", \"-inf\" or null")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" | "nan" => Ok(f64::NAN),
                "inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
    }

    /// Reads what [`serialize`] writes (and `null` as NaN).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(F64)
    }
}

/// Loss and accuracy over one pass of a split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Mean cross-entropy.
    #[serde(with = "float")]
    pub loss: f64,
    /// Top-1 accuracy in `[0, 1]`.
    #[serde(with = "float")]
    pub acc: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number of the whole run.
    pub epoch: usize,
    /// Name of the phase the epoch belongs to (`train` for single-phase methods).
    #[serde(default = "train_phase")]
    pub phase: String,
    /// 1-based epoch number within the phase.
    #[serde(default)]
    pub phase_epoch: usize,
    /// Training loss/accuracy (running average over the epoch's batches).
    pub train: SplitMetrics,
    /// Validation metrics, if a validation split exists.
    pub val: Option<SplitMetrics>,
    /// Test metrics, on the epochs `--test-every` evaluates.
    pub test: Option<SplitMetrics>,
    /// Learning rate at the end of the epoch.
    #[serde(with = "float")]
    pub lr: f64,
    /// Seconds spent training (not evaluating) in this epoch.
    #[serde(with = "float")]
    pub train_seconds: f64,
    /// Training images per second.
    #[serde(with = "float")]
    pub images_per_second: f64,
}

fn train_phase() -> String {
    "train".to_string()
}

/// Reads a run's `metrics.jsonl` (missing file: no epochs).
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::invalid("metrics", format!("{}: {e}", path.display()))),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::invalid("metrics", format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Rewrites `metrics.jsonl` and `curves.svg` in `dir` from the full history.
pub fn write_metrics(dir: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in history {
        text.push_str(&serde_json::to_string(m).map_err(|e| Error::invalid("metrics", e.to_string()))?);
        text.push('\n');
    }
    layers::state_dict::write_atomic(&dir.join("metrics.jsonl"), text.as_bytes())?;
    layers::state_dict::write_atomic(&dir.join("curves.svg"), curves_svg(history).as_bytes())
}

/// The loss and accuracy curves of a run as SVG.
pub fn curves_svg(history: &[EpochMetrics]) -> String {
    let pick = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
        history.iter().filter_map(|m| f(m).map(|v| (m.epoch as f64, v))).collect()
    };
    let series = |name: &str, points: Vec<(f64, f64)>| Series::line(name, points);
    let loss = Panel {
        title: "loss".into(),
        x_label: "epoch".into(),
        y_label: "cross-entropy".into(),
        series: vec![
            series("train", pick(&|m| Some(m.train.loss))),
            series("validation", pick(&|m| m.val.map(|v| v.loss))),
            series("test", pick(&|m| m.test.map(|t| t.loss))),
        ],
        x_ticks: vec![],
    };
    let acc = Panel {
        title: "accuracy".into(),
        x_label: "epoch".into(),
        y_label: "top-1 accuracy (%)".into(),
        series: vec![
            series("train", pick(&|m| Some(100.0 * m.train.acc))),
            series("validation", pick(&|m| m.val.map(|v| 100.0 * v.acc))),
            series("test", pick(&|m| m.test.map(|t| 100.0 * t.acc))),
        ],
        x_ticks: vec![],
    };
    render(&[loss, acc])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(values: [f64; 5]) -> EpochMetrics {
        let [a, b, c, d, e] = values;
        EpochMetrics {
            epoch: 1,
            phase: "train".into(),
            phase_epoch: 1,
            train: SplitMetrics { loss: a, acc: b },
            val: Some(SplitMetrics { loss: c, acc: 0.5 }),
            test: Some(SplitMetrics { loss: d, acc: 0.25 }),
            lr: e,
            train_seconds: 0.1 + 0.2,
            images_per_second: 1e-310,
        }
    }

    fn bits(m: &EpochMetrics) -> Vec<u64> {
        let (v, t) = (m.val.unwrap(), m.test.unwrap());
        [m.train.loss, m.train.acc, v.loss, v.acc, t.loss, t.acc, m.lr, m.train_seconds, m.images_per_second]
            .iter()
            .map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() })
            .collect()
    }

    /// A history holding NaN and infinities (a diverged epoch) reads back exactly, through the
    /// text of metrics.jsonl and through the JSON value a checkpoint stores; serde_json's own
    /// encoding wrote `null`, which could not be read back, so such a checkpoint could not be
    /// resumed.
    #[test]
    fn non_finite_history_values_round_trip() {
        let m = epoch([1.7e19, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, std::f64::consts::PI]);
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"NaN\"") && text.contains("\"-inf\""), "{text}");
        let back: EpochMetrics = serde_json::from_str(&text).unwrap();
        assert_eq!(bits(&back), bits(&m));
        let value = serde_json::to_value(vec![m.clone()]).unwrap();
        let again: Vec<EpochMetrics> = serde_json::from_str(&value.to_string()).unwrap();
        assert_eq!(bits(&again[0]), bits(&m));
        // Files written before this encoding hold null: read as NaN.
        let old = text.replace("\"NaN\"", "null");
        assert!(serde_json::from_str::<EpochMetrics>(&old).unwrap().train.acc.is_nan());
        assert!(serde_json::from_str::<SplitMetrics>(r#"{"loss": "lots", "acc": 1}"#).is_err());
    }
}
