//! Per-GPU state: the context, its one stream, the memory pool, cuBLAS, and the module cache.
//!
//! A device is opened once per process (on first use of `Device::Cuda(n)`) and kept for the
//! process's lifetime in a registry. Everything it runs is ordered on its single stream, so
//! buffers need no events: a buffer freed on the stream (the driver's stream-ordered allocator,
//! whose pool keeps freed memory for reuse) cannot be reused before the kernels that read it ran.

use super::compile::{self, KernelSource};
use crate::{Error, Result};
use cudarc::driver::{sys, CudaContext, CudaFunction, CudaModule, CudaStream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Turns a driver-side error into a backend error naming what was being done.
pub(crate) fn driver_err(what: &str) -> impl FnOnce(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::Backend(format!("CUDA driver: {what}: {e}"))
}

/// Whether a CUDA driver is installed and reports at least one GPU. Never panics: without a
/// driver (no `libcuda`) it returns false.
pub fn cuda_is_available() -> bool {
    cuda_device_count() > 0
}

/// The number of CUDA GPUs the driver reports (0 without a driver).
pub fn cuda_device_count() -> usize {
    std::panic::catch_unwind(|| {
        // SAFETY: only probes whether the driver library can be opened.
        if !unsafe { sys::is_culib_present() } {
            return 0;
        }
        CudaContext::device_count().map(|n| n.max(0) as usize).unwrap_or(0)
    })
    .unwrap_or(0)
}

/// An opened GPU.
pub(crate) struct DeviceState {
    /// The device ordinal.
    pub(crate) ordinal: usize,
    /// The (primary) context.
    pub(crate) ctx: Arc<CudaContext>,
    /// The stream every operation on this device is ordered on.
    pub(crate) stream: Arc<CudaStream>,
    /// The architecture kernels are compiled for, e.g. `sm_90`.
    pub(crate) arch: String,
    /// Whether the stream-ordered allocator (memory pools) is available.
    pub(crate) async_alloc: bool,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<(&'static str, String), CudaFunction>>,
    pub(crate) blas: Mutex<Option<cudarc::cublas::CudaBlas>>,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceState(cuda:{}, {})", self.ordinal, self.arch)
    }
}

fn registry() -> &'static Mutex<HashMap<usize, Arc<DeviceState>>> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<DeviceState>>>> = OnceLock::new();
    DEVICES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The opened device `ordinal`, opening it on first use.
pub(crate) fn device(ordinal: usize) -> Result<Arc<DeviceState>> {
    let mut reg = registry().lock().map_err(|_| Error::Backend("CUDA device registry poisoned".into()))?;
    if let Some(d) = reg.get(&ordinal) {
        return Ok(d.clone());
    }
    let count = cuda_device_count();
    if ordinal >= count {
        return Err(Error::DeviceUnavailable(if count == 0 {
            format!("cuda:{ordinal}: no CUDA driver or GPU was found")
        } else {
            format!("cuda:{ordinal}: only {count} CUDA device(s) present")
        }));
    }
    let d = Arc::new(DeviceState::open(ordinal)?);
    reg.insert(ordinal, d.clone());
    Ok(d)
}

impl DeviceState {
    fn open(ordinal: usize) -> Result<Self> {
        let ctx = CudaContext::new(ordinal).map_err(driver_err("opening the device"))?;
        // One stream orders everything, so the per-buffer events cudarc can track are not needed.
        // SAFETY: no buffers exist on this context yet.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(driver_err("creating a stream"))?;
        let (major, minor) = ctx.compute_capability().map_err(driver_err("reading the compute capability"))?;
        let async_alloc = ctx.has_async_alloc();
        if async_alloc {
            keep_pool_memory(&ctx)?;
        }
        Ok(DeviceState {
            ordinal,
            ctx,
            stream,
            arch: format!("sm_{major}{minor}"),
            async_alloc,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            blas: Mutex::new(None),
        })
    }

    /// Makes this device's context current on the calling thread.
    pub(crate) fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(driver_err("binding the context"))
    }

    /// The kernel `name` of `source`'s module, compiling and loading the module on first use.
    pub(crate) fn function(&self, source: &KernelSource, name: &str) -> Result<CudaFunction> {
        let key = (source.name, name.to_string());
        if let Some(f) = self.functions.lock().expect("function cache").get(&key) {
            return Ok(f.clone());
        }
        let module = self.module(source)?;
        let f = module
            .load_function(name)
            .map_err(|e| Error::Backend(format!("kernel {name} not found in {}.cu: {e}", source.name)))?;
        self.functions.lock().expect("function cache").insert(key, f.clone());
        Ok(f)
    }

    fn module(&self, source: &KernelSource) -> Result<Arc<CudaModule>> {
        let mut modules = self.modules.lock().expect("module cache");
        if let Some(m) = modules.get(source.name) {
            return Ok(m.clone());
        }
        let ptx = compile::compile(source, &self.arch, true)?;
        let m =
            self.ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx)).map_err(driver_err("loading a compiled module"))?;
        modules.insert(source.name, m.clone());
        Ok(m)
    }

    /// Runs `f` with this device's cuBLAS handle (created on first use, bound to the stream).
    pub(crate) fn with_blas<R>(&self, f: impl FnOnce(&cudarc::cublas::CudaBlas) -> Result<R>) -> Result<R> {
        let mut blas = self.blas.lock().map_err(|_| Error::Backend("cuBLAS handle poisoned".into()))?;
        if blas.is_none() {
            // SAFETY: only probes whether the library can be opened.
            if !std::panic::catch_unwind(|| unsafe { cudarc::cublas::sys::is_culib_present() }).unwrap_or(false) {
                return Err(Error::DeviceUnavailable("the cuBLAS library (libcublas) cannot be loaded".into()));
            }
            let h = cudarc::cublas::CudaBlas::new(self.stream.clone())
                .map_err(|e| Error::Backend(format!("cuBLAS: creating a handle: {e:?}")))?;
            *blas = Some(h);
        }
        f(blas.as_ref().expect("created above"))
    }

    /// Waits for everything queued on the stream.
    pub(crate) fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(driver_err("synchronizing the stream"))
    }
}

/// Lets the default memory pool keep freed memory instead of returning it to the driver at each
/// synchronization, so the stream-ordered allocator works as a caching allocator.
fn keep_pool_memory(ctx: &CudaContext) -> Result<()> {
    let mut pool = std::mem::MaybeUninit::uninit();
    let mut threshold: u64 = u64::MAX;
    // SAFETY: the device handle is valid, `pool` is written by the driver before use, and the
    // attribute value is a u64 as the release-threshold attribute expects.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(pool.as_mut_ptr(), ctx.cu_device())
            .result()
            .map_err(driver_err("reading the default memory pool"))?;
        sys::cuMemPoolSetAttribute(
            pool.assume_init(),
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut std::ffi::c_void,
        )
        .result()
        .map_err(driver_err("setting the memory pool's release threshold"))?;
    }
    Ok(())
}
