//! Growing one tree depth-wise over the page cache.
//!
//! One pass over the pages per level routes every row (training and validation alike) to its
//! child and builds the histogram of the smaller child of each split; the larger child's is
//! the parent's minus the smaller's. Histograms sum quantised gradients as integers
//! ([`super::hist`]), so the tree is the same for a seed whatever the thread count or
//! budget; once its shape is fixed, each leaf's value is refitted from the true gradients
//! of its rows, as LightGBM's `quant_train_renew_leaf` does.

use rayon::prelude::*;

use super::hist::{add_groups, Columns, GradPair, Histogram, Packed, PageFeatures, QPair, Quantizer};
use super::tree::{best_split, Split, SplitParams, Step, Tree};
use super::TrainParams;
use crate::binning::cache::{Page, PageCache, Position, PAGE_ROWS};

/// What one level pass does at a node.
#[derive(Clone, Copy)]
struct Route {
    /// The split feature's position among the page's dense columns, when it is dense.
    dense: Option<usize>,
    feature: usize,
    step: Step,
}

/// A node's routing in a level pass whose splits are all on dense columns: a table row read
/// without a branch. A node that does not split this level reads some routed column and
/// goes to itself either way.
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

/// Each leaf's true gradient and hessian sums, over rows with a non-zero hessian; summed in
/// page-sized chunks added in order, so the figure never depends on the thread count.
fn leaf_sums(tree: &Tree, gr: &Gradients<'_>, node: &[u32]) -> Vec<GradPair> {
    let parts: Vec<Vec<GradPair>> = node
        .par_chunks(PAGE_ROWS)
        .enumerate()
        .map(|(c, nodes)| {
            let mut s = vec![[0.0f64; 2]; tree.len()];
            let off = c * PAGE_ROWS;
            for (i, &nd) in nodes.iter().enumerate() {
                let h = gr.hess[off + i];
                if h != 0.0 {
                    let e = &mut s[nd as usize];
                    e[0] += gr.grad[off + i] as f64;
                    e[1] += h as f64;
                }
            }
            s
        })
        .collect();
    let mut out = vec![[0.0f64; 2]; tree.len()];
    for p in parts {
        for (o, x) in out.iter_mut().zip(p) {
            o[0] += x[0];
            o[1] += x[1];
        }
    }
    out
}

pub(crate) fn grow(
    cache: &PageCache,
    pf: &PageFeatures,
    features: &[usize],
    gr: &Gradients<'_>,
    node: &mut [u32],
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
    node.fill(0);
    let cols = pf.columns(features);
    let root_total = total(gr);
    let mut tree = Tree::root(weight(root_total), q.pair(root_total)[1] as f32);
    // The root's histogram: one pass, nothing to route.
    let mut built = level_pass(cache, pf, &cols, gr, node, &[None], &[0], 1)?;
    let mut root_hist = built.pop().expect("one histogram");
    root_hist.fill_sparse_zeros(cuts, pf, root_total);
    // Nodes of the current level with their histograms and sums.
    let mut level: Vec<(usize, Histogram, Packed)> = vec![(0, root_hist, root_total)];
    for depth in 0..params.max_depth {
        let splits: Vec<Option<Split>> = level
            .par_iter()
            .map(|(_, h, tot)| best_split(h, *tot, q, cuts, &pf.offsets, features, sp))
            .collect();
        if splits.iter().all(Option::is_none) {
            break;
        }
        let mut routes: Vec<Option<Route>> = vec![None; tree.len() + 2 * splits.len()];
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
            routes[*id] = Some(Route {
                dense: match cache.layout.position[s.feature] {
                    Position::Dense(d) => Some(d),
                    Position::Sparse(_) => None,
                },
                feature: s.feature,
                step: tree.step(*id, fb.has_missing.then(|| fb.missing_code())),
            });
            children.push((*id, l, r, *s));
        }
        routes.truncate(tree.len());
        if depth + 1 == params.max_depth {
            // The children are leaves: route rows to them, build nothing.
            level_pass(cache, pf, &cols, gr, node, &routes, &[], 0)?;
            break;
        }
        // Build the smaller child of each split (by hessian), subtract for the other.
        let mut slot = vec![-1i32; tree.len()];
        let mut small = vec![];
        for (k, &(_, l, r, s)) in children.iter().enumerate() {
            let (c, tot) = if s.left.h() <= s.right.h() {
                (l, s.left)
            } else {
                (r, s.right)
            };
            slot[c] = k as i32;
            small.push((c, tot));
        }
        let mut hists = level_pass(cache, pf, &cols, gr, node, &routes, &slot, children.len())?;
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
    // The shape is fixed: each leaf's value from its rows' true gradients.
    for (n, [g, h]) in leaf_sums(&tree, gr, node).into_iter().enumerate() {
        if tree.is_leaf(n) && h > 0.0 {
            tree.value[n] = (sp.weight(g, h) * eta) as f32;
            tree.sum_hess[n] = h as f32;
        }
    }
    Ok(tree)
}

