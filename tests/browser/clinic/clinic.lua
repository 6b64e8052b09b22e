-- The browser test's clinic (tests/browser/worklist.js): its protocol turns
-- the events the test POSTs into alerts.
-- Its zone makes the page show local times; it is always open (no hours), so
-- no notification waits. Its notification policy sends critical alerts to a
-- webhook nobody listens on (the discard port), so the alert's History shows
-- the policy's attempts failing and retried (docs/notifications.md).
return {
  description = "worklist browser test clinic",
  timezone = "America/New_York",
  notify = {
    receivers = { desk = { webhook = "http://127.0.0.1:9/hook" } },
    routes = { { match = { severity = "critical" }, steps = { { to = "desk" } } } },
  },
  -- its own event types (flags.lua), declared: regimen check passes
  events = {
    flag = { "severity", "message" },
    note = { "severity", "message" },
    clear = { "of" },
  },
}
