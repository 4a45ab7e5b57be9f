//! Python bindings of prospect: the native module `prospect._prospect` behind the `prospect`
//! package (`python/prospect/__init__.py` holds the documented API). Thin: every computation is
//! the library's; this file converts arrays, configs and errors, and releases the GIL while the
//! library works.

use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use prospect::checkpoint::{self, MODEL_FILE};
use prospect::config::{self, RunConfig};
use prospect::data::{DataError, Split};
use prospect::train::{self, Run, StepTrainer, CONFIG_FILE};
use prospect::{experiments, Error, Net, Tensor};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::{Path, PathBuf};

/// A library error as the Python exception of its kind, with the same message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::Config { .. } | Error::Shape { .. } | Error::Checkpoint { .. } => {
            PyValueError::new_err(msg)
        }
        Error::NonFinite { .. } | Error::Backend(_) => PyRuntimeError::new_err(msg),
        Error::Data(DataError::Missing { .. }) => PyFileNotFoundError::new_err(msg),
        Error::Data(DataError::Io { source, .. }) | Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            PyFileNotFoundError::new_err(msg)
        }
        Error::Io { .. } | Error::Data(DataError::Io { .. }) => PyOSError::new_err(msg),
        Error::Data(_) => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// A Python value (dict, list, str, number, bool) as a TOML value; `key` names it in errors.
fn to_toml(v: &Bound<'_, PyAny>, key: &str) -> PyResult<toml::Value> {
    if v.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(toml::Value::Integer(v.extract()?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(v.extract()?));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, val) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| PyValueError::new_err(format!("config `{key}`: keys must be str")))?;
            let path = if key.is_empty() { k.clone() } else { format!("{key}.{k}") };
            t.insert(k, to_toml(&val, &path)?);
        }
        return Ok(toml::Value::Table(t));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
        let vals = items
            .iter()
            .enumerate()
            .map(|(i, x)| to_toml(x, &format!("{key}[{i}]")))
            .collect::<PyResult<_>>()?;
        return Ok(toml::Value::Array(vals));
    }
    Err(PyValueError::new_err(format!(
        "config `{key}`: cannot use a value of type {} (use dict, list, str, int, float or bool)",
        v.get_type().name()?
    )))
}

/// Resolves a config the way `prospect train` does: preset, then a TOML file or a dict
/// merged over it, then `key=value` overrides.
fn resolve(
    preset: Option<&str>,
    config: Option<&Bound<'_, PyAny>>,
    sets: Vec<String>,
) -> PyResult<RunConfig> {
    match config {
        None => config::resolve(preset, None, &sets).map_err(py_err),
        Some(c) if c.is_instance_of::<PyDict>() => {
            let toml::Value::Table(t) = to_toml(c, "")? else { unreachable!("a dict") };
            config::resolve_table(preset, t, &sets).map_err(py_err)
        }
        Some(c) => {
            let path: PathBuf = c.extract().map_err(|_| {
                PyValueError::new_err("config must be a dict or the path of a TOML file")
            })?;
            if !path.is_file() {
                return Err(PyFileNotFoundError::new_err(format!(
                    "config file {} not found",
                    path.display()
                )));
            }
            config::resolve(preset, Some(&path), &sets).map_err(py_err)
        }
    }
}

/// A `float32` C-contiguous 2-D array as a tensor (one copy), its name in errors.
fn tensor(a: &Bound<'_, PyAny>, name: &str) -> PyResult<Tensor<f32>> {
    let arr: PyReadonlyArray2<'_, f32> = a.extract().map_err(|_| {
        let (dtype, shape) = match a.getattr("dtype").and_then(|d| d.str()) {
            Ok(d) => (d.to_string(), a.getattr("shape").map(|s| s.to_string()).unwrap_or_default()),
            Err(_) => (a.get_type().to_string(), String::new()),
        };
        PyValueError::new_err(format!(
            "{name} must be a 2-D numpy array of dtype float32, got {dtype} {shape}"
        ))
    })?;
    let [rows, cols] = [arr.shape()[0], arr.shape()[1]];
    let data = match arr.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => arr.as_array().iter().copied().collect(),
    };
    Ok(Tensor::from_vec(rows, cols, data))
}

/// A tensor as a new `[rows, cols]` float32 array (the buffer is handed over, not copied).
fn array<'py>(py: Python<'py>, t: Tensor<f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let [r, c] = t.shape();
    t.into_vec().into_pyarray(py).reshape([r, c])
}

/// `net`'s answers for the array `x`, with the GIL released.
fn predict_array<'py>(
    py: Python<'py>,
    net: &Net<f32>,
    cfg: &RunConfig,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let x = tensor(x, "x")?;
    let out = py
        .detach(|| train::predict(net, &x, cfg.train.eval_batch_size, &cfg.inference))
        .map_err(py_err)?;
    array(py, out)
}

