//! The standard library: the `std.*` modules, embedded in the binary and checked once per
//! process.

use crate::fast_hash::{FastMap, FastSet};
use std::sync::{Arc, OnceLock};

use crate::module::{Loader, ModuleInfo, StdInitLoader};

/// Every stdlib module: its name (as in `use std.NAME`) and its source.
const MODULES: &[(&str, &str)] = &[
    ("core", include_str!("../../../stdlib/core.gx")),
    ("mail", include_str!("../../../stdlib/mail.gx")),
    ("chat", include_str!("../../../stdlib/chat.gx")),
    ("crm", include_str!("../../../stdlib/crm.gx")),
    ("docs", include_str!("../../../stdlib/docs.gx")),
    ("tickets", include_str!("../../../stdlib/tickets.gx")),
    ("calendar", include_str!("../../../stdlib/calendar.gx")),
    ("web", include_str!("../../../stdlib/web.gx")),
];

/// The source of stdlib module `name` (`mail` for `use std.mail`).
pub fn source(name: &str) -> Option<&'static str> {
    entry(name).map(|(_, source)| source)
}

/// The names of all stdlib modules, in a fixed order.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(name, _)| *name)
}

/// The module's static name and source.
pub(crate) fn entry(name: &str) -> Option<(&'static str, &'static str)> {
    MODULES.iter().find(|(n, _)| *n == name).copied()
}

/// The checked stdlib, built on first use.
fn cache() -> &'static FastMap<&'static str, Arc<ModuleInfo>> {
    static CACHE: OnceLock<FastMap<&'static str, Arc<ModuleInfo>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let mut loader = StdInitLoader {
            done: FastMap::default(),
            in_progress: FastSet::default(),
        };
        for name in names() {
            loader.std_module(name);
        }
        loader.done
    })
}

/// The checked stdlib module `name`.
pub fn module(name: &str) -> Option<Arc<ModuleInfo>> {
    cache().get(name).cloned()
}
