//! Checkpoints: the network's parameters in `model.safetensors` and the weight optimiser's
//! state in `optimizer.safetensors`, written atomically and read back with checks.
//!
//! `model.safetensors` holds one tensor per parameter, `edges.{name}.weight` (`[d_out, d_in]`)
//! and `edges.{name}.bias` (`[d_out]`; edge `i` of a chain is named `i`), in f32 (or f64
//! for an f64 network); files of format 1 (`layers.{i}.weight`) still load; plus string
//! metadata: `format` (`prospect`), `format_version`, `epoch`, `dtype` and `config` (the
//! resolved run config as TOML). Any safetensors reader loads it (`safetensors.numpy.load_file`).
//! The bytes are a pure function of the parameters and metadata (tensors and metadata keys
//! sorted), so two identical runs write identical files.
//!
//! Every file is written to `<name>.tmp` in the same directory, flushed to disk, then renamed
//! over the old file, and the directory is synced: a crash leaves either the old or the new
//! file, never a torn one; a leftover `.tmp` is never read and is overwritten by the next save.
//!
//! [`save`] writes a consistent pair: the optimiser file goes in first (the previous one is kept
//! as `optimizer.prev.safetensors`), the model file last; [`load`] picks whichever optimiser
//! file matches the model's epoch, so a crash between the two renames still resumes exactly.

use crate::error::{Error, Result};
use crate::net::Net;
use crate::optim::WeightOptim;
use crate::tensor::{Scalar, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the parameters in a run directory.
pub const MODEL_FILE: &str = "model.safetensors";

/// File name of the optimiser state in a run directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// The optimiser state of the checkpoint before the last one, kept while the pair is replaced.
pub const OPTIMIZER_PREV_FILE: &str = "optimizer.prev.safetensors";

/// Version of the checkpoint layout written by this build.
pub const FORMAT_VERSION: u32 = 2;

/// The value of the `format` metadata key.
pub const FORMAT: &str = "prospect";

/// String metadata of a safetensors file (sorted by key).
pub type Metadata = BTreeMap<String, String>;

/// One tensor read from a file: name, shape and values as f64.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Tensor name (`edges.0.weight`).
    pub name: String,
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Row-major values, widened to f64.
    pub values: Vec<f64>,
}

fn ckpt_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Checkpoint { path: path.display().to_string(), msg: msg.into() }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// The safetensors dtype of `T`.
fn dtype_of<T: Scalar>() -> Dtype {
    if T::NAME == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// Little-endian bytes of a tensor's values in `T`'s precision.
fn to_bytes<T: Scalar>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(values));
    for v in values {
        if T::NAME == "f64" {
            out.extend_from_slice(&v.f64().to_le_bytes());
        } else {
            out.extend_from_slice(&(v.f64() as f32).to_le_bytes());
        }
    }
    out
}

