//! The binned page cache: every row's bin codes on disk, read memory-mapped by training.
//!
//! Layout of `DIR/`: `manifest.json` (rows, pages, the cuts, the genes), `labels.bin` (one
//! class code per row), `groups.bin` (one little-endian `u32` gene index per row) and
//! `bins.bin`, a run of pages of [`PAGE_ROWS`] rows. A page holds its dense features
//! column-major, one byte per value (a node's histogram is built feature by feature from
//! one short column, and a split is routed by reading one), then its sparse features as a CSR block (row pointers,
//! sparse-feature indices, codes) holding only values that are not zero; zeros are implicit.
//!
//! The page size does not depend on the budget, so the histograms (and the model) are the
//! same at any budget. The budget decides how much of the cache stays resident: the leading
//! pages it holds stay mapped ([`PageCache::set_kept_pages`]), and the others are handed
//! back to the kernel after use.
//!
//! The manifest holds an XXH64 checksum of every page, of `labels.bin` and of `groups.bin`,
//! computed as they are written. [`find`] checks the manifest's own consistency and every
//! checksum before a cache is reused (one read of the cache, far cheaper than rebuilding
//! it); a cache that fails is rebuilt, and the run says so on stderr. [`PageCache::labels`]
//! and [`PageCache::groups`] check their file's checksum again when they load it, and refuse
//! a class code above 2 or a gene index outside the manifest's genes, so that neither can
//! reach the learner.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sprs::CsMatViewI;

use super::checksum::Xxh64;
use super::Cuts;
use crate::error::InputError;
use crate::io::{decode_labels, Dataset, FeatureReader, GeneIndex};
use crate::memory::MemoryReservation;

/// Rows per page.
pub const PAGE_ROWS: usize = 16 * 1024;
const FORMAT: &str = "spliceboost-bin-cache";
// 2: a missing value is coded as the bin after the last value bin.
// 3: checksums of every page, of the labels and of the gene indices; cuts always finite.
// 4: dense codes column-major within a page.
const VERSION: u32 = 4;

const HINT: &str = "delete the cache directory; the next run rebuilds it";

/// Where one page lies in `bins.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    pub offset: u64,
    pub rows: u32,
    pub nnz: u32,
    /// XXH64 of the page's bytes.
    pub checksum: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheManifest {
    pub format: String,
    pub version: u32,
    pub fingerprint: String,
    pub rows: u64,
    pub pages: Vec<PageInfo>,
    /// Feature indices stored dense, in page column order.
    pub dense: Vec<usize>,
    /// Feature indices stored sparse, in CSR column order.
    pub sparse: Vec<usize>,
    pub genes: Vec<String>,
    pub class_counts: [u64; 3],
    pub cuts: Cuts,
    /// XXH64 of `labels.bin` and of `groups.bin`.
    pub labels_checksum: u64,
    pub groups_checksum: u64,
}

impl CacheManifest {
    /// Bytes of page `i`.
    pub fn page_len(&self, i: usize) -> u64 {
        let p = self.pages[i];
        page_bytes(p.rows as usize, self.dense.len(), p.nnz as usize)
    }

    /// Bytes of the largest page.
    pub fn max_page_len(&self) -> u64 {
        (0..self.pages.len()).map(|i| self.page_len(i)).max().unwrap_or(0)
    }

    /// [`streamed_bytes`] of this cache.
    pub fn streamed_bytes(&self, slots: u64) -> u64 {
        streamed_bytes(slots, self.max_page_len(), self.rows)
    }

    /// Bytes of `bins.bin`.
    pub fn bins_bytes(&self) -> u64 {
        self.pages.last().map_or(0, |p| {
            p.offset + page_bytes(p.rows as usize, self.dense.len(), p.nnz as usize)
        })
    }

    /// Everything [`PageCache::open`] and [`PageCache::page`] rely on and that a build always
    /// gives: pages of [`PAGE_ROWS`] rows (the last may be shorter) laid end to end, the
    /// dense and sparse features together each feature once, cuts finite and strictly
    /// increasing with at most [`super::MAX_SLOTS`] slots, zero bins where zero falls, class
    /// counts adding up to the rows.
    pub fn check(&self) -> Result<(), String> {
        let n_features = self.cuts.features.len();
        let mut offset = 0u64;
        let mut rows = 0u64;
        for (i, p) in self.pages.iter().enumerate() {
            let last = i + 1 == self.pages.len();
            if p.rows == 0 || p.rows as usize > PAGE_ROWS || (!last && p.rows as usize != PAGE_ROWS) {
                return Err(format!("page {i} has {} rows", p.rows));
            }
            if p.offset != offset {
                return Err(format!("page {i} starts at byte {}, not {offset}", p.offset));
            }
            if p.nnz as u64 > p.rows as u64 * self.sparse.len() as u64 {
                return Err(format!("page {i} has {} sparse values", p.nnz));
            }
            offset += self.page_len(i);
            rows += p.rows as u64;
        }
        if rows != self.rows {
            return Err(format!("its pages hold {rows} rows, not {}", self.rows));
        }
        if self.class_counts.iter().sum::<u64>() != self.rows {
            return Err("its class counts do not add up to its rows".into());
        }
        let mut seen = vec![false; n_features];
        for &j in self.dense.iter().chain(&self.sparse) {
            if j >= n_features || std::mem::replace(&mut seen[j], true) {
                return Err(format!("feature {j} is out of range or stored twice"));
            }
        }
        if let Some(j) = seen.iter().position(|s| !s) {
            return Err(format!("feature {j} is not stored"));
        }
        for f in &self.cuts.features {
            if f.cuts.iter().any(|c| !c.is_finite()) || f.cuts.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("the cuts of `{}` are not finite and increasing", f.name));
            }
            if f.n_slots() > super::MAX_SLOTS || f.zero_bin != f.bin(0.0) {
                return Err(format!("the bins of `{}` are inconsistent", f.name));
            }
        }
        Ok(())
    }
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Runs of consecutive positions in ascending `cols`, as `(first, end)` half-open ranges, so
/// that adjacent columns are read in one call.
fn column_runs(cols: &[usize]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut k = 0;
    std::iter::from_fn(move || {
        let &first = cols.get(k)?;
        let mut end = first + 1;
        k += 1;
        while cols.get(k) == Some(&end) {
            end += 1;
            k += 1;
        }
        Some((first, end))
    })
}

