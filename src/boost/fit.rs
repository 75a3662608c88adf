//! The boosting loop: gradients, one tree per round, validation and early stopping.
//!
//! What stays in memory is O(rows) small arrays (margin, gradient, hessian, node) plus
//! the histogram pool that [`super::grow`] uses; the features stay on disk in the page cache.

use std::time::Instant;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::checkpoint::{replay, Checkpoints};
use super::grow::{grow, Gradients};
use super::hist::{page_features, QPair, Quantizer};
use super::sizing::{model_bytes, train_bytes};
use super::tree::Tree;
use super::{EvalMetric, IterLog, Model, Objective, Role, Sampling, TrainParams};
use crate::binning::cache::{PageCache, PAGE_ROWS};
use crate::binning::Cuts;
use crate::error::InputError;
use crate::memory::MemoryReservation;

/// A stable per-(seed, tree, row) draw in `[0, 1)` for row subsampling.
fn draw(seed: u64, tree: usize, row: usize) -> f64 {
    (bits(seed, tree, row) >> 11) as f64 / (1u64 << 53) as f64
}

/// Two stable per-(seed, tree, row) draws in `[0, 1)` for stochastic rounding, apart from
/// the subsampling draw.
fn draw2(seed: u64, tree: usize, row: usize) -> [f64; 2] {
    let z = bits(seed ^ 0x005E_ED0F_ABCD_1234, tree, row);
    let unit = 1.0 / (1u64 << 32) as f64;
    [(z >> 32) as f64 * unit, (z & 0xFFFF_FFFF) as f64 * unit]
}

