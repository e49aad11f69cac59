//! newspipe's compiled hot loops. Each module mirrors one pure Python function of the core
//! (its reference, kept in pipeline/ and compared in the tests): same inputs, same answers.
use pyo3::prelude::*;

mod bandmap;
mod dedup;
mod door;
mod entries;
mod firstlook;
mod fxhash;
mod heap;
mod kafka;
mod lang;
mod moderation;
mod modsignals;
mod records;
mod tagger;
mod text;

#[pymodule]
fn newspipe_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<lang::LangModel>()?;
    m.add_class::<firstlook::FirstLook>()?;
    m.add_function(wrap_pyfunction!(text::normalize_plain, m)?)?;
    m.add_function(wrap_pyfunction!(text::nfc_inert_ranges, m)?)?;
    m.add_class::<records::CommentBuilder>()?;
    m.add_function(wrap_pyfunction!(records::iso_utc, m)?)?;
    m.add_function(wrap_pyfunction!(records::epoch_of_iso, m)?)?;
    m.add_class::<moderation::CaseTables>()?;
    m.add_class::<moderation::ToxicityScorer>()?;
    m.add_class::<moderation::WordLists>()?;
    m.add_class::<modsignals::TextSignals>()?;
    m.add_function(wrap_pyfunction!(modsignals::round4, m)?)?;
    m.add_function(wrap_pyfunction!(kafka::murmur2, m)?)?;
    m.add_function(wrap_pyfunction!(heap::untrack_data, m)?)?;
    m.add_function(wrap_pyfunction!(entries::stale_entries, m)?)?;
    m.add_function(wrap_pyfunction!(entries::stale_in_dict, m)?)?;
    m.add_class::<tagger::TagIndex>()?;
    dedup::register(m)?;
    m.add_class::<bandmap::BandMap>()?;
    m.add_class::<door::Door>()?;
    Ok(())
}