/// Mapped bytes that passes through `slots` [`PageSlot`]s at once hold at most over a cache
/// of `rows` rows that is not resident: a largest page (`page_len` bytes, and the two
/// memory pages its ends may straddle) a slot, and the memory page each page may share with
/// its neighbour, which stays mapped once touched ([`PageCache::for_each_page`] hands back
/// only the memory pages wholly inside a page).
pub fn streamed_bytes(slots: u64, page_len: u64, rows: u64) -> u64 {
    const MEM_PAGE: u64 = 4096;
    slots * (page_len + 2 * MEM_PAGE) + MEM_PAGE * rows.div_ceil(PAGE_ROWS as u64)
}

/// The largest a file's huge page can be mapped as (a PMD on x86-64 and on arm64 with 4 KiB
/// pages).
pub const HUGE_PAGE: u64 = 2 << 20;

/// Bytes of one page with `rows` rows, `dense` dense columns and `nnz` sparse values.
fn page_bytes(rows: usize, dense: usize, nnz: usize) -> u64 {
    let csr = align(rows * dense, 4) + 4 * (rows + 1) + 4 * nnz + nnz;
    align(csr, 8) as u64
}

/// A stable 64-bit FNV-1a hash: cache keys must not change between builds.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The cache key of a dataset and binning: the files (path, size, modification time), the
/// features and `max_bin`. Cuts are a function of these, so the key stands for them too.
pub fn fingerprint(ds: &Dataset, max_bin: usize, sketch_size: usize) -> String {
    let mut h = fnv(FORMAT.as_bytes(), 0xcbf2_9ce4_8422_2325);
    h = fnv(&VERSION.to_le_bytes(), h);
    for f in &ds.files {
        h = fnv(f.path.to_string_lossy().as_bytes(), h);
        let meta = std::fs::metadata(&f.path).ok();
        let mtime = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h = fnv(&f.bytes.to_le_bytes(), h);
        h = fnv(&mtime.to_le_bytes(), h);
    }
    for f in &ds.roles.features {
        h = fnv(f.name.as_bytes(), h);
        h = fnv(&[0], h);
        // Where a sparse k-mer comes from; dense features keep the keys they always had.
        if let Some(i) = f.sparse_index {
            h = fnv(f.column.as_bytes(), h);
            h = fnv(&i.to_le_bytes(), h);
        }
    }
    h = fnv(ds.roles.label.as_bytes(), h);
    h = fnv(ds.roles.group.as_bytes(), h);
    h = fnv(&(max_bin as u64).to_le_bytes(), h);
    h = fnv(&(sketch_size as u64).to_le_bytes(), h);
    format!("{h:016x}")
}

/// The cache in `dir` if it was built for `fingerprint` and is whole: its manifest reads and
/// is consistent ([`CacheManifest::check`]), and every page, `labels.bin` and `groups.bin`
/// match their checksums. Otherwise `None`, so that the caller rebuilds it; when a cache was
/// there but is not usable, one line on stderr says why.
pub fn find(dir: &Path, fingerprint: &str) -> Option<CacheManifest> {
    let text = std::fs::read(dir.join("manifest.json")).ok()?;
    let stale = |why: String| {
        eprintln!("warning: binned cache {} {why}: rebuilding", dir.display());
        None
    };
    let v: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => return stale(format!("has an unreadable manifest ({e})")),
    };
    let version = v.get("version").and_then(serde_json::Value::as_u64);
    if v.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) || version != Some(VERSION as u64)
    {
        return stale(format!(
            "is in another format (version {}; this spliceboost writes {VERSION})",
            version.map_or("none".into(), |v| v.to_string())
        ));
    }
    let m: CacheManifest = match serde_json::from_value(v) {
        Ok(m) => m,
        Err(e) => return stale(format!("has an unreadable manifest ({e})")),
    };
    if m.fingerprint != fingerprint {
        return stale("was built for other data".into());
    }
    if let Err(e) = m.check() {
        return stale(format!("has an inconsistent manifest ({e})"));
    }
    match verify(dir, &m) {
        Ok(()) => Some(m),
        Err(why) => stale(why),
    }
}