/// SplitMix64 of (seed, tree, row).
fn bits(seed: u64, tree: usize, row: usize) -> u64 {
    let mut z = seed
        ^ (tree as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (row as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A trained model and the margins it gives every cached row.
pub struct Fit {
    pub model: Model,
    /// The margin of every row (whatever its role) from the trees the model keeps: with early
    /// stopping, those up to the best iteration. Rows left out of training ([`Role::Skip`])
    /// are routed through every tree too, so these are their out-of-sample predictions.
    pub margin: Vec<f32>,
    /// The checkpoint holding this whole training (with `train.checkpoint_every`), which
    /// the job removes once its outputs are written.
    pub checkpoint: Option<std::path::PathBuf>,
    /// Trees taken from a checkpoint instead of grown.
    pub resumed: usize,
}

/// Trains one model on the cached rows. `roles` says which rows train and which validate;
/// `on_iter` sees each iteration's log (for progress display).
pub fn train(
    cache: &PageCache,
    labels: &[u8],
    roles: &[Role],
    params: &TrainParams,
    seed: u64,
    res: &mut MemoryReservation,
    on_iter: impl FnMut(&IterLog),
) -> anyhow::Result<Model> {
    Ok(fit(cache, labels, roles, params, seed, res, on_iter)?.model)
}

/// [`train`], also returning every row's margin at the kept iteration.
pub fn fit(
    cache: &PageCache,
    labels: &[u8],
    roles: &[Role],
    params: &TrainParams,
    seed: u64,
    res: &mut MemoryReservation,
    mut on_iter: impl FnMut(&IterLog),
) -> anyhow::Result<Fit> {
    let cuts: &Cuts = &cache.manifest.cuts;
    let n = labels.len();
    let nf = cuts.features.len();
    let threads = rayon::current_num_threads();
    let pf = page_features(&cache.layout, cuts);
    let slots = *pf.offsets.last().expect("offsets end with the total");
    let n_valid = roles.iter().filter(|&&r| r == Role::Valid).count();
    let (state_bytes, hist_bytes) = train_bytes(n as u64, n_valid as u64, slots, params, threads);
    let page_bytes = cache.manifest.streamed_bytes(2);
    let names: Vec<&str> = cuts.features.iter().map(|f| f.name.as_str()).collect();
    let model_bytes = model_bytes(params, crate::memory::names_bytes(&names));
    drop(names);
    let need = state_bytes + hist_bytes + model_bytes + page_bytes;
    res.require(
        need,
        format!(
            "per-row state for {n} rows, histograms for {nf} features at depth {}, the model, two pages",
            params.max_depth
        ),
    )?;
    res.try_grow(state_bytes + hist_bytes + model_bytes)?;
    // The whole cache stays mapped when it fits beside the state; otherwise each pass reads
    // page after page, each handed back to the kernel after use: a page per thread and the
    // next one being mapped when the budget holds them, else two (one faulted in while the
    // other is split among the threads).
    let resident = res.try_grow(cache.manifest.bins_bytes()).is_ok();
    let whole_pages = resident
        || (threads > 1
            && res
                .try_grow(cache.manifest.streamed_bytes(threads as u64 + 1))
                .is_ok());
    if !whole_pages {
        res.try_grow(page_bytes)?;
    }
    cache.set_resident(resident);
    cache.set_page_workers(if whole_pages { threads } else { 1 });
    // Whatever this training keeps mapped goes back to the kernel when it ends, with its
    // reservation.
    let _keep = KeptPages(cache);

    let target = Target {
        labels,
        class: params.class_code().map_err(InputError::new)?,
    };
    let positives = (0..n)
        .filter(|&i| target.is_positive(i) && roles[i] == Role::Train)
        .count();
    let train_rows = roles.iter().filter(|&&r| r == Role::Train).count();
    if positives == 0 || positives == train_rows {
        return Err(InputError::new(format!(
            "class `{}` has {} of {train_rows} training rows: a one-vs-rest model needs both positive and negative rows",
            params.class, positives
        ))
        .hint("check the label column, or train another class")
        .into());
    }
    let pos_w = params.scale_pos_weight as f32;
    let weight_of = |i: usize| -> f32 {
        match roles[i] {
            Role::Train if target.is_positive(i) => pos_w,
            Role::Train => 1.0,
            _ => 0.0,
        }
    };
    let (mut sw, mut swy) = (0.0f64, 0.0f64);
    for i in 0..n {
        let w = weight_of(i) as f64;
        sw += w;
        swy += w * target.at(i) as f64;
    }
    let base = params.objective.base_margin(swy / sw);

    let mut margin = vec![base; n];
    let mut grad = vec![0f32; n];
    let mut hess = vec![0f32; n];
    // GOSS sorts the rows' gradient magnitudes in a scratch array of its own.
    let mut goss_scratch = vec![0f32; if params.sampling == Sampling::Goss { n } else { 0 }];
    let mut node = vec![0u32; n];
    let mut part = vec![0u16; n];
    let mut q = vec![QPair::default(); n];
    let levels = Quantizer::levels(n);
    // The margins at the best iteration so far, copied when it improves: early stopping
    // keeps those trees, and the caller gets what they predict.
    let mut best_margin: Vec<f32> = vec![];
    let sp = params.split_params();
    // Validation predictions and targets, gathered each round into buffers made once.
    let mut valid_p: Vec<f32> = Vec::with_capacity(n_valid);
    let mut valid_y: Vec<f32> = Vec::with_capacity(n_valid);
    // The AUC's sort keys, made once at full size so that they never grow (priced in
    // `sizing::state_bytes`).
    let mut valid_keys: Vec<u64> = Vec::with_capacity(if params.eval_metric == EvalMetric::Auc {
        n_valid
    } else {
        0
    });

    let mut trees: Vec<Tree> = Vec::with_capacity(params.n_estimators);
    let mut log: Vec<IterLog> = Vec::with_capacity(params.n_estimators);
    let mut best: Option<(usize, f64)> = None;
    let mut stopped = false;
    let mut seconds_before = 0.0;
    let mut resumed = 0;
    let checkpoints = Checkpoints::of(cache, params, seed, roles);
    if let Some(c) = checkpoints.as_ref().map(Checkpoints::load).transpose()?.flatten() {
        // Read trees may hold twice their nodes until trimmed: a second model's room while
        // they load.
        let loading = model_bytes;
        res.try_grow(loading)?;
        let bad = |why: String| {
            InputError::new(format!("training checkpoint does not fit this training: {why}"))
                .file(&checkpoints.as_ref().expect("loaded from it").path)
                .hint("delete the file; the training then starts from its first tree")
        };
        if c.base_margin.to_bits() != base.to_bits() || c.trees.len() > params.n_estimators {
            return Err(bad(format!(
                "base margin {} or {} trees",
                c.base_margin,
                c.trees.len()
            ))
            .into());
        }
        for (t, mut tree) in c.trees.into_iter().enumerate() {
            tree.check(nf).map_err(|e| bad(format!("tree {t}: {e}")))?;
            tree.shrink_to_fit();
            trees.push(tree);
        }
        res.shrink(loading);
        let snapshot = c.best_iteration.filter(|_| params.early_stopping_rounds > 0);
        replay(cache, &trees, &mut margin, snapshot, &mut best_margin)?;
        resumed = trees.len();
        c.log.iter().for_each(&mut on_iter);
        seconds_before = c.log.last().map_or(0.0, |l| l.seconds);
        log.extend(c.log);
        best = c.best_iteration.zip(c.best_score);
        stopped = c.stopped;
    }
    if !resident {
        // Of what the budget still holds, as many leading pages as fit stay mapped once read,
        // and only the others are read from the file again at every level. A huge page of
        // the map may reach past the last kept page into the next until that page's pass
        // hands it back (the kernel maps large folios of the file whole).
        let page = cache.manifest.max_page_len();
        let slack = crate::binning::cache::HUGE_PAGE;
        let keep =
            (res.available().saturating_sub(slack) / page.max(1)).min(cache.manifest.pages.len() as u64);
        if keep > 0 {
            res.try_grow(keep * page + slack)?;
            cache.set_kept_pages(keep as usize);
        }
    }
    let grads = Grads {
        objective: params.objective,
        subsample: (params.subsample < 1.0).then_some(params.subsample),
        seed,
        target: &target,
        weight_of: &weight_of,
    };
    // The next tree's gradients and their maxima, when the last tree's pass took them.
    let mut ready: Option<(f64, f64)> = None;
    let t0 = Instant::now();
    for t in trees.len()..params.n_estimators {
        if stopped {
            break;
        }
        let maxima = match ready.take() {
            Some(m) => m,
            None => prepare(&grads, t, &margin, (&mut grad, &mut hess)),
        };
        // As LightGBM, the first 1 / learning_rate trees see every row: until then the
        // gradients are nearly all alike, and a top share of ties would keep them all.
        let goss_now =
            params.sampling == Sampling::Goss && (t as f64) >= (1.0 / params.learning_rate).floor();
        if goss_now {
            goss(
                &mut grad,
                &mut hess,
                &mut goss_scratch,
                params.top_rate,
                params.other_rate,
                seed,
                t,
            );
        }
        // GOSS scales some rows up, so the largest gradient is taken again after it.
        let quant = quantize(
            &grad,
            &hess,
            &mut q,
            levels,
            seed,
            t,
            (!goss_now).then_some(maxima),
        );
        let features = column_sample(nf, params.colsample_bytree, seed, t);
        let gr = Gradients {
            grad: &grad,
            hess: &hess,
            q: &q,
            quant,
        };
        let mut tree = grow(cache, &pf, &features, &gr, (&mut node, &mut part), params, &sp)?;
        tree.shrink_to_fit();
        let next = (t + 1 < params.n_estimators).then_some(t + 1);
        let (sums, next_maxima) = add_tree(
            &tree.value,
            &node,
            &mut margin,
            roles,
            params.eval_metric,
            &grads,
            next,
            (&mut grad, &mut hess),
        );
        ready = next_maxima;
        trees.push(tree);

        let train_loss = params.objective.loss_metric().of_sum(sums.train.0, sums.train.1);
        let valid_score = (n_valid > 0).then(|| {
            if params.eval_metric.is_mean() {
                return params.eval_metric.of_sum(sums.valid.0, sums.valid.1);
            }
            valid_p.clear();
            valid_y.clear();
            for i in (0..n).filter(|&i| roles[i] == Role::Valid) {
                valid_p.push(params.objective.transform(margin[i]));
                valid_y.push(target.at(i));
            }
            params.eval_metric.compute(&valid_p, &valid_y, &mut valid_keys)
        });
        let entry = IterLog {
            iteration: t,
            train_loss,
            valid_score,
            seconds: seconds_before + t0.elapsed().as_secs_f64(),
        };
        on_iter(&entry);
        log.push(entry);
        if let Some(v) = valid_score {
            let better = match best {
                None => true,
                Some((_, b)) => {
                    if params.eval_metric.higher_is_better() {
                        v > b
                    } else {
                        v < b
                    }
                }
            };
            if better && v.is_finite() {
                best = Some((t, v));
                if params.early_stopping_rounds > 0 {
                    best_margin.clear();
                    best_margin.extend_from_slice(&margin);
                }
            }
            if params.early_stopping_rounds > 0
                && best.is_some_and(|(bi, _)| t - bi >= params.early_stopping_rounds)
            {
                stopped = true;
            }
        }
        if let Some(c) = &checkpoints {
            if !stopped && (t + 1) % c.every == 0 && t + 1 < params.n_estimators {
                c.save(base, best, false, &log, &trees)?;
                crate::memory::pause_point("checkpoint");
            }
        }
    }
    // The last checkpoint holds the whole training, so that a job killed after it (a
    // cross-validation's later folds, its outputs) replays this model instead of growing it.
    if let Some(c) = &checkpoints {
        c.save(base, best, stopped, &log, &trees)?;
    }
    if params.early_stopping_rounds > 0 {
        if let Some((bi, _)) = best {
            trees.truncate(bi + 1);
            margin = best_margin;
        }
    }
    let model = Model::new(params, base, cuts.names(), trees, best, log);
    Ok(Fit {
        model,
        margin,
        checkpoint: checkpoints.map(|c| c.path),
        resumed,
    })
}

/// The one-vs-rest target of each row, read from its class code rather than held as a
/// column of its own: four bytes a row less.
struct Target<'a> {
    labels: &'a [u8],
    class: u8,
}

impl Target<'_> {
    fn is_positive(&self, row: usize) -> bool {
        self.labels[row] == self.class
    }

    /// 1 for the class, 0 for the rest.
    fn at(&self, row: usize) -> f32 {
        f32::from(u8::from(self.is_positive(row)))
    }
}

/// Hands back the pages a training kept mapped when it ends (or fails): its reservation for
/// them ends with it.
struct KeptPages<'a>(&'a PageCache);

