//! A method's own hyperparameters: declared keys with defaults and help, set from the command
//! line with `--set key=value`, read back typed.

use std::collections::BTreeMap;

use autograd::{Error, Result};

/// A declared hyperparameter of a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HparamSpec {
    /// The key used with `--set key=value`.
    pub key: &'static str,
    /// The default value, as text.
    pub default: &'static str,
    /// A one-line explanation.
    pub help: &'static str,
}

/// Values of a method's hyperparameters (defaults overridden by `--set`).
///
/// ```
/// use methods::hparams::{Hparams, HparamSpec};
/// const SPECS: &[HparamSpec] = &[HparamSpec { key: "p", default: "0.1", help: "drop probability" }];
/// let mut h = Hparams::new("swd", SPECS);
/// h.set("p=0.25").unwrap();
/// assert_eq!(h.f64("p").unwrap(), 0.25);
/// assert!(h.set("q=1").unwrap_err().to_string().contains("p"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Hparams {
    method: String,
    specs: Vec<HparamSpec>,
    values: BTreeMap<String, String>,
}

impl Hparams {
    /// The defaults of `specs` for `method`.
    pub fn new(method: &str, specs: &[HparamSpec]) -> Hparams {
        let values = specs.iter().map(|s| (s.key.to_string(), s.default.to_string())).collect();
        Hparams { method: method.to_string(), specs: specs.to_vec(), values }
    }

    /// The defaults of `specs` overridden by `values` (as saved in a configuration); a key
    /// `specs` does not declare is an error listing the valid keys.
    pub fn from_values(method: &str, specs: &[HparamSpec], values: &BTreeMap<String, String>) -> Result<Hparams> {
        let mut h = Hparams::new(method, specs);
        for (k, v) in values {
            h.set(&format!("{k}={v}"))?;
        }
        Ok(h)
    }

    /// Applies one `key=value` assignment; an unknown key is an error listing the valid keys.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let Some((key, value)) = assignment.split_once('=') else {
            return Err(Error::invalid("--set", format!("expected key=value, got {assignment:?}")));
        };
        let key = key.trim();
        if !self.values.contains_key(key) {
            let valid: Vec<&str> = self.specs.iter().map(|s| s.key).collect();
            return Err(Error::invalid(
                "--set",
                format!("method {} has no hyperparameter {key:?}; valid keys: {valid:?}", self.method),
            ));
        }
        self.values.insert(key.to_string(), value.trim().to_string());
        Ok(())
    }

    /// The value of `key` as text.
    pub fn str(&self, key: &str) -> Result<&str> {
        self.values
            .get(key)
            .map(|s| s.as_str())
            .ok_or_else(|| Error::invalid("hparams", format!("method {} declares no key {key:?}", self.method)))
    }

    /// The value of `key` as a number.
    pub fn f64(&self, key: &str) -> Result<f64> {
        let s = self.str(key)?;
        s.parse().map_err(|_| Error::invalid("--set", format!("{key} = {s:?} is not a number")))
    }

    /// The value of `key` as a non-negative integer.
    pub fn usize(&self, key: &str) -> Result<usize> {
        let s = self.str(key)?;
        s.parse().map_err(|_| Error::invalid("--set", format!("{key} = {s:?} is not a non-negative integer")))
    }

    /// The value of `key` as a boolean (`true/false/1/0/yes/no`).
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.str(key)? {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            s => Err(Error::invalid("--set", format!("{key} = {s:?} is not a boolean"))),
        }
    }

    /// The value of `key` as a comma-separated list of integers (`"3,4"`; empty is an empty list).
    pub fn usize_list(&self, key: &str) -> Result<Vec<usize>> {
        let s = self.str(key)?;
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.trim()
                    .parse()
                    .map_err(|_| Error::invalid("--set", format!("{key} = {s:?} is not a list of integers")))
            })
            .collect()
    }

    /// All `(key, value)` pairs, sorted by key.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The declared specs.
    pub fn specs(&self) -> &[HparamSpec] {
        &self.specs
    }
}