/// One pass over every page: moves each row whose node has a route to its child, then adds
/// the row to the histogram of its node's build slot (when it has one).
#[allow(clippy::too_many_arguments)]
fn level_pass(
    cache: &PageCache,
    pf: &PageFeatures,
    cols: &Columns,
    gr: &Gradients<'_>,
    node: &mut [u32],
    routes: &[Option<Route>],
    slots: &[i32],
    n_build: usize,
) -> anyhow::Result<Vec<Histogram>> {
    let hist_slots = *pf.offsets.last().expect("offsets end with the total");
    let threads = rayon::current_num_threads();
    let mut per_thread: Vec<Vec<Histogram>> = (0..threads)
        .map(|_| (0..n_build).map(|_| Histogram::zeros(hist_slots)).collect())
        .collect();
    let layout = &cache.layout;
    // Per thread, its rows of a page grouped by build slot (a counting sort), so that each
    // histogram is filled feature by feature from the page's columns; sized for a whole page,
    // which a thread takes when the pass gives out whole pages.
    let mut scratch: Vec<Buckets> = (0..threads).map(|_| Buckets::new(PAGE_ROWS, n_build)).collect();
    // The dense columns this pass looks at: the split columns it routes by and the columns
    // it builds histograms of; a streamed page is read for those only.
    let mut need: Vec<usize> = routes.iter().flatten().filter_map(|r| r.dense).collect();
    if n_build > 0 {
        need.extend(&cols.dense);
    }
    need.sort_unstable();
    need.dedup();
    let hops = Hop::table(routes);
    let work = PassWork {
        routes,
        hops: hops.as_deref(),
        slots,
        n_build,
        gr,
        pf,
        cols,
        layout,
    };
    let n_pages = cache.manifest.pages.len();
    let workers = cache.page_workers().min(threads);
    if workers > 1 && n_pages >= 2 * workers {
        // Whole pages to each thread: one wake-up per pass instead of one per page.
        let mut states: Vec<_> = per_thread
            .iter_mut()
            .zip(scratch.iter_mut())
            .take(workers)
            .collect();
        cache.par_pages(Some(&need), &mut states, node, |(hs, b), page, nodes| {
            work.run(&page, 0, nodes, hs, b);
            Ok(())
        })?;
    } else {
        cache.for_each_page(Some(&need), |page| {
            let r0 = page.first_row as usize;
            let rows = page.rows;
            let chunk = rows.div_ceil(threads);
            node[r0..r0 + rows]
                .par_chunks_mut(chunk)
                .zip(per_thread.par_iter_mut())
                .zip(scratch.par_iter_mut())
                .enumerate()
                .for_each(|(t, ((nodes, hs), b))| work.run(&page, t * chunk, nodes, hs, b));
            Ok(())
        })?;
    }
    // Add the threads' histograms in thread order.
    let mut out = per_thread.remove(0);
    for hs in per_thread {
        for (a, b) in out.iter_mut().zip(&hs) {
            a.add(b);
        }
    }
    Ok(out)
}

/// What a level pass does with a run of a page's rows.
struct PassWork<'s, 'g> {
    routes: &'s [Option<Route>],
    hops: Option<&'s [Hop]>,
    slots: &'s [i32],
    n_build: usize,
    gr: &'s Gradients<'g>,
    pf: &'s PageFeatures,
    cols: &'s Columns,
    layout: &'s crate::binning::cache::Layout,
}