impl Drop for KeptPages<'_> {
    fn drop(&mut self) {
        self.0.set_kept_pages(0);
    }
}

/// Row sums a pass after each tree gives: `(sum, rows)` of the training loss's terms over
/// the training rows, and of the validation metric's over the validation rows (when it is a
/// mean of row terms).
struct TreeSums {
    train: (f64, u64),
    valid: (f64, u64),
}

/// How a tree's gradients are taken: each row's, weighted, or zero when the row does not
/// train or `subsample` leaves it out of the tree.
struct Grads<'a, W> {
    objective: Objective,
    subsample: Option<f64>,
    seed: u64,
    target: &'a Target<'a>,
    weight_of: &'a W,
}

impl<W: Fn(usize) -> f32 + Sync> Grads<'_, W> {
    /// Row `r`'s gradient and hessian for tree `tree` at margin `m`, whose prediction `p`
    /// gives only when the row trains (a row that does not skips the objective's exp).
    #[inline]
    fn row(&self, tree: usize, r: usize, m: f32, p: impl FnOnce() -> f32) -> (f32, f32) {
        let w = (self.weight_of)(r);
        if w == 0.0
            || self
                .subsample
                .is_some_and(|rate| draw(self.seed, tree, r) >= rate)
        {
            return (0.0, 0.0);
        }
        let (g, h) = self.objective.grad_hess(m, p(), self.target.at(r));
        (g * w, h * w)
    }
}