/// Checks `bins.bin`, `labels.bin` and `groups.bin` against the manifest's sizes and
/// checksums, reading each byte once. Pages are mapped one at a time and handed back to the
/// kernel after they are hashed, so that the check holds no more than a page resident and
/// allocates nothing.
fn verify(dir: &Path, m: &CacheManifest) -> Result<(), String> {
    let open = |name: &str, want: u64| -> Result<Option<Mmap>, String> {
        let file = std::fs::File::open(dir.join(name)).map_err(|e| format!("cannot open {name} ({e})"))?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read {name} ({e})"))?
            .len();
        if len != want {
            return Err(format!(
                "is incomplete ({name} has {len} bytes, its manifest says {want})"
            ));
        }
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: read-only; a file changed while it is read fails its checksum at worst.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("cannot map {name} ({e})"))?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Some(map))
    };
    for (name, width, want) in [
        ("labels.bin", 1, m.labels_checksum),
        ("groups.bin", 4, m.groups_checksum),
    ] {
        let len = width * m.rows;
        if hash_range(open(name, len)?.as_ref(), 0, len as usize) != want {
            return Err(format!("failed its checksum ({name})"));
        }
    }
    let bins = open("bins.bin", m.bins_bytes())?;
    for (i, p) in m.pages.iter().enumerate() {
        let lo = p.offset as usize;
        if hash_range(bins.as_ref(), lo, lo + m.page_len(i) as usize) != p.checksum {
            return Err(format!("failed its checksum (page {i})"));
        }
    }
    Ok(())
}

/// XXH64 of `map[lo..hi]` (of nothing without a map), read in steps of 8 MiB that are handed
/// back to the kernel once hashed.
fn hash_range(map: Option<&Mmap>, lo: usize, hi: usize) -> u64 {
    const STEP: usize = 8 << 20;
    let mut h = Xxh64::new(0);
    if let Some(map) = map {
        let mut at = lo;
        while at < hi {
            let end = (at + STEP).min(hi);
            h.update(&map[at..end]);
            // SAFETY: a read-only shared file map; dropped pages are read again from the file.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, at, end - at) };
            at = end;
        }
    }
    h.digest()
}

/// Bytes the writer holds besides the scan: one page and one batch of codes.
pub fn writer_bytes(features: usize, batch_rows: usize) -> u64 {
    (PAGE_ROWS * (features * 2 + 16) + batch_rows * features * 2) as u64
}

struct PageBuilder {
    /// One column of codes per dense feature.
    dense: Vec<Vec<u8>>,
    indptr: Vec<u32>,
    indices: Vec<u32>,
    data: Vec<u8>,
    rows: usize,
}

impl PageBuilder {
    fn new(n_dense: usize) -> Self {
        Self {
            dense: (0..n_dense).map(|_| Vec::with_capacity(PAGE_ROWS)).collect(),
            indptr: vec![0],
            indices: vec![],
            data: vec![],
            rows: 0,
        }
    }

    fn flush(&mut self, n_sparse: usize, out: &mut impl Write, offset: &mut u64) -> anyhow::Result<PageInfo> {
        let rows = self.rows;
        // The CSR block must be well formed before it is written.
        CsMatViewI::<u8, u32, u32>::try_new((rows, n_sparse), &self.indptr, &self.indices, &self.data)
            .map_err(|(_, _, _, e)| anyhow::anyhow!("internal: malformed sparse page: {e}"))?;
        let n_dense_bytes = rows * self.dense.len();
        let written = align(n_dense_bytes, 4) + 4 * (rows + 1) + 5 * self.data.len();
        // The page's bytes, in order, each hashed as it is written.
        let mut hash = Xxh64::new(0);
        for col in &self.dense {
            out.write_all(col)?;
            hash.update(col);
        }
        for part in [
            &ZEROS[..align(n_dense_bytes, 4) - n_dense_bytes],
            le_bytes(&self.indptr),
            le_bytes(&self.indices),
            &self.data,
            &ZEROS[..align(written, 8) - written],
        ] {
            out.write_all(part)?;
            hash.update(part);
        }
        let info = PageInfo {
            offset: *offset,
            rows: rows as u32,
            nnz: self.data.len() as u32,
            checksum: hash.digest(),
        };
        *offset += align(written, 8) as u64;
        self.dense.iter_mut().for_each(Vec::clear);
        self.indptr.truncate(1);
        self.indices.clear();
        self.data.clear();
        self.rows = 0;
        Ok(info)
    }
}

const ZEROS: [u8; 8] = [0; 8];

// The cache's integers are little-endian, written and read in place.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "the binned cache is little-endian"
);

