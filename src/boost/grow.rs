//! Growing one tree depth-wise over the page cache.
//!
//! One pass over the pages per level moves the training rows of each split node to its
//! children (a row partition kept per segment of a page) and builds the histogram of the
//! smaller child of each split; the larger child's is the parent's minus the smaller's. The
//! rows that do not train are routed once, when the tree is grown. Histograms sum quantised gradients as integers
//! ([`super::hist`]), so the tree is the same for a seed whatever the thread count or
//! budget; once its shape is fixed, each leaf's value is refitted from the true gradients
//! of its rows, as LightGBM's `quant_train_renew_leaf` does.

use std::sync::Mutex;

use rayon::prelude::*;

use super::hist::{add_groups, Columns, GradPair, Histogram, Packed, PageFeatures, QPair, Quantizer};
use super::tree::{best_split, Split, SplitParams, Step, Tree};
use super::TrainParams;
use crate::binning::cache::{Layout, Page, PageCache, Position, PAGE_ROWS};

/// A split node: the column its rows are split by, and how.
#[derive(Clone, Copy)]
struct Route {
    /// The split feature's position among the page's dense columns, when it is dense.
    dense: Option<usize>,
    feature: usize,
    step: Step,
}

/// A node's routing in a tree whose splits are all on dense columns: a table row read
/// without a branch. A leaf reads some split column and goes to itself either way, so a
/// row can take as many steps as the tree has levels wherever it stops.
#[derive(Clone, Copy)]
struct Hop {
    /// The split column's position among the page's dense columns.
    col: u32,
    step: Step,
}

impl Hop {
    /// The table for `routes`, or `None` when some split reads a sparse column (or none
    /// splits).
    fn table(routes: &[Option<Route>]) -> Option<Vec<Hop>> {
        let any = routes.iter().flatten().next()?;
        let idle = any.dense? as u32;
        routes
            .iter()
            .enumerate()
            .map(|(n, r)| match r {
                None => Some(Hop {
                    col: idle,
                    step: Step {
                        bin: 0,
                        missing: None,
                        default_left: true,
                        left: n as u32,
                        right: n as u32,
                    },
                }),
                Some(r) => Some(Hop {
                    col: r.dense? as u32,
                    step: r.step,
                }),
            })
            .collect()
    }
}

/// One tree's gradients: the true ones (for leaf values, and to tell which rows train) and
/// their quantised copies (for histograms).
pub(crate) struct Gradients<'a> {
    pub grad: &'a [f32],
    pub hess: &'a [f32],
    pub q: &'a [QPair],
    pub quant: Quantizer,
}

/// The quantised sum over every row (a row with a zero hessian is quantised to zero).
fn total(gr: &Gradients<'_>) -> Packed {
    gr.q.par_iter()
        .map(|q| q.packed())
        .reduce(|| Packed::ZERO, Packed::plus)
}

