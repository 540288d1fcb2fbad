//! Budgets: tokens, money, wall time and tool calls. A call reserves its worst case before
//! it starts and settles the real usage after, so concurrent calls cannot overshoot.
//!
//! Every budget holds across resumes: usage of earlier invocations is counted from the
//! store, wall time from the audit log ([`elapsed_before`]).

use dsl_check::policy::PolicyInfo;

use crate::store::AuditRecord;
use serde::{Deserialize, Serialize};

/// Budget limits given on the command line (they override the pack's, e.g. to raise one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BudgetOverrides {
    /// Money per run, in the pack's budget currency.
    pub money: Option<f64>,
    /// Tokens per run.
    pub tokens: Option<u64>,
    /// Tool calls per run.
    pub calls: Option<u64>,
    /// Wall time per run (all its invocations together), in milliseconds.
    pub time_ms: Option<u64>,
}

impl BudgetOverrides {
    /// Takes every limit set in `other`.
    pub fn raise(&mut self, other: &BudgetOverrides) {
        if other.money.is_some() {
            self.money = other.money;
        }
        if other.tokens.is_some() {
            self.tokens = other.tokens;
        }
        if other.calls.is_some() {
            self.calls = other.calls;
        }
        if other.time_ms.is_some() {
            self.time_ms = other.time_ms;
        }
    }

    /// Parses `money=2`, `usd=2`, `tokens=500000`, `calls=100`, `time=10m`.
    pub fn parse_assignment(&mut self, text: &str) -> Result<(), String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("expected KIND=VALUE, got `{text}`"))?;
        let bad = || format!("invalid budget value `{value}` for `{key}`");
        match key.trim() {
            "money" | "usd" | "eur" | "gbp" | "cost" => {
                self.money = Some(value.trim().parse().map_err(|_| bad())?)
            }
            "tokens" => self.tokens = Some(value.trim().parse().map_err(|_| bad())?),
            "calls" => self.calls = Some(value.trim().parse().map_err(|_| bad())?),
            "time" => self.time_ms = Some(crate::eval::parse_duration(value).ok_or_else(bad)?),
            other => {
                return Err(format!(
                    "unknown budget `{other}` (use money, tokens, calls or time)"
                ));
            }
        }
        Ok(())
    }
}

/// The budget of one run: limits, what is used and what is reserved.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// Money limit.
    pub money: Option<f64>,
    /// Currency of the money limit.
    pub currency: String,
    /// Token limit.
    pub tokens: Option<u64>,
    /// Call limit.
    pub calls: Option<u64>,
    /// Wall-time limit (ms).
    pub time_ms: Option<u64>,
    /// Money spent.
    pub money_used: f64,
    /// Tokens used.
    pub tokens_used: u64,
    /// Calls made.
    pub calls_used: u64,
    /// Wall time spent by earlier invocations of the run (ms).
    pub time_used_ms: u64,
    money_reserved: f64,
    tokens_reserved: u64,
}

/// What a call holds until it settles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reservation {
    money: f64,
    tokens: u64,
}

impl Budget {
    /// The pack's per-run budgets with the overrides applied.
    pub fn from_policy(policy: &PolicyInfo, overrides: &BudgetOverrides) -> Budget {
        let mut budget = Budget {
            currency: "usd".into(),
            ..Budget::default()
        };
        for rule in policy.budgets.iter().filter(|b| b.per == "run") {
            match rule.unit.as_str() {
                "tokens" => budget.tokens = Some(rule.amount as u64),
                "calls" => budget.calls = Some(rule.amount as u64),
                "ms" => budget.time_ms = Some(rule.amount as u64),
                currency => {
                    budget.money = Some(rule.amount);
                    budget.currency = currency.to_string();
                }
            }
        }
        if overrides.money.is_some() {
            budget.money = overrides.money;
        }
        if overrides.tokens.is_some() {
            budget.tokens = overrides.tokens;
        }
        if overrides.calls.is_some() {
            budget.calls = overrides.calls;
        }
        if overrides.time_ms.is_some() {
            budget.time_ms = overrides.time_ms;
        }
        budget
    }

    /// Counts usage from an earlier invocation of the run.
    pub fn add_used(&mut self, tokens: i64, money: f64) {
        self.tokens_used += tokens.max(0) as u64;
        self.money_used += money;
    }