/// Trains a run into `out` (the CLI's `prospect train`); returns nothing, the run directory
/// holds everything.
#[pyfunction]
#[pyo3(signature = (out, preset=None, config=None, sets=Vec::new(), progress=false))]
fn train_run(
    py: Python<'_>,
    out: PathBuf,
    preset: Option<String>,
    config: Option<Bound<'_, PyAny>>,
    sets: Vec<String>,
    progress: bool,
) -> PyResult<()> {
    let cfg = resolve(preset.as_deref(), config.as_ref(), sets)?;
    py.detach(|| -> Result<(), Error> {
        let mut run = Run::create(&out, cfg)?;
        while !run.is_done() {
            let m = run.step(|_| {})?;
            if progress {
                eprintln!(
                    "epoch {:>3}/{}  loss {:.4}  train acc {:5.1}%  test acc {:5.1}%  {:.0} samples/s",
                    m.epoch,
                    run.trainer.config().train.epochs,
                    m.train_loss,
                    100.0 * m.train_accuracy,
                    100.0 * m.test_accuracy,
                    m.samples_per_second
                );
            }
        }
        Ok(())
    })
    .map_err(py_err)
}

/// A trained network loaded from a run directory or a `model.safetensors` file.
#[pyclass(module = "prospect._prospect", frozen)]
struct Model {
    net: Net<f32>,
    cfg: RunConfig,
    path: PathBuf,
}

#[pymethods]
impl Model {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let (cfg, file) = if path.is_dir() {
            let cfg = config::load(&path.join(CONFIG_FILE)).map_err(py_err)?;
            (cfg, path.join(MODEL_FILE))
        } else if path.is_file() {
            let meta = checkpoint::read_metadata(&path).map_err(py_err)?;
            let text = meta.get("config").ok_or_else(|| {
                PyValueError::new_err(format!(
                    "{} has no `config` metadata; load its run directory instead",
                    path.display()
                ))
            })?;
            (RunConfig::from_toml_str(text).map_err(py_err)?, path.clone())
        } else {
            return Err(PyFileNotFoundError::new_err(format!(
                "{}: no such run directory or checkpoint file",
                path.display()
            )));
        };
        let mut net = Net::<f32>::mlp(&cfg.model, cfg.train.seed).map_err(py_err)?;
        checkpoint::load_model(&file, &mut net).map_err(py_err)?;
        Ok(Self { net, cfg, path: file })
    }

    /// The network's answer for inputs `x` `[batch, d_in]`: `[batch, d_out]`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        predict_array(py, &self.net, &self.cfg, x)
    }

    /// Answers a query: nodes in `clamp` are fixed to their arrays (with `mask`, only the
    /// entries where the mask is 1), nodes in `init` start at theirs and move, every other
    /// node is free; inference as in training (`steps` overrides T). Returns the nodes in
    /// `read` (default: the output node) as arrays.
    #[pyo3(signature = (clamp, init=None, mask=None, read=None, steps=None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        clamp: &Bound<'py, PyDict>,
        init: Option<&Bound<'py, PyDict>>,
        mask: Option<&Bound<'py, PyDict>>,
        read: Option<Vec<String>>,
        steps: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let net = &self.net;
        let names = || -> String {
            net.topo.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
        };
        let node = |name: &str| -> PyResult<usize> {
            net.topo.node(name).ok_or_else(|| {
                PyValueError::new_err(format!("no node `{name}`; the nodes are: {}", names()))
            })
        };
        let arrays =
            |d: Option<&Bound<'py, PyDict>>, what: &str| -> PyResult<Vec<(usize, Tensor<f32>)>> {
                let mut out = Vec::new();
                if let Some(d) = d {
                    for (k, v) in d.iter() {
                        let name: String = k.extract().map_err(|_| {
                            PyValueError::new_err(format!("{what}: node names must be str"))
                        })?;
                        out.push((node(&name)?, tensor(&v, &format!("{what}[{name:?}]"))?));
                    }
                }
                Ok(out)
            };
        let clamped = arrays(Some(clamp), "clamp")?;
        let inits = arrays(init, "init")?;
        let masks = arrays(mask, "mask")?;
        for (i, _) in &masks {
            if !clamped.iter().any(|(j, _)| j == i) {
                return Err(PyValueError::new_err(format!(
                    "mask of node `{}`: clamp that node too (the mask says which of its entries are known)",
                    net.topo.nodes[*i].name
                )));
            }
        }
        let mut given: Vec<(usize, prospect::Given<'_, f32>)> = Vec::new();
        for (i, t) in &clamped {
            let g = match masks.iter().find(|(j, _)| j == i) {
                Some((_, m)) => prospect::Given::Masked { data: t, mask: m },
                None => prospect::Given::Data(t),
            };
            given.push((*i, g));
        }
        given.extend(inits.iter().map(|(i, t)| (*i, prospect::Given::Init(t))));
        let read: Vec<usize> = match read {
            Some(r) => r.iter().map(|n| node(n)).collect::<PyResult<_>>()?,
            None => vec![net.output()],
        };
        let mut inference = self.cfg.inference.clone();
        if let Some(t) = steps {
            inference.steps = t;
        }
        let rows = given.first().map_or(1, |(_, g)| g.data().rows());
        let mut ws = prospect::Workspace::new(net, rows);
        py.detach(|| net.query(&mut ws, &given, &inference)).map_err(py_err)?;
        let out = PyDict::new(py);
        for i in read {
            out.set_item(&net.topo.nodes[i].name, array(py, ws.x[i].clone())?)?;
        }
        Ok(out)
    }

    /// Names of the nodes.
    #[getter]
    fn nodes(&self) -> Vec<String> {
        self.net.topo.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Widths of the nodes.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        self.net.sizes()
    }

    /// The run's resolved config as TOML text.
    #[getter]
    fn config_toml(&self) -> PyResult<String> {
        self.cfg.to_toml().map_err(py_err)
    }

    /// The checkpoint file it was loaded from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}