pub(crate) fn grow(
    cache: &PageCache,
    pf: &PageFeatures,
    features: &[usize],
    gr: &Gradients<'_>,
    (node, part): (&mut [u32], &mut [u16]),
    params: &TrainParams,
    sp: &SplitParams,
) -> anyhow::Result<Tree> {
    let cuts = &cache.manifest.cuts;
    let eta = params.learning_rate;
    let q = &gr.quant;
    let weight = |p: Packed| -> f32 {
        let [g, h] = q.pair(p);
        (sp.weight(g, h) * eta) as f32
    };
    let cols = pf.columns(features);
    let root_total = total(gr);
    let mut tree = Tree::root(weight(root_total), q.pair(root_total)[1] as f32);
    let mut parts = Partition::new(cache, part, node);
    // The root's histogram: one pass, which also gathers each segment's training rows.
    let mut built = parts.level(cache, pf, &cols, gr, None, &[0])?;
    let mut root_hist = built.pop().expect("one histogram");
    root_hist.fill_sparse_zeros(cuts, pf, root_total);
    // Nodes of the current level with their histograms and sums.
    let mut level: Vec<(usize, Histogram, Packed)> = vec![(0, root_hist, root_total)];
    // Every split so far, by node: the finishing pass routes the rows that did not train
    // through them.
    let mut routes: Vec<Option<Route>> = vec![None];
    let mut depth = 0;
    // The last level's splits, when growth stops at the depth limit rather than for want of
    // a split.
    let mut last = None;
    while depth < params.max_depth {
        let splits: Vec<Option<Split>> = level
            .par_iter()
            .map(|(_, h, tot)| best_split(h, *tot, q, cuts, &pf.offsets, features, sp))
            .collect();
        if splits.iter().all(Option::is_none) {
            break;
        }
        let mut now: Vec<Option<Route>> = vec![None; tree.len() + 2 * splits.len()];
        let mut children = vec![];
        for ((id, _, _), s) in level.iter().zip(&splits) {
            let Some(s) = s else { continue };
            let fb = &cuts.features[s.feature];
            let (lp, rp) = (q.pair(s.left), q.pair(s.right));
            let (l, r) = tree.split(
                *id,
                s,
                fb.threshold(s.bin),
                (weight(s.left), weight(s.right)),
                (lp[1], rp[1]),
            );
            now[*id] = Some(Route {
                dense: match cache.layout.position[s.feature] {
                    Position::Dense(d) => Some(d),
                    Position::Sparse(_) => None,
                },
                feature: s.feature,
                step: tree.step(*id, fb.has_missing.then(|| fb.missing_code())),
            });
            children.push((*id, l, r, *s));
        }
        now.truncate(tree.len());
        routes.resize(tree.len(), None);
        for (all, r) in routes.iter_mut().zip(&now) {
            if r.is_some() {
                *all = *r;
            }
        }
        depth += 1;
        if depth == params.max_depth {
            // The children are leaves: the finishing pass splits rows between them.
            last = Some(now);
            break;
        }
        // Build the smaller child of each split (by hessian), subtract for the other.
        let mut small = vec![];
        for &(_, l, r, s) in &children {
            small.push(if s.left.h() <= s.right.h() {
                (l, s.left)
            } else {
                (r, s.right)
            });
        }
        let builds: Vec<usize> = small.iter().map(|&(c, _)| c).collect();
        let mut hists = parts.level(cache, pf, &cols, gr, Some(&now), &builds)?;
        let mut parents: std::collections::HashMap<usize, Histogram> =
            level.into_iter().map(|(id, h, _)| (id, h)).collect();
        let mut next = Vec::with_capacity(2 * children.len());
        for (k, (pid, l, r, s)) in children.into_iter().enumerate() {
            let mut built = std::mem::replace(&mut hists[k], Histogram { bins: vec![] });
            built.fill_sparse_zeros(cuts, pf, small[k].1);
            let parent = parents.remove(&pid).expect("parent histogram kept");
            let mut other = built.clone();
            other.subtract_from(&parent);
            let (lh, rh) = if small[k].0 == l {
                (built, other)
            } else {
                (other, built)
            };
            next.push((l, lh, s.left));
            next.push((r, rh, s.right));
        }
        level = next;
    }
    parts.finish(cache, last.as_deref(), &routes, depth)?;
    // The shape is fixed: each leaf's value from its rows' true gradients.
    for (n, [g, h]) in parts.leaf_sums(tree.len(), gr).into_iter().enumerate() {
        if tree.is_leaf(n) && h > 0.0 {
            tree.value[n] = (sp.weight(g, h) * eta) as f32;
            tree.sum_hess[n] = h as f32;
        }
    }
    Ok(tree)
}

// A segment's row positions are `u16`.
const _: () = assert!(PAGE_ROWS <= 1 << 16);

/// Which rows of a segment train this tree, grouped by node (LightGBM's `DataPartition`,
/// kept per segment of a page): a level pass reads only the rows of the nodes it splits and
/// builds, where routing every row cost about a fifth of the training; the rows that do not
/// train (validation, rows of genes left out, rows subsampling left out) are routed once, when
/// the tree is grown.
struct Partition<'a> {
    /// Whether each page goes whole to one worker (then a segment is a page), or is split
    /// among the threads (then a segment is one thread's share of it).
    whole: bool,
    workers: usize,
    threads: usize,
    /// Rows of a segment (the last of a page may hold fewer).
    seg_rows: usize,
    /// Segments of a page (the last page may have fewer).
    per_page: usize,
    /// By segment, page after page; each is locked by the one worker that has its page.
    segs: Vec<Mutex<Segment<'a>>>,
}