/// The largest |gradient| and hessian over the rows that train, which the quantiser's steps
/// need, kept as a pass writes the gradients.
#[derive(Clone, Copy, Default)]
struct Maxima(f32, f32);

impl Maxima {
    #[inline]
    fn add(&mut self, g: f32, h: f32) {
        if h != 0.0 {
            self.0 = self.0.max(g.abs());
            self.1 = self.1.max(h);
        }
    }

    fn max(self, o: Maxima) -> Maxima {
        Maxima(self.0.max(o.0), self.1.max(o.1))
    }

    fn get(self) -> (f64, f64) {
        (self.0 as f64, self.1 as f64)
    }
}

/// Adds a tree to every row's margin (`values` of the leaf in `node`) and, in the same pass,
/// sums the training loss and the validation metric, in page-sized chunks added in order, so
/// that neither figure depends on the thread count; with `next`, it also takes the gradients
/// of the next tree into `grad` and `hess` from the same predictions (what [`prepare`] does
/// otherwise, in a pass of its own and with a second exp a row) and returns their maxima.
/// One pass instead of four: on 2.5M rows the training loss and the validation gathering
/// alone took 38 ms a tree, about a seventh of a resident training's.
#[allow(clippy::too_many_arguments)]
fn add_tree<W: Fn(usize) -> f32 + Sync>(
    values: &[f32],
    node: &[u32],
    margin: &mut [f32],
    roles: &[Role],
    metric: EvalMetric,
    grads: &Grads<'_, W>,
    next: Option<usize>,
    (grad, hess): (&mut [f32], &mut [f32]),
) -> (TreeSums, Option<(f64, f64)>) {
    let (objective, target) = (grads.objective, grads.target);
    let parts: Vec<(TreeSums, Maxima)> = margin
        .par_chunks_mut(PAGE_ROWS)
        .zip(grad.par_chunks_mut(PAGE_ROWS))
        .zip(hess.par_chunks_mut(PAGE_ROWS))
        .enumerate()
        .map(|(c, ((m, g), h))| {
            let off = c * PAGE_ROWS;
            let mut s = TreeSums {
                train: (0.0, 0),
                valid: (0.0, 0),
            };
            let mut most = Maxima::default();
            let loss = objective.loss_metric();
            for (i, mi) in m.iter_mut().enumerate() {
                let r = off + i;
                *mi += values[node[r] as usize];
                let p = match roles[r] {
                    Role::Train => {
                        let p = objective.transform(*mi);
                        s.train.0 += loss.row_term(p, target.at(r));
                        s.train.1 += 1;
                        p
                    }
                    Role::Valid if metric.is_mean() => {
                        s.valid.0 += metric.row_term(objective.transform(*mi), target.at(r));
                        s.valid.1 += 1;
                        0.0
                    }
                    _ => 0.0,
                };
                if let Some(t) = next {
                    // Only a training row's prediction is read.
                    let (gi, hi) = grads.row(t, r, *mi, || p);
                    g[i] = gi;
                    h[i] = hi;
                    most.add(gi, hi);
                }
            }
            (s, most)
        })
        .collect();
    let (sums, most) = parts.into_iter().fold(
        (
            TreeSums {
                train: (0.0, 0),
                valid: (0.0, 0),
            },
            Maxima::default(),
        ),
        |(a, ma), (b, mb)| {
            (
                TreeSums {
                    train: (a.train.0 + b.train.0, a.train.1 + b.train.1),
                    valid: (a.valid.0 + b.valid.0, a.valid.1 + b.valid.1),
                },
                ma.max(mb),
            )
        },
    );
    (sums, next.map(|_| most.get()))
}

