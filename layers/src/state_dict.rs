//! Saving and loading named tensors as safetensors: a module's `state_dict`, checkpoints with
//! extra entries (optimizer state) and string metadata, and PyTorch/torchvision/timm files.
//!
//! Writes are atomic (a temporary file beside the target, then a rename), so a crash never leaves
//! a half-written checkpoint under the final name. Loading reads the file into memory (not a
//! memory map: a mapped file truncated by another process while being read kills the reader with
//! SIGBUS, and every tensor is copied out anyway), parses it with [`parse_tensors`] (which never
//! panics, whatever the bytes), and reports missing, unexpected and shape-mismatched names
//! ([`LoadReport`]) instead of ignoring them; [`Strictness::Strict`] turns any of them into an
//! error that lists them all.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use autograd::backends::CpuStorage;
use autograd::{DType, Error, Result, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::{Module, ModuleExt};

/// Named tensors read from a file, in file order, with the file's string metadata.
pub struct TensorFile {
    /// `(name, tensor)` pairs (host tensors).
    pub tensors: Vec<(String, Tensor)>,
    /// The `__metadata__` map of the file (empty when absent).
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// The tensor called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

fn io_err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::invalid("safetensors", format!("{}: {what}", path.display()))
}

fn to_dtype(d: DType) -> Option<Dtype> {
    Some(match d {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::U32 => Dtype::U32,
        DType::U8 => Dtype::U8,
        DType::I8 => Dtype::I8,
    })
}

fn host_bytes(t: &Tensor) -> Result<Vec<u8>> {
    Ok(match t.to_host()? {
        CpuStorage::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        CpuStorage::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        CpuStorage::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        CpuStorage::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        CpuStorage::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        CpuStorage::U8(v) => v,
        CpuStorage::I8(v) => v.iter().map(|&x| x as u8).collect(),
    })
}

fn chunks<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes.chunks_exact(N).map(|c| f(c.try_into().expect("exact chunk"))).collect()
}

fn from_view(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Tensor> {
    let b = view.data();
    let storage = match view.dtype() {
        Dtype::F32 => CpuStorage::F32(chunks(b, f32::from_le_bytes)),
        Dtype::F64 => CpuStorage::F64(chunks(b, f64::from_le_bytes)),
        Dtype::I64 => CpuStorage::I64(chunks(b, i64::from_le_bytes)),
        Dtype::I32 => CpuStorage::I32(chunks(b, i32::from_le_bytes)),
        Dtype::U32 => CpuStorage::U32(chunks(b, u32::from_le_bytes)),
        Dtype::U8 => CpuStorage::U8(b.to_vec()),
        Dtype::I8 => CpuStorage::I8(b.iter().map(|&x| x as i8).collect()),
        Dtype::F16 => CpuStorage::F32(chunks(b, |c| f16_to_f32(u16::from_le_bytes(c)))),
        Dtype::BF16 => CpuStorage::F32(chunks(b, |c| f32::from_bits((u16::from_le_bytes(c) as u32) << 16))),
        other => return Err(io_err(path, format!("tensor {name:?} has unsupported dtype {other:?}"))),
    };
    Tensor::from_host(&storage, view.shape(), autograd::Device::Cpu)
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Writes named tensors and string metadata to `path` atomically.
///
/// ```
/// use layers::state_dict::{load_tensors, save_tensors};
/// use autograd::Tensor;
/// let dir = std::env::temp_dir().join(format!("lamina-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("t.safetensors");
/// let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// save_tensors(&path, &[("a".into(), t)], &Default::default()).unwrap();
/// let back = load_tensors(&path).unwrap();
/// assert_eq!(back.get("a").unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn save_tensors(path: &Path, tensors: &[(String, Tensor)], metadata: &HashMap<String, String>) -> Result<()> {
    let bytes = serialize_tensors(tensors, metadata).map_err(|e| io_err(path, e))?;
    write_atomic(path, &bytes)
}

/// The bytes of the safetensors file [`save_tensors`] writes (to measure or send a file
/// without writing it).
///
/// ```
/// use layers::state_dict::serialize_tensors;
/// use autograd::Tensor;
/// let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// let bytes = serialize_tensors(&[("a".into(), t)], &Default::default()).unwrap();
/// assert!(bytes.len() > 8 + 8); // header length, JSON header, 8 bytes of data
/// ```
pub fn serialize_tensors(tensors: &[(String, Tensor)], metadata: &HashMap<String, String>) -> Result<Vec<u8>> {
    let bad = |what: String| Error::invalid("safetensors", what);
    let mut seen = std::collections::HashSet::new();
    let mut data = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(bad(format!("the name {name:?} appears twice")));
        }
        let dtype = to_dtype(t.dtype()).expect("every dtype maps");
        data.push((name.clone(), dtype, t.shape().to_vec(), host_bytes(t)?));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let info = (!metadata.is_empty()).then(|| metadata.clone());
    safetensors::serialize(views, info).map_err(|e| bad(e.to_string()))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| io_err(path, "not a file path"))?;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, format!("cannot write: {e}"))
    })
}

