//! Policy `rate` rules at run time (`rate mail.send 10 per 1m`): calls of a limited tool
//! queue so that no window of the rule's length ever holds more calls than the rule allows.
//!
//! Each tool keeps the instants its last calls went at (as many as its largest rule
//! allows). Calls queue first come, first served on the tool's lock; the call at the head
//! waits for the earliest instant that keeps every rule (now while a rule has room, else
//! when its oldest counted call leaves the window), then records the instant it actually
//! went at, which tokio's timer may make a little later than planned, and lets the next one
//! look. So a burst of up to `count` calls goes at once, and no window ever holds more. A
//! call cancelled while it waits is not counted. Every attempt counts, retries included.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use dsl_check::policy::Rate;
use tokio::time::Instant;

/// The rate rules of a run, by tool key.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    tools: HashMap<String, ToolLimit>,
}

/// The rules of one tool and the instants of its last calls.
#[derive(Debug)]
struct ToolLimit {
    /// `(count, window)` of each rule.
    rules: Vec<(usize, Duration)>,
    /// The instants the last calls went at, oldest first (at most the largest count); the
    /// lock is the queue.
    issued: tokio::sync::Mutex<VecDeque<Instant>>,
}

/// A call that no rule would ever let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeverAllowed {
    /// Why, for the step's error.
    pub(crate) message: String,
}

impl RateLimits {
    /// The limits of a policy's `rate` rules (a rule with a zero window limits nothing).
    pub(crate) fn new(rates: &[Rate]) -> RateLimits {
        let mut tools: HashMap<String, ToolLimit> = HashMap::new();
        for rate in rates.iter().filter(|r| r.window_ms > 0) {
            let limit = tools.entry(rate.tool.clone()).or_insert_with(|| ToolLimit {
                rules: Vec::new(),
                issued: tokio::sync::Mutex::new(VecDeque::new()),
            });
            let count = usize::try_from(rate.count).unwrap_or(0);
            limit
                .rules
                .push((count, Duration::from_millis(rate.window_ms)));
        }
        RateLimits { tools }
    }

    /// Waits until a call of `tool` (its key, `mail.send`) may be issued, and counts it.
    pub(crate) async fn wait(&self, tool: &str) -> Result<(), NeverAllowed> {
        if self.tools.is_empty() {
            return Ok(());
        }
        let Some(limit) = self.tools.get(tool) else {
            return Ok(());
        };
        // Boxed: the queue's future is large, and every tool call's future would hold room
        // for it, limited or not.
        Box::pin(limit.go(tool)).await
    }
}

impl super::Engine {
    /// Waits for the policy's `rate` rules to let a call of `tool` go (a call that waited
    /// counts as issued when it goes, for simulated latency).
    pub(crate) async fn wait_for_rate(&self, tool: &str) -> Result<(), super::calls::Failure> {
        crate::sim::clock::after_wait(self.rates.wait(tool))
            .await
            .map_err(|never| super::calls::Failure {
                class: "policy",
                message: never.message,
                retry_after: None,
                recorded: false,
            })
    }
}

impl ToolLimit {
    /// Queues for the tool, waits until every rule has room, and records the call.
    async fn go(&self, tool: &str) -> Result<(), NeverAllowed> {
        if let Some((_, window)) = self.rules.iter().find(|(count, _)| *count == 0) {
            return Err(NeverAllowed {
                message: format!(
                    "the policy allows no call of `{tool}` (rate 0 per {} ms)",
                    window.as_millis()
                ),
            });
        }
        let mut issued = self.issued.lock().await;
        let mut slot = Instant::now();
        for &(count, window) in &self.rules {
            // The call `count` places back must have left the window before this one goes.
            if let Some(oldest) = issued.len().checked_sub(count).and_then(|i| issued.get(i)) {
                slot = slot.max(*oldest + window);
            }
        }
        tokio::time::sleep_until(slot).await;
        issued.push_back(Instant::now().max(slot));
        let keep = self
            .rules
            .iter()
            .map(|(count, _)| *count)
            .max()
            .unwrap_or(0);
        while issued.len() > keep {
            issued.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(tool: &str, count: i64, window_ms: u64) -> Rate {
        Rate {
            tool: tool.into(),
            count,
            window_ms,
        }
    }

    /// The largest number of `instants` inside any window of length `window`.
    fn most_in_a_window(instants: &[Instant], window: Duration) -> usize {
        let mut sorted = instants.to_vec();
        sorted.sort();
        (0..sorted.len())
            .map(|i| {
                sorted[i..]
                    .iter()
                    .take_while(|t| **t < sorted[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_up_to_the_count_then_one_window_later() {
        let limits = RateLimits::new(&[rate("mail.send", 3, 1000)]);
        let start = Instant::now();
        let calls = (0..8).map(|_| async {
            limits.wait("mail.send").await.expect("allowed");
            Instant::now()
        });
        let instants = futures_util::future::join_all(calls).await;
        let offsets: Vec<u128> = instants.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(offsets, [0, 0, 0, 1000, 1000, 1000, 2000, 2000]);
        assert_eq!(most_in_a_window(&instants, Duration::from_millis(1000)), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_come_later_go_when_the_window_has_room() {
        let limits = RateLimits::new(&[rate("t", 2, 100)]);
        let start = Instant::now();
        let mut instants = Vec::new();
        for pause in [0, 30, 10, 200, 0, 0, 50] {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            limits.wait("t").await.expect("allowed");
            instants.push(Instant::now());
        }
        let offsets: Vec<u128> = instants.iter().map(|t| (*t - start).as_millis()).collect();
        // 0 and 30 fill the window; the third (at 40) waits for 0 to leave it (100); the
        // fourth comes at 300 with room, the fifth at once, the sixth waits for 300 to leave
        // (400), the seventh (at 450) finds room.
        assert_eq!(offsets, [0, 30, 100, 300, 300, 400, 450]);
        assert_eq!(most_in_a_window(&instants, Duration::from_millis(100)), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn every_rule_of_a_tool_holds_and_other_tools_are_free() {
        let limits = RateLimits::new(&[rate("t", 2, 100), rate("t", 3, 1000), rate("u", 1, 10)]);
        let start = Instant::now();
        let mut instants = Vec::new();
        for _ in 0..7 {
            limits.wait("t").await.expect("allowed");
            instants.push(Instant::now());
        }
        let offsets: Vec<u128> = instants.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(offsets, [0, 0, 100, 1000, 1000, 1100, 2000]);
        assert_eq!(most_in_a_window(&instants, Duration::from_millis(100)), 2);
        assert_eq!(most_in_a_window(&instants, Duration::from_millis(1000)), 3);
        let before = Instant::now();
        limits.wait("free").await.expect("no rule");
        assert_eq!(Instant::now(), before);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_count_never_lets_a_call_through() {
        let limits = RateLimits::new(&[rate("t", 0, 1000)]);
        let error = limits.wait("t").await.expect_err("never allowed");
        assert!(error.message.contains("allows no call of `t`"), "{error:?}");
    }
}