/// Encodes tensors and metadata as safetensors bytes, deterministically: tensors and
/// metadata sorted by name, header padded with spaces to 8 bytes.
///
/// # Errors
/// [`Error::Checkpoint`] (with `path` `<memory>`) on duplicate names or a shape/length mismatch.
pub fn encode(
    tensors: &[(String, Vec<usize>, Dtype, Vec<u8>)],
    metadata: &Metadata,
) -> Result<Vec<u8>> {
    let here = Path::new("<memory>");
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| tensors[a].0.cmp(&tensors[b].0));
    let mut header = String::from("{");
    let mut first = true;
    let mut push_key = |header: &mut String, key: &str| {
        if !first {
            header.push(',');
        }
        first = false;
        header.push_str(&serde_json::to_string(key).unwrap_or_default());
        header.push(':');
    };
    if !metadata.is_empty() {
        push_key(&mut header, "__metadata__");
        header.push('{');
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            header.push_str(&serde_json::to_string(k).unwrap_or_default());
            header.push(':');
            header.push_str(&serde_json::to_string(v).unwrap_or_default());
        }
        header.push('}');
    }
    let mut offset = 0usize;
    let mut prev: Option<&str> = None;
    for &i in &order {
        let (name, shape, dtype, bytes) = &tensors[i];
        if prev == Some(name.as_str()) {
            return Err(ckpt_err(here, format!("duplicate tensor name `{name}`")));
        }
        prev = Some(name);
        let want = shape.iter().product::<usize>() * dtype.bitsize() / 8;
        if want != bytes.len() {
            return Err(ckpt_err(
                here,
                format!(
                    "tensor `{name}`: shape {shape:?} needs {want} bytes, found {}",
                    bytes.len()
                ),
            ));
        }
        push_key(&mut header, name);
        let dt = match dtype {
            Dtype::F64 => "F64",
            _ => "F32",
        };
        header.push_str(&format!(
            "{{\"dtype\":\"{dt}\",\"shape\":{},\"data_offsets\":[{offset},{}]}}",
            serde_json::to_string(shape).unwrap_or_default(),
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &i in &order {
        out.extend_from_slice(&tensors[i].3);
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(path);
    Ok(())
}

/// The temporary file a save of `path` goes through.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Syncs the directory holding `path` so a rename survives a crash (best effort).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The stored shape of a parameter: a bias `[1, d]` is stored as `[d]`.
fn param_shape<T: Scalar>(name: &str, t: &Tensor<T>) -> Vec<usize> {
    if name == "bias" && t.rows() == 1 {
        vec![t.cols()]
    } else {
        vec![t.rows(), t.cols()]
    }
}

/// Encodes `net`'s parameters with `metadata` (plus `format`, `format_version`, `dtype`).
///
/// # Errors
/// As [`encode`].
pub fn encode_model<T: Scalar>(net: &Net<T>, metadata: &Metadata) -> Result<Vec<u8>> {
    let mut meta = metadata.clone();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string());
    meta.insert("dtype".into(), T::NAME.into());
    meta.insert("graph".into(), graph_json(net));
    let mut tensors = Vec::new();
    for (layer, edge) in net.layers.iter().zip(&net.topo.edges) {
        layer.for_each_param(&mut |name, t| {
            tensors.push((
                format!("edges.{}.{name}", edge.name),
                param_shape(name, t),
                dtype_of::<T>(),
                to_bytes(t.data()),
            ));
        });
    }
    encode(&tensors, &meta)
}

/// The graph as JSON: nodes (name, size) and edges (name, from, to; `from` null for a prior).
pub fn graph_json<T: Scalar>(net: &Net<T>) -> String {
    let t = &net.topo;
    let nodes: Vec<_> =
        t.nodes.iter().map(|n| serde_json::json!({"name": n.name, "size": n.size})).collect();
    let edges: Vec<_> = t
        .edges
        .iter()
        .map(|e| {
            let from = e.src.map(|s| t.nodes[s].name.clone());
            serde_json::json!({"name": e.name, "from": from, "to": t.nodes[e.dst].name})
        })
        .collect();
    serde_json::json!({
        "nodes": nodes,
        "edges": edges,
        "input": t.nodes[t.input].name,
        "output": t.nodes[t.output].name,
    })
    .to_string()
}

/// Saves `net`'s parameters to `path` atomically.
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`] naming the file.
pub fn save_model<T: Scalar>(path: &Path, net: &Net<T>, metadata: &Metadata) -> Result<()> {
    let bytes = encode_model(net, metadata).map_err(|e| relabel(e, path))?;
    write_atomic(path, &bytes)
}

/// Replaces the `<memory>` path of an encoding error with the real one.
fn relabel(e: Error, path: &Path) -> Error {
    match e {
        Error::Checkpoint { msg, .. } => ckpt_err(path, msg),
        other => other,
    }
}

/// Reads a whole file (for parsing).
fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| io_err(path, e))
}

/// Parses safetensors bytes, mapping failures to an error naming `path`.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| {
        ckpt_err(
            path,
            format!(
                "not a valid safetensors file ({e}); the file is corrupt or truncated ({} bytes)",
                bytes.len()
            ),
        )
    })
}

/// The string metadata of a safetensors file.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::Checkpoint`] if not valid safetensors.
pub fn read_metadata(path: &Path) -> Result<Metadata> {
    let bytes = read(path)?;
    parse(path, &bytes)?;
    metadata_of(path, &bytes)
}

fn metadata_of(path: &Path, bytes: &[u8]) -> Result<Metadata> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ckpt_err(path, format!("not a valid safetensors file ({e})")))?;
    Ok(meta.metadata().clone().unwrap_or_default().into_iter().collect())
}

