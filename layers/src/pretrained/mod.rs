//! Trained starts: [`load_pretrained`] loads a Lamina checkpoint (its model entries) or a
//! torchvision/timm safetensors export into a model by name, adapting what a pretrained file
//! usually differs in — a `module.`/`model.` prefix, timm's MobileNetV2 names, another class
//! count in the classifier — and refusing everything else.

mod timm;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use autograd::{Error, Result, Tensor};

use crate::checkpoint::OPTIM_PREFIX;
use crate::state_dict::{compare_state_dict, load_state_dict, load_tensors, Strictness};
use crate::surgery::unwrapped;
use crate::{Linear, Module, ModuleExt};

/// Prefix of a method's training-state entries in a Lamina checkpoint.
pub const METHOD_PREFIX: &str = "method.";

/// How [`load_pretrained`] adapts a file's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PretrainedOptions {
    /// Prefixes stripped when every name of the file carries one and the names do not match
    /// without it (default `["module.", "model."]`: `DataParallel` and wrapper exports).
    pub strip_prefixes: Vec<String>,
}

impl Default for PretrainedOptions {
    fn default() -> Self {
        PretrainedOptions { strip_prefixes: vec!["module.".into(), "model.".into()] }
    }
}

/// What [`load_pretrained`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PretrainedReport {
    /// The file read.
    pub path: PathBuf,
    /// Tensors copied into the model.
    pub loaded: usize,
    /// The prefix removed from every name, if any.
    pub stripped_prefix: Option<String>,
    /// The naming scheme translated, if any (`"timm MobileNetV2 names"`).
    pub renamed: Option<String>,
    /// Classifier tensors left at their fresh initialization because the file's class count
    /// differs.
    pub reinitialized: Vec<String>,
    /// `(classes in the file, classes in the model)` when the classifier was re-initialized.
    pub classes: Option<(usize, usize)>,
    /// File entries deliberately ignored: Lamina training state (`optim.*`, `method.*`) and
    /// BatchNorm `num_batches_tracked` counters the model does not keep.
    pub skipped: Vec<String>,
}

impl std::fmt::Display for PretrainedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loaded {} tensors from {}", self.loaded, self.path.display())?;
        if let Some(p) = &self.stripped_prefix {
            write!(f, " (prefix {p:?} stripped)")?;
        }
        if let Some(r) = &self.renamed {
            write!(f, " (translated from {r})")?;
        }
        if !self.skipped.is_empty() {
            write!(f, "; {} entries skipped (training state, unused counters)", self.skipped.len())?;
        }
        if !self.reinitialized.is_empty() {
            write!(f, "; classifier {} re-initialized", self.reinitialized.join(", "))?;
            if let Some((file, model)) = self.classes {
                write!(f, ": the file has {file} classes, the model {model}")?;
            }
        }
        Ok(())
    }
}

fn err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::invalid("load_pretrained", format!("{}: {what}", path.display()))
}

/// At most `n` names of a list, for messages.
fn first(names: &[String], n: usize) -> String {
    let shown: Vec<&String> = names.iter().take(n).collect();
    let more = names.len().saturating_sub(n);
    if more == 0 {
        format!("{shown:?}")
    } else {
        format!("{shown:?} and {more} more")
    }
}