/// One pass over the rows before a tree whose gradients no [`add_tree`] took: each row's
/// weighted gradient and hessian, and their maxima.
fn prepare<W: Fn(usize) -> f32 + Sync>(
    grads: &Grads<'_, W>,
    tree: usize,
    margin: &[f32],
    (grad, hess): (&mut [f32], &mut [f32]),
) -> (f64, f64) {
    grad.par_chunks_mut(PAGE_ROWS)
        .zip(hess.par_chunks_mut(PAGE_ROWS))
        .enumerate()
        .map(|(c, (g, h))| {
            let off = c * PAGE_ROWS;
            let mut most = Maxima::default();
            for i in 0..g.len() {
                let r = off + i;
                let m = margin[r];
                let (gi, hi) = grads.row(tree, r, m, || grads.objective.transform(m));
                g[i] = gi;
                h[i] = hi;
                most.add(gi, hi);
            }
            most
        })
        .reduce(Maxima::default, Maxima::max)
        .get()
}

/// Gradient-based one-side sampling (Ke et al. 2017, LightGBM's `data_sample_strategy =
/// "goss"`) of the rows that train this tree (those with a non-zero hessian): keeps every row
/// whose |gradient × hessian| is among the `top` share of the largest (ties at the threshold
/// included), and each other row with probability `other / (1 − top)` by a stable per-row
/// draw, scaling its gradient and hessian by the inverse, `(1 − top) / other`, so that the
/// histograms' sums stay unbiased. Rows left out get zero gradient and hessian, which the
/// histograms skip, so a tree's histogram work falls to about `top + other` of the rows.
/// `scratch` (one value a row) is overwritten.
pub(crate) fn goss(
    grad: &mut [f32],
    hess: &mut [f32],
    scratch: &mut [f32],
    top: f64,
    other: f64,
    seed: u64,
    tree: usize,
) {
    scratch
        .par_iter_mut()
        .zip(grad.par_iter().zip(hess.par_iter()))
        .for_each(|(s, (&g, &h))| *s = if h != 0.0 { (g * h).abs() } else { -1.0 });
    let n_train = hess.iter().filter(|&&h| h != 0.0).count();
    if n_train == 0 {
        return;
    }
    let k = ((top * n_train as f64).round() as usize).clamp(1, n_train);
    let n = scratch.len();
    let (_, &mut threshold, _) = scratch.select_nth_unstable_by(n - k, f32::total_cmp);
    let keep = other / (1.0 - top);
    let scale = ((1.0 - top) / other) as f32;
    grad.par_iter_mut()
        .zip(hess.par_iter_mut())
        .enumerate()
        .for_each(|(i, (g, h))| {
            if *h == 0.0 || (*g * *h).abs() >= threshold {
                return;
            }
            if draw(seed ^ 0x0060_0055, tree, i) < keep {
                *g *= scale;
                *h *= scale;
            } else {
                *g = 0.0;
                *h = 0.0;
            }
        });
}