    /// Reserves a call's worst case; `Err` names the budget it would exceed.
    pub fn reserve(
        &mut self,
        money: f64,
        tokens: u64,
        is_call: bool,
        elapsed_ms: u64,
    ) -> Result<Reservation, String> {
        let elapsed_ms = elapsed_ms.saturating_add(self.time_used_ms);
        if let Some(limit) = self.time_ms
            && elapsed_ms >= limit
        {
            return Err(format!(
                "time budget of {} exhausted ({} used)",
                crate::eval::format_duration(limit),
                crate::eval::format_duration(elapsed_ms)
            ));
        }
        if let Some(limit) = self.calls
            && is_call
            && self.calls_used >= limit
        {
            return Err(format!(
                "call budget of {limit} calls exhausted ({} made)",
                self.calls_used
            ));
        }
        if let Some(limit) = self.tokens
            && self.tokens_used + self.tokens_reserved + tokens > limit
        {
            return Err(format!(
                "token budget of {limit} would be exceeded ({} used, {} reserved, {tokens} needed)",
                self.tokens_used, self.tokens_reserved
            ));
        }
        if let Some(limit) = self.money
            && self.money_used + self.money_reserved + money > limit + 1e-12
        {
            return Err(format!(
                "money budget of {limit:.2} {} would be exceeded ({:.4} spent, {:.4} needed)",
                self.currency,
                self.money_used + self.money_reserved,
                money
            ));
        }
        if is_call {
            self.calls_used += 1;
        }
        self.money_reserved += money;
        self.tokens_reserved += tokens;
        Ok(Reservation { money, tokens })
    }

    /// Whether any call holds a reservation.
    pub fn has_reservations(&self) -> bool {
        self.money_reserved > 1e-12 || self.tokens_reserved > 0
    }

    /// Releases a reservation and counts what the call really used.
    pub fn settle(&mut self, reservation: Reservation, tokens: u64, money: f64) {
        self.money_reserved = (self.money_reserved - reservation.money).max(0.0);
        self.tokens_reserved = self.tokens_reserved.saturating_sub(reservation.tokens);
        self.tokens_used += tokens;
        self.money_used += money;
    }
}

/// The wall time (ms) the earlier invocations of a run took, from its audit log: each
/// `run_started` / `run_resumed` to the `run_<status>` that ended it. An invocation that
/// crashed has no end event: it counts until the last thing it recorded (an audit event or
/// the end of a step, `step_ends`). Time between invocations (waiting for an approval, a
/// raised budget) does not count.
pub fn elapsed_before(audit: &[AuditRecord], step_ends: &[i64]) -> u64 {
    let starts: Vec<i64> = audit
        .iter()
        .filter(|e| e.kind == "run_started" || e.kind == "run_resumed")
        .map(|e| e.at)
        .collect();
    let mut total: i64 = 0;
    for (i, &start) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(i64::MAX);
        let within = |at: i64| at >= start && at < next;
        let ended = audit.iter().find(|e| {
            within(e.at)
                && e.kind.starts_with("run_")
                && e.kind != "run_started"
                && e.kind != "run_resumed"
        });
        let end = match ended {
            Some(event) => event.at,
            None => audit
                .iter()
                .map(|e| e.at)
                .chain(step_ends.iter().copied())
                .filter(|&at| within(at))
                .max()
                .unwrap_or(start),
        };
        total += (end - start).max(0);
    }
    total.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64, kind: &str) -> AuditRecord {
        AuditRecord {
            seq: at,
            at,
            kind: kind.to_string(),
            step_key: None,
            detail: String::new(),
        }
    }

    #[test]
    fn elapsed_time_sums_invocations_and_skips_the_gaps() {
        let audit = [
            event(1_000, "run_started"),
            event(1_400, "approval_requested"),
            event(1_500, "run_waiting_approval"),
            // An hour waiting for a person does not count.
            event(3_601_500, "approval_approved"),
            event(3_602_000, "run_resumed"),
            // Killed: the last thing it recorded is a step that ended at 3_602_700.
            event(3_700_000, "run_resumed"),
            event(3_700_100, "run_succeeded"),
        ];
        let step_ends = [1_200, 3_602_700];
        assert_eq!(elapsed_before(&audit, &step_ends), 500 + 700 + 100);
        assert_eq!(elapsed_before(&[], &[]), 0);
    }

    #[test]
    fn earlier_invocations_count_against_the_time_budget() {
        let mut budget = Budget {
            time_ms: Some(1_000),
            time_used_ms: 800,
            ..Budget::default()
        };
        assert!(budget.reserve(0.0, 0, true, 100).is_ok());
        let error = budget.reserve(0.0, 0, true, 200).expect_err("800 + 200 ms");
        assert!(error.contains("time budget of 1s exhausted"), "{error}");
    }

    #[test]
    fn reserve_then_settle() {
        let mut budget = Budget {
            tokens: Some(100),
            ..Budget::default()
        };
        let r = budget.reserve(0.0, 80, true, 0).expect("fits");
        assert!(budget.reserve(0.0, 30, true, 0).is_err());
        budget.settle(r, 50, 0.0);
        assert!(budget.reserve(0.0, 30, true, 0).is_ok());
        assert!(budget.reserve(0.0, 30, true, 0).is_err());
    }
}