/// Values of a tensor view as f64.
fn values_of(
    path: &Path,
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<Vec<f64>> {
    let data = view.data();
    match view.dtype() {
        Dtype::F32 => Ok(data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()),
        Dtype::F64 => Ok(data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()),
        other => {
            Err(ckpt_err(path, format!("tensor `{name}`: dtype {other:?}, expected F32 or F64")))
        }
    }
}

/// Every tensor of a safetensors file (sorted by name), for inspection.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::Checkpoint`] if corrupt or of an unsupported dtype.
pub fn read_tensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let mut out = Vec::new();
    for (name, view) in st.iter() {
        out.push(NamedTensor {
            name: name.to_string(),
            shape: view.shape().to_vec(),
            values: values_of(path, name, &view)?,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Copies a stored tensor into `dst`, checking its shape (`expect`) and dtype.
fn fill<T: Scalar>(
    path: &Path,
    st: &SafeTensors<'_>,
    name: &str,
    expect: &[usize],
    dst: &mut Tensor<T>,
) -> Result<()> {
    let view = st.tensor(name).map_err(|_| {
        ckpt_err(path, format!("missing tensor `{name}` (expected shape {expect:?})"))
    })?;
    if view.shape() != expect {
        return Err(ckpt_err(
            path,
            format!(
                "tensor `{name}` has shape {:?}, the configured network needs {expect:?}",
                view.shape()
            ),
        ));
    }
    let values = values_of(path, name, &view)?;
    for (d, v) in dst.data_mut().iter_mut().zip(values) {
        *d = T::of(v);
    }
    if !dst.all_finite() {
        return Err(ckpt_err(path, format!("tensor `{name}` holds NaN or infinite values")));
    }
    Ok(())
}

/// Loads parameters from `path` into `net`, checking names, shapes and dtypes against it.
/// Returns the file's metadata.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file and the tensor on a missing, extra or misshapen
/// tensor, or a corrupt/truncated file; [`Error::Io`] if it cannot be read.
pub fn load_model<T: Scalar>(path: &Path, net: &mut Net<T>) -> Result<Metadata> {
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let meta = metadata_of(path, &bytes)?;
    check_format(path, &meta)?;
    let mut expected = Vec::new();
    let mut result = Ok(());
    // Files of format 1 name a chain's tensors `layers.{i}.{param}`.
    let legacy = net.topo.is_chain() && !st.names().iter().any(|n| n.starts_with("edges."));
    for (i, (layer, edge)) in net.layers.iter_mut().zip(&net.topo.edges).enumerate() {
        layer.for_each_param_mut(&mut |name, t| {
            let key = if legacy {
                format!("layers.{i}.{name}")
            } else {
                format!("edges.{}.{name}", edge.name)
            };
            let shape = param_shape(name, t);
            if result.is_ok() {
                result = fill(path, &st, &key, &shape, t);
            }
            expected.push(key);
        });
    }
    result?;
    let mut names = st.names();
    names.sort_unstable();
    if let Some(extra) = names.into_iter().find(|n| !expected.iter().any(|e| e == n)) {
        return Err(ckpt_err(
            path,
            format!(
                "unexpected tensor `{extra}`: the configured network has {} edges ({})",
                net.depth(),
                expected.join(", ")
            ),
        ));
    }
    Ok(meta)
}

/// Rejects files of another format or a newer version.
fn check_format(path: &Path, meta: &Metadata) -> Result<()> {
    if let Some(v) = meta.get("format_version") {
        let v: u32 = v
            .parse()
            .map_err(|_| ckpt_err(path, format!("format_version `{v}` is not a number")))?;
        if v > FORMAT_VERSION {
            return Err(ckpt_err(
                path,
                format!("format version {v} is newer than this build reads ({FORMAT_VERSION})"),
            ));
        }
    }
    Ok(())
}

/// Encodes the optimiser state: every non-empty state tensor under its stable name, and
/// `batches_done`, `total_batches`, `update_counts` and `kind` in the metadata.
///
/// # Errors
/// As [`encode`].
pub fn encode_optimizer<T: Scalar>(opt: &WeightOptim<T>, metadata: &Metadata) -> Result<Vec<u8>> {
    let mut meta = metadata.clone();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string());
    meta.insert("dtype".into(), T::NAME.into());
    meta.insert("batches_done".into(), opt.batches_done.to_string());
    meta.insert("total_batches".into(), opt.total_batches.to_string());
    meta.insert(
        "update_counts".into(),
        opt.update_counts().iter().map(u64::to_string).collect::<Vec<_>>().join(","),
    );
    meta.insert("kind".into(), format!("{:?}", opt.cfg.kind).to_lowercase());
    let mut tensors = Vec::new();
    opt.for_each_state(&mut |name, t| {
        if !t.is_empty() {
            tensors.push((name, vec![t.rows(), t.cols()], dtype_of::<T>(), to_bytes(t.data())));
        }
    });
    encode(&tensors, &meta)
}

/// Saves the optimiser state to `path` atomically.
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`] naming the file.
pub fn save_optimizer<T: Scalar>(
    path: &Path,
    opt: &WeightOptim<T>,
    metadata: &Metadata,
) -> Result<()> {
    let bytes = encode_optimizer(opt, metadata).map_err(|e| relabel(e, path))?;
    write_atomic(path, &bytes)
}

/// Loads optimiser state from `path` into `opt` (built for the same network and settings).
/// Restores `batches_done` and the update counts; `total_batches` is left as configured.
/// Returns the file's metadata.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file and tensor on any mismatch or corruption.
pub fn load_optimizer<T: Scalar>(path: &Path, opt: &mut WeightOptim<T>) -> Result<Metadata> {
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    let meta = metadata_of(path, &bytes)?;
    check_format(path, &meta)?;
    let kind = format!("{:?}", opt.cfg.kind).to_lowercase();
    if let Some(k) = meta.get("kind") {
        if *k != kind {
            return Err(ckpt_err(
                path,
                format!("optimiser state is for `{k}`, the config uses `{kind}`"),
            ));
        }
    }
    let mut expected = Vec::new();
    let mut result = Ok(());
    opt.for_each_state_mut(&mut |name, t| {
        if !t.is_empty() {
            if result.is_ok() {
                let shape = [t.rows(), t.cols()];
                result = fill(path, &st, &name, &shape, t);
            }
            expected.push(name);
        }
    });
    result?;
    let mut names = st.names();
    names.sort_unstable();
    if let Some(extra) = names.into_iter().find(|n| !expected.iter().any(|e| e == n)) {
        return Err(ckpt_err(path, format!("unexpected tensor `{extra}` for this optimiser")));
    }
    let num = |key: &str| -> Result<u64> {
        meta.get(key)
            .ok_or_else(|| ckpt_err(path, format!("metadata `{key}` missing")))?
            .parse()
            .map_err(|_| ckpt_err(path, format!("metadata `{key}` is not a number")))
    };
    opt.batches_done = num("batches_done")? as usize;
    let counts: Vec<u64> = meta
        .get("update_counts")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| ckpt_err(path, "metadata `update_counts` is malformed")))
        .collect::<Result<_>>()?;
    if counts.len() != opt.update_counts().len() {
        return Err(ckpt_err(
            path,
            format!(
                "update_counts has {} layers, the network has {}",
                counts.len(),
                opt.update_counts().len()
            ),
        ));
    }
    opt.set_update_counts(&counts);
    Ok(meta)
}

/// What [`load`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// Epochs completed when the checkpoint was written.
    pub epoch: usize,
    /// Metadata of the model file.
    pub model_meta: Metadata,
    /// Metadata of the optimiser file used.
    pub optimizer_meta: Metadata,
}

/// The `epoch` metadata value of a file.
fn epoch_of(path: &Path, meta: &Metadata) -> Result<usize> {
    meta.get("epoch")
        .ok_or_else(|| ckpt_err(path, "metadata `epoch` missing"))?
        .parse()
        .map_err(|_| ckpt_err(path, "metadata `epoch` is not a number"))
}

/// Saves a consistent checkpoint into `dir`: optimiser first (keeping the previous one as
/// [`OPTIMIZER_PREV_FILE`]), model last. `model_meta` and `optimizer_meta` get `epoch` added.
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`] naming the file.
pub fn save<T: Scalar>(
    dir: &Path,
    net: &Net<T>,
    opt: &WeightOptim<T>,
    epoch: usize,
    model_meta: &Metadata,
    optimizer_meta: &Metadata,
) -> Result<()> {
    let mut mm = model_meta.clone();
    mm.insert("epoch".into(), epoch.to_string());
    let mut om = optimizer_meta.clone();
    om.insert("epoch".into(), epoch.to_string());
    let opt_path = dir.join(OPTIMIZER_FILE);
    let prev = dir.join(OPTIMIZER_PREV_FILE);
    let opt_bytes = encode_optimizer(opt, &om).map_err(|e| relabel(e, &opt_path))?;
    let model_path = dir.join(MODEL_FILE);
    let model_bytes = encode_model(net, &mm).map_err(|e| relabel(e, &model_path))?;
    if opt_path.is_file() {
        fs::rename(&opt_path, &prev).map_err(|e| io_err(&prev, e))?;
    }
    write_atomic(&opt_path, &opt_bytes)?;
    write_atomic(&model_path, &model_bytes)
}

/// True when `dir` holds a model checkpoint.
pub fn exists(dir: &Path) -> bool {
    dir.join(MODEL_FILE).is_file()
}

/// Loads the checkpoint in `dir` into `net` and `opt`, using whichever optimiser file
/// ([`OPTIMIZER_FILE`] or [`OPTIMIZER_PREV_FILE`]) was written at the model's epoch.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file on corruption, mismatch with the network, or when
/// no optimiser state matches the model's epoch; [`Error::Io`] if a file cannot be read.
pub fn load<T: Scalar>(dir: &Path, net: &mut Net<T>, opt: &mut WeightOptim<T>) -> Result<Loaded> {
    let model_path = dir.join(MODEL_FILE);
    let model_meta = load_model(&model_path, net)?;
    let epoch = epoch_of(&model_path, &model_meta)?;
    let mut tried = Vec::new();
    for name in [OPTIMIZER_FILE, OPTIMIZER_PREV_FILE] {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let meta = match read_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                tried.push(e.to_string());
                continue;
            }
        };
        match epoch_of(&path, &meta) {
            Ok(e) if e == epoch => {
                let optimizer_meta = load_optimizer(&path, opt)?;
                return Ok(Loaded { epoch, model_meta, optimizer_meta });
            }
            Ok(e) => tried.push(format!("{} is from epoch {e}", path.display())),
            Err(e) => tried.push(e.to_string()),
        }
    }
    let detail = if tried.is_empty() { "none found".to_string() } else { tried.join("; ") };
    Err(ckpt_err(
        &dir.join(OPTIMIZER_FILE),
        format!("no optimiser state for epoch {epoch} of {} ({detail})", model_path.display()),
    ))
}