/// The bytes of `v`, little-endian like the cache format.
fn le_bytes(v: &[u32]) -> &[u8] {
    // SAFETY: any u32 is 4 initialised bytes, u8 needs no alignment, and the target is
    // little-endian (asserted above).
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// Writes the cache for `ds` binned by `cuts` into `dir` (through a temporary directory
/// renamed into place) and returns its manifest.
pub fn build(
    ds: &Dataset,
    cuts: &Cuts,
    dir: &Path,
    fingerprint: &str,
    res: &mut MemoryReservation,
) -> anyhow::Result<CacheManifest> {
    let feats = &cuts.features;
    let dense: Vec<usize> = (0..feats.len()).filter(|&i| !feats[i].sparse).collect();
    let sparse: Vec<usize> = (0..feats.len()).filter(|&i| feats[i].sparse).collect();
    let columns = [ds.roles.label.clone(), ds.roles.group.clone()];
    let reader = FeatureReader::all(ds);
    let threads = rayon::current_num_threads() as u64;
    let scan = ds
        .scan()
        .with_columns(&columns)
        .with_features(&reader)
        .with_extra_row_bytes(2 * feats.len() as u64 + 4 * threads + 5);
    let (min_scan, what) = scan.min_bytes();
    let fixed = writer_bytes(feats.len(), 0);
    res.require(min_scan + fixed, format!("{what}, and one {PAGE_ROWS}-row page"))?;
    res.try_grow(fixed)?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = tempfile::Builder::new().prefix(".cache-").tempdir_in(parent)?;
    let file = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            tmp.path().join(name),
        )?))
    };
    let (mut bins, mut labels_out, mut groups_out) =
        (file("bins.bin")?, file("labels.bin")?, file("groups.bin")?);
    let mut genes = GeneIndex::default();
    let mut gene_res = res.new_empty();
    let mut page = PageBuilder::new(dense.len());
    let mut pages = vec![];
    let mut offset = 0u64;
    let mut counts = [0u64; 3];
    let (mut labels, mut groups) = (vec![], vec![]);
    let (mut labels_hash, mut groups_hash) = (Xxh64::new(0), Xxh64::new(0));
    // The scan sizes its batches from what is left; an eighth of that stays for the gene
    // index, which grows as genes are met (about 64 bytes a gene).
    let scan = scan.with_max_bytes((res.available() - res.available() / 8).max(min_scan));
    for item in scan.build(res)? {
        let b = item?;
        let path = &ds.files[b.file].path;
        let n = b.batch.num_rows();
        labels.clear();
        decode_labels(b.batch.column(0).as_ref(), b.first_row, &mut labels)
            .map_err(|e| e.file(path).column(&ds.roles.label))?;
        groups.clear();
        gene_res.try_grow(
            genes
                .encode(b.batch.column(1).as_ref(), b.first_row, &mut groups)
                .map_err(|e| e.file(path).column(&ds.roles.group))?,
        )?;
        for &l in &labels {
            counts[l as usize] += 1;
        }
        labels_out.write_all(&labels)?;
        labels_hash.update(&labels);
        groups_out.write_all(le_bytes(&groups))?;
        groups_hash.update(le_bytes(&groups));
        // Codes per feature, column-major, converted in parallel.
        let fb = reader.read(&b)?;
        let codes: Vec<Vec<u8>> = (0..feats.len())
            .into_par_iter()
            .map_init(Vec::new, |buf, j| {
                fb.fill(j, buf);
                buf.iter().map(|&x| feats[j].bin(x)).collect()
            })
            .collect();
        #[allow(clippy::needless_range_loop)]
        for r in 0..n {
            for (col, &j) in page.dense.iter_mut().zip(&dense) {
                col.push(codes[j][r]);
            }
            for (s, &j) in sparse.iter().enumerate() {
                let c = codes[j][r];
                if c != feats[j].zero_bin {
                    page.indices.push(s as u32);
                    page.data.push(c);
                }
            }
            page.indptr.push(page.data.len() as u32);
            page.rows += 1;
            if page.rows == PAGE_ROWS {
                pages.push(page.flush(sparse.len(), &mut bins, &mut offset)?);
            }
        }
    }
    if page.rows > 0 {
        pages.push(page.flush(sparse.len(), &mut bins, &mut offset)?);
    }
    for mut w in [bins, labels_out, groups_out] {
        w.flush()?;
    }
    // Every page is in the temporary directory; the manifest that makes it a cache is not.
    crate::memory::pause_point("bin");
    let manifest = CacheManifest {
        format: FORMAT.into(),
        version: VERSION,
        fingerprint: fingerprint.into(),
        rows: pages.iter().map(|p| p.rows as u64).sum(),
        pages,
        dense,
        sparse,
        genes: genes.names().to_vec(),
        class_counts: counts,
        cuts: cuts.clone(),
        labels_checksum: labels_hash.digest(),
        groups_checksum: groups_hash.digest(),
    };
    std::fs::write(tmp.path().join("manifest.json"), serde_json::to_vec(&manifest)?)?;
    if dir.exists() {
        // A cache for other data or an older format: replaced whole.
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).with_context(|| format!("cannot move the cache to {}", dir.display()))?;
    Ok(manifest)
}

/// Views little-endian `u32`s in place.
fn u32s(b: &[u8]) -> &[u32] {
    // SAFETY: the map is page-aligned and every block starts at a multiple of 4 (checked
    // below); any bit pattern is a valid u32, and the format is little-endian like every
    // target this engine builds for.
    let (pre, mid, _) = unsafe { b.align_to::<u32>() };
    assert!(pre.is_empty(), "page block misaligned");
    mid
}

