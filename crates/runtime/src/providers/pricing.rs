//! Model prices: what a call costs in US dollars, from a built-in table of common OpenAI
//! and Anthropic models (list prices per million tokens) that a model's `price:` property
//! overrides.

use std::collections::HashMap;

use dsl_check::plan::{Plan, PlanModel};
use dsl_syntax::ast::{Expr, ExprKind};

use super::Usage;

/// The price of one model, in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    /// USD per million input (prompt) tokens.
    pub input_per_million: f64,
    /// USD per million output (answer) tokens.
    pub output_per_million: f64,
}

impl ModelPrice {
    /// A price from USD per million input and output tokens.
    pub const fn new(input_per_million: f64, output_per_million: f64) -> ModelPrice {
        ModelPrice {
            input_per_million,
            output_per_million,
        }
    }

    /// The cost of `usage` in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_per_million
            + usage.output_tokens as f64 * self.output_per_million)
            / 1_000_000.0
    }

    /// Reads a `price: { input: 1.00 usd, output: 5.00 usd }` property; `None` when it is
    /// not of that shape or not in USD.
    pub fn from_expr(expr: &Expr) -> Option<ModelPrice> {
        let ExprKind::Record(props) = &expr.kind else {
            return None;
        };
        let usd = |key: &str| -> Option<f64> {
            let prop = props.iter().find(|p| p.key.name == key)?;
            match &prop.value.kind {
                ExprKind::Money { amount, currency } if currency == "usd" => Some(*amount),
                ExprKind::Int(i) => Some(*i as f64),
                ExprKind::Float(f) => Some(*f),
                _ => None,
            }
        };
        Some(ModelPrice::new(usd("input")?, usd("output")?))
    }
}

/// List prices (USD per million tokens) of common models, matched by name or dated snapshot.
const BUILT_IN: &[(&str, ModelPrice)] = &[
    // OpenAI
    ("gpt-5", ModelPrice::new(1.25, 10.00)),
    ("gpt-5-mini", ModelPrice::new(0.25, 2.00)),
    ("gpt-5-nano", ModelPrice::new(0.05, 0.40)),
    ("gpt-4.1", ModelPrice::new(2.00, 8.00)),
    ("gpt-4.1-mini", ModelPrice::new(0.40, 1.60)),
    ("gpt-4.1-nano", ModelPrice::new(0.10, 0.40)),
    ("gpt-4o", ModelPrice::new(2.50, 10.00)),
    ("gpt-4o-mini", ModelPrice::new(0.15, 0.60)),
    ("o3", ModelPrice::new(2.00, 8.00)),
    ("o3-mini", ModelPrice::new(1.10, 4.40)),
    ("o4-mini", ModelPrice::new(1.10, 4.40)),
    ("o1", ModelPrice::new(15.00, 60.00)),
    // Anthropic
    ("claude-opus-4-5", ModelPrice::new(5.00, 25.00)),
    ("claude-opus-4-1", ModelPrice::new(15.00, 75.00)),
    ("claude-opus-4", ModelPrice::new(15.00, 75.00)),
    ("claude-sonnet-4-5", ModelPrice::new(3.00, 15.00)),
    ("claude-sonnet-4", ModelPrice::new(3.00, 15.00)),
    ("claude-3-7-sonnet", ModelPrice::new(3.00, 15.00)),
    ("claude-3-5-sonnet", ModelPrice::new(3.00, 15.00)),
    ("claude-haiku-4-5", ModelPrice::new(1.00, 5.00)),
    ("claude-3-5-haiku", ModelPrice::new(0.80, 4.00)),
    ("claude-3-haiku", ModelPrice::new(0.25, 1.25)),
];

/// Prices by provider model name. Names match exactly or as a dated snapshot or alias
/// (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`, `claude-3-7-sonnet-latest`), never by a
/// looser prefix (`gpt-4.1-mini` is not `gpt-4.1`). Unknown models (local servers) cost 0.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: HashMap<String, ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> PriceTable {
        PriceTable {
            prices: BUILT_IN
                .iter()
                .map(|(name, price)| (name.to_string(), *price))
                .collect(),
        }
    }
}

impl PriceTable {
    /// The built-in table.
    pub fn new() -> PriceTable {
        PriceTable::default()
    }

    /// An empty table (every model costs 0 until [`PriceTable::set`]).
    pub fn empty() -> PriceTable {
        PriceTable {
            prices: HashMap::new(),
        }
    }

    /// The built-in table with each plan model's `price:` applied to its primary provider
    /// model (fallbacks keep their table price).
    pub fn for_plan(plan: &Plan) -> PriceTable {
        let mut table = PriceTable::new();
        for model in &plan.models {
            table.apply_model(model);
        }
        table
    }

    /// Applies one plan model's `price:` property, if it has one in USD.
    pub fn apply_model(&mut self, model: &PlanModel) {
        if let Some(price) = model
            .props
            .iter()
            .find(|(key, _)| key == "price")
            .and_then(|(_, expr)| ModelPrice::from_expr(expr))
        {
            self.set(&model.provider.model, price);
        }
    }

    /// Sets (or overrides) the price of `model`.
    pub fn set(&mut self, model: &str, price: ModelPrice) {
        self.prices.insert(model.to_string(), price);
    }

    /// The price of `model`: an exact entry, else the longest entry of which `model` is a
    /// dated snapshot (`-2024-08-06`, `-20250929`: four digits or more) or `-latest` alias.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        if let Some(price) = self.prices.get(model) {
            return Some(*price);
        }
        self.prices
            .iter()
            .filter(|(name, _)| {
                model.strip_prefix(name.as_str()).is_some_and(|rest| {
                    rest == "-latest"
                        || rest
                            .strip_prefix('-')
                            .is_some_and(|d| d.bytes().take_while(u8::is_ascii_digit).count() >= 4)
                })
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }

    /// The cost of `usage` on `model` in USD; 0 for a model without a price.
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        self.price(model).map_or(0.0, |price| price.cost(usage))
    }
}