/// The step-by-step trainer over the caller's batches.
#[pyclass(module = "prospect._prospect")]
struct Trainer {
    inner: StepTrainer,
}

#[pymethods]
impl Trainer {
    #[new]
    #[pyo3(signature = (preset=None, config=None, sets=Vec::new(), total_batches=0))]
    fn new(
        preset: Option<String>,
        config: Option<Bound<'_, PyAny>>,
        sets: Vec<String>,
        total_batches: usize,
    ) -> PyResult<Self> {
        let cfg = resolve(preset.as_deref(), config.as_ref(), sets)?;
        Ok(Self { inner: StepTrainer::new(cfg, total_batches).map_err(py_err)? })
    }

    /// One batch: returns (loss, energy, correct, examples, inference steps).
    fn train_batch(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, f64, usize, usize, usize)> {
        let (x, y) = (tensor(x, "x")?, tensor(y, "y")?);
        let inner = &mut self.inner;
        let s = py.detach(|| inner.train_batch(&x, &y)).map_err(py_err)?;
        Ok((s.loss, s.energy, s.correct, s.examples, s.steps))
    }

    /// Accuracy and mean loss on `x`, `y`.
    fn evaluate(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, f64)> {
        let (x, y) = (tensor(x, "x")?, tensor(y, "y")?);
        let inner = &mut self.inner;
        let m = py.detach(|| inner.evaluate(&x, &y)).map_err(py_err)?;
        Ok((m.accuracy, m.loss))
    }

    /// Outputs for `x` with the current weights.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        predict_array(py, &self.inner.net, self.inner.config(), x)
    }

    /// Writes a run directory (config.toml, model and optimiser checkpoints).
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| inner.save(&dir)).map_err(py_err)
    }

    /// Batches trained so far.
    #[getter]
    fn batches(&self) -> usize {
        self.inner.batches()
    }

    /// Widths of the nodes.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        self.inner.net.sizes()
    }
}

/// Features and labels of a split, as numpy arrays.
type Split2<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, numpy::PyArray1<u32>>);

/// A dataset split as the CLI prepares it for `scale`: (features `[n, d]` float32, labels
/// `[n]` uint32).
#[pyfunction]
#[pyo3(signature = (name, split="train", scale="unit", data_dir=None))]
fn load_data<'py>(
    py: Python<'py>,
    name: &str,
    split: &str,
    scale: &str,
    data_dir: Option<PathBuf>,
) -> PyResult<Split2<'py>> {
    let split = match split {
        "train" => Split::Train,
        "test" => Split::Test,
        other => {
            return Err(PyValueError::new_err(format!(
                "split must be \"train\" or \"test\", got {other:?}"
            )))
        }
    };
    let mut sets = vec![format!("data.name={name}"), format!("data.scale={scale}")];
    sets.push("data.validation=0".into());
    let mut cfg = config::resolve(None, None, &sets).map_err(py_err)?;
    cfg.data.dir = data_dir;
    let prepared = py.detach(|| train::load_data(&cfg)).map_err(py_err)?;
    let ds = match split {
        Split::Train => prepared.train,
        Split::Test => prepared.test,
    };
    let [rows, cols] = [ds.len(), ds.features()];
    let x = Tensor::from_vec(rows, cols, ds.x);
    Ok((array(py, x)?, ds.labels.into_pyarray(py)))
}

