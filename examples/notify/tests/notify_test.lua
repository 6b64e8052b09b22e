-- Scenarios for the on-call policy of clinic.lua: who is notified when,
-- under the virtual clock. Run: build/regimen test examples/notify/tests

local enrolled = { program = "ketamine" }
local high_bp = { systolic = 175, diastolic = 105, heart_rate = 80, phase = "pre" }
local function adverse(kind) return { kind = kind, severity = "moderate" } end

return {
  {
    name = "an unacknowledged critical goes to the desk, then the prescriber at minute 15, then repeats",
    events = {
      { "2026-03-02T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:00:00Z", "vitals", high_bp },
    },
    horizon = "2026-03-02T12:00:00Z",
    only = { "safety.bp-high" },
    expect = { { "2026-03-02T10:00:00Z", "open", "safety.bp-high" } },
    notifications = {
      { "2026-03-02T10:00:00Z", "desk", step = 1 },
      { "2026-03-02T10:15:00Z", "prescriber", step = 2 },
      { "2026-03-02T10:45:00Z", "prescriber", step = 2, round = 1 },
      { "2026-03-02T11:15:00Z", "prescriber", step = 2, round = 2 },
    },
  },
  {
    name = "an acknowledgement at minute 10 stops the chain before the prescriber",
    events = {
      { "2026-03-02T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:00:00Z", "vitals", high_bp },
    },
    horizon = "2026-03-02T12:00:00Z",
    only = { "safety.bp-high" },
    expect = { { "2026-03-02T10:00:00Z", "open", "safety.bp-high" } },
    acks = { { "2026-03-02T10:10:00Z", "safety.bp-high" } },
    notifications = {
      { "2026-03-02T10:00:00Z", "desk", step = 1 },
    },
  },
  {
    name = "an open critical holds back the patient's warning, recorded as suppressed",
    events = {
      { "2026-03-02T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:00:00Z", "vitals", high_bp },
      { "2026-03-02T10:05:00Z", "adverse_event", adverse("dissociation") },
    },
    horizon = "2026-03-02T10:10:00Z",
    only = { "safety.bp-high", "safety.adverse-event" },
    expect = {
      { "2026-03-02T10:00:00Z", "open", "safety.bp-high" },
      { "2026-03-02T10:05:00Z", "open", "safety.adverse-event" },
    },
    notifications = {
      { "2026-03-02T10:00:00Z", "desk", step = 1, rule = "safety.bp-high" },
      { "2026-03-02T10:05:00Z", "desk", rule = "safety.adverse-event", outcome = "suppressed",
        reason = "inhibited" },
    },
  },
  {
    name = "three warnings due together for one patient make one message",
    events = {
      { "2026-03-02T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:00:00Z", "adverse_event", adverse("dissociation"), id = "ae1" },
      { "2026-03-02T10:00:00Z", "adverse_event", adverse("nausea"), id = "ae2" },
      { "2026-03-02T10:00:00Z", "adverse_event", adverse("headache"), id = "ae3" },
    },
    horizon = "2026-03-02T11:00:00Z",
    only = { "safety.adverse-event" },
    expect = {
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event" },
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event" },
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event" },
    },
    notifications = {
      { "2026-03-02T10:00:00Z", "desk" },
      { "2026-03-02T10:00:00Z", "desk", outcome = "suppressed", reason = "grouped" },
      { "2026-03-02T10:00:00Z", "desk", outcome = "suppressed", reason = "grouped" },
    },
  },
}