impl PassWork<'_, '_> {
    /// Routes page rows `first..first + nodes.len()` (whose nodes are `nodes`) and adds them
    /// to the histograms `hs` of their nodes' build slots, grouping them in `b`.
    fn run(&self, page: &Page<'_>, first: usize, nodes: &mut [u32], hs: &mut [Histogram], b: &mut Buckets) {
        let (gr, n_build) = (self.gr, self.n_build);
        let r0 = page.first_row as usize;
        let rows = page.rows;
        let Buckets {
            slot_of,
            sorted,
            gh,
            groups,
            counts,
        } = b;
        // Routing first, in a loop of its own: rows do not depend on each other there, so
        // the loads of many rows' codes (from as many columns as the level has splits) are
        // in flight at once.
        if let Some(hops) = self.hops {
            // Every row reads a code and takes a table row, so the loop has no branch to
            // mispredict and the code loads of many rows overlap.
            for (i, nd) in nodes.iter_mut().enumerate() {
                let h = &hops[*nd as usize];
                *nd = h.step.child(page.dense[h.col as usize * rows + first + i]) as u32;
            }
        } else {
            for (i, nd) in nodes.iter_mut().enumerate() {
                if let Some(rt) = self.routes.get(*nd as usize).copied().flatten() {
                    let r = first + i;
                    let code = match rt.dense {
                        Some(d) => page.dense[d * rows + r],
                        None => page.code(r, self.layout, rt.feature),
                    };
                    *nd = rt.step.child(code) as u32;
                }
            }
        }
        if n_build == 0 {
            return;
        }
        // Each slot's row count, in four counters taken in turn: runs of rows in one slot
        // would otherwise wait on each other's increment of one counter in memory.
        counts.fill([0; 4]);
        for (i, &nd) in nodes.iter().enumerate() {
            let slot = self.slots.get(nd as usize).copied().unwrap_or(-1);
            let builds = (slot >= 0) & (gr.hess[r0 + first + i] != 0.0);
            // Whether a row trains this tree is a coin toss from row to row: a branch on it
            // was mispredicted about every other row.
            let s = std::hint::select_unpredictable(builds, slot as u32, n_build as u32);
            slot_of[i] = s;
            counts[s as usize][i & 3] += 1;
        }
        // Counts to empty ranges at each slot's start; placing a row extends its range.
        let mut acc = 0;
        for (g, c) in groups[..n_build].iter_mut().zip(counts.iter()) {
            let k = c.iter().sum::<u32>() as usize;
            *g = (acc, acc);
            acc += k;
        }
        for (i, &s) in slot_of[..nodes.len()].iter().enumerate() {
            if let Some(g) = groups[..n_build].get_mut(s as usize) {
                sorted[g.1] = i as u32;
                g.1 += 1;
            }
        }
        // Row indices to page rows, and their gradient pairs in the same order, so the
        // histogram loops read both front to back.
        let built = acc;
        for (i, w) in sorted[..built].iter_mut().zip(gh.iter_mut()) {
            *i += first as u32;
            let r = r0 + *i as usize;
            *w = gr.q[r].packed();
        }
        add_groups(
            hs,
            page,
            self.pf,
            self.cols,
            &groups[..n_build],
            &sorted[..built],
            &gh[..built],
        );
    }
}

/// One thread's scratch for grouping a page chunk's rows by build slot.
pub(crate) struct Buckets {
    /// Each row's slot (`n_build` when the row builds nothing).
    slot_of: Vec<u32>,
    /// Row indices, grouped by slot.
    sorted: Vec<u32>,
    /// The quantised gradients of `sorted`'s rows.
    gh: Vec<Packed>,
    /// Each slot's `(start, end)` in `sorted` (the last slot: rows that build nothing).
    groups: Vec<(usize, usize)>,
    /// Each slot's row count, in four parts.
    counts: Vec<[u32; 4]>,
}

impl Buckets {
    fn new(rows: usize, n_build: usize) -> Self {
        Self {
            slot_of: vec![0; rows],
            sorted: vec![0; rows],
            gh: vec![Packed::ZERO; rows],
            groups: vec![(0, 0); n_build + 1],
            counts: vec![[0; 4]; n_build + 1],
        }
    }

    /// Heap bytes of one thread's scratch.
    pub(crate) fn bytes(rows: usize, n_build: usize) -> u64 {
        (4 * 2 * rows
            + std::mem::size_of::<Packed>() * rows
            + (std::mem::size_of::<(usize, usize)>() + std::mem::size_of::<[u32; 4]>()) * (n_build + 1))
            as u64
    }
}