/// Runs a `prospect repro` experiment. Complete: writes `NAME.csv` and `NAME.md` into `out`
/// and returns their paths with the claims; sharded or counting (`shard=(i, n)`, `n = 0`
/// counts): returns the cell counts and the indices of the cells still missing.
#[pyfunction]
#[pyo3(signature = (name, out, full=false, seeds=None, lrs=None, cells=None, shard=None, progress=false, protocol="ours", pretrained=None))]
#[allow(clippy::too_many_arguments)]
fn repro_run<'py>(
    py: Python<'py>,
    name: String,
    out: PathBuf,
    full: bool,
    seeds: Option<usize>,
    lrs: Option<Vec<f64>>,
    cells: Option<PathBuf>,
    shard: Option<(usize, usize)>,
    progress: bool,
    protocol: &str,
    pretrained: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let protocol = match protocol {
        "ours" => experiments::Protocol::Ours,
        "authors" => experiments::Protocol::Authors,
        other => {
            return Err(PyValueError::new_err(format!(
                "protocol `{other}`: expected \"ours\" or \"authors\""
            )))
        }
    };
    let settings = experiments::Settings {
        full,
        seeds,
        progress,
        lrs,
        cells,
        shard,
        protocol,
        pretrained,
        ..Default::default()
    };
    let stem = if protocol == experiments::Protocol::Authors {
        format!("{name}-authors")
    } else {
        name.clone()
    };
    let t0 = std::time::Instant::now();
    let res = py.detach(|| experiments::run_with(&name, &settings));
    let d = PyDict::new(py);
    match res {
        Ok(report) => {
            let secs = t0.elapsed().as_secs_f64();
            std::fs::create_dir_all(&out)
                .map_err(|e| py_err(Error::Io { path: out.display().to_string(), source: e }))?;
            let mode = if full { "--full" } else { "default" };
            let csv = out.join(format!("{stem}.csv"));
            let md = out.join(format!("{stem}.md"));
            checkpoint::write_atomic(&csv, report.table.to_csv().as_bytes()).map_err(py_err)?;
            checkpoint::write_atomic(&md, report.markdown(mode, secs).as_bytes())
                .map_err(py_err)?;
            d.set_item("complete", true)?;
            d.set_item("csv", csv)?;
            d.set_item("md", md)?;
            d.set_item("title", report.title)?;
            let claims = PyList::empty(py);
            for c in &report.claims {
                let row = PyDict::new(py);
                row.set_item("quantity", &c.what)?;
                row.set_item("paper", &c.paper)?;
                row.set_item("ours", &c.ours)?;
                row.set_item("holds", c.verdict())?;
                claims.append(row)?;
            }
            d.set_item("claims", claims)?;
            d.set_item("seconds", secs)?;
        }
        Err(Error::Incomplete { ran, stored, total, missing, store, .. }) => {
            d.set_item("complete", false)?;
            d.set_item("ran", ran)?;
            d.set_item("stored", stored)?;
            d.set_item("total", total)?;
            d.set_item("missing", missing)?;
            d.set_item("store", store)?;
        }
        Err(e) => return Err(py_err(e)),
    }
    Ok(d)
}

/// The experiments of `prospect repro`: (name, description) pairs.
#[pyfunction]
fn experiment_names() -> Vec<(&'static str, &'static str)> {
    experiments::EXPERIMENTS.to_vec()
}

/// The names of the presets, one per line with a description.
#[pyfunction]
fn preset_names() -> String {
    config::preset_names()
}

/// The SIMD level of the element-wise kernels in use ("Base", "Avx2" or "Avx512"; capped by
/// the environment variable `PROSPECT_SIMD=base|avx2|avx512`).
#[pyfunction]
fn simd_level() -> String {
    format!("{:?}", prospect::tensor::simd::level())
}

/// The SIMD features the module was compiled for unconditionally (empty for a portable
/// wheel: wider instructions are only used through run-time dispatch).
#[pyfunction]
fn compiled_features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(target_feature = "avx2") {
        f.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        f.push("fma");
    }
    if cfg!(target_feature = "avx512f") {
        f.push("avx512f");
    }
    f
}

/// Whether `path` holds a run's model checkpoint.
#[pyfunction]
fn is_run(path: PathBuf) -> bool {
    checkpoint::exists(Path::new(&path))
}

/// The native module.
#[pymodule]
fn _prospect(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_run, m)?)?;
    m.add_function(wrap_pyfunction!(load_data, m)?)?;
    m.add_function(wrap_pyfunction!(preset_names, m)?)?;
    m.add_function(wrap_pyfunction!(is_run, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(compiled_features, m)?)?;
    m.add_function(wrap_pyfunction!(repro_run, m)?)?;
    m.add_function(wrap_pyfunction!(experiment_names, m)?)?;
    m.add_class::<Model>()?;
    m.add_class::<Trainer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
