//! The registry of diagnostic codes this crate reports, with a one-line summary each.
//! `grammar.md`'s Diagnostics section documents every code with a minimal example.

/// Every semantic diagnostic code, in order, with a one-line summary.
pub const CODES: &[(&str, &str)] = &[
    ("GX0101", "unknown language version"),
    ("GX0102", "warning: pack declares no language version"),
    (
        "GX0103",
        "item not allowed here, or metadata with the wrong kind of value",
    ),
    ("GX0104", "pack without a flow"),
    ("GX0201", "unknown name"),
    ("GX0202", "unknown field of a type"),
    ("GX0203", "unknown module in `use`"),
    ("GX0204", "unknown type"),
    ("GX0205", "unknown tool in a module"),
    ("GX0206", "unknown property in a block"),
    ("GX0207", "duplicate definition"),
    ("GX0208", "imported file not found"),
    ("GX0209", "wrong kind of name"),
    (
        "GX0210",
        "imported module has errors, or imports form a cycle",
    ),
    ("GX0301", "type mismatch"),
    ("GX0302", "map over a non-list"),
    ("GX0303", "unknown argument name"),
    ("GX0304", "missing required argument or field"),
    (
        "GX0305",
        "positional argument after a named one, or too many arguments",
    ),
    ("GX0306", "operator not defined for the operand types"),
    ("GX0307", "missing required property"),
    ("GX0308", "interpolation of a value that cannot be printed"),
    (
        "GX0309",
        "duration or count below its minimum (a zero timeout, a negative backoff)",
    ),
    ("GX0401", "destructive tool call with no approval path"),
    ("GX0402", "tool host not in the egress allowlist"),
    ("GX0403", "unknown budget unit or wrong amount kind"),
    ("GX0404", "literal secret"),
    ("GX0405", "invalid tool scope"),
    ("GX0406", "request URL host not among the tool's hosts"),
    ("GX0407", "unknown redaction kind or point"),
    ("GX0408", "model host not in the egress allowlist"),
    ("GX0501", "cycle in the flow"),
    ("GX0502", "warning: unused step"),
    ("GX0503", "warning: unused input"),
    ("GX0505", "review loop bound below 1"),
    ("GX0506", "warning: layout entry for an unknown step"),
    ("GX0601", "mock of an unknown tool, agent or model"),
    ("GX0602", "eval approval decision for an unknown step"),
    ("GX0603", "eval input that the pack does not declare"),
];

/// The summary of `code`.
pub fn summary(code: &str) -> Option<&'static str> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, s)| *s)
}