/// Loads the safetensors file at `path` into `model` by name:
///
/// 1. entries starting with `optim.` or `method.` (a Lamina checkpoint's training state) are
///    skipped;
/// 2. if every remaining name starts with one of `opts.strip_prefixes` and more names match the
///    model without it, it is stripped (prefixes in a row too: `module.model.`);
/// 3. names that look like timm's MobileNetV2 (`conv_stem`, `blocks.S.B.conv_pw`, `conv_head`,
///    `bn2`, `classifier`) are translated to this project's torchvision-style ones;
/// 4. the classifier (the model's last [`Linear`]: `fc`, `linear`, `classifier.1`, `head`) is left
///    at its fresh initialization and reported when the file's differs only in the class count;
/// 5. a `num_batches_tracked` the model does not keep is skipped.
///
/// Anything else missing, unexpected or of another shape is an error listing the names, and so
/// is a tensor of another kind of dtype (integer for a floating-point slot or the reverse; f16,
/// bf16, f32 and f64 convert); nothing is loaded then. A missing file or a directory is an error
/// naming the path.
///
/// ```
/// use layers::pretrained::{load_pretrained, PretrainedOptions};
/// use layers::state_dict::save_tensors;
/// use layers::{models, ModuleExt};
/// let dir = std::env::temp_dir().join(format!("lamina-pretrained-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("imagenet.safetensors");
/// // A 1000-class file saved from a DataParallel model...
/// let source = models::build("resnet18-cifar", 1000, 3, 1).unwrap();
/// let prefixed: Vec<_> = source.state_dict().into_iter().map(|(n, t)| (format!("module.{n}"), t)).collect();
/// save_tensors(&path, &prefixed, &Default::default()).unwrap();
/// // ...into a 10-class model: everything but the classifier is loaded.
/// let net = models::build("resnet18-cifar", 10, 3, 0).unwrap();
/// let report = load_pretrained(net.as_ref(), &path, &PretrainedOptions::default()).unwrap();
/// assert_eq!(report.loaded, net.state_dict().len() - 2);
/// assert_eq!(report.reinitialized, ["fc.weight", "fc.bias"]);
/// assert!(report.to_string().contains("prefix \"module.\" stripped"));
/// assert!(report.to_string().contains("the file has 1000 classes, the model 10"));
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn load_pretrained(model: &dyn Module, path: &Path, opts: &PretrainedOptions) -> Result<PretrainedReport> {
    if path.is_dir() {
        return Err(err(path, "is a directory, not a safetensors file"));
    }
    if !path.exists() {
        return Err(err(path, "no such file"));
    }
    let file = load_tensors(path)?;
    let mut report = PretrainedReport { path: path.to_path_buf(), ..Default::default() };
    let (training, mut entries): (Vec<_>, Vec<_>) =
        file.tensors.into_iter().partition(|(n, _)| n.starts_with(OPTIM_PREFIX) || n.starts_with(METHOD_PREFIX));
    report.skipped.extend(training.into_iter().map(|(n, _)| n));

    let model_sd = model.state_dict();
    let model_names: HashSet<&str> = model_sd.iter().map(|(n, _)| n.as_str()).collect();
    let matching =
        |entries: &[(String, Tensor)]| entries.iter().filter(|(n, _)| model_names.contains(n.as_str())).count();
    // Strip while every name carries a prefix; keep the stage where the most names match.
    let (mut stripped, mut candidate, mut prefix) = (String::new(), entries.clone(), String::new());
    let mut best = matching(&entries);
    // Each round shortens every name by a non-empty prefix, so the loop ends.
    while let Some(p) = opts
        .strip_prefixes
        .iter()
        .find(|p| !p.is_empty() && !candidate.is_empty() && candidate.iter().all(|(n, _)| n.starts_with(p.as_str())))
    {
        candidate = candidate.into_iter().map(|(n, t)| (n[p.len()..].to_string(), t)).collect();
        prefix.push_str(p);
        if matching(&candidate) > best {
            best = matching(&candidate);
            stripped = prefix.clone();
            entries = candidate.clone();
        }
    }
    report.stripped_prefix = (!stripped.is_empty()).then_some(stripped);

    if matching(&entries) < entries.len() && timm::looks_like_timm_mobilenetv2(entries.iter().map(|(n, _)| n.as_str()))
    {
        let stages = timm::stage_blocks(entries.iter().map(|(n, _)| n.as_str()))
            .ok_or_else(|| err(path, "timm MobileNetV2 names with malformed block numbers"))?;
        for (n, _) in entries.iter_mut() {
            if let Some(ours) = timm::from_timm(n, &stages) {
                *n = ours;
            }
        }
        report.renamed = Some("timm MobileNetV2 names".into());
    }

    entries.retain(|(n, _)| {
        let unused = n.ends_with(".num_batches_tracked") && !model_names.contains(n.as_str());
        if unused {
            report.skipped.push(n.clone());
        }
        !unused
    });

    if let Some((names, classes)) = classifier_to_reinitialize(model, &model_sd, &entries) {
        entries.retain(|(n, _)| !names.contains(n));
        report.reinitialized = names;
        report.classes = Some(classes);
    }

    let plan = compare_state_dict(model, &entries);
    let missing: Vec<String> = plan.missing.into_iter().filter(|n| !report.reinitialized.contains(n)).collect();
    if !missing.is_empty() || !plan.unexpected.is_empty() || !plan.mismatched.is_empty() {
        let mut what = Vec::new();
        if !missing.is_empty() {
            what.push(format!("{} missing from the file: {}", missing.len(), first(&missing, 8)));
        }
        if !plan.unexpected.is_empty() {
            what.push(format!("{} not in the model: {}", plan.unexpected.len(), first(&plan.unexpected, 8)));
        }
        for (n, m, f) in plan.mismatched.iter().take(8) {
            what.push(format!("{n}: model {m:?}, file {f:?}"));
        }
        if plan.mismatched.len() > 8 {
            what.push(format!("{} more shape mismatches", plan.mismatched.len() - 8));
        }
        return Err(err(path, format!("the file does not fit the model: {}", what.join("; "))));
    }
    let loaded = load_state_dict(model, &entries, Strictness::Lenient).map_err(|e| err(path, e))?;
    report.loaded = loaded.loaded.len();
    Ok(report)
}

/// The model's classifier tensors that the file holds for another class count (else `None`),
/// with `(classes in the file, classes in the model)`.
fn classifier_to_reinitialize(
    model: &dyn Module,
    model_sd: &[(String, Tensor)],
    entries: &[(String, Tensor)],
) -> Option<(Vec<String>, (usize, usize))> {
    let path = model
        .named_modules()
        .into_iter()
        .filter(|(_, m)| unwrapped(*m).downcast_ref::<Linear>().is_some())
        .map(|(p, _)| p)
        .next_back()?;
    let name = |leaf: &str| if path.is_empty() { leaf.to_string() } else { format!("{path}.{leaf}") };
    let shape = |list: &[(String, Tensor)], n: &str| list.iter().find(|(k, _)| k == n).map(|(_, t)| t.shape().to_vec());
    let (weight, bias) = (name("weight"), name("bias"));
    let (ours, theirs) = (shape(model_sd, &weight)?, shape(entries, &weight)?);
    if ours.len() != 2 || theirs.len() != 2 || ours[1] != theirs[1] || ours[0] == theirs[0] {
        return None;
    }
    let mut names = vec![weight];
    if shape(model_sd, &bias).is_some() && shape(entries, &bias) == Some(vec![theirs[0]]) {
        names.push(bias);
    }
    Some((names, (theirs[0], ours[0])))
}
