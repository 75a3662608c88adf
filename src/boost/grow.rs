//! Growing one tree depth-wise over the page cache.
//!
//! One pass over the pages per level routes every row (training and validation alike) to its
//! child and builds the histogram of the smaller child of each split; the larger child's is
//! the parent's minus the smaller's. Each page is split into one contiguous chunk per thread,
//! each thread sums into its own histograms, and the chunks are added in order: the same tree
//! for the same seed and thread count, at any budget.

use rayon::prelude::*;

use super::hist::{GradPair, Histogram, PageFeatures};
use super::tree::{best_split, Split, SplitParams, Tree};
use super::TrainParams;
use crate::binning::cache::{PageCache, PAGE_ROWS};

/// What one level pass does at a node.
#[derive(Clone, Copy)]
struct Route {
    feature: usize,
    /// The split feature's missing-value code, when it has missing values.
    missing: Option<u8>,
}

/// Sums of gradient pairs over rows with a non-zero hessian, chunked by page so the order
/// of additions never changes.
fn total(grad: &[f32], hess: &[f32]) -> GradPair {
    let parts: Vec<GradPair> = grad
        .par_chunks(PAGE_ROWS)
        .zip(hess.par_chunks(PAGE_ROWS))
        .map(|(g, h)| {
            let mut s = [0.0f64; 2];
            for (&a, &b) in g.iter().zip(h) {
                s[0] += a as f64;
                s[1] += b as f64;
            }
            s
        })
        .collect();
    parts.iter().fold([0.0, 0.0], |a, b| [a[0] + b[0], a[1] + b[1]])
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn grow(
    cache: &PageCache,
    pf: &PageFeatures,
    features: &[usize],
    grad: &[f32],
    hess: &[f32],
    node: &mut [u32],
    params: &TrainParams,
    sp: &SplitParams,
) -> anyhow::Result<Tree> {
    let cuts = &cache.manifest.cuts;
    let eta = params.learning_rate;
    node.fill(0);
    let root_total = total(grad, hess);
    let mut tree = Tree::root(
        (sp.weight(root_total[0], root_total[1]) * eta) as f32,
        root_total[1] as f32,
    );
    // The root's histogram: one pass, nothing to route.
    let mut built = level_pass(cache, pf, grad, hess, node, &tree, &[None], &[0], 1)?;
    let mut root_hist = built.pop().expect("one histogram");
    root_hist.fill_sparse_zeros(cuts, pf, root_total);
    // Nodes of the current level with their histograms and sums.
    let mut level: Vec<(usize, Histogram, GradPair)> = vec![(0, root_hist, root_total)];
    for depth in 0..params.max_depth {
        let splits: Vec<Option<Split>> = level
            .par_iter()
            .map(|(_, h, tot)| best_split(h, *tot, cuts, &pf.offsets, features, sp))
            .collect();
        if splits.iter().all(Option::is_none) {
            break;
        }
        let mut routes: Vec<Option<Route>> = vec![None; tree.len() + 2 * splits.len()];
        let mut children = vec![];
        for ((id, _, _), s) in level.iter().zip(&splits) {
            let Some(s) = s else { continue };
            let fb = &cuts.features[s.feature];
            let weights = (
                (sp.weight(s.left[0], s.left[1]) * eta) as f32,
                (sp.weight(s.right[0], s.right[1]) * eta) as f32,
            );
            let (l, r) = tree.split(*id, s, fb.threshold(s.bin), weights);
            routes[*id] = Some(Route {
                feature: s.feature,
                missing: fb.has_missing.then(|| fb.missing_code()),
            });
            children.push((*id, l, r, *s));
        }
        routes.truncate(tree.len());
        if depth + 1 == params.max_depth {
            // The children are leaves: route rows to them, build nothing.
            level_pass(cache, pf, grad, hess, node, &tree, &routes, &[], 0)?;
            break;
        }
        // Build the smaller child of each split (by hessian), subtract for the other.
        let mut slot = vec![-1i32; tree.len()];
        let mut small = vec![];
        for (k, &(_, l, r, s)) in children.iter().enumerate() {
            let (c, tot) = if s.left[1] <= s.right[1] {
                (l, s.left)
            } else {
                (r, s.right)
            };
            slot[c] = k as i32;
            small.push((c, tot));
        }
        let slots: Vec<i32> = slot;
        let mut hists = level_pass(
            cache,
            pf,
            grad,
            hess,
            node,
            &tree,
            &routes,
            &slots,
            children.len(),
        )?;
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
    Ok(tree)
}

/// One pass over every page: moves each row whose node has a route to its child, then adds
/// the row to the histogram of its node's build slot (when it has one).
#[allow(clippy::too_many_arguments)]
fn level_pass(
    cache: &PageCache,
    pf: &PageFeatures,
    grad: &[f32],
    hess: &[f32],
    node: &mut [u32],
    tree: &Tree,
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
    // Per thread, the chunk's rows grouped by build slot (a stable counting sort), so that
    // each histogram is filled feature by feature from the page's columns. Rows stay in
    // row order within a slot: every sum is the same, bit for bit, as adding row by row.
    let mut scratch: Vec<Buckets> = (0..threads)
        .map(|_| Buckets::new(PAGE_ROWS.div_ceil(threads), n_build))
        .collect();
    for p in 0..cache.manifest.pages.len() {
        let page = cache.page(p)?;
        let r0 = page.first_row as usize;
        let rows = page.rows;
        let chunk = rows.div_ceil(threads);
        node[r0..r0 + rows]
            .par_chunks_mut(chunk)
            .zip(per_thread.par_iter_mut())
            .zip(scratch.par_iter_mut())
            .enumerate()
            .for_each(|(t, ((nodes, hs), b))| {
                let first = t * chunk;
                let Buckets {
                    slot_of,
                    sorted,
                    gh,
                    starts,
                    ends,
                } = b;
                starts.fill(0);
                for (i, nd) in nodes.iter_mut().enumerate() {
                    let r = first + i;
                    let mut cur = *nd as usize;
                    if let Some(rt) = routes.get(cur).copied().flatten() {
                        let code = page.code(r, layout, rt.feature);
                        cur = tree.route_bin(cur, code, rt.missing);
                        *nd = cur as u32;
                    }
                    let s = match slots.get(cur) {
                        Some(&s) if s >= 0 && hess[r0 + r] != 0.0 => s as u32,
                        _ => n_build as u32,
                    };
                    slot_of[i] = s;
                    starts[s as usize] += 1;
                }
                if n_build == 0 {
                    return;
                }
                // Counts to bucket starts, then place each built row's index.
                let mut acc = 0u32;
                for c in starts[..n_build].iter_mut() {
                    let k = *c;
                    *c = acc;
                    acc += k;
                }
                ends.copy_from_slice(starts);
                for (i, &s) in slot_of[..nodes.len()].iter().enumerate() {
                    let s = s as usize;
                    if s < n_build {
                        sorted[ends[s] as usize] = i as u32;
                        ends[s] += 1;
                    }
                }
                // Row indices to page rows, and their gradient pairs in the same order, so
                // the histogram loops read both front to back.
                let built = ends[n_build - 1] as usize;
                for (i, w) in sorted[..built].iter_mut().zip(gh.iter_mut()) {
                    *i += first as u32;
                    let r = r0 + *i as usize;
                    *w = [grad[r] as f64, hess[r] as f64];
                }
                for (k, h) in hs.iter_mut().enumerate() {
                    let (a, z) = (starts[k] as usize, ends[k] as usize);
                    h.add_rows(&page, pf, &sorted[a..z], &gh[a..z]);
                }
            });
        if !cache.is_resident() {
            cache.release(p);
        }
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

/// One thread's scratch for grouping a page chunk's rows by build slot.
pub(crate) struct Buckets {
    /// Each row's slot (`n_build` when the row builds nothing).
    slot_of: Vec<u32>,
    /// Row indices, grouped by slot.
    sorted: Vec<u32>,
    /// The gradient pairs of `sorted`'s rows.
    gh: Vec<GradPair>,
    starts: Vec<u32>,
    ends: Vec<u32>,
}

impl Buckets {
    fn new(rows: usize, n_build: usize) -> Self {
        Self {
            slot_of: vec![0; rows],
            sorted: vec![0; rows],
            gh: vec![[0.0; 2]; rows],
            starts: vec![0; n_build + 1],
            ends: vec![0; n_build + 1],
        }
    }

    /// Heap bytes of one thread's scratch.
    pub(crate) fn bytes(rows: usize, n_build: usize) -> u64 {
        (4 * (2 * rows + 2 * (n_build + 1)) + std::mem::size_of::<GradPair>() * rows) as u64
    }
}