/// Reads every tensor of a safetensors file and its metadata. A missing, truncated or corrupt
/// file is an error naming the file and what was wrong.
pub fn load_tensors(path: &Path) -> Result<TensorFile> {
    if path.is_dir() {
        return Err(io_err(path, "is a folder, not a safetensors file"));
    }
    let bytes = std::fs::read(path).map_err(|e| io_err(path, format!("cannot read: {e}")))?;
    parse_tensors(&bytes, path)
}

/// Parses the bytes of a safetensors file (`path` only names the source in errors): every
/// tensor, in file order, as a host tensor, and the metadata. Any input gives a tensor file or
/// an error, never a panic (fuzzed in `layers/tests/fuzz_safetensors.rs`).
pub fn parse_tensors(bytes: &[u8], path: &Path) -> Result<TensorFile> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| io_err(path, format!("corrupt header: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| io_err(path, format!("corrupt file: {e}")))?;
    let mut names: Vec<(usize, String)> =
        st.names().into_iter().map(|n| (meta.info(n).map(|i| i.data_offsets.0).unwrap_or(0), n.to_string())).collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for (_, name) in names {
        let view = st.tensor(&name).map_err(|e| io_err(path, e))?;
        tensors.push((name.clone(), from_view(path, &name, &view)?));
    }
    Ok(TensorFile { tensors, metadata: meta.metadata().clone().unwrap_or_default() })
}

/// How [`load_state_dict`] treats names that do not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// Any missing, unexpected or shape-mismatched name is an error and nothing is loaded.
    Strict,
    /// Load what matches and report the rest.
    Lenient,
}

/// What [`load_state_dict`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Names loaded.
    pub loaded: Vec<String>,
    /// Names the module has and the file lacks.
    pub missing: Vec<String>,
    /// Names the file has and the module lacks.
    pub unexpected: Vec<String>,
    /// `(name, shape in the module, shape in the file)` for names whose shapes differ.
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} loaded", self.loaded.len())?;
        if !self.missing.is_empty() {
            write!(f, "; missing: {:?}", self.missing)?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; unexpected: {:?}", self.unexpected)?;
        }
        for (n, m, t) in &self.mismatched {
            write!(f, "; {n}: module has {m:?}, file has {t:?}")?;
        }
        Ok(())
    }
}

type Setter = Box<dyn Fn(&Tensor) -> Result<()>>;

/// A parameter or buffer slot of a module: its name, shape and dtype, and how to write it.
struct Slot {
    name: String,
    shape: Vec<usize>,
    dtype: DType,
    set: Setter,
}

fn slots(module: &dyn Module) -> Vec<Slot> {
    let mut out = Vec::new();
    for (name, p) in module.named_parameters() {
        let leaf = p.leaf();
        let (shape, dtype) = (leaf.shape().to_vec(), leaf.dtype());
        out.push(Slot { name, shape, dtype, set: Box::new(move |t: &Tensor| p.set_data(t)) });
    }
    for (name, b) in module.named_buffers() {
        let value = b.get();
        let (shape, dtype) = (value.shape().to_vec(), value.dtype());
        out.push(Slot { name, shape, dtype, set: Box::new(move |t: &Tensor| b.set_data(t)) });
    }
    out
}