/// Quantises one tree's gradients into `q`: steps from the largest gradient and hessian of
/// the rows that train, each row rounded with its own stable draws.
/// `maxima` are the largest |gradient| and hessian when the caller has them.
fn quantize(
    grad: &[f32],
    hess: &[f32],
    q: &mut [QPair],
    levels: u32,
    seed: u64,
    tree: usize,
    maxima: Option<(f64, f64)>,
) -> Quantizer {
    let (max_g, max_h) = maxima.unwrap_or_else(|| {
        grad.par_iter()
            .zip(hess.par_iter())
            .filter(|(_, &h)| h != 0.0)
            .map(|(&g, &h)| (g.abs() as f64, h as f64))
            .reduce(|| (0.0, 0.0), |a, b| (a.0.max(b.0), a.1.max(b.1)))
    });
    let quant = Quantizer::new(max_g, max_h, levels);
    q.par_iter_mut().enumerate().for_each(|(i, qi)| {
        *qi = if hess[i] != 0.0 {
            quant.quantize(grad[i], hess[i], draw2(seed, tree, i), levels)
        } else {
            QPair::default()
        };
    });
    quant
}

/// The features a tree may split on: all, or a seeded sample of `rate` of them.
fn column_sample(nf: usize, rate: f64, seed: u64, tree: usize) -> Vec<usize> {
    if rate >= 1.0 {
        return (0..nf).collect();
    }
    let k = ((rate * nf as f64).round() as usize).clamp(1, nf);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0C0 ^ (tree as u64) << 20);
    let mut v = sample(&mut rng, nf, k).into_vec();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn goss_keeps_the_top_share_and_weights_up_a_sample_of_the_rest() {
        let n = 20_000;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // A tenth of the rows do not train (zero gradient and hessian).
        let (grad0, hess0): (Vec<f32>, Vec<f32>) = (0..n)
            .map(|_| match rng.random_bool(0.1) {
                true => (0.0, 0.0),
                false => (rng.random_range(-1.0..1.0), rng.random_range(0.05..0.25)),
            })
            .unzip();
        let (mut grad, mut hess) = (grad0.clone(), hess0.clone());
        let mut scratch = vec![0.0; n];
        let (top, other) = (0.2, 0.1);
        goss(&mut grad, &mut hess, &mut scratch, top, other, 9, 3);

        // The oracle: the training rows' magnitudes sorted, the top share's smallest.
        let mut mags: Vec<f32> = (0..n)
            .filter(|&i| hess0[i] != 0.0)
            .map(|i| (grad0[i] * hess0[i]).abs())
            .collect();
        let n_train = mags.len();
        mags.sort_by(|a, b| b.total_cmp(a));
        let k = (top * n_train as f64).round() as usize;
        let threshold = mags[k - 1];
        let scale = ((1.0 - top) / other) as f32;
        let (mut small, mut sampled) = (0usize, 0usize);
        for i in 0..n {
            let (g0, h0) = (grad0[i], hess0[i]);
            if h0 == 0.0 {
                assert_eq!((grad[i], hess[i]), (0.0, 0.0), "row {i} does not train");
            } else if (g0 * h0).abs() >= threshold {
                assert_eq!((grad[i], hess[i]), (g0, h0), "row {i} is in the top share");
            } else {
                small += 1;
                if hess[i] != 0.0 {
                    sampled += 1;
                    assert_eq!((grad[i], hess[i]), (g0 * scale, h0 * scale), "row {i}");
                } else {
                    assert_eq!(grad[i], 0.0, "row {i} left out");
                }
            }
        }
        assert_eq!(small, n_train - k, "no ties among random magnitudes");
        // Each small row is kept with probability other / (1 - top): within 4 sd.
        let p = other / (1.0 - top);
        let (mean, sd) = (small as f64 * p, (small as f64 * p * (1.0 - p)).sqrt());
        assert!(
            (sampled as f64 - mean).abs() < 4.0 * sd,
            "{sampled} of {small} sampled, {mean:.0} expected"
        );
    }
}
