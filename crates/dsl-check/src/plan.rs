//! The plan.
use crate::Analysis;
/// A plan.
#[derive(Debug, Clone)]
pub struct Plan;
pub(crate) fn lower(_analysis: &Analysis) -> Option<Plan> {
    None
}