/// Matches named tensors against the slots: the report (with `loaded` the names that would load)
/// and the pairs to copy.
fn plan<'a>(slots: &'a [Slot], tensors: &'a [(String, Tensor)]) -> (LoadReport, Vec<(&'a Slot, &'a Tensor)>) {
    let mut report = LoadReport::default();
    let file: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let known: std::collections::HashSet<&str> = slots.iter().map(|s| s.name.as_str()).collect();
    report.unexpected = tensors.iter().filter(|(n, _)| !known.contains(n.as_str())).map(|(n, _)| n.clone()).collect();
    let mut todo = Vec::new();
    for slot in slots {
        match file.get(slot.name.as_str()) {
            None => report.missing.push(slot.name.clone()),
            Some(t) if t.shape() != &slot.shape[..] => {
                report.mismatched.push((slot.name.clone(), slot.shape.clone(), t.shape().to_vec()))
            }
            Some(t) => {
                report.loaded.push(slot.name.clone());
                todo.push((slot, *t));
            }
        }
    }
    (report, todo)
}

/// What [`load_state_dict`] would do with `tensors`, without loading anything: `loaded` lists
/// the names that would be copied.
///
/// ```
/// use layers::state_dict::compare_state_dict;
/// use layers::{Linear, ModuleExt};
/// let fc = Linear::new(3, 2, true);
/// let mut sd = fc.state_dict();
/// sd.pop();
/// let report = compare_state_dict(&fc, &sd);
/// assert_eq!((report.loaded, report.missing), (vec!["weight".to_string()], vec!["bias".to_string()]));
/// ```
pub fn compare_state_dict(module: &dyn Module, tensors: &[(String, Tensor)]) -> LoadReport {
    plan(&slots(module), tensors).0
}

/// Copies named tensors into a module's parameters and buffers (values are converted to each
/// slot's device, and between f32 and f64). An integer tensor for a floating-point slot or a
/// floating-point tensor for an integer one (BatchNorm's `num_batches_tracked`) is an error
/// naming the tensor, whatever the strictness, and nothing is loaded.
///
/// ```
/// use layers::state_dict::{load_state_dict, Strictness};
/// use layers::{Linear, ModuleExt};
/// use autograd::Tensor;
/// let a = Linear::new(3, 2, true);
/// let b = Linear::new(3, 2, true);
/// let report = load_state_dict(&b, &a.state_dict(), Strictness::Strict).unwrap();
/// assert!(report.is_clean());
/// assert_eq!(a.weight.leaf().to_vec::<f32>().unwrap(), b.weight.leaf().to_vec::<f32>().unwrap());
/// let err = load_state_dict(&b, &[("nope".into(), Tensor::zeros(&[1]))], Strictness::Strict).unwrap_err();
/// assert!(err.to_string().contains("nope"));
/// let ints = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
/// let err = load_state_dict(&b, &[("bias".into(), ints)], Strictness::Lenient).unwrap_err();
/// assert!(err.to_string().contains("\"bias\""));
/// ```
pub fn load_state_dict(
    module: &dyn Module,
    tensors: &[(String, Tensor)],
    strictness: Strictness,
) -> Result<LoadReport> {
    let slots = slots(module);
    let (report, todo) = plan(&slots, tensors);
    for (slot, t) in &todo {
        if slot.dtype.is_float() != t.dtype().is_float() {
            return Err(Error::invalid(
                "load_state_dict",
                format!("tensor {:?} is {:?} but the module's is {:?}", slot.name, t.dtype(), slot.dtype),
            ));
        }
    }
    if strictness == Strictness::Strict && !report.is_clean() {
        return Err(Error::invalid("load_state_dict", format!("the state does not match the module: {report}")));
    }
    for (slot, t) in todo {
        (slot.set)(t)?;
    }
    Ok(report)
}

/// Saves a module's `state_dict` to `path` atomically.
pub fn save_module(module: &dyn Module, path: &Path) -> Result<()> {
    save_tensors(path, &module.state_dict(), &HashMap::new())
}

/// Loads a safetensors file (a Lamina save or a PyTorch/torchvision/timm export with the same
/// names) into a module.
pub fn load_module(module: &dyn Module, path: &Path, strictness: Strictness) -> Result<LoadReport> {
    let file = load_tensors(path)?;
    load_state_dict(module, &file.tensors, strictness)
        .map_err(|e| Error::invalid("load_module", format!("{}: {e}", path.display())))
}
