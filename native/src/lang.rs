//! py3langid's classifier (naive Bayes over byte n-grams found by a byte automaton), the
//! arithmetic of `pipeline.normalize.language._classify_chunk` for one text at a time: the walk
//! is a load per byte here, where Python pays an interpreter step (or a numpy gather) per byte.
use half::f16;
use half::slice::HalfFloatSliceExt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn words<T, const N: usize>(raw: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N).map(|c| from(c.try_into().unwrap())).collect()
}

/// The model's arrays, copied once from py3langid's (little-endian bytes from numpy).
#[pyclass(frozen, module = "newspipe_native")]
pub struct LangModel {
    nextmove: Vec<u32>,
    rowbase: Vec<u32>,
    output: Vec<i32>,
    // features x classes, row-major, in the model's own float16: half the memory a text's rows
    // are read from (the table is larger than the caches, so a feature's row is a cache miss)
    ptc: Vec<f16>,
    pc: Vec<f32>,
    classes: usize,
    aliases: Vec<(usize, usize)>,
}

#[pymethods]
impl LangModel {
    #[new]
    fn new(
        nextmove: &[u8],
        rowbase: &[u8],
        output: &[u8],
        ptc: &[u8],
        pc: &[u8],
        aliases: Vec<(usize, usize)>,
    ) -> PyResult<Self> {
        let pc = words(pc, f32::from_le_bytes);
        let classes = pc.len();
        let ptc: Vec<f16> = words(ptc, |b: [u8; 2]| f16::from_bits(u16::from_le_bytes(b)));
        if classes == 0 || ptc.len() % classes != 0 {
            return Err(pyo3::exceptions::PyValueError::new_err("ptc is not features x classes"));
        }
        let model = LangModel {
            nextmove: words(nextmove, u32::from_le_bytes),
            rowbase: words(rowbase, u32::from_le_bytes),
            output: words(output, i32::from_le_bytes),
            ptc,
            pc,
            classes,
            aliases,
        };
        let features = model.ptc.len() / classes;
        let sound = model.output.len() == model.rowbase.len()
            && model.nextmove.iter().all(|&s| (s as usize) < model.rowbase.len())
            && model.rowbase.iter().all(|&r| r as usize + 256 <= model.nextmove.len())
            && model.output.iter().all(|&f| f < features as i32)
            && model.aliases.iter().all(|&(i, j)| i < classes && j < classes);
        if !sound {
            return Err(pyo3::exceptions::PyValueError::new_err("inconsistent language model"));
        }
        Ok(model)
    }

    /// (class index, normalized probability) of each UTF-8 text, as py3langid's `classify`
    /// with `norm_probs=True`.
    fn classify_many(&self, texts: Vec<Bound<'_, PyBytes>>) -> Vec<(usize, f32)> {
        let mut work = Work::default();
        let mut scores = vec![0f32; self.classes];
        texts.iter().map(|t| self.classify(t.as_bytes(), &mut work, &mut scores)).collect()
    }
}

/// Scratch space reused across the texts of a call.
#[derive(Default)]
struct Work {
    feats: Vec<i32>,
    counted: Vec<(usize, f32)>, // (feature, log1p(count)), by feature
    row: Vec<f32>,
}

/// Rows asked for ahead of their use: a row is a cache miss, and the misses overlap this way.
const AHEAD: usize = 4;

#[inline(always)]
fn prefetch(row: &[f16]) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let at = row.as_ptr() as *const i8;
        let mut off = 0;
        while off < std::mem::size_of_val(row) {
            _mm_prefetch(at.wrapping_add(off), _MM_HINT_T0);
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

impl LangModel {
    fn classify(&self, text: &[u8], work: &mut Work, scores: &mut [f32]) -> (usize, f32) {
        let feats = &mut work.feats;
        feats.clear();
        let mut base = self.rowbase[0] as usize;
        for &byte in text {
            let state = self.nextmove[base + byte as usize] as usize;
            base = self.rowbase[state] as usize;
            let f = self.output[state];
            if f >= 0 {
                feats.push(f);
            }
        }
        let c = self.classes;
        scores.fill(0.0); // no feature: uniform, as py3langid under normalized probabilities
        if !feats.is_empty() {
            feats.sort_unstable();
            let counted = &mut work.counted;
            counted.clear();
            let mut at = 0;
            while at < feats.len() {
                let f = feats[at];
                let mut end = at + 1;
                while end < feats.len() && feats[end] == f {
                    end += 1;
                }
                counted.push((f as usize, ((end - at) as f32).ln_1p()));
                at = end;
            }
            let rows = |f: usize| &self.ptc[f * c..(f + 1) * c];
            for &(f, _) in counted.iter().take(AHEAD) {
                prefetch(rows(f));
            }
            work.row.resize(c, 0.0);
            for (k, &(f, weight)) in counted.iter().enumerate() {
                if let Some(&(next, _)) = counted.get(k + AHEAD) {
                    prefetch(rows(next));
                }
                rows(f).convert_to_f32_slice(&mut work.row);
                for (s, p) in scores.iter_mut().zip(&work.row) {
                    *s += p * weight;
                }
            }
            for (s, p) in scores.iter_mut().zip(&self.pc) {
                *s += p;
            }
        }
        let scale = 1.0f32 / (text.len().max(1) as f32).sqrt();
        let mut top = f32::NEG_INFINITY;
        for s in scores.iter_mut() {
            *s *= scale;
            top = top.max(*s);
        }
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - top).exp();
            sum += *s;
        }
        for s in scores.iter_mut() {
            *s /= sum;
        }
        for &(i, j) in &self.aliases {
            scores[i] += scores[j];
            scores[j] = 0.0;
        }
        let mut best = 0;
        for (k, &s) in scores.iter().enumerate() {
            if s > scores[best] {
                best = k;
            }
        }
        (best, scores[best])
    }
}