/// A pass's hold on one page of the map, made by [`PageCache::page_slot`]. When the cache is
/// not resident, a slot that takes another page hands the one it held back to the kernel
/// (its mapped memory leaves the process's resident set), and so does a slot that is
/// dropped: a pass keeps at most a page a slot mapped, which callers price with
/// [`CacheManifest::streamed_bytes`].
pub struct PageSlot<'a> {
    cache: &'a PageCache,
    /// The page it holds.
    page: Option<usize>,
}

impl PageSlot<'_> {
    fn take(&mut self, i: usize) {
        if let Some(j) = self.page.replace(i).filter(|&j| j != i) {
            self.cache.release(j);
        }
    }
}

impl Drop for PageSlot<'_> {
    fn drop(&mut self) {
        if let Some(j) = self.page.take() {
            self.cache.release(j);
        }
    }
}

/// One page, borrowed from the map.
pub struct Page<'a> {
    pub first_row: u64,
    pub rows: usize,
    /// Codes of the dense features, column after column (`rows` bytes each).
    pub dense: &'a [u8],
    pub sparse: CsMatViewI<'a, u8, u32, u32>,
}

impl Page<'_> {
    /// The codes of dense feature `d` (its position among the dense features).
    #[inline]
    pub fn dense_column(&self, d: usize) -> &[u8] {
        &self.dense[d * self.rows..(d + 1) * self.rows]
    }

    /// The code of feature `j` (an index into the cuts) for page row `r`.
    #[inline]
    pub fn code(&self, r: usize, layout: &Layout, j: usize) -> u8 {
        match layout.position[j] {
            Position::Dense(d) => self.dense[d * self.rows + r],
            Position::Sparse(s) => {
                let ip = self.sparse.indptr();
                let ip = ip.raw_storage();
                let (lo, hi) = (ip[r] as usize, ip[r + 1] as usize);
                let idx = &self.sparse.indices()[lo..hi];
                match idx.binary_search(&(s as u32)) {
                    Ok(k) => self.sparse.data()[lo + k],
                    Err(_) => layout.zero_bin[j],
                }
            }
        }
    }
}

/// Where each feature is stored in a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Dense(usize),
    Sparse(usize),
}

/// Feature positions and zero bins, worked out once from the manifest.
#[derive(Debug, Clone)]
pub struct Layout {
    pub n_dense: usize,
    pub position: Vec<Position>,
    pub zero_bin: Vec<u8>,
}

/// An open cache: the manifest and the mapped pages.
pub struct PageCache {
    pub dir: PathBuf,
    pub manifest: CacheManifest,
    pub layout: Layout,
    map: Mmap,
    /// How many leading pages stay mapped once read ([`Self::set_kept_pages`]): all of them
    /// when the cache is resident.
    kept: std::sync::atomic::AtomicUsize,
    /// How many pages a pass may work on at once ([`Self::set_page_workers`]).
    page_workers: std::sync::atomic::AtomicUsize,
    /// Pages already checked in this process: their CSR block by sprs's structure check on
    /// the first view, and, when streamed, their bytes against the manifest's checksum on the
    /// first read. The file is never written in place, so later reads give the same bytes.
    checked: Vec<std::sync::atomic::AtomicBool>,
}

impl PageCache {
    /// Heap bytes the open cache holds (its manifest, layout and page flags; the mapped
    /// pages are not heap): what a stage that keeps the cache open prices for it.
    pub fn heap_bytes(&self) -> u64 {
        use std::mem::size_of;
        let m = &self.manifest;
        let cuts: u64 = m
            .cuts
            .features
            .iter()
            .map(|f| (size_of::<super::FeatureBins>() + f.name.len() + 4 * f.cuts.len()) as u64)
            .sum();
        let n_features = m.cuts.features.len();
        (m.pages.len() * (size_of::<PageInfo>() + 1)) as u64
            + 8 * (m.dense.len() + m.sparse.len()) as u64
            + crate::memory::names_bytes(&m.genes)
            + cuts
            + (n_features * (size_of::<Position>() + 1)) as u64
            + (m.format.len() + m.fingerprint.len() + self.dir.as_os_str().len()) as u64
    }

