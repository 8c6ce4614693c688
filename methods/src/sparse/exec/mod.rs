//! The sparse execution path: the inference form of every pruning method.

use autograd::{Error, Result};
use layers::Module;

use super::method::SparseConfig;
use crate::registry::RunInfo;

/// Whether masked layers run on the sparse kernels in the inference form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecChoice {
    /// Per layer, whichever of the sparse and the dense path measured faster.
    Auto,
    /// Always the sparse kernels.
    Always,
    /// Never (no inference form: the trained model is evaluated).
    Never,
}

impl ExecChoice {
    /// Parses `auto`, `always` or `never`.
    pub fn parse(s: &str) -> Result<ExecChoice> {
        match s.trim() {
            "auto" => Ok(ExecChoice::Auto),
            "always" => Ok(ExecChoice::Always),
            "never" => Ok(ExecChoice::Never),
            other => Err(Error::invalid("--set", format!("sparse_exec = {other:?}; expected auto, always or never"))),
        }
    }
}

/// The decisions of the inference form, kept across evaluations.
#[derive(Default)]
pub struct ExecCache {}

impl ExecCache {
    /// The inference form of `model` (`None`: evaluate the trained model).
    pub fn form(
        &mut self,
        _model: &dyn Module,
        _run: &RunInfo,
        _cfg: &SparseConfig,
    ) -> Result<Option<Box<dyn Module>>> {
        Ok(None)
    }

    /// Summary lines on the execution path.
    pub fn summary_lines(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}