/// One segment's rows: their entries in the partition array and their nodes. `part` holds
/// page rows: first the `active` ones that train, grouped by node, each node's in ascending
/// order (its range); then the others, ascending. `node` is filled when the tree is grown.
struct Segment<'a> {
    part: &'a mut [u16],
    node: &'a mut [u32],
    active: usize,
    /// By node: its rows' positions in `part`; empty once it splits.
    ranges: Vec<(u16, u16)>,
}

impl Segment<'_> {
    /// Moves the training rows of each node that has a route to its children.
    fn split(&mut self, spill: &mut [u16], routes: &[Option<Route>], page: &Page<'_>, layout: &Layout) {
        self.ranges.resize(routes.len(), (0, 0));
        for (n, rt) in routes.iter().enumerate() {
            let Some(rt) = rt else { continue };
            let (a, z) = self.ranges[n];
            let rows = &mut self.part[a as usize..z as usize];
            let left = match rt.dense {
                Some(d) => {
                    let col = page.dense_column(d);
                    split_rows(rows, spill, |r| rt.step.goes_left(col[r as usize]))
                }
                None => split_rows(rows, spill, |r| {
                    rt.step.goes_left(page.code(r as usize, layout, rt.feature))
                }),
            } as u16;
            self.ranges[n] = (0, 0);
            self.ranges[rt.step.left as usize] = (a, a + left);
            self.ranges[rt.step.right as usize] = (a + left, z);
        }
    }
}

impl<'a> Partition<'a> {
    /// The partition of the cache's rows, whose entries are `part` and nodes `node` (one
    /// item per cached row each).
    fn new(cache: &PageCache, part: &'a mut [u16], node: &'a mut [u32]) -> Self {
        let threads = rayon::current_num_threads();
        let n_pages = cache.manifest.pages.len();
        let workers = cache.page_workers().min(threads);
        let whole = workers > 1 && n_pages >= 2 * workers;
        let (seg_rows, per_page) = if whole {
            (PAGE_ROWS, 1)
        } else {
            (PAGE_ROWS.div_ceil(threads), threads)
        };
        let mut segs = Vec::with_capacity(n_pages * per_page);
        for (part, node) in part.chunks_mut(PAGE_ROWS).zip(node.chunks_mut(PAGE_ROWS)) {
            for (part, node) in part.chunks_mut(seg_rows).zip(node.chunks_mut(seg_rows)) {
                segs.push(Mutex::new(Segment {
                    part,
                    node,
                    active: 0,
                    ranges: vec![],
                }));
            }
        }
        Self {
            whole,
            workers,
            threads,
            seg_rows,
            per_page,
            segs,
        }
    }

    /// Calls `f(state, segment, page, first)` on every segment, where `first` is the
    /// segment's first page row: pages whole to `states`' workers, or each page split among
    /// the threads.
    fn each<S: Send>(
        &self,
        cache: &PageCache,
        need: &[usize],
        states: &mut [S],
        f: impl Fn(&mut S, &mut Segment<'a>, &Page<'_>, usize) + Sync,
    ) -> anyhow::Result<()> {
        let lock = |s: usize| self.segs[s].lock().expect("no pass panicked");
        if self.whole {
            // `()` per row takes no memory: the segments hold the rows.
            let mut no_rows = vec![(); cache.manifest.rows as usize];
            cache.par_pages(
                Some(need),
                &mut states[..self.workers],
                &mut no_rows,
                |st, page, _| {
                    f(st, &mut lock(page.first_row as usize / PAGE_ROWS), &page, 0);
                    Ok(())
                },
            )
        } else {
            cache.for_each_page(Some(need), |page| {
                let first_seg = page.first_row as usize / PAGE_ROWS * self.per_page;
                states[..page.rows.div_ceil(self.seg_rows)]
                    .par_iter_mut()
                    .enumerate()
                    .for_each(|(t, st)| f(st, &mut lock(first_seg + t), &page, t * self.seg_rows));
                Ok(())
            })
        }
    }

