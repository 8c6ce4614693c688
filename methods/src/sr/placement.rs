//! Where the SR block and the regularizers go: the output of a model's stage `M`
//! ([`stage_output`]), the insertion of a module built for the shape of the maps it will see
//! ([`insert_at`], [`insert_at_stage_output`]), and its removal ([`remove_inserted`]).

use std::sync::Mutex;

use autograd::{no_grad, Error, Result, Tensor};
use layers::surgery::{insert_after, stage_scopes, unwrapped, Around};
use layers::{Identity, MaxPool2d, Mode, Module, ModuleExt};

/// The module path whose output is the output of stage `stage` (1-based) of `model`:
///
/// - ResNets: `layer<stage>` (the last block's output, after its addition and ReLU);
/// - VGG: the ReLU after the stage's last convolution, i.e. the stage's maps at the stage's own
///   resolution, before the max-pool that ends it (the same resolution as a ResNet's stage of
///   the same index: VGG-16's stage 4 output is `features.32`, 512x4x4 for 32x32 inputs);
/// - MobileNetV2: the stage's last inverted-residual block;
/// - other models with stages ([`stage_scopes`]): the stage's last module.
///
/// ```
/// use methods::sr::stage_output;
/// use layers::models;
/// let vgg = models::build("vgg16-bn", 10, 3, 0).unwrap();
/// assert_eq!(stage_output(vgg.as_ref(), 4).unwrap(), "features.32");
/// let r18 = models::build("resnet18-cifar", 10, 3, 0).unwrap();
/// assert_eq!(stage_output(r18.as_ref(), 3).unwrap(), "layer3");
/// assert!(stage_output(r18.as_ref(), 5).unwrap_err().to_string().contains("1..=4"));
/// ```
pub fn stage_output(model: &dyn Module, stage: usize) -> Result<String> {
    let scopes = stage_scopes(model, &[stage])?;
    let last = scopes.last().ok_or_else(|| Error::invalid("stage_output", format!("stage {stage} is empty")))?;
    let Some((parent_path, index)) = last.rsplit_once('.') else { return Ok(last.clone()) };
    let is_conv = model.get_module(last).is_some_and(|m| unwrapped(m).downcast_ref::<layers::Conv2d>().is_some());
    if !is_conv {
        return Ok(last.clone());
    }
    // VGG: the stage lists convolutions; its output is the last module before the next max-pool.
    let parent = model.get_module(parent_path).expect("the parent of a module path exists");
    let kids = parent.children();
    let start = kids.iter().position(|(n, _)| n == index).expect("the child is listed by its parent");
    let mut out = last.clone();
    for (name, m) in &kids[start..] {
        if unwrapped(*m).downcast_ref::<MaxPool2d>().is_some() {
            break;
        }
        out = format!("{parent_path}.{name}");
    }
    Ok(out)
}

/// Records the shape of what it sees and passes it on.
struct ShapeProbe(Mutex<Option<Vec<usize>>>);

impl Module for ShapeProbe {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        *self.0.lock().expect("not poisoned") = Some(x.shape().to_vec());
        Ok(x.clone())
    }
}

/// Runs `model` (evaluation mode, no gradient) on one zero image of `input` `[C, H, W]` with a
/// probe inserted after `path` under the name `name`, and returns the `[C, H, W]` of the maps
/// there; the probe stays in place (named `name`) for the caller to replace.
fn probe(model: &mut dyn Module, path: &str, name: &str, input: [usize; 3]) -> Result<[usize; 3]> {
    insert_after(model, path, name, Box::new(ShapeProbe(Mutex::new(None))))?;
    let x = Tensor::zeros(&[1, input[0], input[1], input[2]]);
    no_grad(|| model.forward(&x, Mode::Eval))?;
    let at = format!("{path}.{name}");
    let probe = model.get_module(&at).and_then(|m| m.downcast_ref::<ShapeProbe>()).expect("inserted above");
    let shape = probe.0.lock().expect("not poisoned").clone();
    match shape.as_deref() {
        Some(&[_, c, h, w]) => Ok([c, h, w]),
        other => Err(Error::invalid(
            "sr placement",
            format!("the output of {path:?} is {other:?}, not a [B, C, H, W] feature map"),
        )),
    }
}

/// Inserts `make([C, H, W])` after the module at `path`, named `name`, where `[C, H, W]` is the
/// shape of the maps there for inputs `input`; returns that shape.
pub fn insert_at(
    model: &mut dyn Module,
    path: &str,
    name: &str,
    input: [usize; 3],
    make: impl FnOnce([usize; 3]) -> Result<Box<dyn Module>>,
) -> Result<[usize; 3]> {
    let shape = probe(model, path, name, input)?;
    model.replace_module(&format!("{path}.{name}"), make(shape)?)?;
    Ok(shape)
}

/// Inserts `make([C, H, W])` after the output of stage `stage` ([`stage_output`]); returns the
/// path of the stage output and the shape.
pub fn insert_at_stage_output(
    model: &mut dyn Module,
    stage: usize,
    name: &str,
    input: [usize; 3],
    make: impl FnOnce([usize; 3]) -> Result<Box<dyn Module>>,
) -> Result<(String, [usize; 3])> {
    let path = stage_output(model, stage)?;
    let shape = insert_at(model, &path, name, input, make)?;
    Ok((path, shape))
}

/// Removes the module `name` that [`insert_after`] or [`layers::surgery::insert_before`] put
/// at `path` and returns it; the wrapper goes too when nothing else is inserted there (the
/// model is then exactly as before the insertion). Nothing inserted under that name is an error
/// that leaves the model unchanged.
///
/// ```
/// use methods::sr::remove_inserted;
/// use layers::surgery::insert_after;
/// use layers::{models, Dropout2d, Module, ModuleExt};
/// let mut net = models::build("resnet8", 10, 3, 0).unwrap();
/// let before: Vec<String> = net.named_modules().into_iter().map(|(n, _)| n).collect();
/// insert_after(net.as_mut(), "layer2", "drop", Box::new(Dropout2d::new(0.1).unwrap())).unwrap();
/// let removed = remove_inserted(net.as_mut(), "layer2", "drop").unwrap();
/// assert_eq!(removed.type_name(), "Dropout2d");
/// let after: Vec<String> = net.named_modules().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(before, after);
/// assert!(remove_inserted(net.as_mut(), "layer2", "drop").is_err());
/// ```
pub fn remove_inserted(model: &mut dyn Module, path: &str, name: &str) -> Result<Box<dyn Module>> {
    let present = model
        .get_module(path)
        .and_then(|m| m.downcast_ref::<Around>())
        .is_some_and(|a| a.before.iter().chain(&a.after).any(|(n, _)| n == name));
    if !present {
        return Err(Error::invalid("remove_inserted", format!("no module named {name:?} is inserted at {path:?}")));
    }
    let old = model.replace_module(path, Box::new(Identity))?;
    let mut around = *old.into_any().downcast::<Around>().expect("checked to be an Around");
    let mut removed = None;
    for list in [&mut around.before, &mut around.after] {
        if let Some(i) = list.iter().position(|(n, _)| n == name) {
            removed = Some(list.remove(i).1);
            break;
        }
    }
    let restored: Box<dyn Module> =
        if around.before.is_empty() && around.after.is_empty() { around.inner } else { Box::new(around) };
    model.replace_module(path, restored)?;
    Ok(removed.expect("checked to be present"))
}