    pub fn open(dir: &Path, manifest: CacheManifest) -> anyhow::Result<Self> {
        let path = dir.join("bins.bin");
        // Passes rely on it to hand each page's rows to one worker (`par_pages`).
        if let Err(e) = manifest.check() {
            return Err(
                InputError::new(format!("the page cache has an inconsistent manifest ({e})"))
                    .file(dir.join("manifest.json"))
                    .hint(HINT)
                    .into(),
            );
        }
        let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        if file.metadata()?.len() != manifest.bins_bytes() {
            return Err(InputError::new("the page cache is incomplete")
                .file(&path)
                .hint(HINT)
                .into());
        }
        // SAFETY: the cache is written once under a temporary name and never modified in
        // place; a read-only map of it is stable.
        let map = unsafe { Mmap::map(&file)? };
        let mut position = vec![Position::Dense(0); manifest.cuts.features.len()];
        for (d, &j) in manifest.dense.iter().enumerate() {
            position[j] = Position::Dense(d);
        }
        for (s, &j) in manifest.sparse.iter().enumerate() {
            position[j] = Position::Sparse(s);
        }
        let layout = Layout {
            n_dense: manifest.dense.len(),
            position,
            zero_bin: manifest.cuts.features.iter().map(|f| f.zero_bin).collect(),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            layout,
            checked: (0..manifest.pages.len())
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            kept: std::sync::atomic::AtomicUsize::new(manifest.pages.len()),
            manifest,
            map,
            page_workers: std::sync::atomic::AtomicUsize::new(1),
        })
    }

    /// A slot for one page of a pass ([`PageSlot`]).
    pub fn page_slot(&self) -> PageSlot<'_> {
        PageSlot {
            cache: self,
            page: None,
        }
    }

    /// Page `i`, taken into `slot` ([`Self::read_into`]) and viewed.
    pub fn page<'a>(&'a self, i: usize, slot: &'a mut PageSlot<'_>) -> anyhow::Result<Page<'a>> {
        self.read_into(i, slot)?;
        self.view(i, slot)
    }

    /// Takes page `i` into `slot`; a pass calls it for the next page while it works on the
    /// current one, which [`Self::view`] then borrows.
    pub fn read_into(&self, i: usize, slot: &mut PageSlot<'_>) -> anyhow::Result<()> {
        self.read_columns(i, slot, None)
    }

    /// [`Self::read_into`]. When the page is not kept mapped, its bytes are faulted in
    /// now (`MADV_POPULATE_READ`), so that the pass that works on it meets no page faults:
    /// of its dense columns only those at the ascending positions `dense` when given (a
    /// level pass of a tree looks only at its sampled columns, the last one only at the
    /// split columns), and always the CSR block. A page this process has not yet checked is
    /// read whole, for its checksum.
    pub fn read_columns(
        &self,
        i: usize,
        slot: &mut PageSlot<'_>,
        dense: Option<&[usize]>,
    ) -> anyhow::Result<()> {
        slot.take(i);
        if self.is_kept(i) {
            return Ok(());
        }
        let info = self.manifest.pages[i];
        let (start, len) = (info.offset as usize, self.manifest.page_len(i) as usize);
        // A page is checked the first time this process reads it (a reused cache was also
        // checked whole when it was opened); hashing every read again cost a tenth of a
        // streamed training, for a file that is never written in place.
        if !self.checked[i].load(std::sync::atomic::Ordering::Acquire) {
            if super::checksum::xxh64(&self.map[start..start + len]) != info.checksum {
                slot.page = None;
                self.release(i);
                return Err(InputError::new(format!(
                    "cannot read page {i} of the binned cache (it does not match its checksum in the cache manifest)"
                ))
                .file(self.dir.join("bins.bin"))
                .hint(HINT)
                .into());
            }
            return Ok(());
        }
        let rows = info.rows as usize;
        let csr = align(rows * self.layout.n_dense, 4)..len;
        let populate = |r: std::ops::Range<usize>| {
            // Only a hint: without it (a kernel before 5.14) the pass takes the faults itself.
            let _ = self
                .map
                .advise_range(memmap2::Advice::PopulateRead, start + r.start, r.len());
        };
        match dense {
            None => populate(0..len),
            Some(cols) => {
                column_runs(cols).for_each(|(a, b)| populate(a * rows..b * rows));
                populate(csr);
            }
        }
        Ok(())
    }

    /// Calls `f` on every page in order: [`Self::par_pages`] with one worker, so that when
    /// the cache is not resident the reader thread maps the next page while `f` works on the
    /// current one, and at most two pages are mapped at once. The reader is not one of
    /// rayon's workers because `f` keeps those busy: on two cores, taking the next page in a
    /// `rayon::join` beside the work left one worker waiting for it, so the pass paid for
    /// every page's read in wall time.
    pub fn for_each_page(
        &self,
        dense: Option<&[usize]>,
        mut f: impl FnMut(Page<'_>) -> anyhow::Result<()> + Send,
    ) -> anyhow::Result<()> {
        // `()` per row takes no memory: the one worker needs no rows of its own.
        let mut no_rows = vec![(); self.manifest.rows as usize];
        self.par_pages(dense, &mut [&mut f], &mut no_rows, |f, page, _| f(page))
    }

    /// Calls `f(state, page, rows)` on every page, each page whole on one of `states.len()`
    /// workers, each worker with its own state; `rows` is the page's part of `per_row` (one
    /// item per cached row). Pages are handed out in order as workers come free. Against
    /// [`Self::for_each_page`], which splits every page among the threads, a pass wakes its
    /// workers once instead of once per page. Pages the cache keeps mapped go straight to
    /// the workers; a reader thread of its own maps each other page while the workers work,
    /// so at most `states.len() + 1` of those are mapped at once.
    pub fn par_pages<S: Send, T: Send>(
        &self,
        dense: Option<&[usize]>,
        states: &mut [S],
        per_row: &mut [T],
        f: impl Fn(&mut S, Page<'_>, &mut [T]) -> anyhow::Result<()> + Sync,
    ) -> anyhow::Result<()> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Mutex;
        let n_pages = self.manifest.pages.len();
        assert_eq!(
            per_row.len() as u64,
            self.manifest.rows,
            "one item per cached row"
        );
        /// `per_row`'s start, shared by the workers.
        struct Rows<T>(*mut T);
        // SAFETY: each page, so each run of rows, goes to one worker only (below).
        unsafe impl<T: Send> Sync for Rows<T> {}
        let base = Rows(per_row.as_mut_ptr());
        let base = &base;
        let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let fail = |e: anyhow::Error| {
            stop.store(true, Ordering::Relaxed);
            failed.lock().expect("no worker panicked").get_or_insert(e);
        };
        let work = |st: &mut S, i: usize, slot: &PageSlot<'_>| {
            let info = self.manifest.pages[i];
            // SAFETY: page `i` is handed out once (by a counter or a channel, below); its rows
            // start at `i * PAGE_ROWS` and pages are `PAGE_ROWS` rows, the last no more, adding
            // up to the cache's rows (`CacheManifest::check`, in `open`), which are `per_row`'s
            // length (asserted above); and `per_row` stays borrowed until every worker is done.
            let rows =
                unsafe { std::slice::from_raw_parts_mut(base.0.add(i * PAGE_ROWS), info.rows as usize) };
            if let Err(e) = self.view(i, slot).and_then(|page| f(st, page, rows)) {
                fail(e);
            }
        };
        // The kept pages (every page, when the cache is resident) stay mapped: the workers
        // take them by a counter. A reader thread of its own maps each other page in turn and
        // holds it until a worker takes it (a rendezvous channel); handing kept pages through
        // it too cost a thread wake-up a page.
        let kept = self.kept_pages().min(n_pages);
        let next = AtomicUsize::new(0);
        let (give, given) = std::sync::mpsc::sync_channel::<anyhow::Result<(usize, PageSlot<'_>)>>(0);
        let given = Mutex::new(given);
        std::thread::scope(|ts| {
            if kept < n_pages {
                ts.spawn(move || {
                    for i in kept..n_pages {
                        let mut slot = self.page_slot();
                        let read = self.read_columns(i, &mut slot, dense).map(|()| (i, slot));
                        let bad = read.is_err();
                        if give.send(read).is_err() || bad {
                            break;
                        }
                    }
                });
            } else {
                drop(give);
            }
            rayon::scope(|s| {
                for st in states.iter_mut() {
                    let (next, given, stop, work, fail) = (&next, &given, &stop, &work, &fail);
                    s.spawn(move |_| {
                        let mut slot = self.page_slot();
                        while !stop.load(Ordering::Relaxed) {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i < kept {
                                match self.read_columns(i, &mut slot, dense) {
                                    Ok(()) => work(st, i, &slot),
                                    Err(e) => fail(e),
                                }
                                continue;
                            }
                            // The lock is held while waiting, so pages go out in order.
                            let msg = given.lock().expect("no worker panicked").recv();
                            match msg {
                                Ok(Ok((i, slot))) => work(st, i, &slot),
                                Ok(Err(e)) => fail(e),
                                Err(_) => break,
                            }
                        }
                    });
                }
            });
            // Ends a reader still waiting to hand over a page nobody will take.
            drop(given);
        });
        match failed.into_inner().expect("no worker panicked") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Hands page `i`'s mapped memory back to the kernel unless the page is kept; a
    /// later view of it faults it in again from the file.
    fn release(&self, i: usize) {
        if self.is_kept(i) {
            return;
        }
        let info = self.manifest.pages[i];
        // Only the memory pages wholly inside this page: one shared with a neighbour that a
        // pass is working on would be faulted in again at once, and the kernel's fault-around
        // would then map back up to 64 KiB of this page with it, never to be handed back.
        const MEM_PAGE: usize = 4096;
        let lo = align(info.offset as usize, MEM_PAGE);
        let hi = (info.offset + self.manifest.page_len(i)) as usize / MEM_PAGE * MEM_PAGE;
        if hi > lo {
            // SAFETY: a read-only shared map of a file that is never written in place: the
            // dropped pages are read again from the file, with the same bytes.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, lo, hi - lo)
            };
        }
    }

    /// Page `i`, borrowed from the map; `slot` must hold it ([`Self::read_into`]).
    pub fn view<'a>(&'a self, i: usize, slot: &'a PageSlot<'_>) -> anyhow::Result<Page<'a>> {
        let info = self.manifest.pages[i];
        let rows = info.rows as usize;
        let nnz = info.nnz as usize;
        let start = info.offset as usize;
        let dense_len = rows * self.layout.n_dense;
        let len = page_bytes(rows, self.layout.n_dense, nnz) as usize;
        assert_eq!(slot.page, Some(i), "page {i} viewed before it was read");
        let bytes = &self.map[start..start + len];
        let csr = &bytes[align(dense_len, 4)..];
        let indptr = &u32s(&csr[..4 * (rows + 1)])[..rows + 1];
        let indices = &u32s(&csr[4 * (rows + 1)..4 * (rows + 1) + 4 * nnz])[..nnz];
        let data = &csr[4 * (rows + 1) + 4 * nnz..4 * (rows + 1) + 5 * nnz];
        let shape = (rows, self.manifest.sparse.len());
        let ok = std::sync::atomic::Ordering::Acquire;
        let sparse = if self.checked[i].load(ok) {
            // SAFETY: this page passed `try_new` before, and the file is written once under a
            // temporary name and never modified in place, so a map or a read of it gives the
            // same bytes again.
            unsafe { CsMatViewI::new_unchecked(sprs::CompressedStorage::CSR, shape, indptr, indices, data) }
        } else {
            let view = CsMatViewI::try_new(shape, indptr, indices, data).map_err(|(_, _, _, e)| {
                InputError::new(format!("page {i} of the cache is corrupt: {e}"))
                    .file(self.dir.join("bins.bin"))
                    .hint(HINT)
            })?;
            self.checked[i].store(true, std::sync::atomic::Ordering::Release);
            view
        };
        let first_row = i as u64 * PAGE_ROWS as u64;
        Ok(Page {
            first_row,
            rows,
            dense: &bytes[..dense_len],
            sparse,
        })
    }

    /// How many workers a pass may give a page each ([`Self::par_pages`]): the trainer sets
    /// its thread count when the budget holds that many pages and one more, else 1 (each
    /// page split among the threads, [`Self::for_each_page`]).
    pub fn set_page_workers(&self, n: usize) {
        self.page_workers
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn page_workers(&self) -> usize {
        self.page_workers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether pages stay resident after use (the budget holds the whole cache):
    /// [`Self::set_kept_pages`] with all pages or none.
    pub fn set_resident(&self, yes: bool) {
        self.set_kept_pages(if yes { self.manifest.pages.len() } else { 0 });
    }

    pub fn is_resident(&self) -> bool {
        self.kept_pages() >= self.manifest.pages.len()
    }

    /// Keeps the first `pages` pages mapped once read, and streams the rest (each handed
    /// back to the kernel after use): a budget that holds part of the cache keeps that part,
    /// so that a level pass reads only the others from the file again. Pages that were kept
    /// and no longer are are handed back now. Call it between passes.
    pub fn set_kept_pages(&self, pages: usize) {
        let n = self.manifest.pages.len();
        let pages = pages.min(n);
        let before = self.kept.swap(pages, std::sync::atomic::Ordering::Relaxed).min(n);
        if pages >= before {
            return;
        }
        const MEM_PAGE: usize = 4096;
        // The memory pages from the first page no longer kept to the end of the last one,
        // except one shared with a page still kept.
        let lo = align(self.manifest.pages[pages].offset as usize, MEM_PAGE);
        let last = &self.manifest.pages[before - 1];
        let end = (last.offset + self.manifest.page_len(before - 1)) as usize;
        let hi = if before == n {
            self.map.len()
        } else {
            end / MEM_PAGE * MEM_PAGE
        };
        if hi > lo {
            // SAFETY: as in `release`: a read-only map of a file never written in place.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, lo, hi - lo)
            };
        }
    }

    pub fn kept_pages(&self) -> usize {
        self.kept.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn is_kept(&self, i: usize) -> bool {
        i < self.kept_pages()
    }

    /// Reads `name`, which must have `len` bytes and match checksum `want`.
    fn read_checked(&self, name: &str, len: u64, want: u64) -> anyhow::Result<Vec<u8>> {
        let path = self.dir.join(name);
        let bad = |m: String| InputError::new(m).file(&path).hint(HINT);
        let v = std::fs::read(&path).map_err(|e| bad(format!("cannot read the binned cache: {e}")))?;
        if v.len() as u64 != len {
            return Err(bad(format!("{} bytes where the cache manifest says {len}", v.len())).into());
        }
        if super::checksum::xxh64(&v) != want {
            return Err(bad("does not match its checksum in the cache manifest".into()).into());
        }
        Ok(v)
    }

    /// Class codes of every row, checked against the manifest's checksum; a code above 2 is
    /// refused.
    pub fn labels(&self) -> anyhow::Result<Vec<u8>> {
        let m = &self.manifest;
        let v = self.read_checked("labels.bin", m.rows, m.labels_checksum)?;
        if let Some(i) = v.iter().position(|&c| c > 2) {
            return Err(InputError::new(format!(
                "class code {} in the binned cache; codes are 0, 1 and 2",
                v[i]
            ))
            .file(self.dir.join("labels.bin"))
            .row(i as u64)
            .hint(HINT)
            .into());
        }
        Ok(v)
    }

    /// Gene index of every row, checked against the manifest's checksum; an index outside
    /// the manifest's genes is refused.
    pub fn groups(&self) -> anyhow::Result<Vec<u32>> {
        let m = &self.manifest;
        let bytes = self.read_checked("groups.bin", 4 * m.rows, m.groups_checksum)?;
        let genes = m.genes.len();
        let v: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        drop(bytes);
        if let Some(i) = v.iter().position(|&g| g as usize >= genes) {
            return Err(InputError::new(format!(
                "gene index {} in the binned cache, which lists {genes} genes",
                v[i]
            ))
            .file(self.dir.join("groups.bin"))
            .row(i as u64)
            .hint(HINT)
            .into());
        }
        Ok(v)
    }
}
