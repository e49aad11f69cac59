//! py3langid's classifier (naive Bayes over byte n-grams found by a byte automaton), the
//! arithmetic of `pipeline.normalize.language._classify_chunk` for one text at a time: the walk
//! is a load per byte here, where Python pays an interpreter step (or a numpy gather) per byte.
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
    ptc: Vec<f32>, // features x classes, row-major
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
        let ptc = words(ptc, f32::from_le_bytes);
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
        let mut feats: Vec<i32> = Vec::new();
        let mut scores = vec![0f32; self.classes];
        texts.iter().map(|t| self.classify(t.as_bytes(), &mut feats, &mut scores)).collect()
    }
}

impl LangModel {
    fn classify(&self, text: &[u8], feats: &mut Vec<i32>, scores: &mut [f32]) -> (usize, f32) {
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
        if feats.is_empty() {
            scores.fill(0.0); // no feature: uniform, as py3langid under normalized probabilities
        } else {
            feats.sort_unstable();
            scores.fill(0.0);
            let mut at = 0;
            while at < feats.len() {
                let f = feats[at];
                let mut end = at + 1;
                while end < feats.len() && feats[end] == f {
                    end += 1;
                }
                let weight = ((end - at) as f32).ln_1p();
                let row = &self.ptc[f as usize * c..(f as usize + 1) * c];
                for (s, p) in scores.iter_mut().zip(row) {
                    *s += p * weight;
                }
                at = end;
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
