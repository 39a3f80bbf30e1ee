//! Driver cache, sub-chain recursion, Redis integrity (issue 12, items 5, 6, 10): each attack against a spawned daemon, asserting its bounded outcome.