    /// One pass over every page: with `routes`, moves the training rows of each node that has
    /// one to its children; without, gathers each segment's training rows as the root's.
    /// Then adds the rows of each node in `builds` to its histogram.
    fn level(
        &mut self,
        cache: &PageCache,
        pf: &PageFeatures,
        cols: &Columns,
        gr: &Gradients<'_>,
        routes: Option<&[Option<Route>]>,
        builds: &[usize],
    ) -> anyhow::Result<Vec<Histogram>> {
        let hist_slots = *pf.offsets.last().expect("offsets end with the total");
        // The dense columns this pass reads: the split columns it routes by and the columns
        // it builds histograms of; a streamed page is read for those only.
        let mut need: Vec<usize> = routes
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|r| r.dense)
            .collect();
        if !builds.is_empty() {
            need.extend(&cols.dense);
        }
        need.sort_unstable();
        need.dedup();
        let mut states: Vec<(Vec<Histogram>, Buckets)> = (0..self.threads)
            .map(|_| {
                (
                    builds.iter().map(|_| Histogram::zeros(hist_slots)).collect(),
                    Buckets::new(self.seg_rows, builds.len()),
                )
            })
            .collect();
        let layout = &cache.layout;
        self.each(cache, &need, &mut states, |(hs, b), seg, page, first| {
            let p0 = page.first_row as usize;
            match routes {
                None => {
                    // The rows that train first, then the others, each in page order.
                    for (i, p) in seg.part.iter_mut().enumerate() {
                        *p = (first + i) as u16;
                    }
                    let k = split_rows(seg.part, &mut b.spill, |r| gr.hess[p0 + r as usize] != 0.0);
                    seg.active = k;
                    seg.ranges.clear();
                    seg.ranges.push((0, k as u16));
                }
                Some(routes) => seg.split(&mut b.spill, routes, page, layout),
            }
            if builds.is_empty() {
                return;
            }
            // Each built node's gradient pairs beside its rows, so the histogram loops read
            // both front to back.
            for (g, &c) in b.groups.iter_mut().zip(builds) {
                let (a, z) = seg.ranges[c];
                *g = (a as usize, z as usize);
                for (w, &r) in b.gh[a as usize..z as usize]
                    .iter_mut()
                    .zip(&seg.part[a as usize..z as usize])
                {
                    *w = gr.q[p0 + r as usize].packed();
                }
            }
            let n = seg.active;
            add_groups(hs, page, pf, cols, &b.groups, &seg.part[..n], &b.gh[..n]);
        })?;
        // Add the threads' histograms in thread order.
        let mut out = states.swap_remove(0).0;
        for (hs, _) in states {
            for (a, b) in out.iter_mut().zip(&hs) {
                a.add(b);
            }
        }
        Ok(out)
    }

    /// The pass that ends a tree of `depth` levels whose splits are `routes` (by node):
    /// splits the training rows by the `last` level's splits, when growth stopped at the
    /// depth limit, and writes every row's leaf into its node, a training row's from its
    /// leaf's range and any other row's by routing it from the root.
    fn finish(
        &mut self,
        cache: &PageCache,
        last: Option<&[Option<Route>]>,
        routes: &[Option<Route>],
        depth: usize,
    ) -> anyhow::Result<()> {
        if depth == 0 {
            for seg in &mut self.segs {
                seg.get_mut().expect("no pass panicked").node.fill(0);
            }
            return Ok(());
        }
        let mut need: Vec<usize> = routes.iter().flatten().filter_map(|r| r.dense).collect();
        need.sort_unstable();
        need.dedup();
        let hops = Hop::table(routes);
        let layout = &cache.layout;
        let mut spill = vec![vec![0u16; self.seg_rows]; self.threads];
        self.each(cache, &need, &mut spill, |spill, seg, page, first| {
            if let Some(last) = last {
                seg.split(spill, last, page, layout);
            }
            let Segment {
                part,
                node,
                active,
                ranges,
            } = seg;
            for (n, &(a, z)) in ranges.iter().enumerate() {
                for &r in &part[a as usize..z as usize] {
                    node[r as usize - first] = n as u32;
                }
            }
            let others = &part[*active..];
            if let Some(hops) = &hops {
                // A table row a level, without a branch: a leaf goes to itself.
                for &r in others {
                    let mut nd = 0;
                    for _ in 0..depth {
                        let h = &hops[nd];
                        nd = h.step.child(page.dense[h.col as usize * page.rows + r as usize]);
                    }
                    node[r as usize - first] = nd as u32;
                }
            } else {
                for &r in others {
                    let mut nd = 0;
                    while let Some(rt) = routes.get(nd).copied().flatten() {
                        nd = rt.step.child(page.code(r as usize, layout, rt.feature));
                    }
                    node[r as usize - first] = nd as u32;
                }
            }
        })
    }

    /// Each node's true gradient and hessian sums over its training rows (a split node's are
    /// zero), as `grow` needs them for the leaves: summed page by page, each page's sums
    /// over its rows in order and the pages' added in order, so the figure never depends on
    /// the thread count or on how pages were split.
    fn leaf_sums(&mut self, n_nodes: usize, gr: &Gradients<'_>) -> Vec<GradPair> {
        let parts: Vec<Vec<GradPair>> = self
            .segs
            .par_chunks_mut(self.per_page)
            .enumerate()
            .map(|(p, segs)| {
                let mut s = vec![[0.0f64; 2]; n_nodes];
                let r0 = p * PAGE_ROWS;
                // A node's rows in a segment are in page order, and the segments are, so
                // each sum adds its rows in page order.
                for seg in segs {
                    let seg = seg.get_mut().expect("no pass panicked");
                    for (e, &(a, z)) in s.iter_mut().zip(&seg.ranges) {
                        let [mut g, mut h] = *e;
                        for &r in &seg.part[a as usize..z as usize] {
                            g += gr.grad[r0 + r as usize] as f64;
                            h += gr.hess[r0 + r as usize] as f64;
                        }
                        *e = [g, h];
                    }
                }
                s
            })
            .collect();
        let mut out = vec![[0.0f64; 2]; n_nodes];
        for p in parts {
            for (o, x) in out.iter_mut().zip(p) {
                o[0] += x[0];
                o[1] += x[1];
            }
        }
        out
    }
}

