//! HTTP server limits, rate limits, dev mode (issue 12, items 4, 7, 14, 15): each attack against a spawned daemon, asserting its bounded outcome.