/// Moves the `rows` for which `left` holds to the front and the others after them, each side
/// in its order; returns how many hold. `spill` holds the others meanwhile.
#[inline]
fn split_rows(rows: &mut [u16], spill: &mut [u16], left: impl Fn(u16) -> bool) -> usize {
    let (mut l, mut r) = (0, 0);
    for i in 0..rows.len() {
        let row = rows[i];
        let goes = left(row);
        // Written both ways and the cursors moved by the test: no branch to mispredict.
        rows[l] = row;
        spill[r] = row;
        l += goes as usize;
        r += !goes as usize;
    }
    rows[l..].copy_from_slice(&spill[..r]);
    l
}

/// One thread's scratch for a level pass over a segment.
pub(crate) struct Buckets {
    /// The rows that go right while a node's rows are split.
    spill: Vec<u16>,
    /// The quantised gradients of the built rows, at their rows' positions.
    gh: Vec<Packed>,
    /// Each built node's `(start, end)` in the segment's partition.
    groups: Vec<(usize, usize)>,
}

impl Buckets {
    fn new(rows: usize, n_build: usize) -> Self {
        Self {
            spill: vec![0; rows],
            gh: vec![Packed::ZERO; rows],
            groups: vec![(0, 0); n_build],
        }
    }

    /// Heap bytes of one thread's scratch.
    pub(crate) fn bytes(rows: usize, n_build: usize) -> u64 {
        (2 * rows + std::mem::size_of::<Packed>() * rows + std::mem::size_of::<(usize, usize)>() * n_build)
            as u64
    }
}

/// Heap bytes of the partition's per-segment state for `rows` rows: each node's range in
/// every segment (a page has at most one segment a thread).
pub(crate) fn segment_bytes(rows: u64, max_depth: usize, threads: u64) -> u64 {
    let segs = rows.div_ceil(PAGE_ROWS as u64) * threads;
    segs * (std::mem::size_of::<Mutex<Segment>>() as u64
        + Tree::max_nodes(max_depth) * std::mem::size_of::<(u16, u16)>() as u64)
}
